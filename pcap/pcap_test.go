package pcap

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// ipv4UDP returns a valid IPv4/UDP packet with n payload bytes.
func ipv4UDP(t testing.TB, n int) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: []byte{127, 0, 0, 10}, DstIP: []byte{127, 0, 0, 11}}
	udp := &layers.UDP{SrcPort: 1000, DstPort: 2000}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ip, udp, gopacket.Payload(bytes.Repeat([]byte{'x'}, n))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestWriteReadBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.pcap")
	w, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if w.Path() != path {
		t.Errorf("Path() = %q", w.Path())
	}
	pkt := ipv4UDP(t, 100)
	ts := time.Unix(1700000000, 123456789)
	for i := 0; i < 10; i++ {
		// Split the frame in two parts, as a gVisor packet would be.
		w.Frame(ts.Add(time.Duration(i)), [][]byte{pkt[:20], pkt[20:]})
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if s := w.Stats(); s.Frames != 10 || s.Bytes != uint64(10*len(pkt)) || s.Dropped != 0 {
		t.Errorf("Stats = %+v", s)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Nanos || f.LinkType != LinkTypeRaw || f.Snaplen != DefaultSnaplen || len(f.Records) != 10 {
		t.Fatalf("file = nanos %v linktype %d snaplen %d records %d", f.Nanos, f.LinkType, f.Snaplen, len(f.Records))
	}
	for i, r := range f.Records {
		if !r.Timestamp.Equal(ts.Add(time.Duration(i))) {
			t.Errorf("record %d: ts %v", i, r.Timestamp)
		}
		if !bytes.Equal(r.Data, pkt) || r.Length != len(pkt) {
			t.Errorf("record %d differs", i)
		}
		p := gopacket.NewPacket(r.Data, layers.LayerTypeIPv4, gopacket.Default)
		if p.Layer(layers.LayerTypeUDP) == nil {
			t.Errorf("record %d: no UDP layer: %v", i, p)
		}
	}
	// Frames after Close are dropped, not written.
	w.Frame(ts, [][]byte{pkt})
	if s := w.Stats(); s.Dropped != 1 {
		t.Errorf("after Close: %+v", s)
	}
}

func TestAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.pcap")
	pkt := ipv4UDP(t, 10)
	for round := 0; round < 3; round++ {
		w, err := Open(path, 0)
		if err != nil {
			t.Fatal(err)
		}
		w.Frame(time.Now(), [][]byte{pkt})
		w.Frame(time.Now(), [][]byte{pkt})
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Records) != 6 {
		t.Errorf("%d records, want 6", len(f.Records))
	}
}

func TestAppendKeepsMicroseconds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.pcap")
	var hdr bytes.Buffer
	if err := pcapgo.NewWriter(&hdr).WriteFileHeader(65535, layers.LinkTypeRaw); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, hdr.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1700000000, 123456789)
	w.Frame(ts, [][]byte{ipv4UDP(t, 1)})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Nanos || len(f.Records) != 1 || !f.Records[0].Timestamp.Equal(ts.Truncate(time.Microsecond)) {
		t.Errorf("nanos %v records %d", f.Nanos, len(f.Records))
	}
}

func TestOpenRejects(t *testing.T) {
	dir := t.TempDir()
	var eth bytes.Buffer
	if err := pcapgo.NewWriterNanos(&eth).WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	be := make([]byte, 24)
	binary.BigEndian.PutUint32(be, magicNanos)
	for name, content := range map[string][]byte{
		"ethernet": eth.Bytes(),
		"bigend":   be,
		"garbage":  []byte("hello, this is not a pcap file"),
		"short":    []byte("abc"),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if w, err := Open(path, 0); err == nil {
			w.Close()
			t.Errorf("%s: Open succeeded", name)
		}
	}
}

func TestSnaplen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.pcap")
	w, err := Open(path, 64)
	if err != nil {
		t.Fatal(err)
	}
	pkt := ipv4UDP(t, 1000)
	w.Frame(time.Now(), [][]byte{pkt[:10], pkt[10:50], pkt[50:]})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := f.Records[0]
	if f.Snaplen != 64 || len(r.Data) != 64 || r.Length != len(pkt) || !bytes.Equal(r.Data, pkt[:64]) {
		t.Errorf("snaplen %d caplen %d len %d", f.Snaplen, len(r.Data), r.Length)
	}
}

