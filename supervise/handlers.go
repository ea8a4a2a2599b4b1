package supervise

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/swrap/swrap/internal/ctlmsg"
	"github.com/swrap/swrap/wire"
)

// call is one trapped system call on a wrapped socket.
type call struct {
	s     *Supervisor
	n     *notif
	tid   int
	tgid  int
	fd    int // our copy of the caller's descriptor
	id    uint64
	info  sockInfo
	lfd   int
	reply bool // already answered (ADDFD with SEND)
	made  bool // the socket was made for this call (a placeholder swapped): state NEW
}

func (c *call) arg(i int) uint64 { return c.n.Data.Args[i] }
func (c *call) argInt(i int) int { return int(int32(c.n.Data.Args[i])) }

// handle serves one notification.
func (s *Supervisor) handle(n *notif) {
	tid := int(n.PID)
	nr := int(n.Data.Nr)
	if nr == unix.SYS_SOCKET {
		s.doSocket(n)
		return
	}
	if nr == unix.SYS_IOCTL && ifReq(uint32(n.Data.Args[1])) {
		s.doIfIoctl(n) // on any socket, wrapped or not
		return
	}
	fd, err := takeFD(tid, int(int32(n.Data.Args[0])))
	if err != nil {
		continueCall(s.listener, n.ID) // not open: the kernel says EBADF
		return
	}
	id, err := s.classify(fd)
	made := false
	if err != nil {
		h := s.placeholderOf(fd)
		if h == nil {
			unix.Close(fd)
			continueCall(s.listener, n.ID) // not ours: the kernel serves it
			return
		}
		if dataCall(nr) {
			unix.Close(fd)
			if fastOpen(n) {
				// It would connect the placeholder for real; TCP
				// Fast Open is not emulated.
				respond(s.listener, n.ID, 0, unix.EOPNOTSUPP)
				return
			}
			continueCall(s.listener, n.ID) // ENOTCONN, EPIPE: the kernel's
			return
		}
		app, nid, m, en := s.swap(n, tid, s.tgidOf(tid), h, fd, int(int32(n.Data.Args[0])))
		unix.Close(fd)
		if en == errGone {
			return
		}
		if en != 0 {
			respond(s.listener, n.ID, 0, en)
			return
		}
		fd, id, made = app, nid, m
	}
	// Our copy is closed before the answer (c.done): held after it, it
	// would keep the socket alive once the program closes it (an epoll
	// set would still report it, the broker would not see the close).
	c := &call{s: s, n: n, tid: tid, tgid: s.tgidOf(tid), fd: fd, id: id, lfd: s.listener, made: made}
	defer c.done()
	var en syscall.Errno
	if c.info, en = s.info(c.tgid, id); en != 0 {
		c.done()
		respond(s.listener, n.ID, 0, en)
		return
	}
	var val int64
	switch nr {
	case unix.SYS_BIND:
		en = c.bind()
	case unix.SYS_CONNECT:
		en = c.connect()
	case unix.SYS_LISTEN:
		en = c.listen()
	case unix.SYS_ACCEPT:
		en = c.accept(0)
	case unix.SYS_ACCEPT4:
		en = c.accept(c.argInt(3))
	case unix.SYS_GETSOCKNAME:
		en = c.name(wire.OpGetSockName)
	case unix.SYS_GETPEERNAME:
		en = c.name(wire.OpGetPeerName)
	case unix.SYS_GETSOCKOPT:
		en = c.getsockopt()
	case unix.SYS_SETSOCKOPT:
		en = c.setsockopt()
	case unix.SYS_SHUTDOWN:
		en = c.shutdown()
	case unix.SYS_IOCTL:
		val, en = c.ioctl()
	case unix.SYS_SENDTO:
		val, en = c.sendto()
	case unix.SYS_RECVFROM:
		val, en = c.recvfrom()
	case unix.SYS_SENDMSG, unix.SYS_RECVMSG, unix.SYS_SENDMMSG, unix.SYS_RECVMMSG:
		if !c.info.dgram {
			// A TCP socket's app end carries the byte stream as it
			// is: the kernel's call is the right one.
			c.done()
			continueCall(s.listener, n.ID)
			return
		}
		switch nr {
		case unix.SYS_SENDMSG:
			val, en = c.sendmsg(c.arg(1), c.argInt(2))
		case unix.SYS_RECVMSG:
			val, en = c.recvmsg(c.arg(1), c.argInt(2))
		case unix.SYS_SENDMMSG:
			val, en = c.mmsg(true)
		default:
			val, en = c.mmsg(false)
		}
	default:
		c.done()
		continueCall(s.listener, n.ID)
		return
	}
	if c.reply {
		return
	}
	c.done()
	respond(s.listener, n.ID, val, en)
}

