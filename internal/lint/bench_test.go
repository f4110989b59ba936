package lint

import (
	"fmt"
	"github.com/opsbook/opsbook/internal/markdown"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// generateRunbook writes a realistic runbook with the given number of steps:
// typed params, targets, a guard, and steps mixing actions with verify,
// expect and until checks, manual instructions and a gate.
func generateRunbook(i, steps int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `---
kind: runbook
title: Generated runbook %d
system: svc-%d
operation: maintenance
owner: team-%d
change: normal
environments: [staging, production]
estimate: 2h
params:
  SERVICE: {type: string, required: true}
  REPLICAS: {type: int, default: "3"}
  MODE: {type: enum, allowed: [fast, safe], default: safe}
  TOKEN: {type: secret, required: true}
targets:
  app: {role: app}
  db: {role: db}
guards:
  - name: errors
    query: sum(rate(http_errors_total[1m]))
    threshold: "> 5"
    on_breach: rollback
---

# Generated runbook %d

## Executive summary

Routine maintenance of service %d.

## Impact assessment

None expected.

## Steps

`, i, i, i%7, i, i)
	for s := range steps {
		fmt.Fprintf(&b, "### %d. Step number %d\n\nExplain what step %d does and why.\n\n", s+1, s, s)
		switch s % 5 {
		case 0:
			fmt.Fprintf(&b, "```sh {id=s%d target=app timeout=2m retries=1 on_fail=ask estimate=1m outputs=OUT%d}\n"+
				"count=$(curl -fsS \"http://$SERVICE/metrics?file=%d\" | grep -c requests)\necho \"OUT%d=$count\" >> \"$OPSBOOK_OUTPUT\"\n```\n\n"+
				"```sh {verify}\ntest \"$OUT%d\" -ge 0\n```\n\n", s, s, i, s, s)
		case 1:
			fmt.Fprintf(&b, "```bash {id=s%d target=db timeout=5m}\nfor i in $(seq 1 \"$REPLICAS\"); do\n  echo \"replica $i of $SERVICE (%d)\"\ndone\n```\n\n"+
				"```text {expect=regex}\nreplica [0-9]+\n```\n\n", s, i)
		case 2:
			fmt.Fprintf(&b, "```sh {id=s%d until interval=2s timeout=1m}\ncurl -fsS -H \"Authorization: Bearer $TOKEN\" \"http://$SERVICE/healthz\"\n```\n\n", s)
		case 3:
			fmt.Fprintf(&b, "```manual\nCheck the dashboard for service %d and confirm it is green.\n```\n\n", i)
		case 4:
			fmt.Fprintf(&b, "```gate {approvers=1}\nGo when error rates are flat.\n```\n\n")
		}
	}
	b.WriteString(sectionsEN)
	return b.String()
}

