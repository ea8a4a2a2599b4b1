package tests

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swrap/swrap/wire"
)

// TestNoReplyOrder runs tests/testdata/noreply.c under the shim: the
// setsockopt calls the shim sends without waiting for a reply (TCP_CORK,
// TCP_NODELAY) keep their order with the thread's next call.
//   - order: 6 threads set TCP_NODELAY/TCP_CORK on their own sockets and
//     read each value back at once, 3000 times, while 4 threads keep the
//     control connections busy (a read-back then goes on another
//     connection): every read-back is the value just set.
//   - blocked: a thread's TCP_CORK read-back, while the connection it set
//     it on is held by another thread's blocking connect across a
//     partition (2 s), comes within 300 ms and reads 1.
//   - many: 10001 TCP_CORK toggles in a row, far more than the 32 replies
//     a control connection used to have room for, do not block; the last
//     uncork releases 100 bytes within 150 ms (not the 200 ms cork
//     timer), and TCP_CORK reads 0.
func TestNoReplyOrder(t *testing.T) {
	bin := buildTestdataC(t, "noreply")
	for _, mode := range []string{"order", "blocked", "many"} {
		t.Run(mode, func(t *testing.T) {
			dir := swrapDir(t)
			startBroker(t, dir, "SWRAP_NETEM=10-11 partition")
			requireShimActive(t, dir, bin)
			ctx := testCtx(t, 70*time.Second)
			p := startProc(t, newCmd(ctx, wrapEnv(t, dir, 10), bin, mode, "127.0.0.10", "127.0.0.11"), false)
			select {
			case <-p.done:
			case <-time.After(60 * time.Second):
				syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
				<-p.done
				t.Fatalf("noreply %s did not finish within 60 s: %s", mode, p.describe())
			}
			if p.err != nil || !strings.HasPrefix(p.stdout.String(), "OK ") {
				t.Fatalf("noreply %s: %v: %s", mode, p.err, p.describe())
			}
			t.Log(strings.TrimSpace(p.stdout.String()))
		})
	}
}

// TestNoReplyProtocol speaks the protocol to a real broker: HELLO's reply
// says FeatNoReply; 40 malformed or failing requests with NoReplyBit (an
// unknown op, SETSOCKOPT of an unknown socket, a short SETSOCKOPT body)
// get no reply; one of another version gets its EPROTONOSUPPORT reply
// regardless; the next waited request's reply is preceded by exactly one
// SERVED message counting the 40 as failed, with the last one's op and
// errno; the one after that has none; the broker still serves.
func TestNoReplyProtocol(t *testing.T) {
	dir, _ := brokerWithHosts(t, nil, 10)
	fd := rawControlConn(t, dir)
	send := func(msg []byte) {
		t.Helper()
		if _, err := retryEINTR(func() (int, error) { return unix.Write(fd, msg) }); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	buf := make([]byte, wire.MaxMessage)
	recv := func() wire.Reply {
		t.Helper()
		n, err := retryEINTR(func() (int, error) { return unix.Read(fd, buf) })
		if err != nil {
			t.Fatalf("no reply: %v", err)
		}
		rep, err := wire.ParseReply(buf[:n])
		if err != nil {
			t.Fatalf("unreadable reply %x: %v", buf[:n], err)
		}
		return rep
	}
	send(wire.AppendRequest(nil, wire.OpHello, 0, wire.Hello{PID: 1, Iface: 10}.Encode()))
	rep := recv()
	hr, err := wire.ParseHelloRep(rep.Body)
	if rep.Op != wire.OpHello || rep.Err != 0 || err != nil || len(rep.Body) != wire.HelloRepSize ||
		hr.Features&wire.FeatNoReply == 0 {
		t.Fatalf("HELLO reply %+v (%v): want %d bytes with FeatNoReply", rep, err, wire.HelloRepSize)
	}
	var last wire.Op
	for i := 0; i < 40; i++ {
		var msg []byte
		switch i % 3 {
		case 0:
			last = wire.Op(100 + i)
			msg = wire.AppendRequest(nil, last|wire.NoReplyBit, 0, nil)
		case 1:
			last = wire.OpSetSockOpt
			msg = wire.AppendRequest(nil, last|wire.NoReplyBit, 1<<40|uint64(i),
				wire.SockOpt{Level: unix.IPPROTO_TCP, Name: unix.TCP_CORK, OptLen: 4, Value: []byte{1, 0, 0, 0}}.Encode())
		case 2:
			last = wire.OpSetSockOpt
			msg = wire.AppendRequest(nil, last|wire.NoReplyBit, 1<<40, []byte{1, 2, 3})
		}
		send(msg)
	}
	other := wire.AppendRequest(nil, wire.OpStatus|wire.NoReplyBit, 0, nil)
	other[4] = 9 // version 9
	send(other)
	if rep := recv(); rep.Err != syscall.EPROTONOSUPPORT {
		t.Fatalf("a request of version 9 with NoReplyBit: %+v, want an EPROTONOSUPPORT reply", rep)
	}
	send(wire.AppendRequest(nil, wire.OpGetLinks, 0, nil))
	rep = recv()
	sv, err := wire.ParseServed(rep.Body)
	// The last (i = 39) is an unknown op on socket 0: EBADF.
	want := wire.Served{Count: 40, Failed: 40, FailOp: last, FailErr: syscall.EBADF}
	if rep.Op != wire.OpServed || rep.Err != 0 || err != nil || sv != want {
		t.Fatalf("before the GETLINKS reply: %+v %+v (%v), want SERVED %+v", rep, sv, err, want)
	}
	if rep := recv(); rep.Op != wire.OpGetLinks || rep.Err != 0 {
		t.Fatalf("GETLINKS reply %+v", rep)
	}
	send(wire.AppendRequest(nil, wire.OpGetLinks, 0, nil))
	if rep := recv(); rep.Op != wire.OpGetLinks || rep.Err != 0 {
		t.Fatalf("the second GETLINKS: %+v, want its reply and no SERVED", rep)
	}
}
