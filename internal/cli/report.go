package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/opsbook/opsbook/internal/apitypes"
	"github.com/opsbook/opsbook/internal/client"
	"github.com/opsbook/opsbook/internal/engine"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/snapshot"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/workspace"
)

// `opsbook run --local` with a server configured executes in this process
// and reports every event to the server, so the server's overview, runs,
// run page, audit log and postmortem show the run. The local store is the
// outbox: the run's own event log is written before each step goes on (as
// for any local run), and run_reports records how far the server has
// acknowledged it. A reporter sends what is not acknowledged yet, in
// order, in batches the server takes exactly once (by seq); a network
// failure or a server restart only delays it. The run never waits for the
// server: it warns once and goes on.

// reportBatchBytes bounds one batch's text, well under the server's
// request limit (1 MiB) even when JSON escapes every byte of output.
const reportBatchBytes = 128 << 10

// reportRequestTimeout bounds one request to the server.
const reportRequestTimeout = 15 * time.Second

// reportWait is how long a finished run's process waits for the server to
// take what is left of the log before it leaves it queued
// (OPSBOOK_REPORT_WAIT, a Go duration).
func reportWait() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("OPSBOOK_REPORT_WAIT")); err == nil && d >= 0 {
		return d
	}
	return 10 * time.Second
}

// reporter sends one local run's events to the server.
type reporter struct {
	c        *client.Client
	st       *store.Store
	runID    string
	register apitypes.ReportRequest
	stderr   io.Writer

	wake   chan struct{}
	stop   chan struct{} // closed by finish: send what is left, then end
	done   chan struct{}
	cancel context.CancelFunc // ends the sending when finish gives up
	// begin starts the sending: once the run's view is set up (observe),
	// so that news finds the live view, or at finish at the latest.
	begin func()

	// resendFrom is where the log is sent from when the server holds less
	// than it acknowledged (restored from a backup): -1 when it does not;
	// register asks the server to register the run again first.
	resendFrom int64
	register2  bool
	recovered  int

	mu       sync.Mutex
	live     *liveTerm // the run's live view while it draws: news goes there
	toldLive bool      // news went to the live view, not to stderr: said again at the end
	down     bool      // the last attempt failed; warned
	fatal    error     // the server refused the report for good
	caughtUp bool
}

// reportRequest is the registration of a local run with the server: its
// documents as they run, its parameters without secrets.
func reportRequest(run runbook.Run, p *engine.Plan) apitypes.ReportRequest {
	req := apitypes.ReportRequest{ID: run.ID, Runbook: run.Runbook, Environment: run.Environment, Task: run.Task,
		Emergency: run.Emergency, Snapshot: run.Snapshot, Source: string(p.Document.Source), CreatedAt: run.CreatedAt}
	params := map[string]string{}
	for k, v := range run.Params {
		params[k] = v
	}
	for _, d := range p.Document.Front.Params {
		if d.SecretParam() {
			delete(params, d.Name)
		}
	}
	if len(params) > 0 {
		req.Params = params
	}
	if p.Rollback != nil {
		req.RollbackPath, req.RollbackSource = p.Rollback.Path, string(p.Rollback.Source)
	}
	refs := make([]string, 0, len(p.Called))
	for ref := range p.Called {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	for _, ref := range refs {
		d := p.Called[ref]
		req.Called = append(req.Called, apitypes.ReportedCalled{Ref: ref, Path: d.Path, Source: string(d.Source)})
	}
	return req
}

// preRegisterTimeout bounds the registration tried before a reported run
// starts: an unreachable server delays the run by at most this.
const preRegisterTimeout = 3 * time.Second

// preRegister registers a run about to start (id) with the server before
// anything executes, so that a server that refuses it — no RunbookRun
// there, a key it does not accept, an environment it does not know, a
// protected gate — stops the run before it starts instead of leaving it
// off the record. An unreachable server does not: registered is false and
// the reporter registers the run when the server answers.
func preRegister(ctx context.Context, c *client.Client, id, rel string, p *engine.Plan, emergency string) (registered bool, err error) {
	run := runbook.Run{ID: id, Runbook: rel, Task: p.Task, Environment: p.Environment, Snapshot: p.Snapshot,
		Params: p.Params, Emergency: emergency, CreatedAt: time.Now()}
	rctx, cancel := context.WithTimeout(ctx, preRegisterTimeout)
	defer cancel()
	_, err = c.Report(rctx, reportRequest(run, p))
	var ce *client.Error
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ce) && ce.Status >= 400 && ce.Status < 500 && ce.Status != http.StatusRequestTimeout && ce.Status != http.StatusTooManyRequests:
		return false, &ExitError{Code: ExitRefused, Err: fmt.Errorf("%v; --local keeps the run on the server's record, and the server refused it: nothing was run (ask for RunbookRun there, or run without a server)", err)}
	}
	return false, nil
}

