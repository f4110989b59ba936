package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdminFormsDisableAndRevoke: from the admin pages an administrator
// disables a user (whose session stops working at once), cannot disable
// themselves, and revokes a team's grant (whose members lose it at once).
func TestAdminFormsDisableAndRevoke(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "server.db"))
	if r := h.do(viewer, "GET", "/api/v1/runs", nil); r.status != http.StatusOK {
		t.Fatalf("viewer before: %d", r.status)
	}
	if r := h.browse(h.creds[admin], "POST", "/admin/users/"+viewer+"/disabled", url.Values{"disabled": {"true"}}); r.status != http.StatusSeeOther {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}
	if r := h.do(viewer, "GET", "/api/v1/runs", nil); r.status != http.StatusUnauthorized {
		t.Errorf("a disabled user's session still works: %d", r.status)
	}
	if r := h.browse(h.creds[admin], "POST", "/admin/users/"+admin+"/disabled", url.Values{"disabled": {"true"}}); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "cannot disable yourself") {
		t.Errorf("self-disable: %d", r.status)
	}
	if r := h.browse(h.creds[admin], "POST", "/admin/users/"+viewer+"/disabled", url.Values{"disabled": {"false"}}); r.status != http.StatusSeeOther {
		t.Fatalf("enable: %d", r.status)
	}

	// The approver team's grants: revoke them all, then the approver cannot approve anywhere.
	var teams struct {
		Items []struct {
			Name   string
			Grants []struct{ ID int64 }
		}
	}
	h.must(http.StatusOK, admin, "GET", "/api/v1/teams", nil).json(t, &teams)
	revoked := 0
	for _, tm := range teams.Items {
		if tm.Name != approver {
			continue
		}
		for _, g := range tm.Grants {
			if r := h.browse(h.creds[admin], "POST", fmt.Sprintf("/admin/grants/%d/delete", g.ID), url.Values{}); r.status != http.StatusSeeOther {
				t.Fatalf("revoke grant %d: %d %s", g.ID, r.status, r.body)
			}
			revoked++
		}
	}
	if revoked == 0 {
		t.Fatalf("the approver team has no grants to revoke: %+v", teams)
	}
	if r := h.do(approver, "GET", "/api/v1/runbooks", nil); r.status != http.StatusForbidden {
		t.Errorf("approver after its grants were revoked: %d, want 403", r.status)
	}
}
