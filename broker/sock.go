package broker

import (
	"errors"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/swrap/swrap/stack"
	"github.com/swrap/swrap/wire"
)

// sock is one wrapped socket: the broker's end of the program's unix socket
// pair, and the netstack endpoint on the socket's host: the program's
// default host, or the host whose address it bound (rehome.go).
type sock struct {
	b      *Broker
	id     uint64
	family int32       // AF_INET or AF_INET6 (may turn AF_INET on the v4 quirk)
	typ    int32       // SOCK_STREAM or SOCK_DGRAM
	bare   atomic.Bool // UDP: the app end carries bare payloads (wire.SwrapDgramBare)
	proto  int32       // IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP(V6)
	// host changes at most once, when bind moves an unbound socket to
	// another host; readers on other goroutines load it atomically.
	host atomic.Pointer[stack.Host]
	pid  uint32 // of the process that created it (for inspection)
	name string // abstract name of the app end, without the NUL

	conn     *os.File // the broker's end of the pair, in the Go netpoller
	wq       waiter.Queue
	done     chan struct{} // closed by close(): wakes every waiter
	released chan struct{} // closed once close() has closed the endpoint (its port is free)

	mu sync.Mutex // guards the fields below
	// ep is replaced (under mu, and b.mu: see setEndpointLocked) only by
	// a move to another host, a failed connect and the v4 quirk.
	ep        tcpip.Endpoint
	state     wire.State
	bound     netip.AddrPort // as the program bound it (the any-address stays any)
	soError   syscall.Errno  // pending error, reported once by SO_ERROR
	connectCh chan struct{}  // closed when a pending connect completes
	sndTimeo  time.Duration  // SO_SNDTIMEO: bounds a blocking connect
	rcvTimeo  time.Duration
	pktinfo   bool // IP_PKTINFO as the program set it (or inherited, accepted)
	pktinfo6  bool // IPV6_RECVPKTINFO likewise
	// accepted: the socket came from accept() (its interface is known:
	// IP_PKTOPTIONS); synOpts: Linux kept its SYN for IPV6_2292PKTOPTIONS
	// (the listener wanted IPv6 packet options, the peer is not IPv4).
	accepted, synOpts bool
	backlog           int    // listen()'s, as TCP_INFO reports it
	bindDev           string // SO_BINDTODEVICE: "" or the host's interface name
	filler            uint32 // connect filler bytes still to discard (docs/protocol.md)
	failed            bool   // a connect failed: the endpoint must be renewed to reuse
	// ssConnecting is Linux's SS_CONNECTING: a connect was started and no
	// connect() call has reported its outcome yet.
	ssConnecting bool
	shutRD       bool // SHUT_RD done: hang-up of the app end is then ambiguous
	shutWR       bool // SHUT_WR asked: after eofSent, a hang-up is then ambiguous
	appShutBoth  bool // the broker shut both directions of its end (a reset): its own POLLHUP
	cleanEOF     bool // a read of the broker end ended in EOF, not ECONNRESET
	eofSent      bool // the broker shut its sending side: likewise
	// corkShut: TCP_CORK as the program set it, once the endpoint's cork
	// was cleared to flush its bytes with the FIN (flushCork).
	corkShut *bool
	// unreadAtClose: the program closed its end with bytes unread, which
	// Linux answers with an RST.
	unreadAtClose bool
	closed        bool
	rcvBuf        int // SO_RCVBUF as reported (Linux doubles what is set)
	sndBuf        int
	// preBind are the options set while unbound, replayed if bind moves
	// the socket to another host (rehome.go); nil once bound.
	preBind []setOpt

	// Parking of an idle TCP session (park.go). inCh and inEntry are set
	// once by startIn; inGrown and outArmed belong to the one pumpIn,
	// respectively pumpOut, that runs at a time.
	inState  atomic.Int32 // inRunning or inParked once connected
	inCh     chan struct{}
	inEntry  waiter.Entry
	inGrown  bool // pumpIn grew the app queue
	outArmed bool // the broker end is in the parker's epoll set
}