// dataCall says whether system call nr moves data (and so is answered by
// the kernel on a placeholder, as on any unconnected TCP socket; so is
// an ioctl's queue size).
func dataCall(nr int) bool {
	switch nr {
	case unix.SYS_SENDTO, unix.SYS_RECVFROM, unix.SYS_SENDMSG, unix.SYS_RECVMSG, unix.SYS_SENDMMSG, unix.SYS_RECVMMSG, unix.SYS_IOCTL:
		return true
	}
	return false
}

// fastOpen says whether a send call asks for MSG_FASTOPEN (sendto's
// flags are argument 3, sendmsg's 2; sendmmsg's per-message flags are
// argument 3 too).
func fastOpen(n *notif) bool {
	var fl uint64
	switch int(n.Data.Nr) {
	case unix.SYS_SENDTO, unix.SYS_SENDMMSG:
		fl = n.Data.Args[3]
	case unix.SYS_SENDMSG:
		fl = n.Data.Args[2]
	}
	return fl&unix.MSG_FASTOPEN != 0
}

// done closes our copy of the caller's descriptor, once.
func (c *call) done() {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

// doSocket serves socket(AF_INET/AF_INET6, ...): the broker's SOCKET,
// whose app end becomes the call's result.
func (s *Supervisor) doSocket(n *notif) {
	domain, typ, proto := int(int32(n.Data.Args[0])), int(int32(n.Data.Args[1])), int(int32(n.Data.Args[2]))
	base := typ &^ (unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC)
	if base != unix.SOCK_STREAM && base != unix.SOCK_DGRAM {
		continueCall(s.listener, n.ID) // raw sockets: as the shim, the kernel's
		return
	}
	if base == unix.SOCK_STREAM {
		ph, en := s.newPlaceholder(domain, typ&^unix.SOCK_CLOEXEC, proto)
		if en != 0 {
			respond(s.listener, n.ID, 0, en)
			return
		}
		defer unix.Close(ph)
		installFD(s.listener, n.ID, ph, typ&unix.SOCK_CLOEXEC != 0)
		return
	}
	tgid := s.tgidOf(int(n.PID))
	id, fd, en := s.brokerSocket(tgid, domain, base, proto)
	if en != 0 {
		respond(s.listener, n.ID, 0, en)
		return
	}
	defer unix.Close(fd)
	if typ&unix.SOCK_NONBLOCK != 0 {
		unix.SetNonblock(fd, true)
	}
	s.mu.Lock()
	s.socks[id] = sockInfo{family: domain, dgram: base == unix.SOCK_DGRAM}
	s.mu.Unlock()
	installFD(s.listener, n.ID, fd, typ&unix.SOCK_CLOEXEC != 0)
}

// brokerSocket makes a socket at the broker for process tgid on its
// default host: its id and our copy of its app end, or the errno.
func (s *Supervisor) brokerSocket(tgid, family, typ, proto int) (uint64, int, syscall.Errno) {
	req := wire.Socket{Family: int32(family), Type: int32(typ), Protocol: int32(proto), Iface: uint32(ifaceOf(tgid))}
	rep, fd, en := s.call(tgid, wire.OpSocket, 0, req.Encode())
	if en == 0 && (fd < 0 || len(rep.Body) != wire.SocketRepSize) {
		en = syscall.EPROTO
	}
	if en != 0 {
		if fd >= 0 {
			unix.Close(fd)
		}
		return 0, -1, en
	}
	return ne.Uint64(rep.Body), fd, 0
}

// installFD makes our fd src the result of notification id's call. When
// the caller cannot take it (EMFILE: the kernel then leaves the call
// unanswered), the call fails with that errno; a caller that is gone
// needs no answer.
func installFD(lfd int, id uint64, src int, cloexec bool) {
	_, err := addFDSend(lfd, id, src, cloexec)
	if en, ok := err.(syscall.Errno); ok && en != unix.ENOENT {
		respond(lfd, id, 0, en)
	}
}

// readAddr reads the caller's sockaddr of length l.
func (c *call) readAddr(p uint64, l int) ([]byte, syscall.Errno) {
	if l < 0 || l > 128 {
		return nil, unix.EINVAL
	}
	b := make([]byte, l)
	if err := readMem(c.tid, p, b); err != nil && l > 0 {
		return nil, unix.EFAULT
	}
	return b, 0
}

// writeAddr writes a to the caller's (sockaddr, socklen_t *) pair, as
// the kernel does: truncated to the caller's length, the full length
// written back.
func (c *call) writeAddr(p, lp uint64, a wire.Addr) syscall.Errno {
	if lp == 0 {
		return 0
	}
	var lb [4]byte
	if err := readMem(c.tid, lp, lb[:]); err != nil {
		return unix.EFAULT
	}
	l := int32(ne.Uint32(lb[:]))
	if l < 0 {
		return unix.EINVAL
	}
	b := addrOut(a)
	n := min(int(l), len(b))
	if n > 0 {
		if err := writeMem(c.tid, p, b[:n]); err != nil {
			return unix.EFAULT
		}
	}
	ne.PutUint32(lb[:], uint32(len(b)))
	if err := writeMem(c.tid, lp, lb[:]); err != nil {
		return unix.EFAULT
	}
	return 0
}

func (c *call) req(op wire.Op, body []byte) (wire.Reply, syscall.Errno) {
	rep, fd, en := c.s.call(c.tgid, op, c.id, body)
	if fd >= 0 {
		unix.Close(fd)
	}
	return rep, en
}

func (c *call) bind() syscall.Errno {
	b, en := c.readAddr(c.arg(1), c.argInt(2))
	if en != 0 {
		return en
	}
	a, en := addrIn(b, c.info.family, useBind, false)
	if en != 0 {
		return en
	}
	_, en = c.req(wire.OpBind, wire.AppendAddr(nil, a))
	return en
}

func (c *call) nonblocking() bool {
	fl, err := unix.FcntlInt(uintptr(c.fd), unix.F_GETFL, 0)
	return err == nil && fl&unix.O_NONBLOCK != 0
}

func (c *call) connect() syscall.Errno {
	b, en := c.readAddr(c.arg(1), c.argInt(2))
	if en != 0 {
		return en
	}
	a, en := addrIn(b, c.info.family, useConnect, false)
	if en != 0 {
		return en
	}
	a = c.dnsRedirect(a)
	req := wire.Connect{Addr: a}
	nonblock := c.nonblocking()
	if nonblock {
		req.Flags |= wire.ConnectNonblock
	}
	// A socket made for this call is NEW: no STAT needed to know it.
	if !c.info.dgram && nonblock && !c.s.filled(c.id) && (c.made || c.fresh()) {
		req.Filler = c.s.fillOnce(c.id, c.fd)
	}
	if !c.info.dgram && !nonblock {
		// A blocking connect waits for the handshake; a signal due
		// meanwhile interrupts it as on Linux: ERESTARTSYS, so the
		// kernel restarts it (SA_RESTART: the broker's CONNECT on the
		// connecting socket goes on waiting) or fails it with EINTR
		// (the attempt goes on; poll and SO_ERROR tell its outcome).
		_, en = c.s.callWaiting(c.tgid, wire.OpConnect, c.id, req.Encode(), c.stillWaiting)
		if en == errGone {
			c.reply = true
		}
		return en
	}
	_, en = c.req(wire.OpConnect, req.Encode())
	switch {
	case req.Filler != 0 && en != unix.EINPROGRESS:
		c.s.restoreFill(c.id, c.fd) // decided at once: the broker discarded the filler
	case req.Filler == 0 && !c.info.dgram && en != unix.EALREADY && en != unix.EINPROGRESS:
		// A connect() again after EINPROGRESS (apr and ab poll for
		// POLLOUT, then connect again): its reply says the attempt is
		// over, as SO_ERROR's does. Without this the send buffer stayed
		// at the filler's minimum for the connection's life.
		c.s.restoreFill(c.id, c.fd)
	}
	if en == 0 && c.info.dgram {
		c.setBare(a.Family != wire.AFUnspec)
	}
	return en
}

// setBare switches a UDP socket's app end to bare payloads once it is
// connected (wire.SwrapDgramBare), and back when it is disconnected: the
// program's read, write, send and recv on it are not stopped, so they must
// see the payload alone. The connected peer, the source of everything it
// receives, is kept for the calls that are stopped (recvfrom, recvmsg).
func (c *call) setBare(on bool) {
	var peer wire.Addr
	if on {
		rep, en := c.req(wire.OpGetPeerName, nil)
		if en != 0 {
			return
		}
		var err error
		if peer, err = wire.ParseAddr(rep.Body); err != nil {
			return
		}
	}
	v := ne.AppendUint32(nil, 0)
	if on {
		v = ne.AppendUint32(nil, 1)
	}
	if _, en := c.req(wire.OpSetSockOpt, wire.SockOpt{Level: wire.SolSwrap, Name: wire.SwrapDgramBare, OptLen: 4, Value: v}.Encode()); en != 0 {
		return
	}
	c.s.mu.Lock()
	if on {
		c.s.bare[c.id] = peer
	} else {
		delete(c.s.bare, c.id)
	}
	c.s.mu.Unlock()
}

// barePeer returns the connected peer of a UDP socket whose app end
// carries bare payloads.
func (c *call) barePeer() (wire.Addr, bool) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	p, ok := c.s.bare[c.id]
	return p, ok
}

