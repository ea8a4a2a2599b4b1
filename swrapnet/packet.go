package swrapnet

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swrap/swrap/wire"
)

// PacketConn is a UDP socket (or an ICMP echo socket) on the emulated
// network. Each datagram travels with a small header through a unix
// SOCK_SEQPACKET socket to the broker (docs/protocol.md, Datagrams).
type PacketConn struct {
	h       *Host
	id      uint64
	uc      *net.UnixConn
	network string
	icmp    bool
	laddr   netip.AddrPort
	raddr   netip.AddrPort // set by a connected Dial

	broadcast atomic.Bool // SO_BROADCAST, mirrored for the synchronous check
}

var _ net.PacketConn = (*PacketConn)(nil)
var _ net.Conn = (*PacketConn)(nil)

// ListenPacket opens a datagram socket bound to address, as net.ListenPacket
// does. network is "udp", "udp4" or "udp6", or "icmp"/"icmp6" for an ICMP
// echo socket (Linux's unprivileged ping socket: datagrams are ICMP echo
// messages and the stack fills in the identifier and checksum).
func (h *Host) ListenPacket(network, address string) (*PacketConn, error) {
	pc, err := h.packetSocket(network, address)
	if err != nil {
		return nil, err
	}
	if _, _, err := h.call(wire.OpBind, pc.id, wire.AppendAddr(nil, wire.AddrFrom(pc.laddr))); err != nil {
		pc.Close()
		return nil, opErr("listen", network, pc.LocalAddr(), err)
	}
	pc.laddr, _ = h.name(wire.OpGetSockName, pc.id)
	return pc, nil
}

func (h *Host) packetSocket(network, address string) (*PacketConn, error) {
	proto, pnet := 0, network
	switch network {
	case "udp", "udp4", "udp6":
	case "icmp":
		proto, pnet = unix.IPPROTO_ICMP, "udp4"
	case "icmp6":
		proto, pnet = unix.IPPROTO_ICMPV6, "udp6"
	default:
		return nil, net.UnknownNetworkError(network)
	}
	ap, family, err := parseAddr(pnet, address)
	if err != nil {
		return nil, opErr("listen", network, nil, err)
	}
	id, fd, err := h.socket(family, unix.SOCK_DGRAM, proto)
	if err != nil {
		return nil, opErr("listen", network, nil, err)
	}
	uc, err := fdConn(fd, "swrap-dgram")
	if err != nil {
		return nil, err
	}
	return &PacketConn{h: h, id: id, uc: uc, network: network, icmp: proto != 0, laddr: ap}, nil
}

// dialUDP is Dial for UDP: a connected datagram socket.
func (h *Host) dialUDP(network, address string) (net.Conn, error) {
	ap, _, err := parseAddr(network, address)
	if err != nil {
		return nil, opErr("dial", network, nil, err)
	}
	pc, err := h.packetSocket(network, "[::]:0")
	if ap.Addr().Is4() {
		pc, err = h.packetSocket(network, "0.0.0.0:0")
	}
	if err != nil {
		return nil, err
	}
	if _, _, err := h.call(wire.OpConnect, pc.id, wire.Connect{Addr: wire.AddrFrom(ap)}.Encode()); err != nil {
		pc.Close()
		return nil, opErr("dial", network, net.UDPAddrFromAddrPort(ap), err)
	}
	pc.raddr = ap
	pc.laddr, _ = h.name(wire.OpGetSockName, pc.id)
	return pc, nil
}

// ReadFrom reads one datagram and its source address.
func (c *PacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.readFrom(b)
	if err != nil {
		return 0, nil, err
	}
	return n, c.addr(from), nil
}

// ReadFromUDPAddrPort reads one datagram and its source address.
func (c *PacketConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, d, err := c.readFrom(b)
	return n, d, err
}

// dgramBufs hold one datagram with its header while it is read, so that a
// read allocates nothing.
var dgramBufs = sync.Pool{New: func() any { b := make([]byte, wire.DgramHeaderSize+65536); return &b }}