// newSock makes the endpoint and the unix pair for a SOCKET request, and
// returns the app end's fd for the reply.
func (b *Broker) newSock(req wire.Socket, iface int, pid uint32) (*sock, int, syscall.Errno) {
	s := &sock{b: b, family: req.Family, typ: req.Type, proto: req.Protocol, pid: pid, done: make(chan struct{}), released: make(chan struct{})}
	var netProto tcpip.NetworkProtocolNumber
	switch req.Family {
	case unix.AF_INET:
		netProto = ipv4.ProtocolNumber
	case unix.AF_INET6:
		netProto = ipv6.ProtocolNumber
	default:
		return nil, -1, syscall.EAFNOSUPPORT
	}
	transProto, en := transportFor(req.Family, req.Type, req.Protocol)
	if en != 0 {
		return nil, -1, en
	}
	if s.proto == 0 {
		s.proto = defaultProto(req.Type)
	}
	host, err := b.fab.Host(iface)
	if err != nil {
		b.log.Error("host", "id", iface, "err", err)
		return nil, -1, syscall.ENETDOWN
	}
	s.host.Store(host)
	ep, terr := host.Stack.NewEndpoint(transProto, netProto, &s.wq)
	if terr != nil {
		return nil, -1, errno(terr)
	}
	s.ep = ep
	s.initEndpoint()
	if s.typ == unix.SOCK_STREAM {
		// Linux has Nagle on until TCP_NODELAY; netstack the reverse.
		// (Accepted sockets inherit the listener's setting instead.)
		ep.SocketOptions().SetDelayOption(true)
	}
	if en := b.register(s); en != 0 {
		ep.Close()
		return nil, -1, en
	}
	unixType := unix.SOCK_STREAM
	if req.Type != unix.SOCK_STREAM {
		unixType = unix.SOCK_SEQPACKET
	}
	appFD, conn, err := b.pair(unixType, s.id, &s.name)
	if err != nil {
		b.unregister(s)
		ep.Close()
		b.log.Error("socketpair", "err", err)
		return nil, -1, errnoOf(err, syscall.ENFILE)
	}
	s.conn = conn
	b.wg.Add(1)
	if s.typ == unix.SOCK_STREAM {
		goSession(s.tcpReader)
	} else {
		s.startDgram()
	}
	return s, appFD, 0
}

// pair makes a unix socket pair of type typ, binds the app end to the
// socket's abstract name (so that any holder can identify it), and returns
// the app end's fd (blocking, as socket() makes it) and the broker end
// (non-blocking, in the Go netpoller). Every connection pays for this
// twice, so it makes 5 system calls (6 for datagrams) where net.FileConn
// alone makes 8.
func (b *Broker) pair(typ int, id uint64, name *string) (int, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, nil, err
	}
	fail := func(err error) (int, *os.File, error) {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return -1, nil, err
	}
	*name = wire.SocketName(b.instance, id)
	if err := unix.Bind(fds[0], &unix.SockaddrUnix{Name: "@" + *name}); err != nil {
		return fail(err)
	}
	if _, err := unix.FcntlInt(uintptr(fds[0]), unix.F_SETFL, unix.O_RDWR); err != nil {
		return fail(err)
	}
	if typ != unix.SOCK_STREAM {
		// Datagrams that find the queue full are dropped: give it
		// room from the start (TCP's grows when it first fills, see
		// pumpIn). The receive buffer size does not limit a unix
		// socket's queue, so it is left alone.
		growAppQueue(fds[1])
	}
	// os.NewFile sees the fd is non-blocking and registers it with the
	// netpoller: deadlines and RawConn waits work as on a net.Conn.
	return fds[0], os.NewFile(uintptr(fds[1]), *name), nil
}

