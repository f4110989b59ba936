package markdown

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
)

// Attribute names, by where they may appear. Step attributes belong on the
// step's primary block (see runbook.Step.Primary).
var (
	StepAttrs = []string{"id", "target", "timeout", "retries", "backoff", "on_fail", "estimate",
		"idempotent", "verify", "reason", "outputs", "parallel", "batch", "max_failures", "no_hosts"}
	roleAttrs = map[runbook.BlockRole][]string{
		runbook.BlockAction: {"errexit"},
		runbook.BlockVerify: {"verify", "timeout", "errexit"},
		runbook.BlockExpect: {"expect"},
		runbook.BlockUntil:  {"until", "interval", "timeout", "errexit"},
		runbook.BlockGate:   {"approvers", "roles"},
		runbook.BlockCall:   {"runbook"},
	}
	// KnownAttrs is every attribute opsbook understands.
	KnownAttrs = func() []string {
		all := slices.Clone(StepAttrs)
		for _, as := range roleAttrs {
			for _, a := range as {
				if !slices.Contains(all, a) {
					all = append(all, a)
				}
			}
		}
		slices.Sort(all)
		return all
	}()
)

// Defaults the parser fills in so that every consumer sees the same values.
const (
	DefaultUntilInterval = 5 * time.Second
	DefaultUntilTimeout  = 5 * time.Minute
)

var (
	attrKey = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*`) })
	stepID  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`) })
)

// fenceInfo is a parsed info string: "LANG {attrs}".
type fenceInfo struct {
	lang      string
	hasBraces bool
	attrs     []runbook.Attr
}

// parseInfo reads an info string that starts at byte offset base.
func (p *parser) parseInfo(info string, base int) fenceInfo {
	var fi fenceInfo
	if len(info) > MaxInfoString {
		p.errorf(p.src.pos(base), RuleInputLimit, "this fence's info string (the text after ``` on its line) is %d bytes; the limit is %d — shorten its attributes",
			len(info), MaxInfoString)
		if i := strings.IndexAny(info[:maxLangName+1], " \t{"); i >= 0 {
			fi.lang = info[:i]
		}
		return fi
	}
	i := strings.IndexAny(info, " \t{")
	if i < 0 {
		fi.lang = info
		return fi
	}
	fi.lang = info[:i]
	rest := info[i:]
	trimmed := strings.TrimLeft(rest, " \t")
	restBase := base + i + len(rest) - len(trimmed)
	if trimmed == "" {
		return fi
	}
	if trimmed[0] != '{' {
		// Text after the language without braces is for other renderers
		// (a title, a highlight spec); opsbook ignores it.
		return fi
	}
	end := strings.LastIndexByte(trimmed, '}')
	if end < 0 {
		p.errorf(p.src.pos(restBase), "attribute-syntax", "attributes opened with { are not closed; end them with }")
		end = len(trimmed)
	} else if tail := strings.TrimSpace(trimmed[end+1:]); tail != "" {
		p.errorf(p.src.pos(restBase+end+1), "attribute-syntax", "unexpected %q after the closing }; put every attribute inside { }", tail)
	}
	fi.hasBraces = true
	fi.attrs = p.parseAttrs(trimmed[1:min(end, len(trimmed))], restBase+1)
	return fi
}