// startReporter records that run reports to c's server (the outbox entry
// survives this process) and starts sending in the background.
func startReporter(ctx context.Context, e *env, st *store.Store, c *client.Client, run runbook.Run, p *engine.Plan) (*reporter, error) {
	if err := st.CreateRunReport(ctx, run.ID, c.Base()); err != nil {
		return nil, err
	}
	r := &reporter{c: c, st: st, runID: run.ID, register: reportRequest(run, p), stderr: e.stderr, resendFrom: -1,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	// Not the command's context: an interrupted run's last events are
	// still sent while finish waits.
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	r.begin = sync.OnceFunc(func() { go r.loop(lctx) })
	return r, nil
}

// poke says the run's log grew.
func (r *reporter) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// observe chains the reporter after the view's observer, and finds the
// live view, if the run draws one, for the reporter's news.
func (r *reporter) observe(o *engine.ExecOptions) {
	if d, ok := o.Decider.(*cliDecider); ok && d.live != nil {
		r.mu.Lock()
		r.live = d.live
		r.mu.Unlock()
	}
	prev := o.Observe
	o.Observe = func(ev runbook.Event) {
		if prev != nil {
			prev(ev)
		}
		r.poke()
	}
	r.begin()
}

// tell shows the operator news about the reporting: in the live view
// while it draws (a line on stderr would break its region), else on stderr.
func (r *reporter) tell(msg string) {
	r.mu.Lock()
	live := r.live
	r.mu.Unlock()
	if live != nil {
		live.setReport(msg)
		r.mu.Lock()
		r.toldLive = true
		r.mu.Unlock()
		return
	}
	fmt.Fprintf(r.stderr, "opsbook: %s\n", msg)
}

func (r *reporter) loop(ctx context.Context) {
	defer close(r.done)
	backoff := 250 * time.Millisecond
	poll := time.NewTicker(time.Second) // a safety net beside poke
	defer poll.Stop()
	for {
		caughtUp, err := r.send(ctx)
		r.mu.Lock()
		r.caughtUp = caughtUp && err == nil
		r.mu.Unlock()
		if err != nil && ctx.Err() != nil {
			return
		}
		if err != nil {
			var ce *client.Error
			if errors.As(err, &ce) && ce.Status < 500 && ce.Status != http.StatusTooManyRequests && ce.Status != http.StatusRequestTimeout {
				r.mu.Lock()
				r.fatal = err
				r.mu.Unlock()
				r.tell(fmt.Sprintf("the server refused the record of run %s: %v; the run goes on here and keeps its local record", r.runID, err))
				return
			}
			r.mu.Lock()
			warn := !r.down
			r.down = true
			r.mu.Unlock()
			if warn {
				r.tell(fmt.Sprintf("cannot report run %s to %s (%v); the run goes on and its events wait in the local store until the server is back", r.runID, r.c.Base(), err))
			}
			select {
			case <-time.After(backoff):
			case <-r.stop:
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
					return
				}
			}
			backoff = min(backoff*2, 2*time.Second)
			continue
		}
		r.mu.Lock()
		back := r.down
		r.down = false
		r.mu.Unlock()
		if back {
			r.tell(fmt.Sprintf("reporting run %s to %s again", r.runID, r.c.Base()))
		}
		if caughtUp {
			r.mu.Lock()
			if live := r.live; live != nil && r.toldLive {
				live.setReport("") // the server has everything: no news
			}
			r.mu.Unlock()
		}
		backoff = 250 * time.Millisecond
		if !caughtUp {
			continue
		}
		select {
		case <-r.stop:
			// The run ended: one more pass picks up its last events.
			if caughtUp, err := r.send(ctx); err == nil && caughtUp {
				r.mu.Lock()
				r.caughtUp = true
				r.mu.Unlock()
				return
			}
		case <-r.wake:
		case <-poll.C:
		case <-ctx.Done():
			return
		}
	}
}

