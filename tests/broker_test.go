package tests

// Broker tests: the real swrap-broker process, driven through the Go
// client (swrapnet), which speaks the same protocol as the shim.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swrap/swrap/broker"
	"github.com/swrap/swrap/swrapnet"
	"github.com/swrap/swrap/wire"
)

// brokerWithHosts starts a broker for a fresh directory and joins hosts.
func brokerWithHosts(t *testing.T, env []string, ids ...int) (string, map[int]*swrapnet.Host) {
	t.Helper()
	dir := swrapDir(t)
	startBroker(t, dir, env...)
	hosts := make(map[int]*swrapnet.Host)
	for _, id := range ids {
		h, err := swrapnet.Join(dir, id)
		if err != nil {
			t.Fatal(err)
		}
		hosts[id] = h
	}
	return dir, hosts
}

// status fetches and decodes the broker's STATUS.
func status(t *testing.T, h *swrapnet.Host) broker.Status {
	t.Helper()
	b, err := h.Status()
	if err != nil {
		t.Fatal(err)
	}
	var st broker.Status
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("status %s: %v", b, err)
	}
	return st
}

// stream is a reproducible pseudo-random byte source.
type stream struct {
	r    *rand.ChaCha8
	left int64
}

func newStream(seed byte, n int64) *stream {
	return &stream{r: rand.NewChaCha8([32]byte{seed}), left: n}
}

func (s *stream) Read(b []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > s.left {
		b = b[:s.left]
	}
	s.r.Read(b)
	s.left -= int64(len(b))
	return len(b), nil
}

// fabricModes runs fn with the broker's hosts exchanging frames in memory
// (the default) and over their unix sockets (SWRAP_FABRIC_SOCKETS=1).
func fabricModes(t *testing.T, fn func(t *testing.T, env []string)) {
	t.Run("memory", func(t *testing.T) { fn(t, nil) })
	t.Run("sockets", func(t *testing.T) { fn(t, []string{"SWRAP_FABRIC_SOCKETS=1"}) })
}

func TestTCPTransfer(t *testing.T) { fabricModes(t, testTCPTransfer) }

func testTCPTransfer(t *testing.T, env []string) {
	_, hosts := brokerWithHosts(t, env, 10, 11)
	if mode, want := status(t, hosts[10]).Fabric, map[bool]string{false: "memory", true: "sockets"}[len(env) > 0]; mode != want {
		t.Fatalf("broker's fabric is %q, want %q", mode, want)
	}
	for _, fam := range []struct{ name, server string }{
		{"ipv4", "127.0.0.10:7000"},
		{"ipv6", "[fd00::5357:5f0a]:7000"},
	} {
		for _, size := range []int64{1, 100 << 20} {
			t.Run(fam.name+"/"+itoa(int(size)), func(t *testing.T) {
				ln, err := hosts[10].Listen("tcp", fam.server)
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				type result struct {
					sum  [32]byte
					n    int64
					peer string
					err  error
				}
				got := make(chan result, 1)
				go func() {
					c, err := ln.Accept()
					if err != nil {
						got <- result{err: err}
						return
					}
					defer c.Close()
					h := sha256.New()
					n, err := io.Copy(h, c)
					var r result
					copy(r.sum[:], h.Sum(nil))
					r.n, r.err, r.peer = n, err, c.RemoteAddr().String()
					// Answer with the digest, so both directions carry data.
					c.Write(r.sum[:])
					got <- r
				}()
				c, err := hosts[11].Dial("tcp", fam.server)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				want := sha256.New()
				if _, err := io.Copy(io.MultiWriter(c, want), newStream(1, size)); err != nil {
					t.Fatal(err)
				}
				if err := c.(*swrapnet.Conn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
				echo, err := io.ReadAll(c)
				if err != nil {
					t.Fatalf("reading the digest back: %v", err)
				}
				r := <-got
				if r.err != nil {
					t.Fatal(r.err)
				}
				if r.n != size || !bytes.Equal(r.sum[:], want.Sum(nil)) || !bytes.Equal(echo, r.sum[:]) {
					t.Fatalf("received %d bytes with digest %x (echoed %x), sent %d with %x", r.n, r.sum, echo, size, want.Sum(nil))
				}
				wantPeer := "127.0.0.11"
				if fam.name == "ipv6" {
					wantPeer = "fd00::5357:5f0b"
				}
				if ap := netip.MustParseAddrPort(r.peer); ap.Addr().String() != wantPeer {
					t.Errorf("server saw peer %s, want %s", r.peer, wantPeer)
				}
			})
		}
	}
}

func TestConnectErrors(t *testing.T) {
	dir, hosts := brokerWithHosts(t, nil, 10, 11)
	_ = dir
	ln, err := hosts[10].Listen("tcp", "127.0.0.10:7100") // makes host 10 exist
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cases := []struct {
		name, addr string
		want       syscall.Errno
	}{
		{"refused", "127.0.0.10:7101", syscall.ECONNREFUSED},
		{"refused6", "[fd00::5357:5f0a]:7101", syscall.ECONNREFUSED},
		{"outside network", "192.0.2.1:80", syscall.ENETUNREACH},
		{"loopback ::1", "[::1]:80", syscall.ENETUNREACH},
		{"no such host", "127.0.0.99:80", syscall.EHOSTUNREACH},
		{"no such host6", "[fd00::5357:5f3f]:80", syscall.EHOSTUNREACH},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			conn, err := hosts[11].Dial("tcp", c.addr)
			elapsed := time.Since(start)
			if err == nil {
				conn.Close()
				t.Fatalf("connect to %s succeeded", c.addr)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("connect to %s: %v, want %v", c.addr, err, c.want)
			}
			if elapsed > time.Second {
				t.Errorf("connect to %s took %v, want < 1 s", c.addr, elapsed)
			}
		})
	}
}

