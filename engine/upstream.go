package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/engine/mcp"
)

// maxEvent bounds one upstream SSE event (a tools/list of a large server
// fits comfortably).
const maxEvent = 16 << 20

// post forwards one authorised message. Clients that send no session and
// no initialize (curl in the walkthrough, stateless agents) get an upstream
// session the gateway opens and closes for them: stateful servers refuse
// such requests otherwise.
func (h *routeHandler) post(w http.ResponseWriter, r *http.Request, msg *mcp.Message, rewrite rewriteFunc) {
	dl := h.newDeadline(r.Context())
	defer dl.done()
	ctx := dl.ctx
	session := r.Header.Get("Mcp-Session-Id")
	version := r.Header.Get("Mcp-Protocol-Version")
	ephemeral := false
	if session == "" && msg.Kind == mcp.Request && msg.Method != "initialize" {
		sid, v, err := h.openSession(ctx, version)
		if err != nil {
			h.upstreamFailed(w, r, dl, msg.ID, fmt.Errorf("opening upstream session: %w", err))
			return
		}
		session, version, ephemeral = sid, v, true
		if sid != "" {
			defer h.closeSession(ctx, sid, v)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.target.URL, bytes.NewReader(msg.Raw))
	if err != nil {
		writeJSONRPCError(w, http.StatusInternalServerError, idOf(msg), mcp.CodeInternalError, "internal error", nil)
		return
	}
	setUpstreamHeaders(req, session, version)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := h.do(req)
	if err != nil {
		h.upstreamFailed(w, r, dl, idOf(msg), err)
		return
	}
	defer resp.Body.Close()
	h.relay(w, r, dl, resp, msg, !ephemeral, rewrite, "")
}

// rewriteFunc transforms the JSON-RPC response to the client's request
// (list filtering). An error refuses the response: a list the policy could
// not filter is never shown unfiltered.
type rewriteFunc func([]byte) ([]byte, error)

// relay copies an upstream answer to the client. SSE is relayed event by
// event and flushed, unless the client cannot read SSE (it did not list
// text/event-stream in Accept): then the JSON-RPC response to its request is
// picked out of the stream and returned as application/json. rewrite, when
// set, applies to the response to msg, wherever it is.
//
// dl bounds the answer until it turns out to be a stream relayed as it
// comes; a JSON answer is read whole before it is written, so a timeout or a
// broken upstream still gets the client a proper error.
//
// evTarget, set on multi-target backends, names the target in the SSE event
// ids the client sees (fedmap.go).
func (h *routeHandler) relay(w http.ResponseWriter, r *http.Request, dl *deadline, resp *http.Response, msg *mcp.Message, passSession bool, rewrite rewriteFunc, evTarget string) {
	hdr := w.Header()
	if passSession {
		if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" {
			hdr.Set("Mcp-Session-Id", sid)
			if msg != nil && msg.Method == "initialize" && resp.StatusCode == http.StatusOK {
				h.g.metrics.sessionStarted()
			}
		}
	}
	ct := resp.Header.Get("Content-Type")
	if !strings.HasPrefix(strings.ToLower(ct), "text/event-stream") {
		if ct != "" {
			hdr.Set("Content-Type", ct)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxEvent+1))
		if err != nil {
			h.upstreamFailed(w, r, dl, idOf(msg), err)
			return
		}
		if len(body) > maxEvent {
			h.rewriteFailed(w, msg, mcp.ErrEventTooLarge)
			return
		}
		if rewrite != nil {
			if body, err = rewrite(body); err != nil {
				h.rewriteFailed(w, msg, err)
				return
			}
		}
		hdr.Del("Content-Length")
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
		return
	}
	events := mcp.NewEventReader(resp.Body, maxEvent)
	if msg != nil && msg.Kind == mcp.Request && !acceptsSSE(r.Header.Get("Accept")) {
		for {
			ev, err := events.Next()
			if err != nil {
				if dl.expired() || r.Context().Err() != nil {
					h.upstreamFailed(w, r, dl, msg.ID, err)
					return
				}
				h.g.log.Warn("upstream stream ended without a response", "route", h.route.Key, "error", err)
				writeJSONRPCError(w, http.StatusBadGateway, msg.ID, mcp.CodeInternalError, "upstream MCP server ended the stream without a response", nil)
				return
			}
			if isResponseTo(ev.Data, msg.ID) {
				data := ev.Data
				if rewrite != nil {
					if data, err = rewrite(data); err != nil {
						h.rewriteFailed(w, msg, err)
						return
					}
				}
				hdr.Set("Content-Type", "application/json")
				w.WriteHeader(resp.StatusCode)
				_, _ = w.Write(data)
				return
			}
		}
	}
	dl.streaming()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	for {
		ev, err := events.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && r.Context().Err() == nil {
				h.g.log.Warn("upstream stream failed", "route", h.route.Key, "error", err)
			}
			return
		}
		if _, err := w.Write(h.eventBytes(ev, rewrite, evTarget)); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// eventBytes is an upstream SSE event as the client gets it: rewritten by
