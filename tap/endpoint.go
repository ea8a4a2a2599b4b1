package tap

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Verdict is what the route function decides for a frame.
type Verdict uint8

const (
	// Deliver sends the frame on the ports the route function returned
	// (none is fine: a broadcast nobody else hears is still sent).
	Deliver Verdict = iota
	// NoHost means the destination is in the network but no host has it:
	// the endpoint answers the sender with ICMP destination unreachable.
	NoHost
	// Drop discards the frame and counts it in Stats.Dropped.
	Drop
)

// RouteFunc decides where a frame to dst goes. It appends the ports to
// send it on to ports and returns the result, as append does, so that the
// endpoint can reuse one slice and routing allocates nothing. It is called
// on the TX path, serialized per endpoint, and must not block.
type RouteFunc func(dst netip.Addr, ports []*Port) ([]*Port, Verdict)

// CaptureFunc is handed each frame that crosses the fabric, as the slices
// that make it up. The slices are only valid during the call.
type CaptureFunc func(ts time.Time, parts [][]byte)

// Config configures an Endpoint.
type Config struct {
	// Conn is the host's receive socket, bound, unix datagram. The
	// endpoint owns it and closes it when detached or closed.
	Conn *net.UnixConn
	// MTU is the largest IP packet, and the receive buffer size.
	MTU uint32
	// Route decides where each transmitted frame goes. Required.
	Route RouteFunc
	// Capture, if set, sees every frame this endpoint puts on the fabric,
	// once, at TX time, and every ICMP error it makes up.
	Capture CaptureFunc
	// ICMPSource4 and ICMPSource6 are the addresses the ICMP destination
	// unreachable errors come from, as if from a router. They must not be
	// the host's own address: netstack drops packets from its own address
	// arriving on a NIC when HandleLocal is on.
	ICMPSource4, ICMPSource6 netip.Addr
	// TrustChecksums skips checksum verification on RX (netstack is told
	// the link validated them: CapabilityRXChecksumOffload). That is safe when
	// every frame on the fabric comes from one of our own stacks, which
	// compute checksums on TX; turn it off if something may corrupt frames.
	TrustChecksums bool
	// NeedChecksums, if set, is asked per packet whether frames must carry
	// transport checksums; while it answers false, and receivers trust
	// checksums, netstack leaves them out (CapabilityTXChecksumOffload).
	// It must answer true whenever a frame may be captured, so that every
	// captured frame is valid. Unset means always.
	NeedChecksums func() bool
	// AckDelay, if positive, turns on the ACK policy (see ack.go): in an
	// interactive TCP connection, a pure ACK of one segment is held up to
	// this long, and dropped if the next segment of the connection (the
	// answer, usually) carries it, as Linux's delayed ACK does. Zero sends
	// every frame as netstack makes it.
	AckDelay time.Duration
}

// Stats are an endpoint's counters.
type Stats struct {
	TxFrames, TxBytes uint64 // frames put on the fabric (a broadcast counts once)
	RxFrames, RxBytes uint64 // frames received and delivered to netstack
	Unreachable       uint64 // frames for which no host exists (answered with ICMP)
	Dropped           uint64 // frames lost: no route, send failed, bad or truncated RX
	// The ACK policy (Config.AckDelay): pure ACKs held, held ACKs dropped
	// because a later segment carried them, and held ACKs the timer sent.
	AcksHeld, AcksMerged, AcksFlushed uint64
}

const (
	// maxTxBatch is the most packets sent in one sendmmsg; larger
	// WritePackets batches are sent in several rounds. It is above the fifo
	// qdisc's batch of 47.
	maxTxBatch = 64
	// maxTxIovs bounds the buffer views of one round.
	maxTxIovs = 1024
	// rxBufferBudget bounds the receive buffers per endpoint: an idle host
	// pins its whole receive batch, so with a 64 KiB MTU it gets 4.
	rxBufferBudget = 256 << 10
	maxRxBatch     = 32
	// copyBelow is the size under which a received frame is copied into a
	// right-sized view, so that a 64 KiB buffer is not pinned by an ACK
	// that sits in a socket's queue.
	copyBelow = 1024
)

