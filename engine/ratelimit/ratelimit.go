// Package ratelimit counts the rate-limit descriptors a decision returns.
// The policy decides which counters apply; this package only counts them,
// with ulule/limiter: in memory (per replica) or in Redis (one budget shared
// by every replica). Every descriptor is checked before any is consumed, so
// a request refused by one counter burns nothing in the others.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"
	redisstore "github.com/ulule/limiter/v3/drivers/store/redis"
)

// ErrUnavailable means the counters could not be read (Redis down): the
// caller applies its failure mode.
var ErrUnavailable = errors.New("ratelimit: store unavailable")

// Descriptor is one counter: at most Limit requests per Period for Key.
type Descriptor struct {
	Key    string
	Limit  int64
	Period time.Duration
}

// Result says whether a request may pass, and the state of its most
// restrictive counter, for the x-ratelimit-* headers.
type Result struct {
	Allowed    bool
	Limit      int64
	Remaining  int64
	Reset      time.Duration // until the most restrictive counter resets
	RetryAfter time.Duration // when refused
}

// Options configure a Limiter; the zero value counts in memory.
type Options struct {
	// RedisAddr, when set, keeps the counters in Redis (host:port).
	RedisAddr string
	// Prefix namespaces the keys (default "mcpgate:rl").
	Prefix string
	Logger *slog.Logger
	// Timeout bounds one Redis round trip (default 500ms).
	Timeout time.Duration
}

// Limiter counts descriptors. Safe for concurrent use.
type Limiter struct {
	opts   Options
	log    *slog.Logger
	client *redis.Client

	mu         sync.Mutex // guards the fields below
	store      limiter.Store
	lastTry    time.Time
	connecting chan struct{} // closed when the current connection attempt ends
}

// New returns a limiter. With Redis it does not fail when Redis is down:
// the store is created on first use and retried (at most once a second)
// until Redis answers.
func New(opts Options) *Limiter {
	if opts.Prefix == "" {
		opts.Prefix = "mcpgate:rl"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 500 * time.Millisecond
	}
	l := &Limiter{opts: opts, log: opts.Logger}
	if opts.RedisAddr == "" {
		l.store = memory.NewStoreWithOptions(limiter.StoreOptions{Prefix: opts.Prefix, CleanUpInterval: time.Minute})
		return l
	}
	redisLogger.Do(func() { redis.SetLogger(slogPrintf{opts.Logger}) })
	l.client = redis.NewClient(&redis.Options{
		Addr:          opts.RedisAddr,
		DialTimeout:   opts.Timeout,
		ReadTimeout:   opts.Timeout,
		WriteTimeout:  opts.Timeout,
		MaxRetries:    1,
		DialerRetries: 1, // a down Redis must answer "unavailable" within the timeout
	})
	return l
}

// redisLogger routes go-redis's own messages into the gateway's JSON log
// (go-redis has one process-wide logger).
var redisLogger sync.Once

type slogPrintf struct{ log *slog.Logger }

func (s slogPrintf) Printf(_ context.Context, format string, v ...any) {
	s.log.Warn("redis: " + fmt.Sprintf(format, v...))
}

// Close releases the Redis connection.
func (l *Limiter) Close() error {
	if l.client != nil {
		return l.client.Close()
	}
	return nil
}

// Shared reports whether the counters are shared between replicas.
func (l *Limiter) Shared() bool { return l.client != nil }

// current returns the store, creating the Redis one on first use. One
// request at a time tries to connect (at most once a second), bounded by the
// timeout; requests arriving meanwhile wait for that attempt, never longer
// than the timeout, and otherwise get ErrUnavailable at once.
func (l *Limiter) current(ctx context.Context) (limiter.Store, error) {
	l.mu.Lock()
	if l.store != nil {
		s := l.store
		l.mu.Unlock()
		return s, nil
	}
	if wait := l.connecting; wait != nil {
		l.mu.Unlock()
		t := time.NewTimer(l.opts.Timeout)
		defer t.Stop()
		select {
		case <-wait:
		case <-t.C:
		case <-ctx.Done():
		}
		l.mu.Lock()
		s := l.store
		l.mu.Unlock()
		if s == nil {
			return nil, ErrUnavailable
		}
		return s, nil
	}
	if time.Since(l.lastTry) < time.Second {
		l.mu.Unlock()
		return nil, ErrUnavailable
	}
	done := make(chan struct{})
	l.connecting, l.lastTry = done, time.Now()
	l.mu.Unlock()

	s, err := l.connect(ctx)

	l.mu.Lock()
	defer l.mu.Unlock()
	l.connecting = nil
	defer close(done)
	if err != nil {
		l.log.Warn("rate-limit store unavailable", "redis", l.opts.RedisAddr, "error", err)
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	l.log.Info("rate-limit store connected", "redis", l.opts.RedisAddr)
	l.store = s
	return s, nil
}

// connect checks Redis within the timeout before creating the store, whose
// constructor loads its scripts without a deadline of its own.
func (l *Limiter) connect(ctx context.Context) (limiter.Store, error) {
	pctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	if err := l.client.Ping(pctx).Err(); err != nil {
		return nil, err
	}
	return redisstore.NewStoreWithOptions(l.client, limiter.StoreOptions{Prefix: l.opts.Prefix})
}

// Check admits a request if every descriptor has room, and then consumes
// one unit of each. An error wraps ErrUnavailable.
func (l *Limiter) Check(ctx context.Context, descs []Descriptor) (Result, error) {
	if len(descs) == 0 {
		return Result{Allowed: true}, nil
	}
	store, err := l.current(ctx)
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()

	// Look first: a request that one counter refuses consumes nothing.
	var tightest limiter.Context
	for i, d := range descs {
		c, err := store.Peek(ctx, d.Key, rate(d))
		if err != nil {
			return Result{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if c.Remaining <= 0 {
			return refused(c), nil
		}
		if i == 0 || c.Remaining < tightest.Remaining {
			tightest = c
		}
	}
	// Then count. A concurrent request may have taken the last unit since
	// the look: the counter says so (Reached), and what this request took
	// is given back, so a refused request still burns nothing.
	for i, d := range descs {
		c, err := store.Get(ctx, d.Key, rate(d))
		if err != nil {
			l.refund(store, descs[:i])
			return Result{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if c.Reached {
			l.refund(store, descs[:i+1])
			return refused(c), nil
		}
		if i == 0 || c.Remaining < tightest.Remaining {
			tightest = c
		}
	}
	return Result{
		Allowed:   true,
		Limit:     tightest.Limit,
		Remaining: tightest.Remaining,
		Reset:     untilReset(tightest.Reset),
	}, nil
}

func (l *Limiter) refund(store limiter.Store, descs []Descriptor) {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
	defer cancel()
	for _, d := range descs {
		if _, err := store.Increment(ctx, d.Key, -1, rate(d)); err != nil {
			l.log.Warn("rate-limit refund failed", "error", err)
		}
	}
}

func rate(d Descriptor) limiter.Rate { return limiter.Rate{Period: d.Period, Limit: d.Limit} }

func refused(c limiter.Context) Result {
	wait := untilReset(c.Reset)
	if wait < time.Second {
		wait = time.Second
	}
	return Result{Limit: c.Limit, Remaining: 0, Reset: wait, RetryAfter: wait}
}

func untilReset(unix int64) time.Duration {
	d := time.Until(time.Unix(unix, 0))
	if d < 0 {
		return 0
	}
	return d.Round(time.Second)
}
