package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/markdown"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

type harness struct {
	t   *testing.T
	dir string
	st  *store.Store
	eng *Engine
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "state", "opsbook.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &harness{t: t, dir: dir, st: st}
	h.eng = New(Config{Store: st, PollInterval: 20 * time.Millisecond, FlushInterval: 20 * time.Millisecond, LeaseTTL: 3 * time.Second})
	return h
}

const front = "---\nkind: runbook\ntitle: Test\n%s---\n\n# Test\n\n## Steps\n\n%s"

// doc writes and parses a runbook; extra is front matter lines.
func (h *harness) doc(name, extra, steps string) *runbook.Document {
	h.t.Helper()
	path := filepath.Join(h.dir, name)
	src := fmt.Sprintf(front, extra, steps)
	if strings.Contains(extra, "kind: rollback") {
		src = fmt.Sprintf("---\n%s---\n\n# Rollback\n\n## Rollback steps\n\n%s", extra, steps)
	}
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		h.t.Fatal(err)
	}
	d, diags, err := markdown.ParseFile(path)
	if err != nil {
		h.t.Fatal(err)
	}
	if runbook.HasErrors(diags) {
		h.t.Fatalf("runbook %s does not parse: %v", name, diags)
	}
	return d
}

func (h *harness) plan(d *runbook.Document, params map[string]string) *Plan {
	return &Plan{Document: d, Workspace: h.dir, Runbook: filepath.Base(d.Path), Environment: "test",
		Params: params, Snapshot: "sha256:test"}
}

