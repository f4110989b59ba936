package notify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/workspace"
)

// Message is what a channel sends: the same facts for every channel, each
// formatting them its own way.
type Message struct {
	// ID is stable for one notice (a run event or a task's news): receivers
	// use it to drop a duplicate should a delivery be retried after the
	// receiver had in fact taken it.
	ID          string    `json:"id"`
	Kind        string    `json:"kind"` // one of workspace.NotifyKinds
	Subject     string    `json:"subject"`
	Text        string    `json:"text"`
	Link        string    `json:"link,omitempty"` // the run's (or task board's) page
	RunID       string    `json:"run_id,omitempty"`
	Runbook     string    `json:"runbook,omitempty"`
	Title       string    `json:"title,omitempty"`
	Project     string    `json:"project,omitempty"`
	Environment string    `json:"environment,omitempty"`
	Step        string    `json:"step,omitempty"`
	Task        string    `json:"task,omitempty"`
	Roles       []string  `json:"roles,omitempty"` // teams a waiting gate asks
	Time        time.Time `json:"time"`
}

// Task notice kinds (store.Notice.Kind) the server adds from the lifecycle.
const (
	TaskReviewRequested = "task.review_requested" // Detail: snapshot, needed
	TaskReviewComplete  = "task.review_complete"  // Detail: snapshot, reviewers
	TaskOverdue         = "task.overdue"          // Detail: completed, due
)

// compose turns a notice into a message, reading the run and the event it
// tells of. ok is false for a notice that tells nobody anything (an event
// type not notable, a run deleted since).
func (d *Dispatcher) compose(ctx context.Context, n store.Notice) (Message, bool, error) {
	m := Message{ID: n.Dedupe, Time: n.CreatedAt, Task: n.Task}
	switch n.Kind {
	case TaskReviewRequested, TaskReviewComplete, TaskOverdue:
		return d.composeTask(m, n), true, nil
	}
	run, err := d.cfg.Store.GetRun(ctx, n.RunID)
	if err != nil {
		return m, false, fmt.Errorf("notice %s: %w", n.Dedupe, err)
	}
	evs, err := d.cfg.Store.Events(ctx, n.RunID, n.Seq-1, 1)
	if err != nil {
		return m, false, fmt.Errorf("notice %s: %w", n.Dedupe, err)
	}
	if len(evs) == 0 || evs[0].Seq != n.Seq {
		return m, false, nil
	}
	ev := evs[0]
	m.RunID, m.Runbook, m.Title, m.Environment, m.Step, m.Task = run.ID, run.Runbook, run.Title, run.Environment, ev.Step, run.Task
	m.Project = d.projectOf(run.Runbook)
	m.Link = d.link("/runs/" + run.ID)
	name := run.Title
	if name == "" {
		name = run.Runbook
	}
	where := fmt.Sprintf("%q in %s", oneLine(name), run.Environment)
	var b strings.Builder
	switch ev.Type {
	case runbook.EventGateWaiting:
		m.Kind = workspace.NotifyWaiting
		if r := ev.Data["roles"]; r != "" {
			m.Roles = strings.Split(r, ",")
		}
		m.Subject = fmt.Sprintf("Go/No-Go needed: %s, step %s", where, ev.Step)
		fmt.Fprintf(&b, "Run %s waits at the Go/No-Go gate of step %s.", where, ev.Step)
		if a := ev.Data["approvers"]; a != "" && a != "1" {
			fmt.Fprintf(&b, " It needs %s distinct approvers.", a)
		}
		if len(m.Roles) > 0 {
			fmt.Fprintf(&b, " Who may decide: %s.", strings.Join(m.Roles, ", "))
		}
		if ev.Text != "" {
			fmt.Fprintf(&b, "\nCriteria: %s", ev.Text)
		}
	case runbook.EventAskWaiting:
		m.Kind = workspace.NotifyWaiting
		m.Subject = fmt.Sprintf("Decision needed: step %s of %s failed", ev.Step, where)
		fmt.Fprintf(&b, "Step %s of run %s failed and asks what to do next (%s).", ev.Step, where, ev.Data["options"])
		if ev.Text != "" {
			fmt.Fprintf(&b, "\n%s", ev.Text)
		}
	case runbook.EventManualWaiting:
		m.Kind = workspace.NotifyWaiting
		m.Subject = fmt.Sprintf("Manual step waiting: %s, step %s", where, ev.Step)
		fmt.Fprintf(&b, "Run %s waits for someone to do manual step %s and confirm it.", where, ev.Step)
		if ev.Text != "" {
			fmt.Fprintf(&b, "\nInstruction: %s", ev.Text)
		}
	case runbook.EventRunFinished:
		status := runbook.RunStatus(ev.Data["status"])
		switch status {
		case runbook.RunSucceeded:
			m.Kind = workspace.NotifySucceeded
		case runbook.RunRolledBack:
			m.Kind = workspace.NotifyRolledBack
		case runbook.RunCancelled:
			m.Kind = workspace.NotifyCancelled
		default:
			m.Kind = workspace.NotifyFailed
		}
		m.Subject = fmt.Sprintf("Run %s: %s", strings.ReplaceAll(string(status), "_", " "), where)
		fmt.Fprintf(&b, "Run %s finished: %s.", where, strings.ReplaceAll(string(status), "_", " "))
		if ev.Text != "" {
			fmt.Fprintf(&b, "\n%s", ev.Text)
		}
	case runbook.EventRunInterrupted:
		m.Kind = workspace.NotifyInterrupted
		m.Subject = fmt.Sprintf("Run interrupted: %s", where)
		fmt.Fprintf(&b, "Run %s was interrupted and waits to be resumed.", where)
		if ev.Text != "" {
			fmt.Fprintf(&b, "\n%s", ev.Text)
		}
	case runbook.EventGuardBreached:
		m.Kind = workspace.NotifyGuardBreached
		m.Subject = fmt.Sprintf("Guard %s breached: %s", ev.Data["guard"], where)
		fmt.Fprintf(&b, "Guard %s of run %s breached: value %s against threshold %s; action: %s.",
			ev.Data["guard"], where, ev.Data["value"], ev.Data["threshold"], ev.Data["action"])
	default:
		return m, false, nil
	}
	if by := run.CreatedBy; by != "" {
		fmt.Fprintf(&b, "\nStarted by %s.", by)
	}
	m.Text = b.String()
	return m, true, nil
}

