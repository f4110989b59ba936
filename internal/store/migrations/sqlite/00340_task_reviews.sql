-- +goose Up
-- Reviews and pre-execution checklist ticks of planned operations (tasks)
-- given by authenticated users of the server: unlike the git-email
-- records of lifecycle.jsonl, the person is the one who signed in. One
-- review per user per task and snapshot (a second replaces the first:
-- the latest verdict counts); one state per checklist item.
CREATE TABLE task_reviews (
    task       TEXT NOT NULL,
    snapshot   TEXT NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    verdict    TEXT NOT NULL CHECK (verdict IN ('approve', 'request-changes')),
    note       TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (task, user_id, snapshot)
);
CREATE INDEX task_reviews_by_user ON task_reviews (user_id);

-- user_id NULL: the server itself ticked the item (a notification channel
-- with ticks: delivered); actor is the name shown.
CREATE TABLE task_ticks (
    task       TEXT NOT NULL,
    item       TEXT NOT NULL,
    ticked     INTEGER NOT NULL,
    user_id    INTEGER REFERENCES users (id) ON DELETE SET NULL,
    actor      TEXT NOT NULL,
    note       TEXT NOT NULL DEFAULT '',
    changed_at BIGINT NOT NULL,
    PRIMARY KEY (task, item)
);

-- +goose Down
DROP TABLE task_ticks;
DROP TABLE task_reviews;