var _ stack.LinkEndpoint = (*Endpoint)(nil)

// Endpoint is a host's NIC on the fabric. Create it with New and hand it to
// stack.CreateNICWithOptions; netstack calls the LinkEndpoint methods.
type Endpoint struct {
	cfg   Config
	rxRaw syscall.RawConn
	mtu   atomic.Uint32

	txFrames, txBytes, rxFrames, rxBytes, unreachable, dropped atomic.Uint64

	mu sync.RWMutex
	// dispatcher is the stack's NIC, set by Attach; guarded by mu.
	dispatcher stack.NetworkDispatcher
	// onClose is run by Close; guarded by mu.
	onClose func()

	txMu sync.Mutex
	// tx is the TX batch state; guarded by txMu, which serializes
	// WritePackets.
	tx txState

	// rx is owned by the RX goroutine.
	rx rxState

	// acks is the ACK policy's state, nil when it is off.
	acks *ackTable

	// injecting counts deliveries in progress from other hosts' LocalPorts;
	// rxStopped, once set, turns new ones away (StopRX).
	injecting atomic.Int64
	rxStopped atomic.Bool

	started   bool // the RX goroutine was started; set in Attach under mu
	stopOnce  sync.Once
	closeOnce sync.Once
	wg        sync.WaitGroup // the RX goroutine
}

// txState is the TX state that outlives a round; guarded by txMu.
type txState struct {
	icmp []*localPacket
	// probe and one serve writeDirect: the routing check's ports and the
	// single packet of its round.
	probe []*Port
	one   [1]*stack.PacketBuffer
	// noHold is set while held ACKs are being sent: they are not held
	// again.
	noHold bool
}

// txBatch holds the arrays of one TX round (about 48 KiB), so that TX
// does not allocate per packet. A round takes one from txBatches and gives
// it back cleared: an idle host holds none (bench/PROFILE.md, "Footprint").
type txBatch struct {
	hdrs  [maxTxBatch]unix.Mmsghdr
	iovs  [maxTxIovs]unix.Iovec
	parts [maxTxIovs][]byte // the same slices as iovs, for the capture hook
	pkts  [maxTxBatch]txPacket
	ports []*Port // flat list of every packet's ports; see txPacket
	snd   sender
}

var txBatches = sync.Pool{New: func() any {
	b := &txBatch{ports: make([]*Port, 0, maxTxBatch)}
	b.snd.writeFn = b.snd.write
	return b
}}

// injection is a frame for a host in this process (LocalPort), taken out
// of a TX round and delivered once txMu is released.
type injection struct {
	dst   *Endpoint
	proto tcpip.NetworkProtocolNumber
	pkt   *stack.PacketBuffer
	size  int
}

// injections are per-call batches of them, pooled so that TX does not
// allocate: the batch cannot live in txState, which txMu guards, as it is
// delivered after txMu is released.
var injections = sync.Pool{New: func() any { s := make([]injection, 0, maxTxBatch); return &s }}

// txPacket is one packet of a round: its views are parts[iov:iov+niov] and
// its destinations ports[p0:p1].
type txPacket struct {
	pkt       *stack.PacketBuffer
	iov, niov int
	p0, p1    int
	size      int
}

// rxState holds the receive batch: hdrs[i] reads into views[i].
type rxState struct {
	hdrs   []unix.Mmsghdr
	iovs   []unix.Iovec
	views  []*buffer.View
	n      int // datagrams received by the last recvmmsg
	readFn func(fd uintptr) bool
}

