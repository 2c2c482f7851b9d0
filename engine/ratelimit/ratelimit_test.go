package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/engine/ratelimit"
)

// forEachStore runs f once with in-memory limiters and once with limiters on
// a real redis-server of the subtest's own.
func forEachStore(t *testing.T, f func(t *testing.T, newLimiter func() *ratelimit.Limiter)) {
	t.Run("memory", func(t *testing.T) {
		f(t, func() *ratelimit.Limiter {
			l := ratelimit.New(ratelimit.Options{})
			t.Cleanup(func() { l.Close() })
			return l
		})
	})
	t.Run("redis", func(t *testing.T) {
		r := startRedis(t)
		f(t, func() *ratelimit.Limiter { return redisLimiter(t, r.addr(), 0) })
	})
}

func redisLimiter(t testing.TB, addr string, timeout time.Duration) *ratelimit.Limiter {
	l := ratelimit.New(ratelimit.Options{RedisAddr: addr, Timeout: timeout})
	t.Cleanup(func() { l.Close() })
	return l
}

func desc(key string, limit int64, period time.Duration) ratelimit.Descriptor {
	return ratelimit.Descriptor{Key: key, Limit: limit, Period: period}
}

// check is Check with a test deadline, failing on error.
func check(t testing.TB, l *ratelimit.Limiter, descs ...ratelimit.Descriptor) ratelimit.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := l.Check(ctx, descs)
	if err != nil {
		t.Fatalf("Check(%v): %v", descs, err)
	}
	return res
}

// hammer sends goroutines×each Checks of descs at once and counts the
// admitted ones; any error fails the test.
func hammer(t *testing.T, goroutines, each int, descs func(g int) []ratelimit.Descriptor, limiters ...*ratelimit.Limiter) int64 {
	t.Helper()
	var (
		admitted atomic.Int64
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	start := make(chan struct{})
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range each {
				l := limiters[(g+i)%len(limiters)]
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				res, err := l.Check(ctx, descs(g))
				cancel()
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					return
				}
				if res.Allowed {
					admitted.Add(1)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("Check under load: %v", firstErr)
	}
	return admitted.Load()
}

func TestLimiterNoDescriptorsAdmits(t *testing.T) {
	l := ratelimit.New(ratelimit.Options{})
	for _, descs := range [][]ratelimit.Descriptor{nil, {}} {
		if res := check(t, l, descs...); !res.Allowed {
			t.Errorf("Check(%v) = %+v, want Allowed", descs, res)
		}
	}
	// A Redis limiter with nothing to count does not need Redis.
	r := ratelimit.New(ratelimit.Options{RedisAddr: "127.0.0.1:1"})
	defer r.Close()
	if res := check(t, r); !res.Allowed {
		t.Errorf("Check() on an unreachable Redis with no descriptors = %+v, want Allowed", res)
	}
	if got, want := l.Shared(), false; got != want {
		t.Errorf("memory Shared() = %v, want %v", got, want)
	}
	if got, want := r.Shared(), true; got != want {
		t.Errorf("redis Shared() = %v, want %v", got, want)
	}
}

// 50 goroutines × 10 requests against 100 per minute: exactly 100 pass,
// whatever the interleaving of look, count and refund.
func TestLimiterConcurrentExact(t *testing.T) {
	forEachStore(t, func(t *testing.T, newLimiter func() *ratelimit.Limiter) {
		l := newLimiter()
		d := desc("exact", 100, time.Minute)
		got := hammer(t, 50, 10, func(int) []ratelimit.Descriptor { return []ratelimit.Descriptor{d} }, l)
		if got != 100 {
			t.Errorf("admitted %d of 500, want exactly 100", got)
		}
		res := check(t, l, d)
		if res.Allowed || res.Remaining != 0 || res.Limit != 100 {
			t.Errorf("after the flood: got %+v, want refused with Limit 100, Remaining 0", res)
		}
	})
}

// A request refused by one descriptor consumes nothing in the others, both
// when the look refuses it (sequential) and when a concurrent request took
// the last unit between look and count (refund).
func TestLimiterRefusedConsumesNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, newLimiter func() *ratelimit.Limiter) {
		t.Run("sequential, tight counter last", func(t *testing.T) {
			l := newLimiter()
			wide, tight := desc("seq/wide", 10, time.Minute), desc("seq/tight", 2, time.Minute)
			var admitted int
			for range 5 {
				if check(t, l, wide, tight).Allowed {
					admitted++
				}
			}
			if admitted != 2 {
				t.Fatalf("admitted %d of 5, want 2", admitted)
			}
			// Two units taken from wide, not five: the next look leaves 7.
			if res := check(t, l, wide); !res.Allowed || res.Remaining != 7 {
				t.Errorf("wide after 2 admitted and 3 refused: got %+v, want Allowed, Remaining 7 (10 - 2 - this one)", res)
			}
		})
		t.Run("sequential, tight counter first", func(t *testing.T) {
			l := newLimiter()
			wide, tight := desc("seq2/wide", 10, time.Minute), desc("seq2/tight", 2, time.Minute)
			for range 5 {
				check(t, l, tight, wide)
			}
			if res := check(t, l, wide); !res.Allowed || res.Remaining != 7 {
				t.Errorf("wide: got %+v, want Allowed, Remaining 7", res)
			}
		})
		t.Run("concurrent", func(t *testing.T) {
			l := newLimiter()
			wide, tight := desc("conc/wide", 1000, time.Minute), desc("conc/tight", 10, time.Minute)
			got := hammer(t, 50, 10, func(int) []ratelimit.Descriptor { return []ratelimit.Descriptor{wide, tight} }, l)
			if got != 10 {
				t.Errorf("admitted %d of 500, want exactly 10", got)
			}
			// Every refused request gave back what it took from wide.
			if res := check(t, l, wide); !res.Allowed || res.Remaining != 1000-10-1 {
				t.Errorf("wide after 10 admitted and 490 refused: got %+v, want Allowed, Remaining %d", res, 1000-10-1)
			}
		})
	})
}

