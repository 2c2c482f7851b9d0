package policy

import (
	"slices"
	"strconv"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Decision cache.
//
// A policy is a function of the parts of the input it reads (and of the
// bundle's data, fixed per evaluator) unless it calls a non-deterministic
// built-in (time.now_ns, http.send, rand.intn, ...). At preparation the
// compiled modules are scanned: the input paths they read are collected
// (input.mcp.tool.name, input.jwt.claims, ...; a path read with a computed
// key is cut before that key), and caching is enabled only when no module
// reads the input as a whole and no non-deterministic built-in is called.
// Each decision is then memoised under the values of exactly those paths:
// two inputs that agree on everything the policy can read get the same
// decision, so the cache changes no answer. Parts the policy never reads —
// the JSON-RPC id, the Content-Length header, the client port — do not
// split the cache.
//
// The library's list-filtering rules copy the whole input and input.mcp
// (minus the list) into each item's input; those copies are read only
// through the paths the scan sees, so the library's references to input and
// input.mcp as a whole are not counted.
//
// Keys are the exact texts of the values (no hash, so no collision can hand
// one caller another's decision); a key longer than maxKeyBytes (a long
// list, big arguments) is not cached. The cache holds at most
// 2 × maxEntries decisions and 2 × maxGenBytes of keys per evaluator, in two
// generations: when the current one fills, the previous is dropped.

const (
	maxKeyBytes = 8 << 10
	maxEntries  = 8192
	maxGenBytes = 8 << 20 // key bytes per generation: at most 2 × 8 MiB of keys whatever callers send
)

type decisionCache struct {
	paths []ast.Ref // sorted, none a prefix of another

	mu       sync.RWMutex
	cur, old map[string]*Decision
	curBytes int // key bytes in cur
}

// newDecisionCache scans the compiled modules; nil when the policy cannot
// be cached. library names the module files of the fixed library.
func newDecisionCache(compiler *ast.Compiler, library map[string]bool) *decisionCache {
	reads := map[string]ast.Ref{}
	cacheable := true
	for name, mod := range compiler.Modules {
		ast.WalkTerms(mod, func(t *ast.Term) bool {
			if !cacheable {
				return true
			}
			switch v := t.Value.(type) {
			case ast.Call:
				if nondeterministic(v) {
					cacheable = false
				}
			case ast.Ref:
				if !v.HasPrefix(ast.InputRootRef) {
					return false
				}
				p := groundPrefix(v)
				if library[name] && (len(p) == 1 || p.Equal(inputMCP)) {
					return false // the list rules' copies, see above
				}
				if len(p) == 1 { // the whole input
					cacheable = false
					return false
				}
				reads[p.String()] = p
			}
			return false
		})
		// Calls also appear as expressions whose operator is a ref term.
		ast.WalkExprs(mod, func(e *ast.Expr) bool {
			if e.IsCall() && isNondeterministic(e.Operator().String()) {
				cacheable = false
			}
			return false
		})
		if !cacheable {
			return nil
		}
	}
	paths := make([]ast.Ref, 0, len(reads))
	for _, r := range reads {
		paths = append(paths, r)
	}
	slices.SortFunc(paths, func(a, b ast.Ref) int { return a.Compare(b) })
	// Drop paths covered by a shorter one (input.jwt covers input.jwt.valid).
	out := paths[:0]
	for _, p := range paths {
		if len(out) > 0 && p.HasPrefix(out[len(out)-1]) {
			continue
		}
		out = append(out, p)
	}
	return &decisionCache{paths: out, cur: map[string]*Decision{}}
}

var inputMCP = ast.MustParseRef("input.mcp")

// groundPrefix is the longest prefix of r made of constant keys.
func groundPrefix(r ast.Ref) ast.Ref {
	for i := 1; i < len(r); i++ {
		switch r[i].Value.(type) {
		case ast.String, ast.Number, ast.Boolean, ast.Null:
		default:
			return r[:i]
		}
	}
	return r
}

func nondeterministic(c ast.Call) bool {
	return len(c) > 0 && isNondeterministic(c[0].String())
}

func isNondeterministic(name string) bool {
	b, ok := ast.BuiltinMap[name]
	return ok && b.Nondeterministic
}

// key is the cache key of an input: the text of the value at each path
// ("" and false when too long).
func (c *decisionCache) key(input ast.Value) (string, bool) {
	var b []byte
	for _, p := range c.paths {
		v, err := input.Find(p[1:])
		if err != nil {
			b = append(b, '-') // undefined
			continue
		}
		text := v.String()
		b = strconv.AppendInt(b, int64(len(text)), 10)
		b = append(b, ':')
		b = append(b, text...)
		if len(b) > maxKeyBytes {
			return "", false
		}
	}
	return string(b), true
}

func (c *decisionCache) get(k string) (*Decision, bool) {
	c.mu.RLock()
	d, ok := c.cur[k]
	if !ok {
		d, ok = c.old[k]
	}
	c.mu.RUnlock()
	return d, ok
}

func (c *decisionCache) put(k string, d *Decision) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= maxEntries || c.curBytes+len(k) > maxGenBytes {
		c.old, c.cur, c.curBytes = c.cur, make(map[string]*Decision, maxEntries), 0
	}
	if _, ok := c.cur[k]; !ok {
		c.curBytes += len(k)
	}
	c.cur[k] = d
}

var inputHeaders = ast.MustParseRef("input.request.headers")

// ReadsHeaders reports whether a decision can depend on the request
// headers in the input (input.request.headers): always when the policy is
// not cached (its reads are unknown), otherwise when a path the policy reads
// covers them or lies below them. The request path leaves the headers out
// of the input of policies that never read them.
func (e *Evaluator) ReadsHeaders() bool { return e.readsHeaders }

func readsHeaders(c *decisionCache) bool {
	if c == nil {
		return true
	}
	for _, p := range c.paths {
		if inputHeaders.HasPrefix(p) || p.HasPrefix(inputHeaders) {
			return true
		}
	}
	return false
}