// New returns an endpoint for cfg. The RX goroutine starts when netstack
// attaches the endpoint.
func New(cfg Config) (*Endpoint, error) {
	if cfg.Conn == nil || cfg.Route == nil {
		return nil, errors.New("tap: Config.Conn and Config.Route are required")
	}
	if cfg.MTU < header.IPv6MinimumMTU || cfg.MTU > 65535 {
		return nil, errors.New("tap: MTU must be 1280..65535")
	}
	raw, err := cfg.Conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	e := &Endpoint{cfg: cfg, rxRaw: raw}
	e.mtu.Store(cfg.MTU)
	e.tx.probe = make([]*Port, 0, 4)

	n := min(max(rxBufferBudget/int(cfg.MTU), 1), maxRxBatch)
	e.rx.hdrs = make([]unix.Mmsghdr, n)
	e.rx.iovs = make([]unix.Iovec, n)
	e.rx.views = make([]*buffer.View, n)
	e.rx.readFn = e.rx.read
	if cfg.AckDelay > 0 {
		e.acks = newAckTable(cfg.AckDelay, e.flushAcks)
	}
	return e, nil
}

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() Stats {
	s := Stats{
		TxFrames: e.txFrames.Load(), TxBytes: e.txBytes.Load(),
		RxFrames: e.rxFrames.Load(), RxBytes: e.rxBytes.Load(),
		Unreachable: e.unreachable.Load(), Dropped: e.dropped.Load(),
	}
	if a := e.acks; a != nil {
		s.AcksHeld, s.AcksMerged, s.AcksFlushed = a.held.Load(), a.merged.Load(), a.flushed.Load()
	}
	return s
}

// MTU implements stack.LinkEndpoint.MTU.
func (e *Endpoint) MTU() uint32 { return e.mtu.Load() }

// SetMTU implements stack.LinkEndpoint.SetMTU. The receive buffers keep the
// size given to New, so a larger MTU than that would truncate frames; it is
// capped there.
func (e *Endpoint) SetMTU(mtu uint32) { e.mtu.Store(min(mtu, e.cfg.MTU)) }

// MaxHeaderLength implements stack.LinkEndpoint: there is no link header.
func (*Endpoint) MaxHeaderLength() uint16 { return 0 }

// LinkAddress implements stack.LinkEndpoint: the fabric routes by IP
// address, so there is no link address.
func (*Endpoint) LinkAddress() tcpip.LinkAddress { return "" }

// SetLinkAddress implements stack.LinkEndpoint; it is ignored.
func (*Endpoint) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities implements stack.LinkEndpoint; netstack asks it for every
// packet. RX checksum verification is skipped when every frame comes from
// one of our stacks (TrustChecksums), and TX checksums are left out while
// that holds and nobody captures (NeedChecksums): a checksum costs a pass
// over every byte, and only a capture reads it. There is no link-address
// resolution.
func (e *Endpoint) Capabilities() stack.LinkEndpointCapabilities {
	if !e.cfg.TrustChecksums {
		return 0
	}
	if e.cfg.NeedChecksums != nil && !e.cfg.NeedChecksums() {
		return stack.CapabilityRXChecksumOffload | stack.CapabilityTXChecksumOffload
	}
	return stack.CapabilityRXChecksumOffload
}

// ARPHardwareType implements stack.LinkEndpoint.
func (*Endpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }

// AddHeader implements stack.LinkEndpoint: there is no link header.
func (*Endpoint) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.LinkEndpoint: there is no link header.
func (*Endpoint) ParseHeader(*stack.PacketBuffer) bool { return true }

// IsAttached implements stack.LinkEndpoint.
func (e *Endpoint) IsAttached() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.dispatcher != nil
}

// Attach implements stack.LinkEndpoint. The first attach starts the RX
// goroutine; attaching nil (netstack removing the NIC, as Stack.Wait does
// before calling Wait) stops it by closing the receive socket, since
// Stack.Wait calls Wait before Close.
func (e *Endpoint) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	e.dispatcher = d
	start := d != nil && !e.started
	if start {
		e.started = true
		e.wg.Add(1)
	}
	e.mu.Unlock()
	if start {
		go e.rxLoop()
	}
	if d == nil {
		e.stop()
	}
}

