package cli

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/testbin"
)

// TestDecideSecondApprover: a local run with --yes gives an approvers=2
// gate its operator's approval and waits (it used to fail the run, so a
// runbook with such a gate could not run, nor be rehearsed, without a
// server). Faults: the same person approving again, a decision on a gate
// the run does not wait at, and an empty reason are refused; a second
// person's `opsbook decide` releases the run, which then finishes.
func TestDecideSecondApprover(t *testing.T) {
	bin := testbin.Opsbook(t)
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "opsbook.yaml"), []byte("name: two\nenvironments:\n  - name: dev\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "rb.md"), []byte("---\nkind: runbook\ntitle: Two\n---\n\n# Two\n\n## Steps\n\n"+
		"### Before\n\n```sh {id=before}\necho before >> ran\n```\n\n"+
		"### Decide\n\n```gate {id=go approvers=2}\nGo when both agree.\n```\n\n"+
		"### After\n\n```sh {id=after}\necho after >> ran\n```\n"), 0o644))
	person := func(email string) []string {
		cfg := filepath.Join(t.TempDir(), "gitconfig")
		must(t, os.WriteFile(cfg, []byte("[user]\n\temail = "+email+"\n"), 0o644))
		env := []string{"GIT_CONFIG_GLOBAL=" + cfg, "GIT_CONFIG_NOSYSTEM=1", "OPSBOOK_SERVER="}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GIT_") && !strings.HasPrefix(kv, "OPSBOOK_") {
				env = append(env, kv)
			}
		}
		return env
	}
	opsbook := func(env []string, want int, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != want {
			t.Fatalf("opsbook %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
		}
		return string(out)
	}
	operator, ic := person("operator@example.com"), person("ic@example.com")

	run := exec.Command(bin, "run", "rb.md", "--env", "dev", "--yes")
	run.Dir, run.Env = dir, operator
	var out bytes.Buffer
	pr, pw, err := os.Pipe()
	must(t, err)
	run.Stdout, run.Stderr = pw, pw
	must(t, run.Start())
	pw.Close()
	defer run.Process.Kill()
	hint := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "has your approval and needs 2 distinct approvers") {
				hint <- sc.Text()
			}
		}
	}()
	var line string
	select {
	case line = <-hint:
	case <-time.After(30 * time.Second):
		t.Fatalf("the run did not wait for a second approver")
	}
	id := regexp.MustCompile(`opsbook decide (\S+) go go`).FindStringSubmatch(line)
	if id == nil {
		t.Fatalf("the hint names no decide command: %s", line)
	}

	if got := opsbook(operator, 2, "decide", id[1], "go", "go", "--reason", "me again"); !strings.Contains(got, "already approved") {
		t.Errorf("the same person approving twice: %s", got)
	}
	if got := opsbook(ic, 2, "decide", id[1], "other", "go", "--reason", "x"); !strings.Contains(got, "does not wait at gate other") {
		t.Errorf("a decision on another gate: %s", got)
	}
	opsbook(ic, 2, "decide", id[1], "go", "go", "--reason", " ")
	if got := opsbook(ic, 0, "decide", id[1], "go", "go", "--reason", "incident commander agrees"); !strings.Contains(got, "recorded as ic@example.com") {
		t.Errorf("second approver: %s", got)
	}
	if err := run.Wait(); err != nil {
		<-done
		t.Fatalf("the run after the second approval: %v\n%s", err, out.String())
	}
	<-done
	if b, _ := os.ReadFile(filepath.Join(dir, "ran")); string(b) != "before\nafter\n" {
		t.Errorf("steps ran: %q\n%s", b, out.String())
	}
	if !strings.Contains(out.String(), "go by ic@example.com") {
		t.Errorf("the run's log does not show the second approver:\n%s", out.String())
	}
}
