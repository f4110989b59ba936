package server

import (
	"strings"
	"testing"
)

// TestRenderMarkdown covers what the API's runbook HTML and the UI's
// runbook page both rely on: front matter dropped, code highlighted, and
// nothing from the document able to run.
func TestRenderMarkdown(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		want      []string
		forbidden []string
	}{
		{"front matter dropped", "---\ntitle: x\nsecret_marker: 1\n---\n# Title\n", []string{"<h1", "Title"}, []string{"secret_marker"}},
		{"CRLF front matter dropped", "---\r\ntitle: x\r\n---\r\nbody\r\n", []string{"body"}, []string{"title: x"}},
		{"front matter closed by ... dropped", "---  \ntitle: x\n...\nbody\n", []string{"body"}, []string{"title: x"}},
		{"unterminated front matter kept", "---\ntitle: x\n", []string{"title: x"}, nil},
		{"script removed", "hi <script>alert(1)</script>\n", []string{"hi"}, []string{"<script", "alert(1)</script>"}},
		{"event handler removed", "<img src=\"x\" onerror=\"alert(1)\">\n", nil, []string{"onerror"}},
		{"javascript URL removed", "[x](javascript:alert(1))\n", nil, []string{"javascript:"}},
		{"fenced code highlighted, attributes shown", "```bash {id=dump target=db}\necho hi # note\n```\n",
			[]string{`class="fence"`, `data-info="bash {id=dump target=db}"`, `class="hl-c"`, "echo"}, nil},
		{"GFM table", "| a | b |\n|---|---|\n| 1 | 2 |\n", []string{"<table>", "<td>1</td>"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RenderMarkdown([]byte(tt.src))
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			for _, f := range tt.forbidden {
				if strings.Contains(got, f) {
					t.Errorf("output contains %q:\n%s", f, got)
				}
			}
		})
	}
}
