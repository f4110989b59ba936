package lint

import (
	"regexp"
	"strings"
	"sync"

	"github.com/opsbook/opsbook/internal/runbook"
)

// checksCanFail reports a step's checks that pass whatever happened: an
// expect block whose text the action prints itself, unconditionally, and
// a verify or until block that ends in a command that always succeeds. A
// check that cannot fail hides the failure it exists to catch.
func (l *linter) checksCanFail(s runbook.Step) {
	otherCheck := false // a verify or until that can fail
	for _, b := range []*runbook.Block{s.Verify, s.Until} {
		if b == nil {
			continue
		}
		line, cmd, ok := trivialLastCommand(b.Body)
		otherCheck = otherCheck || !ok
		if ok {
			l.errorf(runbook.Pos{Line: b.BodyLine + line, Col: 1}, "check-cannot-fail",
				"this check ends with `%s`, which always succeeds, so the check passes whatever happened before it: end the block with the command that tests (test, grep -q, curl -f …) and let its status decide",
				cmd)
		}
	}
	if s.Expect == nil || s.Action == nil {
		return
	}
	want := strings.TrimRight(s.Expect.Body, "\r\n")
	if want == "" {
		return
	}
	var match func(string) bool
	if s.Expect.Regex {
		re, err := regexp.Compile("(?m)" + want)
		if err != nil {
			return // bad-regex reports it
		}
		match = re.MatchString
	} else {
		match = func(out string) bool { return strings.Contains(out, want) }
	}
	for _, p := range unconditionalPrints(s.Action.Body) {
		if !match(p.text) {
			continue
		}
		msg := "the action prints this expected text itself, unconditionally (line %d: %s), so the expect block passes whatever happened: expect text that the checked command prints, or check its status with a ```sh {verify} block"
		if otherCheck {
			// The step's other check still catches a failure: the expect
			// is dead weight, not a hole.
			l.warnf(s.Expect.Pos, "check-cannot-fail", msg+" (the step's other check still decides)", s.Action.BodyLine+p.line, p.command)
		} else {
			l.errorf(s.Expect.Pos, "check-cannot-fail", msg, s.Action.BodyLine+p.line, p.command)
		}
		return
	}
}

// alwaysSucceeds are commands whose exit status is 0 whatever happened.
var alwaysSucceeds = map[string]bool{"echo": true, "printf": true, "true": true, ":": true}

// ignoredStatus matches a command line whose failure is swallowed at its end.
var ignoredStatus = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`\|\|\s*(true|:|echo\b.*|printf\b.*|exit\s+0)\s*;?\s*$`)
})

// trivialLastCommand finds the last command of a shell block and reports
// whether it always succeeds: echo, printf, true or : on its own, or any
// command followed by || true (or || echo …). line is 0-based in body.
func trivialLastCommand(body string) (line int, cmd string, ok bool) {
	lines := strings.Split(strings.TrimRight(body, "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		l = strings.TrimSpace(strings.TrimSuffix(l, ";"))
		if ignoredStatus().MatchString(l) {
			return i, l, true
		}
		first := firstWord(l)
		if alwaysSucceeds[first] && !strings.ContainsAny(l, "|&;`") && !strings.Contains(l, "$(") {
			return i, l, true
		}
		return 0, "", false
	}
	return 0, "", false
}

func firstWord(l string) string {
	if i := strings.IndexAny(l, " \t"); i >= 0 {
		return l[:i]
	}
	return l
}

type printed struct {
	line    int // 0-based in the body
	command string
	text    string
}

// unconditionalPrints finds the echo and printf lines of a shell block that
// run whatever happened: at the top level (not inside if, case, a loop or
// braces), not behind && or ||, not redirected to a file. Their text is the
// literal they print, quotes removed, for echo without variables.
func unconditionalPrints(body string) []printed {
	var out []printed
	depth := 0
	for i, raw := range strings.Split(body, "\n") {
		l := strings.TrimSpace(raw)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		first := firstWord(l)
		switch first {
		case "if", "case", "for", "while", "until", "select":
			if !closesOnLine(l) {
				depth++
			}
			continue
		case "fi", "done", "esac", "}":
			depth = max(0, depth-1)
			continue
		}
		if strings.HasSuffix(l, "{") || strings.HasSuffix(l, "(") {
			depth++
			continue
		}
		if depth > 0 || (first != "echo" && first != "printf") {
			continue
		}
		if strings.Contains(l, "&&") || strings.Contains(l, "||") || strings.ContainsAny(l, "|;`") ||
			(strings.Contains(l, ">") && !strings.Contains(l, ">&2")) {
			continue
		}
		text := strings.TrimSpace(strings.TrimPrefix(l, first))
		for strings.HasPrefix(text, "-") && first == "echo" {
			text = strings.TrimSpace(firstWordRest(text))
		}
		text = strings.TrimSpace(strings.ReplaceAll(text, ">&2", ""))
		text = strings.NewReplacer(`"`, "", `'`, "", `\n`, "\n").Replace(text)
		out = append(out, printed{line: i, command: l, text: text})
	}
	return out
}

// firstWordRest drops the first word of s.
func firstWordRest(s string) string {
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		return s[i:]
	}
	return ""
}

// closesOnLine reports whether a compound command opened on a line also
// ends there (if …; then …; fi).
func closesOnLine(l string) bool {
	for _, end := range []string{"fi", "done", "esac"} {
		if strings.HasSuffix(l, " "+end) || strings.HasSuffix(l, ";"+end) {
			return true
		}
	}
	return false
}

// promisesRollback matches gate text saying that No-Go rolls back.
var (
	noGoWords     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)no[- ]?go|否决|不通过|不批准`) })
	rollbackWords = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)roll(s|ing)?[- ]?back|回滚`) })
)

// gateRollbackPromises reports gates whose text promises that No-Go runs
// the rollback when the engine will not: the engine's rule
// (docs/runbook-format.md) is that No-Go at a gate runs the rollback
// document when the runbook names one, a step ran a command before the
// gate (an action, until or call step), and the gate does not opt out
// with on_fail=abort or continue.
func (l *linter) gateRollbackPromises() {
	if l.doc.Front.Kind != runbook.KindRunbook {
		return
	}
	actionBefore := false
	for _, s := range l.doc.Steps {
		if s.Gate == nil {
			if s.Action != nil || s.Call != nil || s.Until != nil {
				actionBefore = true
			}
			continue
		}
		text := s.Gate.Body + "\n" + s.Prose
		if !noGoWords().MatchString(text) || !rollbackWords().MatchString(text) {
			continue
		}
		var why string
		onFail, explicit := s.Gate.Attr("on_fail")
		switch {
		case l.doc.Front.Rollback == "":
			why = "this runbook names no rollback document (add rollback: to the front matter)"
		case explicit && (onFail == "abort" || onFail == "continue"):
			why = "the gate says on_fail=" + onFail + " (remove it to let No-Go roll back)"
		case !actionBefore:
			why = "no action step runs before this gate, so there is nothing to roll back (say that No-Go stops the run)"
		default:
			continue
		}
		l.errorf(s.Gate.Pos, "gate-rollback-promise", "this gate's text says No-Go rolls back, but it will not: %s", why)
	}
}