func TestBindErrors(t *testing.T) {
	_, hosts := brokerWithHosts(t, nil, 10, 11)
	h := hosts[10]
	ln, err := h.Listen("tcp", "127.0.0.10:7200") // with SO_REUSEADDR, as servers do
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.ListenTCP("tcp", "127.0.0.10:7200", false); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second bind: %v, want EADDRINUSE", err)
	}
	if _, err := h.Listen("tcp", "127.0.0.10:7200"); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second bind with SO_REUSEADDR while listening: %v, want EADDRINUSE (as Linux)", err)
	}
	// Another host's address is free (its ports are that host's); an
	// address of no host is not available.
	if l, err := h.Listen("tcp", "127.0.0.11:7200"); err != nil {
		t.Errorf("bind to another host's address: %v, want it to work", err)
	} else {
		l.Close()
	}
	if _, err := h.Listen("tcp", "127.0.0.65:7200"); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("bind to an address of no host: %v, want EADDRNOTAVAIL", err)
	}
	// A connection closed first by the server leaves its port in
	// TIME-WAIT: a new listener needs SO_REUSEADDR (on both the old and the
	// new socket), as on Linux.
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
	}()
	c, err := hosts[11].Dial("tcp", "127.0.0.10:7200")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(c) // the server closes first
	c.Close()
	ln.Close()
	time.Sleep(100 * time.Millisecond)
	if l, err := h.ListenTCP("tcp", "127.0.0.10:7200", false); err == nil {
		l.Close()
		t.Errorf("bind over TIME-WAIT without SO_REUSEADDR succeeded, want EADDRINUSE")
	} else if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("bind over TIME-WAIT without SO_REUSEADDR: %v, want EADDRINUSE", err)
	}
	l, err := h.ListenTCP("tcp", "127.0.0.10:7200", true)
	if err != nil {
		t.Fatalf("bind over TIME-WAIT with SO_REUSEADDR: %v", err)
	}
	l.Close()
}

// echoOnce accepts one connection and hands it to f.
func acceptOne(t *testing.T, ln net.Listener, f func(net.Conn)) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		f(c)
	}()
	return done
}

func TestHalfCloseAndReset(t *testing.T) {
	_, hosts := brokerWithHosts(t, nil, 10, 11)
	ln, err := hosts[10].Listen("tcp", "127.0.0.10:7300")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	t.Run("half-close", func(t *testing.T) {
		done := acceptOne(t, ln, func(c net.Conn) {
			b, err := io.ReadAll(c) // ends at the client's FIN
			if err != nil || string(b) != "request" {
				t.Errorf("server read %q, %v", b, err)
			}
			if _, err := c.Write([]byte("reply after EOF")); err != nil {
				t.Errorf("server write after peer's FIN: %v", err)
			}
		})
		c, err := hosts[11].Dial("tcp", "127.0.0.10:7300")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("request"))
		c.(*swrapnet.Conn).CloseWrite()
		b, err := io.ReadAll(c)
		if err != nil || string(b) != "reply after EOF" {
			t.Errorf("client read %q, %v", b, err)
		}
		<-done
	})

	t.Run("linger 0 resets", func(t *testing.T) {
		done := acceptOne(t, ln, func(c net.Conn) {
			if err := c.(*swrapnet.Conn).SetLinger(0); err != nil {
				t.Error(err)
			}
		})
		c, err := hosts[11].Dial("tcp", "127.0.0.10:7300")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		<-done
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadAll(c)
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("read after the peer's linger-0 close: %v, want ECONNRESET", err)
		}
	})
}

// TestUDPFlood: a sender writing datagrams as fast as it can must not
// starve the delivery side of the broker. Before the sending loop yielded,
// it held the broker's CPU for whole scheduler slices while netstack's
// queues overflowed: two thirds of an iperf3 flood was lost, against under
// 1 % on Linux loopback. The test asks for more than half: loss under a
// flood depends on what else the machine runs (10.6 % was seen with the
// whole suite on two CPUs), and the rate itself is measured in bench/
// (the iperf3 UDP row), not here.
func TestUDPFlood(t *testing.T) {
	_, hosts := brokerWithHosts(t, nil, 10, 11)
	srv, err := hosts[10].ListenPacket("udp", "127.0.0.10:5310")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := hosts[11].ListenPacket("udp", "127.0.0.11:0")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	// Datagram i is sizeOf(i) bytes and starts with i: the broker takes a
	// burst in batches, and each datagram must keep its own boundaries.
	const n = 20000
	sizeOf := func(i int) int { return 4 + (i*37)%1400 }
	type result struct{ got, bad int }
	done := make(chan result)
	go func() {
		buf := make([]byte, 2048)
		var r result
		for {
			srv.SetReadDeadline(time.Now().Add(time.Second))
			k, _, err := srv.ReadFrom(buf)
			if err != nil {
				done <- r
				return
			}
			r.got++
			if i := int(binary.BigEndian.Uint32(buf)); k != sizeOf(i) {
				r.bad++
			}
		}
	}()
	msg := make([]byte, 1404)
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 10), Port: 5310}
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint32(msg, uint32(i))
		if _, err := cli.WriteTo(msg[:sizeOf(i)], to); err != nil {
			t.Fatal(err)
		}
	}
	r := <-done
	t.Logf("%d of %d datagrams arrived (%.1f%% lost)", r.got, n, 100*float64(n-r.got)/n)
	if r.got <= n/2 {
		t.Errorf("only %d of %d datagrams arrived", r.got, n)
	}
	if r.bad > 0 {
		t.Errorf("%d datagrams arrived with another datagram's length", r.bad)
	}
}

