package swrapnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swrap/swrap/internal/ctlmsg"
	"github.com/swrap/swrap/wire"
)

var ne = binary.NativeEndian

// parseAddr resolves a literal "ip:port" (no DNS: the emulated network has
// no names yet); an empty host means the any-address.
func parseAddr(network, address string) (netip.AddrPort, int, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return netip.AddrPort{}, 0, err
	}
	p, err := net.LookupPort(network, port)
	if err != nil {
		return netip.AddrPort{}, 0, err
	}
	var ip netip.Addr
	switch {
	case host == "" && (network == "tcp4" || network == "udp4"):
		ip = netip.IPv4Unspecified()
	case host == "":
		ip = netip.IPv6Unspecified()
	default:
		if ip, err = netip.ParseAddr(host); err != nil {
			return netip.AddrPort{}, 0, fmt.Errorf("swrapnet: %q is not an IP address", host)
		}
	}
	family := unix.AF_INET6
	if ip.Is4() {
		family = unix.AF_INET
	}
	switch network {
	case "tcp4", "udp4":
		if family != unix.AF_INET {
			return netip.AddrPort{}, 0, &net.AddrError{Err: "not an IPv4 address", Addr: host}
		}
	case "tcp6", "udp6":
		if family != unix.AF_INET6 {
			return netip.AddrPort{}, 0, &net.AddrError{Err: "not an IPv6 address", Addr: host}
		}
	}
	return netip.AddrPortFrom(ip, uint16(p)), family, nil
}

// fdConn turns an app end into a net.Conn driven by Go's netpoller.
func fdConn(fd int, name string) (*net.UnixConn, error) {
	f := os.NewFile(uintptr(fd), name)
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}

// Dial connects to address ("ip:port") on network "tcp", "tcp4" or "tcp6"
// from this host, as net.Dial does.
func (h *Host) Dial(network, address string) (net.Conn, error) {
	return h.DialTimeout(network, address, 0)
}

// DialTimeout is Dial with a bound on the connect, as a C program sets
// SO_SNDTIMEO before a blocking connect: when the handshake has not
// completed within timeout (rounded up to a microsecond) it fails with
// ETIMEDOUT. 0 means no bound beyond TCP's own (about two minutes).
func (h *Host) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		if network == "udp" || network == "udp4" || network == "udp6" {
			return h.dialUDP(network, address)
		}
		return nil, net.UnknownNetworkError(network)
	}
	ap, family, err := parseAddr(network, address)
	if err != nil {
		return nil, opErr("dial", network, nil, err)
	}
	raddr := net.TCPAddrFromAddrPort(ap)
	id, fd, err := h.socket(family, unix.SOCK_STREAM, 0)
	if err != nil {
		return nil, opErr("dial", network, raddr, err)
	}
	if timeout > 0 {
		tv := unix.NsecToTimeval(int64(max(timeout, time.Microsecond)))
		v := ne.AppendUint64(ne.AppendUint64(nil, uint64(tv.Sec)), uint64(tv.Usec))
		if err := h.setsockopt(id, unix.SOL_SOCKET, unix.SO_SNDTIMEO, v); err != nil {
			unix.Close(fd)
			return nil, opErr("dial", network, raddr, err)
		}
	}
	_, _, err = h.call(wire.OpConnect, id, wire.Connect{Addr: wire.AddrFrom(ap)}.Encode())
	if err != nil {
		unix.Close(fd)
		if timeout > 0 && errors.Is(err, syscall.EINPROGRESS) {
			// Linux's blocking connect returns EINPROGRESS when
			// SO_SNDTIMEO expires and goes on connecting; a dial gives
			// up instead (closing the socket aborts the attempt).
			err = syscall.ETIMEDOUT
		}
		return nil, opErr("dial", network, raddr, err)
	}
	return h.newConn(id, fd, network)
}

func (h *Host) newConn(id uint64, fd int, network string) (*Conn, error) {
	uc, err := fdConn(fd, "swrap-tcp")
	if err != nil {
		return nil, err
	}
	c := &Conn{h: h, id: id, uc: uc, network: network}
	c.laddr, _ = h.name(wire.OpGetSockName, id)
	c.raddr, _ = h.name(wire.OpGetPeerName, id)
	return c, nil
}

