// Package server is `opsbook serve`: the HTTP server, its middleware, the
// route table with an authorisation rule on every route, and the services
// handlers call. Runs are started, executed, resumed and decided by the
// run service (internal/runs); the server translates HTTP into its calls.
// JSON handlers live in internal/server/api, HTML ones in
// internal/server/ui; both register through Server.Handle.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/audit"
	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/engine"
	"github.com/opsbook/opsbook/internal/notify"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/runs"
	"github.com/opsbook/opsbook/internal/secret"
	"github.com/opsbook/opsbook/internal/store"
)

// Config configures a Server.
type Config struct {
	Store     *store.Store
	Workspace string // directory of the workspace served
	Keys      *secret.Keyring
	Logger    *slog.Logger
	// Engine executes runs; default engine.New with the store.
	Engine *engine.Engine
	// Workers is how many runs execute at once; default 64. A run waiting
	// at a gate holds no worker while it waits.
	Workers int
	// LeaseTTL is how long this node's lease and its runs' leases last
	// without renewal; a dead node's runs are taken over by a live one
	// within 2× it. Default 15 s.
	LeaseTTL time.Duration
	// Node names this node in the store's node and run leases; default
	// store.ProcessOwner() (host, pid, process start), which lets a node
	// on the same host see at once that a killed one is dead. Any other
	// name is trusted until its lease expires.
	Node string
	// ShutdownGrace is how long shutdown waits for running runs; default 30 s.
	ShutdownGrace time.Duration
	// TrustProxy takes the client address from X-Forwarded-For.
	TrustProxy bool
	// KeepRuns, when positive, applies run retention every hour: only the
	// newest KeepRuns finished runs per runbook and environment are kept.
	KeepRuns int
	// SchedulerInterval is how often scheduled triggers are checked;
	// default 15 s.
	SchedulerInterval time.Duration
	// WatchInterval is how often the workspace's files are checked for
	// changes; default 5 s.
	WatchInterval time.Duration
	// SessionTTL is how long a login lasts; default 12 h.
	SessionTTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// OIDC, when set, offers sign-in through an OpenID Connect provider.
	OIDC *OIDCConfig
	// PublicURL is the server's address as people reach it, for links in
	// notifications; default http://<the listening address>.
	PublicURL string
}

// Server is the opsbook server.
type Server struct {
	cfg     Config
	store   *store.Store
	engine  *engine.Engine
	keys    *secret.Keyring
	catalog *Catalog
	log     *slog.Logger
	mux     *http.ServeMux
	routes  []Route
	metrics *serverMetrics
	runs    *runs.Service
	// notifier delivers the notifications of opsbook.yaml (see notify).
	notifier *notify.Dispatcher
	logins   loginThrottle
	handler  http.Handler
	// errorPage, when set (by the HTML UI), renders errors of browser
	// requests as pages instead of JSON.
	errorPage ErrorPageFunc
	oidc      *oidcClient // nil: OIDC sign-in is off
	sshHosts  *sshHosts   // the engine's SSH connections, closed at shutdown; nil with a configured engine
}

// New builds a server: it reads the workspace and registers the built-in
// routes (health, readiness, metrics). Register the API with api.Register
// before serving.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Keys == nil {
		return nil, errors.New("server: Store and Keys are required")
	}
	// The audit log's head is anchored with the master key, which the
	// database does not hold; a head written without it is anchored now.
	cfg.Store.SetAuditAnchor(cfg.Keys)
	if err := cfg.Store.AnchorAudit(context.Background()); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 30 * time.Second
	}
	if cfg.SchedulerInterval <= 0 {
		cfg.SchedulerInterval = 15 * time.Second
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var hosts *sshHosts
	if cfg.Engine == nil {
		hosts = &sshHosts{dir: cfg.Workspace}
		ecfg := engine.Config{Store: cfg.Store, Remote: hosts.Executor, LeaseTTL: cfg.LeaseTTL, Owner: cfg.Node}
		if cfg.Store.Dialect() == store.DialectPostgres {
			// Decisions taken on other nodes wake a waiting run through the
			// store's notifications (runs.Service); polling is the safety
			// net for a lost listening connection.
			ecfg.PollInterval = 5 * time.Second
		}
		cfg.Engine = engine.New(ecfg)
	}
	catalog, err := LoadCatalog(cfg.Workspace)
	if err != nil {
		return nil, fmt.Errorf("serve workspace %s: %w", cfg.Workspace, err)
	}
	s := &Server{cfg: cfg, store: cfg.Store, engine: cfg.Engine, keys: cfg.Keys, catalog: catalog, log: cfg.Logger, mux: http.NewServeMux(), sshHosts: hosts}
	if cfg.OIDC != nil {
		s.oidc = newOIDCClient(*cfg.OIDC)
	}
	s.runs, err = runs.New(runs.Config{Store: cfg.Store, Engine: cfg.Engine, Keys: cfg.Keys, Catalog: catalog, Logger: cfg.Logger,
		Audit: s.Audit, Workers: cfg.Workers, LeaseTTL: cfg.LeaseTTL, Node: cfg.Node, Now: cfg.Now,
		StepFinished: func(status string, d time.Duration) {
			s.metrics.stepDuration.With(status).Observe(d.Seconds())
		},
		RunFinished: func(status runbook.RunStatus) { s.metrics.runsFinished.With(string(status)).Inc() },
	})
	if err != nil {
		return nil, err
	}
	s.metrics = newMetrics(s)
	s.handler = s.withLogging(s.mux)
	s.notifier = s.newNotifier(cfg.PublicURL)

	s.Handle("GET /healthz", auth.Public(), "Liveness: the process serves HTTP", func(w http.ResponseWriter, r *http.Request) error {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	})
	s.Handle("GET /readyz", auth.Public(), "Readiness: the database answers", func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.store.Ping(ctx); err != nil {
			return Errorf(http.StatusServiceUnavailable, "not_ready", "database unreachable: %v", err)
		}
		if s.runs.Closed() {
			return Errorf(http.StatusServiceUnavailable, "not_ready", "shutting down")
		}
		ready := map[string]string{"status": "ready"}
		// A workspace that changed into one that cannot be read leaves the
		// server serving the last good one: ready, and saying why.
		if since, err := s.catalog.Stale(); err != nil {
			ready["workspace"] = fmt.Sprintf("serving the workspace as read at %s; the files changed since cannot be read: %v",
				since.UTC().Format(time.RFC3339), err)
		}
		WriteJSON(w, http.StatusOK, ready)
		return nil
	})
	s.Handle("GET /metrics", auth.Public(), "Prometheus metrics", func(w http.ResponseWriter, r *http.Request) error {
		s.metrics.registry.ServeHTTP(w, r)
		return nil
	})
	return s, nil
}