// stop closes the receive socket, which ends the RX goroutine.
func (e *Endpoint) stop() {
	e.stopOnce.Do(func() { e.cfg.Conn.Close() })
}

// StopRX stops the RX goroutine and waits for it. A host closes its link
// this way before it closes its stack: netstack's Stack.Wait waits for the
// link while holding the stack's lock, which a packet being delivered may
// need (a reply's route lookup), so the RX goroutine must be gone first.
func (e *Endpoint) StopRX() {
	e.rxStopped.Store(true)
	if e.acks != nil {
		e.acks.close() // the host is going: its held ACKs with it
	}
	e.stop()
	e.wg.Wait()
	// Frames other hosts hand over in memory (LocalPort) are delivered by
	// the sender's goroutine: wait for those under way. New ones see
	// rxStopped and are dropped.
	for e.injecting.Load() != 0 {
		time.Sleep(50 * time.Microsecond)
	}
}

// Wait implements stack.LinkEndpoint: it waits for the RX goroutine, which
// must have been stopped by Attach(nil) or Close.
func (e *Endpoint) Wait() { e.wg.Wait() }

// Close implements stack.LinkEndpoint: it closes the receive socket and
// waits for the RX goroutine. The Ports are the fabric's and stay open.
func (e *Endpoint) Close() {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		f := e.onClose
		e.onClose = nil
		e.mu.Unlock()
		if f != nil {
			f()
		}
		if e.acks != nil {
			e.acks.close()
		}
		e.stop()
		e.wg.Wait()
	})
}

// SetOnCloseAction implements stack.LinkEndpoint.
func (e *Endpoint) SetOnCloseAction(f func()) {
	e.mu.Lock()
	e.onClose = f
	e.mu.Unlock()
}

// WritePackets implements stack.LinkWriter. It must be called from a
// goroutine that holds no netstack lock, which is why the stack package
// always installs the endpoint's QDisc and netstack calls it from the
// fifo's goroutine (QDisc.WritePacket sends the frames that are safe to
// send at once itself, see there): frames for socket Ports block while a destination is full
// (back-pressure), which must not stall RX and ACK processing; and frames
// for LocalPorts and made-up ICMP errors are delivered on this goroutine,
// where the receiver's processing (and a host's own, for ICMP errors) may
// take locks that the netstack code transmitting would hold.
func (e *Endpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	inj := injections.Get().(*[]injection)
	e.txMu.Lock()
	icmp := e.writeLocked(pkts.AsSlice(), inj)
	e.txMu.Unlock()

	// Frames for hosts in this process and ICMP errors are delivered
	// outside txMu: delivering can make netstack transmit (a reply, an
	// RST), which must not find txMu held by its own goroutine, nor by a
	// host that is delivering to this one at the same time.
	e.deliverInjections(inj)
	if len(icmp) > 0 {
		e.deliverLocal(icmp)
	}
	return pkts.Len(), nil
}

// writeLocked sends all, appending the frames for hosts of this process
// to inj, and returns the ICMP errors made up for the host's own stack.
// Called with txMu held.
func (e *Endpoint) writeLocked(all []*stack.PacketBuffer, inj *[]injection) []*localPacket {
	for len(all) > 0 {
		n := e.txRound(all, inj)
		all = all[n:]
	}
	var icmp []*localPacket
	if len(e.tx.icmp) > 0 {
		icmp = e.tx.icmp
		e.tx.icmp = nil
	}
	return icmp
}

// deliverInjections hands the frames of a TX round to the hosts of this
// process they are for, then returns inj to its pool. Called without txMu.
func (e *Endpoint) deliverInjections(inj *[]injection) {
	for i := range *inj {
		in := &(*inj)[i]
		in.dst.inject(in.proto, in.pkt, in.size)
		in.pkt.DecRef()
		*in = injection{}
	}
	*inj = (*inj)[:0]
	injections.Put(inj)
}

