// Package metrics keeps the server's counters and histograms and writes
// them in the Prometheus text exposition format (version 0.0.4).
//
// It replaces prometheus/client_golang, whose package initialisation (its
// default registry, the Go collector's runtime/metrics tables, protobuf)
// cost every command of the one binary about 5 ms before main, including
// a plain `opsbook run` that never serves a scrape. What the server needs
// is small: labelled counters, histograms with fixed buckets, gauges read
// at scrape time, and the usual go_* and process_* figures.
package metrics

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// ContentType is the media type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Sample is one series of a family read at scrape time: its label values
// (in the family's label order) and value.
type Sample struct {
	Labels []string
	Value  float64
}

// family is one metric name with its help, type and series.
type family interface {
	name() string
	write(w *bufio.Writer)
}

// Registry holds the families a server exposes.
type Registry struct {
	mu       sync.Mutex
	families map[string]family
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{families: map[string]family{}} }

func (r *Registry) add(f family) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.families[f.name()]; dup {
		panic("metrics: " + f.name() + " registered twice")
	}
	r.families[f.name()] = f
}

// WriteTo writes every family, sorted by name, in the text format.
func (r *Registry) WriteTo(out io.Writer) (int64, error) {
	r.mu.Lock()
	fs := make([]family, 0, len(r.families))
	for _, f := range r.families {
		fs = append(fs, f)
	}
	r.mu.Unlock()
	sort.Slice(fs, func(i, j int) bool { return fs[i].name() < fs[j].name() })
	cw := &countingWriter{w: out}
	w := bufio.NewWriter(cw)
	for _, f := range fs {
		f.write(w)
	}
	err := w.Flush()
	return cw.n, err
}

// ServeHTTP answers a scrape.
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", ContentType)
	_, _ = r.WriteTo(w)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// desc is what every family shares.
type desc struct {
	fname, help, kind string
	labels            []string
}

func (d *desc) name() string { return d.fname }

func (d *desc) header(w *bufio.Writer) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", d.fname, escapeHelp(d.help), d.fname, d.kind)
}

// series writes one line: name{labels} value. extra is one more label
// (the histogram's le) or "".
func (d *desc) series(w *bufio.Writer, suffix string, values []string, extraName, extraValue string, v float64) {
	w.WriteString(d.fname)
	w.WriteString(suffix)
	if len(values) > 0 || extraName != "" {
		w.WriteByte('{')
		for i, l := range d.labels {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteString(l)
			w.WriteString(`="`)
			w.WriteString(escapeLabel(values[i]))
			w.WriteByte('"')
		}
		if extraName != "" {
			if len(d.labels) > 0 {
				w.WriteByte(',')
			}
			w.WriteString(extraName)
			w.WriteString(`="`)
			w.WriteString(extraValue)
			w.WriteByte('"')
		}
		w.WriteByte('}')
	}
	w.WriteByte(' ')
	w.WriteString(formatFloat(v))
	w.WriteByte('\n')
}

// vec keeps one value of type T per combination of label values.
type vec[T any] struct {
	desc
	mu    sync.Mutex
	cells map[string]*T
	keys  map[string][]string
	make  func() *T
}

func (v *vec[T]) with(values []string) *T {
	if len(values) != len(v.labels) {
		panic(fmt.Sprintf("metrics: %s takes %d label values, got %d", v.fname, len(v.labels), len(values)))
	}
	key := strings.Join(values, "\xff")
	v.mu.Lock()
	defer v.mu.Unlock()
	c, ok := v.cells[key]
	if !ok {
		c = v.make()
		v.cells[key] = c
		v.keys[key] = append([]string(nil), values...)
	}
	return c
}

// sorted returns the label values and cells in a stable order.
func (v *vec[T]) sorted() ([][]string, []*T) {
	v.mu.Lock()
	defer v.mu.Unlock()
	keys := make([]string, 0, len(v.cells))
	for k := range v.cells {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	labels := make([][]string, len(keys))
	cells := make([]*T, len(keys))
	for i, k := range keys {
		labels[i], cells[i] = v.keys[k], v.cells[k]
	}
	return labels, cells
}

func newVec[T any](kind, name, help string, labels []string, mk func() *T) *vec[T] {
	return &vec[T]{desc: desc{fname: name, help: help, kind: kind, labels: labels},
		cells: map[string]*T{}, keys: map[string][]string{}, make: mk}
}

// Counter only goes up.
type Counter struct {
	mu sync.Mutex
	v  float64
}

// Inc adds one.
func (c *Counter) Inc() { c.Add(1) }

// Add adds d, which must not be negative.
func (c *Counter) Add(d float64) {
	if d < 0 {
		panic("metrics: a counter cannot go down")
	}
	c.mu.Lock()
	c.v += d
	c.mu.Unlock()
}

func (c *Counter) value() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.v
}