// run starts and executes a plan to its end.
func (h *harness) run(p *Plan, so StartOptions, o ExecOptions) (runbook.RunStatus, *runbook.RunState) {
	h.t.Helper()
	ctx := context.Background()
	run, err := h.eng.Start(ctx, p, so)
	if err != nil {
		h.t.Fatal(err)
	}
	status, err := h.eng.Execute(ctx, run.ID, p, o)
	if err != nil {
		h.t.Fatal(err)
	}
	state, err := h.eng.State(ctx, run.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	if state.Status != status {
		h.t.Fatalf("Execute returned %s but the log says %s", status, state.Status)
	}
	got, err := h.st.GetRun(ctx, run.ID)
	if err != nil || got.Status != status {
		h.t.Fatalf("run index status %s, want %s (%v)", got.Status, status, err)
	}
	return status, state
}

// died starts a run of p and appends evs, the log of a process that died
// in the middle of it: the run is left running with nobody executing it.
func (h *harness) died(p *Plan, evs ...runbook.Event) runbook.Run {
	h.t.Helper()
	ctx := context.Background()
	run, err := h.eng.Start(ctx, p, StartOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.st.AppendEvents(ctx, run.ID, evs...); err != nil {
		h.t.Fatal(err)
	}
	run.Status = runbook.RunRunning
	if err := h.st.UpdateRun(ctx, run); err != nil {
		h.t.Fatal(err)
	}
	return run
}

func (h *harness) read(name string) string {
	b, _ := os.ReadFile(filepath.Join(h.dir, name))
	return string(b)
}

func step(title, info, body string, more ...string) string {
	s := fmt.Sprintf("### %s\n\n```%s\n%s\n```\n\n", title, info, body)
	for i := 0; i+1 < len(more); i += 2 {
		s += fmt.Sprintf("```%s\n%s\n```\n\n", more[i], more[i+1])
	}
	return s
}

func statuses(s *runbook.RunState) string {
	var out []string
	for _, st := range s.Steps {
		out = append(out, st.ID+"="+string(st.Status))
	}
	return strings.Join(out, " ")
}

func TestStepsInOrderWithOutputs(t *testing.T) {
	h := newHarness(t)
	d := h.doc("rb.md", "params:\n  WHO: {type: string, default: world}\n",
		step("A", "sh {id=a outputs=GREETING}", `echo "GREETING=hello $WHO" >> "$OPSBOOK_OUTPUT"; echo a >> order`)+
			step("B", "sh {id=b}", `echo "b $GREETING $OPSBOOK_STEP $OPSBOOK_ATTEMPT" >> order`))
	status, s := h.run(h.plan(d, map[string]string{"WHO": "ops"}), StartOptions{Actor: "ann"}, ExecOptions{})
	if status != runbook.RunSucceeded {
		t.Fatalf("status %s: %s", status, statuses(s))
	}
	if got := h.read("order"); got != "a\nb hello ops b 1\n" {
		t.Fatalf("order file = %q", got)
	}
	if s.Outputs["GREETING"] != "hello ops" || s.StartedBy != "ann" {
		t.Fatalf("outputs %v started by %q", s.Outputs, s.StartedBy)
	}
}

// The engine's own local executor is closed when the run ends: its private
// directory of scripts does not pile up in the temporary directory.
func TestRunLeavesNoTempDir(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	h := newHarness(t)
	d := h.doc("rb.md", "", step("A", "sh {id=a}", "echo a"))
	if status, s := h.run(h.plan(d, nil), StartOptions{}, ExecOptions{}); status != runbook.RunSucceeded {
		t.Fatalf("status %s: %s", status, statuses(s))
	}
	left, err := filepath.Glob(filepath.Join(tmp, "opsbook-exec-*"))
	if err != nil || len(left) != 0 {
		t.Fatalf("left behind after the run: %v (%v)", left, err)
	}
}

func TestPromisedOutputMissingFails(t *testing.T) {
	h := newHarness(t)
	d := h.doc("rb.md", "", step("A", "sh {id=a outputs=X}", "true"))
	status, s := h.run(h.plan(d, nil), StartOptions{}, ExecOptions{})
	if status != runbook.RunFailed || !strings.Contains(s.Step("a").Error, "promises output X") {
		t.Fatalf("status %s error %q", status, s.Step("a").Error)
	}
}

func TestRetriesAndChecks(t *testing.T) {
	// count increments a counter file and prints its value.
	const count = `n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; echo "try $n"`
	tests := []struct {
		name     string
		steps    string
		want     runbook.RunStatus
		attempts int
		checks   string
	}{
		{"retry until success", step("S", "sh {id=s retries=2 backoff=10ms}", count+`; [ $n -ge 3 ]`), runbook.RunSucceeded, 3, ""},
		{"retries exhausted", step("S", "sh {id=s retries=1 backoff=10ms}", count+`; exit 3`), runbook.RunFailed, 2, ""},
		{"verify decides", step("S", "sh {id=s}", "true", "sh {verify}", "exit 1"), runbook.RunFailed, 1, "verify=false"},
		{"verify passes", step("S", "sh {id=s}", "true", "sh {verify}", "true"), runbook.RunSucceeded, 1, "verify=true"},
		{"expect literal", step("S", "sh {id=s}", "echo 'all systems go'", "text {expect}", "systems go"), runbook.RunSucceeded, 1, "expect=true"},
		{"expect literal missing", step("S", "sh {id=s}", "echo 'all systems down'", "text {expect}", "systems go"), runbook.RunFailed, 1, "expect=false"},
		{"expect regex", step("S", "sh {id=s}", "echo 'replication lag: 0s'", "text {expect=regex}", `^replication lag: [0-9]+s$`), runbook.RunSucceeded, 1, "expect=true"},
		{"until polls", step("S", "sh {until interval=10ms timeout=5s id=s}", count+`; [ $n -ge 3 ]`), runbook.RunSucceeded, 1, "until=true"},
		{"until times out", step("S", "sh {until interval=10ms timeout=100ms id=s}", "false"), runbook.RunFailed, 1, "until=false"},
		{"timeout kills", step("S", "sh {id=s timeout=200ms}", "sleep 10"), runbook.RunFailed, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			start := time.Now()
			status, s := h.run(h.plan(h.doc("rb.md", "", tt.steps), nil), StartOptions{}, ExecOptions{})
			st := s.Step("s")
			if status != tt.want || st.Attempts != tt.attempts {
				t.Fatalf("status %s attempts %d, want %s %d (error %q)", status, st.Attempts, tt.want, tt.attempts, st.Error)
			}
			var checks []string
			for _, c := range st.Checks {
				checks = append(checks, fmt.Sprintf("%s=%v", c.Kind, c.Passed))
			}
			if strings.Join(checks, " ") != tt.checks {
				t.Errorf("checks %v, want %q", checks, tt.checks)
			}
			if tt.name == "timeout kills" && (time.Since(start) > 8*time.Second || !strings.Contains(st.Error, "timed out")) {
				t.Errorf("timeout: took %v, error %q", time.Since(start), st.Error)
			}
		})
	}
}

// Fault class: a command that fails in the middle of a block whose last
// line succeeds. Without errexit the step "succeeded" and the run went on.
func TestStrictShellFailsTheStep(t *testing.T) {
	tests := []struct {
		name  string
		steps string
		want  runbook.RunStatus
		ran   string
	}{
		{"sh: false mid-block fails", step("S", "sh {id=s}", "echo one >> order; false; echo two >> order"), runbook.RunFailed, "one\n"},
		{"bash: false | cat fails", step("S", "bash {id=s}", "false | cat; echo two >> order"), runbook.RunFailed, ""},
		{"verify: failing line fails the check", step("S", "sh {id=s}", "true", "sh {verify}", "false; true"), runbook.RunFailed, ""},
		{"until: failing line keeps polling", step("S", "sh {until interval=10ms timeout=100ms id=s}", "false; true"), runbook.RunFailed, ""},
		{"errexit=false opts out", step("S", "sh {id=s errexit=false}", "echo one >> order; false; echo two >> order"), runbook.RunSucceeded, "one\ntwo\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			status, s := h.run(h.plan(h.doc("rb.md", "", tt.steps), nil), StartOptions{}, ExecOptions{})
			if status != tt.want || h.read("order") != tt.ran {
				t.Fatalf("status %s order %q, want %s %q (error %q)", status, h.read("order"), tt.want, tt.ran, s.Step("s").Error)
			}
		})
	}
}

