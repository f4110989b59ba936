package api_test

import (
	"context"
	"errors"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/store"
)

// TestTriggersThroughWebForm: an administrator creates a webhook trigger
// with the admin page's form, sees its signing secret once (the store keeps
// it sealed), and deletes it; both are audited like the API's.
func TestTriggersThroughWebForm(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "server.db"))
	h.serviceUser()
	form := url.Values{"name": {"deploy-hook"}, "kind": {"webhook"}, "runbook": {searchRunbook},
		"environment": {"staging"}, "service_user": {"svc"}}
	r := h.browse(h.creds[admin], "POST", "/admin/triggers", form)
	if r.status != 200 {
		t.Fatalf("create: status %d\n%s", r.status, r.body)
	}
	m := regexp.MustCompile(`<code class="secret">([^<]+)</code>`).FindSubmatch(r.body)
	if m == nil {
		t.Fatalf("the new webhook's secret is not shown:\n%s", r.body)
	}
	secret := string(m[1])
	ctx := context.Background()
	tr, err := h.st.GetTrigger(ctx, "deploy-hook")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Kind != store.TriggerWebhook || strings.Contains(tr.Secret, secret) {
		t.Fatalf("stored trigger %+v: wrong kind, or the secret is stored in clear", tr)
	}
	if page := h.browse(h.creds[admin], "GET", "/admin/triggers", nil); strings.Contains(string(page.body), secret) {
		t.Fatal("the secret is shown again on a later visit")
	}
	if r := h.browse(h.creds[admin], "POST", "/admin/triggers", url.Values{"name": {"bad"}, "kind": {"schedule"}, "runbook": {searchRunbook},
		"environment": {"staging"}, "schedule": {"not cron"}, "service_user": {"svc"}}); r.status != 400 {
		t.Errorf("a bad schedule: status %d, want 400", r.status)
	}
	if r := h.browse(h.creds[admin], "POST", "/admin/triggers/deploy-hook/delete", url.Values{}); r.status != 303 {
		t.Fatalf("delete: status %d\n%s", r.status, r.body)
	}
	if _, err := h.st.GetTrigger(ctx, "deploy-hook"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("trigger still there after delete: %v", err)
	}
	audit := string(h.browse(h.creds[admin], "GET", "/audit", nil).body)
	for _, action := range []string{"trigger.create", "trigger.delete"} {
		if !strings.Contains(audit, action) {
			t.Errorf("audit log lacks %s", action)
		}
	}
}