// send registers the run if the server has not yet, then sends what the
// server has not acknowledged, up to one batch; caughtUp says nothing was
// left.
func (r *reporter) send(ctx context.Context) (caughtUp bool, err error) {
	rep, err := r.st.GetRunReport(ctx, r.runID)
	if err != nil {
		return false, err
	}
	if !rep.Registered || r.register2 {
		rctx, cancel := context.WithTimeout(ctx, reportRequestTimeout)
		_, err := r.c.Report(rctx, r.register)
		cancel()
		if err != nil {
			return false, err
		}
		if err := r.st.MarkRunReportRegistered(ctx, r.runID); err != nil {
			return false, err
		}
		r.register2 = false
	}
	from := rep.SentSeq
	if r.resendFrom >= 0 {
		from = r.resendFrom
	}
	evs, err := r.st.Events(ctx, r.runID, from, 500)
	if err != nil {
		return false, err
	}
	if len(evs) == 0 {
		return true, nil
	}
	n, size := 0, 0
	for n < len(evs) && (n == 0 || size+len(evs[n].Text) <= reportBatchBytes) {
		size += len(evs[n].Text) + 256
		n++
	}
	rctx, cancel := context.WithTimeout(ctx, reportRequestTimeout)
	res, err := r.c.ReportEvents(rctx, r.runID, evs[:n])
	cancel()
	var ce *client.Error
	if errors.As(err, &ce) && r.recovered < 3 && (ce.Code == "seq_gap" || ce.Code == "not_found") {
		// The server holds less than it acknowledged (a database restored
		// from a backup, or the run deleted): send it all again, from the
		// registration on; what it has is skipped.
		r.recovered++
		r.resendFrom, r.register2 = 0, ce.Code == "not_found"
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if r.resendFrom >= 0 {
		r.resendFrom = res.Acked
		if res.Acked >= rep.SentSeq {
			r.resendFrom = -1
		}
	}
	if err := r.st.SetRunReportSent(ctx, r.runID, res.Acked); err != nil {
		return false, err
	}
	return false, nil // caught up is seen by the next pass reading nothing
}

// finish waits, up to wait, for the server to take the rest of the log,
// and says what is left when it did not.
func (r *reporter) finish(wait time.Duration) {
	r.mu.Lock()
	r.live = nil // the run's view has ended
	r.mu.Unlock()
	r.begin()
	close(r.stop)
	select {
	case <-r.done:
	case <-time.After(wait):
	}
	r.cancel()
	<-r.done // the store closes after this
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.caughtUp && r.toldLive {
		fmt.Fprintf(r.stderr, "opsbook: the server %s was out of reach during run %s; it has the whole record now\n", r.c.Base(), r.runID)
	}
	if r.fatal != nil && r.toldLive {
		fmt.Fprintf(r.stderr, "opsbook: the server refused the record of run %s: %v; it is kept in the local store only\n", r.runID, r.fatal)
	}
	if r.caughtUp || r.fatal != nil {
		return
	}
	left := "some events"
	if rep, err := r.st.GetRunReport(context.Background(), r.runID); err == nil {
		if last, err := r.st.LastSeq(context.Background(), r.runID); err == nil && last > rep.SentSeq {
			left = fmt.Sprintf("%d event(s)", last-rep.SentSeq)
		}
	}
	fmt.Fprintf(r.stderr, "opsbook: %s of run %s are not on %s yet; they wait in the local store: send them with `opsbook resume --local %s`\n",
		left, r.runID, r.c.Base(), r.runID)
}

// reportClient is the client a local run reports through: the server
// named by --server or OPSBOOK_SERVER, else the one the run reported to
// before (its outbox entry), with the key in OPSBOOK_API_KEY; nil when
// the run reports nowhere.
func reportClient(ctx context.Context, st *store.Store, runID, server string) (*client.Client, error) {
	if c, err := remoteClient(server); err != nil || c != nil {
		return c, err
	}
	rep, err := st.GetRunReport(ctx, runID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return remoteClient(rep.Server)
}

// flushReport is `opsbook resume --local` of a finished reported run:
// nothing runs again; what the server lacks of its log is sent.
func flushReport(ctx context.Context, e *env, st *store.Store, c *client.Client, ws *workspace.Workspace, run runbook.Run) error {
	p, err := loadPlan(&env{stdin: e.stdin, stdout: io.Discard, stderr: io.Discard, workspace: e.workspace}, ws, ws.Path(run.Runbook), run.Runbook, run.Environment)
	if err != nil {
		return err
	}
	// The server has not registered the run yet: it would get the
	// documents as they are now, which must be the ones the run ran.
	if rep, err := st.GetRunReport(ctx, run.ID); (err != nil || !rep.Registered) && run.Task == "" && run.Snapshot != p.Snapshot {
		return badInput("run %s ran snapshot %s of %s, which has changed since (now %s): the server cannot be given the documents it ran; its record stays local (opsbook show %s)",
			run.ID, snapshot.ShortOf(run.Snapshot), run.Runbook, snapshot.ShortOf(p.Snapshot), run.ID)
	}
	r, err := startReporter(ctx, e, st, c, run, p)
	if err != nil {
		return err
	}
	r.finish(reportWait())
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fatal != nil {
		return r.fatal
	}
	if !r.caughtUp {
		return &ExitError{Code: ExitInterrupted, Err: fmt.Errorf("run %s is %s; the server %s did not take the rest of its record yet: try again later", run.ID, run.Status, c.Base())}
	}
	fmt.Fprintf(e.stderr, "run %s is %s; the server %s has its whole record\n", run.ID, run.Status, c.Base())
	return nil
}

// syncWriter serialises writes to one stream from several goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// syncedStderr is e with a stderr that the reporter and the run's view
// can both write to.
func syncedStderr(e *env) *env {
	c := *e
	c.stderr = &syncWriter{w: e.stderr}
	return &c
}

// unsentHint names the earlier local runs whose record a server still
// lacks (the server was down when they ended), after a reported run.
func unsentHint(ctx context.Context, e *env, st *store.Store, except string) {
	unsent, err := st.UnsentRunReports(ctx)
	if err != nil {
		return
	}
	var ids []string
	for _, rr := range unsent {
		if rr.RunID != except {
			ids = append(ids, rr.RunID)
		}
	}
	if len(ids) == 0 {
		return
	}
	fmt.Fprintf(e.stderr, "opsbook: %d earlier run(s) have records the server still lacks; send each with `opsbook resume --local RUN`: %s\n",
		len(ids), strings.Join(ids, " "))
}
