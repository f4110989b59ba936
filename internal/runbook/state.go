package runbook

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Phases of a run. Events of the rollback document's steps carry
// Data["phase"] = PhaseRollback; events without a phase belong to the main
// runbook.
const (
	PhaseMain     = ""
	PhaseRollback = "rollback"
)

// Decision choices, as recorded in Data["decision"] (gates) and
// Data["choice"] (guided-failure questions).
const (
	DecisionGo   = "go"
	DecisionNoGo = "no-go"
	ChoiceRetry  = "retry"
	// ChoiceRetryFailed re-runs a fan-out step on the hosts that did not
	// succeed (failed or never started) only.
	ChoiceRetryFailed = "retry-failed"
	ChoiceSkip        = "skip"
	ChoiceAbort       = "abort"
	ChoiceRollback    = "rollback"
	ChoiceContinue    = "continue" // offered after a guard breach
	ChoiceConfirmed   = "confirmed"
)

// What a run can wait for (Waiting.Kind, Decision.Kind).
const (
	WaitKindGate   = "gate"
	WaitKindManual = "manual"
	WaitKindAsk    = "ask"
)

// RunState is what a run's event log says about it: the single derivation
// that the terminal view, `opsbook show`, the server, the checklist and the
// postmortem all read. Build it with Replay, or keep one up to date with
// Apply as events arrive.
type RunState struct {
	RunID       string    `json:"run_id"`
	Status      RunStatus `json:"status"`
	Title       string    `json:"title,omitempty"`
	Environment string    `json:"environment,omitempty"`
	Snapshot    string    `json:"snapshot,omitempty"`
	StartedBy   string    `json:"started_by,omitempty"`
	From        string    `json:"from,omitempty"` // --from: the first step that was meant to run
	StartedAt   time.Time `json:"started_at,omitzero"`
	FinishedAt  time.Time `json:"finished_at,omitzero"`
	LastSeq     int64     `json:"last_seq"`
	LastEvent   time.Time `json:"last_event,omitzero"`

	// Steps of the main runbook and of the rollback document, in the order
	// they first appear in the log.
	Steps    []*StepState `json:"steps"`
	Rollback *Rollback    `json:"rollback,omitempty"`

	// Outputs published so far by the main runbook's steps; a later step's
	// value wins, as it would in the environment of the next command.
	Outputs map[string]string `json:"outputs,omitempty"`

	Waiting   *Waiting    `json:"waiting,omitempty"` // what the run waits for now, if anything
	Decisions []Decision  `json:"decisions,omitempty"`
	Anomalies []Note      `json:"anomalies,omitempty"`
	Breaches  []Breach    `json:"breaches,omitempty"`
	Watch     *Watch      `json:"watch,omitempty"` // the watch after a successful run
	Resumes   []Note      `json:"resumes,omitempty"`
	Interrupt []Note      `json:"interruptions,omitempty"`
	Cancelled *Note       `json:"cancelled,omitempty"`
	Unknown   []EventType `json:"unknown,omitempty"` // event types this version does not know, for diagnostics
	steps     stepIndex   // main phase
	rbSteps   stepIndex   // rollback phase
	waitStep  *StepState  // the step Waiting belongs to
}

type stepIndex map[string]*StepState

// Watch is the watch after a successful run: its guards are evaluated
// until Until; breaches during it are in RunState.Breaches with Watch set.
type Watch struct {
	Until    time.Time `json:"until"`
	Guards   []string  `json:"guards,omitempty"`
	Breaches int       `json:"breaches"`
	Finished bool      `json:"finished"`
	Ended    string    `json:"ended,omitempty"` // how it ended, in words
}

// Left is how long the watch still runs at now (0 when over).
func (w *Watch) Left(now time.Time) time.Duration {
	if w == nil || w.Finished || !now.Before(w.Until) {
		return 0
	}
	return w.Until.Sub(now)
}

// Rollback is the rollback phase of a run.
type Rollback struct {
	Reason     string       `json:"reason"`
	Document   string       `json:"document,omitempty"`
	Status     StepStatus   `json:"status"` // running until rollback.finished says otherwise
	StartedAt  time.Time    `json:"started_at,omitzero"`
	FinishedAt time.Time    `json:"finished_at,omitzero"`
	Steps      []*StepState `json:"steps"`
}

