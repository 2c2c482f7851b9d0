package bridge

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/ir"
)

// maxMessage bounds one JSON-RPC message either way (as the engine bounds
// one upstream event).
const maxMessage = 16 << 20

// queueMax bounds the server messages a session holds for a GET stream
// that is not open; the oldest are dropped beyond it.
const queueMax = 256

// conn is one upstream session's transport: a stdio process or a legacy
// SSE stream.
type conn interface {
	// send delivers one JSON-RPC message.
	send(ctx context.Context, msg []byte) error
	// recv yields the upstream's messages; it is closed when the upstream
	// ends, and reason then says why.
	recv() <-chan []byte
	reason() error
	// close ends the upstream (stops the process, closes the stream).
	close()
}

// Endpoint is the bridge of one target: the server side of Streamable HTTP
// over that target's sessions.
type Endpoint struct {
	m       *Manager
	backend string
	target  ir.Target
	log     *slog.Logger
	stdio   *spawner // nil for SSE

	mu       sync.Mutex
	sessions map[string]*session
	closed   bool
}

func newEndpoint(m *Manager, bt bridgeTarget) *Endpoint {
	ep := &Endpoint{m: m, backend: bt.backend, target: bt.target, sessions: map[string]*session{},
		log: m.log.With("backend", bt.backend, "target", bt.target.Name, "transport", bt.target.Protocol)}
	if bt.target.Protocol == "Stdio" {
		ep.stdio = newSpawner(ep)
	}
	return ep
}

func (ep *Endpoint) start() {
	if ep.stdio != nil {
		ep.stdio.start()
	}
}

// close ends every session (stopping their processes) and the spare.
func (ep *Endpoint) close(why string) {
	ep.mu.Lock()
	ep.closed = true
	ss := make([]*session, 0, len(ep.sessions))
	for _, s := range ep.sessions {
		ss = append(ss, s)
	}
	ep.mu.Unlock()
	for _, s := range ss {
		s.end(errors.New(why))
	}
	if ep.stdio != nil {
		ep.stdio.close()
	}
}

func (ep *Endpoint) reapIdle(before time.Time) {
	ep.mu.Lock()
	var idle []*session
	for _, s := range ep.sessions {
		s.mu.Lock()
		if s.active == 0 && s.lastUsed.Before(before) {
			idle = append(idle, s)
		}
		s.mu.Unlock()
	}
	ep.mu.Unlock()
	for _, s := range idle {
		s.end(errors.New("idle timeout"))
	}
}

// Sessions reports how many sessions the bridge holds.
func (ep *Endpoint) Sessions() int {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return len(ep.sessions)
}

// connect opens a new upstream: a process or an SSE stream.
func (ep *Endpoint) connect(ctx context.Context) (conn, error) {
	if ep.stdio != nil {
		return ep.stdio.take()
	}
	c, err := dialSSE(ctx, ep)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// probe is what the bridge reads of a message to route it; the message
// itself is forwarded as it came.
type probe struct {
	ID     json.RawMessage `json:"id"`
	Method *string         `json:"method"`
	Params *struct {
		Meta *struct {
			ProgressToken json.RawMessage `json:"progressToken"`
		} `json:"_meta"`
		ProgressToken json.RawMessage `json:"progressToken"` // notifications/progress
	} `json:"params"`
}

func parseProbe(b []byte) (*probe, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, errors.New("not a JSON-RPC message object (batches are not supported)")
	}
	var p probe
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, err
	}
	if p.Method == nil && !hasID(p.ID) {
		return nil, errors.New("neither a request, a notification nor a response")
	}
	return &p, nil
}

func hasID(id json.RawMessage) bool { return len(id) > 0 && string(id) != "null" }

