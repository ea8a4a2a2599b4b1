package tests

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swrap/swrap/wire"
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

// TestClosedRequest speaks CLOSED to a real broker: with a body it is
// EINVAL; for an unknown socket it succeeds (nothing is left to close);
// for a socket its program still holds it succeeds at once and closes
// nothing: the socket still receives.
func TestClosedRequest(t *testing.T) {
	dir, hosts := brokerWithHosts(t, nil, 10, 11)
	pc, err := hosts[10].ListenPacket("udp", "127.0.0.10:7900")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var id uint64
	for _, s := range status(t, hosts[10]).Sockets {
		if s.Local == "127.0.0.10:7900" {
			id = s.ID
		}
	}
	if id == 0 {
		t.Fatal("the socket on 127.0.0.10:7900 is not in STATUS")
	}
	fd := rawControlConn(t, dir)
	buf := make([]byte, wire.MaxMessage)
	call := func(op wire.Op, sock uint64, body []byte) wire.Reply {
		t.Helper()
		if _, err := retryEINTR(func() (int, error) { return unix.Write(fd, wire.AppendRequest(nil, op, sock, body)) }); err != nil {
			t.Fatalf("write: %v", err)
		}
		n, err := retryEINTR(func() (int, error) { return unix.Read(fd, buf) })
		if err != nil {
			t.Fatalf("no reply to %v: %v", op, err)
		}
		rep, err := wire.ParseReply(buf[:n])
		if err != nil || rep.Op != op {
			t.Fatalf("reply to %v: %+v (%v)", op, rep, err)
		}
		return rep
	}
	call(wire.OpHello, 0, wire.Hello{PID: 1, Iface: 10}.Encode())
	if rep := call(wire.OpClosed, id, []byte{1, 2, 3}); rep.Err != syscall.EINVAL {
		t.Errorf("CLOSED with a body: err %v, want EINVAL", rep.Err)
	}
	if rep := call(wire.OpClosed, 1<<40, nil); rep.Err != 0 {
		t.Errorf("CLOSED of an unknown socket: err %v, want none", rep.Err)
	}
	start := time.Now()
	if rep := call(wire.OpClosed, id, nil); rep.Err != 0 {
		t.Errorf("CLOSED of a socket still held: err %v, want none", rep.Err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("CLOSED of a socket still held took %v: it must not wait", d)
	}
	cli, err := hosts[11].Dial("udp", "127.0.0.10:7900")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	cli.Write([]byte("still here"))
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "still here" {
		t.Errorf("the socket after a CLOSED while held: %q, %v", buf[:n], err)
	}
}
