package api

import (
	"net/http"
	"strconv"

	"github.com/opsbook/opsbook/internal/apitypes"
	"github.com/opsbook/opsbook/internal/audit"
	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

func (h *handlers) registerAudit() {
	admin := auth.Need(auth.Admin, auth.NoScope)
	h.s.Handle("GET /api/v1/audit", admin, "Audit log entries, newest first (?actor=, ?action=, ?target=)", h.listAudit)
	h.s.Handle("GET /api/v1/audit/verify", admin, "Check the audit log's hash chain; names the first bad entry", h.verifyAudit)
	h.s.Handle("POST /api/v1/retention", admin, "Delete finished runs beyond the newest N per runbook and environment (never the audit log)", h.applyRetention)
}

func (h *handlers) listAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := limitParam(r, store.DefaultRunLimit, store.MaxRunLimit)
	if err != nil {
		return err
	}
	f := store.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"), Limit: limit}
	if c := q.Get("cursor"); c != "" {
		if f.Before, err = strconv.ParseInt(c, 10, 64); err != nil {
			return server.BadRequest("cursor must be an audit sequence number, not %q", c)
		}
	}
	es, err := h.s.Store().ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	page := Page[audit.Entry]{Items: es}
	if len(es) == limit {
		page.NextCursor = strconv.FormatInt(es[len(es)-1].Seq, 10)
	}
	server.WriteJSON(w, http.StatusOK, page)
	return nil
}

func (h *handlers) verifyAudit(w http.ResponseWriter, r *http.Request) error {
	rep, err := h.s.Store().VerifyAudit(r.Context())
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, apitypes.AuditVerification{OK: rep.Problem == nil, Checked: rep.Checked, Head: rep.Head, Problem: rep.Problem})
	return nil
}

type retentionRequest struct {
	Keep int `json:"keep" api:"required"` // finished runs to keep per runbook and environment, at least 1
}

// retentionResult is the answer of POST /api/v1/retention.
type retentionResult struct {
	Deleted int `json:"deleted"` // runs deleted
}

func (h *handlers) applyRetention(w http.ResponseWriter, r *http.Request) error {
	var req retentionRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Keep < 1 {
		return server.BadRequest("keep must be at least 1")
	}
	n, err := h.s.ApplyRetention(r.Context(), req.Keep)
	if err != nil {
		return err
	}
	if err := h.s.AuditRequest(r, "retention.apply", "runs", map[string]string{"keep": strconv.Itoa(req.Keep), "deleted": strconv.Itoa(n)}); err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, retentionResult{Deleted: n})
	return nil
}
