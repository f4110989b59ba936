package cli

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/client"
	"github.com/opsbook/opsbook/internal/store"
)

func newAuditCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check the server's hash-chained audit log",
		Example: `  opsbook audit verify --server https://ops.example.com
  opsbook audit verify --db postgres://opsbook@db/opsbook -o json`,
	}
	cmd.AddCommand(newAuditVerifyCmd(e))
	return cmd
}

func newAuditVerifyCmd(e *env) *cobra.Command {
	var serverURL, db, output string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify that no audit entry was edited, deleted or reordered",
		Long: `Walk the audit log from its first entry and check every entry's hash
against the previous one and its own content, and the newest entry against
the recorded head. The first bad entry is reported and the exit status is 1.

Against a server (--server or OPSBOOK_SERVER, with an Admin API key in
OPSBOOK_API_KEY), or directly against a database (--db, default the
workspace's .opsbook/server.db).`,
		Example: `  opsbook audit verify
  opsbook audit verify --db postgres://opsbook@db/opsbook
  OPSBOOK_API_KEY=obk_… opsbook audit verify --server https://ops.example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var v client.AuditVerification
			c, err := client.FromEnv(serverURL)
			if err != nil {
				return badInput("%v", err)
			}
			if c != nil && db == "" {
				if v, err = c.VerifyAudit(ctx); err != nil {
					return err
				}
			} else {
				if db == "" {
					ws, err := serveWorkspace(e.workspace)
					if err != nil {
						return badInput("%v; or pass --db", err)
					}
					db = filepath.Join(ws.StateDir(), "server.db")
				}
				st, err := store.Open(ctx, db)
				if err != nil {
					return err
				}
				defer st.Close()
				rep, err := st.VerifyAudit(ctx)
				if err != nil {
					return err
				}
				v = client.AuditVerification{OK: rep.Problem == nil, Checked: rep.Checked, Head: rep.Head}
				if rep.Problem != nil {
					v.Problem = rep.Problem
				}
			}
			if output != "text" {
				if err := writeData(e.stdout, output, v); err != nil {
					return err
				}
			} else if v.OK {
				fmt.Fprintf(e.stdout, "audit log intact: %d entries checked\n", v.Checked)
			}
			if !v.OK {
				return &ExitError{Code: ExitFailed, Err: fmt.Errorf("audit log tampered: entry %d: %s (%d entries checked)", v.Problem.Seq, v.Problem.Reason, v.Checked)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&serverURL, "server", "", "server URL (default $OPSBOOK_SERVER)")
	cmd.Flags().StringVar(&db, "db", "", "check this database directly: SQLite path or postgres://… URL")
	outputFlag(cmd, &output, "text", "json", "yaml")
	return cmd
}
