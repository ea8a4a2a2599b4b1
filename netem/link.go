package netem

import (
	"container/heap"
	"crypto/rand"
	"encoding/binary"
	"math"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Output is where a Link sends the frames it lets through: the socket of
// the destination host. Send is called from the Link's goroutine only and
// may block while the destination is full (that delays the link, not its
// senders).
type Output interface {
	Send(frame []byte) error
}

// Cause says why a frame was dropped.
type Cause string

// Drop causes, as counted and logged.
const (
	CauseLoss      Cause = "loss"      // random or Gilbert-Elliott loss
	CausePartition Cause = "partition" // the link is cut
	CauseQueue     Cause = "queue"     // the queue was full (tail drop)
	CauseSend      Cause = "send"      // the destination socket refused it
)

// Event is one thing a link did to a frame, for the event log. Frame is the
// frame's first bytes (its headers), valid only during the call. Time is
// when the frame reached the link.
type Event struct {
	Time  time.Time
	Link  Selector
	Kind  string        // "drop", "dup", "reorder" or "delayed"
	Cause Cause         // for drops
	Delay time.Duration // for "delayed": how much later than it arrived the frame leaves
	Len   int           // the frame's length
	Frame []byte
}

// Note is what a link did to a frame it hands to Config.Capture.
type Note struct {
	Delay     time.Duration // the frame leaves this much later than it arrived
	Dup       bool          // the second copy of a duplicated frame
	Reordered bool          // sent without the delay of the frames before it
	Drop      Cause         // set: the frame was dropped, and is not sent
}

// Config configures a Link.
type Config struct {
	// Sel is the link's selector; with the seed it seeds the PRNG.
	Sel Selector
	// Capture, if set, sees every frame the link sends, when it sends it
	// (so a delayed frame appears in the capture at its due time), with a
	// Note of what the link did to it, and every frame it drops, when it
	// drops it (Note.Drop set; tap and the socket never see it). It must
	// not block.
	Capture func(ts time.Time, parts [][]byte, n Note)
	// Events, if set, is told of every drop, duplicate and reordered
	// frame, and of every frame that leaves later than it arrived (delay,
	// jitter or the rate limit's queue), once per frame whatever its
	// copies. It is called with the link's lock held and must not block.
	Events func(Event)
}

// Stats are a link's counters. Frames and Bytes count what was offered to
// the link; Sent what left it (duplicates included).
type Stats struct {
	Frames        uint64 `json:"frames"`
	Bytes         uint64 `json:"bytes"`
	Sent          uint64 `json:"sent"`
	DropLoss      uint64 `json:"dropped_loss"`
	DropPartition uint64 `json:"dropped_partition"`
	DropQueue     uint64 `json:"dropped_queue"`
	DropSend      uint64 `json:"dropped_send"`
	Delayed       uint64 `json:"delayed"`
	Duplicated    uint64 `json:"duplicated"`
	Reordered     uint64 `json:"reordered"`
	Queued        int    `json:"queued"`
}

// Status describes one link for STATUS and GETLINKS.
type Status struct {
	Link  string `json:"link"` // the selector, "10->11"
	Spec  string `json:"spec"` // the conditions, in Parse's grammar
	Stats Stats  `json:"stats"`
}

// Link applies a Spec to the frames handed to it. Its methods are safe for
// concurrent use; Enqueue never blocks.
type Link struct {
	cfg Config

	frames, bytes, sent, dropLoss, dropPart, dropQueue, dropSend atomic.Uint64
	delayed, duplicated, reordered                               atomic.Uint64

	mu sync.Mutex
	// The fields below are guarded by mu.
	spec     Spec
	rng      *mrand.Rand
	geBad    bool      // Gilbert-Elliott state
	nextFree time.Time // when the rate-limited link is free again
	q        itemHeap  // frames waiting for their due time
	seq      uint64    // tie-break: equal due times leave in arrival order
	closed   bool      // Close or Retire was called
	drain    bool      // Retire: send what is queued, then stop

	wake chan struct{} // a frame was queued at the head, or the link closed
	done chan struct{} // closed when the goroutine has exited
}

// item is one frame waiting in a Link.
type item struct {
	due   time.Time
	seq   uint64
	frame []byte
	out   Output
	note  Note
}

type itemHeap []item

func (h itemHeap) Len() int { return len(h) }
func (h itemHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].seq < h[j].seq
	}
	return h[i].due.Before(h[j].due)
}
func (h itemHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)   { *h = append(*h, x.(item)) }
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = item{}
	*h = old[:len(old)-1]
	return it
}

