package mcp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"

	"github.com/go-json-experiment/json/jsontext"
)

// Event is one server-sent event as it came off the wire.
type Event struct {
	Raw  []byte // the event's lines, including the blank line that ended it
	Data []byte // the joined data lines
	Name string // the event field ("" means "message")
	ID   string
}

// EventReader splits a text/event-stream into events without buffering the
// stream: each event is returned as soon as its terminating blank line
// arrives. Lines may end in CRLF, LF or a bare CR, as the SSE format allows.
type EventReader struct {
	r      *bufio.Reader
	max    int
	skipLF bool // the previous line ended in CR: a following LF belongs to it
}

// NewEventReader reads events of at most maxEvent bytes.
func NewEventReader(r io.Reader, maxEvent int) *EventReader {
	return &EventReader{r: bufio.NewReaderSize(r, 32<<10), max: maxEvent}
}

// ErrEventTooLarge is returned for an event larger than the reader's limit.
var ErrEventTooLarge = &Error{Code: CodeInternalError, Message: "upstream event too large"}

// line appends the next line, terminator included, to buf, and says where
// its content starts (after an LF that completed the previous CRLF). It
// returns without waiting for more input once a terminator has been read.
func (er *EventReader) line(buf []byte) ([]byte, int, error) {
	content := len(buf)
	for {
		c, err := er.r.ReadByte()
		if err != nil {
			return buf, content, err
		}
		buf = append(buf, c)
		if er.skipLF {
			er.skipLF = false
			if c == '\n' {
				content = len(buf)
				continue
			}
		}
		switch c {
		case '\n':
			return buf, content, nil
		case '\r':
			// Take the LF of a CRLF now if it has arrived; never wait for it.
			if er.r.Buffered() > 0 {
				if next, _ := er.r.Peek(1); next[0] == '\n' {
					_, _ = er.r.ReadByte()
					buf = append(buf, '\n')
				}
				return buf, content, nil
			}
			er.skipLF = true
			return buf, content, nil
		}
		if len(buf) > er.max {
			return buf, content, ErrEventTooLarge
		}
	}
}

// Next returns the next event, or io.EOF at the end of the stream. Raw
// keeps every byte read, blank lines before the event included, so relaying
// Raw reproduces the stream exactly.
func (er *EventReader) Next() (*Event, error) {
	ev := &Event{}
	fields := false // a non-blank line has been read
	for {
		raw, content, err := er.line(ev.Raw)
		line := raw[content:]
		ev.Raw = raw
		if err == ErrEventTooLarge || len(ev.Raw) > er.max {
			return nil, ErrEventTooLarge
		}
		trimmed := bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
		case len(trimmed) == 0 && err == nil:
			if fields {
				return ev, nil
			}
		default:
			fields = true
			field, value, _ := bytes.Cut(trimmed, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "data":
				if ev.Data != nil {
					ev.Data = append(ev.Data, '\n')
				}
				ev.Data = append(ev.Data, value...)
			case "event":
				ev.Name = string(value)
			case "id":
				ev.ID = string(value)
			}
		}
		if err != nil {
			if err == io.EOF && fields {
				return ev, nil
			}
			return nil, err
		}
	}
}

// ErrorResponse encodes a JSON-RPC error response. id may be nil (then the
// id is null, as JSON-RPC requires when it could not be read).
func ErrorResponse(id jsontext.Value, code int, message string, data any) []byte {
	type errObj struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    any    `json:"data,omitempty"`
	}
	rawID := json.RawMessage("null")
	if len(id) > 0 {
		rawID = json.RawMessage(id)
	}
	b, err := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   errObj          `json:"error"`
	}{"2.0", rawID, errObj{code, message, data}})
	if err != nil {
		// data came from the policy and is JSON-compatible by construction;
		// fall back to a response without it rather than none at all.
		b, _ = json.Marshal(struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Error   errObj          `json:"error"`
		}{"2.0", rawID, errObj{Code: code, Message: message}})
	}
	return b
}