// idKey is a JSON-RPC id's identity: ids are compared by value, as the
// upstream may re-encode them.
func idKey(id json.RawMessage) string {
	d := json.NewDecoder(bytes.NewReader(id))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return "raw:" + string(id)
	}
	switch v := v.(type) {
	case string:
		return "s:" + v
	case json.Number:
		// 1, 1.0 and 1e0 are one id (a JavaScript server echoes 1.0 as 1).
		// Exponents are bounded: 1e999999999 must not become a billion
		// digits.
		if small(v.String()) {
			if r, ok := new(big.Rat).SetString(v.String()); ok {
				return "n:" + r.RatString()
			}
		}
		return "n:" + v.String()
	}
	return "raw:" + string(id)
}

// small reports whether a JSON number is short with a small exponent.
func small(num string) bool {
	if len(num) > 128 {
		return false
	}
	i := strings.IndexAny(num, "eE")
	if i < 0 {
		return true
	}
	e, err := strconv.Atoi(strings.TrimPrefix(num[i+1:], "+"))
	return err == nil && e >= -400 && e <= 400
}

func (p *probe) isResponse() bool { return p.Method == nil && hasID(p.ID) }
func (p *probe) isRequest() bool  { return p.Method != nil && hasID(p.ID) }

func (p *probe) progressToken() string {
	if p.Params == nil {
		return ""
	}
	if p.Params.Meta != nil && len(p.Params.Meta.ProgressToken) > 0 {
		return idKey(p.Params.Meta.ProgressToken)
	}
	if len(p.Params.ProgressToken) > 0 {
		return idKey(p.Params.ProgressToken)
	}
	return ""
}

func (ep *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		ep.post(w, r)
	case http.MethodGet:
		ep.get(w, r)
	case http.MethodDelete:
		s := ep.session(r)
		if s == nil {
			sessionNotFound(w)
			return
		}
		s.end(errors.New("client ended the session"))
		w.WriteHeader(http.StatusOK)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeError(w, http.StatusMethodNotAllowed, nil, "method not allowed")
	}
}

func (ep *Endpoint) session(r *http.Request) *session {
	id := r.Header.Get("Mcp-Session-Id")
	if id == "" {
		return nil
	}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.sessions[id]
}

