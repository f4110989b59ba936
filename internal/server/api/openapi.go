package api

import (
	_ "embed"
	"net/http"
)

// OpenAPIDocument is the OpenAPI 3 description of this API. It is a
// checked-in file: TestOpenAPIMatchesRoutes fails when a route is missing
// from it or it documents a route that does not exist (regenerate the
// skeleton with go test ./internal/server/api -run TestOpenAPI -update).
//
//go:embed openapi.json
var OpenAPIDocument []byte

func (h *handlers) openAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err := w.Write(OpenAPIDocument)
	return err
}