// filled reports whether socket id has a filler, or is a listener (whose
// filler stays).
func (s *Supervisor) filled(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.fill[id]
	return ok
}

// fresh reports whether a CONNECT on the TCP socket starts a connect
// (state NEW or BOUND), as the shim's fresh() does: only then does the
// broker take the filler. On a connected socket (accepted, connected by a
// blocking connect, or whose connect was told over) the bytes would reach
// the peer as data, and a connect() there only says EISCONN.
func (c *call) fresh() bool {
	rep, en := c.req(wire.OpStat, nil)
	if en != 0 {
		return false
	}
	st, err := wire.ParseStatRep(rep.Body)
	return err == nil && (st.State == wire.StateNew || st.State == wire.StateBound)
}

// fillOnce makes a TCP app end unwritable until the broker reads the
// filler (docs/protocol.md, "Filler"), remembering the program's buffer
// size; 0 when the socket is already filled.
func (s *Supervisor) fillOnce(id uint64, fd int) uint32 {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
	if err != nil || v <= 0 {
		return 0
	}
	s.mu.Lock()
	if _, ok := s.fill[id]; ok {
		s.mu.Unlock()
		return 0
	}
	s.fill[id] = v
	s.mu.Unlock()
	return fill(fd)
}

// fill shrinks fd's send buffer and fills it with zero bytes.
func fill(fd int) uint32 {
	var zeros [4096]byte
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1)
	var total uint32
	for total < 256<<10 {
		n, err := unix.SendmsgN(fd, zeros[:], nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			break
		}
		total += uint32(n)
	}
	return total
}

