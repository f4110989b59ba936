package api_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/opsbook/opsbook/internal/server/api"
)

var update = flag.Bool("update", false, "regenerate openapi.json (and the route table of docs/api.md) from the routes and their contracts")

// TestOpenAPIContracts checks the document against the code: every API
// route has a contract, every contract a route, and openapi.json on disk
// is exactly what the routes and the Go types generate. Fault: a route
// added or a field changed without the document following.
func TestOpenAPIContracts(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "server.db"))
	doc, problems := generateOpenAPI(h.srv.Routes())
	for _, p := range problems {
		t.Error(p)
	}
	if *update {
		if err := os.WriteFile("openapi.json", doc, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := writeRouteTable(doc); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(doc, api.OpenAPIDocument) {
		t.Errorf("internal/server/api/openapi.json is stale (%s): regenerate it with go test ./internal/server/api -run TestOpenAPI -update", firstDiff(api.OpenAPIDocument, doc))
	}
	if table, err := routeTable(doc); err != nil {
		t.Fatal(err)
	} else if md, err := os.ReadFile(apiDoc); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(string(md), table) {
		t.Errorf("the route table of docs/api.md is stale: regenerate it with go test ./internal/server/api -run TestOpenAPI -update")
	}
	// The served copy is the embedded one.
	r := h.must(200, anonymous, "GET", "/api/v1/openapi.json", nil)
	if !bytes.Equal(r.body, api.OpenAPIDocument) {
		t.Error("GET /api/v1/openapi.json does not serve the embedded document")
	}
}

// firstDiff names the first line where two documents differ.
func firstDiff(old, new []byte) string {
	a, b := strings.Split(string(old), "\n"), strings.Split(string(new), "\n")
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return fmt.Sprintf("line %d is %q, the code generates %q", i+1, strings.TrimSpace(x), strings.TrimSpace(y))
		}
	}
	return "same lines"
}

// TestOpenAPIMissingContractMessage is the fault case of the contract
// check: a route without a contract is reported with the entry to add.
func TestOpenAPIMissingContractMessage(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "server.db"))
	routes := h.srv.Routes()
	for i := range routes {
		if routes[i].Method == "POST" && routes[i].Path == "/api/v1/runs" {
			routes[i].Path = "/api/v1/runs-new"
		}
	}
	_, problems := generateOpenAPI(routes)
	got := strings.Join(problems, "\n")
	for _, want := range []string{
		`route POST /api/v1/runs-new has no contract: add to Contracts in internal/server/api/contract.go`,
		`"POST /api/v1/runs-new": {Request: <the type the handler decodes>{}, Responses: ok(<the type the handler writes>{})}`,
		`go test ./internal/server/api -run TestOpenAPI -update`,
		`Contracts has "POST /api/v1/runs" but the server registers no such route`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems do not say %q:\n%s", want, got)
		}
	}
}

// contractChecker validates real requests and responses against the
// checked-in openapi.json with a JSON Schema 2020-12 validator (the
// dialect of OpenAPI 3.1). Every API call of this package's tests goes
// through it (harness.doWith), so the permission matrix alone exercises
// every route's success and error answers.
type contractChecker struct {
	mux *http.ServeMux // finds the route pattern of a request as the server does

	mu       sync.Mutex
	schemas  map[string]*jsonschema.Schema
	compiler *jsonschema.Compiler
	decoded  []string // problems seen by the decode observer, not yet reported
}

const docURL = "mem://opsbook/openapi.json"

var contracts = sync.OnceValue(func() *contractChecker {
	c := &contractChecker{mux: http.NewServeMux(), schemas: map[string]*jsonschema.Schema{}}
	for pattern := range api.Contracts {
		c.mux.Handle(pattern, http.NotFoundHandler())
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(api.OpenAPIDocument))
	if err != nil {
		panic(err)
	}
	c.compiler = jsonschema.NewCompiler()
	c.compiler.DefaultDraft(jsonschema.Draft2020)
	c.compiler.AssertFormat()
	if err := c.compiler.AddResource(docURL, doc); err != nil {
		panic(err)
	}
	return c
})

// observeDecoding is the server's decode observer (installed in
// TestMain): a handler that decodes another type than its contract says
// is a problem the next checked call reports.
func observeDecoding(pattern string, t reflect.Type) {
	c, ok := api.Contracts[pattern]
	if !ok {
		return // not an API route, or no contract: TestOpenAPIContracts reports that
	}
	var problem string
	switch {
	case c.Request == nil:
		problem = fmt.Sprintf("route %s decodes a %s body but its contract has no Request: set Request: %s{} in internal/server/api/contract.go and regenerate openapi.json", pattern, t, t)
	case reflect.TypeOf(c.Request) != t:
		problem = fmt.Sprintf("route %s decodes %s but its contract says %s: fix internal/server/api/contract.go and regenerate openapi.json", pattern, t, reflect.TypeOf(c.Request))
	default:
		return
	}
	cc := contracts()
	cc.mu.Lock()
	cc.decoded = append(cc.decoded, problem)
	cc.mu.Unlock()
}

