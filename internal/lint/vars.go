package lint

import (
	"slices"
	"strings"

	"github.com/opsbook/opsbook/internal/markdown"
	"github.com/opsbook/opsbook/internal/runbook"
)

// ShellVars are variables every shell or login session provides; a
// command may use them without declaring anything.
var ShellVars = []string{
	"HOME", "PATH", "USER", "LOGNAME", "PWD", "OLDPWD", "SHELL", "TERM", "LANG", "LANGUAGE", "TZ",
	"TMPDIR", "HOSTNAME", "HOSTTYPE", "OSTYPE", "MACHTYPE", "UID", "EUID", "GROUPS", "PPID",
	"RANDOM", "SECONDS", "LINENO", "SHLVL", "IFS", "OPTARG", "OPTIND", "OPTERR", "REPLY",
	"PIPESTATUS", "FUNCNAME", "BASH", "BASHPID", "BASH_SOURCE", "BASH_LINENO", "BASH_VERSION",
	"BASH_VERSINFO", "BASH_REMATCH", "BASH_COMMAND", "BASH_SUBSHELL", "EPOCHSECONDS",
	"EPOCHREALTIME", "COLUMNS", "LINES", "MAIL", "PS1", "PS2", "PS3", "PS4", "EDITOR", "PAGER",
	"SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY", "SSH_AUTH_SOCK", "DISPLAY", "XDG_RUNTIME_DIR",
}

func isCommonShellVar(name string) bool {
	return slices.Contains(ShellVars, name) || strings.HasPrefix(name, "LC_")
}

// variables warns about $NAME in sh and bash blocks that nothing provides:
// not a param, an output of an earlier step, a built-in, a shell variable,
// a known workspace variable, nor a variable the script assigns itself.
func (l *linter) variables() {
	known := map[string]bool{}
	for _, n := range runbook.Builtins {
		known[n] = true
	}
	for _, n := range l.opts.KnownVars {
		known[n] = true
	}
	var candidates []string
	for _, p := range l.doc.Front.Params {
		known[p.Name] = true
	}
	for n := range known {
		candidates = append(candidates, n)
	}
	firstPublisher := map[string]int{} // output name → index of the first step publishing it
	for i, s := range l.doc.Steps {
		for _, o := range s.Outputs {
			if _, ok := firstPublisher[o]; !ok {
				firstPublisher[o] = i
			}
		}
	}
	slices.Sort(candidates)
	for si, s := range l.doc.Steps {
		for _, b := range []*runbook.Block{s.Action, s.Verify, s.Until} {
			if b == nil || !slices.Contains(runbook.Shells, b.Lang) {
				continue
			}
			refs, assigned := shellRefs(b.Body)
			// Checks run after the action, so they see the step's own outputs.
			ownOutputVisible := b != s.Action && b != s.Primary()
			for _, r := range refs {
				if known[r.name] || assigned[r.name] || isCommonShellVar(r.name) {
					continue
				}
				if ownOutputVisible && slices.Contains(s.Outputs, r.name) {
					continue
				}
				pos := bodyPos(b, r.line, r.col)
				if i, ok := firstPublisher[r.name]; ok {
					if i == si {
						l.warnf(pos, "unknown-variable", "$%s is this step's own output; it is set for later steps, not for this one (use a shell variable here)", r.name)
					} else {
						l.warnf(pos, "unknown-variable", "$%s is an output of step %s, which runs later; move this command after it", r.name, l.doc.Steps[i].ID)
					}
					continue
				}
				l.warnf(pos, "unknown-variable", "$%s is not a declared param, an output of an earlier step, a built-in (OPSBOOK_*) or a workspace variable; declare it under params:%s",
					r.name, markdown.DidYouMean(r.name, candidates))
			}
		}
		if s.Call != nil {
			for _, bd := range s.Call.Bindings {
				if bd.From != "" && !known[bd.From] && !isCommonShellVar(bd.From) {
					l.warnf(bd.Pos, "unknown-variable", "$%s forwarded to %s is not a declared param, an output of an earlier step or a built-in%s",
						bd.From, bd.Name, markdown.DidYouMean(bd.From, candidates))
				}
			}
		}
		for _, o := range s.Outputs {
			known[o] = true
			candidates = append(candidates, o)
		}
	}
}

// bodyPos maps a 0-based line and byte column of a block body to the file.
// A fence indented in a list has the same indent stripped from its lines.
func bodyPos(b *runbook.Block, line, col int) runbook.Pos {
	return runbook.Pos{Line: b.BodyLine + line, Col: col + 1 + max(b.Pos.Col-1, 0)}
}

type varRef struct {
	name      string
	line, col int // 0-based within the body
}

