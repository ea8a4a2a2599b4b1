package tap

import (
	"bytes"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// seg describes a TCP segment of the test connection 127.0.0.1:1000 (the
// endpoint's host) <-> 127.0.0.2:2000.
type seg struct {
	flags    uint8
	seq, ack uint32
	n        int  // payload bytes
	sack     bool // with a SACK block
}

// tcpFrame builds seg as a netstack packet buffer, headers and payload in
// separate views; in reverses the direction (the peer sends it).
func tcpFrame(s seg, in bool) *stack.PacketBuffer {
	src, dst := [4]byte{127, 0, 0, 1}, [4]byte{127, 0, 0, 2}
	sport, dport := uint16(1000), uint16(2000)
	if in {
		src, dst, sport, dport = dst, src, dport, sport
	}
	var opts []byte
	if s.sack {
		opts = []byte{1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2}
	}
	tcpLen := header.TCPMinimumSize + len(opts)
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		ReserveHeaderBytes: header.IPv4MinimumSize + tcpLen,
		Payload:            buffer.MakeWithData(bytes.Repeat([]byte{'x'}, s.n)),
	})
	t := header.TCP(pkt.TransportHeader().Push(tcpLen))
	t.Encode(&header.TCPFields{SrcPort: sport, DstPort: dport, SeqNum: s.seq, AckNum: s.ack,
		DataOffset: uint8(tcpLen), Flags: header.TCPFlags(s.flags), WindowSize: 65535})
	copy(t[header.TCPMinimumSize:], opts)
	ip := header.IPv4(pkt.NetworkHeader().Push(header.IPv4MinimumSize))
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(header.IPv4MinimumSize + tcpLen + s.n), TTL: 64,
		Protocol: uint8(header.TCPProtocolNumber), SrcAddr: tcpip.AddrFrom4(src), DstAddr: tcpip.AddrFrom4(dst)})
	pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	return pkt
}

// ackNet is a testNet whose endpoint a has the ACK policy on, with the
// longest hold d.
type ackNet struct {
	*testNet
	t *testing.T
}

func newAckNet(t *testing.T, d time.Duration) *ackNet {
	n := newTestNet(t)
	n.a.acks = newAckTable(d, n.a.flushAcks)
	t.Cleanup(n.a.acks.close)
	return &ackNet{n, t}
}

// send has a's stack send s.
func (n *ackNet) send(s seg) {
	pkt := tcpFrame(s, false)
	l := list(pkt)
	n.a.WritePackets(l)
	l.Reset() // releases pkt
}

// recv tells a's ACK policy that s arrived from the peer (as delivery
// does before the stack sees it).
func (n *ackNet) recv(s seg) {
	pkt := tcpFrame(s, true)
	n.a.noteRx(pkt.ToView().AsSlice())
	pkt.DecRef()
}

// wire returns the segments a put on the fabric so far, as captured.
func (n *ackNet) wire() []tcpSeg {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []tcpSeg
	for _, b := range n.captured {
		s, ok := parseTCP(b)
		if !ok {
			n.t.Fatalf("captured frame is not TCP: %x", b)
		}
		out = append(out, s)
	}
	return out
}

// pureAcks returns the ack numbers of the pure ACKs on the fabric.
func (n *ackNet) pureAcks() []uint32 {
	var acks []uint32
	for _, s := range n.wire() {
		if s.flags == tcpACK && s.payload == 0 {
			acks = append(acks, s.ack)
		}
	}
	return acks
}

// interactive makes the connection interactive: the host answered a
// request at once. The peer's data starts at 5000, the host's at 100.
// It returns the peer's next sequence number.
func (n *ackNet) interactive() uint32 {
	n.send(seg{flags: tcpACK | 0x08, seq: 100, ack: 5000, n: 10}) // the host speaks first
	n.recv(seg{flags: tcpACK | 0x08, seq: 5000, ack: 110, n: 10}) // a request
	n.send(seg{flags: tcpACK, seq: 110, ack: 5010})               // netstack's ACK: not yet interactive, sent
	n.send(seg{flags: tcpACK | 0x08, seq: 110, ack: 5010, n: 10}) // the answer, in time
	if got := n.a.Stats(); got.AcksHeld != 0 || got.TxFrames != 3 {
		n.t.Fatalf("before the connection is interactive: %+v", got)
	}
	return 5010
}