// StepState is what happened to one step.
type StepState struct {
	ID         string            `json:"id"`
	Phase      string            `json:"phase,omitempty"`
	Status     StepStatus        `json:"status"`
	Attempts   int               `json:"attempts"` // highest attempt started
	StartedAt  time.Time         `json:"started_at,omitzero"`
	FinishedAt time.Time         `json:"finished_at,omitzero"`
	ExitCode   *int              `json:"exit_code,omitempty"`
	Error      string            `json:"error,omitempty"`
	SkipReason string            `json:"skip_reason,omitempty"`
	Hosts      []*HostState      `json:"hosts,omitempty"`
	Checks     []Check           `json:"checks,omitempty"`
	Retries    []Retry           `json:"retries,omitempty"`
	Outputs    map[string]string `json:"outputs,omitempty"`
	// SecretOutputs are outputs the step published whose values held a
	// secret: they are stored masked, so a resumed run cannot restore them.
	SecretOutputs []string   `json:"secret_outputs,omitempty"`
	Decisions     []Decision `json:"decisions,omitempty"`
	OutputSize    int64      `json:"output_bytes"`     // bytes of recorded (masked) output
	Resumed       bool       `json:"resumed,omitzero"` // was running when the run was interrupted
	// Fanout is set for a step spread over inventory hosts: its host-less
	// step.started lists the hosts (Hosts then holds one entry per host,
	// pending until started), its host-less step.finished is the step's
	// result, and each host's outputs stay with the host.
	Fanout bool `json:"fanout,omitzero"`
	// Policy is the fan-out policy of the last attempt (parallel, batch,
	// max_failures), for people reading the log.
	Policy map[string]string `json:"policy,omitempty"`
}

// Duration is how long the step took, or has taken until now if it is still
// running (zero if it never started).
func (s *StepState) Duration(now time.Time) time.Duration {
	if s.StartedAt.IsZero() {
		return 0
	}
	if s.FinishedAt.IsZero() {
		return now.Sub(s.StartedAt)
	}
	return s.FinishedAt.Sub(s.StartedAt)
}

// Done reports whether the step needs no further execution: it finished
// (whatever the outcome) or was skipped.
func (s *StepState) Done() bool {
	switch s.Status {
	case StepSucceeded, StepFailed, StepSkipped:
		return true
	}
	return false
}

// Host returns the state of the step on one host, or nil.
func (s *StepState) Host(name string) *HostState {
	for _, h := range s.Hosts {
		if h.Host == name {
			return h
		}
	}
	return nil
}

// HostState is one step on one host.
type HostState struct {
	Host       string     `json:"host"`
	Status     StepStatus `json:"status"`
	Attempts   int        `json:"attempts"`
	StartedAt  time.Time  `json:"started_at,omitzero"`
	FinishedAt time.Time  `json:"finished_at,omitzero"`
	ExitCode   *int       `json:"exit_code,omitempty"`
	Error      string     `json:"error,omitempty"`
	OutputSize int64      `json:"output_bytes"`
	Batch      int        `json:"batch,omitempty"` // rolling batch of the last attempt (fan-out)
	// Outputs are what the host published (fan-out steps).
	Outputs map[string]string `json:"outputs,omitempty"`
}

// NotStarted reports whether a fan-out step's host was planned but never
// started (its step stopped scheduling after too many failures).
func (h *HostState) NotStarted() bool { return h.Status == StepPending }

// Check is one verification result (verify, expect or until).
type Check struct {
	Kind   string    `json:"kind"`
	Host   string    `json:"host,omitempty"`
	Passed bool      `json:"passed"`
	Detail string    `json:"detail,omitempty"`
	Time   time.Time `json:"time"`
}

// Retry records that a failed attempt is followed by another one.
type Retry struct {
	NextAttempt int       `json:"next_attempt"`
	Backoff     string    `json:"backoff,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Time        time.Time `json:"time"`
}

// Decision is a person's (or --yes's) answer to a gate, a manual step or a
// guided-failure question.
type Decision struct {
	Seq    int64     `json:"seq"`
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"` // gate | manual | ask
	Step   string    `json:"step"`
	Phase  string    `json:"phase,omitempty"`
	Actor  string    `json:"actor"`
	Choice string    `json:"choice"` // go | no-go | confirmed | retry | skip | abort | rollback | continue
	Reason string    `json:"reason,omitempty"`
}

// Note is a timestamped remark: an anomaly, a resume, an interruption.
type Note struct {
	Seq   int64     `json:"seq"`
	Time  time.Time `json:"time"`
	Actor string    `json:"actor,omitempty"`
	Text  string    `json:"text,omitempty"`
}

