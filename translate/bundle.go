package translate

import (
	"fmt"
	"strings"

	"github.com/mcpgate/mcpgate/bundle"
	mcprego "github.com/mcpgate/mcpgate/rego"
)

// Bundle assembles the OPA bundle for a translated configuration: the fixed
// library plus the IR as data, plus user modules (path -> text). User modules
// may not replace library files.
func Bundle(r *Result, user map[string]string) (*bundle.Bundle, error) {
	modules := mcprego.Modules()
	for p, text := range r.Modules {
		modules[p] = text
	}
	for p, text := range user {
		if _, taken := modules[p]; taken || strings.HasPrefix(p, "mcpgate/") && !strings.HasPrefix(p, "mcpgate/user/") {
			return nil, fmt.Errorf("%w: module path %q is reserved for the mcpgate library", ErrTranslate, p)
		}
		modules[p] = text
	}
	return bundle.New(r.Config, modules)
}
