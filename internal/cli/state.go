package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/opsbook/opsbook/internal/engine"
	"github.com/opsbook/opsbook/internal/executor/sshexec"
	"github.com/opsbook/opsbook/internal/markdown"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/snapshot"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/workspace"
)

// stateDB is the workspace's local run store.
func stateDB(ws *workspace.Workspace) string { return filepath.Join(ws.StateDir(), "opsbook.db") }

// openState opens the workspace's local run store (creating it).
func openState(ctx context.Context, ws *workspace.Workspace) (*store.Store, error) {
	st, err := store.Open(ctx, stateDB(ws))
	if err != nil {
		return nil, fmt.Errorf("open the run store of workspace %s: %w", ws.Dir, err)
	}
	return st, nil
}

// openWorkspaceState finds the workspace and opens its local run store.
func openWorkspaceState(ctx context.Context, e *env) (*workspace.Workspace, *store.Store, error) {
	ws, err := findWorkspace(e)
	if err != nil {
		return nil, nil, badInput("%v", err)
	}
	st, err := openState(ctx, ws)
	if err != nil {
		return nil, nil, err
	}
	return ws, st, nil
}

// writeJSON is --output json: v indented, as every command prints it.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newEngine is the engine the CLI drives in-process.
func newEngine(st *store.Store) *engine.Engine {
	return engine.New(engine.Config{Store: st, PollInterval: 250 * time.Millisecond})
}

// newRunEngine is the engine for executing a plan: when the plan has steps
// on inventory hosts, with an SSH pool over the environment's inventory
// whose host keys are checked against the workspace's known_hosts file and
// the user's. The returned function closes the pool's connections.
func newRunEngine(st *store.Store, ws *workspace.Workspace, p *engine.Plan) (*engine.Engine, func(), error) {
	if !p.RemoteSteps() {
		return newEngine(st), func() {}, nil
	}
	environment, err := ws.Environment(p.Environment)
	if err != nil {
		return nil, nil, badInput("%v", err)
	}
	var knownHosts []string
	if environment.KnownHosts != "" {
		knownHosts = append(knownHosts, ws.Path(environment.KnownHosts))
	}
	pool, err := sshexec.NewPool(sshexec.Options{KnownHostsFiles: knownHosts, ResolveHost: environment.Host})
	if err != nil {
		return nil, nil, fmt.Errorf("prepare SSH for environment %s: %w", p.Environment, err)
	}
	eng := engine.New(engine.Config{Store: st, PollInterval: 250 * time.Millisecond, Remote: pool.Executor})
	return eng, func() { pool.Close() }, nil
}