// TestAckPiggybacked: in an interactive connection, the ACK of a request
// is held and the answer carries it: the ACK never reaches the fabric nor
// the capture.
func TestAckPiggybacked(t *testing.T) {
	n := newAckNet(t, time.Second)
	seq := n.interactive()
	for i := uint32(0); i < 3; i++ {
		n.recv(seg{flags: tcpACK | 0x08, seq: seq, ack: 120 + 10*i, n: 10})
		seq += 10
		n.send(seg{flags: tcpACK, seq: 120 + 10*i, ack: seq}) // held
		n.send(seg{flags: tcpACK | 0x08, seq: 120 + 10*i, ack: seq, n: 10})
	}
	st := n.a.Stats()
	if st.AcksHeld != 3 || st.AcksMerged != 3 || st.AcksFlushed != 0 || st.TxFrames != 6 {
		t.Errorf("stats %+v, want 3 ACKs held and merged, 6 frames sent", st)
	}
	if acks := n.pureAcks(); len(acks) != 1 || acks[0] != 5010 {
		t.Errorf("pure ACKs on the fabric: %v, want only the first one (5010)", acks)
	}
	if got := len(n.rb.wait(t, 6)); got != 6 {
		t.Errorf("peer got %d frames", got)
	}
}

// TestAckEverySecond: a second pure ACK while one is held goes at once,
// in place of the first; an ACK of two segments is never held.
func TestAckEverySecond(t *testing.T) {
	n := newAckNet(t, time.Second)
	seq := n.interactive()
	n.recv(seg{flags: tcpACK, seq: seq, ack: 120, n: 10})
	n.send(seg{flags: tcpACK, seq: 120, ack: seq + 10}) // held
	n.recv(seg{flags: tcpACK, seq: seq + 10, ack: 120, n: 10})
	n.send(seg{flags: tcpACK, seq: 120, ack: seq + 20}) // sent, the first dropped
	n.recv(seg{flags: tcpACK, seq: seq + 20, ack: 120, n: 10})
	n.recv(seg{flags: tcpACK, seq: seq + 30, ack: 120, n: 10})
	n.send(seg{flags: tcpACK, seq: 120, ack: seq + 40}) // two segments: sent
	if acks := n.pureAcks(); len(acks) != 3 || acks[1] != seq+20 || acks[2] != seq+40 {
		t.Errorf("pure ACKs on the fabric: %v, want [5010 %d %d]", acks, seq+20, seq+40)
	}
	if st := n.a.Stats(); st.AcksHeld != 1 || st.AcksMerged != 1 {
		t.Errorf("stats %+v, want 1 ACK held and dropped", st)
	}
}