// restoreFill puts back the program's send buffer size once a connect is
// over. A listener's entry (0: its filler is never taken back) stays.
func (s *Supervisor) restoreFill(id uint64, fd int) {
	s.mu.Lock()
	v := s.fill[id]
	if v > 0 {
		delete(s.fill, id)
	}
	s.mu.Unlock()
	if v/2 > 0 {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, v/2) // reported doubled, set doubles
	}
}

func (c *call) listen() syscall.Errno {
	_, en := c.req(wire.OpListen, wire.Int32Body(int32(c.argInt(1))))
	if en == 0 && !c.info.dgram {
		c.s.mu.Lock()
		_, done := c.s.fill[c.id]
		if !done {
			c.s.fill[c.id] = 0 // a listener's filler is never taken back
		}
		c.s.mu.Unlock()
		if !done {
			fill(c.fd)
		}
		c.s.mu.Lock()
		c.s.listeners[c.id] = true
		c.s.mu.Unlock()
	}
	return en
}

// errRestart is ERESTARTSYS: answered when a signal is pending for a
// caller the supervisor waits for. The kernel then handles the signal as
// for any interrupted call: restarted under SA_RESTART, EINTR otherwise,
// death for a fatal one. Nothing was consumed before, so nothing is lost.
const errRestart = syscall.Errno(512)

// errGone is wait's answer when the caller is gone: no reply is due.
const errGone = syscall.Errno(1 << 30)

// waitTick is how often a waiting call looks for the caller's signals.
const waitTick = 20

