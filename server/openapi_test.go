package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openAPIPath turns an httprouter pattern into an OpenAPI path:
// /kills/:system_id → /kills/{system_id}.
func openAPIPath(p string) string {
	return regexp.MustCompile(`[:*]([A-Za-z_]+)`).ReplaceAllString(p, "{$1}")
}

// httprouterSample fills a pattern's parameters with a sample id.
func httprouterSample(p string) string {
	return regexp.MustCompile(`[:*]([A-Za-z_]+)`).ReplaceAllString(p, "30000142")
}

type openAPIOp struct {
	OperationID string           `json:"operationId"`
	Responses   map[string]any   `json:"responses"`
	Parameters  []map[string]any `json:"parameters"`
}

func loadOpenAPI(t *testing.T) (map[string]any, map[string]map[string]openAPIOp) {
	t.Helper()
	var doc map[string]any
	require.NoError(t, json.Unmarshal(openAPIDoc, &doc))
	var typed struct {
		Paths map[string]map[string]openAPIOp `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(openAPIDoc, &typed))
	return doc, typed.Paths
}

// TestOpenAPICoversRoutes: every route of the table has its path and
// method in the document, and the document has nothing the router lacks.
func TestOpenAPICoversRoutes(t *testing.T) {
	s := openTestServer(t, Config{})
	_, paths := loadOpenAPI(t)
	var fromRoutes, fromDoc []string
	for _, rt := range s.routeTable() {
		fromRoutes = append(fromRoutes, rt.method+" "+openAPIPath(rt.path))
	}
	for p, ops := range paths {
		for m := range ops {
			if m == "parameters" || m == "summary" || m == "description" {
				continue
			}
			fromDoc = append(fromDoc, strings.ToUpper(m)+" "+p)
		}
	}
	slices.Sort(fromRoutes)
	slices.Sort(fromDoc)
	assert.Equal(t, fromRoutes, fromDoc, "routes.go and openapi.json disagree")
}

// TestOpenAPIDocument: a 3.1 document whose references resolve, with
// unique operation ids, a response for every operation and each path
// parameter declared.
func TestOpenAPIDocument(t *testing.T) {
	doc, paths := loadOpenAPI(t)
	assert.Regexp(t, `^3\.1\.\d+$`, doc["openapi"])
	ids := map[string]bool{}
	params := doc["components"].(map[string]any)["parameters"].(map[string]any)
	for p, ops := range paths {
		for m, op := range ops {
			require.NotEmpty(t, op.OperationID, "%s %s", m, p)
			require.False(t, ids[op.OperationID], "duplicate operationId %s", op.OperationID)
			ids[op.OperationID] = true
			require.NotEmpty(t, op.Responses, "%s %s", m, p)
			for _, name := range regexp.MustCompile(`\{([a-z_]+)\}`).FindAllStringSubmatch(p, -1) {
				found := false
				for _, prm := range op.Parameters {
					if ref, ok := prm["$ref"].(string); ok {
						prm = params[strings.TrimPrefix(ref, "#/components/parameters/")].(map[string]any)
					}
					found = found || (prm["name"] == name[1] && prm["in"] == "path")
				}
				assert.True(t, found, "%s %s: path parameter %s undeclared", m, p, name[1])
			}
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				assert.NotNil(t, resolveRef(doc, ref), "unresolved %s", ref)
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(doc)
}

func resolveRef(doc map[string]any, ref string) any {
	var cur any = doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

func TestOpenAPIServed(t *testing.T) {
	s := openTestServer(t, Config{})
	for _, p := range []string{"/api/openapi", "/api/openapi.json"} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		require.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
		assert.JSONEq(t, string(openAPIDoc), rec.Body.String())
	}
}
