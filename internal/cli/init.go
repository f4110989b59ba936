package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/workspace"
)

func newInitCmd(e *env) *cobra.Command {
	var lang, output string
	var withLibrary bool
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Create opsbook.yaml and the ops/ tree (idempotent, never overwrites)",
		Long: `Create a workspace in DIR (default: the current directory): opsbook.yaml with
the environments dev, staging and production (protected), the directories
ops/runbooks, ops/active, ops/archive and ops/templates each with a README, and
a .gitignore entry for the local state directory .opsbook/.

Files that exist are kept as they are; running init again only adds what is
missing. --with-library copies the built-in runbooks (PostgreSQL upgrade,
backup with restore test, test-database refresh, DR failover, Kubernetes
upgrade, CDN switchover, TLS rotation on nginx and on a PostgreSQL server)
into ops/runbooks/.`,
		Example: `  opsbook init
  opsbook init ops-repo --lang zh --with-library`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			} else if e.workspace != "" {
				dir = e.workspace
			}
			res, err := workspace.Init(dir, workspace.InitOptions{Lang: lang, WithLibrary: withLibrary})
			if err != nil {
				return badInput("init: %v", err)
			}
			if output != "text" {
				return writeData(e.stdout, output, res)
			}
			for _, f := range res.Created {
				fmt.Fprintf(e.stdout, "created  %s\n", f)
			}
			for _, f := range res.Kept {
				fmt.Fprintf(e.stdout, "kept     %s\n", f)
			}
			if len(res.Created) == 0 {
				fmt.Fprintf(e.stdout, "workspace %s is complete; nothing to do\n", res.Dir)
			} else {
				fmt.Fprintf(e.stdout, "\nNext: opsbook new \"<one-line description of the operation>\"\n")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&lang, "lang", "en", "language of generated documents: en or zh")
	cmd.Flags().BoolVar(&withLibrary, "with-library", false, "copy the built-in runbook library into ops/runbooks/")
	outputFlag(cmd, &output, "text", "json", "yaml")
	return cmd
}
