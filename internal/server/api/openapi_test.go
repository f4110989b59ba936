package api_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/server/api"
)

var update = flag.Bool("update", false, "regenerate openapi.json's paths from the router (keeps hand-written operations)")

type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Info       map[string]any                        `json:"info"`
	Servers    []map[string]any                      `json:"servers,omitempty"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components map[string]any                        `json:"components"`
	Security   []map[string][]string                 `json:"security,omitempty"`
}

var pathParam = regexp.MustCompile(`\{([A-Za-z_]+)(\.\.\.)?\}`)

// openAPIPath turns a ServeMux pattern into an OpenAPI path ({path...}
// becomes {path}: OpenAPI has no wildcard, the parameter may hold slashes).
func openAPIPath(p string) string { return pathParam.ReplaceAllString(p, "{$1}") }

// TestOpenAPIMatchesRoutes checks the served document against the router:
// every route documented, every documented operation routed.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "server.db"))
	var doc openAPIDoc
	if err := json.Unmarshal(api.OpenAPIDocument, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	routes := h.srv.Routes()
	if *update {
		regenerate(t, &doc, routes)
		return
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi = %q, want 3.x", doc.OpenAPI)
	}
	routed := map[string]bool{}
	for _, rt := range routes {
		if !strings.HasPrefix(rt.Path, "/api/") {
			continue // health and metrics are not part of the API document
		}
		p, m := openAPIPath(rt.Path), strings.ToLower(rt.Method)
		routed[m+" "+p] = true
		if _, ok := doc.Paths[p][m]; !ok {
			t.Errorf("route %s %s is not documented in openapi.json (run with -update, then describe it)", rt.Method, rt.Path)
		}
	}
	for p, ops := range doc.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			if !routed[m+" "+p] {
				t.Errorf("openapi.json documents %s %s, which the server does not route", strings.ToUpper(m), p)
			}
		}
	}
	// The served copy is the embedded one.
	r := h.must(200, anonymous, "GET", "/api/v1/openapi.json", nil)
	if string(r.body) != string(api.OpenAPIDocument) {
		t.Error("GET /api/v1/openapi.json does not serve the embedded document")
	}
}

// regenerate adds an operation skeleton for every undocumented route and
// drops operations that are no longer routed, keeping the rest as written.
func regenerate(t *testing.T, doc *openAPIDoc, routes []server.Route) {
	if doc.Paths == nil {
		doc.Paths = map[string]map[string]json.RawMessage{}
	}
	routed := map[string]bool{}
	for _, rt := range routes {
		if !strings.HasPrefix(rt.Path, "/api/") {
			continue
		}
		p, m := openAPIPath(rt.Path), strings.ToLower(rt.Method)
		routed[m+" "+p] = true
		if doc.Paths[p] == nil {
			doc.Paths[p] = map[string]json.RawMessage{}
		}
		if _, ok := doc.Paths[p][m]; ok {
			continue
		}
		op := map[string]any{
			"summary":                 rt.Summary,
			"operationId":             operationID(rt),
			"x-opsbook-authorization": rt.Rule.String(),
			"responses": map[string]any{
				"default": map[string]any{"$ref": "#/components/responses/Error"},
			},
		}
		if rt.Rule.IsPublic() {
			op["security"] = []any{}
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]string{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		b, _ := json.Marshal(op)
		doc.Paths[p][m] = b
	}
	for p, ops := range doc.Paths {
		for m := range ops {
			if !routed[m+" "+p] {
				delete(ops, m)
			}
		}
		if len(ops) == 0 {
			delete(doc.Paths, p)
		}
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("openapi.json", append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for p := range doc.Paths {
		keys = append(keys, p)
	}
	sort.Strings(keys)
	t.Logf("openapi.json: %d paths", len(keys))
}

func operationID(rt server.Route) string {
	parts := []string{strings.ToLower(rt.Method)}
	for _, seg := range strings.Split(strings.TrimPrefix(rt.Path, "/api/v1/"), "/") {
		seg = strings.Trim(pathParam.ReplaceAllString(seg, "by_$1"), "{}.")
		parts = append(parts, strings.ReplaceAll(seg, ".", "_"))
	}
	return strings.Join(parts, "_")
}
