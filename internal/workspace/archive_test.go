package workspace

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/lifecycle"
)

// completedTask creates a task and records its completion at done.
func completedTask(t *testing.T, w *Workspace, desc string, done time.Time) string {
	t.Helper()
	res, err := w.NewTask(NewOptions{Description: desc, Name: NameOptions{Date: day}, Actor: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	if !done.IsZero() {
		err = lifecycle.Append(lifecycle.PathIn(w.Path(res.Dir)), lifecycle.Record{Time: done, Type: lifecycle.Completed, Actor: "ann", Status: "succeeded"})
		if err != nil {
			t.Fatal(err)
		}
	}
	return res.Task
}

// snapshotTree maps every file under dir to its content.
func snapshotTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(data)
		return nil
	})
	return out
}

func TestArchive(t *testing.T) {
	w := newWorkspace(t, "en")
	done := time.Date(2025, 4, 2, 15, 0, 0, 0, time.UTC)
	task := completedTask(t, w, "database migration from PostgreSQL 12 to 15", done)
	before := snapshotTree(t, w.Path(ActiveDir+"/"+task))

	res, err := w.Archive(task, ArchiveOptions{Now: done.Add(40 * 24 * time.Hour), Actor: "bob", NoGit: true})
	if err != nil {
		t.Fatal(err)
	}
	wantTo := "ops/archive/2025/04/" + task
	if res.To != wantTo || res.Method != "copy+rename" {
		t.Errorf("archive = %+v", res)
	}
	if _, err := os.Stat(w.Path(ActiveDir + "/" + task)); !errors.Is(err, os.ErrNotExist) {
		t.Error("source still exists")
	}
	after := snapshotTree(t, w.Path(wantTo))
	for f, content := range before {
		if f == lifecycle.FileName {
			if !strings.HasPrefix(after[f], content) {
				t.Error("lifecycle record lost lines")
			}
			continue
		}
		if after[f] != content {
			t.Errorf("%s changed or missing in the archive", f)
		}
	}
	recs, _ := lifecycle.Load(lifecycle.PathIn(w.Path(wantTo)))
	if last := recs[len(recs)-1]; last.Type != lifecycle.Archived || last.Actor != "bob" || last.Path != wantTo {
		t.Errorf("last record = %+v", last)
	}
	archived, err := w.Tasks(true, time.Now())
	if err != nil || len(archived) != 1 || archived[0].State() != "archived" {
		t.Errorf("archived tasks = %+v, %v", archived, err)
	}

	// Archiving again says so and changes nothing.
	again, err := w.Archive(task, ArchiveOptions{NoGit: true})
	if err != nil || !again.Already {
		t.Errorf("second archive = %+v, %v", again, err)
	}
}

func TestArchiveRefusesIncomplete(t *testing.T) {
	w := newWorkspace(t, "en")
	task := completedTask(t, w, "rotate TLS certificates on nginx", time.Time{})
	_, err := w.Archive(task, ArchiveOptions{NoGit: true})
	if err == nil || !strings.Contains(err.Error(), "not completed (state: planning)") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("err = %v", err)
	}
	now := time.Date(2025, 6, 7, 0, 0, 0, 0, time.UTC)
	res, err := w.Archive(task, ArchiveOptions{Force: true, Now: now, NoGit: true})
	if err != nil || !res.Forced || res.To != "ops/archive/2025/06/"+task {
		t.Fatalf("forced archive = %+v, %v", res, err)
	}
}

