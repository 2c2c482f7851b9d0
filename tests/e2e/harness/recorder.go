package harness

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"testing"
)

// RecordedRequest is what the upstream received through the Recorder.
type RecordedRequest struct {
	Method string
	Path   string
	Header http.Header
}

// Recorder is a reverse proxy between the gateway and a real upstream that
// records the requests passing through it, so tests can assert what the
// upstream receives (for example, never the caller's Authorization header).
// It streams responses unbuffered, so SSE passes through as it arrives.
type Recorder struct {
	srv *httptest.Server

	mu   sync.Mutex
	reqs []RecordedRequest
}

// StartRecorder starts a Recorder in front of upstreamURL (scheme and host are
// used; the request path is kept) for the duration of the test.
func StartRecorder(t testing.TB, upstreamURL string) *Recorder {
	t.Helper()
	r, err := NewRecorder(upstreamURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// NewRecorder starts a Recorder; the caller must call Close.
func NewRecorder(upstreamURL string) (*Recorder, error) {
	u, err := url.Parse(upstreamURL)
	if err != nil {
		return nil, fmt.Errorf("harness: recorder upstream: %w", err)
	}
	target := &url.URL{Scheme: u.Scheme, Host: u.Host}
	r := &Recorder{}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = target.Host
		},
		FlushInterval: -1,
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.reqs = append(r.reqs, RecordedRequest{Method: req.Method, Path: req.URL.Path, Header: req.Header.Clone()})
		r.mu.Unlock()
		proxy.ServeHTTP(w, req)
	}))
	return r, nil
}

// Close stops the Recorder.
func (r *Recorder) Close() { r.srv.Close() }

// Host is the Recorder's address host (127.0.0.1).
func (r *Recorder) Host() string { return "127.0.0.1" }

// Port is the Recorder's port.
func (r *Recorder) Port() int {
	u, _ := url.Parse(r.srv.URL)
	p, _ := strconv.Atoi(u.Port())
	return p
}

// URL is the Recorder's MCP endpoint (upstream path /mcp).
func (r *Recorder) URL() string { return r.srv.URL + "/mcp" }

// Requests returns a copy of the requests recorded so far.
func (r *Recorder) Requests() []RecordedRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RecordedRequest(nil), r.reqs...)
}
