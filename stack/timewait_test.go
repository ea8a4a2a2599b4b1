package stack

import (
	"io"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/swrap/swrap/addrplan"
)

// TestTimeWaitBound: a host talking to itself (connections loop inside
// its stack), the server closing first so each connection ends in
// TIME_WAIT. Below the bound every one stays there; past it, the count
// stays at the bound, and NoteTCPClose reports the first overflow once.
func TestTimeWaitBound(t *testing.T) {
	const conns = 30
	for _, tc := range []struct {
		max        int
		lo, hi     uint64
		overflowed int
	}{
		{max: 8, lo: 8, hi: 9, overflowed: 1},
		// A client port that comes round again ends its old
		// connection's TIME_WAIT (a new SYN), hence the slack.
		{max: -1, lo: conns - 3, hi: conns},
		{max: 0, lo: conns - 3, hi: conns}, // DefaultMaxTimeWait
	} {
		h, err := New(Config{ID: 12, Plan: addrplan.Default, Link: linkConfig(t), MaxTimeWait: tc.max})
		if err != nil {
			t.Fatal(err)
		}
		addr := tcpip.FullAddress{NIC: NICID, Addr: tcpip.AddrFromSlice(h.IPv4.AsSlice()), Port: 7000}
		ln, err := gonet.ListenTCP(h.Stack, addr, header.IPv4ProtocolNumber)
		if err != nil {
			t.Fatal(err)
		}
		overflowed := 0
		for i := 0; i < conns; i++ {
			c, err := gonet.DialTCP(h.Stack, addr, header.IPv4ProtocolNumber)
			if err != nil {
				t.Fatal(err)
			}
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			if h.NoteTCPClose() {
				overflowed++
			}
			s.Close()
			if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Fatalf("connection %d: read %d, %v; want EOF", i, n, err)
			}
			c.Close()
		}
		var closing uint64
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if closing = h.TCPClosing(); closing >= tc.lo && closing <= tc.hi {
				break
			}
		}
		if closing < tc.lo || closing > tc.hi {
			t.Errorf("max %d: %d connections closing after %d, want %d..%d", tc.max, closing, conns, tc.lo, tc.hi)
		}
		if overflowed != tc.overflowed {
			t.Errorf("max %d: NoteTCPClose reported the overflow %d times, want %d", tc.max, overflowed, tc.overflowed)
		}
		ln.Close()
		h.Close()
	}
}