// Breach is a guard that crossed its threshold.
type Breach struct {
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Guard     string    `json:"guard"`
	Value     string    `json:"value"`
	Threshold string    `json:"threshold"`
	Action    string    `json:"action"` // pause | rollback
	Step      string    `json:"step,omitempty"`
	Text      string    `json:"text,omitempty"`
	Watch     bool      `json:"watch,omitempty"` // during the watch after the run succeeded
}

// Waiting is an open question the run cannot proceed without.
type Waiting struct {
	Kind      string     `json:"kind"` // gate | manual | ask
	Step      string     `json:"step"`
	Phase     string     `json:"phase,omitempty"`
	Seq       int64      `json:"seq"` // of the *.waiting event
	Since     time.Time  `json:"since"`
	Text      string     `json:"text,omitempty"`
	Approvers int        `json:"approvers,omitempty"` // gate: distinct Go decisions needed
	Approvals []Decision `json:"approvals,omitempty"` // gate: distinct Go decisions so far
	Roles     []string   `json:"roles,omitempty"`     // gate: the teams that may decide (roles=); empty means any approver
	Options   []string   `json:"options,omitempty"`   // ask: the allowed choices
	Guard     string     `json:"guard,omitempty"`     // ask: the breached guard it is about (Step is then empty)
}

// Replay folds a run's events, in Seq order, into its state.
func Replay(events []Event) *RunState {
	s := NewRunState("")
	for _, ev := range events {
		s.Apply(ev)
	}
	return s
}

// NewRunState returns the state of a run with no events yet.
func NewRunState(runID string) *RunState {
	return &RunState{RunID: runID, Status: RunPending, steps: stepIndex{}, rbSteps: stepIndex{}}
}

// Step returns the state of a main-runbook step, or nil if the log never
// mentions it.
func (s *RunState) Step(id string) *StepState { return s.steps[id] }

// RollbackStep returns the state of a rollback-document step, or nil.
func (s *RunState) RollbackStep(id string) *StepState { return s.rbSteps[id] }

// StepIn returns the state of a step of the given phase, or nil.
func (s *RunState) StepIn(phase, id string) *StepState {
	if phase == PhaseRollback {
		return s.rbSteps[id]
	}
	return s.steps[id]
}

func (s *RunState) step(ev Event) *StepState {
	phase := ev.Data["phase"]
	idx, list := s.steps, &s.Steps
	if phase == PhaseRollback {
		if s.Rollback == nil {
			s.Rollback = &Rollback{Status: StepRunning}
		}
		idx, list = s.rbSteps, &s.Rollback.Steps
	}
	st := idx[ev.Step]
	if st == nil {
		st = &StepState{ID: ev.Step, Phase: phase, Status: StepPending}
		idx[ev.Step] = st
		*list = append(*list, st)
	}
	return st
}

func (s *RunState) host(st *StepState, name string) *HostState {
	if name == "" {
		return nil
	}
	if h := st.Host(name); h != nil {
		return h
	}
	h := &HostState{Host: name, Status: StepPending}
	st.Hosts = append(st.Hosts, h)
	return h
}

