package pcap

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
)

// testNamer names 127.0.0.N "hostN".
func testNamer(a netip.Addr) Iface {
	b := a.As4()
	return Iface{ID: int(b[3]), Name: "host" + strconv.Itoa(int(b[3])), Description: a.String(), Host: true}
}

// udpFrom returns a UDP packet from 127.0.0.src to 127.0.0.dst.
func udpFrom(t *testing.T, src, dst byte) []byte {
	p := ipv4UDP(t, 10)
	p = append([]byte(nil), p...)
	p[15], p[19] = src, dst
	return p
}

// ngRecord is one packet read back from a pcapng capture.
type ngRecord struct {
	iface    string
	data     []byte
	comments []string
	drops    uint64
}

func readNgStream(t *testing.T, r io.Reader) []ngRecord {
	t.Helper()
	nr, err := pcapgo.NewNgReader(r, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	var out []ngRecord
	for {
		data, ci, opts, err := nr.ReadPacketDataWithOptions()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		intf, err := nr.Interface(ci.InterfaceIndex)
		if err != nil {
			t.Fatal(err)
		}
		rec := ngRecord{iface: intf.Name, data: data, comments: opts.Comments}
		if opts.DropCount != nil {
			rec.drops = *opts.DropCount
		}
		out = append(out, rec)
	}
}

// TestNgInterfaces: every frame is on its sender's interface, interfaces
// are added as hosts appear, notes become comments and drops go to a drop
// interface.
func TestNgInterfaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.pcapng")
	w, err := OpenFile(path, Options{Namer: testNamer})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	w.Frame(now, [][]byte{udpFrom(t, 10, 11)})
	w.Frame(now, [][]byte{udpFrom(t, 11, 10)})
	w.FrameNote(now, [][]byte{udpFrom(t, 10, 11)}, Note{Delay: 20 * time.Millisecond})
	w.FrameNote(now, [][]byte{udpFrom(t, 10, 11)}, Note{Drop: "loss"})
	w.Frame(now, [][]byte{udpFrom(t, 12, 10)})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs := readNgStream(t, f)
	want := []string{"host10", "host11", "host10", "host10->host11 dropped", "host12"}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for i, r := range recs {
		if r.iface != want[i] {
			t.Errorf("record %d on %q, want %q", i, r.iface, want[i])
		}
	}
	if len(recs[2].comments) != 1 || !strings.Contains(recs[2].comments[0], "delayed by 20ms") {
		t.Errorf("delayed frame's comments: %q", recs[2].comments)
	}
	if len(recs[3].comments) != 1 || !strings.Contains(recs[3].comments[0], "dropped (loss)") {
		t.Errorf("dropped frame's comments: %q", recs[3].comments)
	}
	if len(recs[0].comments) != 0 {
		t.Errorf("plain frame has comments %q", recs[0].comments)
	}
}

// TestClassicLeavesOutDrops: a classic pcap has no drop interface, so a
// dropped frame is not in it.
func TestClassicLeavesOutDrops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.pcap")
	w, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.FrameNote(time.Now(), [][]byte{udpFrom(t, 10, 11)}, Note{Drop: "loss"})
	w.FrameNote(time.Now(), [][]byte{udpFrom(t, 10, 11)}, Note{Delay: time.Millisecond})
	w.Close()
	f, err := ReadFile(path)
	if err != nil || len(f.Records) != 1 {
		t.Fatalf("%v records, err %v; want 1", f, err)
	}
}

// TestNgEmpty: a capture without frames is still a pcapng file.
func TestNgEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.pcapng")
	w, err := OpenFile(path, Options{Namer: testNamer})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	f, _ := os.Open(path)
	defer f.Close()
	if recs := readNgStream(t, f); len(recs) != 0 {
		t.Errorf("%d records", len(recs))
	}
	// A classic pcap is not appended to as pcapng.
	classic := filepath.Join(t.TempDir(), "c.pcapng")
	cw, _ := Open(classic, 0)
	cw.Close()
	if _, err := OpenFile(classic, Options{}); err == nil {
		t.Error("OpenFile appended pcapng to a classic pcap")
	}
}

// TestDir: one file per host, each frame in its sender's and receiver's.
func TestDir(t *testing.T) {
	dir := t.TempDir()
	w, err := OpenDir(dir, Options{Namer: testNamer})
	if err != nil {
		t.Fatal(err)
	}
	w.Frame(time.Now(), [][]byte{udpFrom(t, 10, 11)})
	w.Frame(time.Now(), [][]byte{udpFrom(t, 12, 10)})
	w.Close()
	for host, want := range map[string]int{"host10": 2, "host11": 1, "host12": 1} {
		f, err := os.Open(filepath.Join(dir, host+".pcapng"))
		if err != nil {
			t.Fatal(err)
		}
		if recs := readNgStream(t, f); len(recs) != want {
			t.Errorf("%s: %d frames, want %d", host, len(recs), want)
		}
		f.Close()
	}
}