// CounterVec is a counter per combination of label values.
type CounterVec struct{ v *vec[Counter] }

// NewCounterVec registers a labelled counter.
func (r *Registry) NewCounterVec(name, help string, labels ...string) *CounterVec {
	c := &CounterVec{newVec("counter", name, help, labels, func() *Counter { return &Counter{} })}
	r.add(c)
	return c
}

// With returns the counter of these label values.
func (c *CounterVec) With(values ...string) *Counter { return c.v.with(values) }

func (c *CounterVec) name() string { return c.v.fname }

func (c *CounterVec) write(w *bufio.Writer) {
	labels, cells := c.v.sorted()
	if len(cells) == 0 {
		return
	}
	c.v.header(w)
	for i, cell := range cells {
		c.v.series(w, "", labels[i], "", "", cell.value())
	}
}

// Histogram counts observations into cumulative buckets.
type Histogram struct {
	mu     sync.Mutex
	upper  []float64
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	sum    float64
	n      uint64
}

// Observe records one value.
func (h *Histogram) Observe(v float64) {
	i := sort.SearchFloat64s(h.upper, v) // first bound >= v: le is inclusive
	h.mu.Lock()
	h.counts[i]++
	h.sum += v
	h.n++
	h.mu.Unlock()
}

// HistogramVec is a histogram per combination of label values.
type HistogramVec struct {
	v     *vec[Histogram]
	upper []float64
}

// NewHistogramVec registers a labelled histogram with these bucket upper
// bounds (sorted, +Inf implied).
func (r *Registry) NewHistogramVec(name, help string, buckets []float64, labels ...string) *HistogramVec {
	if !sort.Float64sAreSorted(buckets) || len(buckets) == 0 || math.IsInf(buckets[len(buckets)-1], 1) {
		panic("metrics: " + name + ": buckets must be sorted, finite and not empty")
	}
	upper := append([]float64(nil), buckets...)
	h := &HistogramVec{upper: upper}
	h.v = newVec("histogram", name, help, labels, func() *Histogram {
		return &Histogram{upper: upper, counts: make([]uint64, len(upper)+1)}
	})
	r.add(h)
	return h
}

// With returns the histogram of these label values.
func (h *HistogramVec) With(values ...string) *Histogram { return h.v.with(values) }

func (h *HistogramVec) name() string { return h.v.fname }

func (h *HistogramVec) write(w *bufio.Writer) {
	labels, cells := h.v.sorted()
	if len(cells) == 0 {
		return
	}
	h.v.header(w)
	for i, cell := range cells {
		cell.mu.Lock()
		counts, sum, n := append([]uint64(nil), cell.counts...), cell.sum, cell.n
		cell.mu.Unlock()
		var cum uint64
		for b, upper := range h.upper {
			cum += counts[b]
			h.v.series(w, "_bucket", labels[i], "le", formatFloat(upper), float64(cum))
		}
		h.v.series(w, "_bucket", labels[i], "le", "+Inf", float64(n))
		h.v.series(w, "_sum", labels[i], "", "", sum)
		h.v.series(w, "_count", labels[i], "", "", float64(n))
	}
}

// ExponentialBuckets returns n bounds: start, start·factor, …
func ExponentialBuckets(start, factor float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = start
		start *= factor
	}
	return out
}

// funcFamily is read at scrape time.
type funcFamily struct {
	desc
	read func() []Sample
}

func (f *funcFamily) write(w *bufio.Writer) {
	samples := f.read()
	if len(samples) == 0 {
		return
	}
	sort.Slice(samples, func(i, j int) bool {
		return strings.Join(samples[i].Labels, "\xff") < strings.Join(samples[j].Labels, "\xff")
	})
	f.header(w)
	for _, s := range samples {
		if len(s.Labels) != len(f.labels) {
			panic(fmt.Sprintf("metrics: %s takes %d label values, got %d", f.fname, len(f.labels), len(s.Labels)))
		}
		f.series(w, "", s.Labels, "", "", s.Value)
	}
}

// GaugeFunc registers a gauge read at scrape time.
func (r *Registry) GaugeFunc(name, help string, read func() float64) {
	r.add(&funcFamily{desc: desc{fname: name, help: help, kind: "gauge"}, read: func() []Sample {
		return []Sample{{Value: read()}}
	}})
}

// Func registers a family of the given kind ("gauge" or "counter") whose
// series are read at scrape time; read returning nothing leaves the family
// out of the scrape.
func (r *Registry) Func(kind, name, help string, labels []string, read func() []Sample) {
	r.add(&funcFamily{desc: desc{fname: name, help: help, kind: kind, labels: labels}, read: read})
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

var labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

func escapeHelp(s string) string { return helpEscaper.Replace(s) }

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
