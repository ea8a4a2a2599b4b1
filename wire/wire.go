// Package wire holds the swrap wire protocol: the messages between wrapped
// programs (the preload shim, the Go client swrapnet) and swrap-broker.
//
// docs/protocol.md describes every message; shim/swrap_proto.h is the C twin
// of this file and the two must change together (wire_test.go checks sizes).
// The package only encodes and decodes; it never does I/O, so that its
// decoder can be fuzzed on its own.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// Magic starts every header: "SWRP" read as a little-endian uint32.
const Magic = 0x50525753

// Version is the protocol version this package speaks.
const Version = 1

// File names inside "$SOCKET_WRAPPER_DIR/swrap/".
const (
	SubDir   = "swrap"       // the broker's 0700 directory
	CtlSock  = "broker.sock" // SOCK_SEQPACKET control socket
	LockFile = "broker.lock" // flock()ed by the live broker; holds its pid
	LogFile  = "broker.log"  // log of an on-demand broker
	HostDir  = "host"        // fabric sockets, one per host
)

// NamePrefix starts the abstract unix name of every app end ("\0swrap.").
const NamePrefix = "swrap."

// NameLen is the number of sun_path bytes of an app end's name, including
// the leading NUL: "\0swrap.<16 hex instance>.<16 hex id>".
const NameLen = 40

// Op is a request operation.
type Op uint16

// The operations. Values are part of the protocol.
const (
	OpHello       Op = 1
	OpSocket      Op = 2
	OpBind        Op = 3
	OpListen      Op = 4
	OpConnect     Op = 5
	OpShutdown    Op = 6
	OpGetSockName Op = 7
	OpGetPeerName Op = 8
	OpGetSockOpt  Op = 9
	OpSetSockOpt  Op = 10
	OpStat        Op = 11
	OpStatus      Op = 12
	OpIoctl       Op = 13
	// OpSetLink sets network conditions: the body is text in the grammar
	// of netem.Parse; the reply is empty, or EINVAL if it does not parse.
	OpSetLink Op = 14
	// OpGetLinks asks for the links with conditions: the reply is a JSON
	// array of netem.Status.
	OpGetLinks Op = 15
	// OpNewCtl asks, on a control connection that has done HELLO, for
	// another control connection: the reply carries one fd (SCM_RIGHTS),
	// an AF_UNIX SOCK_SEQPACKET socket that the broker serves exactly like
	// a connection accepted on broker.sock (its first request must be
	// HELLO). The body is empty. A process that has changed uid or
	// chroot()ed, and so can no longer connect to broker.sock, keeps the
	// network through a connection it already holds.
	OpNewCtl Op = 16
	// OpResolve asks the name table (package names): the body is
	// struct swrap_resolve (ResolveSize bytes: kind, arg) and a name or an
	// address; the reply depends on the kind (ResolveName, ResolveAddr,
	// ResolveQuery). A name the table lacks gets ENOENT; a name without an
	// address of the asked family, ENODATA.
	OpResolve Op = 17
	// OpCapture asks, on a control connection that has done HELLO, for a
	// live capture: the body is a Capture, the reply carries one fd
	// (SCM_RIGHTS), an AF_UNIX SOCK_STREAM socket on which the broker
	// writes pcapng from now on, until the reader closes or shuts down
	// its end for writing.
	OpCapture Op = 18
	// OpServed is never a request: it is the op of the message (a reply,
	// with ReplyBit) that tells a client how many of its NoReplyBit
	// requests the broker served since the last one (body Served). It
	// precedes the reply to the next request without NoReplyBit.
	OpServed Op = 19
	// OpClosed tells the broker that the program has just closed an fd
	// of the socket (a UDP socket or a listener; empty body). If that
	// was the last one, the reply comes once the broker has closed the
	// socket, so that its port is free when the program's close()
	// returns, as on Linux; if another process still holds the socket,
	// at once. An unknown socket id is not an error: it is closed.
	OpClosed Op = 20
)

// NoReplyBit, or'ed into the op of a request, asks for no reply: the
// broker serves the request in its place in the connection's order, counts
// it, and sends an OpServed message before the reply to the connection's
// next request without the bit. Brokers that honour it say FeatNoReply in
// HelloRep.Features.
const NoReplyBit = 0x4000

// FeatNoReply in HelloRep.Features: requests may carry NoReplyBit.
const FeatNoReply = 1

