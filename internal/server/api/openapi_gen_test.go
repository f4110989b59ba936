package api_test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/server/api"
)

// The OpenAPI document is generated here from the routes (method, path,
// summary, rule) and their contracts (api.Contracts): every schema is
// built by reflecting over the Go types the handlers decode and encode,
// with the types' and fields' doc comments as descriptions.

const moduleRoot = "../../.." // from internal/server/api, where go test runs

var pathParam = regexp.MustCompile(`\{([A-Za-z_]+)(\.\.\.)?\}`)

// openAPIPath turns a ServeMux pattern into an OpenAPI path ({path...}
// becomes {path}: OpenAPI has no wildcard, the parameter may hold slashes).
func openAPIPath(p string) string { return pathParam.ReplaceAllString(p, "{$1}") }

const apiDescription = "JSON API of `opsbook serve`. Errors are {\"error\":{\"code\",\"message\"}}. " +
	"Lists are pages {\"items\",\"next_cursor\"}: pass next_cursor as ?cursor= and ?limit= for the page size. " +
	"Authenticate with an API key (Authorization: Bearer obk_…) or the session cookie from POST /api/v1/login; " +
	"cookie-authenticated unsafe requests need the X-CSRF-Token header (login and GET /api/v1/session return it). " +
	"x-opsbook-authorization on each operation names the permission it needs (RunbookView, RunbookEdit, RunbookRun, " +
	"RunbookApprove, VariableEdit, Admin), checked within the project of the runbook and the environment the request is about. " +
	"Request bodies refuse unknown fields; a field a request schema does not list as required may be left out (it takes its zero value). " +
	"Generated from the Go types of internal/apitypes and the handlers: go test ./internal/server/api -run TestOpenAPI -update."

// missingContract is the message for a route without a contract: what to
// add, and where.
func missingContract(rt server.Route) string {
	body := ""
	if rt.Method != "GET" && rt.Method != "DELETE" {
		body = "Request: <the type the handler decodes>{}, "
	}
	return fmt.Sprintf("route %s %s has no contract: add to Contracts in internal/server/api/contract.go\n"+
		"\t%q: {%sResponses: ok(<the type the handler writes>{})},\n"+
		"(created(…) for 201, noContent for 204; shared request/response types belong in internal/apitypes),\n"+
		"then regenerate the document: go test ./internal/server/api -run TestOpenAPI -update",
		rt.Method, rt.Path, rt.Method+" "+rt.Path, body)
}

