package broker

import (
	"bytes"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/swrap/swrap/wire"
)

// dgramDrops counts datagrams dropped because a program's receive queue was
// full (as a full socket buffer drops them on Linux); STATUS reports it.
var dgramDrops atomic.Uint64

// dgramSendDrops counts datagrams a program sent that the broker did not
// put on the network: a malformed header, a destination netstack refused,
// or a socket closed while its datagram waited for send buffer. The
// program's send had returned already, so only STATUS tells of them.
var dgramSendDrops atomic.Uint64

// badHeaderOnce says once per broker that a program sent a datagram
// without a valid header (a shim bypassed, or another version's).
var badHeaderOnce sync.Once

// zeroHeader reserves room for the header before netstack writes the payload.
var zeroHeader [wire.DgramHeaderSize]byte

// startDgram starts the two goroutines of a UDP or ICMP socket: one sends
// what the program writes, one delivers what arrives.
func (s *sock) startDgram() {
	s.b.wg.Add(1) // newSock added one for dgramOut
	go s.dgramOut()
	go s.dgramIn()
}

func (s *sock) dgramConnect(a wire.Addr) syscall.Errno {
	if a.Family == wire.AFUnspec {
		s.ep.Disconnect()
		s.mu.Lock()
		if s.state == wire.StateConnected {
			s.state = wire.StateBound
		}
		s.mu.Unlock()
		return 0
	}
	fa, en := s.toFull(a, true)
	if en != 0 {
		return en
	}
	if s.b.cfg.Plan.IsBroadcast(a.IP) && !s.ep.SocketOptions().GetBroadcast() {
		return syscall.EACCES // ip4_datagram_connect: a broadcast route needs SO_BROADCAST
	}
	if err := s.ep.Connect(fa); err != nil {
		return errno(err)
	}
	s.mu.Lock()
	s.state = wire.StateConnected
	s.preBind = nil // bound where it is: nothing to replay
	s.mu.Unlock()
	return 0
}

// dgramOut reads datagrams (header + payload) from the broker end and sends
// them. Errors that Linux reports synchronously (ENETUNREACH, EMSGSIZE,
// EACCES) are checked by the shim before the datagram gets here; whatever
// still fails is dropped, as an unreliable network would.
//
// Every read is a recvmmsg of up to dgramBatchLen datagrams, the first one
// too: a lone datagram costs one system call before it travels, a burst one
// per batch. The batch comes from a pool inside the read and goes back to
// it whenever nothing is queued, so an idle socket holds none.
func (s *sock) dgramOut() {
	defer s.b.wg.Done()
	defer s.close()
	entry, ch := waiter.NewChannelEntry(waiter.WritableEvents)
	s.wq.EventRegister(&entry)
	defer s.wq.EventUnregister(&entry)
	raw, err := s.conn.SyscallConn()
	if err != nil {
		return
	}
	var rd outReader
	rd.recv = rd.recvmmsg // one method value for the socket's life: no allocation per read
	for {
		if !rd.read(raw) {
			return // the program closed the socket (or it was closed)
		}
		ok := s.sendBatchOut(&rd, ch)
		dgramBatches.Put(rd.bt)
		rd.bt = nil
		if !ok {
			return
		}
		s.mu.Lock()
		if s.state == wire.StateNew {
			s.state = wire.StateBound // autobound by the send
			s.preBind = nil           // bound where it is: nothing to replay
		}
		s.mu.Unlock()
		// Let the datagrams travel before reading more: a program that
		// sends without pause keeps this loop runnable, and on the
		// broker's one or few Ps it would otherwise hold the CPU for a
		// whole scheduler slice while the qdisc and the receiver's
		// dgramIn wait, and netstack's queues overflow (TestUDPFlood: 80 %
		// lost without this, 0 % with).
		runtime.Gosched()
	}
}

const (
	dgramBufSize  = wire.DgramHeaderSize + 65536 // the largest datagram and its header
	dgramBatchLen = 8
)