// wait waits until our copy of the socket is ready for events. It returns
// 0 when it is, errRestart when a signal is pending for the caller (with
// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV the kernel would otherwise hold
// the signal until the call returns), and errGone when the caller is gone.
func (c *call) wait(events int16) syscall.Errno {
	// SO_RCVTIMEO/SO_SNDTIMEO of the app end bound the wait, as they
	// bound a kernel socket's.
	opt := unix.SO_RCVTIMEO
	if events == unix.POLLOUT {
		opt = unix.SO_SNDTIMEO
	}
	var deadline time.Time
	if tv, err := unix.GetsockoptTimeval(c.fd, unix.SOL_SOCKET, opt); err == nil && (tv.Sec != 0 || tv.Usec != 0) {
		deadline = time.Now().Add(time.Duration(tv.Nano()))
	}
	for {
		if !deadline.IsZero() && time.Now().After(deadline) {
			return unix.EAGAIN
		}
		p := []unix.PollFd{{Fd: int32(c.fd), Events: events}}
		n, err := unix.Poll(p, waitTick)
		if err == nil && n > 0 {
			return 0
		}
		if en := c.stillWaiting(); en != 0 {
			return en
		}
	}
}

// stillWaiting is 0 while the caller waits for its call: errGone when it
// is gone, errRestart when a signal is due.
func (c *call) stillWaiting() syscall.Errno {
	if !idValid(c.lfd, c.n.ID) {
		return errGone
	}
	if signalPending(c.tid, c.tgid) {
		return errRestart
	}
	return 0
}

// ignoredByDefault are the signals whose default action is to ignore
// them: pending, not caught, they interrupt nothing.
const ignoredByDefault = 1<<(unix.SIGCHLD-1) | 1<<(unix.SIGURG-1) | 1<<(unix.SIGWINCH-1) | 1<<(unix.SIGCONT-1)

// signalPending reports whether thread tid has a signal pending that is
// not blocked and would do something: caught, or deadly by default. A
// signal pending for the whole process counts only when tid is the one
// that will take it (the only thread, or the leader, which the kernel
// picks first): ERESTARTSYS without a signal to handle would reach the
// program as errno 512.
func signalPending(tid, tgid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		return false
	}
	var pnd, shd, blk, ign, cgt, threads uint64
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		if k == "Threads" {
			threads, _ = strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			continue
		}
		x, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			continue
		}
		switch k {
		case "SigPnd":
			pnd = x
		case "ShdPnd":
			shd = x
		case "SigBlk":
			blk = x
		case "SigIgn":
			ign = x
		case "SigCgt":
			cgt = x
		}
	}
	if threads != 1 && tid != tgid {
		shd = 0
	}
	live := (pnd | shd) &^ blk &^ ign
	return live&cgt != 0 || live&^cgt&^ignoredByDefault != 0
}

func (c *call) accept(flags int) syscall.Errno {
	if flags&^(unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC) != 0 {
		return unix.EINVAL
	}
	if en := c.s.listening(c.tgid, c.id); en != 0 {
		return en
	}
	buf := make([]byte, wire.AcceptSize)
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	for {
		var err error
		n, oobn, _, _, err = unix.Recvmsg(c.fd, buf, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			if c.nonblocking() {
				return unix.EAGAIN
			}
			if en := c.wait(unix.POLLIN); en != 0 {
				c.reply = en == errGone // the caller is gone: no answer
				return en
			}
			continue
		}
		if err != nil {
			return err.(syscall.Errno)
		}
		break
	}
	nfd := ctlmsg.FirstFD(oob[:oobn])
	if n == 0 {
		if nfd >= 0 {
			unix.Close(nfd)
		}
		return unix.EINVAL // the broker closed the listener: it is gone
	}
	rec, err := wire.ParseAccept(buf[:n])
	if err != nil || nfd < 0 {
		if nfd >= 0 {
			unix.Close(nfd)
		}
		return unix.EPROTO
	}
	defer unix.Close(nfd)
	if en := c.writeAddr(c.arg(1), c.arg(2), rec.Peer); en != 0 {
		return en // as Linux: the connection is consumed
	}
	if flags&unix.SOCK_NONBLOCK != 0 {
		unix.SetNonblock(nfd, true)
	}
	c.s.mu.Lock()
	c.s.socks[rec.Sock] = sockInfo{family: c.info.family}
	c.s.mu.Unlock()
	c.reply = true
	installFD(c.lfd, c.n.ID, nfd, flags&unix.SOCK_CLOEXEC != 0)
	return 0
}