// generateOpenAPI builds the document; problems lists routes without a
// contract and contracts without a route.
func generateOpenAPI(routes []server.Route) (doc []byte, problems []string) {
	g := newSchemaGen()
	paths := map[string]map[string]any{}
	routed := map[string]bool{}
	for _, rt := range routes {
		if !strings.HasPrefix(rt.Path, "/api/") {
			continue // health and metrics are not part of the API document
		}
		key := rt.Method + " " + rt.Path
		routed[key] = true
		c, ok := api.Contracts[key]
		if !ok {
			problems = append(problems, missingContract(rt))
			continue
		}
		p := openAPIPath(rt.Path)
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		paths[p][strings.ToLower(rt.Method)] = g.operation(rt, c)
	}
	var orphans []string
	for key := range api.Contracts {
		if !routed[key] {
			orphans = append(orphans, fmt.Sprintf("Contracts has %q but the server registers no such route: delete the entry (or fix its pattern)", key))
		}
	}
	sort.Strings(orphans)
	problems = append(problems, orphans...)
	d := map[string]any{
		"openapi": "3.1.0",
		"info":    map[string]any{"title": "opsbook server API", "version": "1", "description": apiDescription},
		"paths":   paths,
		"security": []any{
			map[string]any{"apiKey": []any{}},
			map[string]any{"session": []any{}},
		},
		"components": map[string]any{
			"securitySchemes": map[string]any{
				"apiKey":  map[string]any{"type": "http", "scheme": "bearer", "description": "An opsbook API key, obk_…, created with POST /api/v1/apikeys (or opsbook login) and shown once."},
				"session": map[string]any{"type": "apiKey", "in": "cookie", "name": server.SessionCookie},
			},
			"responses": map[string]any{
				"Error": map[string]any{"description": "An error", "content": jsonContent(map[string]any{"$ref": "#/components/schemas/Error"})},
			},
			"schemas": g.schemas,
		},
	}
	g.schemas["Error"] = map[string]any{
		"type": "object", "required": []string{"error"}, "additionalProperties": false,
		"properties": map[string]any{"error": map[string]any{
			"type": "object", "required": []string{"code", "message"}, "additionalProperties": false,
			"properties": map[string]any{
				"code":    map[string]any{"type": "string", "description": "stable: unauthenticated, forbidden, csrf, not_found, conflict, invalid_params, bad_request, …"},
				"message": map[string]any{"type": "string", "description": "what went wrong and what to do next"},
			},
		}},
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(out, '\n'), problems
}

func jsonContent(schema any) map[string]any {
	return map[string]any{"application/json": map[string]any{"schema": schema}}
}

func (g *schemaGen) operation(rt server.Route, c api.Contract) map[string]any {
	tag := strings.SplitN(strings.TrimPrefix(rt.Path, "/api/v1/"), "/", 2)[0]
	op := map[string]any{
		"operationId":             operationID(rt),
		"summary":                 rt.Summary,
		"tags":                    []string{strings.TrimSuffix(tag, ".json")},
		"x-opsbook-authorization": rt.Rule.String(),
	}
	if rt.Rule.IsPublic() {
		op["security"] = []any{}
	}
	var params []any
	for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
		p := map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}}
		if m[2] != "" {
			p["description"] = "may contain slashes"
		}
		params = append(params, p)
	}
	for _, q := range c.Query {
		typ := q.Type
		if typ == "" {
			typ = "string"
		}
		var schema any = map[string]any{"type": typ}
		if q.Repeated {
			schema = map[string]any{"type": "array", "items": schema}
		}
		p := map[string]any{"name": q.Name, "in": "query", "schema": schema}
		if q.Description != "" {
			p["description"] = q.Description
		}
		params = append(params, p)
	}
	if params != nil {
		op["parameters"] = params
	}
	if c.Request != nil {
		op["requestBody"] = map[string]any{"required": true, "content": jsonContent(g.schema(reflect.TypeOf(c.Request), true))}
	}
	responses := map[string]any{"default": map[string]any{"$ref": "#/components/responses/Error"}}
	for status, body := range c.Responses {
		r := map[string]any{"description": http.StatusText(status)}
		switch body.(type) {
		case nil:
		case api.EventStream:
			r["content"] = map[string]any{"text/event-stream": map[string]any{
				"schema":      map[string]any{"type": "string"},
				"description": "one event per run event (id: seq, event: its type, data: the Event as JSON), then `event: end` with {\"status\":…} once the run is finished",
			}}
		case api.OpenAPIDoc:
			r["content"] = jsonContent(map[string]any{"type": "object", "description": "this document"})
		default:
			r["content"] = jsonContent(g.schema(reflect.TypeOf(body), false))
		}
		responses[fmt.Sprint(status)] = r
	}
	op["responses"] = responses
	return op
}

func operationID(rt server.Route) string {
	parts := []string{strings.ToLower(rt.Method)}
	for _, seg := range strings.Split(strings.TrimPrefix(rt.Path, "/api/v1/"), "/") {
		seg = strings.Trim(pathParam.ReplaceAllString(seg, "by_$1"), "{}.")
		parts = append(parts, strings.ReplaceAll(seg, ".", "_"))
	}
	return strings.Join(parts, "_")
}

// schemaGen turns Go types into JSON Schema (2020-12, as OpenAPI 3.1 uses)
// the way encoding/json encodes them. Named struct types become components
// referenced by $ref; a type used in requests and in responses gets two
// (its request form is named …Input): in a response every field that is
// not omitempty/omitzero is required, since the encoder always writes it;
// in a request only fields tagged api:"required" are.
type schemaGen struct {
	schemas map[string]any
	names   map[schemaKey]string
	taken   map[string]schemaKey
	docs    map[string]map[string]typeDoc // package path → type name → doc
}

type schemaKey struct {
	t       reflect.Type
	request bool
}

type typeDoc struct {
	doc    string
	fields map[string]string
}

func newSchemaGen() *schemaGen {
	return &schemaGen{schemas: map[string]any{}, names: map[schemaKey]string{}, taken: map[string]schemaKey{}, docs: map[string]map[string]typeDoc{}}
}

