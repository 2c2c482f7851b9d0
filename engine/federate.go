package engine

// Multi-target backends (federation): one client session in front of
// several MCP servers. initialize and the list methods fan out to every
// target and merge; calls go to the one target their name's prefix names,
// with the prefix stripped. The client's Mcp-Session-Id is the gateway's own
// (session.go): it carries the upstream sessions sealed, so any replica
// sharing the key serves it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpgate/mcpgate/engine/authn"
	"github.com/mcpgate/mcpgate/engine/mcp"
	"github.com/mcpgate/mcpgate/ir"
)

// gatewayRequestID numbers the requests the gateway itself sends upstream.
var gatewayRequestID atomic.Uint64

// maxListPages bounds the pages the gateway reads from one target for one
// list request; a target paging further fails the list.
const maxListPages = 20

// federation is the multi-target part of a route handler.
type federation struct {
	backend   *ir.Backend
	targets   []ir.Target
	terms     map[string]*ast.Term // input.route naming each target
	fanTerm   *ast.Term            // input.route of messages for every target (target "")
	prefixed  bool
	failOpen  bool
	stateless bool      // sessionRouting Stateless: no session ids; upstream sessions per request
	names     nameTable // prefixMode Never with several targets (fednames.go)
}

func newFederation(l ir.Listener, rt *ir.Route, be *ir.Backend) *federation {
	f := &federation{backend: be, targets: be.Targets, terms: map[string]*ast.Term{},
		prefixed:  be.PrefixMode == "Always" || (be.PrefixMode != "Never" && len(be.Targets) > 1),
		failOpen:  be.FailureMode == "FailOpen",
		stateless: be.SessionRouting == "Stateless"}
	for _, t := range be.Targets {
		f.terms[t.Name] = routeTerm(l, rt, t)
	}
	f.fanTerm = routeTerm(l, rt, ir.Target{})
	return f
}

// termOf is input.route for a message to t (the zero target: to all).
func (f *federation) termOf(t ir.Target) *ast.Term {
	if term, ok := f.terms[t.Name]; ok {
		return term
	}
	return f.fanTerm
}

// upstreamSession is one target's session inside a gateway session.
type upstreamSession struct {
	ID      string `json:"s,omitempty"`
	Version string `json:"v,omitempty"`
}

// route picks the target of a message that names a tool, prompt or
// resource and returns the message as that target knows it (prefix
// stripped). Other messages, and names that match no target, get the zero
// target: they fan out, are answered by the gateway, or are refused as
// unknown once the policy has had its say (so an unauthenticated client
// gets 401, not a hint about the targets).
func (f *federation) route(msg *mcp.Message) (*mcp.Message, ir.Target) {
	path, value, sep := routedBy(msg)
	if path == nil {
		return msg, ir.Target{}
	}
	if !f.prefixed && len(f.targets) == 1 {
		return msg, f.targets[0] // names as the one target knows them
	}
	t, rest, found := f.split(value, sep)
	if !found {
		return msg, ir.Target{}
	}
	out, err := withParam(msg.Raw, path, rest)
	if err != nil {
		return msg, ir.Target{}
	}
	return out, t
}

// routedBy names the parameter (its path under params) that routes a
// request to one target, its value and the separator of its prefix; path is
// nil for other messages.
func routedBy(msg *mcp.Message) (path []string, value, sep string) {
	if msg == nil || msg.Kind != mcp.Request {
		return nil, "", ""
	}
	switch msg.Method {
	case "tools/call", "prompts/get":
		return []string{"name"}, msg.Name, "_"
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		return []string{"uri"}, msg.URI, "+"
	case "completion/complete":
		switch msg.RefType {
		case "ref/prompt":
			return []string{"ref", "name"}, msg.Name, "_"
		case "ref/resource":
			return []string{"ref", "uri"}, msg.URI, "+"
		}
	}
	return nil, "", ""
}

