// Package snapshot computes the identity of what a run executes: a SHA-256
// content hash over the runbook, its rollback document, the runbooks it
// calls, its parameter definitions and the non-secret variable values of
// the environment. Runs store it; reviews and rehearsals (the lifecycle)
// refer to it, so any change to what would run invalidates them.
//
// The hash is stable across machines and versions of opsbook that share
// the format version below:
//
//   - Line endings are normalised (CRLF and lone CR become LF) and a leading
//     UTF-8 byte-order mark is dropped, so a checkout on Windows hashes the
//     same as one on Linux. Nothing else about the text is normalised: a
//     changed space in a command is a changed command.
//   - File paths are not hashed, only contents and their role (runbook,
//     rollback, the n-th called runbook), so archiving a task folder does not
//     change its snapshot.
//   - Every field is written as tag, 8-byte big-endian length, bytes; the
//     stream starts with the domain string "opsbook/snapshot/v1". No two
//     different inputs can produce the same byte stream, and no other
//     opsbook hash can collide with a snapshot.
//   - Parameters are hashed in definition order with name, type, required,
//     default (and whether there is one), allowed values and the secret
//     flag. Variables are hashed sorted by name. Secret values — parameter
//     values and secret variables — are never part of the input: a snapshot
//     says what runs, not with which credentials.
//
// A snapshot is written "sha256:" followed by 64 lower-case hex digits; its
// short form is the first 12 hex digits.
package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"sort"
	"strconv"
	"strings"

	"github.com/opsbook/opsbook/internal/runbook"
)

// Domain is the first field of every snapshot's byte stream; bump its
// version when the encoding changes.
const Domain = "opsbook/snapshot/v1"

// Prefix starts the text form of a snapshot.
const Prefix = "sha256:"

// Input is everything a run's snapshot covers.
type Input struct {
	Runbook  []byte   // the runbook's source
	Rollback []byte   // its rollback document's source; nil when it has none
	Called   [][]byte // sources of called runbooks, in the order the runbook calls them
	Params   []runbook.Param
	// Variables are the environment's non-secret variable values. Never put
	// secret values here.
	Variables map[string]string
}

// FromDocuments builds the input from parsed documents. rollback may be nil.
func FromDocuments(doc, rollback *runbook.Document, called []*runbook.Document, vars map[string]string) Input {
	in := Input{Runbook: doc.Source, Params: doc.Front.Params, Variables: vars}
	if rollback != nil {
		in.Rollback = rollback.Source
	}
	for _, c := range called {
		in.Called = append(in.Called, c.Source)
	}
	return in
}

// Hash is a snapshot identity.
type Hash [sha256.Size]byte

// Of returns the snapshot of in.
func Of(in Input) Hash {
	w := writer{h: sha256.New()}
	w.field("domain", []byte(Domain))
	w.field("runbook", Normalize(in.Runbook))
	if in.Rollback != nil {
		w.field("rollback", Normalize(in.Rollback))
	} else {
		w.field("no-rollback", nil)
	}
	w.field("called", []byte(strconv.Itoa(len(in.Called))))
	for _, c := range in.Called {
		w.field("call", Normalize(c))
	}
	w.field("params", []byte(strconv.Itoa(len(in.Params))))
	for _, p := range in.Params {
		w.field("param.name", []byte(p.Name))
		w.field("param.type", []byte(p.Type))
		w.field("param.required", []byte(strconv.FormatBool(p.Required)))
		w.field("param.has_default", []byte(strconv.FormatBool(p.HasDefault)))
		w.field("param.default", []byte(p.Default))
		w.field("param.allowed", []byte(strconv.Itoa(len(p.Allowed))))
		for _, a := range p.Allowed {
			w.field("param.allow", []byte(a))
		}
		w.field("param.secret", []byte(strconv.FormatBool(p.Secret)))
	}
	names := make([]string, 0, len(in.Variables))
	for k := range in.Variables {
		names = append(names, k)
	}
	sort.Strings(names)
	w.field("variables", []byte(strconv.Itoa(len(names))))
	for _, k := range names {
		w.field("var.name", []byte(k))
		w.field("var.value", []byte(in.Variables[k]))
	}
	var out Hash
	w.h.Sum(out[:0])
	return out
}

type writer struct{ h hash.Hash }

func (w writer) field(tag string, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(tag)))
	w.h.Write(n[:])
	w.h.Write([]byte(tag))
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	w.h.Write(n[:])
	w.h.Write(b)
}

// Normalize returns src with a leading UTF-8 BOM removed and every CRLF or
// lone CR turned into LF.
func Normalize(src []byte) []byte {
	src = bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))
	if bytes.IndexByte(src, '\r') < 0 {
		return src
	}
	out := make([]byte, 0, len(src))
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c == '\r' {
			if i+1 < len(src) && src[i+1] == '\n' {
				i++
			}
			c = '\n'
		}
		out = append(out, c)
	}
	return out
}

// String is the full form, "sha256:" and 64 hex digits.
func (h Hash) String() string { return Prefix + hex.EncodeToString(h[:]) }

// Short is the first 12 hex digits, for people.
func (h Hash) Short() string { return hex.EncodeToString(h[:6]) }

// IsZero reports whether h is the zero value (no snapshot).
func (h Hash) IsZero() bool { return h == Hash{} }

// Parse reads the full form written by String.
func Parse(s string) (Hash, error) {
	var h Hash
	hexPart, ok := strings.CutPrefix(s, Prefix)
	if !ok || len(hexPart) != 2*len(h) {
		return h, fmt.Errorf("snapshot %q: want %s followed by %d hex digits", s, Prefix, 2*len(h))
	}
	if _, err := hex.Decode(h[:], []byte(hexPart)); err != nil {
		return h, fmt.Errorf("snapshot %q: %w", s, err)
	}
	return h, nil
}

// ShortOf shortens a full snapshot string for display; anything that is not
// one is returned unchanged.
func ShortOf(s string) string {
	if h, err := Parse(s); err == nil {
		return h.Short()
	}
	return s
}
