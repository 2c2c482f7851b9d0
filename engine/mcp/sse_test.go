package mcp

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readAll drains an EventReader.
func readAll(t *testing.T, er *EventReader) ([]*Event, error) {
	t.Helper()
	var out []*Event
	for i := 0; i < 1000; i++ {
		ev, err := er.Next()
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
	t.Fatal("got more than 1000 events, want the reader to end")
	return nil, nil
}

func TestEventReader(t *testing.T) {
	type want struct {
		raw, data, name, id string
		nilData             bool
	}
	tests := []struct {
		name   string
		stream string
		want   []want
	}{
		{
			name:   "one event",
			stream: "data: {\"a\":1}\n\n",
			want:   []want{{raw: "data: {\"a\":1}\n\n", data: `{"a":1}`}},
		},
		{
			name:   "multi-line data is joined with newlines",
			stream: "data: first\ndata: second\ndata: third\n\n",
			want:   []want{{raw: "data: first\ndata: second\ndata: third\n\n", data: "first\nsecond\nthird"}},
		},
		{
			name:   "CRLF line endings",
			stream: "event: message\r\nid: 7\r\ndata: a\r\ndata: b\r\n\r\n",
			want:   []want{{raw: "event: message\r\nid: 7\r\ndata: a\r\ndata: b\r\n\r\n", data: "a\nb", name: "message", id: "7"}},
		},
		{
			name:   "event and id fields",
			stream: "event: message\nid: evt-42\ndata: x\n\n",
			want:   []want{{raw: "event: message\nid: evt-42\ndata: x\n\n", data: "x", name: "message", id: "evt-42"}},
		},
		{
			name:   "no space after the colon",
			stream: "data:x\nevent:ping\nid:1\n\n",
			want:   []want{{raw: "data:x\nevent:ping\nid:1\n\n", data: "x", name: "ping", id: "1"}},
		},
		{
			name:   "only one leading space is stripped",
			stream: "data:  two spaces\n\n",
			want:   []want{{raw: "data:  two spaces\n\n", data: " two spaces"}},
		},
		{
			name:   "colons in the value are kept",
			stream: "data: {\"url\":\"http://x:1\"}\n\n",
			want:   []want{{raw: "data: {\"url\":\"http://x:1\"}\n\n", data: `{"url":"http://x:1"}`}},
		},
		{
			name:   "comments are kept in Raw and ignored otherwise",
			stream: ": keep-alive\ndata: x\n: another\n\n",
			want:   []want{{raw: ": keep-alive\ndata: x\n: another\n\n", data: "x"}},
		},
		{
			name:   "a comment-only event has no data",
			stream: ": ping\n\ndata: x\n\n",
			want:   []want{{raw: ": ping\n\n", nilData: true}, {raw: "data: x\n\n", data: "x"}},
		},
		{
			name:   "unknown fields are ignored",
			stream: "retry: 1000\nfoo: bar\ndata: x\n\n",
			want:   []want{{raw: "retry: 1000\nfoo: bar\ndata: x\n\n", data: "x"}},
		},
		{
			name:   "leading blank lines are kept in Raw, so a relay reproduces the stream",
			stream: "\n\r\n\ndata: x\n\n",
			want:   []want{{raw: "\n\r\n\ndata: x\n\n", data: "x"}},
		},
		{
			name:   "several blank lines between events",
			stream: "data: 1\n\n\n\ndata: 2\n\n",
			want:   []want{{raw: "data: 1\n\n", data: "1"}, {raw: "\n\ndata: 2\n\n", data: "2"}},
		},
		{
			name:   "several events",
			stream: "id: 1\ndata: a\n\nid: 2\ndata: b\n\nid: 3\ndata: c\n\n",
			want: []want{
				{raw: "id: 1\ndata: a\n\n", data: "a", id: "1"},
				{raw: "id: 2\ndata: b\n\n", data: "b", id: "2"},
				{raw: "id: 3\ndata: c\n\n", data: "c", id: "3"},
			},
		},
		{
			name:   "EOF without a trailing blank line",
			stream: "data: a\n\ndata: last\n",
			want:   []want{{raw: "data: a\n\n", data: "a"}, {raw: "data: last\n", data: "last"}},
		},
		{
			name:   "EOF without a trailing newline",
			stream: "data: last",
			want:   []want{{raw: "data: last", data: "last"}},
		},
		{
			name:   "empty stream",
			stream: "",
		},
		{
			name:   "blank lines only",
			stream: "\n\n\n",
		},
		{
			name:   "a line longer than the read buffer",
			stream: "data: " + strings.Repeat("x", 100<<10) + "\n\n",
			want:   []want{{raw: "data: " + strings.Repeat("x", 100<<10) + "\n\n", data: strings.Repeat("x", 100<<10)}},
		},
		{
			name:   "a long last line without newline",
			stream: "data: " + strings.Repeat("y", 70<<10),
			want:   []want{{raw: "data: " + strings.Repeat("y", 70<<10), data: strings.Repeat("y", 70<<10)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := readAll(t, NewEventReader(strings.NewReader(tt.stream), 1<<20))
			assert.ErrorIs(t, err, io.EOF, "got %v at the end, want io.EOF", err)
			require.Len(t, evs, len(tt.want), "got %d events, want %d", len(evs), len(tt.want))
			for i, w := range tt.want {
				ev := evs[i]
				assert.Equal(t, w.raw, string(ev.Raw), "event %d raw", i)
				if w.nilData {
					assert.Empty(t, ev.Data, "event %d data", i)
				} else {
					assert.Equal(t, w.data, string(ev.Data), "event %d data", i)
				}
				assert.Equal(t, w.name, ev.Name, "event %d name", i)
				assert.Equal(t, w.id, ev.ID, "event %d id", i)
			}
		})
	}
}

// Raw is what the gateway relays: it must not change when the next event is
// read (no aliasing of the reader's buffer).
func TestEventReaderRawIsStable(t *testing.T) {
	er := NewEventReader(strings.NewReader("data: first\n\ndata: second\n\n"), 1<<20)
	a, err := er.Next()
	require.NoError(t, err)
	b, err := er.Next()
	require.NoError(t, err)
	assert.Equal(t, "data: first\n\n", string(a.Raw))
	assert.Equal(t, "first", string(a.Data))
	assert.Equal(t, "data: second\n\n", string(b.Raw))
}

func TestEventReaderTooLarge(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		max    int
		before int // events returned before the error
	}{
		{"many short lines", strings.Repeat("data: 0123456789\n", 20) + "\n", 100, 0},
		{"one long line in the read buffer", "data: " + strings.Repeat("x", 200) + "\n\n", 100, 0},
		{"one line longer than the read buffer", "data: " + strings.Repeat("x", 200<<10) + "\n\n", 64 << 10, 0},
		{"a line longer than the read buffer without end", "data: " + strings.Repeat("x", 200<<10), 64 << 10, 0},
		{"after a good event", "data: ok\n\n" + strings.Repeat("data: 0123456789\n", 20) + "\n", 100, 1},
		{"comments count", strings.Repeat(": padding padding\n", 20) + "data: x\n\n", 100, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := readAll(t, NewEventReader(strings.NewReader(tt.stream), tt.max))
			assert.ErrorIs(t, err, ErrEventTooLarge, "got %v, want ErrEventTooLarge", err)
			assert.Len(t, evs, tt.before)
			assert.True(t, errors.Is(err, ErrMessage), "ErrEventTooLarge is an *Error")
		})
	}
}

