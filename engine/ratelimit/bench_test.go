package ratelimit_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/engine/ratelimit"
)

// Descriptor sets as the decision returns them: one local rule, and a local
// rule plus two user counters.
var benchSets = []struct {
	name  string
	descs []ratelimit.Descriptor
}{
	{"1desc", []ratelimit.Descriptor{desc("local/ns/limits/0", 1<<40, time.Hour)}},
	{"3desc", []ratelimit.Descriptor{
		desc("local/ns/limits/0", 1<<40, time.Hour),
		desc("user/per_sub/agent-user", 1<<40, time.Hour),
		desc("user/per_tool/echo", 1<<40, time.Hour),
	}},
}

func benchCheck(b *testing.B, newLimiter func() *ratelimit.Limiter) {
	for _, set := range benchSets {
		b.Run(set.name, func(b *testing.B) {
			l := newLimiter()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				res, err := l.Check(ctx, set.descs)
				if err != nil || !res.Allowed {
					b.Fatalf("Check = %+v, %v", res, err)
				}
			}
		})
		b.Run(set.name+"-parallel", func(b *testing.B) {
			l := newLimiter()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					res, err := l.Check(ctx, set.descs)
					if err != nil || !res.Allowed {
						b.Errorf("Check = %+v, %v", res, err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkCheckMemory(b *testing.B) {
	benchCheck(b, func() *ratelimit.Limiter { return ratelimit.New(ratelimit.Options{}) })
}

func BenchmarkCheckRedis(b *testing.B) {
	r := startRedis(b)
	benchCheck(b, func() *ratelimit.Limiter { return redisLimiter(b, r.addr(), 0) })
}

// BenchmarkMemoryManyKeys counts 100k distinct keys (one per subject, say)
// in memory: ns/op per first-seen key, and the heap those counters hold
// (heap-MB, B/key). Then, once the 1s period has passed, the keys are
// logically expired (a new request starts a fresh window) but their memory
// stays until the store's cleaner runs, which the package schedules once a
// minute and does not expose: heap-MB-expired reports what is still held
// right after expiry. With MCPGATE_BENCH_CLEANUP=1 the benchmark also waits
// for that cleaner (about a minute) and reports heap-MB-cleaned.
func BenchmarkMemoryManyKeys(b *testing.B) {
	const n = 100_000
	keys := make([]ratelimit.Descriptor, n)
	for i := range keys {
		keys[i] = desc("user/per_sub/subject-"+strconv.Itoa(i), 10, time.Second)
	}
	ctx := context.Background()
	var (
		heapBefore, heapAfter uint64
		l                     *ratelimit.Limiter
	)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		l = nil
		heapBefore = heapInUse()
		l = ratelimit.New(ratelimit.Options{})
		b.StartTimer()
		for i := range keys {
			if res, err := l.Check(ctx, keys[i:i+1]); err != nil || !res.Allowed {
				b.Fatalf("Check(%s) = %+v, %v", keys[i].Key, res, err)
			}
		}
	}
	b.StopTimer()
	heapAfter = heapInUse()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
	held := float64(heapAfter) - float64(heapBefore)
	b.ReportMetric(held/(1<<20), "heap-MB")
	b.ReportMetric(held/n, "B/key")

	// Expired but not yet cleaned: a request starts a fresh window...
	time.Sleep(1100 * time.Millisecond)
	if res, err := l.Check(ctx, keys[:1]); err != nil || res.Remaining != 9 {
		b.Fatalf("after the period: Check = %+v, %v; want a fresh window (Remaining 9)", res, err)
	}
	// ...while the counters still occupy the heap.
	b.ReportMetric((float64(heapInUse())-float64(heapBefore))/(1<<20), "heap-MB-expired")
	if os.Getenv("MCPGATE_BENCH_CLEANUP") != "" {
		time.Sleep(65 * time.Second) // the store's CleanUpInterval is one minute
		b.ReportMetric((float64(heapInUse())-float64(heapBefore))/(1<<20), "heap-MB-cleaned")
	}
	runtime.KeepAlive(l)
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
