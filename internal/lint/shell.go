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
	"sync"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
)

// shellTimeout bounds one syntax check; `-n` never runs anything, so only
// a pathological script could take long.
const shellTimeout = 30 * time.Second

// batchSize is how many blocks one `bash -n` reads at a time.
const batchSize = 256

// shellError matches "bash: line 3: syntax error …" and dash's "sh: 3: Syntax error: …".
var shellError = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[^:]*: (?:line )?(\d+): (.*)$`) })

// shellBlock is one command block to check, with the document it is in.
type shellBlock struct {
	file string
	b    *runbook.Block
}

// shellBlocks lists a document's sh and bash command blocks.
func shellBlocks(doc *runbook.Document) []shellBlock {
	var out []shellBlock
	for _, s := range doc.Steps {
		for _, b := range []*runbook.Block{s.Action, s.Verify, s.Until} {
			if b == nil || strings.Contains(b.Body, "<<FILL:") {
				continue
			}
			if b.Lang == "sh" || b.Lang == "bash" {
				out = append(out, shellBlock{file: doc.Path, b: b})
			}
		}
	}
	return out
}

// checkShell runs `bash -n` (bash blocks) or `sh -n` (sh blocks) over the
// blocks and reports each syntax error at its line in the document.
//
// One process per block would dominate lint time, so blocks are checked in
// batches: the blocks of a batch are concatenated and, when the shell
// accepts the whole, every block is fine; when it does not, the batch is
// split in halves until the failing blocks are found. A block that ends
// inside a quote or a here-document could pair up with the next block and
// hide both errors, so such blocks are never batched: they are checked alone.
func checkShell(blocks []shellBlock) []runbook.Diagnostic {
	var jobs [][]shellBlock
	for _, shell := range []string{"bash", "sh"} {
		var batch []shellBlock
		for _, sb := range blocks {
			if sb.b.Lang != shell {
				continue
			}
			if !lexicallyClosed(sb.b.Body) {
				jobs = append(jobs, []shellBlock{sb})
				continue
			}
			batch = append(batch, sb)
			if len(batch) == batchSize {
				jobs = append(jobs, batch)
				batch = nil
			}
		}
		if len(batch) > 0 {
			jobs = append(jobs, batch)
		}
	}
	results := make([][]runbook.Diagnostic, len(jobs))
	parallel(len(jobs), func(i int) { results[i] = checkBatch(jobs[i]) })
	var diags []runbook.Diagnostic
	for _, r := range results {
		diags = append(diags, r...)
	}
	return diags
}

func checkBatch(batch []shellBlock) []runbook.Diagnostic {
	shell := batch[0].b.Lang
	if len(batch) == 1 {
		sb := batch[0]
		line, msg, ok := syntaxCheck(shell, sb.b.Body)
		if ok {
			return nil
		}
		return []runbook.Diagnostic{shellDiagnostic(sb, shell, line, msg)}
	}
	var script strings.Builder
	for _, sb := range batch {
		script.WriteString(sb.b.Body)
		if !strings.HasSuffix(sb.b.Body, "\n") {
			script.WriteByte('\n')
		}
	}
	if _, _, ok := syntaxCheck(shell, script.String()); ok {
		return nil
	}
	half := len(batch) / 2
	return append(checkBatch(batch[:half]), checkBatch(batch[half:])...)
}

func shellDiagnostic(sb shellBlock, shell string, line int, msg string) runbook.Diagnostic {
	b := sb.b
	pos := b.Pos
	if line > 0 {
		// A shell reports an unterminated construct at the end of input;
		// the block's last line is the nearest place in the document.
		lastLine := max(strings.Count(strings.TrimSuffix(b.Body, "\n"), "\n")+1, 1)
		pos = runbook.Pos{Line: b.BodyLine + min(line, lastLine) - 1, Col: max(b.Pos.Col, 1)}
	}
	return runbook.Diagnostic{
		File: sb.file, Pos: pos, Severity: runbook.SeverityError, Rule: "shell-syntax",
		Message: fmt.Sprintf("%s (from %s -n); fix the command's syntax", msg, shell),
	}
}

// lexicallyClosed reports whether a script ends outside any quote,
// backquote or here-document, so that concatenating it with another script
// cannot change how the other is read.
func lexicallyClosed(body string) bool {
	var single, double, back bool
	var heredoc []string
	lines := strings.Split(body, "\n")
	for _, line := range lines {
		if len(heredoc) > 0 && !single && !double && !back {
			if strings.TrimLeft(line, "\t") == heredoc[0] {
				heredoc = heredoc[1:]
			}
			continue
		}
		for i := 0; i < len(line); i++ {
			c := line[i]
			switch {
			case single:
				if c == '\'' {
					single = false
				}
			case c == '\\':
				i++
			case c == '"':
				double = !double
			case c == '`':
				back = !back
			case double:
			case c == '\'':
				single = true
			case c == '#' && (i == 0 || strings.IndexByte(" \t;&|(", line[i-1]) >= 0):
				i = len(line)
			case c == '<' && strings.HasPrefix(line[i:], "<<") && !strings.HasPrefix(line[i:], "<<<"):
				j := i + 2
				if j < len(line) && line[j] == '-' {
					j++
				}
				for j < len(line) && (line[j] == ' ' || line[j] == '\t') {
					j++
				}
				k := j
				for k < len(line) && strings.IndexByte(" \t;&|<>()", line[k]) < 0 {
					k++
				}
				if word := strings.Trim(line[j:k], `'"\`); word != "" {
					heredoc = append(heredoc, word)
				}
				i = k - 1
			}
		}
	}
	return !single && !double && !back && len(heredoc) == 0
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
		l = strings.TrimSpace(l)
		m := shellError().FindStringSubmatch(l)
		if m == nil {
			if first == "" && l != "" {
				first = l
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
