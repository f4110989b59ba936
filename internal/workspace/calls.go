package workspace

import (
	"github.com/opsbook/opsbook/internal/runbook"
)

// LoadDocument returns the document at a path: the caller's document's
// directory joined with a call block's runbook reference (slash-separated,
// relative to the workspace when the caller's path is). A nil document
// with a nil error leaves that reference out. The document's Path must be
// p, so the calls it makes resolve from its own directory.
type LoadDocument func(p string) (*runbook.Document, error)

// ResolveCalls finds the runbooks that the call steps of docs name, and
// the runbooks those call, each read once through load. Called is keyed by
// the reference as the call block writes it (what engine.Plan.Called
// wants); Order lists them in the order they are first called, as the
// snapshot hashes them. The CLI, the server and the lifecycle gates all
// resolve calls here, so a run, its snapshot and the reviewed snapshot
// agree on what is called. A call cycle stops at the second visit (lint
// reports it). root is the workspace in the form of the documents' paths
// (see runbook.CheckRef); a reference it refuses is a *runbook.RefError.
func ResolveCalls(root string, load LoadDocument, docs ...*runbook.Document) (called map[string]*runbook.Document, order []*runbook.Document, err error) {
	called = map[string]*runbook.Document{}
	seen := map[string]bool{}
	for _, d := range docs {
		if d != nil {
			seen[d.Path] = true
		}
	}
	var walk func(doc *runbook.Document) error
	walk = func(doc *runbook.Document) error {
		for _, s := range doc.Steps {
			if s.Call == nil {
				continue
			}
			ref, _ := s.Call.Attr("runbook")
			if ref == "" || called[ref] != nil {
				continue
			}
			p, err := runbook.CheckRef(root, doc.Path, ref)
			if err != nil {
				return runbook.NewRefError(doc.Path, s.Call.Pos, "call: "+err.Error())
			}
			if seen[p] {
				continue
			}
			seen[p] = true
			c, err := load(p)
			if err != nil {
				return err
			}
			if c == nil {
				continue
			}
			called[ref] = c
			order = append(order, c)
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	for _, d := range docs {
		if d == nil {
			continue
		}
		if err := walk(d); err != nil {
			return nil, nil, err
		}
	}
	return called, order, nil
}
