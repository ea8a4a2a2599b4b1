package pcap

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

const (
	// DefaultSnaplen is used when Open is given a snaplen <= 0. It is what
	// tcpdump uses and more than the largest IP packet, so nothing is cut.
	DefaultSnaplen = 262144

	// DefaultQueueBytes bounds the frames waiting for the writer goroutine.
	// At the ≈2–2.7 Gbit/s a full-payload capture can be written, 64 MiB
	// absorbs a ~200 ms disk stall before frames are dropped.
	DefaultQueueBytes = 64 << 20

	// chunkSize is the unit the queue is made of. Frames are appended to
	// chunks, so the queue costs no allocation per frame and the writer
	// takes whole chunks at a time.
	chunkSize = 1 << 20

	// bufSize is the bufio buffer in front of the file; writes of this size
	// keep the syscall count low.
	bufSize = 1 << 20

	// idleFlush is how long buffered frames may wait in the bufio buffer once
	// the queue is empty, so a live reader (tail -f | tshark) sees them soon
	// without flushing after every small batch.
	idleFlush = 50 * time.Millisecond

	// recHdr is the size of a queued record's header: timestamp (8), original
	// length (4), captured length (4), the Note's delay (8), flags (1), drop
	// cause (1), padding (6).
	recHdr = 32

	// classicHdr is the size of a classic pcap record header (seconds,
	// microseconds or nanoseconds, captured length, original length), the
	// header of a queued record of a classic file.
	classicHdr = 16

	// LinkTypeRaw is LINKTYPE_RAW: each frame is a bare IPv4 or IPv6
	// packet, told apart by its version nibble; the fabric has no L2 header.
	LinkTypeRaw = uint32(layers.LinkTypeRaw)

	magicMicros = 0xa1b2c3d4
	magicNanos  = 0xa1b23c4d
)

// Stats counts frames. Frames and Bytes count what has been written to the
// file (Bytes is the captured bytes, after snaplen truncation); Dropped counts
// frames lost because the queue was full or the Writer was closed.
type Stats struct {
	Frames, Bytes, Dropped uint64
}

// Writer records frames to one capture: a classic pcap file (Open), a
// pcapng file (OpenFile), one pcapng file per host (OpenDir) or a live
// pcapng stream (NewStream). Its methods are safe for concurrent use.
type Writer struct {
	path    string
	snaplen int
	kind    string // "file", "dir" or "live", for status
	drops   bool   // the sink records dropped frames (pcapng)
	eager   bool   // flush after every batch (live streams)
	// direct: the queue holds the file's own records (classic pcap), and
	// the writer writes whole chunks to out: no copy, no work per frame.
	direct bool
	nanos  bool // direct: nanosecond timestamps
	// closeWait bounds how long Close waits for a writer stuck on a reader
	// that does not read before it sets a write deadline (live streams).
	closeWait time.Duration

	frames, bytes, dropped atomic.Uint64

	mu sync.Mutex
	// The fields below are guarded by mu. They form the queue between Frame
	// and the writer goroutine: cur is the chunk Frame appends to, full the
	// chunks waiting to be written, free the chunks ready for reuse.
	cur       *chunk
	full      []*chunk
	free      []*chunk
	chunks    int  // chunks allocated so far
	maxChunks int  // queue bound, in chunks
	closed    bool // Close was called: Frame drops
	// sleeping: the writer waits for a wake with no timer set, so the
	// next frame must wake it. Otherwise only a chunk that fills wakes it
	// (and live streams every frame): a wake-up per frame costs the
	// packet path more than the copy.
	sleeping bool

	wake    chan struct{}   // cap 1: work is queued
	flushc  chan chan error // Flush requests
	closec  chan struct{}   // closed by Close
	done    chan struct{}   // closed when the writer goroutine exits
	closeMu sync.Mutex      // serializes Close
	err     error           // writer goroutine's final error; read after done

	// Owned by the writer goroutine.
	closer io.Closer
	out    io.Writer // direct: the file
	bw     *bufio.Writer
	sink   sink
	batch  []*chunk
	rec    record // the record being written: one, reused (a local would escape to the sink interface, an allocation per frame)
	werr   error  // first write error; later frames are counted as dropped
}

