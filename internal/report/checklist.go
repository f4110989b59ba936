package report

import (
	"embed"
	htmltemplate "html/template"
	"io"
	"strings"
	"sync"
	texttemplate "text/template"

	"github.com/opsbook/opsbook/internal/runbook"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// The templates are parsed on first use, not at start-up: every command of
// the binary would pay for them, `opsbook run` included.
var (
	mdTemplates = sync.OnceValue(func() *texttemplate.Template {
		return texttemplate.Must(texttemplate.New("").Funcs(texttemplate.FuncMap{"cell": cell}).
			ParseFS(templateFS, "templates/*.md.tmpl"))
	})
	htmlTemplates = sync.OnceValue(func() *htmltemplate.Template {
		return htmltemplate.Must(htmltemplate.New("").ParseFS(templateFS, "templates/*.html.tmpl"))
	})
)

// ChecklistView is everything the checklist templates show.
type ChecklistView struct {
	L       map[string]string
	Lang    string
	Title   string
	Task    string
	Runbook string
	Filled  bool // from a run; false for the blank checklist
	RunHeader
	Estimate  string
	Actual    string
	Items     []Item
	ItemTimes []string // Items[i]'s tick time, formatted
	Approved  []string
	Rows      []Row
	Rollback  []Row    // rollback-document steps that ran
	Breaches  []string // guard breaches, each with its time and step
}

// Checklist builds the checklist's view of in.
func Checklist(in Input) ChecklistView {
	l := labels(in.Lang)
	v := ChecklistView{L: l, Lang: in.Lang, Title: in.Runbook.Title, Task: in.Task, Runbook: in.Runbook.Path,
		Items: in.Items, Rows: in.Rows(), Estimate: formatEstimate(in.Runbook)}
	for _, it := range in.Items {
		s := ""
		if it.Ticked {
			s = in.stamp(it.At)
		}
		v.ItemTimes = append(v.ItemTimes, s)
	}
	v.Approved = in.approvals()
	st := in.state()
	if in.Run == nil || st == nil {
		return v
	}
	v.Filled = true
	v.RunHeader = in.header(st, l)
	if !st.FinishedAt.IsZero() {
		v.Actual = formatDuration(st.FinishedAt.Sub(st.StartedAt))
	}
	for _, b := range st.Breaches {
		v.Breaches = append(v.Breaches, breachLine(b, in.stamp(b.Time), in.Lang))
	}
	if st.Rollback != nil {
		for i, s := range st.Rollback.Steps {
			r := Row{N: i + 1, ID: s.ID, Title: s.ID}
			in.fill(&r, s, l)
			v.Rollback = append(v.Rollback, r)
		}
	}
	return v
}

// WriteChecklistMarkdown writes the checklist as Markdown.
func WriteChecklistMarkdown(w io.Writer, in Input) error {
	return mdTemplates().ExecuteTemplate(w, "checklist.md.tmpl", Checklist(in))
}

// WriteChecklistHTML writes the checklist as a standalone HTML page that
// prints on A4.
func WriteChecklistHTML(w io.Writer, in Input) error {
	return htmlTemplates().ExecuteTemplate(w, "checklist.html.tmpl", Checklist(in))
}

func formatEstimate(doc *runbook.Document) string {
	if doc.Front.Estimate > 0 {
		return formatDuration(doc.Front.Estimate)
	}
	var sum int64
	for _, s := range doc.Steps {
		sum += int64(s.Estimate)
	}
	if sum == 0 {
		return ""
	}
	return formatDuration(timeDuration(sum))
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\r", "")
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

func orElse(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