func (c *contractChecker) schema(pointer string) (*jsonschema.Schema, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.schemas[pointer]; ok {
		return s, nil
	}
	s, err := c.compiler.Compile(docURL + "#" + pointer)
	if err != nil {
		return nil, err
	}
	c.schemas[pointer] = s
	return s, nil
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// check validates one API call: a request the server accepted must match
// the request schema, and every answer must be one the document lists for
// the route, with a body matching its schema.
func (c *contractChecker) check(method, path string, reqBody []byte, r response) []string {
	c.mu.Lock()
	problems := c.decoded
	c.decoded = nil
	c.mu.Unlock()
	req, _ := http.NewRequest(method, "http://x"+path, nil)
	_, pattern := c.mux.Handler(req)
	if pattern == "" || strings.HasPrefix(pattern, "GET /api/v1/openapi.json") {
		return problems
	}
	ct, ok := api.Contracts[pattern]
	if !ok {
		return problems
	}
	m, p, _ := strings.Cut(pattern, " ")
	op := "/paths/" + escapePointer(openAPIPath(p)) + "/" + strings.ToLower(m)
	validate := func(what, pointer string, body []byte) {
		s, err := c.schema(pointer)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s %s: %s: openapi.json has no schema at %s: %v", method, path, what, pointer, err))
			return
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s %s: %s is not JSON: %v\n%s", method, path, what, err, body))
			return
		}
		if err := s.Validate(inst); err != nil {
			problems = append(problems, fmt.Sprintf("%s %s: %s does not match openapi.json (%s): %v\n%s", method, path, what, pointer, err, body))
		}
	}
	success := r.status < 400
	if success && ct.Request != nil && len(reqBody) > 0 {
		validate("the accepted request body", op+"/requestBody/content/application~1json/schema", reqBody)
	}
	if !success {
		if strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			validate(fmt.Sprintf("the %d error", r.status), "/components/schemas/Error", r.body)
		} else {
			problems = append(problems, fmt.Sprintf("%s %s: error %d is %q, not the JSON Error", method, path, r.status, r.header.Get("Content-Type")))
		}
		return problems
	}
	body, documented := ct.Responses[r.status]
	switch {
	case !documented:
		problems = append(problems, fmt.Sprintf("%s %s answered %d, which its contract does not list (internal/server/api/contract.go)", method, path, r.status))
	case body == nil:
		if len(bytes.TrimSpace(r.body)) > 0 {
			problems = append(problems, fmt.Sprintf("%s %s: %d should have no body, has %q", method, path, r.status, r.body))
		}
	case reflect.TypeOf(body) == reflect.TypeFor[api.EventStream]():
		if !strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") {
			problems = append(problems, fmt.Sprintf("%s %s: Content-Type %q, want text/event-stream", method, path, r.header.Get("Content-Type")))
		}
	default:
		validate(fmt.Sprintf("the %d answer", r.status), fmt.Sprintf("%s/responses/%d/content/application~1json/schema", op, r.status), r.body)
	}
	return problems
}

// TestOpenAPIValidatorCatchesDrift injects the faults the contract check
// exists for into real answers — a field dropped, a field renamed, an
// undocumented status, a body where none is documented, a handler
// decoding another type — and expects each one reported.
func TestOpenAPIValidatorCatchesDrift(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "server.db"))
	h.publishAll()
	run := h.startRun(runner, searchRunbook, "staging", nil)
	real := h.must(200, admin, "GET", "/api/v1/runs/"+run.ID, nil)
	if p := contracts().check("GET", "/api/v1/runs/"+run.ID, nil, real); len(p) > 0 {
		t.Fatalf("the real answer does not validate: %v", p)
	}
	mutate := func(edit func(map[string]any)) response {
		var v map[string]any
		real.json(t, &v)
		edit(v)
		b, _ := json.Marshal(v)
		return response{status: real.status, body: b, header: real.header}
	}
	cases := []struct {
		name         string
		method, path string
		r            response
		want         string
	}{
		{"field dropped", "GET", "/api/v1/runs/" + run.ID, mutate(func(v map[string]any) { delete(v, "state") }), "missing property 'state'"},
		{"field renamed", "GET", "/api/v1/runs/" + run.ID, mutate(func(v map[string]any) { v["run_status"] = v["status"]; delete(v, "status") }), "run_status"},
		{"field of another type", "GET", "/api/v1/runs/" + run.ID, mutate(func(v map[string]any) { v["created_at"] = 17 }), "created_at"},
		{"undocumented status", "POST", "/api/v1/runs", response{status: 200, body: real.body, header: real.header}, "answered 200, which its contract does not list"},
		{"body where none is documented", "DELETE", "/api/v1/apikeys/1", response{status: 204, body: []byte(`{"ok":true}`)}, "should have no body"},
		{"error not in the Error shape", "GET", "/api/v1/runs/x", response{status: 404, body: []byte(`{"message":"no"}`), header: http.Header{"Content-Type": {"application/json"}}}, "the 404 error does not match"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := strings.Join(contracts().check(c.method, c.path, nil, c.r), "\n")
			if !strings.Contains(got, c.want) {
				t.Errorf("problems %q do not mention %q", got, c.want)
			}
		})
	}
	t.Run("handler decodes another type", func(t *testing.T) {
		observeDecoding("POST /api/v1/runs/{id}/gate", reflect.TypeFor[struct{ Decision, Force string }]())
		got := strings.Join(contracts().check("GET", "/api/v1/session", nil, response{status: 200, body: []byte(`{}`)}), "\n")
		if !strings.Contains(got, "route POST /api/v1/runs/{id}/gate decodes struct") || !strings.Contains(got, "its contract says apitypes.GateRequest") {
			t.Errorf("problems %q do not name the decoded and the contracted type", got)
		}
	})
	h.cancelActive()
}
