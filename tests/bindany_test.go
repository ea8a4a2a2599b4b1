package tests

// Binding another host's address (issue 9, point 2): a wrapped program may
// bind any emulated host's address, not only its default interface's, and
// a socket bound to host M's address lives on host M: its frames come from
// host M, host M's link conditions apply, STATUS lists it under host M.
// The programs are python3 (tests/testdata/multihome.py) under the real
// shim and broker.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swrap/swrap/broker"
	"github.com/swrap/swrap/swrapnet"
)

var multihomeScript = filepath.Join(repoRoot, "tests", "testdata", "multihome.py")

// hostOf is the host id of an emulated address (0 if none).
func hostOf(a netip.Addr) int {
	id, _ := shimPlan.Host(a)
	return id
}

// fields parses "k=v k=v ..." (a value runs to the next blank, except the
// last key named rest, which takes the remainder of the line).
func fields(line, rest string) map[string]string {
	m := map[string]string{}
	for line != "" {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			break
		}
		if k == rest {
			m[k] = v
			break
		}
		v, line, _ = strings.Cut(v, " ")
		m[k] = v
	}
	return m
}

// mustAddrPort parses an ADDR:PORT a program printed, failing the test
// otherwise.
func mustAddrPort(t *testing.T, what, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatalf("%s: %q is not ADDR:PORT", what, s)
	}
	return ap
}

