// Package lint checks parsed runbook documents against the rules of
// docs/runbook-format.md and reports every problem as a runbook.Diagnostic
// at its file:line:col, with what to do about it.
package lint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/opsbook/opsbook/internal/markdown"
	"github.com/opsbook/opsbook/internal/runbook"
)

// Options tunes a lint run.
type Options struct {
	// KnownVars are variable names commands may use besides params,
	// outputs and built-ins: the workspace's environment variables.
	KnownVars []string
	// Shell runs `bash -n` / `sh -n` on every sh and bash block.
	Shell bool
}

// Paths lints files and directories. A directory is walked for *.md files
// whose front matter has a kind: key, so READMEs and notes are left alone;
// a file named explicitly is always linted. Parse diagnostics come first
// in each file's list. The error is for paths that cannot be read.
func Paths(paths []string, opts Options) ([]runbook.Diagnostic, error) {
	var files []string
	explicit := map[string]bool{}
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("lint %s: %w", p, err)
		}
		if !info.IsDir() {
			files = append(files, p)
			explicit[p] = true
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != p && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.EqualFold(filepath.Ext(path), ".md") {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("lint %s: %w", p, err)
		}
	}

	results := make([][]runbook.Diagnostic, len(files))
	blocks := make([][]shellBlock, len(files))
	errs := make([]error, len(files))
	parallel(len(files), func(i int) {
		results[i], blocks[i], errs[i] = lintFile(files[i], explicit[files[i]], opts)
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var all []runbook.Diagnostic
	var shell []shellBlock
	for i, r := range results {
		all = append(all, r...)
		shell = append(shell, blocks[i]...)
	}
	if opts.Shell {
		// Checked together so that many documents share a few shell processes.
		all = append(all, checkShell(shell)...)
	}
	runbook.SortDiagnostics(all)
	return all, nil
}

// parallel calls do(0) … do(n-1) on up to GOMAXPROCS goroutines and
// returns when all have returned.
func parallel(n int, do func(i int)) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(runtime.GOMAXPROCS(0), n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				do(i)
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
}

// lintFile parses and lints one file, leaving the shell syntax check to
// the caller: it returns the blocks to check instead.
func lintFile(path string, explicit bool, opts Options) ([]runbook.Diagnostic, []shellBlock, error) {
	doc, diags, err := markdown.ParseFile(path)
	if err != nil {
		return nil, nil, err
	}
	if !explicit {
		if _, hasKind := doc.Front.Keys["kind"]; !hasKind {
			return nil, nil, nil
		}
	}
	withoutShell := opts
	withoutShell.Shell = false
	return append(diags, Document(doc, withoutShell)...), shellBlocks(doc), nil
}

// Document applies every lint rule to a parsed document. It does not repeat
// the parser's own diagnostics; Paths returns both.
func Document(doc *runbook.Document, opts Options) []runbook.Diagnostic {
	l := &linter{doc: doc, opts: opts}
	l.frontMatter()
	l.sections()
	l.steps()
	l.errexitOff()
	l.variables()
	l.placeholders()
	if opts.Shell {
		l.diags = append(l.diags, checkShell(shellBlocks(doc))...)
	}
	runbook.SortDiagnostics(l.diags)
	return l.diags
}

type linter struct {
	doc   *runbook.Document
	opts  Options
	diags []runbook.Diagnostic
}

func (l *linter) errorf(pos runbook.Pos, rule, format string, args ...any) {
	l.add(runbook.SeverityError, pos, rule, format, args...)
}

func (l *linter) warnf(pos runbook.Pos, rule, format string, args ...any) {
	l.add(runbook.SeverityWarning, pos, rule, format, args...)
}

func (l *linter) add(sev runbook.Severity, pos runbook.Pos, rule, format string, args ...any) {
	if pos.IsZero() {
		pos = runbook.Pos{Line: 1, Col: 1}
	}
	l.diags = append(l.diags, runbook.Diagnostic{
		File: l.doc.Path, Pos: pos, Severity: sev, Rule: rule, Message: fmt.Sprintf(format, args...),
	})
}

// keyPos is where a front matter key is, or the front matter itself.
func (l *linter) keyPos(key string) runbook.Pos {
	if p, ok := l.doc.Front.Keys[key]; ok {
		return p
	}
	return runbook.Pos{Line: 1, Col: 1}
}
