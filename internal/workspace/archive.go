package workspace

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/lifecycle"
)

// ArchiveOptions configure Archive.
type ArchiveOptions struct {
	Force bool      // archive a task that has no completed record
	Now   time.Time // zero means time.Now()
	Actor string
	NoGit bool // move files even inside a git repository
}

// ArchiveResult says where a task went and how.
type ArchiveResult struct {
	Task    string `json:"task"`
	From    string `json:"from"`
	To      string `json:"to"`
	Method  string `json:"method"` // "git mv", "copy+rename", or "resumed" (finished an interrupted archive)
	Forced  bool   `json:"forced,omitempty"`
	Already bool   `json:"already,omitempty"`
}

// archiveFault, when set by a test, is called after each stage of a
// copy+rename archive; an error it returns aborts the archive there, as a
// crash would.
var archiveFault func(stage string) error

func fault(stage string) error {
	if archiveFault != nil {
		return archiveFault(stage)
	}
	return nil
}

// Archive moves an active task to ops/archive/YYYY/MM/<task>/ by its
// completion date. Inside a git repository with the task tracked it uses
// `git mv` (one rename of the directory); otherwise it copies the task into
// a temporary directory beside the destination, syncs it, renames it into
// place and only then removes the source. An archive interrupted at any
// point leaves the task whole in at least one place, and running Archive
// again finishes the job.
func (w *Workspace) Archive(name string, opts ArchiveOptions) (*ArchiveResult, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	name = filepath.Base(filepath.Clean(name))
	src := path.Join(ActiveDir, name)
	srcAbs := w.Path(src)
	_, srcErr := os.Stat(srcAbs)
	srcExists := srcErr == nil

	var recs []lifecycle.Record
	var err error
	if srcExists {
		recs, err = lifecycle.Load(lifecycle.PathIn(srcAbs))
		if err != nil {
			return nil, err
		}
	}
	sum := lifecycle.Summarize(recs)
	completed := sum.Completed
	res := &ArchiveResult{Task: name, From: src}
	if completed.IsZero() && srcExists {
		if !opts.Force {
			return nil, fmt.Errorf("task %s is not completed (state: %s); finish it first, or pass --force to archive it anyway", name, sum.State)
		}
		res.Forced = true
		completed = now
	}

	if !srcExists {
		// Already archived, or an interrupted archive that got as far as
		// removing the source: make sure the record says so.
		if rel, ok := w.taskDir(name); ok && strings.HasPrefix(rel, ArchiveDir+"/") {
			res.To, res.Already = rel, true
			return res, w.ensureArchivedRecord(w.Path(rel), rel, opts.Actor, now)
		}
		return nil, fmt.Errorf("no active task %s; `opsbook list` shows the tasks", name)
	}

	destRel := path.Join(ArchiveDir, completed.Format("2006"), completed.Format("01"), name)
	res.To = destRel
	dest := w.Path(destRel)
	if _, err := os.Stat(dest); err == nil {
		// An earlier archive renamed the copy into place but did not remove
		// the source. Finish it only if the copy holds everything.
		if err := sameTree(srcAbs, dest); err != nil {
			return nil, fmt.Errorf("both %s and %s exist and differ (%v); compare them and remove the wrong one", src, destRel, err)
		}
		if err := os.RemoveAll(srcAbs); err != nil {
			return nil, fmt.Errorf("remove %s: %w", src, err)
		}
		res.Method = "resumed"
		return res, w.ensureArchivedRecord(dest, destRel, opts.Actor, now)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", path.Dir(destRel), err)
	}

	if !opts.NoGit && w.tracked(src) {
		if out, err := w.git("mv", "--", src, destRel); err != nil {
			return nil, fmt.Errorf("git mv %s %s: %v: %s", src, destRel, err, out)
		}
		res.Method = "git mv"
		if err := w.ensureArchivedRecord(dest, destRel, opts.Actor, now); err != nil {
			return res, err
		}
		if out, err := w.git("add", "--", path.Join(destRel, lifecycle.FileName)); err != nil {
			return res, fmt.Errorf("git add the archived record: %v: %s", err, out)
		}
		return res, nil
	}

	res.Method = "copy+rename"
	tmp, err := os.MkdirTemp(filepath.Dir(dest), ".archiving-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", name, err)
	}
	renamed := false
	defer func() {
		if !renamed {
			os.RemoveAll(tmp)
		}
	}()
	if st, err := os.Stat(srcAbs); err == nil {
		if err := os.Chmod(tmp, st.Mode().Perm()); err != nil {
			return nil, fmt.Errorf("archive %s: %w", name, err)
		}
	}
	if err := copyTree(srcAbs, tmp); err != nil {
		return nil, fmt.Errorf("archive %s: copy: %w; nothing was moved", name, err)
	}
	if err := fault("copied"); err != nil {
		return nil, err
	}
	err = lifecycle.Append(lifecycle.PathIn(tmp), lifecycle.Record{Time: now.UTC(), Type: lifecycle.Archived, Actor: opts.Actor, Path: destRel})
	if err != nil {
		return nil, err
	}
	if err := syncDir(tmp); err != nil {
		return nil, err
	}
	if err := fault("synced"); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dest); err != nil {
		return nil, fmt.Errorf("archive %s: %w; nothing was moved", name, err)
	}
	renamed = true
	if err := syncDir(filepath.Dir(dest)); err != nil {
		return nil, err
	}
	if err := fault("renamed"); err != nil {
		return nil, fmt.Errorf("%w; the task is complete in %s: run archive again to remove %s", err, destRel, src)
	}
	if err := os.RemoveAll(srcAbs); err != nil {
		return nil, fmt.Errorf("archived to %s but could not remove %s: %w; run archive again", destRel, src, err)
	}
	return res, syncDir(w.Path(ActiveDir))
}