// NewLink returns a link applying spec and starts its goroutine; Close or
// Retire stops it.
func NewLink(cfg Config, spec Spec) *Link {
	l := &Link{cfg: cfg, wake: make(chan struct{}, 1), done: make(chan struct{})}
	l.setLocked(spec)
	go l.run()
	return l
}

// seedFor returns the PRNG seeds of a link: the spec's seed (or a random
// one) and the link's host ids, so that links of one seed differ from each
// other but each is the same from run to run.
func seedFor(spec Spec, sel Selector) (uint64, uint64) {
	seed := spec.Seed
	if !spec.HasSeed {
		var b [8]byte
		rand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
	}
	return seed, 0x5357_0000_0000_0000 | uint64(sel.Src)<<8 | uint64(sel.Dst)
}

// Set replaces the link's conditions. Frames already queued keep their due
// time; the counters carry on. A new or changed seed restarts the PRNG.
func (l *Link) Set(spec Spec) {
	l.mu.Lock()
	l.setLocked(spec)
	l.mu.Unlock()
}

func (l *Link) setLocked(spec Spec) {
	if l.rng == nil || spec.HasSeed != l.spec.HasSeed || spec.Seed != l.spec.Seed {
		l.rng = mrand.New(mrand.NewPCG(seedFor(spec, l.cfg.Sel)))
		l.geBad = false
	}
	if spec.Rate != l.spec.Rate {
		l.nextFree = time.Time{}
	}
	l.spec = spec
}

// Spec returns the link's conditions.
func (l *Link) Spec() Spec {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.spec
}

// Selector returns the link's selector.
func (l *Link) Selector() Selector { return l.cfg.Sel }

// Stats returns the link's counters.
func (l *Link) Stats() Stats {
	l.mu.Lock()
	queued := len(l.q)
	l.mu.Unlock()
	return Stats{
		Frames: l.frames.Load(), Bytes: l.bytes.Load(), Sent: l.sent.Load(),
		DropLoss: l.dropLoss.Load(), DropPartition: l.dropPart.Load(),
		DropQueue: l.dropQueue.Load(), DropSend: l.dropSend.Load(),
		Delayed: l.delayed.Load(), Duplicated: l.duplicated.Load(),
		Reordered: l.reordered.Load(), Queued: queued,
	}
}

// Status returns the link's selector, conditions and counters.
func (l *Link) Status() Status {
	return Status{Link: l.cfg.Sel.String(), Spec: l.Spec().String(), Stats: l.Stats()}
}