func TestUDP(t *testing.T) {
	_, hosts := brokerWithHosts(t, nil, 10, 11, 12)
	for _, fam := range []struct{ name, server, client string }{
		{"ipv4", "127.0.0.10:5300", "127.0.0.11"},
		{"ipv6", "[fd00::5357:5f0a]:5300", "fd00::5357:5f0b"},
	} {
		t.Run(fam.name, func(t *testing.T) {
			srv, err := hosts[10].ListenPacket("udp", fam.server)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			cli, err := hosts[11].ListenPacket("udp", net.JoinHostPort(fam.client, "0"))
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			to := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(fam.server))
			if _, err := cli.WriteTo([]byte("ping"), to); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			srv.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := srv.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			if string(buf[:n]) != "ping" || from.String() != cli.LocalAddr().String() {
				t.Errorf("server got %q from %v, want \"ping\" from %v", buf[:n], from, cli.LocalAddr())
			}
			srv.WriteTo([]byte("pong"), from)
			cli.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err = cli.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "pong" || from.String() != to.String() {
				t.Errorf("client got %q from %v (%v), want \"pong\" from %v", buf[:n], from, err, to)
			}
		})
	}

	t.Run("broadcast", func(t *testing.T) {
		var rx []*swrapnet.PacketConn
		for _, id := range []int{10, 12} {
			pc, err := hosts[id].ListenPacket("udp4", "0.0.0.0:5400")
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			rx = append(rx, pc)
		}
		other, err := hosts[12].ListenPacket("udp4", "0.0.0.0:5401") // another port: must not receive
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		tx, err := hosts[11].ListenPacket("udp4", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		bcast := &net.UDPAddr{IP: net.IPv4(127, 255, 255, 255), Port: 5400}
		if _, err := tx.WriteTo([]byte("no"), bcast); !errors.Is(err, syscall.EACCES) {
			t.Errorf("broadcast without SO_BROADCAST: %v, want EACCES", err)
		}
		if err := tx.SetBroadcast(true); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.WriteTo([]byte("all"), bcast); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 10)
		for i, pc := range rx {
			pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := pc.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "all" || !strings.HasPrefix(from.String(), "127.0.0.11:") {
				t.Errorf("receiver %d: %q from %v, %v", i, buf[:n], from, err)
			}
		}
		other.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, _, err := other.ReadFrom(buf); err == nil {
			t.Errorf("a socket on another port received %q", buf[:n])
		}
	})
}

func TestICMPEcho(t *testing.T) {
	_, hosts := brokerWithHosts(t, nil, 10, 11)
	if _, err := hosts[10].ListenPacket("udp", "127.0.0.10:0"); err != nil { // host 10 exists
		t.Fatal(err)
	}
	for _, fam := range []struct {
		network, dst string
		req, rep     byte
	}{
		{"icmp", "127.0.0.10", 8, 0},
		{"icmp6", "fd00::5357:5f0a", 128, 129},
	} {
		t.Run(fam.network, func(t *testing.T) {
			local := "0.0.0.0:0"
			if fam.network == "icmp6" {
				local = "[::]:0"
			}
			pc, err := hosts[11].ListenPacket(fam.network, local)
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			// type, code, checksum, id, seq: the stack fills in id and checksum.
			msg := []byte{fam.req, 0, 0, 0, 0, 0, 0, 1, 's', 'w', 'r', 'a', 'p'}
			if _, err := pc.WriteTo(msg, &net.IPAddr{IP: net.ParseIP(fam.dst)}); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(msg) || buf[0] != fam.rep || string(buf[8:n]) != "swrap" || from.String() != fam.dst {
				t.Errorf("reply %x from %v, want type %d with our payload from %s", buf[:n], from, fam.rep, fam.dst)
			}
		})
	}
}

// TestCapture checks with tshark, checksum validation on, that the capture
// holds every frame once, valid, with the handshake, the data and the FINs.
func TestCapture(t *testing.T) { fabricModes(t, testCapture) }

