package workspace

import (
	"testing"
	"time"
)

// FuzzDeriveName: any description yields a valid name or an error, never a panic.
func FuzzDeriveName(f *testing.F) {
	for _, s := range []string{"database migration from PostgreSQL 12 to 15", "将 PostgreSQL 从 12 升级到 15", "to to from from", "→→", "v1..2 to", "pg 12 to", "从到", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, desc string) {
		n, err := DeriveName(desc, NameOptions{Date: time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)})
		if err == nil && !taskNameRe.MatchString(n.String()) {
			t.Errorf("DeriveName(%q) = %q, not a valid task name", desc, n)
		}
	})
}

// FuzzParseConfig: any opsbook.yaml yields a config or diagnostics, never a panic.
func FuzzParseConfig(f *testing.F) {
	f.Add(fullConfig)
	f.Add("environments: [{name: a, windows: [{days: [mon-], start: '1:1', end: x}]}]")
	f.Add("a: &x [*x]")
	f.Fuzz(func(t *testing.T, src string) {
		ParseConfig("opsbook.yaml", []byte(src), "/w")
	})
}