func TestFailurePolicies(t *testing.T) {
	rollback := "kind: rollback\ntitle: Undo\n"
	tests := []struct {
		name    string
		steps   string
		decider Decider
		want    runbook.RunStatus
		steps2  string // wanted step statuses
		ran     string // what the order file says
	}{
		{"abort stops the run", step("A", "sh {id=a}", "exit 1") + step("B", "sh {id=b}", "echo b >> order"),
			nil, runbook.RunFailed, "a=failed", ""},
		{"continue goes on", step("A", "sh {id=a on_fail=continue}", "exit 1") + step("B", "sh {id=b}", "echo b >> order"),
			nil, runbook.RunSucceeded, "a=failed b=succeeded", "b\n"},
		{"rollback runs the rollback document", step("A", "sh {id=a on_fail=rollback}", "exit 1") + step("B", "sh {id=b}", "echo b >> order"),
			nil, runbook.RunRolledBack, "a=failed", "undo\n"},
		{"ask: skip", step("A", "sh {id=a on_fail=ask}", "exit 1") + step("B", "sh {id=b}", "echo b >> order"),
			answer("skip"), runbook.RunSucceeded, "a=skipped b=succeeded", "b\n"},
		{"ask: roll back", step("A", "sh {id=a on_fail=ask}", "exit 1") + step("B", "sh {id=b}", "echo b >> order"),
			answer("rollback"), runbook.RunRolledBack, "a=failed", "undo\n"},
		{"ask: retry then abort", step("A", "sh {id=a on_fail=ask}", "echo a >> order; exit 1"),
			answer("retry", "abort"), runbook.RunFailed, "a=failed", "a\na\n"},
		{"ask with nobody to answer", step("A", "sh {id=a on_fail=ask}", "exit 1"),
			nobody{}, runbook.RunFailed, "a=failed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			p := h.plan(h.doc("rb.md", "rollback: undo.md\n", tt.steps), nil)
			p.Rollback = h.doc("undo.md", rollback, step("Undo", "sh {id=undo}", "echo undo >> order"))
			status, s := h.run(p, StartOptions{}, ExecOptions{Actor: "ann", Decider: tt.decider})
			if status != tt.want || statuses(s) != tt.steps2 {
				t.Fatalf("status %s steps %q, want %s %q", status, statuses(s), tt.want, tt.steps2)
			}
			if got := h.read("order"); got != tt.ran {
				t.Errorf("order = %q, want %q", got, tt.ran)
			}
			if tt.want == runbook.RunRolledBack && (s.Rollback == nil || s.Rollback.Status != runbook.StepSucceeded || s.RollbackStep("undo") == nil) {
				t.Errorf("rollback state %+v", s.Rollback)
			}
		})
	}
}

// answers replies to questions in turn, as ann, bob, carol…
type answers struct {
	mu      sync.Mutex
	choices []string
	asked   []runbook.Waiting
}

func answer(choices ...string) *answers { return &answers{choices: choices} }

var people = []string{"ann", "bob", "carol", "dave"}

func (a *answers) Decide(ctx context.Context, w runbook.Waiting, lastErr error) (runbook.DecisionRequest, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.choices) == 0 {
		<-ctx.Done()
		return runbook.DecisionRequest{}, ctx.Err()
	}
	n := len(a.asked)
	a.asked = append(a.asked, w)
	c := a.choices[0]
	a.choices = a.choices[1:]
	return runbook.DecisionRequest{Kind: w.Kind, Step: w.Step, Phase: w.Phase, Actor: people[n%len(people)], Choice: c, Reason: "test says " + c}, nil
}

type nobody struct{}

func (nobody) Decide(ctx context.Context, w runbook.Waiting, _ error) (runbook.DecisionRequest, error) {
	return runbook.DecisionRequest{}, &NoDecisionError{Reason: "no terminal to ask; rerun with --yes"}
}

func TestGates(t *testing.T) {
	gate := "### Go\n\n```gate {approvers=2%s}\nGo when green.\n```\n\n"
	after := step("After", "sh {id=after}", "echo after >> order")
	tests := []struct {
		name    string
		onFail  string
		decider Decider
		want    runbook.RunStatus
		ran     string
	}{
		{"two distinct Go decisions", "", answer("go", "go"), runbook.RunSucceeded, "after\n"},
		{"No-Go fails", "", answer("go", "no-go"), runbook.RunFailed, ""},
		{"No-Go rolls back when on_fail=rollback", " on_fail=rollback", answer("no-go"), runbook.RunRolledBack, "undo\n"},
		{"nobody to decide", "", nobody{}, runbook.RunFailed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			p := h.plan(h.doc("rb.md", "rollback: undo.md\n", fmt.Sprintf(gate, tt.onFail)+after), nil)
			p.Rollback = h.doc("undo.md", "kind: rollback\ntitle: Undo\n", step("Undo", "sh {id=undo}", "echo undo >> order"))
			status, s := h.run(p, StartOptions{}, ExecOptions{Decider: tt.decider})
			if status != tt.want || h.read("order") != tt.ran {
				t.Fatalf("status %s order %q, want %s %q; steps %s", status, h.read("order"), tt.want, tt.ran, statuses(s))
			}
		})
	}
}

// Fault class: a No-Go after the run changed something, in a runbook with
// a rollback plan. The documents promise "No-Go runs the rollback plan";
// the engine only failed the run and left the change in place.
func TestNoGoAfterAChangeRollsBack(t *testing.T) {
	change := step("Change", "sh {id=change}", "echo change >> order")
	gate := func(attrs string) string { return "### Go\n\n```gate" + attrs + "\nGo when green.\n```\n\n" }
	tests := []struct {
		name     string
		steps    string
		rollback bool
		want     runbook.RunStatus
		ran      string
	}{
		{"No-Go after a change rolls back", change + gate(""), true, runbook.RunRolledBack, "change\nundo\n"},
		{"the gate says abort", change + gate(" {on_fail=abort}"), true, runbook.RunFailed, "change\n"},
		{"nothing changed yet", gate("") + change, true, runbook.RunFailed, ""},
		{"no rollback document", change + gate(""), false, runbook.RunFailed, "change\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			front := ""
			if tt.rollback {
				front = "rollback: undo.md\n"
			}
			p := h.plan(h.doc("rb.md", front, tt.steps), nil)
			if tt.rollback {
				p.Rollback = h.doc("undo.md", "kind: rollback\ntitle: Undo\n", step("Undo", "sh {id=undo}", "echo undo >> order"))
			}
			var events []runbook.EventType
			status, s := h.run(p, StartOptions{}, ExecOptions{Decider: answer("no-go"), Observe: func(ev runbook.Event) { events = append(events, ev.Type) }})
			if status != tt.want || h.read("order") != tt.ran {
				t.Fatalf("status %s order %q, want %s %q", status, h.read("order"), tt.want, tt.ran)
			}
			if tt.want == runbook.RunRolledBack {
				if status.ExitCode() != 3 || !slices.Contains(events, runbook.EventRollbackStart) || !slices.Contains(events, runbook.EventRollbackFinish) ||
					!strings.Contains(s.Rollback.Reason, "No-Go at gate go") {
					t.Fatalf("exit %d events %v rollback %+v", status.ExitCode(), events, s.Rollback)
				}
			}
		})
	}
}