// appQueue is the send buffer of a broker end once grown: it is the
// socket's receive queue towards the program.
const appQueue = 1 << 20

// growAppQueue gives the broker end fd its full send buffer.
func growAppQueue(fd int) { unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, appQueue) }

func transportFor(family, typ, proto int32) (tcpip.TransportProtocolNumber, syscall.Errno) {
	switch typ {
	case unix.SOCK_STREAM:
		if proto == 0 || proto == unix.IPPROTO_TCP {
			return tcp.ProtocolNumber, 0
		}
	case unix.SOCK_DGRAM:
		switch {
		case proto == 0 || proto == unix.IPPROTO_UDP:
			return udp.ProtocolNumber, 0
		case proto == unix.IPPROTO_ICMP && family == unix.AF_INET:
			return icmp.ProtocolNumber4, 0
		case proto == unix.IPPROTO_ICMPV6 && family == unix.AF_INET6:
			return icmp.ProtocolNumber6, 0
		}
	default:
		return 0, syscall.ESOCKTNOSUPPORT
	}
	return 0, syscall.EPROTONOSUPPORT
}

func defaultProto(typ int32) int32 {
	if typ == unix.SOCK_STREAM {
		return unix.IPPROTO_TCP
	}
	return unix.IPPROTO_UDP
}

// initEndpoint applies what every endpoint gets: packet info on datagram
// sockets (the broker always needs the destination address to fill the
// datagram header) and Linux's default buffer sizes as reported values.
func (s *sock) initEndpoint() {
	opts := s.ep.SocketOptions()
	if s.typ != unix.SOCK_STREAM {
		opts.SetReceivePacketInfo(true)
		if s.family == unix.AF_INET6 {
			opts.SetIPv6ReceivePacketInfo(true)
		}
	}
	lim := sysBufLimits()
	s.rcvBuf, s.sndBuf = lim.tcpRmem, lim.tcpWmem
	if s.typ != unix.SOCK_STREAM {
		s.rcvBuf, s.sndBuf = lim.rmemDefault, lim.wmemDefault
	}
}

// handle serves a request about this socket.
func (s *sock) handle(req wire.Request) reply {
	switch req.Op {
	case wire.OpBind:
		a, err := wire.ParseAddr(req.Body)
		if err != nil || len(req.Body) != wire.AddrSize {
			return errReply(errnoOf(err, syscall.EINVAL))
		}
		return errReply(s.bind(a))
	case wire.OpListen:
		n, err := wire.ParseInt32Body(req.Body)
		if err != nil {
			return errReply(syscall.EINVAL)
		}
		return errReply(s.listen(int(n)))
	case wire.OpConnect:
		c, err := wire.ParseConnect(req.Body)
		if err != nil {
			return errReply(errnoOf(err, syscall.EINVAL))
		}
		return errReply(s.connect(c.Addr, c.Flags&wire.ConnectNonblock != 0, c.Filler))
	case wire.OpShutdown:
		how, err := wire.ParseInt32Body(req.Body)
		if err != nil {
			return errReply(syscall.EINVAL)
		}
		return errReply(s.shutdown(int(how)))
	case wire.OpGetSockName:
		return s.addrReply(s.sockName())
	case wire.OpGetPeerName:
		a, en := s.remoteAddr()
		if en != 0 {
			return errReply(en)
		}
		return s.addrReply(a)
	case wire.OpGetSockOpt:
		o, err := wire.ParseSockOpt(req.Body, false)
		if err != nil {
			return errReply(syscall.EINVAL)
		}
		v, en := s.getsockopt(int(o.Level), int(o.Name), int(o.OptLen))
		if en != 0 {
			return errReply(en)
		}
		return okReply(v)
	case wire.OpSetSockOpt:
		o, err := wire.ParseSockOpt(req.Body, true)
		if err != nil {
			return errReply(syscall.EINVAL)
		}
		en := s.setsockopt(int(o.Level), int(o.Name), o.Value)
		if en == 0 {
			s.recordOpt(int(o.Level), int(o.Name), o.Value)
		}
		return errReply(en)
	case wire.OpStat:
		return okReply(s.stat().Encode())
	case wire.OpIoctl:
		if len(req.Body) != wire.IoctlSize {
			return errReply(syscall.EINVAL)
		}
		v, en := s.ioctl(uint32(ne.Uint32(req.Body)))
		if en != 0 {
			return errReply(en)
		}
		return okReply(ne.AppendUint32(nil, uint32(v)))
	}
	return errReply(syscall.EPROTO)
}