// runbookPath resolves `opsbook run ARG`: a file, else a task name
// (ops/active/<task>/<task>-runbook.md). It returns the absolute path and
// the path relative to the workspace.
func runbookPath(ws *workspace.Workspace, arg string) (abs, rel string, err error) {
	fi, err := os.Stat(arg)
	if err == nil && !fi.IsDir() {
		abs, _ = filepath.Abs(arg)
		return abs, ws.Rel(abs), nil
	}
	if err == nil {
		return "", "", badInput("%s is a directory: give a runbook file in it, or a task name (`opsbook list` shows the tasks)", arg)
	}
	if strings.ContainsAny(arg, `/\`) || strings.HasSuffix(arg, ".md") {
		// A path: it names a file, never a task.
		return "", "", badInput("no runbook file %s%s (standing runbooks are in %s/runbooks/, tasks' in %s/)", arg,
			suggestion(arg, runbookFiles(ws)), workspace.OpsDir, workspace.ActiveDir)
	}
	taskFile := filepath.Join(workspace.ActiveDir, arg, arg+"-runbook.md")
	if _, err := os.Stat(ws.Path(taskFile)); err == nil {
		return ws.Path(taskFile), filepath.ToSlash(taskFile), nil
	}
	hint := suggestion(arg, append(taskNames(ws), runbookFiles(ws)...))
	if hint == "" {
		hint = "; `opsbook list` shows the tasks"
	}
	return "", "", badInput("no task %s under %s/ and no file of that name%s", arg, workspace.ActiveDir, hint)
}

// parseDoc parses a document and fails with every error diagnostic.
func parseDoc(e *env, path string) (*runbook.Document, error) {
	doc, diags, err := markdown.ParseFile(path)
	if err != nil {
		return nil, badInput("%v", err)
	}
	if runbook.HasErrors(diags) {
		runbook.SortDiagnostics(diags)
		for _, d := range diags {
			if d.Severity == runbook.SeverityError {
				fmt.Fprintln(e.stderr, d)
			}
		}
		return nil, badInput("%s has errors; fix them (`opsbook lint %s` explains each) and run again", path, path)
	}
	return doc, nil
}

// loadPlan reads a runbook, its rollback document and the runbooks it
// calls, and the environment, into an engine plan with its snapshot. Params
// are filled in by the caller.
func loadPlan(e *env, ws *workspace.Workspace, abs, rel, envName string) (*engine.Plan, error) {
	doc, err := parseDoc(e, abs)
	if err != nil {
		return nil, err
	}
	environment, err := ws.Environment(envName)
	if err != nil {
		return nil, badInput("%v", err)
	}
	if len(doc.Front.Environments) > 0 && !contains(doc.Front.Environments, envName) {
		return nil, badInput("%s may run in %s only, not in %s (front matter environments:)", rel, strings.Join(doc.Front.Environments, ", "), envName)
	}
	p := &engine.Plan{Document: doc, Workspace: ws.Dir, Runbook: rel, Environment: envName,
		Hosts: environment.Hosts, Variables: environment.Variables, Called: map[string]*runbook.Document{},
		Protected: environment.Protected, PrometheusURL: environment.Prometheus}
	if name, ok := strings.CutPrefix(rel, workspace.ActiveDir+"/"); ok {
		p.Task, _, _ = strings.Cut(name, "/")
	}
	dir := filepath.Dir(abs)
	if doc.Front.Rollback != "" {
		if p.Rollback, err = parseDoc(e, filepath.Join(dir, doc.Front.Rollback)); err != nil {
			return nil, err
		}
	}
	// The same resolution as the server's and the lifecycle gates'.
	var called []*runbook.Document
	p.Called, called, err = workspace.ResolveCalls(func(path string) (*runbook.Document, error) {
		return parseDoc(e, path)
	}, doc, p.Rollback)
	if err != nil {
		return nil, err
	}
	p.Snapshot = snapshot.Of(snapshot.FromDocuments(doc, p.Rollback, called, environment.Variables)).String()
	if err := p.CheckTargets(); err != nil {
		return nil, badInput("%v", err)
	}
	return p, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// collectParams gathers parameter values: --param K=V (never secrets),
// OPSBOOK_PARAM_<NAME> variables, then a prompt in a terminal for required
// ones still missing (secrets without echo). Validation is the engine's
// (runbook.ResolveParams), the same as the server's.
func collectParams(e *env, defs []runbook.Param, flags []string, skip map[string]string) (map[string]string, error) {
	given := map[string]string{}
	byName := map[string]runbook.Param{}
	for _, d := range defs {
		byName[d.Name] = d
	}
	for _, kv := range flags {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, badInput("--param %s: write NAME=VALUE", kv)
		}
		if d, ok := byName[k]; ok && d.SecretParam() {
			return nil, badInput("--param %s: %s is a secret and is never taken from the command line (it would stay in shell history and process lists); set OPSBOOK_PARAM_%s or answer the prompt", k, k, runbook.EnvName(k))
		}
		given[k] = v
	}
	for k, v := range skip {
		if _, ok := given[k]; !ok {
			given[k] = v
		}
	}
	for _, d := range defs {
		if _, ok := given[d.Name]; ok {
			continue
		}
		if v, ok := os.LookupEnv("OPSBOOK_PARAM_" + runbook.EnvName(d.Name)); ok {
			given[d.Name] = v
		}
	}
	in, isTTY := terminalInput(e)
	for _, d := range defs {
		if _, ok := given[d.Name]; ok || !d.Required || d.HasDefault || !isTTY {
			continue
		}
		prompt := fmt.Sprintf("%s (%s", d.Name, d.Type)
		if d.Description != "" {
			prompt += ", " + d.Description
		}
		if len(d.Allowed) > 0 {
			prompt += "; one of " + strings.Join(d.Allowed, ", ")
		}
		fmt.Fprintf(e.stderr, "%s): ", prompt)
		if d.SecretParam() {
			b, err := term.ReadPassword(int(in.Fd()))
			fmt.Fprintln(e.stderr)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", d.Name, err)
			}
			given[d.Name] = string(b)
			continue
		}
		line, err := stdinLines(e).ReadString('\n')
		if err != nil && line == "" {
			return nil, badInput("no value for %s", d.Name)
		}
		given[d.Name] = strings.TrimRight(line, "\r\n")
	}
	return given, nil
}

// terminalInput is stdin when it is a terminal.
func terminalInput(e *env) (*os.File, bool) {
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, false
	}
	return f, true
}

var stdinReader *bufio.Reader

// stdinLines is one buffered reader over stdin shared by every prompt.
func stdinLines(e *env) *bufio.Reader {
	if stdinReader == nil {
		stdinReader = bufio.NewReader(e.stdin)
	}
	return stdinReader
}

// sortedKeys returns a map's keys in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
