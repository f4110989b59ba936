package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/client"
	"github.com/opsbook/opsbook/internal/secret"
	"github.com/opsbook/opsbook/internal/store"
)

func newAuditCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check the server's hash-chained audit log",
		Example: `  opsbook audit verify --server https://ops.example.com
  opsbook audit verify --db postgres://opsbook@db/opsbook -o json`,
	}
	cmd.AddCommand(newAuditVerifyCmd(e), newAuditHeadCmd(e))
	return cmd
}

// openAuditStore opens the server's database for the audit commands: db,
// else <data>/server.db, else the workspace's; with the master key when
// one is at hand (OPSBOOK_MASTER_KEY[_FILE] or <data>/master.key, never
// generated here), so the head's anchor is checked.
func openAuditStore(cmd *cobra.Command, e *env, db, data string) (*store.Store, bool, error) {
	if data == "" && db == "" {
		ws, err := serveWorkspace(e.workspace)
		if err != nil {
			return nil, false, badInput("%v; or pass --db", err)
		}
		data = ws.StateDir()
	}
	if db == "" {
		db = filepath.Join(data, "server.db")
	}
	st, err := store.Open(cmd.Context(), db)
	if err != nil {
		return nil, false, err
	}
	keyed := false
	_, statErr := os.Stat(filepath.Join(data, secret.KeyFileName))
	if os.Getenv("OPSBOOK_MASTER_KEY") != "" || os.Getenv("OPSBOOK_MASTER_KEY_FILE") != "" || (data != "" && statErr == nil) {
		keys, _, err := secret.LoadKeyring(data, os.Getenv)
		if err != nil {
			st.Close()
			return nil, false, badInput("master key: %v", err)
		}
		st.SetAuditAnchor(keys)
		keyed = true
	}
	return st, keyed, nil
}

func newAuditHeadCmd(e *env) *cobra.Command {
	var db, data string
	cmd := &cobra.Command{
		Use:   "head",
		Short: "Print the audit log's newest entry (seq:hash) to keep outside the server",
		Long: `Print the newest entry of the audit log as SEQ:HASH, plus its anchor (an
HMAC under the master key). Keep the line somewhere the database's writers
cannot reach (a ticket, a chat message, another system): "opsbook audit
verify --head SEQ:HASH" then proves that entry and everything before it are
unchanged, even against someone who holds the master key.`,
		Example: `  opsbook audit head >> /secure/opsbook-audit-heads
  opsbook audit head --db postgres://opsbook@db/opsbook --data /var/lib/opsbook`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, _, err := openAuditStore(cmd, e, db, data)
			if err != nil {
				return err
			}
			defer st.Close()
			rep, err := st.VerifyAudit(cmd.Context())
			if err != nil {
				return err
			}
			if rep.Problem != nil {
				return &ExitError{Code: ExitFailed, Err: fmt.Errorf("audit log tampered: entry %d: %s; no head to export", rep.Problem.Seq, rep.Problem.Reason)}
			}
			fmt.Fprintf(e.stdout, "%d:%s anchor=%s\n", rep.Head, rep.HeadHash, rep.Anchor)
			return nil
		},
	}
	cmd.Flags().StringVar(&db, "db", "", "the server's database: SQLite path or postgres://… URL (default <data>/server.db)")
	cmd.Flags().StringVar(&data, "data", "", "the server's data directory, for the master key (default <workspace>/.opsbook)")
	return cmd
}

func newAuditVerifyCmd(e *env) *cobra.Command {
	var serverURL, db, data, head, output string
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
				if head != "" {
					return badInput("--head checks the database directly: pass --db (and --data for the master key)")
				}
				if v, err = c.VerifyAudit(ctx); err != nil {
					return err
				}
			} else {
				st, _, err := openAuditStore(cmd, e, db, data)
				if err != nil {
					return err
				}
				defer st.Close()
				rep, err := st.VerifyAudit(ctx)
				if err != nil {
					return err
				}
				if rep.Problem == nil && head != "" {
					seq, hash, err := parseAuditHead(head)
					if err != nil {
						return err
					}
					rep.Problem = st.CheckAuditEntry(ctx, seq, hash)
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
	cmd.Flags().StringVar(&data, "data", "", "the server's data directory, for the master key that checks the head's anchor (default <workspace>/.opsbook)")
	cmd.Flags().StringVar(&head, "head", "", "also check that entry SEQ still has HASH, as printed earlier by `opsbook audit head` (SEQ:HASH)")
	outputFlag(cmd, &output, "text", "json", "yaml")
	return cmd
}

// parseAuditHead reads SEQ:HASH as `opsbook audit head` prints it.
func parseAuditHead(v string) (int64, string, error) {
	v, _, _ = strings.Cut(strings.TrimSpace(v), " ")
	seqText, hash, ok := strings.Cut(v, ":")
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if !ok || err != nil || seq <= 0 || len(hash) != 64 {
		return 0, "", badInput("--head %q: use SEQ:HASH as `opsbook audit head` prints it", v)
	}
	return seq, hash, nil
}
