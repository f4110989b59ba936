package gates

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/workspace"
)

const calendarConfig = `name: t
environments:
  - name: staging
  - name: production
    protected: true
    windows:
      - {days: [sat], start: "06:00", end: "10:00", tz: UTC}
    freezes:
      - {from: 2026-12-20, to: 2027-01-04, reason: year-end freeze}
`

// TestAdmitStanding: a standing runbook's run in a protected environment
// keeps to the change calendar like a task's; standard changes and
// unprotected environments do not wait for a window; only a change:
// emergency runbook with a reason may run outside one.
func TestAdmitStanding(t *testing.T) {
	cfg, err := workspace.ParseConfig("opsbook.yaml", []byte(calendarConfig), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ws := &workspace.Workspace{Dir: t.TempDir(), Config: cfg}
	saturday := time.Date(2026, 11, 21, 7, 0, 0, 0, time.UTC) // inside the window
	monday := time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)   // outside it
	frozen := time.Date(2026, 12, 26, 7, 0, 0, 0, time.UTC)   // a Saturday in the freeze
	doc := func(change runbook.ChangeType) *runbook.Document {
		return &runbook.Document{Front: runbook.FrontMatter{Kind: runbook.KindRunbook, Change: change}}
	}
	tests := []struct {
		name      string
		env       string
		change    runbook.ChangeType
		now       time.Time
		emergency string
		refused   string // the unmet gate, "" when admitted
	}{
		{"normal change in the window", "production", runbook.ChangeNormal, saturday, "", ""},
		{"normal change outside the window", "production", runbook.ChangeNormal, monday, "", GateWindow},
		{"change type not set counts as normal", "production", "", monday, "", GateWindow},
		{"normal change in a freeze", "production", runbook.ChangeNormal, frozen, "", GateFreeze},
		{"standard change any time", "production", runbook.ChangeStandard, monday, "", ""},
		{"unprotected environment any time", "staging", runbook.ChangeNormal, monday, "", ""},
		{"emergency change with a reason", "production", runbook.ChangeEmergency, frozen, "primary is down", ""},
		{"emergency change without a reason", "production", runbook.ChangeEmergency, monday, "", GateWindow},
		{"override on a normal change", "production", runbook.ChangeNormal, monday, "in a hurry", GateEmergency},
		{"override on a standard change", "production", runbook.ChangeStandard, saturday, "in a hurry", GateEmergency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := AdmitStanding(ws, "ops/runbooks/x.md", doc(tt.change), tt.env, tt.now, tt.emergency)
			if tt.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var refusal *Refusal
			if !errors.As(err, &refusal) {
				t.Fatalf("admitted (%v), want refused by %s", err, tt.refused)
			}
			if !strings.Contains(err.Error(), "runbook ops/runbooks/x.md may not run in production now: ") || !strings.Contains(err.Error(), tt.refused) {
				t.Errorf("refusal %q does not name %s", err, tt.refused)
			}
			for _, g := range rep.Gates {
				if !g.Passes() && g.Missing == "" {
					t.Errorf("unmet gate %s does not say what to do", g.ID)
				}
			}
		})
	}
}

// TestRehearsalSuggestsAllowedEnvironment: the rehearsal gate proposes only
// non-protected environments the runbook may run in (front matter
// environments:), not the first unprotected one of the workspace.
func TestRehearsalSuggestsAllowedEnvironment(t *testing.T) {
	cfg, err := workspace.ParseConfig("opsbook.yaml", []byte("name: t\nenvironments:\n  - name: dev\n  - name: staging\n  - name: production\n    protected: true\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ws := &workspace.Workspace{Dir: t.TempDir(), Config: cfg}
	prod, _ := ws.Environment("production")
	for _, tt := range []struct {
		allowed []string
		want    string
	}{
		{[]string{"staging", "production"}, "run it in staging first: `opsbook run task --env staging`"},
		{nil, "run it in dev or staging first: `opsbook run task --env dev`"},
		{[]string{"production"}, "there is no non-protected environment the runbook may run in"},
	} {
		task := &Task{Name: "task", ws: ws, Runbook: &runbook.Document{Front: runbook.FrontMatter{Environments: tt.allowed}}}
		g := task.rehearsalGate(&Report{Short: "abc"}, prod)
		if !strings.HasPrefix(g.Missing, tt.want) {
			t.Errorf("environments %v: missing %q, want it to start %q", tt.allowed, g.Missing, tt.want)
		}
	}
}