func writeRunbooks(b *testing.B, n, steps int) string {
	b.Helper()
	dir := b.TempDir()
	for i := range n {
		name := filepath.Join(dir, fmt.Sprintf("rb-%04d.md", i))
		if err := os.WriteFile(name, []byte(generateRunbook(i, steps)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// BenchmarkLint lints 1,000 generated runbooks of 50 steps each, with and
// without the bash -n / sh -n checks, and reports the time per 100 files.
func BenchmarkLint(b *testing.B) {
	const files, steps = 1000, 50
	dir := writeRunbooks(b, files, steps)
	for _, shell := range []bool{false, true} {
		name := "parse+rules"
		if shell {
			name = "parse+rules+shell"
		}
		b.Run(name, func(b *testing.B) {
			start := time.Now()
			for b.Loop() {
				diags, err := Paths([]string{dir}, Options{Shell: shell})
				if err != nil {
					b.Fatal(err)
				}
				if len(diags) != 0 {
					b.Fatalf("generated runbooks must lint clean, got %d diagnostics, first %v", len(diags), diags[0])
				}
			}
			per100 := time.Since(start) / time.Duration(b.N) / (files / 100)
			b.ReportMetric(float64(per100.Nanoseconds()), "ns/100files")
		})
	}
}

// TestGeneratedRunbookIsClean keeps the benchmark honest: what it lints is
// a valid runbook, so every rule runs its full course.
func TestGeneratedRunbookIsClean(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "rb.md")
	if err := os.WriteFile(f, []byte(generateRunbook(1, 50)), 0o644); err != nil {
		t.Fatal(err)
	}
	diags, err := Paths([]string{f}, Options{Shell: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diags {
		t.Error(d)
	}
}

// hostileInputs are documents built to make a parser work hard, each n
// bytes long: deep nesting, an endless info string, inline markup that
// makes Markdown parsers backtrack, many small steps.
var hostileInputs = []struct {
	name string
	body func(n int) string
}{
	{"nested-list-lines", func(n int) string {
		var b strings.Builder
		for i := 0; b.Len() < n; i++ {
			b.WriteString(strings.Repeat("  ", i) + "- x\n")
		}
		return b.String()
	}},
	{"nested-list-one-line", func(n int) string { return strings.Repeat("- ", n/2) + "x\n" }},
	{"nested-quotes", func(n int) string { return strings.Repeat(">", n) + " x\n" }},
	{"info-string", func(n int) string { return "```sh {" + strings.Repeat("a", n) + "}\necho\n```\n" }},
	{"info-attributes", func(n int) string { return "```sh {" + strings.Repeat("a=b ", n/4) + "}\necho\n```\n" }},
	{"brackets", func(n int) string { return strings.Repeat("[", n/2) + "x" + strings.Repeat("]", n/2) + "\n" }},
	{"link-openers", func(n int) string { return strings.Repeat("[a](", n/4) + "\n" }},
	{"link-references", func(n int) string { return strings.Repeat("[a]: b\n", n/7) }},
	{"emphasis", func(n int) string { return strings.Repeat("*a _b ", n/6) + "\n" }},
	{"code-spans", func(n int) string { return strings.Repeat("`a", n/2) + "\n" }},
	{"table", func(n int) string { return "|a|b|\n|-|-|\n" + strings.Repeat("|x|y|\n", n/6) }},
	{"lines", func(n int) string { return strings.Repeat("x\n", n/2) }},
	{"steps", func(n int) string {
		return strings.Repeat("### s\n\n```sh {id=s verify=none reason=r}\necho\n```\n\n", n/50)
	}},
	// Just under the line limit, whatever n: the most a document can
	// make the parser do line by line.
	{"lines-under-line-limit", func(int) string { return strings.Repeat("x\n", markdown.MaxLines-20) }},
	{"steps-under-line-limit", func(int) string {
		return strings.Repeat("### s\n\n```sh {id=s verify=none reason=r}\necho\n```\n\n", (markdown.MaxLines-20)/6)
	}},
}

// BenchmarkLintHostile lints each hostile input at 10 MB (refused by the
// size limit before it is parsed) and just under markdown.MaxFileSize
// (parsed up to the limit it breaks, if any), reporting the time and the
// bytes allocated per file. The promise (docs/runbook-format.md): lint of
// any file takes under 2 s and 200 MB.
func BenchmarkLintHostile(b *testing.B) {
	head := "---\nkind: runbook\ntitle: hostile\n---\n\n# Hostile\n\n## Steps\n\n"
	for _, size := range []struct {
		name string
		n    int
	}{{"10MB", 10 << 20}, {"1MiB", markdown.MaxFileSize - len(head) - 1}} {
		for _, in := range hostileInputs {
			b.Run(size.name+"/"+in.name, func(b *testing.B) {
				src := head + in.body(size.n)
				if size.n < markdown.MaxFileSize && len(src) > markdown.MaxFileSize {
					src = src[:markdown.MaxFileSize]
				}
				f := filepath.Join(b.TempDir(), "hostile.md")
				if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Paths([]string{f}, Options{}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
	b.Run("dev-zero", func(b *testing.B) {
		for b.Loop() {
			if _, err := Paths([]string{"/dev/zero"}, Options{}); err == nil {
				b.Fatal("/dev/zero linted")
			}
		}
	})
}
