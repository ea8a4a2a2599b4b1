package broker

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swrap/swrap/addrplan"
	"github.com/swrap/swrap/wire"
)

// ctlConn is one control connection: requests are served one at a time, in
// order. A blocking CONNECT holds only its own connection.
type ctlConn struct {
	b     *Broker
	c     *net.UnixConn
	hello *wire.Hello // nil until HELLO
	// served counts the NoReplyBit requests served since the last
	// OpServed message, which precedes the next reply (docs/protocol.md);
	// servedErr: writing one failed (the client is gone).
	served    wire.Served
	servedErr error
}

// reply is what a handler returns: an errno, a body, and at most one fd to
// pass (closed by the sender once sent).
type reply struct {
	err  syscall.Errno
	body []byte
	fd   int
}

func errReply(e syscall.Errno) reply { return reply{err: e, fd: -1} }
func okReply(body []byte) reply      { return reply{body: body, fd: -1} }

// docReply is the reply of a JSON document (STATUS, GETLINKS): the body
// when it fits in one message, else an empty body and a memfd holding the
// document (docs/protocol.md): a busy broker's STATUS outgrows 64 KiB.
func docReply(doc []byte) reply {
	if len(doc) <= wire.MaxMessage-wire.RepHeaderSize {
		return okReply(doc)
	}
	fd, err := unix.MemfdCreate("swrap-doc", unix.MFD_CLOEXEC)
	if err != nil {
		return errReply(errnoOf(err, syscall.ENOMEM))
	}
	for off := 0; off < len(doc); {
		n, err := unix.Pwrite(fd, doc[off:], int64(off))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return errReply(errnoOf(err, syscall.ENOMEM))
		}
		off += n
	}
	return reply{fd: fd}
}

// serve reads requests until the program closes the connection. Whatever
// arrives gets a reply; nothing a client sends can stop the broker.
func (cc *ctlConn) serve() {
	b := cc.b
	defer b.wg.Done()
	uc := cc.c
	defer func() {
		cc.c.Close()
		b.mu.Lock()
		delete(b.ctl, cc)
		if len(b.ctl) == 0 && len(b.socks) == 0 {
			b.idleFrom = time.Now()
		}
		b.mu.Unlock()
	}()
	raw, err := uc.SyscallConn()
	if err != nil {
		return
	}
	oob := make([]byte, unix.CmsgSpace(4*8))
	out := make([]byte, 0, 512)
	// The 64 KiB read buffer is taken only once a request is there and goes
	// back after the reply: a connection waiting for its next request holds
	// none (a busy broker has hundreds of them, which kept ~27 MiB of
	// buffers and the runtime metadata that grows with the peak heap:
	// bench/PROFILE.md). The callback is made once, not per request.
	var (
		bp             *[]byte
		n, oobn, flags int
		rerr           error
	)
	recv := func(fd uintptr) bool {
		bp = ctlBufs.Get().(*[]byte)
		for {
			n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), *bp, oob, unix.MSG_CMSG_CLOEXEC)
			if rerr != unix.EINTR {
				break
			}
		}
		if rerr == unix.EAGAIN {
			ctlBufs.Put(bp)
			bp = nil
			return false
		}
		return true
	}
	for {
		bp = nil
		err := raw.Read(recv)
		if err == nil {
			err = rerr
		}
		// n == 0 is an empty message (it gets EPROTO) unless the peer is
		// gone: the end, or a false end with requests still queued.
		end, skip := false, false
		if err == nil && n == 0 {
			end, skip = endOfConn(uc)
		}
		if err != nil || end || skip {
			if bp != nil {
				ctlBufs.Put(bp)
			}
			if skip {
				continue
			}
			return
		}
		buf := *bp
		if oobn > 0 {
			closeReceivedFDs(oob[:oobn]) // nobody sends us fds; never leak them
		}
		var r reply
		var op wire.Op
		noReply := false
		if flags&unix.MSG_TRUNC != 0 {
			r = errReply(syscall.EPROTO)
		} else {
			op, r, noReply = cc.handle(buf[:n])
		}
		if noReply {
			cc.noReplyServed(op, r)
			ctlBufs.Put(bp)
			continue
		}
		if cc.servedErr != nil {
			if r.fd >= 0 {
				unix.Close(r.fd)
			}
			ctlBufs.Put(bp)
			return
		}
		out = wire.AppendReply(out[:0], op, r.err, r.body)
		var rights []byte
		if r.fd >= 0 {
			rights = unix.UnixRights(r.fd)
		}
		_, _, werr := uc.WriteMsgUnix(out, rights, nil)
		if r.fd >= 0 {
			unix.Close(r.fd)
		}
		ctlBufs.Put(bp)
		if werr != nil {
			return
		}
	}
}

