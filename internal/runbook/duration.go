package runbook

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration reads a duration as written in runbooks: Go's syntax
// ("90s", "2m", "1h30m") plus a leading day count ("1d", "1d12h").
// Negative durations are rejected: no timeout or estimate can be negative.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration; write one like 90s, 5m, 1h30m or 1d")
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("duration %q is negative; write a positive one like 5m", s)
	}
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n > 100000 {
			return 0, fmt.Errorf("duration %q: the day count must be a whole number, like 1d or 2d12h", s)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil && s != "0" {
		return 0, fmt.Errorf("duration %q has no unit; write %ss or %sm", s, s, s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q is not valid; write one like 90s, 5m, 1h30m or 1d", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative; write a positive one like 5m", s)
	}
	return days + d, nil
}
