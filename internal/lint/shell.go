package lint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
)

// shellTimeout bounds one syntax check; `-n` never runs anything, so only
// a pathological script could take long.
const shellTimeout = 10 * time.Second

// shellError matches "bash: line 3: syntax error …" and dash's "sh: 3: Syntax error: …".
var shellError = regexp.MustCompile(`^[^:]*: (?:line )?(\d+): (.*)$`)

type shellBlock struct {
	b     *runbook.Block
	start int // 1-based line of the block in the combined script
}

// checkShell runs `bash -n` or `sh -n` over the document's sh and bash
// blocks. All blocks of one shell are first checked as one script — a
// single process per shell per document — and only when that fails is
// each block checked alone, so an error is reported in the right block.
func checkShell(doc *runbook.Document) []runbook.Diagnostic {
	groups := map[string][]*runbook.Block{}
	for _, s := range doc.Steps {
		for _, b := range []*runbook.Block{s.Action, s.Verify, s.Until} {
			if b == nil || strings.Contains(b.Body, "<<FILL:") {
				continue
			}
			switch b.Lang {
			case "sh", "bash":
				groups[b.Lang] = append(groups[b.Lang], b)
			}
		}
	}
	var diags []runbook.Diagnostic
	for _, shell := range []string{"bash", "sh"} {
		blocks := groups[shell]
		if len(blocks) == 0 {
			continue
		}
		var script strings.Builder
		for _, b := range blocks {
			script.WriteString(b.Body)
			if !strings.HasSuffix(b.Body, "\n") {
				script.WriteByte('\n')
			}
		}
		if _, _, ok := syntaxCheck(shell, script.String()); ok {
			continue
		}
		for _, b := range blocks {
			line, msg, ok := syntaxCheck(shell, b.Body)
			if ok {
				continue
			}
			// A shell reports an unterminated construct at the end of input;
			// the block's last line is the nearest place in the document.
			lastLine := max(strings.Count(strings.TrimSuffix(b.Body, "\n"), "\n")+1, 1)
			pos := runbook.Pos{Line: b.BodyLine + min(max(line, 1), lastLine) - 1, Col: max(b.Pos.Col, 1)}
			if line == 0 {
				pos = b.Pos
			}
			diags = append(diags, runbook.Diagnostic{
				File: doc.Path, Pos: pos, Severity: runbook.SeverityError, Rule: "shell-syntax",
				Message: fmt.Sprintf("%s (from %s -n); fix the command's syntax", msg, shell),
			})
		}
	}
	return diags
}

// syntaxCheck pipes a script into `shell -n`. It reports ok when the syntax
// is fine, or when the shell is not installed (nothing can be said then).
func syntaxCheck(shell, script string) (line int, msg string, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), shellTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, shell, "-n")
	cmd.Stdin = strings.NewReader(script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil {
		return 0, "", true
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		return 0, "", true // shell missing: the check is skipped
	}
	first := ""
	for _, l := range strings.Split(stderr.String(), "\n") {
		m := shellError.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			if first == "" && strings.TrimSpace(l) != "" {
				first = strings.TrimSpace(l)
			}
			continue
		}
		if strings.HasPrefix(m[2], "warning:") {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		return n, m[2], false
	}
	if first == "" {
		first = "syntax error"
	}
	return 0, first, false
}
