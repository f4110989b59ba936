package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

func (h *handlers) registerTriggers() {
	admin := auth.Need(auth.Admin, auth.NoScope)
	h.s.Handle("GET /api/v1/triggers", admin, "Scheduled and webhook triggers", h.listTriggers)
	h.s.Handle("POST /api/v1/triggers", admin, "Create a trigger; a webhook's secret is shown once", h.createTrigger)
	h.s.Handle("DELETE /api/v1/triggers/{name}", admin, "Delete a trigger", h.deleteTrigger)
	// The webhook authenticates itself with its HMAC signature; the
	// trigger's service identity's permissions then apply.
	h.s.Handle("POST /api/v1/hooks/{name}", auth.Public(), "Fire a webhook trigger (signed: X-Opsbook-Signature)", h.webhook)
}

func (h *handlers) listTriggers(w http.ResponseWriter, r *http.Request) error {
	ts, err := h.s.Store().ListTriggers(r.Context())
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, Page[store.Trigger]{Items: ts})
	return nil
}

type createTriggerRequest struct {
	Name        string            `json:"name"`
	Kind        string            `json:"kind"` // schedule | webhook
	Runbook     string            `json:"runbook"`
	Environment string            `json:"environment"`
	Params      map[string]string `json:"params,omitempty"`
	Schedule    string            `json:"schedule,omitempty"` // cron, 5 fields
	Timezone    string            `json:"timezone,omitempty"`
	CatchUp     bool              `json:"catch_up,omitempty"`
	ServiceUser string            `json:"service_user"` // name of a service identity
}

type createdTrigger struct {
	store.Trigger
	Secret string `json:"secret,omitempty"` // webhook HMAC key, shown once
}

func (h *handlers) createTrigger(w http.ResponseWriter, r *http.Request) error {
	var req createTriggerRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	if err := auth.CheckName("trigger", req.Name); err != nil {
		return server.BadRequest("%v", err)
	}
	if _, ok := h.s.Catalog().Get(req.Runbook); !ok {
		return server.BadRequest("runbook %q is not in the workspace", req.Runbook)
	}
	if _, err := h.s.Catalog().Workspace().Environment(req.Environment); err != nil {
		return server.BadRequest("%v", err)
	}
	ctx := r.Context()
	svc, err := h.s.Store().GetUserByName(ctx, req.ServiceUser)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !svc.Service) {
		return server.BadRequest("service_user %q must name a service identity (POST /api/v1/users with \"service\": true, then grant its team RunbookRun)", req.ServiceUser)
	}
	if err != nil {
		return err
	}
	t := &store.Trigger{Name: req.Name, Kind: req.Kind, Runbook: req.Runbook, Environment: req.Environment, Params: req.Params,
		Schedule: req.Schedule, Timezone: req.Timezone, CatchUp: req.CatchUp, ServiceUser: svc.ID, Enabled: true,
		CreatedBy: principal(r).Name, CreatedAt: h.s.Now()}
	var secret string
	switch req.Kind {
	case store.TriggerSchedule:
		if _, err := server.ParseSchedule(req.Schedule, req.Timezone); err != nil {
			return server.BadRequest("%v", err)
		}
	case store.TriggerWebhook:
		if req.Schedule != "" || req.CatchUp {
			return server.BadRequest("a webhook trigger has no schedule or catch_up")
		}
		secret = auth.NewToken()
		if t.Secret, err = h.s.Keys().Seal([]byte(secret), server.TriggerSecretAAD(req.Name)); err != nil {
			return err
		}
	default:
		return server.BadRequest("kind must be schedule or webhook, not %q", req.Kind)
	}
	if err := h.s.Store().CreateTrigger(ctx, t); err != nil {
		return err
	}
	if err := h.s.AuditRequest(r, "trigger.create", "trigger/"+t.Name, map[string]string{"kind": t.Kind, "runbook": t.Runbook, "environment": t.Environment, "service_user": svc.Name}); err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusCreated, createdTrigger{Trigger: *t, Secret: secret})
	return nil
}

func (h *handlers) deleteTrigger(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if err := h.s.Store().DeleteTrigger(r.Context(), name); err != nil {
		return err
	}
	if err := h.s.AuditRequest(r, "trigger.delete", "trigger/"+name, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type webhookBody struct {
	Params map[string]string `json:"params,omitempty"`
}

func (h *handlers) webhook(w http.ResponseWriter, r *http.Request) error {
	body, err := server.PeekBody(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	t, err := h.s.Store().GetTrigger(ctx, r.PathValue("name"))
	if err != nil || t.Kind != store.TriggerWebhook || !t.Enabled {
		// Unknown and non-webhook triggers look the same to an unsigned caller.
		return server.Errorf(http.StatusNotFound, "not_found", "no webhook trigger %q", r.PathValue("name"))
	}
	if err := h.s.VerifyWebhook(t, r.Header.Get(server.SignatureHeader), body); err != nil {
		h.s.Audit(ctx, "anonymous", h.s.RemoteAddr(r), "trigger.refused", "trigger/"+t.Name, map[string]string{"reason": err.Error()})
		return err
	}
	var req webhookBody
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return server.BadRequest("webhook body must be JSON like {\"params\":{…}}: %v", err)
		}
	}
	run, err := h.s.FireTrigger(ctx, t, req.Params, h.s.RemoteAddr(r), map[string]string{"via": "webhook"})
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusAccepted, run)
	return nil
}
