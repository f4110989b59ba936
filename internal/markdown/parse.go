// Package markdown reads a runbook document — CommonMark and GFM with YAML
// front matter — into a runbook.Document that records the source position
// of every section, step, block and attribute. The syntax is specified in
// docs/runbook-format.md.
//
// Parsing is deterministic and never panics: every problem in the input
// becomes a runbook.Diagnostic with a file:line:col position.
package markdown

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

	"github.com/yuin/goldmark/ast"
	gmparser "github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/text"

	"github.com/opsbook/opsbook/internal/runbook"
)

// blocks is the Markdown parser: CommonMark's block structure only.
// opsbook reads headings, fences and paragraphs by their source lines, so
// inline markup (links, emphasis, code spans), link reference definitions
// and GFM tables are left as text: their parsers backtrack, and a 1 MiB
// line of brackets took goldmark minutes and gigabytes. It is shared: a
// goldmark parser keeps no state between documents.
var blocks = sync.OnceValue(func() gmparser.Parser {
	return gmparser.NewParser(
		gmparser.WithBlockParsers(gmparser.DefaultBlockParsers()...),
		gmparser.WithInlineParsers(),
		gmparser.WithParagraphTransformers(),
	)
})

const (
	placeholderOpen  = "<<FILL:"
	placeholderClose = ">>"
)

func hasPlaceholder(s string) bool { return strings.Contains(s, placeholderOpen) }

// ParseFile reads and parses the document at path. The error is only for
// a file that cannot be read; problems in the document are diagnostics.
func ParseFile(path string) (*runbook.Document, []runbook.Diagnostic, error) {
	src, err := ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read runbook %s: %w", path, err)
	}
	doc, diags := Parse(path, src)
	return doc, diags, nil
}

// Parse parses src, naming it path in the document and its diagnostics.
// It always returns a document, as complete as the input allows.
func Parse(path string, src []byte) (*runbook.Document, []runbook.Diagnostic) {
	p := &parser{
		path: path,
		doc:  &runbook.Document{Path: path, Source: src},
	}
	if len(src) > MaxFileSize {
		p.src = newSource(nil)
		p.tooLarge()
		return p.doc, p.diags
	}
	p.src = newSource(src)
	body := p.src.text
	bodyLine := 1
	switch closeLine := splitFrontMatter(p.src); {
	case closeLine > 0:
		p.parseFrontMatter(closeLine)
		// Blank the front matter out, keeping its bytes' count, so that
		// goldmark's offsets stay offsets into the file.
		bodyLine = closeLine + 1
		end := p.src.offset(closeLine+1, 1)
		body = bytes.Clone(p.src.text)
		for i := range end {
			if body[i] != '\n' {
				body[i] = ' '
			}
		}
	case closeLine < 0:
		p.errorf(runbook.Pos{Line: 1, Col: 1}, "front-matter",
			"the front matter opened here is never closed; add a line with --- after its last key")
	}
	p.placeholders()
	if p.checkNesting(body, bodyLine) {
		p.body(body)
	}
	p.detectLang()
	if p.doc.Front.Title != "" {
		p.doc.Title = p.doc.Front.Title
		if pos, ok := p.doc.Front.Keys["title"]; ok {
			p.doc.TitlePos = pos
		}
	}
	runbook.SortDiagnostics(p.diags)
	return p.doc, p.diags
}

type parser struct {
	path  string
	src   *source
	doc   *runbook.Document
	diags []runbook.Diagnostic

	// lang votes from recognised H2 headings
	zhVotes, enVotes int
}

func (p *parser) errorf(pos runbook.Pos, rule, format string, args ...any) {
	p.add(runbook.SeverityError, pos, rule, format, args...)
}

func (p *parser) warnf(pos runbook.Pos, rule, format string, args ...any) {
	p.add(runbook.SeverityWarning, pos, rule, format, args...)
}

func (p *parser) add(sev runbook.Severity, pos runbook.Pos, rule, format string, args ...any) {
	p.diags = append(p.diags, runbook.Diagnostic{
		File: p.path, Pos: pos, Severity: sev, Rule: rule, Message: fmt.Sprintf(format, args...),
	})
}

