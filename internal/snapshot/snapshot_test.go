package snapshot

import (
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/runbook"
)

func base() Input {
	return Input{
		Runbook:   []byte("---\nkind: runbook\n---\n# Backup\n"),
		Rollback:  []byte("# Rollback\n"),
		Called:    [][]byte{[]byte("# Called\n")},
		Params:    []runbook.Param{{Name: "db", Type: runbook.ParamString, Required: true}, {Name: "mode", Type: runbook.ParamEnum, Allowed: []string{"a", "b"}}},
		Variables: map[string]string{"REGION": "eu", "TIER": "gold"},
	}
}

// The golden value (recomputed independently from the documented encoding)
// pins it: if it changes, every stored review
// becomes stale, so a change here must come with a new Domain version.
const golden = "sha256:f8f0fcbe631f68557fa90edc93bca1a843e60cd2d1e67382f75d57095cd24cb5"

func TestGolden(t *testing.T) {
	got := Of(base()).String()
	if got != golden {
		t.Fatalf("snapshot of the base input = %s, want %s (encoding changed? bump Domain)", got, golden)
	}
}

func TestFormat(t *testing.T) {
	h := Of(base())
	s := h.String()
	if !strings.HasPrefix(s, "sha256:") || len(s) != len("sha256:")+64 || h.Short() != s[7:19] {
		t.Fatalf("String %q Short %q", s, h.Short())
	}
	back, err := Parse(s)
	if err != nil || back != h {
		t.Fatalf("Parse(%q) = %v, %v", s, back, err)
	}
	for _, bad := range []string{"", "sha256:xyz", s[7:], "md5:" + s[7:], s + "0"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	if ShortOf(s) != h.Short() || ShortOf("other") != "other" {
		t.Errorf("ShortOf")
	}
}

func TestWhatChangesTheSnapshot(t *testing.T) {
	want := Of(base())
	tests := []struct {
		name   string
		edit   func(*Input)
		change bool
	}{
		{"CRLF line endings", func(in *Input) { in.Runbook = []byte("---\r\nkind: runbook\r\n---\r\n# Backup\r\n") }, false},
		{"lone CR line endings", func(in *Input) { in.Rollback = []byte("# Rollback\r") }, false},
		{"byte-order mark", func(in *Input) { in.Runbook = append([]byte("\xef\xbb\xbf"), in.Runbook...) }, false},
		{"variable map order is irrelevant", func(in *Input) { in.Variables = map[string]string{"TIER": "gold", "REGION": "eu"} }, false},
		{"runbook text", func(in *Input) { in.Runbook = []byte("---\nkind: runbook\n---\n# Backup \n") }, true},
		{"rollback text", func(in *Input) { in.Rollback = []byte("# Rollback!\n") }, true},
		{"no rollback vs empty rollback", func(in *Input) { in.Rollback = nil }, true},
		{"empty rollback", func(in *Input) { in.Rollback = []byte{} }, true},
		{"called runbook", func(in *Input) { in.Called = [][]byte{[]byte("# Called 2\n")} }, true},
		{"called runbook added", func(in *Input) { in.Called = append(in.Called, []byte("x")) }, true},
		{"param default", func(in *Input) { in.Params[0].Default = "x"; in.Params[0].HasDefault = true }, true},
		{"param allowed values", func(in *Input) { in.Params[1].Allowed = []string{"a", "b", "c"} }, true},
		{"param secret flag", func(in *Input) { in.Params[0].Secret = true }, true},
		{"param order", func(in *Input) { in.Params[0], in.Params[1] = in.Params[1], in.Params[0] }, true},
		{"variable value", func(in *Input) { in.Variables["TIER"] = "silver" }, true},
		{"variable removed", func(in *Input) { delete(in.Variables, "TIER") }, true},
		// Length prefixes: moving bytes from one field to the next must not collide.
		{"field boundary", func(in *Input) { in.Variables = map[string]string{"REGIONe": "u", "TIER": "gold"} }, true},
		{"document boundary", func(in *Input) {
			in.Runbook = append(append([]byte{}, in.Runbook...), []byte("# Rollback\n")...)
			in.Rollback = []byte{}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base()
			tt.edit(&in)
			got := Of(in)
			if (got != want) != tt.change {
				t.Fatalf("changed = %v, want %v", got != want, tt.change)
			}
		})
	}
}

func TestFromDocuments(t *testing.T) {
	in := base()
	doc := &runbook.Document{Source: in.Runbook, Front: runbook.FrontMatter{Params: in.Params}}
	rb := &runbook.Document{Source: in.Rollback}
	called := []*runbook.Document{{Source: in.Called[0]}}
	if Of(FromDocuments(doc, rb, called, in.Variables)) != Of(in) {
		t.Fatal("FromDocuments differs from the equivalent Input")
	}
}