// Flooding one key does not limit another.
func TestLimiterKeyIsolation(t *testing.T) {
	forEachStore(t, func(t *testing.T, newLimiter func() *ratelimit.Limiter) {
		l := newLimiter()
		a, b := desc("user/a", 5, time.Minute), desc("user/b", 5, time.Minute)
		got := hammer(t, 10, 10, func(int) []ratelimit.Descriptor { return []ratelimit.Descriptor{a} }, l)
		if got != 5 {
			t.Fatalf("key a: admitted %d of 100, want 5", got)
		}
		for i := range 5 {
			res := check(t, l, b)
			if !res.Allowed || res.Remaining != int64(4-i) {
				t.Fatalf("key b request %d after a was flooded: got %+v, want Allowed, Remaining %d", i+1, res, 4-i)
			}
		}
		if res := check(t, l, b); res.Allowed {
			t.Errorf("key b request 6: got %+v, want refused", res)
		}
		if res := check(t, l, desc("user/c", 1, time.Minute)); !res.Allowed {
			t.Errorf("fresh key c: got %+v, want Allowed", res)
		}
	})
}

// Limit, Remaining, Reset and RetryAfter are those of the most restrictive
// counter, and in range.
func TestLimiterResultValues(t *testing.T) {
	forEachStore(t, func(t *testing.T, newLimiter func() *ratelimit.Limiter) {
		l := newLimiter()
		d := desc("values", 3, time.Minute)
		for i := range 3 {
			res := check(t, l, d)
			if !res.Allowed || res.Limit != 3 || res.Remaining != int64(2-i) {
				t.Errorf("request %d: got %+v, want Allowed, Limit 3, Remaining %d", i+1, res, 2-i)
			}
			if res.Reset < 58*time.Second || res.Reset > time.Minute {
				t.Errorf("request %d: Reset = %v, want about 1m (in [58s, 1m])", i+1, res.Reset)
			}
			if res.RetryAfter != 0 {
				t.Errorf("request %d: RetryAfter = %v on an admitted request, want 0", i+1, res.RetryAfter)
			}
			if res.Reset%time.Second != 0 {
				t.Errorf("request %d: Reset = %v, want whole seconds (it becomes a header)", i+1, res.Reset)
			}
		}
		res := check(t, l, d)
		if res.Allowed || res.Limit != 3 || res.Remaining != 0 {
			t.Errorf("request 4: got %+v, want refused, Limit 3, Remaining 0", res)
		}
		if res.RetryAfter < time.Second || res.RetryAfter > time.Minute || res.Reset != res.RetryAfter {
			t.Errorf("request 4: RetryAfter = %v, Reset = %v, want equal, in [1s, 1m]", res.RetryAfter, res.Reset)
		}

		// Several counters: the result describes the tightest.
		wide, mid, tight := desc("v/wide", 100, time.Hour), desc("v/mid", 10, time.Minute), desc("v/tight", 4, 30*time.Second)
		res = check(t, l, wide, tight, mid)
		if !res.Allowed || res.Limit != 4 || res.Remaining != 3 {
			t.Errorf("three counters: got %+v, want Allowed, Limit 4, Remaining 3 (the tight one)", res)
		}
		if res.Reset < 28*time.Second || res.Reset > 30*time.Second {
			t.Errorf("three counters: Reset = %v, want the tight counter's, about 30s", res.Reset)
		}
		for range 3 {
			check(t, l, wide, tight, mid)
		}
		res = check(t, l, wide, tight, mid)
		if res.Allowed || res.Limit != 4 || res.RetryAfter > 30*time.Second || res.RetryAfter < time.Second {
			t.Errorf("three counters, tight one full: got %+v, want refused with Limit 4, RetryAfter in [1s, 30s]", res)
		}
	})
}