// placeholders records every <<FILL: …>> marker, in prose, front matter or code.
func (p *parser) placeholders() {
	t := p.src.text
	for off := 0; ; {
		i := bytes.Index(t[off:], []byte(placeholderOpen))
		if i < 0 {
			return
		}
		start := off + i
		rest := t[start+len(placeholderOpen):]
		if nl := bytes.IndexByte(rest, '\n'); nl >= 0 {
			rest = rest[:nl]
		}
		what := rest
		if j := bytes.Index(rest, []byte(placeholderClose)); j >= 0 {
			what = rest[:j]
		}
		p.doc.Placeholder = append(p.doc.Placeholder, p.src.pos(start))
		p.doc.PlaceholderText = append(p.doc.PlaceholderText, strings.TrimSpace(string(what)))
		off = start + len(placeholderOpen)
	}
}

// stepBuilder collects a step's blocks until the step ends.
type stepBuilder struct {
	step   runbook.Step
	blocks []*runbook.Block
	infos  []fenceInfo
	prose  []string
}

func (p *parser) body(body []byte) {
	root := blocks().Parse(text.NewReader(body))
	var (
		inSteps bool
		cur     *stepBuilder
	)
	// A document whose kind is missing or misspelt still has its steps
	// checked: the kind's own error is reported once, not as many
	// "block outside a step" warnings.
	isStepsSection := func(role runbook.SectionRole) bool {
		if sr, ok := runbook.StepsSection[p.doc.Front.Kind]; ok {
			return role == sr
		}
		switch p.doc.Front.Kind {
		case runbook.KindChecklist, runbook.KindPostmortem:
			return false
		}
		return role == runbook.SectionSteps || role == runbook.SectionRollbackSteps
	}
	finish := func() {
		if cur != nil {
			p.finishStep(cur)
			cur = nil
		}
	}
	for n := root.FirstChild(); n != nil; n = n.NextSibling() {
		if h, ok := n.(*ast.Heading); ok {
			title := headingText(h, body)
			pos := p.nodePos(h)
			sec := runbook.Section{Title: title, Level: h.Level, Pos: pos}
			if h.Level <= 2 {
				finish()
				inSteps = false
			}
			if h.Level == 1 && p.doc.Title == "" {
				p.doc.Title, p.doc.TitlePos = title, pos
			}
			if h.Level == 2 {
				role, lang := matchSection(title)
				sec.Role = role
				switch lang {
				case "zh":
					p.zhVotes++
				case "en":
					p.enVotes++
				}
				inSteps = role != "" && isStepsSection(role)
			}
			if h.Level == 3 && inSteps {
				finish()
				cur = &stepBuilder{step: runbook.Step{Title: title, Pos: pos, Index: len(p.doc.Steps)}}
			}
			p.doc.Sections = append(p.doc.Sections, sec)
			continue
		}
		_ = ast.Walk(n, func(c ast.Node, entering bool) (ast.WalkStatus, error) {
			if !entering {
				return ast.WalkContinue, nil
			}
			switch c := c.(type) {
			case *ast.FencedCodeBlock:
				p.fence(c, body, cur)
				return ast.WalkSkipChildren, nil
			case *ast.Paragraph:
				if cur != nil {
					cur.prose = append(cur.prose, strings.TrimSpace(string(linesText(c, body))))
				}
				return ast.WalkSkipChildren, nil
			}
			return ast.WalkContinue, nil
		})
	}
	finish()
}

// fence turns a fenced code block into a runbook.Block and files it under
// the current step, or checks it stands alone when there is no step.
func (p *parser) fence(f *ast.FencedCodeBlock, body []byte, cur *stepBuilder) {
	b := &runbook.Block{Pos: p.nodePos(f)}
	var fi fenceInfo
	if f.Info != nil {
		seg := f.Info.Segment
		fi = p.parseInfo(string(seg.Value(body)), seg.Start)
	}
	b.Lang, b.Attrs = fi.lang, fi.attrs
	b.Body = string(linesText(f, body))
	b.BodyLine = b.Pos.Line + 1
	if f.Lines().Len() > 0 {
		b.BodyLine = p.src.pos(f.Lines().At(0).Start).Line
	}
	b.Role = classify(fi, cur != nil)
	if cur == nil {
		if b.Role != runbook.BlockPlain {
			p.warnf(b.Pos, "block-outside-step", "this %s block is not inside a step, so it never runs; put it under an H3 step heading in the steps section", roleName(b.Role))
		}
		p.checkAttrs(b, b.Role == runbook.BlockAction)
		return
	}
	cur.blocks = append(cur.blocks, b)
	cur.infos = append(cur.infos, fi)
}

