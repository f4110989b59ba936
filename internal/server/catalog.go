package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/opsbook/opsbook/internal/markdown"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/snapshot"
	"github.com/opsbook/opsbook/internal/workspace"
)

// DefaultProject holds runbooks that no project of opsbook.yaml selects;
// grants name it like any other project.
const DefaultProject = "default"

// Entry is one runbook the server knows, as currently in the workspace.
type Entry struct {
	Path     string            `json:"path"` // relative to the workspace, slash-separated
	Project  string            `json:"project"`
	Title    string            `json:"title"`
	Tags     []string          `json:"tags,omitempty"`
	Doc      *runbook.Document `json:"-"`
	Rollback *runbook.Document `json:"-"`
	// Called are the runbooks its call steps (and its rollback's) name,
	// resolved as the CLI resolves them (workspace.ResolveCalls).
	Called      map[string]*runbook.Document `json:"-"`
	calledOrder []*runbook.Document
	Diagnostics []runbook.Diagnostic `json:"diagnostics,omitempty"`
	// Content is the snapshot of the documents alone (no variables): what
	// publishing freezes.
	Content string `json:"content"`
	html    func() string
}

// HTML is the runbook rendered for reading (RenderMarkdown), rendered on
// first use and kept until the workspace is read again.
func (e *Entry) HTML() string {
	if e.html == nil {
		return RenderMarkdown(e.Doc.Source)
	}
	return e.html()
}

// Catalog is the workspace as the server sees it: its config and its
// runbooks, re-read on Sync.
type Catalog struct {
	mu       sync.RWMutex
	dir      string
	ws       *workspace.Workspace
	entries  map[string]*Entry
	paths    []string
	loadedAt time.Time
	// stale is why the last Sync failed, nil after a good one: the
	// catalog still holds what was read at loadedAt.
	stale error
}

// LoadCatalog reads the workspace at dir.
func LoadCatalog(dir string) (*Catalog, error) {
	c := &Catalog{dir: dir}
	if err := c.Sync(); err != nil {
		return nil, err
	}
	return c, nil
}

// Sync re-reads opsbook.yaml and every runbook. On error the previous
// state is kept.
func (c *Catalog) Sync() (err error) {
	defer func() {
		c.mu.Lock()
		c.stale = err
		c.mu.Unlock()
	}()
	ws, err := workspace.Load(c.dir)
	if err != nil {
		return err
	}
	entries := map[string]*Entry{}
	for _, root := range []string{workspace.RunbooksDir, workspace.ActiveDir} {
		err := filepath.WalkDir(ws.Path(root), func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(d.Name(), ".md") {
				return nil
			}
			rel := ws.Rel(p)
			e, err := loadEntry(ws, rel)
			if err != nil {
				return err
			}
			if e != nil {
				entries[rel] = e
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read runbooks of %s: %w", ws.Dir, err)
		}
	}
	paths := make([]string, 0, len(entries))
	for p := range entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	c.mu.Lock()
	c.ws, c.entries, c.paths, c.loadedAt = ws, entries, paths, time.Now()
	c.mu.Unlock()
	return nil
}

// loadEntry parses one runbook or rollback document; documents of other
// kinds are skipped (nil).
func loadEntry(ws *workspace.Workspace, rel string) (*Entry, error) {
	src, err := markdown.ReadFile(ws.Path(rel))
	if err != nil {
		return nil, err
	}
	doc, diags := markdown.Parse(rel, src)
	// Runbooks and rollback documents are listed and run (a rollback
	// document runs its rollback steps on their own, as `opsbook run` does).
	if doc == nil || doc.Front.Kind != runbook.KindRunbook && doc.Front.Kind != runbook.KindRollback {
		return nil, nil
	}
	e := &Entry{Path: rel, Title: doc.Title, Tags: doc.Front.Tags, Doc: doc, Diagnostics: diags, Project: DefaultProject,
		html: sync.OnceValue(func() string { return RenderMarkdown(doc.Source) })}
	if p, ok := ws.ProjectOf(rel); ok {
		e.Project = p.Name
	}
	rbRel, err := runbook.RollbackPath(".", doc)
	var refused *runbook.RefError
	if errors.As(err, &refused) {
		e.Diagnostics = append(e.Diagnostics, refused.Diagnostic)
	}
	if rbRel != "" {
		rbSrc, err := markdown.ReadFile(ws.Path(rbRel))
		if err != nil {
			e.Diagnostics = append(e.Diagnostics, runbook.Diagnostic{File: rel, Pos: doc.Front.Keys["rollback"], Severity: runbook.SeverityError,
				Rule: "rollback-missing", Message: fmt.Sprintf("rollback document %s cannot be read: %v", rbRel, err)})
		} else {
			e.Rollback, _ = markdown.Parse(rbRel, rbSrc)
		}
	}
	e.Called, e.calledOrder, err = workspace.ResolveCalls(".", func(p string) (*runbook.Document, error) {
		src, err := markdown.ReadFile(ws.Path(p))
		if err != nil {
			e.Diagnostics = append(e.Diagnostics, runbook.Diagnostic{File: rel, Pos: callPos(p, doc, e.Rollback), Severity: runbook.SeverityError,
				Rule: "call-missing", Message: fmt.Sprintf("called runbook %s cannot be read: %v", p, err)})
			return nil, nil
		}
		called, diags := markdown.Parse(p, src)
		for _, d := range diags {
			if d.Severity == runbook.SeverityError {
				e.Diagnostics = append(e.Diagnostics, d)
			}
		}
		return called, nil
	}, doc, e.Rollback)
	if errors.As(err, &refused) {
		e.Diagnostics = append(e.Diagnostics, refused.Diagnostic)
	}
	e.Content = snapshot.Of(snapshot.FromDocuments(doc, e.Rollback, e.calledOrder, nil)).String()
	return e, nil
}

// callPos is where a document of the run (the runbook, its rollback) calls
// the runbook at p, for a diagnostic; the runbook's start when the call is
// made deeper down.
func callPos(p string, docs ...*runbook.Document) runbook.Pos {
	for _, d := range docs {
		if d == nil {
			continue
		}
		for _, s := range d.Steps {
			if ref, _ := s.Call.Attr("runbook"); s.Call != nil && path.Join(path.Dir(d.Path), ref) == p {
				return s.Call.Pos
			}
		}
	}
	return runbook.Pos{Line: 1, Col: 1}
}

// Documents returns what a run of the entry executes.
func (e *Entry) Documents() Documents {
	return Documents{Runbook: e.Doc, Rollback: e.Rollback, Called: e.Called, Order: e.calledOrder}
}

// Workspace returns the workspace as last read.
func (c *Catalog) Workspace() *workspace.Workspace {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.ws
}

// Get returns the runbook at a workspace-relative path.
func (c *Catalog) Get(rel string) (*Entry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[rel]
	return e, ok
}

// List returns every runbook, by path.
func (c *Catalog) List() []*Entry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*Entry, 0, len(c.paths))
	for _, p := range c.paths {
		out = append(out, c.entries[p])
	}
	return out
}

