package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/engine"
	"github.com/opsbook/opsbook/internal/lifecycle/gates"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/workspace"
)

// as makes git report email as user.email for the commands that follow:
// lifecycle.Actor asks git, and git reads GIT_CONFIG_COUNT/KEY/VALUE
// before any file, so tests need no opsbook-specific identity override.
func as(t *testing.T, email string) {
	t.Setenv("GIT_CONFIG_COUNT", "1")
	t.Setenv("GIT_CONFIG_KEY_0", "user.email")
	t.Setenv("GIT_CONFIG_VALUE_0", email)
}

const lifecycleConfig = `name: lifecycle-test
lang: en
environments:
  - name: staging
  - name: production
    protected: true
    windows:
      - {days: [sat], start: "06:00", end: "10:00", tz: UTC}
    freezes:
      - {from: 2025-12-20, to: 2026-01-04, reason: year-end freeze}
`

// twelveSteps is a local runbook of 12 steps: an anomaly is noted while the
// manual step waits, and the gate is decided by the Decider.
func twelveSteps(task string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "---\nkind: runbook\ntitle: Rotate the cache cluster\nsystem: cache\noperation: rotate\nchange: normal\nrollback: %s-rollback.md\n---\n\n# Rotate the cache cluster\n\n## Executive summary\n\nRotate.\n\n## Steps\n\n", task)
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&b, "### Step %d\n\n", i)
		switch i {
		case 6:
			b.WriteString("```manual {id=s6 estimate=2m}\nConfirm the dashboards are green.\n```\n\n")
		case 9:
			b.WriteString("```gate {id=s9 approvers=1}\nProceed if the hit rate recovered.\n```\n\n")
		default:
			fmt.Fprintf(&b, "```sh {id=s%d estimate=%ds}\necho step %d\n```\n\n```sh {verify}\ntrue\n```\n\n", i, 30+i, i)
		}
	}
	return b.String()
}

type scriptedDecider struct {
	eng   *engine.Engine
	runID *string
}

func (d scriptedDecider) Decide(ctx context.Context, w runbook.Waiting, _ error) (runbook.DecisionRequest, error) {
	req := runbook.DecisionRequest{Kind: w.Kind, Step: w.Step, Phase: w.Phase, Actor: "ann@example.com"}
	switch w.Kind {
	case runbook.WaitKindManual:
		if _, err := d.eng.Note(ctx, *d.runID, "ann@example.com", "hit rate dipped to 71% for 40 s"); err != nil {
			return req, err
		}
		req.Choice = runbook.ChoiceConfirmed
	case runbook.WaitKindGate:
		req.Choice, req.Reason = runbook.DecisionGo, "hit rate back at 98%"
	}
	return req, nil
}