// parseAttrs splits "key key=value key=\"quoted value\"" into attributes.
// A <<FILL: …>> placeholder inside a value is kept whole, spaces included.
func (p *parser) parseAttrs(s string, base int) []runbook.Attr {
	var attrs []runbook.Attr
	seen := map[string]bool{}
	i := 0
	for i < len(s) {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		start := i
		key := attrKey().FindString(s[i:])
		if key == "" {
			end := i + 1
			for end < len(s) && s[end] != ' ' && s[end] != '\t' {
				end++
			}
			p.errorf(p.src.pos(base+start), "attribute-syntax",
				"%q is not an attribute; write key or key=value (quote values with spaces: key=\"a b\")", s[start:end])
			i = end
			continue
		}
		i += len(key)
		a := runbook.Attr{Key: key, Pos: p.src.pos(base + start)}
		if i < len(s) && s[i] == '=' {
			i++
			a.HasValue = true
			switch {
			case i < len(s) && (s[i] == '"' || s[i] == '\''):
				quote := s[i]
				i++
				var b strings.Builder
				closed := false
				for i < len(s) {
					c := s[i]
					if c == '\\' && quote == '"' && i+1 < len(s) {
						b.WriteByte(s[i+1])
						i += 2
						continue
					}
					i++
					if c == quote {
						closed = true
						break
					}
					b.WriteByte(c)
				}
				if !closed {
					p.errorf(a.Pos, "attribute-syntax", "the value of %s opens a quote %c that is not closed", key, quote)
				}
				a.Value = b.String()
			default:
				vstart := i
				for i < len(s) && s[i] != ' ' && s[i] != '\t' {
					if strings.HasPrefix(s[i:], placeholderOpen) {
						if end := strings.Index(s[i:], placeholderClose); end >= 0 {
							i += end + len(placeholderClose)
							continue
						}
					}
					i++
				}
				a.Value = s[vstart:i]
				if a.Value == "" {
					p.errorf(a.Pos, "attribute-syntax", "%s= needs a value; write %s=value or just %s", key, key, key)
				}
			}
		}
		if i < len(s) && s[i] != ' ' && s[i] != '\t' {
			end := i
			for end < len(s) && s[end] != ' ' && s[end] != '\t' {
				end++
			}
			p.errorf(p.src.pos(base+i), "attribute-syntax", "unexpected %q in attribute %s; separate attributes with spaces", s[i:end], key)
			i = end
		}
		if seen[key] {
			p.errorf(a.Pos, "attribute-syntax", "attribute %s is given twice; keep one", key)
			continue
		}
		seen[key] = true
		attrs = append(attrs, a)
	}
	return attrs
}

// classify decides a fenced block's role from its language and attributes.
func classify(fi fenceInfo, inStep bool) runbook.BlockRole {
	has := func(key string) (string, bool) {
		for _, a := range fi.attrs {
			if a.Key == key {
				return a.Value, true
			}
		}
		return "", false
	}
	switch fi.lang {
	case "manual":
		return runbook.BlockManual
	case "gate":
		return runbook.BlockGate
	case "call":
		return runbook.BlockCall
	}
	if v, ok := has("verify"); ok && v == "" {
		return runbook.BlockVerify
	}
	if _, ok := has("expect"); ok {
		return runbook.BlockExpect
	}
	if _, ok := has("until"); ok {
		return runbook.BlockUntil
	}
	if fi.hasBraces {
		return runbook.BlockAction
	}
	if inStep && slices.Contains(runbook.Shells, fi.lang) {
		return runbook.BlockAction
	}
	return runbook.BlockPlain
}

// checkAttrs reports attributes that are unknown, or known but meaningless
// on this block.
func (p *parser) checkAttrs(b *runbook.Block, primary bool) {
	allowed := roleAttrs[b.Role]
	for _, a := range b.Attrs {
		if !slices.Contains(KnownAttrs, a.Key) {
			p.errorf(a.Pos, "unknown-attribute", "unknown attribute %q%s", a.Key, orList(DidYouMean(a.Key, KnownAttrs), KnownAttrs))
			continue
		}
		if slices.Contains(allowed, a.Key) || primary && slices.Contains(StepAttrs, a.Key) {
			continue
		}
		where := withArticle(roleName(b.Role)) + " block"
		if slices.Contains(StepAttrs, a.Key) {
			p.warnf(a.Pos, "misplaced-attribute", "attribute %s has no effect on %s; step attributes belong on the step's action (or manual, gate or call) block", a.Key, where)
		} else {
			p.warnf(a.Pos, "misplaced-attribute", "attribute %s has no effect on %s", a.Key, where)
		}
	}
}

func orList(didYouMean string, known []string) string {
	if didYouMean != "" {
		return didYouMean
	}
	return "; known attributes are " + strings.Join(known, ", ")
}

func withArticle(word string) string {
	if strings.ContainsRune("aeiou", rune(word[0])) {
		return "an " + word
	}
	return "a " + word
}

func roleName(r runbook.BlockRole) string {
	if r == runbook.BlockPlain {
		return "plain"
	}
	return string(r)
}

