package api_test

import (
	"bytes"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetricsScrape: /metrics answers what Prometheus' own parser reads
// (a test-only dependency: the server writes the format itself), and the
// figures follow what happened: the requests made, by route pattern and
// status, the step durations and the runs finished and stored by status.
func TestMetricsScrape(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		h := newHarness(t, dsn)
		h.publishAll()
		h.must(404, admin, "GET", "/api/v1/runs/r-nothere", nil)
		run := h.startRun(admin, searchRunbook, "staging", nil)
		status := h.waitRun(run.ID, "finished", finished).Status

		// The run's status is stored before the run's goroutine counts it
		// as finished, so scrape until the counter has caught up (a few
		// milliseconds) rather than judging the first scrape.
		var r response
		var fams map[string]*dto.MetricFamily
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			r = h.do(anonymous, "GET", "/metrics", nil)
			if r.status != 200 {
				t.Fatalf("GET /metrics: %d", r.status)
			}
			p := expfmt.NewTextParser(model.UTF8Validation)
			var err error
			fams, err = p.TextToMetricFamilies(bytes.NewReader(r.body))
			if err != nil {
				t.Fatalf("Prometheus' parser refuses the scrape: %v\n%s", err, r.body)
			}
			if f := fams["opsbook_runs_finished_total"]; (f != nil && f.GetMetric()[0].GetCounter().GetValue() >= 1) || time.Now().After(deadline) {
				break
			}
		}
		counted := false
		for _, m := range fams["opsbook_http_requests_total"].GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["method"] == "GET" && l["route"] == "/api/v1/runs/{id}" && l["code"] == "404" && m.GetCounter().GetValue() >= 1 {
				counted = true
			}
		}
		if !counted {
			t.Errorf("the 404 on GET /api/v1/runs/{id} is not counted by its route pattern:\n%s", r.body)
		}
		stored := 0.0
		for _, m := range fams["opsbook_runs"].GetMetric() {
			if m.GetLabel()[0].GetValue() == string(status) {
				stored = m.GetGauge().GetValue()
			}
		}
		if stored < 1 {
			t.Errorf("opsbook_runs{status=%q} = %g, want ≥ 1", status, stored)
		}
		if f := fams["opsbook_runs_finished_total"]; f == nil || f.GetMetric()[0].GetCounter().GetValue() < 1 {
			t.Errorf("opsbook_runs_finished_total missing or 0")
		}
		if f := fams["opsbook_step_duration_seconds"]; f == nil || f.GetMetric()[0].GetHistogram().GetSampleCount() < 1 {
			t.Errorf("opsbook_step_duration_seconds has no observation")
		}
		for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "opsbook_run_queue_depth", "opsbook_runs_executing"} {
			if fams[name] == nil {
				t.Errorf("%s missing", name)
			}
		}
	})
}
