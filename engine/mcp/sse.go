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
// arrives.
type EventReader struct {
	r   *bufio.Reader
	max int
}

// NewEventReader reads events of at most maxEvent bytes.
func NewEventReader(r io.Reader, maxEvent int) *EventReader {
	return &EventReader{r: bufio.NewReaderSize(r, 32<<10), max: maxEvent}
}

// ErrEventTooLarge is returned for an event larger than the reader's limit.
var ErrEventTooLarge = &Error{Code: CodeInternalError, Message: "upstream event too large"}

// Next returns the next event, or io.EOF at the end of the stream.
func (er *EventReader) Next() (*Event, error) {
	ev := &Event{}
	for {
		line, err := er.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A long line: keep reading it piecewise.
			buf := append([]byte(nil), line...)
			for err == bufio.ErrBufferFull {
				if len(buf) > er.max {
					return nil, ErrEventTooLarge
				}
				line, err = er.r.ReadSlice('\n')
				buf = append(buf, line...)
			}
			line = buf
		}
		if len(line) > 0 {
			ev.Raw = append(ev.Raw, line...)
			if len(ev.Raw) > er.max {
				return nil, ErrEventTooLarge
			}
			trimmed := bytes.TrimRight(line, "\r\n")
			if len(trimmed) == 0 {
				if len(ev.Raw) > len(line) {
					return ev, nil
				}
				ev.Raw = ev.Raw[:0] // leading blank lines
				continue
			}
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
			if err == io.EOF && len(ev.Raw) > 0 {
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
