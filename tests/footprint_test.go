package tests

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// footprintHostsRSSMiB bounds the RSS of an idle broker with 64 hosts made
// by programs that have all exited (bench/PROFILE.md, "Footprint"): about
// 20 MiB measured with the pooled TX batches, 23.3 MiB before them, 8.5 MiB
// with no host.
const footprintHostsRSSMiB = 22

// TestBrokerHostsFootprint: a broker whose 64 hosts a program each made
// (tests/testdata/hostup.c: a TCP listener and a UDP datagram to the next
// host, then exit) comes back, once idle, to an RSS under
// footprintHostsRSSMiB; then host 1..64 still work (hostup runs again on
// each), and the RSS is under the bound again afterwards.
func TestBrokerHostsFootprint(t *testing.T) {
	bin := buildTestdataC(t, "hostup")
	dir := swrapDir(t)
	startBroker(t, dir)
	const hosts = 64
	makeHosts := func() {
		for h := 1; h <= hosts; h++ {
			ctx := testCtx(t, 20*time.Second)
			addr := fmt.Sprintf("127.0.0.%d", h)
			peer := fmt.Sprintf("127.0.0.%d", h%hosts+1)
			out, err := newCmd(ctx, wrapEnv(t, dir, h), bin, addr, "8080", peer).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "ok" {
				t.Fatalf("hostup on host %d: %v: %s", h, err, out)
			}
		}
	}
	// idleRSS waits for the broker to be idle with its hosts made and
	// returns its RSS once under the bound (the broker hands its free heap
	// back 2, 4, 8 s into a quiet period), or the last one after 20 s; a
	// broker never seen idle with its hosts fails the test.
	idleRSS := func() float64 {
		rss := -1.0
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
			st := brokerStatus(t, dir)
			if len(st.Hosts) < hosts || st.Sessions != 0 {
				continue
			}
			rss = vmRSSMiB(t, st.PID)
			if rss <= footprintHostsRSSMiB {
				break
			}
		}
		if rss < 0 {
			t.Fatalf("the broker was never idle with %d hosts within 20 s", hosts)
		}
		return rss
	}
	makeHosts()
	if rss := idleRSS(); rss > footprintHostsRSSMiB {
		t.Errorf("idle broker with %d hosts made: RSS %.1f MiB, want <= %d", hosts, rss, footprintHostsRSSMiB)
	} else {
		t.Logf("idle broker with %d hosts made: RSS %.1f MiB", hosts, rss)
	}
	makeHosts()
	if rss := idleRSS(); rss > footprintHostsRSSMiB {
		t.Errorf("after a second round on the %d hosts: RSS %.1f MiB, want <= %d", hosts, rss, footprintHostsRSSMiB)
	}
}

// vmRSSMiB is process pid's resident set size in MiB.
func vmRSSMiB(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb / 1024
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
