// Package web holds the server's HTML views (html/template) and static
// assets (CSS, the vendored htmx and its SSE extension, a small script),
// embedded in the binary, and the UI's message catalogue in English and
// Chinese. The handlers that render them live in internal/server/ui.
package web

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"path"
	"strings"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Static is the static assets, served under /static/.
func Static() fs.FS {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return sub
}

// Views parses every page under templates/: each page file (not starting
// with "_") is parsed together with the shared layout and partials
// (files starting with "_"), and is returned under its name without
// ".html". Parsing every file found, instead of a list, means a view on
// disk cannot be forgotten.
func Views(funcs template.FuncMap) (map[string]*template.Template, error) {
	entries, err := fs.ReadDir(templateFS, "templates")
	if err != nil {
		return nil, err
	}
	base := template.New("").Funcs(funcs)
	var pages []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "_") {
			if _, err := base.ParseFS(templateFS, "templates/"+name); err != nil {
				return nil, fmt.Errorf("parse view %s: %w", name, err)
			}
			continue
		}
		pages = append(pages, name)
	}
	views := map[string]*template.Template{}
	for _, name := range pages {
		t, err := base.Clone()
		if err != nil {
			return nil, err
		}
		if _, err := t.ParseFS(templateFS, "templates/"+name); err != nil {
			return nil, fmt.Errorf("parse view %s: %w", name, err)
		}
		views[strings.TrimSuffix(path.Base(name), ".html")] = t
	}
	return views, nil
}
