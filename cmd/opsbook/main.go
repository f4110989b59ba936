// Command opsbook is the CLI and the server of the opsbook runbook platform.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/opsbook/opsbook/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
