package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Version, Commit and Date are set at build time by scripts/release.sh:
// -ldflags "-X github.com/opsbook/opsbook/internal/cli.Version=v1.2.3 -X …Commit=abc123 -X …Date=2026-12-01T10:00:00Z".
var (
	Version = "dev"
	Commit  = ""
	Date    = ""
)

// buildInfo is what `opsbook version` and `opsbook --version` report.
type buildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	Date    string `json:"date,omitempty"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

func currentBuild() buildInfo {
	v := buildInfo{Version: Version, Commit: Commit, Date: Date, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok && v.Commit == "" {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				v.Commit = s.Value
			}
		}
	}
	return v
}

// versionLine is the one-line form: opsbook v1.2.3 (commit abc123, 2026-12-01T10:00:00Z, go1.26, linux/amd64).
func versionLine() string {
	v := currentBuild()
	var parts []string
	if v.Commit != "" {
		parts = append(parts, "commit "+v.Commit)
	}
	if v.Date != "" {
		parts = append(parts, v.Date)
	}
	parts = append(parts, v.Go, v.OS+"/"+v.Arch)
	return fmt.Sprintf("opsbook %s (%s)", v.Version, strings.Join(parts, ", "))
}

func newVersionCmd(e *env) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print opsbook's version",
		Example: `  opsbook version
  opsbook --version
  opsbook version -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := currentBuild()
			if output != "text" {
				return writeData(e.stdout, output, v)
			}
			fmt.Fprintln(e.stdout, versionLine())
			return nil
		},
	}
	outputFlag(cmd, &output, "text", "json", "yaml")
	return cmd
}
