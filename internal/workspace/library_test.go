package workspace

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/lint"
	"github.com/opsbook/opsbook/internal/markdown"
	"github.com/opsbook/opsbook/internal/runbook"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// libraryOnDisk writes the embedded library to a directory, as init
// --with-library does, and returns the paths.
func libraryOnDisk(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	entries, err := builtin.ReadDir("library")
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range entries {
		data, err := builtin.ReadFile("library/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, e.Name())
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

func TestLibraryLintsClean(t *testing.T) {
	paths := libraryOnDisk(t)
	if len(paths) != 2*len(Library) {
		t.Fatalf("library has %d files for %d entries; every entry needs <name>.md and <name>-rollback.md", len(paths), len(Library))
	}
	diags, err := lint.Paths(paths, lint.Options{Shell: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diags {
		t.Errorf("%s", d)
	}
}

func TestSampleWorkspaceLintsClean(t *testing.T) {
	root := filepath.Join("..", "..", "examples", "workspace")
	ws, err := Load(root)
	if err != nil {
		t.Fatalf("sample workspace: %v", err)
	}
	var vars []string
	for _, e := range ws.Config.Environments {
		for k := range e.Variables {
			vars = append(vars, k)
		}
	}
	diags, err := lint.Paths([]string{ws.Path(RunbooksDir), ws.Path(ActiveDir), ws.Path(ArchiveDir)}, lint.Options{Shell: true, KnownVars: vars})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diags {
		t.Errorf("%s", d)
	}
}

func TestLibraryEntriesMatchTheirDocuments(t *testing.T) {
	for _, e := range Library {
		t.Run(e.Name, func(t *testing.T) {
			rb, rollback, err := LibraryFiles(&e)
			if err != nil {
				t.Fatal(err)
			}
			doc, _ := markdown.Parse(e.Name+".md", rb)
			if doc.Front.Kind != runbook.KindRunbook || doc.Front.Rollback != e.Name+"-rollback.md" {
				t.Errorf("runbook kind %q rollback %q", doc.Front.Kind, doc.Front.Rollback)
			}
			if !containsStr(e.Systems, doc.Front.System) || !containsStr(e.Operations, doc.Front.Operation) {
				t.Errorf("front matter says %s %s; the entry lists %v %v", doc.Front.System, doc.Front.Operation, e.Systems, e.Operations)
			}
			if doc.Front.Change == runbook.ChangeNormal && !hasGate(doc) {
				t.Error("a normal change needs at least one Go/No-Go gate")
			}
			rdoc, _ := markdown.Parse(e.Name+"-rollback.md", rollback)
			if rdoc.Front.Kind != runbook.KindRollback || len(rdoc.Steps) == 0 {
				t.Errorf("rollback kind %q with %d steps", rdoc.Front.Kind, len(rdoc.Steps))
			}
			// The rollback must be able to run with what the runbook's run knows.
			for _, p := range rdoc.Front.Params {
				if p.Required && !hasParam(doc, p.Name) {
					t.Errorf("rollback requires parameter %s that the runbook does not declare; a run could not pass it on", p.Name)
				}
			}
		})
	}
}

func hasGate(d *runbook.Document) bool {
	for _, s := range d.Steps {
		if s.Gate != nil {
			return true
		}
	}
	return false
}

func hasParam(d *runbook.Document, name string) bool {
	for _, p := range d.Front.Params {
		if p.Name == name {
			return true
		}
	}
	return false
}

func TestMatchLibrary(t *testing.T) {
	date := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct{ desc, want string }{
		{"database migration from PostgreSQL 12 to 15", "postgres-major-upgrade"},
		{"将 PostgreSQL 从 12 升级到 15", "postgres-major-upgrade"},
		{"nightly PostgreSQL backup with restore test", "postgres-backup-restore"},
		{"refresh test database from sanitised production data", "postgres-test-refresh"},
		{"PG 测试库刷新 脱敏", "postgres-test-refresh"},
		{"fail over payments database to the DR site", "postgres-dr-failover"},
		{"PostgreSQL switch back to the primary site after DR failover", "postgres-dr-failover"},
		{"Upgrade the EKS cluster from 1.27 to 1.28", "k8s-cluster-upgrade"},
		{"Kubernetes 集群升级到 1.28", "k8s-cluster-upgrade"},
		{"CDN provider switchover from CloudFlare to AWS CloudFront", "cdn-switchover"},
		{"rotate TLS certificates on nginx", "tls-certificate-rotation"},
		{"nginx 证书轮换", "tls-certificate-rotation"},
		// Another system or operation gets the skeleton, not a misleading runbook.
		{"MySQL 5.7 to 8.0 migration", GenericEntry},
		{"Redis cluster scale-out", GenericEntry},
		{"PostgreSQL cluster scale-out", GenericEntry},
		{"Kafka broker rolling restart", GenericEntry},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			n, err := DeriveName(tt.desc, NameOptions{Date: date})
			if err != nil {
				t.Fatal(err)
			}
			m := MatchLibrary(n)
			if m.Name() != tt.want {
				t.Errorf("MatchLibrary(%s) = %s (%s), want %s", n, m.Name(), m.Reason, tt.want)
			}
			if m.Reason == "" {
				t.Error("no reason given")
			}
		})
	}
}

// TestLibraryPlans shows, per library runbook, the plan a run would
// execute: every step of the runbook and its rollback with target, policy,
// command and checks, as parsed. Review the golden files like code.
func TestLibraryPlans(t *testing.T) {
	for _, e := range Library {
		t.Run(e.Name, func(t *testing.T) {
			rb, rollback, err := LibraryFiles(&e)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, d := range []struct {
				name string
				src  []byte
			}{{e.Name + ".md", rb}, {e.Name + "-rollback.md", rollback}} {
				doc, diags := markdown.Parse(d.name, d.src)
				if runbook.HasErrors(diags) {
					t.Fatalf("%s does not parse: %v", d.name, diags)
				}
				writePlan(&b, doc)
			}
			golden := filepath.Join("testdata", "plans", e.Name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestLibraryPlans -update to create it)", err)
			}
			if string(want) != b.String() {
				t.Errorf("plan of %s changed; if intended, run go test ./internal/workspace -run TestLibraryPlans -update\n--- got\n%s", e.Name, b.String())
			}
		})
	}
}

func writePlan(b *strings.Builder, doc *runbook.Document) {
	f := doc.Front
	fmt.Fprintf(b, "== %s: %s (%s %s, change %s, estimate %s)\n", f.Kind, doc.Path, f.System, f.Operation, f.Change, formatEstimate(f.Estimate))
	for _, p := range f.Params {
		req := ""
		if p.Required {
			req = ", required"
		}
		if p.HasDefault {
			req += ", default " + fmt.Sprintf("%q", p.Default)
		}
		fmt.Fprintf(b, "param %s (%s%s)\n", p.Name, p.Type, req)
	}
	for _, tg := range f.Targets {
		keys := make([]string, 0, len(tg.Selector))
		for k := range tg.Selector {
			keys = append(keys, k+"="+tg.Selector[k])
		}
		sort.Strings(keys)
		fmt.Fprintf(b, "target %s: %s\n", tg.Name, strings.Join(keys, ","))
	}
	for _, g := range f.Guards {
		fmt.Fprintf(b, "guard %s: %s %s %g → %s\n", g.Name, g.Query, g.Op, g.Threshold, g.OnBreach)
	}
	for i, s := range doc.Steps {
		target := s.Target
		if target == "" {
			target = runbook.TargetLocal
		}
		var attrs []string
		add := func(k, v string) {
			if v != "" && v != "0" && v != "0s" {
				attrs = append(attrs, k+"="+v)
			}
		}
		add("target", target)
		add("timeout", formatEstimate(s.Timeout))
		add("estimate", formatEstimate(s.Estimate))
		add("on_fail", string(s.OnFail))
		add("retries", fmt.Sprint(s.Retries))
		add("parallel", fmt.Sprint(s.Parallel))
		add("batch", s.Batch)
		add("max_failures", s.MaxFailures)
		add("outputs", strings.Join(s.Outputs, ","))
		if s.Idempotent {
			attrs = append(attrs, "idempotent")
		}
		fmt.Fprintf(b, "%d. %s [%s]\n", i+1, s.ID, strings.Join(attrs, " "))
		block := func(label string, bl *runbook.Block) {
			if bl == nil {
				return
			}
			extra := ""
			if bl.Role == runbook.BlockUntil {
				extra = fmt.Sprintf(" every %s for %s", bl.Interval, bl.Timeout)
			}
			if bl.Role == runbook.BlockGate {
				extra = fmt.Sprintf(" approvers=%d", s.Approvers)
			}
			fmt.Fprintf(b, "   %s%s:\n", label, extra)
			for _, line := range strings.Split(strings.TrimRight(bl.Body, "\n"), "\n") {
				fmt.Fprintf(b, "     | %s\n", line)
			}
		}
		block("run", s.Action)
		block("manual", s.Manual)
		block("gate", s.Gate)
		block("call", s.Call)
		block("verify", s.Verify)
		block("expect", s.Expect)
		block("until", s.Until)
	}
	b.WriteString("\n")
}

// TestSampleWorkspaceHasTheLibrary keeps examples/workspace/ops/runbooks in
// step with the embedded library (regenerate it with opsbook init
// examples/workspace --with-library after deleting the stale copies).
func TestSampleWorkspaceHasTheLibrary(t *testing.T) {
	entries, err := builtin.ReadDir("library")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		want, _ := builtin.ReadFile("library/" + e.Name())
		got, err := os.ReadFile(filepath.Join("..", "..", "examples", "workspace", RunbooksDir, e.Name()))
		if err != nil || string(got) != string(want) {
			t.Errorf("examples/workspace/%s/%s differs from the library (%v)", RunbooksDir, e.Name(), err)
		}
	}
}
