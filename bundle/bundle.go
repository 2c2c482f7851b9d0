// Package bundle is the artifact between the control path and the request
// path: an ordinary OPA bundle (.manifest with revision, roots and
// rego_version 1; Rego modules; data.json). data.mcpgate.config holds the IR,
// so a gateway can run from a bundle alone and `opa eval -b` / `opa test`
// work on the very same file.
package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	opabundle "github.com/open-policy-agent/opa/v1/bundle"

	"github.com/mcpgate/mcpgate/ir"
)

// ErrBundle is wrapped by every error of this package.
var ErrBundle = errors.New("bundle")

// Root is the bundle root mcpgate owns; user modules live below it too
// (mcpgate.user.*), so one bundle never overwrites another tool's data.
const Root = "mcpgate"

// LogRoot is the second root a bundle may have: package system.log, the
// decision-log mask and drop rules of OPA (docs/observability.md).
const LogRoot = "system/log"

// Bundle is a compiled configuration.
type Bundle struct {
	Revision string
	Modules  map[string]string // path inside the bundle -> Rego source
	Config   *ir.Config

	// compiled is what New compiled, handed to the first Compile after it
	// (activation) so the modules are not compiled twice. It is kept with
	// the map it was compiled from: a Bundle whose Modules were replaced
	// compiles them.
	compiled atomic.Pointer[compiledModules]
}

// New builds a bundle from the IR and modules, checking that the modules
// parse and compile together with the data. The revision is a hash of the
// content, so the same input always gives the same revision.
func New(cfg *ir.Config, modules map[string]string) (*Bundle, error) {
	b := &Bundle{Modules: modules, Config: cfg}
	c, err := b.Compile()
	if err != nil {
		return nil, err
	}
	b.compiled.Store(&compiledModules{c, modules})
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding config: %v", ErrBundle, err)
	}
	h := sha256.New()
	h.Write(data)
	for _, p := range sortedKeys(modules) {
		fmt.Fprintf(h, "\x00%s\x00%s", p, modules[p])
	}
	b.Revision = hex.EncodeToString(h.Sum(nil))[:16]
	return b, nil
}

type compiledModules struct {
	compiler *ast.Compiler
	modules  map[string]string
}

func sameMap(a, b map[string]string) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// Compile parses and compiles the modules; errors name file, line and column.
// The first call after New returns what New compiled; later calls compile
// again (each caller gets a compiler of its own).
func (b *Bundle) Compile() (*ast.Compiler, error) {
	if c := b.compiled.Swap(nil); c != nil && sameMap(c.modules, b.Modules) {
		return c.compiler, nil
	}
	parsed := make(map[string]*ast.Module, len(b.Modules))
	var errs []error
	for _, p := range sortedKeys(b.Modules) {
		m, err := ast.ParseModuleWithOpts(p, b.Modules[p], ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		parsed[p] = m
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %v", ErrBundle, errors.Join(errs...))
	}
	c := ast.NewCompiler().WithEnablePrintStatements(false)
	if c.Compile(parsed); c.Failed() {
		return nil, fmt.Errorf("%w: %v", ErrBundle, c.Errors)
	}
	return c, nil
}

// Data is the bundle's data document: {"mcpgate": {"config": <IR>}}.
func (b *Bundle) Data() (map[string]any, error) {
	raw, err := json.Marshal(b.Config)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding config: %v", ErrBundle, err)
	}
	var cfg map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("%w: decoding config: %v", ErrBundle, err)
	}
	return map[string]any{Root: map[string]any{"config": cfg}}, nil
}

// Write writes the bundle as an OPA bundle tarball (tar.gz).
func (b *Bundle) Write(w io.Writer) error {
	data, err := b.Data()
	if err != nil {
		return err
	}
	v1 := 1
	roots := []string{Root}
	for p := range b.Modules {
		if strings.HasPrefix(p, LogRoot+"/") {
			roots = append(roots, LogRoot)
			break
		}
	}
	ob := opabundle.Bundle{
		Manifest: opabundle.Manifest{Revision: b.Revision, Roots: &roots, RegoVersion: &v1},
		Data:     data,
	}
	for _, p := range sortedKeys(b.Modules) {
		ob.Modules = append(ob.Modules, opabundle.ModuleFile{URL: p, Path: p, Raw: []byte(b.Modules[p])})
	}
	if err := opabundle.NewWriter(w).UseModulePath(true).DisableFormat(true).Write(ob); err != nil {
		return fmt.Errorf("%w: writing: %v", ErrBundle, err)
	}
	return nil
}

// Read loads a bundle tarball written by Write (or by any OPA tool, as long
// as it carries data.mcpgate.config).
func Read(r io.Reader) (*Bundle, error) {
	ob, err := opabundle.NewReader(r).WithRegoVersion(ast.RegoV1).WithSizeLimitBytes(64 << 20).Read()
	if err != nil {
		return nil, fmt.Errorf("%w: reading: %v", ErrBundle, err)
	}
	root, _ := ob.Data[Root].(map[string]any)
	cfgData, ok := root["config"]
	if !ok {
		return nil, fmt.Errorf("%w: no data.%s.config in bundle", ErrBundle, Root)
	}
	raw, err := json.Marshal(cfgData)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBundle, err)
	}
	cfg := &ir.Config{}
	if err := json.Unmarshal(raw, cfg); err != nil {
		return nil, fmt.Errorf("%w: data.%s.config: %v", ErrBundle, Root, err)
	}
	if cfg.Version != ir.Version {
		return nil, fmt.Errorf("%w: config version %q, want %q", ErrBundle, cfg.Version, ir.Version)
	}
	b := &Bundle{Revision: ob.Manifest.Revision, Config: cfg, Modules: map[string]string{}}
	for _, m := range ob.Modules {
		// OPA reports tarball paths with a leading slash; Write takes them
		// without, and the revision hashes them.
		b.Modules[strings.TrimPrefix(m.Path, "/")] = string(m.Raw)
	}
	if _, err := b.Compile(); err != nil {
		return nil, err
	}
	return b, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
