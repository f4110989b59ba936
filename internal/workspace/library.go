package workspace

import (
	"fmt"
	"io/fs"
	"regexp"
	"strings"
)

// LibraryEntry is one built-in runbook with its rollback plan.
type LibraryEntry struct {
	Name       string   `json:"name"` // library/<name>.md and library/<name>-rollback.md
	Title      string   `json:"title"`
	Systems    []string `json:"systems"`    // task-name systems it is written for
	Operations []string `json:"operations"` // task-name operations it performs
	Keywords   []string `json:"keywords"`   // words of a description that favour it
	// Requires, when set, are words one of which the description must
	// contain: the PostgreSQL TLS rotation is for "rotate the postgres
	// certificate", not for "rotate the postgres password".
	Requires []string `json:"requires,omitempty"`
}

// Library lists the built-in runbooks. A task uses one when its system and
// its operation both match; keywords decide between candidates.
var Library = []LibraryEntry{
	{Name: "postgres-major-upgrade", Title: "PostgreSQL major-version upgrade",
		Systems: []string{"postgres", "db"}, Operations: []string{"upgrade", "migration"},
		Keywords: []string{"major", "pg_upgrade"}},
	{Name: "postgres-backup-restore", Title: "PostgreSQL backup with a tested restore",
		Systems: []string{"postgres", "db"}, Operations: []string{"backup", "restore"},
		Keywords: []string{"nightly", "dump", "restore", "test"}},
	{Name: "postgres-pitr", Title: "PostgreSQL physical backup with WAL archiving and a tested point-in-time restore",
		Systems: []string{"postgres", "db"}, Operations: []string{"backup", "restore"},
		Keywords: []string{"point-in-time", "pitr", "restore", "point", "wal", "archiving", "archive", "archived", "physical", "basebackup", "pg_basebackup", "base"}},
	{Name: "postgres-test-refresh", Title: "Refresh a test database from sanitised production data",
		Systems: []string{"postgres", "db"}, Operations: []string{"refresh"},
		Keywords: []string{"test", "sanitised", "pii", "staging", "production"}},
	{Name: "postgres-dr-failover", Title: "PostgreSQL failover to the DR replica and switchback",
		Systems: []string{"postgres", "db"}, Operations: []string{"failover", "switchover", "switchback", "drill"},
		Keywords: []string{"dr", "replica", "standby", "primary"}},
	{Name: "k8s-cluster-upgrade", Title: "Kubernetes cluster upgrade with kubeadm",
		Systems: []string{"k8s"}, Operations: []string{"upgrade"},
		Keywords: []string{"kubeadm", "cluster", "nodes"}},
	{Name: "cdn-switchover", Title: "CDN provider switchover by DNS",
		Systems: []string{"cdn", "dns"}, Operations: []string{"switchover", "migration"},
		Keywords: []string{"cloudflare", "cloudfront", "akamai", "fastly", "cname"}},
	{Name: "tls-certificate-rotation", Title: "TLS certificate rotation",
		Systems: []string{"tls", "nginx", "haproxy"}, Operations: []string{"rotation"},
		Keywords: []string{"certificate", "expiry", "renew", "nginx", "haproxy", "web", "https", "lb"}},
	// After the nginx one: a TLS rotation naming no database stays nginx's.
	{Name: "postgres-tls-rotation", Title: "PostgreSQL server TLS certificate rotation",
		Systems: []string{"postgres", "db", "tls"}, Operations: []string{"rotation"},
		Keywords: []string{"postgres", "db"}, Requires: []string{"tls"}},
}

// GenericEntry is the fallback skeleton: the built-in templates.
const GenericEntry = "generic"

// LibraryMatch is the library's answer for a task name.
type LibraryMatch struct {
	Entry  *LibraryEntry // nil: the generic skeleton
	Reason string
}

// Name is the chosen entry's name, or "generic".
func (m LibraryMatch) Name() string {
	if m.Entry == nil {
		return GenericEntry
	}
	return m.Entry.Name
}