// ctlBufs are the control connections' read buffers: the largest request
// and one byte more, so that a longer one shows as truncated.
var ctlBufs = sync.Pool{New: func() any {
	b := make([]byte, wire.MaxMessage+1)
	return &b
}}

// noReplyServed counts a NoReplyBit request for the next OpServed and
// drops its reply, logging a failure (nobody else sees it now).
func (cc *ctlConn) noReplyServed(op wire.Op, r reply) {
	if r.fd >= 0 {
		unix.Close(r.fd)
	}
	cc.served.Count++
	if r.err != 0 {
		cc.served.Failed++
		cc.served.FailOp, cc.served.FailErr = op, r.err
		pid := uint32(0)
		if cc.hello != nil {
			pid = cc.hello.PID
		}
		cc.b.log.Debug("request without reply failed", "op", op, "pid", pid, "err", r.err)
	}
}

// handle decodes and dispatches one request. noReply: it asked for no
// reply (NoReplyBit, stripped from op); a request whose header does not
// parse, or of another version, gets its error reply regardless.
func (cc *ctlConn) handle(msg []byte) (op wire.Op, r reply, noReply bool) {
	req, err := wire.ParseRequest(msg)
	if err != nil {
		return 0, errReply(syscall.EPROTO), false
	}
	if req.Version != wire.Version {
		return req.Op, errReply(syscall.EPROTONOSUPPORT), false
	}
	noReply = req.Op&wire.NoReplyBit != 0
	req.Op &^= wire.NoReplyBit
	if !noReply && cc.served.Count > 0 {
		// Before serving the request, which may block for long (a
		// connect): a thread of the program waits for its no-reply
		// requests to be served before it uses another connection.
		_, _, cc.servedErr = cc.c.WriteMsgUnix(wire.AppendReply(nil, wire.OpServed, 0, cc.served.Encode()), nil, nil)
		cc.served = wire.Served{}
		if cc.servedErr != nil {
			return req.Op, errReply(syscall.EPIPE), false
		}
	}
	op, r = cc.dispatch(req)
	return op, r, noReply
}

// dispatch serves one decoded request.
func (cc *ctlConn) dispatch(req wire.Request) (wire.Op, reply) {
	if req.Op != wire.OpHello && req.Op != wire.OpStatus && cc.hello == nil {
		return req.Op, errReply(syscall.EPROTO)
	}
	switch req.Op {
	case wire.OpHello:
		return req.Op, cc.doHello(req.Body)
	case wire.OpStatus:
		return req.Op, docReply(cc.b.status())
	case wire.OpSocket:
		return req.Op, cc.doSocket(req.Body)
	case wire.OpSetLink:
		return req.Op, cc.doSetLink(req.Body)
	case wire.OpGetLinks:
		return req.Op, docReply(cc.b.getLinks())
	case wire.OpNewCtl:
		return req.Op, cc.doNewCtl(req.Body)
	case wire.OpResolve:
		return req.Op, cc.doResolve(req.Body)
	case wire.OpCapture:
		return req.Op, cc.doCapture(req.Body)
	case wire.OpClosed:
		if len(req.Body) != 0 {
			return req.Op, errReply(syscall.EINVAL)
		}
		if s := cc.b.lookup(req.Sock); s != nil {
			s.settleClose()
		}
		return req.Op, okReply(nil)
	}
	s := cc.b.lookup(req.Sock)
	if s == nil {
		return req.Op, errReply(syscall.EBADF)
	}
	return req.Op, s.handle(req)
}