// slowWriter stalls every write until released, like a stuck disk.
type slowWriter struct {
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (s *slowWriter) Write(p []byte) (int, error) {
	<-s.release
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func TestDropWhenSlow(t *testing.T) {
	sw := &slowWriter{release: make(chan struct{})}
	// Queue bound of 2 chunks; the bufio buffer (1 MiB) also fills first.
	w := newWriter(sw, nil, DefaultSnaplen, 2*chunkSize, true, false)
	go w.run()
	pkt := ipv4UDP(t, 60000)
	const n = 200 // 12 MB: far more than queue + bufio buffer
	start := time.Now()
	for i := 0; i < n; i++ {
		w.Frame(time.Now(), [][]byte{pkt})
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Frame blocked: %v for %d frames", d, n)
	}
	if s := w.Stats(); s.Dropped == 0 {
		t.Errorf("no drops with a stalled writer: %+v", s)
	}
	close(sw.release)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s := w.Stats()
	if s.Frames+s.Dropped != n || s.Frames == 0 {
		t.Errorf("Stats = %+v, want Frames+Dropped = %d", s, n)
	}
	if got := sw.buf.Len(); got != int(s.Frames)*(16+len(pkt)) { // a classic record header is 16 bytes
		t.Errorf("wrote %d bytes for %d frames", got, s.Frames)
	}
}

func TestConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.pcap")
	w, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	pkt := ipv4UDP(t, 500)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				w.Frame(time.Now(), [][]byte{pkt})
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Records) != 8000 || w.Stats().Dropped != 0 {
		t.Errorf("%d records, stats %+v", len(f.Records), w.Stats())
	}
	for _, r := range f.Records {
		if !bytes.Equal(r.Data, pkt) {
			t.Fatal("corrupted record")
		}
	}
}

func TestFrameAllocs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.pcap")
	w, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	pkt := ipv4UDP(t, 1400)
	parts := [][]byte{pkt[:20], pkt[20:]}
	ts := time.Now()
	for i := 0; i < 5000; i++ { // warm up: chunks allocated, free list filled
		w.Frame(ts, parts)
	}
	w.Flush()
	allocs := testing.AllocsPerRun(5000, func() { w.Frame(ts, parts) })
	if allocs > 0.01 {
		t.Errorf("Frame allocates %.3f times per frame", allocs)
	}
}

func BenchmarkFrame(b *testing.B) {
	w, err := Open(filepath.Join(b.TempDir(), "c.pcap"), 0)
	if err != nil {
		b.Fatal(err)
	}
	pkt := ipv4UDP(b, 1400)
	parts := [][]byte{pkt}
	b.SetBytes(int64(len(pkt)))
	ts := time.Now()
	for b.Loop() {
		w.Frame(ts, parts)
	}
	w.Close()
	b.ReportMetric(float64(w.Stats().Dropped), "dropped")
}

// TestFramesReachFileUnflushed: a frame that wakes no writer (the writer
// is woken only by the first frame after a quiet spell and by full
// chunks) still reaches the file within a few idle periods, without Flush
// or Close, whether it comes right after another frame, while the writer
// is busy, or after a quiet spell (what tail -f on a capture sees).
func TestFramesReachFileUnflushed(t *testing.T) {
	for _, ng := range []bool{false, true} {
		name := "c.pcap"
		if ng {
			name = "c.pcapng"
		}
		path := filepath.Join(t.TempDir(), name)
		var w *Writer
		var err error
		if ng {
			w, err = OpenFile(path, Options{})
		} else {
			w, err = Open(path, 0)
		}
		if err != nil {
			t.Fatal(err)
		}
		pkt := ipv4UDP(t, 100)
		want := 0
		waitFor := func(step string) {
			t.Helper()
			deadline := time.Now().Add(5 * time.Second)
			for {
				f, err := ReadFile(path)
				if err == nil && len(f.Records) == want {
					return
				}
				if time.Now().After(deadline) {
					n := -1
					if f != nil {
						n = len(f.Records)
					}
					t.Fatalf("%s, %s: %d records in the file after 5 s, want %d (err %v)", name, step, n, want, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		// The first frame wakes the writer; the next ones, right after,
		// find it awake and wake nobody.
		for i := 0; i < 3; i++ {
			w.Frame(time.Now(), [][]byte{pkt})
			want++
		}
		waitFor("a burst")
		// The writer's timer has seen the queue empty: it sleeps, and
		// the next frame must wake it.
		time.Sleep(3 * idleFlush)
		w.Frame(time.Now(), [][]byte{pkt})
		want++
		waitFor("after a quiet spell")
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if s := w.Stats(); s.Frames != uint64(want) || s.Dropped != 0 {
			t.Errorf("%s: stats %+v, want %d frames", name, s, want)
		}
	}
}
