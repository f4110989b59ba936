package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// A successful step's step.published and step.finished are held and commit
// with the next step's step.started (runner.held). Fault class: a reader in
// another process (the server, `opsbook show`, a resume after kill -9) must
// never see a step's command running while the step before it looks
// unfinished, nor a later step see outputs that are not recorded.
func TestHeldFinishCommitsBeforeTheNextSpawn(t *testing.T) {
	h := newHarness(t)
	d := h.doc("rb.md", "", step("One", "sh {id=one outputs=A}", `echo A=1 >> "$OPSBOOK_OUTPUT"`)+
		step("Two", "sh {id=two}", `[ "$A" = 1 ]`+"\nsleep 0.2")+
		step("Three", "sh {id=three}", "true"))
	p := h.plan(d, nil)
	ctx := context.Background()
	run, err := h.eng.Start(ctx, p, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Another process's view of the store, taken while step two's command
	// runs (its spawn is recorded after the command started).
	other, err := store.Open(ctx, filepath.Join(h.dir, "state", "opsbook.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var seen *runbook.RunState
	var seenErr error
	status, err := h.eng.Execute(ctx, run.ID, p, ExecOptions{Observe: func(ev runbook.Event) {
		if ev.Type == runbook.EventStepSpawned && ev.Step == "two" {
			seen, seenErr = New(Config{Store: other}).State(ctx, run.ID)
		}
	}})
	if err != nil || status != runbook.RunSucceeded {
		t.Fatalf("run: %s %v", status, err)
	}
	if seenErr != nil || seen == nil {
		t.Fatalf("reading the store while step two ran: %v", seenErr)
	}
	if one := seen.Step("one"); one == nil || one.Status != runbook.StepSucceeded || seen.Outputs["A"] != "1" {
		t.Fatalf("while step two ran, another reader saw step one as %+v with outputs %v", one, seen.Outputs)
	}
	// The last step's events are not held past the run's end.
	s, _ := h.eng.State(ctx, run.ID)
	if got := statuses(s); got != "one=succeeded two=succeeded three=succeeded" {
		t.Fatalf("steps: %s", got)
	}
}

// Fault class: the disk fills up between two steps, so the commit that
// records step one's success with step two's start fails. Step two must not
// run, and step one must end up recorded as what it was — succeeded — once
// space comes back, not as failed with the write error (which endUnrecorded
// writes for the steps still running).
func TestDiskFullAtTheHeldCommit(t *testing.T) {
	h, mnt := smallDiskHarness(t, 20*time.Second)
	ctx := context.Background()
	// Step one prints nothing: after its spawn is recorded, the next
	// commit is the one holding its step.finished.
	d := h.doc("rb.md", "", step("One", "sh {id=one}", "true")+step("Two", "sh {id=two}", "echo two >> order"))
	p := h.plan(d, nil)
	run, err := h.eng.Start(ctx, p, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(mnt, "filler")
	status, err := h.eng.Execute(ctx, run.ID, p, ExecOptions{Observe: func(ev runbook.Event) {
		if ev.Type == runbook.EventStepSpawned && ev.Step == "one" {
			fill(t, filler)
			time.AfterFunc(time.Second, func() { os.Remove(filler) })
		}
	}})
	if h.read("order") != "" {
		t.Fatal("step two ran although its start was not recorded")
	}
	if err != nil || status != runbook.RunFailed {
		t.Fatalf("Execute = %s, %v; want failed with the reason recorded", status, err)
	}
	s, _ := h.eng.State(ctx, run.ID)
	if one := s.Step("one"); one == nil || one.Status != runbook.StepSucceeded {
		t.Fatalf("step one is %+v; want succeeded (it did)", one)
	}
	evs, err := h.st.Events(ctx, run.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	if s.Step("two") != nil || s.Status != runbook.RunFailed || last.Type != runbook.EventRunFinished || !strings.Contains(last.Text, "disk is full") {
		t.Fatalf("run %s, last event %s %q, step two %+v", s.Status, last.Type, last.Text, s.Step("two"))
	}
}

// The recorder's flush loop starts with a command's first output (most
// steps print nothing and get none). Fault class: output of a command that
// is still running — a partial line, then silence — must still reach the
// log within FlushInterval, for the live view and readers of a running
// step, not only when the command ends.
func TestOutputRecordedWhileTheCommandRuns(t *testing.T) {
	h := newHarness(t)
	release := filepath.Join(h.dir, "release")
	d := h.doc("rb.md", "", step("Quiet", "sh {id=quiet}", "true")+
		step("Talk", "sh {id=talk}", "printf 'waiting for release'\nwhile [ ! -e release ]; do sleep 0.01; done\necho ' released'"))
	p := h.plan(d, nil)
	ctx := context.Background()
	run, err := h.eng.Start(ctx, p, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing releases the command but its output reaching the log; a
	// deadline ends the test instead of hanging it.
	stop := time.AfterFunc(10*time.Second, func() { os.WriteFile(release, []byte("timeout"), 0o644) })
	defer stop.Stop()
	var quietOutput int
	status, err := h.eng.Execute(ctx, run.ID, p, ExecOptions{Observe: func(ev runbook.Event) {
		if ev.Type != runbook.EventStepOutput {
			return
		}
		switch {
		case ev.Step == "quiet":
			quietOutput++
		case ev.Step == "talk" && ev.Text == "waiting for release":
			os.WriteFile(release, []byte("observed"), 0o644)
		}
	}})
	if err != nil || status != runbook.RunSucceeded {
		t.Fatalf("run: %s %v", status, err)
	}
	if got, _ := os.ReadFile(release); string(got) != "observed" {
		t.Fatalf("the partial line was not recorded while the command ran (release: %q)", got)
	}
	if quietOutput != 0 {
		t.Fatalf("a command that printed nothing has %d output events", quietOutput)
	}
}