func (d *Dispatcher) composeTask(m Message, n store.Notice) Message {
	m.Link = d.link("/board")
	switch n.Kind {
	case TaskReviewRequested:
		m.Kind = workspace.NotifyReviewRequired
		m.Subject = fmt.Sprintf("Review requested: %s", n.Task)
		m.Text = fmt.Sprintf("Task %s needs %s review(s) of its current documents (snapshot %s) before it may run in a protected environment.",
			n.Task, n.Detail["needed"], short(n.Detail["snapshot"]))
	case TaskReviewComplete:
		m.Kind = workspace.NotifyReviewComplete
		m.Subject = fmt.Sprintf("Reviews complete: %s", n.Task)
		m.Text = fmt.Sprintf("Task %s has its reviews (snapshot %s): %s.", n.Task, short(n.Detail["snapshot"]), n.Detail["reviewers"])
	case TaskOverdue:
		m.Kind = workspace.NotifyOverdue
		m.Subject = fmt.Sprintf("Overdue for the archive: %s", n.Task)
		m.Text = fmt.Sprintf("Task %s was completed on %s and was due in ops/archive/ on %s; run `opsbook archive --due`.",
			n.Task, n.Detail["completed"], n.Detail["due"])
	}
	return m
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func (d *Dispatcher) link(path string) string {
	if d.cfg.BaseURL == "" {
		return ""
	}
	return strings.TrimRight(d.cfg.BaseURL, "/") + path
}