// finishStep assigns each block its place in the step, reads the step's
// attributes from its primary block, and derives the step id.
func (p *parser) finishStep(sb *stepBuilder) {
	s := &sb.step
	s.Blocks = sb.blocks
	s.Prose = strings.Join(sb.prose, "\n\n")
	duplicate := map[*runbook.Block]bool{}
	for _, b := range sb.blocks {
		if b.Role != runbook.BlockPlain && b.Lang == "" && runsCommand(b.Role) {
			p.errorf(b.Pos, "missing-language", "name the interpreter of this %s block, e.g. ```sh {…}", roleName(b.Role))
		}
		slot := slotFor(s, b.Role)
		if slot == nil {
			continue
		}
		if *slot != nil {
			if b.Role == runbook.BlockAction {
				p.errorf(b.Pos, "duplicate-action", "step %q already has an action at line %d; a step runs one command block — split it into two steps or merge the blocks",
					s.Title, (*slot).Pos.Line)
			} else {
				p.errorf(b.Pos, "duplicate-block", "step %q already has %s block at line %d; keep one",
					s.Title, withArticle(roleName(b.Role)), (*slot).Pos.Line)
			}
			duplicate[b] = true
			continue
		}
		*slot = b
	}
	primary := s.Primary()
	for _, b := range sb.blocks {
		// A duplicate is already an error; only its unknown attributes are worth adding.
		p.checkAttrs(b, b == primary || duplicate[b])
		p.applyBlockAttrs(b)
	}
	if primary != nil {
		p.applyStepAttrs(s, primary)
	}
	if s.Gate != nil {
		p.gateAttrs(s, s.Gate)
	}
	if s.ID == "" {
		s.ID = slugify(s.Title)
	}
	if s.ID == "" {
		s.ID = fmt.Sprintf("step-%d", s.Index+1)
	}
	p.doc.Steps = append(p.doc.Steps, *s)
}

func runsCommand(r runbook.BlockRole) bool {
	return r == runbook.BlockAction || r == runbook.BlockVerify || r == runbook.BlockUntil
}

// detectLang settles Document.Lang: the front matter's, else the language
// most recognised headings are written in.
func (p *parser) detectLang() {
	switch {
	case p.doc.Front.Lang != "":
		p.doc.Lang = p.doc.Front.Lang
	case p.zhVotes > p.enVotes:
		p.doc.Lang = "zh"
	default:
		p.doc.Lang = "en"
	}
}

// headingText is the heading's source text, inline markup included.
func headingText(h *ast.Heading, body []byte) string {
	return strings.TrimSpace(string(linesText(h, body)))
}

func linesText(n ast.Node, body []byte) []byte {
	var b bytes.Buffer
	lines := n.Lines()
	for i := 0; i < lines.Len(); i++ {
		seg := lines.At(i)
		b.Write(seg.Value(body))
	}
	return b.Bytes()
}

// nodePos is where a block node starts: goldmark records the offset of the
// heading's first # or the fence's first backtick.
func (p *parser) nodePos(n ast.Node) runbook.Pos {
	if off := n.Pos(); off >= 0 {
		return p.src.pos(off)
	}
	if n.Lines().Len() > 0 {
		return p.src.pos(n.Lines().At(0).Start)
	}
	return runbook.Pos{Line: 1, Col: 1}
}

// slotFor is where a block of a role lives on a step; nil for plain blocks.
func slotFor(s *runbook.Step, r runbook.BlockRole) **runbook.Block {
	switch r {
	case runbook.BlockAction:
		return &s.Action
	case runbook.BlockVerify:
		return &s.Verify
	case runbook.BlockExpect:
		return &s.Expect
	case runbook.BlockUntil:
		return &s.Until
	case runbook.BlockManual:
		return &s.Manual
	case runbook.BlockGate:
		return &s.Gate
	case runbook.BlockCall:
		return &s.Call
	}
	return nil
}
