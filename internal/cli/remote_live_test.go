package cli

import (
	"bytes"
	"context"
	"fmt"
	"github.com/opsbook/opsbook/internal/testbin"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/client"
)

// TestRemoteCommandsThroughFlags: run, runs, show and resume take
// --server / OPSBOOK_SERVER with OPSBOOK_API_KEY, and print what the local
// commands print.
func TestRemoteCommandsThroughFlags(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url, key := testServer(t, ctx)
	ws, _ := filepath.Abs("../server/api/testdata/workspace")
	t.Setenv("OPSBOOK_API_KEY", key)
	t.Setenv("OPSBOOK_PARAM_TOKEN", "hunter2-secret")
	cli := func(wantCode int, args ...string) (string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		if code := Main(ctx, append([]string{"-C", ws}, args...), strings.NewReader(""), &out, &errb); code != wantCode {
			t.Fatalf("opsbook %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, wantCode, out.String(), errb.String())
		}
		return out.String(), errb.String()
	}

	// Titles come from the runbook in the local workspace.
	out, _ := cli(0, "run", filepath.Join(ws, "ops/runbooks/payments-backup.md"), "--env", "staging", "--server", url, "--yes")
	for _, want := range []string{"-> [dump] Dump\n", "?? [go] Go/No-Go", "!! [go] go by ops: --yes", "<- [finish] succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("run --server lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hunter2-secret") {
		t.Fatal("the secret was printed")
	}
	// Without --yes and without a terminal the run waits on the server and
	// says where to decide; the test stops watching (exit 4).
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
	var wout, werr bytes.Buffer
	code := Main(wctx, []string{"-C", ws, "run", filepath.Join(ws, "ops/runbooks/payments-backup.md"), "--env", "staging", "--server", url}, strings.NewReader(""), &wout, &werr)
	wcancel()
	if code != ExitInterrupted || !strings.Contains(werr.String(), "waits on the server for the gate decision on go; take it in the web UI") {
		t.Errorf("run --server without --yes: exit %d\n%s%s", code, wout.String(), werr.String())
	}

	t.Setenv("OPSBOOK_SERVER", url)
	list, _ := cli(0, "runs")
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "RUN") || !strings.Contains(list, "succeeded") || !strings.Contains(list, "waiting") {
		t.Fatalf("runs through OPSBOOK_SERVER:\n%s", list)
	}
	var done string
	for _, l := range lines[1:] {
		if strings.Contains(l, "succeeded") {
			done = strings.Fields(l)[0]
		} else if c, err := client.New(url, key); err == nil {
			c.Cancel(ctx, strings.Fields(l)[0], "test over")
		}
	}
	show, _ := cli(0, "show", done)
	for _, want := range []string{"Run " + done + " — Back up the payments database", "-> [dump] Dump", "[dump] dumping nightly with token ***", "Status: succeeded", "dump — Dump       succeeded"} {
		if !strings.Contains(show, want) {
			t.Errorf("show --server lacks %q:\n%s", want, show)
		}
	}
	_, errText := cli(ExitBadInput, "resume", done)
	if !strings.Contains(errText, "is succeeded; there is nothing to resume") {
		t.Errorf("resume of a finished run: %s", errText)
	}
	t.Setenv("OPSBOOK_API_KEY", "")
	_, errText = cli(ExitBadInput, "runs")
	if !strings.Contains(errText, "needs an API key in OPSBOOK_API_KEY") {
		t.Errorf("no key: %s", errText)
	}
}

// TestRemoteLiveViewInTerminal: a server run in a terminal has the same
// live view as a local one, and the gate is decided by typing.
func TestRemoteLiveViewInTerminal(t *testing.T) {
	bin := testbin.Opsbook(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url, key := testServer(t, ctx)
	ws, _ := filepath.Abs("../server/api/testdata/workspace")
	p := newTmuxPane(t, 100, 30, fmt.Sprintf("cd %s && TERM=xterm-256color OPSBOOK_API_KEY=%s OPSBOOK_PARAM_TOKEN=hunter2-secret %s run ops/runbooks/payments-backup.md --env staging --server %s; echo EXIT=$?; sleep 120", ws, key, bin, url))
	s := p.waitFor("type go or no-go")
	for _, want := range []string{"opsbook ▸ Back up the payments database · staging", "✓ dump", "Dump", "⏸ go", "Go when the dump is complete.", "1 more approval(s) needed", "token ***"} {
		if !strings.Contains(s, want) {
			t.Errorf("at the server run's gate, the screen lacks %q:\n%s", want, s)
		}
	}
	p.typeLine("go")
	p.waitFor("Reason for go")
	p.typeLine("dump looks complete")
	s = p.waitFor("EXIT=0")
	for _, want := range []string{"succeeded in", "go: dump looks complete (ops)", "Full log: opsbook show r-"} {
		if !strings.Contains(s, want) {
			t.Errorf("the summary lacks %q:\n%s", want, s)
		}
	}
	if all := p.screen(true); strings.Contains(all, "hunter2-secret") || strings.Contains(all, "opsbook ▸") {
		t.Errorf("secret or stale frame on the screen:\n%s", all)
	}
}
