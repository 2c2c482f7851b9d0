package engine

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/mcpgate/mcpgate/engine/mcp"
	"github.com/mcpgate/mcpgate/engine/policy"
	"github.com/mcpgate/mcpgate/engine/ratelimit"
)

// CodeRateLimited is the JSON-RPC error code of a request refused by a rate
// limit (documented in docs/input.md); data.retry_after_seconds says when to
// try again.
const CodeRateLimited = -32029

// admit counts the decision's rate-limit descriptors. It writes the
// x-ratelimit-* headers, and the refusal when the request may not pass.
func (h *routeHandler) admit(w http.ResponseWriter, r *http.Request, msg *mcp.Message, d *policy.Decision) bool {
	descs := make([]ratelimit.Descriptor, len(d.RateLimit))
	for i, rl := range d.RateLimit {
		descs[i] = ratelimit.Descriptor{Key: rl.Key, Limit: int64(rl.Limit), Period: time.Duration(rl.Period) * time.Second}
	}
	res, err := h.g.opts.Limiter.Check(r.Context(), descs)
	if err != nil {
		if !errors.Is(err, ratelimit.ErrUnavailable) || !h.g.opts.RateLimitFailOpen {
			h.g.log.Error("rate limit unavailable: refusing (FailClosed)", "route", h.route.Key, "error", err)
			writeJSONRPCError(w, http.StatusServiceUnavailable, idOf(msg), mcp.CodeInternalError, "rate limit unavailable", nil)
			return false
		}
		h.g.log.Warn("rate limit unavailable: admitting (FailOpen)", "route", h.route.Key, "error", err)
		return true
	}
	hdr := w.Header()
	hdr.Set("X-Ratelimit-Limit", strconv.FormatInt(res.Limit, 10))
	hdr.Set("X-Ratelimit-Remaining", strconv.FormatInt(res.Remaining, 10))
	hdr.Set("X-Ratelimit-Reset", strconv.Itoa(int(res.Reset/time.Second)))
	if res.Allowed {
		return true
	}
	retry := int(res.RetryAfter / time.Second)
	hdr.Set("Retry-After", strconv.Itoa(retry))
	writeJSONRPCError(w, http.StatusTooManyRequests, idOf(msg), CodeRateLimited, "rate limit exceeded",
		map[string]any{"retry_after_seconds": retry})
	return false
}
