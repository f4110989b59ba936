package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/secret"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/server/routes"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/workspace"
)

// sampleWorkspace is served when no workspace is found, so that
// `go run ./cmd/opsbook serve` works on a fresh clone.
const sampleWorkspace = "examples/workspace"

func newServeCmd(e *env) *cobra.Command {
	var addr, db, data, publicURL, node string
	var workers, keepRuns int
	var grace, leaseTTL, schedulerInterval time.Duration
	var trustProxy bool
	var oidcFlags server.OIDCConfig
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the opsbook server: web UI, REST API, runs, triggers, audit log",
		Long: `Serve a workspace over HTTP: the REST API under /api/v1 (OpenAPI at
/api/v1/openapi.json), runs executed inside the server, users, teams and
permissions, sensitive variables encrypted at rest, a hash-chained audit log,
/healthz, /readyz and Prometheus /metrics.

With no flags it serves the workspace found from the current directory (or
the sample workspace examples/workspace when there is none) on SQLite in
<workspace>/.opsbook/server.db. The first start creates the user "admin" and
prints its password once, after the listener is up (or reads it from
OPSBOOK_ADMIN_PASSWORD_FILE); "opsbook admin reset-password" sets a new one.

Sensitive values are encrypted with the master key from OPSBOOK_MASTER_KEY,
OPSBOOK_MASTER_KEY_FILE, or <data>/master.key (generated on first start;
back it up).

--oidc-issuer and --oidc-client-id add "Sign in with <provider>" to the sign-in
page (OpenID Connect, authorization code with PKCE); the client secret is read
from OPSBOOK_OIDC_CLIENT_SECRET or OPSBOOK_OIDC_CLIENT_SECRET_FILE. See
docs/auth.md.

SIGTERM or Ctrl-C stops accepting requests and runs, waits --grace for
executing runs, and leaves the rest to be resumed on the next start.`,
		Example: `  opsbook serve
  opsbook serve --addr :8080 --db postgres://opsbook@db/opsbook --workspace /srv/ops
  OPSBOOK_ADMIN_PASSWORD_FILE=/run/secrets/admin opsbook serve --data /var/lib/opsbook
  OPSBOOK_OIDC_CLIENT_SECRET_FILE=/run/secrets/oidc opsbook serve --oidc-issuer https://id.example.com --oidc-client-id opsbook --oidc-groups-claim groups`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			ws, err := serveWorkspace(e.workspace)
			if err != nil {
				return badInput("%v", err)
			}
			if data == "" {
				data = ws.StateDir()
			}
			if err := os.MkdirAll(data, 0o700); err != nil {
				return fmt.Errorf("create data directory %s: %w", data, err)
			}
			if db == "" {
				db = filepath.Join(data, "server.db")
			}
			log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			keys, keySource, err := secret.LoadKeyring(data, os.Getenv)
			if err != nil {
				return badInput("master key: %v", err)
			}
			oidcCfg, err := serveOIDC(oidcFlags, os.Getenv)
			if err != nil {
				return badInput("%v", err)
			}
			st, err := store.Open(ctx, db)
			if err != nil {
				return err
			}
			defer st.Close()
			srv, err := server.New(server.Config{Store: st, Workspace: ws.Dir, Keys: keys, Logger: log,
				Workers: workers, LeaseTTL: leaseTTL, SchedulerInterval: schedulerInterval, Node: node, ShutdownGrace: grace, TrustProxy: trustProxy, KeepRuns: keepRuns, OIDC: oidcCfg,
				PublicURL: publicURL})
			if err != nil {
				return err
			}
			routes.Register(srv)
			// Bound first: a start on a busy port must not create the
			// administrator and lose its generated password.
			ln, err := server.Listen(addr)
			if err != nil {
				return err
			}
			user, password, err := srv.Bootstrap(ctx, os.Getenv)
			if err != nil {
				ln.Close()
				return fmt.Errorf("create the first administrator: %w", err)
			}
			log.Info("serving", "workspace", ws.Dir, "store", st.Dialect(), "master_key", keySource)
			if exe, err := os.Executable(); err == nil && startedByGoRun(exe) {
				// `go run` does not pass a kill of itself on to the server
				// it built: stop when it goes, so the port is freed.
				var stop context.CancelFunc
				ctx, stop = context.WithCancel(ctx)
				defer stop()
				go stopWhenParentExits(ctx, stop, time.Second, func() { log.Info("go run exited; stopping") })
			}
			return srv.Serve(ctx, ln, func(a net.Addr) {
				fmt.Fprintf(e.stdout, "opsbook serving %s on http://%s (pid %d: stop it with Ctrl-C or kill %d)\n", ws.Dir, a, os.Getpid(), os.Getpid())
				if user != "" && password != "" {
					fmt.Fprintf(e.stdout, "\nFirst start: created user %q with password\n\n    %s\n\nIt is shown only this once. Open http://%s/ in a browser and sign in, or point the CLI at it\nwith: eval \"$(opsbook login --server http://%s --user %s)\" (creates an API key).\n\n", user, password, a, a, user)
				} else if user != "" {
					fmt.Fprintf(e.stdout, "First start: created user %q with the password from OPSBOOK_ADMIN_PASSWORD_FILE\n", user)
				}
			})
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	cmd.Flags().StringVar(&publicURL, "public-url", os.Getenv("OPSBOOK_PUBLIC_URL"), "the server's address as people reach it, for links in notifications (default http://<addr>; env OPSBOOK_PUBLIC_URL)")
	cmd.Flags().StringVar(&db, "db", "", "database: a SQLite file path, or postgres://user:pass@host/db (default <data>/server.db)")
	cmd.Flags().StringVar(&data, "data", "", "data directory for the SQLite database and the generated master key (default <workspace>/.opsbook)")
	cmd.Flags().IntVar(&workers, "workers", 64, "runs executed at once on this node (a run waiting at a gate holds none)")
	cmd.Flags().StringVar(&node, "node", "", "name of this node in run and node leases (default host:pid:start, by which a node on the same host sees at once that a killed one is dead; a name is trusted until its lease expires)")
	cmd.Flags().DurationVar(&leaseTTL, "lease-ttl", 15*time.Second, "how long this node's lease lasts unrenewed: with several nodes on one PostgreSQL, a dead node's runs are taken over within 2× it")
	cmd.Flags().DurationVar(&schedulerInterval, "scheduler-interval", 15*time.Second, "how often this node checks scheduled triggers for due ticks (a tick is on time up to a minute late; shorten it for @every schedules of seconds)")
	cmd.Flags().IntVar(&keepRuns, "keep-runs", 0, "keep only the newest N finished runs per runbook and environment (0 keeps all); the audit log is never pruned")
	cmd.Flags().DurationVar(&grace, "grace", 30*time.Second, "on shutdown, how long to wait for executing runs before leaving them to be resumed")
	cmd.Flags().StringVar(&oidcFlags.Issuer, "oidc-issuer", "", "offer sign-in through this OpenID Connect provider (issuer URL); the client secret comes from OPSBOOK_OIDC_CLIENT_SECRET or OPSBOOK_OIDC_CLIENT_SECRET_FILE")
	cmd.Flags().StringVar(&oidcFlags.ClientID, "oidc-client-id", "", "the client ID registered for opsbook at the OIDC provider")
	cmd.Flags().StringVar(&oidcFlags.RedirectURL, "oidc-redirect-url", "", "the callback URL registered at the provider (default <scheme>://<host>/login/oidc/callback as the browser reached the server)")
	cmd.Flags().StringVar(&oidcFlags.Name, "oidc-name", "", "the provider's name on the sign-in button (default the issuer's host)")
	cmd.Flags().StringVar(&oidcFlags.GroupsClaim, "oidc-groups-claim", "", "ID-token claim listing the user's groups: at each sign-in the user joins the existing teams of those names and leaves the others")
	cmd.Flags().BoolVar(&trustProxy, "trust-proxy", false, "take the client address from X-Forwarded-For (only behind a reverse proxy you control)")
	return cmd
}