func (s *sock) addrReply(a netip.AddrPort) reply {
	w := wire.AddrFrom(a)
	if s.family == unix.AF_INET6 {
		w.Family = wire.AFInet6
		w.IP = netip.AddrFrom16(a.Addr().As16())
	}
	return okReply(wire.AppendAddr(nil, w))
}

// stat answers STAT.
func (s *sock) stat() wire.StatRep {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := wire.StatRep{Family: s.family, Type: s.typ, Protocol: s.proto, State: s.state, Iface: uint32(s.host.Load().ID)}
	if s.ep.SocketOptions().GetBroadcast() {
		r.Flags |= wire.StatBroadcast
	}
	return r
}

// toFull converts a program's address to a netstack address for this
// socket, checking it against the address plan. forConnect allows any
// emulated destination; otherwise (bind) any emulated host's address and
// the any-address are allowed (bind moves the socket to that host).
func (s *sock) toFull(a wire.Addr, forConnect bool) (tcpip.FullAddress, syscall.Errno) {
	ip := a.IP
	switch {
	case s.family == unix.AF_INET && a.Family != wire.AFInet:
		return tcpip.FullAddress{}, syscall.EAFNOSUPPORT
	case s.family == unix.AF_INET6 && a.Family != wire.AFInet6:
		return tcpip.FullAddress{}, syscall.EAFNOSUPPORT
	}
	fa := tcpip.FullAddress{Port: a.Port}
	if ip.IsUnspecified() || (ip.Is4In6() && ip.Unmap().IsUnspecified()) {
		if forConnect {
			// Linux treats a connect to the any-address as one to this host.
			if s.family == unix.AF_INET || ip.Is4In6() {
				ip = s.host.Load().IPv4
			} else {
				ip = s.host.Load().IPv6
			}
		} else {
			return fa, 0
		}
	}
	plan := s.b.cfg.Plan
	if forConnect {
		if !plan.InNetwork(ip) {
			return fa, syscall.ENETUNREACH
		}
	} else if _, ok := plan.Host(ip); !ok || (ip.Is4In6() && s.v6only()) {
		return fa, syscall.EADDRNOTAVAIL
	}
	if ip.Is4In6() {
		fa.Addr = tcpip.AddrFrom16(ip.As16())
	} else if ip.Is4() {
		fa.Addr = tcpip.AddrFrom4(ip.As4())
	} else {
		fa.Addr = tcpip.AddrFrom16(ip.As16())
	}
	return fa, 0
}

func (s *sock) v6only() bool { return s.ep.SocketOptions().GetV6Only() }