// Enqueue offers a frame, given as the slices that make it up (valid only
// during the call: the link copies what it keeps), to be sent to out. It
// decides at once whether the frame is dropped or duplicated and when it
// leaves, and never blocks.
func (l *Link) Enqueue(out Output, parts [][]byte) {
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	l.frames.Add(1)
	l.bytes.Add(uint64(size))
	now := time.Now()

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		l.dropLocked(now, CauseQueue, &l.dropQueue, parts, size)
		return
	}
	s := &l.spec
	if s.Partition {
		l.dropLocked(now, CausePartition, &l.dropPart, parts, size)
		return
	}
	// The PRNG is drawn in a fixed order, and only for the options that
	// are set, so that one seed gives one outcome per frame sequence.
	lossP := s.Loss
	lost := false
	if s.GE.P > 0 {
		if l.geBad {
			l.geBad = l.rng.Float64() >= s.GE.R
		} else {
			l.geBad = l.rng.Float64() < s.GE.P
		}
		geLoss := s.GE.LossGood
		if l.geBad {
			geLoss = s.GE.LossBad
		}
		lost = geLoss > 0 && l.rng.Float64() < geLoss
	}
	if lossP > 0 && l.rng.Float64() < lossP {
		lost = true
	}
	if lost {
		l.dropLocked(now, CauseLoss, &l.dropLoss, parts, size)
		return
	}
	copies := 1
	if s.Dup > 0 && l.rng.Float64() < s.Dup {
		copies = 2
	}
	if len(l.q)+copies > s.QueueLimit() {
		l.dropLocked(now, CauseQueue, &l.dropQueue, parts, size)
		return
	}
	// The rate limit serializes frames: this one leaves when the link
	// has finished with the ones before it.
	depart := now
	if s.Rate > 0 {
		if l.nextFree.After(depart) {
			depart = l.nextFree
		}
		depart = depart.Add(time.Duration(float64(size*8) / float64(s.Rate) * float64(time.Second)))
		l.nextFree = depart
	}
	delay := s.Delay
	if s.Jitter > 0 {
		var j float64
		if s.Dist == Normal {
			j = math.Max(-4, math.Min(4, l.rng.NormFloat64()))
		} else {
			j = 2*l.rng.Float64() - 1
		}
		delay += time.Duration(j * float64(s.Jitter))
		delay = max(delay, 0)
	}
	var note Note
	if s.Reorder > 0 && l.rng.Float64() < s.Reorder && delay > 0 {
		delay = 0
		l.reordered.Add(1)
		l.eventLocked(now, "reorder", "", 0, parts, size)
		note.Reordered = true
	}
	due := depart.Add(delay)
	if due.After(now) {
		l.delayed.Add(1)
		l.eventLocked(now, "delayed", "", due.Sub(now), parts, size)
		note.Delay = due.Sub(now)
	}
	frame := make([]byte, 0, size)
	for _, p := range parts {
		frame = append(frame, p...)
	}
	for i := 0; i < copies; i++ {
		l.seq++
		heap.Push(&l.q, item{due: due, seq: l.seq, frame: frame, out: out, note: note})
		note.Dup = true
	}
	if copies > 1 {
		l.duplicated.Add(1)
		l.eventLocked(now, "dup", "", 0, parts, size)
	}
	if l.q[0].seq > l.seq-uint64(copies) {
		// The new frame is now the first due: the goroutine may be
		// sleeping until a later time.
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

func (l *Link) dropLocked(now time.Time, c Cause, n *atomic.Uint64, parts [][]byte, size int) {
	n.Add(1)
	l.eventLocked(now, "drop", c, 0, parts, size)
	if l.cfg.Capture != nil {
		l.cfg.Capture(now, parts, Note{Drop: c})
	}
}

// eventLocked tells Events, if set, of an event; without Events it costs a
// nil check.
func (l *Link) eventLocked(now time.Time, kind string, c Cause, delay time.Duration, parts [][]byte, size int) {
	if l.cfg.Events == nil {
		return
	}
	var hdr []byte
	if len(parts) > 0 {
		hdr = parts[0]
	}
	l.cfg.Events(Event{Time: now, Link: l.cfg.Sel, Kind: kind, Cause: c, Delay: delay, Len: size, Frame: hdr})
}

// run is the link's goroutine: it sends each frame at its due time.
func (l *Link) run() {
	defer close(l.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var batch []item
	for {
		l.mu.Lock()
		now := time.Now()
		for len(l.q) > 0 && !l.q[0].due.After(now) {
			batch = append(batch, heap.Pop(&l.q).(item))
		}
		wait := time.Duration(-1)
		if len(l.q) > 0 {
			wait = l.q[0].due.Sub(now)
		}
		stop := l.closed && (!l.drain || len(l.q) == 0)
		if stop && !l.drain {
			batch = batch[:0]
		}
		l.mu.Unlock()
		for i := range batch {
			l.send(batch[i])
			batch[i] = item{}
		}
		if stop {
			return
		}
		if len(batch) > 0 {
			batch = batch[:0]
			continue
		}
		if wait < 0 {
			<-l.wake
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-l.wake:
			timer.Stop()
		}
	}
}

func (l *Link) send(it item) {
	// Captured before Send, which may keep the frame. A frame the
	// destination then refuses (CauseSend) is in the capture as sent.
	if l.cfg.Capture != nil {
		l.cfg.Capture(time.Now(), [][]byte{it.frame}, it.note)
	}
	if err := it.out.Send(it.frame); err != nil {
		l.dropSend.Add(1)
		return
	}
	l.sent.Add(1)
}

// Close stops the link at once: queued frames are discarded (counted as
// queue drops), and frames offered from now on are dropped. It waits for the
// goroutine.
func (l *Link) Close() {
	l.stop(false)
}

// Retire stops the link once the frames it holds have been sent, as when
// its conditions are removed: what was on the wire still arrives. Frames
// offered from now on are dropped; it does not wait.
func (l *Link) Retire() {
	l.stop(true)
}

func (l *Link) stop(drain bool) {
	l.mu.Lock()
	if !l.closed {
		l.closed, l.drain = true, drain
		if !drain {
			l.dropQueue.Add(uint64(len(l.q)))
			clear(l.q)
			l.q = l.q[:0]
		}
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	if !drain {
		<-l.done
	}
}