func TestEventReaderAtTheLimit(t *testing.T) {
	ev := "data: " + strings.Repeat("x", 92) + "\n\n" // 100 bytes
	require.Len(t, ev, 100)
	evs, err := readAll(t, NewEventReader(strings.NewReader(ev+ev), 100))
	assert.ErrorIs(t, err, io.EOF)
	assert.Len(t, evs, 2, "an event of exactly the limit is accepted")
}

// The reader must hand out each event as soon as its blank line arrives,
// not wait for more of the stream: SSE responses are relayed as they come.
func TestEventReaderDoesNotWaitForMore(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	er := NewEventReader(pr, 1<<20)

	writeErr := make(chan error, 1)
	go func() {
		_, err := io.WriteString(pw, "event: message\ndata: one\n\n")
		writeErr <- err
		// Keep the stream open: the writer has nothing more yet.
	}()

	type result struct {
		ev  *Event
		err error
	}
	got := make(chan result, 1)
	go func() {
		ev, err := er.Next()
		got <- result{ev, err}
	}()
	select {
	case r := <-got:
		require.NoError(t, r.err)
		assert.Equal(t, "one", string(r.ev.Data))
		assert.Equal(t, "message", r.ev.Name)
	case <-time.After(5 * time.Second):
		pw.Close()
		t.Fatal("Next did not return the first event while the stream stayed open")
	}
	require.NoError(t, <-writeErr)

	// The second event, then the end of the stream.
	go func() {
		_, _ = io.WriteString(pw, "data: two\n\n")
		pw.Close()
	}()
	ev, err := er.Next()
	require.NoError(t, err)
	assert.Equal(t, "two", string(ev.Data))
	_, err = er.Next()
	assert.ErrorIs(t, err, io.EOF)
}

// A read error in the middle of the stream is returned as it is.
func TestEventReaderReadError(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("data: a\n\ndata: partial\n"), errReader{boom})
	er := NewEventReader(r, 1<<20)
	ev, err := er.Next()
	require.NoError(t, err)
	assert.Equal(t, "a", string(ev.Data))
	_, err = er.Next()
	assert.ErrorIs(t, err, boom)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// The event-stream format ends lines with CRLF, LF or a bare CR
// (WHATWG HTML §9.2.5); a server that uses bare CRs must still have its
// events split and its data read.
func TestEventReaderBareCR(t *testing.T) {
	evs, err := readAll(t, NewEventReader(strings.NewReader("event: message\rdata: {\"a\":1}\r\rdata: two\r\r"), 1<<20))
	assert.ErrorIs(t, err, io.EOF)
	require.Len(t, evs, 2, "got %d events, want 2", len(evs))
	assert.Equal(t, `{"a":1}`, string(evs[0].Data))
	assert.Equal(t, "message", evs[0].Name)
	assert.Equal(t, "two", string(evs[1].Data))
}