// TestDecisionFromAnotherWriter waits on a gate and a manual step with no
// Decider: the decisions arrive through Engine.Decide, as they would from
// the server's API, and a repeated approver is refused.
func TestDecisionFromAnotherWriter(t *testing.T) {
	h := newHarness(t)
	d := h.doc("rb.md", "", "### Go\n\n```gate {approvers=2}\nGo?\n```\n\n### Check\n\n```manual\nLook at the dashboard.\n```\n\n"+
		step("After", "sh {id=after}", "echo after >> order"))
	p := h.plan(d, nil)
	ctx := context.Background()
	run, err := h.eng.Start(ctx, p, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan runbook.Waiting, 10)
	done := make(chan runbook.RunStatus)
	go func() {
		st, err := h.eng.Execute(ctx, run.ID, p, ExecOptions{Observe: func(ev runbook.Event) {
			switch ev.Type {
			case runbook.EventGateWaiting, runbook.EventManualWaiting:
				waiting <- runbook.Waiting{Step: ev.Step}
			}
		}})
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	<-waiting
	decide := func(d runbook.DecisionRequest) error { _, err := h.eng.Decide(ctx, run.ID, d); return err }
	if err := decide(runbook.DecisionRequest{Kind: "gate", Step: "go", Actor: "ann", Choice: "go", Reason: "ok"}); err != nil {
		t.Fatal(err)
	}
	if err := decide(runbook.DecisionRequest{Kind: "gate", Step: "go", Actor: "ann", Choice: "go", Reason: "again"}); err == nil {
		t.Fatal("the same approver was accepted twice")
	}
	if err := decide(runbook.DecisionRequest{Kind: "gate", Step: "go", Actor: "bob", Choice: "go", Reason: "ok"}); err != nil {
		t.Fatal(err)
	}
	w := <-waiting
	if w.Step != "check" {
		t.Fatalf("waiting on %q", w.Step)
	}
	if err := decide(runbook.DecisionRequest{Kind: "manual", Step: "check", Actor: "carol", Reason: "dashboard green"}); err != nil {
		t.Fatal(err)
	}
	if st := <-done; st != runbook.RunSucceeded || h.read("order") != "after\n" {
		t.Fatalf("status %s order %q", st, h.read("order"))
	}
}

func TestCancelKillsProcessGroup(t *testing.T) {
	h := newHarness(t)
	d := h.doc("rb.md", "", step("Slow", "sh {id=slow}", "(sleep 2; echo leaked > leaked) & sleep 30"))
	p := h.plan(d, nil)
	ctx, cancel := context.WithCancel(context.Background())
	run, err := h.eng.Start(ctx, p, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	status, err := h.eng.Execute(ctx, run.ID, p, ExecOptions{Actor: "ann", Observe: func(ev runbook.Event) {
		if ev.Type == runbook.EventStepStarted {
			time.AfterFunc(200*time.Millisecond, cancel)
		}
	}})
	if err != nil || status != runbook.RunCancelled {
		t.Fatalf("status %s err %v", status, err)
	}
	if time.Since(started) > 10*time.Second {
		t.Fatalf("cancel took %v", time.Since(started))
	}
	s, _ := h.eng.State(context.Background(), run.ID)
	if s.Cancelled == nil || s.Cancelled.Actor != "ann" || s.Status != runbook.RunCancelled {
		t.Fatalf("cancel not recorded: %+v", s.Cancelled)
	}
	time.Sleep(2500 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(h.dir, "leaked")); err == nil {
		t.Fatal("a process of the cancelled step's group survived")
	}
}

func TestParamsValidatedBeforeAnything(t *testing.T) {
	h := newHarness(t)
	d := h.doc("rb.md", "params:\n  N: {type: int, required: true}\n", step("A", "sh {id=a}", "echo ran >> order"))
	_, err := h.eng.Start(context.Background(), h.plan(d, map[string]string{"N": "many"}), StartOptions{})
	var pe *ParamsError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), `parameter N: "many" is not an integer`) {
		t.Fatalf("error %v", err)
	}
	runs, _ := h.st.ListRuns(context.Background(), store.RunFilter{})
	if len(runs) != 0 || h.read("order") != "" {
		t.Fatal("something was recorded or ran")
	}
}