// dgramBatch is the receive state of one recvmmsg.
type dgramBatch struct {
	hdrs [dgramBatchLen]unix.Mmsghdr
	iovs [dgramBatchLen]unix.Iovec
	bufs [dgramBatchLen][]byte
}

var dgramBatches = sync.Pool{New: func() any {
	b := new(dgramBatch)
	for i := range b.bufs {
		b.bufs[i] = make([]byte, dgramBufSize)
	}
	return b
}}

// outReader is dgramOut's receive state: the batch of the last read and
// what is reused from one datagram to the next.
type outReader struct {
	bt      *dgramBatch
	got     int
	en      unix.Errno
	recv    func(fd uintptr) bool
	payload bytes.Reader      // what netstack's Write reads the payload from
	to      tcpip.FullAddress // and the destination it is given
}

// read waits for datagrams on the broker end and receives what is queued,
// up to a batch, with one recvmmsg, into rd.bt (which the caller puts back
// in dgramBatches) and rd.got. It reports false once the end is closed.
func (rd *outReader) read(raw syscall.RawConn) bool {
	rd.bt, rd.got, rd.en = nil, 0, 0
	if err := raw.Read(rd.recv); err != nil || rd.en != 0 || rd.got <= 0 {
		if rd.bt != nil {
			dgramBatches.Put(rd.bt)
			rd.bt = nil
		}
		return false
	}
	return true
}

// recvmmsg is read's attempt on fd; false (nothing queued) makes raw.Read
// wait for the end to be readable and try again.
func (rd *outReader) recvmmsg(fd uintptr) bool {
	bt := dgramBatches.Get().(*dgramBatch)
	for i := range bt.hdrs {
		bt.iovs[i].Base = &bt.bufs[i][0]
		bt.iovs[i].SetLen(len(bt.bufs[i]))
		bt.hdrs[i] = unix.Mmsghdr{Hdr: unix.Msghdr{Iov: &bt.iovs[i]}}
		bt.hdrs[i].Hdr.SetIovlen(1)
	}
	for {
		// ECONNRESET is not the end: a program that closes its socket
		// with a datagram unread makes the kernel set it on this end,
		// and the first receive reports it (once) even though what the
		// program sent before the close is still queued behind it. On
		// Linux that close loses none of the datagrams sent: read on,
		// up to the end of file.
		rd.got, rd.en = recvmmsg(fd, bt.hdrs[:])
		if rd.en != unix.EINTR && rd.en != unix.ECONNRESET {
			break
		}
	}
	if rd.en == unix.EAGAIN {
		dgramBatches.Put(bt) // nothing queued: hold no batch while waiting
		rd.en = 0
		return false
	}
	rd.bt = bt
	return true
}

// sendBatchOut sends the datagrams of rd's batch. It reports false once
// the program has closed the socket (a message of length 0: end of file).
func (s *sock) sendBatchOut(rd *outReader, ch chan struct{}) bool {
	bt := rd.bt
	for i := 0; i < rd.got; i++ {
		n := int(bt.hdrs[i].Len)
		if n == 0 {
			if s.endOfFile(rd, i) {
				return false
			}
			if !s.bare.Load() {
				continue // a false end of file: no datagram has length 0 with its header
			}
		}
		if !s.sendDgram(bt.bufs[i][:n], ch, rd) {
			// Closed while this one waited: it and the rest of the
			// batch up to the end of file are not sent.
			for ; i < rd.got && bt.hdrs[i].Len > 0; i++ {
				dgramSendDrops.Add(1)
			}
			return false
		}
	}
	return true
}