// sink turns records into a format, in the writer goroutine.
type sink interface {
	// write records one frame; lost is the Writer's drop count so far.
	write(r *record, lost uint64) error
	// finish writes what a format needs at the end (lost as in write).
	finish(lost uint64) error
	// flush pushes buffered bytes to the output.
	flush() error
}

// record is one queued frame, as the writer goroutine sees it.
type record struct {
	ts     time.Time
	length int
	data   []byte
	note   Note
}

// Note is what the network did to a frame before it crossed, as netem
// tells it; the zero Note is an ordinary frame. pcapng captures show it
// as a packet comment; classic pcap cannot, and leaves dropped frames out.
type Note struct {
	Delay     time.Duration // the frame left this much later than it arrived
	Dup       bool          // this is the second copy of a duplicated frame
	Reordered bool          // the frame overtook frames that were delayed
	Drop      string        // non-empty: the frame was dropped, for this cause
}

// dropCauses are the causes a record can carry (index+1); any other is
// recorded as "dropped".
var dropCauses = [...]string{"loss", "partition", "queue", "send"}

func causeCode(c string) byte {
	if c == "" {
		return 0
	}
	for i, k := range dropCauses {
		if k == c {
			return byte(i + 1)
		}
	}
	return 255
}

func causeName(c byte) string {
	switch {
	case c == 0:
		return ""
	case int(c) <= len(dropCauses):
		return dropCauses[c-1]
	}
	return "dropped"
}

const (
	flagDup     = 1
	flagReorder = 2
)

// chunk is a slab of queued records, each recHdr (classicHdr for a direct
// Writer) bytes then the data.
type chunk struct {
	buf []byte // len is the used part, cap chunkSize (or more for a big frame)
	// direct: the records in buf and their captured bytes
	frames, bytes uint64
}

// Open opens the pcap file at path for writing, creating it if needed.
// A new or empty file gets a header with LINKTYPE_RAW and nanosecond
// timestamps. A file that already holds a pcap is appended to, keeping its
// timestamp resolution; it must be little-endian LINKTYPE_RAW, as frames
// of another kind could not be told apart from ours. snaplen <= 0 means
// DefaultSnaplen.
func Open(path string, snaplen int) (*Writer, error) {
	if snaplen <= 0 {
		snaplen = DefaultSnaplen
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pcap: %w", err)
	}
	nanos, appending, err := checkExisting(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("pcap: %s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, fmt.Errorf("pcap: %w", err)
	}
	w := newWriter(fileOut(f), f, snaplen, DefaultQueueBytes, nanos, !appending)
	w.path = path
	w.kind = "file"
	if err := w.start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("pcap: %s: %w", path, err)
	}
	return w, nil
}

// checkExisting reads the header of f, if it has one, and reports whether it
// uses nanosecond timestamps and whether there is a header to append to.
func checkExisting(f *os.File) (nanos, appending bool, err error) {
	var h [24]byte
	n, err := io.ReadFull(f, h[:])
	switch {
	case n == 0 && (err == io.EOF):
		return true, false, nil
	case err != nil:
		return false, false, fmt.Errorf("not a pcap file (%d bytes)", n)
	}
	switch binary.LittleEndian.Uint32(h[0:4]) {
	case magicMicros:
		nanos = false
	case magicNanos:
		nanos = true
	default:
		if m := binary.BigEndian.Uint32(h[0:4]); m == magicMicros || m == magicNanos {
			return false, false, errors.New("big-endian pcap files cannot be appended to")
		}
		return false, false, errors.New("not a pcap file (bad magic)")
	}
	if lt := binary.LittleEndian.Uint32(h[20:24]) & 0x0fffffff; lt != LinkTypeRaw {
		return false, false, fmt.Errorf("link type %d, want LINKTYPE_RAW (101)", lt)
	}
	return nanos, true, nil
}