func testCapture(t *testing.T, env []string) {
	tshark := needTool(t, "tshark")
	dir := swrapDir(t)
	capFile := filepath.Join(dir, "capture.pcap")
	brk := startBroker(t, dir, append(env, "SOCKET_WRAPPER_PCAP_FILE="+capFile)...)
	h10, h11 := swrapnet.MustJoin(dir, 10), swrapnet.MustJoin(dir, 11)
	ln, err := h10.Listen("tcp", "127.0.0.10:7400")
	if err != nil {
		t.Fatal(err)
	}
	payload := strings.Repeat("swrap capture ", 20000) // 280 kB: several segments
	done := acceptOne(t, ln, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		c.Write([]byte("got " + itoa(len(b))))
	})
	c, err := h11.Dial("tcp", "127.0.0.10:7400")
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte(payload))
	c.(*swrapnet.Conn).CloseWrite()
	reply, _ := io.ReadAll(c)
	c.Close()
	<-done
	ln.Close()
	if string(reply) != "got "+itoa(len(payload)) {
		t.Fatalf("reply %q", reply)
	}
	time.Sleep(100 * time.Millisecond) // the last ACKs
	if !brk.stop() {
		t.Fatal("broker did not stop")
	}

	frames := tsharkDecode(t, tshark, capFile, "")
	if len(frames) == 0 {
		t.Fatal("empty capture")
	}
	var syn, synack, fins []string
	sent := 0
	for _, f := range frames {
		if f.badChecksum() {
			t.Errorf("frame %s has a bad checksum: %+v", f["frame.number"], f)
		}
		if f["tcp.srcport"] != "7400" && f["tcp.dstport"] != "7400" {
			continue
		}
		src := f["ip.src"]
		switch {
		case f.flag("tcp.flags.syn") && !f.flag("tcp.flags.ack"):
			syn = append(syn, src)
		case f.flag("tcp.flags.syn"):
			synack = append(synack, src)
		}
		if f.flag("tcp.flags.fin") {
			fins = append(fins, src)
		}
		if f.flag("tcp.flags.reset") {
			t.Errorf("unexpected RST in frame %s", f["frame.number"])
		}
		if src == "127.0.0.11" {
			sent += atoi(f["tcp.len"])
		}
	}
	if len(syn) != 1 || syn[0] != "127.0.0.11" || len(synack) != 1 || synack[0] != "127.0.0.10" {
		t.Errorf("handshake: SYN from %v, SYN-ACK from %v", syn, synack)
	}
	if len(fins) != 2 || fins[0] == fins[1] {
		t.Errorf("FINs from %v, want one from each side", fins)
	}
	if sent != len(payload) {
		t.Errorf("capture shows %d payload bytes from the client, sent %d", sent, len(payload))
	}
	if re := tsharkDecode(t, tshark, capFile, "tcp.analysis.retransmission || tcp.analysis.fast_retransmission || tcp.analysis.spurious_retransmission || tcp.analysis.duplicate_ack || _ws.expert.severity == \"error\""); len(re) > 0 {
		t.Errorf("%d frames flagged as retransmitted, duplicated or malformed: %v", len(re), re)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestRefusedShowsRST checks that ECONNREFUSED is a real RST on the wire.
func TestRefusedShowsRST(t *testing.T) {
	dir := swrapDir(t)
	capFile := filepath.Join(dir, "refused.pcap")
	brk := startBroker(t, dir, "SOCKET_WRAPPER_PCAP_FILE="+capFile)
	h10, h11 := swrapnet.MustJoin(dir, 10), swrapnet.MustJoin(dir, 11)
	ln, err := h10.Listen("tcp", "127.0.0.10:1") // host 10 exists
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := h11.Dial("tcp", "127.0.0.10:7500"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial: %v", err)
	}
	if !brk.stop() {
		t.Fatal("broker did not stop")
	}
	f, err := readCapture(capFile)
	if err != nil {
		t.Fatal(err)
	}
	var rst bool
	for _, p := range f {
		if p.srcIP == "127.0.0.10" && p.srcPort == 7500 && p.rst {
			rst = true
		}
	}
	if !rst {
		t.Errorf("no RST from 127.0.0.10:7500 in the capture (%d frames)", len(f))
	}
}

// TestDeadClientLeavesNothing kills a client process mid-transfer and checks
// through STATUS that its sessions, goroutines and fds are gone.
func TestDeadClientLeavesNothing(t *testing.T) {
	dir, hosts := brokerWithHosts(t, nil, 10, 11)
	ln, err := hosts[10].Listen("tcp", "127.0.0.10:7600")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the server: reads until the connection ends
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(io.Discard, c)
		c.Close()
	}()
	// The child will use host 11: make it exist before counting.
	if pc, err := hosts[11].ListenPacket("udp", "127.0.0.11:0"); err == nil {
		pc.Close()
	}
	// Each Host keeps a pool of control connections and opens another when
	// two of its calls overlap: status calls made on hosts[10] while the
	// server goroutine's Accept holds its connection would grow that pool
	// (a broker fd and goroutine the test itself holds). A Host of its own,
	// called from here only, keeps the test's part of the counts constant.
	watch, err := swrapnet.Join(dir, 10)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	status(t, watch)
	base := status(t, watch)

	child := exec.Command(os.Args[0], "-test.run=^TestHelperSender$")
	child.Env = append(cleanEnv(), "SWRAP_HELPER_DIR="+dir)
	stdout, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 8)
	if _, err := io.ReadFull(stdout, line); err != nil || string(line) != "sending\n" {
		t.Fatalf("child did not start sending: %q %v", line, err)
	}
	mid := status(t, watch)
	if mid.Sessions < base.Sessions+2 {
		t.Errorf("during the transfer: %d sessions, want at least %d", mid.Sessions, base.Sessions+2)
	}
	child.Process.Kill()
	child.Wait()
	wg.Wait()

	var st broker.Status
	for i := 0; i < 100; i++ {
		st = status(t, watch)
		if st.Sessions == base.Sessions && st.Goroutines <= base.Goroutines && st.FDs <= base.FDs {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st.Sessions != base.Sessions || st.Goroutines > base.Goroutines || st.FDs > base.FDs {
		t.Errorf("after the client died: sessions %d, goroutines %d, fds %d; before it: %d, %d, %d",
			st.Sessions, st.Goroutines, st.FDs, base.Sessions, base.Goroutines, base.FDs)
	}
}

// TestHelperSender is the client that TestDeadClientLeavesNothing kills: it
// sends to host 10 forever.
func TestHelperSender(t *testing.T) {
	dir := os.Getenv("SWRAP_HELPER_DIR")
	if dir == "" {
		t.Skip("run by TestDeadClientLeavesNothing")
	}
	c, err := swrapnet.MustJoin(dir, 11).Dial("tcp", "127.0.0.10:7600")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	c.Write(buf)
	os.Stdout.Write([]byte("sending\n"))
	for {
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
}

// retryEINTR repeats a raw system call the test's own runtime interrupted:
// its preemption signals make a blocking call on a socket with SO_RCVTIMEO
// fail with EINTR, SA_RESTART or not (signal(7)).
func retryEINTR(call func() (int, error)) (int, error) {
	for {
		n, err := call()
		if err != unix.EINTR {
			return n, err
		}
	}
}

// rawControlConn is a control connection to dir's broker that the test
// speaks the protocol on by hand (reads time out after 5 s); closed at the
// test's end.
func rawControlConn(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: filepath.Join(dir, "swrap", "broker.sock")}); err != nil {
		t.Fatal(err)
	}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})
	return fd
}

