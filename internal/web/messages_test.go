package web

import (
	"html/template"
	"io/fs"
	"regexp"
	"testing"
)

// Every key exists in every language, and every key a view uses exists.
func TestCatalogue(t *testing.T) {
	for _, lang := range Languages {
		for key := range catalogue["en"] {
			if _, ok := catalogue[lang][key]; !ok {
				t.Errorf("%s: missing %q", lang, key)
			}
		}
		for key := range catalogue[lang] {
			if _, ok := catalogue["en"][key]; !ok {
				t.Errorf("%s: %q is not in en", lang, key)
			}
		}
	}
	used := regexp.MustCompile(`\.T "([a-z_]+)"`)
	err := fs.WalkDir(templateFS, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(templateFS, p)
		if err != nil {
			return err
		}
		for _, m := range used.FindAllStringSubmatch(string(b), -1) {
			if _, ok := catalogue["en"][m[1]]; !ok {
				t.Errorf("%s uses unknown message %q", p, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Every view on disk parses with the shared layout and partials.
func TestViewsParse(t *testing.T) {
	views, err := Views(stubFuncs())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"login", "overview", "runbook", "run", "checklist", "postmortem", "board", "audit", "error", "apikeys", "admin_users", "admin_teams", "admin_environments", "admin_variables", "admin_triggers"} {
		if views[name] == nil || views[name].Lookup("content") == nil {
			t.Errorf("view %s missing or without content", name)
		}
	}
}

// stubFuncs has the names the views call; parsing only needs them to exist.
func stubFuncs() template.FuncMap {
	stub := func(...any) string { return "" }
	m := template.FuncMap{}
	for _, n := range []string{"join", "inc", "dur", "short", "ago", "when", "stepKind", "targetLink"} {
		m[n] = stub
	}
	return m
}
