package workspace

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/lifecycle"
)

// ArchiveAfter is how long a completed task may stay in ops/active/.
const ArchiveAfter = 30 * 24 * time.Hour

// Task is one planned operation found in the ops/ tree.
type Task struct {
	Name           string            `json:"name"`
	Dir            string            `json:"dir"` // relative to the workspace
	Date           string            `json:"date"`
	System         string            `json:"system"`
	Operation      string            `json:"operation"`
	Archived       bool              `json:"archived"`
	Lifecycle      lifecycle.Summary `json:"lifecycle"`
	Age            string            `json:"age"` // since the task's date, e.g. "12d"
	ArchiveOverdue bool              `json:"archive_overdue"`
}

// State is the lifecycle state shown for the task.
func (t Task) State() string { return t.Lifecycle.State }

// Tasks lists the active tasks, or the archived ones, by date then name.
func (w *Workspace) Tasks(archived bool, now time.Time) ([]Task, error) {
	var dirs []string
	if archived {
		matches, err := filepath.Glob(w.Path(path.Join(ArchiveDir, "[0-9][0-9][0-9][0-9]", "[0-9][0-9]", "*")))
		if err != nil {
			return nil, err
		}
		dirs = matches
	} else {
		entries, err := os.ReadDir(w.Path(ActiveDir))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("list tasks: %w", err)
		}
		for _, e := range entries {
			dirs = append(dirs, w.Path(path.Join(ActiveDir, e.Name())))
		}
	}
	var tasks []Task
	for _, d := range dirs {
		st, err := os.Stat(d)
		if err != nil || !st.IsDir() || strings.HasPrefix(filepath.Base(d), ".") {
			continue
		}
		t, err := w.loadTask(d, now)
		if err != nil {
			return nil, err
		}
		tasks = append(tasks, t)
	}
	sort.Slice(tasks, func(i, j int) bool {
		if tasks[i].Date != tasks[j].Date {
			return tasks[i].Date < tasks[j].Date
		}
		return tasks[i].Name < tasks[j].Name
	})
	return tasks, nil
}

// Task finds one active or archived task by name (or its directory path).
func (w *Workspace) Task(name string, now time.Time) (Task, error) {
	name = strings.TrimSuffix(filepath.Base(filepath.Clean(name)), "/")
	rel, ok := w.taskDir(name)
	if !ok {
		var names []string
		for _, archived := range []bool{false, true} {
			ts, _ := w.Tasks(archived, now)
			for _, t := range ts {
				names = append(names, t.Name)
			}
		}
		hint := "; `opsbook list` shows the tasks"
		if s := suggest(name, names); s != "" {
			hint = fmt.Sprintf("; did you mean %s?", s)
		}
		return Task{}, fmt.Errorf("no task %s under %s or %s%s", name, ActiveDir, ArchiveDir, hint)
	}
	return w.loadTask(w.Path(rel), now)
}

func (w *Workspace) loadTask(dir string, now time.Time) (Task, error) {
	name := filepath.Base(dir)
	t := Task{Name: name, Dir: w.Rel(dir)}
	t.Archived = strings.HasPrefix(t.Dir, ArchiveDir+"/")
	if n, err := ParseTaskName(name); err == nil {
		t.Date, t.System, t.Operation = n.Date.Format(time.DateOnly), n.System, n.Operation
		t.Age = formatAge(now.Sub(n.Date))
	}
	recs, err := lifecycle.Load(lifecycle.PathIn(dir))
	if err != nil {
		return t, err
	}
	t.Lifecycle = lifecycle.Summarize(recs)
	if !t.Archived && !t.Lifecycle.Completed.IsZero() && now.Sub(t.Lifecycle.Completed) > ArchiveAfter {
		t.ArchiveOverdue = true
	}
	return t, nil
}

func formatAge(d time.Duration) string {
	switch {
	case d < 0:
		return "in " + formatAge(-d)
	case d < 24*time.Hour:
		return "today"
	default:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
}