// Apply folds one more event into the state. Events must arrive in Seq
// order; an event whose Seq is not above LastSeq is ignored, so a reader
// that sees the same event twice (a live subscription and a catch-up read)
// stays correct.
func (s *RunState) Apply(ev Event) {
	if ev.Seq != 0 && ev.Seq <= s.LastSeq {
		return
	}
	if s.steps == nil {
		s.steps, s.rbSteps = stepIndex{}, stepIndex{}
	}
	if ev.Seq != 0 {
		s.LastSeq = ev.Seq
	}
	if s.RunID == "" {
		s.RunID = ev.RunID
	}
	s.LastEvent = ev.Time
	note := Note{Seq: ev.Seq, Time: ev.Time, Actor: ev.Actor, Text: ev.Text}

	switch ev.Type {
	case EventRunStarted:
		s.Status = RunRunning
		s.Title = ev.Text
		s.Environment = ev.Data["env"]
		s.Snapshot = ev.Data["snapshot"]
		s.StartedBy = ev.Data["user"]
		if s.StartedBy == "" {
			s.StartedBy = ev.Actor
		}
		s.From = ev.Data["from"]
		s.StartedAt = ev.Time

	case EventRunResumed:
		s.Resumes = append(s.Resumes, note)
		if ev.Data["failed_only"] != "" && s.Status == RunFailed {
			// resume --failed-only reopens a failed run to re-run the failed
			// hosts of its failed fan-out step.
			s.Status, s.FinishedAt = RunRunning, time.Time{}
		}
		if !s.Status.Finished() {
			s.Status = RunRunning
			if s.Waiting != nil {
				s.Status = RunWaiting
			}
		}

	case EventRunInterrupted:
		s.Interrupt = append(s.Interrupt, note)
		if !s.Status.Finished() {
			s.Status = RunInterrupted
		}
		for _, st := range s.AllSteps() {
			if st.Status == StepRunning {
				st.Resumed = true
			}
		}

	case EventRunCancelled:
		s.Cancelled = &note
		s.Status = RunCancelled
		s.clearWaiting()

	case EventRunFinished:
		if st := RunStatus(ev.Data["status"]); st != "" {
			s.Status = st
		}
		s.FinishedAt = ev.Time
		s.clearWaiting()

	case EventStepStarted:
		st := s.step(ev)
		st.Status = StepRunning
		if st.StartedAt.IsZero() {
			st.StartedAt = ev.Time
		}
		st.FinishedAt = time.Time{}
		st.ExitCode, st.Error = nil, ""
		st.Attempts = max(st.Attempts, ev.Attempt, 1)
		if hosts, ok := ev.Data["hosts"]; ok && ev.Host == "" {
			st.Fanout = true
			st.Policy = map[string]string{}
			for _, k := range []string{"parallel", "batch", "max_failures"} {
				if v := ev.Data[k]; v != "" {
					st.Policy[k] = v
				}
			}
			for _, name := range splitList(hosts) {
				h := s.host(st, name)
				h.Status, h.ExitCode, h.Error, h.FinishedAt = StepPending, nil, "", time.Time{}
			}
		}
		if h := s.host(st, ev.Host); h != nil {
			h.Status = StepRunning
			if h.StartedAt.IsZero() {
				h.StartedAt = ev.Time
			}
			h.FinishedAt = time.Time{}
			h.ExitCode, h.Error = nil, ""
			h.Attempts = max(h.Attempts, ev.Attempt, 1)
			if b, err := strconv.Atoi(ev.Data["batch"]); err == nil {
				h.Batch = b
			}
		}
		if !s.Status.Finished() && s.Status != RunWaiting {
			s.Status = RunRunning
		}

	case EventStepOutput:
		st := s.step(ev)
		n := int64(len(ev.Text))
		if n == 0 {
			n = ev.Size // read without its text
		}
		st.OutputSize += n
		if h := s.host(st, ev.Host); h != nil {
			h.OutputSize += n
		}

	case EventStepVerified:
		st := s.step(ev)
		st.Checks = append(st.Checks, Check{Kind: ev.Data["kind"], Host: ev.Host,
			Passed: ev.Data["result"] == "pass", Detail: ev.Text, Time: ev.Time})

	case EventStepRetry:
		st := s.step(ev)
		st.Retries = append(st.Retries, Retry{NextAttempt: ev.Attempt, Backoff: ev.Data["backoff"],
			Reason: ev.Text, Time: ev.Time})

	case EventStepPublished:
		st := s.step(ev)
		if st.Fanout && ev.Host != "" {
			if h := s.host(st, ev.Host); h != nil {
				h.Outputs = map[string]string{}
				for k, v := range ev.Data {
					if k != "phase" {
						h.Outputs[k] = v
					}
				}
			}
			return
		}
		if st.Outputs == nil {
			st.Outputs = map[string]string{}
		}
		for k, v := range ev.Data {
			if k == "phase" {
				continue
			}
			st.Outputs[k] = v
			if st.Phase == PhaseMain {
				if s.Outputs == nil {
					s.Outputs = map[string]string{}
				}
				s.Outputs[k] = v
			}
		}

	case EventStepFinished:
		st := s.step(ev)
		status := StepStatus(ev.Data["status"])
		if status == "" {
			status = StepFailed
		}
		var code *int
		if c, err := strconv.Atoi(ev.Data["exit_code"]); err == nil {
			code = &c
		}
		h := s.host(st, ev.Host)
		if h != nil {
			h.Status, h.FinishedAt, h.ExitCode, h.Error = status, ev.Time, code, ev.Text
		}
		// A step on several hosts is finished by its host-less aggregate
		// event; a step on one host by that host's event.
		if ev.Host == "" || !st.Fanout && len(st.Hosts) <= 1 {
			st.Status, st.FinishedAt, st.ExitCode, st.Error = status, ev.Time, code, ev.Text
			for _, name := range splitList(ev.Data["secret_outputs"]) {
				if !slices.Contains(st.SecretOutputs, name) {
					st.SecretOutputs = append(st.SecretOutputs, name)
				}
			}
			if st.StartedAt.IsZero() {
				st.StartedAt = ev.Time
			}
		}

	case EventStepSkipped:
		st := s.step(ev)
		st.Status = StepSkipped
		st.SkipReason = ev.Text
		if st.FinishedAt.IsZero() {
			st.FinishedAt = ev.Time
		}

	case EventGateWaiting, EventManualWaiting, EventAskWaiting:
		// A question about no step (a guard breach between steps) leaves
		// the steps alone.
		st := &StepState{Phase: ev.Data["phase"]}
		if ev.Step != "" {
			st = s.step(ev)
		}
		w := &Waiting{Step: ev.Step, Phase: st.Phase, Seq: ev.Seq, Since: ev.Time, Text: ev.Text, Guard: ev.Data["guard"]}
		switch ev.Type {
		case EventGateWaiting:
			w.Kind = WaitKindGate
			w.Approvers, _ = strconv.Atoi(ev.Data["approvers"])
			w.Approvers = max(w.Approvers, 1)
			w.Roles = splitList(ev.Data["roles"])
		case EventManualWaiting:
			w.Kind = WaitKindManual
		case EventAskWaiting:
			w.Kind = WaitKindAsk
			w.Options = splitList(ev.Data["options"])
		}
		if st.StartedAt.IsZero() {
			st.StartedAt = ev.Time
		}
		st.Status = StepWaiting
		s.Waiting, s.waitStep = w, st
		if !s.Status.Finished() {
			s.Status = RunWaiting
		}

	case EventGateDecided, EventManualDone, EventAskAnswered:
		st := &StepState{Phase: ev.Data["phase"]}
		if ev.Step != "" {
			st = s.step(ev)
		}
		d := Decision{Seq: ev.Seq, Time: ev.Time, Step: ev.Step, Phase: st.Phase, Actor: ev.Actor, Reason: ev.Text}
		switch ev.Type {
		case EventGateDecided:
			d.Kind, d.Choice = WaitKindGate, ev.Data["decision"]
		case EventManualDone:
			d.Kind, d.Choice = WaitKindManual, ChoiceConfirmed
		case EventAskAnswered:
			d.Kind, d.Choice = WaitKindAsk, ev.Data["choice"]
		}
		s.Decisions = append(s.Decisions, d)
		st.Decisions = append(st.Decisions, d)
		w := s.Waiting
		if w == nil || w.Kind != d.Kind || w.Step != d.Step || w.Phase != d.Phase {
			return // a late or duplicate decision: recorded, changes nothing
		}
		if d.Kind == WaitKindGate && d.Choice == DecisionGo {
			if !slices.ContainsFunc(w.Approvals, func(a Decision) bool { return a.Actor == d.Actor }) {
				w.Approvals = append(w.Approvals, d)
			}
			if len(w.Approvals) < w.Approvers {
				return
			}
		}
		s.clearWaiting()
		if !s.Status.Finished() {
			s.Status = RunRunning
		}

	case EventAnomaly, EventOrphanStopped:
		s.Anomalies = append(s.Anomalies, note)

	case EventStepSpawned:
		// Read by Resume from the log; nothing for viewers.

	case EventGuardBreached:
		s.Breaches = append(s.Breaches, Breach{Seq: ev.Seq, Time: ev.Time, Guard: ev.Data["guard"],
			Value: ev.Data["value"], Threshold: ev.Data["threshold"], Action: ev.Data["action"],
			Step: ev.Step, Text: ev.Text, Watch: ev.Data["watch"] == "true"})
		if s.Watch != nil && ev.Data["watch"] == "true" {
			s.Watch.Breaches++
		}

	case EventWatchStarted:
		until, _ := time.Parse(time.RFC3339, ev.Data["until"])
		s.Watch = &Watch{Until: until}
		if g := ev.Data["guards"]; g != "" {
			s.Watch.Guards = strings.Split(g, ",")
		}

	case EventWatchFinished:
		if s.Watch != nil {
			s.Watch.Finished, s.Watch.Ended = true, ev.Text
		}

	case EventRollbackStart:
		if s.Rollback == nil {
			s.Rollback = &Rollback{}
		}
		s.Rollback.Status = StepRunning
		s.Rollback.Reason = ev.Text
		s.Rollback.Document = ev.Data["document"]
		if s.Rollback.StartedAt.IsZero() {
			s.Rollback.StartedAt = ev.Time
		}

	case EventRollbackFinish:
		if s.Rollback == nil {
			s.Rollback = &Rollback{}
		}
		s.Rollback.Status = StepStatus(ev.Data["status"])
		s.Rollback.FinishedAt = ev.Time

	case EventNotified, EventAlertFired, EventAlertResolved:
		// Told in the timeline (internal/report); no state of their own.

	default:
		if !slices.Contains(s.Unknown, ev.Type) {
			s.Unknown = append(s.Unknown, ev.Type)
		}
	}
}

