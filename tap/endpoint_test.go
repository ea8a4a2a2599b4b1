package tap

import (
	"bytes"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// recorder is a stack.NetworkDispatcher that keeps copies of what it gets.
type recorder struct {
	mu    sync.Mutex
	pkts  [][]byte
	proto []tcpip.NetworkProtocolNumber
	got   chan struct{}
}

func newRecorder() *recorder { return &recorder{got: make(chan struct{}, 1000)} }

func (r *recorder) DeliverNetworkPacket(p tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	v := pkt.ToView()
	r.mu.Lock()
	r.pkts = append(r.pkts, bytes.Clone(v.AsSlice()))
	r.proto = append(r.proto, p)
	r.mu.Unlock()
	v.Release()
	r.got <- struct{}{}
}

func (r *recorder) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}

func (r *recorder) wait(t *testing.T, n int) [][]byte {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-r.got:
		case <-time.After(2 * time.Second):
			t.Fatalf("got %d packets, want %d", i, n)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pkts
}

// ipv4Packet returns a UDP-less IPv4 packet (protocol 253, experimental)
// from src to dst with payload n bytes, as a netstack packet buffer whose
// header and payload are separate views, as netstack builds them.
func ipv4Packet(dst [4]byte, n int) *stack.PacketBuffer {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		ReserveHeaderBytes: header.IPv4MinimumSize,
		Payload:            buffer.MakeWithData(bytes.Repeat([]byte{0xab}, n)),
	})
	ip := header.IPv4(pkt.NetworkHeader().Push(header.IPv4MinimumSize))
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(header.IPv4MinimumSize + n),
		TTL:         64,
		Protocol:    253,
		SrcAddr:     tcpip.AddrFrom4([4]byte{127, 0, 0, 1}),
		DstAddr:     tcpip.AddrFrom4(dst),
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	return pkt
}

// pair returns endpoint a and a Port reaching endpoint b's socket.
type testNet struct {
	a, b     *Endpoint
	ra, rb   *recorder
	portB    *Port
	verdict  Verdict
	captured [][]byte
	mu       sync.Mutex
}

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	dir := t.TempDir()
	n := &testNet{ra: newRecorder(), rb: newRecorder()}
	listen := func(name string) *net.UnixConn {
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, name), Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca, cb := listen("a"), listen("b")
	tx, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: filepath.Join(dir, "b"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	if n.portB, err = NewPort(tx); err != nil {
		t.Fatal(err)
	}
	route := func(dst netip.Addr, ports []*Port) ([]*Port, Verdict) {
		if n.verdict == Deliver {
			ports = append(ports, n.portB)
		}
		return ports, n.verdict
	}
	capture := func(ts time.Time, parts [][]byte) {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		n.mu.Lock()
		n.captured = append(n.captured, b)
		n.mu.Unlock()
	}
	mk := func(c *net.UnixConn, d stack.NetworkDispatcher) *Endpoint {
		e, err := New(Config{Conn: c, MTU: 65535, Route: route, Capture: capture,
			ICMPSource4: netip.MustParseAddr("127.0.0.254"), ICMPSource6: netip.MustParseAddr("fd00::5357:5ffe")})
		if err != nil {
			t.Fatal(err)
		}
		e.Attach(d)
		return e
	}
	n.a, n.b = mk(ca, n.ra), mk(cb, n.rb)
	t.Cleanup(func() {
		n.a.Attach(nil)
		n.b.Attach(nil)
		n.a.Wait()
		n.b.Wait()
		n.a.Close()
		n.b.Close()
		n.portB.Close()
	})
	return n
}

func list(pkts ...*stack.PacketBuffer) stack.PacketBufferList {
	var l stack.PacketBufferList
	for _, p := range pkts {
		l.PushBack(p)
	}
	return l
}

func TestDeliver(t *testing.T) {
	writeTwo(t, newTestNet(t))
}