// endOfFile tells whether the message of length 0 at rd's index i is the
// end of file: only if the program is done writing (it closed the socket,
// or shut its end) and nothing follows it, in the batch or in the queue.
//
// The kernel reports the end of file of a SOCK_SEQPACKET socket when its
// queue is empty and its peer has shut down, and it looks at the two
// separately (unix_dgram_recvmsg): between the looks, the program can
// queue its last datagrams and close. The read then says "end of file"
// with datagrams still to come, in the same recvmmsg or in the queue; on
// a broker with several Ps, 1 run in 40-60 of TestUDPRebindKeepsSent lost
// a socket's last one or two so. Once the program has closed, nothing
// more is queued, so the queue's length then tells for sure.
//
// With headers a false end of file is skipped (no datagram has length 0).
// A bare app end carries an empty datagram as an empty record, which reads
// like the end of file: an empty datagram sent right before the close is
// taken for the end, the one thing lost.
func (s *sock) endOfFile(rd *outReader, i int) bool {
	for _, h := range rd.bt.hdrs[i+1 : rd.got] {
		if h.Len > 0 {
			return false
		}
	}
	raw, err := s.conn.SyscallConn()
	if err != nil {
		return true
	}
	eof := true
	raw.Control(func(fd uintptr) {
		shut, queued := peerFinished(int(fd))
		eof = shut && !queued
	})
	return eof
}

// peerFinished looks at a SOCK_SEQPACKET end whose read gave 0 bytes: has
// the peer shut down (it closed, or shut its sending side), and is what it
// sent before that still queued? Shut down with nothing queued, the 0 was
// the end of file (endOfFile, endOfConn).
func peerFinished(fd int) (shut, queued bool) {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}}
	if n, _ := unix.Poll(pfd, 0); n <= 0 || pfd[0].Revents&(unix.POLLHUP|unix.POLLRDHUP) == 0 {
		return false, false
	}
	q, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	return true, err == nil && q > 0
}

// sendDgram sends one datagram the program wrote (header + payload),
// waiting while netstack's send buffer is full. It reports false once the
// socket is closed. rd lends the reader and address netstack is given
// (as locals they would be allocated for each datagram).
func (s *sock) sendDgram(msg []byte, ch chan struct{}, rd *outReader) bool {
	var d wire.Dgram
	payload := msg // bare: to the connected peer
	if !s.bare.Load() {
		var perr error
		if d, payload, perr = wire.ParseDgram(msg); perr != nil {
			dgramSendDrops.Add(1)
			badHeaderOnce.Do(func() {
				s.b.log.Warn("datagram without a valid header dropped (further ones are counted in STATUS: dgram_send_drops)", "sock", s.id, "err", perr)
			})
			return true
		}
	}
	var opts tcpip.WriteOptions
	if d.Peer.Family != wire.AFUnspec {
		fa, en := s.toFull(d.Peer, true)
		if en != 0 {
			dgramSendDrops.Add(1)
			s.b.log.Debug("datagram dropped", "sock", s.id, "to", d.Peer, "err", en)
			return true
		}
		rd.to = fa
		opts.To = &rd.to
	}
	r := &rd.payload
	for refused := 0; ; {
		r.Reset(payload)
		_, werr := s.endpoint().Write(r, opts)
		if _, ok := werr.(*tcpip.ErrWouldBlock); ok {
			if !s.waitEvent(ch) {
				return false // counted by sendBatchOut
			}
			continue
		}
		if _, ok := werr.(*tcpip.ErrConnectionRefused); ok && refused < maxRefusedRetries {
			// An earlier datagram's ICMP port unreachable, which
			// netstack keeps for the first Read or Write: this write
			// took it and sent nothing. The program's send has
			// returned already, so its next receive reports the
			// error (as dgramIn does with those it reads; the ones
			// taken by the retries are the same error, one slot on
			// Linux), and the datagram goes. Each retry takes one
			// more port unreachable that arrived meanwhile, one per
			// datagram still in flight.
			if refused == 0 {
				s.pendDgramError(werr)
			}
			refused++
			continue
		}
		if werr != nil {
			dgramSendDrops.Add(1)
			s.b.log.Debug("datagram dropped", "sock", s.id, "err", werr)
		}
		return true
	}
}

