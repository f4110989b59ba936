package runbook

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// WorkspaceConfig is the file that marks a workspace's root.
const WorkspaceConfig = "opsbook.yaml"

// RefError is a rollback: or call reference refused by CheckRef, at the
// place in the document that makes it.
type RefError struct {
	Diagnostic Diagnostic
}

func (e *RefError) Error() string { return e.Diagnostic.String() }

// RuleBadReference is the rule of a refused reference.
const RuleBadReference = "bad-reference"

// CheckRef resolves ref, a rollback: path or a call block's runbook=,
// written in the document at from, and refuses a reference that leaves the
// workspace: an absolute path (/dev/zero, /etc/…), one that climbs out of
// root with "..", and the document itself. root and from have the same
// form: both absolute, or both relative to the workspace with root ".". It
// returns the referenced path in that form. That the path is a regular
// file is markdown.ReadFile's check, made when it is read. Lint, the CLI,
// the server and the lifecycle gates all resolve references here.
func CheckRef(root, from, ref string) (string, error) {
	if path.IsAbs(ref) || filepath.IsAbs(ref) {
		return "", fmt.Errorf("%s is an absolute path; name a document inside the workspace, relative to this one", ref)
	}
	p := path.Join(path.Dir(from), ref)
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%s leads outside the workspace; keep rollback and called documents inside it", ref)
	}
	if p == path.Clean(from) {
		return "", fmt.Errorf("%s is this document itself; name another document", ref)
	}
	return p, nil
}

// RollbackPath is CheckRef for the document's rollback: reference, with a
// refusal placed at the key. It returns "" when there is no rollback.
func RollbackPath(root string, doc *Document) (string, error) {
	ref := doc.Front.Rollback
	if ref == "" {
		return "", nil
	}
	p, err := CheckRef(root, doc.Path, ref)
	if err != nil {
		return "", NewRefError(doc.Path, doc.Front.Keys["rollback"], "rollback: "+err.Error())
	}
	return p, nil
}

// NewRefError places a refused reference in a document.
func NewRefError(file string, pos Pos, msg string) *RefError {
	if pos.IsZero() {
		pos = Pos{Line: 1, Col: 1}
	}
	return &RefError{Diagnostic{File: file, Pos: pos, Severity: SeverityError, Rule: RuleBadReference, Message: msg}}
}

// RootOf is the root that the references of the document at file are kept
// in: the nearest directory above it holding an opsbook.yaml, else the
// document's own directory (a document outside any workspace may name
// documents beside and below it).
func RootOf(file string) string {
	abs, err := filepath.Abs(file)
	if err != nil {
		return filepath.Dir(file)
	}
	for dir := filepath.Dir(abs); ; {
		if _, err := os.Stat(filepath.Join(dir, WorkspaceConfig)); err == nil || !errors.Is(err, fs.ErrNotExist) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return filepath.Dir(abs)
		}
		dir = parent
	}
}
