package lint

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/opsbook/opsbook/internal/runbook"
)

// WriteText prints one "file:line:col: severity: message" line per diagnostic.
func WriteText(w io.Writer, diags []runbook.Diagnostic) error {
	bw := bufio.NewWriter(w)
	for _, d := range diags {
		fmt.Fprintln(bw, d.String())
	}
	return bw.Flush()
}

// jsonDiagnostic is the flat shape of --format json, easy to jq.
type jsonDiagnostic struct {
	File     string           `json:"file"`
	Line     int              `json:"line"`
	Col      int              `json:"col"`
	Severity runbook.Severity `json:"severity"`
	Rule     string           `json:"rule"`
	Message  string           `json:"message"`
}

// WriteJSON prints {"diagnostics": […], "errors": n, "warnings": n}.
func WriteJSON(w io.Writer, diags []runbook.Diagnostic) error {
	out := struct {
		Diagnostics []jsonDiagnostic `json:"diagnostics"`
		Errors      int              `json:"errors"`
		Warnings    int              `json:"warnings"`
	}{Diagnostics: []jsonDiagnostic{}}
	for _, d := range diags {
		out.Diagnostics = append(out.Diagnostics, jsonDiagnostic{d.File, d.Pos.Line, d.Pos.Col, d.Severity, d.Rule, d.Message})
		if d.Severity == runbook.SeverityError {
			out.Errors++
		} else {
			out.Warnings++
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// WriteSARIF prints a SARIF 2.1.0 log that GitHub code scanning accepts.
// Artifact URIs are relative to baseDir. SARIF counts columns in UTF-16
// code units, so byte columns are converted using the files' text.
func WriteSARIF(w io.Writer, diags []runbook.Diagnostic, baseDir, version string) error {
	type message struct {
		Text string `json:"text"`
	}
	type rule struct {
		ID                   string  `json:"id"`
		ShortDescription     message `json:"shortDescription"`
		DefaultConfiguration struct {
			Level string `json:"level"`
		} `json:"defaultConfiguration"`
	}
	type region struct {
		StartLine   int `json:"startLine"`
		StartColumn int `json:"startColumn"`
	}
	type location struct {
		PhysicalLocation struct {
			ArtifactLocation struct {
				URI       string `json:"uri"`
				URIBaseID string `json:"uriBaseId,omitempty"`
			} `json:"artifactLocation"`
			Region region `json:"region"`
		} `json:"physicalLocation"`
	}
	type result struct {
		RuleID    string     `json:"ruleId"`
		RuleIndex int        `json:"ruleIndex"`
		Level     string     `json:"level"`
		Message   message    `json:"message"`
		Locations []location `json:"locations"`
	}
	var rules []rule
	index := map[string]int{}
	for i, r := range Rules {
		var sr rule
		sr.ID, sr.ShortDescription.Text = r.ID, r.Description
		sr.DefaultConfiguration.Level = string(r.Severity)
		rules = append(rules, sr)
		index[r.ID] = i
	}
	lines := lineCache{}
	results := []result{}
	for _, d := range diags {
		ri, ok := index[d.Rule]
		if !ok {
			var sr rule
			sr.ID, sr.ShortDescription.Text = d.Rule, d.Rule
			sr.DefaultConfiguration.Level = string(d.Severity)
			ri = len(rules)
			rules = append(rules, sr)
			index[d.Rule] = ri
		}
		var loc location
		loc.PhysicalLocation.ArtifactLocation.URI = artifactURI(d.File, baseDir)
		loc.PhysicalLocation.ArtifactLocation.URIBaseID = "%SRCROOT%"
		loc.PhysicalLocation.Region = region{StartLine: max(d.Pos.Line, 1), StartColumn: lines.utf16Col(d.File, d.Pos)}
		results = append(results, result{RuleID: d.Rule, RuleIndex: ri, Level: string(d.Severity),
			Message: message{d.Message}, Locations: []location{loc}})
	}
	log := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool": map[string]any{"driver": map[string]any{
				"name":           "opsbook",
				"informationUri": "https://github.com/opsbook/opsbook",
				"version":        version,
				"rules":          rules,
			}},
			"columnKind": "utf16CodeUnits",
			"results":    results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

func artifactURI(file, baseDir string) string {
	if abs, err := filepath.Abs(file); err == nil {
		if base, err := filepath.Abs(baseDir); err == nil {
			if rel, err := filepath.Rel(base, abs); err == nil {
				file = rel
			}
		}
	}
	return (&url.URL{Path: filepath.ToSlash(file)}).String()
}

// lineCache converts byte columns to UTF-16 columns, reading each file once.
type lineCache map[string][][]byte

func (c lineCache) utf16Col(file string, pos runbook.Pos) int {
	lines, ok := c[file]
	if !ok {
		if src, err := os.ReadFile(file); err == nil {
			lines = splitLines(src)
		}
		c[file] = lines
	}
	if pos.Line < 1 || pos.Line > len(lines) {
		return max(pos.Col, 1)
	}
	line := lines[pos.Line-1]
	if pos.Line == 1 && len(line) >= 3 && string(line[:3]) == "\xef\xbb\xbf" {
		line = line[3:]
	}
	n, col := 0, 1
	for n < len(line) && n < pos.Col-1 {
		r, size := utf8.DecodeRune(line[n:])
		n += size
		col++
		if r >= 0x10000 {
			col++
		}
	}
	return col + max(pos.Col-1-n, 0)
}

// splitLines splits on \n, \r\n and lone \r, like the parser.
func splitLines(src []byte) [][]byte {
	var out [][]byte
	start := 0
	for i := 0; i < len(src); i++ {
		switch src[i] {
		case '\n':
			out = append(out, src[start:i])
			start = i + 1
		case '\r':
			out = append(out, src[start:i])
			if i+1 < len(src) && src[i+1] == '\n' {
				i++
			}
			start = i + 1
		}
	}
	return append(out, src[start:])
}