func TestFrom(t *testing.T) {
	h := newHarness(t)
	d := h.doc("rb.md", "", step("A", "sh {id=a}", "echo a >> order")+step("B", "sh {id=b}", "echo b >> order"))
	status, s := h.run(h.plan(d, nil), StartOptions{From: "b"}, ExecOptions{})
	if status != runbook.RunSucceeded || h.read("order") != "b\n" || statuses(s) != "a=skipped b=succeeded" {
		t.Fatalf("status %s order %q steps %s", status, h.read("order"), statuses(s))
	}
	if _, err := h.eng.Start(context.Background(), h.plan(d, nil), StartOptions{From: "zz"}); err == nil || !strings.Contains(err.Error(), "its steps: a, b") {
		t.Fatalf("unknown --from: %v", err)
	}
}

func TestMaskingEverywhere(t *testing.T) {
	h := newHarness(t)
	const secret = "hunter2-SECRET-value"
	// The secret is printed in two writes 50 ms apart, so it reaches the
	// recorder split across chunks; it is also published as an output, put
	// in an error message and echoed on stderr.
	d := h.doc("rb.md", "params:\n  TOKEN: secret\n",
		step("Leak", "sh {id=leak outputs=COPY}", `printf 'token=hunter2-SEC'; sleep 0.05; printf 'RET-value\n'; echo "$TOKEN" >&2; echo "COPY=$TOKEN" >> "$OPSBOOK_OUTPUT"`)+
			step("Fail", "sh {id=fail}", `echo "bad $TOKEN"; exit 1`, "text {expect}", secret))
	var seen, stdout bytes.Buffer
	status, s := h.run(h.plan(d, map[string]string{"TOKEN": secret}), StartOptions{}, ExecOptions{Observe: func(ev runbook.Event) {
		fmt.Fprintf(&seen, "%s|%s|%v\n", ev.Type, ev.Text, ev.Data)
		if ev.Type == runbook.EventStepOutput && ev.Step == "leak" && ev.Stream == "stdout" {
			stdout.WriteString(ev.Text)
		}
	}})
	if status != runbook.RunFailed {
		t.Fatalf("status %s", status)
	}
	if strings.Contains(seen.String(), "hunter2") || strings.Contains(seen.String(), "RET-value") {
		t.Fatalf("secret in events:\n%s", seen.String())
	}
	if stdout.String() != "token=***\n" || s.Outputs["COPY"] != "***" {
		t.Fatalf("masked output not as expected:\n%s", seen.String())
	}
	run, _ := h.st.ListRuns(context.Background(), store.RunFilter{})
	if len(run[0].Params) != 0 {
		t.Fatalf("secret param stored on the run: %v", run[0].Params)
	}
	h.st.Close()
	for _, f := range []string{"opsbook.db", "opsbook.db-wal"} {
		b, err := os.ReadFile(filepath.Join(h.dir, "state", f))
		if err != nil && f == "opsbook.db" {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("hunter2")) {
			t.Fatalf("the secret is in the raw database file %s", f)
		}
	}
}

// Fault class: a secret printed half on stdout and half on stderr. Each
// half alone is no secret, so stream-by-stream masking stored both in
// clear; masking the merged stream as recorded hides it.
func TestMaskingAcrossStreams(t *testing.T) {
	h := newHarness(t)
	d := h.doc("rb.md", "params:\n  TOKEN: secret\n",
		step("Leak", "sh {id=leak}", `printf 'token=hunter2-SEC'; sleep 0.05; printf 'RET-value\n' >&2; sleep 0.05; echo done`))
	var seen strings.Builder
	status, _ := h.run(h.plan(d, map[string]string{"TOKEN": "hunter2-SECRET-value"}), StartOptions{}, ExecOptions{Observe: func(ev runbook.Event) {
		if ev.Type == runbook.EventStepOutput {
			fmt.Fprintf(&seen, "%s:%q ", ev.Stream, ev.Text)
		}
	}})
	if status != runbook.RunSucceeded {
		t.Fatalf("status %s", status)
	}
	if got := seen.String(); strings.Contains(got, "hunter2") || strings.Contains(got, "RET-value") || !strings.Contains(got, "***") || !strings.Contains(got, "done") {
		t.Fatalf("recorded output: %s", got)
	}
	h.st.Close()
	for _, f := range []string{"opsbook.db", "opsbook.db-wal"} {
		b, _ := os.ReadFile(filepath.Join(h.dir, "state", f))
		if bytes.Contains(b, []byte("hunter2")) || bytes.Contains(b, []byte("RET-value")) {
			t.Fatalf("half of the secret is in the raw database file %s", f)
		}
	}
}

// askOnce answers the first question with choice, recording its options,
// and refuses to answer again.
type askOnce struct {
	choice  string
	options []string
	asked   int
}

func (a *askOnce) Decide(ctx context.Context, w runbook.Waiting, _ error) (runbook.DecisionRequest, error) {
	a.asked++
	if a.asked > 1 {
		return runbook.DecisionRequest{}, &NoDecisionError{Reason: "asked twice: the first answer was refused"}
	}
	a.options = w.Options
	return runbook.DecisionRequest{Kind: w.Kind, Step: w.Step, Phase: w.Phase, Actor: "ann", Choice: a.choice, Reason: "test"}, nil
}

