package runbook

import "time"

// RunStatus is the state of a run as a whole.
type RunStatus string

const (
	RunPending     RunStatus = "pending"     // created, nothing executed yet
	RunRunning     RunStatus = "running"     // a process owns it and is executing
	RunWaiting     RunStatus = "waiting"     // paused on a gate, a manual step or a guided-failure question
	RunSucceeded   RunStatus = "succeeded"   // every step succeeded or was skipped by decision
	RunFailed      RunStatus = "failed"      // a step failed and the policy aborted
	RunRolledBack  RunStatus = "rolled_back" // a step failed and the rollback document ran and succeeded (a failed rollback ends the run failed)
	RunCancelled   RunStatus = "cancelled"   // stopped by an operator
	RunInterrupted RunStatus = "interrupted" // its process died; resumable
)

// Finished reports whether the status is final.
func (s RunStatus) Finished() bool {
	switch s {
	case RunSucceeded, RunFailed, RunRolledBack, RunCancelled:
		return true
	}
	return false
}

// ExitCode maps a final run status to the CLI's exit status:
// 0 success, 1 failed, 3 rolled back, 4 cancelled or interrupted.
func (s RunStatus) ExitCode() int {
	switch s {
	case RunSucceeded:
		return 0
	case RunRolledBack:
		return 3
	case RunCancelled, RunInterrupted:
		return 4
	}
	return 1
}

// Run is one execution of a snapshot in one environment. Its truth is its
// event log; the fields here are an index over it kept by the store.
type Run struct {
	ID          string            `json:"id"`
	Workspace   string            `json:"workspace,omitempty"` // workspace name or directory
	Runbook     string            `json:"runbook"`             // path relative to the workspace
	Task        string            `json:"task,omitempty"`      // planned-operation task, if any
	Title       string            `json:"title"`
	Environment string            `json:"environment"`
	Snapshot    string            `json:"snapshot"`         // content hash of everything the run uses
	Params      map[string]string `json:"params,omitempty"` // secret values are never stored here
	Status      RunStatus         `json:"status"`
	CreatedBy   string            `json:"created_by"`
	CreatedAt   time.Time         `json:"created_at"`
	StartedAt   time.Time         `json:"started_at,omitzero"`
	FinishedAt  time.Time         `json:"finished_at,omitzero"`
	Emergency   string            `json:"emergency,omitempty"` // reason, when run as an emergency override
}

// StepStatus is the state of one step (or one step on one host).
type StepStatus string

const (
	StepPending   StepStatus = "pending"
	StepRunning   StepStatus = "running"
	StepWaiting   StepStatus = "waiting"
	StepSucceeded StepStatus = "succeeded"
	StepFailed    StepStatus = "failed"
	StepSkipped   StepStatus = "skipped"
)

// EventType names an entry of a run's event log.
type EventType string

// The event log's vocabulary. Data keys used by each type are listed beside it.
const (
	EventRunStarted     EventType = "run.started"     // Data: env, snapshot, user; Text: runbook title
	EventRunResumed     EventType = "run.resumed"     // Actor
	EventRunFinished    EventType = "run.finished"    // Data: status
	EventRunCancelled   EventType = "run.cancelled"   // Actor, Text: reason
	EventRunInterrupted EventType = "run.interrupted" // Text: what was found on restart
	EventStepStarted    EventType = "step.started"    // Step, Host, Attempt
	EventStepOutput     EventType = "step.output"     // Step, Host, Stream (stdout|stderr), Text: a masked chunk
	EventStepVerified   EventType = "step.verified"   // Step, Host, Data: kind (verify|expect|until), result (pass|fail); Text: detail
	EventStepRetry      EventType = "step.retry"      // Step, Attempt: the next attempt, Data: backoff
	EventStepFinished   EventType = "step.finished"   // Step, Host, Data: status, exit_code, duration_ms; Text: error
	EventStepPublished  EventType = "step.published"  // Step, Host, Data: output name → value (secret values masked)
	EventStepSkipped    EventType = "step.skipped"    // Step, Actor, Text: reason
	// EventStepSpawned records a local command's process group, so that a
	// resumed run can find and stop what the dead process left running.
	EventStepSpawned EventType = "step.spawned" // Step, Host, Attempt, Data: pgid, start (the leader's start time in clock ticks since boot), boot (boot id)
	// EventOrphanStopped records that a resumed run stopped a process group
	// left running by the dead process.
	EventOrphanStopped  EventType = "orphan.stopped"    // Step, Data: pgid, signal; Text: what was done
	EventGateWaiting    EventType = "gate.waiting"      // Step, Data: approvers; Text: criteria
	EventGateDecided    EventType = "gate.decided"      // Step, Actor, Data: decision (go|no-go); Text: reason
	EventManualWaiting  EventType = "manual.waiting"    // Step, Text: instruction
	EventManualDone     EventType = "manual.confirmed"  // Step, Actor; Text: note
	EventAskWaiting     EventType = "ask.waiting"       // Step, Data: options (comma-separated); Text: question
	EventAskAnswered    EventType = "ask.answered"      // Step, Actor, Data: choice (retry|skip|abort|rollback); Text: reason
	EventAnomaly        EventType = "anomaly.noted"     // Actor, Text: the note
	EventGuardBreached  EventType = "guard.breached"    // Data: guard, value, threshold, action
	EventRollbackStart  EventType = "rollback.started"  // Text: why; Data: document
	EventRollbackFinish EventType = "rollback.finished" // Data: status
	// EventNotified records a notification delivered about the run, so the
	// postmortem's timeline shows who was told what, and when.
	EventNotified EventType = "notification.sent" // Data: channel, kind, about (seq of the event it tells of); Text: the message's subject
	// The watch after a successful run: guards keep being evaluated.
	EventWatchStarted  EventType = "watch.started"  // Data: until (RFC 3339), guards (names)
	EventWatchFinished EventType = "watch.finished" // Data: breaches (count); Text: how it ended
	// Alerts (Prometheus Alertmanager) that started the run or resolved.
	EventAlertFired    EventType = "alert.fired"    // Data: fingerprint, labels (JSON), source; Text: alertname: summary
	EventAlertResolved EventType = "alert.resolved" // Data: fingerprint, labels (JSON), source; Text: alertname: summary
)

// Notable reports whether people are told about events of this type
// (through the notification channels): a run that waits for someone, how a
// run ended or was interrupted, a guard breach.
func (t EventType) Notable() bool {
	switch t {
	case EventGateWaiting, EventAskWaiting, EventManualWaiting, EventRunFinished, EventRunInterrupted, EventGuardBreached:
		return true
	}
	return false
}

// Event is one entry of a run's append-only log.
type Event struct {
	RunID   string            `json:"run_id"`
	Seq     int64             `json:"seq"` // assigned by the store: 1, 2, 3… per run
	Time    time.Time         `json:"time"`
	Type    EventType         `json:"type"`
	Step    string            `json:"step,omitempty"`
	Host    string            `json:"host,omitempty"`
	Actor   string            `json:"actor,omitempty"`
	Attempt int               `json:"attempt,omitempty"`
	Stream  string            `json:"stream,omitempty"`
	Text    string            `json:"text,omitempty"`
	Data    map[string]string `json:"data,omitempty"`
	// Size is the length of Text of a step.output event read without its
	// text (store.StateEvents): how much a step printed is all a RunState
	// keeps of it. Zero otherwise; never stored or sent.
	Size int64 `json:"-"`
}
