package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
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
	var addr, db, data string
	var workers, keepRuns int
	var grace time.Duration
	var trustProxy bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the opsbook server: REST API, runs, triggers, audit log",
		Long: `Serve a workspace over HTTP: the REST API under /api/v1 (OpenAPI at
/api/v1/openapi.json), runs executed inside the server, users, teams and
permissions, sensitive variables encrypted at rest, a hash-chained audit log,
/healthz, /readyz and Prometheus /metrics.

With no flags it serves the workspace found from the current directory (or
the sample workspace examples/workspace when there is none) on SQLite in
<workspace>/.opsbook/server.db. The first start creates the user "admin" and
prints its password once (or reads it from OPSBOOK_ADMIN_PASSWORD_FILE).

Sensitive values are encrypted with the master key from OPSBOOK_MASTER_KEY,
OPSBOOK_MASTER_KEY_FILE, or <data>/master.key (generated on first start;
back it up).

SIGTERM or Ctrl-C stops accepting requests and runs, waits --grace for
executing runs, and leaves the rest to be resumed on the next start.`,
		Example: `  opsbook serve
  opsbook serve --addr :8080 --db postgres://opsbook@db/opsbook --workspace /srv/ops
  OPSBOOK_ADMIN_PASSWORD_FILE=/run/secrets/admin opsbook serve --data /var/lib/opsbook`,
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
			st, err := store.Open(ctx, db)
			if err != nil {
				return err
			}
			defer st.Close()
			srv, err := server.New(server.Config{Store: st, Workspace: ws.Dir, Keys: keys, Logger: log,
				Workers: workers, ShutdownGrace: grace, TrustProxy: trustProxy, KeepRuns: keepRuns})
			if err != nil {
				return err
			}
			routes.Register(srv)
			user, password, err := srv.Bootstrap(ctx, os.Getenv)
			if err != nil {
				return fmt.Errorf("create the first administrator: %w", err)
			}
			log.Info("serving", "workspace", ws.Dir, "store", st.Dialect(), "master_key", keySource)
			return srv.ListenAndServe(ctx, addr, func(a net.Addr) {
				fmt.Fprintf(e.stdout, "opsbook serving %s on http://%s\n", ws.Dir, a)
				if user != "" && password != "" {
					fmt.Fprintf(e.stdout, "\nFirst start: created user %q with password\n\n    %s\n\nIt is shown only this once. Open http://%s/ in a browser and sign in, or point the CLI at it\nwith: eval \"$(opsbook login --server http://%s --user %s)\" (creates an API key).\n\n", user, password, a, a, user)
				} else if user != "" {
					fmt.Fprintf(e.stdout, "First start: created user %q with the password from OPSBOOK_ADMIN_PASSWORD_FILE\n", user)
				}
			})
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	cmd.Flags().StringVar(&db, "db", "", "database: a SQLite file path, or postgres://user:pass@host/db (default <data>/server.db)")
	cmd.Flags().StringVar(&data, "data", "", "data directory for the SQLite database and the generated master key (default <workspace>/.opsbook)")
	cmd.Flags().IntVar(&workers, "workers", 64, "runs executed at once (a run waiting at a gate holds one)")
	cmd.Flags().IntVar(&keepRuns, "keep-runs", 0, "keep only the newest N finished runs per runbook and environment (0 keeps all); the audit log is never pruned")
	cmd.Flags().DurationVar(&grace, "grace", 30*time.Second, "on shutdown, how long to wait for executing runs before leaving them to be resumed")
	cmd.Flags().BoolVar(&trustProxy, "trust-proxy", false, "take the client address from X-Forwarded-For (only behind a reverse proxy you control)")
	return cmd
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