// TestArchiveInterrupted injects a failure after each stage of the move and
// checks that the task is whole in at least one place, that nothing is
// left half-made, and that running archive again finishes the job.
func TestArchiveInterrupted(t *testing.T) {
	for _, stage := range []string{"copied", "synced", "renamed"} {
		t.Run(stage, func(t *testing.T) {
			w := newWorkspace(t, "en")
			done := time.Date(2025, 4, 2, 0, 0, 0, 0, time.UTC)
			task := completedTask(t, w, "CDN provider switchover from CloudFlare to AWS CloudFront", done)
			src := w.Path(ActiveDir + "/" + task)
			dest := w.Path("ops/archive/2025/04/" + task)
			before := snapshotTree(t, src)

			archiveFault = func(s string) error {
				if s == stage {
					return errors.New("injected crash at " + s)
				}
				return nil
			}
			_, err := w.Archive(task, ArchiveOptions{NoGit: true})
			archiveFault = nil
			if err == nil || !strings.Contains(err.Error(), "injected crash") {
				t.Fatalf("err = %v", err)
			}
			// The source is untouched whatever the stage.
			if got := snapshotTree(t, src); !equalTrees(got, before) {
				t.Fatal("the source changed")
			}
			_, destErr := os.Stat(dest)
			if stage == "renamed" {
				if destErr != nil {
					t.Fatal("after the rename the archive copy must exist")
				}
			} else if destErr == nil {
				t.Fatal("a half-made archive is visible at the destination")
			}
			leftovers, _ := filepath.Glob(w.Path("ops/archive/2025/04/.archiving-*"))
			if len(leftovers) > 0 {
				t.Errorf("temporary directories left: %v", leftovers)
			}
			tasks, _ := w.Tasks(false, time.Now())
			if len(tasks) != 1 {
				t.Errorf("active tasks = %d, want the one task", len(tasks))
			}

			res, err := w.Archive(task, ArchiveOptions{NoGit: true})
			if err != nil {
				t.Fatal(err)
			}
			if stage == "renamed" && res.Method != "resumed" {
				t.Errorf("method = %s, want resumed", res.Method)
			}
			if _, err := os.Stat(src); !errors.Is(err, os.ErrNotExist) {
				t.Error("source still exists after the second archive")
			}
			after := snapshotTree(t, dest)
			for f, content := range before {
				if !strings.HasPrefix(after[f], content) {
					t.Errorf("%s lost in the archive", f)
				}
			}
			recs, _ := lifecycle.Load(lifecycle.PathIn(dest))
			n := 0
			for _, r := range recs {
				if r.Type == lifecycle.Archived {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d archived records, want 1", n)
			}
		})
	}
}

func equalTrees(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestArchiveWithGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	w := newWorkspace(t, "en")
	git := func(args ...string) string {
		t.Helper()
		out, err := w.git(append([]string{"-c", "user.email=t@example.com", "-c", "user.name=t"}, args...)...)
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	git("init", "-q")
	done := time.Date(2025, 4, 2, 0, 0, 0, 0, time.UTC)
	task := completedTask(t, w, "Kubernetes cluster upgrade to v1.28", done)
	git("add", ".")
	git("commit", "-qm", "task")
	res, err := w.Archive(task, ArchiveOptions{Actor: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Method != "git mv" {
		t.Fatalf("method = %s", res.Method)
	}
	status := git("status", "--porcelain")
	lines := strings.Split(strings.TrimSpace(status), "\n")
	sort.Strings(lines)
	for _, l := range lines {
		if !strings.HasPrefix(l, "R  ops/active/"+task+"/") && !strings.HasPrefix(l, "RM ops/active/") && !strings.HasPrefix(l, "M  ") {
			t.Errorf("unexpected status line %q", l)
		}
	}
	if !strings.Contains(status, "-> ops/archive/2025/04/"+task+"/"+task+"-runbook.md") {
		t.Errorf("git status shows no rename:\n%s", status)
	}
	if strings.Contains(status, "?? ") || strings.Contains(status, " M ") {
		t.Errorf("the archived record is not staged:\n%s", status)
	}
}

func TestListAndArchiveDue(t *testing.T) {
	w := newWorkspace(t, "en")
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	old := completedTask(t, w, "database migration from PostgreSQL 12 to 15", now.Add(-31*24*time.Hour))
	recent := completedTask(t, w, "rotate TLS certificates on nginx", now.Add(-29*24*time.Hour))
	open := completedTask(t, w, "Redis cluster scale-out", time.Time{})

	tasks, err := w.Tasks(false, now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Task{}
	for _, tk := range tasks {
		got[tk.Name] = tk
	}
	if !got[old].ArchiveOverdue || got[recent].ArchiveOverdue || got[open].ArchiveOverdue {
		t.Errorf("overdue flags: old %v recent %v open %v", got[old].ArchiveOverdue, got[recent].ArchiveOverdue, got[open].ArchiveOverdue)
	}
	if got[open].State() != "planning" || got[old].State() != "completed" || got[old].Age != "92d" || got[old].System != "postgres" {
		t.Errorf("old = %+v", got[old])
	}
	done, err := w.ArchiveDue(ArchiveOptions{Now: now, NoGit: true})
	if err != nil || len(done) != 1 || done[0].Task != old {
		t.Fatalf("ArchiveDue = %+v, %v", done, err)
	}
	tasks, _ = w.Tasks(false, now)
	if len(tasks) != 2 {
		t.Errorf("%d active tasks left, want 2", len(tasks))
	}
	if _, err := w.Task(old, now); err != nil {
		t.Errorf("Task(%s) after archive: %v", old, err)
	}
}
