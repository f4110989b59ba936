// Package engine executes runs: it drives a parsed runbook's steps in order
// through an executor, records every event durably in the store before the
// thing it describes proceeds, waits for people's decisions (gates, manual
// steps, guided failure) that may arrive from this process or another one,
// runs the rollback document when the policy or an operator says so, and
// resumes a run whose process died by replaying its event log.
//
// The engine does no terminal I/O. The CLI drives one run in-process; the
// server runs many at once on one Engine. Everything a viewer shows is
// derived from the event log with runbook.Replay.
package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opsbook/opsbook/internal/executor"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/snapshot"
	"github.com/opsbook/opsbook/internal/store"
)

// Config configures an Engine. Store is required; the rest has defaults.
type Config struct {
	Store *store.Store
	// Local runs steps whose target is the local host; the caller closes
	// it. Default: an executor.NewLocal per run, with the plan's workspace
	// as working directory, closed when the run's execution ends.
	Local executor.Executor
	// Remote, when set, returns the executor for one inventory host. Steps
	// whose target names hosts of the environment's inventory run through
	// fanout.Run with the step's parallel, batch and max_failures; Remote is
	// called once per host and attempt, inside the host's turn,
	// so it should reuse connections (sshexec.Pool.Executor does). When
	// nil, a plan with such steps is refused before it starts.
	Remote func(ctx context.Context, h runbook.Host) (executor.Executor, error)
	// OrphanGrace is how long a process group left running by a dead run
	// has between SIGTERM and SIGKILL when the run is resumed; default 5 s.
	OrphanGrace time.Duration
	// Owner names this process in run leases; default store.ProcessOwner().
	Owner string
	// LeaseTTL is how long a run's lease lasts without renewal (renewed
	// every third of it); default 15 s.
	LeaseTTL time.Duration
	// PollInterval is how often a waiting run reads the store for decisions
	// taken by other processes; decisions taken through this Engine's Decide
	// wake it at once. Default 500 ms.
	PollInterval time.Duration
	// FlushInterval bounds how long recorded output waits before it is
	// written; default 100 ms. ChunkSize is the largest step.output event;
	// default 64 KiB. MaxPending bounds output held in memory per step
	// before the command is slowed down to the store's pace; default 2 MiB
	// (a store write carries at most 1 MiB of it, while the next fills).
	FlushInterval time.Duration
	ChunkSize     int
	MaxPending    int
	// MaxBackoff caps the exponential backoff between retries; default 5 m.
	MaxBackoff time.Duration
	// RecordRetry is how long a run whose log could not be written (a full
	// disk) keeps trying to record why it stopped before it gives up and
	// returns an *UnrecordedError; default 30 s.
	RecordRetry time.Duration
	// PrometheusURL is the base URL guards query (…/api/v1/query); default
	// $OPSBOOK_PROMETHEUS_URL. When set it overrides the environment's
	// (Plan.PrometheusURL). HTTPClient defaults to one with a 10 s timeout.
	PrometheusURL string
	HTTPClient    *http.Client
}

// Engine runs runs. It is safe for concurrent use.
type Engine struct {
	cfg Config

	mu      sync.Mutex
	active  map[string]*runner       // runs executing in this process
	wakeups map[string]chan struct{} // notified when a decision is appended here
}

