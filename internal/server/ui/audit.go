package ui

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/opsbook/opsbook/internal/audit"
	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/store"
)

func (h *handlers) registerAudit() {
	h.s.Handle("GET /audit", auth.Need(auth.Admin, auth.NoScope), "UI: the audit log with filters", h.auditLog)
}

type auditData struct {
	Filter  store.AuditFilter
	Entries []audit.Entry
	Next    string
}

const auditPage = 100

func (h *handlers) auditLog(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := store.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"), Limit: auditPage + 1}
	if b, err := strconv.ParseInt(q.Get("before"), 10, 64); err == nil && b > 0 {
		f.Before = b
	}
	entries, err := h.s.Store().ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	d := auditData{Filter: f, Entries: entries}
	if len(entries) > auditPage {
		d.Entries = entries[:auditPage]
		next := url.Values{"actor": {f.Actor}, "action": {f.Action}, "target": {f.Target}, "before": {strconv.FormatInt(d.Entries[auditPage-1].Seq, 10)}}
		d.Next = "/audit?" + next.Encode()
	}
	return h.render(w, http.StatusOK, "audit", h.newPage(r, "nav_audit", "audit", d))
}
