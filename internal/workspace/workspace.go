// Package workspace is the ops/ tree of a workspace: its opsbook.yaml
// (environments, inventories, lifecycle gates), its planned-operation tasks
// and their conventional names, the built-in templates and runbook library,
// and archiving.
package workspace

import (
	"errors"
	"fmt"
	"github.com/opsbook/opsbook/internal/runbook"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ConfigFile is the name of the file that marks a workspace's root.
const ConfigFile = runbook.WorkspaceConfig

// StateDirName is the git-ignored directory of local state under the root.
const StateDirName = ".opsbook"

// Directories of the ops/ tree, relative to the workspace root.
const (
	OpsDir       = "ops"
	RunbooksDir  = "ops/runbooks"
	ActiveDir    = "ops/active"
	ArchiveDir   = "ops/archive"
	TemplatesDir = "ops/templates"
)

// ErrNoWorkspace is returned by Find when no opsbook.yaml is found.
var ErrNoWorkspace = errors.New("no workspace")

// Workspace is a directory with an opsbook.yaml.
type Workspace struct {
	Dir    string // absolute path of the root
	Config Config
}

// Find returns the workspace whose root is start or its nearest parent
// holding an opsbook.yaml.
func Find(start string) (*Workspace, error) {
	abs, err := filepath.Abs(start)
	if err != nil {
		return nil, fmt.Errorf("find workspace from %s: %w", start, err)
	}
	for dir := abs; ; {
		_, err := os.Stat(filepath.Join(dir, ConfigFile))
		if err == nil {
			return Load(dir)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("find workspace: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return nil, fmt.Errorf("%w: no %s in %s or any parent directory; run `opsbook init` there to create one, or pass --workspace DIR",
		ErrNoWorkspace, ConfigFile, abs)
}

// Load reads the workspace rooted at dir. A problem in opsbook.yaml is a
// *ConfigError listing every one with its file:line:col.
func Load(dir string) (*Workspace, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("load workspace %s: %w", dir, err)
	}
	file := filepath.Join(abs, ConfigFile)
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s; run `opsbook init %s` to create one", ErrNoWorkspace, abs, ConfigFile, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("load workspace: %w", err)
	}
	// Diagnostics name the file as the caller named the directory.
	cfg, err := ParseConfig(filepath.Join(dir, ConfigFile), data, abs)
	if err != nil {
		return nil, err
	}
	return &Workspace{Dir: abs, Config: cfg}, nil
}

// StateDir is where local state (the run store) lives: <root>/.opsbook,
// or $OPSBOOK_STATE_DIR when set.
func (w *Workspace) StateDir() string {
	if d := os.Getenv("OPSBOOK_STATE_DIR"); d != "" {
		return d
	}
	return filepath.Join(w.Dir, StateDirName)
}

// Path joins a slash-separated path relative to the root onto the root.
func (w *Workspace) Path(rel string) string {
	return filepath.Join(w.Dir, filepath.FromSlash(rel))
}

// Rel returns p relative to the root with forward slashes, as documents and
// runs name files; p outside the workspace is returned unchanged.
func (w *Workspace) Rel(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	rel, err := filepath.Rel(w.Dir, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return p
	}
	return filepath.ToSlash(rel)
}

// Environment returns the named environment.
func (w *Workspace) Environment(name string) (Environment, error) {
	for _, e := range w.Config.Environments {
		if e.Name == name {
			return e, nil
		}
	}
	names := w.EnvironmentNames()
	if len(names) == 0 {
		return Environment{}, fmt.Errorf("unknown environment %q: %s declares no environments; add one under environments:", name, ConfigFile)
	}
	msg := fmt.Sprintf("unknown environment %q; %s declares %s", name, ConfigFile, strings.Join(names, ", "))
	if s := suggest(name, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return Environment{}, errors.New(msg)
}

// EnvironmentNames lists the declared environments in file order.
func (w *Workspace) EnvironmentNames() []string {
	names := make([]string, len(w.Config.Environments))
	for i, e := range w.Config.Environments {
		names[i] = e.Name
	}
	return names
}

// Project returns the named project.
func (w *Workspace) Project(name string) (Project, bool) {
	for _, p := range w.Config.Projects {
		if p.Name == name {
			return p, true
		}
	}
	return Project{}, false
}

// ProjectOf returns the first project whose globs match a runbook path
// relative to the workspace.
func (w *Workspace) ProjectOf(rel string) (Project, bool) {
	for _, p := range w.Config.Projects {
		for _, g := range p.Runbooks {
			if matchGlob(g, rel) {
				return p, true
			}
		}
	}
	return Project{}, false
}

// Runbooks lists the Markdown files a project's globs select, relative to
// the root, sorted.
func (w *Workspace) Runbooks(p Project) ([]string, error) {
	var out []string
	err := filepath.WalkDir(w.Dir, func(p2 string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := w.Rel(p2)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		for _, g := range p.Runbooks {
			if matchGlob(g, rel) {
				out = append(out, rel)
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list runbooks of project %s: %w", p.Name, err)
	}
	sort.Strings(out)
	return out, nil
}

// checkGlob validates a project glob.
func checkGlob(g string) error {
	if g == "" {
		return errors.New("empty pattern")
	}
	if path.IsAbs(g) || strings.HasPrefix(path.Clean(g), "..") {
		return errors.New("must be relative to the workspace, e.g. ops/runbooks/db-*.md")
	}
	for _, seg := range strings.Split(g, "/") {
		if seg == "**" {
			continue
		}
		if _, err := path.Match(seg, ""); err != nil {
			return fmt.Errorf("bad pattern segment %q; use *, ? and [a-z] (and ** for any depth)", seg)
		}
	}
	return nil
}

// matchGlob matches a slash path against a glob in which a "**" segment
// stands for any number of directories.
func matchGlob(glob, name string) bool {
	return matchSegments(strings.Split(glob, "/"), strings.Split(name, "/"))
}

func matchSegments(g, n []string) bool {
	for len(g) > 0 {
		if g[0] == "**" {
			for i := 0; i <= len(n); i++ {
				if matchSegments(g[1:], n[i:]) {
					return true
				}
			}
			return false
		}
		if len(n) == 0 {
			return false
		}
		if ok, _ := path.Match(g[0], n[0]); !ok {
			return false
		}
		g, n = g[1:], n[1:]
	}
	return len(n) == 0
}