var timeType = reflect.TypeFor[time.Time]()

func (g *schemaGen) schema(t reflect.Type, request bool) map[string]any {
	if t == timeType {
		return map[string]any{"type": "string", "format": "date-time"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return nullable(g.schema(t.Elem(), request))
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "contentEncoding": "base64"}
		}
		return map[string]any{"type": "array", "items": g.schema(t.Elem(), request)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem(), request)}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		if t.Name() == "" {
			return g.object(t, request)
		}
		key := schemaKey{t, request}
		name, ok := g.names[key]
		if !ok {
			name = g.name(key)
			g.schemas[name] = map[string]any{} // placeholder: recursive types end here
			g.schemas[name] = g.object(t, request)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	panic(fmt.Sprintf("openapi: no schema for %s (%s)", t, t.Kind()))
}

// nullable lets a schema also be null (a nil pointer, slice or map).
func nullable(s map[string]any) map[string]any {
	if typ, ok := s["type"].(string); ok {
		out := map[string]any{}
		for k, v := range s {
			out[k] = v
		}
		out["type"] = []string{typ, "null"}
		return out
	}
	if _, ok := s["type"]; ok {
		return s // already a list
	}
	return map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
}

// name picks the component name of a named type: Page[…runbook.Run]
// becomes RunPage, environmentView EnvironmentView; a request form of a
// request form of a type gets Input appended unless its name says it is a
// request already (…Request, …Spec, …Body).
func (g *schemaGen) name(key schemaKey) string {
	base, _ := baseName(key.t)
	n := base
	if i := strings.Index(key.t.Name(), "["); i >= 0 {
		arg := strings.TrimSuffix(key.t.Name()[i+1:], "]")
		arg = arg[strings.LastIndex(arg, ".")+1:]
		n = arg + base
	}
	n = strings.ToUpper(n[:1]) + n[1:]
	if key.request && !strings.HasSuffix(n, "Request") && !strings.HasSuffix(n, "Spec") && !strings.HasSuffix(n, "Body") {
		n += "Input" // a request form of a type responses may use too
	}
	for i := 1; ; i++ {
		cand := n
		if i > 1 {
			cand = fmt.Sprintf("%s%d", n, i)
		}
		if other, ok := g.taken[cand]; !ok || other == key {
			g.taken[cand] = key
			g.names[key] = cand
			return cand
		}
	}
}

// baseName is the declared name of a type (Page for Page[T]).
func baseName(t reflect.Type) (string, string) {
	n := t.Name()
	if i := strings.Index(n, "["); i >= 0 {
		n = n[:i]
	}
	return n, t.PkgPath()
}

func (g *schemaGen) object(t reflect.Type, request bool) map[string]any {
	props := map[string]any{}
	var required []string
	g.fields(t, request, props, &required)
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		sort.Strings(required)
		s["required"] = required
	}
	if d := g.doc(t).doc; d != "" && t.Name() != "" {
		s["description"] = d
	}
	return s
}

// fields adds t's fields as encoding/json writes them: embedded structs
// without a name are flattened, "-" is skipped.
func (g *schemaGen) fields(t reflect.Type, request bool, props map[string]any, required *[]string) {
	docs := g.doc(t).fields
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := f.Type
		if f.Anonymous && name == "" {
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				g.fields(ft, request, props, required)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		omit := strings.Contains(","+opts+",", ",omitempty,") || strings.Contains(","+opts+",", ",omitzero,")
		s := g.schema(ft, request)
		if k := ft.Kind(); (k == reflect.Slice || k == reflect.Map) && (!omit || request) {
			s = nullable(s) // a nil slice or map is written as null; the decoder reads null as nil
		}
		if d := docs[f.Name]; d != "" {
			if _, isRef := s["$ref"]; isRef {
				s = map[string]any{"allOf": []any{s}, "description": d}
			} else {
				s["description"] = d
			}
		}
		props[name] = s
		if request && f.Tag.Get("api") == "required" || !request && !omit {
			*required = append(*required, name)
		}
	}
}

// doc returns the doc comments of a named type and its fields, read from
// the package's source.
func (g *schemaGen) doc(t reflect.Type) typeDoc {
	name, pkg := baseName(t)
	const module = "github.com/opsbook/opsbook"
	if name == "" || !strings.HasPrefix(pkg, module) {
		return typeDoc{}
	}
	types, ok := g.docs[pkg]
	if !ok {
		types = parseDocs(filepath.Join(moduleRoot, strings.TrimPrefix(pkg, module)))
		g.docs[pkg] = types
	}
	return types[name]
}

