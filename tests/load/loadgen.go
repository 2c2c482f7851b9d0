package load

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Stats is what one load run measured at the client.
type Stats struct {
	Sent      int           // requests sent
	OK        int           // answered with the expected JSON-RPC result
	Errors    int           // transport errors, non-200, JSON-RPC errors, wrong results
	Unsent    int           // open loop: scheduled but never sent before the drain timeout
	FirstErr  string        // one error, for the report
	Elapsed   time.Duration // from the first scheduled send to the last answer (or the run's end)
	Latencies []time.Duration
	Tools     int // tools in the last tools/list result (0 for tools/call)
}

// Throughput is answered-OK requests per second.
func (s Stats) Throughput() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.OK) / s.Elapsed.Seconds()
}

// Percentile returns the q-quantile (0 < q <= 1) of the latencies by the
// nearest-rank method; Latencies must be sorted (Run sorts them).
func (s Stats) Percentile(q float64) time.Duration {
	return percentile(s.Latencies, q)
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// recorder collects one worker's measurements; merged after the run.
type recorder struct {
	ok, errs, sent int
	firstErr       string
	lat            []time.Duration
	last           time.Time
}

func (r *recorder) record(err error, lat time.Duration, done time.Time) {
	r.sent++
	r.last = done
	if err != nil {
		r.errs++
		if r.firstErr == "" {
			r.firstErr = err.Error()
		}
		return
	}
	r.ok++
	r.lat = append(r.lat, lat)
}

func merge(recs []*recorder, sessions []*Session) Stats {
	var st Stats
	for _, r := range recs {
		st.Sent += r.sent
		st.OK += r.ok
		st.Errors += r.errs
		if st.FirstErr == "" {
			st.FirstErr = r.firstErr
		}
		st.Latencies = append(st.Latencies, r.lat...)
	}
	for _, s := range sessions {
		st.Tools = max(st.Tools, s.Tools)
	}
	slices.Sort(st.Latencies)
	return st
}

// OpenSessions opens n sessions on c; CloseSessions ends them.
func OpenSessions(ctx context.Context, c *Client, n int) ([]*Session, error) {
	ss := make([]*Session, 0, n)
	for range n {
		s, err := c.Open(ctx)
		if err != nil {
			CloseSessions(ss)
			return nil, err
		}
		ss = append(ss, s)
	}
	return ss, nil
}

// CloseSessions ends every session of ss.
func CloseSessions(ss []*Session) {
	for _, s := range ss {
		s.Close()
	}
}

// OpenLoop sends m at rate requests per second for d, spread over the
// sessions (one request at a time each). Sends are scheduled on a fixed time grid and each latency is
// measured from the send's intended time, so a stalled response makes the
// requests queued behind it count as late rather than silently delaying
// them (no coordinated omission). Requests still queued drain+d after the
// start are counted as Unsent errors.
func OpenLoop(ctx context.Context, sessions []*Session, m Method, rate float64, d, drain time.Duration) (Stats, error) {
	workers := len(sessions)
	if rate <= 0 || d <= 0 || workers == 0 {
		return Stats{}, errors.New("load: open loop needs rate, duration and sessions")
	}
	n := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	queue := make(chan time.Time, n)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	hardStop := time.AfterFunc(d+drain, cancel)
	defer hardStop.Stop()

	recs := make([]*recorder, workers)
	var wg sync.WaitGroup
	for i := range workers {
		recs[i] = &recorder{lat: make([]time.Duration, 0, n/workers+16)}
		wg.Go(func() {
			r, s := recs[i], sessions[i]
			for intended := range queue {
				if runCtx.Err() != nil {
					return
				}
				err := s.Do(runCtx, m)
				done := time.Now()
				r.record(err, done.Sub(intended), done)
			}
		})
	}
	// The scheduler releases every send whose time has come; a late wake-up
	// releases several at once, each still carrying its own intended time.
	scheduled := 0
	for scheduled < n && runCtx.Err() == nil {
		now := time.Now()
		for scheduled < n {
			t := start.Add(time.Duration(scheduled) * interval)
			if t.After(now) {
				break
			}
			queue <- t
			scheduled++
		}
		if scheduled < n {
			time.Sleep(time.Until(start.Add(time.Duration(scheduled) * interval)))
		}
	}
	close(queue)
	wg.Wait()
	st := merge(recs, sessions)
	st.Unsent = n - st.Sent
	st.Errors += st.Unsent
	if st.Unsent > 0 && st.FirstErr == "" {
		st.FirstErr = fmt.Sprintf("%d requests still queued %s after the start", st.Unsent, d+drain)
	}
	var last time.Time
	for _, r := range recs {
		if r.last.After(last) {
			last = r.last
		}
	}
	st.Elapsed = max(d, last.Sub(start))
	return st, nil
}

// ClosedLoop sends m back to back on every session for d: the saturation
// throughput. Latency is per request, send to answer.
func ClosedLoop(ctx context.Context, sessions []*Session, m Method, d time.Duration) (Stats, error) {
	workers := len(sessions)
	if d <= 0 || workers == 0 {
		return Stats{}, errors.New("load: closed loop needs duration and sessions")
	}
	recs := make([]*recorder, workers)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range workers {
		recs[i] = &recorder{lat: make([]time.Duration, 0, 4096)}
		wg.Go(func() {
			r, s := recs[i], sessions[i]
			for {
				t0 := time.Now()
				if !t0.Before(deadline) || ctx.Err() != nil {
					return
				}
				err := s.Do(ctx, m)
				done := time.Now()
				r.record(err, done.Sub(t0), done)
			}
		})
	}
	wg.Wait()
	st := merge(recs, sessions)
	st.Elapsed = time.Since(start)
	return st, nil
}
