package cli

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/markdown"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/workspace"
)

// What the shell completes (`opsbook completion bash|zsh|fish|powershell`)
// and what "not found" messages suggest come from the same lists: the
// workspace's environments, tasks, runbook files and recorded runs.

// runbookFiles lists the standing runbooks and the tasks' runbooks,
// relative to the workspace.
func runbookFiles(ws *workspace.Workspace) []string {
	var out []string
	for _, pattern := range []string{
		filepath.Join(workspace.OpsDir, "runbooks", "*.md"),
		filepath.Join(workspace.ActiveDir, "*", "*-runbook.md"),
	} {
		matches, _ := filepath.Glob(ws.Path(pattern))
		for _, m := range matches {
			if strings.EqualFold(filepath.Base(m), "README.md") {
				continue
			}
			out = append(out, ws.Rel(m))
		}
	}
	sort.Strings(out)
	return out
}

// taskNames lists the active tasks.
func taskNames(ws *workspace.Workspace) []string {
	tasks, _ := ws.Tasks(false, time.Now())
	var out []string
	for _, t := range tasks {
		out = append(out, t.Name)
	}
	return out
}

// recentRuns lists the newest runs of the workspace's run store as
// "id\tstatus env runbook" (the shell shows the part after the tab). The
// store is not created when there is none.
func recentRuns(ctx context.Context, ws *workspace.Workspace) []string {
	if _, err := os.Stat(stateDB(ws)); err != nil {
		return nil
	}
	st, err := store.Open(ctx, stateDB(ws))
	if err != nil {
		return nil
	}
	defer st.Close()
	runs, err := st.ListRuns(ctx, store.RunFilter{Limit: 50})
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range runs {
		out = append(out, r.ID+"\t"+string(r.Status)+" "+r.Environment+" "+r.Runbook)
	}
	return out
}

// suggestion is "; did you mean X?" when one of candidates is close to
// what was asked for (by edit distance, or as its file name), else "".
func suggestion(asked string, candidates []string) string {
	if s := markdown.Suggest(asked, candidates); s != "" {
		return "; did you mean " + s + "?"
	}
	base := strings.TrimSuffix(filepath.Base(asked), ".md")
	var stems []string
	byStem := map[string]string{}
	for _, c := range candidates {
		stem := strings.TrimSuffix(filepath.Base(c), ".md")
		stems = append(stems, stem)
		byStem[stem] = c
	}
	if s := markdown.Suggest(base, stems); s != "" {
		return "; did you mean " + byStem[s] + "?"
	}
	return ""
}

// completion functions: each finds the workspace the command line names
// (-C) and offers what exists there.

type completer func(ws *workspace.Workspace, ctx context.Context) []string

func complete(e *env, what ...completer) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		ws, err := findWorkspace(e)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, w := range what {
			out = append(out, w(ws, cmd.Context())...)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeFirstArg completes the first argument only.
func completeFirstArg(e *env, what ...completer) cobra.CompletionFunc {
	f := complete(e, what...)
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return f(cmd, args, toComplete)
	}
}

func environments(ws *workspace.Workspace, _ context.Context) []string { return ws.EnvironmentNames() }
func tasks(ws *workspace.Workspace, _ context.Context) []string        { return taskNames(ws) }
func runbooks(ws *workspace.Workspace, _ context.Context) []string     { return runbookFiles(ws) }
func runIDs(ws *workspace.Workspace, ctx context.Context) []string {
	if ctx == nil {
		ctx = context.Background()
	}
	return recentRuns(ctx, ws)
}

// registerCompletions attaches the completions to the commands of root.
func registerCompletions(e *env, root *cobra.Command) {
	for _, cmd := range root.Commands() {
		switch cmd.Name() {
		case "run", "rehearse":
			cmd.ValidArgsFunction = completeFirstArg(e, runbooks, tasks)
		case "show", "resume", "note":
			cmd.ValidArgsFunction = completeFirstArg(e, runIDs)
		case "status", "review", "check", "checklist", "postmortem", "archive":
			cmd.ValidArgsFunction = completeFirstArg(e, tasks)
		case "lint":
			cmd.ValidArgsFunction = func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
				return []string{"md"}, cobra.ShellCompDirectiveFilterFileExt
			}
		}
		if cmd.Flags().Lookup("env") != nil {
			cmd.RegisterFlagCompletionFunc("env", complete(e, environments))
		}
		if cmd.Flags().Lookup("run") != nil {
			cmd.RegisterFlagCompletionFunc("run", complete(e, runIDs))
		}
	}
}
