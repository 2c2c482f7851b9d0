package load

import (
	"errors"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpgate/mcpgate/translate"
)

// FuzzLoad feeds arbitrary YAML through the whole control path a
// configuration file takes: strict decoding, translation (CEL compiled to
// Rego included) and bundling (every generated module parsed and compiled
// by OPA). Nothing may panic, every decoding problem must be a clear
// ErrInvalid, and a configuration that decodes and translates must bundle:
// the translator never emits Rego that does not compile. Seeds (the
// examples and the translation goldens' inputs) are in testdata/fuzz/FuzzLoad.
func FuzzLoad(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return // configuration files are small; keep executions fast
		}
		res := &translate.Resources{Sources: map[string]string{}}
		errs := Decode("fuzz.yaml", data, res)
		for _, err := range errs {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("decoding error %v does not wrap ErrInvalid", err)
			}
		}
		if len(errs) > 0 {
			return
		}
		out, err := translate.Translate(res)
		if err != nil {
			return
		}
		// Compiling a whole bundle takes too long per execution; the
		// generated modules must at least parse (FuzzCompile in
		// translate/cel compiles what CEL becomes).
		for path, text := range out.Modules {
			if _, err := ast.ParseModuleWithOpts(path, text, ast.ParserOptions{RegoVersion: ast.RegoV1}); err != nil {
				t.Fatalf("generated module %s does not parse: %v\n%s", path, err, text)
			}
		}
	})
}
