package broker

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

const (
	// memQuietAlloc: a broker that allocates less than this per memTick
	// is quiet (a busy one allocates for every segment it handles).
	memQuietAlloc = 1 << 20
	memTick       = time.Second
	// The heap goes back to the system 2, 4, 8, 16 and 32 s into a quiet
	// period, then every memEvery until memLast.
	memFirst = 2 * time.Second
	memEvery = 5 * time.Second
	memLast  = 3 * time.Minute
)

// memWatch hands the heap's free memory back to the system while the
// broker is quiet. Go's runtime keeps what a load grew the heap to (no GC
// comes while nothing allocates, its next target is twice the peak), and
// goroutine stacks shrink only at a GC, so without this a broker stayed
// near the RSS of its busiest moment for ever, and idle connections kept
// the stacks their first bytes grew (bench/PROFILE.md). The releases
// repeat because memory frees up later: the buffer pools empty at the
// second GC, connections in TIME_WAIT go after 60 s, a stack halves per
// GC. About 35 forced GCs per quiet period, none while the broker works.
func (b *Broker) memWatch(ctx context.Context) {
	t := time.NewTicker(memTick)
	defer t.Stop()
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	var (
		last      uint64
		quietFrom time.Time     // zero while busy
		next      time.Duration // quietness of the next release
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		allocs := sample[0].Value.Uint64()
		busy := allocs-last >= memQuietAlloc
		last = allocs
		if busy {
			quietFrom = time.Time{}
			continue
		}
		if quietFrom.IsZero() {
			quietFrom, next = time.Now(), memFirst
			continue
		}
		if next > memLast || time.Since(quietFrom) < next {
			continue
		}
		debug.FreeOSMemory()
		if next < 32*time.Second {
			next *= 2
		} else {
			next += memEvery
		}
	}
}
