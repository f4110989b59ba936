package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/runbook"
)

// TestSecretOutputsMarked: an output whose value holds a secret is stored
// masked and named in the step's finish, so a resume knows it is gone.
func TestSecretOutputsMarked(t *testing.T) {
	h := newHarness(t)
	d := h.doc("rb.md", "params:\n  TOKEN: secret\n", step("Make", "sh {id=make outputs=DB_URL,PLAIN verify=none reason=test}",
		`echo "DB_URL=postgres://app:$TOKEN@db/app" >> "$OPSBOOK_OUTPUT"; echo PLAIN=x >> "$OPSBOOK_OUTPUT"`))
	status, s := h.run(h.plan(d, map[string]string{"TOKEN": "s3cret-value"}), StartOptions{}, ExecOptions{})
	if status != runbook.RunSucceeded {
		t.Fatalf("status %s", status)
	}
	st := s.Step("make")
	if !slices.Equal(st.SecretOutputs, []string{"DB_URL"}) {
		t.Fatalf("SecretOutputs = %v, want [DB_URL]", st.SecretOutputs)
	}
	if got := s.Outputs["DB_URL"]; strings.Contains(got, "s3cret-value") || !strings.Contains(got, "***") {
		t.Fatalf("stored output %q is not masked", got)
	}
}

// TestResumeRefusesLostSecretOutputs: after an interruption, a step still
// to run that uses a secret-bearing output of a finished step cannot get
// its value back; the resume is refused rather than hand it "***".
func TestResumeRefusesLostSecretOutputs(t *testing.T) {
	for _, tt := range []struct {
		name, cBody string
		refused     bool
	}{
		{"later step uses the output", `psql "$DB_URL" -c 'select 1'`, true},
		{"later step uses it in braces", `echo "${DB_URL%%/*}"`, true},
		{"no later step uses it", `echo done >> order`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			d := h.doc("rb.md", "params:\n  TOKEN: secret\n",
				step("Make", "sh {id=a outputs=DB_URL verify=none reason=test}", `echo "DB_URL=x" >> "$OPSBOOK_OUTPUT"`)+
					step("B", "sh {id=b idempotent verify=none reason=test}", "echo b >> order")+
					step("C", "sh {id=c verify=none reason=test}", tt.cBody))
			p := h.plan(d, map[string]string{"TOKEN": "s3cret"})
			// What a run that died in step b left: a's output stored masked.
			run := h.died(p,
				runbook.Event{Type: runbook.EventStepStarted, Step: "a", Host: "local", Attempt: 1},
				runbook.Event{Type: runbook.EventStepPublished, Step: "a", Host: "local", Attempt: 1, Data: map[string]string{"DB_URL": "postgres://app:***@db"}},
				runbook.Event{Type: runbook.EventStepFinished, Step: "a", Host: "local", Attempt: 1, Data: map[string]string{"status": "succeeded", "secret_outputs": "DB_URL"}},
				runbook.Event{Type: runbook.EventStepStarted, Step: "b", Host: "local", Attempt: 1})
			status, err := h.eng.Resume(context.Background(), run.ID, p, ExecOptions{})
			var lost *LostOutputsError
			if tt.refused {
				if !errors.As(err, &lost) || !strings.Contains(err.Error(), "step c uses $DB_URL (published by step a)") || lost.From != "a" {
					t.Fatalf("Resume = %s, %v; want refused naming step c and $DB_URL", status, err)
				}
				if h.read("order") != "" {
					t.Fatalf("steps ran before the refusal: %q", h.read("order"))
				}
				return
			}
			if err != nil || status != runbook.RunSucceeded || h.read("order") != "b\ndone\n" {
				t.Fatalf("Resume = %s, %v, order %q", status, err, h.read("order"))
			}
		})
	}
}
