package tap

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// DefaultAckDelay is the longest a pure ACK is held (Config.AckDelay)
// when the fabric does not say otherwise: Linux's shortest delayed-ACK
// timeout (TCP_DELACK_MIN). It is below what TCP's timers notice (the
// sender of a lone segment waits 2·SRTT+200 ms before a tail-loss probe,
// and at least 200 ms before a retransmission).
const DefaultAckDelay = 40 * time.Millisecond

// minAckDelay is the shortest hold: Go's timers are not finer than a
// millisecond on an idle process.
const minAckDelay = time.Millisecond

// The ACK policy. netstack acknowledges at the end of every batch of
// segments it handles and has no delayed ACK, so that half the frames of a
// request/response are pure ACKs, each costing a frame's delivery and a
// wake-up of the peer's TCP processor. Linux delays the ACK in interactive
// connections and sends it with the answer. The endpoint does the same on
// the way out, with Linux's rules:
//
//   - Only a pure ACK (flags exactly ACK, no payload, no SACK blocks) that
//     acknowledges exactly one new segment (data or FIN) is held. An ACK of
//     two or more segments goes at once (Linux acknowledges every second
//     full segment), so does a duplicate ACK (same ack number as the last
//     one sent: it signals loss), a window update, the handshake's ACK,
//     and every ACK after the host sent its FIN.
//   - Only in an interactive connection (Linux's "pingpong" mode): one in
//     which the host sent data within AckDelay of receiving some, that is,
//     where holding would have paid off. A held ACK that has to be sent by
//     the timer ends that mode until the host answers in time again. A
//     bulk receiver, which sends no data, never holds an ACK.
//   - The next segment of the flow carries the held ACK's information (its
//     ack number never moves back), so the held frame is dropped, unsent
//     and not captured: a data segment or FIN piggybacks it; a second pure
//     ACK goes at once in its place; an RST or a new SYN means the
//     connection it acknowledged is gone.
//   - Otherwise the timer sends it after the connection's usual answer
//     time: the host's time to answer (from a segment's arrival to the
//     host's next data) is estimated per connection as TCP estimates an
//     RTO, srtt + 4·rttvar, within minAckDelay..AckDelay. A program that
//     waits for the ACK (Nagle's algorithm holding its second small write)
//     waits that long, not Linux's 40 ms or more; a loaded machine, where
//     answers take milliseconds, still gets its ACKs carried.
//
// Since a held ACK acknowledges one segment, its sender has one segment in
// flight, for which netstack's tail-loss probe waits 2·SRTT + 200 ms, and
// retransmission at least 200 ms: holding for AckDelay triggers neither.

// TCP header flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

const (
	// ackSweepEvery is how often flows are checked for idleness; flows
	// idle for ackIdleFlow are forgotten (a FIN each way or an RST ends
	// them earlier).
	ackSweepEvery = 10 * time.Second
	ackIdleFlow   = 60 * time.Second
)

// flowKey identifies a TCP connection as seen by one host: local is the
// host's address and port. IPv4 addresses are stored IPv4-mapped.
type flowKey struct {
	local, remote [16]byte
	lport, rport  uint16
}

// reversed returns the key of the same connection seen from the peer.
func (k flowKey) reversed() flowKey {
	return flowKey{local: k.remote, remote: k.local, lport: k.rport, rport: k.lport}
}

// tcpSeg is what the ACK policy reads of a TCP segment's headers.
type tcpSeg struct {
	key     flowKey // oriented as sent: local is the source
	flags   uint8
	ack     uint32
	payload int
	sack    bool // carries SACK blocks
}

// parseTCP reads the IP and TCP headers at the start of b, which must hold
// both whole (the first view of a packet netstack built, or a whole
// frame). ok is false for anything but an unfragmented TCP segment.
func parseTCP(b []byte) (s tcpSeg, ok bool) {
	if len(b) == 0 {
		return s, false
	}
	var t []byte
	var ipPayload int
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return s, false
		}
		ihl := int(b[0]&0xf) * 4
		if ihl < 20 || len(b) < ihl || b[9] != 6 || binary.BigEndian.Uint16(b[6:8])&0x3fff != 0 {
			return s, false
		}
		s.key.local[10], s.key.local[11] = 0xff, 0xff
		s.key.remote[10], s.key.remote[11] = 0xff, 0xff
		copy(s.key.local[12:], b[12:16])
		copy(s.key.remote[12:], b[16:20])
		t = b[ihl:]
		ipPayload = int(binary.BigEndian.Uint16(b[2:4])) - ihl
	case 6:
		// A TCP header right after the fixed header; extension headers
		// are rare enough to be sent as they are, unparsed.
		if len(b) < 40 || b[6] != 6 {
			return s, false
		}
		copy(s.key.local[:], b[8:24])
		copy(s.key.remote[:], b[24:40])
		t = b[40:]
		ipPayload = int(binary.BigEndian.Uint16(b[4:6]))
	default:
		return s, false
	}
	if len(t) < 20 {
		return s, false
	}
	doff := int(t[12]>>4) * 4
	if doff < 20 || len(t) < doff || ipPayload < doff {
		return s, false
	}
	s.key.lport = binary.BigEndian.Uint16(t[0:2])
	s.key.rport = binary.BigEndian.Uint16(t[2:4])
	s.ack = binary.BigEndian.Uint32(t[8:12])
	s.flags = t[13]
	s.payload = ipPayload - doff
	for o := t[20:doff]; len(o) > 0; {
		switch o[0] {
		case 0: // end of options
			o = nil
		case 1: // no-op
			o = o[1:]
		default:
			if len(o) < 2 || int(o[1]) < 2 || int(o[1]) > len(o) {
				return s, false
			}
			if o[0] == 5 {
				s.sack = true
			}
			o = o[o[1]:]
		}
	}
	return s, true
}

