package tests

import (
	"path/filepath"
	"testing"
	"time"
)

// TestUDPRefusedEveryTime: 100 connected UDP sockets in a row, each sending
// to a closed port, all see ECONNREFUSED (from a send or the receive after
// it), natively and under the shim (host 11 to 127.0.0.10). Netstack
// rate-limits ICMP to 1000 a second with a burst of 50; Linux never does on
// loopback, which is what 127.0.0.N is to the programs. With the limit, 4-6
// of 100 sockets never learned that the port was closed.
func TestUDPRefusedEveryTime(t *testing.T) {
	python := needTool(t, "python3")
	script := filepath.Join(repoRoot, "tests", "testdata", "udprefused.py")
	const want = "errors=1:100"
	ctx := testCtx(t, 120*time.Second)
	wantOutput(t, "natively", newCmd(ctx, cleanEnv(), python, script, "errors", "127.0.0.1", "100"), want)
	dir := swrapDir(t)
	startBroker(t, dir)
	wantOutput(t, "under swrap", newCmd(ctx, wrapEnv(t, dir, 11), python, script, "errors", "127.0.0.10", "100"), want)
}

// TestUDPSentDespiteRefusals: a connected UDP socket that sends 2000
// datagrams to a closed port (host 11 to 127.0.0.10), 16 at a time a
// millisecond apart (faster, a loaded machine overflows a queue on the
// way, which is not what this measures), puts every one on the wire: the capture holds 2000, with a broker on 1
// and on 4 Ps. Netstack keeps an ICMP port unreachable for the endpoint's
// next Read or Write; when the broker's write of a later datagram took it,
// that datagram was dropped although the program's send had succeeded
// (9-63 of 2000 with 4 Ps). Now the error goes to the program's next
// receive, and the datagram goes.
func TestUDPSentDespiteRefusals(t *testing.T) {
	python := needTool(t, "python3")
	script := filepath.Join(repoRoot, "tests", "testdata", "udprefused.py")
	for _, procs := range []string{"1", "4"} {
		t.Run("procs"+procs, func(t *testing.T) {
			dir := swrapDir(t)
			pcapFile := filepath.Join(t.TempDir(), "refused.pcap")
			b := startBroker(t, dir, "SWRAP_BROKER_PROCS="+procs, "SOCKET_WRAPPER_PCAP_FILE="+pcapFile)
			ctx := testCtx(t, 60*time.Second)
			wantOutput(t, "under swrap (sends that succeeded)", newCmd(ctx, wrapEnv(t, dir, 11), python, script, "burst", "127.0.0.10", "2000"), "2000")
			if !b.stop() {
				t.Fatal("broker did not stop")
			}
			pkts, err := readCapture(pcapFile)
			if err != nil {
				t.Fatal(err)
			}
			sent, refused := 0, 0
			for _, p := range pkts {
				switch {
				case p.srcIP == "127.0.0.11" && p.dstIP == "127.0.0.10" && p.dstPort != 0:
					sent++
				case p.srcIP == "127.0.0.10" && p.dstIP == "127.0.0.11" && p.srcPort == 0:
					refused++ // the ICMP port unreachables
				}
			}
			if sent != 2000 {
				t.Errorf("capture: %d UDP datagrams from 127.0.0.11 to 127.0.0.10, want 2000 (%d ICMP back)", sent, refused)
			}
			t.Logf("capture: %d datagrams, %d ICMP port unreachables", sent, refused)
		})
	}
}