// Fault class: a secret equal to a word of the engine's own vocabulary.
// Masking rewrote the options of the question ("retry,***,abort"), so the
// UI's buttons changed and the operator's answer was refused.
func TestMaskingLeavesDecisionsAlone(t *testing.T) {
	h := newHarness(t)
	d := h.doc("rb.md", "params:\n  TOKEN: secret\n", step("A", "sh {id=a on_fail=ask}", `echo "using $TOKEN"; exit 1`)+step("B", "sh {id=b}", "true"))
	dec := &askOnce{choice: "skip"}
	status, s := h.run(h.plan(d, map[string]string{"TOKEN": "skip"}), StartOptions{}, ExecOptions{Decider: dec})
	if status != runbook.RunSucceeded || statuses(s) != "a=skipped b=succeeded" {
		t.Fatalf("status %s steps %s; the question offered %v", status, statuses(s), dec.options)
	}
	if !slices.Contains(dec.options, "skip") {
		t.Fatalf("options %v: masked", dec.options)
	}
}

// Fault class: a secret too short to be masked safely ("t" masks every t
// of the log). It is refused where parameters are resolved, before the run.
func TestShortSecretRefused(t *testing.T) {
	h := newHarness(t)
	d := h.doc("rb.md", "params:\n  TOKEN: secret\n", step("A", "sh {id=a}", "echo ran >> order"))
	_, err := h.eng.Start(context.Background(), h.plan(d, map[string]string{"TOKEN": "t"}), StartOptions{})
	var pe *ParamsError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "at least 4 characters") || strings.Contains(err.Error(), `"t"`) {
		t.Fatalf("Start = %v", err)
	}
}

func TestLargeOutputIsChunked(t *testing.T) {
	h := newHarness(t)
	d := h.doc("rb.md", "", step("Big", "sh {id=big}", "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo done"))
	var events, maxLen, total int
	status, s := h.run(h.plan(d, nil), StartOptions{}, ExecOptions{Observe: func(ev runbook.Event) {
		if ev.Type == runbook.EventStepOutput {
			events++
			maxLen = max(maxLen, len(ev.Text))
			total += len(ev.Text)
		}
	}})
	if status != runbook.RunSucceeded || total != 3000006 || int64(total) != s.Step("big").OutputSize {
		t.Fatalf("status %s recorded %d bytes (state %d)", status, total, s.Step("big").OutputSize)
	}
	if maxLen > 64<<10 || events < 3000000/(64<<10) {
		t.Fatalf("%d events, largest %d bytes", events, maxLen)
	}
}

// Output that piles up while the store is busy (here: the first chunk's
// observer holds the recorder for a while) goes to the store in several
// writes of at most flushBatch each. Fault class: output lost, repeated
// or reordered where a backlog is split; every byte comes back in order.
func TestOutputBacklogRecordedInOrder(t *testing.T) {
	h := newHarness(t)
	d := h.doc("rb.md", "", step("Big", "sh {id=big}", "seq 1 600000"))
	held := false
	status, s := h.run(h.plan(d, nil), StartOptions{}, ExecOptions{Observe: func(ev runbook.Event) {
		if ev.Type == runbook.EventStepOutput && !held {
			held = true
			time.Sleep(300 * time.Millisecond) // the command fills MaxPending meanwhile
		}
	}})
	if status != runbook.RunSucceeded {
		t.Fatalf("status %s", status)
	}
	var got strings.Builder
	for ev, err := range h.st.AllEvents(context.Background(), s.RunID, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == runbook.EventStepOutput {
			got.WriteString(ev.Text)
		}
	}
	var want strings.Builder
	for i := 1; i <= 600000; i++ {
		want.WriteString(strconv.Itoa(i))
		want.WriteByte('\n')
	}
	if got.String() != want.String() {
		i := 0
		for i < min(got.Len(), want.Len()) && got.String()[i] == want.String()[i] {
			i++
		}
		t.Fatalf("recorded %d bytes, want %d; first difference at byte %d", got.Len(), want.Len(), i)
	}
}

func TestLeaseExcludesSecondExecutor(t *testing.T) {
	h := newHarness(t)
	d := h.doc("rb.md", "", step("Slow", "sh {id=slow}", "sleep 1"))
	p := h.plan(d, nil)
	ctx := context.Background()
	run, err := h.eng.Start(ctx, p, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.eng.Execute(ctx, run.ID, p, ExecOptions{Observe: func(ev runbook.Event) {
			if ev.Type == runbook.EventStepStarted {
				close(started)
			}
		}})
	}()
	<-started
	other := New(Config{Store: h.st, Owner: "other-process"})
	if _, err := other.Resume(ctx, run.ID, p, ExecOptions{}); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second executor: %v, want ErrLocked", err)
	}
	<-done
}

