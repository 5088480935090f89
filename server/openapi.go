package server

import (
	_ "embed"
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// openAPIDoc is the OpenAPI 3.1 description of every route. A test keeps
// it and the route table in step.
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPI serves the OpenAPI document.
func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPIDoc)
}