// Kinds of OpResolve, in Resolve.Kind.
const (
	// ResolveName: Arg is the address family wanted (AF_INET, AF_INET6 or
	// AF_UNSPEC for both) and the rest of the body is the name. The reply
	// is ResolveRepSize bytes (the canonical name, NUL-padded, and a
	// count) followed by count ResolveAddrSize entries (family, address).
	ResolveName = 1
	// ResolveAddr: Arg is AF_INET or AF_INET6 and the rest is the 4 or 16
	// address bytes; the reply is the address's name (no NUL).
	ResolveAddr = 2
	// ResolveQuery: Arg is the query type (low 16 bits) and class (high
	// 16 bits), the rest the name; the reply is the DNS response message
	// the broker's DNS server would send, whatever its RCODE.
	ResolveQuery = 3
	// ResolveMessage: the rest is a DNS query message (res_send); the
	// reply is the DNS server's response to it.
	ResolveMessage = 4
)

// ResolveMaxAddrs bounds the addresses of a ResolveName reply.
const ResolveMaxAddrs = 64

// Sizes of the OpResolve structs.
const (
	ResolveSize     = 8
	ResolveRepSize  = 264
	ResolveAddrSize = 20
)

// Resolve is struct swrap_resolve and what follows it.
type Resolve struct {
	Kind uint32
	Arg  uint32
	Data []byte // the name, or the address bytes
}

// ParseResolve decodes a RESOLVE body.
func ParseResolve(b []byte) (Resolve, error) {
	if len(b) < ResolveSize {
		return Resolve{}, malformed("RESOLVE of %d bytes", len(b))
	}
	return Resolve{Kind: ne.Uint32(b[0:]), Arg: ne.Uint32(b[4:]), Data: b[ResolveSize:]}, nil
}

// Encode returns the body of a RESOLVE request.
func (r Resolve) Encode() []byte {
	b := ne.AppendUint32(nil, r.Kind)
	b = ne.AppendUint32(b, r.Arg)
	return append(b, r.Data...)
}

// EncodeResolveName returns the reply to a ResolveName request: canon
// (truncated to 255 bytes) and the addresses.
func EncodeResolveName(canon string, addrs []netip.Addr) []byte {
	var name [256]byte
	copy(name[:255], canon)
	b := append([]byte(nil), name[:]...)
	b = ne.AppendUint32(b, uint32(len(addrs)))
	b = ne.AppendUint32(b, 0)
	for _, a := range addrs {
		fam, ip := uint32(AFInet), a.AsSlice()
		if a.Is6() {
			fam = AFInet6
		}
		var raw [16]byte
		copy(raw[:], ip)
		b = ne.AppendUint32(b, fam)
		b = append(b, raw[:]...)
	}
	return b
}

// ReplyBit is or'ed into the op of a reply.
const ReplyBit = 0x8000

var opNames = map[Op]string{
	OpHello: "HELLO", OpSocket: "SOCKET", OpBind: "BIND", OpListen: "LISTEN",
	OpConnect: "CONNECT", OpShutdown: "SHUTDOWN", OpGetSockName: "GETSOCKNAME",
	OpGetPeerName: "GETPEERNAME", OpGetSockOpt: "GETSOCKOPT", OpSetSockOpt: "SETSOCKOPT",
	OpStat: "STAT", OpStatus: "STATUS", OpIoctl: "IOCTL",
	OpSetLink: "SETLINK", OpGetLinks: "GETLINKS", OpNewCtl: "NEWCTL", OpResolve: "RESOLVE",
	OpCapture: "CAPTURE", OpServed: "SERVED", OpClosed: "CLOSED",
}

func (o Op) String() string {
	if s, ok := opNames[o]; ok {
		return s
	}
	return fmt.Sprintf("OP(%d)", uint16(o))
}

// Sizes of the fixed structs, as in swrap_proto.h.
const (
	ReqHeaderSize   = 16
	RepHeaderSize   = 16
	AddrSize        = 24
	HelloSize       = 24
	HelloRepSize    = 32
	HelloRepSizeV1  = 24 // the HELLO reply of a broker without features
	ServedSize      = 16
	SocketSize      = 16
	SocketRepSize   = 8
	ListenSize      = 8
	ConnectSize     = AddrSize + 8
	ShutdownSize    = 8
	SockOptSize     = 16
	StatRepSize     = 24
	IoctlSize       = 8
	AcceptSize      = 16 + AddrSize
	DgramHeaderSize = 8 + 2*AddrSize
)