// rewrite, its id naming evTarget when set; the event as it came when
// neither changes anything.
func (h *routeHandler) eventBytes(ev *mcp.Event, rewrite rewriteFunc, evTarget string) []byte {
	reencode := false
	if evTarget != "" && ev.ID != "" {
		ev.ID = eventIDFor(evTarget, ev.ID)
		reencode = true
	}
	data := ev.Data
	if rewrite != nil && len(ev.Data) > 0 {
		var err error
		if data, err = rewrite(ev.Data); err != nil {
			h.g.log.Warn("rewriting an upstream message failed", "route", h.route.Key, "error", err)
			data = mcp.ErrorResponse(responseID(ev.Data), mcp.CodeInternalError, "internal error", nil)
		}
		reencode = reencode || !bytes.Equal(data, ev.Data)
	}
	if !reencode {
		return ev.Raw
	}
	return encodeEvent(ev, data)
}

// stream relays the GET stream for server-initiated messages (and, after
// Last-Event-ID, the replay of an earlier stream: filtered like the original).
func (h *routeHandler) stream(w http.ResponseWriter, r *http.Request, rewrite rewriteFunc) {
	dl := h.newDeadline(r.Context())
	defer dl.done()
	req, err := http.NewRequestWithContext(dl.ctx, http.MethodGet, h.target.URL, nil)
	if err != nil {
		writeJSONRPCError(w, http.StatusInternalServerError, nil, mcp.CodeInternalError, "internal error", nil)
		return
	}
	setUpstreamHeaders(req, r.Header.Get("Mcp-Session-Id"), r.Header.Get("Mcp-Protocol-Version"))
	req.Header.Set("Accept", "text/event-stream")
	if id := r.Header.Get("Last-Event-Id"); id != "" {
		req.Header.Set("Last-Event-ID", id)
	}
	resp, err := h.do(req)
	if err != nil {
		h.upstreamFailed(w, r, dl, nil, err)
		return
	}
	defer resp.Body.Close()
	h.relay(w, r, dl, resp, nil, true, rewrite, "")
}