// txRound routes, captures and sends as many of pkts as fit in the batch
// arrays and returns how many it consumed. Called with txMu held.
func (e *Endpoint) txRound(pkts []*stack.PacketBuffer, inj *[]injection) int {
	tx := txBatches.Get().(*txBatch)
	tx.ports = tx.ports[:0]
	consumed, n, nIov := 0, 0, 0
	var now int64 // for the ACK policy, read once per round
	for _, pkt := range pkts {
		if n == maxTxBatch {
			break
		}
		// Gather the packet's views without AsSlices, which allocates.
		views, off := pkt.AsViewList()
		first, size, full := nIov, 0, false
		for v := views.Front(); v != nil; v = v.Next() {
			b := v.AsSlice()
			if off >= len(b) {
				off -= len(b)
				continue
			}
			b, off = b[off:], 0
			if len(b) == 0 {
				continue
			}
			if nIov == maxTxIovs {
				full = true
				break
			}
			tx.parts[nIov] = b
			tx.iovs[nIov].Base = &b[0]
			tx.iovs[nIov].SetLen(len(b))
			nIov++
			size += len(b)
		}
		if full {
			nIov = first
			if n > 0 {
				break // out of iovecs: the packet goes in the next round
			}
			// One packet of over maxTxIovs views: nothing sane makes one.
			e.dropped.Add(1)
			consumed++
			continue
		}
		consumed++
		if size == 0 {
			e.dropped.Add(1)
			continue
		}
		if e.acks != nil && !e.tx.noHold {
			if s, ok := parseTCP(tx.parts[first]); ok {
				if now == 0 {
					now = nanotime()
				}
				hold, drop := e.acks.tx(&s, pkt, now)
				if drop != nil {
					drop.DecRef()
				}
				if hold {
					clear(tx.parts[first:nIov])
					clear(tx.iovs[first:nIov])
					nIov = first
					continue
				}
			}
		}
		p := &tx.pkts[n]
		*p = txPacket{pkt: pkt, iov: first, niov: nIov - first, size: size, p0: len(tx.ports)}
		n++
		e.route(tx, p, tx.parts[first:nIov])
		p.p1 = len(tx.ports)
	}
	e.sendRound(tx, n, inj)
	clear(tx.pkts[:n])
	clear(tx.parts[:nIov])
	clear(tx.iovs[:nIov])
	clear(tx.ports)
	txBatches.Put(tx)
	return max(consumed, 1)
}

// route asks the route function where the packet goes, appending its ports
// to tx.ports; it captures delivered frames and turns NoHost into an ICMP
// error queued on e.tx.icmp.
func (e *Endpoint) route(tx *txBatch, p *txPacket, parts [][]byte) {
	dst, ok := destination(parts[0])
	if !ok {
		e.dropped.Add(1)
		return
	}
	var v Verdict
	before := len(tx.ports)
	tx.ports, v = e.cfg.Route(dst, tx.ports)
	switch v {
	case Deliver:
		e.txFrames.Add(1)
		e.txBytes.Add(uint64(p.size))
		// Shaped ports take their frame now; they capture it themselves
		// when it crosses (or never, if they drop it).
		kept, diverted := before, false
		for _, port := range tx.ports[before:] {
			if port.shaper != nil {
				port.shaper.Divert(port, parts)
				diverted = true
				continue
			}
			tx.ports[kept] = port
			kept++
		}
		if diverted {
			clear(tx.ports[kept:])
			tx.ports = tx.ports[:kept]
		}
		if e.cfg.Capture != nil && (!diverted || kept > before) {
			e.cfg.Capture(time.Now(), parts)
		}
	case NoHost:
		tx.ports = tx.ports[:before]
		e.unreachable.Add(1)
		if lp := e.unreachablePacket(parts); lp != nil {
			e.tx.icmp = append(e.tx.icmp, lp)
		}
	default:
		tx.ports = tx.ports[:before]
		e.dropped.Add(1)
	}
}

