package lint

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/opsbook/opsbook/internal/markdown"
)

// faultDocs are documents that each carry one class of fault the safety
// rules exist for, named by the file. TestFaultsGolden lints them in a
// workspace and compares the report with testdata/faults.golden.
var faultDocs = map[string]string{
	// References that leave the workspace or are not documents.
	"ops/runbooks/rollback-outside.md":   runbookDoc("rollback: ../../../outside.md\n", okStep),
	"ops/runbooks/rollback-absolute.md":  runbookDoc("rollback: /dev/zero\n", okStep),
	"ops/runbooks/rollback-self.md":      runbookDoc("rollback: rollback-self.md\n", okStep),
	"ops/runbooks/rollback-directory.md": runbookDoc("rollback: lib\n", okStep),
	"ops/runbooks/rollback-fifo.md":      runbookDoc("rollback: pipe.md\n", okStep),
	"ops/runbooks/call-outside.md": runbookDoc("", "### Outside\n\n```call {runbook=../../../outside.md}\n```\n\n"+
		"### Device\n\n```call {runbook=/dev/zero}\n```\n\n"+
		"### Itself\n\n```call {runbook=./call-outside.md}\n```\n\n"+
		"### Directory\n\n```call {runbook=lib}\n```\n\n"+
		"### FIFO\n\n```call {runbook=pipe.md}\n```\n\n"),
	"ops/runbooks/lib/inside.md": runbookDoc("", okStep),
	// Gates promising a rollback the engine will not run.
	"ops/runbooks/gate-no-rollback-document.md": runbookDoc("", okStep+"### Go/No-Go\n\n```gate {approvers=1}\nGo if the error rate is flat. No-Go runs the rollback plan.\n```\n\n"),
	"ops/runbooks/gate-opts-out.md":             runbookDoc("rollback: lib/inside.md\n", okStep+"### Go/No-Go\n\n```gate {approvers=1 on_fail=abort}\nNo-Go runs the rollback plan.\n```\n\n"),
	"ops/runbooks/gate-before-any-action.md":    runbookDoc("rollback: lib/inside.md\n", "### Go/No-Go\n\n```gate {approvers=1}\n回滚条件：No-Go 则回滚。\n```\n\n"+okStep),
	// Checks that cannot fail.
	"ops/runbooks/check-expect-printed.md":             runbookDoc("", "### Compare row counts\n\n```sh {id=compare}\ndiff before.count after.count\necho \"row counts identical\"\n```\n\n```text {expect}\nrow counts identical\n```\n\n"),
	"ops/runbooks/check-expect-printed-with-verify.md": runbookDoc("", "### Archive\n\n```sh {id=archive}\ntar -cf a.tar data || true\necho \"archive: a.tar\"\n```\n\n```text {expect}\narchive:\n```\n\n```sh {verify}\ntar -tf a.tar > /dev/null\n```\n\n"),
	"ops/runbooks/check-ends-in-echo.md":               runbookDoc("", "### Reload\n\n```sh {id=reload}\nsystemctl reload nginx\n```\n\n```sh {verify}\ncurl -fsS http://localhost/ > /dev/null\necho \"nginx answers\"\n```\n\n"),
	"ops/runbooks/check-until-true.md":                 runbookDoc("", "### Wait for health\n\n```sh {until interval=2s timeout=1m}\ncurl -fsS http://localhost/healthz || true\n```\n\n"),
	// Inputs past the limits.
	"ops/runbooks/limit-nesting.md":     runbookDoc("", okStep+strings.Repeat(">", markdown.MaxNesting+1)+" deep\n\n"),
	"ops/runbooks/limit-info-string.md": runbookDoc("", strings.Replace(okStep, "{id=do}", "{id=do reason=\""+strings.Repeat("x", markdown.MaxInfoString)+"\"}", 1)),
	"ops/runbooks/limit-size.md":        runbookDoc("", okStep+strings.Repeat("words ", markdown.MaxFileSize/6)),
}

// TestFaultsGolden: every fault document is reported at its file:line:col
// (see faultDocs); a FIFO named like a document is refused, not read.
func TestFaultsGolden(t *testing.T) {
	ws := t.TempDir()
	files := map[string]string{"opsbook.yaml": "name: faults\n"}
	for name, src := range faultDocs {
		files[name] = src
	}
	for name, content := range files {
		p := filepath.Join(ws, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(ws, "ops/runbooks/pipe.md"), 0o600); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for name := range faultDocs {
		if !strings.HasPrefix(name, "ops/runbooks/lib/") {
			paths = append(paths, filepath.Join(ws, name))
		}
	}
	diags, err := Paths(paths, Options{Shell: false})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := WriteText(&text, diags); err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(text.String(), ws+"/", "")
	checkGolden(t, "testdata/faults.golden", []byte(got))
}
