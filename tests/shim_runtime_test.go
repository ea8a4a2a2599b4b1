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
// again after unsetenv(), while its wrapped socket keeps working. The
// capture the program asked for shows its exchange.
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

	ctx := testCtx(t, 60*time.Second)
	nport := nl.Addr().(*net.TCPAddr).Port
	out, stderr, err := runCmd(newCmd(ctx, preloadOnlyEnv(t), bin, itoa(nport), "7610", "7611", dir, capFile))
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
	if len(srv.peers) != 1 || !strings.HasPrefix(srv.peers[0], "127.0.0.11:") || srv.bytes != 150000 {
		t.Errorf("wrapped server saw peers %v and %d bytes, want one from 127.0.0.11 and 150000", srv.peers, srv.bytes)
	}
	srv.mu.Unlock()
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
	// 150000 data bytes and two 4-byte headers; two 16-byte answers.
	if toSrv != 150008 || fromSrv != 32 || udp != 2 {
		t.Errorf("capture: %d TCP payload bytes 127.0.0.11 -> 127.0.0.10:7610, %d back, %d UDP frames; want 150008, 32, 2",
			toSrv, fromSrv, udp)
	}
}
