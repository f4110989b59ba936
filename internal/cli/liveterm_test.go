package cli

import (
	"fmt"
	"github.com/opsbook/opsbook/internal/testbin"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
)

// tmuxPane is one detached tmux session on its own server socket: a real
// pseudo-terminal the test types into and reads the screen of.
type tmuxPane struct {
	t      *testing.T
	socket string
}

func newTmuxPane(t *testing.T, width, height int, command string) *tmuxPane {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is not installed; scripts/test.sh installs it")
		}
		t.Skip("tmux is not installed (apt-get install tmux)")
	}
	p := &tmuxPane{t: t, socket: fmt.Sprintf("opsbook-test-%d-%d", os.Getpid(), time.Now().UnixNano())}
	p.tmux("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", fmt.Sprint(width), "-y", fmt.Sprint(height), command)
	t.Cleanup(func() { exec.Command("tmux", "-L", p.socket, "kill-server").Run() })
	return p
}

func (p *tmuxPane) tmux(args ...string) string {
	p.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", p.socket}, args...)...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screen is what the pane shows now; with history, also what scrolled off.
func (p *tmuxPane) screen(history bool) string {
	args := []string{"capture-pane", "-p", "-t", "t"}
	if history {
		args = append(args, "-S", "-")
	}
	return p.tmux(args...)
}

// waitFor waits until the screen shows want and returns it.
func (p *tmuxPane) waitFor(want string) string {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := p.screen(false)
		if strings.Contains(s, want) {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the screen never showed %q; it shows:\n%s", want, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *tmuxPane) typeLine(s string) {
	p.t.Helper()
	if s != "" {
		p.tmux("send-keys", "-t", "t", "-l", s)
	}
	p.tmux("send-keys", "-t", "t", "Enter")
}

const liveRunbook = `---
kind: runbook
title: Deploy the payments service
estimate: 2m
params:
  TOKEN: {type: secret, required: true}
---

# Deploy the payments service

## Steps

### Build the release

` + "```sh {id=build estimate=30s}" + `
for i in $(seq 1 40); do echo "compiling module $i with token $TOKEN"; sleep 0.05; done
` + "```" + `

### Go or no-go

` + "```gate {id=go approvers=1}" + `
Go when the build is green and the dashboard shows no errors.
` + "```" + `

### Drain the node

` + "```manual {id=drain}" + `
Drain node-3 in the load balancer console.
` + "```" + `

### Migrate

` + "```sh {id=migrate on_fail=ask}" + `
echo migrating; echo "error: lock timeout" >&2; exit 3
` + "```" + `

### Finish

` + "```sh {id=finish}" + `
echo finished
` + "```" + `
`

// TestLiveViewInTerminal runs opsbook in a real pseudo-terminal and answers
// a gate, a manual step and a guided-failure question by typing, as an
// operator would; the region is redrawn in place (it never reaches the
// scrollback) and the secret never reaches the screen.
func TestLiveViewInTerminal(t *testing.T) {
	bin := testbin.Opsbook(t)
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "opsbook.yaml"), []byte("name: live\nenvironments:\n  - name: dev\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "deploy.md"), []byte(liveRunbook), 0o644))
	cmd := fmt.Sprintf("cd %s && TERM=xterm-256color NO_COLOR=1 OPSBOOK_PARAM_TOKEN=hunter2-secret %s run deploy.md --env dev; echo EXIT=$?; sleep 120", dir, bin)
	p := newTmuxPane(t, 100, 30, cmd)

	s := p.waitFor("compiling module")
	for _, want := range []string{"opsbook ▸ Deploy the payments service · dev", "▶ build", "· go", "/ 30.0s", "── build output"} {
		if !strings.Contains(s, want) {
			t.Errorf("while building, the screen lacks %q:\n%s", want, s)
		}
	}

	s = p.waitFor("type go or no-go")
	for _, want := range []string{"✓ build", "⏸ go", "Go/No-Go gate go — 1 more approval(s) needed", "Go when the build is green", "token ***"} {
		if !strings.Contains(s, want) {
			t.Errorf("at the gate, the screen lacks %q:\n%s", want, s)
		}
	}
	p.typeLine("go")
	p.waitFor("Reason for go")
	p.typeLine("build green")

	s = p.waitFor("Press Enter when done")
	if !strings.Contains(s, "Drain node-3 in the load balancer console.") || !strings.Contains(s, "✓ go") {
		t.Errorf("at the manual step:\n%s", s)
	}
	p.typeLine("")

	s = p.waitFor("Choose retry / skip / abort")
	if !strings.Contains(s, "error: lock timeout") || !strings.Contains(s, "migrate failed — what now?") {
		t.Errorf("at the failed step:\n%s", s)
	}
	p.typeLine("later") // not an option: asked again
	p.waitFor("Choose retry / skip / abort")
	p.typeLine("skip")
	p.waitFor("Reason for skip")
	p.typeLine("migrated by hand")

	s = p.waitFor("EXIT=0")
	for _, want := range []string{"Run r-", "succeeded in", "go: build green (", "skip: migrated by hand (", "skipped", "Full log: opsbook show r-"} {
		if !strings.Contains(s, want) {
			t.Errorf("the summary lacks %q:\n%s", want, s)
		}
	}
	all := p.screen(true)
	if strings.Contains(all, "hunter2-secret") {
		t.Fatalf("the secret reached the terminal:\n%s", all)
	}
	// Redrawn in place: no frame is left behind once the summary replaces it.
	if n := strings.Count(all, "opsbook ▸"); n != 0 {
		t.Errorf("%d stale frame headers left on the screen or in its history:\n%s", n, all)
	}

	_, rest, _ := strings.Cut(s, "Full log: opsbook show ")
	id := strings.Fields(rest)[0]
	_, state := runLog(t, dir, id)
	var got []string
	for _, d := range state.Decisions {
		got = append(got, d.Kind+":"+d.Choice+":"+d.Reason)
	}
	want := []string{"gate:go:build green", "manual:confirmed:", "ask:skip:migrated by hand"}
	if strings.Join(got, "|") != strings.Join(want, "|") || state.Status != runbook.RunSucceeded {
		t.Errorf("recorded decisions %q (run %s), want %q", got, state.Status, want)
	}
}

// TestLiveViewOffWithoutCursor: TERM=dumb in a terminal keeps the
// line-oriented output.
func TestLiveViewOffWithoutCursor(t *testing.T) {
	bin := testbin.Opsbook(t)
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "opsbook.yaml"), []byte("name: live\nenvironments:\n  - name: dev\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "hello.md"), []byte("---\nkind: runbook\ntitle: Hello\n---\n\n# Hello\n\n## Steps\n\n### Greet\n\n```sh {id=greet}\necho hello there\n```\n"), 0o644))
	p := newTmuxPane(t, 100, 30, fmt.Sprintf("cd %s && TERM=dumb %s run hello.md --env dev; echo EXIT=$?; sleep 120", dir, bin))
	s := p.waitFor("EXIT=0")
	for _, want := range []string{"-> [greet] Greet", "[greet] hello there", "<- [greet] succeeded"} {
		if !strings.Contains(s, want) {
			t.Errorf("TERM=dumb output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "opsbook ▸") {
		t.Errorf("TERM=dumb drew the live view:\n%s", s)
	}
}

// TestLiveViewResize: on SIGWINCH the region is redrawn to the new width,
// once, with nothing of the old frames left on the screen.
func TestLiveViewResize(t *testing.T) {
	bin := testbin.Opsbook(t)
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "opsbook.yaml"), []byte("name: live\nenvironments:\n  - name: dev\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "slow.md"), []byte("---\nkind: runbook\ntitle: A slow runbook with a rather long title\n---\n\n# Slow\n\n## Steps\n\n"+
		"### Count slowly to ten\n\n```sh {id=count estimate=1m}\nfor i in $(seq 1 100); do echo \"tick $i of a long line of output that is wider than the terminal will be\"; sleep 0.1; done\n```\n\n"+
		"### Then stop\n\n```sh {id=stop}\ntrue\n```\n"), 0o644))
	p := newTmuxPane(t, 100, 30, fmt.Sprintf("cd %s && TERM=xterm-256color %s run slow.md --env dev; echo EXIT=$?; sleep 120", dir, bin))
	p.waitFor("tick 3 ")
	for _, width := range []int{60, 35, 100} {
		p.tmux("resize-window", "-t", "t", "-x", fmt.Sprint(width), "-y", "30")
		time.Sleep(500 * time.Millisecond)
		s := p.screen(false)
		if n := strings.Count(s, "opsbook ▸"); n != 1 {
			t.Errorf("at %d columns the screen shows %d frame headers:\n%s", width, n, s)
		}
		for i, l := range strings.Split(s, "\n") {
			if w := visibleWidth(strings.TrimRight(l, " ")); w > width-1 {
				t.Errorf("at %d columns, line %d is %d wide: %q", width, i, w, l)
			}
		}
		if !strings.Contains(s, "▶ count") || !strings.Contains(s, "tick ") {
			t.Errorf("at %d columns the region lacks the running step or its output:\n%s", width, s)
		}
	}
}