// maxRefusedRetries bounds sendDgram's retries of a write that took a port
// unreachable: each retry takes one more, and they come one per datagram in
// flight (a few hundred queued on the way at most).
const maxRefusedRetries = 1024

// pendDgramError queues an asynchronous error for the program, a record
// its next receive reports (as readDgrams queues those netstack's read
// returns). A bare app end has no room for it: dropped, as when the
// program's receive queue is full.
func (s *sock) pendDgramError(err tcpip.Error) {
	if s.bare.Load() {
		return
	}
	raw, cerr := s.conn.SyscallConn()
	if cerr != nil {
		return
	}
	rec := wire.AppendDgram(nil, wire.Dgram{Flags: wire.DgramError, IfIndex: uint32(errno(err))})
	raw.Control(func(fd uintptr) {
		for {
			if _, werr := unix.Write(int(fd), rec); werr != unix.EINTR {
				return
			}
		}
	})
}

// dgramIn delivers each datagram netstack receives to the program, with a
// header naming its source and the address it was sent to.
//
// It takes what netstack has queued, up to dgramInBatchLen datagrams, and
// hands them to the program with one sendmmsg: per datagram, a system call
// and (as the program wakes once per batch) a wake-up of the program are
// the costs that matter, not the copy.
func (s *sock) dgramIn() {
	defer s.b.wg.Done()
	entry, ch := waiter.NewChannelEntry(waiter.ReadableEvents | waiter.EventErr)
	s.wq.EventRegister(&entry)
	defer s.wq.EventUnregister(&entry)
	raw, err := s.conn.SyscallConn()
	if err != nil {
		return
	}
	var w inWriter
	w.send = w.sendmmsg // one method value for the socket's life: no allocation per batch
	for {
		bt := inBatches.Get().(*inBatch)
		n, next := s.readDgrams(bt)
		ok := n == 0 || w.sendBatch(raw, bt, n)
		inBatches.Put(bt)
		if !ok {
			return
		}
		switch next {
		case readWait:
			if !s.waitEvent(ch) {
				return
			}
		case readDone:
			return
		}
	}
}

// dgramInBatchLen bounds the datagrams of one sendmmsg to the program.
const dgramInBatchLen = 16

// inBatch holds the datagrams of one sendmmsg, each a header and the
// payload; its buffers keep their size across uses.
type inBatch struct {
	bufs [dgramInBatchLen]bytes.Buffer
	hdrs [dgramInBatchLen]unix.Mmsghdr
	iovs [dgramInBatchLen]unix.Iovec
}

var inBatches = sync.Pool{New: func() any { return new(inBatch) }}

// What dgramIn does after a batch.
const (
	readMore = iota // the batch is full: read on
	readWait        // netstack has nothing more: wait for it
	readDone        // the endpoint is closed
)

