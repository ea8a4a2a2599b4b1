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

// tcpConnect starts a TCP connect. A blocking one is answered when it is
// done; a non-blocking one gets EINPROGRESS and its result goes to SO_ERROR.
func (s *sock) tcpConnect(a wire.Addr, nonblock bool) syscall.Errno {
	s.mu.Lock()
	switch s.state {
	case wire.StateConnected, wire.StateListening:
		s.mu.Unlock()
		return syscall.EISCONN
	case wire.StateConnecting:
		ch := s.connectCh
		s.mu.Unlock()
		if nonblock {
			return syscall.EALREADY
		}
		return s.waitConnect(ch, 0)
	case wire.StateClosed:
		s.mu.Unlock()
		return syscall.EBADF
	}
	s.mu.Unlock()
	if a.Family == wire.AFUnspec {
		return 0 // Linux: AF_UNSPEC on an unconnected socket does nothing
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
		return errno(err)
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.state = wire.StateConnecting
	s.connectCh = done
	s.mu.Unlock()
	go s.finishConnect(&entry, ch, done)
	if nonblock {
		return syscall.EINPROGRESS
	}
	s.mu.Lock()
	timeo := s.sndTimeo
	s.mu.Unlock()
	return s.waitConnect(done, timeo)
}

// finishConnect waits for netstack to decide a connect and records the
// outcome: connected, or back to unconnected with the error pending.
func (s *sock) finishConnect(entry *waiter.Entry, ch chan struct{}, done chan struct{}) {
	defer close(done)
	defer s.wq.EventUnregister(entry)
	t := time.NewTimer(connectTimeout)
	defer t.Stop()
	var err tcpip.Error
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
		if s.ep.Readiness(waiter.WritableEvents|waiter.EventErr|waiter.EventHUp) == 0 {
			continue
		}
		err = s.ep.LastError()
		break
	}
	if err != nil {
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
	if !s.bound.IsValid() {
		s.state = wire.StateNew
	} else {
		s.state = wire.StateBound
	}
	s.soError = e
	s.mu.Unlock()
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
	if s.state == wire.StateConnected {
		return 0
	}
	e := s.soError
	s.soError = 0
	return e
}

// connected marks the socket connected and lets the reader start pumping.
func (s *sock) connected() {
	s.mu.Lock()
	s.state = wire.StateConnected
	s.mu.Unlock()
	s.b.wg.Add(1)
	go s.pumpIn()
	s.wake()
}

// becomeIPv4 replaces an unbound AF_INET6 endpoint by an AF_INET one.
func (s *sock) becomeIPv4() syscall.Errno {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != wire.StateNew {
		return syscall.EAFNOSUPPORT
	}
	tp, en := transportFor(unix.AF_INET, s.typ, s.proto)
	if en != 0 {
		return syscall.EAFNOSUPPORT
	}
	ep, err := s.host.Stack.NewEndpoint(tp, ipv4.ProtocolNumber, &s.wq)
	if err != nil {
		return errno(err)
	}
	old := s.ep
	copyOptions(old, ep)
	s.ep = ep
	s.family = unix.AF_INET
	old.Close()
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
	if st == wire.StateListening {
		return 0
	}
	s.mu.Lock()
	s.state = wire.StateListening
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
			if !s.waitEvent(ch, 0) {
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
	ns := &sock{b: s.b, family: s.family, typ: s.typ, proto: s.proto, host: s.host, pid: s.pid,
		done: make(chan struct{}), state: wire.StateConnected}
	ns.ep = nep
	// The accepted endpoint notifies its own queue; forward to ours.
	ns.wqForward(nwq)
	ns.initEndpoint()
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
	rec := wire.Accept{Sock: ns.id, Peer: wire.AddrFrom(peer)}
	if s.family == unix.AF_INET6 {
		rec.Peer.Family = wire.AFInet6
		rec.Peer.IP = mapped(peer.Addr())
	}
	_, _, werr := s.conn.WriteMsgUnix(rec.Encode(), unix.UnixRights(appFD), nil)
	unix.Close(appFD)
	if werr != nil {
		ns.close()
		return false
	}
	s.b.wg.Add(2)
	go ns.tcpReader()
	go ns.pumpIn()
	return true
}

// tcpReader is the goroutine that reads the broker end of a TCP socket.
// Until the socket is connected it only watches for the program closing
// it; then it carries the program's bytes into netstack (pumpOut).
func (s *sock) tcpReader() {
	defer s.b.wg.Done()
	defer s.close()
	for {
		s.mu.Lock()
		st := s.state
		s.mu.Unlock()
		if st == wire.StateConnected {
			break
		}
		if s.waitHangup() {
			return
		}
		// Woken by a state change: clear the deadline and look again.
		s.conn.SetReadDeadline(time.Time{})
	}
	s.conn.SetReadDeadline(time.Time{})
	s.pumpOut()
}

// pumpOut copies the program's bytes to the endpoint. EOF on the broker end
// means the program shut down its write half (FIN after the bytes before
// it) or closed the socket (hang-up: close the endpoint).
func (s *sock) pumpOut() {
	entry, ch := waiter.NewChannelEntry(waiter.WritableEvents)
	s.wq.EventRegister(&entry)
	defer s.wq.EventUnregister(&entry)
	var r bytes.Reader
	for {
		bp := copyBufs.Get().(*[]byte)
		n, err := s.conn.Read(*bp)
		if n > 0 {
			r.Reset((*bp)[:n])
			for r.Len() > 0 {
				_, werr := s.ep.Write(&r, tcpip.WriteOptions{})
				if _, ok := werr.(*tcpip.ErrWouldBlock); ok {
					if !s.waitEvent(ch, 0) {
						copyBufs.Put(bp)
						return
					}
					continue
				}
				if werr != nil {
					// The connection is gone (reset, timed out): the
					// error is pending for the program; drain until it
					// closes.
					r.Reset(nil)
					break
				}
			}
		}
		copyBufs.Put(bp)
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			s.conn.SetReadDeadline(time.Time{})
			continue
		}
		if err == io.EOF && !s.closedByProgram() {
			// Only the program's sending side is shut: a FIN, after
			// every byte it wrote before.
			s.ep.Shutdown(tcpip.ShutdownWrite)
			for !s.waitHangup() {
				s.conn.SetReadDeadline(time.Time{})
			}
		}
		return
	}
}

// closedByProgram checks at once, without waiting, whether the EOF just read
// is the program's close rather than its shutdown(SHUT_WR): a close must not
// send a FIN first (SO_LINGER 0 must give the peer only an RST).
func (s *sock) closedByProgram() bool {
	raw, err := s.conn.SyscallConn()
	if err != nil {
		return true
	}
	closed := true
	raw.Control(func(fd uintptr) { closed = s.hungUp(int(fd)) })
	return closed
}

// pumpIn copies bytes from the endpoint to the program. The peer's FIN
// becomes EOF for the program; a reset or timeout becomes EOF with the
// error pending in SO_ERROR, which the shim turns into the read's errno.
func (s *sock) pumpIn() {
	defer s.b.wg.Done()
	entry, ch := waiter.NewChannelEntry(waiter.ReadableEvents | waiter.EventHUp | waiter.EventErr)
	s.wq.EventRegister(&entry)
	defer s.wq.EventUnregister(&entry)
	w := &connWriter{s: s}
	for {
		_, err := s.ep.Read(w, tcpip.ReadOptions{})
		switch err.(type) {
		case nil:
			continue
		case *tcpip.ErrWouldBlock:
			if !s.waitEvent(ch, 0) {
				return
			}
			continue
		case *tcpip.ErrClosedForReceive:
			s.sendEOF()
			return
		case *tcpip.ErrBadBuffer:
			// The program closed its end; tcpReader cleans up.
			return
		default:
			s.setError(errno(err))
			s.sendEOF()
			return
		}
	}
}

// connWriter writes what netstack reads straight into the broker end, so
// received bytes are copied once; a full unix socket blocks the writer,
// which stops netstack reading and so closes the TCP window: back-pressure
// all the way to the sender.
type connWriter struct{ s *sock }

func (w *connWriter) Write(b []byte) (int, error) { return w.s.conn.Write(b) }

// wqForward makes events of an accepted endpoint's queue reach this
// socket's own queue, which every waiter of the session uses.
func (s *sock) wqForward(q *waiter.Queue) {
	e := waiter.NewFunctionEntry(waiter.EventIn|waiter.EventOut|waiter.EventHUp|waiter.EventErr, func(m waiter.EventMask) {
		s.wq.Notify(m)
	})
	q.EventRegister(&e)
}