// TestBindOtherHostTCP: a multi-homed TCP server on host 10 listens on
// 127.0.0.10, 127.0.0.20, fd00::5357:5f0a and fd00::5357:5f14; a client on
// host 11 reaches each (and 127.0.0.20 and fd00::5357:5f14 once more from a
// socket it bound to host 21's address first). The server gets the 256 KiB
// each client sends intact (SHA-256), getsockname and getpeername agree
// on both ends, STATUS lists every listener, accepted connection and
// client socket under the host its address names, and the capture holds
// each connection's SYN-ACK and reply from the address the server bound,
// to the client's address.
func TestBindOtherHostTCP(t *testing.T) {
	py := pythonTool(t)
	dir := swrapDir(t)
	capFile := filepath.Join(t.TempDir(), "multihome.pcap")
	br := startBroker(t, dir, "SOCKET_WRAPPER_PCAP_FILE="+capFile)
	requireShimActive(t, dir, py)
	ctx := testCtx(t, 90*time.Second)

	const port, size = 7100, 256 << 10
	listen := []netip.Addr{shimPlan.IPv4(10), shimPlan.IPv4(20), shimPlan.IPv6(10), shimPlan.IPv6(20)}
	args := []string{multihomeScript, "tcp-server", itoa(port)}
	for _, a := range listen {
		args = append(args, a.String())
	}
	srv := startProc(t, newCmd(ctx, wrapEnv(t, dir, 10), py, args...), false)
	if l := srv.nextLine(t, srv.stdout, 10*time.Second); l != "listening" {
		t.Fatalf("server printed %q: %s", l, srv.describe())
	}
	for _, a := range listen {
		ap := netip.AddrPortFrom(a, port)
		s := waitSocket(t, dir, "the listener on "+ap.String(), isListener(srv, ap))
		if s.Host != hostOf(a) {
			t.Errorf("the listener on %s is on host %d, want %d", ap, s.Host, hostOf(a))
		}
	}

	type conn struct{ src, dst netip.Addr } // src invalid: unbound client
	conns := []conn{
		{dst: shimPlan.IPv4(10)}, {dst: shimPlan.IPv4(20)}, {dst: shimPlan.IPv6(10)}, {dst: shimPlan.IPv6(20)},
		{shimPlan.IPv4(21), shimPlan.IPv4(20)}, {shimPlan.IPv6(21), shimPlan.IPv6(20)},
	}
	cargs := []string{multihomeScript, "tcp-client", itoa(size), "10"}
	for _, c := range conns {
		spec := netip.AddrPortFrom(c.dst, port).String()
		if c.src.IsValid() {
			spec = c.src.String() + "/" + spec
		}
		cargs = append(cargs, spec)
	}
	cli := startProc(t, newCmd(ctx, wrapEnv(t, dir, 11), py, cargs...), true)
	type result struct{ local, dst netip.AddrPort }
	var results []result
	for _, c := range conns {
		line := cli.nextLine(t, cli.stdout, 30*time.Second)
		f := fields(line, "reply")
		dst := netip.AddrPortFrom(c.dst, port)
		if f["dst"] != dst.String() || f["error"] != "" || f["reply"] == "" {
			t.Fatalf("client to %s printed %q: %s\nserver: %s", dst, line, cli.describe(), srv.describe())
		}
		local := mustAddrPort(t, "client's getsockname", f["local"])
		wantSrc := c.src
		if !wantSrc.IsValid() {
			wantSrc = shimPlan.IPv4(11)
			if c.dst.Is6() {
				wantSrc = shimPlan.IPv6(11)
			}
		}
		if local.Addr() != wantSrc {
			t.Errorf("client to %s: getsockname %s, want %s:PORT", dst, local, wantSrc)
		}
		if f["peer"] != dst.String() {
			t.Errorf("client to %s: getpeername %s", dst, f["peer"])
		}
		r := fields(f["reply"], "")
		if r["local"] != dst.String() || r["peer"] != local.String() {
			t.Errorf("server's end of %s -> %s: getsockname %s, getpeername %s", local, dst, r["local"], r["peer"])
		}
		if r["sha256"] != f["sent"] {
			t.Errorf("%s -> %s: server got data with SHA-256 %s, client sent %s", local, dst, r["sha256"], f["sent"])
		}
		results = append(results, result{local, dst})
	}
	if l := cli.nextLine(t, cli.stdout, 10*time.Second); l != "done" {
		t.Fatalf("client printed %q: %s", l, cli.describe())
	}

	// The connections are held open: each end is on its address's host.
	for _, r := range results {
		s := waitSocket(t, dir, "the server's connection "+r.dst.String()+" <- "+r.local.String(), func(s broker.SocketStatus) bool {
			return s.PID == srv.pid() && s.Proto == "tcp" && s.Local == r.dst.String() && s.Remote == r.local.String()
		})
		if s.Host != hostOf(r.dst.Addr()) || s.TCP != "ESTABLISHED" {
			t.Errorf("server's connection %s <- %s: host %d, %s; want host %d, ESTABLISHED", r.dst, r.local, s.Host, s.TCP, hostOf(r.dst.Addr()))
		}
		s = waitSocket(t, dir, "the client's connection "+r.local.String()+" -> "+r.dst.String(), func(s broker.SocketStatus) bool {
			return s.PID == cli.pid() && s.Proto == "tcp" && s.Local == r.local.String() && s.Remote == r.dst.String()
		})
		if s.Host != hostOf(r.local.Addr()) {
			t.Errorf("client's connection %s -> %s: host %d, want %d", r.local, r.dst, s.Host, hostOf(r.local.Addr()))
		}
	}
	cli.stdin.Close()
	cli.mustSucceed(t, 10*time.Second)
	if !br.stop() {
		t.Fatal("broker did not stop")
	}

	frames, err := readCapture(capFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		var synack, fromServer, toServer int
		for _, f := range frames {
			switch {
			case f.srcIP == r.dst.Addr().String() && f.srcPort == int(r.dst.Port()) &&
				f.dstIP == r.local.Addr().String() && f.dstPort == int(r.local.Port()):
				if f.syn && f.ack {
					synack++
				}
				fromServer += f.payload
			case f.srcIP == r.local.Addr().String() && f.srcPort == int(r.local.Port()) &&
				f.dstIP == r.dst.Addr().String() && f.dstPort == int(r.dst.Port()):
				toServer += f.payload
			}
		}
		if synack != 1 || fromServer == 0 || toServer != 8+size {
			t.Errorf("capture of %s -> %s: %d SYN-ACKs and %d bytes from %s, %d bytes to it; want 1, > 0 and %d",
				r.local, r.dst, synack, fromServer, r.dst, toServer, 8+size)
		}
	}
}

