package metrics_test

import (
	"math"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/opsbook/opsbook/internal/metrics"
)

// parse reads an exposition with Prometheus' own text parser (a test-only
// dependency), which refuses what a real scraper would refuse: bad
// escaping, a histogram without +Inf, a series before its TYPE.
func parse(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("Prometheus' parser refuses the exposition: %v\n%s", err, text)
	}
	return fams
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestExpositionParsesAndCounts(t *testing.T) {
	r := metrics.NewRegistry()
	req := r.NewCounterVec("x_requests_total", "Requests.\nSecond line with a \\ backslash.", "route", "code")
	lat := r.NewHistogramVec("x_seconds", "Latency.", []float64{0.1, 1}, "route")
	r.GaugeFunc("x_depth", "Depth.", func() float64 { return 3 })
	r.Func("gauge", "x_runs", "Runs.", []string{"status"}, func() []metrics.Sample {
		return []metrics.Sample{{Labels: []string{"failed"}, Value: 2}, {Labels: []string{"ok"}, Value: 5}}
	})
	r.Func("gauge", "x_absent", "Left out when it has nothing.", nil, func() []metrics.Sample { return nil })
	r.RegisterRuntime()

	// Label values a route pattern or status can hold, hostile ones too:
	// quotes, backslashes, newlines, braces, UTF-8.
	hostile := "GET /a/{id}\n\"x\"\\y 运行"
	req.With(hostile, "200").Inc()
	req.With(hostile, "200").Add(2)
	req.With("/b", "500").Inc()
	for _, v := range []float64{0.05, 0.1, 0.5, 7} {
		lat.With("/b").Observe(v)
	}

	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if ct := w.Header().Get("Content-Type"); ct != metrics.ContentType {
		t.Errorf("content type %q", ct)
	}
	fams := parse(t, w.Body.String())

	got := map[string]float64{}
	for _, m := range fams["x_requests_total"].GetMetric() {
		got[label(m, "route")+"|"+label(m, "code")] = m.GetCounter().GetValue()
	}
	if got[hostile+"|200"] != 3 || got["/b|500"] != 1 || len(got) != 2 {
		t.Errorf("counters %v: want 3 for the hostile route (escaped and read back whole) and 1 for /b", got)
	}
	if h := fams["x_requests_total"].GetHelp(); h != "Requests.\nSecond line with a \\ backslash." {
		t.Errorf("help read back as %q", h)
	}
	h := fams["x_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 4 || math.Abs(h.GetSampleSum()-7.65) > 1e-9 {
		t.Errorf("histogram count %d sum %g, want 4 and 7.65", h.GetSampleCount(), h.GetSampleSum())
	}
	// le is inclusive and buckets are cumulative: 0.05 and 0.1 ≤ 0.1;
	// 0.5 ≤ 1 too; 7 only in +Inf.
	var cum []uint64
	for _, b := range h.GetBucket() {
		cum = append(cum, b.GetCumulativeCount())
	}
	if len(cum) < 2 || cum[0] != 2 || cum[1] != 3 {
		t.Errorf("cumulative buckets %v, want [2 3 …]", cum)
	}
	if fams["x_depth"].GetMetric()[0].GetGauge().GetValue() != 3 {
		t.Error("gauge func not read")
	}
	if n := len(fams["x_runs"].GetMetric()); n != 2 {
		t.Errorf("%d run series, want 2", n)
	}
	if _, ok := fams["x_absent"]; ok {
		t.Error("a family without samples was written (an empty TYPE block)")
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total",
		"process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"} {
		f, ok := fams[name]
		if !ok || len(f.GetMetric()) != 1 {
			t.Errorf("%s missing", name)
			continue
		}
		m := f.GetMetric()[0]
		if v := m.GetGauge().GetValue() + m.GetCounter().GetValue(); v <= 0 {
			t.Errorf("%s = %g, want > 0", name, v)
		}
	}
}

func TestMisuseIsRefused(t *testing.T) {
	r := metrics.NewRegistry()
	c := r.NewCounterVec("y_total", "Y.", "a")
	for name, f := range map[string]func(){
		"a counter going down":     func() { c.With("1").Add(-1) },
		"wrong label count":        func() { c.With("1", "2") },
		"a name registered twice":  func() { r.NewCounterVec("y_total", "Y.", "a") },
		"unsorted histogram bound": func() { r.NewHistogramVec("z", "Z.", []float64{1, 0.5}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: accepted", name)
				}
			}()
			f()
		}()
	}
}

func BenchmarkCounterInc(b *testing.B) {
	c := metrics.NewRegistry().NewCounterVec("b_total", "B.", "method", "route", "code")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.With("GET", "/api/v1/runs", "200").Inc()
		}
	})
}
