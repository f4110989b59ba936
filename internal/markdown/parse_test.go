package markdown

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/runbook"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// render is the golden form of a parse: the document as JSON, then the
// diagnostics as the CLI prints them.
func render(t *testing.T, doc *runbook.Document, diags []runbook.Diagnostic) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("--- diagnostics\n")
	for _, d := range diags {
		buf.WriteString(d.String() + " [" + d.Rule + "]\n")
	}
	return buf.Bytes()
}

func TestParseGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.md")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			doc, diags := Parse(filepath.Base(in), src)
			got := render(t, doc, diags)
			golden := strings.TrimSuffix(in, ".md") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/markdown -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("parse of %s differs from %s (run with -update if intended):\n%s", in, golden, diffLines(string(want), string(got)))
			}
		})
	}
}

// TestLineEndings checks that CRLF line endings and a byte-order mark change
// nothing: not the document, not a single diagnostic position.
func TestLineEndings(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/*.md")
	for _, in := range inputs {
		src, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		wantDoc, wantDiags := Parse("f.md", src)
		wantDoc.Source = nil
		crlf := bytes.ReplaceAll(src, []byte("\n"), []byte("\r\n"))
		variants := map[string][]byte{
			"crlf":     crlf,
			"bom":      append([]byte("\xef\xbb\xbf"), src...),
			"bom+crlf": append([]byte("\xef\xbb\xbf"), crlf...),
		}
		for name, v := range variants {
			t.Run(filepath.Base(in)+"/"+name, func(t *testing.T) {
				doc, diags := Parse("f.md", v)
				doc.Source = nil
				if !reflect.DeepEqual(doc, wantDoc) {
					t.Errorf("document differs from the LF parse")
				}
				if !reflect.DeepEqual(diags, wantDiags) {
					t.Errorf("diagnostics differ:\n got %v\nwant %v", diags, wantDiags)
				}
			})
		}
	}
}

// TestPositions pins positions that are easy to get wrong: columns are
// bytes, YAML lines are offset by the opening ---, fences can be indented.
func TestPositions(t *testing.T) {
	tests := []struct {
		name string
		src  string
		rule string
		want runbook.Pos
	}{
		{"yaml value after Chinese", "---\ntitle: 升级\nkind: 运行\n---\n", "unknown-kind", runbook.Pos{Line: 3, Col: 7}},
		{"yaml value after Chinese key in flow map", "---\nkind: runbook\nparams:\n  P: {description: 中文说明, type: strng}\n---\n", "bad-param", runbook.Pos{Line: 4, Col: 40}},
		{"yaml syntax error line", "---\nkind: runbook\ntitle: a\n  b: c\n---\n", "front-matter", runbook.Pos{Line: 4, Col: 1}},
		{"unknown key", "---\nkind: runbook\nestimat: 5m\n---\n", "unknown-key", runbook.Pos{Line: 3, Col: 1}},
		{"attribute after Chinese id", "---\nkind: runbook\n---\n## 步骤\n### 一\n```sh {id=停止 tmeout=5m}\nx\n```\n", "unknown-attribute", runbook.Pos{Line: 6, Col: 18}},
		{"attribute in an indented fence in a list", "---\nkind: runbook\n---\n## Steps\n### a\n- do it:\n\n  ```sh {on_fail=never}\n  x\n  ```\n", "bad-on-fail", runbook.Pos{Line: 8, Col: 10}},
		{"duplicate action at its fence", "---\nkind: runbook\n---\n## Steps\n### a\n```sh\nx\n```\n\n   ```bash\ny\n```\n", "duplicate-action", runbook.Pos{Line: 10, Col: 4}},
		{"bad duration in front matter", "---\nkind: runbook\nestimate: 30\n---\n", "bad-duration", runbook.Pos{Line: 3, Col: 11}},
		{"regex error at its body line", "---\nkind: runbook\n---\n## Steps\n### a\n```sh\nx\n```\n```text {expect=regex}\n(\n```\n", "bad-regex", runbook.Pos{Line: 10, Col: 1}},
		{"call binding line", "---\nkind: runbook\n---\n## Steps\n### a\n```call {runbook=b.md}\n\n  oops\n```\n", "bad-call", runbook.Pos{Line: 8, Col: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Parse("f.md", []byte(tt.src))
			for _, d := range diags {
				if d.Rule == tt.rule {
					if d.Pos != tt.want {
						t.Errorf("%s at %d:%d, want %d:%d (%s)", tt.rule, d.Pos.Line, d.Pos.Col, tt.want.Line, tt.want.Col, d.Message)
					}
					return
				}
			}
			t.Errorf("no %s diagnostic; got %v", tt.rule, diags)
		})
	}
}

func TestStepRoles(t *testing.T) {
	const head = "---\nkind: runbook\n---\n## Steps\n### 1. Do the thing\n"
	tests := []struct {
		name   string
		body   string
		id     string
		roles  string // the step's slots that are filled, in Primary order
		errors int
	}{
		{"sh without attrs is the action", "```sh\nx\n```\n", "do-the-thing", "action", 0},
		{"python without attrs is an illustration", "```python\nx\n```\n", "do-the-thing", "", 0},
		{"python with empty attrs is the action", "```python3 {}\nx\n```\n", "do-the-thing", "action", 0},
		{"text without attrs is an illustration", "```text\nx\n```\n", "do-the-thing", "", 0},
		{"id attribute wins", "```sh {id=custom}\nx\n```\n", "custom", "action", 0},
		{"until alone is primary", "```sh {until id=wait}\nx\n```\n", "wait", "until", 0},
		{"manual and verify", "```manual\nx\n```\n```sh {verify}\ny\n```\n", "do-the-thing", "manual verify", 0},
		{"gate", "```gate {approvers=2}\nGo?\n```\n", "do-the-thing", "gate", 0},
		{"call", "```call {runbook=x.md}\nA=$B\n```\n", "do-the-thing", "call", 0},
		{"two actions", "```sh\nx\n```\n```sh\ny\n```\n", "do-the-thing", "action", 1},
		{"two verifies", "```sh\nx\n```\n```sh {verify}\ny\n```\n```sh {verify}\nz\n```\n", "do-the-thing", "action verify", 1},
		{"attrs but no language", "``` {id=x}\ny\n```\n", "x", "action", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, diags := Parse("f.md", []byte(head+tt.body))
			if len(doc.Steps) != 1 {
				t.Fatalf("got %d steps, want 1", len(doc.Steps))
			}
			s := doc.Steps[0]
			if s.ID != tt.id {
				t.Errorf("id %q, want %q", s.ID, tt.id)
			}
			var roles []string
			for _, slot := range []struct {
				name string
				b    *runbook.Block
			}{{"action", s.Action}, {"manual", s.Manual}, {"gate", s.Gate}, {"call", s.Call}, {"until", s.Until}, {"verify", s.Verify}, {"expect", s.Expect}} {
				if slot.b != nil {
					roles = append(roles, slot.name)
				}
			}
			if got := strings.Join(roles, " "); got != tt.roles {
				t.Errorf("roles %q, want %q", got, tt.roles)
			}
			var errs int
			for _, d := range diags {
				if d.Severity == runbook.SeverityError {
					errs++
				}
			}
			if errs != tt.errors {
				t.Errorf("%d errors, want %d: %v", errs, tt.errors, diags)
			}
		})
	}
}

func TestCallBindings(t *testing.T) {
	src := "---\nkind: runbook\n---\n## Steps\n### a\n```call {runbook=b.md}\nA=$X\nB=${Y}\nC=literal $X text\nD=\"quoted\"\nE=$not-a-name\n```\n"
	doc, diags := Parse("f.md", []byte(src))
	if len(diags) != 0 {
		t.Fatalf("unexpected diagnostics: %v", diags)
	}
	want := []runbook.Binding{
		{Name: "A", From: "X", Pos: runbook.Pos{Line: 7, Col: 1}},
		{Name: "B", From: "Y", Pos: runbook.Pos{Line: 8, Col: 1}},
		{Name: "C", Value: "literal $X text", Pos: runbook.Pos{Line: 9, Col: 1}},
		{Name: "D", Value: "quoted", Pos: runbook.Pos{Line: 10, Col: 1}},
		{Name: "E", Value: "$not-a-name", Pos: runbook.Pos{Line: 11, Col: 1}},
	}
	if got := doc.Steps[0].Call.Bindings; !reflect.DeepEqual(got, want) {
		t.Errorf("bindings\n got %+v\nwant %+v", got, want)
	}
}

func TestMatchSection(t *testing.T) {
	tests := []struct {
		heading string
		role    runbook.SectionRole
		lang    string
	}{
		{"Executive summary", runbook.SectionSummary, "en"},
		{"EXECUTIVE SUMMARY:", runbook.SectionSummary, "en"},
		{"1. Impact assessment", runbook.SectionImpact, "en"},
		{"2) Steps", runbook.SectionSteps, "en"},
		{"一、执行概要", runbook.SectionSummary, "zh"},
		{"第三部分 详细操作步骤", runbook.SectionSteps, "zh"},
		{"（四）监控指标", runbook.SectionMonitoring, "zh"},
		{"Steps / 详细操作步骤", runbook.SectionSteps, ""},
		{"执行概要 (Executive summary)", runbook.SectionSummary, ""},
		{"执行概要（Executive summary）", runbook.SectionSummary, ""},
		{"Go/No-Go decision points", runbook.SectionDecisions, "en"},
		{"Go/No-Go 决策点", runbook.SectionDecisions, "zh"},
		{"**Monitoring**", runbook.SectionMonitoring, "en"},
		{"Post-rollback verification", runbook.SectionPostRollback, "en"},
		{"Notes", "", ""},
		{"Stepsister", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.heading, func(t *testing.T) {
			role, lang := matchSection(tt.heading)
			if role != tt.role || lang != tt.lang {
				t.Errorf("matchSection(%q) = %q, %q; want %q, %q", tt.heading, role, lang, tt.role, tt.lang)
			}
		})
	}
}

func TestSlugify(t *testing.T) {
	tests := map[string]string{
		"1. Stop writes":               "stop-writes",
		"Step 3: Dump the DB":          "dump-the-db",
		"第一步：停止写入":                     "",
		"3. Restore the dump (恢复备份)":   "restore-the-dump",
		"Upgrade PostgreSQL 12 → 15!!": "upgrade-postgresql-12-15",
	}
	for in, want := range tests {
		if got := slugify(in); got != want {
			t.Errorf("slugify(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLang(t *testing.T) {
	tests := []struct{ src, want string }{
		{"---\nkind: runbook\nlang: zh\n---\n## Summary\n", "zh"},
		{"## 执行概要\n## 影响范围评估\n## Steps\n", "zh"},
		{"## 执行概要\n## Impact\n## Steps\n", "en"},
		{"## Steps / 详细操作步骤\n", "en"},
		{"", "en"},
	}
	for _, tt := range tests {
		doc, _ := Parse("f.md", []byte(tt.src))
		if doc.Lang != tt.want {
			t.Errorf("lang of %q = %q, want %q", tt.src, doc.Lang, tt.want)
		}
	}
}

// diffLines shows the first differing lines of two texts.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 10; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n   got: " + gl + "\n")
			shown++
		}
	}
	return b.String()
}

// A default is judged by runbook.CheckParam, the rule run-time values
// follow, so a default the front matter accepts is one a run accepts.
func TestParamDefaults(t *testing.T) {
	tests := []struct {
		decl string
		want string // the bad-param message, "" when the default is fine
	}{
		{"{type: bool, default: yes}", ""},
		{"{type: bool, default: \"0\"}", ""},
		{"{type: bool, default: Off}", ""},
		{"{type: bool, default: maybe}", `default of parameter P: "maybe" is not a boolean (true or false; yes/no, y/n, on/off and 1/0 are accepted too)`},
		{"{type: int, default: \"007\"}", ""},
		{"{type: int, default: many}", `default of parameter P: "many" is not an integer`},
		{"{type: enum, allowed: [a, b], default: c}", `default of parameter P: "c" is not allowed (one of: a, b)`},
		{"{type: path, default: \" \"}", "default of parameter P: a path cannot be empty"},
		{"{type: strin, default: x}", ""}, // the unknown type is reported once, by itself
	}
	for _, tt := range tests {
		t.Run(tt.decl, func(t *testing.T) {
			src := "---\nkind: runbook\nparams:\n  P: " + tt.decl + "\n---\n"
			_, diags := Parse("f.md", []byte(src))
			var got []string
			for _, d := range diags {
				if d.Rule == "bad-param" && strings.HasPrefix(d.Message, "default of") {
					got = append(got, d.Message)
				}
			}
			switch {
			case tt.want == "" && len(got) > 0:
				t.Errorf("unexpected: %q", got)
			case tt.want != "" && (len(got) != 1 || got[0] != tt.want):
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrexitAttribute(t *testing.T) {
	const head = "---\nkind: runbook\n---\n## Steps\n### Do\n"
	tests := []struct {
		name                  string
		body                  string
		action, verify, until bool // NoErrexit of each block
		errors, warnings      int
	}{
		{"default is strict", "```sh\nx\n```\n```sh {verify}\ny\n```\n", false, false, false, 0, 0},
		{"action opts out", "```sh {errexit=false}\nx\n```\n", true, false, false, 0, 0},
		{"verify opts out", "```sh\nx\n```\n```sh {verify errexit=false}\ny\n```\n", false, true, false, 0, 0},
		{"until opts out", "```sh {until errexit=false}\nx\n```\n", false, false, true, 0, 0},
		{"explicit true", "```sh {errexit=true}\nx\n```\n", false, false, false, 0, 0},
		{"bad value", "```sh {errexit=no}\nx\n```\n", false, false, false, 1, 0},
		{"meaningless on expect", "```sh\nx\n```\n```text {expect errexit=false}\ny\n```\n", false, false, false, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, diags := Parse("f.md", []byte(head+tt.body))
			s := doc.Steps[0]
			noErrexit := func(b *runbook.Block) bool { return b != nil && b.NoErrexit }
			if noErrexit(s.Action) != tt.action || noErrexit(s.Verify) != tt.verify || noErrexit(s.Until) != tt.until {
				t.Errorf("NoErrexit action %v verify %v until %v", noErrexit(s.Action), noErrexit(s.Verify), noErrexit(s.Until))
			}
			var errs, warns int
			for _, d := range diags {
				switch d.Severity {
				case runbook.SeverityError:
					errs++
				case runbook.SeverityWarning:
					warns++
				}
			}
			if errs != tt.errors || warns != tt.warnings {
				t.Errorf("%d errors %d warnings, want %d %d: %v", errs, warns, tt.errors, tt.warnings, diags)
			}
		})
	}
}