// TestAckNeverHeld: the segments the policy must send at once even in an
// interactive connection: a duplicate ACK, an ACK with SACK blocks, a FIN,
// an RST, every ACK after the host's FIN; and in a connection that is not
// interactive, every ACK.
func TestAckNeverHeld(t *testing.T) {
	cases := []struct {
		name string
		run  func(n *ackNet, seq uint32)
	}{
		{"duplicate ACK", func(n *ackNet, seq uint32) {
			n.recv(seg{flags: tcpACK, seq: seq + 10, ack: 120, n: 10}) // out of order
			n.send(seg{flags: tcpACK, seq: 120, ack: seq})             // same ack as the last sent
		}},
		{"SACK", func(n *ackNet, seq uint32) {
			n.recv(seg{flags: tcpACK, seq: seq, ack: 120, n: 10})
			n.send(seg{flags: tcpACK, seq: 120, ack: seq + 10, sack: true})
		}},
		{"FIN", func(n *ackNet, seq uint32) {
			n.recv(seg{flags: tcpACK, seq: seq, ack: 120, n: 10})
			n.send(seg{flags: tcpACK | tcpFIN, seq: 120, ack: seq + 10})
		}},
		{"RST", func(n *ackNet, seq uint32) {
			n.recv(seg{flags: tcpACK, seq: seq, ack: 120, n: 10})
			n.send(seg{flags: tcpACK | tcpRST, seq: 120, ack: seq + 10})
		}},
		{"after our FIN", func(n *ackNet, seq uint32) {
			n.send(seg{flags: tcpACK | tcpFIN, seq: 120, ack: seq})
			n.recv(seg{flags: tcpACK, seq: seq, ack: 121, n: 10})
			n.send(seg{flags: tcpACK, seq: 121, ack: seq + 10})
		}},
		{"window update", func(n *ackNet, seq uint32) {
			n.recv(seg{flags: tcpACK, seq: seq, ack: 120, n: 10})
			n.send(seg{flags: tcpACK, seq: 120, ack: seq + 10}) // held
			n.send(seg{flags: tcpACK, seq: 120, ack: seq + 10}) // the window opened: sent at once
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := newAckNet(t, time.Second)
			seq := n.interactive()
			before := n.a.Stats().TxFrames
			c.run(n, seq)
			st := n.a.Stats()
			// "window update" holds the first ACK and drops it for the
			// second; nothing else is ever held.
			if held := st.AcksHeld - st.AcksMerged - st.AcksFlushed; held != 0 {
				t.Errorf("stats %+v: an ACK is still held", st)
			}
			want := 1
			if c.name == "after our FIN" {
				want = 2
			}
			if got := len(n.wire()) - int(before); got != want {
				t.Errorf("%d segments on the fabric, want %d", got, want)
			}
		})
	}

	t.Run("not interactive", func(t *testing.T) {
		n := newAckNet(t, time.Second)
		// A bulk receiver: it never sends data, so nothing is tracked.
		for i := uint32(0); i < 4; i++ {
			n.recv(seg{flags: tcpACK, seq: 5000 + 100*i, ack: 100, n: 100})
			n.send(seg{flags: tcpACK, seq: 100, ack: 5100 + 100*i})
		}
		// A host that answers late (beyond the longest hold) does not
		// make the connection interactive either.
		m := newAckNet(t, time.Millisecond)
		m.send(seg{flags: tcpACK, seq: 100, ack: 5000, n: 10})
		m.recv(seg{flags: tcpACK, seq: 5000, ack: 110, n: 10})
		m.send(seg{flags: tcpACK, seq: 110, ack: 5010})
		time.Sleep(5 * time.Millisecond)
		m.send(seg{flags: tcpACK, seq: 110, ack: 5010, n: 10})
		m.recv(seg{flags: tcpACK, seq: 5010, ack: 120, n: 10})
		m.send(seg{flags: tcpACK, seq: 120, ack: 5020})
		if st := n.a.Stats(); st.AcksHeld != 0 || st.TxFrames != 4 {
			t.Errorf("bulk receiver: %+v", st)
		}
		if st := m.a.Stats(); st.AcksHeld != 0 || st.TxFrames != 4 {
			t.Errorf("late answers: %+v", st)
		}
	})
}

// TestAckTimer: a held ACK that no answer carries is sent by the timer, the
// connection's usual answer time later (at least a millisecond), captured
// once; the connection then sends its ACKs at once until it answers in
// time again. A held ACK of a connection that is reset is dropped.
func TestAckTimer(t *testing.T) {
	n := newAckNet(t, time.Second)
	seq := n.interactive()
	n.recv(seg{flags: tcpACK, seq: seq, ack: 120, n: 10})
	start := time.Now()
	n.send(seg{flags: tcpACK, seq: 120, ack: seq + 10}) // held
	if acks := n.pureAcks(); len(acks) != 1 {
		t.Fatalf("the held ACK is on the fabric already: %v", acks)
	}
	n.rb.wait(t, 4)
	elapsed := time.Since(start)
	if acks := n.pureAcks(); len(acks) != 2 || acks[1] != seq+10 {
		t.Fatalf("pure ACKs on the fabric: %v, want the held one sent by the timer", acks)
	}
	// The answer took microseconds: the hold is the 1 ms floor, far
	// from the 1 s ceiling.
	if elapsed < time.Millisecond || elapsed > 500*time.Millisecond {
		t.Errorf("the timer sent the ACK after %v, want 1 ms or a little more", elapsed)
	}
	if st := n.a.Stats(); st.AcksHeld != 1 || st.AcksFlushed != 1 || st.AcksMerged != 0 || st.TxFrames != 4 {
		t.Errorf("stats %+v", st)
	}
	// Quick mode now: the next ACK goes at once.
	n.recv(seg{flags: tcpACK, seq: seq + 10, ack: 120, n: 10})
	n.send(seg{flags: tcpACK, seq: 120, ack: seq + 20})
	if acks := n.pureAcks(); len(acks) != 3 {
		t.Errorf("after the timer, the next ACK was held: %v", acks)
	}
	// Interactive again after an answer in time; an RST from the peer
	// drops the ACK then held.
	n.send(seg{flags: tcpACK | 0x08, seq: 120, ack: seq + 20, n: 10})
	n.recv(seg{flags: tcpACK, seq: seq + 20, ack: 130, n: 10})
	n.send(seg{flags: tcpACK, seq: 130, ack: seq + 30}) // held
	n.recv(seg{flags: tcpACK | tcpRST, seq: seq + 30, ack: 130})
	time.Sleep(20 * time.Millisecond)
	if st := n.a.Stats(); st.AcksHeld != 2 || st.AcksFlushed != 1 || st.TxFrames != 6 {
		t.Errorf("after the RST: %+v, want the second held ACK dropped", st)
	}
	if len(n.a.acks.flows) != 0 {
		t.Errorf("%d flows still tracked after the RST", len(n.a.acks.flows))
	}
}

