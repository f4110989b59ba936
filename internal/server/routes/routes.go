// Package routes is the whole route table of `opsbook serve`: the JSON API
// and the web UI. The CLI and the tests register through Register, so the
// permission matrix test walks exactly the routes production serves.
package routes

import (
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/server/api"
	"github.com/opsbook/opsbook/internal/server/ui"
)

// Register adds every route of the server to s: /api/v1 and the UI pages
// (server.New already registered /healthz, /readyz and /metrics).
func Register(s *server.Server) {
	api.Register(s)
	ui.Register(s)
}
