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
	"unicode"

	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/markdown"
)

// NewOptions describe a task to create.
type NewOptions struct {
	Description string
	Name        NameOptions
	Lang        string // "" means the workspace's
	Library     string // "" picks the best match; "generic" forces the skeleton
	DryRun      bool
	Actor       string
}

// NewResult says what NewTask made (or would make, on a dry run).
type NewResult struct {
	Task     string   `json:"task"`
	Dir      string   `json:"dir"` // relative to the workspace
	Files    []string `json:"files"`
	Name     TaskName `json:"name"`
	Lang     string   `json:"lang"`
	Library  string   `json:"library"`
	Reason   string   `json:"reason"` // why that library runbook (or the skeleton)
	DryRun   bool     `json:"dry_run"`
	Overrode []string `json:"template_overrides,omitempty"` // ops/templates files used
}

// NewTask creates ops/active/<task>/ with the task's four documents and
// its lifecycle record. It writes everything into a temporary directory
// beside the destination and renames it into place, so a task appears
// whole or not at all, and never replaces an existing one.
func (w *Workspace) NewTask(opts NewOptions) (*NewResult, error) {
	name, err := DeriveName(opts.Description, opts.Name)
	if err != nil {
		return nil, err
	}
	lang := opts.Lang
	if lang == "" && containsHan(opts.Description) {
		lang = "zh" // a Chinese description asks for Chinese documents
	}
	if lang == "" {
		lang = w.Config.Lang
	}
	if lang != "en" && lang != "zh" {
		return nil, fmt.Errorf("--lang %q: use en or zh", lang)
	}
	task := name.String()
	res := &NewResult{Task: task, Dir: path.Join(ActiveDir, task), Name: name, Lang: lang, DryRun: opts.DryRun}
	if existing, ok := w.taskDir(task); ok {
		return nil, fmt.Errorf("task %s already exists in %s; pick another --slug or --date, or edit the existing documents", task, existing)
	}

	var match LibraryMatch
	switch opts.Library {
	case "":
		match = MatchLibrary(name)
	case GenericEntry:
		match = LibraryMatch{Reason: "--library generic: the skeleton with <<FILL: …>> placeholders"}
	default:
		e, err := LibraryByName(opts.Library)
		if err != nil {
			return nil, err
		}
		match = LibraryMatch{Entry: e, Reason: fmt.Sprintf("--library %s", e.Name)}
	}
	res.Library, res.Reason = match.Name(), match.Reason

	docs, overrides, err := w.renderTask(name, opts.Description, lang, match)
	if err != nil {
		return nil, err
	}
	res.Overrode = overrides
	files := FilesFor(task)
	order := []string{files.Runbook, files.Rollback, files.Checklist, files.Postmortem}
	for _, f := range order {
		res.Files = append(res.Files, path.Join(res.Dir, f))
	}
	res.Files = append(res.Files, path.Join(res.Dir, lifecycle.FileName))
	if opts.DryRun {
		return res, nil
	}

	active := w.Path(ActiveDir)
	if err := os.MkdirAll(active, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", ActiveDir, err)
	}
	tmp, err := os.MkdirTemp(active, ".new-"+task+"-")
	if err != nil {
		return nil, fmt.Errorf("create task: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	for _, f := range order {
		if err := writeFileSync(filepath.Join(tmp, f), docs[f]); err != nil {
			return nil, err
		}
	}
	actor := opts.Actor
	if actor == "" {
		actor = lifecycle.Actor(w.Dir)
	}
	err = lifecycle.Append(lifecycle.PathIn(tmp), lifecycle.Record{Type: lifecycle.Created, Actor: actor,
		Note: opts.Description, Data: map[string]string{"library": res.Library, "lang": lang}})
	if err != nil {
		return nil, err
	}
	// MkdirTemp makes the directory private; a task is as readable as the repository.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("create task: %w", err)
	}
	if err := syncDir(tmp); err != nil {
		return nil, err
	}
	dest := w.Path(res.Dir)
	// Rename refuses a non-empty destination, so a task created meanwhile
	// by someone else is never replaced.
	if err := os.Rename(tmp, dest); err != nil {
		if _, statErr := os.Stat(dest); statErr == nil {
			return nil, fmt.Errorf("task %s was created meanwhile in %s; edit it instead", task, res.Dir)
		}
		return nil, fmt.Errorf("create task %s: %w", task, err)
	}
	if err := syncDir(active); err != nil {
		return nil, err
	}
	return res, nil
}

// renderTask produces the four documents of a task by file name.
func (w *Workspace) renderTask(name TaskName, desc, lang string, match LibraryMatch) (map[string][]byte, []string, error) {
	task := name.String()
	files := FilesFor(task)
	data := DocData{
		Task: task, Title: titleFor(desc, name), Description: desc,
		System: name.System, Operation: name.Operation, Slug: name.Slug,
		Date: name.Date.Format(time.DateOnly), Lang: lang, Files: files,
		Environments: w.EnvironmentNames(), Library: match.Name(),
	}
	if len(data.Environments) == 0 {
		data.Environments = []string{"staging", "production"}
	}
	docs := map[string][]byte{}
	var overrides []string
	render := func(tmpl, file string) error {
		text, from, err := w.Template(lang, tmpl)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(from, "built-in") {
			overrides = append(overrides, from)
		}
		out, err := renderTemplate(from, text, data)
		if err != nil {
			return err
		}
		docs[file] = out
		return nil
	}
	if match.Entry != nil {
		rb, rollback, err := LibraryFiles(match.Entry)
		if err != nil {
			return nil, nil, err
		}
		docs[files.Runbook] = adaptLibraryDoc(rb, data.Title, files.Rollback)
		prefix := "Roll back: "
		if lang == "zh" {
			prefix = "回滚："
		}
		docs[files.Rollback] = adaptLibraryDoc(rollback, prefix+data.Title, "")
	} else {
		if err := render(TemplateRunbook, files.Runbook); err != nil {
			return nil, nil, err
		}
		if err := render(TemplateRollback, files.Rollback); err != nil {
			return nil, nil, err
		}
	}
	// The checklist and the postmortem list the runbook's real steps.
	doc, _ := markdown.Parse(files.Runbook, docs[files.Runbook])
	data.Steps = stepRows(doc)
	if err := render(TemplateChecklist, files.Checklist); err != nil {
		return nil, nil, err
	}
	if err := render(TemplatePostmortem, files.Postmortem); err != nil {
		return nil, nil, err
	}
	return docs, overrides, nil
}

// titleFor makes a document title from the description, as written.
func titleFor(desc string, n TaskName) string {
	t := strings.TrimSpace(desc)
	if t == "" {
		return n.System + " " + n.Operation + " " + n.Slug
	}
	r := []rune(t)
	if r[0] >= 'a' && r[0] <= 'z' {
		r[0] -= 'a' - 'A'
	}
	return string(r)
}

// taskDir finds a task by name among active and archived tasks.
func (w *Workspace) taskDir(task string) (string, bool) {
	active := path.Join(ActiveDir, task)
	if st, err := os.Stat(w.Path(active)); err == nil && st.IsDir() {
		return active, true
	}
	matches, _ := filepath.Glob(w.Path(path.Join(ArchiveDir, "*", "*", task)))
	if len(matches) > 0 {
		sort.Strings(matches)
		return w.Rel(matches[0]), true
	}
	return "", false
}

func writeFileSync(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", p, err)
	}
	return f.Close()
}

// syncDir makes a directory's entries (renames, new files) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// containsHan reports whether s has a Chinese character.
func containsHan(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Han, r) {
			return true
		}
	}
	return false
}
