package tests

// The shim following the environment at run time (SOCKET_WRAPPER_* set and
// cleared by the program itself), and programs that sandbox themselves
// with seccomp.

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swrap/swrap/swrapnet"
)

// hashServer serves ln: each message is a 4-byte big-endian length and the
// data, answered with the FNV-1a 64 of the data in 16 hex digits. It
// records each client's remote address and the bytes it received.
type hashServer struct {
	mu    sync.Mutex
	peers []string
	bytes int
}

func (s *hashServer) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			s.mu.Lock()
			s.peers = append(s.peers, c.RemoteAddr().String())
			s.mu.Unlock()
			var hdr [4]byte
			for {
				if _, err := io.ReadFull(c, hdr[:]); err != nil {
					return
				}
				buf := make([]byte, binary.BigEndian.Uint32(hdr[:]))
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				h := fnv.New64a()
				h.Write(buf)
				s.mu.Lock()
				s.bytes += len(buf)
				s.mu.Unlock()
				fmt.Fprintf(c, "%016x", h.Sum64())
			}
		}()
	}
}

// preloadOnlyEnv is a preloaded environment with no SOCKET_WRAPPER_*.
func preloadOnlyEnv(t *testing.T) []string {
	return append(cleanEnv(), "LD_PRELOAD="+binPath(t, "libswrap.so"), "SWRAP_BROKER="+binPath(t, "swrap-broker"))
}

