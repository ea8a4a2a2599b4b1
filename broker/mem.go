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
	// memClosingGone: this many closing TCP connections ended since the
	// last release (about 17 KiB of RSS each, bench/PROFILE.md) are worth
	// one more release at once, whatever the schedule says.
	memClosingGone = 256
)

// memWatch hands the heap's free memory back to the system while the
// broker is quiet. Go's runtime keeps what a load grew the heap to (no GC
// comes while nothing allocates, its next target is twice the peak), and
// goroutine stacks shrink only at a GC, so without this a broker stayed
// near the RSS of its busiest moment for ever, and idle connections kept
// the stacks their first bytes grew (bench/PROFILE.md). The releases
// repeat because memory frees up later: the buffer pools empty at the
// second GC, a stack halves per GC, and connections in TIME_WAIT go 60 s
// after their close, which is why a release also follows as soon as they
// have gone (memRelease) rather than up to memEvery later. About 35
// forced GCs per quiet period, none while the broker works.
func (b *Broker) memWatch(ctx context.Context) {
	t := time.NewTicker(memTick)
	defer t.Stop()
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	var (
		last      uint64
		quietFrom time.Time     // zero while busy
		next      time.Duration // quietness of the next release
		closing   uint64        // closing TCP connections at the last release
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
			quietFrom, next, closing = time.Now(), memFirst, b.tcpClosing()
			continue
		}
		now := b.tcpClosing()
		due := memRelease(time.Since(quietFrom), next, closing, now)
		if now > closing {
			closing = now // a later drop counts from the highest level seen
		}
		if due == releaseNot {
			continue
		}
		debug.FreeOSMemory()
		closing = now
		if due == releaseScheduled {
			if next < 32*time.Second {
				next *= 2
			} else {
				next += memEvery
			}
		}
	}
}

// release is memRelease's answer.
type release int

const (
	releaseNot       release = iota
	releaseScheduled         // the schedule's next release is due
	releaseClosing           // closing connections have gone since the last one
)

// memRelease says whether a quiet broker hands its free heap back now:
// quiet for that long, with the schedule's next release at next, and
// before / now closing TCP connections at the last release and at this
// tick. Connections leaving TIME_WAIT free their endpoints all at once 60 s
// after a load, and the release that returns them should not wait for the
// schedule; after memLast only that reason remains.
func memRelease(quiet, next time.Duration, before, now uint64) release {
	if next <= memLast && quiet >= next {
		return releaseScheduled
	}
	if now < before && (now == 0 || before-now >= memClosingGone) {
		return releaseClosing
	}
	return releaseNot
}

// tcpClosing is the TCP connections of every host in the closing states,
// TIME_WAIT above all (stack.Host.TCPClosing).
func (b *Broker) tcpClosing() uint64 {
	var n uint64
	for _, h := range b.fab.Hosts() {
		n += h.TCPClosing()
	}
	return n
}