// TestBindOtherHostUDP: a UDP server on host 10 bound to 127.0.0.20 (and
// one bound to fd00::5357:5f14) answers a client on host 11: the answer
// comes from the bound address, IP_PKTINFO (IPV6_PKTINFO) gave the server
// that address as the destination, STATUS lists the socket under host 20,
// and the capture holds the answer from that address.
func TestBindOtherHostUDP(t *testing.T) {
	py := pythonTool(t)
	dir := swrapDir(t)
	capFile := filepath.Join(t.TempDir(), "udp.pcap")
	br := startBroker(t, dir, "SOCKET_WRAPPER_PCAP_FILE="+capFile)
	requireShimActive(t, dir, py)
	ctx := testCtx(t, 60*time.Second)
	const port = 7200
	type answer struct{ client, server netip.AddrPort }
	var answers []answer
	for _, fam := range shimFamilies {
		bound := netip.AddrPortFrom(fam.addr(20), port)
		srv := startProc(t, newCmd(ctx, wrapEnv(t, dir, 10), py, multihomeScript, "udp-server", bound.Addr().String(), itoa(port)), false)
		if l := srv.nextLine(t, srv.stdout, 10*time.Second); l != "bound" {
			t.Fatalf("server printed %q: %s", l, srv.describe())
		}
		s := waitSocket(t, dir, "the UDP socket on "+bound.String(), func(s broker.SocketStatus) bool {
			return s.PID == srv.pid() && s.Proto == "udp" && s.Local == bound.String()
		})
		if s.Host != 20 {
			t.Errorf("the UDP socket on %s is on host %d, want 20", bound, s.Host)
		}
		data := "datagram-to-" + fam.name
		out, stderr, err := runCmd(newCmd(ctx, wrapEnv(t, dir, 11), py, multihomeScript, "udp-client", bound.String(), data))
		if err != nil {
			t.Fatalf("client: %v\n%s%s\nserver: %s", err, out, stderr, srv.describe())
		}
		f := fields(strings.TrimSpace(out), "reply")
		r := fields(f["reply"], "data")
		if f["from"] != bound.String() {
			t.Errorf("%s: the answer came from %s, want %s", fam.name, f["from"], bound)
		}
		if r["dst"] != bound.Addr().String() || r["data"] != data {
			t.Errorf("%s: the server saw destination (IP_PKTINFO) %s and data %q, want %s and %q", fam.name, r["dst"], r["data"], bound.Addr(), data)
		}
		from := mustAddrPort(t, "the server's sender", r["from"])
		if from.Addr() != fam.addr(11) {
			t.Errorf("%s: the server saw the datagram from %s, want %s:PORT", fam.name, from, fam.addr(11))
		}
		answers = append(answers, answer{from, bound})
	}
	if !br.stop() {
		t.Fatal("broker did not stop")
	}
	frames, err := readCapture(capFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range answers {
		n := 0
		for _, f := range frames {
			if f.srcIP == a.server.Addr().String() && f.srcPort == int(a.server.Port()) &&
				f.dstIP == a.client.Addr().String() && f.dstPort == int(a.client.Port()) && f.payload > 0 {
				n++
			}
		}
		if n != 1 {
			t.Errorf("the capture holds %d datagrams %s -> %s, want 1", n, a.server, a.client)
		}
	}
}

// TestBindOtherHostErrors: addresses outside the emulated network
// (127.0.0.200 and 127.0.0.65 beyond hosts 1..64, 10.1.2.3, ::1, fd00::1,
// fd00::5357:5f41) give EADDRNOTAVAIL, TCP and UDP; port 0 on another
// host's address picks a port; EADDRINUSE holds per host: 127.0.0.20:P
// bound and listening in a process on host 10 refuses 127.0.0.20:P to a
// process on host 12 and the wildcard to one on host 20, while the
// wildcard of host 12 (which means 127.0.0.12) is free; once the holder
// exits, 127.0.0.20:P is free again.
func TestBindOtherHostErrors(t *testing.T) {
	py := pythonTool(t)
	dir := swrapDir(t)
	startBroker(t, dir)
	requireShimActive(t, dir, py)
	ctx := testCtx(t, 60*time.Second)
	bind := func(iface int, proto, addr string, port int, mode ...string) string {
		t.Helper()
		args := append([]string{multihomeScript, "bind", proto, addr, itoa(port)}, mode...)
		out, stderr, err := runCmd(newCmd(ctx, wrapEnv(t, dir, iface), py, args...))
		if err != nil {
			t.Fatalf("bind %s %s:%d on host %d: %v\n%s%s", proto, addr, port, iface, err, out, stderr)
		}
		return strings.TrimSpace(out)
	}
	for _, a := range []string{"127.0.0.200", "127.0.0.65", "127.0.0.0", "10.1.2.3", "::1", "fd00::1", "fd00::5357:5f41"} {
		for _, proto := range []string{"tcp", "udp"} {
			if got := bind(10, proto, a, 0); got != "error EADDRNOTAVAIL" {
				t.Errorf("%s bind to %s on host 10: %q, want EADDRNOTAVAIL", proto, a, got)
			}
		}
	}
	for _, a := range []netip.Addr{shimPlan.IPv4(20), shimPlan.IPv6(20), shimPlan.IPv4(64), shimPlan.IPv4(1)} {
		got := bind(10, "tcp", a.String(), 0)
		name, ok := strings.CutPrefix(got, "ok ")
		if ap, err := netip.ParseAddrPort(name); !ok || err != nil || ap.Addr() != a || ap.Port() == 0 {
			t.Errorf("tcp bind to %s:0 on host 10: %q, want ok %s:PORT", a, got, a)
		}
	}

	const port = 7300
	holder := startProc(t, newCmd(ctx, wrapEnv(t, dir, 10), py, multihomeScript, "bind", "tcp", "127.0.0.20", itoa(port), "hold"), true)
	if l := holder.nextLine(t, holder.stdout, 10*time.Second); l != fmt.Sprintf("ok 127.0.0.20:%d", port) {
		t.Fatalf("holder printed %q: %s", l, holder.describe())
	}
	ap := netip.MustParseAddrPort(fmt.Sprintf("127.0.0.20:%d", port))
	if s := waitSocket(t, dir, "the holder's listener", isListener(holder, ap)); s.Host != 20 {
		t.Errorf("the listener on %s is on host %d, want 20", ap, s.Host)
	}
	// (The wildcard without SO_REUSEADDR: netstack, unlike Linux, lets a
	// wildcard with SO_REUSEADDR share a listener's port on one address.)
	for _, c := range []struct {
		iface int
		addr  string
		want  string
	}{
		{12, "127.0.0.20", "error EADDRINUSE"},
		{20, "127.0.0.20", "error EADDRINUSE"},
		{20, "0.0.0.0", "error EADDRINUSE"},
		{12, "0.0.0.0", fmt.Sprintf("ok 0.0.0.0:%d", port)},
		{12, "127.0.0.21", fmt.Sprintf("ok 127.0.0.21:%d", port)},
	} {
		if got := bind(c.iface, "tcp", c.addr, port, "noreuse"); got != c.want {
			t.Errorf("tcp bind to %s:%d on host %d while 127.0.0.20:%d listens: %q, want %q", c.addr, port, c.iface, port, got, c.want)
		}
	}
	if got := bind(12, "tcp", "127.0.0.20", port); got != "error EADDRINUSE" {
		t.Errorf("tcp bind to 127.0.0.20:%d with SO_REUSEADDR on host 12 while it listens: %q, want EADDRINUSE", port, got)
	}
	holder.stdin.Close()
	holder.mustSucceed(t, 10*time.Second)
	if got, want := bind(12, "tcp", "127.0.0.20", port), fmt.Sprintf("ok 127.0.0.20:%d", port); got != want {
		t.Errorf("tcp bind to 127.0.0.20:%d on host 12 after the holder exited: %q, want %q", port, got, want)
	}
}

// TestBindOtherHostNetem: with the link 20->11 losing every frame, a
// client on host 11 still reaches the server of host 10 on 127.0.0.10 but
// not the same server on 127.0.0.20, and the link's counters show the
// drops: the socket bound to 127.0.0.20 really sends from host 20.
func TestBindOtherHostNetem(t *testing.T) {
	py := pythonTool(t)
	dir := swrapDir(t)
	startBroker(t, dir, "SWRAP_NETEM=20->11 loss=100%")
	requireShimActive(t, dir, py)
	ctx := testCtx(t, 60*time.Second)
	const port = 7400
	srv := startProc(t, newCmd(ctx, wrapEnv(t, dir, 10), py, multihomeScript, "tcp-server", itoa(port), "127.0.0.10", "127.0.0.20"), false)
	if l := srv.nextLine(t, srv.stdout, 10*time.Second); l != "listening" {
		t.Fatalf("server printed %q: %s", l, srv.describe())
	}
	cli := startProc(t, newCmd(ctx, wrapEnv(t, dir, 11), py, multihomeScript, "tcp-client", "1000", "2",
		fmt.Sprintf("127.0.0.10:%d", port), fmt.Sprintf("127.0.0.20:%d", port)), true)
	if f := fields(cli.nextLine(t, cli.stdout, 10*time.Second), "reply"); f["error"] != "" || f["reply"] == "" {
		t.Errorf("client to 127.0.0.10 failed: %v: %s", f, cli.describe())
	}
	if f := fields(cli.nextLine(t, cli.stdout, 10*time.Second), "reply"); f["error"] != "timeout" {
		t.Errorf("client to 127.0.0.20 across a link that loses everything: %v, want a timeout: %s", f, cli.describe())
	}
	cli.stdin.Close()
	cli.mustSucceed(t, 10*time.Second)
	h := swrapnet.MustJoin(dir, 11)
	if st := linkStats(t, h, "20->11"); st.DropLoss == 0 {
		t.Errorf("link 20->11 dropped nothing: %+v", st)
	}
}

// TestBindOtherHostPing: iputils ping on host 10 with -I 127.0.0.20 (which
// binds its ICMP echo socket to that address) pings host 11 through host
// 20: every echo is answered, and host 20's link, not host 10's, carried
// the requests. IPv6 (-I fd00::5357:5f14) is tried only once the IPv4 run
// proved that ping is wrapped (see TestPing).
func TestBindOtherHostPing(t *testing.T) {
	ping := needTool(t, "ping")
	dir := swrapDir(t)
	startBroker(t, dir)
	h11 := swrapnet.MustJoin(dir, 11)
	pc, err := h11.ListenPacket("udp", "127.0.0.11:0") // host 11 exists
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	run := func(args ...string) string {
		out, stderr, err := runCmd(newCmd(testCtx(t, 20*time.Second), wrapEnv(t, dir, 10), ping, args...))
		if err != nil {
			t.Fatalf("ping %v: %v\n%s%s", args, err, out, stderr)
		}
		return out
	}
	out := run("-n", "-c", "2", "-W", "2", "-I", "127.0.0.20", "127.0.0.11")
	tx := map[int]uint64{}
	for _, h := range status(t, h11).Hosts {
		tx[h.ID] = h.Link.TxFrames
	}
	if tx[20] < 2 || tx[10] != 0 {
		t.Fatalf("echo requests sent by host 20: %d, by host 10: %d; want 2 and 0 (not trying IPv6):\n%s", tx[20], tx[10], out)
	}
	if !strings.Contains(out, "from 127.0.0.20") || !strings.Contains(out, "2 received") {
		t.Errorf("IPv4 ping -I 127.0.0.20: %s", out)
	}
	if out := run("-n", "-6", "-c", "2", "-W", "2", "-I", "fd00::5357:5f14", "fd00::5357:5f0b"); !strings.Contains(out, "from fd00::5357:5f14") || !strings.Contains(out, "2 received") {
		t.Errorf("IPv6 ping -I fd00::5357:5f14: %s", out)
	}
}

// TestBindOtherHostAltNetwork: under the 10.53.57.0 plan, host 10 (the Go
// client) listens on 10.53.57.20, host 11 reaches it there, and STATUS
// lists the listener under host 20; 127.0.0.20 is no host's address then
// (EADDRNOTAVAIL). Only the Go client talks, through the broker.
func TestBindOtherHostAltNetwork(t *testing.T) {
	t.Setenv("SOCKET_WRAPPER_IPV4_NETWORK", "10.53.57.0") // for swrapnet
	dir := swrapDir(t)
	startBroker(t, dir, "SOCKET_WRAPPER_IPV4_NETWORK=10.53.57.0")
	h10, h11 := swrapnet.MustJoin(dir, 10), swrapnet.MustJoin(dir, 11)
	ln, err := h10.Listen("tcp", "10.53.57.20:7")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan string, 1)
	acceptOne(t, ln, func(c net.Conn) { peer <- c.LocalAddr().String() + " " + c.RemoteAddr().String() })
	c, err := h11.Dial("tcp", "10.53.57.20:7")
	if err != nil {
		t.Fatal(err)
	}
	if p := <-peer; !strings.HasPrefix(p, "10.53.57.20:7 10.53.57.11:") {
		t.Errorf("server's connection is %q, want 10.53.57.20:7 from 10.53.57.11:PORT", p)
	}
	c.Close()
	found := false
	for _, s := range status(t, h10).Sockets {
		if s.Local == "10.53.57.20:7" && s.TCP == "LISTEN" {
			found = true
			if s.Host != 20 {
				t.Errorf("the listener on 10.53.57.20:7 is on host %d, want 20", s.Host)
			}
		}
	}
	if !found {
		t.Errorf("no listener on 10.53.57.20:7 in STATUS")
	}
	if _, err := h10.Listen("tcp", "127.0.0.20:7"); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("listen on 127.0.0.20 under the 10.53.57.0 plan: %v, want EADDRNOTAVAIL", err)
	}
}
