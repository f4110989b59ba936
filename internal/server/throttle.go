package server

import (
	"net/http"
	"sync"
	"time"
)

// Login throttling: after loginFreeFailures wrong passwords for one
// account (or loginFreeFailures*4 from one address) within
// loginFailureMemory, each further attempt must wait, doubling from one
// second up to loginMaxDelay, whether its password is right or not. A
// successful sign-in clears the account's count. The counts live in the
// server process (each node throttles on its own).
const (
	loginFreeFailures  = 5
	loginFailureMemory = 15 * time.Minute
	loginMaxDelay      = 5 * time.Minute
)

// ErrThrottled is the answer to a sign-in attempt made too soon.
var ErrThrottled = Errorf(http.StatusTooManyRequests, "throttled", "too many failed sign-ins for this account or address; wait a few minutes and try again")

type failures struct {
	count int
	last  time.Time
}

type loginThrottle struct {
	mu   sync.Mutex
	seen map[string]*failures
}

func (t *loginThrottle) delay(f *failures, free int) time.Duration {
	if f == nil || f.count < free {
		return 0
	}
	d := time.Second << min(f.count-free, 16)
	return min(d, loginMaxDelay)
}

// allow reports whether an attempt on keys may be checked now.
func (t *loginThrottle) allow(now time.Time, account, address string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for key, free := range map[string]int{"u:" + account: loginFreeFailures, "a:" + address: 4 * loginFreeFailures} {
		f := t.seen[key]
		if f != nil && now.Sub(f.last) > loginFailureMemory {
			delete(t.seen, key)
			continue
		}
		if d := t.delay(f, free); d > 0 && now.Before(f.last.Add(d)) {
			return false
		}
	}
	return true
}

// fail counts a failed attempt against the account and the address.
func (t *loginThrottle) fail(now time.Time, account, address string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seen == nil {
		t.seen = map[string]*failures{}
	}
	if len(t.seen) > 100_000 { // a flood of names: forget the old ones
		for k, f := range t.seen {
			if now.Sub(f.last) > loginFailureMemory {
				delete(t.seen, k)
			}
		}
	}
	for _, key := range []string{"u:" + account, "a:" + address} {
		f := t.seen[key]
		if f == nil {
			f = &failures{}
			t.seen[key] = f
		}
		f.count++
		f.last = now
	}
}

// succeed clears the account's failures.
func (t *loginThrottle) succeed(account string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.seen, "u:"+account)
}
