package markdown

import (
	"errors"
	"fmt"
	"iter"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/opsbook/opsbook/internal/runbook"
)

// MaxWatch is the longest watch after a run a runbook may ask for.
const MaxWatch = 14 * 24 * time.Hour

// FrontMatterKeys lists the keys a front matter may have. Keys starting
// with "x-" are extensions that opsbook ignores.
var FrontMatterKeys = []string{
	"kind", "title", "system", "operation", "owner", "change", "environments",
	"estimate", "rollback", "lang", "tags", "params", "targets", "guards", "watch",
}

var (
	paramFields = []string{"type", "required", "default", "allowed", "description", "secret"}
	guardFields = []string{"name", "query", "threshold", "interval", "on_breach"}

	envName     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })
	targetName  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`) })
	thresholdRe = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^\s*(>=|<=|==|!=|>|<)\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*$`)
	})
	yamlErrorRe   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`) })
	guardOnBreach = []string{"pause", "rollback"}
)

// DefaultGuardInterval is how often a guard is checked when it does not say.
const DefaultGuardInterval = 30 * time.Second

// splitFrontMatter finds the front matter: a first line "---" and the next
// line that is "---" or "...". It returns the 1-based line of the closing
// delimiter, 0 when there is no front matter, or -1 when it is not closed.
func splitFrontMatter(s *source) int {
	if strings.TrimRight(string(s.line(1)), " \t") != "---" {
		return 0
	}
	for n := 2; n <= len(s.lineStarts); n++ {
		l := strings.TrimRight(string(s.line(n)), " \t")
		if l == "---" || l == "..." {
			return n
		}
	}
	return -1
}

// parseFrontMatter decodes the YAML between line 1 and closeLine.
func (p *parser) parseFrontMatter(closeLine int) {
	fm := &p.doc.Front
	fm.Present = true
	fm.Pos = runbook.Pos{Line: 1, Col: 1}
	fm.Keys = map[string]runbook.Pos{}
	text := p.src.text[p.src.lineStarts[1]:p.src.lineStarts[closeLine-1]]

	var root yaml.Node
	if err := decodeYAML(text, &root); err != nil {
		line := 2
		msg := err.Error()
		if m := yamlErrorRe().FindStringSubmatch(msg); m != nil {
			if n, convErr := strconv.Atoi(m[1]); convErr == nil {
				if yamlParserError(m[2]) {
					n++ // yaml.v3 reports parser errors with a 0-based line
				}
				line = min(1+n, closeLine-1)
			}
			msg = m[2]
		}
		p.errorf(runbook.Pos{Line: max(line, 1), Col: 1}, "front-matter",
			"front matter is not valid YAML: %s; fix the YAML on this line", msg)
		return
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return // empty front matter
	}
	m := resolve(root.Content[0])
	if m.Kind != yaml.MappingNode {
		p.errorf(p.yamlPos(m), "front-matter", "front matter must be a mapping of keys like kind: runbook and title: …")
		return
	}
	for k, v := range pairs(m) {
		key := k.Value
		pos := p.yamlPos(k)
		fm.Keys[key] = pos
		switch key {
		case "kind":
			if s, ok := p.scalar(v, key); ok {
				fm.Kind = runbook.Kind(s)
				if s != "" && !slices.Contains(runbook.Kinds, fm.Kind) && !hasPlaceholder(s) {
					p.errorf(p.yamlPos(v), "unknown-kind", "unknown kind %q: use runbook, rollback, checklist or postmortem%s",
						s, DidYouMean(s, kindNames()))
				}
			}
		case "title":
			fm.Title, _ = p.scalar(v, key)
		case "system":
			fm.System, _ = p.scalar(v, key)
		case "operation":
			fm.Operation, _ = p.scalar(v, key)
		case "owner":
			fm.Owner, _ = p.scalar(v, key)
		case "rollback":
			fm.Rollback, _ = p.scalar(v, key)
		case "change":
			if s, ok := p.scalar(v, key); ok {
				fm.Change = runbook.ChangeType(s)
				switch fm.Change {
				case "", runbook.ChangeStandard, runbook.ChangeNormal, runbook.ChangeEmergency:
				default:
					if !hasPlaceholder(s) {
						p.errorf(p.yamlPos(v), "bad-change", "change %q is not valid: use standard, normal or emergency%s",
							s, DidYouMean(s, []string{"standard", "normal", "emergency"}))
					}
				}
			}
		case "lang":
			if s, ok := p.scalar(v, key); ok {
				switch {
				case s == "en" || s == "zh" || s == "":
					fm.Lang = s
				case hasPlaceholder(s):
				default:
					p.errorf(p.yamlPos(v), "bad-lang", "lang %q is not supported: use en or zh", s)
				}
			}
		case "estimate":
			if s, ok := p.scalar(v, key); ok && s != "" {
				fm.Estimate = p.duration(s, p.yamlPos(v), "estimate")
			}
		case "environments":
			fm.Environments = p.stringList(v, key)
		case "tags":
			fm.Tags = p.stringList(v, key)
		case "params":
			p.params(v)
		case "targets":
			p.targets(v)
		case "guards":
			p.guards(v)
		case "watch":
			if s, ok := p.scalar(v, key); ok && s != "" {
				fm.Watch = p.duration(s, p.yamlPos(v), "watch")
				if fm.Watch > MaxWatch {
					p.errorf(p.yamlPos(v), "bad-watch", "watch %s is longer than %s; watch for at most %s and plan a follow-up review", s, MaxWatch, MaxWatch)
				}
			}
		default:
			if strings.HasPrefix(key, "x-") {
				continue
			}
			if s := Suggest(key, FrontMatterKeys); s != "" {
				p.errorf(pos, "unknown-key", "unknown front matter key %q; did you mean %s?", key, s)
			} else {
				p.warnf(pos, "unknown-key", "unknown front matter key %q is ignored; known keys are %s (prefix your own keys with x-)",
					key, strings.Join(FrontMatterKeys, ", "))
			}
		}
	}
}

// yamlParserError recognises the problems libyaml's parser (as opposed to
// its scanner) reports; yaml.v3 prints their line 0-based.
func yamlParserError(msg string) bool {
	for _, p := range []string{
		"did not find expected key", "did not find expected node content",
		"did not find expected ',' or ']'", "did not find expected ',' or '}'",
		"did not find expected '-' indicator", "did not find expected <document start>",
	} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// decodeYAML shields the parse from a panic inside the YAML library so a
// hostile document yields a diagnostic, never a crash.
func decodeYAML(text []byte, root *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return yaml.Unmarshal(text, root)
}

// resolve follows aliases (with a bound, in case of a cycle).
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	if n == nil {
		return &yaml.Node{}
	}
	return n
}

// pairs yields a mapping node's keys with their values, aliases resolved.
func pairs(m *yaml.Node) iter.Seq2[*yaml.Node, *yaml.Node] {
	return func(yield func(k, v *yaml.Node) bool) {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if !yield(m.Content[i], resolve(m.Content[i+1])) {
				return
			}
		}
	}
}

// yamlPos converts a YAML node position into a file position: the YAML
// text starts on line 2, and YAML counts columns in characters.
func (p *parser) yamlPos(n *yaml.Node) runbook.Pos {
	if n == nil || n.Line == 0 {
		return runbook.Pos{Line: 1, Col: 1}
	}
	line := n.Line + 1
	return runbook.Pos{Line: line, Col: p.src.byteCol(line, n.Column)}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// scalar returns a scalar's text; null is "". Anything else is reported.
func (p *parser) scalar(n *yaml.Node, what string) (string, bool) {
	if isNull(n) {
		return "", true
	}
	if n.Kind != yaml.ScalarNode {
		p.errorf(p.yamlPos(n), "front-matter", "%s must be a single value, not a list or a mapping", what)
		return "", false
	}
	return n.Value, true
}

func (p *parser) boolean(n *yaml.Node, what string) bool {
	s, ok := p.scalar(n, what)
	if !ok {
		return false
	}
	switch strings.ToLower(s) {
	case "true", "yes", "on":
		return true
	case "false", "no", "off", "":
		return false
	}
	p.errorf(p.yamlPos(n), "front-matter", "%s must be true or false, not %q", what, s)
	return false
}

func (p *parser) stringList(n *yaml.Node, what string) []string {
	switch {
	case isNull(n):
		return nil
	case n.Kind == yaml.ScalarNode:
		return []string{n.Value}
	case n.Kind == yaml.SequenceNode:
		var out []string
		for _, item := range n.Content {
			if s, ok := p.scalar(resolve(item), what+" item"); ok {
				out = append(out, s)
			}
		}
		return out
	}
	p.errorf(p.yamlPos(n), "front-matter", "%s must be a list like [a, b]", what)
	return nil
}

func (p *parser) duration(s string, pos runbook.Pos, what string) time.Duration {
	if hasPlaceholder(s) {
		return 0
	}
	d, err := runbook.ParseDuration(s)
	if err != nil {
		p.errorf(pos, "bad-duration", "%s: %v", what, err)
	}
	return d
}

func (p *parser) params(n *yaml.Node) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(p.yamlPos(n), "bad-param", "params must be a mapping of name → {type, required, default, …}")
		return
	}
	for k, v := range pairs(n) {
		prm := runbook.Param{Name: k.Value, Type: runbook.ParamString, Pos: p.yamlPos(k)}
		if err := runbook.CheckEnvName(prm.Name); err != nil {
			p.errorf(prm.Pos, "bad-param", "parameter %v", err)
		}
		var typePos = prm.Pos
		var defaultPos runbook.Pos
		switch {
		case isNull(v):
		case v.Kind == yaml.ScalarNode: // shorthand: "name: int"
			prm.Type = runbook.ParamType(v.Value)
			typePos = p.yamlPos(v)
		case v.Kind == yaml.MappingNode:
			for fk, fv := range pairs(v) {
				what := "params." + prm.Name + "." + fk.Value
				switch fk.Value {
				case "type":
					s, _ := p.scalar(fv, what)
					prm.Type = runbook.ParamType(s)
					typePos = p.yamlPos(fv)
				case "required":
					prm.Required = p.boolean(fv, what)
				case "default":
					prm.Default, prm.HasDefault = p.scalar(fv, what)
					if isNull(fv) {
						prm.HasDefault = false
					}
					defaultPos = p.yamlPos(fv)
				case "allowed":
					prm.Allowed = p.stringList(fv, what)
				case "description":
					prm.Description, _ = p.scalar(fv, what)
				case "secret":
					prm.Secret = p.boolean(fv, what)
				default:
					p.errorf(p.yamlPos(fk), "bad-param", "unknown parameter field %q: use %s%s",
						fk.Value, strings.Join(paramFields, ", "), DidYouMean(fk.Value, paramFields))
				}
			}
		default:
			p.errorf(p.yamlPos(v), "bad-param", "parameter %s must be a type (string, int, …) or a mapping {type, required, default, …}", prm.Name)
		}
		if !slices.Contains(runbook.ParamTypes, prm.Type) && !hasPlaceholder(string(prm.Type)) {
			p.errorf(typePos, "bad-param", "parameter %s: unknown type %q: use %s%s", prm.Name, prm.Type,
				joinParamTypes(), DidYouMean(string(prm.Type), paramTypeNames()))
		}
		if prm.Type == runbook.ParamSecret {
			prm.Secret = true
		}
		if prm.Type == runbook.ParamEnum && len(prm.Allowed) == 0 {
			p.errorf(typePos, "bad-param", "parameter %s is an enum but lists no allowed values; add allowed: [a, b]", prm.Name)
		}
		knownType := slices.Contains(runbook.ParamTypes, prm.Type)
		if prm.HasDefault && !hasPlaceholder(prm.Default) {
			// Required is not the default's concern: a required parameter
			// with a default is warned about below.
			check := prm
			check.Required = false
			if _, err := runbook.CheckParam(check, prm.Default); err != nil && knownType {
				msg := err.Error()
				if pe, ok := errors.AsType[*runbook.ParamError](err); ok {
					msg = pe.Message
				}
				p.errorf(defaultPos, "bad-param", "default of parameter %s: %s", prm.Name, msg)
			}
			if prm.Secret {
				p.errorf(defaultPos, "bad-param", "parameter %s is secret and must not have a default in the document; supply it at run time", prm.Name)
			}
		}
		if prm.Required && prm.HasDefault {
			p.warnf(prm.Pos, "bad-param", "parameter %s is required but has a default, so it can never be missing; drop one of them", prm.Name)
		}
		p.doc.Front.Params = append(p.doc.Front.Params, prm)
	}
}

func (p *parser) targets(n *yaml.Node) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(p.yamlPos(n), "bad-target", "targets must be a mapping of name → tag selector, e.g. db: {role: db}")
		return
	}
	for k, v := range pairs(n) {
		t := runbook.Target{Name: k.Value, Selector: map[string]string{}, Pos: p.yamlPos(k)}
		if !targetName().MatchString(t.Name) {
			p.errorf(t.Pos, "bad-target", "target name %q must be letters, digits, _, . or -", t.Name)
		}
		if t.Name == runbook.TargetLocal {
			p.errorf(t.Pos, "bad-target", "target local is built in (the machine opsbook runs on); choose another name")
		}
		switch {
		case isNull(v):
		case v.Kind == yaml.MappingNode:
			for tk, tv := range pairs(v) {
				if s, ok := p.scalar(tv, "targets."+t.Name+"."+tk.Value); ok {
					t.Selector[tk.Value] = s
				}
			}
		default:
			p.errorf(p.yamlPos(v), "bad-target", "target %s must be a tag selector mapping, e.g. {role: db}", t.Name)
		}
		p.doc.Front.Targets = append(p.doc.Front.Targets, t)
	}
}

func (p *parser) guards(n *yaml.Node) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(p.yamlPos(n), "bad-guard", "guards must be a list of {name, query, threshold, interval, on_breach}")
		return
	}
	for _, item := range n.Content {
		item = resolve(item)
		g := runbook.Guard{Pos: p.yamlPos(item), Interval: DefaultGuardInterval, OnBreach: "pause"}
		if item.Kind != yaml.MappingNode {
			p.errorf(g.Pos, "bad-guard", "each guard must be a mapping {name, query, threshold, interval, on_breach}")
			continue
		}
		var hasThreshold bool
		for fk, fv := range pairs(item) {
			what := "guard " + fk.Value
			s, ok := p.scalar(fv, what)
			if !ok {
				continue
			}
			switch fk.Value {
			case "name":
				g.Name = s
			case "query":
				g.Query = s
			case "threshold":
				hasThreshold = true
				if hasPlaceholder(s) {
					continue
				}
				m := thresholdRe().FindStringSubmatch(s)
				if m == nil {
					p.errorf(p.yamlPos(fv), "bad-threshold", "threshold %q must be a comparison and a number, quoted, like \"> 5\" or \"<= 0.99\"", s)
					continue
				}
				g.Op = m[1]
				g.Threshold, _ = strconv.ParseFloat(m[2], 64)
			case "interval":
				g.Interval = p.duration(s, p.yamlPos(fv), "guard interval")
			case "on_breach":
				if hasPlaceholder(s) {
					continue
				}
				if !slices.Contains(guardOnBreach, s) {
					p.errorf(p.yamlPos(fv), "bad-guard", "on_breach %q is not valid: use pause or rollback%s", s, DidYouMean(s, guardOnBreach))
					continue
				}
				g.OnBreach = s
			default:
				p.errorf(p.yamlPos(fk), "bad-guard", "unknown guard field %q: use %s%s",
					fk.Value, strings.Join(guardFields, ", "), DidYouMean(fk.Value, guardFields))
			}
		}
		if g.Name == "" {
			p.errorf(g.Pos, "bad-guard", "guard needs a name")
		}
		if g.Query == "" {
			p.errorf(g.Pos, "bad-guard", "guard %s needs a query (PromQL)", g.Name)
		}
		if !hasThreshold {
			p.errorf(g.Pos, "bad-guard", "guard %s needs a threshold like \"> 5\"", g.Name)
		}
		p.doc.Front.Guards = append(p.doc.Front.Guards, g)
	}
}

func kindNames() []string {
	var out []string
	for _, k := range runbook.Kinds {
		out = append(out, string(k))
	}
	return out
}

func paramTypeNames() []string {
	var out []string
	for _, t := range runbook.ParamTypes {
		out = append(out, string(t))
	}
	return out
}

func joinParamTypes() string { return strings.Join(paramTypeNames(), ", ") }