// watchAfterRuns carries on the watches after successful runs (front
// matter watch:), whichever node or CLI ran them: every interval it
// checks the watches that are due (engine.WatchRound; a lease in the store
// gives each to one node at a time).
func (s *Server) watchAfterRuns(ctx context.Context, every time.Duration) {
	node := fmt.Sprintf("watch-%d-%d", os.Getpid(), time.Now().UnixNano())
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := s.engine.WatchRound(ctx, node); err != nil && ctx.Err() == nil {
			s.log.Warn("watch after runs", "err", err)
		} else if n > 0 {
			s.notifier.Wake() // a breach is news
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) newNotifier(base string) *notify.Dispatcher {
	return notify.New(notify.Config{Store: s.store, Workspace: s.catalog.Workspace, BaseURL: base, Logger: s.log})
}

// Notifier is the notification dispatcher (tests drive its rounds).
func (s *Server) Notifier() *notify.Dispatcher { return s.notifier }

// Store, Engine, Catalog and Keys are the services handlers use.
func (s *Server) Store() *store.Store       { return s.store }
func (s *Server) Engine() *engine.Engine    { return s.engine }
func (s *Server) Catalog() *Catalog         { return s.catalog }
func (s *Server) Keys() *secret.Keyring     { return s.keys }
func (s *Server) Logger() *slog.Logger      { return s.log }
func (s *Server) now() time.Time            { return s.cfg.Now() }
func (s *Server) Now() time.Time            { return s.cfg.Now() }
func (s *Server) SessionTTL() time.Duration { return s.cfg.SessionTTL }

// Subscribe returns a channel that is signalled when a run's log grows in
// this process, and a function to stop listening.
func (s *Server) Subscribe(runID string) (<-chan struct{}, func()) {
	return s.runs.Subscribe(runID)
}

// SubscribeAll is Subscribe for every run's news (the overview).
func (s *Server) SubscribeAll() (<-chan struct{}, func()) { return s.runs.SubscribeAll() }

// ServeHTTP serves the registered routes through the middleware.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Audit appends an entry to the audit log.
func (s *Server) Audit(ctx context.Context, actor, remote, action, target string, detail map[string]string) error {
	_, err := s.store.AppendAudit(context.WithoutCancel(ctx), audit.Entry{Time: s.now(), Actor: actor, Remote: remote, Action: action, Target: target, Detail: detail})
	if err != nil {
		s.log.Error("audit log append failed", "action", action, "target", target, "err", err)
		return fmt.Errorf("record %s in the audit log: %w", action, err)
	}
	return nil
}

// AuditRequest appends an entry for the request's principal and address.
func (s *Server) AuditRequest(r *http.Request, action, target string, detail map[string]string) error {
	actor := "anonymous"
	if p := auth.FromContext(r.Context()); p != nil {
		actor = p.Name
	}
	return s.Audit(r.Context(), actor, s.RemoteAddr(r), action, target, detail)
}

// Start takes over runs left by a previous process or a dead node, now
// and for as long as the server runs (runs.Service.StartTakeover); call it once,
// after registering routes and before serving.
func (s *Server) Start(ctx context.Context) { s.runs.StartTakeover(ctx) }

// Shutdown stops taking runs and waits (up to ctx's deadline) for the
// executing ones.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.runs.Shutdown(ctx)
	if s.sshHosts != nil {
		s.sshHosts.Close() // after the runs: a finishing step may still use its connection
	}
	return err
}