func (c *call) name(op wire.Op) syscall.Errno {
	if c.arg(2) == 0 {
		return unix.EFAULT
	}
	rep, en := c.req(op, nil)
	if en != 0 {
		return en
	}
	a, err := wire.ParseAddr(rep.Body)
	if err != nil {
		return unix.EPROTO
	}
	if op == wire.OpGetPeerName {
		a = c.dnsPeer(a)
	}
	return c.writeAddr(c.arg(1), c.arg(2), a)
}

// isTimeo says whether an option is SO_RCVTIMEO or SO_SNDTIMEO, which
// belong to the app end: read, write and recv on it are the kernel's.
func isTimeo(level, name int) bool {
	return level == unix.SOL_SOCKET && (name == unix.SO_RCVTIMEO || name == unix.SO_SNDTIMEO ||
		name == unix.SO_RCVTIMEO_NEW || name == unix.SO_SNDTIMEO_NEW)
}

// pktinfoOpt says whether an option is one of the PKTINFO switches, which
// the shim implements itself (the broker answers ENOPROTOOPT).
func pktinfoOpt(level, name int) bool {
	return (level == unix.IPPROTO_IP && name == unix.IP_PKTINFO) ||
		(level == unix.IPPROTO_IPV6 && name == unix.IPV6_RECVPKTINFO)
}

func (c *call) getsockopt() syscall.Errno {
	level, name, vp, lp := c.argInt(1), c.argInt(2), c.arg(3), c.arg(4)
	if isTimeo(level, name) {
		c.done()
		continueCall(c.lfd, c.n.ID) // the app end's own value
		c.reply = true
		return 0
	}
	var lb [4]byte
	if err := readMem(c.tid, lp, lb[:]); err != nil {
		return unix.EFAULT
	}
	l := int32(ne.Uint32(lb[:]))
	if l < 0 {
		return unix.EINVAL
	}
	rep, en := c.req(wire.OpGetSockOpt, wire.SockOpt{Level: int32(level), Name: int32(name), OptLen: uint32(l)}.Encode())
	if level == unix.SOL_SOCKET && name == unix.SO_ERROR {
		c.s.restoreFill(c.id, c.fd) // SO_ERROR waited for the connect: it is over
	}
	if en == unix.ENOPROTOOPT && pktinfoOpt(level, name) {
		bit := uint8(1)
		if level == unix.IPPROTO_IPV6 {
			bit = 2
		}
		c.s.mu.Lock()
		on := c.s.pktinfo[c.id]&bit != 0
		c.s.mu.Unlock()
		rep.Body, en = ne.AppendUint32(nil, 0), 0
		if on {
			rep.Body = ne.AppendUint32(nil, 1)
		}
	}
	if en != 0 {
		return en
	}
	v := rep.Body
	if len(v) > int(l) {
		v = v[:l]
	}
	if (level == unix.IPPROTO_IP && name == unix.IP_PKTOPTIONS) || (level == unix.IPPROTO_IPV6 && name == unix.IPV6_2292PKTOPTIONS) {
		// Control messages, as put_cmsg writes them: no padding after each.
		for o := 0; o+unix.CmsgLen(0) <= len(v); {
			cl := int(ne.Uint64(v[o:]))
			if cl < unix.CmsgLen(0) {
				break
			}
			if err := writeMem(c.tid, vp+uint64(o), v[o:min(o+cl, len(v))]); err != nil {
				return unix.EFAULT
			}
			o += unix.CmsgSpace(cl - unix.CmsgLen(0))
		}
	} else if err := writeMem(c.tid, vp, v); err != nil {
		return unix.EFAULT
	}
	ne.PutUint32(lb[:], uint32(len(v)))
	if err := writeMem(c.tid, lp, lb[:]); err != nil {
		return unix.EFAULT
	}
	return 0
}