// TestRuntimeEnv runs tests/testdata/runtimeenv.c, started under the shim
// with no SOCKET_WRAPPER_* variable: unwrapped at first (its connect to a
// real listener on 127.0.0.1 uses a plain socket), wrapped once it has
// setenv()ed DIR, DEFAULT_IFACE=11 and PCAP_FILE (TCP with a server on
// host 10 seen from 127.0.0.11, hashes checked; UDP echo from 127.0.0.11), limited by
// MAX_SOCKETS set at run time (ENFILE for the sixth socket), and plain
// again after unsetenv(), while its wrapped socket keeps working; then
// wrapped in a second directory (another broker, host 12) while that socket
// still answers for itself at the first broker; socket_wrapper_enabled()
// follows an environ the program replaced itself. The capture the program
// asked for shows its exchange.
func TestRuntimeEnv(t *testing.T) {
	bin := buildTestdataC(t, "runtimeenv")
	dir := swrapDir(t)
	brk := startBroker(t, dir)
	capFile := filepath.Join(t.TempDir(), "runtime.pcap")

	nl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	var nativePeers []string
	var nmu sync.Mutex
	go func() {
		for {
			c, err := nl.Accept()
			if err != nil {
				return
			}
			nmu.Lock()
			nativePeers = append(nativePeers, c.RemoteAddr().(*net.TCPAddr).IP.String())
			nmu.Unlock()
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()

	h10 := swrapnet.MustJoin(dir, 10)
	ln, err := h10.Listen("tcp", "127.0.0.10:7610")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := &hashServer{}
	go srv.serve(ln)
	pc, err := h10.ListenPacket("udp", "127.0.0.10:7611")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		b := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(b)
			if err != nil {
				return
			}
			ip := from.(*net.UDPAddr).IP.String()
			pc.WriteTo([]byte("pong:"+string(b[:n])+":"+ip), from)
		}
	}()

	dir2 := swrapDir(t)
	startBroker(t, dir2)
	ln2, err := swrapnet.MustJoin(dir2, 10).Listen("tcp", "127.0.0.10:7630")
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	srv2 := &hashServer{}
	go srv2.serve(ln2)

	ctx := testCtx(t, 60*time.Second)
	nport := nl.Addr().(*net.TCPAddr).Port
	out, stderr, err := runCmd(newCmd(ctx, preloadOnlyEnv(t), bin, itoa(nport), "7610", "7611", dir, capFile, dir2, "7630"))
	if err != nil {
		t.Fatalf("runtimeenv: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	want := []string{
		"enabled_at_start 0",
		"native_before_local 127.0.0.1",
		"enabled_after_setenv 1",
		"wrapped_local 127.0.0.11",
		"wrapped_tcp bytes=100000 hash=",
		"udp_reply pong:ping:127.0.0.11 from=127.0.0.10",
		"max_sockets made=3 errno=ENFILE",
		"enabled_after_unsetenv 0",
		"native_after_local 127.0.0.1",
		"wrapped_tcp_after_unsetenv bytes=50000 hash=",
		"dir2_local 127.0.0.12",
		"dir2_tcp bytes=30000 hash=",
		"dir1_socket local=127.0.0.11 peer=127.0.0.10:7610",
		"dir1_tcp_after_dir2 bytes=20000 hash=",
		"environ_edit enabled=1 then=0",
		"DONE",
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(want) {
		t.Fatalf("runtimeenv printed:\n%s\nwant lines starting:\n%s\nstderr:\n%s", out, strings.Join(want, "\n"), stderr)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %q, want %q", i+1, lines[i], w)
		}
	}

	srv.mu.Lock()
	if len(srv.peers) != 1 || !strings.HasPrefix(srv.peers[0], "127.0.0.11:") || srv.bytes != 170000 {
		t.Errorf("wrapped server saw peers %v and %d bytes, want one from 127.0.0.11 and 170000", srv.peers, srv.bytes)
	}
	srv.mu.Unlock()
	srv2.mu.Lock()
	if len(srv2.peers) != 1 || !strings.HasPrefix(srv2.peers[0], "127.0.0.12:") || srv2.bytes != 30000 {
		t.Errorf("second directory's server saw peers %v and %d bytes, want one from 127.0.0.12 and 30000", srv2.peers, srv2.bytes)
	}
	srv2.mu.Unlock()
	nmu.Lock()
	if len(nativePeers) != 2 || nativePeers[0] != "127.0.0.1" || nativePeers[1] != "127.0.0.1" {
		t.Errorf("native listener saw %v, want two connections from 127.0.0.1", nativePeers)
	}
	nmu.Unlock()

	ln.Close()
	pc.Close()
	if !brk.stop() {
		t.Fatal("broker did not stop")
	}
	pkts, err := readCapture(capFile)
	if err != nil {
		t.Fatalf("capture %s: %v", capFile, err)
	}
	var toSrv, fromSrv, udp int
	for _, p := range pkts {
		switch {
		case p.srcIP == "127.0.0.11" && p.dstIP == "127.0.0.10" && p.dstPort == 7610:
			toSrv += p.payload
		case p.srcIP == "127.0.0.10" && p.dstIP == "127.0.0.11" && p.srcPort == 7610:
			fromSrv += p.payload
		case p.dstPort == 7611 || p.srcPort == 7611:
			udp++
		}
	}
	// 170000 data bytes and three 4-byte headers; three 16-byte answers.
	if toSrv != 170012 || fromSrv != 48 || udp != 2 {
		t.Errorf("capture: %d TCP payload bytes 127.0.0.11 -> 127.0.0.10:7610, %d back, %d UDP frames; want 170012, 48, 2",
			toSrv, fromSrv, udp)
	}
}

// TestSeccompSandbox runs tests/testdata/seccomp.c on host 11: connected
// to a wrapped server on host 10, it installs a seccomp filter like sshd's
// pre-auth sandbox (read, write, readv, writev, poll and little else; any
// other system call kills it), then uses only read/readv/write/writev, on
// its socket and on a raw dup() of it the shim never saw. Against an echo
// server 256 KiB come back intact and it exits 0 (no SIGSYS); against a
// server that resets the connection its writes end with EPIPE or
// ECONNRESET, with SIGPIPE ignored (as sshd) or caught.
func TestSeccompSandbox(t *testing.T) {
	bin := buildTestdataC(t, "seccomp")
	dir := swrapDir(t)
	startBroker(t, dir)
	h10 := swrapnet.MustJoin(dir, 10)
	ln, err := h10.Listen("tcp", "127.0.0.10:7620")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	reset := make(chan bool, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(rst bool) {
				defer c.Close()
				if !rst {
					io.Copy(c, c)
					return
				}
				io.CopyN(io.Discard, c, 64*1024)
				c.(*swrapnet.Conn).SetLinger(0)
			}(<-reset)
		}
	}()
	for _, mode := range []string{"echo", "reset"} {
		for _, sig := range []string{"ign", "handler"} {
			t.Run(mode+"_"+sig, func(t *testing.T) {
				reset <- mode == "reset"
				ctx := testCtx(t, 60*time.Second)
				out, stderr, err := runCmd(newCmd(ctx, wrapEnv(t, dir, 11), bin, mode, sig, "127.0.0.10", "7620"))
				if err != nil {
					t.Fatalf("seccomp %s %s: %v (a SIGSYS means the shim made a call the filter forbids)\nstdout:\n%s\nstderr:\n%s",
						mode, sig, err, out, stderr)
				}
				out = strings.TrimSpace(out)
				switch {
				case mode == "echo":
					if out != "echo sent=262144 got=262144 intact=1" {
						t.Errorf("echo through the sandboxed program: %q", out)
					}
				case !strings.HasPrefix(out, "reset write=EPIPE") && !strings.HasPrefix(out, "reset write=ECONNRESET"):
					t.Errorf("writes after a reset: %q, want EPIPE or ECONNRESET", out)
				case sig == "handler" && !strings.HasSuffix(out, "sigpipe=1") && !strings.HasSuffix(out, "sigpipe=0"):
					// One SIGPIPE, from the kernel; none when the write was
					// waiting for buffer space as the broker closed its end
					// (sock_alloc_send_pskb fails with EPIPE and no signal).
					t.Errorf("EPIPE with a SIGPIPE handler: %q, want at most the one signal the kernel sends", out)
				}
			})
		}
	}
}