// MaxMessage bounds any control message, request or reply.
const MaxMessage = 64 << 10

// ConnectNonblock in Connect.Flags asks for EINPROGRESS instead of waiting.
const ConnectNonblock = 1

// SolSwrap is the SETSOCKOPT level of swrap's own options.
const SolSwrap = 0x5357

// SwrapDgramBare, an int at level SolSwrap: 1 makes a UDP socket's app end
// carry bare payloads, to and from the connected peer, without the
// swrap_dgram header (the seccomp path sets it on a connected UDP socket,
// whose read and write it does not see); 0 puts the headers back.
const SwrapDgramBare = 1

// State of a socket as STAT reports it.
type State uint32

// Socket states.
const (
	StateNew        State = 0
	StateBound      State = 1
	StateListening  State = 2
	StateConnecting State = 3
	StateConnected  State = 4
	StateClosed     State = 5
)

func (s State) String() string {
	switch s {
	case StateNew:
		return "new"
	case StateBound:
		return "bound"
	case StateListening:
		return "listening"
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("state(%d)", uint32(s))
}

// StatBroadcast in StatRep.Flags: SO_BROADCAST is set.
const StatBroadcast = 1

var ne = binary.NativeEndian

// ErrMalformed is returned (wrapped) for any message that cannot be decoded.
var ErrMalformed = errors.New("malformed message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// Request is a decoded request header plus its raw body.
type Request struct {
	Version uint16
	Op      Op
	Sock    uint64
	Body    []byte // aliases the decoded buffer
}

// ParseRequest decodes a request message. It checks the magic and length;
// the version is returned for the caller to check, so that it can answer a
// request of another version with EPROTONOSUPPORT.
func ParseRequest(b []byte) (Request, error) {
	if len(b) < ReqHeaderSize {
		return Request{}, malformed("request of %d bytes is shorter than its header", len(b))
	}
	if m := ne.Uint32(b[0:]); m != Magic {
		return Request{}, malformed("bad magic %#x", m)
	}
	return Request{
		Version: ne.Uint16(b[4:]),
		Op:      Op(ne.Uint16(b[6:])),
		Sock:    ne.Uint64(b[8:]),
		Body:    b[ReqHeaderSize:],
	}, nil
}

// AppendRequest appends a request header and body to dst.
func AppendRequest(dst []byte, op Op, sock uint64, body []byte) []byte {
	dst = ne.AppendUint32(dst, Magic)
	dst = ne.AppendUint16(dst, Version)
	dst = ne.AppendUint16(dst, uint16(op))
	dst = ne.AppendUint64(dst, sock)
	return append(dst, body...)
}

// Reply is a decoded reply header plus its raw body.
type Reply struct {
	Op   Op // without ReplyBit
	Err  syscall.Errno
	Body []byte
}

// AppendReply appends a reply header and body to dst.
func AppendReply(dst []byte, op Op, errno syscall.Errno, body []byte) []byte {
	dst = ne.AppendUint32(dst, Magic)
	dst = ne.AppendUint16(dst, Version)
	dst = ne.AppendUint16(dst, uint16(op)|ReplyBit)
	dst = ne.AppendUint32(dst, uint32(int32(errno)))
	dst = ne.AppendUint32(dst, uint32(len(body)))
	return append(dst, body...)
}

// ParseReply decodes a reply message.
func ParseReply(b []byte) (Reply, error) {
	if len(b) < RepHeaderSize {
		return Reply{}, malformed("reply of %d bytes is shorter than its header", len(b))
	}
	if m := ne.Uint32(b[0:]); m != Magic {
		return Reply{}, malformed("bad magic %#x", m)
	}
	if v := ne.Uint16(b[4:]); v != Version {
		return Reply{}, malformed("reply version %d, want %d", v, Version)
	}
	op := ne.Uint16(b[6:])
	if op&ReplyBit == 0 {
		return Reply{}, malformed("op %#x is not a reply", op)
	}
	errno := int32(ne.Uint32(b[8:]))
	n := ne.Uint32(b[12:])
	if errno < 0 || int(n) != len(b)-RepHeaderSize {
		return Reply{}, malformed("reply errno %d, body %d of %d bytes", errno, n, len(b)-RepHeaderSize)
	}
	return Reply{Op: Op(op &^ ReplyBit), Err: syscall.Errno(errno), Body: b[RepHeaderSize:]}, nil
}

// Address families as Linux numbers them.
const (
	AFUnspec = 0
	AFInet   = 2
	AFInet6  = 10
)

// Addr is struct swrap_addr: an IPv4 or IPv6 address and port, or none
// (Family 0).
type Addr struct {
	Family  uint16
	Port    uint16
	ScopeID uint32
	IP      netip.Addr // invalid when Family is 0
}

// AddrFrom returns the Addr for ap, of family AFInet for IPv4 addresses and
// AFInet6 for IPv6 ones (v4-mapped included).
func AddrFrom(ap netip.AddrPort) Addr {
	if !ap.IsValid() {
		return Addr{}
	}
	a := Addr{Family: AFInet6, Port: ap.Port(), IP: ap.Addr()}
	if ap.Addr().Is4() {
		a.Family = AFInet
	}
	return a
}

// AddrPort returns the address as a netip.AddrPort (invalid if none).
func (a Addr) AddrPort() netip.AddrPort {
	if a.Family == AFUnspec {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.IP, a.Port)
}

func (a Addr) String() string {
	if a.Family == AFUnspec {
		return "none"
	}
	return a.AddrPort().String()
}

// AppendAddr appends the 24-byte encoding of a.
func AppendAddr(dst []byte, a Addr) []byte {
	dst = ne.AppendUint16(dst, a.Family)
	dst = ne.AppendUint16(dst, a.Port)
	dst = ne.AppendUint32(dst, a.ScopeID)
	var ip [16]byte
	switch a.Family {
	case AFInet:
		b := a.IP.Unmap().As4()
		copy(ip[:], b[:])
	case AFInet6:
		ip = a.IP.As16()
	}
	return append(dst, ip[:]...)
}

// ParseAddr decodes a 24-byte swrap_addr. An unknown family is an error.
func ParseAddr(b []byte) (Addr, error) {
	if len(b) < AddrSize {
		return Addr{}, malformed("address of %d bytes", len(b))
	}
	a := Addr{Family: ne.Uint16(b[0:]), Port: ne.Uint16(b[2:]), ScopeID: ne.Uint32(b[4:])}
	switch a.Family {
	case AFUnspec:
		a.Port, a.ScopeID = 0, 0
	case AFInet:
		a.IP = netip.AddrFrom4([4]byte(b[8:12]))
		a.ScopeID = 0
	case AFInet6:
		a.IP = netip.AddrFrom16([16]byte(b[8:24]))
	default:
		return Addr{}, syscall.EAFNOSUPPORT
	}
	return a, nil
}

// Hello is struct swrap_hello plus the optional capture path.
type Hello struct {
	PID   uint32
	Iface uint32
	Comm  string
	Pcap  string
}

// Encode returns the body of a HELLO request.
func (h Hello) Encode() []byte {
	b := ne.AppendUint32(nil, h.PID)
	b = ne.AppendUint32(b, h.Iface)
	var comm [16]byte
	copy(comm[:], h.Comm)
	b = append(b, comm[:]...)
	return append(b, h.Pcap...)
}

// ParseHello decodes a HELLO body.
func ParseHello(b []byte) (Hello, error) {
	if len(b) < HelloSize {
		return Hello{}, malformed("HELLO of %d bytes", len(b))
	}
	return Hello{
		PID:   ne.Uint32(b[0:]),
		Iface: ne.Uint32(b[4:]),
		Comm:  cstring(b[8:24]),
		Pcap:  string(b[HelloSize:]),
	}, nil
}

// HelloRep is struct swrap_hello_rep.
type HelloRep struct {
	BrokerPID uint32
	MTU       uint32
	Instance  string // 16 hex digits
	Features  uint32 // FeatNoReply; 0 from a broker whose reply has none
}

// Encode returns the body of a HELLO reply.
func (h HelloRep) Encode() []byte {
	b := ne.AppendUint32(nil, h.BrokerPID)
	b = ne.AppendUint32(b, h.MTU)
	var inst [16]byte
	copy(inst[:], h.Instance)
	b = append(b, inst[:]...)
	b = ne.AppendUint32(b, h.Features)
	return ne.AppendUint32(b, 0)
}

// ParseHelloRep decodes a HELLO reply body: HelloRepSize bytes, or the
// HelloRepSizeV1 of a broker without features.
func ParseHelloRep(b []byte) (HelloRep, error) {
	if len(b) < HelloRepSizeV1 {
		return HelloRep{}, malformed("HELLO reply of %d bytes", len(b))
	}
	h := HelloRep{BrokerPID: ne.Uint32(b[0:]), MTU: ne.Uint32(b[4:]), Instance: cstring(b[8:24])}
	if len(b) >= HelloRepSize {
		h.Features = ne.Uint32(b[24:])
	}
	return h, nil
}

// Served is struct swrap_served, the body of an OpServed message.
type Served struct {
	Count   uint32        // NoReplyBit requests served since the last OpServed
	Failed  uint32        // how many of them failed
	FailOp  Op            // the last failed one's op
	FailErr syscall.Errno // and its errno
}

// Encode returns the body of an OpServed message.
func (s Served) Encode() []byte {
	b := ne.AppendUint32(nil, s.Count)
	b = ne.AppendUint32(b, s.Failed)
	b = ne.AppendUint16(b, uint16(s.FailOp))
	b = ne.AppendUint16(b, 0)
	return ne.AppendUint32(b, uint32(int32(s.FailErr)))
}

// ParseServed decodes the body of an OpServed message.
func ParseServed(b []byte) (Served, error) {
	if len(b) < ServedSize {
		return Served{}, malformed("SERVED of %d bytes", len(b))
	}
	return Served{Count: ne.Uint32(b[0:]), Failed: ne.Uint32(b[4:]), FailOp: Op(ne.Uint16(b[8:])),
		FailErr: syscall.Errno(int32(ne.Uint32(b[12:])))}, nil
}

// Socket is struct swrap_socket.
type Socket struct {
	Family, Type, Protocol int32
	Iface                  uint32
}

// Encode returns the body of a SOCKET request.
func (s Socket) Encode() []byte {
	b := ne.AppendUint32(nil, uint32(s.Family))
	b = ne.AppendUint32(b, uint32(s.Type))
	b = ne.AppendUint32(b, uint32(s.Protocol))
	return ne.AppendUint32(b, s.Iface)
}

// ParseSocket decodes a SOCKET body.
func ParseSocket(b []byte) (Socket, error) {
	if len(b) != SocketSize {
		return Socket{}, malformed("SOCKET of %d bytes", len(b))
	}
	return Socket{
		Family:   int32(ne.Uint32(b[0:])),
		Type:     int32(ne.Uint32(b[4:])),
		Protocol: int32(ne.Uint32(b[8:])),
		Iface:    ne.Uint32(b[12:]),
	}, nil
}

// Connect is struct swrap_connect.
type Connect struct {
	Addr   Addr
	Flags  uint32
	Filler uint32 // filler bytes written to the app end before (see swrap_proto.h)
}

// Encode returns the body of a CONNECT request.
func (c Connect) Encode() []byte {
	b := AppendAddr(nil, c.Addr)
	b = ne.AppendUint32(b, c.Flags)
	return ne.AppendUint32(b, c.Filler)
}

// ParseConnect decodes a CONNECT body.
func ParseConnect(b []byte) (Connect, error) {
	if len(b) != ConnectSize {
		return Connect{}, malformed("CONNECT of %d bytes", len(b))
	}
	a, err := ParseAddr(b)
	if err != nil {
		return Connect{}, err
	}
	return Connect{Addr: a, Flags: ne.Uint32(b[AddrSize:]), Filler: ne.Uint32(b[AddrSize+4:])}, nil
}

// Int32Body encodes a body made of one int32 and a reserved word (LISTEN,
// SHUTDOWN).
func Int32Body(v int32) []byte {
	b := ne.AppendUint32(nil, uint32(v))
	return ne.AppendUint32(b, 0)
}

// ParseInt32Body decodes a LISTEN or SHUTDOWN body.
func ParseInt32Body(b []byte) (int32, error) {
	if len(b) != 8 {
		return 0, malformed("body of %d bytes, want 8", len(b))
	}
	return int32(ne.Uint32(b)), nil
}

// SockOpt is struct swrap_sockopt plus, for SETSOCKOPT, the value.
type SockOpt struct {
	Level, Name int32
	OptLen      uint32
	Value       []byte
}

// Encode returns the body of a GETSOCKOPT/SETSOCKOPT request.
func (s SockOpt) Encode() []byte {
	b := ne.AppendUint32(nil, uint32(s.Level))
	b = ne.AppendUint32(b, uint32(s.Name))
	b = ne.AppendUint32(b, s.OptLen)
	b = ne.AppendUint32(b, 0)
	return append(b, s.Value...)
}

// ParseSockOpt decodes a GETSOCKOPT or SETSOCKOPT body; for SETSOCKOPT the
// value must be OptLen bytes long.
func ParseSockOpt(b []byte, set bool) (SockOpt, error) {
	if len(b) < SockOptSize {
		return SockOpt{}, malformed("sockopt of %d bytes", len(b))
	}
	s := SockOpt{Level: int32(ne.Uint32(b[0:])), Name: int32(ne.Uint32(b[4:])), OptLen: ne.Uint32(b[8:])}
	rest := b[SockOptSize:]
	if set {
		if uint32(len(rest)) != s.OptLen {
			return SockOpt{}, malformed("SETSOCKOPT value of %d bytes, optlen %d", len(rest), s.OptLen)
		}
		s.Value = rest
	} else if len(rest) != 0 {
		return SockOpt{}, malformed("GETSOCKOPT with %d extra bytes", len(rest))
	}
	return s, nil
}

// StatRep is struct swrap_stat_rep.
type StatRep struct {
	Family, Type, Protocol int32
	State                  State
	Flags                  uint32
	Iface                  uint32
}

// Encode returns the body of a STAT reply.
func (s StatRep) Encode() []byte {
	b := ne.AppendUint32(nil, uint32(s.Family))
	b = ne.AppendUint32(b, uint32(s.Type))
	b = ne.AppendUint32(b, uint32(s.Protocol))
	b = ne.AppendUint32(b, uint32(s.State))
	b = ne.AppendUint32(b, s.Flags)
	return ne.AppendUint32(b, s.Iface)
}

// ParseStatRep decodes a STAT reply body.
func ParseStatRep(b []byte) (StatRep, error) {
	if len(b) != StatRepSize {
		return StatRep{}, malformed("STAT reply of %d bytes", len(b))
	}
	return StatRep{
		Family: int32(ne.Uint32(b[0:])), Type: int32(ne.Uint32(b[4:])), Protocol: int32(ne.Uint32(b[8:])),
		State: State(ne.Uint32(b[12:])), Flags: ne.Uint32(b[16:]), Iface: ne.Uint32(b[20:]),
	}, nil
}

// Accept is struct swrap_accept, the record a listener's app end receives
// with each new connection's fd.
type Accept struct {
	Sock uint64
	Peer Addr
}

// Encode returns the 40-byte record.
func (a Accept) Encode() []byte {
	b := ne.AppendUint32(make([]byte, 0, AcceptSize), Magic)
	b = ne.AppendUint32(b, 0)
	b = ne.AppendUint64(b, a.Sock)
	return AppendAddr(b, a.Peer)
}

// ParseAccept decodes an accept record.
func ParseAccept(b []byte) (Accept, error) {
	if len(b) != AcceptSize || ne.Uint32(b) != Magic {
		return Accept{}, malformed("accept record of %d bytes", len(b))
	}
	p, err := ParseAddr(b[16:])
	if err != nil {
		return Accept{}, err
	}
	return Accept{Sock: ne.Uint64(b[8:]), Peer: p}, nil
}

// DgramError in Dgram.Flags marks an error message (broker to app): no
// payload, the errno in IfIndex, reported once by the next receive.
const DgramError = 1

// Dgram is struct swrap_dgram, the header of every datagram on a UDP or
// ICMP socket's app end.
type Dgram struct {
	Flags   uint32
	IfIndex uint32
	Peer    Addr // destination (to the broker) or source (to the app)
	Local   Addr // pktinfo address
}

// AppendDgram appends the 56-byte header.
func AppendDgram(dst []byte, d Dgram) []byte {
	dst = ne.AppendUint32(dst, d.Flags)
	dst = ne.AppendUint32(dst, d.IfIndex)
	dst = AppendAddr(dst, d.Peer)
	return AppendAddr(dst, d.Local)
}

// ParseDgram decodes the header at the start of b and returns the payload.
func ParseDgram(b []byte) (Dgram, []byte, error) {
	if len(b) < DgramHeaderSize {
		return Dgram{}, nil, malformed("datagram of %d bytes is shorter than its header", len(b))
	}
	d := Dgram{Flags: ne.Uint32(b[0:]), IfIndex: ne.Uint32(b[4:])}
	var err error
	if d.Peer, err = ParseAddr(b[8:]); err != nil {
		return Dgram{}, nil, err
	}
	if d.Local, err = ParseAddr(b[8+AddrSize:]); err != nil {
		return Dgram{}, nil, err
	}
	return d, b[DgramHeaderSize:], nil
}

// SocketName returns the abstract unix name (without the leading NUL) of
// socket id of broker instance inst.
func SocketName(inst string, id uint64) string {
	return fmt.Sprintf("%s%s.%016x", NamePrefix, inst, id)
}

// ParseSocketName returns the instance and id in an app end's abstract name
// (as Go reports it: "@swrap.…" or "\x00swrap.…").
func ParseSocketName(name string) (inst string, id uint64, ok bool) {
	if len(name) != NameLen || (name[0] != '@' && name[0] != 0) || name[1:1+len(NamePrefix)] != NamePrefix {
		return "", 0, false
	}
	rest := name[1+len(NamePrefix):]
	if rest[16] != '.' {
		return "", 0, false
	}
	for _, c := range rest[17:] {
		switch {
		case c >= '0' && c <= '9':
			id = id<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			id = id<<4 | uint64(c-'a'+10)
		default:
			return "", 0, false
		}
	}
	return rest[:16], id, true
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// CaptureVersion is the version of the CAPTURE body's layout.
const CaptureVersion = 1

// CaptureHeaderSize is the size of a CAPTURE body before its host list.
const CaptureHeaderSize = 16

// MaxCaptureHosts and MaxCapturePorts bound a CAPTURE body's lists.
const (
	MaxCaptureHosts = 64
	MaxCapturePorts = 64
)

// Capture is the body of CAPTURE: u16 version (CaptureVersion), u16
// number of hosts, u32 snaplen (0: all), u32 queue KiB (0: the broker's
// default), u16 number of ports, u16 reserved (0), then one u8 host id per
// host and one u16 per port. No hosts: every host; else the frames these
// hosts send or receive. No ports: every frame; else the TCP and UDP
// frames from or to these ports.
type Capture struct {
	Snaplen  uint32
	QueueKiB uint32
	Hosts    []uint8
	Ports    []uint16
}

// Encode returns the body.
func (c Capture) Encode() []byte {
	b := make([]byte, 0, CaptureHeaderSize+len(c.Hosts))
	b = ne.AppendUint16(b, CaptureVersion)
	b = ne.AppendUint16(b, uint16(len(c.Hosts)))
	b = ne.AppendUint32(b, c.Snaplen)
	b = ne.AppendUint32(b, c.QueueKiB)
	b = ne.AppendUint16(b, uint16(len(c.Ports)))
	b = ne.AppendUint16(b, 0)
	b = append(b, c.Hosts...)
	for _, p := range c.Ports {
		b = ne.AppendUint16(b, p)
	}
	return b
}

// ParseCapture decodes a CAPTURE body.
func ParseCapture(b []byte) (Capture, error) {
	if len(b) < CaptureHeaderSize {
		return Capture{}, malformed("capture of %d bytes", len(b))
	}
	if v := ne.Uint16(b[0:]); v != CaptureVersion {
		return Capture{}, malformed("capture body version %d", v)
	}
	n, np := int(ne.Uint16(b[2:])), int(ne.Uint16(b[12:]))
	if n > MaxCaptureHosts || np > MaxCapturePorts || len(b) != CaptureHeaderSize+n+2*np {
		return Capture{}, malformed("capture of %d bytes with %d hosts, %d ports", len(b), n, np)
	}
	if ne.Uint16(b[14:]) != 0 {
		return Capture{}, malformed("capture reserved field set")
	}
	c := Capture{Snaplen: ne.Uint32(b[4:]), QueueKiB: ne.Uint32(b[8:])}
	if n > 0 {
		c.Hosts = append([]uint8(nil), b[CaptureHeaderSize:CaptureHeaderSize+n]...)
	}
	for i := 0; i < np; i++ {
		c.Ports = append(c.Ports, ne.Uint16(b[CaptureHeaderSize+n+2*i:]))
	}
	return c, nil
}