func (c *call) setsockopt() syscall.Errno {
	level, name, vp, l := c.argInt(1), c.argInt(2), c.arg(3), c.argInt(4)
	if l < 0 || l > 4096 {
		return unix.EINVAL
	}
	v := make([]byte, l)
	if err := readMem(c.tid, vp, v); err != nil {
		return unix.EFAULT
	}
	if level == unix.SOL_SOCKET && (name == unix.SO_RCVBUFFORCE || name == unix.SO_SNDBUFFORCE) && l >= 4 && !netAdmin(c.tid) {
		return unix.EPERM
	}
	if isTimeo(level, name) {
		// Set on the app end, where the kernel's read and recv obey
		// it; the broker's copy bounds a blocking connect.
		var vp unsafe.Pointer
		if l > 0 {
			vp = unsafe.Pointer(&v[0])
		}
		if _, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(c.fd), uintptr(level), uintptr(name),
			uintptr(vp), uintptr(l), 0); e != 0 {
			return e
		}
	}
	body := wire.SockOpt{Level: int32(level), Name: int32(name), OptLen: uint32(l), Value: v}.Encode()
	if c.s.noReply && noAnswer(c.info, level, name, v) {
		return c.s.sendNoReply(c.tgid, wire.OpSetSockOpt, c.id, body)
	}
	_, en := c.req(wire.OpSetSockOpt, body)
	if isTimeo(level, name) {
		return 0
	}
	if (en == 0 || en == unix.ENOPROTOOPT) && pktinfoOpt(level, name) {
		on := false
		for _, b := range v {
			on = on || b != 0
		}
		bit := uint8(1)
		if level == unix.IPPROTO_IPV6 {
			bit = 2
		}
		c.s.mu.Lock()
		if on {
			c.s.pktinfo[c.id] |= bit
		} else {
			c.s.pktinfo[c.id] &^= bit
		}
		c.s.mu.Unlock()
		return 0
	}
	return en
}

// noAnswer says whether setsockopt(level, name, v) on a socket like si is
// one Linux cannot refuse, sent without waiting for the broker's reply as
// the shim does (shim/sockopt.c, no_answer): Go sets TCP_NODELAY and four
// keep-alive options on every connection it makes or accepts, each a
// broker round trip and two wake-ups otherwise. The keep-alive times and
// count are here and not in the shim's list: their range must be checked,
// and the supervisor has the value copied already (the shim would read
// the program's pointer itself).
func noAnswer(si sockInfo, level, name int, v []byte) bool {
	if len(v) < 4 || si.dgram {
		return false
	}
	x := int32(binary.NativeEndian.Uint32(v))
	switch level {
	case unix.SOL_SOCKET:
		return name == unix.SO_KEEPALIVE
	case unix.IPPROTO_TCP:
		switch name {
		case unix.TCP_NODELAY, unix.TCP_CORK, unix.TCP_QUICKACK:
			return true
		case unix.TCP_KEEPIDLE, unix.TCP_KEEPINTVL:
			return x >= 1 && x <= 32767 // Linux's EINVAL outside
		case unix.TCP_KEEPCNT:
			return x >= 1 && x <= 127
		}
	}
	return false
}

func (c *call) shutdown() syscall.Errno {
	how := c.argInt(1)
	_, en := c.req(wire.OpShutdown, wire.Int32Body(int32(how)))
	if en == 0 && !c.info.dgram {
		// The write half reaches the broker after the bytes before it
		// and becomes a FIN; the read half makes the program read EOF.
		unix.Shutdown(c.fd, how)
	}
	return en
}

// listening returns 0 when socket id listens, EINVAL (accept's answer
// for any other TCP socket) otherwise; a listener it did not see made is
// asked about once (STAT).
func (s *Supervisor) listening(tgid int, id uint64) syscall.Errno {
	s.mu.Lock()
	ok := s.listeners[id]
	s.mu.Unlock()
	if ok {
		return 0
	}
	rep, _, en := s.call(tgid, wire.OpStat, id, nil)
	if en != 0 {
		return en
	}
	st, err := wire.ParseStatRep(rep.Body)
	if err != nil {
		return syscall.EPROTO
	}
	if st.Type != unix.SOCK_STREAM {
		return unix.EOPNOTSUPP
	}
	if st.State != wire.StateListening {
		return unix.EINVAL
	}
	s.mu.Lock()
	s.listeners[id] = true
	s.mu.Unlock()
	return 0
}

// netAdmin reports whether thread tid has CAP_NET_ADMIN in its effective
// set (CapEff in /proc/TID/status), which Linux asks of SO_SNDBUFFORCE and
// SO_RCVBUFFORCE. A thread whose status cannot be read has not.
func netAdmin(tid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<unix.CAP_NET_ADMIN) != 0
		}
	}
	return false
}
