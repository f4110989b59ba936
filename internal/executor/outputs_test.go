package executor

import (
	"strings"
	"testing"
)

func TestParseOutputs(t *testing.T) {
	tests := []struct {
		name         string
		data         string
		want         map[string]string
		wantWarnings []string // substrings, one per warning
	}{
		{name: "empty", data: ""},
		{name: "name=value", data: "a=1\nb=two words\n", want: map[string]string{"a": "1", "b": "two words"}},
		{name: "no final newline", data: "a=1", want: map[string]string{"a": "1"}},
		{name: "later line wins", data: "a=1\na=2\n", want: map[string]string{"a": "2"}},
		{name: "empty value", data: "a=\n", want: map[string]string{"a": ""}},
		{name: "value keeps = and spaces", data: "url=http://x/?a=b&c=d \n", want: map[string]string{"url": "http://x/?a=b&c=d "}},
		{name: "blank lines skipped", data: "\n  \na=1\n\n", want: map[string]string{"a": "1"}},
		{name: "utf-8 value", data: "msg=部署完成\n", want: map[string]string{"msg": "部署完成"}},
		{
			name: "heredoc",
			data: "notes<<EOF\nline one\n\nline = three\nEOF\nafter=1\n",
			want: map[string]string{"notes": "line one\n\nline = three", "after": "1"},
		},
		{name: "empty heredoc", data: "n<<END\nEND\n", want: map[string]string{"n": ""}},
		{name: "heredoc delimiter must be alone", data: "n<<END\n END\nEND\n", want: map[string]string{"n": " END"}},
		{name: "<< inside a value", data: "a=x<<y\n", want: map[string]string{"a": "x<<y"}},
		{
			name:         "line without =",
			data:         "a=1\njust text\nb=2\n",
			want:         map[string]string{"a": "1", "b": "2"},
			wantWarnings: []string{`line 2: "just text" is neither name=value nor name<<DELIMITER`},
		},
		{
			name:         "invalid name",
			data:         "my-name=1\n2x=3\nok_2=4\n",
			want:         map[string]string{"ok_2": "4"},
			wantWarnings: []string{`line 1: output name "my-name" is not valid`, `line 2: output name "2x" is not valid`},
		},
		{
			name:         "empty name",
			data:         "=1\n",
			wantWarnings: []string{"line 1: "},
		},
		{
			name:         "heredoc without delimiter",
			data:         "n<<\nx=1\n",
			want:         map[string]string{"x": "1"},
			wantWarnings: []string{`line 1: "n<<" has no delimiter`},
		},
		{
			name:         "unterminated heredoc",
			data:         "a=1\nn<<EOF\nx=2\n",
			want:         map[string]string{"a": "1"},
			wantWarnings: []string{`line 2: delimiter "EOF" of output "n" never appears`},
		},
		{
			name:         "too large",
			data:         "a=" + strings.Repeat("x", MaxOutputsSize) + "\n",
			wantWarnings: []string{"no outputs were read"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warnings := ParseOutputs([]byte(tt.data))
			if !equalMaps(got, tt.want) {
				t.Errorf("outputs = %q, want %q", got, tt.want)
			}
			if len(warnings) != len(tt.wantWarnings) {
				t.Fatalf("warnings = %q, want %d", warnings, len(tt.wantWarnings))
			}
			for i, w := range tt.wantWarnings {
				if !strings.Contains(warnings[i], w) || !strings.HasPrefix(warnings[i], "$OPSBOOK_OUTPUT") {
					t.Errorf("warning %d = %q, want it to contain %q", i, warnings[i], w)
				}
			}
		})
	}
}
