package gates

import (
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/workspace"
)

const reviewConfig = `name: t
environments:
  - name: staging
    reviewers: 1
  - name: production
    protected: true
    reviewers: 2
    rehearsal: false
`

func reviewTask(t *testing.T, recs ...lifecycle.Record) *Task {
	t.Helper()
	cfg, err := workspace.ParseConfig("opsbook.yaml", []byte(reviewConfig), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ws := &workspace.Workspace{Dir: t.TempDir(), Config: cfg}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	all := []lifecycle.Record{{Time: at, Type: lifecycle.Created, Actor: "alice@example.com"}}
	for i, r := range recs {
		r.Time = at.Add(time.Duration(i+1) * time.Minute)
		all = append(all, r)
	}
	return &Task{Name: "2026-03-01-db-upgrade-x", Records: all, Author: "alice@example.com", Snapshot: "sha256:current",
		Runbook: &runbook.Document{Front: runbook.FrontMatter{Kind: runbook.KindRunbook}},
		Items:   []workspace.ChecklistItem{{ID: "backups-done"}}, ws: ws}
}

func gateOf(t *testing.T, rep *Report, id string) Gate {
	t.Helper()
	for _, g := range rep.Gates {
		if g.ID == id {
			return g
		}
	}
	t.Fatalf("no %s gate in %+v", id, rep.Gates)
	return Gate{}
}

func approve(actor string) lifecycle.Record {
	return lifecycle.Record{Type: lifecycle.Review, Actor: actor, Verdict: lifecycle.Approve, Snapshot: "sha256:current"}
}

func verified(recs ...lifecycle.Record) *Verified {
	v := &Verified{}
	for i, r := range recs {
		r.Time = time.Date(2026, 3, 2, 9, i, 0, 0, time.UTC)
		r.Data = map[string]string{"verified": "server"}
		v.Records = append(v.Records, r)
	}
	return v
}

// TestProtectedReviewsCountOnlyVerified: one person set git's user.email
// to two addresses and approved twice, and ticked the checklist under a
// third (fault: an identity anyone can claim). Without a server that is
// all a workspace has, and it counts (labelled unverified); with a server,
// a protected environment counts only the server's signed-in reviewers —
// distinct users, not the author — and its ticks.
func TestProtectedReviewsCountOnlyVerified(t *testing.T) {
	now := time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC)
	task := reviewTask(t, approve("mallory@example.com"), approve("mallory+2@example.com"),
		lifecycle.Record{Type: lifecycle.Check, Actor: "m@example.com", Item: "backups-done"})

	local, err := task.Evaluate("production", now, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !gateOf(t, local, GateReviews).Met || !gateOf(t, local, GateChecklist).Met || local.Verified {
		t.Fatalf("without a server the git-email records count: %+v", local.Gates)
	}

	server, err := task.Evaluate("production", now, Options{Verified: &Verified{}})
	if err != nil {
		t.Fatal(err)
	}
	g := gateOf(t, server, GateReviews)
	if g.Met || !strings.Contains(g.Detail, "0 of 2") || !strings.Contains(g.Detail, "2 unverified git-email approval(s)") {
		t.Errorf("with a server, two git-email approvals by one person met the protected gate: %+v", g)
	}
	if gateOf(t, server, GateChecklist).Met {
		t.Errorf("with a server, a git-email tick met the protected checklist gate")
	}
	if !server.Verified || server.Unverified == nil || len(server.Unverified.Approvers) != 2 {
		t.Errorf("the report does not show the uncounted git-email reviews: verified=%v unverified=%+v", server.Verified, server.Unverified)
	}

	// The same user twice counts once; the author (alice, by the local part of
	// the created record's address) never counts.
	v := verified(approve("bob"), approve("bob"), approve("alice"),
		lifecycle.Record{Type: lifecycle.Check, Actor: "bob", Item: "backups-done"})
	rep, err := task.Evaluate("production", now, Options{Verified: v})
	if err != nil {
		t.Fatal(err)
	}
	if g := gateOf(t, rep, GateReviews); g.Met || !strings.Contains(g.Detail, "1 of 2") || !strings.Contains(g.Detail, "(bob)") {
		t.Errorf("bob twice and the author: %+v, want 1 of 2 (bob)", g)
	}
	if g := gateOf(t, rep, GateChecklist); !g.Met || !rep.Checklist[0].Verified {
		t.Errorf("bob's server tick: %+v %+v", g, rep.Checklist)
	}
	v = verified(approve("bob"), approve("carol"))
	if rep, _ := task.Evaluate("production", now, Options{Verified: v}); !gateOf(t, rep, GateReviews).Met {
		t.Errorf("two signed-in reviewers: %+v", rep.Gates)
	}
	// A later request for changes by a verified reviewer blocks.
	v = verified(approve("bob"), approve("carol"), lifecycle.Record{Type: lifecycle.Review, Actor: "carol", Verdict: lifecycle.RequestChanges, Snapshot: "sha256:current", Note: "step 4"})
	if rep, _ := task.Evaluate("production", now, Options{Verified: v}); gateOf(t, rep, GateReviews).Met {
		t.Errorf("carol's request for changes does not block: %+v", rep.Gates)
	}

	// An unprotected environment counts both kinds.
	rep, err = task.Evaluate("staging", now, Options{Verified: &Verified{}})
	if err != nil {
		t.Fatal(err)
	}
	if !gateOf(t, rep, GateReviews).Met || rep.Verified {
		t.Errorf("staging with a server: %+v", rep.Gates)
	}
}

func TestIsAuthor(t *testing.T) {
	for _, tt := range []struct {
		user, author string
		want         bool
	}{
		{"alice", "alice@example.com", true},
		{"Alice", "alice@example.com", true},
		{"alice@example.com", "alice@example.com", true},
		{"bob", "alice@example.com", false},
		{"alice", "", false},
		{"alice", "alice", true},
		{"alic", "alice@example.com", false},
	} {
		if got := IsAuthor(tt.user, tt.author); got != tt.want {
			t.Errorf("IsAuthor(%q, %q) = %v, want %v", tt.user, tt.author, got, tt.want)
		}
	}
}
