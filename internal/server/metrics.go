package server

import (
	"context"
	"time"

	"github.com/opsbook/opsbook/internal/metrics"
)

// serverMetrics are the server's Prometheus metrics, in a registry of its
// own so that several servers in one test process do not collide.
type serverMetrics struct {
	registry     *metrics.Registry
	httpRequests *metrics.CounterVec
	httpDuration *metrics.HistogramVec
	stepDuration *metrics.HistogramVec
	runsFinished *metrics.CounterVec
}

func newMetrics(s *Server) *serverMetrics {
	r := metrics.NewRegistry()
	m := &serverMetrics{
		registry: r,
		httpRequests: r.NewCounterVec("opsbook_http_requests_total", "HTTP requests by method, route pattern and status.",
			"method", "route", "code"),
		httpDuration: r.NewHistogramVec("opsbook_http_request_duration_seconds", "HTTP request latency by route pattern.",
			[]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}, "method", "route"),
		stepDuration: r.NewHistogramVec("opsbook_step_duration_seconds", "Duration of finished steps by status.",
			metrics.ExponentialBuckets(0.01, 4, 10), "status"),
		runsFinished: r.NewCounterVec("opsbook_runs_finished_total", "Runs executed by this server that ended, by final status.",
			"status"),
	}
	r.RegisterRuntime()
	r.GaugeFunc("opsbook_run_queue_depth", "Runs accepted by this server and waiting for a worker.",
		func() float64 { return float64(s.runs.QueueDepth()) })
	r.GaugeFunc("opsbook_runs_executing", "Runs executing on this server's workers now.",
		func() float64 { return float64(s.runs.Executing()) })
	// Stored runs by status, read at scrape time, so the figure is right
	// across restarts and several servers on one database.
	r.Func("gauge", "opsbook_runs", "Stored runs by status.", []string{"status"}, func() []metrics.Sample {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		counts, err := s.store.CountRunsByStatus(ctx)
		if err != nil {
			s.log.Warn("metrics: count runs", "err", err)
			return nil
		}
		out := make([]metrics.Sample, 0, len(counts))
		for status, n := range counts {
			out = append(out, metrics.Sample{Labels: []string{string(status)}, Value: float64(n)})
		}
		return out
	})
	return m
}