// seqAfter reports whether sequence number a is after b (RFC 793 order).
func seqAfter(a, b uint32) bool { return int32(a-b) > 0 }

// ackFlow is the ACK policy's state of one connection of the host.
type ackFlow struct {
	held    *stack.PacketBuffer // the held pure ACK (a reference of ours), or nil
	heldAck uint32              // its ack number
	due     int64               // when the timer sends it
	// srtt and rttvar estimate how long the host takes to answer: from
	// the last segment received to the next data it sends (nanoseconds).
	srtt, rttvar int64
	lastAck      uint32 // ack number of the last segment put on the fabric
	lastRx       int64  // when the last segment with data or FIN came in; 0: never
	active       int64  // the last segment either way, for the idle sweep
	// unacked counts the segments with data or FIN received since lastAck
	// went out (at least: some may be old or out of order).
	unacked  int32
	pingpong bool // interactive: pure ACKs may be held
	finTx    bool // the host sent its FIN: no ACK is held any more
	finRx    bool
	listed   bool // in ackTable.list
}

// ackTable is an endpoint's ACK policy state. Its TX side runs under the
// endpoint's txMu (which orders the frames a held ACK is compared with);
// RX notes come from the goroutines that deliver to the host. mu guards
// everything but the counters.
type ackTable struct {
	delay int64 // Config.AckDelay in nanoseconds: the longest hold

	mu    sync.Mutex
	flows map[flowKey]*ackFlow
	// list holds the flows with a held ACK (and some whose ACK has gone
	// since), oldest first; the timer walks it.
	list      []*ackFlow
	timer     *time.Timer
	timerAt   int64 // when the armed timer fires; 0: not armed
	nextSweep int64
	closed    bool

	held, merged, flushed atomic.Uint64
}

// epoch is the origin of the ACK policy's clock (monotonic nanoseconds).
var epoch = time.Now()

func nanotime() int64 { return int64(time.Since(epoch)) }

func newAckTable(delay time.Duration, flush func()) *ackTable {
	t := &ackTable{delay: int64(delay), flows: make(map[flowKey]*ackFlow)}
	t.timer = time.AfterFunc(time.Hour, flush)
	t.timer.Stop()
	return t
}

// tx decides what becomes of a segment the host sends. hold means that the
// table took a reference to pkt and keeps it instead of it being sent now.
// drop, if set, is a held ACK that this segment makes redundant: the
// caller releases it unsent.
func (t *ackTable) tx(s *tcpSeg, pkt *stack.PacketBuffer, now int64) (hold bool, drop *stack.PacketBuffer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now >= t.nextSweep {
		t.sweep(now)
	}
	f := t.flows[s.key]
	if f == nil {
		// A flow is tracked from the first data the host sends on it:
		// a host that only receives (a bulk receiver) never holds an
		// ACK, and costs a lookup per frame.
		if s.payload == 0 || s.flags&(tcpSYN|tcpRST) != 0 || s.flags&tcpACK == 0 || t.closed {
			return false, nil
		}
		f = &ackFlow{lastAck: s.ack}
		t.flows[s.key] = f
	}
	f.active = now
	hadHeld := f.held != nil
	if hadHeld {
		// With ACK set, s acknowledges at least as much (netstack's
		// ack number never moves back) and its window is newer; an
		// RST or SYN means the connection it acknowledged is gone.
		drop = f.held
		f.held = nil
		t.merged.Add(1)
	}
	if s.flags&(tcpRST|tcpSYN) != 0 || s.flags&tcpACK == 0 {
		delete(t.flows, s.key)
		return false, drop
	}
	if !hadHeld && s.flags == tcpACK && s.payload == 0 && !s.sack && f.pingpong && !f.finTx &&
		f.unacked == 1 && seqAfter(s.ack, f.lastAck) && !t.closed {
		pkt.IncRef()
		f.held, f.heldAck, f.due = pkt, s.ack, now+f.holdFor(t.delay)
		t.held.Add(1)
		if !f.listed {
			f.listed = true
			t.list = append(t.list, f)
		}
		t.arm(f.due, now)
		return true, drop
	}
	f.lastAck = s.ack
	f.unacked = 0
	if m := now - f.lastRx; s.payload > 0 && f.lastRx != 0 && m <= t.delay {
		f.pingpong = true
		f.sample(m)
	}
	if s.flags&tcpFIN != 0 {
		f.finTx = true
		if f.finRx {
			delete(t.flows, s.key)
		}
	}
	return false, drop
}

