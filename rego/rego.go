// Package rego embeds mcpgate's fixed Rego library: the decision logic every
// bundle carries. Compiled objects become data (data.mcpgate.config) that this
// library reads; Go only enforces the decision it returns.
package rego

import (
	"embed"
	"io/fs"
	"strings"
)

//go:embed mcpgate
var library embed.FS

// DecisionQuery is the one query the gateway evaluates per message.
const DecisionQuery = "data.mcpgate.decision"

// Modules returns the library's modules (tests excluded) by bundle path,
// e.g. "mcpgate/decision.rego".
func Modules() map[string]string {
	return read(func(p string) bool { return !strings.HasSuffix(p, "_test.rego") })
}

// Tests returns the library's own _test.rego suites by bundle path.
func Tests() map[string]string {
	return read(func(p string) bool { return strings.HasSuffix(p, "_test.rego") })
}

func read(keep func(string) bool) map[string]string {
	out := map[string]string{}
	err := fs.WalkDir(library, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".rego") || !keep(p) {
			return err
		}
		b, err := library.ReadFile(p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		// The FS is compiled in; failing to read it is a build defect.
		panic(err)
	}
	return out
}