// newWriter builds a Writer of classic pcap over out; tests use it to
// inject a slow writer. Its queue holds the file's records as they are
// written (direct), so only the file header goes through the bufio.Writer.
func newWriter(out io.Writer, closer io.Closer, snaplen, queueBytes int, nanos, header bool) *Writer {
	w := newQueue(closer, snaplen, queueBytes)
	w.direct, w.nanos, w.out = true, nanos, out
	w.bw = bufio.NewWriterSize(out, classicHdr+24)
	if header {
		pw := pcapgo.NewWriter(w.bw)
		if nanos {
			pw = pcapgo.NewWriterNanos(w.bw)
		}
		w.werr = pw.WriteFileHeader(uint32(w.snaplen), layers.LinkTypeRaw)
	}
	w.sink = bufSink{w.bw}
	return w
}

// newQueue builds a Writer without a sink; the caller sets it.
func newQueue(closer io.Closer, snaplen, queueBytes int) *Writer {
	if snaplen <= 0 {
		snaplen = DefaultSnaplen
	}
	if queueBytes <= 0 {
		queueBytes = DefaultQueueBytes
	}
	return &Writer{
		snaplen:   snaplen,
		maxChunks: max(1, queueBytes/chunkSize),
		wake:      make(chan struct{}, 1),
		flushc:    make(chan chan error),
		closec:    make(chan struct{}),
		done:      make(chan struct{}),
		closer:    closer,
		sleeping:  true,
	}
}

// bufSink is the sink of a direct Writer: its records never reach a sink,
// only the file header is buffered.
type bufSink struct{ bw *bufio.Writer }

func (bufSink) write(*record, uint64) error { return errSkip }
func (bufSink) finish(uint64) error         { return nil }
func (b bufSink) flush() error              { return b.bw.Flush() }

// start flushes the file header, so that even an empty capture is a valid
// file, and starts the writer goroutine.
func (w *Writer) start() error {
	if w.werr == nil {
		w.werr = w.bw.Flush()
	}
	if w.werr != nil {
		return w.werr
	}
	go w.run()
	return nil
}

// Path returns the file's path as given to Open, the directory of OpenDir,
// or a stream's name.
func (w *Writer) Path() string { return w.path }

// Kind says what the Writer writes: "file", "dir" or "live".
func (w *Writer) Kind() string { return w.kind }

// Stats returns the counters.
func (w *Writer) Stats() Stats {
	return Stats{Frames: w.frames.Load(), Bytes: w.bytes.Load(), Dropped: w.dropped.Load()}
}

// Frame records one frame made of parts (for example a gVisor packet's
// AsSlices), captured at ts. It copies up to the snaplen bytes it needs, so
// parts may be reused as soon as it returns, and never blocks: if the queue
// is full, or the Writer is closed, the frame is counted as dropped.
func (w *Writer) Frame(ts time.Time, parts [][]byte) {
	w.FrameNote(ts, parts, Note{})
}