// sample feeds the answer-time estimator with m, as RFC 6298 does RTTs.
func (f *ackFlow) sample(m int64) {
	if f.srtt == 0 {
		f.srtt, f.rttvar = m, m/2
		return
	}
	d := f.srtt - m
	if d < 0 {
		d = -d
	}
	f.rttvar += (d - f.rttvar) / 4
	f.srtt += (m - f.srtt) / 8
}

// holdFor is how long the flow's next pure ACK may be held.
func (f *ackFlow) holdFor(longest int64) int64 {
	return min(max(f.srtt+4*f.rttvar, int64(minAckDelay)), longest)
}

// rx notes a segment delivered to the host, before its stack sees it.
func (t *ackTable) rx(s *tcpSeg, now int64) {
	if s.payload == 0 && s.flags&(tcpFIN|tcpRST) == 0 {
		return // an ACK: nothing to acknowledge
	}
	key := s.key.reversed()
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.flows[key]
	if f == nil {
		return
	}
	f.active = now
	if s.flags&tcpRST != 0 {
		t.forget(key, f)
		return
	}
	f.unacked++
	f.lastRx = now
	if s.flags&tcpFIN != 0 {
		f.finRx = true
		if f.finTx {
			t.forget(key, f)
		}
	}
}

// forget drops flow f and the ACK it holds. Called with mu held.
func (t *ackTable) forget(key flowKey, f *ackFlow) {
	if f.held != nil {
		f.held.DecRef()
		f.held = nil
	}
	delete(t.flows, key)
}

// arm makes the timer fire at when, unless it fires earlier already.
// Called with mu held.
func (t *ackTable) arm(when, now int64) {
	if t.timerAt != 0 && t.timerAt <= when {
		return
	}
	t.timerAt = when
	t.timer.Reset(time.Duration(when - now))
}

// expired appends to out the held ACKs due by now, removing them from
// their flows (which leave interactive mode, as Linux's do when its
// delayed-ACK timer fires), and re-arms the timer for the others. The
// caller sends them, holding txMu, and releases them.
func (t *ackTable) expired(now int64, out []*stack.PacketBuffer) []*stack.PacketBuffer {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.timerAt = 0
	if t.closed {
		return out
	}
	kept := t.list[:0]
	var next int64
	for _, f := range t.list {
		if f.held == nil {
			f.listed = false
			continue
		}
		// Due within a tenth of a millisecond counts as due: the
		// timer is not finer than that, and a second wake-up costs more.
		if f.due-int64(100*time.Microsecond) > now {
			kept = append(kept, f)
			if next == 0 || f.due < next {
				next = f.due
			}
			continue
		}
		out = append(out, f.held)
		f.held, f.listed, f.pingpong = nil, false, false
		f.lastAck = f.heldAck
		f.unacked = max(f.unacked-1, 0)
		t.flushed.Add(1)
	}
	clear(t.list[len(kept):])
	t.list = kept
	if next != 0 {
		t.arm(next, now)
	}
	return out
}

// sweep forgets flows idle for ackIdleFlow. Called with mu held.
func (t *ackTable) sweep(now int64) {
	t.nextSweep = now + int64(ackSweepEvery)
	for k, f := range t.flows {
		if f.held == nil && now-f.active > int64(ackIdleFlow) {
			delete(t.flows, k)
		}
	}
	if len(t.flows) == 0 {
		t.flows = make(map[flowKey]*ackFlow) // a map never shrinks
	}
}

// close releases every held ACK, unsent, and stops the table.
func (t *ackTable) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	t.timer.Stop()
	t.timerAt = 0
	for k, f := range t.flows {
		t.forget(k, f)
	}
	clear(t.list)
	t.list = nil
}

// flushAcks is the timer's function: it sends the held ACKs that are due.
func (e *Endpoint) flushAcks() {
	inj := injections.Get().(*[]injection)
	e.txMu.Lock()
	pkts := e.acks.expired(nanotime(), nil)
	e.tx.noHold = true
	icmp := e.writeLocked(pkts, inj)
	e.tx.noHold = false
	e.txMu.Unlock()
	for _, p := range pkts {
		p.DecRef()
	}
	e.deliverInjections(inj)
	if len(icmp) > 0 {
		e.deliverLocal(icmp)
	}
}

// noteRx tells the ACK policy of a segment about to be delivered to the
// host; b holds its headers.
func (e *Endpoint) noteRx(b []byte) {
	if e.acks == nil {
		return
	}
	if s, ok := parseTCP(b); ok {
		e.acks.rx(&s, nanotime())
	}
}