func (ep *Endpoint) post(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxMessage+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, nil, "reading the request: "+err.Error())
		return
	}
	if len(body) > maxMessage {
		writeError(w, http.StatusRequestEntityTooLarge, nil, "message too large")
		return
	}
	p, err := parseProbe(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, nil, "parse error: "+err.Error())
		return
	}
	if p.Method != nil && *p.Method == "initialize" {
		if r.Header.Get("Mcp-Session-Id") != "" {
			writeError(w, http.StatusBadRequest, p.ID, "initialize within a session")
			return
		}
		ep.initialize(w, r, body, p)
		return
	}
	if r.Header.Get("Mcp-Session-Id") == "" {
		writeError(w, http.StatusBadRequest, p.ID, "Mcp-Session-Id header required (initialize first)")
		return
	}
	s := ep.session(r)
	if s == nil {
		sessionNotFound(w)
		return
	}
	if !p.isRequest() {
		s.touch(1)
		defer s.touch(-1)
		if err := s.c.send(r.Context(), body); err != nil {
			ep.log.Warn("bridge: sending to upstream failed", "error", err)
			writeError(w, http.StatusBadGateway, nil, "upstream MCP server unavailable")
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	s.request(w, r, body, p, acceptsSSE(r.Header.Get("Accept")))
}

// initialize opens an upstream session and forwards the initialize request
// as its first message. The session id is issued only when the upstream
// answered with a result.
func (ep *Endpoint) initialize(w http.ResponseWriter, r *http.Request, body []byte, p *probe) {
	ep.mu.Lock()
	closed := ep.closed
	ep.mu.Unlock()
	if closed {
		writeError(w, http.StatusServiceUnavailable, p.ID, "target removed from the configuration")
		return
	}
	c, err := ep.connect(r.Context())
	if err != nil {
		ep.log.Warn("bridge: opening an upstream session failed", "error", err)
		writeError(w, http.StatusBadGateway, p.ID, "upstream MCP server unavailable")
		return
	}
	s := newSession(ep, c)
	ep.mu.Lock()
	if ep.closed {
		ep.mu.Unlock()
		c.close()
		writeError(w, http.StatusServiceUnavailable, p.ID, "target removed from the configuration")
		return
	}
	ep.sessions[s.id] = s
	ep.mu.Unlock()
	go s.dispatch()
	resp, err := s.call(r.Context(), body, p)
	if err != nil {
		ep.log.Warn("bridge: upstream initialize failed", "error", err)
		s.end(fmt.Errorf("initialize failed: %w", err))
		if ep.stdio != nil {
			ep.stdio.failed(err)
		}
		writeError(w, http.StatusBadGateway, p.ID, "upstream MCP server failed to initialize")
		return
	}
	var res struct {
		Result json.RawMessage `json:"result"`
	}
	if json.Unmarshal(resp, &res) != nil || len(res.Result) == 0 {
		s.end(errors.New("initialize refused"))
	} else {
		if ep.stdio != nil {
			ep.stdio.succeeded()
		}
		w.Header().Set("Mcp-Session-Id", s.id)
		attrs := []any{"session", s.logID()}
		if p, ok := c.(*process); ok {
			attrs = append(attrs, "pid", p.cmd.Process.Pid)
		}
		ep.log.Info("bridge: session started", attrs...)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp)
}

func (ep *Endpoint) get(w http.ResponseWriter, r *http.Request) {
	if !acceptsSSE(r.Header.Get("Accept")) {
		writeError(w, http.StatusNotAcceptable, nil, "Accept must list text/event-stream")
		return
	}
	s := ep.session(r)
	if s == nil {
		if r.Header.Get("Mcp-Session-Id") == "" {
			writeError(w, http.StatusBadRequest, nil, "Mcp-Session-Id header required")
			return
		}
		sessionNotFound(w)
		return
	}
	s.stream(w, r)
}

// session is one upstream session behind one Mcp-Session-Id.
type session struct {
	id   string
	ep   *Endpoint
	c    conn
	done chan struct{}

	mu       sync.Mutex
	err      error            // why it ended
	pending  map[string]*sink // requests waiting for a response, by id
	seq      uint64
	get      *sink // the open GET stream
	queue    [][]byte
	active   int
	lastUsed time.Time
	ended    bool
}

// sink is where one request's response (and, when it streams, server
// messages) or a GET stream's messages go.
type sink struct {
	ch    chan item
	gone  chan struct{} // closed when its handler returned
	sse   bool
	token string // the request's progress token, by idKey
	seq   uint64
}

type item struct {
	data  []byte
	final bool
}

func newSession(ep *Endpoint, c conn) *session {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return &session{id: hex.EncodeToString(b), ep: ep, c: c, done: make(chan struct{}), pending: map[string]*sink{}, lastUsed: time.Now()}
}

func (s *session) touch(delta int) {
	s.mu.Lock()
	s.active += delta
	s.lastUsed = time.Now()
	s.mu.Unlock()
}

// end ends the session: its upstream is closed, waiting requests get an
// error, streams end, and its id is forgotten (later requests get 404).
func (s *session) end(why error) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	s.err = why
	s.mu.Unlock()
	s.ep.mu.Lock()
	if s.ep.sessions[s.id] == s {
		delete(s.ep.sessions, s.id)
	}
	s.ep.mu.Unlock()
	close(s.done)
	s.c.close()
	s.ep.log.Info("bridge: session ended", "session", s.logID(), "reason", why.Error())
}

func (s *session) endErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// dispatch routes the upstream's messages until it ends.
func (s *session) dispatch() {
	for data := range s.c.recv() {
		s.route(data)
	}
	why := s.c.reason()
	if why == nil {
		why = errors.New("upstream ended")
	}
	s.end(why)
}

