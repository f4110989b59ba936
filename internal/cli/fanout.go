package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/engine"
	"github.com/opsbook/opsbook/internal/runbook"
)

// printFanout lists, for --dry-run, the inventory hosts each step on a
// target resolves to in the plan's environment and the rolling batches
// they would run in.
func printFanout(w io.Writer, p *engine.Plan) {
	type docSteps struct {
		prefix string
		doc    *runbook.Document
	}
	docs := []docSteps{{"", p.Document}}
	if p.Rollback != nil {
		docs = append(docs, docSteps{"rollback/", p.Rollback})
	}
	header := false
	for _, d := range docs {
		for i := range d.doc.Steps {
			s := &d.doc.Steps[i]
			hosts, err := p.StepHosts(d.doc, s)
			if hosts == nil && err == nil {
				continue
			}
			if !header {
				fmt.Fprintf(w, "\nHosts in %s:\n", p.Environment)
				header = true
			}
			if err != nil {
				fmt.Fprintf(w, "  [%s%s] %v\n", d.prefix, s.ID, err)
				continue
			}
			if len(hosts) == 0 {
				fmt.Fprintf(w, "  [%s%s] skipped: %s\n", d.prefix, s.ID, p.NoHostsText(d.doc, s))
				continue
			}
			policy := engine.StepPolicy(s)
			fmt.Fprintf(w, "  [%s%s] target %s: %d host(s), parallel %d, batch %s, max_failures %s\n",
				d.prefix, s.ID, s.Target, len(hosts), policy.Parallel, orText(s.Batch, "all"), orText(s.MaxFailures, "0"))
			batches, err := policy.Batches(hosts)
			if err != nil {
				fmt.Fprintf(w, "    %v\n", err)
				continue
			}
			for n, b := range batches {
				names := make([]string, len(b))
				for j, h := range b {
					names[j] = hostLabel(h)
				}
				fmt.Fprintf(w, "    batch %d: %s\n", n+1, strings.Join(names, ", "))
			}
		}
	}
}

// hostLabel is name (user@address:port), leaving out what is default.
func hostLabel(h runbook.Host) string {
	addr := h.Address
	if h.User != "" {
		addr = h.User + "@" + addr
	}
	if h.Port != 0 && h.Port != 22 {
		addr = fmt.Sprintf("%s:%d", addr, h.Port)
	}
	if h.Bastion != "" {
		addr += " via " + h.Bastion
	}
	return fmt.Sprintf("%s (%s)", h.Name, addr)
}

// printHostRows adds one row per host under a fan-out step's row of the
// `opsbook show` summary (same columns: STEP STATUS ATTEMPTS DURATION
// CHECKS DETAIL).
func printHostRows(w io.Writer, s *runbook.StepState, now time.Time) {
	if !s.Fanout {
		return
	}
	for _, h := range s.Hosts {
		status, detail := string(h.Status), firstLine(h.Error)
		if h.NotStarted() {
			status = "not started"
		}
		var d time.Duration
		if !h.StartedAt.IsZero() {
			end := h.FinishedAt
			if end.IsZero() {
				end = now
			}
			d = end.Sub(h.StartedAt)
		}
		var checks []string
		for _, c := range s.Checks {
			if c.Host == h.Host {
				r := "pass"
				if !c.Passed {
					r = "fail"
				}
				checks = append(checks, c.Kind+":"+r)
			}
		}
		label := "  " + h.Host
		if h.Batch > 0 {
			label += fmt.Sprintf(" (batch %d)", h.Batch)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", label, status, h.Attempts, elapsed(d), strings.Join(checks, " "), detail)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
