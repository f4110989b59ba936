package server

import (
	"bytes"
	"html"
	"regexp"
	"strings"
	"sync"

	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/renderer"
	"github.com/yuin/goldmark/util"
)

// The renderer and the sanitiser are built on first use, not at start-up:
// every command of the binary (a plain `opsbook run` too) would pay for
// them.
var (
	markdownRenderer = sync.OnceValue(func() goldmark.Markdown {
		return goldmark.New(
			goldmark.WithExtensions(extension.GFM),
			goldmark.WithRendererOptions(renderer.WithNodeRenderers(util.Prioritized(&fenceRenderer{}, 100))),
		)
	})
	// htmlPolicy is the sanitiser every rendered document passes through:
	// user-generated content rules, plus the highlighter's classes.
	htmlPolicy = sync.OnceValue(func() *bluemonday.Policy {
		p := bluemonday.UGCPolicy()
		p.AllowAttrs("class").Matching(regexp.MustCompile(`^(hl-[a-z]|language-[A-Za-z0-9_+-]+|fence)$`)).OnElements("span", "code", "pre")
		p.AllowAttrs("data-info").Matching(regexp.MustCompile(`^[^<>"]*$`)).OnElements("pre")
		return p
	})
)

// RenderMarkdown renders a document (without its front matter) as GFM with
// highlighted code, then sanitises it: no script, event handler or
// javascript: URL from a document survives; they show as text or vanish.
func RenderMarkdown(src []byte) string {
	body := stripFrontMatter(src)
	var buf bytes.Buffer
	if err := markdownRenderer().Convert(body, &buf); err != nil {
		return htmlPolicy().Sanitize("<pre>" + html.EscapeString(string(body)) + "</pre>")
	}
	return string(htmlPolicy().SanitizeBytes(buf.Bytes()))
}

// stripFrontMatter drops the front matter by the parser's rule
// (internal/markdown): a first line "---" and the next line that is "---"
// or "...", trailing blanks allowed; unclosed, it is kept as text.
func stripFrontMatter(src []byte) []byte {
	src = bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))
	first, rest, ok := bytes.Cut(src, []byte("\n"))
	if !ok || string(bytes.TrimRight(first, " \t\r")) != "---" {
		return src
	}
	for len(rest) > 0 {
		line, after, _ := bytes.Cut(rest, []byte("\n"))
		if l := string(bytes.TrimRight(line, " \t\r")); l == "---" || l == "..." {
			return after
		}
		rest = after
	}
	return src
}

// fenceRenderer renders fenced code blocks with highlighter spans and the
// opsbook attributes ({id=… target=…}) shown above the code.
type fenceRenderer struct{}

func (r *fenceRenderer) RegisterFuncs(reg renderer.NodeRendererFuncRegisterer) {
	reg.Register(ast.KindFencedCodeBlock, r.render)
}

func (r *fenceRenderer) render(w util.BufWriter, src []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
	if !entering {
		return ast.WalkContinue, nil
	}
	fence := n.(*ast.FencedCodeBlock)
	lang := ""
	info := ""
	if fence.Info != nil {
		info = string(fence.Info.Segment.Value(src))
		lang, _, _ = strings.Cut(info, " ")
		lang, _, _ = strings.Cut(lang, "{")
	}
	var code strings.Builder
	lines := fence.Lines()
	for i := 0; i < lines.Len(); i++ {
		seg := lines.At(i)
		code.Write(seg.Value(src))
	}
	w.WriteString(`<pre class="fence"`)
	if info != "" {
		w.WriteString(` data-info="` + html.EscapeString(info) + `"`)
	}
	w.WriteString(`>`)
	if info != "" && strings.Contains(info, "{") {
		w.WriteString(`<span class="hl-c">` + html.EscapeString(info) + "</span>\n")
	}
	w.WriteString(`<code`)
	if lang != "" {
		w.WriteString(` class="language-` + html.EscapeString(lang) + `"`)
	}
	w.WriteString(`>`)
	w.WriteString(Highlight(lang, code.String()))
	w.WriteString("</code></pre>\n")
	return ast.WalkSkipChildren, nil
}

var shellKeywords = map[string]bool{
	"if": true, "then": true, "else": true, "elif": true, "fi": true, "for": true, "while": true, "until": true,
	"do": true, "done": true, "case": true, "esac": true, "in": true, "function": true, "return": true,
	"exit": true, "export": true, "local": true, "set": true, "echo": true, "test": true, "readonly": true,
}

var sqlKeywords = map[string]bool{
	"select": true, "from": true, "where": true, "insert": true, "into": true, "update": true, "delete": true,
	"create": true, "drop": true, "alter": true, "table": true, "index": true, "and": true, "or": true, "not": true,
	"null": true, "values": true, "set": true, "begin": true, "commit": true, "rollback": true, "join": true,
	"on": true, "as": true, "order": true, "by": true, "group": true, "limit": true, "database": true,
}

// Highlight escapes code and wraps comments, strings, variables, numbers
// and keywords in spans (hl-c, hl-s, hl-v, hl-n, hl-k) for shell and SQL;
// other languages are only escaped. A tiny scanner instead of a library:
// runbooks are mostly shell, and the output must stay plain text inside.
func Highlight(lang, code string) string {
	var kw map[string]bool
	comment := "#"
	switch strings.ToLower(lang) {
	case "sh", "bash", "shell", "zsh", "console":
		kw = shellKeywords
	case "sql", "psql", "postgresql", "mysql":
		kw, comment = sqlKeywords, "--"
	default:
		return html.EscapeString(code)
	}
	var b strings.Builder
	span := func(class, s string) {
		b.WriteString(`<span class="` + class + `">` + html.EscapeString(s) + `</span>`)
	}
	for i := 0; i < len(code); {
		c := code[i]
		switch {
		case strings.HasPrefix(code[i:], comment) && (i == 0 || code[i-1] == ' ' || code[i-1] == '\t' || code[i-1] == '\n'):
			j := strings.IndexByte(code[i:], '\n')
			if j < 0 {
				j = len(code) - i
			}
			span("hl-c", code[i:i+j])
			i += j
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(code) && code[j] != c {
				if code[j] == '\\' && c == '"' {
					j++
				}
				j++
			}
			j = min(j+1, len(code))
			span("hl-s", code[i:j])
			i = j
		case c == '$' && kw["echo"]:
			j := i + 1
			if j < len(code) && code[j] == '{' {
				for j < len(code) && code[j] != '}' {
					j++
				}
				j = min(j+1, len(code))
			} else {
				for j < len(code) && (isWordByte(code[j]) || (j == i+1 && strings.IndexByte("?#@*!$0123456789", code[j]) >= 0)) {
					j++
				}
			}
			span("hl-v", code[i:j])
			i = j
		case isWordByte(c):
			j := i
			for j < len(code) && isWordByte(code[j]) {
				j++
			}
			word := code[i:j]
			prevWord := i > 0 && (isWordByte(code[i-1]) || code[i-1] == '-' || code[i-1] == '.' || code[i-1] == '/')
			switch {
			case prevWord:
				b.WriteString(html.EscapeString(word))
			case kw[strings.ToLower(word)]:
				span("hl-k", word)
			case word[0] >= '0' && word[0] <= '9':
				span("hl-n", word)
			default:
				b.WriteString(html.EscapeString(word))
			}
			i = j
		default:
			b.WriteString(html.EscapeString(string(c)))
			i++
		}
	}
	return b.String()
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}