// bind binds the socket to a, on the host whose address a is: a socket
// bound to another host's address moves there (rehome.go); the any-address
// stays on the socket's host, the program's default one.
func (s *sock) bind(a wire.Addr) syscall.Errno {
	fa, en := s.toFull(a, false)
	if en != 0 {
		return en
	}
	host, en := s.bindHost(a)
	if en != 0 {
		return en
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != wire.StateNew {
		return syscall.EINVAL
	}
	ep := s.ep
	if host != s.host.Load() {
		if ep, en = s.endpointOn(host); en != 0 {
			return en
		}
	}
	err := ep.Bind(fa)
	if _, inUse := err.(*tcpip.ErrPortInUse); inUse {
		// A socket the program has just closed may hold it: reap it.
		// Bind again even if none was found: on a broker with several
		// Ps its own goroutine may have closed it meanwhile.
		s.b.reapClosed(host.ID, fa.Port, s)
		err = ep.Bind(fa)
	}
	if err != nil {
		if ep != s.ep {
			ep.Close() // the socket stays where it was, unbound
		}
		return errno(err)
	}
	if ep != s.ep {
		old := s.ep
		s.setEndpointLocked(ep, host)
		old.Close()
	}
	s.preBind = nil
	s.state = wire.StateBound
	s.bound = a.AddrPort()
	return 0
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

// reapClosed closes the sockets of host that hold port and whose program
// has already closed them, once what the program sent on them has left
// (at most reapWait). The broker learns of a close
// asynchronously; without this, a program that closes a socket and binds
// its port again at once would see EADDRINUSE where Linux succeeds.
func (b *Broker) reapClosed(host int, port uint16, except *sock) {
	type cand struct {
		o  *sock
		ep tcpip.Endpoint
	}
	b.mu.Lock()
	var cands []cand
	for _, o := range b.socks {
		if o != except && o.host.Load().ID == host {
			// o.ep is replaced under o.mu and b.mu, so b.mu suffices;
			// o.mu must not be taken here: o's own bind may hold it
			// while it waits for b.mu in this very function.
			cands = append(cands, cand{o, o.ep})
		}
	}
	b.mu.Unlock()
	for _, c := range cands {
		o := c.o
		if fa, err := c.ep.GetLocalAddress(); err != nil || fa.Port != port {
			continue
		}
		o.settleClose()
	}
}

// settleClose closes s now if the program has closed it (no process holds
// its app end), and returns once its endpoint is closed and its port free:
// on Linux the port is free when close() returns, and a datagram or a SYN
// sent to it next is refused. The broker learns of a close asynchronously,
// so a program's close of a UDP socket or listener waits for this
// (OpClosed), and so does a bind that finds the port in use.
func (s *sock) settleClose() {
	if !s.closedByProgram() {
		return
	}
	// The socket's own goroutine sees the close too: it carries what the
	// program sent before it (as on Linux, where close never drops what
	// was sent), then closes it. Wait for that, bounded; on a broker with
	// several Ps it may be under way right now, and only its end frees the
	// port.
	select {
	case <-s.released:
		return
	case <-time.After(reapWait):
	}
	s.close()
	select {
	case <-s.released:
	case <-time.After(reapWait):
	}
}

// reapWait bounds how long settleClose waits for a closed socket's last
// bytes to leave before it closes the socket anyway.
const reapWait = time.Second

// sockName is getsockname: localAddr, except that a connect that failed
// gives back the address it chose. Linux then reports the any-address
// again (with the port, which the next connect may change), unless the
// program bound an address itself (SOCK_BINDADDR_LOCK).
func (s *sock) sockName() netip.AddrPort {
	s.mu.Lock()
	chosen := s.failed && (!s.bound.IsValid() || s.bound.Addr().IsUnspecified())
	s.mu.Unlock()
	a := s.localAddr()
	if chosen {
		a = netip.AddrPortFrom(s.anyAddr(), a.Port())
	}
	return a
}

// anyAddr is the any-address of the socket's family.
func (s *sock) anyAddr() netip.Addr {
	if s.family == unix.AF_INET {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// localAddr is the endpoint's local address: the any-address the program
// bound stays the any-address until the socket is connected, as on Linux.
func (s *sock) localAddr() netip.AddrPort {
	fa, err := s.ep.GetLocalAddress()
	var ip netip.Addr
	if err == nil && fa.Addr.Len() > 0 {
		ip, _ = netip.AddrFromSlice(fa.Addr.AsSlice())
	} else {
		ip = s.anyAddr()
	}
	return netip.AddrPortFrom(ip, fa.Port)
}

func (s *sock) remoteAddr() (netip.AddrPort, syscall.Errno) {
	fa, err := s.ep.GetRemoteAddress()
	if err != nil {
		return netip.AddrPort{}, syscall.ENOTCONN
	}
	ip, _ := netip.AddrFromSlice(fa.Addr.AsSlice())
	return netip.AddrPortFrom(ip, fa.Port), 0
}

func (s *sock) connect(a wire.Addr, nonblock bool, filler uint32) syscall.Errno {
	if s.typ == unix.SOCK_STREAM {
		return s.tcpConnect(a, nonblock, filler)
	}
	return s.dgramConnect(a)
}

func (s *sock) shutdown(how int) syscall.Errno {
	if how < unix.SHUT_RD || how > unix.SHUT_RDWR {
		return syscall.EINVAL
	}
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	if s.typ == unix.SOCK_STREAM {
		if st == wire.StateListening {
			// Linux stops a listener on SHUT_RD/SHUT_RDWR: accept then
			// fails with EINVAL and pending connections are reset.
			if how != unix.SHUT_WR {
				s.ep.Shutdown(tcpip.ShutdownRead)
				s.mu.Lock()
				s.state = wire.StateBound
				s.mu.Unlock()
			}
			return 0
		}
		if st != wire.StateConnected && st != wire.StateConnecting {
			return syscall.ENOTCONN
		}
	} else if st != wire.StateConnected {
		return syscall.ENOTCONN
	}
	if how == unix.SHUT_WR || how == unix.SHUT_RDWR {
		// The shim asks before it shuts the app end's sending side, so
		// this is known before the broker end can see it.
		s.mu.Lock()
		s.shutWR = true
		s.mu.Unlock()
	}
	if how == unix.SHUT_RD || how == unix.SHUT_RDWR {
		s.mu.Lock()
		s.shutRD = true
		s.mu.Unlock()
		// The read half: the program sees EOF from now on. The write
		// half is the program's own shutdown(SHUT_WR) of its end, which
		// reaches the endpoint in order after the bytes before it.
		if s.typ == unix.SOCK_STREAM {
			s.ep.Shutdown(tcpip.ShutdownRead)
		}
	}
	return 0
}

// appEndOpen reports whether some process still holds the app end: its
// abstract name stays bound until the last holder closes it. Only needed
// when a hang-up is ambiguous (after SHUT_RD both halves are shut).
func (s *sock) appEndOpen() bool {
	// The abstract namespace is per socket type: probe with the app end's.
	typ := unix.SOCK_STREAM
	if s.typ != unix.SOCK_STREAM {
		typ = unix.SOCK_SEQPACKET
	}
	fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.Bind(fd, &unix.SockaddrUnix{Name: "@" + s.name}) == unix.EADDRINUSE
}

// close ends the socket: the endpoint closes (a FIN, or an RST where Linux
// would send one), the broker end closes, and the socket is forgotten.
// Safe to call more than once and from any goroutine.
func (s *sock) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.state = wire.StateClosed
	ep := s.ep
	s.mu.Unlock()
	close(s.done)
	if s.typ == unix.SOCK_STREAM && s.closedWithUnreadData() {
		// Linux answers a close with unread data by an RST.
		ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: true})
	}
	if s.typ == unix.SOCK_STREAM {
		flushCork(ep)
		if h := s.host.Load(); h.NoteTCPClose() {
			s.b.log.Warn("TCP connections in TIME_WAIT at the bound: closing ones skip it, as on Linux past net.ipv4.tcp_max_tw_buckets",
				"host", h.ID, "bound", h.MaxTimeWait(), "option", "--tcp-max-tw, SWRAP_TCP_MAX_TW")
		}
	}
	ep.Close()
	close(s.released)
	s.conn.Close()
	s.b.unregister(s)
}

// closedWithUnreadData reports whether the program closed its end with
// bytes unread: the kernel then leaves ECONNRESET on the broker end.
//
// A read that ended in a clean EOF rules it out without a system call,
// unless the program had shut its sending side first: the kernel sets the
// error and the hang-up together, and a read reports the error before the
// EOF, so an EOF caused by the close itself came with no error.
func (s *sock) closedWithUnreadData() bool {
	s.mu.Lock()
	seen, clean := s.unreadAtClose, s.cleanEOF && !s.shutWR
	s.mu.Unlock()
	if seen || clean {
		return seen
	}
	raw, err := s.conn.SyscallConn()
	if err != nil {
		return false
	}
	var e int
	raw.Control(func(fd uintptr) { e, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR) })
	return e == int(unix.ECONNRESET)
}