// TestMalformedMessages sends 1000 malformed control messages: each gets an
// error reply, and the broker keeps serving.
func TestMalformedMessages(t *testing.T) {
	dir, hosts := brokerWithHosts(t, nil, 10, 11)
	fd := rawControlConn(t, dir)
	rng := rand.New(rand.NewPCG(1, 2))
	hello := wire.AppendRequest(nil, wire.OpHello, 0, wire.Hello{PID: 1, Iface: 10}.Encode())
	gen := []func() []byte{
		func() []byte { b := make([]byte, rng.IntN(64)); fill(rng, b); return b },             // noise
		func() []byte { return hello[:rng.IntN(16)] },                                         // short header
		func() []byte { b := bytes.Clone(hello); b[4] = 9; return b },                         // other version
		func() []byte { return wire.AppendRequest(nil, wire.Op(100+rng.IntN(1000)), 0, nil) }, // unknown op
		func() []byte { return wire.AppendRequest(nil, wire.OpBind, rng.Uint64()|1<<40, make([]byte, 24)) },
		func() []byte { return wire.AppendRequest(nil, wire.OpSocket, 0, make([]byte, rng.IntN(15))) },
		func() []byte {
			return wire.AppendRequest(nil, wire.OpSocket, 0, wire.Socket{Family: 2, Type: 1, Iface: 99}.Encode())
		},
		func() []byte {
			return wire.AppendRequest(nil, wire.OpSocket, 0, wire.Socket{Family: 1, Type: 1, Iface: 10}.Encode())
		},
		func() []byte { return wire.AppendRequest(nil, wire.OpHello, 0, []byte{1, 2}) },
		func() []byte { b := make([]byte, wire.MaxMessage+100); fill(rng, b); return b }, // oversized
	}
	buf := make([]byte, wire.MaxMessage)
	errs := 0
	for i := 0; i < 1000; i++ {
		msg := gen[i%len(gen)]()
		if i%len(gen) == 0 && len(msg) == 0 {
			msg = []byte{0}
		}
		if _, err := retryEINTR(func() (int, error) { return unix.Write(fd, msg) }); err != nil {
			t.Fatalf("message %d: write: %v", i, err)
		}
		n, err := retryEINTR(func() (int, error) { return unix.Read(fd, buf) })
		if err != nil {
			t.Fatalf("message %d (%x...): no reply: %v", i, msg[:min(len(msg), 16)], err)
		}
		rep, err := wire.ParseReply(buf[:n])
		if err != nil {
			t.Fatalf("message %d: unreadable reply %x: %v", i, buf[:n], err)
		}
		if rep.Err != 0 {
			errs++
		}
	}
	if errs != 1000 {
		t.Errorf("%d of 1000 malformed messages got an error reply", errs)
	}
	// Still serving: a real exchange works.
	ln, err := hosts[10].Listen("tcp", "127.0.0.10:7700")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := acceptOne(t, ln, func(c net.Conn) { c.Write([]byte("alive")) })
	c, err := hosts[11].Dial("tcp", "127.0.0.10:7700")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	<-done
	if string(b) != "alive" {
		t.Errorf("after the malformed messages: read %q", b)
	}
}