// After the period the counter starts again.
func TestLimiterWindowExpires(t *testing.T) {
	forEachStore(t, func(t *testing.T, newLimiter func() *ratelimit.Limiter) {
		t.Parallel()
		l := newLimiter()
		d := desc("expires", 2, time.Second)
		check(t, l, d)
		check(t, l, d)
		res := check(t, l, d)
		if res.Allowed {
			t.Fatalf("request 3 in a 2/s window: got %+v, want refused", res)
		}
		if res.RetryAfter != time.Second {
			t.Errorf("RetryAfter = %v, want 1s (at least a second, never 0)", res.RetryAfter)
		}
		time.Sleep(1100 * time.Millisecond)
		if res := check(t, l, d); !res.Allowed || res.Remaining != 1 {
			t.Errorf("after the window: got %+v, want Allowed, Remaining 1", res)
		}
	})
}

// Two limiters (two replicas) on one Redis share one budget.
func TestLimiterRedisSharedBudget(t *testing.T) {
	r := startRedis(t)
	a, b := redisLimiter(t, r.addr(), 0), redisLimiter(t, r.addr(), 0)
	d := desc("shared", 37, time.Minute)
	got := hammer(t, 20, 10, func(int) []ratelimit.Descriptor { return []ratelimit.Descriptor{d} }, a, b)
	if got != 37 {
		t.Errorf("admitted %d of 200 across two limiters, want exactly 37", got)
	}
	for name, l := range map[string]*ratelimit.Limiter{"a": a, "b": b} {
		if res := check(t, l, d); res.Allowed {
			t.Errorf("limiter %s after the budget is spent: got %+v, want refused", name, res)
		}
	}
	// Another prefix is another budget on the same Redis.
	other := ratelimit.New(ratelimit.Options{RedisAddr: r.addr(), Prefix: "other"})
	defer other.Close()
	if res := check(t, other, d); !res.Allowed || res.Remaining != 36 {
		t.Errorf("limiter with prefix other: got %+v, want Allowed, Remaining 36", res)
	}
}

// A dead or wedged Redis makes Check fail fast with ErrUnavailable; once Redis
// is back, the same Limiter works again.
func TestLimiterRedisUnavailable(t *testing.T) {
	const timeout = 200 * time.Millisecond
	r := startRedis(t)
	l := redisLimiter(t, r.addr(), timeout)
	d := desc("down", 1000, time.Minute)
	check(t, l, d)

	// Within the timeout: the round trip (and go-redis's one retry) are
	// bounded by Options.Timeout; allow generous scheduling slack.
	const bound = 4 * timeout
	checkUnavailable := func(t *testing.T, what string) {
		t.Helper()
		start := time.Now()
		res, err := l.Check(context.Background(), []ratelimit.Descriptor{d})
		took := time.Since(start)
		if !errors.Is(err, ratelimit.ErrUnavailable) {
			t.Errorf("%s: Check = %+v, %v; want ErrUnavailable", what, res, err)
		}
		if res.Allowed {
			t.Errorf("%s: Allowed with an error", what)
		}
		if took > bound {
			t.Errorf("%s: Check took %v, want at most %v (timeout %v)", what, took, bound, timeout)
		}
	}

	t.Run("killed", func(t *testing.T) {
		r.stop()
		for i := range 3 {
			checkUnavailable(t, fmt.Sprintf("Redis killed, check %d", i+1))
		}
	})
	t.Run("restarted", func(t *testing.T) {
		r.start()
		waitAdmitted(t, l, d, 3*time.Second)
	})
	t.Run("paused", func(t *testing.T) {
		// A Redis that accepts but never answers: only the timeout ends the
		// wait.
		r.pause()
		checkUnavailable(t, "Redis paused")
		r.resume()
		waitAdmitted(t, l, d, 3*time.Second)
	})
	t.Run("caller deadline", func(t *testing.T) {
		// A caller whose context ends first gets its error, not a hang.
		r.pause()
		defer r.resume()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := l.Check(ctx, []ratelimit.Descriptor{d})
		if !errors.Is(err, ratelimit.ErrUnavailable) {
			t.Errorf("Check with a 50ms context on a paused Redis: err = %v, want ErrUnavailable", err)
		}
		if took := time.Since(start); took > bound {
			t.Errorf("Check with a 50ms context took %v", took)
		}
	})
}