// deleteSession forwards a client's session termination.
func (h *routeHandler) deleteSession(w http.ResponseWriter, r *http.Request) {
	dl := h.newDeadline(r.Context())
	defer dl.done()
	req, err := http.NewRequestWithContext(dl.ctx, http.MethodDelete, h.target.URL, nil)
	if err != nil {
		writeJSONRPCError(w, http.StatusInternalServerError, nil, mcp.CodeInternalError, "internal error", nil)
		return
	}
	setUpstreamHeaders(req, r.Header.Get("Mcp-Session-Id"), r.Header.Get("Mcp-Protocol-Version"))
	resp, err := h.do(req)
	if err != nil {
		h.upstreamFailed(w, r, dl, nil, err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode < 300 {
		h.g.metrics.sessionEnded()
	}
	h.relay(w, r, dl, resp, nil, false, nil, "")
}

// setUpstreamHeaders sets the only client-derived headers that go upstream.
// Nothing else is copied: in particular never Authorization or cookies.
func setUpstreamHeaders(req *http.Request, session, version string) {
	req.Header.Set("User-Agent", "mcpgate")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	if version != "" {
		req.Header.Set("Mcp-Protocol-Version", version)
	}
}

// upstreamFailed answers for an upstream that could not be reached or did
// not answer in time: 504 when the timeout cut it, 502 otherwise, JSON-RPC
// error -32603 either way, with no internal address in the message.
func (h *routeHandler) upstreamFailed(w http.ResponseWriter, r *http.Request, dl *deadline, id jsontext.Value, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	target := h.target.Name
	if dl.target != "" {
		target = dl.target
	}
	if dl.expired() || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		h.g.log.Warn("upstream timed out", "route", h.route.Key, "target", target, "timeout", h.g.opts.UpstreamTimeout.String(), "error", err)
		writeJSONRPCError(w, http.StatusGatewayTimeout, id, mcp.CodeInternalError, "upstream MCP server timed out", nil)
		return
	}
	h.g.log.Warn("upstream request failed", "route", h.route.Key, "target", target, "error", err)
	writeJSONRPCError(w, http.StatusBadGateway, id, mcp.CodeInternalError, "upstream MCP server unavailable", nil)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// openSession initialises an upstream session on behalf of a client that
// has none. It returns the session id ("" for servers that keep no session)
// and the negotiated protocol version.
func (h *routeHandler) openSession(ctx context.Context, version string) (string, string, error) {
	return h.openSessionAt(ctx, h.target.URL, version)
}

// openSessionAt is openSession on the target at url.
func (h *routeHandler) openSessionAt(ctx context.Context, url, version string) (string, string, error) {
	if version == "" {
		version = latestVersion
	}
	init := fmt.Sprintf(`{"jsonrpc":"2.0","id":"mcpgate-init","method":"initialize","params":{"protocolVersion":%q,"capabilities":{},"clientInfo":{"name":"mcpgate","version":"1"}}}`, version)
	resp, err := h.rawPostTo(ctx, url, []byte(init), "", "")
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("initialize: upstream status %d", resp.StatusCode)
	}
	body, err := firstResponse(resp, jsontext.Value(`"mcpgate-init"`))
	if err != nil {
		return "", "", fmt.Errorf("initialize: %w", err)
	}
	var result struct {
		Result *struct {
			ProtocolVersion string `json:"protocolVersion"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &result); err != nil || result.Result == nil {
		return "", "", fmt.Errorf("initialize: upstream refused: %.200s", body)
	}
	sid := resp.Header.Get("Mcp-Session-Id")
	negotiated := result.Result.ProtocolVersion
	if !supportedVersions[negotiated] {
		negotiated = version
	}
	note, err := h.rawPostTo(ctx, url, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`), sid, negotiated)
	if err != nil {
		return "", "", fmt.Errorf("initialized: %w", err)
	}
	_, _ = io.Copy(io.Discard, note.Body)
	note.Body.Close()
	return sid, negotiated, nil
}

// closeSession ends a session the gateway opened, without holding up the
// client's response.
func (h *routeHandler) closeSession(parent context.Context, sid, version string) {
	h.closeSessionAt(parent, h.target.URL, sid, version)
}

// closeSessionAt is closeSession on the target at url.
func (h *routeHandler) closeSessionAt(parent context.Context, url, sid, version string) {
	go func() {
		// Not cancelled with the client's request (it is over by now), but
		// in its trace.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, url, nil)
		if err != nil {
			return
		}
		setUpstreamHeaders(req, sid, version)
		resp, err := h.do(req)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
}

func (h *routeHandler) rawPostTo(ctx context.Context, url string, body []byte, session, version string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	setUpstreamHeaders(req, session, version)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	return h.do(req)
}

// firstResponse reads the JSON-RPC response with the given id from a JSON or
// SSE answer.
func firstResponse(resp *http.Response, id jsontext.Value) ([]byte, error) {
	if !strings.HasPrefix(strings.ToLower(resp.Header.Get("Content-Type")), "text/event-stream") {
		return io.ReadAll(io.LimitReader(resp.Body, maxEvent))
	}
	events := mcp.NewEventReader(resp.Body, maxEvent)
	for {
		ev, err := events.Next()
		if err != nil {
			return nil, err
		}
		if isResponseTo(ev.Data, id) {
			return ev.Data, nil
		}
	}
}

// isResponseTo reports whether data is a JSON-RPC response with this id.
// Ids are compared by value: an upstream may re-encode "\u0061" as "a".
func isResponseTo(data []byte, id jsontext.Value) bool {
	var probe struct {
		ID     json.RawMessage `json:"id"`
		Method *string         `json:"method"`
	}
	if len(data) == 0 || json.Unmarshal(data, &probe) != nil || probe.Method != nil || len(probe.ID) == 0 {
		return false
	}
	return sameID(probe.ID, id)
}

func sameID(a, b []byte) bool {
	var x, y any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	if da.Decode(&x) != nil || db.Decode(&y) != nil {
		return false
	}
	return x == y
}

// acceptsSSE reports whether the client listed text/event-stream.
func acceptsSSE(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := strings.Cut(part, ";")
		if strings.EqualFold(strings.TrimSpace(mt), "text/event-stream") {
			return true
		}
	}
	return false
}

// rewriteFailed answers in place of a response the gateway could not
// rewrite: fail closed.
func (h *routeHandler) rewriteFailed(w http.ResponseWriter, msg *mcp.Message, err error) {
	h.g.log.Warn("list filtering failed", "route", h.route.Key, "error", err)
	writeJSONRPCError(w, http.StatusBadGateway, idOf(msg), mcp.CodeInternalError, "internal error", nil)
}

// responseID is the id of an upstream message, for an error in its place.
func responseID(data []byte) jsontext.Value {
	var probe struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(data, &probe) != nil || len(probe.ID) == 0 {
		return nil
	}
	return jsontext.Value(probe.ID)
}

// encodeEvent re-encodes an event with new data, keeping its name and id.
func encodeEvent(ev *mcp.Event, data []byte) []byte {
	var b bytes.Buffer
	if ev.Name != "" {
		b.WriteString("event: " + ev.Name + "\n")
	}
	if ev.ID != "" {
		b.WriteString("id: " + ev.ID + "\n")
	}
	if len(data) > 0 { // an event without data (a priming event) stays one
		for _, line := range bytes.Split(data, []byte("\n")) {
			b.WriteString("data: ")
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	b.WriteByte('\n')
	return b.Bytes()
}