func (cc *ctlConn) doHello(body []byte) reply {
	h, err := wire.ParseHello(body)
	if err != nil {
		return errReply(syscall.EINVAL)
	}
	if h.Pcap != "" {
		if !filepath.IsAbs(h.Pcap) {
			return errReply(syscall.EINVAL)
		}
		if err := cc.b.addCapture(h.Pcap); err != nil {
			cc.b.log.Error("capture", "file", h.Pcap, "err", err)
			var en syscall.Errno
			if errors.As(err, &en) {
				return errReply(en)
			}
			return errReply(syscall.EIO)
		}
	}
	cc.hello = &h
	return okReply(wire.HelloRep{
		BrokerPID: uint32(os.Getpid()),
		MTU:       cc.b.cfg.MTU,
		Instance:  cc.b.instance,
		Features:  wire.FeatNoReply,
	}.Encode())
}

func (cc *ctlConn) doSocket(body []byte) reply {
	req, err := wire.ParseSocket(body)
	if err != nil {
		return errReply(syscall.EINVAL)
	}
	iface := int(req.Iface)
	if !addrplan.ValidHost(iface) {
		return errReply(syscall.EINVAL)
	}
	s, fd, en := cc.b.newSock(req, iface, cc.hello.PID)
	if en != 0 {
		return errReply(en)
	}
	return reply{body: binary.NativeEndian.AppendUint64(nil, s.id), fd: fd}
}

// doNewCtl makes another control connection for the program: a
// SOCK_SEQPACKET socket pair whose one end is served like a connection
// accepted on broker.sock (HELLO first) and whose other end goes to the
// program. No credential check: the request came on a connection that
// passed one (or was itself made this way), and holding it is the
// program's right to the network, whatever uid or root directory the
// program has now.
func (cc *ctlConn) doNewCtl(body []byte) reply {
	if len(body) != 0 {
		return errReply(syscall.EINVAL)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return errReply(toErrno(err))
	}
	f := os.NewFile(uintptr(fds[0]), "newctl")
	c, err := net.FileConn(f) // a dup; f's own fd is closed next
	f.Close()
	if err != nil {
		unix.Close(fds[1])
		return errReply(toErrno(err))
	}
	if !cc.b.addCtl(c.(*net.UnixConn)) {
		c.Close()
		unix.Close(fds[1])
		return errReply(syscall.ENETDOWN)
	}
	cc.b.log.Debug("new control connection", "for_pid", cc.hello.PID)
	return reply{fd: fds[1]}
}

// toErrno is the errno inside err, or EIO.
func toErrno(err error) syscall.Errno {
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	return syscall.EIO
}

// endOfConn tells an empty message (which a client may send, and which gets
// an EPROTO reply) from the end of the connection: both read 0 bytes. The
// kernel can report the end with requests still to come (see endOfFile in
// dgram.go), the last no-reply requests of a client that then exits: skip
// says so, and the reader reads on.
func endOfConn(c *net.UnixConn) (end, skip bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return true, false
	}
	raw.Control(func(fd uintptr) {
		shut, queued := peerFinished(int(fd))
		end, skip = shut && !queued, queued
	})
	return end, skip
}

// closeReceivedFDs closes any fds that arrived in a control message.
func closeReceivedFDs(oob []byte) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for _, m := range msgs {
		if fds, err := unix.ParseUnixRights(&m); err == nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
		}
	}
}
