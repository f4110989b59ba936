package api

import (
	"encoding/json"
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
	// Alertmanager authenticates with the trigger's secret as a bearer token.
	h.s.Handle("POST /api/v1/hooks/{name}/alertmanager", auth.Public(), "Receive Prometheus Alertmanager's webhook for an alertmanager trigger (Authorization: Bearer <trigger secret>)", h.alertmanager)
}

func (h *handlers) listTriggers(w http.ResponseWriter, r *http.Request) error {
	ts, err := h.s.Store().ListTriggers(r.Context())
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, Page[store.Trigger]{Items: ts})
	return nil
}

type createdTrigger struct {
	store.Trigger
	Secret string `json:"secret,omitempty"` // webhook HMAC key, shown once
}

func (h *handlers) createTrigger(w http.ResponseWriter, r *http.Request) error {
	var req server.TriggerSpec
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	t, secret, err := h.s.CreateTrigger(r, req, principal(r).Name)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusCreated, createdTrigger{Trigger: t, Secret: secret})
	return nil
}

func (h *handlers) deleteTrigger(w http.ResponseWriter, r *http.Request) error {
	if err := h.s.DeleteTrigger(r, r.PathValue("name")); err != nil {
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
	if t.Format == server.FormatAlertmanager {
		return server.Errorf(http.StatusNotFound, "not_found", "trigger %q receives Alertmanager's webhook at %s%s/alertmanager", t.Name, server.HooksPath, t.Name)
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

// alertmanager receives Prometheus Alertmanager's webhook payload for an
// alertmanager trigger, authenticated by the trigger's secret as a bearer
// token.
func (h *handlers) alertmanager(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t, err := h.s.Store().GetTrigger(ctx, r.PathValue("name"))
	if err != nil || t.Kind != store.TriggerWebhook || t.Format != server.FormatAlertmanager || !t.Enabled {
		return server.Errorf(http.StatusNotFound, "not_found", "no alertmanager trigger %q", r.PathValue("name"))
	}
	if err := h.s.VerifyAlertmanager(t, r.Header.Get("Authorization")); err != nil {
		h.s.Audit(ctx, "anonymous", h.s.RemoteAddr(r), "trigger.refused", "trigger/"+t.Name, map[string]string{"reason": err.Error()})
		return err
	}
	var p server.AlertmanagerPayload
	if err := server.DecodeForeignJSON(r, &p); err != nil {
	}
	out, err := h.s.ReceiveAlerts(ctx, t, p, h.s.RemoteAddr(r))
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusAccepted, out)
	return nil
}