// MatchLibrary picks the library runbook for a task: one whose systems and
// operations both contain the task's, the most keywords breaking ties.
// Anything else gets the generic skeleton, because a runbook for another
// system or operation would mislead more than an empty one.
func MatchLibrary(n TaskName) LibraryMatch {
	words := matchWords(n)
	var best *LibraryEntry
	bestScore := -1
	for i := range Library {
		e := &Library[i]
		if !containsStr(e.Systems, n.System) && (n.Kind == "" || !containsStr(e.Systems, n.Kind)) || !containsStr(e.Operations, n.Operation) {
			continue
		}
		if len(e.Requires) > 0 && !anyWord(words, e.Requires) {
			continue
		}
		score := 0
		for _, w := range words {
			if containsStr(e.Keywords, w) {
				score++
			}
		}
		if score > bestScore {
			best, bestScore = e, score
		}
	}
	if best == nil {
		return LibraryMatch{Reason: fmt.Sprintf("no library runbook is written for %s %s; the generic skeleton has <<FILL: …>> placeholders to complete", n.System, n.Operation)}
	}
	return LibraryMatch{Entry: best, Reason: fmt.Sprintf("library runbook %q matches system %s and operation %s", best.Name, n.System, n.Operation)}
}

// matchWords are the task's words, and the recognised systems inside its
// compound names: "orders-db" also counts as "db".
func matchWords(n TaskName) []string {
	words := append([]string(nil), n.Words...)
	for _, w := range n.Words {
		parts := strings.FieldsFunc(w, func(r rune) bool { return r == '-' || r == '_' || r == '.' })
		if len(parts) < 2 {
			continue
		}
		for _, part := range parts {
			if t := classifyBare(part); t.kind == tkSystem {
				words = append(words, t.text)
			}
		}
	}
	return words
}

func anyWord(words, of []string) bool {
	for _, w := range words {
		if containsStr(of, w) {
			return true
		}
	}
	return false
}

// LibraryByName returns the entry with that name.
func LibraryByName(name string) (*LibraryEntry, error) {
	var names []string
	for i := range Library {
		if Library[i].Name == name {
			return &Library[i], nil
		}
		names = append(names, Library[i].Name)
	}
	return nil, fmt.Errorf("no library runbook %q; choose one of %s, or %s", name, strings.Join(names, ", "), GenericEntry)
}

// LibraryFiles returns the built-in runbook and rollback documents of an entry.
func LibraryFiles(e *LibraryEntry) (runbookDoc, rollbackDoc []byte, err error) {
	runbookDoc, err = fs.ReadFile(builtin, "library/"+e.Name+".md")
	if err != nil {
		return nil, nil, fmt.Errorf("library runbook %s: %w", e.Name, err)
	}
	rollbackDoc, err = fs.ReadFile(builtin, "library/"+e.Name+"-rollback.md")
	if err != nil {
		return nil, nil, fmt.Errorf("library rollback %s: %w", e.Name, err)
	}
	return runbookDoc, rollbackDoc, nil
}

var (
	frontTitle    = regexp.MustCompile(`(?m)^title: .*$`)
	frontRollback = regexp.MustCompile(`(?m)^rollback: .*$`)
)

// adaptLibraryDoc points a library document at a task: its title becomes
// the task's title and its rollback link the task's rollback file. Only
// the front matter (before the second "---") is touched.
func adaptLibraryDoc(doc []byte, title, rollback string) []byte {
	s := string(doc)
	end := strings.Index(s[3:], "\n---") + 3
	if !strings.HasPrefix(s, "---") || end < 3 {
		return doc
	}
	front, body := s[:end], s[end:]
	front = frontTitle.ReplaceAllLiteralString(front, "title: "+yamlQuote(title))
	if rollback != "" {
		front = frontRollback.ReplaceAllLiteralString(front, "rollback: "+rollback)
	}
	return []byte(front + body)
}

func yamlQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
