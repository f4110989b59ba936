package runs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/opsbook/opsbook/internal/apitypes"
	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/engine"
	"github.com/opsbook/opsbook/internal/lifecycle/gates"
	"github.com/opsbook/opsbook/internal/markdown"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/snapshot"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/workspace"
)

// StartRequest is what POST /api/v1/runs asks for; the type lives in
// apitypes so the CLI's client sends the very struct the server reads.
type StartRequest = apitypes.StartRequest

// Start validates and records a run, then queues it. The principal's
// RunbookRun in the runbook's project and the environment has been checked
// by the caller; here the snapshot choice is checked against RunbookEdit.
func (s *Service) Start(ctx context.Context, p *auth.Principal, req StartRequest, remote string) (runbook.Run, error) {
	return s.start(ctx, p, req, remote, "")
}

// start is Start with the new run's id chosen by the caller when id is not
// empty (a scheduled tick's, see TickRunID).
func (s *Service) start(ctx context.Context, p *auth.Principal, req StartRequest, remote, id string) (runbook.Run, error) {
	ws := s.catalog.Workspace()
	env, err := ws.Environment(req.Environment)
	if err != nil {
		return runbook.Run{}, BadRequest("%v", err)
	}
	project := s.catalog.ProjectOf(req.Runbook)
	canEdit := p.Can(auth.RunbookEdit, auth.Scope{Project: project, Environment: env.Name})
	choice := req.Snapshot
	if choice == "" {
		choice = "published"
		if canEdit {
			choice = "current"
		}
	}
	var docs Documents
	switch {
	case choice == "current":
		if !canEdit {
			return runbook.Run{}, fmt.Errorf("%w: running the workspace's current content needs RunbookEdit; without it only the published snapshot runs (omit \"snapshot\")", auth.ErrForbidden)
		}
		if docs, err = s.catalog.Current(req.Runbook); err != nil {
			return runbook.Run{}, err
		}
	default:
		hash := choice
		if choice == "published" {
			pub, err := s.store.Published(ctx, req.Runbook)
			if errors.Is(err, store.ErrNotFound) {
				return runbook.Run{}, Errorf(http.StatusConflict, "unpublished", "runbook %s has no published snapshot; someone with RunbookEdit must publish it (POST /api/v1/snapshots)", req.Runbook)
			}
			if err != nil {
				return runbook.Run{}, err
			}
			hash = pub.Hash
		} else if !canEdit {
			return runbook.Run{}, fmt.Errorf("%w: running a snapshot other than the published one needs RunbookEdit", auth.ErrForbidden)
		}
		sn, err := s.store.GetSnapshot(ctx, hash)
		if err != nil {
			return runbook.Run{}, err
		}
		if sn.Runbook != req.Runbook {
			return runbook.Run{}, BadRequest("snapshot %s is of %s, not %s", hash, sn.Runbook, req.Runbook)
		}
		if docs, err = parseSnapshot(sn); err != nil {
			return runbook.Run{}, err
		}
	}
	if allowed := docs.Runbook.Front.Environments; len(allowed) > 0 && !slices.Contains(allowed, env.Name) {
		return runbook.Run{}, BadRequest("runbook %s may run in %v only, not in %s (front matter \"environments\")", req.Runbook, allowed, env.Name)
	}
	plan, err := s.plan(ctx, req.Runbook, docs, env.Name, req.Params)
	if err != nil {
		return runbook.Run{}, err
	}
	if _, err := runbook.ResolveParams(docs.Runbook.Front.Params, req.Params); err != nil {
		return runbook.Run{}, err // before the gates: bad input is said first, as the CLI does
	}
	adm, err := s.admitTask(ctx, req.Runbook, docs, env.Name, req.Emergency)
	if err != nil {
		return runbook.Run{}, err
	}
	if _, isTask := gates.TaskOf(req.Runbook); !isTask {
		if err := s.admitStanding(req.Runbook, docs.Runbook, env.Name, req.Emergency); err != nil {
			return runbook.Run{}, err
		}
	}
	run, err := s.engine.Start(ctx, plan, engine.StartOptions{Actor: p.Name, From: req.From, Emergency: req.Emergency, ID: id})
	if err != nil {
		return runbook.Run{}, err
	}
	if err := s.store.PutSnapshot(ctx, docs.Snapshot(run.Snapshot, p.Name)); err != nil {
		return runbook.Run{}, err
	}
	if err := s.sealRunSecrets(ctx, run.ID, docs.Runbook, req.Params); err != nil {
		return runbook.Run{}, err
	}
	if adm != nil {
		if err := adm.task.RecordStart(adm.report, run, p.Name); err != nil {
			return runbook.Run{}, err
		}
	}
	if err := s.cfg.Audit(ctx, p.Name, remote, "run.start", "run/"+run.ID, map[string]string{
		"runbook": run.Runbook, "environment": run.Environment, "snapshot": run.Snapshot, "content": choice}); err != nil {
		return runbook.Run{}, err
	}
	if err := s.enqueue(ctx, store.QueuedRun{RunID: run.ID, Actor: p.Name}, adm); err != nil {
		return runbook.Run{}, err
	}
	return run, nil
}