// New returns an engine.
func New(cfg Config) *Engine {
	if cfg.Owner == "" {
		cfg.Owner = store.ProcessOwner()
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 15 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 100 * time.Millisecond
	}
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = 64 << 10
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 2 << 20
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	if cfg.RecordRetry <= 0 {
		cfg.RecordRetry = 30 * time.Second
	}
	if cfg.PrometheusURL == "" {
		cfg.PrometheusURL = os.Getenv("OPSBOOK_PROMETHEUS_URL")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &Engine{cfg: cfg, active: map[string]*runner{}, wakeups: map[string]chan struct{}{}}
}

// Plan is what a run executes, resolved by the caller from the workspace:
// the parsed documents, the environment and the parameter values. The same
// plan (with secrets supplied again) is needed to resume a run.
type Plan struct {
	Document *runbook.Document
	Rollback *runbook.Document // nil when the runbook names none
	// Called holds the runbooks that call steps name, by the reference
	// written in the call block (its "runbook" attribute).
	Called      map[string]*runbook.Document
	Workspace   string // directory; commands run there
	Runbook     string // the runbook's path relative to the workspace
	Task        string
	Environment string
	Hosts       []runbook.Host    // the environment's inventory
	Variables   map[string]string // the environment's non-secret variables
	Secrets     map[string]string // secret variables: given to commands, masked everywhere
	// Params are the values given by the operator (not yet defaulted);
	// Start and Resume validate them with runbook.ResolveParams.
	Params   map[string]string
	Snapshot string // snapshot.Of(...).String()
	// Protected is the environment's protected flag: there a run whose
	// guards cannot be evaluated is refused before it starts.
	Protected bool
	// PrometheusURL is the environment's prometheus: base URL for guards;
	// Config.PrometheusURL overrides it.
	PrometheusURL string
}

// documents are the plan's runbook, its rollback plan and the runbooks it
// calls (by reference), those it has.
func (p *Plan) documents() []*runbook.Document {
	var docs []*runbook.Document
	for _, d := range []*runbook.Document{p.Document, p.Rollback} {
		if d != nil {
			docs = append(docs, d)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(p.Called)) {
		if d := p.Called[k]; d != nil {
			docs = append(docs, d)
		}
	}
	return docs
}

// StartOptions are the per-run choices of whoever starts it.
type StartOptions struct {
	Actor     string // who starts the run
	From      string // skip the steps before this one
	Emergency string // reason, when run as an emergency override
	// ID, when set, is the new run's id (store.RunIDFor): starting a run
	// whose id exists fails with store.ErrConflict, so a start that must
	// happen once (a scheduled trigger's tick) cannot happen twice.
	ID string
}

// Start validates the plan and records a new pending run with its
// run.started event. Nothing executes until Execute.
func (e *Engine) Start(ctx context.Context, p *Plan, o StartOptions) (runbook.Run, error) {
	params, err := e.checkPlan(p)
	if err != nil {
		return runbook.Run{}, err
	}
	if err := e.checkGuards(ctx, p); err != nil {
		return runbook.Run{}, err
	}
	if o.From != "" && !slices.ContainsFunc(p.Document.Steps, func(s runbook.Step) bool { return s.ID == o.From }) {
		return runbook.Run{}, fmt.Errorf("--from %s: the runbook has no step with that id (its steps: %s)", o.From, stepIDs(p.Document))
	}
	run := runbook.Run{
		ID:          o.ID,
		Workspace:   p.Workspace,
		Runbook:     p.Runbook,
		Task:        p.Task,
		Title:       p.Document.Title,
		Environment: p.Environment,
		Snapshot:    p.Snapshot,
		Params:      publicParams(p.Document.Front.Params, params),
		Status:      runbook.RunPending,
		CreatedBy:   o.Actor,
		Emergency:   o.Emergency,
	}
	data := map[string]string{"env": p.Environment, "snapshot": p.Snapshot, "user": o.Actor, "runbook": p.Runbook}
	if o.From != "" {
		data["from"] = o.From
	}
	if o.Emergency != "" {
		data["emergency"] = o.Emergency
	}
	m := newMasker(p, params)
	ev := runbook.Event{Type: runbook.EventRunStarted, Actor: o.Actor, Text: m.String(p.Document.Title), Data: data}
	// The run and its first event commit together (one fsync).
	if _, err := e.cfg.Store.CreateRunWithEvents(ctx, &run, ev); err != nil {
		return runbook.Run{}, fmt.Errorf("record the new run: %w", err)
	}
	return run, nil
}

func (e *Engine) checkPlan(p *Plan) (map[string]string, error) {
	if p == nil || p.Document == nil {
		return nil, errors.New("no runbook to run")
	}
	params, err := runbook.ResolveParams(p.Document.Front.Params, p.Params)
	if err != nil {
		return nil, &ParamsError{Err: err}
	}
	if err := checkVariableNames(p, params); err != nil {
		return nil, &ParamsError{Err: err}
	}
	if p.Rollback != nil {
		// A rollback that could not start must be found now, before
		// anything it would undo has run.
		if err := runbook.CheckRollbackParams(p.Document, p.Rollback, params); err != nil {
			return nil, &ParamsError{Err: err}
		}
	}
	// A check on every document the run may execute: the runbook, its
	// rollback, the runbooks it calls.
	for _, d := range p.documents() {
		if len(d.Steps) == 0 {
			return nil, &DocumentError{Err: fmt.Errorf("%s has no steps, so running it would do nothing and report success: put each block under an H3 step heading in the %q section (opsbook lint shows where)",
				d.Path, stepsTitle(d))}
		}
		for _, s := range d.Steps {
			if b, check := runbook.UnrunCheck(s); b != nil {
				return nil, &DocumentError{Err: fmt.Errorf("%s:%d:%d: %s", d.Path, b.Pos.Line, b.Pos.Col, runbook.UnrunCheckMessage(s, check))}
			}
		}
	}
	seen := map[string]bool{}
	for _, s := range p.Document.Steps {
		if seen[s.ID] {
			return nil, &DocumentError{Err: fmt.Errorf("%s:%d:%d: two steps have the id %q; give one of them another id attribute", p.Document.Path, s.Pos.Line, s.Pos.Col, s.ID)}
		}
		seen[s.ID] = true
	}
	if err := checkFinished(p); err != nil {
		return nil, err
	}
	if err := p.CheckTargets(); err != nil {
		return nil, &TargetError{Err: err}
	}
	if e.cfg.Remote == nil && p.RemoteSteps() {
		return nil, &TargetError{Err: errors.New("the runbook has steps on inventory hosts, but this engine has no SSH executor (engine.Config.Remote)")}
	}
	return params, nil
}

// checkVariableNames refuses a plan whose variables or parameters have names that
// runbook.CheckEnvName refuses: stored before the rule existed, or put in
// the database by hand. Every way in checks names already; this is the
// last gate before they become the environment of a command.
func checkVariableNames(p *Plan, params map[string]string) error {
	var errs []error
	for _, vars := range []map[string]string{p.Variables, p.Secrets} {
		for _, name := range slices.Sorted(maps.Keys(vars)) {
			if err := runbook.CheckEnvName(name); err != nil {
				errs = append(errs, fmt.Errorf("variable %w: rename or delete it (opsbook.yaml, the variables page or DELETE /api/v1/variables/{name})", err))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(params)) {
		if err := runbook.CheckEnvName(name); err != nil {
			errs = append(errs, fmt.Errorf("parameter %w: rename it in the runbook's front matter", err))
		}
	}
	return errors.Join(errs...)
}

// TargetError is a plan whose step targets cannot be resolved in its
// environment (no matching host, undeclared target, bad fan-out policy).
// Like a ParamsError it is bad input, found before anything runs.
type TargetError struct{ Err error }

func (e *TargetError) Error() string { return e.Err.Error() }
func (e *TargetError) Unwrap() error { return e.Err }

// UnfinishedError is a plan with template text a person has not written
// yet (<<FILL: …>> markers): a skeleton generated by `opsbook new` must not
// run by accident. The CLI maps it to exit status 2 and the server to 400.
type UnfinishedError struct{ Places []string }

func (e *UnfinishedError) Error() string {
	return fmt.Sprintf("the runbook is unfinished: write the %d <<FILL: …>> placeholder(s) before it can run (`opsbook lint` lists each):\n%s",
		len(e.Places), strings.Join(e.Places, "\n"))
}

// checkFinished refuses a plan whose runbook, rollback plan or called
// runbooks still hold placeholders.
func checkFinished(p *Plan) error {
	var places []string
	for _, d := range p.documents() {
		for i, pos := range d.Placeholder {
			what := ""
			if i < len(d.PlaceholderText) {
				what = ": " + d.PlaceholderText[i]
			}
			places = append(places, fmt.Sprintf("%s:%d:%d: placeholder%s", d.Path, pos.Line, pos.Col, what))
		}
	}
	if len(places) > 0 {
		return &UnfinishedError{Places: places}
	}
	return nil
}

// DocumentError is a document that cannot run as written (no steps, two
// steps with one id): bad input, found before anything runs. The CLI maps
// it to exit status 2 and the server to 400.
type DocumentError struct{ Err error }

func (e *DocumentError) Error() string { return e.Err.Error() }
func (e *DocumentError) Unwrap() error { return e.Err }

// stepsTitle is the heading of the section whose H3 headings are steps in
// d's kind, in d's language.
func stepsTitle(d *runbook.Document) string {
	role, ok := runbook.StepsSection[d.Front.Kind]
	if !ok {
		role = runbook.SectionSteps
	}
	spec, _ := runbook.SpecFor(role)
	return spec.Title(d.Lang)
}

// ParamsError is a plan whose parameters do not validate; the CLI maps it
// to exit status 2 and the server to 400.
type ParamsError struct{ Err error }

func (e *ParamsError) Error() string { return "invalid parameters:\n" + e.Err.Error() }
func (e *ParamsError) Unwrap() error { return e.Err }

// publicParams are the values that may be stored: secrets are left out.
func publicParams(defs []runbook.Param, values map[string]string) map[string]string {
	out := map[string]string{}
	for _, d := range defs {
		if v, ok := values[d.Name]; ok && !d.SecretParam() {
			out[d.Name] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func stepIDs(d *runbook.Document) string {
	var ids []string
	for _, s := range d.Steps {
		ids = append(ids, s.ID)
	}
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}

// Decider answers what a run waits for, on behalf of whoever is at the
// controls of this process: a terminal prompt, --yes, nobody. The engine
// asks it in a goroutine each time the run starts waiting and cancels ctx
// when the wait is resolved some other way (a decision from another process
// or the server's API). lastErr is why its previous answer to the same
// question was refused, or nil.
type Decider interface {
	Decide(ctx context.Context, w runbook.Waiting, lastErr error) (runbook.DecisionRequest, error)
}

// NoDecisionError, returned by a Decider, says that no one can decide here
// and the run must not wait: the wait fails with its message (the CLI
// without a terminal and without --yes).
type NoDecisionError struct{ Reason string }

func (e *NoDecisionError) Error() string { return e.Reason }

// ExecOptions are the per-execution hooks of Execute and Resume.
type ExecOptions struct {
	Actor string // who executes or resumes (recorded on run.resumed)
	// Decider answers waits from this process; nil waits for decisions
	// from elsewhere only (the server).
	Decider Decider
	// Observe is called, in order, with every event of the run as it is
	// stored, including decisions from other processes. It must not block
	// for long: output recording waits for it.
	Observe func(runbook.Event)
	// RetryInterrupted answers the question a resumed run asks about an
	// interrupted step that is not idempotent: "retry", "skip", "abort" or
	// "rollback" (offered when the plan has a rollback document); it also
	// answers an open on_fail=ask question.
	// Empty means ask the Decider.
	RetryInterrupted string
	// Parked, when set, is called with true when the run starts waiting for
	// a decision (gate, manual step, question) and with false once the wait
	// is over, before the run goes on; it may block, e.g. until a worker is
	// free again. A server uses it so that a waiting run holds no worker.
	Parked func(waiting bool)
	// FailedOnly (Resume only) reopens a failed run to re-run its failed
	// fan-out step on the hosts that did not succeed (failed or never
	// started), then goes on with the rest of the runbook.
	FailedOnly bool
}

// Execute runs a started run to its end (or until ctx is cancelled, which
// records the cancellation) and returns its final status. It holds the
// run's lease while it runs; a run executing elsewhere is a
// *store.LockedError.
func (e *Engine) Execute(ctx context.Context, runID string, p *Plan, o ExecOptions) (runbook.RunStatus, error) {
	return e.execute(ctx, runID, p, o, false)
}

// Resume continues a run whose process died (or that was stopped while
// waiting): it records what it found, skips completed steps, re-runs the
// interrupted step only if it is idempotent (else asks retry / skip /
// abort) and goes on. Outputs of completed steps are restored from the
// log. Secret parameters must be supplied again in the plan, and the plan's
// snapshot must be the one the run started with.
func (e *Engine) Resume(ctx context.Context, runID string, p *Plan, o ExecOptions) (runbook.RunStatus, error) {
	return e.execute(ctx, runID, p, o, true)
}

func (e *Engine) execute(ctx context.Context, runID string, p *Plan, o ExecOptions, resume bool) (runbook.RunStatus, error) {
	params, err := e.checkPlan(p)
	if err != nil {
		return "", err
	}
	st := e.cfg.Store
	run, err := st.GetRun(ctx, runID)
	if err != nil {
		return "", err
	}
	if run.Snapshot != p.Snapshot {
		return "", fmt.Errorf("run %s executes snapshot %s but the runbook is now %s: the document, its rollback or the environment's variables changed since the run started; restore them, or start a new run",
			run.ID, snapshot.ShortOf(run.Snapshot), snapshot.ShortOf(p.Snapshot))
	}
	for k, v := range run.Params {
		if params[k] != v {
			return "", fmt.Errorf("run %s was started with %s=%q, not %q; resume it with the same parameters", run.ID, k, v, params[k])
		}
	}
	if o.Actor == "" {
		o.Actor = run.CreatedBy
	}
	if o.Actor == "" {
		o.Actor = "unknown"
	}
	lease, err := st.AcquireRun(ctx, run.ID, e.cfg.Owner, e.cfg.LeaseTTL)
	if err != nil {
		return "", err
	}
	local, closeLocal := e.localExecutor(p)
	r := newRunner(e, run, p, params, o, lease, local)
	e.mu.Lock()
	e.active[run.ID] = r
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.active, run.ID)
		e.mu.Unlock()
		closeLocal()
		lease.Release(context.WithoutCancel(ctx))
	}()
	return r.drive(ctx, resume)
}

// Decide validates a decision against the run's current state (it must be
// waiting for exactly this kind of decision on this step; gate approvers
// must be distinct; a gate decision needs a reason) and records it. The run
// picks it up at once when it executes in this process, else at its next
// poll of the store.
func (e *Engine) Decide(ctx context.Context, runID string, d runbook.DecisionRequest) (runbook.Event, error) {
	st := e.cfg.Store
	run, err := st.GetRun(ctx, runID)
	if err != nil {
		return runbook.Event{}, err
	}
	state, err := e.State(ctx, run.ID)
	if err != nil {
		return runbook.Event{}, err
	}
	if err := state.CheckDecision(d); err != nil {
		return runbook.Event{}, err
	}
	ev := d.Event()
	e.mu.Lock()
	r := e.active[run.ID]
	e.mu.Unlock()
	if r != nil {
		ev.Text = r.mask.String(ev.Text)
	}
	stored, err := st.AppendEvents(ctx, run.ID, ev)
	if err != nil {
		return runbook.Event{}, fmt.Errorf("record decision on run %s: %w", run.ID, err)
	}
	if r != nil {
		r.wake()
	}
	return stored[0], nil
}

// Wake makes a run executing in this process read its log now, when it
// waits for a decision: another process recorded one (a server hears of
// it through the store's notifications). Runs not executing here are
// left alone.
func (e *Engine) Wake(runID string) {
	e.mu.Lock()
	r := e.active[runID]
	e.mu.Unlock()
	if r != nil {
		r.wake()
	}
}

// Note records an anomaly on a run (running or finished), for the
// timeline of the postmortem.
func (e *Engine) Note(ctx context.Context, runID, actor, text string) (runbook.Event, error) {
	if strings.TrimSpace(text) == "" {
		return runbook.Event{}, errors.New("a note needs some text")
	}
	run, err := e.cfg.Store.GetRun(ctx, runID)
	if err != nil {
		return runbook.Event{}, err
	}
	ev := runbook.Event{Type: runbook.EventAnomaly, Actor: actor, Text: text}
	e.mu.Lock()
	if r := e.active[run.ID]; r != nil {
		ev.Text = r.mask.String(ev.Text)
	}
	e.mu.Unlock()
	stored, err := e.cfg.Store.AppendEvents(ctx, run.ID, ev)
	if err != nil {
		return runbook.Event{}, fmt.Errorf("record note on run %s: %w", run.ID, err)
	}
	return stored[0], nil
}

// Cancel stops a run executing in this process: the running step's
// process group is killed and run.cancelled is recorded with actor and
// reason. It reports false when the run does not execute here.
func (e *Engine) Cancel(runID, actor, reason string) bool {
	e.mu.Lock()
	r := e.active[runID]
	e.mu.Unlock()
	if r == nil {
		return false
	}
	r.cancel(actor, reason)
	return true
}

// State replays a run's whole log a page at a time (the state measures
// output, it does not keep it), so a log of any size fits in memory.
func (e *Engine) State(ctx context.Context, runID string) (*runbook.RunState, error) {
	s := runbook.NewRunState(runID)
	for ev, err := range e.cfg.Store.StateEvents(ctx, runID, 0) {
		if err != nil {
			return nil, fmt.Errorf("read the log of run %s: %w", runID, err)
		}
		s.Apply(ev)
	}
	return s, nil
}
