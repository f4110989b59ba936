package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/workspace"
)

func newNewCmd(e *env) *cobra.Command {
	var system, operation, slug, date, lang, library, output string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   `new "<description>"`,
		Short: "Generate a planned operation's runbook, rollback plan, checklist and postmortem template",
		Long: `Turn a one-line description into ops/active/<task>/ with four documents:
<task>-runbook.md, <task>-rollback.md, <task>-checklist.md and
<task>-postmortem-template.md, plus lifecycle.jsonl, the task's record.

The task is named YYYY-MM-DD-<system>-<operation>-<short-description>. System
and operation are recognised in English and Chinese (postgres/PostgreSQL/pg,
mysql, redis, kafka, kubernetes/k8s, cdn, dns, nginx, tls/证书, 数据库 …;
upgrade/升级, migration/迁移, switchover/切换, failover/故障转移, backup/备份,
restore/恢复, rotation/轮换, scale-out/扩容 …). Versions become v12-to-v15, and a
version-to-version migration of one system is named an upgrade. A description
never fails: when it names no system opsbook knows, the most specific name in
it is the system ("fail over orders-db to the DR site" → orders-db, "the legacy
ftp server" → ftp), and what was chosen is said; --system, --operation and
--slug override any part. A description in Chinese gives Chinese documents
unless --lang says otherwise.

When the built-in library has a runbook for the system and operation, the task
starts from it (real commands, checks and a rollback plan that undoes them);
otherwise from the skeleton, whose <<FILL: …>> placeholders opsbook lint reports
as errors until they are written, so a skeleton cannot run by accident.
Templates in ops/templates/ override the built-in ones.`,
		Example: `  opsbook new "database migration from PostgreSQL 12 to 15"
  opsbook new "Kubernetes 集群升级到 1.28"
  opsbook new "fail over orders-db to the DR site"
  opsbook new "数据库备份" --slug orders-nightly --dry-run`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(args[0]) == "" {
				return badInput("the description is empty: say in a few words what the operation does, e.g. opsbook new \"postgres 12 to 15 upgrade\"")
			}
			ws, err := findWorkspace(e)
			if err != nil {
				return badInput("%v", err)
			}
			opts := workspace.NewOptions{Description: args[0], Lang: lang, Library: library, DryRun: dryRun,
				Name: workspace.NameOptions{System: system, Operation: operation, Slug: slug}}
			if date != "" {
				d, err := time.Parse(time.DateOnly, date)
				if err != nil {
					return badInput("--date %q: write YYYY-MM-DD", date)
				}
				opts.Name.Date = d
			}
			res, err := ws.NewTask(opts)
			if err != nil {
				return badInput("%v", err)
			}
			if output != "text" {
				return writeData(e.stdout, output, res)
			}
			verb := "created"
			if res.DryRun {
				verb = "would create (dry run)"
			}
			fmt.Fprintf(e.stdout, "%s task %s\n", verb, res.Task)
			fmt.Fprintf(e.stdout, "  system %s, operation %s, language %s\n", res.Name.System, res.Name.Operation, res.Lang)
			for _, g := range res.Name.Guessed {
				fmt.Fprintf(e.stdout, "  chosen: %s\n", g)
			}
			fmt.Fprintf(e.stdout, "  from: %s\n", res.Reason)
			for _, o := range res.Overrode {
				fmt.Fprintf(e.stdout, "  template override: %s\n", o)
			}
			for _, f := range res.Files {
				fmt.Fprintf(e.stdout, "  %s\n", f)
			}
			if !res.DryRun {
				next := "review the runbook's commands and parameters"
				if res.Library == workspace.GenericEntry {
					next = "replace every <<FILL: …>> placeholder"
				}
				fmt.Fprintf(e.stdout, "\nNext: %s, check with `opsbook lint %s`, then commit and ask for two reviews.\n",
					next, strings.TrimSuffix(res.Dir, "/"))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&system, "system", "", "system part of the task name, e.g. postgres")
	f.StringVar(&operation, "operation", "", "operation part of the task name, e.g. upgrade")
	f.StringVar(&slug, "slug", "", "short-description part of the task name, e.g. v12-to-v15")
	f.StringVar(&date, "date", "", "date of the task, YYYY-MM-DD (default today)")
	f.StringVar(&lang, "lang", "", "language of the documents: en or zh (default: the workspace's lang)")
	f.StringVar(&library, "library", "", "library runbook to start from, or generic for the skeleton (default: best match)")
	f.BoolVar(&dryRun, "dry-run", false, "print the name and files without writing anything")
	outputFlag(cmd, &output, "text", "json", "yaml")
	return cmd
}
