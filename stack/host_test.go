package stack

import (
	"net"
	"net/netip"
	"path/filepath"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/swrap/swrap/addrplan"
	"github.com/swrap/swrap/tap"
)

func linkConfig(t *testing.T) tap.Config {
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "h"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	return tap.Config{
		Conn: c, MTU: 65535,
		Route: func(dst netip.Addr, ports []*tap.Port) ([]*tap.Port, tap.Verdict) { return ports, tap.Drop },
	}
}

func TestNew(t *testing.T) {
	h, err := New(Config{ID: 12, Plan: addrplan.Default, Link: linkConfig(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.IPv4 != netip.MustParseAddr("127.0.0.12") || h.IPv6 != netip.MustParseAddr("fd00::5357:5f0c") || h.NIC != NICID {
		t.Errorf("host %+v", h)
	}
	info := h.Stack.NICInfo()[NICID]
	want := map[string]bool{"127.0.0.12/8": false, "fd00::5357:5f0c/64": false}
	for _, a := range info.ProtocolAddresses {
		want[a.AddressWithPrefix.String()] = true
	}
	for a, ok := range want {
		if !ok {
			t.Errorf("address %s missing: %v", a, info.ProtocolAddresses)
		}
	}
	if info.MTU != 65535 {
		t.Errorf("MTU %d", info.MTU)
	}
	var sack tcpip.TCPSACKEnabled
	if h.Stack.TransportProtocolOption(tcp.ProtocolNumber, &sack); !sack {
		t.Error("SACK off")
	}
	// Every destination routes to the NIC, so netstack never answers
	// "network unreachable" itself.
	for _, dst := range []string{"127.0.0.99", "10.1.2.3", "fd00::5357:5f63", "2001:db8::1"} {
		a := netip.MustParseAddr(dst)
		proto := header.IPv4ProtocolNumber
		if a.Is6() {
			proto = header.IPv6ProtocolNumber
		}
		r, err := h.Stack.FindRoute(NICID, tcpip.Address{}, tcpip.AddrFromSlice(a.AsSlice()), proto, false)
		if err != nil {
			t.Errorf("no route to %s: %v", dst, err)
			continue
		}
		r.Release()
	}
	if s := h.LinkStats(); s != (tap.Stats{}) {
		t.Errorf("stats %+v", s)
	}
}

func TestNewBadID(t *testing.T) {
	for _, id := range []int{0, addrplan.MaxHost + 1} {
		if _, err := New(Config{ID: id, Plan: addrplan.Default, Link: linkConfig(t)}); err == nil {
			t.Errorf("New(%d) succeeded", id)
		}
	}
}
