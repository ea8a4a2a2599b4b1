package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/swrap/swrap/broker"
)

// TestIdleSessionsParked: idle TCP sessions hold no broker goroutine, and a
// parked session still behaves as before. tests/testdata/idlepark.c opens
// 64 connections between two hosts under the shim and leaves them idle;
// STATUS must then show the broker's goroutines back near its count before
// the program (an unparked session has two, 256 here). Then, on the parked
// connections: 1 MiB each way with every byte checked, single bytes after
// parking again, a half-close with data after it, an RST each way, a close
// each way, a shutdown(SHUT_RD); the lines the program prints (EOF, errno
// values) must be those of the same program run on the kernel's loopback.
// When it exits, sessions and goroutines go back to where they were.
func TestIdleSessionsParked(t *testing.T) {
	bin := buildTestdataC(t, "idlepark")
	// run runs idlepark with n connections, calls atIdle once they are
	// open and idle, and returns what it printed after that.
	run := func(env []string, server, client string, n int, atIdle func()) []string {
		ctx := testCtx(t, 60*time.Second)
		p := startProc(t, newCmd(ctx, env, bin, server, client, "0", itoa(n)), true)
		if l := p.nextLine(t, p.stdout, 20*time.Second); l != "idle "+itoa(n) {
			t.Fatalf("idlepark printed %q: %s", l, p.describe())
		}
		atIdle()
		p.send(t, "go\n")
		var out []string
		for {
			l := p.nextLine(t, p.stdout, 20*time.Second)
			if l == "done" {
				break
			}
			out = append(out, l)
		}
		p.stdin.Close()
		if err := p.wait(t, 10*time.Second); err != nil {
			t.Fatalf("idlepark: %v: %s", err, p.describe())
		}
		return out
	}
	same := func(what string, got, want []string) {
		t.Helper()
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n%s\nnatively:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}

	native := run(cleanEnv(), "127.0.0.1", "127.0.0.1", 8, func() { time.Sleep(time.Second) })
	for _, l := range native {
		if strings.Contains(l, "BAD") {
			t.Errorf("natively: %s", l)
		}
	}
	dir := swrapDir(t)
	startBroker(t, dir)
	// A first run makes hosts 10 and 11, whose goroutines stay: the
	// baseline is taken after it.
	env := wrapEnv(t, dir, 10)
	same("a first run", run(env, "127.0.0.10", "127.0.0.11", 8, func() {}), native)
	var base, st broker.Status
	for i := 0; i < 100; i++ {
		if base = brokerStatus(t, dir); base.Sessions == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	const n = 64
	wrapped := run(env, "127.0.0.10", "127.0.0.11", n, func() {
		// The listener (its accept loop and reader) and the program's
		// control connections hold a few goroutines; parked sessions none.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			st = brokerStatus(t, dir)
			if st.Sessions >= base.Sessions+2*n && st.Goroutines <= base.Goroutines+16 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if st.Sessions < base.Sessions+2*n {
			t.Fatalf("%d sessions with %d connections open, %d before", st.Sessions, n, base.Sessions)
		}
		if st.Goroutines > base.Goroutines+16 {
			t.Errorf("%d idle connections: %d broker goroutines, %d before: sessions are not parked",
				n, st.Goroutines, base.Goroutines)
		}
		t.Logf("%d idle connections: %d sessions, %d goroutines; before: %d sessions, %d goroutines",
			n, st.Sessions, st.Goroutines, base.Sessions, base.Goroutines)
	})
	same("on parked sessions", wrapped, native)

	// The program gone, nothing is left behind.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		st = brokerStatus(t, dir)
		if st.Sessions == base.Sessions && st.Goroutines <= base.Goroutines {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st.Sessions != base.Sessions || st.Goroutines > base.Goroutines {
		t.Errorf("after exit: %d sessions, %d goroutines; before: %d, %d", st.Sessions, st.Goroutines, base.Sessions, base.Goroutines)
	}
}
