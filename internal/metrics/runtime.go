package metrics

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RegisterRuntime adds the go_* and process_* figures dashboards expect,
// under the names client_golang gives them: goroutines, threads, heap and
// GC from the Go runtime; CPU time, resident and virtual memory, open and
// maximum file descriptors and start time of this process (Linux /proc;
// where /proc is missing those series are left out).
func (r *Registry) RegisterRuntime() {
	start := float64(time.Now().UnixNano()) / 1e9
	if st, err := os.ReadFile("/proc/self/stat"); err == nil {
		if t, ok := procStartTime(string(st)); ok {
			start = t
		}
	}
	r.GaugeFunc("go_goroutines", "Number of goroutines that currently exist.", func() float64 { return float64(runtime.NumGoroutine()) })
	r.GaugeFunc("go_threads", "Number of OS threads created.", func() float64 {
		n, _ := runtime.ThreadCreateProfile(nil)
		return float64(n)
	})
	r.Func("gauge", "go_info", "Information about the Go environment.", []string{"version"}, func() []Sample {
		return []Sample{{Labels: []string{runtime.Version()}, Value: 1}}
	})
	mem := func(pick func(*runtime.MemStats) float64) func() float64 {
		return func() float64 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return pick(&ms)
		}
	}
	r.GaugeFunc("go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and still in use.", mem(func(m *runtime.MemStats) float64 { return float64(m.HeapAlloc) }))
	r.GaugeFunc("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.", mem(func(m *runtime.MemStats) float64 { return float64(m.HeapInuse) }))
	r.GaugeFunc("go_memstats_sys_bytes", "Number of bytes obtained from system.", mem(func(m *runtime.MemStats) float64 { return float64(m.Sys) }))
	r.Func("counter", "go_memstats_alloc_bytes_total", "Total number of bytes allocated, even if freed.", nil, func() []Sample {
		return []Sample{{Value: mem(func(m *runtime.MemStats) float64 { return float64(m.TotalAlloc) })()}}
	})
	r.Func("counter", "go_gc_cycles_total", "Number of completed GC cycles.", nil, func() []Sample {
		return []Sample{{Value: mem(func(m *runtime.MemStats) float64 { return float64(m.NumGC) })()}}
	})

	r.Func("counter", "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", nil, func() []Sample {
		var ru syscall.Rusage
		if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
			return nil
		}
		sec := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
		return []Sample{{Value: sec(ru.Utime) + sec(ru.Stime)}}
	})
	statm := func(field int) []Sample {
		b, err := os.ReadFile("/proc/self/statm")
		if err != nil {
			return nil
		}
		f := strings.Fields(string(b))
		if len(f) <= field {
			return nil
		}
		pages, err := strconv.ParseFloat(f[field], 64)
		if err != nil {
			return nil
		}
		return []Sample{{Value: pages * float64(os.Getpagesize())}}
	}
	r.Func("gauge", "process_virtual_memory_bytes", "Virtual memory size in bytes.", nil, func() []Sample { return statm(0) })
	r.Func("gauge", "process_resident_memory_bytes", "Resident memory size in bytes.", nil, func() []Sample { return statm(1) })
	r.Func("gauge", "process_open_fds", "Number of open file descriptors.", nil, func() []Sample {
		fds, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return nil
		}
		return []Sample{{Value: float64(len(fds))}}
	})
	r.Func("gauge", "process_max_fds", "Maximum number of open file descriptors.", nil, func() []Sample {
		var lim syscall.Rlimit
		if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
			return nil
		}
		return []Sample{{Value: float64(lim.Cur)}}
	})
	r.GaugeFunc("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", func() float64 { return start })
}

// procStartTime reads the start time from /proc/self/stat (field 22, in
// clock ticks since boot) and /proc/stat's btime.
func procStartTime(stat string) (float64, bool) {
	// The command name (field 2) may hold spaces and parentheses: split
	// after its last ')'.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 20 {
		return 0, false
	}
	ticks, err := strconv.ParseFloat(f[19], 64) // field 22 overall
	if err != nil {
		return 0, false
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			boot, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, false
			}
			return boot + ticks/100, true // USER_HZ is 100 on Linux
		}
	}
	return 0, false
}
