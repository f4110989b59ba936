package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/server"
)

func newAdminCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Administer the server's database directly, on the machine that holds it",
		Example: `  opsbook admin reset-password
  opsbook admin reset-password --user alice --db postgres://opsbook@db/opsbook`,
	}
	cmd.AddCommand(newAdminResetPasswordCmd(e))
	return cmd
}

func newAdminResetPasswordCmd(e *env) *cobra.Command {
	var db, data, user string
	cmd := &cobra.Command{
		Use:   "reset-password",
		Short: "Give a local user a new random password and sign out their sessions",
		Long: `Set a new random password for a user (default "admin"), print it once, end
every session of theirs and record user.password_reset in the audit log.

This works on the database, not through the server: run it where the data
directory is (--data, default <workspace>/.opsbook, for SQLite) or with the
database's address (--db postgres://…). Whoever can do that owns the server's
data already; nobody can reset a password over the network. Use it when the
generated password of the first start was lost.`,
		Example: `  opsbook admin reset-password
  opsbook admin reset-password --user alice --data /var/lib/opsbook
  opsbook admin reset-password --db postgres://opsbook@db/opsbook`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if db == "" {
				if data == "" {
					ws, err := serveWorkspace(e.workspace)
					if err != nil {
						return badInput("%v; or pass --data or --db", err)
					}
					data = ws.StateDir()
				}
				db = filepath.Join(data, "server.db")
				if _, err := os.Stat(db); err != nil {
					return badInput("no server database at %s: pass the server's --data directory or --db", db)
				}
			}
			// With the master key, so the reset's audit entry keeps the
			// log's head anchored.
			st, _, err := openAuditStore(cmd, e, db, data)
			if err != nil {
				return err
			}
			defer st.Close()
			actor := "local"
			if u := os.Getenv("USER"); u != "" {
				actor = "local:" + u
			}
			password, err := server.ResetPassword(ctx, st, user, actor)
			if err != nil {
				return badInput("reset the password of %s: %v", user, err)
			}
			fmt.Fprintf(e.stdout, "New password for %q (shown only this once; their sessions were signed out):\n\n    %s\n\n", user, password)
			return nil
		},
	}
	cmd.Flags().StringVar(&user, "user", "admin", "whose password to reset")
	cmd.Flags().StringVar(&data, "data", "", "the server's data directory (default <workspace>/.opsbook)")
	cmd.Flags().StringVar(&db, "db", "", "the server's database: a SQLite file or postgres://… (default <data>/server.db)")
	return cmd
}
