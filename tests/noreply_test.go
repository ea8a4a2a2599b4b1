package tests

import (
	"strings"
	"syscall"
	"testing"
	"time"
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