// FrameNote is Frame for a frame the network did something to. A dropped
// frame (n.Drop set) is recorded only by pcapng captures, on a drop
// interface of its own; classic pcap leaves it out, as the frame never
// crossed.
func (w *Writer) FrameNote(ts time.Time, parts [][]byte, n Note) {
	if n.Drop != "" && !w.drops {
		return
	}
	length := 0
	for _, p := range parts {
		length += len(p)
	}
	caplen := min(length, w.snaplen)
	hdr := recHdr
	if w.direct {
		hdr = classicHdr
	}
	need := hdr + caplen

	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.dropped.Add(1)
		return
	}
	wake := w.eager || w.sleeping
	c := w.cur
	if c == nil || cap(c.buf)-len(c.buf) < need {
		if c != nil {
			w.full = append(w.full, c)
			w.cur = nil
			wake = true
		}
		if c = w.getChunkLocked(need); c == nil {
			w.mu.Unlock()
			w.dropped.Add(1)
			w.wakeUp()
			return
		}
		w.cur = c
	}
	off := len(c.buf)
	c.buf = c.buf[:off+need]
	rec := c.buf[off:]
	if w.direct {
		frac := uint32(ts.Nanosecond())
		if !w.nanos {
			frac /= 1000
		}
		binary.LittleEndian.PutUint32(rec[0:4], uint32(ts.Unix()))
		binary.LittleEndian.PutUint32(rec[4:8], frac)
		binary.LittleEndian.PutUint32(rec[8:12], uint32(caplen))
		binary.LittleEndian.PutUint32(rec[12:16], uint32(length))
		c.frames++
		c.bytes += uint64(caplen)
	} else {
		binary.LittleEndian.PutUint64(rec[0:8], uint64(ts.UnixNano()))
		binary.LittleEndian.PutUint32(rec[8:12], uint32(length))
		binary.LittleEndian.PutUint32(rec[12:16], uint32(caplen))
		binary.LittleEndian.PutUint64(rec[16:24], uint64(n.Delay))
		var flags byte
		if n.Dup {
			flags |= flagDup
		}
		if n.Reordered {
			flags |= flagReorder
		}
		rec[24] = flags
		rec[25] = causeCode(n.Drop)
	}
	d := rec[hdr:]
	for _, p := range parts {
		if len(d) == 0 {
			break
		}
		d = d[copy(d, p):]
	}
	if wake {
		w.sleeping = false
	}
	w.mu.Unlock()
	if wake {
		w.wakeUp()
	}
}

// wakeUp tells the writer goroutine there is work, without waiting.
func (w *Writer) wakeUp() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// getChunkLocked returns an empty chunk with room for need bytes, or nil if
// the queue is at its bound.
func (w *Writer) getChunkLocked(need int) *chunk {
	for i := len(w.free) - 1; i >= 0; i-- {
		c := w.free[i]
		if cap(c.buf) >= need {
			w.free[i] = w.free[len(w.free)-1]
			w.free[len(w.free)-1] = nil
			w.free = w.free[:len(w.free)-1]
			return c
		}
	}
	if w.chunks >= w.maxChunks {
		return nil
	}
	w.chunks++
	return &chunk{buf: make([]byte, 0, max(chunkSize, need))}
}

// Flush waits until every frame queued before the call is written to the
// file (the page cache; it does not fsync).
func (w *Writer) Flush() error {
	ch := make(chan error, 1)
	select {
	case w.flushc <- ch:
		return <-ch
	case <-w.done:
		return w.err
	}
}

// Close writes what is queued, closes the file and returns the first write
// error, if any. Frames recorded after Close are counted as dropped.
func (w *Writer) Close() error {
	w.closeMu.Lock()
	defer w.closeMu.Unlock()
	w.mu.Lock()
	already := w.closed
	w.closed = true
	w.mu.Unlock()
	if !already {
		close(w.closec)
	}
	if w.closeWait > 0 {
		select {
		case <-w.done:
		case <-time.After(w.closeWait):
			// The reader does not read: give up on what is queued.
			if d, ok := w.closer.(interface{ SetWriteDeadline(time.Time) error }); ok {
				d.SetWriteDeadline(time.Now())
			}
		}
	}
	<-w.done
	return w.err
}