// writeTwo sends a small and a big frame from a to b on n.portB and checks
// that b's stack got them, the capture saw them and the counters add up.
func writeTwo(t *testing.T, n *testNet) {
	t.Helper()
	small, big := ipv4Packet([4]byte{127, 0, 0, 2}, 10), ipv4Packet([4]byte{127, 0, 0, 2}, 60000)
	want := [][]byte{bytes.Clone(small.ToView().AsSlice()), bytes.Clone(big.ToView().AsSlice())}
	l := list(small, big)
	if c, err := n.a.WritePackets(l); c != 2 || err != nil {
		t.Fatalf("WritePackets = %d, %v", c, err)
	}
	l.Reset()
	got := n.rb.wait(t, 2)
	for i := range want {
		if !bytes.Equal(got[i], want[i]) || n.rb.proto[i] != header.IPv4ProtocolNumber {
			t.Errorf("packet %d differs", i)
		}
		if !bytes.Equal(n.captured[i], want[i]) {
			t.Errorf("capture %d differs", i)
		}
	}
	size := uint64(len(want[0]) + len(want[1]))
	if s := n.a.Stats(); s.TxFrames != 2 || s.TxBytes != size || s.Dropped != 0 {
		t.Errorf("a: %+v", s)
	}
	if s := n.b.Stats(); s.RxFrames != 2 || s.RxBytes != size || s.Dropped != 0 {
		t.Errorf("b: %+v", s)
	}
}

func TestNoHost(t *testing.T) {
	n := newTestNet(t)
	n.verdict = NoHost
	pkt := ipv4Packet([4]byte{127, 0, 0, 99}, 100)
	orig := bytes.Clone(pkt.ToView().AsSlice())
	l := list(pkt)
	n.a.WritePackets(l)
	l.Reset()
	got := n.ra.wait(t, 1)[0] // the sender hears the error
	ip := header.IPv4(got)
	if !ip.IsChecksumValid() || ip.SourceAddress() != tcpip.AddrFrom4([4]byte{127, 0, 0, 254}) || ip.DestinationAddress() != tcpip.AddrFrom4([4]byte{127, 0, 0, 1}) {
		t.Errorf("ICMP IP header %x", got[:20])
	}
	icmp := header.ICMPv4(ip.Payload())
	if icmp.Type() != header.ICMPv4DstUnreachable || icmp.Code() != header.ICMPv4HostUnreachable || checksum.Checksum(icmp, 0) != 0xffff {
		t.Errorf("ICMP %x", icmp[:8])
	}
	if !bytes.Equal(icmp.Payload(), orig) {
		t.Errorf("quote differs")
	}
	if s := n.a.Stats(); s.Unreachable != 1 || s.TxFrames != 0 {
		t.Errorf("%+v", s)
	}
	if len(n.captured) != 1 || !bytes.Equal(n.captured[0], got) {
		t.Errorf("capture: %d frames", len(n.captured))
	}
}

func TestDrop(t *testing.T) {
	n := newTestNet(t)
	n.verdict = Drop
	l := list(ipv4Packet([4]byte{192, 0, 2, 1}, 10))
	n.a.WritePackets(l)
	l.Reset()
	if s := n.a.Stats(); s.Dropped != 1 || s.TxFrames != 0 || len(n.captured) != 0 {
		t.Errorf("%+v", s)
	}
}

// txAllocs sends 16 packets from a to n.portB 202 times (one warm-up, 200
// measured, one more by AllocsPerRun) and returns the allocations per send.
func txAllocs(n *testNet) float64 {
	var l stack.PacketBufferList
	for i := 0; i < 16; i++ {
		l.PushBack(ipv4Packet([4]byte{127, 0, 0, 2}, 1400))
	}
	defer l.Reset()
	n.a.WritePackets(l)
	return testing.AllocsPerRun(200, func() { n.a.WritePackets(l) })
}

func TestTxAllocs(t *testing.T) {
	n := newTestNet(t)
	n.a.cfg.Capture = func(time.Time, [][]byte) {}
	// Send to a plain socket drained without allocating, so that only the
	// TX path is measured (AllocsPerRun counts every goroutine).
	sink, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "sink"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, err := sink.Read(buf); err != nil {
				return
			}
		}
	}()
	tx, err := net.DialUnix("unixgram", nil, sink.LocalAddr().(*net.UnixAddr))
	if err != nil {
		t.Fatal(err)
	}
	port, _ := NewPort(tx)
	defer port.Close()
	n.portB = port
	if allocs := txAllocs(n); allocs != 0 {
		t.Errorf("WritePackets of 16 packets: %v allocations", allocs)
	}
	if s := n.a.Stats(); s.Dropped != 0 || s.TxFrames != 16*202 {
		t.Errorf("%+v", s)
	}
}

