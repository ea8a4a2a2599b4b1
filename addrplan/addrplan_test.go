package addrplan

import (
	"net/netip"
	"testing"
)

func TestPlan(t *testing.T) {
	alt, err := New("10.53.57.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New("192.168.0.0"); err == nil {
		t.Error("New accepted an unsupported network")
	}
	cases := []struct {
		plan Plan
		addr string
		id   int
		ok   bool
	}{
		{Default, "127.0.0.10", 10, true},
		{Default, "127.0.0.64", 64, true},
		{Default, "127.0.0.65", 0, false},
		{Default, "127.0.0.0", 0, false},
		{Default, "127.0.1.10", 0, false},
		{Default, "10.53.57.10", 0, false},
		{alt, "10.53.57.10", 10, true},
		{alt, "127.0.0.10", 0, false},
		{Default, "fd00::5357:5f0a", 10, true},
		{Default, "fd00::5357:5f40", 64, true},
		{Default, "fd00::5357:5f41", 0, false},
		{Default, "::ffff:127.0.0.11", 11, true},
		{Default, "::1", 0, false},
	}
	for _, c := range cases {
		id, ok := c.plan.Host(netip.MustParseAddr(c.addr))
		if id != c.id || ok != c.ok {
			t.Errorf("Host(%s) = %d, %v; want %d, %v", c.addr, id, ok, c.id, c.ok)
		}
	}
	if got := Default.IPv6(10).String(); got != "fd00::5357:5f0a" {
		t.Errorf("IPv6(10) = %s", got)
	}
	if got := alt.IPv4(3).String(); got != "10.53.57.3" {
		t.Errorf("IPv4(3) = %s", got)
	}
	if !Default.IsBroadcast(netip.MustParseAddr("127.255.255.255")) || !alt.IsBroadcast(netip.MustParseAddr("10.255.255.255")) {
		t.Error("broadcast address not recognised")
	}
	if Default.InNetwork(netip.MustParseAddr("8.8.8.8")) || Default.InNetwork(netip.MustParseAddr("::1")) {
		t.Error("outside address counted as in the network")
	}
	if !Default.InNetwork(netip.MustParseAddr("127.0.0.200")) {
		t.Error("127.0.0.200 is in the network (no host, but routable)")
	}
}