// TestResume fakes a process that died: the log says step a finished and
// step b started. Resume must not run a again; b runs again only when it is
// idempotent, else the operator is asked.
func TestResume(t *testing.T) {
	tests := []struct {
		name   string
		bAttrs string
		opts   ExecOptions
		want   runbook.RunStatus
		ran    string
		steps  string
	}{
		{"idempotent step re-runs", " idempotent", ExecOptions{}, runbook.RunSucceeded, "b\nc\n", "a=succeeded b=succeeded c=succeeded"},
		{"not idempotent: operator skips", "", ExecOptions{Decider: answer("skip")}, runbook.RunSucceeded, "c\n", "a=succeeded b=skipped c=succeeded"},
		{"not idempotent: operator retries", "", ExecOptions{Decider: answer("retry")}, runbook.RunSucceeded, "b\nc\n", "a=succeeded b=succeeded c=succeeded"},
		{"not idempotent: --answer abort", "", ExecOptions{RetryInterrupted: "abort"}, runbook.RunFailed, "", "a=succeeded b=failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			d := h.doc("rb.md", "params:\n  TOKEN: secret\n", step("A", "sh {id=a outputs=V}", "echo a >> order; echo V=1 >> $OPSBOOK_OUTPUT")+
				step("B", "sh {id=b"+tt.bAttrs+"}", `echo b >> order; [ "$V" = 1 ]`)+step("C", "sh {id=c}", "echo c >> order"))
			p := h.plan(d, map[string]string{"TOKEN": "s3cret"})
			ctx := context.Background()
			run := h.died(p,
				runbook.Event{Type: runbook.EventStepStarted, Step: "a", Host: "local", Attempt: 1},
				runbook.Event{Type: runbook.EventStepPublished, Step: "a", Host: "local", Attempt: 1, Data: map[string]string{"V": "1"}},
				runbook.Event{Type: runbook.EventStepFinished, Step: "a", Host: "local", Attempt: 1, Data: map[string]string{"status": "succeeded"}},
				runbook.Event{Type: runbook.EventStepStarted, Step: "b", Host: "local", Attempt: 1})
			orphans, _ := h.st.OrphanedRuns(ctx)
			if len(orphans) != 1 {
				t.Fatalf("the dead run is not found as interrupted: %v", orphans)
			}
			bad := h.plan(d, map[string]string{"TOKEN": "s3cret"})
			bad.Snapshot = "sha256:other"
			if _, err := h.eng.Resume(ctx, run.ID, bad, tt.opts); err == nil || !strings.Contains(err.Error(), "changed since the run started") {
				t.Fatalf("resume with another snapshot: %v", err)
			}
			status, err := h.eng.Resume(ctx, run.ID, p, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			s, _ := h.eng.State(ctx, run.ID)
			if status != tt.want || h.read("order") != tt.ran || statuses(s) != tt.steps {
				t.Fatalf("status %s order %q steps %s", status, h.read("order"), statuses(s))
			}
			if len(s.Interrupt) != 1 || !strings.Contains(s.Interrupt[0].Text, "step b was running (attempt 1)") || len(s.Resumes) != 1 {
				t.Fatalf("interruption not recorded: %+v %+v", s.Interrupt, s.Resumes)
			}
		})
	}
}

// Fault class: an interrupted step whose operator wants the run rolled
// back. resume --answer could only say retry, skip or abort.
func TestResumeAnswerRollback(t *testing.T) {
	h := newHarness(t)
	d := h.doc("rb.md", "rollback: undo.md\n", step("A", "sh {id=a}", "echo a >> order")+step("B", "sh {id=b}", "echo b >> order"))
	p := h.plan(d, nil)
	p.Rollback = h.doc("undo.md", "kind: rollback\ntitle: Undo\n", step("Undo", "sh {id=undo}", "echo undo >> order"))
	run := h.died(p, runbook.Event{Type: runbook.EventStepStarted, Step: "a", Host: "local", Attempt: 1})
	status, err := h.eng.Resume(context.Background(), run.ID, p, ExecOptions{RetryInterrupted: runbook.ChoiceRollback})
	if err != nil {
		t.Fatal(err)
	}
	if status != runbook.RunRolledBack || h.read("order") != "undo\n" {
		t.Fatalf("status %s order %q", status, h.read("order"))
	}
}