// Documents are what a run executes: the runbook, its rollback document
// and the runbooks call steps name (by the reference the call writes).
type Documents struct {
	Runbook  *runbook.Document
	Rollback *runbook.Document
	Called   map[string]*runbook.Document
	// Order is Called in the order they are first called.
	Order []*runbook.Document
}

// Snapshot is the stored form of the documents under hash, which is how
// a published snapshot and a run's snapshot keep what the run needs to
// start again or resume.
func (d Documents) Snapshot(hash, actor string) store.Snapshot {
	sn := store.Snapshot{Hash: hash, Runbook: d.Runbook.Path, Source: d.Runbook.Source, CreatedBy: actor}
	if d.Rollback != nil {
		sn.RollbackPath, sn.RollbackSource = d.Rollback.Path, d.Rollback.Source
	}
	for _, c := range d.Order {
		for ref, doc := range d.Called {
			if doc == c {
				sn.Called = append(sn.Called, store.CalledDocument{Ref: ref, Path: c.Path, Source: c.Source})
			}
		}
	}
	return sn
}

// content is the snapshot of the documents alone, without variables.
func (d Documents) content() string {
	return snapshot.Of(snapshot.FromDocuments(d.Runbook, d.Rollback, d.Order, nil)).String()
}

func (s *Service) sealRunSecrets(ctx context.Context, runID string, doc *runbook.Document, params map[string]string) error {
	sealed := map[string]string{}
	for _, d := range doc.Front.Params {
		v, ok := params[d.Name]
		if !ok || !d.SecretParam() {
			continue
		}
		sv, err := s.keys.Seal([]byte(v), runSecretAAD(runID, d.Name))
		if err != nil {
			return fmt.Errorf("seal secret parameter %s: %w", d.Name, err)
		}
		sealed[d.Name] = sv
	}
	if len(sealed) == 0 {
		return nil
	}
	return s.store.PutRunSecrets(ctx, runID, sealed)
}

func runSecretAAD(runID, name string) []byte { return []byte("run/" + runID + "/param/" + name) }

// parseSnapshot reads a stored snapshot's documents; its called runbooks
// resolve as they did when it was made, from the sources it froze.
func parseSnapshot(sn store.Snapshot) (Documents, error) {
	var d Documents
	doc, diags := markdown.Parse(sn.Runbook, sn.Source)
	if doc == nil || runbook.HasErrors(diags) {
		return d, fmt.Errorf("snapshot %s of %s does not parse any more: %v", sn.Hash, sn.Runbook, diags)
	}
	d.Runbook = doc
	if sn.RollbackPath != "" {
		d.Rollback, _ = markdown.Parse(sn.RollbackPath, sn.RollbackSource)
	}
	frozen := map[string][]byte{}
	for _, c := range sn.Called {
		frozen[c.Path] = c.Source
	}
	d.Called, d.Order, _ = workspace.ResolveCalls(".", func(p string) (*runbook.Document, error) {
		src, ok := frozen[p]
		if !ok {
			return nil, nil // the engine fails the call step, naming the reference
		}
		called, _ := markdown.Parse(p, src)
		return called, nil
	}, d.Runbook, d.Rollback)
	return d, nil
}

