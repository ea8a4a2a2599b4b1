package broker

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/swrap/swrap/wire"
)

// copyBufs holds the buffers that carry bytes from a program's unix socket
// into netstack. A buffer is held only while one read is being written on,
// not for the life of a connection, so idle connections cost none.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// connectTimeout bounds a connect nobody answers (netstack's own timeout is
// about 127 s, as Linux's; a program's SO_SNDTIMEO shortens a blocking one).
const connectTimeout = 130 * time.Second

// tcpConnect serves CONNECT on a TCP socket, following Linux's state
// machine (__inet_stream_connect): a blocking connect is answered when it is
// done; a non-blocking one gets EINPROGRESS, its outcome goes to SO_ERROR,
// and the next connect() call reports it (0 once, or the pending error).
// filler is the number of bytes the shim wrote to keep the app end
// unwritable until the outcome (docs/protocol.md, Filler).
func (s *sock) tcpConnect(a wire.Addr, nonblock bool, filler uint32) syscall.Errno {
	s.mu.Lock()
	if s.ssConnecting {
		switch s.state {
		case wire.StateConnecting:
			ch := s.connectCh
			s.mu.Unlock()
			if nonblock {
				return syscall.EALREADY
			}
			return s.waitConnect(ch, 0)
		case wire.StateConnected:
			s.ssConnecting = false
			s.mu.Unlock()
			return 0
		default: // the connect failed: report its error once
			s.ssConnecting = false
			e := s.soError
			s.soError = 0
			s.mu.Unlock()
			if e == 0 {
				e = syscall.ECONNABORTED
			}
			return e
		}
	}
	switch s.state {
	case wire.StateConnected, wire.StateListening:
		s.mu.Unlock()
		return syscall.EISCONN
	case wire.StateClosed:
		s.mu.Unlock()
		return syscall.EBADF
	}
	s.mu.Unlock()
	en := s.startConnect(a, nonblock, filler)
	if en != syscall.EINPROGRESS && filler > 0 {
		// Decided at once: let the reader discard the filler.
		s.mu.Lock()
		s.filler += filler
		s.mu.Unlock()
		s.wake()
	}
	return en
}