// applyBlockAttrs fills the block-level fields (until, verify, expect,
// errexit).
func (p *parser) applyBlockAttrs(b *runbook.Block) {
	if v, ok := p.attrValue(b, "errexit"); ok && slices.Contains(roleAttrs[b.Role], "errexit") {
		switch v.Value {
		case "false":
			b.NoErrexit = true
		case "", "true":
		default:
			p.errorf(v.Pos, "bad-attribute-value", "errexit=%s is not valid: write errexit=false to run this block without set -e (the default is on)", v.Value)
		}
	}
	switch b.Role {
	case runbook.BlockUntil:
		b.Interval, b.Timeout = DefaultUntilInterval, DefaultUntilTimeout
		if v, ok := p.attrValue(b, "interval"); ok {
			b.Interval = p.duration(v.Value, v.Pos, "interval")
		}
		if v, ok := p.attrValue(b, "timeout"); ok {
			b.Timeout = p.duration(v.Value, v.Pos, "timeout")
		}
		if v, ok := p.attrValue(b, "until"); ok && v.HasValue {
			p.errorf(v.Pos, "bad-attribute-value", "until takes no value; set interval= and timeout= beside it")
		}
	case runbook.BlockVerify:
		if v, ok := p.attrValue(b, "timeout"); ok {
			b.Timeout = p.duration(v.Value, v.Pos, "timeout")
		}
	case runbook.BlockExpect:
		v, _ := p.attrValue(b, "expect")
		switch v.Value {
		case "":
		case "regex":
			b.Regex = true
			if _, err := regexp.Compile(strings.TrimRight(b.Body, "\n")); err != nil {
				p.errorf(runbook.Pos{Line: b.BodyLine, Col: 1}, "bad-regex", "expected-output regex does not compile: %v", err)
			}
		default:
			p.errorf(v.Pos, "bad-attribute-value", "expect=%s is not valid: write expect (the output contains the text) or expect=regex", v.Value)
		}
	case runbook.BlockCall:
		p.bindings(b)
	}
}

func (p *parser) attrValue(b *runbook.Block, key string) (runbook.Attr, bool) {
	for _, a := range b.Attrs {
		if a.Key == key {
			return a, true
		}
	}
	return runbook.Attr{}, false
}

// applyStepAttrs reads the step attributes from the step's primary block.
func (p *parser) applyStepAttrs(s *runbook.Step, b *runbook.Block) {
	for _, a := range b.Attrs {
		if !slices.Contains(StepAttrs, a.Key) {
			continue
		}
		v := a.Value
		if hasPlaceholder(v) {
			continue
		}
		needValue := func() bool {
			if !a.HasValue || v == "" {
				p.errorf(a.Pos, "bad-attribute-value", "%s needs a value, e.g. %s", a.Key, attrExample(a.Key))
				return false
			}
			return true
		}
		switch a.Key {
		case "id":
			if needValue() {
				if !stepID().MatchString(v) {
					p.errorf(a.Pos, "bad-attribute-value", "id %q must be letters, digits, _, . or - (e.g. stop-writes)", v)
				}
				s.ID = v
			}
		case "target":
			if needValue() {
				s.Target = v
			}
		case "timeout":
			if needValue() {
				s.Timeout = p.duration(v, a.Pos, "timeout")
			}
		case "backoff":
			if needValue() {
				s.Backoff = p.duration(v, a.Pos, "backoff")
			}
		case "estimate":
			if needValue() {
				s.Estimate = p.duration(v, a.Pos, "estimate")
			}
		case "retries":
			if needValue() {
				s.Retries = p.count(a, 0)
			}
		case "parallel":
			if needValue() {
				s.Parallel = p.count(a, 1)
			}
		case "on_fail":
			if needValue() {
				if !slices.Contains(runbook.OnFails, runbook.OnFail(v)) {
					p.errorf(a.Pos, "bad-on-fail", "on_fail=%s is not valid: use abort, continue, rollback or ask%s",
						v, DidYouMean(v, []string{"abort", "continue", "rollback", "ask"}))
				} else {
					s.OnFail = runbook.OnFail(v)
				}
			}
		case "no_hosts":
			if needValue() {
				switch v {
				case "skip":
					s.SkipNoHosts = true
				case "fail":
				default:
					p.errorf(a.Pos, "bad-attribute-value", "no_hosts=%s is not valid: use no_hosts=skip (the step is skipped when its target selects no host) or no_hosts=fail (the default)", v)
				}
			}
		case "idempotent":
			switch v {
			case "", "true":
				s.Idempotent = true
			case "false":
			default:
				p.errorf(a.Pos, "bad-attribute-value", "idempotent=%s is not valid: write idempotent or idempotent=false", v)
			}
		case "verify":
			if v != "none" {
				p.errorf(a.Pos, "bad-attribute-value", "on a step's %s block write verify=none reason=\"why no check is needed\"; a verification is its own ```sh {verify} block", roleName(b.Role))
			}
		case "reason":
			if needValue() {
				if _, ok := b.Attr("verify"); ok {
					s.VerifyNone = v
				} else {
					p.warnf(a.Pos, "misplaced-attribute", "reason explains verify=none; add verify=none or drop reason")
				}
			}
		case "outputs":
			if needValue() {
				for _, name := range strings.Split(v, ",") {
					name = strings.TrimSpace(name)
					if !envName().MatchString(name) {
						p.errorf(a.Pos, "bad-attribute-value", "output name %q must be a valid environment variable name (letters, digits, _)", name)
						continue
					}
					s.Outputs = append(s.Outputs, name)
				}
			}
		case "batch", "max_failures":
			// Kept as written: lint's fanout-policy rule judges them with
			// fanout.Policy.Validate, the same code the run uses.
			if needValue() {
				if a.Key == "batch" {
					s.Batch = v
				} else {
					s.MaxFailures = v
				}
			}
		}
	}
}