// setError records a pending socket error, reported once by SO_ERROR (and
// by a read that ends, see docs/protocol.md).
func (s *sock) setError(e syscall.Errno) {
	s.mu.Lock()
	s.soError = e
	s.mu.Unlock()
}

// waitHangup blocks until the app end is closed by every holder (true) or
// the wake deadline fires (false). It consumes no data.
func (s *sock) waitHangup() bool {
	raw, err := s.conn.SyscallConn()
	if err != nil {
		return true
	}
	hup := false
	rerr := raw.Read(func(fd uintptr) bool {
		hup = s.hungUp(int(fd))
		return hup
	})
	// Only the wake deadline means "look again"; any other error is a
	// closed broker end.
	return hup || !errors.Is(rerr, os.ErrDeadlineExceeded)
}

// hungUp reports whether the program has closed the app end. The broker end
// reports POLLHUP once both directions are shut; that is a close unless the
// program did SHUT_RD, or the broker shut its own sending side (EOF to the
// program) and the program asked for SHUT_WR, or the broker shut both (a
// reset): then the app end's name, which lives as long as the app end,
// decides (a probe of three system calls, so only then). A program's
// SHUT_WR is known because the shim asks the broker before it shuts the
// app end; one done without the shim (the fd passed to an unwrapped
// process) after EOF reads as a close, which ends a socket already shut
// both ways. When the program finally closes it, the kernel wakes the
// broker end again, so nobody needs to poll for it.
func (s *sock) hungUp(fd int) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}}
	if n, _ := unix.Poll(pfd, 0); n <= 0 || pfd[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) == 0 {
		return false
	}
	s.mu.Lock()
	ambiguous := s.shutRD || s.appShutBoth || s.eofSent && s.shutWR
	s.mu.Unlock()
	return !ambiguous || !s.appEndOpen()
}

// sendEOF shuts the broker end's sending side: the program reads EOF.
func (s *sock) sendEOF() { s.shutApp(unix.SHUT_WR) }

// shutApp shuts the broker end in one call: SHUT_WR makes the program read
// EOF; SHUT_RDWR (after a reset) also makes its writes fail with EPIPE, at
// the same instant, as a reset socket does.
func (s *sock) shutApp(how int) {
	s.mu.Lock()
	s.eofSent = true
	if how == unix.SHUT_RDWR {
		s.appShutBoth = true
	}
	s.mu.Unlock()
	if raw, err := s.conn.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) { unix.Shutdown(int(fd), how) })
	}
}

// wake interrupts waitHangup (used when the socket's state changes).
func (s *sock) wake() { s.conn.SetReadDeadline(time.Unix(1, 0)) }

// waitEvent waits for a notification on ch (a waiter entry's channel) or
// for the socket's close; it reports false when the socket closed.
func (s *sock) waitEvent(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-s.done:
		return false
	}
}

// errnoOf returns err as an errno, or def if it is none.
func errnoOf(err error, def syscall.Errno) syscall.Errno {
	if en, ok := err.(syscall.Errno); ok {
		return en
	}
	return def
}