func fill(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

// TestSIGTERMClosesCleanly stops the broker while a connection is open: the
// connection ends with FINs from both sides in the capture (no RST), and
// the program sees its socket end instead of hanging.
func TestSIGTERMClosesCleanly(t *testing.T) {
	dir := swrapDir(t)
	capFile := filepath.Join(dir, "term.pcap")
	brk := startBroker(t, dir, "SOCKET_WRAPPER_PCAP_FILE="+capFile)
	h10, h11 := swrapnet.MustJoin(dir, 10), swrapnet.MustJoin(dir, 11)
	ln, err := h10.Listen("tcp", "127.0.0.10:7800")
	if err != nil {
		t.Fatal(err)
	}
	srv := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			srv <- c
		}
	}()
	c, err := h11.Dial("tcp", "127.0.0.10:7800")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := <-srv
	defer sc.Close()
	c.Write([]byte("before"))
	b := make([]byte, 6)
	io.ReadFull(sc, b)
	if !brk.stop() {
		t.Fatal("broker did not stop")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(b); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read after the broker stopped: %v, want EOF or an error at once", err)
	}
	pkts, err := readCapture(capFile)
	if err != nil {
		t.Fatal(err)
	}
	fins := map[string]bool{}
	for _, p := range pkts {
		if p.fin {
			fins[p.srcIP] = true
		}
		if p.rst {
			t.Errorf("RST from %s:%d in the capture", p.srcIP, p.srcPort)
		}
	}
	if !fins["127.0.0.10"] || !fins["127.0.0.11"] {
		t.Errorf("FINs from %v, want both hosts", fins)
	}
}

// TestBrokerDeath kills the broker: programs see errors, never a hang.
func TestBrokerDeath(t *testing.T) {
	dir := swrapDir(t)
	brk := startBroker(t, dir)
	h10, h11 := swrapnet.MustJoin(dir, 10), swrapnet.MustJoin(dir, 11)
	ln, err := h10.Listen("tcp", "127.0.0.10:7900")
	if err != nil {
		t.Fatal(err)
	}
	go ln.Accept()
	c, err := h11.Dial("tcp", "127.0.0.10:7900")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brk.cmd.Process.Kill()
	<-brk.done
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read after the broker died: %v, want ECONNRESET", err)
	}
	_, err = c.Write(make([]byte, 1<<20))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("write after the broker died: %v, want an error at once", err)
	}
	if _, err := h11.Dial("tcp", "127.0.0.10:7900"); err == nil {
		t.Error("dial without a broker succeeded")
	}
}

// TestMTU checks that SOCKET_WRAPPER_MTU sets the fabric's MTU: no frame in
// the capture is larger.
func TestMTU(t *testing.T) {
	dir := swrapDir(t)
	capFile := filepath.Join(dir, "mtu.pcap")
	brk := startBroker(t, dir, "SOCKET_WRAPPER_PCAP_FILE="+capFile, "SOCKET_WRAPPER_MTU=1500")
	h10, h11 := swrapnet.MustJoin(dir, 10), swrapnet.MustJoin(dir, 11)
	ln, err := h10.Listen("tcp", "127.0.0.10:8000")
	if err != nil {
		t.Fatal(err)
	}
	done := acceptOne(t, ln, func(c net.Conn) { io.Copy(io.Discard, c) })
	c, err := h11.Dial("tcp", "127.0.0.10:8000")
	if err != nil {
		t.Fatal(err)
	}
	c.Write(make([]byte, 200<<10))
	c.Close()
	<-done
	if !brk.stop() {
		t.Fatal("broker did not stop")
	}
	f, err := pcapReadFile(capFile)
	if err != nil {
		t.Fatal(err)
	}
	largest := 0
	for _, r := range f {
		largest = max(largest, r)
	}
	if largest > 1500 || largest < 1400 {
		t.Errorf("largest frame %d bytes, want full frames of at most 1500", largest)
	}
}

// TestAltNetwork runs the 10.53.57.0 address plan. Only the Go client talks
// here, and it reaches addresses only through the broker, so nothing can
// leave for a real 10.x network.
func TestAltNetwork(t *testing.T) {
	t.Setenv("SOCKET_WRAPPER_IPV4_NETWORK", "10.53.57.0") // for swrapnet
	dir := swrapDir(t)
	startBroker(t, dir, "SOCKET_WRAPPER_IPV4_NETWORK=10.53.57.0")
	h10, h11 := swrapnet.MustJoin(dir, 10), swrapnet.MustJoin(dir, 11)
	if h11.IPv4().String() != "10.53.57.11" {
		t.Fatalf("host 11 is %s", h11.IPv4())
	}
	ln, err := h10.Listen("tcp", "10.53.57.10:7")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan string, 1)
	acceptOne(t, ln, func(c net.Conn) { peer <- c.RemoteAddr().String() })
	c, err := h11.Dial("tcp", "10.53.57.10:7")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if p := <-peer; !strings.HasPrefix(p, "10.53.57.11:") {
		t.Errorf("server saw %s, want 10.53.57.11", p)
	}
	if _, err := h11.Dial("tcp", "127.0.0.10:7"); !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("127.0.0.10 under the 10.53.57.0 plan: %v, want ENETUNREACH", err)
	}
	// This plan's broadcast address refuses a TCP connect at once, as
	// Linux does (tcp_v4_connect); 127.255.255.255 is outside the plan.
	for _, a := range []string{"10.255.255.255:7", "255.255.255.255:7", "127.255.255.255:7"} {
		start := time.Now()
		_, err := h11.DialTimeout("tcp", a, 10*time.Second)
		if !errors.Is(err, syscall.ENETUNREACH) || time.Since(start) > 2*time.Second {
			t.Errorf("TCP connect to %s under the 10.53.57.0 plan: %v after %v, want ENETUNREACH at once",
				a, err, time.Since(start).Round(time.Millisecond))
		}
	}
}

