package load_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgate/mcpgate/k8s/load"
	"github.com/mcpgate/mcpgate/translate"
)

const gatewayYAML = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw
  namespace: team
spec:
  gatewayClassName: agentgateway
  listeners:
  - name: http
    protocol: HTTP
    port: 8080
`

const backendYAML = `apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata:
  name: be
  namespace: team
spec:
  mcp:
    targets:
    - name: everything
      static:
        host: 127.0.0.1
        port: 3001
`

const routeYAML = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: route
  namespace: team
spec:
  parentRefs:
  - name: gw
  rules:
  - matches:
    - path:
        type: PathPrefix
        value: /mcp
    backendRefs:
    - name: be
      group: agentgateway.dev
      kind: AgentgatewayBackend
`

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	}
	return dir
}

func TestFilesDirectory(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"20-route.yaml":       routeYAML,
		"10-backend.yml":      backendYAML,
		"00-gateway.yaml":     gatewayYAML,
		"50-policy.rego":      "package mcpgate.user.team\n\nx := 1\n",
		".hidden.yaml":        "this: is not read",
		".git/config.yaml":    "nor: this",
		"README.md":           "# not YAML",
		"notes.txt":           "not: read",
		"backup.yaml.bak":     "not: read",
		"sub/nested.yaml":     "not: read (directories are not recursed)",
		"30-empty.yaml":       "",
		"40-comments.yml":     "# only a comment\n---\n# another\n",
		"60-upper.YAML":       "not: read (the extension is case-sensitive)",
		"70-also-hidden.rego": "package mcpgate.user.visible\n",
	})
	res, err := load.Files([]string{dir})
	require.NoError(t, err)
	var names []string
	for _, f := range res.Files {
		require.Equal(t, dir, filepath.Dir(f), "files are named by their path")
		names = append(names, filepath.Base(f))
	}
	assert.Equal(t, []string{"00-gateway.yaml", "10-backend.yml", "20-route.yaml", "30-empty.yaml", "40-comments.yml", "50-policy.rego", "70-also-hidden.rego"}, names)

	r := res.Resources
	require.Len(t, r.Gateways, 1)
	require.Len(t, r.Backends, 1)
	require.Len(t, r.HTTPRoutes, 1)
	assert.Equal(t, "gw", r.Gateways[0].Name)
	assert.Equal(t, "team", r.Gateways[0].Namespace)
	assert.Equal(t, int32(3001), r.Backends[0].Spec.MCP.Targets[0].Static.Port)
	require.Len(t, res.Modules, 2)
	assert.Equal(t, filepath.Join(dir, "50-policy.rego"), res.Modules[0].Path)
	assert.Contains(t, res.Modules[0].Text, "package mcpgate.user.team")

	assert.Equal(t, map[string]string{
		"Gateway team/gw":             filepath.Join(dir, "00-gateway.yaml") + " (document 1)",
		"AgentgatewayBackend team/be": filepath.Join(dir, "10-backend.yml") + " (document 1)",
		"HTTPRoute team/route":        filepath.Join(dir, "20-route.yaml") + " (document 1)",
	}, r.Sources)

	// The loaded objects translate.
	_, err = translate.Translate(r)
	assert.NoError(t, err)
}

func TestFilesPaths(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a/gw.yaml": gatewayYAML, "b/be.yaml": backendYAML, "c.yaml": routeYAML})

	// Files and directories mix; the order of the arguments is kept.
	res, err := load.Files([]string{filepath.Join(dir, "c.yaml"), filepath.Join(dir, "b"), filepath.Join(dir, "a", "gw.yaml")})
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Join(dir, "c.yaml"), filepath.Join(dir, "b", "be.yaml"), filepath.Join(dir, "a", "gw.yaml")}, res.Files)
	assert.Len(t, res.Resources.Gateways, 1)
	assert.Len(t, res.Resources.Backends, 1)
	assert.Len(t, res.Resources.HTTPRoutes, 1)

	// A missing path is an error, and the others are still read.
	res, err = load.Files([]string{filepath.Join(dir, "missing"), filepath.Join(dir, "c.yaml")})
	require.Error(t, err)
	assert.ErrorIs(t, err, load.ErrInvalid)
	assert.Contains(t, err.Error(), "missing")
	assert.Len(t, res.Resources.HTTPRoutes, 1)

	// An explicitly named file is read whatever its extension.
	res, err = load.Files([]string{writeFiles(t, map[string]string{"gw.txt": gatewayYAML}) + "/gw.txt"})
	require.NoError(t, err)
	assert.Len(t, res.Resources.Gateways, 1)
}

