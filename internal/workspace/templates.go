package workspace

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"text/template"
	"time"

	"github.com/opsbook/opsbook/internal/runbook"
)

// builtin holds the document templates (templates/<lang>/<kind>.md) and
// the runbook library (library/<name>.md and library/<name>-rollback.md).
//
//go:embed templates library
var builtin embed.FS

// Template names, one per document of a task.
const (
	TemplateRunbook    = "runbook.md"
	TemplateRollback   = "rollback.md"
	TemplateChecklist  = "checklist.md"
	TemplatePostmortem = "postmortem.md"
)

// Langs are the languages templates exist in.
var Langs = []string{"en", "zh"}

// Files names the four documents of a task.
type Files struct {
	Runbook    string `json:"runbook"`
	Rollback   string `json:"rollback"`
	Checklist  string `json:"checklist"`
	Postmortem string `json:"postmortem"`
}

// FilesFor returns the conventional document names of a task.
func FilesFor(task string) Files {
	return Files{
		Runbook:    task + "-runbook.md",
		Rollback:   task + "-rollback.md",
		Checklist:  task + "-checklist.md",
		Postmortem: task + "-postmortem-template.md",
	}
}

// StepRow is one runbook step as the checklist and postmortem list it.
type StepRow struct {
	N        int
	ID       string
	Title    string
	Estimate string
	Target   string
}

// DocData is what a template is executed with.
type DocData struct {
	Task         string
	Title        string
	Description  string
	System       string
	Operation    string
	Slug         string
	Date         string
	Lang         string
	Environments []string
	Files        Files
	Library      string    // the library runbook the task started from, if any
	Steps        []StepRow // the runbook's steps (checklist and postmortem only)
}

var templateFuncs = template.FuncMap{
	"join": strings.Join,
}

// Template returns the text of a document template and where it came
// from: ops/templates/<lang>/<name>, then ops/templates/<name>, then the
// built-in one.
func (w *Workspace) Template(lang, name string) (text, from string, err error) {
	for _, rel := range []string{path.Join(TemplatesDir, lang, name), path.Join(TemplatesDir, name)} {
		data, err := os.ReadFile(w.Path(rel))
		if err == nil {
			return string(data), rel, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("read template override: %w", err)
		}
	}
	data, err := builtin.ReadFile(path.Join("templates", lang, name))
	if err != nil {
		return "", "", fmt.Errorf("no built-in template %s for language %q (have %s)", name, lang, strings.Join(Langs, ", "))
	}
	return string(data), "built-in " + lang + "/" + name, nil
}

// renderTemplate executes a template text with data; from names it in errors.
func renderTemplate(from, text string, data DocData) ([]byte, error) {
	t, err := template.New(from).Funcs(templateFuncs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w; fix the template or delete the override", from, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("template %s: %w; fix the template or delete the override", from, err)
	}
	return buf.Bytes(), nil
}

// stepRows lists a parsed runbook's steps for the checklist.
func stepRows(doc *runbook.Document) []StepRow {
	rows := make([]StepRow, 0, len(doc.Steps))
	for i, s := range doc.Steps {
		est := "—"
		if s.Estimate > 0 {
			est = formatEstimate(s.Estimate)
		} else if s.Until != nil && s.Until.Timeout > 0 {
			est = "≤ " + formatEstimate(s.Until.Timeout)
		} else if s.Gate != nil {
			est = "gate"
		}
		title := strings.TrimSpace(stripStepNumber(s.Title))
		rows = append(rows, StepRow{N: i + 1, ID: s.ID, Title: escapeCell(title), Estimate: est, Target: s.Target})
	}
	return rows
}

// formatEstimate writes a duration as people do: 5m, 1h30m, 45s.
func formatEstimate(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	if s == "" {
		return "0s"
	}
	return s
}

// stripStepNumber removes the "3. " a heading starts with; the table has
// its own numbering.
func stripStepNumber(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i > 0 && i < len(s) && (s[i] == '.' || s[i] == ')') {
		return s[i+1:]
	}
	return s
}

func escapeCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
