package tap

import (
	"testing"
	"time"
)

// TestQDisc checks both ways through the QDisc: frames for a host of this
// process are delivered and captured before WritePacket returns, once each
// and in order; frames for a socket Port go through the fifo's goroutine
// and arrive in order too.
func TestQDisc(t *testing.T) {
	n := newTestNet(t)
	q := NewQDisc(n.a, 100)
	defer q.Close()
	send := func(sizes ...int) {
		for _, sz := range sizes {
			pkt := ipv4Packet([4]byte{127, 0, 0, 2}, sz)
			if err := q.WritePacket(pkt); err != nil {
				t.Fatalf("WritePacket: %v", err)
			}
			pkt.DecRef()
		}
	}
	sizeOf := func(b []byte) int { return len(b) - 20 }

	socket := n.portB
	n.portB = LocalPort(n.b)
	send(1, 2, 3)
	n.rb.mu.Lock()
	got := len(n.rb.pkts)
	n.rb.mu.Unlock()
	if got != 3 {
		t.Fatalf("local: %d frames delivered when WritePacket returned, want 3", got)
	}
	pkts := n.rb.wait(t, 3)
	for i, p := range pkts {
		if sizeOf(p) != i+1 {
			t.Errorf("local: frame %d has %d bytes, want %d", i, sizeOf(p), i+1)
		}
	}
	if len(n.captured) != 3 {
		t.Errorf("local: %d frames captured, want 3", len(n.captured))
	}

	n.portB = socket
	send(4, 5, 6)
	pkts = n.rb.wait(t, 3)
	for i, p := range pkts[3:] {
		if sizeOf(p) != i+4 {
			t.Errorf("socket: frame %d has %d bytes, want %d", i, sizeOf(p), i+4)
		}
	}
	if s := n.a.Stats(); s.TxFrames != 6 || s.Dropped != 0 {
		t.Errorf("a: %+v", s)
	}
	// The fifo counts a batch out once its send returns, which may be
	// after the receiver has the frames.
	for end := time.Now().Add(2 * time.Second); q.queued.Load() != 0 && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
	if q.queued.Load() != 0 {
		t.Errorf("%d frames counted as queued after they were sent", q.queued.Load())
	}
}
