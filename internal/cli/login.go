package cli

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/opsbook/opsbook/internal/client"
)

func newLoginCmd(e *env) *cobra.Command {
	var serverURL, user, keyName string
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in to a server and create an API key for the CLI",
		Long: `Sign in to an opsbook server with your name and password, create an API
key for this machine and print the environment variables that point the CLI
at the server. The key is shown once; only its hash is stored on the server.

The password is read from the terminal without echo, or from the first line
of standard input when it is not a terminal.`,
		Example: `  opsbook login --server https://ops.example.com --user alice
  eval "$(opsbook login --server http://127.0.0.1:8080 --user admin < pw.txt)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if serverURL == "" {
				serverURL = os.Getenv("OPSBOOK_SERVER")
			}
			if serverURL == "" || user == "" {
				return badInput("--server (or OPSBOOK_SERVER) and --user are required")
			}
			password, err := readPassword(e, fmt.Sprintf("Password for %s at %s: ", user, serverURL))
			if err != nil {
				return err
			}
			if keyName == "" {
				host, _ := os.Hostname()
				keyName = "cli on " + host
			}
			key, err := client.Login(cmd.Context(), serverURL, user, password, keyName)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "export OPSBOOK_SERVER=%s\nexport OPSBOOK_API_KEY=%s\n", serverURL, key)
			fmt.Fprintf(e.stderr, "opsbook: created API key %q; it is shown only this once\n", keyName)
			return nil
		},
	}
	cmd.Flags().StringVar(&serverURL, "server", "", "server URL (default $OPSBOOK_SERVER)")
	cmd.Flags().StringVar(&user, "user", "", "your user name on the server")
	cmd.Flags().StringVar(&keyName, "key-name", "", "name of the API key to create (default \"cli on <host>\")")
	return cmd
}

func readPassword(e *env, prompt string) (string, error) {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(e.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", badInput("no password on standard input")
	}
	return strings.TrimRight(line, "\r\n"), nil
}
