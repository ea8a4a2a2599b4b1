package tests

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// churnPy makes N connections from 127.0.0.11 to a listener on 127.0.0.10
// that closes each one first (as an HTTP server with Connection: close
// does), so every connection ends in TIME_WAIT on host 10; the client
// reads the EOF and closes. One process, multi-homed: each socket belongs
// to the host whose address it binds.
const churnPy = `
import socket, sys
n = int(sys.argv[1])
l = socket.socket()
l.bind(("127.0.0.10", 7460))
l.listen(8)
for i in range(n):
    c = socket.socket()
    c.bind(("127.0.0.11", 0))
    c.connect(("127.0.0.10", 7460))
    s, _ = l.accept()
    s.close()
    if c.recv(1) != b"":
        sys.exit("no EOF on connection %d" % i)
    c.close()
l.close()
print("ok")
`

// TestTimeWaitBound: the connections a server closes first stay in
// TIME_WAIT on its host, as on Linux (a host's tcp_closing in `swrap
// status` counts every one of them), up to SWRAP_TCP_MAX_TW; past the
// bound the connections that close skip TIME_WAIT, as Linux's do past
// net.ipv4.tcp_max_tw_buckets, so the count stays at the bound, and the
// broker says so once. Netstack keeps a whole endpoint for each, which
// is what the bound is for (bench/PROFILE.md, "TIME_WAIT").
func TestTimeWaitBound(t *testing.T) {
	python := needTool(t, "python3")
	const conns = 150
	for _, tc := range []struct {
		name   string
		env    []string
		lo, hi uint64 // host 10's tcp_closing after the run
		bound  int    // tcp_max_tw in the status
		warns  int
	}{
		// A few fewer than conns: a client port that comes round again
		// meets its old connection in TIME_WAIT, whose SYN then ends it
		// (as on Linux).
		{"default", nil, conns - 5, conns, 2048, 0},
		{"bound40", []string{"SWRAP_TCP_MAX_TW=40"}, 38, 42, 40, 1},
		{"unbounded", []string{"SWRAP_TCP_MAX_TW=0"}, conns - 5, conns, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := swrapDir(t)
			brk := startBroker(t, dir, tc.env...)
			ctx := testCtx(t, 60*time.Second)
			cmd := exec.CommandContext(ctx, python, "-c", churnPy, strconv.Itoa(conns))
			cmd.Env = wrapEnv(t, dir, 10)
			if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "ok" {
				t.Fatalf("python3: %v\n%s", err, out)
			}
			// The last FINs and ACKs cross the fabric after the
			// program's close returns.
			var closing map[int]uint64
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				st := brokerStatus(t, dir)
				closing = map[int]uint64{}
				bound := -1
				for _, h := range st.Hosts {
					closing[h.ID] = h.TCPClosing
					if h.ID == 10 {
						bound = h.MaxTimeWait
					}
				}
				if bound != tc.bound {
					t.Fatalf("host 10's tcp_max_tw is %d, want %d", bound, tc.bound)
				}
				settled := closing[11] == 0 && closing[10] >= tc.lo && closing[10] <= tc.hi
				if settled || time.Now().After(deadline) {
					break
				}
			}
			if c := closing[10]; c < tc.lo || c > tc.hi {
				t.Errorf("host 10 (the side that closed first) has %d connections closing after %d, want %d..%d", c, conns, tc.lo, tc.hi)
			}
			if c := closing[11]; c != 0 {
				t.Errorf("host 11 (the side that closed second) has %d connections closing, want 0", c)
			}
			if !brk.stop() {
				t.Fatal("broker did not stop")
			}
			if n := strings.Count(brk.log.String(), "TIME_WAIT at the bound"); n != tc.warns {
				t.Errorf("the broker said %d times that the bound was reached, want %d:\n%s", n, tc.warns, brk.log.String())
			}
		})
	}
}
