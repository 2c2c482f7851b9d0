package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ProtocolVersion is the MCP revision the harness's clients negotiate.
const ProtocolVersion = "2025-06-18"

// Method is the MCP request the load consists of.
type Method string

// The measured methods.
const (
	ToolsCall Method = "tools/call"
	ToolsList Method = "tools/list"
)

// Errors a response can be counted under.
var (
	ErrStatus   = errors.New("load: HTTP status not 200")
	ErrJSONRPC  = errors.New("load: JSON-RPC error response")
	ErrResponse = errors.New("load: not the expected JSON-RPC result")
)

// Client speaks MCP over Streamable HTTP (POST, JSON-RPC) to one endpoint.
// It is safe for concurrent use; every worker opens its own session.
type Client struct {
	url   string
	token string // bearer token; empty sends none
	http  *http.Client
	// Tool is the tool tools/call names; "" is echo.
	Tool string
}

// NewClient returns a client for endpoint with its own connection pool, sized
// for conns concurrent requests, so targets never share connections.
func NewClient(endpoint, token string, conns int) *Client {
	tr := &http.Transport{
		Proxy:               nil, // loopback only, never via the environment's proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		// Below Node's 5 s keep-alive timeout: otherwise a connection
		// server-everything is closing can be picked for a POST, which
		// net/http does not retry, and the harness would count its own
		// race as the server's error.
		IdleConnTimeout:    4 * time.Second,
		DisableCompression: true,
	}
	return &Client{url: endpoint, token: token, http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// Close drops the client's idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Session is one MCP session (Mcp-Session-Id; empty for a stateless server)
// used by one worker at a time.
type Session struct {
	c      *Client
	id     string
	nextID int
	buf    bytes.Buffer
	// Tools is the number of tools the last tools/list result held.
	Tools int
}

// Open initialises a session: initialize, then notifications/initialized.
func (c *Client) Open(ctx context.Context) (*Session, error) {
	s := &Session{c: c}
	init := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"` + ProtocolVersion +
		`","capabilities":{},"clientInfo":{"name":"mcpgate-load","version":"1"}}}`
	resp, err := s.post(ctx, init)
	if err != nil {
		return nil, fmt.Errorf("load: initialize %s: %w", c.url, err)
	}
	s.id = resp.Header.Get("Mcp-Session-Id")
	body, err := s.read(resp)
	if err != nil {
		return nil, fmt.Errorf("load: initialize %s: %w", c.url, err)
	}
	if err := checkResult(body, resp.Header.Get("Content-Type"), "0"); err != nil {
		return nil, fmt.Errorf("load: initialize %s: %w: %.300s", c.url, err, body)
	}
	resp, err = s.post(ctx, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if err != nil {
		return nil, fmt.Errorf("load: notifications/initialized %s: %w", c.url, err)
	}
	if _, err := s.read(resp); err != nil {
		return nil, fmt.Errorf("load: notifications/initialized %s: %w", c.url, err)
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("load: notifications/initialized %s: %w: %d", c.url, ErrStatus, resp.StatusCode)
	}
	return s, nil
}

// Close ends the session (DELETE), so long runs leave no sessions behind.
func (s *Session) Close() {
	if s.id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, s.c.url, nil)
	if err != nil {
		return
	}
	s.headers(req)
	if resp, err := s.c.http.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// Do sends one request of method and checks the answer is its JSON-RPC
// result: for tools/call a non-error tool result with content, for
// tools/list a non-empty list of tools.
func (s *Session) Do(ctx context.Context, m Method) error {
	s.nextID++
	id := strconv.Itoa(s.nextID)
	var body string
	switch m {
	case ToolsCall:
		tool := s.c.Tool
		if tool == "" {
			tool = "echo"
		}
		body = `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"` + tool + `","arguments":{"message":"load ` + id + `"}}}`
	case ToolsList:
		body = `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/list","params":{}}`
	default:
		return fmt.Errorf("load: unknown method %q", m)
	}
	resp, err := s.post(ctx, body)
	if err != nil {
		return err
	}
	data, err := s.read(resp)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %d: %.200s", ErrStatus, resp.StatusCode, data)
	}
	var res result
	if err := checkResultInto(data, resp.Header.Get("Content-Type"), id, &res); err != nil {
		return err
	}
	switch m {
	case ToolsCall:
		if res.IsError || len(res.Content) == 0 {
			return fmt.Errorf("%w: tools/call result without content or with isError: %.200s", ErrResponse, data)
		}
	case ToolsList:
		if len(res.Tools) == 0 {
			return fmt.Errorf("%w: empty tools/list: %.200s", ErrResponse, data)
		}
		s.Tools = len(res.Tools)
	}
	return nil
}

func (s *Session) headers(req *http.Request) {
	if s.id != "" {
		req.Header.Set("Mcp-Session-Id", s.id)
	}
	req.Header.Set("Mcp-Protocol-Version", ProtocolVersion)
	if s.c.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.c.token)
	}
}

func (s *Session) post(ctx context.Context, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.c.url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	s.headers(req)
	return s.c.http.Do(req)
}

// read returns the whole body in the session's reusable buffer.
func (s *Session) read(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	s.buf.Reset()
	if _, err := s.buf.ReadFrom(resp.Body); err != nil {
		return nil, err
	}
	return s.buf.Bytes(), nil
}

// result is the part of a JSON-RPC response the harness checks.
type result struct {
	Content []struct {
		Type string `json:"type"`
	} `json:"content"`
	IsError bool              `json:"isError"`
	Tools   []json.RawMessage `json:"tools"`
}

type envelope struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// checkResult checks that body holds the JSON-RPC result for id.
func checkResult(body []byte, contentType, id string) error {
	var r result
	return checkResultInto(body, contentType, id, &r)
}

var envPool = sync.Pool{New: func() any { return new(envelope) }}

// checkResultInto finds the JSON-RPC response with id in body (one JSON
// document, or an SSE stream whose data lines carry messages) and decodes its
// result into into.
func checkResultInto(body []byte, contentType, id string, into *result) error {
	if strings.HasPrefix(strings.ToLower(contentType), "text/event-stream") {
		for line := range bytes.Lines(body) {
			data, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r\n"), []byte("data:"))
			if !ok {
				continue
			}
			err := checkOne(bytes.TrimSpace(data), id, into)
			if errors.Is(err, errOtherID) {
				continue // a notification or another response
			}
			return err
		}
		return fmt.Errorf("%w: no response with id %s in the event stream: %.200s", ErrResponse, id, body)
	}
	return checkOne(body, id, into)
}

var errOtherID = errors.New("load: message for another id")

func checkOne(msg []byte, id string, into *result) error {
	env := envPool.Get().(*envelope)
	defer envPool.Put(env)
	*env = envelope{}
	if err := json.Unmarshal(msg, env); err != nil {
		return fmt.Errorf("%w: %v: %.200s", ErrResponse, err, msg)
	}
	if string(env.ID) != id {
		return errOtherID
	}
	if len(env.Error) > 0 && string(env.Error) != "null" {
		return fmt.Errorf("%w: %.200s", ErrJSONRPC, env.Error)
	}
	if len(env.Result) == 0 || string(env.Result) == "null" {
		return fmt.Errorf("%w: no result: %.200s", ErrResponse, msg)
	}
	if err := json.Unmarshal(env.Result, into); err != nil {
		return fmt.Errorf("%w: result: %v", ErrResponse, err)
	}
	return nil
}
