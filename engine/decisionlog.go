package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpgate/mcpgate/bundle"
	"github.com/mcpgate/mcpgate/engine/policy"
)

// DecisionLogOptions configure decision logging.
type DecisionLogOptions struct {
	// Writer receives one JSON event per line (OPA's decision-log event
	// format). Writes are serialised.
	Writer io.Writer
	// SampleAllowed is the fraction of allowed decisions written (0 < s
	// <= 1; 0 means 1). Denials, challenges and errors are always written.
	SampleAllowed float64
	// Labels identify this gateway in every event (OPA's "labels": id,
	// version...).
	Labels map[string]string
}

// DecisionLog writes decision events. Masking is applied before anything
// is written: credential headers always, then the bundle's
// data.system.log.mask rules; data.system.log.drop drops events.
type DecisionLog struct {
	opts DecisionLogOptions
	mu   sync.Mutex
}

// NewDecisionLog returns a decision logger, nil when opts.Writer is nil.
func NewDecisionLog(opts DecisionLogOptions) *DecisionLog {
	if opts.Writer == nil {
		return nil
	}
	if opts.SampleAllowed <= 0 || opts.SampleAllowed > 1 {
		opts.SampleAllowed = 1
	}
	if opts.Labels == nil {
		opts.Labels = map[string]string{}
	}
	return &DecisionLog{opts: opts}
}

// decisionEvent is OPA's decision-log event, as `opa run --server` writes
// it with the console logger.
type decisionEvent struct {
	Labels      map[string]string            `json:"labels"`
	DecisionID  string                       `json:"decision_id"`
	Path        string                       `json:"path"`
	Input       any                          `json:"input,omitempty"`
	Result      any                          `json:"result,omitempty"`
	Bundles     map[string]map[string]string `json:"bundles"`
	Erased      []string                     `json:"erased,omitempty"`
	Masked      []string                     `json:"masked,omitempty"`
	Timestamp   string                       `json:"timestamp"`
	RequestedBy string                       `json:"requested_by,omitempty"`
	Metrics     map[string]int64             `json:"metrics"`
	Error       string                       `json:"error,omitempty"`
}

// credentialHeaders are masked from every event, whatever the rules say
// (the gateway never puts Authorization, Proxy-Authorization or Cookie in
// the input; these cover what a client might send under another name).
var credentialHeaders = []string{"authorization", "proxy-authorization", "cookie", "x-api-key", "x-auth-token", "x-access-token"}

// log writes the event of one decision. input is the document the decision
// was made on; d is nil when evaluation failed (evalErr says why).
func (l *DecisionLog) log(ctx context.Context, ev *policy.Evaluator, id, remote string, input ast.Value, d *policy.Decision, evalErr error, took time.Duration) {
	if l == nil {
		return
	}
	if d != nil && d.Allow && l.opts.SampleAllowed < 1 && rand.Float64() >= l.opts.SampleAllowed {
		return
	}
	in, err := ast.JSON(input)
	if err != nil {
		in = nil
	}
	e := &decisionEvent{
		Labels:      l.opts.Labels,
		DecisionID:  id,
		Path:        "mcpgate/decision",
		Input:       in,
		Bundles:     map[string]map[string]string{bundle.Root: {"revision": ev.Revision()}},
		Timestamp:   time.Now().UTC().Format(time.RFC3339Nano),
		RequestedBy: remote,
		Metrics:     map[string]int64{"timer_mcpgate_decision_ns": took.Nanoseconds()},
	}
	if d != nil {
		e.Result = d
	}
	if evalErr != nil {
		e.Error = evalErr.Error()
	}
	e.maskCredentials()
	if ev.HasLogRules() {
		// The rules see the event as OPA's do: {"input": ..., "result": ...}.
		doc := map[string]any{"input": e.Input, "result": e.Result}
		raw, _ := json.Marshal(doc)
		val, perr := ast.ValueFromReader(bytes.NewReader(raw))
		var drop bool
		var ops []policy.MaskOp
		if perr == nil {
			drop, ops, perr = ev.LogRules(ctx, val)
		}
		switch {
		case perr != nil:
			// A failing mask must not leak what it was meant to hide.
			e.Input, e.Erased = nil, append(e.Erased, "/input")
			e.Error = "system.log rules failed: " + perr.Error()
		case drop:
			return
		default:
			e.apply(ops)
		}
	}
	line, err := json.Marshal(e)
	if err != nil {
		return
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.opts.Writer.Write(line)
}

func (e *decisionEvent) maskCredentials() {
	in, _ := e.Input.(map[string]any)
	req, _ := in["request"].(map[string]any)
	hdrs, _ := req["headers"].(map[string]any)
	for _, h := range credentialHeaders {
		if _, ok := hdrs[h]; ok {
			delete(hdrs, h)
			e.Erased = append(e.Erased, "/input/request/headers/"+h)
		}
	}
}

// apply performs mask operations on the event's input and result.
func (e *decisionEvent) apply(ops []policy.MaskOp) {
	for _, op := range ops {
		if len(op.Path) < 2 {
			if len(op.Path) == 1 && !op.Upsert {
				switch op.Path[0] {
				case "input":
					e.Input, e.Erased = nil, append(e.Erased, "/input")
				case "result":
					e.Result, e.Erased = nil, append(e.Erased, "/result")
				}
			}
			continue
		}
		var root any
		switch op.Path[0] {
		case "input":
			root = e.Input
		case "result":
			if e.Result != nil {
				// The result is a struct: round-trip it to a map to edit it.
				raw, _ := json.Marshal(e.Result)
				var m map[string]any
				_ = json.Unmarshal(raw, &m)
				e.Result, root = m, m
			}
		}
		obj, ok := root.(map[string]any)
		for _, seg := range op.Path[1 : len(op.Path)-1] {
			if !ok {
				break
			}
			next, exists := obj[seg]
			if !exists && op.Upsert {
				next = map[string]any{}
				obj[seg] = next
			}
			obj, ok = next.(map[string]any)
		}
		if !ok {
			continue
		}
		last := op.Path[len(op.Path)-1]
		p := "/" + joinPointer(op.Path)
		if op.Upsert {
			obj[last] = op.Value
			e.Masked = append(e.Masked, p)
		} else if _, exists := obj[last]; exists {
			delete(obj, last)
			e.Erased = append(e.Erased, p)
		}
	}
}

// pointerEscaper escapes a JSON pointer segment (RFC 6901).
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

func joinPointer(segs []string) string {
	esc := make([]string, len(segs))
	for i, s := range segs {
		esc[i] = pointerEscaper.Replace(s)
	}
	return strings.Join(esc, "/")
}

// newDecisionID returns a random (version 4) UUID.
func newDecisionID() string { return uuid.NewString() }