// name asks GETSOCKNAME or GETPEERNAME.
func (h *Host) name(op wire.Op, id uint64) (netip.AddrPort, error) {
	rep, _, err := h.call(op, id, nil)
	if err != nil {
		return netip.AddrPort{}, err
	}
	a, err := wire.ParseAddr(rep.Body)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return a.AddrPort(), nil
}

// Conn is a TCP connection on the emulated network. Bytes go through the
// kernel (a unix socket to the broker); only errors and options are asked
// of the broker.
type Conn struct {
	h            *Host
	id           uint64
	uc           *net.UnixConn
	network      string
	laddr, raddr netip.AddrPort
}

var _ net.Conn = (*Conn)(nil)

// Read reads as net.TCPConn does. The peer's FIN is io.EOF; a reset is an
// error wrapping syscall.ECONNRESET.
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.uc.Read(b)
	if err == io.EOF && len(b) > 0 {
		if e := c.soError(); e != 0 {
			return n, opErr("read", c.network, c.RemoteAddr(), e)
		}
	}
	return n, err
}

// Write writes as net.TCPConn does.
func (c *Conn) Write(b []byte) (int, error) {
	n, err := c.uc.Write(b)
	if err != nil && errors.Is(err, syscall.EPIPE) {
		if e := c.soError(); e != 0 {
			return n, opErr("write", c.network, c.RemoteAddr(), e)
		}
	}
	return n, err
}

// soError takes the socket's pending error from the broker.
func (c *Conn) soError() syscall.Errno {
	v, err := c.h.getsockoptInt(c.id, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return syscall.ECONNRESET // the broker is gone: the connection too
	}
	return syscall.Errno(v)
}

// Close closes the connection; the broker closes the TCP connection when
// the last holder of the socket closes it.
func (c *Conn) Close() error { return c.uc.Close() }

// CloseWrite shuts down the writing side: the peer reads EOF after the
// bytes written before, and can still send.
func (c *Conn) CloseWrite() error {
	if _, _, err := c.h.call(wire.OpShutdown, c.id, wire.Int32Body(unix.SHUT_WR)); err != nil {
		return opErr("close", c.network, c.RemoteAddr(), err)
	}
	return c.uc.CloseWrite()
}

// CloseRead shuts down the reading side.
func (c *Conn) CloseRead() error {
	if _, _, err := c.h.call(wire.OpShutdown, c.id, wire.Int32Body(unix.SHUT_RD)); err != nil {
		return opErr("close", c.network, c.RemoteAddr(), err)
	}
	return nil
}

// SetLinger sets SO_LINGER; SetLinger(0) makes Close send an RST.
func (c *Conn) SetLinger(sec int) error {
	v := ne.AppendUint32(nil, 0)
	if sec >= 0 {
		v = ne.AppendUint32(nil, 1)
	}
	v = ne.AppendUint32(v, uint32(max(sec, 0)))
	return c.h.setsockopt(c.id, unix.SOL_SOCKET, unix.SO_LINGER, v)
}

// SetNoDelay sets TCP_NODELAY.
func (c *Conn) SetNoDelay(noDelay bool) error {
	return c.h.setsockoptInt(c.id, unix.IPPROTO_TCP, unix.TCP_NODELAY, boolInt(noDelay))
}

// SetKeepAlive sets SO_KEEPALIVE.
func (c *Conn) SetKeepAlive(on bool) error {
	return c.h.setsockoptInt(c.id, unix.SOL_SOCKET, unix.SO_KEEPALIVE, boolInt(on))
}

// LocalAddr returns the local address.
func (c *Conn) LocalAddr() net.Addr { return net.TCPAddrFromAddrPort(c.laddr) }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.raddr) }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.uc.SetDeadline(t) }

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.uc.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.uc.SetWriteDeadline(t) }

// Listener is a TCP listener on the emulated network.
type Listener struct {
	h     *Host
	id    uint64
	uc    *net.UnixConn
	addr  netip.AddrPort
	netwk string
}

var _ net.Listener = (*Listener)(nil)