// ListenAndServe serves on addr until ctx is cancelled (SIGTERM), then
// shuts down gracefully: it stops accepting connections, finishes
// in-flight requests, and lets executing runs finish within
// Config.ShutdownGrace; runs still executing after that are left for the
// next start to resume. ready, when non-nil, receives the bound address.
func (s *Server) ListenAndServe(ctx context.Context, addr string, ready func(net.Addr)) error {
	ln, err := Listen(addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln, ready)
}

// Listen binds addr. `opsbook serve` binds before it creates the first
// administrator, so a start on a busy port creates no user whose
// password nobody saw.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (is another server running there? pick another with --addr)", addr, err)
	}
	return ln, nil
}

// Serve is ListenAndServe on a bound listener, which it closes.
func (s *Server) Serve(ctx context.Context, ln net.Listener, ready func(net.Addr)) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	// Set up before anyone is told the address: the workspace as it is now
	// (a change made just after ready must be seen as a change) and the
	// notifier's links.
	workspaceNow := s.catalog.fingerprint()
	if s.cfg.PublicURL == "" {
		s.notifier = s.newNotifier("http://" + ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	if ready != nil {
		ready(ln.Addr())
	}
	s.Start(context.WithoutCancel(ctx))
	go s.housekeeping(ctx)
	go s.notifier.Run(ctx)
	go s.watchAfterRuns(ctx, 5*time.Second)
	go s.runs.RunScheduler(ctx, s.cfg.SchedulerInterval)
	watch := s.cfg.WatchInterval
	if watch <= 0 {
		watch = 5 * time.Second
	}
	go s.watchWorkspace(ctx, workspaceNow, watch)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down: no new connections or runs; waiting for executing runs", "grace", s.cfg.ShutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer cancel()
	// SSE streams would hold Shutdown open; closing idle and streaming
	// connections is what the deadline is for.
	httpErr := hs.Shutdown(sctx)
	if errors.Is(httpErr, context.DeadlineExceeded) {
		hs.Close()
		httpErr = nil
	}
	runErr := s.Shutdown(sctx)
	if runErr != nil {
		s.log.Warn("shutdown", "err", runErr)
	}
	return httpErr
}

// housekeeping deletes expired sessions and applies run retention hourly.
func (s *Server) housekeeping(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.store.DeleteExpiredSessions(ctx, s.now()); err != nil {
			s.log.Warn("delete expired sessions", "err", err)
		}
		if s.cfg.KeepRuns > 0 {
			n, err := s.ApplyRetention(ctx, s.cfg.KeepRuns)
			if err != nil {
				s.log.Warn("run retention", "err", err)
			} else if n > 0 {
				s.Audit(ctx, "system", "", "retention.apply", "runs", map[string]string{"keep": fmt.Sprint(s.cfg.KeepRuns), "deleted": fmt.Sprint(n)})
			}
		}
	}
}

// AdminTeam is the team the first start creates and grants Admin.
const AdminTeam = "admins"

// Bootstrap creates the first administrator when there are no users: user
// "admin" in team "admins" (granted Admin), with the password read from
// OPSBOOK_ADMIN_PASSWORD_FILE or a random one. It returns the password
// when it generated it (to print once), else "".
func (s *Server) Bootstrap(ctx context.Context, getenv func(string) string) (user, generated string, err error) {
	n, err := s.store.CountUsers(ctx)
	if err != nil {
		return "", "", err
	}
	if n > 0 {
		return "", "", nil
	}
	password := ""
	if f := getenv("OPSBOOK_ADMIN_PASSWORD_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", "", fmt.Errorf("OPSBOOK_ADMIN_PASSWORD_FILE: %w", err)
		}
		password = strings.TrimSpace(string(b))
	} else {
		password = newPassword()
		generated = password
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return "", "", fmt.Errorf("admin password from OPSBOOK_ADMIN_PASSWORD_FILE: %w", err)
	}
	u := &store.User{Name: "admin", Display: "Administrator", PasswordHash: hash}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return "", "", err
	}
	if _, err := s.store.CreateTeam(ctx, AdminTeam); err != nil && !errors.Is(err, store.ErrConflict) {
		return "", "", err
	}
	if err := s.store.AddTeamMember(ctx, AdminTeam, u.ID); err != nil {
		return "", "", err
	}
	if err := s.store.CreateGrant(ctx, &auth.Grant{Team: AdminTeam, Permission: auth.Admin}); err != nil {
		return "", "", err
	}
	if err := s.Audit(ctx, "system", "", "user.bootstrap", "user/admin", map[string]string{"team": AdminTeam}); err != nil {
		return "", "", err
	}
	return u.Name, generated, nil
}