func TestDecodeMultiDocument(t *testing.T) {
	src := "# leading comment\n---\n" + gatewayYAML + "---\n# a document with comments only\n# still nothing\n---\n---\n" + backendYAML + "---\n\n   \n---\n" + routeYAML + "...\n"
	res := &translate.Resources{Sources: map[string]string{}}
	errs := load.Decode("config.yaml", []byte(src), res)
	require.Empty(t, errs)
	assert.Len(t, res.Gateways, 1)
	assert.Len(t, res.Backends, 1)
	assert.Len(t, res.HTTPRoutes, 1)
	// Documents are counted as the YAML reader returns them: comment-only
	// and blank ones count, a "---" directly followed by "---" does not.
	assert.Equal(t, "config.yaml (document 2)", res.Sources["Gateway team/gw"])
	assert.Equal(t, "config.yaml (document 4)", res.Sources["AgentgatewayBackend team/be"])
	assert.Equal(t, "config.yaml (document 6)", res.Sources["HTTPRoute team/route"])
}

func TestDecodeDefaultsNamespace(t *testing.T) {
	res := &translate.Resources{Sources: map[string]string{}}
	errs := load.Decode("gw.yaml", []byte(strings.Replace(gatewayYAML, "  namespace: team\n", "", 1)), res)
	require.Empty(t, errs)
	require.Len(t, res.Gateways, 1)
	assert.Equal(t, "default", res.Gateways[0].Namespace)
	assert.Contains(t, res.Sources, "Gateway default/gw")
}

