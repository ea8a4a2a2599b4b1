package fabric

import (
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swrap/swrap/netem"
)

func mustRules(t testing.TB, s string) netem.Rules {
	t.Helper()
	r, err := netem.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestLinkConditions runs TCP over a lossy, delayed link and checks the
// round trip, the data, the counters and that dropped frames are not
// captured.
func TestLinkConditions(t *testing.T) { modes(t, testLinkConditions) }

func testLinkConditions(t *testing.T, sockets bool) {
	var captured atomic.Uint64
	f := newFabric(t, Config{Sockets: sockets,
		MTU:     1500,
		Capture: func(time.Time, [][]byte) { captured.Add(1) },
		Links:   mustRules(t, "1->2 delay=20ms loss=3% seed=7; 2->1 delay=20ms"),
	})
	hs := hosts(t, f, 1, 2)
	server, client := tcpPair(t, hs[1], hs[0], false, 80)
	defer server.Close()
	defer client.Close()
	s2, c2 := tcpPair(t, hs[1], hs[0], false, 81)
	defer s2.Close()
	defer c2.Close()

	// One byte there and back: two delayed crossings.
	start := time.Now()
	go func() {
		b := make([]byte, 1)
		if _, err := server.Read(b); err == nil {
			server.Write(b)
		}
	}()
	b := []byte{1}
	client.Write(b)
	if _, err := client.Read(b); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(start); rtt < 40*time.Millisecond || rtt > 1500*time.Millisecond {
		t.Errorf("round trip %v over two 20 ms links", rtt)
	}
	if !transfer(t, client, server, 1<<20) {
		t.Fatal("data corrupted over a lossy link")
	}
	links := f.Links()
	if len(links) != 2 || links[0].Link != "1->2" || links[1].Link != "2->1" {
		t.Fatalf("links %+v", links)
	}
	st := links[0].Stats
	if st.DropLoss == 0 || st.Delayed == 0 || st.Sent == 0 {
		t.Errorf("1->2 counters %+v: want drops and delays", st)
	}
	tx := hs[0].LinkStats().TxFrames + hs[1].LinkStats().TxFrames
	if lost := links[0].Stats.DropLoss; captured.Load() > tx-lost {
		t.Errorf("%d frames captured, but %d sent of which %d lost", captured.Load(), tx, lost)
	}

	// A partition stops everything; healing restores the link.
	f.SetLinks(mustRules(t, "1-2 partition"))
	if _, err := c2.Write([]byte("across the cut")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if got := f.Links()[0].Stats.DropPartition; got == 0 {
		t.Errorf("no partition drops: %+v", f.Links())
	}
	f.SetLinks(mustRules(t, "clear"))
	got := make([]byte, 14)
	s2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(s2, got); err != nil || string(got) != "across the cut" {
		t.Errorf("after healing: %q, %v", got, err)
	}
	if f.links.Load() != nil || len(f.Links()) != 0 {
		t.Errorf("clear left links: %+v", f.Links())
	}
}
