package harness

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// The demo's Dex configuration is the test template rendered for port 5556:
// the demo and the tests log in the same users through the same clients.
func TestQuickstartDexConfig(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := RenderDexConfig(filepath.Join(root, "tests", "e2e", "testdata", "dex.yaml.tmpl"), 5556, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	quickstart, err := os.ReadFile(filepath.Join(root, "examples", "quickstart", "dex", "dex.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var got, want any
	if err := yaml.Unmarshal(quickstart, &got); err != nil {
		t.Fatalf("examples/quickstart/dex/dex.yaml: %v", err)
	}
	if err := yaml.Unmarshal(rendered, &want); err != nil {
		t.Fatalf("rendered template: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("examples/quickstart/dex/dex.yaml drifted from tests/e2e/testdata/dex.yaml.tmpl rendered for port 5556:\ngot  %v\nwant %v", got, want)
	}
}

func TestShortDuration(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{time.Hour, "1h"},
		{5 * time.Second, "5s"},
		{2 * time.Minute, "2m"},
		{90 * time.Minute, "1h30m"},
		{70 * time.Minute, "1h10m"},
		{time.Hour + 5*time.Second, "1h0m5s"},
	} {
		if got := shortDuration(tc.in); got != tc.want {
			t.Errorf("shortDuration(%v) = %q, want %q", tc.in, got, tc.want)
		}
		if d, err := time.ParseDuration(shortDuration(tc.in)); err != nil || d != tc.in {
			t.Errorf("ParseDuration(shortDuration(%v)) = %v, %v", tc.in, d, err)
		}
	}
}

// Every generated configuration is well-formed multi-document YAML with the
// objects the gateway expects.
func TestConfigYAML(t *testing.T) {
	for name, c := range map[string]Config{
		"no auth":     {UpstreamPort: 3001},
		"backendRef":  {UpstreamPort: 3001, Auth: &AuthConfig{Issuer: "http://127.0.0.1:5556" + Realm, DexPort: 5556, Mode: "Strict"}},
		"no service":  {UpstreamPort: 3001, Auth: &AuthConfig{Issuer: "i", JWKS: JWKSBackendRefNoService}},
		"url":         {UpstreamPort: 3001, Auth: &AuthConfig{Issuer: "i", JWKS: JWKSURL, JWKSURL: "http://127.0.0.1:5556/realms/agentgateway/keys", Mode: "Permissive"}},
		"no audience": {UpstreamPort: 3001, Auth: &AuthConfig{Issuer: "i", Audiences: []string{}}},
	} {
		t.Run(name, func(t *testing.T) {
			var kinds []string
			for _, doc := range strings.Split(c.YAML(), "\n---\n") {
				var obj struct {
					APIVersion string `json:"apiVersion"`
					Kind       string `json:"kind"`
				}
				if err := yaml.UnmarshalStrict([]byte(doc), &obj); err != nil && !strings.Contains(err.Error(), "unknown field") {
					t.Fatalf("%v in\n%s", err, doc)
				}
				kinds = append(kinds, obj.Kind)
			}
			want := []string{"Gateway", "AgentgatewayBackend", "HTTPRoute"}
			if c.Auth != nil {
				want = append(want, "AgentgatewayPolicy")
				if c.Auth.JWKS == "" {
					want = append(want, "Service")
				}
			}
			if !reflect.DeepEqual(kinds, want) {
				t.Errorf("kinds = %v, want %v\n%s", kinds, want, c.YAML())
			}
		})
	}
}

// The configuration the end-to-end tests run is the quickstart's (what the
// demo serves), only with other ports: same objects, same fields.
func TestConfigMatchesQuickstart(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "examples", "quickstart", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples/quickstart/*.yaml (%v)", err)
	}
	var quickstart []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		quickstart = append(quickstart, string(b))
	}
	generated := Config{
		UpstreamPort: 3001,
		Auth:         &AuthConfig{Issuer: "http://127.0.0.1:5556" + Realm, Mode: "Strict", DexPort: 5556},
	}.YAML()
	got, want := objects(t, generated), objects(t, strings.Join(quickstart, "\n---\n"))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("harness.Config differs from examples/quickstart:\ngenerated  %v\nquickstart %v", got, want)
	}
}

// objects parses a multi-document YAML stream into its objects, by kind/name.
func objects(t *testing.T, stream string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, doc := range strings.Split(stream, "\n---\n") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("%v in\n%s", err, doc)
		}
		if obj == nil {
			continue
		}
		meta, _ := obj["metadata"].(map[string]any)
		out[obj["kind"].(string)+"/"+meta["name"].(string)] = obj
	}
	return out
}