func TestDecodeIgnoredKinds(t *testing.T) {
	src := `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: agentgateway
spec:
  controllerName: agentgateway.dev/agentgateway
---
apiVersion: v1
kind: Namespace
metadata:
  name: team
`
	res := &translate.Resources{Sources: map[string]string{}}
	assert.Empty(t, load.Decode("ns.yaml", []byte(src), res))
	assert.Empty(t, res.Sources)
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // substrings of the one error
	}{
		{
			name: "unknown field",
			src:  gatewayYAML + "---\n" + strings.Replace(backendYAML, "        port: 3001\n", "        port: 3001\n        hots: example.com\n", 1),
			want: []string{"in.yaml", "(document 2)", "AgentgatewayBackend team/be", "spec.mcp.targets[0].static.hots"},
		},
		{
			name: "unknown top-level field",
			src:  strings.Replace(gatewayYAML, "spec:\n", "extra: 1\nspec:\n", 1),
			want: []string{"in.yaml (document 1)", "Gateway team/gw", `unknown field "extra"`},
		},
		{
			name: "case variant of a field",
			src:  strings.Replace(backendYAML, "    targets:", "    Targets:", 1),
			want: []string{"in.yaml (document 1)", "AgentgatewayBackend team/be", "spec.mcp.Targets"},
		},
		{
			name: "duplicate YAML key",
			src:  strings.Replace(backendYAML, "        port: 3001\n", "        port: 3001\n        port: 3002\n", 1),
			want: []string{"in.yaml (document 1)", `key "port" already set`},
		},
		{
			name: "duplicate YAML key at the top",
			src:  gatewayYAML + "kind: HTTPRoute\n",
			want: []string{"in.yaml (document 1)", `key "kind" already set`},
		},
		{
			name: "duplicate object",
			src:  "# first\n" + gatewayYAML + "---\n" + backendYAML + "---\n" + gatewayYAML,
			want: []string{"in.yaml (document 3)", "Gateway team/gw", "defined twice", "in.yaml (document 1)"},
		},
		{
			name: "duplicate object in the default namespace",
			src:  strings.Replace(gatewayYAML, "  namespace: team\n", "  namespace: default\n", 1) + "---\n" + strings.Replace(gatewayYAML, "  namespace: team\n", "", 1),
			want: []string{"(document 2)", "Gateway default/gw", "defined twice"},
		},
		{
			name: "metadata.name missing",
			src:  strings.Replace(gatewayYAML, "  name: gw\n", "", 1),
			want: []string{"in.yaml (document 1)", "Gateway team/", "metadata.name: required"},
		},
		{
			name: "metadata missing",
			src:  "apiVersion: v1\nkind: Service\nspec: {}\n",
			want: []string{"in.yaml (document 1)", "metadata.name: required"},
		},
		{
			name: "wrong type",
			src:  strings.Replace(backendYAML, "port: 3001", `port: "abc"`, 1),
			want: []string{"in.yaml (document 1)", "AgentgatewayBackend team/be", "port"},
		},
		{
			name: "wrong type of a listener port",
			src:  strings.Replace(gatewayYAML, "port: 8080", "port: [8080]", 1),
			want: []string{"in.yaml (document 1)", "Gateway team/gw", "port"},
		},
		{
			name: "unsupported kind",
			src:  "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n",
			want: []string{"in.yaml (document 1)", "Deployment default/d", `unsupported apiVersion/kind "apps/v1" "Deployment"`},
		},
		{
			name: "unsupported version",
			src:  strings.Replace(gatewayYAML, "gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1", 1),
			want: []string{"in.yaml (document 1)", "Gateway team/gw", "unsupported apiVersion/kind"},
		},
		{
			name: "not YAML",
			src:  "apiVersion: v1\nkind: [unclosed\n",
			want: []string{"in.yaml (document 1)"},
		},
		{
			name: "not an object",
			src:  "- just\n- a list\n",
			want: []string{"in.yaml (document 1)", "not a Kubernetes-style object"},
		},
		{
			name: "case variant of metadata",
			src:  strings.Replace(gatewayYAML, "metadata:", "Metadata:", 1),
			want: []string{"in.yaml (document 1)", "metadata.name: required"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &translate.Resources{Sources: map[string]string{}}
			errs := load.Decode("in.yaml", []byte(tt.src), res)
			require.Len(t, errs, 1, "got errors %v, want one", errs)
			err := errs[0]
			assert.True(t, errors.Is(err, load.ErrInvalid), "got %v, want ErrInvalid", err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// A bad object is left out; the others are kept, and every bad one is
// reported.
func TestDecodeReportsEveryProblem(t *testing.T) {
	src := strings.Replace(gatewayYAML, "spec:\n", "bogus: 1\nspec:\n", 1) + "---\n" + backendYAML + "---\n" + strings.Replace(routeYAML, "  name: route\n", "", 1)
	res := &translate.Resources{Sources: map[string]string{}}
	errs := load.Decode("in.yaml", []byte(src), res)
	require.Len(t, errs, 2, "got %v", errs)
	assert.Contains(t, errs[0].Error(), "(document 1)")
	assert.Contains(t, errs[1].Error(), "(document 3)")
	assert.Empty(t, res.Gateways, "an invalid object is not added")
	assert.Len(t, res.Backends, 1)
	assert.Empty(t, res.HTTPRoutes)

	// Files joins them, naming each file.
	dir := writeFiles(t, map[string]string{"a.yaml": src, "b.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n"})
	_, err := load.Files([]string{dir})
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, filepath.Join(dir, "a.yaml")+" (document 1)")
	assert.Contains(t, msg, filepath.Join(dir, "a.yaml")+" (document 3)")
	assert.Contains(t, msg, filepath.Join(dir, "b.yaml")+" (document 1), Pod default/p")
}

// The walkthrough's files load unchanged.
func TestQuickstart(t *testing.T) {
	res, err := load.Files([]string{filepath.Join("..", "..", "examples", "quickstart")})
	require.NoError(t, err)
	r := res.Resources
	assert.Len(t, r.Gateways, 1)
	assert.Len(t, r.HTTPRoutes, 1)
	assert.Len(t, r.Backends, 1)
	assert.Len(t, r.Policies, 1)
	assert.Len(t, r.Services, 1)
	assert.Contains(t, r.Sources, "AgentgatewayPolicy agentgateway-system/mcp-oauth-auth")
}