// shellRefs finds $NAME and ${NAME…} expansions in a shell script, skipping
// single-quoted text, comments, escaped dollars and quoted here-documents
// (whose text is not expanded), and collects the names the script assigns.
func shellRefs(body string) ([]varRef, map[string]bool) {
	var refs []varRef
	line, lineStart := 0, 0
	inDouble := false
	type heredoc struct {
		delim  string
		quoted bool // <<'EOF': the text is literal
	}
	var pending []heredoc
	// dollars records the expansions of a stretch of text in which quotes
	// mean nothing (an unquoted here-document's lines).
	dollars := func(text string, at int) {
		for j := 0; j < len(text); j++ {
			switch text[j] {
			case '\\':
				j++
			case '$':
				if name, n := expansionName(text[j+1:]); name != "" {
					refs = append(refs, varRef{name: name, line: line, col: at + j - lineStart})
					j += n
				}
			}
		}
	}
	i := 0
	for i < len(body) {
		c := body[i]
		switch {
		case c == '\n':
			i++
			line, lineStart = line+1, i
			if inDouble {
				continue
			}
			// Here-document texts start on the line after their operator.
			for len(pending) > 0 && i < len(body) {
				end := strings.IndexByte(body[i:], '\n')
				text := body[i:]
				if end >= 0 {
					text = body[i : i+end]
				}
				if strings.TrimLeft(text, "\t") == pending[0].delim {
					pending = pending[1:]
				} else if !pending[0].quoted {
					dollars(text, i)
				}
				if end < 0 {
					i = len(body)
					break
				}
				i += end + 1
				line, lineStart = line+1, i
			}
		case c == '\\':
			i += 2
		case c == '\'' && !inDouble:
			end := strings.IndexByte(body[i+1:], '\'')
			if end < 0 {
				i = len(body)
				break
			}
			for _, ch := range body[i+1 : i+1+end] {
				if ch == '\n' {
					line++
				}
			}
			i += end + 2
			if nl := strings.LastIndexByte(body[:i], '\n'); nl >= 0 {
				lineStart = nl + 1
			}
		case c == '"':
			inDouble = !inDouble
			i++
		case c == '#' && !inDouble && (i == 0 || strings.IndexByte(" \t\n;&|(", body[i-1]) >= 0):
			end := strings.IndexByte(body[i:], '\n')
			if end < 0 {
				i = len(body)
			} else {
				i += end
			}
		case c == '<' && !inDouble && strings.HasPrefix(body[i:], "<<") && !strings.HasPrefix(body[i:], "<<<"):
			j := i + 2
			if j < len(body) && body[j] == '-' {
				j++
			}
			for j < len(body) && (body[j] == ' ' || body[j] == '\t') {
				j++
			}
			k := j
			for k < len(body) && strings.IndexByte(" \t\n;&|<>()", body[k]) < 0 {
				k++
			}
			word := body[j:k]
			if delim := strings.Trim(word, `'"\`); delim != "" {
				pending = append(pending, heredoc{delim: delim, quoted: delim != word})
			}
			i = max(k, i+2)
		case c == '$':
			name, n := expansionName(body[i+1:])
			if name != "" {
				refs = append(refs, varRef{name: name, line: line, col: i - lineStart})
			}
			i += 1 + n
		default:
			i++
		}
	}
	return refs, assignedNames(body)
}

// expansionName reads the variable name after a $: NAME or {NAME…}.
// Positional and special parameters ($1, $?, $@, ${#}) yield "".
func expansionName(s string) (string, int) {
	if s == "" {
		return "", 0
	}
	if s[0] == '{' {
		j := 1
		if j < len(s) && (s[j] == '#' || s[j] == '!') {
			j++
		}
		k := j
		for k < len(s) && isNameByte(s[k]) {
			k++
		}
		if k == j || s[j] >= '0' && s[j] <= '9' {
			return "", 1
		}
		return s[j:k], k
	}
	if !isNameStart(s[0]) {
		return "", 0
	}
	k := 1
	for k < len(s) && isNameByte(s[k]) {
		k++
	}
	return s[:k], k
}

func isNameStart(c byte) bool {
	return c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

func isNameByte(c byte) bool { return isNameStart(c) || c >= '0' && c <= '9' }

// assignedNames collects the names a script sets itself: NAME=…,
// export/local/readonly/declare NAME, read NAME…, for/select NAME in,
// getopts … NAME, mapfile/readarray NAME, printf -v NAME.
func assignedNames(body string) map[string]bool {
	out := map[string]bool{}
	for _, raw := range strings.Split(body, "\n") {
		words := shellWords(raw)
		for i, w := range words {
			if eq := strings.IndexByte(w, '='); eq > 0 {
				name := strings.TrimSuffix(w[:eq], "+")
				if b := strings.IndexByte(name, '['); b > 0 {
					name = name[:b]
				}
				if validName(name) {
					out[name] = true
				}
			}
			next := func(from int, skipFlagArgs string) {
				for j := from; j < len(words); j++ {
					x := words[j]
					if strings.HasPrefix(x, "-") {
						if len(x) == 2 && strings.IndexByte(skipFlagArgs, x[1]) >= 0 {
							j++
						}
						continue
					}
					if k := strings.IndexByte(x, '='); k > 0 {
						x = x[:k]
					}
					if !validName(x) {
						return
					}
					out[x] = true
				}
			}
			switch w {
			case "export", "local", "readonly", "declare", "typeset", "unset":
				next(i+1, "")
			case "read":
				next(i+1, "adnNptu")
			case "mapfile", "readarray":
				next(i+1, "dnOsuCc")
			case "for", "select":
				if i+1 < len(words) && validName(words[i+1]) {
					out[words[i+1]] = true
				}
			case "getopts":
				if i+2 < len(words) && validName(words[i+2]) {
					out[words[i+2]] = true
				}
			case "printf":
				if i+2 < len(words) && words[i+1] == "-v" && validName(words[i+2]) {
					out[words[i+2]] = true
				}
			}
		}
	}
	return out
}

// shellWords splits a line on blanks and shell operators; good enough to
// spot assignments and the names after export, read or for.
func shellWords(line string) []string {
	return strings.FieldsFunc(line, func(r rune) bool {
		return r == ' ' || r == '\t' || r == ';' || r == '&' || r == '|' || r == '(' || r == ')' || r == '`'
	})
}

func validName(s string) bool {
	if s == "" || !isNameStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}