// startConnect begins a connect from an unconnected socket. The filler is
// counted in the same critical section that marks the socket connecting:
// the reader discards filler as soon as it sees some with the socket not
// connecting, and counted earlier, with the socket still unconnected, it
// made the app end writable while the connect was pending (a program
// polling for POLLOUT then called connect() again and got EALREADY).
func (s *sock) startConnect(a wire.Addr, nonblock bool, filler uint32) syscall.Errno {
	if a.Family == wire.AFUnspec {
		return 0 // Linux: AF_UNSPEC on an unconnected socket does nothing
	}
	if s.b.cfg.Plan.IsBroadcast(a.IP) || a.IP.Unmap().IsMulticast() {
		// tcp_v4_connect refuses a broadcast or multicast route,
		// tcp_v6_connect a multicast address: at once, nothing sent,
		// the socket still unconnected.
		return syscall.ENETUNREACH
	}
	if s.family == unix.AF_INET6 && a.Family == wire.AFInet {
		// socket_wrapper's quirk, which its users' tests expect: an
		// AF_INET6 socket connecting to an IPv4 address becomes IPv4.
		if en := s.becomeIPv4(); en != 0 {
			return en
		}
	}
	fa, en := s.toFull(a, true)
	if en != 0 {
		return en
	}
	if en := s.renewIfFailed(); en != 0 {
		return en
	}
	entry, ch := waiter.NewChannelEntry(waiter.WritableEvents)
	s.wq.EventRegister(&entry)
	err := s.ep.Connect(fa)
	if err == nil {
		s.wq.EventUnregister(&entry)
		s.connected()
		return 0
	}
	if _, started := err.(*tcpip.ErrConnectStarted); !started {
		s.wq.EventUnregister(&entry)
		s.mu.Lock()
		s.failed = true
		s.mu.Unlock()
		return errno(err)
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.state = wire.StateConnecting
	s.connectCh = done
	s.ssConnecting = true
	s.filler += filler
	timeo := s.sndTimeo
	s.mu.Unlock()
	goSession(func() { s.finishConnect(&entry, ch, done) })
	if nonblock {
		return syscall.EINPROGRESS
	}
	return s.waitConnect(done, timeo)
}

// renewIfFailed gives a socket whose connect failed a fresh endpoint:
// Linux lets a program connect such a socket again, a netstack endpoint
// cannot be reused. Options and the bound address carry over.
func (s *sock) renewIfFailed() syscall.Errno {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.failed {
		return 0
	}
	ep, en := s.newEndpointLocked(s.family)
	if en != 0 {
		return en
	}
	if s.bound.IsValid() {
		fa, en := s.toFull(wire.AddrFrom(s.bound), false)
		if en == 0 {
			if err := ep.Bind(fa); err != nil {
				ep.Close()
				return errno(err)
			}
		}
	}
	s.ep.Close()
	s.setEndpointLocked(ep, s.host.Load())
	s.failed = false
	return 0
}

// newEndpointLocked makes an endpoint of family on the socket's host, on the
// socket's waiter queue, with the options of the current one.
func (s *sock) newEndpointLocked(family int32) (tcpip.Endpoint, syscall.Errno) {
	tp, en := transportFor(family, s.typ, s.proto)
	if en != 0 {
		return nil, en
	}
	np := ipv4.ProtocolNumber
	if family == unix.AF_INET6 {
		np = ipv6.ProtocolNumber
	}
	ep, err := s.host.Load().Stack.NewEndpoint(tp, np, &s.wq)
	if err != nil {
		return nil, errno(err)
	}
	copyOptions(s.ep, ep)
	return ep, 0
}

// finishConnect waits for netstack to decide a connect and records the
// outcome: connected, or back to unconnected with the error pending.
func (s *sock) finishConnect(entry *waiter.Entry, ch chan struct{}, done chan struct{}) {
	defer close(done)
	defer s.wq.EventUnregister(entry)
	t := time.NewTimer(connectTimeout)
	defer t.Stop()
	for {
		select {
		case <-ch:
		case <-s.done:
			return
		case <-t.C:
			s.ep.Abort()
			s.connectFailed(syscall.ETIMEDOUT)
			return
		}
		if s.ep.Readiness(waiter.WritableEvents|waiter.EventErr|waiter.EventHUp) != 0 {
			break
		}
	}
	if err := s.ep.LastError(); err != nil {
		s.connectFailed(errno(err))
		return
	}
	if _, rerr := s.ep.GetRemoteAddress(); rerr != nil {
		s.connectFailed(syscall.ECONNREFUSED)
		return
	}
	s.connected()
}

func (s *sock) connectFailed(e syscall.Errno) {
	s.mu.Lock()
	s.state = wire.StateNew
	if s.bound.IsValid() {
		s.state = wire.StateBound
	}
	s.soError = e
	s.failed = true
	s.mu.Unlock()
	s.wake()
}

// waitConnect waits for a pending connect (at most timeo, if set) and
// returns its result as a blocking connect() would; the error is then no
// longer pending.
func (s *sock) waitConnect(done chan struct{}, timeo time.Duration) syscall.Errno {
	var tc <-chan time.Time
	if timeo > 0 {
		t := time.NewTimer(timeo)
		defer t.Stop()
		tc = t.C
	}
	select {
	case <-done:
	case <-s.done:
		return syscall.EBADF
	case <-tc:
		return syscall.EINPROGRESS
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ssConnecting = false
	if s.state == wire.StateConnected {
		return 0
	}
	e := s.soError
	s.soError = 0
	if e == 0 {
		e = syscall.ECONNABORTED
	}
	return e
}

// connected marks the socket connected and lets the reader start pumping.
func (s *sock) connected() {
	s.mu.Lock()
	s.state = wire.StateConnected
	s.preBind = nil // bound where it is: nothing to replay
	s.mu.Unlock()
	s.startIn()
	s.wake()
}

// becomeIPv4 replaces an unbound AF_INET6 endpoint by an AF_INET one.
func (s *sock) becomeIPv4() syscall.Errno {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != wire.StateNew {
		return syscall.EAFNOSUPPORT
	}
	ep, en := s.newEndpointLocked(unix.AF_INET)
	if en != 0 {
		return en
	}
	s.ep.Close()
	s.setEndpointLocked(ep, s.host.Load())
	s.family = unix.AF_INET
	return 0
}

// copyOptions carries the options a program may have set before the quirk
// swapped its endpoint.
func copyOptions(from, to tcpip.Endpoint) {
	f, t := from.SocketOptions(), to.SocketOptions()
	t.SetReuseAddress(f.GetReuseAddress())
	t.SetReusePort(f.GetReusePort())
	t.SetKeepAlive(f.GetKeepAlive())
	t.SetDelayOption(f.GetDelayOption())
	t.SetLinger(f.GetLinger())
	t.SetReceiveTTL(f.GetReceiveTTL())
	t.SetReceiveTOS(f.GetReceiveTOS())
	t.SetReceiveHopLimit(f.GetReceiveHopLimit())
}

func (s *sock) listen(backlog int) syscall.Errno {
	if s.typ != unix.SOCK_STREAM {
		return syscall.EOPNOTSUPP
	}
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	if st != wire.StateNew && st != wire.StateBound && st != wire.StateListening {
		return syscall.EINVAL
	}
	if backlog < 0 || backlog > 4096 {
		backlog = 4096
	}
	if err := s.ep.Listen(backlog); err != nil {
		return errno(err)
	}
	s.mu.Lock()
	s.backlog = backlog
	s.mu.Unlock()
	if st == wire.StateListening {
		return 0
	}
	s.mu.Lock()
	s.state = wire.StateListening
	s.preBind = nil // bound where it is: nothing to replay
	s.mu.Unlock()
	s.b.wg.Add(1)
	go s.acceptLoop()
	return 0
}

// acceptLoop hands each connection netstack accepts to the program: a new
// socket pair, whose app end goes to the listener's app end with an
// accept record. The listener's unix buffer is the accept queue.
func (s *sock) acceptLoop() {
	defer s.b.wg.Done()
	entry, ch := waiter.NewChannelEntry(waiter.ReadableEvents)
	s.wq.EventRegister(&entry)
	defer s.wq.EventUnregister(&entry)
	for {
		var peer tcpip.FullAddress
		nep, nwq, err := s.ep.Accept(&peer)
		if _, ok := err.(*tcpip.ErrWouldBlock); ok {
			if !s.waitEvent(ch) {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		if !s.handOver(nep, nwq) {
			nep.Close()
			return
		}
	}
}

// handOver makes the session of an accepted connection and sends its app
// end to the listener's program.
func (s *sock) handOver(nep tcpip.Endpoint, nwq *waiter.Queue) bool {
	ns := &sock{b: s.b, family: s.family, typ: s.typ, proto: s.proto, pid: s.pid,
		done: make(chan struct{}), released: make(chan struct{}), state: wire.StateConnected}
	ns.host.Store(s.host.Load()) // the listener's host, which may not be its program's
	ns.ep = nep
	// The accepted endpoint notifies its own queue; forward to ours.
	ns.wqForward(nwq)
	ns.initEndpoint()
	// netstack propagates some options to accepted endpoints; Linux
	// copies every socket option of the listener.
	copyOptions(s.ep, nep)
	if en := s.b.register(ns); en != 0 {
		return true // out of sockets: drop this connection, keep listening
	}
	appFD, conn, err := s.b.pair(unix.SOCK_STREAM, ns.id, &ns.name)
	if err != nil {
		s.b.unregister(ns)
		return true
	}
	ns.conn = conn
	peer, _ := ns.remoteAddr()
	s.inheritPktOptions(ns, peer)
	rec := wire.Accept{Sock: ns.id, Peer: wire.AddrFrom(peer)}
	if s.family == unix.AF_INET6 {
		rec.Peer.Family = wire.AFInet6
		rec.Peer.IP = mapped(peer.Addr())
	}
	werr := sendWithFD(s.conn, rec.Encode(), appFD)
	unix.Close(appFD)
	if werr != nil {
		ns.close()
		return false
	}
	s.b.wg.Add(1)
	goSession(ns.tcpReader)
	ns.startIn()
	return true
}

// sendWithFD sends msg with fd attached (SCM_RIGHTS) on the broker end of
// a socket, waiting in the netpoller while the program's queue is full.
func sendWithFD(f *os.File, msg []byte, fd int) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	rights := unix.UnixRights(fd)
	var serr error
	err = raw.Write(func(s uintptr) bool {
		for {
			serr = unix.Sendmsg(int(s), msg, rights, nil, unix.MSG_NOSIGNAL)
			switch serr {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			}
			return true
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// tcpReader is the goroutine that reads the broker end of a TCP socket.
// Until the socket is connected it only watches for the program closing it
// (and discards connect filler once a connect is decided); then it carries
// the program's bytes into netstack (pumpOut), until pumpOut parks.
func (s *sock) tcpReader() {
	defer s.b.wg.Done()
	if s.awaitConnected() && s.pumpOut() {
		return // parked: a restarted pumpOut closes the socket (resumeOut)
	}
	s.close()
}

// awaitConnected watches the broker end of a socket until it is connected
// (true) or closed (false).
func (s *sock) awaitConnected() bool {
	for {
		s.mu.Lock()
		st, filler := s.state, s.filler
		s.mu.Unlock()
		if filler > 0 && st != wire.StateConnecting {
			s.conn.SetReadDeadline(time.Time{})
			if !s.discardFiller(filler) {
				return false
			}
		}
		if st == wire.StateConnected || st == wire.StateClosed {
			break
		}
		if s.waitHangup() {
			// The program closed it. If the connect finished
			// meanwhile, the program may have written and closed
			// right after it: those bytes still go, before the FIN
			// (pumpOut reads them, then sees the close). The hang-up
			// often comes with the wake of connected().
			s.mu.Lock()
			st = s.state
			s.mu.Unlock()
			if st != wire.StateConnected {
				return false
			}
			continue
		}
		// Woken by a state change: clear the deadline and look again.
		s.conn.SetReadDeadline(time.Time{})
	}
	s.conn.SetReadDeadline(time.Time{})
	return true
}

// discardFiller reads and drops the n filler bytes the shim wrote before a
// non-blocking connect: from then on the app end is writable. It is false
// only if the broker end is closed. A wake (a state change, from another
// P) may land during the read: the shim wrote the filler before it asked
// to connect, so the read is simply done again. Taken for a close, it
// closed a connection that had just been made (the program's second
// connect() said EBADF).
func (s *sock) discardFiller(n uint32) bool {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	for left := int(n); left > 0; {
		k, err := s.conn.Read((*bp)[:min(left, len(*bp))])
		if errors.Is(err, os.ErrDeadlineExceeded) {
			s.conn.SetReadDeadline(time.Time{})
			continue
		}
		if err != nil {
			return false
		}
		left -= k
	}
	s.mu.Lock()
	s.filler -= n
	s.mu.Unlock()
	return true
}

// drainedRecheck bounds how long pumpOut trusts a short read to mean that
// the broker end was empty (see outPump).
const drainedRecheck = 10 * time.Millisecond

// pumpOut copies the program's bytes to the endpoint. EOF on the broker end
// means the program shut down its write half (FIN after the bytes before
// it) or closed the socket (hang-up: close the endpoint); the caller then
// closes the socket. It returns true instead if it parked (park.go): no
// byte for idlePark, the broker end armed to restart it.
func (s *sock) pumpOut() (parked bool) {
	entry, ch := waiter.NewChannelEntry(waiter.WritableEvents)
	s.wq.EventRegister(&entry)
	defer s.wq.EventUnregister(&entry)
	raw, err := s.conn.SyscallConn()
	if err != nil {
		return false
	}
	p := &outPump{s: s}
	p.readFn = p.read
	p.idleAt = time.Now().Add(idlePark)
	s.conn.SetReadDeadline(p.idleAt)
	for {
		p.err = nil
		err := raw.Read(p.readFn)
		if p.held != nil {
			// Netstack's send buffer is full: wait for room and write
			// the rest, then read on.
			for p.r.Len() > 0 && p.write() == errFull {
				if !s.waitEvent(ch) {
					copyBufs.Put(p.held)
					return false
				}
			}
			copyBufs.Put(p.held)
			p.held = nil
			continue
		}
		if err == nil {
			err = p.err
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// A recheck after a short read, the idle deadline, or
			// a wake (another goroutine's, early).
			now := time.Now()
			if !p.idleAt.IsZero() && !now.Before(p.idleAt) && s.parkOut() {
				return true
			}
			p.recheckAt = time.Time{}
			p.idleAt = now.Add(idlePark)
			s.conn.SetReadDeadline(p.idleAt)
			continue
		}
		if errors.Is(err, syscall.ECONNRESET) {
			// The kernel's word that the program closed its end with
			// bytes unread (the read consumed the error; remember it).
			s.mu.Lock()
			s.unreadAtClose = true
			s.mu.Unlock()
		}
		if err == io.EOF {
			s.mu.Lock()
			s.cleanEOF = true
			s.mu.Unlock()
		}
		if err == io.EOF && !s.closedByProgram() {
			// Only the program's sending side is shut: a FIN, after
			// every byte it wrote before.
			s.mu.Lock()
			cork := s.ep.SocketOptions().GetCorkOption()
			s.corkShut = &cork
			s.mu.Unlock()
			flushCork(s.ep)
			s.ep.Shutdown(tcpip.ShutdownWrite)
			s.conn.SetReadDeadline(time.Time{})
			for !s.waitHangup() {
				s.conn.SetReadDeadline(time.Time{})
			}
		}
		return false
	}
}

// flushCork clears TCP_CORK so that the bytes it holds back leave with the
// FIN that follows: Linux sends them at once on close or shutdown(SHUT_WR),
// netstack would wait for its 200 ms cork timer (nginx's tcp_nopush closes
// corked sockets).
func flushCork(ep tcpip.Endpoint) {
	if ep.SocketOptions().GetCorkOption() {
		ep.SocketOptions().SetCorkOption(false)
	}
}

// errFull is outPump.write's word that netstack took less than offered.
var errFull = errors.New("send buffer full")

// outPump is pumpOut's reading state. The whole life of a connection is
// spent inside few RawConn.Read calls, whose callback (read) reads the
// broker end and writes into netstack, and waits in the poller after a
// short read: a stream read that returns less than asked for has emptied
// the socket, so the read Go's poller would make to see EAGAIN is
// skipped, one system call per message. Readiness is not reset within
// one RawConn.Read (a new one would forget an edge that came before it,
// which is why os.File.Read must read first). A short read does not
// always mean empty: a read stops early at an urgent byte (MSG_OOB) or
// at passed descriptors, which a program can send on its end; bytes left
// behind then would wait for the next write. So a wait after a short read
// has a deadline (drainedRecheck, renewed at most every half of it) after
// which the socket is read once more. The deadline after that recheck is
// idleAt: with no byte until then, the pump parks (park.go).
type outPump struct {
	s *sock
	r bytes.Reader
	// held is the buffer r reads from while netstack is full; nil
	// otherwise (buffers are held only while written, see copyBufs).
	held      *[]byte
	err       error     // the read's error or io.EOF, to end the loop
	recheckAt time.Time // the read deadline set after a short read
	idleAt    time.Time // the read deadline after a recheck; zero once bytes came
	readFn    func(fd uintptr) bool
}

// read is the RawConn.Read callback: true ends the Read (an error, EOF, or
// bytes netstack could not take now), false waits for readability.
func (p *outPump) read(fd uintptr) bool {
	for {
		bp := copyBufs.Get().(*[]byte)
		n, e := unix.Read(int(fd), *bp)
		switch {
		case e == unix.EINTR:
			copyBufs.Put(bp)
			continue
		case e == unix.EAGAIN:
			copyBufs.Put(bp)
			return false
		case e != nil:
			copyBufs.Put(bp)
			p.err = e
			return true
		case n == 0:
			copyBufs.Put(bp)
			p.err = io.EOF
			return true
		}
		p.r.Reset((*bp)[:n])
		if p.write() == errFull {
			p.held = bp
			return true
		}
		copyBufs.Put(bp)
		p.idleAt = time.Time{}
		if n < len(*bp) {
			if now := time.Now(); p.recheckAt.Sub(now) < drainedRecheck/2 {
				p.recheckAt = now.Add(drainedRecheck)
				p.s.conn.SetReadDeadline(p.recheckAt)
			}
			return false
		}
	}
}

// write writes what r holds into the endpoint, without waiting: errFull
// if netstack's send buffer took less. If the connection is gone (reset,
// timed out) the bytes are dropped: the error is pending for the program,
// and reading goes on until it closes.
func (p *outPump) write() error {
	for p.r.Len() > 0 {
		_, werr := p.s.ep.Write(&p.r, tcpip.WriteOptions{})
		if _, ok := werr.(*tcpip.ErrWouldBlock); ok {
			return errFull
		}
		if werr != nil {
			if _, shut := werr.(*tcpip.ErrClosedForSend); !shut {
				// A reset or timeout. Netstack reports it once, to
				// whichever of Read and Write asks first; pumpIn,
				// which hands it to the program, then sees only
				// ErrClosedForReceive, and the program's writes
				// would be dropped here for ever.
				p.s.broken(werr)
			}
			p.r.Reset(nil)
		}
	}
	return nil
}

// pumpIn copies bytes from the endpoint to the program. The peer's FIN
// becomes EOF for the program; a reset or timeout becomes EOF with the
// error pending in SO_ERROR, which the shim turns into the read's errno.
//
// It never blocks inside netstack: the endpoint's Read holds the endpoint's
// lock while it writes, so it writes only what the program's unix socket
// takes at once, and waits for room outside. (Blocking there stalled every
// other call on the socket, getsockopt(TCP_INFO) included, while the
// program itself waited for that getsockopt: a deadlock.) Unread bytes stay
// in netstack, whose window then closes: back-pressure to the sender.
//
// Started by startIn; with nothing to read for idlePark it parks, and
// inNotify starts it again (park.go).
func (s *sock) pumpIn() {
	defer s.b.wg.Done()
	raw, err := s.conn.SyscallConn()
	if err != nil {
		return
	}
	w := &connWriter{raw: raw}
	// The ticker is only read while waiting: a tick with no byte read
	// since the one before parks the pump.
	var idle *time.Ticker
	defer func() {
		if idle != nil {
			idle.Stop()
		}
	}()
	active := false
	for {
		_, err := s.ep.Read(w, tcpip.ReadOptions{})
		if w.full {
			w.full = false
			active = true
			if !s.inGrown {
				// A flow that fills the default queue (about 200 kB)
				// gets the full one; short connections never pay the
				// system call.
				s.inGrown = true
				raw.Control(func(fd uintptr) { growAppQueue(int(fd)) })
				continue
			}
			if !waitWritable(raw) {
				return
			}
			continue
		}
		if w.broken {
			return // the program closed its end; tcpReader cleans up
		}
		switch err.(type) {
		case nil:
			active = true
			continue
		case *tcpip.ErrWouldBlock:
			if idle == nil {
				idle = time.NewTicker(idlePark)
			}
			select {
			case <-s.inCh:
			case <-s.done:
				return
			case <-idle.C:
				if active {
					active = false
				} else if s.parkIn() {
					return
				}
			}
			continue
		case *tcpip.ErrClosedForReceive:
			s.sendEOF()
			return
		default:
			s.broken(err)
			return
		}
	}
}

// broken hands the program a connection's end by error (reset, timed out,
// aborted): the error is pending, reads see EOF (and the shim then
// SO_ERROR), writes EPIPE.
func (s *sock) broken(err tcpip.Error) {
	s.setError(errno(err))
	s.shutApp(unix.SHUT_RDWR)
}

// connWriter writes what netstack reads straight into the broker end (one
// copy), without ever waiting: full reports that the unix socket took less
// than offered, broken that the program has closed it.
type connWriter struct {
	raw    syscall.RawConn
	full   bool
	broken bool
}

func (w *connWriter) Write(b []byte) (int, error) {
	n := 0
	var err error
	w.raw.Control(func(fd uintptr) {
		for n < len(b) {
			k, e := unix.Write(int(fd), b[n:])
			if e == unix.EINTR {
				continue
			}
			if e != nil {
				err = e
				return
			}
			n += k
		}
	})
	switch {
	case err == unix.EAGAIN:
		w.full = true
	case err != nil:
		w.broken = true
	}
	return n, err
}

// waitWritable waits until the unix socket has room again; false if it is
// closed.
func waitWritable(raw syscall.RawConn) bool {
	first := true
	err := raw.Write(func(fd uintptr) bool {
		if !first {
			return true
		}
		first = false
		// A level check first: an edge that came before the wait began
		// is forgotten by the poller.
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, _ := unix.Poll(pfd, 0)
		return n > 0
	})
	return err == nil
}

// wqForward makes events of an accepted endpoint's queue reach this
// socket's own queue, which every waiter of the session uses.
func (s *sock) wqForward(q *waiter.Queue) {
	e := waiter.NewFunctionEntry(waiter.EventIn|waiter.EventOut|waiter.EventHUp|waiter.EventErr, func(m waiter.EventMask) {
		s.wq.Notify(m)
	})
	q.EventRegister(&e)
}