// TestCaptureStartedLater: checksums are left out while nobody captures
// (no one else reads them); a capture a program starts later (HELLO with
// SOCKET_WRAPPER_PCAP_FILE) must still get every frame with valid ones,
// on a connection that was already open.
func TestCaptureStartedLater(t *testing.T) {
	tshark := needTool(t, "tshark")
	python := needTool(t, "python3")
	dir := swrapDir(t)
	brk := startBroker(t, dir)
	hosts := map[int]*swrapnet.Host{10: swrapnet.MustJoin(dir, 10), 11: swrapnet.MustJoin(dir, 11)}
	ln, err := hosts[10].Listen("tcp", "127.0.0.10:7450")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	echoed := acceptOne(t, ln, func(c net.Conn) { io.Copy(c, c) })
	c, err := hosts[11].Dial("tcp", "127.0.0.10:7450")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exchange := func(msg string) {
		t.Helper()
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, len(msg))
		if _, err := io.ReadFull(c, b); err != nil || string(b) != msg {
			t.Fatalf("echo %q, %v", b, err)
		}
	}
	exchange("before the capture")
	if n := len(status(t, hosts[10]).Captures); n != 0 {
		t.Fatalf("%d captures before any was asked for", n)
	}

	capFile := filepath.Join(dir, "later.pcap")
	cmd := exec.Command(python, "-c", "import socket; socket.socket()")
	cmd.Env = wrapEnv(t, dir, 12, "SOCKET_WRAPPER_PCAP_FILE="+capFile)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	if n := len(status(t, hosts[10]).Captures); n != 1 {
		t.Fatalf("%d captures after a program asked for one", n)
	}
	payload := strings.Repeat("captured later ", 5000) // 75 kB: several segments each way
	exchange(payload)
	c.Close()
	<-echoed
	time.Sleep(100 * time.Millisecond) // the last ACKs
	if !brk.stop() {
		t.Fatal("broker did not stop")
	}

	frames := tsharkDecode(t, tshark, capFile, "tcp.port == 7450")
	payloadBytes := 0
	for _, f := range frames {
		if f.badChecksum() {
			t.Errorf("frame %s has a bad checksum: %+v", f["frame.number"], f)
		}
		payloadBytes += atoi(f["tcp.len"])
	}
	if payloadBytes != 2*len(payload) {
		t.Errorf("capture holds %d payload bytes, want %d (the exchange both ways)", payloadBytes, 2*len(payload))
	}
}

// TestBrokerQuietSysmon: the broker re-executes itself with the Go runtime
// setting that keeps sysmon out of deep sleep (cmd/swrap-broker/sysmon.go),
// which makes round trips about 40 % faster; it keeps the GODEBUG it was
// given, lets GODEBUG=schedtrace=... opt out, and prints no trace.
func TestBrokerQuietSysmon(t *testing.T) {
	for _, c := range []struct {
		name, env, want string
	}{
		{"default", "", "schedtrace=2147483647"},
		{"kept", "GODEBUG=madvdontneed=1", "madvdontneed=1,schedtrace=2147483647"},
		{"opt-out", "GODEBUG=schedtrace=0", "schedtrace=0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := swrapDir(t)
			var env []string
			if c.env != "" {
				env = append(env, c.env)
			}
			brk := startBroker(t, dir, env...)
			h := swrapnet.MustJoin(dir, 10)
			status(t, h) // some work: the runtime is up and serving
			raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", brk.cmd.Process.Pid))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, kv := range strings.Split(string(raw), "\x00") {
				if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
					got = append(got, v)
				}
			}
			if len(got) != 1 || got[0] != c.want {
				t.Errorf("broker's GODEBUG %q, want just %q", got, c.want)
			}
			if !brk.stop() {
				t.Fatal("broker did not stop")
			}
			if strings.Contains(brk.log.String(), "SCHED") {
				t.Errorf("the broker printed a scheduler trace:\n%s", brk.log.String())
			}
		})
	}
}

