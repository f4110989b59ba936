package engine

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/opsbook/opsbook/internal/runbook"
)

// LostOutputsError refuses a resume: a step still to run uses an output
// that an earlier step published with a secret value in it. Such values are
// stored masked ("***"), never in clear, so they cannot be restored, and
// handing the mask to a command would do the wrong thing quietly. The CLI
// maps it to exit status 2, the server to 409.
type LostOutputsError struct {
	RunID string
	Uses  []string // "step deploy uses $DB_URL (published by step make-db)"
	From  string   // the earliest step that published one of them
}

func (e *LostOutputsError) Error() string {
	return fmt.Sprintf("run %s cannot be resumed: %s; outputs that hold a secret are never stored, so they cannot be restored after an interruption. Start a new run from the step that publishes them (opsbook run … --from %s)",
		e.RunID, strings.Join(e.Uses, "; "), e.From)
}

// checkLostOutputs drops the outputs a resumed run cannot restore and
// refuses to go on when a step that has not completed uses one of them.
func (r *runner) checkLostOutputs(s *runbook.RunState) error {
	lost := map[string]string{} // output → the step that published it
	var order []string          // publishing steps, in run order
	for _, st := range s.Steps {
		for _, name := range st.SecretOutputs {
			lost[name] = st.ID
			delete(r.outputs, name)
			if !slices.Contains(order, st.ID) {
				order = append(order, st.ID)
			}
		}
	}
	if len(lost) == 0 {
		return nil
	}
	var uses []string
	from := ""
	for i := range r.plan.Document.Steps {
		step := &r.plan.Document.Steps[i]
		if st := s.Step(step.ID); st != nil && (st.Status == runbook.StepSucceeded || st.Status == runbook.StepSkipped) {
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(lost)) {
			if usesVariable(step, name) {
				uses = append(uses, fmt.Sprintf("step %s uses $%s (published by step %s)", step.ID, name, lost[name]))
				if from == "" || slices.Index(order, lost[name]) < slices.Index(order, from) {
					from = lost[name]
				}
			}
		}
	}
	if len(uses) == 0 {
		return nil
	}
	return &LostOutputsError{RunID: r.run.ID, Uses: uses, From: from}
}

// usesVariable reports whether any command or binding of the step reads
// the environment variable name ($NAME or ${NAME…}).
func usesVariable(step *runbook.Step, name string) bool {
	re := regexp.MustCompile(`\$(\{` + regexp.QuoteMeta(name) + `[}:#%/^,]|` + regexp.QuoteMeta(name) + `\b)`)
	for _, b := range []*runbook.Block{step.Action, step.Verify, step.Until, step.Expect, step.Call} {
		if b != nil && re.MatchString(b.Body) {
			return true
		}
	}
	return false
}
