package broker

import (
	"context"
	"runtime/debug"
	"time"
)

// memIdle is how long the broker has had no sockets before it first hands
// the memory of the load that ended back to the system; it does so again
// at twice that, and so on up to memIdleLast.
const (
	memIdle     = 2 * time.Second
	memIdleLast = 128 * time.Second
)

// memWatch returns the heap's free memory to the system while no socket
// exists, after a load: Go's runtime keeps what a load grew the heap to
// (no GC comes while the broker idles, and its next GC target is twice
// the peak), so without this a broker stayed near the RSS of its busiest
// moment for ever (bench/PROFILE.md). It repeats at 2, 4, 8 ... 128 s of
// idleness, since memory frees up after the programs go: connections in
// TIME_WAIT (60 s) and the buffer pools, which a GC only empties at the
// second. A few forced GCs per load that ended, none while programs use
// the broker.
func (b *Broker) memWatch(ctx context.Context) {
	t := time.NewTicker(memIdle / 2)
	defer t.Stop()
	var (
		since time.Time     // the idle period the releases are for
		next  time.Duration // idleness of the next release
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.mu.Lock()
		idle, from := len(b.socks) == 0, b.noSocksFrom
		b.mu.Unlock()
		if !idle || from.IsZero() {
			continue
		}
		if from != since {
			since, next = from, memIdle
		}
		if next > memIdleLast || time.Since(from) < next {
			continue
		}
		debug.FreeOSMemory()
		next *= 2
	}
}
