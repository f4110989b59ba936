package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/engine"
	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/workspace"
)

func newRehearseCmd(e *env) *cobra.Command {
	var (
		envName, output string
		params          []string
		yes, mutate     bool
	)
	cmd := &cobra.Command{
		Use:   "rehearse FILE|TASK --env NAME [--mutate]",
		Short: "Run a runbook outside production; with --mutate, prove that each of its checks can fail",
		Long: `Rehearse runs a runbook in a non-protected environment, exactly as
` + "`opsbook run`" + ` does (a protected environment is refused). A rehearsal of a
task that succeeds meets the task's rehearsal gate for that snapshot.

--mutate then tests the runbook's checks. For every step that has an action
and a verify, expect or until check, opsbook rehearses a mutant: the runbook
up to that step, with that step's action replaced by a no-op (":"). A check
that still passes although the action did nothing cannot tell a step that
worked from one that did not; it is reported as a surviving mutant:

  step ` + "`restore`" + `: its verification passed although the action did nothing

After the rehearsal and after every mutant that did not roll back on its own,
the runbook's rollback document runs, so each mutant starts from the state
the rehearsal started from (a runbook without a rollback document must be
safe to run again). Mutants are recorded in a throwaway run store, never in
the workspace's, so they count for nothing; they approve every gate
themselves, as many approvals as it needs. The rehearsal itself is a real
run: a gate with approvers=2 waits for a second person's opsbook decide.

Exit status: 0 rehearsal succeeded and every mutant was caught; 1 the
rehearsal failed, a mutant survived, or a mutant could not reach its step;
2 bad input (a protected environment); 3 and 4 as for run.`,
		Example: `  opsbook rehearse ops/runbooks/postgres-backup-restore.md --env staging --param DATABASE=orders …
  opsbook rehearse 2026-03-01-postgres-upgrade-v13-to-v15 --env staging --mutate --yes`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if envName == "" {
				return badInput("--env is required: name a non-protected environment to rehearse in")
			}
			ws, err := findWorkspace(e)
			if err != nil {
				return badInput("%v", err)
			}
			environment, err := ws.Environment(envName)
			if err != nil {
				return badInput("%v", err)
			}
			if environment.Protected {
				return badInput("environment %s is protected: a rehearsal runs outside production; name a non-protected environment (protected: false in opsbook.yaml)", envName)
			}
			abs, rel, err := runbookPath(ws, args[0])
			if err != nil {
				return err
			}
			p, err := loadPlan(e, ws, abs, rel, envName)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			runOut := output
			if mutate && output == "json" {
				runOut = "text" // the report is the JSON; the run's own lines go to stderr
			}
			re := *e
			if mutate && output == "json" {
				re.stdout = e.stderr
			}
			rehearsal, err := runLocal(ctx, &re, ws, p, rel, params, localRun{output: runOut, yes: yes})
			if err != nil {
				if mutate {
					fmt.Fprintln(e.stderr, "opsbook: the rehearsal itself did not succeed, so its mutants would prove nothing; fix the runbook or the environment first")
				}
				return err
			}
			if !mutate {
				return nil
			}
			rep, err := mutateRunbook(ctx, e, ws, p, rehearsal.ID, output == "text")
			if err != nil {
				return err
			}
			if output == "json" {
				if err := writeJSON(e.stdout, rep); err != nil {
					return err
				}
			}
			if n := rep.failures(); n > 0 {
				return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%d of %d mutant(s) of %s were not caught: %s", n, len(rep.Mutants), rel, rep.summary())}
			}
			if output == "text" {
				fmt.Fprintf(e.stdout, "every check of %s failed when its action did nothing: %d mutant(s), 0 survived\n", rel, len(rep.Mutants))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&envName, "env", "e", "", "non-protected environment to rehearse in (required)")
	f.StringArrayVarP(&params, "param", "p", nil, "parameter NAME=VALUE (repeatable; not for secrets: use OPSBOOK_PARAM_NAME)")
	f.BoolVarP(&yes, "yes", "y", false, "approve gates and confirm manual steps as yourself with reason \"--yes\" (mutants always do)")
	f.BoolVar(&mutate, "mutate", false, "after the rehearsal, run one mutant per checked step with its action replaced by a no-op and report every check that still passes")
	outputFlag(cmd, &output, "text", "json") // json: the rehearsal's events on stderr, the mutation report on stdout
	return cmd
}

// Mutant outcomes.
const (
	mutantKilled   = "killed"   // a check of the step failed: the check works
	mutantSurvived = "survived" // every check of the step passed with a no-op action
	mutantNoReach  = "not reached"
)

// mutantResult is one mutant: which step's action was a no-op and what its
// checks did.
type mutantResult struct {
	Step   string   `json:"step"`
	Checks []string `json:"checks"` // verify, expect, until: the step's checks
	Result string   `json:"result"`
	Detail string   `json:"detail,omitempty"`
	Status string   `json:"run_status"`
}

type mutationReport struct {
	Runbook string         `json:"runbook"`
	Mutants []mutantResult `json:"mutants"`
}

func (r *mutationReport) failures() int {
	n := 0
	for _, m := range r.Mutants {
		if m.Result != mutantKilled {
			n++
		}
	}
	return n
}

func (r *mutationReport) summary() string {
	var s []string
	for _, m := range r.Mutants {
		if m.Result != mutantKilled {
			s = append(s, m.Step+" "+m.Result)
		}
	}
	return strings.Join(s, ", ")
}

// survivorText is the report line of a surviving mutant.
func survivorText(m mutantResult) string {
	what := map[string]string{"verify": "verification", "expect": "expected output", "until": "wait condition"}
	var names []string
	for _, c := range m.Checks {
		names = append(names, what[c])
	}
	verb := "passed"
	if len(names) > 1 {
		verb = "all passed"
	}
	return fmt.Sprintf("step `%s`: its %s %s although the action did nothing", m.Step, strings.Join(names, " and "), verb)
}

// mutableSteps are the indexes of the steps a mutant can test: an action
// and at least one check of its result.
func mutableSteps(d *runbook.Document) []int {
	var idx []int
	for i, s := range d.Steps {
		if s.Action != nil && (s.Verify != nil || s.Expect != nil || s.Until != nil) {
			idx = append(idx, i)
		}
	}
	return idx
}

// mutant is the document up to step i with step i's action a no-op.
//
// A step that declares outputs= would fail for not publishing them, which
// says nothing of its checks: its no-op publishes what the step published
// in the rehearsal (outputs), so the checks are what is judged.
func mutant(d *runbook.Document, i int, outputs map[string]string) *runbook.Document {
	m := *d
	m.Steps = append([]runbook.Step(nil), d.Steps[:i+1]...)
	s := &m.Steps[i]
	noop := *s.Action
	body := ":\n"
	for _, name := range slices.Sorted(maps.Keys(outputs)) {
		if slices.Contains(s.Outputs, name) {
			body += "printf '%s\\n' " + shellQuote(name+"="+outputs[name]) + ` >> "$OPSBOOK_OUTPUT"` + "\n"
		}
	}
	noop.Lang, noop.Body = "sh", body
	s.Action = &noop
	return &m
}

// shellQuote quotes v for sh as one word.
func shellQuote(v string) string { return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'" }

// rehearsalOutputs are the outputs each step of the rehearsal (run id, in
// the workspace's store) published, by step id.
func rehearsalOutputs(ctx context.Context, ws *workspace.Workspace, id string) (map[string]map[string]string, error) {
	st, err := openState(ctx, ws)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	state := runbook.NewRunState(id)
	for ev, err := range st.StateEvents(ctx, id, 0) {
		if err != nil {
			return nil, fmt.Errorf("read the rehearsal's run %s: %w", id, err)
		}
		state.Apply(ev)
	}
	out := map[string]map[string]string{}
	for _, s := range state.Steps {
		if len(s.Outputs) > 0 {
			out[s.ID] = s.Outputs
		}
	}
	return out, nil
}

// mutateRunbook restores the environment with the rollback document, then
// runs one mutant per checked step in a throwaway store.
func mutateRunbook(ctx context.Context, e *env, ws *workspace.Workspace, p *engine.Plan, rehearsal string, text bool) (*mutationReport, error) {
	dir, err := os.MkdirTemp("", "opsbook-mutants-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(ctx, filepath.Join(dir, "mutants.db"))
	if err != nil {
		return nil, fmt.Errorf("open the mutants' run store: %w", err)
	}
	defer st.Close()
	actor := lifecycle.Actor(ws.Dir)
	say := func(format string, args ...any) {
		if text {
			fmt.Fprintf(e.stdout, format+"\n", args...)
		}
	}
	restore := func(after string) error {
		if p.Rollback == nil {
			return nil
		}
		say("   restoring the environment with %s after %s", p.Document.Front.Rollback, after)
		rb := *p
		rb.Document, rb.Rollback = p.Rollback, nil
		rb.Params = map[string]string{}
		for _, d := range p.Rollback.Front.Params {
			if v, ok := p.Params[d.Name]; ok {
				rb.Params[d.Name] = v
			}
		}
		status, log, err := quietRun(ctx, st, ws, &rb, actor)
		if err != nil {
			return err
		}
		if status != runbook.RunSucceeded {
			return fmt.Errorf("the rollback document did not restore the environment after %s (run %s), so the next mutant would start from another state:\n%s", after, status, log)
		}
		return nil
	}
	if err := restore("the rehearsal"); err != nil {
		return nil, err
	}
	outputs, err := rehearsalOutputs(ctx, ws, rehearsal)
	if err != nil {
		return nil, err
	}
	rep := &mutationReport{Runbook: p.Runbook}
	steps := mutableSteps(p.Document)
	for n, i := range steps {
		step := p.Document.Steps[i]
		m := mutantResult{Step: step.ID}
		for _, c := range []struct {
			name string
			b    *runbook.Block
		}{{"expect", step.Expect}, {"until", step.Until}, {"verify", step.Verify}} {
			if c.b != nil {
				m.Checks = append(m.Checks, c.name)
			}
		}
		mp := *p
		mp.Document = mutant(p.Document, i, outputs[step.ID])
		var evs []runbook.Event
		status, log, err := quietRun(ctx, st, ws, &mp, actor, func(ev runbook.Event) { evs = append(evs, ev) })
		if err != nil {
			return nil, err
		}
		m.Status = string(status)
		m.Result, m.Detail = judgeMutant(step.ID, evs)
		if m.Result == mutantNoReach {
			m.Detail += "\n" + log
		}
		rep.Mutants = append(rep.Mutants, m)
		switch m.Result {
		case mutantKilled:
			say("mutant %d/%d, step `%s` a no-op: caught (%s)", n+1, len(steps), step.ID, m.Detail)
		case mutantSurvived:
			say("mutant %d/%d: SURVIVED: %s", n+1, len(steps), survivorText(m))
		default:
			say("mutant %d/%d, step `%s` a no-op: the run did not reach the step: %s", n+1, len(steps), step.ID, m.Detail)
		}
		if status != runbook.RunRolledBack || !rolledBackCleanly(evs) {
			if err := restore(fmt.Sprintf("the mutant of step %s", step.ID)); err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}

// judgeMutant reads a mutant run's events for its mutated step.
func judgeMutant(id string, evs []runbook.Event) (result, detail string) {
	failed := ""
	for _, ev := range evs {
		if ev.Step != id || ev.Data["phase"] == runbook.PhaseRollback {
			continue
		}
		switch ev.Type {
		case runbook.EventStepVerified:
			if ev.Data["result"] == "fail" && failed == "" {
				failed = ev.Data["kind"] + " failed: " + ev.Text
			}
		case runbook.EventStepFinished:
			if ev.Data["status"] == string(runbook.StepSucceeded) {
				return mutantSurvived, ""
			}
		}
	}
	if failed != "" {
		return mutantKilled, failed
	}
	for _, ev := range evs {
		if ev.Type == runbook.EventStepFinished && ev.Data["phase"] != runbook.PhaseRollback && ev.Data["status"] != string(runbook.StepSucceeded) {
			return mutantNoReach, fmt.Sprintf("step %s %s: %s", ev.Step, ev.Data["status"], ev.Text)
		}
	}
	return mutantNoReach, "the step never ran"
}

// rolledBackCleanly reports whether a run's rollback finished successfully.
func rolledBackCleanly(evs []runbook.Event) bool {
	for _, ev := range evs {
		if ev.Type == runbook.EventRollbackFinish {
			return ev.Data["status"] == string(runbook.StepSucceeded)
		}
	}
	return false
}

// quietRun starts and executes a plan in st, approving gates and manual
// steps, and returns its status and its text log (for when it went wrong).
func quietRun(ctx context.Context, st *store.Store, ws *workspace.Workspace, p *engine.Plan, actor string, observe ...func(runbook.Event)) (runbook.RunStatus, string, error) {
	eng, closeSSH, err := newRunEngine(st, ws, p)
	if err != nil {
		return "", "", err
	}
	defer closeSSH()
	run, err := eng.Start(ctx, p, engine.StartOptions{Actor: actor})
	if err != nil {
		return "", "", err
	}
	var buf lockedBuffer
	view := newRunView(&buf, "text", p)
	decider := &cliDecider{e: &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard}, yes: true, actor: actor, view: view, mutant: true, runID: run.ID}
	status, err := eng.Execute(ctx, run.ID, p, engine.ExecOptions{Actor: actor, Decider: decider, Observe: func(ev runbook.Event) {
		view.event(ev)
		for _, f := range observe {
			f(ev)
		}
	}})
	view.flush()
	return status, buf.String(), err
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
