package lint

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/runbook"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const sectionsEN = `
## Verification checkpoints
## Expected output and error handling
## Time estimate
## Go/No-Go decision points
## Monitoring metrics
`

// runbookDoc builds a complete, clean runbook around the given front
// matter lines and steps.
func runbookDoc(front, steps string) string {
	return "---\nkind: runbook\ntitle: T\nchange: standard\nparams:\n  NAME: {type: string}\ntargets:\n  db: {role: db}\n" + front +
		"---\n\n## Executive summary\n\nx\n\n## Impact assessment\n\nx\n\n## Steps\n\n" + steps + sectionsEN
}

const okStep = "### Do it\n\n```sh {id=do}\necho \"$NAME\"\n```\n\n```sh {verify}\ntest -n \"$NAME\"\n```\n\n"

// lintSource writes files into a temporary directory and lints the first.
func lintSource(t *testing.T, files map[string]string) []runbook.Diagnostic {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	diags, err := Paths([]string{filepath.Join(dir, "doc.md")}, Options{Shell: true, KnownVars: []string{"WORKSPACE_VAR"}})
	if err != nil {
		t.Fatal(err)
	}
	return diags
}

func TestRules(t *testing.T) {
	gate := "### Go/No-Go\n\n```gate\nGo if green.\n```\n\n"
	tests := []struct {
		rule       string
		fail, pass map[string]string
		want       string // a fragment of the failing message
		line       int    // expected line of the first finding, 0 to skip
	}{
		{rule: "missing-section",
			fail: map[string]string{"doc.md": strings.Replace(runbookDoc("", okStep), "## Monitoring metrics\n", "", 1)},
			pass: map[string]string{"doc.md": runbookDoc("", okStep)},
			want: `"## Monitoring metrics" (监控指标)`},
		{rule: "missing-section",
			fail: map[string]string{"doc.md": "---\nkind: rollback\n---\n## 回滚触发条件\n## 完整回滚步骤\n## 回滚时间估计\n## 数据恢复程序\n"},
			pass: map[string]string{"doc.md": "---\nkind: rollback\n---\n## 回滚触发条件\n## 完整回滚步骤\n## 回滚时间估计\n## 数据恢复程序\n## 回滚后验证\n"},
			want: `"## 回滚后验证" (Post-rollback verification)`},
		// Per-step checks are the checkpoints: a runbook whose every command
		// step checks itself needs no checkpoints section; one whose steps do
		// not is warned about at each such step, and still needs it.
		{rule: "missing-section",
			fail: map[string]string{"doc.md": strings.Replace(runbookDoc("", okStep+"### Quiet\n\n```sh {verify=none reason=\"nothing to see\"}\ntrue\n```\n\n"), "## Verification checkpoints\n", "", 1)},
			pass: map[string]string{"doc.md": strings.Replace(runbookDoc("", okStep+"### Gate\n\n```gate\nGo if green.\n```\n\n"), "## Verification checkpoints\n", "", 1)},
			want: `"## Verification checkpoints" (验证检查点)`},
		{rule: "step-without-check",
			fail: map[string]string{"doc.md": strings.Replace(runbookDoc("", okStep+"### Quiet\n\n```sh {verify=none reason=\"nothing to see\"}\ntrue\n```\n\n"), "## Verification checkpoints\n", "", 1)},
			pass: map[string]string{"doc.md": runbookDoc("", okStep+"### Quiet\n\n```sh {verify=none reason=\"nothing to see\"}\ntrue\n```\n\n")},
			want: `step "Quiet" has no check of its own`, line: 31},
		// Faults: a gate promising a rollback the engine will not run.
		{rule: "gate-rollback-promise",
			fail: map[string]string{"doc.md": runbookDoc("", okStep+"### Decide\n\n```gate\nGo if green. No-Go runs the rollback plan.\n```\n\n")},
			pass: map[string]string{"doc.md": runbookDoc("rollback: rb.md\n", okStep+"### Decide\n\n```gate\nGo if green. No-Go runs the rollback plan.\n```\n\n"), "rb.md": "x"},
			want: "says No-Go rolls back, but it will not: this runbook names no rollback document", line: 33},
		{rule: "gate-rollback-promise",
			fail: map[string]string{"doc.md": runbookDoc("rollback: rb.md\n", okStep+"### Decide\n\n```gate {on_fail=abort}\nNo-Go 则回滚。\n```\n\n"), "rb.md": "x"},
			pass: map[string]string{"doc.md": runbookDoc("rollback: rb.md\n", okStep+"### Decide\n\n```gate {on_fail=abort}\nNo-Go 则停止执行。\n```\n\n"), "rb.md": "x"},
			want: "the gate says on_fail=abort", line: 34},
		{rule: "gate-rollback-promise",
			fail: map[string]string{"doc.md": runbookDoc("rollback: rb.md\n", "### Decide\n\n```gate\nNo-Go rolls back.\n```\n\n"+okStep), "rb.md": "x"},
			pass: map[string]string{"doc.md": runbookDoc("rollback: rb.md\n", "### Decide\n\n```gate\nNo-Go stops the run.\n```\n\n"+okStep), "rb.md": "x"},
			want: "no action step runs before this gate", line: 24},
		// Faults: checks that cannot fail.
		{rule: "check-cannot-fail",
			fail: map[string]string{"doc.md": runbookDoc("", "### Compare\n\n```sh {id=cmp}\ndiff a.count b.count\necho \"row counts identical\"\n```\n\n```text {expect}\nrow counts identical\n```\n\n")},
			pass: map[string]string{"doc.md": runbookDoc("", "### Compare\n\n```sh {id=cmp}\nif diff a.count b.count; then\n  echo \"row counts identical\"\nfi\n```\n\n```text {expect}\nrow counts identical\n```\n\n")},
			want: "the action prints this expected text itself, unconditionally (line 25", line: 28},
		{rule: "check-cannot-fail",
			fail: map[string]string{"doc.md": runbookDoc("", "### Do it\n\n```sh {id=do}\necho \"$NAME\"\n```\n\n```sh {verify}\ngrep -q \"$NAME\" /etc/hosts\necho checked\n```\n\n")},
			pass: map[string]string{"doc.md": runbookDoc("", "### Do it\n\n```sh {id=do}\necho \"$NAME\"\n```\n\n```sh {verify}\necho checking\ngrep -q \"$NAME\" /etc/hosts\n```\n\n")},
			want: "this check ends with `echo checked`, which always succeeds", line: 29},
		{rule: "check-cannot-fail",
			fail: map[string]string{"doc.md": runbookDoc("", "### Wait\n\n```sh {until}\ncurl -fsS http://localhost/healthz || true\n```\n\n")},
			pass: map[string]string{"doc.md": runbookDoc("", "### Wait\n\n```sh {until}\ncurl -fsS http://localhost/healthz\n```\n\n")},
			want: "this check ends with `curl -fsS http://localhost/healthz || true`", line: 24},
		// Fault: a check under a manual step, which the engine never ran
		// (the major-upgrade runbook's session check went through a
		// connected client this way).
		{rule: "check-never-runs",
			fail: map[string]string{"doc.md": runbookDoc("", okStep+"### Stop the apps\n\n```manual\nStop every client.\n```\n\n```sh {verify}\ntest \"$(psql -XAtc 'select count(*) from pg_stat_activity')\" -eq 1\n```\n\n")},
			pass: map[string]string{"doc.md": runbookDoc("", okStep+"### Stop the apps\n\n```manual\nStop every client.\n```\n\n### No sessions\n\n```sh {verify=none reason=\"the action is the check\"}\ntest \"$(psql -XAtc 'select count(*) from pg_stat_activity')\" -eq 1\n```\n\n")},
			want: "the verify block of step \"stop-the-apps\" never runs: it is a manual step", line: 37},
		{rule: "missing-kind",
			fail: map[string]string{"doc.md": "# Notes\n"},
			pass: map[string]string{"doc.md": "---\nkind: checklist\n---\n## Pre-execution checklist\n## Execution steps\n## Sign-off\n"},
			want: "no front matter", line: 1},
		{rule: "front-matter",
			fail: map[string]string{"doc.md": strings.Replace(runbookDoc("", okStep), "title: T\n", "title: [T\n", 1)},
			pass: map[string]string{"doc.md": runbookDoc("", okStep)},
			want: "not valid YAML", line: 3},
		{rule: "unknown-kind",
			fail: map[string]string{"doc.md": strings.Replace(runbookDoc("", okStep), "kind: runbook", "kind: runbok", 1)},
			pass: map[string]string{"doc.md": runbookDoc("", okStep)},
			want: "did you mean runbook?", line: 2},
		{rule: "unknown-attribute",
			fail: map[string]string{"doc.md": runbookDoc("", strings.Replace(okStep, "{id=do}", "{id=do tiemout=5m}", 1))},
			pass: map[string]string{"doc.md": runbookDoc("", strings.Replace(okStep, "{id=do}", "{id=do timeout=5m}", 1))},
			want: "did you mean timeout?", line: 23},
		{rule: "bad-duration",
			fail: map[string]string{"doc.md": runbookDoc("", strings.Replace(okStep, "{id=do}", "{id=do timeout=5 minutes}", 1))},
			pass: map[string]string{"doc.md": runbookDoc("estimate: 1d\n", strings.Replace(okStep, "{id=do}", "{id=do timeout=90s}", 1))},
			want: "has no unit", line: 23},
		{rule: "bad-on-fail",
			fail: map[string]string{"doc.md": runbookDoc("", strings.Replace(okStep, "{id=do}", "{id=do on_fail=retry}", 1))},
			pass: map[string]string{"doc.md": runbookDoc("", strings.Replace(okStep, "{id=do}", "{id=do on_fail=ask}", 1))},
			want: "use abort, continue, rollback or ask", line: 23},
		{rule: "duplicate-step-id",
			fail: map[string]string{"doc.md": runbookDoc("", okStep+okStep)},
			pass: map[string]string{"doc.md": runbookDoc("", okStep+strings.Replace(okStep, "id=do", "id=again", 1))},
			want: "already used by the step at line 21", line: 31},
		{rule: "step-without-action",
			fail: map[string]string{"doc.md": runbookDoc("", "### Think about it\n\nJust prose.\n\n")},
			pass: map[string]string{"doc.md": runbookDoc("", "### Think about it\n\n```manual\nThink.\n```\n\n")},
			want: "has nothing to do", line: 21},
		{rule: "step-without-verification",
			fail: map[string]string{"doc.md": runbookDoc("", "### Do it\n\n```sh\ntrue\n```\n\n")},
			pass: map[string]string{"doc.md": runbookDoc("", "### Do it\n\n```sh\ntrue\n```\n\n```text {expect}\nok\n```\n\n")},
			want: "no verification checkpoint", line: 21},
		{rule: "step-without-verification",
			fail: map[string]string{"doc.md": runbookDoc("", "### Do it\n\n```sh {verify=none}\ntrue\n```\n\n")},
			pass: map[string]string{"doc.md": runbookDoc("", "### Do it\n\n```sh {verify=none reason=\"nothing to check\"}\ntrue\n```\n\n")},
			want: "needs a reason", line: 23},
		{rule: "errexit-off",
			fail: map[string]string{"doc.md": runbookDoc("", strings.Replace(okStep, "{id=do}", "{id=do errexit=false}", 1))},
			pass: map[string]string{"doc.md": runbookDoc("", okStep)},
			want: "errexit=false: this block's failing lines will not fail the step", line: 23},
		{rule: "unknown-variable",
			fail: map[string]string{"doc.md": runbookDoc("", "### Do it\n\n```sh {verify=none reason=r}\necho \"$NAME\" \"${NAMES:-x}\"\n```\n\n")},
			pass: map[string]string{"doc.md": runbookDoc("", "### Do it\n\n```sh {verify=none reason=r}\nNAMES=1; echo \"$NAME $NAMES $WORKSPACE_VAR $OPSBOOK_RUN_ID $HOME $1 $?\" '$NOPE' # $COMMENT\n```\n\n")},
			want: "$NAMES is not a declared param", line: 24},
		{rule: "unknown-variable",
			fail: map[string]string{"doc.md": runbookDoc("", "### Use\n\n```sh {verify=none reason=r}\necho $OUT\n```\n\n### Make\n\n```sh {outputs=OUT verify=none reason=r}\necho OUT=1 >> $OPSBOOK_OUTPUT\n```\n\n")},
			pass: map[string]string{"doc.md": runbookDoc("", "### Make\n\n```sh {outputs=OUT verify=none reason=r}\necho OUT=1 >> $OPSBOOK_OUTPUT\n```\n\n### Use\n\n```sh {verify=none reason=r}\necho $OUT\n```\n\n")},
			want: "output of step make, which runs later", line: 24},
		{rule: "unknown-target",
			fail: map[string]string{"doc.md": runbookDoc("", strings.Replace(okStep, "{id=do}", "{id=do target=dbs}", 1))},
			pass: map[string]string{"doc.md": runbookDoc("", strings.Replace(okStep, "{id=do}", "{id=do target=db}", 1))},
			want: "did you mean db?", line: 23},
		{rule: "fanout-policy",
			fail: map[string]string{"doc.md": runbookDoc("", strings.Replace(okStep, "{id=do}", "{id=do parallel=2}", 1))},
			pass: map[string]string{"doc.md": runbookDoc("", strings.Replace(okStep, "{id=do}", "{id=do target=db parallel=2}", 1))},
			want: `parallel=2 has no effect: step "do" runs on the local host`, line: 23},
		{rule: "fanout-policy",
			fail: map[string]string{"doc.md": runbookDoc("", strings.Replace(okStep, "{id=do}", "{id=do target=db parallel=4 batch=2}", 1))},
			pass: map[string]string{"doc.md": runbookDoc("", strings.Replace(okStep, "{id=do}", "{id=do target=db parallel=2 batch=2 max_failures=10%}", 1))},
			want: "parallel=4 exceeds batch=2", line: 23},
		{rule: "fanout-policy",
			fail: map[string]string{"doc.md": runbookDoc("", strings.Replace(okStep, "{id=do}", "{id=do target=db batch=0}", 1))},
			pass: map[string]string{"doc.md": runbookDoc("", strings.Replace(okStep, "{id=do}", "{id=do target=db batch=1 max_failures=0}", 1))},
			want: "a batch of 0 hosts never runs anything", line: 23},
		{rule: "rollback-missing",
			fail: map[string]string{"doc.md": runbookDoc("rollback: rb/missing.md\n", okStep)},
			pass: map[string]string{"doc.md": runbookDoc("rollback: rb/there.md\n", okStep), "rb/there.md": "x"},
			want: "rollback document rb/missing.md does not exist", line: 9},
		// Fault: the rollback needs a value the runbook never has, found only
		// when the rollback runs, in an incident.
		{rule: "rollback-params",
			fail: map[string]string{"doc.md": runbookDoc("rollback: rb.md\n", okStep), "rb.md": "---\nkind: rollback\nparams:\n  OLD_VERSION: {type: int, required: true}\n  DIR: {required: true, default: ./scratch}\n---\n"},
			pass: map[string]string{"doc.md": runbookDoc("rollback: rb.md\n", okStep), "rb.md": "---\nkind: rollback\nparams:\n  NAME: {type: string, required: true}\n  DIR: {required: true, default: ./scratch}\n---\n"},
			want: "requires parameter OLD_VERSION, which this runbook neither declares nor publishes", line: 9},
		{rule: "missing-gate",
			fail: map[string]string{"doc.md": strings.Replace(runbookDoc("", okStep), "change: standard", "change: emergency", 1)},
			pass: map[string]string{"doc.md": strings.Replace(runbookDoc("", okStep+gate), "change: standard", "change: emergency", 1)},
			want: "needs at least one Go/No-Go decision", line: 4},
		{rule: "placeholder",
			fail: map[string]string{"doc.md": runbookDoc("owner: \"<<FILL: owning team>>\"\n", okStep)},
			pass: map[string]string{"doc.md": runbookDoc("owner: dba\n", okStep)},
			want: `fill in "owning team"`, line: 9},
		{rule: "shell-syntax",
			fail: map[string]string{"doc.md": runbookDoc("", "### Do it\n\n```bash {verify=none reason=r}\nif true; then\n  echo a\nfi fi\n```\n\n")},
			pass: map[string]string{"doc.md": runbookDoc("", "### Do it\n\n```bash {verify=none reason=r}\nif true; then\n  echo a\nfi\n```\n\n")},
			want: "bash -n", line: 26},
		{rule: "shell-syntax",
			fail: map[string]string{"doc.md": runbookDoc("", okStep+"### Other\n\n```sh {verify=none reason=r}\necho 'unclosed\n```\n\n")},
			pass: map[string]string{"doc.md": runbookDoc("", okStep+"### Other\n\n```sh {verify=none reason=r}\necho 'closed'\n```\n\n")},
			want: "sh -n", line: 34},
		{rule: "call-missing",
			fail: map[string]string{"doc.md": runbookDoc("", "### Call\n\n```call {runbook=other.md}\n```\n\n")},
			pass: map[string]string{"doc.md": runbookDoc("", "### Call\n\n```call {runbook=other.md}\n```\n\n"), "other.md": "---\nkind: runbook\n---\n"},
			want: "cannot be read", line: 23},
		{rule: "bad-call",
			fail: map[string]string{"doc.md": runbookDoc("", "### Call\n\n```call {runbook=other.md}\nTARGT=$NAME\n```\n\n"), "other.md": "---\nkind: runbook\nparams:\n  TARGET: {required: true}\n---\n"},
			pass: map[string]string{"doc.md": runbookDoc("", "### Call\n\n```call {runbook=other.md}\nTARGET=$NAME\n```\n\n"), "other.md": "---\nkind: runbook\nparams:\n  TARGET: {required: true}\n---\n"},
			want: "declares no parameter TARGT; did you mean TARGET?", line: 24},
		// Fault: a literal of the wrong type for the called runbook's
		// parameter, which used to pass lint and fail the run mid-way.
		{rule: "bad-call",
			fail: map[string]string{"doc.md": runbookDoc("", "### Call\n\n```call {runbook=other.md}\nCOUNT=abc\nMODE=fast\n```\n\n"), "other.md": "---\nkind: runbook\nparams:\n  COUNT: {type: int, required: true}\n  MODE: {type: enum, allowed: [safe, slow], default: safe}\n---\n"},
			pass: map[string]string{"doc.md": runbookDoc("", "### Call\n\n```call {runbook=other.md}\nCOUNT=12\nMODE=$NAME\n```\n\n"), "other.md": "---\nkind: runbook\nparams:\n  COUNT: {type: int, required: true}\n  MODE: {type: enum, allowed: [safe, slow], default: safe}\n---\n"},
			want: `other.md: parameter COUNT: "abc" is not an integer`, line: 24},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			failing := findRule(lintSource(t, tt.fail), tt.rule)
			if len(failing) == 0 {
				t.Fatalf("failing case: no %s diagnostic; got %v", tt.rule, lintSource(t, tt.fail))
			}
			i := slices.IndexFunc(failing, func(d runbook.Diagnostic) bool { return strings.Contains(d.Message, tt.want) })
			if i < 0 {
				t.Fatalf("no %s message contains %q: %v", tt.rule, tt.want, failing)
			}
			if tt.line != 0 && failing[i].Pos.Line != tt.line {
				t.Errorf("reported at line %d, want %d: %v", failing[i].Pos.Line, tt.line, failing[i])
			}
			all := lintSource(t, tt.pass)
			if passing := findRule(all, tt.rule); len(passing) != 0 {
				t.Errorf("passing case still reports %v", passing)
			}
			if runbook.HasErrors(all) {
				t.Errorf("passing case has other errors: %v", all)
			}
		})
	}
}

