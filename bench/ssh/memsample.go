package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// sampleTree returns the peak, over samples every 20ms until stop closes,
// of the summed resident memory of root and all its descendants.
func sampleTree(root int, stop <-chan struct{}) int64 {
	page := int64(os.Getpagesize())
	var peak int64
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		peak = max(peak, treeRSS(root)*page)
		select {
		case <-stop:
			return peak
		case <-t.C:
		}
	}
}

// treeRSS sums resident pages of root's process tree, read from /proc.
func treeRSS(root int) int64 {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	parent := map[int]int{}
	rss := map[int]int64{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name may hold spaces and parentheses: fields start
		// after the last ')'. Then: state ppid ... (rss is field 24).
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 22 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pages, _ := strconv.ParseInt(f[21], 10, 64)
		parent[pid] = ppid
		rss[pid] = pages
	}
	var sum int64
	for pid, pages := range rss {
		for p := pid; p > 1; p = parent[p] {
			if p == root {
				sum += pages
				break
			}
		}
	}
	return sum
}
