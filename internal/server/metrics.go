package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus metrics, in a registry of its own so
// that several servers in one test process do not collide.
type metrics struct {
	registry     *prometheus.Registry
	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	stepDuration *prometheus.HistogramVec
	runsFinished *prometheus.CounterVec
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opsbook_http_requests_total", Help: "HTTP requests by method, route pattern and status.",
		}, []string{"method", "route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "opsbook_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route"}),
		stepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "opsbook_step_duration_seconds", Help: "Duration of finished steps by status.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}, []string{"status"}),
		runsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opsbook_runs_finished_total", Help: "Runs executed by this server that ended, by final status.",
		}, []string{"status"}),
	}
	m.registry.MustRegister(m.httpRequests, m.httpDuration, m.stepDuration, m.runsFinished,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "opsbook_run_queue_depth", Help: "Runs accepted by this server and waiting for a worker.",
		}, func() float64 { return float64(s.runs.QueueDepth()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "opsbook_runs_executing", Help: "Runs executing on this server's workers now.",
		}, func() float64 { return float64(s.runs.Executing()) }),
		&runsByStatus{s: s},
	)
	return m
}

// runsByStatus reports the stored runs by status at scrape time, so the
// figure is right across restarts and several servers on one database.
type runsByStatus struct{ s *Server }

var runsDesc = prometheus.NewDesc("opsbook_runs", "Stored runs by status.", []string{"status"}, nil)

func (c *runsByStatus) Describe(ch chan<- *prometheus.Desc) { ch <- runsDesc }

func (c *runsByStatus) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.s.store.CountRunsByStatus(ctx)
	if err != nil {
		c.s.log.Warn("metrics: count runs", "err", err)
		return
	}
	for status, n := range counts {
		ch <- prometheus.MustNewConstMetric(runsDesc, prometheus.GaugeValue, float64(n), string(status))
	}
}
