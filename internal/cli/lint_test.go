package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	if dir != "" {
		t.Chdir(dir)
	}
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const cleanChecklist = "---\nkind: checklist\ntitle: c\n---\n## Pre-execution checklist\n## Execution steps\n## Sign-off\n"

func TestLintExitStatus(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ok.md"), cleanChecklist)
	writeFile(t, filepath.Join(dir, "bad.md"), "---\nkind: checklist\ntitle: c\n---\n## Pre-execution checklist\n")
	writeFile(t, filepath.Join(dir, "warn.md"), cleanChecklist+"\n```sh {verify}\necho\n```\n")

	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string
		stderrRe string
	}{
		{"clean file", []string{"lint", "ok.md"}, 0, "", ""},
		{"warnings only", []string{"lint", "warn.md"}, 0, "warn.md:9:1: warning: this verify block is not inside a step", "0 error(s), 1 warning(s)"},
		{"errors", []string{"lint", "bad.md"}, 1, "bad.md:5:1: error: a checklist needs the section \"## Execution steps\" (执行步骤)", "2 error(s)"},
		{"missing path", []string{"lint", "nope.md"}, 2, "", "no such file"},
		{"bad format", []string{"lint", "-o", "xml", "ok.md"}, 2, "", "must be text, json or sarif"},
		{"no ops dir", []string{"lint"}, 2, "", "no ops directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, dir, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if !strings.Contains(stdout, tt.stdout) {
				t.Errorf("stdout %q lacks %q", stdout, tt.stdout)
			}
			if !strings.Contains(stderr, tt.stderrRe) {
				t.Errorf("stderr %q lacks %q", stderr, tt.stderrRe)
			}
		})
	}
}

func TestLintDefaultsToWorkspaceOps(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "opsbook.yaml"), "environments:\n  - name: staging\n    variables:\n      PGDATABASE: payments\n")
	writeFile(t, filepath.Join(dir, "ops/runbooks/README.md"), "# Runbooks\n")
	writeFile(t, filepath.Join(dir, "ops/runbooks/check.md"), cleanChecklist)
	writeFile(t, filepath.Join(dir, "ops/runbooks/bad.md"), "---\nkind: checklist\n---\n")
	sub := filepath.Join(dir, "ops/runbooks")

	code, stdout, stderr := runCLI(t, sub, "lint", "-o", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (stderr %q)", code, stderr)
	}
	var report struct {
		Diagnostics []struct {
			File string `json:"file"`
			Line int    `json:"line"`
			Rule string `json:"rule"`
		} `json:"diagnostics"`
		Errors int `json:"errors"`
	}
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("json output: %v\n%s", err, stdout)
	}
	if report.Errors != 3 {
		t.Errorf("errors = %d, want 3 (three missing sections of bad.md): %+v", report.Errors, report.Diagnostics)
	}
	for _, d := range report.Diagnostics {
		if filepath.Base(d.File) != "bad.md" {
			t.Errorf("linted %s, want only bad.md", d.File)
		}
	}

	code, stdout, _ = runCLI(t, sub, "lint", "-o", "sarif")
	if code != 1 || !strings.Contains(stdout, `"uri": "ops/runbooks/bad.md"`) || !strings.Contains(stdout, `"version": "2.1.0"`) {
		t.Errorf("sarif output (exit %d) lacks a workspace-relative URI:\n%s", code, stdout)
	}
}

func TestLintKnowsWorkspaceVariables(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "opsbook.yaml"), "environments:\n  - name: staging\n    variables:\n      PGDATABASE: payments\n")
	doc := "---\nkind: rollback\n---\n## Rollback triggers\n## Rollback steps\n### a\n```sh {verify=none reason=r}\npsql \"$PGDATABASE\" \"$UNKNOWN\"\n```\n## Rollback time estimate\n## Data recovery\n## Post-rollback verification\n"
	writeFile(t, filepath.Join(dir, "ops/rb.md"), doc)
	code, stdout, stderr := runCLI(t, dir, "lint", "--var", "EXTRA")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	if strings.Contains(stdout, "PGDATABASE") || !strings.Contains(stdout, "$UNKNOWN") {
		t.Errorf("want only $UNKNOWN reported:\n%s", stdout)
	}
}
