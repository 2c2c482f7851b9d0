package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/engine/mcp"
)

// endpointTimeout bounds the wait for a legacy SSE server's endpoint event.
const endpointTimeout = 30 * time.Second

// sseConn is one legacy (2024-11-05) SSE session: a GET stream carrying the
// server's messages, and the endpoint URL the client POSTs its messages to.
type sseConn struct {
	client   *http.Client
	post     string
	body     io.ReadCloser
	cancel   context.CancelFunc
	msgs     chan []byte
	mu       sync.Mutex
	err      error
	closeO   sync.Once
	stopping chan struct{}
}

// dialSSE opens the stream and waits for its endpoint event. The endpoint
// must be on the SSE URL's origin: a server cannot send the gateway's
// messages elsewhere.
func dialSSE(ctx context.Context, ep *Endpoint) (*sseConn, error) {
	base, err := url.Parse(ep.target.SSEURL)
	if err != nil {
		return nil, fmt.Errorf("SSE URL: %w", err)
	}
	sctx, cancel := context.WithCancel(context.Background()) // the stream outlives the initialize request
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, base.String(), nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("User-Agent", "mcpgate")
	stopWait := context.AfterFunc(ctx, cancel) // until the endpoint arrives, the request bounds the wait
	timer := time.AfterFunc(endpointTimeout, cancel)
	defer timer.Stop()
	resp, err := ep.m.opts.Client.Do(req)
	if err != nil {
		stopWait()
		cancel()
		return nil, fmt.Errorf("SSE stream: %w", err)
	}
	fail := func(err error) (*sseConn, error) {
		stopWait()
		cancel()
		resp.Body.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Errorf("SSE stream: upstream status %d", resp.StatusCode))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "text/event-stream") {
		return fail(fmt.Errorf("SSE stream: upstream Content-Type %q, want text/event-stream", ct))
	}
	events := mcp.NewEventReader(resp.Body, maxMessage)
	var post *url.URL
	for post == nil {
		ev, err := events.Next()
		if err != nil {
			if ctx.Err() != nil {
				return fail(ctx.Err())
			}
			return fail(fmt.Errorf("SSE stream ended before its endpoint event: %w", err))
		}
		if ev.Name != "endpoint" {
			continue
		}
		u, err := base.Parse(strings.TrimSpace(string(ev.Data)))
		if err != nil {
			return fail(fmt.Errorf("SSE endpoint event: %w", err))
		}
		if u.Scheme != base.Scheme || !strings.EqualFold(u.Host, base.Host) {
			return fail(fmt.Errorf("SSE endpoint %s is not on the stream's origin %s://%s: refused", u.Redacted(), base.Scheme, base.Host))
		}
		post = u
	}
	if !stopWait() && ctx.Err() != nil {
		return fail(ctx.Err())
	}
	timer.Stop()
	c := &sseConn{client: ep.m.opts.Client, post: post.String(), body: resp.Body, cancel: cancel, msgs: make(chan []byte, 16), stopping: make(chan struct{})}
	go c.read(events)
	return c, nil
}

func (c *sseConn) read(events *mcp.EventReader) {
	defer close(c.msgs)
	for {
		ev, err := events.Next()
		if err != nil {
			c.mu.Lock()
			select {
			case <-c.stopping:
				c.err = errors.New("SSE stream closed")
			default:
				if errors.Is(err, io.EOF) {
					err = errors.New("upstream closed the SSE stream")
				}
				c.err = fmt.Errorf("SSE stream lost: %w", err)
			}
			c.mu.Unlock()
			return
		}
		if ev.Name != "" && ev.Name != "message" {
			continue
		}
		if len(bytes.TrimSpace(ev.Data)) > 0 {
			c.msgs <- ev.Data
		}
	}
}

func (c *sseConn) send(ctx context.Context, msg []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.post, bytes.NewReader(msg))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mcpgate")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("posting to the SSE server: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("posting to the SSE server: upstream status %d", resp.StatusCode)
	}
	return nil
}

func (c *sseConn) recv() <-chan []byte { return c.msgs }

func (c *sseConn) reason() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *sseConn) close() {
	c.closeO.Do(func() {
		c.mu.Lock()
		close(c.stopping)
		c.mu.Unlock()
		c.cancel()
		c.body.Close()
	})
}
