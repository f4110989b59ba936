package workspace

import (
	"fmt"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
)

// Config is the parsed opsbook.yaml.
type Config struct {
	Name string `json:"name"`
	Lang string `json:"lang"` // "en" or "zh": language of generated documents
	// Server is the address of the workspace's opsbook server, when it has
	// one: reviews and checklist ticks are then the server's (verified),
	// and a protected environment's gates count only those, for local
	// commands too (docs/auth.md).
	Server       string        `json:"server,omitempty"`
	Projects     []Project     `json:"projects,omitempty"`
	Environments []Environment `json:"environments,omitempty"`
	// Notifications are the channels people are told through (see notify.go).
	Notifications []Channel `json:"notifications,omitempty"`
	// Signers are the people whose SSH-signed commits make their reviews
	// and ticks in lifecycle.jsonl verified (docs/auth.md).
	Signers []Signer `json:"signers,omitempty"`
}

// Signer is a person's git identity (the user.email their lifecycle records
// name) and the SSH public key their commits are signed with.
type Signer struct {
	Name string      `json:"name"`
	Key  string      `json:"key"`
	Pos  runbook.Pos `json:"-"`
}

// Project groups runbooks of one service, for permissions and the overview.
type Project struct {
	Name     string      `json:"name"`
	Runbooks []string    `json:"runbooks,omitempty"` // globs relative to the workspace; "**" matches any depth
	Tags     []string    `json:"tags,omitempty"`
	Pos      runbook.Pos `json:"-"`
}

// Environment is where a run happens, with its inventory and lifecycle gates.
type Environment struct {
	Name      string `json:"name"`
	Protected bool   `json:"protected"`
	// Hosts is the SSH inventory of the environment.
	Hosts []runbook.Host `json:"hosts,omitempty"`
	// KnownHosts is an extra known_hosts file, relative to the workspace
	// (e.g. ops/known_hosts), checked besides the user's own.
	KnownHosts string `json:"known_hosts,omitempty"`
	// Prometheus is the base URL (http://host:9090) runbook guards query
	// in this environment; $OPSBOOK_PROMETHEUS_URL overrides it.
	Prometheus string `json:"prometheus,omitempty"`
	// Variables are non-secret values given to every command as env vars.
	Variables map[string]string `json:"variables,omitempty"`
	// Reviewers is how many distinct people must approve a task's snapshot
	// before it runs here. Defaults to 2 when protected, else 0.
	Reviewers int `json:"reviewers"`
	// Rehearsal requires a successful run of the same snapshot in a
	// non-protected environment first. Defaults to true when protected.
	Rehearsal bool        `json:"rehearsal"`
	Windows   []Window    `json:"windows,omitempty"`
	Freezes   []Freeze    `json:"freezes,omitempty"`
	Pos       runbook.Pos `json:"-"`
}

// Window is a weekly change window: runs may start on one of Days between
// Start and End (HH:MM) in time zone TZ. An End at or before Start means the
// window crosses midnight into the next day; Days names the day it opens.
type Window struct {
	Days  []time.Weekday `json:"days"`
	Start string         `json:"start"`
	End   string         `json:"end"`
	TZ    string         `json:"tz"` // IANA name; empty means UTC
	Pos   runbook.Pos    `json:"-"`
}

// Freeze is a dated period in which no protected run may start. From and To
// are calendar dates, both included, at midnight UTC.
type Freeze struct {
	From   time.Time   `json:"from"`
	To     time.Time   `json:"to"`
	Reason string      `json:"reason,omitempty"`
	Pos    runbook.Pos `json:"-"`
}

// Location returns the window's time zone.
func (w Window) Location() (*time.Location, error) {
	if w.TZ == "" {
		return time.UTC, nil
	}
	return time.LoadLocation(w.TZ)
}

// Contains reports whether t falls inside the window.
func (w Window) Contains(t time.Time) bool {
	loc, err := w.Location()
	if err != nil {
		return false // Load validated the zone; an unloadable one never matches
	}
	start, err1 := parseClock(w.Start)
	end, err2 := parseClock(w.End)
	if err1 != nil || err2 != nil {
		return false
	}
	lt := t.In(loc)
	now := lt.Hour()*60 + lt.Minute()
	opensOn := func(d time.Weekday) bool {
		for _, day := range w.Days {
			if day == d {
				return true
			}
		}
		return false
	}
	if start < end {
		return opensOn(lt.Weekday()) && now >= start && now < end
	}
	// Crosses midnight: either the evening part of an opening day or the
	// morning part of the day after one.
	if now >= start && opensOn(lt.Weekday()) {
		return true
	}
	return now < end && opensOn((lt.Weekday()+6)%7)
}

func (w Window) String() string {
	days := make([]string, len(w.Days))
	for i, d := range w.Days {
		days[i] = d.String()[:3]
	}
	tz := w.TZ
	if tz == "" {
		tz = "UTC"
	}
	return fmt.Sprintf("%s %s-%s %s", strings.Join(days, ","), w.Start, w.End, tz)
}

// Contains reports whether t falls on a day of the freeze (in UTC).
func (f Freeze) Contains(t time.Time) bool {
	day := t.UTC().Truncate(24 * time.Hour)
	return !day.Before(f.From) && !day.After(f.To)
}

// InWindow reports whether a run may start at t as far as windows go: true
// when the environment declares no window or t is inside one of them.
func (e Environment) InWindow(t time.Time) bool {
	if len(e.Windows) == 0 {
		return true
	}
	for _, w := range e.Windows {
		if w.Contains(t) {
			return true
		}
	}
	return false
}

// FrozenAt returns the freeze t falls in, if any.
func (e Environment) FrozenAt(t time.Time) (Freeze, bool) {
	for _, f := range e.Freezes {
		if f.Contains(t) {
			return f, true
		}
	}
	return Freeze{}, false
}

// Host returns the inventory host with that name.
func (e Environment) Host(name string) (runbook.Host, bool) {
	for _, h := range e.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return runbook.Host{}, false
}

// Select returns the hosts a target selects, in inventory order.
func (e Environment) Select(t runbook.Target) []runbook.Host {
	var hs []runbook.Host
	for _, h := range e.Hosts {
		if t.Matches(h) {
			hs = append(hs, h)
		}
	}
	return hs
}

// parseClock parses "HH:MM" into minutes after midnight.
func parseClock(s string) (int, error) {
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q is not HH:MM (00:00 to 23:59)", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}