func (s *RunState) clearWaiting() {
	if s.waitStep != nil && s.waitStep.Status == StepWaiting {
		// The step goes on (or ends) with whatever its next event says;
		// until then it is running again.
		s.waitStep.Status = StepRunning
	}
	s.Waiting, s.waitStep = nil, nil
}

// AllSteps returns the main runbook's steps, then the rollback document's,
// in a new slice.
func (s *RunState) AllSteps() []*StepState {
	all := slices.Clone(s.Steps)
	if s.Rollback != nil {
		all = append(all, s.Rollback.Steps...)
	}
	return all
}

// DecisionRequest is a decision someone wants to record on a waiting run.
type DecisionRequest struct {
	Kind   string `json:"kind"` // gate | manual | ask
	Step   string `json:"step"`
	Phase  string `json:"phase,omitempty"`
	Actor  string `json:"actor"`
	Choice string `json:"choice"` // gate: go | no-go; manual: confirmed (or empty); ask: one of the offered options
	Reason string `json:"reason,omitempty"`
}

// CheckDecision reports why d cannot be recorded on the run as it stands,
// or nil if it can. It is the one rule for every way a decision arrives:
// the terminal prompt, --yes, the server's API.
func (s *RunState) CheckDecision(d DecisionRequest) error {
	if s.Status.Finished() {
		return fmt.Errorf("run %s is %s: nothing to decide", s.RunID, s.Status)
	}
	w := s.Waiting
	if w == nil {
		return fmt.Errorf("run %s is not waiting for a decision", s.RunID)
	}
	if d.Kind != "" && d.Kind != w.Kind || d.Step != "" && (d.Step != w.Step || d.Phase != w.Phase) {
		return fmt.Errorf("run %s waits for a %s decision on step %s, not a %s decision on step %s",
			s.RunID, w.Kind, w.Step, orDefault(d.Kind, w.Kind), orDefault(d.Step, w.Step))
	}
	if strings.TrimSpace(d.Actor) == "" {
		return fmt.Errorf("a decision needs the name of who takes it")
	}
	switch w.Kind {
	case WaitKindGate:
		if d.Choice != DecisionGo && d.Choice != DecisionNoGo {
			return fmt.Errorf("gate %s: decision must be %q or %q, not %q", w.Step, DecisionGo, DecisionNoGo, d.Choice)
		}
		if strings.TrimSpace(d.Reason) == "" {
			return fmt.Errorf("gate %s: a Go/No-Go decision needs a reason", w.Step)
		}
		if d.Choice == DecisionGo {
			for _, a := range w.Approvals {
				if a.Actor == d.Actor {
					return fmt.Errorf("gate %s: %s has already approved; it needs %d distinct approvers", w.Step, d.Actor, w.Approvers)
				}
			}
		}
	case WaitKindManual:
		if d.Choice != "" && d.Choice != ChoiceConfirmed {
			return fmt.Errorf("manual step %s can only be confirmed, not %q", w.Step, d.Choice)
		}
	case WaitKindAsk:
		if !slices.Contains(w.Options, d.Choice) {
			return fmt.Errorf("step %s: choose one of %s, not %q", w.Step, strings.Join(w.Options, ", "), d.Choice)
		}
	}
	return nil
}

// Event returns the event that records d (without RunID, Seq and Time,
// which the writer sets).
func (d DecisionRequest) Event() Event {
	ev := Event{Step: d.Step, Actor: d.Actor, Text: d.Reason, Data: map[string]string{}}
	switch d.Kind {
	case WaitKindGate:
		ev.Type = EventGateDecided
		ev.Data["decision"] = d.Choice
	case WaitKindManual:
		ev.Type = EventManualDone
	case WaitKindAsk:
		ev.Type = EventAskAnswered
		ev.Data["choice"] = d.Choice
	}
	if d.Phase != "" {
		ev.Data["phase"] = d.Phase
	}
	return ev
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
