package tap

import (
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// The ICMP errors quote as much of the offending packet as keeps the error
// within the minimum MTU, as Linux does (RFC 1812 4.3.2.3, RFC 4443 2.4 c).
const (
	maxICMPv4Error = 576
	maxICMPv6Error = header.IPv6MinimumMTU
)

// unreachablePacket builds the ICMP destination unreachable a router would
// send back for the packet made of parts (host unreachable, code 1, for
// IPv4; address unreachable, code 3, for IPv6), hands it to the capture
// hook, and returns it as an inbound packet for the sending stack. It
// returns nil when no error may be sent: for an ICMP error (RFC 1122
// 3.2.2), or without a source address configured.
func (e *Endpoint) unreachablePacket(parts [][]byte) *localPacket {
	first := parts[0]
	var b []byte
	var proto tcpip.NetworkProtocolNumber
	lp := &localPacket{}
	switch first[0] >> 4 {
	case 4:
		if !e.cfg.ICMPSource4.Is4() || len(first) < header.IPv4MinimumSize {
			return nil
		}
		orig := header.IPv4(first)
		hl := int(orig.HeaderLength())
		if orig.Protocol() == uint8(header.ICMPv4ProtocolNumber) && len(first) > hl {
			if t := header.ICMPv4Type(first[hl]); t != header.ICMPv4Echo && t != header.ICMPv4EchoReply {
				return nil
			}
		}
		if orig.FragmentOffset() != 0 {
			return nil
		}
		b = buildICMPv4(e.cfg.ICMPSource4.As4(), orig.SourceAddress(), parts)
		proto = header.IPv4ProtocolNumber
	case 6:
		if !e.cfg.ICMPSource6.Is6() || len(first) < header.IPv6MinimumSize {
			return nil
		}
		orig := header.IPv6(first)
		if orig.NextHeader() == uint8(header.ICMPv6ProtocolNumber) && len(first) > header.IPv6MinimumSize {
			if first[header.IPv6MinimumSize] < 128 { // types 0..127 are errors
				return nil
			}
		}
		b = buildICMPv6(e.cfg.ICMPSource6.As16(), orig.SourceAddress(), parts)
		proto = header.IPv6ProtocolNumber
		if orig.NextHeader() == uint8(header.TCPProtocolNumber) || orig.NextHeader() == uint8(header.UDPProtocolNumber) {
			lp.v6 = &transportError6{
				local:   orig.SourceAddress(),
				remote:  orig.DestinationAddress(),
				trans:   tcpip.TransportProtocolNumber(orig.NextHeader()),
				payload: b[header.IPv6MinimumSize+header.ICMPv6DstUnreachableMinimumSize+header.IPv6MinimumSize:],
			}
		}
	default:
		return nil
	}
	if e.cfg.Capture != nil {
		e.cfg.Capture(time.Now(), [][]byte{b})
	}
	lp.pkt = stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
	lp.pkt.NetworkProtocolNumber = proto
	return lp
}

// localPacket is an ICMP error waiting to be delivered to the sending stack.
type localPacket struct {
	pkt *stack.PacketBuffer
	v6  *transportError6 // set for ICMPv6 errors quoting TCP or UDP
}

// transportError6 is what netstack would extract from an ICMPv6 address
// unreachable if it handled one: gVisor's ipv6 (this version) acts only on
// codes 0 (no route) and 4 (port unreachable) and ignores code 3, so a
// connect to a missing IPv6 host would hang. The endpoint delivers the
// error to the transport layer itself, as ipv6's handleControl does for the
// codes it knows.
type transportError6 struct {
	local, remote tcpip.Address
	trans         tcpip.TransportProtocolNumber
	payload       []byte // the quoted packet from its transport header on
}

// deliver hands the error to d's transport layer.
func (t *transportError6) deliver(d stack.NetworkDispatcher) {
	td, ok := d.(stack.TransportDispatcher)
	if !ok {
		return
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(t.payload)})
	defer pkt.DecRef()
	pkt.NetworkProtocolNumber = header.IPv6ProtocolNumber
	if n, ok := d.(interface{ ID() tcpip.NICID }); ok {
		pkt.NICID = n.ID()
	}
	td.DeliverTransportError(t.local, t.remote, header.IPv6ProtocolNumber, t.trans, addressUnreachable6{}, pkt)
}

// addressUnreachable6 is the stack.TransportError of an ICMPv6 destination
// unreachable, code 3 (address unreachable): netstack maps it to
// ErrHostUnreachable (EHOSTUNREACH), as Linux does.
type addressUnreachable6 struct{}

var _ stack.TransportError = addressUnreachable6{}

func (addressUnreachable6) Origin() tcpip.SockErrOrigin { return tcpip.SockExtErrorOriginICMP6 }
func (addressUnreachable6) Type() uint8                 { return uint8(header.ICMPv6DstUnreachable) }
func (addressUnreachable6) Code() uint8                 { return uint8(header.ICMPv6AddressUnreachable) }
func (addressUnreachable6) Info() uint32                { return 0 }
func (addressUnreachable6) Kind() stack.TransportErrorKind {
	return stack.DestinationHostUnreachableTransportError
}

// gather copies up to len(dst) bytes of parts into dst and returns how many.
func gather(dst []byte, parts [][]byte) int {
	n := 0
	for _, p := range parts {
		if n == len(dst) {
			break
		}
		n += copy(dst[n:], p)
	}
	return n
}

// size returns the total length of parts.
func size(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}

func buildICMPv4(src [4]byte, dst tcpip.Address, parts [][]byte) []byte {
	const hdrs = header.IPv4MinimumSize + header.ICMPv4MinimumSize
	quote := min(size(parts), maxICMPv4Error-hdrs)
	b := make([]byte, hdrs+quote)
	gather(b[hdrs:], parts)
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(len(b)),
		TTL:         64,
		Protocol:    uint8(header.ICMPv4ProtocolNumber),
		SrcAddr:     tcpip.AddrFrom4(src),
		DstAddr:     dst,
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	icmp := header.ICMPv4(b[header.IPv4MinimumSize:])
	icmp.SetType(header.ICMPv4DstUnreachable)
	icmp.SetCode(header.ICMPv4HostUnreachable)
	icmp.SetChecksum(^checksum.Checksum(icmp, 0))
	return b
}

func buildICMPv6(src [16]byte, dst tcpip.Address, parts [][]byte) []byte {
	const hdrs = header.IPv6MinimumSize + header.ICMPv6DstUnreachableMinimumSize
	quote := min(size(parts), maxICMPv6Error-hdrs)
	b := make([]byte, hdrs+quote)
	gather(b[hdrs:], parts)
	srcAddr := tcpip.AddrFrom16(src)
	ip := header.IPv6(b)
	ip.Encode(&header.IPv6Fields{
		PayloadLength:     uint16(len(b) - header.IPv6MinimumSize),
		TransportProtocol: header.ICMPv6ProtocolNumber,
		HopLimit:          64,
		SrcAddr:           srcAddr,
		DstAddr:           dst,
	})
	icmp := header.ICMPv6(b[header.IPv6MinimumSize:])
	icmp.SetType(header.ICMPv6DstUnreachable)
	icmp.SetCode(header.ICMPv6AddressUnreachable)
	icmp.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{
		Header: icmp,
		Src:    srcAddr,
		Dst:    dst,
	}))
	return b
}