// ProjectOf returns the project of a runbook path, known or not (a run of
// a runbook deleted since still belongs to its project).
func (c *Catalog) ProjectOf(rel string) string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e, ok := c.entries[rel]; ok {
		return e.Project
	}
	if p, ok := c.ws.ProjectOf(rel); ok {
		return p.Name
	}
	return DefaultProject
}

// Projects lists the project names: those of opsbook.yaml, then the
// default project when some runbook falls in it.
func (c *Catalog) Projects() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []string
	for _, p := range c.ws.Config.Projects {
		out = append(out, p.Name)
	}
	for _, e := range c.entries {
		if e.Project == DefaultProject {
			out = append(out, DefaultProject)
			break
		}
	}
	return out
}

// Stale returns why the workspace could not be read the last time it was
// tried, and when the state still served was read; nil when it is current.
func (c *Catalog) Stale() (since time.Time, err error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.loadedAt, c.stale
}

// fingerprint summarises the files Sync reads (names, sizes, modification
// times), so a watcher can tell cheaply whether to sync.
func (c *Catalog) fingerprint() string {
	h := sha256.New()
	stat := func(p string) {
		if info, err := os.Stat(p); err == nil {
			fmt.Fprintf(h, "%s %d %d\n", p, info.Size(), info.ModTime().UnixNano())
		}
	}
	stat(filepath.Join(c.dir, workspace.ConfigFile))
	for _, root := range []string{workspace.RunbooksDir, workspace.ActiveDir} {
		filepath.WalkDir(filepath.Join(c.dir, filepath.FromSlash(root)), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
				stat(p)
			}
			return nil
		})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// watchWorkspace re-reads the workspace whenever its files change
// (polling: it works the same on every file system and in containers).
func (s *Server) watchWorkspace(ctx context.Context, last string, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fp := s.catalog.fingerprint()
		if fp == last {
			continue
		}
		if err := s.catalog.Sync(); err != nil {
			s.log.Warn("workspace changed but cannot be read; keeping the previous state", "err", err)
			last = fp // said once; the next change is tried again
			continue
		}
		last = fp
		s.log.Info("workspace re-read", "runbooks", len(s.catalog.List()))
	}
}