func parseDocs(dir string) map[string]typeDoc {
	out := map[string]typeDoc{}
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments)
	if err != nil {
		panic(err)
	}
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				gd, ok := d.(*ast.GenDecl)
				if !ok || gd.Tok != token.TYPE {
					continue
				}
				for _, spec := range gd.Specs {
					ts := spec.(*ast.TypeSpec)
					st, ok := ts.Type.(*ast.StructType)
					if !ok {
						continue
					}
					doc := ts.Doc
					if doc == nil && len(gd.Specs) == 1 {
						doc = gd.Doc
					}
					td := typeDoc{doc: clean(doc), fields: map[string]string{}}
					for _, fl := range st.Fields.List {
						text := clean(fl.Doc)
						if text == "" {
							text = clean(fl.Comment)
						}
						for _, n := range fl.Names {
							td.fields[n.Name] = text
						}
					}
					out[ts.Name.Name] = td
				}
			}
		}
	}
	return out
}

func clean(cg *ast.CommentGroup) string {
	if cg == nil {
		return ""
	}
	return strings.Join(strings.Fields(cg.Text()), " ")
}

// apiDoc is docs/api.md, whose route table is generated from the document
// between these markers.
const (
	apiDoc      = moduleRoot + "/docs/api.md"
	tableBegin  = "<!-- routes: generated by go test ./internal/server/api -run TestOpenAPI -update -->\n"
	tableEnd    = "<!-- end of routes -->\n"
	schemaPrefx = "#/components/schemas/"
)

// routeTable renders the document's operations as a Markdown table.
func routeTable(doc []byte) (string, error) {
	var d struct {
		Paths map[string]map[string]struct {
			Summary     string `json:"summary"`
			Auth        string `json:"x-opsbook-authorization"`
			RequestBody struct {
				Content map[string]struct {
					Schema map[string]any `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
			Responses map[string]struct {
				Content map[string]struct {
					Schema map[string]any `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return "", err
	}
	name := func(s map[string]any) string {
		if ref, ok := s["$ref"].(string); ok {
			return "`" + strings.TrimPrefix(ref, schemaPrefx) + "`"
		}
		if s == nil {
			return ""
		}
		return "object"
	}
	var rows []string
	for p, ops := range d.Paths {
		for m, op := range ops {
			req := name(op.RequestBody.Content["application/json"].Schema)
			var statuses []string
			for st := range op.Responses {
				if st != "default" {
					statuses = append(statuses, st)
				}
			}
			sort.Strings(statuses)
			var resp []string
			for _, st := range statuses {
				c := op.Responses[st].Content
				switch {
				case c["application/json"].Schema != nil:
					resp = append(resp, st+" "+name(c["application/json"].Schema))
				case c["text/event-stream"].Schema != nil:
					resp = append(resp, st+" event stream")
				default:
					resp = append(resp, st)
				}
			}
			rows = append(rows, fmt.Sprintf("| `%s %s` | %s | %s | %s | %s |", strings.ToUpper(m), p, op.Summary, op.Auth, req, strings.Join(resp, ", ")))
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		pi, pj := strings.Fields(rows[i])[2], strings.Fields(rows[j])[2]
		if pi != pj {
			return pi < pj
		}
		return rows[i] < rows[j]
	})
	return tableBegin + "| Route | What it does | Permission | Request body | Answers |\n|---|---|---|---|---|\n" +
		strings.Join(rows, "\n") + "\n" + tableEnd, nil
}

// writeRouteTable replaces the generated table of docs/api.md.
func writeRouteTable(doc []byte) error {
	table, err := routeTable(doc)
	if err != nil {
		return err
	}
	md, err := os.ReadFile(apiDoc)
	if err != nil {
		return err
	}
	s := string(md)
	i, j := strings.Index(s, tableBegin), strings.Index(s, tableEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %q … %q markers for the route table", apiDoc, strings.TrimSpace(tableBegin), strings.TrimSpace(tableEnd))
	}
	return os.WriteFile(apiDoc, []byte(s[:i]+table+s[j+len(tableEnd):]), 0o644)
}
