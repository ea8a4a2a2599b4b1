package stack

import (
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// DefaultMaxTimeWait is the default Config.MaxTimeWait. Netstack keeps a
// connection's whole endpoint for the 60 s of TIME_WAIT (about 8 KiB with
// its timers, buffers and port reservation, where Linux keeps a 200-byte
// bucket), so a host making 3000 connections a second would hold 1.4 GiB of
// them (RSS about 17 KiB each, with the garbage collector's headroom); 2048
// is at most about 35 MiB a host. (Linux's own bound,
// net.ipv4.tcp_max_tw_buckets, is sized for its buckets: 131072 on a
// 2-CPU machine with a few GiB.)
const DefaultMaxTimeWait = 2048

// timeWait bounds the connections a host keeps in TIME_WAIT, as Linux's
// net.ipv4.tcp_max_tw_buckets does: past the bound, a connection that
// closes skips TIME_WAIT (Linux logs "time wait bucket table overflow").
//
// Netstack reads its stack-wide TIME_WAIT duration when a connection
// enters the state, and counts connected and established endpoints; their
// difference is the endpoints in the closing states (FIN_WAIT, TIME_WAIT,
// CLOSE_WAIT, LAST_ACK, CLOSING). Each close by a program looks at that
// count and switches the duration between netstack's 60 s and 0, so the
// host never holds many more than the bound: no goroutine, no hook into
// netstack. CLOSE_WAIT endpoints (the program has not closed yet) count
// too, which can only make the bound apply earlier.
type timeWait struct {
	max uint64 // 0: unbounded
	// skipping is whether the stack's TIME_WAIT duration is now 0.
	skipping atomic.Bool
	// told is set by the first switch to 0 (see NoteTCPClose).
	told atomic.Bool
}

// setMaxTimeWait records cfg.MaxTimeWait; negative means unbounded.
func (h *Host) setMaxTimeWait(n int) {
	switch {
	case n == 0:
		h.tw.max = DefaultMaxTimeWait
	case n > 0:
		h.tw.max = uint64(n)
	}
}

// NoteTCPClose is called when a program closes one of the host's TCP
// connections, before the endpoint's Close: it sets the TIME_WAIT
// duration the connection will get (see timeWait). It reports true the
// first time the host reaches its bound, for the caller to say so once.
func (h *Host) NoteTCPClose() (firstOverflow bool) {
	tw := &h.tw
	if tw.max == 0 {
		return false
	}
	over := h.TCPClosing() >= tw.max
	if over == tw.skipping.Load() || !tw.skipping.CompareAndSwap(!over, over) {
		return false
	}
	d := tcp.DefaultTCPTimeWaitTimeout
	if over {
		d = 0
	}
	opt := tcpip.TCPTimeWaitTimeoutOption(d)
	// Cannot fail: the option is netstack's own and the value valid.
	_ = h.Stack.SetTransportProtocolOption(tcp.ProtocolNumber, &opt)
	return over && !tw.told.Swap(true)
}

// TCPClosing is the number of the host's TCP connections in the closing
// states (FIN_WAIT, TIME_WAIT, CLOSE_WAIT, LAST_ACK, CLOSING): what the
// bound applies to.
func (h *Host) TCPClosing() uint64 {
	st := h.Stack.Stats().TCP
	return st.CurrentConnected.Value() - st.CurrentEstablished.Value()
}

// MaxTimeWait is the host's bound on connections in TIME_WAIT (0:
// unbounded).
func (h *Host) MaxTimeWait() int { return int(h.tw.max) }
