package cli

import (
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// newHealthcheckCmd is the probe of a container or service manager that
// has no curl (the distroless image): exit 0 when the server answers 200.
func newHealthcheckCmd(e *env) *cobra.Command {
	var url string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when an opsbook server answers its health check, 1 otherwise",
		Long: `Ask a running server's /readyz (the process is up and its database answers)
and exit 0 on 200, 1 on anything else. For container HEALTHCHECKs and service
managers on images without curl.`,
		Example: `  opsbook healthcheck
  opsbook healthcheck --url http://127.0.0.1:8080/healthz --timeout 2s
  HEALTHCHECK CMD ["/opsbook", "healthcheck"]     # in a Dockerfile`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := &http.Client{Timeout: timeout}
			resp, err := c.Get(url)
			if err != nil {
				return &ExitError{Code: ExitFailed, Err: fmt.Errorf("healthcheck: %w", err)}
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return &ExitError{Code: ExitFailed, Err: fmt.Errorf("healthcheck: %s answered %s", url, resp.Status)}
			}
			fmt.Fprintf(e.stdout, "%s: %s\n", url, resp.Status)
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "http://127.0.0.1:8080/readyz", "the URL to ask")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	return cmd
}