// sendRound sends the first n packets of tx.pkts. Runs of consecutive
// packets to the same single port go in one sendmmsg; a packet with several
// ports (broadcast) is sent to each in turn. Packets for a LocalPort are
// appended to inj, sharing the packet's buffers (netstack treats received
// data as read-only, as its own loopback and pipe links rely on).
func (e *Endpoint) sendRound(tx *txBatch, n int, inj *[]injection) {
	for i := 0; i < n; i++ {
		p := &tx.pkts[i]
		for k, port := range tx.ports[p.p0:p.p1] {
			if port.local == nil {
				continue
			}
			*inj = append(*inj, injection{
				dst:   port.local,
				proto: protocolOf(tx.parts[p.iov]),
				pkt:   stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: p.pkt.ToBuffer()}),
				size:  p.size,
			})
			tx.ports[p.p0+k] = nil
		}
	}
	for i := 0; i < n; i++ {
		p := &tx.pkts[i]
		h := &tx.hdrs[i]
		h.Hdr = unix.Msghdr{Iov: &tx.iovs[p.iov]}
		h.Hdr.SetIovlen(p.niov)
		h.Len = 0
	}
	for i := 0; i < n; {
		p := &tx.pkts[i]
		switch p.p1 - p.p0 {
		case 0:
			i++
		case 1:
			port := tx.ports[p.p0]
			if port == nil { // handed over in memory
				i++
				continue
			}
			j := i + 1
			for j < n && tx.pkts[j].p1-tx.pkts[j].p0 == 1 && tx.ports[tx.pkts[j].p0] == port {
				j++
			}
			if lost := tx.snd.send(port, tx.hdrs[i:j]); lost > 0 {
				e.dropped.Add(uint64(lost))
			}
			i = j
		default:
			for _, port := range tx.ports[p.p0:p.p1] {
				if port == nil {
					continue
				}
				if lost := tx.snd.send(port, tx.hdrs[i:i+1]); lost > 0 {
					e.dropped.Add(uint64(lost))
				}
			}
			i++
		}
	}
	for i := 0; i < n; i++ {
		tx.hdrs[i].Hdr.Iov = nil
	}
}

// destination returns the destination address of the IP packet that starts
// with b (the first view holds all of netstack's headers).
func destination(b []byte) (netip.Addr, bool) {
	if len(b) == 0 {
		return netip.Addr{}, false
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) >= header.IPv4MinimumSize {
			return netip.AddrFrom4([4]byte(b[16:20])), true
		}
	case 6:
		if len(b) >= header.IPv6MinimumSize {
			return netip.AddrFrom16([16]byte(b[24:40])), true
		}
	}
	return netip.Addr{}, false
}

// deliverLocal hands packets made up by the endpoint to netstack as if
// received, and releases them.
func (e *Endpoint) deliverLocal(pkts []*localPacket) {
	e.mu.RLock()
	d := e.dispatcher
	e.mu.RUnlock()
	for _, lp := range pkts {
		if d != nil {
			d.DeliverNetworkPacket(lp.pkt.NetworkProtocolNumber, lp.pkt)
			if lp.v6 != nil {
				lp.v6.deliver(d)
			}
		}
		lp.pkt.DecRef()
	}
}

// inject delivers a frame another host of this process handed over in
// memory (LocalPort) to netstack, as if received, on the sender's
// goroutine. The caller keeps its reference to pkt.
func (e *Endpoint) inject(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer, size int) {
	e.injecting.Add(1)
	defer e.injecting.Add(-1)
	e.mu.RLock()
	d := e.dispatcher
	e.mu.RUnlock()
	if e.rxStopped.Load() || d == nil || proto == 0 {
		e.dropped.Add(1)
		return
	}
	e.rxFrames.Add(1)
	e.rxBytes.Add(uint64(size))
	e.noteRx(firstView(pkt))
	d.DeliverNetworkPacket(proto, pkt)
}