// ArchiveDue archives every active task completed more than ArchiveAfter ago.
func (w *Workspace) ArchiveDue(opts ArchiveOptions) ([]*ArchiveResult, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	tasks, err := w.Tasks(false, now)
	if err != nil {
		return nil, err
	}
	var done []*ArchiveResult
	for _, t := range tasks {
		if !t.ArchiveOverdue {
			continue
		}
		res, err := w.Archive(t.Name, ArchiveOptions{Now: now, Actor: opts.Actor, NoGit: opts.NoGit})
		if err != nil {
			return done, err
		}
		done = append(done, res)
	}
	return done, nil
}

func (w *Workspace) ensureArchivedRecord(dir, rel, actor string, now time.Time) error {
	recs, err := lifecycle.Load(lifecycle.PathIn(dir))
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Type == lifecycle.Archived {
			return nil
		}
	}
	return lifecycle.Append(lifecycle.PathIn(dir), lifecycle.Record{Time: now.UTC(), Type: lifecycle.Archived, Actor: actor, Path: rel})
}

// tracked reports whether rel has files in the git index of the workspace.
func (w *Workspace) tracked(rel string) bool {
	out, err := w.git("ls-files", "--", rel)
	return err == nil && len(bytes.TrimSpace(out)) > 0
}

func (w *Workspace) git(args ...string) ([]byte, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = w.Dir
	return cmd.CombinedOutput()
}

// copyTree copies regular files and directories from src into dst (which
// exists), syncing every file.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case rel == ".":
			return nil
		case d.IsDir():
			return os.Mkdir(target, 0o755)
		case d.Type().IsRegular():
			return copyFile(p, target)
		}
		return fmt.Errorf("%s is not a regular file; move it out of the task first", p)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chtimes(dst, st.ModTime(), st.ModTime())
}

// sameTree checks that every file under a exists under b with the same
// bytes; b may have more (the archived record appended to lifecycle.jsonl).
func sameTree(a, b string) error {
	return filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		x, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		y, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil {
			return fmt.Errorf("%s missing from the archive", rel)
		}
		if d.Name() == lifecycle.FileName {
			if !bytes.HasPrefix(y, x) {
				return errors.New("lifecycle records differ")
			}
			return nil
		}
		if !bytes.Equal(x, y) {
			return fmt.Errorf("%s differs", rel)
		}
		return nil
	})
}