// blockedConn is a stream output that blocks until released.
type blockedConn struct {
	release chan struct{}
	buf     bytes.Buffer
	// entered, if not nil, is closed when the first Write begins.
	entered chan struct{}
	once    sync.Once
}

func (b *blockedConn) Write(p []byte) (int, error) {
	if b.entered != nil {
		b.once.Do(func() { close(b.entered) })
	}
	<-b.release
	return b.buf.Write(p)
}
func (b *blockedConn) Close() error { return nil }

// TestStreamLoss: a reader that does not read makes the stream drop
// frames without blocking Frame, and the stream says how many it lost.
func TestStreamLoss(t *testing.T) {
	out := &blockedConn{release: make(chan struct{})}
	w := NewStream(out, Options{Namer: testNamer, QueueBytes: 2 * chunkSize, Hosts: []int{10}})
	big := ipv4UDP(t, 60000)
	big[15] = 10
	start := time.Now()
	for i := 0; i < 200; i++ {
		w.Frame(time.Now(), [][]byte{big})
	}
	w.Frame(time.Now(), [][]byte{udpFrom(t, 12, 11)}) // filtered out
	if d := time.Since(start); d > time.Second {
		t.Errorf("Frame blocked for %v", d)
	}
	st := w.Stats()
	if st.Dropped == 0 {
		t.Fatalf("no drops: %+v", st)
	}
	close(out.release)
	time.Sleep(50 * time.Millisecond)
	w.Frame(time.Now(), [][]byte{big})
	w.Close()
	recs := readNgStream(t, &out.buf)
	var lost uint64
	for _, r := range recs {
		lost += r.drops
		if r.iface != "host10" {
			t.Errorf("frame on %q passed the host filter", r.iface)
		}
	}
	st = w.Stats()
	if lost == 0 || lost > st.Dropped {
		t.Errorf("stream reports %d lost, Stats %+v", lost, st)
	}
	if int(st.Frames) != len(recs) {
		t.Errorf("Stats.Frames %d, %d records in the stream", st.Frames, len(recs))
	}
}

// TestStreamPortFilter: Ports keeps the TCP/UDP frames of those ports.
func TestStreamPortFilter(t *testing.T) {
	out := &blockedConn{release: make(chan struct{})}
	close(out.release)
	w := NewStream(out, Options{Namer: testNamer, Ports: []uint16{2000}})
	keep := udpFrom(t, 10, 11) // ports 1000 -> 2000
	other := append([]byte(nil), keep...)
	other[22], other[23] = 0x0b, 0xb8 // dport 3000
	w.Frame(time.Now(), [][]byte{keep})
	w.Frame(time.Now(), [][]byte{other})
	w.Close()
	if recs := readNgStream(t, &out.buf); len(recs) != 1 || recs[0].data[23] != 0xd0 {
		t.Errorf("%d frames passed the port filter, want the one to port 2000", len(recs))
	}
}

// TestFrameNoAlloc: recording a frame, with or without a note, allocates
// nothing on the packet path.
func TestFrameNoAlloc(t *testing.T) {
	out := &blockedConn{release: make(chan struct{}), entered: make(chan struct{})}
	w := NewStream(out, Options{Namer: testNamer, QueueBytes: 8 * chunkSize})
	defer func() { close(out.release); w.Close() }()
	pkt := udpFrom(t, 10, 11)
	parts := [][]byte{pkt[:20], pkt[20:]}
	ts := time.Now()
	// The writer goroutine's own work (the section, interfaces, pcapgo's
	// records) allocates, and AllocsPerRun counts every goroutine: let it
	// take the first frames and block in its first write before measuring.
	w.FrameNote(ts, parts, Note{Delay: time.Millisecond, Drop: "loss"})
	w.Frame(ts, parts)
	select {
	case <-out.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream's writer never wrote")
	}
	if n := testing.AllocsPerRun(1000, func() { w.FrameNote(ts, parts, Note{Delay: time.Millisecond, Drop: "loss"}) }); n != 0 {
		t.Errorf("FrameNote allocates %.1f times per frame", n)
	}
	if n := testing.AllocsPerRun(1000, func() { w.Frame(ts, parts) }); n != 0 {
		t.Errorf("Frame allocates %.1f times per frame", n)
	}
}
