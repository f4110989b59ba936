package engine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// promServer is a real HTTP server on loopback that answers Prometheus
// instant queries (/api/v1/query) for one metric with a value the test
// sets; the real Prometheus cannot run here.
type promServer struct {
	*httptest.Server
	mu    sync.Mutex
	value string // "" answers an empty vector; "500" an HTTP error
}

func newPromServer(t *testing.T, value string) *promServer {
	p := &promServer{value: value}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		v := p.value
		p.mu.Unlock()
		switch {
		case r.URL.Path != "/api/v1/query" || r.URL.Query().Get("query") != "error_rate":
			http.Error(w, `{"status":"error","error":"bad query"}`, http.StatusBadRequest)
		case v == "500":
			http.Error(w, `{"status":"error","error":"storage is down"}`, http.StatusInternalServerError)
		case v == "":
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
		default:
			fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"%s"]}]}}`, v)
		}
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *promServer) set(v string) {
	p.mu.Lock()
	p.value = v
	p.mu.Unlock()
}

func guardFront(onBreach string) string {
	return "rollback: undo.md\nguards:\n  - name: errors\n    query: error_rate\n    threshold: \"> 1\"\n    interval: 50ms\n    on_breach: " + onBreach + "\n"
}

// Fault class: a metric breach while a long step runs. The guard must act
// during the step: on_breach: rollback kills the step's process group at
// once and rolls back, instead of waiting for the step to end.
func TestGuardBreachDuringStepStopsItAndRollsBack(t *testing.T) {
	prom := newPromServer(t, "0.5")
	h := newHarness(t)
	d := h.doc("rb.md", guardFront("rollback"),
		step("Long", "sh {id=long}", "echo long >> order; sleep 30; echo finished >> order")+
			step("After", "sh {id=after}", "echo after >> order"))
	p := h.plan(d, nil)
	p.PrometheusURL = prom.URL // the environment's prometheus: setting
	p.Rollback = h.doc("undo.md", "kind: rollback\ntitle: Undo\n", step("Undo", "sh {id=undo}", "echo undo >> order"))
	start := time.Now()
	status, s := h.run(p, StartOptions{}, ExecOptions{Observe: func(ev runbook.Event) {
		if ev.Type == runbook.EventStepStarted && ev.Step == "long" {
			prom.set("7")
		}
	}})
	if status != runbook.RunRolledBack {
		t.Fatalf("status %s, want rolled_back; steps %s", status, statuses(s))
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("the run took %v: the breach waited for the 30 s step to end", took)
	}
	if len(s.Breaches) != 1 || s.Breaches[0].Step != "long" || s.Breaches[0].Action != "rollback" {
		t.Fatalf("breaches %+v", s.Breaches)
	}
	if got := h.read("order"); got != "long\nundo\n" {
		t.Fatalf("order %q, want the step stopped and the rollback run", got)
	}
	if st := s.Step("long"); st.Status != runbook.StepFailed || !strings.Contains(st.Error, "guard errors") {
		t.Fatalf("long: %s %q", st.Status, st.Error)
	}
	if s.Rollback == nil || !strings.Contains(s.Rollback.Reason, "on_breach=rollback") {
		t.Fatalf("rollback %+v", s.Rollback)
	}
}

// Fault class: a breach during the last step. It used to be dropped and the
// run succeeded with no event; now it is recorded and, with on_breach:
// pause, asked about before the run can end.
func TestGuardBreachDuringLastStepIsNotDropped(t *testing.T) {
	for _, tt := range []struct {
		name    string
		decider Decider
		want    runbook.RunStatus
	}{
		{"operator aborts", answer("abort"), runbook.RunFailed},
		{"operator rolls back", answer("rollback"), runbook.RunRolledBack},
		{"operator continues", answer("continue"), runbook.RunSucceeded},
		{"nobody to ask", nobody{}, runbook.RunFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prom := newPromServer(t, "0.5")
			h := newHarness(t)
			d := h.doc("rb.md", guardFront("pause"), step("Last", "sh {id=last}", "echo last >> order; sleep 0.5"))
			p := h.plan(d, nil)
			p.PrometheusURL = prom.URL
			p.Rollback = h.doc("undo.md", "kind: rollback\ntitle: Undo\n", step("Undo", "sh {id=undo}", "echo undo >> order"))
			status, s := h.run(p, StartOptions{}, ExecOptions{Decider: tt.decider, Observe: func(ev runbook.Event) {
				if ev.Type == runbook.EventStepStarted && ev.Step == "last" {
					prom.set("7")
				}
			}})
			if status != tt.want {
				t.Fatalf("status %s, want %s; steps %s", status, tt.want, statuses(s))
			}
			if len(s.Breaches) != 1 || s.Breaches[0].Step != "last" || s.Breaches[0].Action != "pause" {
				t.Fatalf("breaches %+v", s.Breaches)
			}
			if st := s.Step("last"); st.Status != runbook.StepSucceeded {
				t.Fatalf("pause stopped the step: %s %q", st.Status, st.Error)
			}
		})
	}
}

// Fault class: a guard that cannot be evaluated (no URL, an HTTP error, an
// empty result). In a protected environment the run is refused before it
// starts; elsewhere it runs and the failure is an event.
func TestGuardThatCannotBeEvaluated(t *testing.T) {
	for _, tt := range []struct {
		name  string
		value string
		noURL bool
		want  string
	}{
		{"no URL", "0.5", true, "no Prometheus URL"},
		{"HTTP error", "500", false, "storage is down"},
		{"empty result", "", false, "returned no series"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prom := newPromServer(t, tt.value)
			h := newHarness(t)
			d := h.doc("rb.md", guardFront("rollback"), step("S", "sh {id=s}", "echo s >> order; sleep 0.3"))
			p := h.plan(d, nil)
			p.Rollback = h.doc("undo.md", "kind: rollback\ntitle: Undo\n", step("Undo", "sh {id=undo}", "echo undo >> order"))
			if !tt.noURL {
				p.PrometheusURL = prom.URL
			}
			p.Protected = true
			_, err := h.eng.Start(context.Background(), p, StartOptions{})
			var ge *GuardError
			if !errors.As(err, &ge) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("protected: Start = %v, want a GuardError mentioning %q", err, tt.want)
			}
			if runs, _ := h.st.ListRuns(context.Background(), store.RunFilter{}); len(runs) != 0 {
				t.Fatalf("a refused run was recorded: %+v", runs)
			}

			p.Protected = false
			status, s := h.run(p, StartOptions{}, ExecOptions{})
			if status != runbook.RunSucceeded || h.read("order") != "s\n" {
				t.Fatalf("unprotected: status %s order %q", status, h.read("order"))
			}
			if len(s.Anomalies) == 0 || !strings.Contains(s.Anomalies[0].Text, tt.want) {
				t.Fatalf("unprotected: the guard failure is not an event: %+v", s.Anomalies)
			}
		})
	}
}