func (s *session) route(data []byte) {
	p, err := parseProbe(data)
	if err != nil {
		s.ep.log.Warn("bridge: ignoring an upstream message that is not JSON-RPC", "error", err, "bytes", len(data))
		return
	}
	s.mu.Lock()
	var to *sink
	final := false
	switch {
	case p.isResponse():
		k := idKey(p.ID)
		if to = s.pending[k]; to != nil {
			delete(s.pending, k)
			final = true
		}
	default:
		// A server notification or request: on the stream of the request
		// it concerns (its progress token), else of the oldest streaming
		// request, else the GET stream, else queued for the next GET.
		if tok := p.progressToken(); tok != "" {
			for _, sk := range s.pending {
				if sk.sse && sk.token == tok {
					to = sk
					break
				}
			}
		}
		if to == nil {
			for _, sk := range s.pending {
				if sk.sse && (to == nil || sk.seq < to.seq) {
					to = sk
				}
			}
		}
		if to == nil {
			to = s.get
		}
	}
	if to == nil {
		if p.isResponse() {
			s.mu.Unlock()
			s.ep.log.Warn("bridge: dropping an upstream response to no pending request", "id", string(p.ID))
			return
		}
		if len(s.queue) >= queueMax {
			s.queue = s.queue[1:]
			s.ep.log.Warn("bridge: server message queue full, dropping the oldest", "session", s.logID())
		}
		s.queue = append(s.queue, data)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	select {
	case to.ch <- item{data: data, final: final}:
	case <-to.gone:
	}
}

// call sends a request and waits for its response alone (initialize).
func (s *session) call(ctx context.Context, body []byte, p *probe) ([]byte, error) {
	sk, err := s.register(p, false)
	if err != nil {
		return nil, err
	}
	defer s.unregister(p, sk)
	if err := s.c.send(ctx, body); err != nil {
		return nil, err
	}
	for {
		select {
		case it := <-sk.ch:
			if it.final {
				return it.data, nil
			}
		case <-s.done:
			if it, ok := lastItem(sk); ok && it.final {
				return it.data, nil
			}
			return nil, s.endErr()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// lastItem returns what a sink still holds once its session ended: the
// upstream may have answered just before it exited. Earlier items are
// dropped; the final one (a response) is returned.
func lastItem(sk *sink) (item, bool) {
	var last item
	got := false
	for {
		select {
		case it := <-sk.ch:
			last, got = it, true
			if it.final {
				return it, true
			}
		default:
			return last, got
		}
	}
}

func (s *session) register(p *probe, sse bool) (*sink, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil, s.err
	}
	k := idKey(p.ID)
	if _, dup := s.pending[k]; dup {
		return nil, errDuplicateID
	}
	s.seq++
	sk := &sink{ch: make(chan item, 16), gone: make(chan struct{}), sse: sse, token: p.progressToken(), seq: s.seq}
	s.pending[k] = sk
	s.active++
	s.lastUsed = time.Now()
	return sk, nil
}

var errDuplicateID = errors.New("a request with this id is already pending in the session")

func (s *session) unregister(p *probe, sk *sink) {
	close(sk.gone)
	s.mu.Lock()
	k := idKey(p.ID)
	if s.pending[k] == sk {
		delete(s.pending, k)
	}
	s.active--
	s.lastUsed = time.Now()
	s.mu.Unlock()
}

// request forwards a client request and answers with its response.
func (s *session) request(w http.ResponseWriter, r *http.Request, body []byte, p *probe, sse bool) {
	sk, err := s.register(p, sse)
	if err != nil {
		if errors.Is(err, errDuplicateID) {
			writeError(w, http.StatusBadRequest, p.ID, err.Error())
			return
		}
		sessionNotFound(w)
		return
	}
	defer s.unregister(p, sk)
	if err := s.c.send(r.Context(), body); err != nil {
		s.ep.log.Warn("bridge: sending to upstream failed", "session", s.logID(), "error", err)
		writeError(w, http.StatusBadGateway, p.ID, "upstream MCP server unavailable")
		return
	}
	if !sse {
		for {
			select {
			case it := <-sk.ch:
				if it.final {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusOK)
					_, _ = w.Write(it.data)
					return
				}
			case <-s.done:
				if it, ok := lastItem(sk); ok && it.final {
					writeJSON(w, http.StatusOK, it.data)
					return
				}
				writeJSON(w, http.StatusOK, errorResponse(p.ID, "upstream MCP server ended the session: "+s.endErr().Error()))
				return
			case <-r.Context().Done():
				return
			}
		}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flush(w)
	for {
		select {
		case it := <-sk.ch:
			if writeEvent(w, it.data) != nil || it.final {
				return
			}
		case <-s.done:
			// What arrived before the end still goes out, the response
			// included when there is one.
			if drained(w, sk) {
				return
			}
			_ = writeEvent(w, errorResponse(p.ID, "upstream MCP server ended the session: "+s.endErr().Error()))
			return
		case <-r.Context().Done():
			return
		}
	}
}

// drained writes what a streaming request's sink still holds; true when
// that included its response (or the client is gone).
func drained(w http.ResponseWriter, sk *sink) bool {
	for {
		select {
		case it := <-sk.ch:
			if writeEvent(w, it.data) != nil || it.final {
				return true
			}
		default:
			return false
		}
	}
}

// stream is the GET stream of server-initiated messages.
func (s *session) stream(w http.ResponseWriter, r *http.Request) {
	sk := &sink{ch: make(chan item, 16), gone: make(chan struct{}), sse: true}
	s.mu.Lock()
	if s.get != nil {
		s.mu.Unlock()
		writeError(w, http.StatusConflict, nil, "a GET stream is already open for this session")
		return
	}
	s.get = sk
	queued := s.queue
	s.queue = nil
	s.active++
	s.mu.Unlock()
	defer func() {
		close(sk.gone)
		s.mu.Lock()
		if s.get == sk {
			s.get = nil
		}
		s.active--
		s.lastUsed = time.Now()
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flush(w)
	for _, data := range queued {
		if writeEvent(w, data) != nil {
			return
		}
	}
	for {
		select {
		case it := <-sk.ch:
			if writeEvent(w, it.data) != nil {
				return
			}
		case <-s.done:
			return
		case <-r.Context().Done():
			return
		}
	}
}

func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// writeEvent writes one message as an SSE event.
func writeEvent(w http.ResponseWriter, data []byte) error {
	var b bytes.Buffer
	b.WriteString("event: message\n")
	for _, line := range bytes.Split(bytes.TrimRight(data, "\r\n"), []byte("\n")) {
		b.WriteString("data: ")
		b.Write(bytes.TrimSuffix(line, []byte("\r")))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	if _, err := w.Write(b.Bytes()); err != nil {
		return err
	}
	flush(w)
	return nil
}

func errorResponse(id json.RawMessage, msg string) []byte {
	if !hasID(id) {
		id = json.RawMessage("null")
	}
	m, _ := json.Marshal(msg)
	return []byte(`{"jsonrpc":"2.0","id":` + string(id) + `,"error":{"code":-32603,"message":` + string(m) + `}}`)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, status int, id json.RawMessage, msg string) {
	writeJSON(w, status, errorResponse(id, msg))
}

func sessionNotFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"session not found"}}`))
}

// acceptsSSE reports whether an Accept header lists text/event-stream.
func acceptsSSE(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := strings.Cut(part, ";")
		if strings.EqualFold(strings.TrimSpace(mt), "text/event-stream") {
			return true
		}
	}
	return false
}

// logID names a session in logs without giving away its id (which a
// single-target backend's client holds as its Mcp-Session-Id).
func (s *session) logID() string { return s.id[:8] }
