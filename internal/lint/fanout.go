package lint

import (
	"strings"

	"github.com/opsbook/opsbook/internal/fanout"
	"github.com/opsbook/opsbook/internal/runbook"
)

// fanoutAttrs are the attributes that spread a step over its target's hosts.
var fanoutAttrs = []string{"parallel", "batch", "max_failures"}

// fanoutPolicy checks a step's parallel, batch and max_failures the way
// the engine will read them (fanout.Policy.Validate), at the attribute
// that is wrong, and warns when they can have no effect: on a step that
// runs on the local host, or a parallel larger than a counted batch.
func (l *linter) fanoutPolicy(s runbook.Step, primary *runbook.Block) {
	attrs := map[string]runbook.Attr{}
	for _, a := range primary.Attrs {
		for _, k := range fanoutAttrs {
			if a.Key == k {
				attrs[k] = a
			}
		}
	}
	if len(attrs) == 0 {
		return
	}
	if s.Target == "" || s.Target == runbook.TargetLocal {
		for _, k := range fanoutAttrs {
			if a, ok := attrs[k]; ok {
				l.warnf(a.Pos, "fanout-policy", "%s=%s has no effect: step %q runs on the local host; give it target=NAME of hosts declared under targets:, or drop %s",
					a.Key, a.Value, s.ID, a.Key)
			}
		}
		return
	}
	policy := fanout.Policy{Parallel: max(s.Parallel, 1), Batch: s.Batch, MaxFailures: s.MaxFailures}
	if err := policy.Validate(); err != nil {
		pos := primary.Pos
		for k, a := range attrs {
			if strings.HasPrefix(err.Error(), k+"=") {
				pos = a.Pos
			}
		}
		l.errorf(pos, "fanout-policy", "%v", err)
		return
	}
	if _, counted, batch := countedBatch(s.Batch); counted && s.Parallel > batch {
		l.warnf(attrs["parallel"].Pos, "fanout-policy", "parallel=%d exceeds batch=%s: a batch never has more than %d hosts running; lower parallel or raise batch",
			s.Parallel, s.Batch, batch)
	}
}

// countedBatch reads a batch written as a number of hosts.
func countedBatch(b string) (string, bool, int) {
	if b == "" || strings.HasSuffix(b, "%") {
		return b, false, 0
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return b, false, 0
		}
		n = n*10 + int(c-'0')
	}
	return b, true, n
}