func TestLocalPort(t *testing.T) {
	n := newTestNet(t)
	n.portB = LocalPort(n.b)
	writeTwo(t, n) // delivered on the sender's goroutine
	frame := bytes.Clone(n.captured[0])

	// Shapers send single frames (copied) through the same Port.
	if err := n.portB.Send(frame); err != nil {
		t.Fatal(err)
	}
	if got := n.rb.wait(t, 1); !bytes.Equal(got[2], frame) {
		t.Error("Send: frame differs")
	}

	// Once b's RX is stopped (its host closing), frames are turned away
	// and counted, never handed to a stack being torn down.
	n.b.StopRX()
	l := list(ipv4Packet([4]byte{127, 0, 0, 2}, 10))
	n.a.WritePackets(l)
	l.Reset()
	n.portB.Send(frame)
	if s := n.b.Stats(); s.RxFrames != 3 || s.Dropped != 2 {
		t.Errorf("b after StopRX: %+v", s)
	}
	n.rb.mu.Lock()
	defer n.rb.mu.Unlock()
	if len(n.rb.pkts) != 3 {
		t.Errorf("b's stack got %d frames after StopRX", len(n.rb.pkts)-3)
	}
}

func TestLocalPortStopWaits(t *testing.T) {
	// StopRX must not return while another host's goroutine is inside b's
	// stack: netstack's Close would then race with that delivery.
	n := newTestNet(t)
	n.portB = LocalPort(n.b)
	block := make(chan struct{})
	entered := make(chan struct{})
	n.b.mu.Lock()
	n.b.dispatcher = dispatchFunc(func() { close(entered); <-block })
	n.b.mu.Unlock()
	go func() {
		l := list(ipv4Packet([4]byte{127, 0, 0, 2}, 10))
		n.a.WritePackets(l)
		l.Reset()
	}()
	<-entered
	stopped := make(chan struct{})
	go func() { n.b.StopRX(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("StopRX returned during a delivery")
	case <-time.After(50 * time.Millisecond):
	}
	close(block)
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		t.Fatal("StopRX did not return after the delivery ended")
	}
}

// dispatchFunc is a stack.NetworkDispatcher that calls itself per packet.
type dispatchFunc func()

func (f dispatchFunc) DeliverNetworkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) { f() }
func (dispatchFunc) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer)      {}

func TestLocalTxAllocs(t *testing.T) {
	// The in-memory path shares the frame's buffers and takes the
	// receiver's packet buffer from netstack's pool: nothing allocated.
	n := newTestNet(t)
	n.a.cfg.Capture = func(time.Time, [][]byte) {} // the test's own allocates
	n.portB = LocalPort(n.b)
	n.b.mu.Lock()
	n.b.dispatcher = dispatchFunc(func() {})
	n.b.mu.Unlock()
	if allocs := txAllocs(n); allocs != 0 {
		t.Errorf("WritePackets of 16 packets in memory: %v allocations", allocs)
	}
	if s := n.b.Stats(); s.RxFrames != 16*202 || s.Dropped != 0 {
		t.Errorf("%+v", s)
	}
}

func TestCapabilities(t *testing.T) {
	need := false
	for _, c := range []struct {
		trust, need bool
		hook        bool
		want        stack.LinkEndpointCapabilities
	}{
		{trust: false, hook: false, want: 0},
		{trust: false, hook: true, need: false, want: 0}, // receivers verify: always compute
		{trust: true, hook: false, want: stack.CapabilityRXChecksumOffload},
		{trust: true, hook: true, need: true, want: stack.CapabilityRXChecksumOffload},
		{trust: true, hook: true, need: false, want: stack.CapabilityRXChecksumOffload | stack.CapabilityTXChecksumOffload},
	} {
		e := &Endpoint{cfg: Config{TrustChecksums: c.trust}}
		if c.hook {
			e.cfg.NeedChecksums = func() bool { return need }
		}
		need = c.need
		if got := e.Capabilities(); got != c.want {
			t.Errorf("trust=%v hook=%v need=%v: capabilities %#x, want %#x", c.trust, c.hook, c.need, got, c.want)
		}
	}
}
