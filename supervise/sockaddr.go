package supervise

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/swrap/swrap/wire"
)

var ne = binary.NativeEndian

// addrUse says what an address is for; Linux checks each differently
// (the shim's swrap_addr_in, shim/addr.c, which this follows).
type addrUse int

const (
	useBind addrUse = iota
	useConnect
	useSendto
)

// addrIn converts the caller's sockaddr b for a socket of family sfam.
func addrIn(b []byte, sfam int, use addrUse, needPort bool) (wire.Addr, unix.Errno) {
	fam := -1
	if len(b) >= 2 {
		fam = int(ne.Uint16(b))
	}
	in4 := func() wire.Addr {
		return wire.Addr{Family: wire.AFInet, Port: binary.BigEndian.Uint16(b[2:]),
			IP: netip.AddrFrom4([4]byte(b[4:8]))}
	}
	in6 := func() wire.Addr {
		a := wire.Addr{Family: wire.AFInet6, Port: binary.BigEndian.Uint16(b[2:]),
			IP: netip.AddrFrom16([16]byte(b[8:24]))}
		if len(b) >= 28 {
			a.ScopeID = ne.Uint32(b[24:])
		}
		return a
	}
	switch use {
	case useBind:
		if sfam == unix.AF_INET {
			if len(b) < 16 {
				return wire.Addr{}, unix.EINVAL
			}
			if fam != unix.AF_INET && !(fam == unix.AF_UNSPEC && ne.Uint32(b[4:]) == 0) {
				return wire.Addr{}, unix.EAFNOSUPPORT
			}
			return in4(), 0
		}
		if len(b) < 24 {
			return wire.Addr{}, unix.EINVAL
		}
		if fam != unix.AF_INET6 {
			return wire.Addr{}, unix.EAFNOSUPPORT
		}
		return in6(), 0
	case useConnect:
		if len(b) < 2 {
			return wire.Addr{}, unix.EINVAL
		}
		switch {
		case fam == unix.AF_UNSPEC:
			return wire.Addr{}, 0
		case fam == unix.AF_INET:
			if len(b) < 16 {
				return wire.Addr{}, unix.EINVAL
			}
			return in4(), 0
		case sfam == unix.AF_INET:
			if len(b) < 16 {
				return wire.Addr{}, unix.EINVAL
			}
			return wire.Addr{}, unix.EAFNOSUPPORT
		}
		if len(b) < 24 {
			return wire.Addr{}, unix.EINVAL
		}
		if fam != unix.AF_INET6 {
			return wire.Addr{}, unix.EAFNOSUPPORT
		}
		return in6(), 0
	}
	// sendto
	if len(b) == 0 {
		return wire.Addr{}, 0
	}
	var a wire.Addr
	if sfam == unix.AF_INET {
		if len(b) < 16 {
			return wire.Addr{}, unix.EINVAL
		}
		if fam != unix.AF_INET && fam != unix.AF_UNSPEC {
			return wire.Addr{}, unix.EAFNOSUPPORT
		}
		a = in4()
	} else {
		switch {
		case len(b) < 2:
			return wire.Addr{}, unix.EINVAL
		case fam == unix.AF_UNSPEC:
			return wire.Addr{}, 0
		case fam == unix.AF_INET && len(b) >= 16:
			a = in4()
		case fam == unix.AF_INET6 && len(b) >= 24:
			a = in6()
		default:
			return wire.Addr{}, unix.EINVAL
		}
	}
	if a.Port == 0 && needPort {
		return wire.Addr{}, unix.EINVAL
	}
	return a, 0
}

// addrOut encodes a as the caller's sockaddr.
func addrOut(a wire.Addr) []byte {
	switch a.Family {
	case wire.AFInet:
		b := make([]byte, 16)
		ne.PutUint16(b, unix.AF_INET)
		binary.BigEndian.PutUint16(b[2:], a.Port)
		ip := a.IP.Unmap().As4()
		copy(b[4:], ip[:])
		return b
	case wire.AFInet6:
		b := make([]byte, 28)
		ne.PutUint16(b, unix.AF_INET6)
		binary.BigEndian.PutUint16(b[2:], a.Port)
		ip := a.IP.As16()
		copy(b[8:], ip[:])
		ne.PutUint32(b[24:], a.ScopeID)
		return b
	}
	b := make([]byte, 2)
	ne.PutUint16(b, unix.AF_UNSPEC)
	return b
}
