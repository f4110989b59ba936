package workspace

import (
	"regexp"
	"strings"
	"sync"
)

// PreExecutionItems are the IDs of the pre-execution checklist items the
// built-in templates carry, in order; the lifecycle requires each to be
// ticked (opsbook check <task> <item>) before a protected run.
var PreExecutionItems = []string{"prerequisites", "change-approved", "teams-notified", "window-confirmed", "backups-done", "rollback-ready"}

// ChecklistItem is one "- [ ] `id` text" line of a checklist document.
type ChecklistItem struct {
	ID      string `json:"id"`
	Text    string `json:"text"`
	Checked bool   `json:"checked"` // [x] in the file itself
	Line    int    `json:"line"`
}

var checklistItemRe = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile("^\\s*[-*+]\\s+\\[([ xX])\\]\\s+`([a-z0-9][a-z0-9-]*)`\\s*(.*)$")
})

// ChecklistItems reads the task-list items with an ID from a checklist
// document's source. Items in fenced code blocks are ignored.
func ChecklistItems(src []byte) []ChecklistItem {
	var items []ChecklistItem
	fence := ""
	for i, line := range strings.Split(string(src), "\n") {
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			continue
		}
		m := checklistItemRe().FindStringSubmatch(strings.TrimRight(line, "\r"))
		if m == nil {
			continue
		}
		items = append(items, ChecklistItem{ID: m[2], Text: strings.TrimSpace(m[3]), Checked: m[1] != " ", Line: i + 1})
	}
	return items
}