// Listen listens on address ("ip:port", ":port" for every address of the
// host) on network "tcp", "tcp4" or "tcp6". SO_REUSEADDR is set, as Go's
// net.Listen does. The ip may be any emulated host's: the listener and its
// connections then live on that host.
func (h *Host) Listen(network, address string) (*Listener, error) {
	return h.ListenTCP(network, address, true)
}

// ListenTCP is Listen with the choice of SO_REUSEADDR.
func (h *Host) ListenTCP(network, address string, reuseAddr bool) (*Listener, error) {
	ap, family, err := parseAddr(network, address)
	if err != nil {
		return nil, opErr("listen", network, nil, err)
	}
	laddr := net.TCPAddrFromAddrPort(ap)
	id, fd, err := h.socket(family, unix.SOCK_STREAM, 0)
	if err != nil {
		return nil, opErr("listen", network, laddr, err)
	}
	fail := func(err error) (*Listener, error) {
		unix.Close(fd)
		return nil, opErr("listen", network, laddr, err)
	}
	if err := h.setsockoptInt(id, unix.SOL_SOCKET, unix.SO_REUSEADDR, boolInt(reuseAddr)); err != nil {
		return fail(err)
	}
	if _, _, err := h.call(wire.OpBind, id, wire.AppendAddr(nil, wire.AddrFrom(ap))); err != nil {
		return fail(err)
	}
	if _, _, err := h.call(wire.OpListen, id, wire.Int32Body(4096)); err != nil {
		return fail(err)
	}
	uc, err := fdConn(fd, "swrap-listener")
	if err != nil {
		return fail(err)
	}
	l := &Listener{h: h, id: id, uc: uc, netwk: network}
	l.addr, _ = h.name(wire.OpGetSockName, id)
	return l, nil
}

// Accept waits for the next connection.
func (l *Listener) Accept() (net.Conn, error) {
	buf := make([]byte, wire.AcceptSize)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := l.uc.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, opErr("accept", l.netwk, l.Addr(), err)
	}
	if n == 0 {
		return nil, opErr("accept", l.netwk, l.Addr(), syscall.ECONNABORTED)
	}
	fd := ctlmsg.FirstFD(oob[:oobn])
	rec, err := wire.ParseAccept(buf[:n])
	if err != nil || fd < 0 {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, opErr("accept", l.netwk, l.Addr(), syscall.EPROTO)
	}
	unix.CloseOnExec(fd)
	c, err := l.h.newConn(rec.Sock, fd, l.netwk)
	if err != nil {
		return nil, err
	}
	c.raddr = rec.Peer.AddrPort()
	return c, nil
}

// Close stops listening. It returns once the port is free, as on Linux:
// a connect to it next is refused.
func (l *Listener) Close() error {
	err := l.uc.Close()
	if err == nil {
		l.h.settleClose(l.id)
	}
	return err
}

// Addr returns the listening address.
func (l *Listener) Addr() net.Addr { return net.TCPAddrFromAddrPort(l.addr) }

// settleClose waits for the broker to close socket id, whose fd was just
// closed (wire.OpClosed); an error means the broker is gone, and with it
// the socket.
func (h *Host) settleClose(id uint64) { h.call(wire.OpClosed, id, nil) }

func (h *Host) setsockopt(id uint64, level, name int, v []byte) error {
	o := wire.SockOpt{Level: int32(level), Name: int32(name), OptLen: uint32(len(v)), Value: v}
	_, _, err := h.call(wire.OpSetSockOpt, id, o.Encode())
	return err
}

func (h *Host) setsockoptInt(id uint64, level, name, v int) error {
	return h.setsockopt(id, level, name, ne.AppendUint32(nil, uint32(int32(v))))
}

func (h *Host) getsockoptInt(id uint64, level, name int) (int, error) {
	o := wire.SockOpt{Level: int32(level), Name: int32(name), OptLen: 4}
	rep, _, err := h.call(wire.OpGetSockOpt, id, o.Encode())
	if err != nil {
		return 0, err
	}
	if len(rep.Body) < 4 {
		return 0, syscall.EPROTO
	}
	return int(int32(ne.Uint32(rep.Body))), nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