// TestUDPBurstBoundaries: the broker takes a sender's datagrams in batches
// of several per system call. A burst mixing empty, small and 65507-byte
// datagrams, to two destinations in turn, written while the broker is
// stopped (so that it finds them all queued), must arrive as it was sent:
// each datagram whole (length and SHA-256), in order, at the destination it
// was sent to, from the sender's address. Closing the sender then frees its
// port (the broker saw the end of the socket after a batch).
func TestUDPBurstBoundaries(t *testing.T) {
	dir := swrapDir(t)
	bp := startBroker(t, dir)
	hosts := make(map[int]*swrapnet.Host)
	for _, id := range []int{10, 11, 12} {
		h, err := swrapnet.Join(dir, id)
		if err != nil {
			t.Fatal(err)
		}
		hosts[id] = h
	}
	var rx [2]*swrapnet.PacketConn
	for k, a := range []string{"127.0.0.10:5320", "127.0.0.12:5320"} {
		pc, err := hosts[[]int{10, 12}[k]].ListenPacket("udp", a)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		rx[k] = pc
	}
	const from = "127.0.0.11:5321"
	tx, err := hosts[11].ListenPacket("udp", from)
	if err != nil {
		t.Fatal(err)
	}
	// What the app end's send buffer holds while the broker is stopped
	// (212992 bytes by default, counted with each message's overhead).
	const n = 40
	sizeOf := func(i int) int {
		switch {
		case i == 9:
			return 65507 // the largest IPv4 UDP payload
		case i%6 == 0:
			return 0
		default:
			return 1 + (i*211)%1500
		}
	}
	payload := func(i int) []byte {
		b := make([]byte, sizeOf(i))
		for j := range b {
			b[j] = byte(i*7 + j*13)
		}
		return b
	}
	// Datagram i goes to rx[i%2]; the receivers check what they get
	// against what was sent, in order.
	errs := make(chan error, 2)
	for k := range rx {
		go func() {
			buf := make([]byte, 65536)
			for i := k; i < n; i += 2 {
				rx[k].SetReadDeadline(time.Now().Add(5 * time.Second))
				m, src, err := rx[k].ReadFrom(buf)
				if err != nil {
					errs <- fmt.Errorf("receiver %d, datagram %d: %v", k, i, err)
					return
				}
				want := payload(i)
				if m != len(want) || sha256.Sum256(buf[:m]) != sha256.Sum256(want) {
					errs <- fmt.Errorf("receiver %d: datagram %d is %d bytes (sha256 %x), want %d (%x)",
						k, i, m, sha256.Sum256(buf[:m]), len(want), sha256.Sum256(want))
					return
				}
				if src.String() != from {
					errs <- fmt.Errorf("receiver %d: datagram %d from %v, want %s", k, i, src, from)
					return
				}
			}
			errs <- nil
		}()
	}
	dst := []*net.UDPAddr{{IP: net.IPv4(127, 0, 0, 10), Port: 5320}, {IP: net.IPv4(127, 0, 0, 12), Port: 5320}}
	proc := bp.cmd.Process
	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	cont := sync.OnceFunc(func() { proc.Signal(syscall.SIGCONT) })
	defer cont()
	for i := 0; i < n; i++ {
		tx.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := tx.WriteTo(payload(i), dst[i%2]); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
	}
	cont()
	for range rx {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	tx.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		again, err := hosts[11].ListenPacket("udp", from)
		if err == nil {
			again.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the port of the closed sender is still taken: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUDPFullQueueDrops: datagrams for a program that does not read are
// queued until its queue is full and then dropped, as a full socket
// buffer drops them; STATUS counts them. What the program then reads
// starts with the first datagram sent and is in order and whole (the
// broker may still be delivering the sender's last ones as it reads), and
// the socket still works afterwards.
func TestUDPFullQueueDrops(t *testing.T) {
	_, hosts := brokerWithHosts(t, nil, 10, 11)
	rx, err := hosts[10].ListenPacket("udp", "127.0.0.10:5330")
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := hosts[11].ListenPacket("udp", "127.0.0.11:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	before := status(t, hosts[10]).DgramDrops
	// 4 MiB, twice what the queue towards a program holds.
	const n, size = 3000, 1400
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 10), Port: 5330}
	msg := make([]byte, size)
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint32(msg, uint32(i))
		for j := 4; j < size; j++ {
			msg[j] = byte(i + j)
		}
		if _, err := tx.WriteTo(msg, to); err != nil {
			t.Fatal(err)
		}
	}
	var drops uint64
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		drops = status(t, hosts[10]).DgramDrops - before
		if drops > 0 || time.Now().After(deadline) {
			break
		}
	}
	if drops == 0 {
		t.Fatalf("%d datagrams of %d bytes to a program that does not read: none dropped", n, size)
	}
	got, first, last := 0, -1, -1
	buf := make([]byte, 2048)
	for {
		rx.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		k, _, err := rx.ReadFrom(buf)
		if err != nil {
			break
		}
		i := int(binary.BigEndian.Uint32(buf))
		ok := k == size && i > last
		for j := 4; ok && j < size; j++ {
			ok = buf[j] == byte(i+j)
		}
		if !ok {
			t.Fatalf("datagram %d (after %d): %d bytes, or not as sent", i, last, k)
		}
		if got == 0 {
			first = i
		}
		last = i
		got++
	}
	t.Logf("%d datagrams read, %d dropped at the full queue (the rest in netstack)", got, drops)
	if got == 0 || uint64(got)+drops > n {
		t.Errorf("%d read + %d dropped of %d sent", got, drops, n)
	}
	if first != 0 {
		t.Errorf("the first datagram read is %d: the queue did not keep the first one sent", first)
	}
	if _, err := tx.WriteTo([]byte("after"), to); err != nil {
		t.Fatal(err)
	}
	rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	if k, _, err := rx.ReadFrom(buf); err != nil || string(buf[:k]) != "after" {
		t.Errorf("after the drops: read %q, %v; want \"after\"", buf[:k], err)
	}
}