// TestAckFlowsForgotten: a FIN each way ends a flow's state.
func TestAckFlowsForgotten(t *testing.T) {
	n := newAckNet(t, time.Second)
	seq := n.interactive()
	n.recv(seg{flags: tcpACK | tcpFIN, seq: seq, ack: 120})
	n.send(seg{flags: tcpACK, seq: 120, ack: seq + 1})                // the ACK of the FIN: held
	n.send(seg{flags: tcpACK | tcpFIN, seq: 120, ack: seq + 1, n: 0}) // our FIN carries it
	if st := n.a.Stats(); st.AcksHeld != 1 || st.AcksMerged != 1 {
		t.Errorf("stats %+v, want the ACK of the FIN carried by ours", st)
	}
	if len(n.a.acks.flows) != 0 {
		t.Errorf("%d flows tracked after a FIN each way", len(n.a.acks.flows))
	}
}

func TestParseTCP(t *testing.T) {
	pkt := tcpFrame(seg{flags: tcpACK, seq: 1, ack: 77, n: 5, sack: true}, false)
	defer pkt.DecRef()
	s, ok := parseTCP(pkt.ToView().AsSlice())
	if !ok || s.flags != tcpACK || s.ack != 77 || s.payload != 5 || !s.sack ||
		s.key.lport != 1000 || s.key.rport != 2000 || s.key.local[15] != 1 || s.key.remote[15] != 2 {
		t.Errorf("parseTCP = %+v, %v", s, ok)
	}
	// IPv6: the same segment, addresses kept whole.
	b := make([]byte, header.IPv6MinimumSize+header.TCPMinimumSize+3)
	ip6 := header.IPv6(b)
	ip6.Encode(&header.IPv6Fields{PayloadLength: header.TCPMinimumSize + 3, TransportProtocol: header.TCPProtocolNumber,
		HopLimit: 64, SrcAddr: tcpip.AddrFrom16([16]byte{0xfd, 15: 10}), DstAddr: tcpip.AddrFrom16([16]byte{0xfd, 15: 11})})
	header.TCP(b[header.IPv6MinimumSize:]).Encode(&header.TCPFields{SrcPort: 7, DstPort: 8, AckNum: 9,
		DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck | header.TCPFlagFin})
	s, ok = parseTCP(b)
	if !ok || s.flags != tcpACK|tcpFIN || s.ack != 9 || s.payload != 3 || s.sack || s.key.lport != 7 ||
		s.key.local != [16]byte{0xfd, 15: 10} || s.key.remote != [16]byte{0xfd, 15: 11} {
		t.Errorf("parseTCP(IPv6) = %+v, %v", s, ok)
	}
	for _, b := range [][]byte{nil, {0x45}, ipv4Packet([4]byte{1, 2, 3, 4}, 10).ToView().AsSlice()} {
		if _, ok := parseTCP(b); ok {
			t.Errorf("parseTCP(%x) ok", b)
		}
	}
}
