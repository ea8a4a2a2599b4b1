package broker

import (
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// IP_PKTOPTIONS and IPV6_2292PKTOPTIONS: getsockopt on a TCP socket fills
// the buffer with the control messages a datagram socket would receive
// (ip_sockglue.c do_ip_getsockopt, ipv6_sockglue.c do_ipv6_getsockopt).
// Servers such as dnsmasq use them on accepted connections to learn the
// interface a connection arrived on. The emulated host has one interface,
// index 1, as the shim's IP_PKTINFO on UDP says.

const (
	ifIndex       = 1  // the emulated host's only interface
	synTTL        = 64 // TTL / hop limit of a SYN from an emulated host
	defaultMcastT = 1  // mc_ttl / mcast_hops of a socket that was not accepted
	cmsgHdrLen    = 16 // struct cmsghdr on 64-bit Linux
)

func cmsgAlign(n int) int { return (n + 7) &^ 7 }

// cmsgBuf builds control messages into an option buffer of limit bytes
// exactly as Linux's put_cmsg does: nothing without room for a header, at
// most CMSG_LEN(len) bytes with cmsg_len saying how many, the next message
// min(CMSG_SPACE(len), room) further on. len(b) is then the optlen Linux
// returns.
type cmsgBuf struct {
	b     []byte
	limit int
}

func (c *cmsgBuf) put(level, typ int, data []byte) {
	room := c.limit - len(c.b)
	if room < cmsgHdrLen {
		return
	}
	cmlen := min(cmsgHdrLen+len(data), room)
	m := ne.AppendUint64(nil, uint64(cmlen))
	m = ne.AppendUint32(m, uint32(int32(level)))
	m = ne.AppendUint32(m, uint32(int32(typ)))
	m = append(m, data...)[:cmlen]
	// Linux leaves the padding up to CMSG_SPACE untouched; it goes out
	// as zeros here and the shim does not copy it (sockopt.c).
	adv := min(cmsgHdrLen+cmsgAlign(len(data)), room)
	c.b = append(c.b, m...)
	c.b = append(c.b, make([]byte, adv-cmlen)...)
}

func (c *cmsgBuf) putInt(level, typ, v int) {
	c.put(level, typ, ne.AppendUint32(nil, uint32(int32(v))))
}

// inheritPktOptions gives an accepted socket what Linux's accepted sockets
// get from their listener and their SYN (tcp_v4_syn_recv_sock,
// tcp_v6_syn_recv_sock): the pktinfo flags, an interface, and for IPv6 the
// SYN itself as packet options when the listener asked for them.
func (s *sock) inheritPktOptions(ns *sock, peer netip.AddrPort) {
	s.mu.Lock()
	p4, p6 := s.pktinfo, s.pktinfo6
	s.mu.Unlock()
	hl := s.ep.SocketOptions().GetReceiveHopLimit()
	ns.mu.Lock()
	ns.pktinfo, ns.pktinfo6 = p4, p6
	ns.accepted = true
	ns.synOpts = s.family == unix.AF_INET6 && !peer.Addr().Unmap().Is4() && (p6 || hl)
	ns.mu.Unlock()
}

// ipPktOptions answers IP_PKTOPTIONS: IP_PKTINFO (local address, the
// arrival interface of an accepted socket, else 0), IP_TTL (the SYN's TTL
// if accepted, else the multicast TTL) and IP_TOS, each if asked for.
func (s *sock) ipPktOptions(optlen int) ([]byte, syscall.Errno) {
	if s.typ != unix.SOCK_STREAM {
		return nil, syscall.ENOPROTOOPT
	}
	s.mu.Lock()
	pk, acc := s.pktinfo, s.accepted
	s.mu.Unlock()
	opts := s.ep.SocketOptions()
	c := cmsgBuf{limit: optlen}
	if pk {
		// struct in_pktinfo: ipi_ifindex, ipi_spec_dst, ipi_addr, both
		// addresses inet_rcv_saddr.
		var a [4]byte
		if l := s.localAddr().Addr().Unmap(); l.Is4() {
			a = l.As4()
		}
		d := ne.AppendUint32(nil, uint32(boolInt(acc)*ifIndex))
		d = append(append(d, a[:]...), a[:]...)
		c.put(unix.IPPROTO_IP, unix.IP_PKTINFO, d)
	}
	if opts.GetReceiveTTL() {
		ttl := defaultMcastT
		if acc {
			ttl = synTTL
		}
		c.putInt(unix.IPPROTO_IP, unix.IP_TTL, ttl)
	}
	if opts.GetReceiveTOS() {
		c.putInt(unix.IPPROTO_IP, unix.IP_TOS, 0) // the emulated hosts' SYNs carry TOS 0
	}
	return c.b, 0
}

// ipv6PktOptions answers IPV6_2292PKTOPTIONS. An accepted socket whose
// listener asked for IPv6 packet options keeps its SYN: IPV6_PKTINFO then
// names the local address. Otherwise Linux makes it up from mcast_oif: the
// arrival interface and the peer's address for an accepted socket, zeros
// for any other.
func (s *sock) ipv6PktOptions(optlen int) ([]byte, syscall.Errno) {
	if s.typ != unix.SOCK_STREAM {
		return nil, syscall.ENOPROTOOPT
	}
	s.mu.Lock()
	pk, acc, syn := s.pktinfo6, s.accepted, s.synOpts
	s.mu.Unlock()
	c := cmsgBuf{limit: optlen}
	if pk {
		var a [16]byte
		switch {
		case syn:
			a = as16(s.localAddr().Addr())
		case acc:
			if r, en := s.remoteAddr(); en == 0 {
				a = as16(r.Addr())
			}
		}
		d := append([]byte(nil), a[:]...)
		d = ne.AppendUint32(d, uint32(boolInt(acc)*ifIndex))
		c.put(unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, d)
	}
	if s.ep.SocketOptions().GetReceiveHopLimit() {
		hl := defaultMcastT
		if acc {
			hl = synTTL
		}
		c.putInt(unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, hl)
	}
	return c.b, 0
}

// as16 is a's 16-byte form, an IPv4 address mapped.
func as16(a netip.Addr) [16]byte {
	if !a.IsValid() {
		return [16]byte{}
	}
	return a.As16()
}
