package broker

import (
	"encoding/binary"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/swrap/swrap/addrplan"
	"github.com/swrap/swrap/stack"
	"github.com/swrap/swrap/wire"
)

var ne = binary.NativeEndian

// optInt reads an int option value as Linux does: at least 4 bytes are
// needed (a shorter one is EINVAL), and only the first 4 count.
func optInt(v []byte) (int, syscall.Errno) {
	if len(v) < 4 {
		return 0, syscall.EINVAL
	}
	return int(int32(ne.Uint32(v))), 0
}

// intVal encodes an int option value, truncated to optlen as Linux does.
func intVal(v int, optlen int) []byte {
	b := ne.AppendUint32(nil, uint32(int32(v)))
	if optlen < len(b) {
		b = b[:max(optlen, 0)]
	}
	return b
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// getsockopt answers GETSOCKOPT with Linux's semantics for the options the
// stack supports; ENOPROTOOPT for the rest.
func (s *sock) getsockopt(level, name, optlen int) ([]byte, syscall.Errno) {
	opts := s.ep.SocketOptions()
	switch level {
	case unix.SOL_SOCKET:
		switch name {
		case unix.SO_ERROR:
			return intVal(int(s.takeError()), optlen), 0
		case unix.SO_TYPE:
			return intVal(int(s.typ), optlen), 0
		case unix.SO_DOMAIN:
			return intVal(int(s.family), optlen), 0
		case unix.SO_PROTOCOL:
			return intVal(int(s.proto), optlen), 0
		case unix.SO_ACCEPTCONN:
			s.mu.Lock()
			l := s.state == wire.StateListening
			s.mu.Unlock()
			return intVal(boolInt(l), optlen), 0
		case unix.SO_REUSEADDR:
			return intVal(boolInt(opts.GetReuseAddress()), optlen), 0
		case unix.SO_REUSEPORT:
			return intVal(boolInt(opts.GetReusePort()), optlen), 0
		case unix.SO_KEEPALIVE:
			return intVal(boolInt(opts.GetKeepAlive()), optlen), 0
		case unix.SO_BROADCAST:
			return intVal(boolInt(opts.GetBroadcast()), optlen), 0
		case unix.SO_OOBINLINE:
			return intVal(0, optlen), 0
		case unix.SO_RCVBUF:
			s.mu.Lock()
			defer s.mu.Unlock()
			return intVal(s.rcvBuf, optlen), 0
		case unix.SO_SNDBUF:
			s.mu.Lock()
			defer s.mu.Unlock()
			return intVal(s.sndBuf, optlen), 0
		case unix.SO_RCVLOWAT:
			return intVal(max(int(opts.GetRcvlowat()), 1), optlen), 0
		case unix.SO_LINGER:
			l := opts.GetLinger()
			b := ne.AppendUint32(nil, uint32(boolInt(l.Enabled)))
			b = ne.AppendUint32(b, uint32(l.Timeout/time.Second))
			return b[:min(optlen, len(b))], 0
		case unix.SO_BINDTODEVICE:
			// Linux: nothing (optlen 0) when unbound, else the name
			// with its NUL; EINVAL if it does not fit.
			s.mu.Lock()
			dev := s.bindDev
			s.mu.Unlock()
			if dev == "" {
				return []byte{}, 0
			}
			if optlen < len(dev)+1 {
				return nil, syscall.EINVAL
			}
			return append([]byte(dev), 0), 0
		case unix.SO_BINDTOIFINDEX:
			s.mu.Lock()
			bound := s.bindDev != ""
			s.mu.Unlock()
			return intVal(boolInt(bound), optlen), 0
		case unix.SO_RCVTIMEO, unix.SO_SNDTIMEO:
			s.mu.Lock()
			d := s.rcvTimeo
			if name == unix.SO_SNDTIMEO {
				d = s.sndTimeo
			}
			s.mu.Unlock()
			tv := unix.NsecToTimeval(d.Nanoseconds())
			b := ne.AppendUint64(nil, uint64(tv.Sec))
			b = ne.AppendUint64(b, uint64(tv.Usec))
			return b[:min(optlen, len(b))], 0
		}
	case unix.IPPROTO_TCP:
		if s.typ != unix.SOCK_STREAM {
			return nil, syscall.EOPNOTSUPP
		}
		switch name {
		case unix.TCP_NODELAY:
			return intVal(boolInt(!opts.GetDelayOption()), optlen), 0
		case unix.TCP_CORK:
			s.mu.Lock()
			cork := s.corkShut
			s.mu.Unlock()
			if cork != nil {
				return intVal(boolInt(*cork), optlen), 0
			}
			return intVal(boolInt(opts.GetCorkOption()), optlen), 0
		case unix.TCP_QUICKACK:
			return intVal(boolInt(opts.GetQuickAck()), optlen), 0
		case unix.TCP_MAXSEG:
			return s.intOpt(tcpip.MaxSegOption, optlen)
		case unix.TCP_KEEPCNT:
			return s.intOpt(tcpip.KeepaliveCountOption, optlen)
		case unix.TCP_SYNCNT:
			return s.intOpt(tcpip.TCPSynCountOption, optlen)
		case unix.TCP_WINDOW_CLAMP:
			return s.intOpt(tcpip.TCPWindowClampOption, optlen)
		case unix.TCP_KEEPIDLE:
			return durationOpt[tcpip.KeepaliveIdleOption](s, time.Second, optlen)
		case unix.TCP_KEEPINTVL:
			return durationOpt[tcpip.KeepaliveIntervalOption](s, time.Second, optlen)
		case unix.TCP_USER_TIMEOUT:
			return durationOpt[tcpip.TCPUserTimeoutOption](s, time.Millisecond, optlen)
		case unix.TCP_CONGESTION:
			var v tcpip.CongestionControlOption
			if err := s.ep.GetSockOpt(&v); err != nil {
				return nil, errno(err)
			}
			b := make([]byte, 16) // TCP_CA_NAME_MAX
			copy(b, v)
			return b[:min(optlen, len(b))], 0
		case unix.TCP_INFO:
			return s.tcpInfo(optlen), 0
		}
	case unix.IPPROTO_IP:
		switch name {
		case unix.IP_TOS:
			return s.intOpt(tcpip.IPv4TOSOption, optlen)
		case unix.IP_TTL:
			v, err := s.ep.GetSockOptInt(tcpip.IPv4TTLOption)
			if err != nil {
				return nil, errno(err)
			}
			if v == 0 {
				v = 64 // the default TTL, as Linux reports it
			}
			return intVal(v, optlen), 0
		case unix.IP_PKTINFO:
			s.mu.Lock()
			defer s.mu.Unlock()
			return intVal(boolInt(s.pktinfo), optlen), 0
		case unix.IP_PKTOPTIONS:
			return s.ipPktOptions(optlen)
		case unix.IP_RECVTOS:
			return intVal(boolInt(opts.GetReceiveTOS()), optlen), 0
		case unix.IP_RECVTTL:
			return intVal(boolInt(opts.GetReceiveTTL()), optlen), 0
		case unix.IP_RECVERR:
			return intVal(boolInt(opts.GetIPv4RecvError()), optlen), 0
		case unix.IP_MTU_DISCOVER:
			return s.intOpt(tcpip.MTUDiscoverOption, optlen)
		}
	case unix.IPPROTO_IPV6:
		if s.family != unix.AF_INET6 {
			return nil, syscall.EOPNOTSUPP // ip_getsockopt: not SOL_IP
		}
		switch name {
		case unix.IPV6_V6ONLY:
			return intVal(boolInt(opts.GetV6Only()), optlen), 0
		case unix.IPV6_RECVPKTINFO:
			s.mu.Lock()
			defer s.mu.Unlock()
			return intVal(boolInt(s.pktinfo6), optlen), 0
		case unix.IPV6_2292PKTOPTIONS:
			return s.ipv6PktOptions(optlen)
		case unix.IPV6_TCLASS:
			return s.intOpt(tcpip.IPv6TrafficClassOption, optlen)
		case unix.IPV6_RECVHOPLIMIT:
			return intVal(boolInt(opts.GetReceiveHopLimit()), optlen), 0
		case unix.IPV6_RECVERR:
			return intVal(boolInt(opts.GetIPv6RecvError()), optlen), 0
		case unix.IPV6_UNICAST_HOPS:
			v, err := s.ep.GetSockOptInt(tcpip.IPv6HopLimitOption)
			if err != nil {
				return nil, errno(err)
			}
			if v < 0 {
				v = 64
			}
			return intVal(v, optlen), 0
		}
	}
	return nil, syscall.ENOPROTOOPT
}

// durationOpt reads a duration option (KeepaliveIdleOption and the like)
// as the int Linux reports, in unit.
func durationOpt[T ~int64, PT interface {
	*T
	tcpip.GettableSocketOption
}](s *sock, unit time.Duration, optlen int) ([]byte, syscall.Errno) {
	var v T
	if err := s.ep.GetSockOpt(PT(&v)); err != nil {
		return nil, errno(err)
	}
	return intVal(int(time.Duration(v)/unit), optlen), 0
}

func (s *sock) intOpt(o tcpip.SockOptInt, optlen int) ([]byte, syscall.Errno) {
	v, err := s.ep.GetSockOptInt(o)
	if err != nil {
		return nil, errno(err)
	}
	return intVal(v, optlen), 0
}

// takeError returns and clears the pending error; if a connect is still
// pending it first waits for its outcome, so that an event loop woken by
// the (always writable) unix socket learns the real result.
func (s *sock) takeError() syscall.Errno {
	s.mu.Lock()
	ch := s.connectCh
	connecting := s.state == wire.StateConnecting
	s.mu.Unlock()
	if connecting && ch != nil {
		select {
		case <-ch:
		case <-s.done:
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.soError
	s.soError = 0
	return e
}

// setsockopt applies SETSOCKOPT with Linux's semantics.
func (s *sock) setsockopt(level, name int, val []byte) syscall.Errno {
	if level == wire.SolSwrap {
		if name != wire.SwrapDgramBare || s.typ != unix.SOCK_DGRAM {
			return syscall.ENOPROTOOPT
		}
		if len(val) < 4 {
			return syscall.EINVAL
		}
		s.bare.Store(ne.Uint32(val) != 0)
		return 0
	}
	opts := s.ep.SocketOptions()
	if level == unix.SOL_SOCKET && name == unix.SO_LINGER {
		if len(val) < 8 {
			return syscall.EINVAL
		}
		opts.SetLinger(tcpip.LingerOption{
			Enabled: ne.Uint32(val) != 0,
			Timeout: time.Duration(int32(ne.Uint32(val[4:]))) * time.Second,
		})
		return 0
	}
	if level == unix.SOL_SOCKET && (name == unix.SO_RCVTIMEO || name == unix.SO_SNDTIMEO) {
		if len(val) < 16 {
			return syscall.EINVAL
		}
		tv := unix.Timeval{Sec: int64(ne.Uint64(val)), Usec: int64(ne.Uint64(val[8:]))}
		if tv.Usec < 0 || tv.Usec >= 1000000 {
			return syscall.EDOM
		}
		d := time.Duration(tv.Nano())
		if d < 0 {
			d = 0
		}
		s.mu.Lock()
		if name == unix.SO_SNDTIMEO {
			s.sndTimeo = d
		} else {
			s.rcvTimeo = d
		}
		s.mu.Unlock()
		return 0
	}
	if level == unix.SOL_SOCKET && name == unix.SO_BINDTODEVICE {
		// The name may come without its NUL; Linux reads at most
		// IFNAMSIZ-1 bytes.
		n := 0
		for n < len(val) && n < unix.IFNAMSIZ-1 && val[n] != 0 {
			n++
		}
		return s.bindToDevice(string(val[:n]))
	}
	if level == unix.IPPROTO_TCP && name == unix.TCP_CONGESTION {
		if s.typ != unix.SOCK_STREAM {
			return syscall.EOPNOTSUPP
		}
		n := 0
		for n < len(val) && val[n] != 0 {
			n++
		}
		return errno(s.ep.SetSockOpt((*tcpip.CongestionControlOption)(ptr(string(val[:n])))))
	}
	v, en := optInt(val)
	if en != 0 {
		return en
	}
	switch level {
	case unix.SOL_SOCKET:
		switch name {
		case unix.SO_REUSEADDR:
			opts.SetReuseAddress(v != 0)
		case unix.SO_REUSEPORT:
			opts.SetReusePort(v != 0)
		case unix.SO_KEEPALIVE:
			opts.SetKeepAlive(v != 0)
		case unix.SO_BROADCAST:
			opts.SetBroadcast(v != 0)
		case unix.SO_BINDTOIFINDEX:
			switch v {
			case 0:
				return s.bindToDevice("")
			case int(stack.NICID):
				return s.bindToDevice(addrplan.IfName(s.host.Load().ID))
			}
			return syscall.ENODEV
		case unix.SO_OOBINLINE, unix.SO_PRIORITY, unix.SO_DEBUG, unix.SO_DONTROUTE:
			// Accepted, as Linux does; nothing on an emulated host depends
			// on them.
		case unix.SO_RCVLOWAT:
			opts.SetRcvlowat(int32(max(v, 1)))
		case unix.SO_RCVBUF, unix.SO_RCVBUFFORCE:
			n := setBufSize(int32(v), true, name == unix.SO_RCVBUFFORCE)
			opts.SetReceiveBufferSize(int64(n), true)
			s.mu.Lock()
			s.rcvBuf = n
			s.mu.Unlock()
		case unix.SO_SNDBUF, unix.SO_SNDBUFFORCE:
			n := setBufSize(int32(v), false, name == unix.SO_SNDBUFFORCE)
			opts.SetSendBufferSize(int64(n), true)
			s.mu.Lock()
			s.sndBuf = n
			s.mu.Unlock()
		default:
			return syscall.ENOPROTOOPT
		}
		return 0
	case unix.IPPROTO_TCP:
		if s.typ != unix.SOCK_STREAM {
			return syscall.EOPNOTSUPP
		}
		switch name {
		case unix.TCP_NODELAY:
			opts.SetDelayOption(v == 0)
		case unix.TCP_CORK:
			s.mu.Lock()
			if s.corkShut != nil {
				// Shut for writing: nothing more to hold back.
				c := v != 0
				s.corkShut = &c
				s.mu.Unlock()
				return 0
			}
			if s.closed {
				// The shim sets TCP_CORK without waiting for the reply,
				// and the program's close reaches us on the data socket,
				// possibly first: a cork set on the closing endpoint
				// would keep its last bytes from the peer.
				s.mu.Unlock()
				return 0
			}
			s.mu.Unlock()
			opts.SetCorkOption(v != 0)
			if v != 0 {
				// A close or SHUT_WR that came meanwhile: both set their
				// flag under mu before they flush the cork (flushCork),
				// so one of us flushes.
				s.mu.Lock()
				late := s.closed || s.corkShut != nil
				if s.corkShut != nil {
					c := true
					s.corkShut = &c
				}
				s.mu.Unlock()
				if late {
					flushCork(s.ep)
				}
			}
		case unix.TCP_QUICKACK:
			opts.SetQuickAck(v != 0)
		case unix.TCP_MAXSEG:
			return errno(s.ep.SetSockOptInt(tcpip.MaxSegOption, v))
		case unix.TCP_KEEPCNT:
			if v < 1 || v > 127 {
				return syscall.EINVAL
			}
			return errno(s.ep.SetSockOptInt(tcpip.KeepaliveCountOption, v))
		case unix.TCP_SYNCNT:
			return errno(s.ep.SetSockOptInt(tcpip.TCPSynCountOption, v))
		case unix.TCP_WINDOW_CLAMP:
			return errno(s.ep.SetSockOptInt(tcpip.TCPWindowClampOption, v))
		case unix.TCP_KEEPIDLE, unix.TCP_KEEPINTVL:
			if v < 1 || v > 32767 {
				return syscall.EINVAL
			}
			d := time.Duration(v) * time.Second
			if name == unix.TCP_KEEPIDLE {
				o := tcpip.KeepaliveIdleOption(d)
				return errno(s.ep.SetSockOpt(&o))
			}
			o := tcpip.KeepaliveIntervalOption(d)
			return errno(s.ep.SetSockOpt(&o))
		case unix.TCP_USER_TIMEOUT:
			if v < 0 {
				return syscall.EINVAL
			}
			o := tcpip.TCPUserTimeoutOption(time.Duration(v) * time.Millisecond)
			return errno(s.ep.SetSockOpt(&o))
		case unix.TCP_LINGER2:
			o := tcpip.TCPLingerTimeoutOption(time.Duration(v) * time.Second)
			return errno(s.ep.SetSockOpt(&o))
		case unix.TCP_DEFER_ACCEPT:
			o := tcpip.TCPDeferAcceptOption(time.Duration(v) * time.Second)
			return errno(s.ep.SetSockOpt(&o))
		default:
			return syscall.ENOPROTOOPT
		}
		return 0
	case unix.IPPROTO_IP:
		switch name {
		case unix.IP_TOS:
			return errno(s.ep.SetSockOptInt(tcpip.IPv4TOSOption, v&0xff))
		case unix.IP_TTL:
			if v == -1 {
				v = 0 // back to the default
			} else if v < 1 || v > 255 {
				return syscall.EINVAL
			}
			return errno(s.ep.SetSockOptInt(tcpip.IPv4TTLOption, v))
		case unix.IP_PKTINFO:
			s.mu.Lock()
			s.pktinfo = v != 0
			s.mu.Unlock()
		case unix.IP_RECVTOS:
			opts.SetReceiveTOS(v != 0)
		case unix.IP_RECVTTL:
			opts.SetReceiveTTL(v != 0)
		case unix.IP_RECVERR:
			opts.SetIPv4RecvError(v != 0)
		case unix.IP_MTU_DISCOVER:
			return errno(s.ep.SetSockOptInt(tcpip.MTUDiscoverOption, v))
		default:
			return syscall.ENOPROTOOPT
		}
		return 0
	case unix.IPPROTO_IPV6:
		if s.family != unix.AF_INET6 {
			return syscall.ENOPROTOOPT
		}
		switch name {
		case unix.IPV6_V6ONLY:
			s.mu.Lock()
			st := s.state
			s.mu.Unlock()
			if st != wire.StateNew {
				return syscall.EINVAL
			}
			opts.SetV6Only(v != 0)
		case unix.IPV6_RECVPKTINFO:
			s.mu.Lock()
			s.pktinfo6 = v != 0
			s.mu.Unlock()
		case unix.IPV6_RECVHOPLIMIT:
			opts.SetReceiveHopLimit(v != 0)
		case unix.IPV6_RECVERR:
			opts.SetIPv6RecvError(v != 0)
		case unix.IPV6_TCLASS:
			return errno(s.ep.SetSockOptInt(tcpip.IPv6TrafficClassOption, v))
		case unix.IPV6_UNICAST_HOPS:
			if v < -1 || v > 255 {
				return syscall.EINVAL
			}
			return errno(s.ep.SetSockOptInt(tcpip.IPv6HopLimitOption, v))
		default:
			return syscall.ENOPROTOOPT
		}
		return 0
	}
	return syscall.ENOPROTOOPT
}

func ptr[T any](v T) *T { return &v }

// Linux TCP states (include/net/tcp_states.h), for tcpi_state.
var linuxTCPState = map[tcp.EndpointState]uint8{
	tcp.StateEstablished: 1, tcp.StateSynSent: 2, tcp.StateSynRecv: 3,
	tcp.StateFinWait1: 4, tcp.StateFinWait2: 5, tcp.StateTimeWait: 6,
	tcp.StateClose: 7, tcp.StateCloseWait: 8, tcp.StateLastAck: 9,
	tcp.StateListen: 10, tcp.StateClosing: 11,
	tcp.StateInitial: 7, tcp.StateBound: 7, tcp.StateConnecting: 2, tcp.StateError: 7,
}

// Constants of Linux's struct tcp_info for a socket that never connected
// (tcp_init_sock): the initial RTO (TCP_TIMEOUT_INIT) and RTT variance,
// TCP_MSS_DEFAULT, TCP_INFINITE_SSTHRESH, TCP_INIT_CWND and the initial
// reordering; the pacing rates and min_rtt are ~0 (unset).
const (
	tcpInitRTO      = 1000000 // µs
	tcpInitRTTVar   = 250000  // µs
	tcpMSSDefault   = 536
	tcpInfSsthresh  = 0x7fffffff
	tcpInitCwnd     = 10
	tcpInitReorder  = 3
	tcpInfoMinSize  = 232 // the fields filled here end at tcpi_snd_wnd
	tcpInfoMaxProbe = 1024
)

// kernelTCPInfoLen is the size of struct tcp_info on the running kernel,
// which is what a program's TCP_INFO gets (the copy is min(optlen, size)).
var kernelTCPInfoLen = sync.OnceValue(func() int {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return tcpInfoMinSize
	}
	defer unix.Close(fd)
	buf := make([]byte, tcpInfoMaxProbe)
	l := uint32(len(buf))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_INFO,
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 || l < tcpInfoMinSize {
		return tcpInfoMinSize
	}
	return int(l)
})

// tcpInfo builds Linux's struct tcp_info, as long as the running kernel's,
// truncated to optlen as the kernel does. A listener and a socket that
// never connected (fresh, bound, or after a failed connect) report Linux's
// constants; a connection reports what netstack measures.
func (s *sock) tcpInfo(optlen int) []byte {
	var info tcpip.TCPInfoOption
	s.ep.GetSockOpt(&info)
	b := make([]byte, kernelTCPInfoLen())
	s.mu.Lock()
	state, backlog := s.state, s.backlog
	s.mu.Unlock()
	es := tcp.EndpointState(info.State)
	st, ok := linuxTCPState[es]
	if !ok {
		st = 7
	}
	b[0] = st
	unset := func() {
		ne.PutUint32(b[80:], tcpInitCwnd)
		ne.PutUint32(b[88:], tcpInitReorder)
		ne.PutUint64(b[104:], ^uint64(0)) // tcpi_pacing_rate
		ne.PutUint64(b[112:], ^uint64(0)) // tcpi_max_pacing_rate
	}
	switch {
	case state == wire.StateListening:
		// tcp_get_info stops early for a listener.
		unset()
		ne.PutUint32(b[28:], uint32(backlog)) // tcpi_sacked: sk_max_ack_backlog
	case state == wire.StateNew || state == wire.StateBound:
		// Never connected, or the connect failed (connectFailed).
		unset()
		ne.PutUint32(b[8:], tcpInitRTO)
		ne.PutUint32(b[16:], tcpMSSDefault) // tcpi_snd_mss
		ne.PutUint32(b[72:], tcpInitRTTVar)
		ne.PutUint32(b[76:], tcpInfSsthresh)
		ne.PutUint32(b[148:], ^uint32(0)) // tcpi_min_rtt
	default:
		b[1] = uint8(info.CcState)
		ne.PutUint32(b[8:], uint32(info.RTO/time.Microsecond))
		mss, _ := s.ep.GetSockOptInt(tcpip.MaxSegOption)
		ne.PutUint32(b[16:], uint32(mss)) // tcpi_snd_mss
		ne.PutUint32(b[20:], uint32(mss)) // tcpi_rcv_mss
		ne.PutUint32(b[68:], uint32(info.RTT/time.Microsecond))
		ne.PutUint32(b[72:], uint32(info.RTTVar/time.Microsecond))
		ne.PutUint32(b[76:], info.SndSsthresh)
		ne.PutUint32(b[80:], info.SndCwnd)
		ne.PutUint32(b[84:], uint32(mss)) // tcpi_advmss
	}
	if optlen < len(b) {
		b = b[:max(optlen, 0)]
	}
	return b
}

// ioctl answers IOCTL: the bytes netstack still holds that the program's
// unix socket does not show.
func (s *sock) ioctl(req uint32) (int, syscall.Errno) {
	switch req {
	case unix.SIOCINQ:
		v, err := s.ep.GetSockOptInt(tcpip.ReceiveQueueSizeOption)
		return v, errno(err)
	case unix.SIOCOUTQ:
		v, err := s.ep.GetSockOptInt(tcpip.SendQueueSizeOption)
		return v, errno(err)
	}
	return 0, syscall.ENOTTY
}

// bindToDevice is SO_BINDTODEVICE: an emulated host has one interface, so
// binding to it changes nothing of the routing; "" unbinds, any other name
// is ENODEV as on Linux. (Linux wants CAP_NET_RAW only to change a binding
// already made, which this does not model.)
func (s *sock) bindToDevice(name string) syscall.Errno {
	if name != "" && name != addrplan.IfName(s.host.Load().ID) {
		return syscall.ENODEV
	}
	s.mu.Lock()
	s.bindDev = name
	s.mu.Unlock()
	return 0
}