// A Limiter created while Redis is down works once Redis comes up, and
// meanwhile retries at most once a second (in between it answers at once).
func TestLimiterRedisStartsLater(t *testing.T) {
	r := startRedis(t)
	r.stop()
	l := redisLimiter(t, r.addr(), 200*time.Millisecond)
	d := desc("later", 10, time.Minute)

	failed := time.Now()
	if _, err := l.Check(context.Background(), []ratelimit.Descriptor{d}); !errors.Is(err, ratelimit.ErrUnavailable) {
		t.Fatalf("Check with Redis down: err = %v, want ErrUnavailable", err)
	}
	r.start()
	// Within the second after a failed attempt the limiter does not try
	// again: still unavailable although Redis is up, and answered at once.
	start := time.Now()
	_, err := l.Check(context.Background(), []ratelimit.Descriptor{d})
	if took := time.Since(start); start.Sub(failed) < 900*time.Millisecond {
		if !errors.Is(err, ratelimit.ErrUnavailable) {
			t.Errorf("Check %v after a failed connection attempt: err = %v, want ErrUnavailable (retry at most once a second)", start.Sub(failed), err)
		}
		if took > 50*time.Millisecond {
			t.Errorf("Check during the retry pause took %v, want an immediate answer", took)
		}
	}
	waitAdmitted(t, l, d, 3*time.Second)
	if res := check(t, l, d); !res.Allowed || res.Remaining != 8 {
		t.Errorf("second admitted request: got %+v, want Allowed, Remaining 8", res)
	}
}

// With Redis down, no Check waits longer than the configured timeout allows:
// neither the one that tries to connect (once a second) nor those that
// arrive while it tries. A gateway whose Redis is down answers 503 (or
// admits, FailOpen) quickly, instead of holding every request.
func TestLimiterRedisDownFailsWithinTimeout(t *testing.T) {
	const (
		timeout = 100 * time.Millisecond
		bound   = 4 * timeout
	)
	r := startRedis(t)
	r.stop() // nothing listens on r.addr() now
	l := redisLimiter(t, r.addr(), timeout)
	d := []ratelimit.Descriptor{desc("down", 10, time.Minute)}
	for round := range 2 {
		if round > 0 {
			time.Sleep(1100 * time.Millisecond) // past the retry pause: the next Check connects again
		}
		var wg sync.WaitGroup
		took := make([]time.Duration, 8)
		errs := make([]error, len(took))
		for i := range took {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				_, errs[i] = l.Check(context.Background(), d)
				took[i] = time.Since(start)
			}()
		}
		wg.Wait()
		for i := range took {
			if !errors.Is(errs[i], ratelimit.ErrUnavailable) {
				t.Errorf("round %d, check %d: err = %v, want ErrUnavailable", round, i, errs[i])
			}
			if took[i] > bound {
				t.Errorf("round %d, check %d: took %v with Redis down, want at most %v (Options.Timeout %v)", round, i, took[i].Round(time.Millisecond), bound, timeout)
			}
		}
	}
}

// waitAdmitted polls Check until it admits, for at most within.
func waitAdmitted(t *testing.T, l *ratelimit.Limiter, d ratelimit.Descriptor, within time.Duration) {
	t.Helper()
	start := time.Now()
	var (
		lastErr error
		tries   int
	)
	for time.Since(start) < within {
		tries++
		res, err := l.Check(context.Background(), []ratelimit.Descriptor{d})
		if err == nil && res.Allowed {
			t.Logf("admitted after %v (%d checks)", time.Since(start).Round(time.Millisecond), tries)
			return
		}
		if err == nil {
			t.Fatalf("Check = %+v, want Allowed", res)
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("Check still failing %v after Redis came back (%d checks): %v", within, tries, lastErr)
}
