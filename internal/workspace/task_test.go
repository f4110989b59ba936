package workspace

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/lint"
	"github.com/opsbook/opsbook/internal/markdown"
	"github.com/opsbook/opsbook/internal/runbook"
)

func newWorkspace(t *testing.T, lang string) *Workspace {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "acme-ops")
	if _, err := Init(dir, InitOptions{Lang: lang}); err != nil {
		t.Fatal(err)
	}
	w, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

var day = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)

func TestNewTaskFromLibrary(t *testing.T) {
	w := newWorkspace(t, "en")
	res, err := w.NewTask(NewOptions{Description: "database migration from PostgreSQL 12 to 15", Name: NameOptions{Date: day}, Actor: "ann@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	task := "2025-03-01-postgres-upgrade-v12-to-v15"
	if res.Task != task || res.Library != "postgres-major-upgrade" {
		t.Fatalf("task %s from %s", res.Task, res.Library)
	}
	dir := w.Path(res.Dir)
	for _, f := range []string{"-runbook.md", "-rollback.md", "-checklist.md", "-postmortem-template.md"} {
		if _, err := os.Stat(filepath.Join(dir, task+f)); err != nil {
			t.Error(err)
		}
	}
	recs, err := lifecycle.Load(lifecycle.PathIn(dir))
	if err != nil || len(recs) != 1 || recs[0].Type != lifecycle.Created || recs[0].Actor != "ann@example.com" {
		t.Fatalf("lifecycle = %+v, %v", recs, err)
	}
	// The whole task lints clean: library runbook, rollback, checklist, postmortem.
	diags, err := lint.Paths([]string{dir}, lint.Options{Shell: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diags {
		t.Errorf("%s", d)
	}
	rb, _, _ := markdown.ParseFile(filepath.Join(dir, task+"-runbook.md"))
	if rb.Front.Rollback != task+"-rollback.md" || rb.Title != "Database migration from PostgreSQL 12 to 15" {
		t.Errorf("runbook not adapted to the task: rollback %q title %q", rb.Front.Rollback, rb.Title)
	}
	checklist, _ := os.ReadFile(filepath.Join(dir, task+"-checklist.md"))
	for _, want := range []string{"`backups-done`", "`rollback-ready`", "| 8 | Upgrade the cluster (`upgrade`) | 30m |"} {
		if !strings.Contains(string(checklist), want) {
			t.Errorf("checklist lacks %q", want)
		}
	}
	entries, _ := os.ReadDir(w.Path(ActiveDir))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".new-") {
			t.Errorf("temporary directory %s left behind", e.Name())
		}
	}

	_, err = w.NewTask(NewOptions{Description: "database migration from PostgreSQL 12 to 15", Name: NameOptions{Date: day}})
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second NewTask = %v, want a refusal", err)
	}
}

// TestSkeletonFailsLintOnlyOnPlaceholders: the generic skeleton is a
// valid document in every respect but its <<FILL: …>> text.
func TestSkeletonFailsLintOnlyOnPlaceholders(t *testing.T) {
	for _, lang := range Langs {
		t.Run(lang, func(t *testing.T) {
			w := newWorkspace(t, lang)
			res, err := w.NewTask(NewOptions{Description: "Redis cluster scale-out", Name: NameOptions{Date: day}, Actor: "x"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Library != GenericEntry || res.Lang != lang {
				t.Fatalf("library %s lang %s", res.Library, res.Lang)
			}
			diags, err := lint.Paths([]string{w.Path(res.Dir)}, lint.Options{Shell: true})
			if err != nil {
				t.Fatal(err)
			}
			placeholders := map[string]int{}
			for _, d := range diags {
				if d.Rule != "placeholder" {
					t.Errorf("not a placeholder problem: %s", d)
				}
				placeholders[filepath.Base(d.File)]++
			}
			for _, f := range []string{res.Task + "-runbook.md", res.Task + "-rollback.md"} {
				if placeholders[f] == 0 {
					t.Errorf("%s has no placeholder errors; a skeleton must not lint clean", f)
				}
			}
			doc, _, _ := markdown.ParseFile(w.Path(res.Dir + "/" + res.Task + "-runbook.md"))
			if doc.Lang != lang {
				t.Errorf("document language %q, want %q", doc.Lang, lang)
			}
			for _, role := range runbook.RequiredSections[runbook.KindRunbook] {
				if !hasSection(doc, role) {
					t.Errorf("runbook lacks section %s", role)
				}
			}
		})
	}
}

func hasSection(d *runbook.Document, role runbook.SectionRole) bool {
	for _, s := range d.Sections {
		if s.Role == role {
			return true
		}
	}
	return false
}

func TestNewTaskDryRunWritesNothing(t *testing.T) {
	w := newWorkspace(t, "en")
	res, err := w.NewTask(NewOptions{Description: "rotate TLS certificates on nginx", Name: NameOptions{Date: day}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 5 || res.Library != "tls-certificate-rotation" {
		t.Errorf("dry run = %+v", res)
	}
	if _, err := os.Stat(w.Path(res.Dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dry run created %s", res.Dir)
	}
}

func TestNewTaskTemplateOverride(t *testing.T) {
	w := newWorkspace(t, "en")
	override := "---\nkind: checklist\ntitle: \"House checklist {{.Task}}\"\nlang: en\n---\n\n# House checklist\n\n## Pre-execution checklist\n\n- [ ] `cab` CAB approved\n\n## Execution steps\n{{range .Steps}}\n- {{.ID}}{{end}}\n\n## Sign-off\n\nSigned:\n"
	if err := os.WriteFile(w.Path(TemplatesDir+"/checklist.md"), []byte(override), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := w.NewTask(NewOptions{Description: "Redis cluster scale-out", Name: NameOptions{Date: day}, Actor: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Overrode) != 1 || res.Overrode[0] != "ops/templates/checklist.md" {
		t.Errorf("overrides = %v", res.Overrode)
	}
	got, _ := os.ReadFile(w.Path(res.Dir + "/" + res.Task + "-checklist.md"))
	if !strings.Contains(string(got), "House checklist 2025-03-01-redis-scale-out-cluster") || !strings.Contains(string(got), "- go-change") {
		t.Errorf("override not used:\n%s", got)
	}

	// A broken override is reported with its name, and nothing is created.
	os.WriteFile(w.Path(TemplatesDir+"/checklist.md"), []byte("{{.Nope}}"), 0o644)
	_, err = w.NewTask(NewOptions{Description: "Kafka broker rolling restart", Name: NameOptions{Date: day}})
	if err == nil || !strings.Contains(err.Error(), "ops/templates/checklist.md") {
		t.Errorf("broken override: %v", err)
	}
	if _, ok := w.taskDir("2025-03-01-kafka-restart-broker-rolling"); ok {
		t.Error("a task was created despite the template error")
	}
}

func TestNewTaskNameErrors(t *testing.T) {
	// A description never fails: a Chinese one with no ASCII words gets a
	// short description chosen for it (and said), and Chinese documents
	// even in an English workspace.
	w := newWorkspace(t, "en")
	res, err := w.NewTask(NewOptions{Description: "数据库备份", Name: NameOptions{Date: day}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Task != "2025-03-01-db-backup-db" || res.Lang != "zh" || len(res.Name.Guessed) != 1 || !strings.Contains(res.Name.Guessed[0], "--slug") {
		t.Errorf("got %s in %s, guessed %q", res.Task, res.Lang, res.Name.Guessed)
	}
	if res, err := w.NewTask(NewOptions{Description: "扩容 Kafka 集群", Name: NameOptions{Date: day}, Lang: "en"}); err != nil || res.Lang != "en" {
		t.Errorf("--lang en must win over the description's language: %+v %v", res, err)
	}
	w = newWorkspace(t, "zh")
	res, err = w.NewTask(NewOptions{Description: "数据库备份", Name: NameOptions{Date: day, Slug: "orders"}, Actor: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Task != "2025-03-01-db-backup-orders" || res.Library != "postgres-backup-restore" || res.Lang != "zh" {
		t.Errorf("got %s from %s in %s", res.Task, res.Library, res.Lang)
	}
	if _, err := w.NewTask(NewOptions{Description: "x y", Library: "nope", Name: NameOptions{System: "a", Operation: "b", Slug: "c"}}); err == nil || !strings.Contains(err.Error(), "choose one of") {
		t.Errorf("unknown library: %v", err)
	}
}

func TestInitIdempotent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "My Ops!")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("node_modules"), 0o644)
	first, err := Init(dir, InitOptions{Lang: "zh", WithLibrary: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Created) != 1+4+2*len(Library)+1 || len(first.Kept) != 0 {
		t.Errorf("first init created %d, kept %v", len(first.Created), first.Kept)
	}
	w, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if w.Config.Name != "My-Ops" || w.Config.Lang != "zh" || len(w.Config.Environments) != 3 {
		t.Errorf("config = %+v", w.Config)
	}
	if prod, _ := w.Environment("production"); !prod.Protected || prod.Reviewers != 2 {
		t.Errorf("production = %+v", prod)
	}
	readme, _ := os.ReadFile(filepath.Join(dir, "ops/active/README.md"))
	if !strings.Contains(string(readme), "进行中") {
		t.Errorf("README not in Chinese: %s", readme)
	}
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte("name: mine\n"), 0o644)
	second, err := Init(dir, InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Created) != 0 {
		t.Errorf("second init created %v", second.Created)
	}
	if cfg, _ := os.ReadFile(filepath.Join(dir, ConfigFile)); string(cfg) != "name: mine\n" {
		t.Error("init overwrote opsbook.yaml")
	}
	gi, _ := os.ReadFile(filepath.Join(dir, ".gitignore"))
	if string(gi) != "node_modules\n# opsbook local state (run store)\n.opsbook/\n" {
		t.Errorf(".gitignore = %q", gi)
	}
}