// readDgrams reads what netstack has queued into bt, up to a full batch, and
// returns how many messages it holds and what to do next.
func (s *sock) readDgrams(bt *inBatch) (int, int) {
	n := 0
	for n < dgramInBatchLen {
		buf := &bt.bufs[n]
		buf.Reset()
		buf.Write(zeroHeader[:])
		ep := s.endpoint() // bind may move the socket to another host's
		res, terr := ep.Read(buf, tcpip.ReadOptions{NeedRemoteAddr: true})
		if _, ok := terr.(*tcpip.ErrWouldBlock); ok {
			return n, readWait
		}
		if terr != nil {
			if _, ok := terr.(*tcpip.ErrClosedForReceive); ok {
				if ep != s.endpoint() {
					continue // the endpoint a bind replaced
				}
				return n, readDone
			}
			// An asynchronous error (ECONNREFUSED from an ICMP port
			// unreachable): the program's next receive reports it.
			// A bare app end cannot say it: dropped.
			if s.bare.Load() {
				continue
			}
			buf.Reset()
			buf.Write(wire.AppendDgram(buf.AvailableBuffer(), wire.Dgram{Flags: wire.DgramError, IfIndex: uint32(errno(terr))}))
			n++
			continue
		}
		var d wire.Dgram
		ip, _ := netip.AddrFromSlice(res.RemoteAddr.Addr.AsSlice())
		d.Peer = s.wireAddr(netip.AddrPortFrom(ip, res.RemoteAddr.Port))
		cm := res.ControlMessages
		switch {
		case cm.HasIPPacketInfo:
			local, _ := netip.AddrFromSlice(cm.PacketInfo.DestinationAddr.AsSlice())
			d.Local = s.wireAddr(netip.AddrPortFrom(local, 0))
			d.IfIndex = uint32(cm.PacketInfo.NIC)
		case cm.HasIPv6PacketInfo:
			local, _ := netip.AddrFromSlice(cm.IPv6PacketInfo.Addr.AsSlice())
			d.Local = s.wireAddr(netip.AddrPortFrom(local, 0))
			d.IfIndex = uint32(cm.IPv6PacketInfo.NIC)
		}
		wire.AppendDgram(buf.Bytes()[:0], d)
		if s.bare.Load() {
			buf.Next(wire.DgramHeaderSize) // the payload alone
		}
		n++
	}
	return n, readMore
}

// inWriter is dgramIn's send state, kept across batches.
type inWriter struct {
	hdrs []unix.Mmsghdr // what is left to send of the batch
	sent int
	en   unix.Errno
	send func(fd uintptr) bool
}

// sendmmsg is one sendmmsg of what is left, for raw.Write.
func (w *inWriter) sendmmsg(fd uintptr) bool {
	w.sent, w.en = sendmmsg(fd, w.hdrs)
	return true
}

// sendBatch queues the first n messages of bt on the app end without
// waiting: the messages that find the receive queue full are dropped (and
// counted), as a full socket buffer drops them. It reports false once the
// program has closed the socket.
func (w *inWriter) sendBatch(raw syscall.RawConn, bt *inBatch, n int) bool {
	for i := 0; i < n; i++ {
		b := bt.bufs[i].Bytes()
		bt.iovs[i].Base = nil // an empty datagram of a bare app end
		if len(b) > 0 {
			bt.iovs[i].Base = &b[0]
		}
		bt.iovs[i].SetLen(len(b))
		bt.hdrs[i] = unix.Mmsghdr{Hdr: unix.Msghdr{Iov: &bt.iovs[i]}}
		bt.hdrs[i].Hdr.SetIovlen(1)
	}
	defer func() { w.hdrs = nil }()
	for i := 0; i < n; {
		w.hdrs = bt.hdrs[i:n]
		if raw.Write(w.send) != nil {
			return false // the broker end is closed
		}
		switch w.en {
		case 0:
			i += max(w.sent, 1) // sendmmsg sends at least one or fails
		case unix.EINTR:
		case unix.EAGAIN, unix.ENOBUFS:
			// The queue is full: so it is for the rest of the batch,
			// a moment later. Dropping them all here saves a system
			// call per datagram lost while the program falls behind.
			dgramDrops.Add(uint64(n - i))
			return true
		default:
			return false
		}
	}
	return true
}

// wireAddr converts an address for this socket's family (an AF_INET6
// socket sees IPv4 peers as v4-mapped addresses).
func (s *sock) wireAddr(ap netip.AddrPort) wire.Addr {
	a := wire.AddrFrom(ap)
	if s.family == unix.AF_INET6 {
		a.Family = wire.AFInet6
		a.IP = mapped(ap.Addr())
	}
	return a
}

// mapped returns a as a 16-byte address (v4-mapped for IPv4).
func mapped(a netip.Addr) netip.Addr {
	if !a.IsValid() {
		return netip.IPv6Unspecified()
	}
	return netip.AddrFrom16(a.As16())
}
