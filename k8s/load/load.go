// Package load reads the standalone configuration: multi-document YAML files
// holding Gateway API and agentgateway.dev objects (the same objects a
// Kubernetes controller would watch). Decoding is strict: unknown fields,
// duplicate fields, unknown kinds and unknown API versions are errors that
// name the file, the document, the object and the field.
package load

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	k8sjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	mcpv1 "github.com/mcpgate/mcpgate/k8s/api/mcpgate/v1alpha1"
	"github.com/mcpgate/mcpgate/k8s/api/v1alpha1"
	"github.com/mcpgate/mcpgate/translate"
)

// ErrInvalid is wrapped by every configuration error.
var ErrInvalid = errors.New("invalid configuration")

// Module is a Rego file found next to the YAML.
type Module struct {
	Path string
	Text string
}

// Result is what Files read.
type Result struct {
	Resources *translate.Resources
	Modules   []Module
	Files     []string // every file read, for watching
}

// Files reads every path: a file, or a directory whose *.yaml, *.yml and
// *.rego files are read in lexical order (not recursively). All problems are
// reported at once.
func Files(paths []string) (*Result, error) {
	res := &Result{Resources: &translate.Resources{Sources: map[string]string{}}}
	var errs []error
	for _, p := range paths {
		files, err := expand(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range files {
			res.Files = append(res.Files, f)
			b, err := os.ReadFile(f)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: %v", ErrInvalid, err))
				continue
			}
			if strings.HasSuffix(f, ".rego") {
				res.Modules = append(res.Modules, Module{Path: f, Text: string(b)})
				res.Resources.Modules = append(res.Resources.Modules, translate.Module{Source: f, Text: string(b)})
				continue
			}
			errs = append(errs, Decode(f, b, res.Resources)...)
		}
	}
	return res, errors.Join(errs...)
}

func expand(p string) ([]string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") {
			continue
		}
		if strings.HasSuffix(n, "_test.rego") {
			continue // policy tests, for `gateway test`, not policy
		}
		switch filepath.Ext(n) {
		case ".yaml", ".yml", ".rego":
			out = append(out, filepath.Join(p, n))
		}
	}
	sort.Strings(out)
	return out, nil
}

type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// Decode adds the objects of one multi-document YAML stream to res and
// returns one error per bad document. name labels errors (a file path).
func Decode(name string, data []byte, res *translate.Resources) []error {
	var errs []error
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for doc := 1; ; doc++ {
		chunk, err := r.Read()
		if err == io.EOF {
			break
		}
		where := fmt.Sprintf("%s (document %d)", name, doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: %v", ErrInvalid, where, err))
			break
		}
		if len(bytes.TrimSpace(stripComments(chunk))) == 0 {
			continue
		}
		if err := decodeDoc(where, chunk, res); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func stripComments(b []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		t := bytes.TrimSpace(line)
		if len(t) == 0 || t[0] == '#' {
			continue
		}
		out = append(out, line...)
		out = append(out, '\n')
	}
	return out
}

func decodeDoc(where string, chunk []byte, res *translate.Resources) error {
	js, err := yaml.YAMLToJSONStrict(chunk)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalid, where, err)
	}
	var h header
	if err := k8sjson.UnmarshalCaseSensitivePreserveInts(js, &h); err != nil {
		return fmt.Errorf("%w: %s: not a Kubernetes-style object: %v", ErrInvalid, where, err)
	}
	ns := h.Metadata.Namespace
	if ns == "" {
		ns = "default"
	}
	id := translate.ObjectID(h.Kind, ns, h.Metadata.Name)
	where = fmt.Sprintf("%s, %s", where, id)
	if h.Metadata.Name == "" {
		return fmt.Errorf("%w: %s: metadata.name: required", ErrInvalid, where)
	}
	var obj any
	var add func() // appends the decoded object, once it is known to be valid
	switch h.APIVersion + " " + h.Kind {
	case "gateway.networking.k8s.io/v1 Gateway":
		o := &gwv1.Gateway{}
		obj = o
		add = func() { o.Namespace = ns; res.Gateways = append(res.Gateways, o) }
	case "gateway.networking.k8s.io/v1 HTTPRoute":
		o := &gwv1.HTTPRoute{}
		obj = o
		add = func() { o.Namespace = ns; res.HTTPRoutes = append(res.HTTPRoutes, o) }
	case "agentgateway.dev/v1alpha1 AgentgatewayBackend":
		o := &v1alpha1.AgentgatewayBackend{}
		obj = o
		add = func() { o.Namespace = ns; res.Backends = append(res.Backends, o) }
	case "agentgateway.dev/v1alpha1 AgentgatewayPolicy":
		o := &v1alpha1.AgentgatewayPolicy{}
		obj = o
		add = func() { o.Namespace = ns; res.Policies = append(res.Policies, o) }
	case "mcpgate.dev/v1alpha1 MCPRateLimitPolicy":
		o := &mcpv1.MCPRateLimitPolicy{}
		obj = o
		add = func() { o.Namespace = ns; res.RateLimitPolicies = append(res.RateLimitPolicies, o) }
	case "mcpgate.dev/v1alpha1 MCPRegoPolicy":
		o := &mcpv1.MCPRegoPolicy{}
		obj = o
		add = func() { o.Namespace = ns; res.RegoPolicies = append(res.RegoPolicies, o) }
	case "v1 Service":
		o := &corev1.Service{}
		obj = o
		add = func() { o.Namespace = ns; res.Services = append(res.Services, o) }
	case "gateway.networking.k8s.io/v1 GatewayClass", "v1 Namespace":
		// Accepted so that a cluster's manifests load unchanged; standalone
		// they carry nothing the gateway needs.
		return nil
	default:
		return fmt.Errorf("%w: %s: unsupported apiVersion/kind %q %q (supported: gateway.networking.k8s.io/v1 Gateway, HTTPRoute, GatewayClass; agentgateway.dev/v1alpha1 AgentgatewayBackend, AgentgatewayPolicy; mcpgate.dev/v1alpha1 MCPRegoPolicy, MCPRateLimitPolicy; v1 Service, Namespace)",
			ErrInvalid, where, h.APIVersion, h.Kind)
	}
	strict, err := k8sjson.UnmarshalStrict(js, obj)
	if err != nil {
		// Type errors: the decoder names the field it could not fill.
		return fmt.Errorf("%w: %s: %v", ErrInvalid, where, err)
	}
	if len(strict) > 0 {
		msgs := make([]string, len(strict))
		for i, e := range strict {
			msgs[i] = e.Error()
		}
		return fmt.Errorf("%w: %s: %s", ErrInvalid, where, strings.Join(msgs, "; "))
	}
	if _, dup := res.Sources[id]; dup {
		return fmt.Errorf("%w: %s: defined twice (also in %s)", ErrInvalid, where, res.Sources[id])
	}
	res.Sources[id] = where[:strings.LastIndex(where, ", ")]
	add()
	return nil
}