// TestGuardBreachRollsBack runs against a fake Prometheus (an httptest
// server that speaks the instant-query JSON API): the real one cannot run
// here.
func TestGuardBreachRollsBack(t *testing.T) {
	var mu sync.Mutex
	value := "0.5"
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" || r.URL.Query().Get("query") != "error_rate" {
			http.Error(w, `{"status":"error","error":"bad query"}`, 400)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"%s"]}]}}`, value)
	}))
	defer prom.Close()
	h := newHarness(t)
	h.eng = New(Config{Store: h.st, PollInterval: 20 * time.Millisecond, FlushInterval: 20 * time.Millisecond, PrometheusURL: prom.URL})
	guards := "rollback: undo.md\nguards:\n  - name: errors\n    query: error_rate\n    threshold: \"> 1\"\n    interval: 50ms\n    on_breach: rollback\n"
	d := h.doc("rb.md", guards, step("A", "sh {id=a}", "echo a >> order; sleep 0.3")+
		step("B", "sh {id=b}", "echo b >> order; sleep 0.3")+step("C", "sh {id=c}", "echo c >> order"))
	p := h.plan(d, nil)
	p.Rollback = h.doc("undo.md", "kind: rollback\ntitle: Undo\n", step("Undo", "sh {id=undo}", "echo undo >> order"))
	status, s := h.run(p, StartOptions{}, ExecOptions{Observe: func(ev runbook.Event) {
		if ev.Type == runbook.EventStepFinished && ev.Step == "a" {
			mu.Lock()
			value = "7"
			mu.Unlock()
		}
	}})
	if status != runbook.RunRolledBack || len(s.Breaches) != 1 || s.Breaches[0].Value != "7" {
		t.Fatalf("status %s breaches %+v", status, s.Breaches)
	}
	if got := h.read("order"); strings.Contains(got, "c\n") || !strings.HasSuffix(got, "undo\n") {
		t.Fatalf("order %q", got)
	}
}

// TestNoStepsIsRefused: a document whose blocks sit outside any step (a
// heading level off) has nothing the engine runs; starting it is refused
// instead of recording a run that "succeeded" without running a command.
// Fault class: a run that reports success for work it never did.
func TestNoStepsIsRefused(t *testing.T) {
	h := newHarness(t)
	d := h.doc("rb.md", "", "Prose only, and a block that belongs to no step:\n\n```bash\nfalse\n```\n")
	if len(d.Steps) != 0 {
		t.Fatalf("the document has %d steps, want none", len(d.Steps))
	}
	_, err := h.eng.Start(context.Background(), h.plan(d, nil), StartOptions{Actor: "t"})
	if err == nil || !strings.Contains(err.Error(), "has no steps") {
		t.Fatalf("Start of a document without steps: err = %v, want a refusal naming the missing steps", err)
	}

	// The same for the rollback document: a rollback whose steps sit
	// under the runbook's heading ("## Steps") runs nothing, and the run
	// would end rolled_back as if it had undone the change.
	p := h.plan(h.doc("rb2.md", "rollback: undo.md\n", step("Change", "sh {id=change on_fail=rollback}", "exit 1")), nil)
	p.Rollback = h.doc("undo.md", "kind: rollback\ntitle: Undo\n", "")
	if len(p.Rollback.Steps) != 0 {
		t.Fatalf("the rollback has %d steps, want none", len(p.Rollback.Steps))
	}
	_, err = h.eng.Start(context.Background(), p, StartOptions{Actor: "t"})
	var de *DocumentError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "undo.md has no steps") {
		t.Fatalf("Start with a rollback without steps: err = %v, want a DocumentError naming undo.md", err)
	}
}

// TestFailedRollbackIsNotRolledBack: a step fails, the rollback runs and
// one of its steps fails too. The run must not end rolled_back (exit 3,
// "the environment is back"): it ends failed (exit 1) and says the
// rollback did not succeed. Fault class: a status that promises a safe
// state the run did not reach.
func TestFailedRollbackIsNotRolledBack(t *testing.T) {
	for _, undoFails := range []bool{false, true} {
		h := newHarness(t)
		p := h.plan(h.doc("rb.md", "rollback: undo.md\n", step("Change", "sh {id=change on_fail=rollback}", "echo change >> order; exit 1")), nil)
		undo := "echo undo >> order"
		if undoFails {
			undo += "; exit 1"
		}
		p.Rollback = h.doc("undo.md", "kind: rollback\ntitle: Undo\n", step("Undo", "sh {id=undo}", undo))
		var finished string
		status, s := h.run(p, StartOptions{}, ExecOptions{Observe: func(ev runbook.Event) {
			if ev.Type == runbook.EventRunFinished {
				finished = ev.Text
			}
		}})
		want, code := runbook.RunRolledBack, 3
		if undoFails {
			want, code = runbook.RunFailed, 1
		}
		if status != want || status.ExitCode() != code || h.read("order") != "change\nundo\n" {
			t.Fatalf("undo fails=%v: status %s (exit %d) order %q, want %s (exit %d)", undoFails, status, status.ExitCode(), h.read("order"), want, code)
		}
		if undoFails && (s.Rollback == nil || s.Rollback.Status != runbook.StepFailed || !strings.Contains(finished, "the rollback did not succeed")) {
			t.Fatalf("a failed rollback is not on the record: rollback %+v, run.finished %q", s.Rollback, finished)
		}
	}
}

// TestCheckUnderManualStepIsRefused: a verify block under a manual step
// was silently skipped, so a session check let a connected client through
// a major upgrade. The engine refuses the document before anything runs,
// naming the block. Fault class: a check that never runs.
func TestCheckUnderManualStepIsRefused(t *testing.T) {
	h := newHarness(t)
	d := h.doc("rb.md", "", step("First", "sh {id=first}", "echo ran >> order")+
		"### Stop the apps\n\n```manual {id=stop}\nStop every client.\n```\n\n```sh {verify}\nexit 1\n```\n\n")
	_, err := h.eng.Start(context.Background(), h.plan(d, nil), StartOptions{Actor: "t"})
	var de *DocumentError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), `the verify block of step "stop" never runs`) {
		t.Fatalf("Start: err = %v, want a DocumentError naming the unrun verify", err)
	}
	if h.read("order") != "" {
		t.Fatalf("a step ran: %q", h.read("order"))
	}
}

// lateDecider, asked, waits for the run to give up on it and then takes a
// while to return (a prompt still being printed).
type lateDecider struct{ returned atomic.Bool }

func (d *lateDecider) Decide(ctx context.Context, w runbook.Waiting, _ error) (runbook.DecisionRequest, error) {
	<-ctx.Done()
	time.Sleep(100 * time.Millisecond)
	d.returned.Store(true)
	return runbook.DecisionRequest{}, ctx.Err()
}

// A run cancelled while it waits for a decision returns only after its
// Decider has: fault class, a prompt or hint the Decider writes after the
// caller has printed the run's end (and, in the CLI, two goroutines writing
// the same stderr).
func TestCancelledRunWaitsForItsDecider(t *testing.T) {
	h := newHarness(t)
	d := h.doc("rb.md", "", "### Go\n\n```gate {id=go}\nGo?\n```\n")
	p := h.plan(d, nil)
	ctx, cancel := context.WithCancel(context.Background())
	run, err := h.eng.Start(ctx, p, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dec := &lateDecider{}
	status, err := h.eng.Execute(ctx, run.ID, p, ExecOptions{Decider: dec, Observe: func(ev runbook.Event) {
		if ev.Type == runbook.EventGateWaiting {
			cancel()
		}
	}})
	if status != runbook.RunCancelled && err == nil {
		t.Fatalf("Execute = %s, %v; want cancelled", status, err)
	}
	if !dec.returned.Load() {
		t.Fatal("Execute returned while its Decider was still deciding")
	}
}
