-- +goose Up
-- Live views and waiting runs on every node learn of new events at once:
-- each statement appending events notifies channel opsbook_events once per
-- run it touched (payload: the run id); a queued run, or one put back,
-- notifies opsbook_queue so an idle node claims it without waiting for its
-- next poll. Notifications are delivered at commit.
-- +goose StatementBegin
CREATE FUNCTION opsbook_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('opsbook_events', d.run_id) FROM (SELECT DISTINCT run_id FROM appended) d;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER events_notify AFTER INSERT ON events REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION opsbook_notify_events();

-- +goose StatementBegin
CREATE FUNCTION opsbook_notify_queue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('opsbook_queue', '');
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER run_queue_notify_insert AFTER INSERT ON run_queue
    FOR EACH ROW EXECUTE FUNCTION opsbook_notify_queue();
CREATE TRIGGER run_queue_notify_unclaim AFTER UPDATE ON run_queue
    FOR EACH ROW WHEN (OLD.node IS NOT NULL AND NEW.node IS NULL) EXECUTE FUNCTION opsbook_notify_queue();

-- +goose Down
DROP TRIGGER run_queue_notify_unclaim ON run_queue;
DROP TRIGGER run_queue_notify_insert ON run_queue;
DROP FUNCTION opsbook_notify_queue();
DROP TRIGGER events_notify ON events;
DROP FUNCTION opsbook_notify_events();
