package workspace

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/lint"
	"github.com/opsbook/opsbook/internal/markdown"
	"github.com/opsbook/opsbook/internal/runbook"
)

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
		{"nightly backup of the orders postgres database", "postgres-backup-restore"},
		{"restore test of orders-db", "postgres-backup-restore"},
		{"point-in-time restore of orders-db", "postgres-pitr"},
		{"physical backup with WAL archiving for orders-db", "postgres-pitr"},
		{"PITR restore test with a base backup and the WAL archive of the orders postgres database", "postgres-pitr"},
		{"point in time recovery of the orders postgres database", "postgres-pitr"},
		{"orders-db 时间点恢复", "postgres-pitr"},
		{"PostgreSQL 物理备份 WAL 归档", "postgres-pitr"},
		{"PostgreSQL 备份恢复演练", "postgres-backup-restore"},
		{"refresh test database from sanitised production data", "postgres-test-refresh"},
		{"PG 测试库刷新 脱敏", "postgres-test-refresh"},
		{"fail over payments database to the DR site", "postgres-dr-failover"},
		{"PostgreSQL switch back to the primary site after DR failover", "postgres-dr-failover"},
		{"Upgrade the EKS cluster from 1.27 to 1.28", "k8s-cluster-upgrade"},
		{"Kubernetes 集群升级到 1.28", "k8s-cluster-upgrade"},
		{"CDN provider switchover from CloudFlare to AWS CloudFront", "cdn-switchover"},
		{"rotate TLS certificates on nginx", "tls-certificate-rotation"},
		{"nginx 证书轮换", "tls-certificate-rotation"},
		{"renew the TLS certificate of the web servers", "tls-certificate-rotation"},
		{"rotate the TLS certificate of the shop nginx", "tls-certificate-rotation"},
		// A database's certificate is PostgreSQL's, by its name or its system.
		{"rotate the TLS certificate of orders-db", "postgres-tls-rotation"},
		{"renew postgres server certificate", "postgres-tls-rotation"},
		{"rotate the certificate of the orders database", "postgres-tls-rotation"},
		{"PostgreSQL 证书轮换", "postgres-tls-rotation"},
		{"数据库证书续期", "postgres-tls-rotation"},
		// A PostgreSQL rotation of something else is not a certificate's.
		{"rotate the postgres superuser password", GenericEntry},
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
