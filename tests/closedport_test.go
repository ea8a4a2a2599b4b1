package tests

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestClosedPortRefusedAtOnce: a UDP socket or a TCP listener closed, and
// its port reached at once from a new socket, 300 times in a row: Linux
// refuses every one (the port is free when close() returns). The broker
// learns of a close from its end of the socket, a moment later; before the
// shim's close waited for it (OpClosed), 2-5 of 300 datagrams went to the
// closed socket (no ECONNREFUSED) and 1-34 of 300 connects reached the
// closed listener and succeeded, on a quiet machine, at 1 and at 4 Ps.
func TestClosedPortRefusedAtOnce(t *testing.T) {
	python := needTool(t, "python3")
	script := filepath.Join(repoRoot, "tests", "testdata", "closedport.py")
	const want = "refused=300 other=0"
	for _, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			ctx := testCtx(t, 120*time.Second)
			wantOutput(t, "natively", newCmd(ctx, cleanEnv(), python, script, proto, "127.0.0.1", "300"), want)
			for _, procs := range []string{"1", "4"} {
				dir := swrapDir(t)
				startBroker(t, dir, "SWRAP_BROKER_PROCS="+procs)
				wantOutput(t, "under swrap, broker on "+procs+" Ps", newCmd(ctx, wrapEnv(t, dir, 11), python, script, proto, "127.0.0.10", "300"), want)
			}
		})
	}
}

// TestGoClientClosedPortRefused: the same through swrapnet (the Go
// client): a Listener's or a PacketConn's Close returns once the port is
// free, so a connect (or a connected datagram) right after it is refused,
// 300 times in a row, with a broker on 4 Ps.
func TestGoClientClosedPortRefused(t *testing.T) {
	_, hosts := brokerWithHosts(t, []string{"SWRAP_BROKER_PROCS=4"}, 10, 11)
	t.Run("tcp", func(t *testing.T) {
		for i := range 300 {
			ln, err := hosts[10].Listen("tcp", "127.0.0.10:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close()
			c, err := hosts[11].Dial("tcp", addr)
			if err == nil {
				c.Close()
				t.Fatalf("round %d: connect to %s after its listener's close succeeded", i, addr)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("round %d: connect to %s: %v, want ECONNREFUSED", i, addr, err)
			}
		}
	})
	t.Run("udp", func(t *testing.T) {
		buf := make([]byte, 16)
		for i := range 300 {
			pc, err := hosts[10].ListenPacket("udp", "127.0.0.10:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := pc.LocalAddr().String()
			pc.Close()
			c, err := hosts[11].Dial("udp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c.Write([]byte("x"))
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, err = c.Read(buf)
			c.Close()
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("round %d: read after a datagram to %s, closed: %v, want ECONNREFUSED", i, addr, err)
			}
		}
	})
}