// run is the writer goroutine: it moves queued chunks to the file.
func (w *Writer) run() {
	defer close(w.done)
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	for {
		select {
		case <-w.wake:
			wrote := w.drain()
			switch {
			case w.eager:
				if wrote {
					w.flushBuf()
				}
			default:
				// Whoever woke the writer cleared sleeping: from
				// now on the timer takes what no wake announces.
				idle.Reset(idleFlush)
			}
		case <-idle.C:
			// Frames queued since the last wake did not wake the
			// writer (see sleeping): take them now, and look again
			// later unless there were none.
			if w.drain() {
				idle.Reset(idleFlush)
			} else {
				w.mu.Lock()
				if w.cur == nil && len(w.full) == 0 {
					w.sleeping = true
				} else {
					idle.Reset(idleFlush)
				}
				w.mu.Unlock()
			}
			w.flushBuf()
		case ch := <-w.flushc:
			w.drain()
			ch <- w.flushBuf()
		case <-w.closec:
			idle.Stop()
			w.drain()
			if w.werr == nil {
				w.werr = w.sink.finish(w.dropped.Load())
			}
			err := w.flushBuf()
			if w.closer != nil {
				if cerr := w.closer.Close(); err == nil {
					err = cerr
				}
			}
			w.err = err
			return
		}
	}
}

// drain writes every queued chunk and reports whether it wrote anything.
func (w *Writer) drain() bool {
	wrote := false
	for {
		w.mu.Lock()
		w.batch = append(w.batch[:0], w.full...)
		clear(w.full)
		w.full = w.full[:0]
		if w.cur != nil {
			w.batch = append(w.batch, w.cur)
			w.cur = nil
		}
		w.mu.Unlock()
		if len(w.batch) == 0 {
			return wrote
		}
		wrote = true
		for _, c := range w.batch {
			if w.direct {
				w.writeDirect(c)
			} else {
				w.writeChunk(c)
			}
			c.buf, c.frames, c.bytes = c.buf[:0], 0, 0
		}
		w.mu.Lock()
		w.free = append(w.free, w.batch...)
		w.mu.Unlock()
		clear(w.batch)
	}
}

// writeDirect writes the records of a direct Writer's chunk c, as they
// are, straight to the file.
func (w *Writer) writeDirect(c *chunk) {
	if w.werr == nil && w.bw.Buffered() > 0 {
		w.werr = w.bw.Flush()
	}
	if w.werr == nil {
		_, w.werr = w.out.Write(c.buf)
	}
	if w.werr != nil {
		w.dropped.Add(c.frames)
		return
	}
	w.frames.Add(c.frames)
	w.bytes.Add(c.bytes)
}

// writeChunk writes the records of c.
func (w *Writer) writeChunk(c *chunk) {
	b := c.buf
	for len(b) >= recHdr {
		ts := int64(binary.LittleEndian.Uint64(b[0:8]))
		length := int(binary.LittleEndian.Uint32(b[8:12]))
		caplen := int(binary.LittleEndian.Uint32(b[12:16]))
		r := &w.rec
		*r = record{ts: time.Unix(0, ts), length: length, data: b[recHdr : recHdr+caplen],
			note: Note{Delay: time.Duration(binary.LittleEndian.Uint64(b[16:24])),
				Dup: b[24]&flagDup != 0, Reordered: b[24]&flagReorder != 0, Drop: causeName(b[25])}}
		b = b[recHdr+caplen:]
		if w.werr != nil {
			w.dropped.Add(1)
			continue
		}
		if err := w.sink.write(r, w.dropped.Load()); err == errSkip {
			continue
		} else if err != nil {
			w.werr = err
			w.dropped.Add(1)
			continue
		}
		w.frames.Add(1)
		w.bytes.Add(uint64(caplen))
	}
}

// errSkip is a sink's answer for a record it leaves out (a live stream's
// host filter): neither written nor dropped.
var errSkip = errors.New("pcap: skipped")

// flushBuf pushes the bufio buffer to the file.
func (w *Writer) flushBuf() error {
	if w.werr != nil {
		return w.werr
	}
	if err := w.sink.flush(); err != nil {
		w.werr = err
	}
	return w.werr
}
