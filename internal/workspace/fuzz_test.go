package workspace

import (
	"errors"
	"strings"
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
		if err == nil && !taskNameRe().MatchString(n.String()) {
			t.Errorf("DeriveName(%q) = %q, not a valid task name", desc, n)
		}
	})
}

// FuzzParseConfig: any opsbook.yaml yields a config or diagnostics, never
// a panic, and every diagnostic names the file and a line of it. The seed
// corpus in testdata/fuzz/FuzzParseConfig holds the inputs that crashed it
// (a host with a bastion and no name), so `go test` replays them.
func FuzzParseConfig(f *testing.F) {
	f.Add(fullConfig)
	f.Add("environments: [{name: a, windows: [{days: [mon-], start: '1:1', end: x}]}]")
	f.Add("a: &x [*x]")
	f.Fuzz(func(t *testing.T, src string) {
		_, err := ParseConfig("opsbook.yaml", []byte(src), "/w")
		if err == nil {
			return
		}
		var ce *ConfigError
		if !errors.As(err, &ce) || len(ce.Diagnostics) == 0 {
			t.Fatalf("error %v is not a *ConfigError with diagnostics", err)
		}
		// YAML ends a line at "\n", "\r\n" or a lone "\r".
		lines := strings.Count(strings.ReplaceAll(src, "\r\n", "\n"), "\n") + strings.Count(src, "\r") - strings.Count(src, "\r\n") + 1
		for _, d := range ce.Diagnostics {
			if d.File != "opsbook.yaml" || d.Pos.Line < 1 || d.Pos.Line > lines || d.Pos.Col < 1 || d.Message == "" {
				t.Fatalf("diagnostic without a place in the file (%d lines): %+v", lines, d)
			}
		}
	})
}