func (p *parser) count(a runbook.Attr, minimum int) int {
	n, err := strconv.Atoi(a.Value)
	if err != nil || n < minimum || n > 1_000_000 {
		p.errorf(a.Pos, "bad-attribute-value", "%s=%s is not valid: write a whole number of at least %d", a.Key, a.Value, minimum)
		return 0
	}
	return n
}

func attrExample(key string) string {
	switch key {
	case "timeout", "backoff", "estimate", "interval":
		return key + "=5m"
	case "retries", "parallel":
		return key + "=2"
	case "on_fail":
		return "on_fail=rollback"
	case "outputs":
		return "outputs=dump_path,size"
	case "batch", "max_failures":
		return key + "=25%"
	case "no_hosts":
		return "no_hosts=skip"
	case "reason":
		return `reason="read-only step"`
	}
	return fmt.Sprintf("%s=value", key)
}

// gateAttrs reads approvers= and roles= from a gate block.
func (p *parser) gateAttrs(s *runbook.Step, b *runbook.Block) {
	s.Approvers = 1
	if a, ok := p.attrValue(b, "approvers"); ok && !hasPlaceholder(a.Value) {
		s.Approvers = p.count(a, 1)
	}
	if a, ok := p.attrValue(b, "roles"); ok && a.Value != "" {
		for _, r := range strings.Split(a.Value, ",") {
			if r = strings.TrimSpace(r); r != "" {
				s.ApproverRoles = append(s.ApproverRoles, r)
			}
		}
	}
}

// bindings reads a call block's body: one NAME=value per line, blank lines
// and # comments ignored. A value that is exactly $VAR or ${VAR} forwards
// the caller's variable VAR; any other value is literal text.
func (p *parser) bindings(b *runbook.Block) {
	if a, ok := p.attrValue(b, "runbook"); !ok || a.Value == "" {
		p.errorf(b.Pos, "bad-call", "a call block needs runbook=path/to/other.md (relative to this document)")
	}
	seen := map[string]bool{}
	for i, line := range strings.Split(b.Body, "\n") {
		pos := runbook.Pos{Line: b.BodyLine + i, Col: 1}
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		pos.Col += strings.Index(line, trimmed)
		name, value, ok := strings.Cut(trimmed, "=")
		name = strings.TrimSpace(name)
		if !ok || !envName().MatchString(name) {
			p.errorf(pos, "bad-call", "%q is not a binding; write PARAM=value or PARAM=$CALLER_VARIABLE", trimmed)
			continue
		}
		if seen[name] {
			p.errorf(pos, "bad-call", "parameter %s is bound twice; keep one line", name)
			continue
		}
		seen[name] = true
		value = strings.TrimSpace(value)
		if len(value) >= 2 && (value[0] == '"' && value[len(value)-1] == '"' || value[0] == '\'' && value[len(value)-1] == '\'') {
			value = value[1 : len(value)-1]
		}
		bd := runbook.Binding{Name: name, Value: value, Pos: pos}
		if from, ok := wholeVariable(value); ok {
			bd.From, bd.Value = from, ""
		}
		b.Bindings = append(b.Bindings, bd)
	}
}

// wholeVariable recognises a value that is exactly $NAME or ${NAME}.
func wholeVariable(v string) (string, bool) {
	if strings.HasPrefix(v, "${") && strings.HasSuffix(v, "}") {
		v = v[2 : len(v)-1]
	} else if strings.HasPrefix(v, "$") {
		v = v[1:]
	} else {
		return "", false
	}
	return v, envName().MatchString(v)
}