func (c *PacketConn) readFrom(b []byte) (int, netip.AddrPort, error) {
	bp := dgramBufs.Get().(*[]byte)
	defer dgramBufs.Put(bp)
	buf := (*bp)[:wire.DgramHeaderSize+min(len(b), 65536)]
	n, err := c.uc.Read(buf)
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	if n == 0 {
		return 0, netip.AddrPort{}, opErr("read", c.network, c.LocalAddr(), syscall.ECONNRESET)
	}
	d, payload, err := wire.ParseDgram(buf[:n])
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	if d.Flags&wire.DgramError != 0 {
		// An ICMP error for an earlier datagram (ECONNREFUSED on a
		// connected socket), reported once, as net.UDPConn does.
		return 0, netip.AddrPort{}, opErr("read", c.network, c.LocalAddr(), syscall.Errno(d.IfIndex))
	}
	return copy(b, payload), d.Peer.AddrPort(), nil
}

// WriteTo sends one datagram to addr.
func (c *PacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	var ap netip.AddrPort
	switch a := addr.(type) {
	case *net.UDPAddr:
		// net.IPv4 makes 16-byte addresses: unmap them, or an IPv4
		// destination would look like an IPv6 one.
		ap = netip.AddrPortFrom(a.AddrPort().Addr().Unmap(), a.AddrPort().Port())
	case *net.IPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		ap = netip.AddrPortFrom(ip.Unmap(), 0)
	default:
		return 0, opErr("write", c.network, addr, syscall.EAFNOSUPPORT)
	}
	return c.WriteToUDPAddrPort(b, ap)
}

// WriteToUDPAddrPort sends one datagram to ap. Like Linux, it refuses a
// broadcast destination without SO_BROADCAST (EACCES) at once: the datagram
// itself travels to the broker asynchronously.
func (c *PacketConn) WriteToUDPAddrPort(b []byte, ap netip.AddrPort) (int, error) {
	if ap.IsValid() && c.h.plan.IsBroadcast(ap.Addr()) && !c.broadcast.Load() {
		return 0, opErr("write", c.network, net.UDPAddrFromAddrPort(ap), syscall.EACCES)
	}
	// One writev: the header and the caller's bytes, not copied together.
	msg := net.Buffers{wire.AppendDgram(nil, wire.Dgram{Peer: wire.AddrFrom(ap)}), b}
	if _, err := msg.WriteTo(c.uc); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Read reads a datagram from the connected peer.
func (c *PacketConn) Read(b []byte) (int, error) {
	n, _, err := c.readFrom(b)
	return n, err
}

// Write sends a datagram to the connected peer.
func (c *PacketConn) Write(b []byte) (int, error) {
	return c.WriteToUDPAddrPort(b, netip.AddrPort{})
}

// SetBroadcast sets SO_BROADCAST.
func (c *PacketConn) SetBroadcast(on bool) error {
	if err := c.h.setsockoptInt(c.id, unix.SOL_SOCKET, unix.SO_BROADCAST, boolInt(on)); err != nil {
		return err
	}
	c.broadcast.Store(on)
	return nil
}

// Close closes the socket. A socket made by ListenPacket returns once its
// port is free, as on Linux: a datagram sent to it next is refused. A
// Dial'd one, whose port was picked for it and is known to its peer
// alone, does not wait.
func (c *PacketConn) Close() error {
	err := c.uc.Close()
	if err == nil && !c.raddr.IsValid() {
		c.h.settleClose(c.id)
	}
	return err
}

func (c *PacketConn) addr(ap netip.AddrPort) net.Addr {
	if c.icmp {
		return &net.IPAddr{IP: ap.Addr().AsSlice()}
	}
	return net.UDPAddrFromAddrPort(ap)
}

// LocalAddr returns the bound address.
func (c *PacketConn) LocalAddr() net.Addr { return c.addr(c.laddr) }

// RemoteAddr returns the connected peer, or nil.
func (c *PacketConn) RemoteAddr() net.Addr {
	if !c.raddr.IsValid() {
		return nil
	}
	return c.addr(c.raddr)
}

// SetDeadline sets the read and write deadlines.
func (c *PacketConn) SetDeadline(t time.Time) error { return c.uc.SetDeadline(t) }

// SetReadDeadline sets the read deadline.
func (c *PacketConn) SetReadDeadline(t time.Time) error { return c.uc.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (c *PacketConn) SetWriteDeadline(t time.Time) error { return c.uc.SetWriteDeadline(t) }