func findRule(diags []runbook.Diagnostic, rule string) []runbook.Diagnostic {
	var out []runbook.Diagnostic
	for _, d := range diags {
		if d.Rule == rule {
			out = append(out, d)
		}
	}
	return out
}

// TestExamplesLintClean keeps the documentation's examples exemplary.
func TestExamplesLintClean(t *testing.T) {
	diags, err := Paths([]string{"../../docs/examples"}, Options{Shell: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diags {
		t.Errorf("%v [%s]", d, d.Rule)
	}
	files, _ := filepath.Glob("../../docs/examples/*.md")
	if len(files) < 4 {
		t.Errorf("want an example per kind, found %d files", len(files))
	}
}

func TestPathsWalk(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("README.md", "# Read me\n")
	write("notes.md", "---\ntitle: notes for another tool\n---\n")
	write("bad.md", "---\nkind: checklist\n---\n")
	if err := os.Mkdir(filepath.Join(dir, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(".git/x.md", "---\nkind: runbook\n---\n")

	diags, err := Paths([]string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for _, d := range diags {
		files[filepath.Base(d.File)] = true
	}
	if len(files) != 1 || !files["bad.md"] {
		t.Errorf("walk linted %v, want only bad.md", files)
	}
	diags, _ = Paths([]string{filepath.Join(dir, "README.md")}, Options{})
	if len(findRule(diags, "missing-kind")) != 1 {
		t.Errorf("a file named explicitly must be linted: %v", diags)
	}
	if _, err := Paths([]string{filepath.Join(dir, "nope")}, Options{}); err == nil {
		t.Error("a missing path must be an error")
	}
}

func TestShellRefs(t *testing.T) {
	tests := []struct {
		script string
		refs   string // name@line:col of every reference
	}{
		{`echo $A ${B} ${C:-x} ${#D} $1 $? $@ $$`, "A@0:5 B@0:8 C@0:13 D@0:21"},
		{"echo '$A' \"$B\" \\$C # $D", "B@0:11"},
		{"cat <<'EOF'\n$A\nEOF\necho $B", "B@3:5"},
		{"cat <<EOF\n$A\nEOF", "A@1:0"},
		{"awk '{print $1, $NF}' f", ""},
		{"echo \"it's $A\"", "A@0:11"},
		{"psql <<EOF\nselect 'don''t', '$A';\nEOF\necho $B", "A@1:18 B@3:5"},
		{"psql <<-\"SQL\" && echo $A\n\tselect '$B';\n\tSQL\necho $C", "A@0:22 C@3:5"},
	}
	for _, tt := range tests {
		refs, _ := shellRefs(tt.script)
		var got []string
		for _, r := range refs {
			got = append(got, fmt.Sprintf("%s@%d:%d", r.name, r.line, r.col))
		}
		if g := strings.Join(got, " "); g != tt.refs {
			t.Errorf("shellRefs(%q) = %q, want %q", tt.script, g, tt.refs)
		}
	}
	_, assigned := shellRefs("A=1\nexport B=2 C\nread -r -p prompt D E\nfor F in x; do :; done\nlocal G\nprintf -v H x\narr[1]=x\n")
	for _, name := range []string{"A", "B", "C", "D", "E", "F", "G", "H", "arr"} {
		if !assigned[name] {
			t.Errorf("%s should count as assigned (got %v)", name, assigned)
		}
	}
}

// TestGolden lints each testdata/*.md (Chinese headings, CRLF, problems in
// front matter and inside fences) and compares the text report; one input
// is also compared as JSON and as SARIF.
func TestGolden(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/*.md")
	if len(inputs) == 0 {
		t.Fatal("no inputs")
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			diags, err := Paths([]string{in}, Options{Shell: true})
			if err != nil {
				t.Fatal(err)
			}
			var text, js, sarif bytes.Buffer
			if err := WriteText(&text, diags); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, strings.TrimSuffix(in, ".md")+".golden", text.Bytes())
			if filepath.Base(in) != "problems.md" {
				return
			}
			if err := WriteJSON(&js, diags); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "testdata/problems.json.golden", js.Bytes())
			if err := WriteSARIF(&sarif, diags, ".", "test"); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "testdata/problems.sarif.golden", sarif.Bytes())
			var log struct {
				Version string `json:"version"`
				Runs    []struct {
					Results []struct {
						RuleID    string `json:"ruleId"`
						Locations []struct {
							PhysicalLocation struct {
								ArtifactLocation struct{ URI string } `json:"artifactLocation"`
								Region           struct{ StartLine, StartColumn int }
							} `json:"physicalLocation"`
						} `json:"locations"`
					} `json:"results"`
				} `json:"runs"`
			}
			if err := json.Unmarshal(sarif.Bytes(), &log); err != nil || log.Version != "2.1.0" || len(log.Runs[0].Results) != len(diags) {
				t.Fatalf("SARIF does not round-trip: %v", err)
			}
			if uri := log.Runs[0].Results[0].Locations[0].PhysicalLocation.ArtifactLocation.URI; uri != "testdata/problems.md" {
				t.Errorf("artifact URI %q, want it relative to the base directory", uri)
			}
		})
	}
}

func checkGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/lint -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update if intended)\n got:\n%s\nwant:\n%s", golden, got, want)
	}
}

func TestUTF16Columns(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "a.md")
	if err := os.WriteFile(f, []byte("\xef\xbb\xbfab\n中文x😀y\r\nz"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := lineCache{}
	tests := []struct {
		pos  runbook.Pos
		want int
	}{
		{runbook.Pos{Line: 1, Col: 2}, 2},  // BOM not counted
		{runbook.Pos{Line: 2, Col: 7}, 3},  // after two 3-byte characters
		{runbook.Pos{Line: 2, Col: 12}, 6}, // after an astral character (two UTF-16 units)
		{runbook.Pos{Line: 3, Col: 1}, 1},
	}
	for _, tt := range tests {
		if got := c.utf16Col(f, tt.pos); got != tt.want {
			t.Errorf("utf16Col(%v) = %d, want %d", tt.pos, got, tt.want)
		}
	}
}

func TestCheckShellBatches(t *testing.T) {
	block := func(lang, body string, line int) shellBlock {
		return shellBlock{file: "f.md", b: &runbook.Block{Lang: lang, Body: body, Pos: runbook.Pos{Line: line - 1, Col: 1}, BodyLine: line}}
	}
	var blocks []shellBlock
	for i := range 600 {
		blocks = append(blocks, block("bash", fmt.Sprintf("if [ %d -gt 0 ]; then\n  echo \"ok $HOME\"\nfi\n", i), 1000+10*i))
	}
	blocks[17] = block("bash", "for x in a b; do\n  echo $x\n", 1170)     // missing done
	blocks[433] = block("bash", "case $1 in\n  a) echo ;;\nesak\n", 5330) // misspelt esac
	// Each alone is an error; concatenated, their quotes would pair up and hide both.
	blocks = append(blocks, block("sh", "echo 'one\n", 9000), block("sh", "echo two'\n", 9010))

	diags := checkShell(blocks)
	var got []string
	for _, d := range diags {
		got = append(got, fmt.Sprintf("%d", d.Pos.Line))
	}
	slices.Sort(got)
	if want := []string{"1171", "5332", "9000", "9010"}; !slices.Equal(got, want) {
		t.Errorf("errors at lines %v, want %v: %v", got, want, diags)
	}
}

func TestLexicallyClosed(t *testing.T) {
	tests := map[string]bool{
		"echo 'a' \"b\" `c`":           true,
		"echo 'a":                      false,
		"echo \"it's\"":                true,
		"echo \\'":                     true,
		"cat <<EOF\nx\nEOF\n":          true,
		"cat <<'EOF'\nx\n":             false,
		"cat <<-EOF\n\tx\n\tEOF":       true,
		"echo # it's a comment":        true,
		"echo \"multi\nline\"":         true,
		"x=$(printf '%s' \"$y\")":      true,
		"echo `date":                   false,
		"grep -q \"a'b\" f && echo ok": true,
	}
	for script, want := range tests {
		if got := lexicallyClosed(script); got != want {
			t.Errorf("lexicallyClosed(%q) = %v, want %v", script, got, want)
		}
	}
}

// TestFanoutPolicyValidate: a policy the engine would refuse is reported at
// the attribute that is wrong, also in a document built directly, as a
// server-side editor might.
func TestFanoutPolicyValidate(t *testing.T) {
	at := runbook.Pos{Line: 30, Col: 25}
	bad := runbook.Attr{Key: "max_failures", Value: "150%", Pos: at}
	doc := &runbook.Document{Path: "doc.md", Front: runbook.FrontMatter{Kind: "runbook", Targets: []runbook.Target{{Name: "db", Selector: map[string]string{"role": "db"}}}}}
	step := runbook.Step{ID: "do", Title: "Do", Target: "db", MaxFailures: "150%", VerifyNone: "r",
		Action: &runbook.Block{Role: runbook.BlockAction, Lang: "sh", Body: "true", Pos: runbook.Pos{Line: 29, Col: 1},
			Attrs: []runbook.Attr{{Key: "target", Value: "db"}, bad, {Key: "verify", Value: "none"}, {Key: "reason", Value: "r"}}}}
	doc.Steps = []runbook.Step{step}
	got := findRule(Document(doc, Options{}), "fanout-policy")
	if len(got) != 1 || got[0].Pos != at || !strings.Contains(got[0].Message, "max_failures=150%") {
		t.Fatalf("diagnostics %v", got)
	}
	doc.Steps[0].MaxFailures, doc.Steps[0].Action.Attrs[1].Value = "50%", "50%"
	if got := findRule(Document(doc, Options{}), "fanout-policy"); len(got) != 0 {
		t.Fatalf("a valid policy is reported: %v", got)
	}
}
