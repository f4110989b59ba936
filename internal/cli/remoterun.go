package cli

import (
	"context"
	"io"
	"os"
	"strings"

	"github.com/opsbook/opsbook/internal/client"
	"github.com/opsbook/opsbook/internal/runbook"
)

// startRemote is `opsbook run --server`: the runbook named as locally
// (a file of the workspace, or a task) is started on the server, which
// validates the parameters exactly as a local run does. When the runbook
// is in the local workspace, its parameters are collected as for a local
// run (secrets never from flags, prompts in a terminal) and its titles and
// estimates feed the view; otherwise ARG is taken as the server's path and
// the parameters come from --param and OPSBOOK_PARAM_* as given.
func startRemote(ctx context.Context, e *env, c *client.Client, arg, envName, from, emergency string, flags []string, output string, yes bool) error {
	req := client.StartRequest{Runbook: arg, Environment: envName, From: from, Emergency: emergency}
	var doc, rollback *runbook.Document
	quiet := &env{stdin: e.stdin, stdout: io.Discard, stderr: io.Discard, workspace: e.workspace}
	if ws, err := findWorkspace(e); err == nil {
		if abs, rel, err := runbookPath(ws, arg); err == nil {
			req.Runbook = rel
			if p, err := loadPlan(quiet, ws, abs, rel, envName); err == nil {
				doc, rollback = p.Document, p.Rollback
			} else if d, err := parseDoc(quiet, abs); err == nil {
				doc = d // the environment is the server's, not in the local opsbook.yaml
			}
		}
	}
	var defs []runbook.Param
	if doc != nil {
		defs = doc.Front.Params
	}
	params, err := collectParams(e, defs, flags, nil)
	if err != nil {
		return err
	}
	if doc == nil {
		for _, kv := range os.Environ() {
			if name, ok := strings.CutPrefix(kv, "OPSBOOK_PARAM_"); ok {
				k, v, _ := strings.Cut(name, "=")
				if _, given := params[k]; !given {
					params[k] = v
				}
			}
		}
	}
	if len(params) > 0 {
		req.Params = params
	}
	return runRemote(ctx, e, c, req, output, yes, doc, rollback)
}

// resumeRemote is `opsbook resume --server`: the server resumes the run
// (answer decides an interrupted step that is not idempotent) and the run
// is followed as `opsbook run` follows it.
func resumeRemote(ctx context.Context, e *env, c *client.Client, id, answer, output string, yes bool) error {
	d, err := c.GetRun(ctx, id)
	if err != nil {
		return err
	}
	if d.Status.Finished() {
		return badInput("run %s is %s; there is nothing to resume (start a new run with `opsbook run`)", d.ID, d.Status)
	}
	if err := c.Resume(ctx, d.ID, answer); err != nil {
		if client.IsStatus(err, 400) || client.IsStatus(err, 409) {
			return badInput("%v", err)
		}
		return err
	}
	if output == "text" {
		io.WriteString(e.stderr, "resuming run "+d.ID+" on the server\n")
	}
	return watchRemote(ctx, e, c, d.Run, output, yes, localDocument(e, d.Runbook), nil)
}
