package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// Fault class: a rollback document's own parameter declarations ignored.
// Its default never applied, so a rollback writing under "$DIR/" wrote at
// the root of the file system; its types and required values were never
// checked, so a rollback that could not work was found only when needed.
func TestRollbackResolvesItsOwnParams(t *testing.T) {
	undo := step("Undo", "sh {id=undo}", `echo "DIR=[$DIR] COUNT=[$COUNT] MODE=[$MODE]" >> order`)
	t.Run("defaults and runbook values apply", func(t *testing.T) {
		h := newHarness(t)
		p := h.plan(h.doc("rb.md", "rollback: undo.md\nparams:\n  COUNT: {type: int, default: \"007\"}\n",
			step("A", "sh {id=a on_fail=rollback}", "exit 1")), nil)
		p.Rollback = h.doc("undo.md", "kind: rollback\ntitle: Undo\nparams:\n  DIR: {default: ./scratch}\n  COUNT: {type: int}\n  MODE: {type: enum, allowed: [soft, hard], default: soft}\n", undo)
		status, _ := h.run(p, StartOptions{}, ExecOptions{})
		if status != runbook.RunRolledBack {
			t.Fatalf("status %s", status)
		}
		if got := h.read("order"); got != "DIR=[./scratch] COUNT=[7] MODE=[soft]\n" {
			t.Fatalf("the rollback saw %q", got)
		}
	})
	t.Run("a required value published by a runbook step", func(t *testing.T) {
		for _, publish := range []bool{true, false} {
			h := newHarness(t)
			action := "echo DIR=./made >> \"$OPSBOOK_OUTPUT\"; exit 0"
			if !publish {
				action = "exit 1" // fails before it publishes DIR
			}
			p := h.plan(h.doc("rb.md", "rollback: undo.md\n",
				step("A", "sh {id=a outputs=DIR on_fail=rollback}", action)+step("B", "sh {id=b on_fail=rollback}", "exit 1")), nil)
			p.Rollback = h.doc("undo.md", "kind: rollback\ntitle: Undo\nparams:\n  DIR: {type: path, required: true}\n", undo)
			var finished string
			status, s := h.run(p, StartOptions{}, ExecOptions{Observe: func(ev runbook.Event) {
				if ev.Type == runbook.EventRollbackFinish {
					finished = ev.Text
				}
			}})
			// A rollback that could not start leaves the run failed, not
			// rolled back.
			if want := map[bool]runbook.RunStatus{true: runbook.RunRolledBack, false: runbook.RunFailed}[publish]; status != want {
				t.Fatalf("publish=%v: status %s, want %s", publish, status, want)
			}
			if publish && h.read("order") != "DIR=[./made] COUNT=[] MODE=[]\n" {
				t.Fatalf("the rollback saw %q", h.read("order"))
			}
			if !publish && (h.read("order") != "" || s.Rollback.Status != runbook.StepFailed || !strings.Contains(finished, "parameter DIR: required")) {
				t.Fatalf("a rollback without its value ran or did not say why: order %q rollback %+v %q", h.read("order"), s.Rollback, finished)
			}
		}
	})
	for _, tt := range []struct {
		name, runbookParams, rollbackParams, given, want string
	}{
		{"required value the runbook cannot supply", "", "  DIR: {required: true}\n", "", "undo.md: parameter DIR: required string value is missing: the runbook declares no parameter DIR"},
		{"value of the wrong type", "  COUNT: {type: string}\n", "  COUNT: {type: int}\n", "abc", "parameter COUNT"},
		{"value not allowed", "  COUNT: {type: string}\n", "  COUNT: {type: enum, allowed: [\"1\", \"2\"]}\n", "3", "parameter COUNT"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			front := "rollback: undo.md\n"
			if tt.runbookParams != "" {
				front += "params:\n" + tt.runbookParams
			}
			var given map[string]string
			if tt.given != "" {
				given = map[string]string{"COUNT": tt.given}
			}
			p := h.plan(h.doc("rb.md", front, step("A", "sh {id=a}", "echo ran >> order")), given)
			p.Rollback = h.doc("undo.md", "kind: rollback\ntitle: Undo\nparams:\n"+tt.rollbackParams, undo)
			_, err := h.eng.Start(context.Background(), p, StartOptions{})
			var pe *ParamsError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start = %v, want a ParamsError containing %q", err, tt.want)
			}
			if runs, _ := h.st.ListRuns(context.Background(), store.RunFilter{}); len(runs) != 0 || h.read("order") != "" {
				t.Fatalf("something ran or was recorded: %v %q", runs, h.read("order"))
			}
		})
	}
}

func TestMissingRollbackParams(t *testing.T) {
	doc := &runbook.Document{Front: runbook.FrontMatter{Params: []runbook.Param{
		{Name: "A", Required: true}, {Name: "B", HasDefault: true, Default: "x"}, {Name: "C"}}}}
	rb := &runbook.Document{Front: runbook.FrontMatter{Params: []runbook.Param{
		{Name: "A", Required: true}, {Name: "B", Required: true}, {Name: "C", Required: true},
		{Name: "D", Required: true}, {Name: "E", Required: true, HasDefault: true}, {Name: "F"}, {Name: "G", Required: true}}},
		Steps: nil}
	doc.Steps = []runbook.Step{{ID: "s", Outputs: []string{"G"}}}
	var names []string
	for _, p := range runbook.MissingRollbackParams(doc, rb) {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, ","); got != "C,D" {
		t.Fatalf("missing %q, want C,D (C is optional in the runbook, D undeclared)", got)
	}
}
