package fabric

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"

	"github.com/swrap/swrap/stack"
)

// newFabric returns a fabric in a temporary directory, closed at cleanup.
func newFabric(t testing.TB, cfg Config) *Fabric {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// modes runs fn twice: with frames between hosts handed over in memory (the
// default) and through the hosts' unix sockets (Config.Sockets), the path
// frames from other processes take.
func modes(t *testing.T, fn func(t *testing.T, sockets bool)) {
	for _, sockets := range []bool{false, true} {
		t.Run(fmt.Sprintf("sockets=%v", sockets), func(t *testing.T) { fn(t, sockets) })
	}
}

// hosts creates the given hosts.
func hosts(t testing.TB, f *Fabric, ids ...int) []*stack.Host {
	t.Helper()
	var hs []*stack.Host
	for _, id := range ids {
		h, err := f.Host(id)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	return hs
}

// fullAddr converts a netip address and port for netstack.
func fullAddr(a netip.Addr, port uint16) tcpip.FullAddress {
	return tcpip.FullAddress{Addr: tcpip.AddrFromSlice(a.AsSlice()), Port: port}
}

func proto(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Is4() {
		return ipv4.ProtocolNumber
	}
	return ipv6.ProtocolNumber
}

func addrOf(h *stack.Host, v6 bool) netip.Addr {
	if v6 {
		return h.IPv6
	}
	return h.IPv4
}

// tcpPair connects a client on host c to a listener on host s.
func tcpPair(t testing.TB, s, c *stack.Host, v6 bool, port uint16) (server, client net.Conn) {
	t.Helper()
	sa := addrOf(s, v6)
	l, err := gonet.ListenTCP(s.Stack, fullAddr(sa, port), proto(sa))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			acc <- nil
			return
		}
		acc <- conn
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err = gonet.DialContextTCP(ctx, c.Stack, fullAddr(sa, port), proto(sa))
	if err != nil {
		t.Fatal(err)
	}
	server = <-acc
	if server == nil {
		t.Fatal("accept failed")
	}
	return server, client
}

// transfer sends n pseudo-random bytes from w to r and reports whether the
// sha256 of what arrived matches.
func transfer(t testing.TB, w, r net.Conn, n int64) bool {
	t.Helper()
	chunk := bytes.Repeat([]byte("swrap fabric bulk data 0123456789"), 2000)
	src := io.LimitReader(&repeatReader{b: chunk}, n)
	sent := sha256.New()
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.MultiWriter(w, sent), src)
		if cw, ok := w.(interface{ CloseWrite() error }); ok && err == nil {
			err = cw.CloseWrite()
		}
		errc <- err
	}()
	got := sha256.New()
	m, err := io.Copy(got, r)
	if err != nil {
		t.Fatalf("receive: %v after %d bytes", err, m)
	}
	if err := <-errc; err != nil {
		t.Fatalf("send: %v", err)
	}
	if m != n {
		t.Errorf("received %d bytes, want %d", m, n)
	}
	return bytes.Equal(sent.Sum(nil), got.Sum(nil))
}

// repeatReader yields b over and over, with a counter mixed in so that
// reordering or duplication would change the hash.
type repeatReader struct {
	b []byte
	i uint64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.b)
	for k := 0; k+8 <= n; k += 4096 {
		r.i++
		p[k] = byte(r.i)
		p[k+1] = byte(r.i >> 8)
		p[k+2] = byte(r.i >> 16)
	}
	return n, nil
}
