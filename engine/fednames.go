package engine

// prefixMode Never on a multi-target backend: names reach the client as
// their targets give them, so the gateway finds the target of a call by
// name. It keeps, per backend, a table of what every target lists (tools,
// prompts, resources, and the literal beginnings of resource templates),
// built from its own list requests. Those are the same for every caller:
// the gateway never passes a client's credentials upstream. A name two
// targets share belongs to the first target in the backend's order.

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/engine/mcp"
	"github.com/mcpgate/mcpgate/ir"
)

const (
	nameTableTTL     = 30 * time.Second // a table older than this is rebuilt when used
	nameTableMinWait = time.Second      // a miss rebuilds it at most this often
	nameTableTimeout = 10 * time.Second
)

type nameTable struct {
	mu       sync.Mutex
	built    time.Time
	names    map[string]map[string]string // list method → name → target
	prefixes []templatePrefix
	building chan struct{} // closed when the rebuild under way ends
}

type templatePrefix struct{ prefix, target string }

// fedRoute is route for every prefix mode: with names unprefixed (Never,
// several targets) the table says which target a name belongs to.
func (h *routeHandler) fedRoute(ctx context.Context, msg *mcp.Message) (*mcp.Message, ir.Target) {
	f := h.fed
	if f.prefixed || len(f.targets) == 1 {
		return f.route(msg)
	}
	path, value, _ := routedBy(msg)
	if path == nil {
		return msg, ir.Target{}
	}
	method := "resources/list"
	switch {
	case msg.Method == "tools/call":
		method = "tools/list"
	case msg.Method == "prompts/get" || msg.RefType == "ref/prompt":
		method = "prompts/list"
	}
	if t, ok := h.lookupName(ctx, method, value); ok {
		return msg, t
	}
	return msg, ir.Target{}
}

// lookupName finds the target of a name. A hit is served from the table
// even when it is old (which is then rebuilt in the background); a miss
// waits for a rebuild, at most one per nameTableMinWait.
func (h *routeHandler) lookupName(ctx context.Context, method, value string) (ir.Target, bool) {
	nt := &h.fed.names
	nt.mu.Lock()
	name, hit := nt.find(method, value)
	age := time.Since(nt.built)
	switch {
	case hit:
		if age >= nameTableTTL {
			h.rebuildNames(ctx)
		}
		nt.mu.Unlock()
		return h.fed.target(name)
	case nt.names != nil && age < nameTableMinWait:
		nt.mu.Unlock()
		return ir.Target{}, false
	}
	wait := h.rebuildNames(ctx)
	nt.mu.Unlock()
	select {
	case <-wait:
	case <-ctx.Done():
		return ir.Target{}, false
	}
	nt.mu.Lock()
	name, hit = nt.find(method, value)
	nt.mu.Unlock()
	if !hit {
		return ir.Target{}, false
	}
	return h.fed.target(name)
}

// rebuildNames starts a rebuild unless one is under way and returns the
// channel closed when it ends; the caller holds mu.
func (h *routeHandler) rebuildNames(ctx context.Context) chan struct{} {
	nt := &h.fed.names
	if nt.building == nil {
		nt.building = make(chan struct{})
		go h.buildNameTable(ctx, nt.building)
	}
	return nt.building
}

// find looks value up; the caller holds mu.
func (nt *nameTable) find(method, value string) (string, bool) {
	if t, ok := nt.names[method][value]; ok {
		return t, true
	}
	if method == "resources/list" {
		for _, p := range nt.prefixes {
			if strings.HasPrefix(value, p.prefix) {
				return p.target, true
			}
		}
	}
	return "", false
}

func (f *federation) target(name string) (ir.Target, bool) {
	for _, t := range f.targets {
		if t.Name == name {
			return t, true
		}
	}
	return ir.Target{}, false
}

// buildNameTable lists everything every target offers and replaces the
// table; a target that fails is left out of this table.
func (h *routeHandler) buildNameTable(ctx context.Context, done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), nameTableTimeout)
	defer cancel()
	names := map[string]map[string]string{}
	var prefixes []templatePrefix
	results, _ := h.fanOut(ctx, nil, latestVersion, func(ctx context.Context, t ir.Target, us upstreamSession) ([]byte, error) {
		out := map[string]json.RawMessage{}
		for _, k := range listKinds {
			items, err := h.listAll(ctx, t, us, k)
			if err != nil {
				continue // a target may offer no prompts, say
			}
			out[k.method] = items
		}
		return json.Marshal(out)
	}, true)
	for _, tr := range results { // in target order: the first target keeps a shared name
		var lists map[string]json.RawMessage
		if json.Unmarshal(tr.body, &lists) != nil {
			continue
		}
		for _, k := range listKinds {
			var items []map[string]any
			if json.Unmarshal(lists[k.method], &items) != nil {
				continue
			}
			method := k.method
			if method == "resources/templates/list" {
				for _, it := range items {
					tmpl, _ := it[k.idField].(string)
					if lit, _, _ := strings.Cut(tmpl, "{"); lit != "" {
						prefixes = append(prefixes, templatePrefix{lit, tr.target.Name})
					}
				}
				continue
			}
			if names[method] == nil {
				names[method] = map[string]string{}
			}
			for _, it := range items {
				id, _ := it[k.idField].(string)
				if _, taken := names[method][id]; !taken && id != "" {
					names[method][id] = tr.target.Name
				}
			}
		}
	}
	nt := &h.fed.names
	nt.mu.Lock()
	nt.names, nt.prefixes, nt.built, nt.building = names, prefixes, time.Now(), nil
	nt.mu.Unlock()
	close(done)
}
