// Package k8s runs `gateway-controller` against a real kube-apiserver and
// etcd (built from the Go module proxy by scripts/install-kube.sh, started
// by controller-runtime's envtest), with a real identity provider (Dex) and
// a real MCP server (server-everything) on 127.0.0.1: the walkthrough's
// objects are applied to the API server and the gateway must enforce them,
// follow changes, report invalid objects in their status while the last good
// configuration keeps serving, and forget deleted objects.
//
// Without the binaries the tests skip locally and fail when CI is set.
package k8s

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/mcpgate/mcpgate/k8s/controller"
	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// KubeVersion is the kube-apiserver scripts/install-kube.sh builds.
const KubeVersion = "v1.37.2"

var (
	env        *envtest.Environment
	cfg        *rest.Config
	k8sClient  client.Client
	kubeconfig string
	envErr     error
)

func TestMain(m *testing.M) {
	envErr = start()
	code := m.Run()
	if env != nil {
		_ = env.Stop()
	}
	if kubeconfig != "" {
		os.RemoveAll(filepath.Dir(kubeconfig))
	}
	harness.Cleanup()
	os.Exit(code)
}

// start runs etcd + kube-apiserver with mcpgate's CRDs and the Gateway API
// CRDs (standard channel, from the sigs.k8s.io/gateway-api module).
func start() error {
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(root, "bin", "kube-"+KubeVersion)
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			return fmt.Errorf("%w: %s not found in %s (run scripts/install-kube.sh)", harness.ErrToolMissing, b, assets)
		}
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		return fmt.Errorf("locating the sigs.k8s.io/gateway-api module: %v", err)
	}
	gwapi := filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard")
	env = &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(root, "k8s", "crds"), gwapi},
		ErrorIfCRDPathMissing: true,
	}
	if cfg, err = env.Start(); err != nil {
		return fmt.Errorf("envtest: %w", err)
	}
	if k8sClient, err = client.New(cfg, client.Options{Scheme: controller.Scheme()}); err != nil {
		return err
	}
	u, err := env.AddUser(envtest.User{Name: "mcpgate-test", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kc, err := u.KubeConfig()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "mcpgate-kube-")
	if err != nil {
		return err
	}
	kubeconfig = filepath.Join(dir, "kubeconfig")
	return os.WriteFile(kubeconfig, kc, 0o600)
}

// requireKube skips or fails (CI) when the control plane is not available.
func requireKube(t *testing.T) {
	t.Helper()
	harness.Require(t, envErr)
}

// apply server-side applies every document of a multi-document YAML stream
// (kubectl apply --server-side).
func apply(t *testing.T, yaml string) {
	t.Helper()
	for _, u := range decode(t, yaml) {
		if err := k8sClient.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("mcpgate-test"), client.ForceOwnership); err != nil {
			t.Fatalf("apply %s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
	}
}

// remove deletes every object of a YAML stream but Namespaces (envtest
// runs no namespace controller: a deleted namespace would stay Terminating).
func remove(t *testing.T, yaml string) {
	t.Helper()
	for _, u := range decode(t, yaml) {
		if u.GetKind() == "Namespace" {
			continue
		}
		if err := k8sClient.Delete(context.Background(), u); client.IgnoreNotFound(err) != nil {
			t.Fatalf("delete %s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
	}
}

func decode(t *testing.T, yaml string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	d := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(yaml), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := d.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatalf("decode YAML: %v", err)
		}
		if len(u.Object) == 0 {
			continue
		}
		out = append(out, u)
	}
}

// readFiles concatenates files of the repository as one YAML stream.
func readFiles(t *testing.T, paths ...string) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, p := range paths {
		data, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("\n---\n")
		b.Write(data)
	}
	return b.String()
}

// eventually polls f every 20ms until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < timeout {
		if err = f(); err == nil {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, timeout, err)
	return 0
}