// startedByGoRun reports whether exe is a binary `go run` built: it lives
// in the go command's temporary build directory.
func startedByGoRun(exe string) bool {
	return strings.Contains(filepath.ToSlash(exe), "/go-build")
}

// stopWhenParentExits calls stop once the process's parent is gone (the
// process is re-parented, so its parent pid changes), checking every
// interval. Portable: no prctl(PR_SET_PDEATHSIG), which is Linux only.
func stopWhenParentExits(ctx context.Context, stop context.CancelFunc, interval time.Duration, say func()) {
	parent := os.Getppid()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if os.Getppid() != parent {
				say()
				stop()
				return
			}
		}
	}
}

// serveWorkspace finds the workspace to serve: --workspace, else the
// nearest one up from the current directory, else the sample workspace.
func serveWorkspace(dir string) (*workspace.Workspace, error) {
	if dir != "" {
		return workspace.Load(dir)
	}
	ws, err := workspace.Find(".")
	if err == nil {
		return ws, nil
	}
	if !errors.Is(err, workspace.ErrNoWorkspace) {
		return nil, err
	}
	if _, serr := os.Stat(filepath.Join(sampleWorkspace, workspace.ConfigFile)); serr == nil {
		return workspace.Load(sampleWorkspace)
	}
	return nil, err
}

// serveOIDC completes the OIDC flags with the client secret from the
// environment (never a flag: flags show in ps and shell history); nil when
// --oidc-issuer is not given.
func serveOIDC(flags server.OIDCConfig, getenv func(string) string) (*server.OIDCConfig, error) {
	if flags.Issuer == "" {
		if flags.ClientID != "" || flags.RedirectURL != "" || flags.GroupsClaim != "" || flags.Name != "" {
			return nil, errors.New("--oidc-* flags need --oidc-issuer")
		}
		return nil, nil
	}
	if u, err := url.Parse(flags.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("--oidc-issuer %q is not an http(s) URL", flags.Issuer)
	}
	if flags.ClientID == "" {
		return nil, errors.New("--oidc-issuer needs --oidc-client-id: the client ID registered for opsbook at the provider")
	}
	if flags.RedirectURL != "" {
		if u, err := url.Parse(flags.RedirectURL); err != nil || !u.IsAbs() {
			return nil, fmt.Errorf("--oidc-redirect-url %q is not an absolute URL", flags.RedirectURL)
		}
	}
	flags.ClientSecret = getenv("OPSBOOK_OIDC_CLIENT_SECRET")
	if f := getenv("OPSBOOK_OIDC_CLIENT_SECRET_FILE"); f != "" {
		if flags.ClientSecret != "" {
			return nil, errors.New("set OPSBOOK_OIDC_CLIENT_SECRET or OPSBOOK_OIDC_CLIENT_SECRET_FILE, not both")
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("OPSBOOK_OIDC_CLIENT_SECRET_FILE: %w", err)
		}
		flags.ClientSecret = strings.TrimSpace(string(b))
	}
	if flags.ClientSecret == "" {
		return nil, errors.New("--oidc-issuer needs the client secret in OPSBOOK_OIDC_CLIENT_SECRET or OPSBOOK_OIDC_CLIENT_SECRET_FILE")
	}
	return &flags, nil
}
