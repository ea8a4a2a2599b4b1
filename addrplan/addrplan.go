// Package addrplan holds socket_wrapper's address plan: which IPv4 and IPv6
// addresses belong to emulated host N, and which host an address names.
//
// Host N (1..MaxHost) has IPv4 127.0.0.N (or 10.53.57.N when the network is
// 10.53.57.0) and IPv6 fd00::5357:5fNN, NN being N in hex. The package only
// computes; it never opens sockets.
package addrplan

import (
	"fmt"
	"net/netip"
)

// MaxHost is the highest host id socket_wrapper allows.
const MaxHost = 64

// ServiceHost is the host id of the broker's own services: its DNS server
// answers on IPv4(ServiceHost) and IPv6(ServiceHost) (127.0.0.253 and
// fd00::5357:5ffd in the default plan). No host can have it (ids end at
// MaxHost) and it is not the fabric's router (254).
const ServiceHost = 253

// Plan is one emulated network. The zero value is not valid; use New.
type Plan struct {
	net4 [4]byte // network address: 127.0.0.0 or 10.53.57.0
}

// Default is the plan with the IPv4 network 127.0.0.0.
var Default = Plan{net4: [4]byte{127, 0, 0, 0}}

// New returns the plan for SOCKET_WRAPPER_IPV4_NETWORK value v: "" or
// "127.0.0.0" gives the default, "10.53.57.0" the alternative; anything else
// is an error, as socket_wrapper accepts only these two.
func New(v string) (Plan, error) {
	switch v {
	case "", "127.0.0.0":
		return Default, nil
	case "10.53.57.0":
		return Plan{net4: [4]byte{10, 53, 57, 0}}, nil
	}
	return Plan{}, fmt.Errorf("SOCKET_WRAPPER_IPV4_NETWORK=%q: only 127.0.0.0 and 10.53.57.0 are supported", v)
}

// IfName is the name of host id's one network interface, as the shim shows
// it to a program (getifaddrs, ip addr) and SO_BINDTODEVICE takes it. Its
// index is always 1 (the netstack NIC id, reported in IP_PKTINFO).
func IfName(id int) string { return fmt.Sprintf("swrap%d", id) }

// Network4 returns the IPv4 network address of the plan.
func (p Plan) Network4() netip.Addr { return netip.AddrFrom4(p.net4) }

// PrefixLen4 returns the prefix length that hosts' IPv4 addresses use: 8, as
// socket_wrapper's broadcast address is 127.255.255.255 or 10.255.255.255.
func (p Plan) PrefixLen4() int { return 8 }

// Broadcast4 returns the IPv4 broadcast address of the plan's network.
func (p Plan) Broadcast4() netip.Addr {
	return netip.AddrFrom4([4]byte{p.net4[0], 255, 255, 255})
}

// ValidHost reports whether id is a host id of the plan.
func ValidHost(id int) bool { return id >= 1 && id <= MaxHost }

// IPv4 returns host id's IPv4 address.
func (p Plan) IPv4(id int) netip.Addr {
	a := p.net4
	a[3] = byte(id)
	return netip.AddrFrom4(a)
}

// IPv6 returns host id's IPv6 address, fd00::5357:5fNN.
func (p Plan) IPv6(id int) netip.Addr {
	return netip.AddrFrom16([16]byte{0: 0xfd, 12: 0x53, 13: 0x57, 14: 0x5f, 15: byte(id)})
}

// Host returns the host id that address a belongs to, and whether it is one.
// v4-mapped IPv6 addresses are looked up as IPv4.
func (p Plan) Host(a netip.Addr) (int, bool) {
	a = a.Unmap()
	switch {
	case a.Is4():
		b := a.As4()
		if b[0] == p.net4[0] && b[1] == p.net4[1] && b[2] == p.net4[2] && ValidHost(int(b[3])) {
			return int(b[3]), true
		}
	case a.Is6():
		b := a.As16()
		want := p.IPv6(0).As16()
		if [15]byte(b[:15]) == [15]byte(want[:15]) && ValidHost(int(b[15])) {
			return int(b[15]), true
		}
	}
	return 0, false
}

// IsService reports whether a is an address of ServiceHost.
func (p Plan) IsService(a netip.Addr) bool {
	a = a.Unmap()
	return a == p.IPv4(ServiceHost) || a == p.IPv6(ServiceHost)
}

// IsBroadcast reports whether a is a broadcast address that reaches every
// host: the plan's network broadcast or 255.255.255.255.
func (p Plan) IsBroadcast(a netip.Addr) bool {
	a = a.Unmap()
	return a == p.Broadcast4() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// InNetwork reports whether a lies in the emulated network: a host address,
// a broadcast address, or any address of the plan's IPv4 /8 or of
// fd00::5357:5f00/120. Destinations outside it are unreachable (ENETUNREACH).
func (p Plan) InNetwork(a netip.Addr) bool {
	a = a.Unmap()
	if a.Is4() {
		return a.As4()[0] == p.net4[0] || p.IsBroadcast(a)
	}
	return netip.PrefixFrom(p.IPv6(0), 120).Contains(a)
}
