package executor

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/opsbook/opsbook/internal/runbook"
)

// MaxOutputsSize caps the $OPSBOOK_OUTPUT file. Outputs travel to later
// steps as environment variables, which the kernel limits to 128 KiB each
// and about 2 MiB in total, so a larger file is a mistake worth reporting.
const MaxOutputsSize = 1 << 20

// ParseOutputs reads the lines a command appended to $OPSBOOK_OUTPUT:
//
//	name=value
//	name<<DELIMITER
//	first line of a multi-line value
//	second line
//	DELIMITER
//
// as GitHub Actions does. Blank lines are skipped and a later line wins.
// A malformed line does not fail the step — the command itself succeeded
// and its other outputs are still good — so it is skipped and described in
// the returned warnings, which the engine records in the run log; a later
// step that needs the missing output fails on its own with a clear message.
// Warnings carry the line number and say how to fix the line.
func ParseOutputs(data []byte) (outputs map[string]string, warnings []string) {
	if len(data) > MaxOutputsSize {
		return nil, []string{fmt.Sprintf("$OPSBOOK_OUTPUT is %d bytes, more than the %d allowed; no outputs were read: publish large data as a file and pass its path instead",
			len(data), MaxOutputsSize)}
	}
	set := func(name, value string) {
		if outputs == nil {
			outputs = make(map[string]string)
		}
		outputs[name] = value
	}
	lines := strings.Split(string(data), "\n")
	// A final newline leaves one empty element that is not a line.
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	for i := 0; i < len(lines); i++ {
		line, lineNo := lines[i], i+1
		if strings.TrimSpace(line) == "" {
			continue
		}
		eq := strings.IndexByte(line, '=')
		heredoc := strings.Index(line, "<<")
		switch {
		case heredoc > 0 && (eq < 0 || heredoc < eq):
			name, delim := line[:heredoc], line[heredoc+2:]
			if problem := checkOutputName(name); problem != "" {
				warnings = append(warnings, fmt.Sprintf("$OPSBOOK_OUTPUT line %d: %s", lineNo, problem))
				continue
			}
			if delim == "" {
				warnings = append(warnings, fmt.Sprintf("$OPSBOOK_OUTPUT line %d: %q has no delimiter after <<; write %s<<EOF, the value's lines, then EOF", lineNo, line, name))
				continue
			}
			end := -1
			for j := i + 1; j < len(lines); j++ {
				if lines[j] == delim {
					end = j
					break
				}
			}
			if end < 0 {
				warnings = append(warnings, fmt.Sprintf("$OPSBOOK_OUTPUT line %d: delimiter %q of output %q never appears on a line of its own; end the value with a line holding only %s", lineNo, delim, name, delim))
				// Everything after the opening line belongs to the broken
				// value; reading it as name=value lines would invent outputs.
				return outputs, warnings
			}
			set(name, strings.Join(lines[i+1:end], "\n"))
			i = end
		case eq > 0:
			name := line[:eq]
			if problem := checkOutputName(name); problem != "" {
				warnings = append(warnings, fmt.Sprintf("$OPSBOOK_OUTPUT line %d: %s", lineNo, problem))
				continue
			}
			set(name, line[eq+1:])
		default:
			warnings = append(warnings, fmt.Sprintf("$OPSBOOK_OUTPUT line %d: %q is neither name=value nor name<<DELIMITER; write lines like version=1.2.3", lineNo, truncate(line, 40)))
		}
	}
	return outputs, warnings
}

// checkOutputName returns what is wrong with an output name, or "".
// Names must work as environment variable names because later steps
// receive outputs in their environment.
func checkOutputName(name string) string {
	if name == "" {
		return "output name is empty; write name=value"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		letter := c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
		digit := '0' <= c && c <= '9'
		if !letter && !(digit && i > 0) {
			return fmt.Sprintf("output name %q is not valid; use letters, digits and underscores, starting with a letter or underscore", truncate(name, 40))
		}
	}
	// Later steps get outputs as environment variables: a command that
	// relays what another system printed must not set BASH_ENV for them.
	if why := runbook.ReservedEnvName(name); why != "" {
		return "output " + why + "; publish it under another name"
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