// split finds the target a prefixed name belongs to: the longest target
// name followed by sep (target names may contain '_').
func (f *federation) split(value, sep string) (ir.Target, string, bool) {
	best, rest, found := ir.Target{}, "", false
	for _, t := range f.targets {
		p := t.Name + sep
		if strings.HasPrefix(value, p) && len(value) > len(p) && len(t.Name) >= len(best.Name) {
			best, rest, found = t, value[len(p):], true
		}
	}
	return best, rest, found
}

func unknownItem(w http.ResponseWriter, id jsontext.Value, what, name string) {
	msg := "Unknown " + what + ": " + strings.Trim(strconvQuote(name), `"`)
	writeJSONRPCError(w, http.StatusOK, id, mcp.CodeInvalidParams, msg, nil)
}

// withParam returns the message with the string at params.<path> set to
// value, every other byte as the client sent it.
func withParam(raw []byte, path []string, value string) (*mcp.Message, error) {
	b, err := replaceString(raw, append([]string{"params"}, path...), func(string) string { return value })
	if err != nil {
		return nil, err
	}
	return mcp.Parse(b)
}

// serveFederated handles an authorised message on a multi-target backend.
func (h *routeHandler) serveFederated(w http.ResponseWriter, r *http.Request, msg *mcp.Message, target ir.Target, res authn.Result) {
	f := h.fed
	switch r.Method {
	case http.MethodGet:
		h.fedStream(w, r)
		return
	case http.MethodDelete:
		if f.stateless {
			w.Header().Set("Allow", "POST")
			writeJSONRPCError(w, http.StatusMethodNotAllowed, nil, mcp.CodeInvalidRequest, "this endpoint keeps no sessions (sessionRouting: Stateless)", nil)
			return
		}
		h.fedDelete(w, r)
		return
	}
	if msg.Kind == mcp.Request && msg.Method == "initialize" {
		h.fedInitialize(w, r, msg)
		return
	}
	var sess *fedSession
	if id := r.Header.Get("Mcp-Session-Id"); id != "" && !f.stateless {
		var err error
		if sess, err = h.g.sessions.open(f.backend.Key, id); err != nil {
			writeJSONRPCError(w, http.StatusNotFound, idOf(msg), mcp.CodeInvalidRequest, "session not found", nil)
			return
		}
	}
	if msg.Kind != mcp.Request {
		// A response to a request a target sent goes back to that target;
		// notifications (and responses to nothing the gateway mapped) go
		// to every target holding a session. Without a session there is
		// nobody to tell.
		if sess != nil {
			if t, raw, ok := f.toTarget(msg.Raw, msg.ID); msg.Kind == mcp.Response && ok {
				h.notify(r.Context(), sess, t, raw)
			} else {
				h.notifyAll(r.Context(), sess, msg.Raw)
			}
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if path, value, _ := routedBy(msg); path != nil && target.Name == "" {
		what := "resource"
		if msg.Method == "tools/call" {
			what = "tool"
		} else if msg.Method == "prompts/get" || msg.RefType == "ref/prompt" {
			what = "prompt"
		}
		unknownItem(w, msg.ID, what, value)
		return
	}
	switch {
	case msg.Method == "ping":
		// With a session, every target of it is pinged (failureMode
		// applies); without one there is no upstream to keep alive.
		if sess != nil {
			if err := h.pingAll(r.Context(), sess, msg); err != nil {
				h.fanOutFailed(w, msg, err)
				return
			}
		}
		writeResult(w, msg.ID, map[string]any{})
	case target.Name != "":
		h.fedCall(w, r, msg, target, sess)
	case msg.Method == "completion/complete":
		// A reference of no known target: nothing to complete.
		writeResult(w, msg.ID, map[string]any{"completion": map[string]any{"values": []string{}, "hasMore": false}})
	case msg.Method == "logging/setLevel":
		dl := h.newDeadline(r.Context())
		defer dl.done()
		_, err := h.fanOut(dl.ctx, sess, r.Header.Get("Mcp-Protocol-Version"), func(ctx context.Context, t ir.Target, us upstreamSession) ([]byte, error) {
			return h.request(ctx, t, us, msg.Raw, msg.ID)
		}, f.failOpen)
		if err != nil {
			h.fanOutFailed(w, msg, err)
			return
		}
		writeResult(w, msg.ID, map[string]any{})
	default:
		if kind, ok := listKindOf(msg.Method); ok {
			h.fedList(w, r, msg, kind, sess, res)
			return
		}
		writeJSONRPCError(w, http.StatusOK, msg.ID, mcp.CodeMethodNotFound, "Method not found: "+strconvQuote(msg.Method), nil)
	}
}

func listKindOf(method string) (listKind, bool) {
	for _, k := range listKinds {
		if k.method == method {
			return k, true
		}
	}
	return listKind{}, false
}

func writeResult(w http.ResponseWriter, id jsontext.Value, result any) {
	b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": json.RawMessage(id), "result": result})
	if err != nil {
		writeJSONRPCError(w, http.StatusInternalServerError, id, mcp.CodeInternalError, "internal error", nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// notifyAll posts a notification or response to every target of sess,
// concurrently; a failure is only logged (there is nobody to answer).
func (h *routeHandler) notifyAll(ctx context.Context, sess *fedSession, raw []byte) {
	var wg sync.WaitGroup
	for _, t := range h.fed.targets {
		wg.Go(func() { h.notify(ctx, sess, t, raw) })
	}
	wg.Wait()
}

// notify posts a notification or response to target t of sess; a failure
// is only logged.
func (h *routeHandler) notify(ctx context.Context, sess *fedSession, t ir.Target, raw []byte) {
	us, ok := sess.Upstream[t.Name]
	if !ok {
		return // no session there: the message would mean nothing
	}
	resp, err := h.rawPostTo(ctx, t.URL, raw, us.ID, us.Version)
	if err != nil {
		h.g.log.Warn("target failed", "route", h.route.Key, "target", t.Name, "error", err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// targetResult is one target's answer in a fan-out.
type targetResult struct {
	target ir.Target
	body   []byte
	err    error
}

// fanOut runs call on every target concurrently, each with its session
// from sess (or a session opened for this request and closed after it).
// It returns the successful answers in target order. A failed target fails
// the whole fan-out unless skip holds (failureMode FailOpen, or
// notifications): then it is logged and left out, and only all targets
// failing is an error.
func (h *routeHandler) fanOut(ctx context.Context, sess *fedSession, version string, call func(context.Context, ir.Target, upstreamSession) ([]byte, error), skip bool) ([]targetResult, error) {
	out := make([]targetResult, len(h.fed.targets))
	var wg sync.WaitGroup
	for i, t := range h.fed.targets {
		wg.Go(func() {
			out[i].target = t
			us, done, err := h.upstreamSessionFor(ctx, sess, t, version)
			if err != nil {
				out[i].err = err
				return
			}
			defer done()
			out[i].body, out[i].err = call(ctx, t, us)
		})
	}
	wg.Wait()
	kept := out[:0]
	var errs []error
	for _, tr := range out {
		if tr.err != nil {
			h.g.log.Warn("target failed", "route", h.route.Key, "target", tr.target.Name, "error", tr.err)
			errs = append(errs, fmt.Errorf("target %s: %w", tr.target.Name, tr.err))
			continue
		}
		kept = append(kept, tr)
	}
	if len(errs) > 0 && (!skip || len(kept) == 0) {
		return nil, errors.Join(errs...)
	}
	return kept, nil
}

// initializing stands for the session being created: initialize opens
// the upstream sessions itself.
var initializing = &fedSession{}

// upstreamSessionFor returns t's session in sess, or opens one for this
// request (a client without a session, or a target that was down when the
// session began); done closes what was opened.
func (h *routeHandler) upstreamSessionFor(ctx context.Context, sess *fedSession, t ir.Target, version string) (upstreamSession, func(), error) {
	if sess == initializing {
		return upstreamSession{}, func() {}, nil
	}
	if sess != nil {
		if us, ok := sess.Upstream[t.Name]; ok {
			return us, func() {}, nil
		}
		version = sess.Version
	}
	sid, v, err := h.openSessionAt(ctx, t.URL, version)
	if err != nil {
		return upstreamSession{}, nil, fmt.Errorf("opening upstream session: %w", err)
	}
	if sid == "" {
		return upstreamSession{Version: v}, func() {}, nil
	}
	return upstreamSession{ID: sid, Version: v}, func() { h.closeSessionAt(ctx, t.URL, sid, v) }, nil
}

// request sends one JSON-RPC request to t and returns its response; an
// error response or a non-200 answer is an error.
func (h *routeHandler) request(ctx context.Context, t ir.Target, us upstreamSession, body []byte, id jsontext.Value) ([]byte, error) {
	resp, err := h.rawPostTo(ctx, t.URL, body, us.ID, us.Version)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound && us.ID != "" {
		return nil, errUpstreamSessionGone
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("upstream status %d", resp.StatusCode)
	}
	data, err := firstResponse(resp, id)
	if err != nil {
		return nil, err
	}
	var probe struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(data, &probe); err != nil || len(probe.Result) == 0 {
		return nil, fmt.Errorf("upstream answered no result: %.200s", data)
	}
	return probe.Result, nil
}

// errUpstreamSessionGone: a target no longer knows its session (the client
// ended it, or the server forgot it); the client must initialize again.
var errUpstreamSessionGone = errors.New("upstream session not found")

// fanOutFailed answers for a fan-out that failed: no internals in the body.
func (h *routeHandler) fanOutFailed(w http.ResponseWriter, msg *mcp.Message, err error) {
	h.g.log.Warn("fan-out failed", "route", h.route.Key, "method", msg.Method, "error", err)
	if errors.Is(err, errUpstreamSessionGone) {
		writeJSONRPCError(w, http.StatusNotFound, idOf(msg), mcp.CodeInvalidRequest, "session not found", nil)
		return
	}
	writeJSONRPCError(w, http.StatusBadGateway, idOf(msg), mcp.CodeInternalError, "upstream MCP server unavailable", nil)
}

// fedInitialize initializes every target with the client's initialize,
// merges their results and answers with a gateway session id carrying the
// upstream sessions.
func (h *routeHandler) fedInitialize(w http.ResponseWriter, r *http.Request, msg *mcp.Message) {
	dl := h.newDeadline(r.Context())
	defer dl.done()
	sids := make([]string, len(h.fed.targets))
	results, err := h.fanOut(dl.ctx, initializing, "", func(ctx context.Context, t ir.Target, _ upstreamSession) ([]byte, error) {
		resp, err := h.rawPostTo(ctx, t.URL, msg.Raw, "", "")
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("initialize: upstream status %d", resp.StatusCode)
		}
		data, err := firstResponse(resp, msg.ID)
		if err != nil {
			return nil, err
		}
		for i, tt := range h.fed.targets {
			if tt.Name == t.Name {
				sids[i] = resp.Header.Get("Mcp-Session-Id")
			}
		}
		return data, nil
	}, h.fed.failOpen)
	if err != nil {
		h.fanOutFailed(w, msg, err)
		return
	}
	sess := &fedSession{Upstream: map[string]upstreamSession{}}
	merged := map[string]any{}
	caps := map[string]any{}
	var instructions []string
	for _, tr := range results {
		var env struct {
			Result *struct {
				ProtocolVersion string         `json:"protocolVersion"`
				Capabilities    map[string]any `json:"capabilities"`
				Instructions    string         `json:"instructions"`
			} `json:"result"`
		}
		if err := json.Unmarshal(tr.body, &env); err != nil || env.Result == nil {
			h.fanOutFailed(w, msg, fmt.Errorf("target %s refused initialize: %.200s", tr.target.Name, tr.body))
			return
		}
		res := env.Result
		if sess.Version == "" || res.ProtocolVersion < sess.Version {
			sess.Version = res.ProtocolVersion
		}
		mergeCapabilities(caps, res.Capabilities)
		if res.Instructions != "" {
			instructions = append(instructions, tr.target.Name+": "+res.Instructions)
		}
		for i, t := range h.fed.targets {
			if t.Name == tr.target.Name {
				sess.Upstream[t.Name] = upstreamSession{ID: sids[i], Version: res.ProtocolVersion}
			}
		}
	}
	merged["protocolVersion"] = sess.Version
	merged["capabilities"] = caps
	merged["serverInfo"] = map[string]any{"name": "mcpgate", "version": "1"}
	if len(instructions) > 0 {
		merged["instructions"] = strings.Join(instructions, "\n\n")
	}
	if h.fed.stateless {
		// No session to hand out: the upstream sessions end now, and
		// every later request gets its own.
		h.endUpstreamSessions(dl.ctx, sess)
	} else {
		id, err := h.g.sessions.seal(h.fed.backend.Key, sess)
		if err != nil {
			h.g.log.Error("sealing a session failed", "error", err)
			writeJSONRPCError(w, http.StatusInternalServerError, msg.ID, mcp.CodeInternalError, "internal error", nil)
			return
		}
		w.Header().Set("Mcp-Session-Id", id)
		h.g.metrics.sessionStarted()
	}
	writeResult(w, msg.ID, merged)
}

// mergeCapabilities adds src's capabilities to dst: the union of the
// capability objects and of their flags.
func mergeCapabilities(dst, src map[string]any) {
	for k, v := range src {
		sub, ok := v.(map[string]any)
		cur, has := dst[k].(map[string]any)
		switch {
		case !ok || !has:
			if _, exists := dst[k]; !exists || ok {
				dst[k] = v
			}
		default:
			for kk, vv := range sub {
				if b, isBool := vv.(bool); !isBool || b {
					cur[kk] = vv
				} else if _, exists := cur[kk]; !exists {
					cur[kk] = vv
				}
			}
		}
	}
}

// fedList fans a list request out, reads every page of each target,
// filters each target's items by policy, prefixes and merges them. The
// merged list is returned whole (no nextCursor).
func (h *routeHandler) fedList(w http.ResponseWriter, r *http.Request, msg *mcp.Message, kind listKind, sess *fedSession, res authn.Result) {
	if msg.Params != nil {
		if obj, ok := msg.Params.Value.(ast.Object); ok && obj.Get(ast.StringTerm("cursor")) != nil {
			// The gateway never hands out a cursor here.
			writeJSONRPCError(w, http.StatusOK, msg.ID, mcp.CodeInvalidParams, "invalid cursor", nil)
			return
		}
	}
	dl := h.newDeadline(r.Context())
	defer dl.done()
	results, err := h.fanOut(dl.ctx, sess, r.Header.Get("Mcp-Protocol-Version"), func(ctx context.Context, t ir.Target, us upstreamSession) ([]byte, error) {
		return h.listAll(ctx, t, us, kind)
	}, h.fed.failOpen)
	if err != nil {
		if r.Context().Err() == nil {
			h.fanOutFailed(w, msg, err)
		}
		return
	}
	filter := len(h.route.Authz) > 0 || len(h.route.User) > 0
	merged := []jsontext.Value{}
	for _, tr := range results {
		items := json.RawMessage(tr.body)
		if filter {
			kept, err := h.filterItems(r, res, kind, items, tr.target.Name, h.fed.terms[tr.target.Name])
			if err != nil {
				h.rewriteFailed(w, msg, err)
				return
			}
			if kept != nil {
				items = kept
			}
		}
		prefixed, err := h.prefixItems(kind, tr.target.Name, items)
		if err != nil {
			h.rewriteFailed(w, msg, err)
			return
		}
		merged = append(merged, prefixed...)
	}
	writeList(w, msg.ID, kind.resultKey, merged)
}

// listAll reads every page of one list from t and returns the items as one
// JSON array.
func (h *routeHandler) listAll(ctx context.Context, t ir.Target, us upstreamSession, kind listKind) ([]byte, error) {
	var all []jsontext.Value
	cursor := ""
	for page := 0; page < maxListPages; page++ {
		params := map[string]any{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		// Unique in the upstream session: concurrent lists of one client
		// session share it, and a server may refuse a request id in use.
		id := fmt.Sprintf(`"mcpgate-list-%d"`, gatewayRequestID.Add(1))
		body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": json.RawMessage(id), "method": kind.method, "params": params})
		if err != nil {
			return nil, err
		}
		result, err := h.request(ctx, t, us, body, jsontext.Value(id))
		if err != nil {
			return nil, err
		}
		var res map[string]jsontext.Value
		if err := jsonv2.Unmarshal(result, &res); err != nil {
			return nil, fmt.Errorf("list result is not an object: %w", err)
		}
		var items []jsontext.Value
		if raw, ok := res[kind.resultKey]; ok {
			if err := jsonv2.Unmarshal(raw, &items); err != nil {
				return nil, fmt.Errorf("list result %s is not an array: %w", kind.resultKey, err)
			}
		}
		all = append(all, items...)
		cursor = ""
		if raw, ok := res["nextCursor"]; ok {
			_ = jsonv2.Unmarshal(raw, &cursor)
		}
		if cursor == "" {
			if all == nil {
				all = []jsontext.Value{}
			}
			return jsonv2.Marshal(all)
		}
	}
	return nil, fmt.Errorf("%s: more than %d pages", kind.method, maxListPages)
}

// prefixItems prefixes the identifying field of each item with the target
// name: "<target>_<name>" for tools and prompts, "<target>+<uri>" for
// resources and resource templates. The rest of each item is relayed as the
// target wrote it.
func (h *routeHandler) prefixItems(kind listKind, target string, raw json.RawMessage) ([]jsontext.Value, error) {
	var items []jsontext.Value
	if err := jsonv2.Unmarshal(raw, &items); err != nil {
		return nil, err
	}
	if !h.fed.prefixed {
		return items, nil
	}
	prefix := target + "_"
	if kind.idField != "name" {
		prefix = target + "+"
	}
	for i, it := range items {
		out, err := withPrefixedMember(it, kind.idField, prefix)
		if err != nil {
			return nil, fmt.Errorf("list item %d: %w", i, err)
		}
		items[i] = out
	}
	return items, nil
}

// withPrefixedMember returns the JSON object obj with its string member
// name prefixed, every other byte as it was.
func withPrefixedMember(obj jsontext.Value, name, prefix string) (jsontext.Value, error) {
	return replaceString(obj, []string{name}, func(v string) string { return prefix + v })
}

// replaceString returns the JSON object obj with the string at path (member
// names, outermost first) replaced by fn(it), every other byte as it was.
func replaceString(obj jsontext.Value, path []string, fn func(string) string) (jsontext.Value, error) {
	return replaceValue(obj, path, func(val jsontext.Value) (jsontext.Value, error) {
		var v string
		if err := jsonv2.Unmarshal(val, &v); err != nil {
			return nil, fmt.Errorf("%s is not a string", path[len(path)-1])
		}
		return jsonv2.Marshal(fn(v))
	})
}

// replaceValue returns the JSON object obj with the value at path (member
// names, outermost first) replaced by fn(it), every other byte as it was.
// Duplicate member names are an error, as everywhere the gateway reads JSON.
func replaceValue(obj jsontext.Value, path []string, fn func(jsontext.Value) (jsontext.Value, error)) (jsontext.Value, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, errors.New("not a JSON object")
	}
	start, end := -1, -1
	var nv []byte
	for dec.PeekKind() != '}' {
		key, err := dec.ReadToken()
		if err != nil {
			return nil, err // duplicate member names included
		}
		isName := key.String() == path[0] // the token is void after the next read
		val, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		if !isName {
			continue
		}
		if len(path) > 1 {
			nv, err = replaceValue(val, path[1:], fn)
		} else {
			nv, err = fn(val)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path[0], err)
		}
		end = int(dec.InputOffset())
		start = end - len(val)
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	if start < 0 {
		return nil, fmt.Errorf("no %s", path[0])
	}
	out := make([]byte, 0, len(obj)+len(nv)-(end-start))
	out = append(append(append(out, obj[:start]...), nv...), obj[end:]...)
	return out, nil
}

// writeList answers a list request with the merged items, written as they
// are (each one already valid JSON).
func writeList(w http.ResponseWriter, id jsontext.Value, key string, items []jsontext.Value) {
	n := 64 + len(id) + len(key)
	for _, it := range items {
		n += len(it) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, id...)
	b = append(b, `,"result":{"`...)
	b = append(b, key...)
	b = append(b, `":[`...)
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	b = append(b, "]}}"...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// fedCall forwards a call to its target and relays the answer.
func (h *routeHandler) fedCall(w http.ResponseWriter, r *http.Request, msg *mcp.Message, t ir.Target, sess *fedSession) {
	dl := h.newDeadline(r.Context())
	defer dl.done()
	dl.target = t.Name
	us, done, err := h.upstreamSessionFor(dl.ctx, sess, t, r.Header.Get("Mcp-Protocol-Version"))
	if err != nil {
		h.upstreamFailed(w, r, dl, msg.ID, err)
		return
	}
	defer done()
	resp, err := h.rawPostTo(dl.ctx, t.URL, msg.Raw, us.ID, us.Version)
	if err != nil {
		h.upstreamFailed(w, r, dl, msg.ID, err)
		return
	}
	defer resp.Body.Close()
	// Never pass the upstream's session id: the client holds the gateway's.
	h.relay(w, r, dl, resp, msg, false, h.fed.fromTarget(t, msg.Method), t.Name)
}

// fedDelete ends the upstream sessions of a gateway session.
func (h *routeHandler) fedDelete(w http.ResponseWriter, r *http.Request) {
	sess, err := h.g.sessions.open(h.fed.backend.Key, r.Header.Get("Mcp-Session-Id"))
	if err != nil {
		writeJSONRPCError(w, http.StatusNotFound, nil, mcp.CodeInvalidRequest, "session not found", nil)
		return
	}
	dl := h.newDeadline(r.Context())
	defer dl.done()
	h.endUpstreamSessions(dl.ctx, sess)
	h.g.metrics.sessionEnded()
	w.WriteHeader(http.StatusOK)
}

// endUpstreamSessions ends every upstream session of sess, concurrently.
func (h *routeHandler) endUpstreamSessions(ctx context.Context, sess *fedSession) {
	var wg sync.WaitGroup
	for _, t := range h.fed.targets {
		us, ok := sess.Upstream[t.Name]
		if !ok || us.ID == "" {
			continue
		}
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodDelete, t.URL, nil)
			if err != nil {
				return
			}
			setUpstreamHeaders(req, us.ID, us.Version)
			resp, err := h.do(req)
			if err != nil {
				h.g.log.Warn("ending an upstream session failed", "route", h.route.Key, "target", t.Name, "error", err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	wg.Wait()
}

// fedStream serves GET on a multi-target backend: the server streams of the
// session's targets merged into one, each message mapped (fedmap.go); or,
// with a Last-Event-ID the gateway gave, the resumption of that one target's
// stream. Targets offering no stream (405) are left out; when none offers
// one, neither does the gateway.
func (h *routeHandler) fedStream(w http.ResponseWriter, r *http.Request) {
	f := h.fed
	if f.stateless {
		w.Header().Set("Allow", "POST")
		writeJSONRPCError(w, http.StatusMethodNotAllowed, nil, mcp.CodeInvalidRequest, "this endpoint keeps no sessions (sessionRouting: Stateless)", nil)
		return
	}
	id := r.Header.Get("Mcp-Session-Id")
	if id == "" {
		writeJSONRPCError(w, http.StatusBadRequest, nil, mcp.CodeInvalidRequest, "Mcp-Session-Id required", nil)
		return
	}
	sess, err := h.g.sessions.open(f.backend.Key, id)
	if err != nil {
		writeJSONRPCError(w, http.StatusNotFound, nil, mcp.CodeInvalidRequest, "session not found", nil)
		return
	}
	targets, resume := f.targets, ""
	if t, orig, ok := f.targetOfEventID(r.Header.Get("Last-Event-Id")); ok {
		targets, resume = []ir.Target{t}, orig
	}
	dl := h.newDeadline(r.Context())
	defer dl.done()
	type opened struct {
		t    ir.Target
		resp *http.Response
	}
	streams := make([]opened, len(targets))
	statuses := make([]int, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		us, ok := sess.Upstream[t.Name]
		if !ok || us.ID == "" {
			continue // no session there: no stream of its own to follow
		}
		wg.Go(func() {
			req, err := http.NewRequestWithContext(dl.ctx, http.MethodGet, t.URL, nil)
			if err != nil {
				return
			}
			setUpstreamHeaders(req, us.ID, us.Version)
			req.Header.Set("Accept", "text/event-stream")
			if resume != "" {
				req.Header.Set("Last-Event-ID", resume)
			}
			resp, err := h.do(req)
			if err != nil {
				h.g.log.Warn("target stream failed", "route", h.route.Key, "target", t.Name, "error", err)
				return
			}
			statuses[i] = resp.StatusCode
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(strings.ToLower(resp.Header.Get("Content-Type")), "text/event-stream") {
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
				resp.Body.Close()
				return
			}
			streams[i] = opened{t, resp}
		})
	}
	wg.Wait()
	var live []opened
	gone := 0
	for i, st := range streams {
		if st.resp != nil {
			live = append(live, st)
		} else if statuses[i] == http.StatusNotFound {
			gone++
		}
	}
	if len(live) == 0 {
		if gone > 0 {
			writeJSONRPCError(w, http.StatusNotFound, nil, mcp.CodeInvalidRequest, "session not found", nil)
			return
		}
		w.Header().Set("Allow", "POST, DELETE")
		writeJSONRPCError(w, http.StatusMethodNotAllowed, nil, mcp.CodeInvalidRequest, "no target offers a server stream", nil)
		return
	}
	dl.streaming()
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	var mu sync.Mutex // one writer at a time; each event written whole
	for _, st := range live {
		wg.Go(func() {
			defer st.resp.Body.Close()
			events := mcp.NewEventReader(st.resp.Body, maxEvent)
			rewrite := f.fromTarget(st.t, "")
			for {
				ev, err := events.Next()
				if err != nil {
					if !errors.Is(err, io.EOF) && r.Context().Err() == nil {
						h.g.log.Warn("target stream failed", "route", h.route.Key, "target", st.t.Name, "error", err)
					}
					return
				}
				b := h.eventBytes(ev, rewrite, st.t.Name)
				mu.Lock()
				_, werr := w.Write(b)
				if werr == nil {
					werr = rc.Flush()
				}
				mu.Unlock()
				if werr != nil {
					return
				}
			}
		})
	}
	wg.Wait()
}

// pingAll pings every target holding a session in sess, concurrently. A
// target that does not answer fails the ping unless failureMode is
// FailOpen (then only all failing does).
func (h *routeHandler) pingAll(ctx context.Context, sess *fedSession, msg *mcp.Message) error {
	dl := h.newDeadline(ctx)
	defer dl.done()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		ok   int
	)
	for _, t := range h.fed.targets {
		us, has := sess.Upstream[t.Name]
		if !has {
			continue
		}
		wg.Go(func() {
			_, err := h.request(dl.ctx, t, us, msg.Raw, msg.ID)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				h.g.log.Warn("target failed", "route", h.route.Key, "target", t.Name, "error", err)
				errs = append(errs, fmt.Errorf("target %s: %w", t.Name, err))
				return
			}
			ok++
		})
	}
	wg.Wait()
	if len(errs) > 0 && (!h.fed.failOpen || ok == 0) {
		return errors.Join(errs...)
	}
	return nil
}