// protocolOf returns the network protocol of the IP packet in b, 0 if none.
func protocolOf(b []byte) tcpip.NetworkProtocolNumber {
	if len(b) > 0 {
		switch b[0] >> 4 {
		case 4:
			return header.IPv4ProtocolNumber
		case 6:
			return header.IPv6ProtocolNumber
		}
	}
	return 0
}

// rxLoop is the RX goroutine: it receives batches of datagrams and delivers
// them to netstack until the receive socket is closed.
func (e *Endpoint) rxLoop() {
	defer e.wg.Done()
	rx := &e.rx
	// The receive buffers (rxBufferBudget) are made when the first frame
	// is queued, not before: with the in-memory fabric no frame ever
	// comes this way, and 64 hosts kept 16 MiB of them.
	if err := e.rxRaw.Read(pending); err != nil {
		return
	}
	bufSize := int(e.cfg.MTU)
	for i := range rx.hdrs {
		rx.views[i] = buffer.NewViewSize(bufSize)
	}
	defer func() {
		for i, v := range rx.views {
			v.Release()
			rx.views[i] = nil
		}
		clear(rx.iovs)
		clear(rx.hdrs)
	}()
	for {
		for i := range rx.hdrs {
			b := rx.views[i].AsSlice()
			rx.iovs[i].Base = &b[0]
			rx.iovs[i].SetLen(len(b))
			rx.hdrs[i] = unix.Mmsghdr{Hdr: unix.Msghdr{Iov: &rx.iovs[i]}}
			rx.hdrs[i].Hdr.SetIovlen(1)
		}
		rx.n = 0
		if err := e.rxRaw.Read(rx.readFn); err != nil {
			return
		}
		e.mu.RLock()
		d := e.dispatcher
		e.mu.RUnlock()
		for i := 0; i < rx.n; i++ {
			e.deliver(d, i)
		}
	}
}

// pending is a RawConn.Read callback that consumes nothing: true once a
// datagram is queued (or the socket fails: the next read reports it).
func pending(fd uintptr) bool {
	for {
		_, _, err := unix.Recvfrom(int(fd), nil, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if err != unix.EINTR {
			return err != unix.EAGAIN
		}
	}
}

// read is the RawConn.Read callback: false means wait for data.
func (rx *rxState) read(fd uintptr) bool {
	for {
		n, errno := recvmmsg(fd, rx.hdrs)
		switch errno {
		case 0:
			rx.n = n
			return true
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			// Unexpected on a bound unix datagram socket; report nothing
			// received and try again.
			rx.n = 0
			return true
		}
	}
}

// deliver hands received datagram i to netstack and refills its slot.
func (e *Endpoint) deliver(d stack.NetworkDispatcher, i int) {
	rx := &e.rx
	n := int(rx.hdrs[i].Len)
	if rx.hdrs[i].Hdr.Flags&unix.MSG_TRUNC != 0 || n == 0 || d == nil {
		e.dropped.Add(1)
		return
	}
	v := rx.views[i]
	var proto tcpip.NetworkProtocolNumber
	switch v.AsSlice()[0] >> 4 {
	case 4:
		proto = header.IPv4ProtocolNumber
	case 6:
		proto = header.IPv6ProtocolNumber
	default:
		e.dropped.Add(1)
		return
	}
	if n < copyBelow && n*4 < v.Size() {
		v = buffer.NewViewWithData(v.AsSlice()[:n])
	} else {
		v.CapLength(n)
		rx.views[i] = buffer.NewViewSize(int(e.cfg.MTU))
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(v)})
	e.rxFrames.Add(1)
	e.rxBytes.Add(uint64(n))
	e.noteRx(v.AsSlice())
	d.DeliverNetworkPacket(proto, pkt)
	pkt.DecRef()
}