// plan resolves everything a run needs from the workspace and the store:
// the environment's inventory, its variables (opsbook.yaml's, overridden
// by the server's; sensitive ones decrypted into Secrets) and the
// snapshot over all of it.
func (s *Service) plan(ctx context.Context, rel string, docs Documents, envName string, params map[string]string) (*engine.Plan, error) {
	ws := s.catalog.Workspace()
	env, err := ws.Environment(envName)
	if err != nil {
		return nil, BadRequest("%v", err)
	}
	vars := map[string]string{}
	for k, v := range env.Variables {
		vars[k] = v
	}
	secrets := map[string]string{}
	stored, err := s.store.VariablesFor(ctx, envName)
	if err != nil {
		return nil, err
	}
	for _, v := range stored {
		if !v.Sensitive {
			vars[v.Name] = v.Value
			delete(secrets, v.Name)
			continue
		}
		pt, err := s.keys.Open(v.Value, VariableAAD(v.Environment, v.Name))
		if err != nil {
			return nil, fmt.Errorf("decrypt variable %s: %w", v.Name, err)
		}
		secrets[v.Name] = string(pt)
		delete(vars, v.Name)
	}
	p := &engine.Plan{
		Document: docs.Runbook, Rollback: docs.Rollback, Called: docs.Called, Workspace: ws.Dir, Runbook: rel, Environment: envName,
		Hosts: env.Hosts, Variables: vars, Secrets: secrets, Params: params,
		Protected: env.Protected, PrometheusURL: env.Prometheus,
	}
	if name, ok := strings.CutPrefix(rel, workspace.ActiveDir+"/"); ok {
		p.Task, _, _ = strings.Cut(name, "/")
	}
	p.Snapshot = snapshot.Of(snapshot.FromDocuments(docs.Runbook, docs.Rollback, docs.Order, vars)).String()
	return p, nil
}

// VariableAAD binds a sealed variable value to its environment and name.
func VariableAAD(env, name string) []byte { return []byte("variable/" + env + "/" + name) }

// Resume queues an interrupted (or stopped) run to continue, with the
// documents it started with and its secret parameters unsealed.
func (s *Service) Resume(ctx context.Context, run runbook.Run, actor, retryInterrupted string) error {
	if err := s.refuseReported(ctx, run, "resume (`opsbook resume --local "+run.ID+"`)"); err != nil {
		return err
	}
	if run.Status.Finished() {
		return Errorf(http.StatusConflict, "finished", "run %s is %s; start a new run instead", run.ID, run.Status)
	}
	alive, err := s.store.RunOwnerAlive(ctx, run.ID)
	if err != nil {
		return err
	}
	if alive {
		return Errorf(http.StatusConflict, "running", "run %s is executing (its lease is held); nothing to resume", run.ID)
	}
	if _, err := s.resumePlan(ctx, run); err != nil {
		return err // said now, not by the node that claims it
	}
	if q, err := s.store.Queued(ctx, run.ID); err == nil {
		return Errorf(http.StatusConflict, "queued", "run %s is already queued to go on (by %s); it resumes as soon as a worker is free", run.ID, q.Actor)
	}
	return s.enqueue(ctx, store.QueuedRun{RunID: run.ID, Actor: actor, RetryInterrupted: retryInterrupted}, nil)
}

func (s *Service) resumePlan(ctx context.Context, run runbook.Run) (*engine.Plan, error) {
	sn, err := s.store.GetSnapshot(ctx, run.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("run %s: its documents are not stored (%w); it cannot be resumed by the server", run.ID, err)
	}
	docs, err := parseSnapshot(sn)
	if err != nil {
		return nil, err
	}
	params := map[string]string{}
	for k, v := range run.Params {
		params[k] = v
	}
	sealed, err := s.store.RunSecrets(ctx, run.ID)
	if err != nil {
		return nil, err
	}
	for name, sv := range sealed {
		pt, err := s.keys.Open(sv, runSecretAAD(run.ID, name))
		if err != nil {
			return nil, fmt.Errorf("run %s: unseal secret parameter %s: %w", run.ID, name, err)
		}
		params[name] = string(pt)
	}
	return s.plan(ctx, run.Runbook, docs, run.Environment, params)
}