// runTask runs the task's runbook in env the way opsbook run does for a
// task: admit, start, record, execute, record.
func runTask(t *testing.T, dir, task, envName, emergency string) (runbook.Run, int) {
	t.Helper()
	ws, err := workspace.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	rel := filepath.ToSlash(filepath.Join(workspace.ActiveDir, task, task+"-runbook.md"))
	var stderr strings.Builder
	tr, err := admitTaskRun(&env{stdout: &stderr, stderr: &stderr}, ws, rel, envName, emergency)
	if err != nil {
		if ee, ok := err.(*ExitError); ok {
			return runbook.Run{}, ee.Code
		}
		t.Fatalf("admit: %v\n%s", err, stderr.String())
	}
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(ws.StateDir(), "opsbook.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng := engine.New(engine.Config{Store: st, PollInterval: 20 * time.Millisecond, FlushInterval: 20 * time.Millisecond})
	envCfg, _ := ws.Environment(envName)
	p := &engine.Plan{Document: tr.task.Runbook, Rollback: tr.task.Rollback, Called: tr.task.Called, Workspace: ws.Dir,
		Runbook: rel, Task: task, Environment: envName, Variables: envCfg.Variables, Snapshot: tr.Snapshot()}
	run, err := eng.Start(ctx, p, engine.StartOptions{Actor: tr.actor, Emergency: emergency})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Started(run); err != nil {
		t.Fatal(err)
	}
	status, err := eng.Execute(ctx, run.ID, p, engine.ExecOptions{Actor: tr.actor, Decider: scriptedDecider{eng: eng, runID: &run.ID}})
	if err != nil {
		t.Fatal(err)
	}
	run, err = st.GetRun(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != status {
		t.Fatalf("stored status %s, Execute said %s", run.Status, status)
	}
	if err := tr.Finished(run); err != nil {
		t.Fatal(err)
	}
	return run, ExitOK
}

func statusJSON(t *testing.T, task string) gates.Report {
	t.Helper()
	code, out, errOut := runCLI(t, "", "status", task, "--output", "json")
	var rep gates.Report
	if code != ExitOK || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("status = %d\n%s%s", code, out, errOut)
	}
	return rep
}

func gate(rep gates.Report, id string) gates.Gate {
	for _, g := range rep.Gates {
		if g.ID == id {
			return g
		}
	}
	return gates.Gate{ID: id, Detail: "absent"}
}

// TestLifecycleScenario walks one task from creation to its postmortem.
func TestLifecycleScenario(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("OPSBOOK_STATE_DIR", "")
	as(t, "ann@example.com")
	t.Setenv("OPSBOOK_NOW", "2025-03-01T07:30:00Z") // a Saturday, inside the window
	if code, out, errOut := runCLI(t, dir, "init"); code != ExitOK {
		t.Fatalf("init = %d %s%s", code, out, errOut)
	}
	writeFile(t, filepath.Join(dir, "opsbook.yaml"), lifecycleConfig)
	code, out, errOut := runCLI(t, "", "new", "redis restart cluster", "--date", "2025-03-01", "--library", "generic")
	task := "2025-03-01-redis-restart-cluster"
	if code != ExitOK || !strings.Contains(out, task) {
		t.Fatalf("new = %d %s%s", code, out, errOut)
	}
	taskDir := filepath.Join(dir, "ops/active", task)
	writeFile(t, filepath.Join(taskDir, task+"-runbook.md"), twelveSteps(task))
	writeFile(t, filepath.Join(taskDir, task+"-rollback.md"), "---\nkind: rollback\ntitle: Roll back\n---\n\n# Roll back\n\n## Rollback steps\n\n### Undo\n\n```sh {id=undo}\necho undo\n```\n")

	if rep := statusJSON(t, task); rep.State != "planning" || rep.Environment != "production" || !strings.HasPrefix(rep.Snapshot, "sha256:") {
		t.Fatalf("new task: state %q env %q snapshot %q", rep.State, rep.Environment, rep.Snapshot)
	}

	t.Run("refused in production without reviews", func(t *testing.T) {
		if _, code := runTask(t, dir, task, "production", ""); code != ExitRefused {
			t.Fatalf("production run without reviews = %d, want %d", code, ExitRefused)
		}
		_, out, _ := runCLI(t, "", "status", task)
		if !strings.Contains(out, "[ ] reviews") || !strings.Contains(out, "0 of 2 approvals") {
			t.Errorf("status does not say the reviews are missing:\n%s", out)
		}
	})

	t.Run("self-approval refused", func(t *testing.T) {
		code, _, errOut := runCLI(t, "", "review", task, "--approve")
		if code != ExitRefused || !strings.Contains(errOut, "author") {
			t.Fatalf("self-approval = %d %s", code, errOut)
		}
		code, _, errOut = runCLI(t, "", "review", task, "--approve", "--as", "bob@example.com")
		if code != ExitBadInput || !strings.Contains(errOut, "--as is not accepted") {
			t.Fatalf("--as = %d %s", code, errOut)
		}
	})

	approve := func(t *testing.T, who string) {
		t.Helper()
		as(t, who)
		if code, out, errOut := runCLI(t, "", "review", task, "--approve", "--comment", "looks right"); code != ExitOK {
			t.Fatalf("review by %s = %d %s%s", who, code, out, errOut)
		}
	}
	t.Run("two reviews", func(t *testing.T) {
		approve(t, "bob@example.com")
		if rep := statusJSON(t, task); rep.State != "in review" || gate(rep, "reviews").Met {
			t.Fatalf("after one review: %s %+v", rep.State, gate(rep, "reviews"))
		}
		approve(t, "carol@example.com")
		if rep := statusJSON(t, task); rep.State != "approved" || !gate(rep, "reviews").Met {
			t.Fatalf("after two reviews: %s %+v", rep.State, gate(rep, "reviews"))
		}
	})

	t.Run("edit makes approvals stale", func(t *testing.T) {
		src, _ := os.ReadFile(filepath.Join(taskDir, task+"-runbook.md"))
		before := statusJSON(t, task).Snapshot
		writeFile(t, filepath.Join(taskDir, task+"-runbook.md"), strings.Replace(string(src), "echo step 3", "echo step 3 again", 1))
		rep := statusJSON(t, task)
		if rep.Snapshot == before || gate(rep, "reviews").Met || len(rep.Reviews.Stale) != 2 {
			t.Fatalf("after an edit: snapshot changed %v, reviews %+v, stale %d", rep.Snapshot != before, gate(rep, "reviews"), len(rep.Reviews.Stale))
		}
		_, out, _ := runCLI(t, "", "status", task)
		if !strings.Contains(out, "[stale: earlier snapshot") {
			t.Errorf("status does not mark stale reviews:\n%s", out)
		}
		approve(t, "bob@example.com")
		approve(t, "carol@example.com")
		if !gate(statusJSON(t, task), "reviews").Met {
			t.Fatal("fresh approvals not counted")
		}
	})

	t.Run("rehearsal in staging", func(t *testing.T) {
		as(t, "ann@example.com")
		if _, code := runTask(t, dir, task, "production", ""); code != ExitRefused {
			t.Fatalf("production run before a rehearsal = %d", code)
		}
		run, code := runTask(t, dir, task, "staging", "")
		if code != ExitOK || run.Status != runbook.RunSucceeded {
			t.Fatalf("staging run = %d %s", code, run.Status)
		}
		rep := statusJSON(t, task)
		if g := gate(rep, "rehearsal"); !g.Met || !strings.Contains(g.Detail, run.ID) {
			t.Fatalf("rehearsal gate %+v", g)
		}
		if rep.State != "rehearsed" {
			t.Errorf("state %q, want rehearsed", rep.State)
		}
	})

	t.Run("checklist ticked", func(t *testing.T) {
		if code, _, errOut := runCLI(t, "", "check", task, "no-such-item"); code != ExitBadInput || !strings.Contains(errOut, "backups-done") {
			t.Errorf("unknown item = %d %s", code, errOut)
		}
		for _, item := range workspace.PreExecutionItems {
			if code, out, errOut := runCLI(t, "", "check", task, item, "--note", "done for "+item); code != ExitOK {
				t.Fatalf("check %s = %d %s%s", item, code, out, errOut)
			}
		}
		runCLI(t, "", "check", task, "backups-done", "--uncheck")
		if g := gate(statusJSON(t, task), "checklist"); g.Met || !strings.Contains(g.Missing, "backups-done") {
			t.Fatalf("after uncheck: %+v", g)
		}
		runCLI(t, "", "check", task, "backups-done", "--note", "snapshot 2025-03-01 restored on staging")
		if rep := statusJSON(t, task); rep.State != "ready" || !gate(rep, "checklist").Met {
			t.Fatalf("all ticked: state %q %+v", rep.State, gate(rep, "checklist"))
		}
	})

	t.Run("window respected", func(t *testing.T) {
		t.Setenv("OPSBOOK_NOW", "2025-03-03T12:00:00Z") // Monday
		if _, code := runTask(t, dir, task, "production", ""); code != ExitRefused {
			t.Fatalf("run outside the window = %d", code)
		}
		g := gate(statusJSON(t, task), "window")
		if g.Met || !strings.Contains(g.Missing, "Sat 2025-03-08 06:00") {
			t.Fatalf("window gate %+v", g)
		}
		if _, code := runTask(t, dir, task, "production", "cache is on fire"); code != ExitRefused {
			t.Fatalf("emergency override of a normal change = %d", code)
		}
		t.Setenv("OPSBOOK_NOW", "2025-12-27T07:00:00Z") // a Saturday in the freeze
		if g := gate(statusJSON(t, task), "freeze"); g.Met || !strings.Contains(g.Detail, "year-end freeze") {
			t.Fatalf("freeze gate %+v", g)
		}
	})

	var prod runbook.Run
	t.Run("production run", func(t *testing.T) {
		prod, code = runTask(t, dir, task, "production", "")
		if code != ExitOK || prod.Status != runbook.RunSucceeded {
			t.Fatalf("production run = %d %s", code, prod.Status)
		}
		if rep := statusJSON(t, task); rep.State != "completed" {
			t.Errorf("state after the production run %q", rep.State)
		}
	})
	if prod.ID == "" {
		t.FailNow()
	}

	t.Run("checklist and postmortem with real times", func(t *testing.T) {
		code, md, errOut := runCLI(t, "", "checklist", task, "--run", prod.ID, "-o", "md", "--tz", "UTC")
		if code != ExitOK {
			t.Fatalf("checklist = %d %s", code, errOut)
		}
		started := prod.StartedAt
		if started.IsZero() {
			started = prod.CreatedAt
		}
		for _, want := range []string{prod.ID, "production", "| 1 | Step 1 (`s1`) | 31s | " + started.UTC().Format("15:04"),
			"| 9 | Step 9 (`s9`) |", "Go — ann@example.com", "[x] `backups-done`", "bob@example.com", "| Executor | | | |"} {
			if !strings.Contains(md, want) {
				t.Errorf("filled checklist lacks %q:\n%s", want, md)
			}
		}
		if code, out, errOut := runCLI(t, "", "postmortem", task, "--run", prod.ID, "--tz", "UTC"); code != ExitOK || !strings.Contains(out, "wrote") {
			t.Fatalf("postmortem = %d %s%s", code, out, errOut)
		}
		pm, err := os.ReadFile(filepath.Join(taskDir, task+"-postmortem.md"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"kind: postmortem", "## Timeline", "**Anomaly noted**: hit rate dipped to 71% for 40 s",
			"Gate `s9`: **Go**: hit rate back at 98%", "## Estimate vs actual", "| 12 | Step 12 (`s12`) | 42s |",
			"<<FILL: what was done", "## Deviations", "Run finished: succeeded"} {
			if !strings.Contains(string(pm), want) {
				t.Errorf("postmortem lacks %q:\n%s", want, pm)
			}
		}
		if code, _, errOut := runCLI(t, "", "postmortem", task, "--run", prod.ID); code != ExitBadInput || !strings.Contains(errOut, "--force") {
			t.Errorf("second postmortem = %d %s", code, errOut)
		}
	})
}
