package netem

import (
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Rule
		all  bool
		err  string
	}{
		{in: "10->11 delay=50ms jitter=5ms loss=5% seed=42", want: []Rule{{Selector{10, 11},
			Spec{Delay: 50 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 0.05, Seed: 42, HasSeed: true}}}},
		{in: "11 rate=10mbit", want: []Rule{{Selector{11, 0}, Spec{Rate: 10e6}}, {Selector{0, 11}, Spec{Rate: 10e6}}}},
		{in: "10-11 partition", want: []Rule{{Selector{10, 11}, Spec{Partition: true}}, {Selector{11, 10}, Spec{Partition: true}}}},
		{in: "10<->11 dup=0.5", want: []Rule{{Selector{10, 11}, Spec{Dup: 0.5}}, {Selector{11, 10}, Spec{Dup: 0.5}}}},
		{in: "10<-11", want: []Rule{{Sel: Selector{11, 10}}}},
		{in: "10->* loss=1%; *->12 reorder=25% delay=10ms", want: []Rule{{Selector{10, 0}, Spec{Loss: 0.01}},
			{Selector{0, 12}, Spec{Reorder: 0.25, Delay: 10 * time.Millisecond}}}},
		{in: "# a file\n\n3->4 ge=1%,25%  # bursts\n", want: []Rule{{Selector{3, 4}, Spec{GE: GilbertElliott{P: 0.01, R: 0.25, LossBad: 1}}}}},
		{in: "3->4 ge=1%,25%,50%,1%", want: []Rule{{Selector{3, 4}, Spec{GE: GilbertElliott{P: 0.01, R: 0.25, LossBad: 0.5, LossGood: 0.01}}}}},
		{in: "1->2 delay=1s jitter=100ms dist=normal rate=1.5Mbit/s queue=10", want: []Rule{{Selector{1, 2},
			Spec{Delay: time.Second, Jitter: 100 * time.Millisecond, Dist: Normal, Rate: 1500000, Queue: 10}}}},
		{in: "1->2 loss=1%; clear; 3->4 dup=1%", all: true, want: []Rule{{Selector{3, 4}, Spec{Dup: 0.01}}}},
		{in: "", want: nil},
		{in: "0->1 loss=1%", err: "is not a link"},
		{in: "65->1", err: "is not a link"},
		{in: "1->1", err: "is not a link"},
		{in: "*->*", err: "is not a link"},
		{in: "*<->3", err: "is not a link"},
		{in: "x loss=1%", err: "is not a link"},
		{in: "1->2 loss=5", err: "out of range"},
		{in: "1->2 loss=150%", err: "out of range"},
		{in: "1->2 loss", err: "needs a value"},
		{in: "1->2 delay=50", err: "duration"},
		{in: "1->2 delay=-5ms", err: "out of range"},
		{in: "1->2 jitter=5ms", err: "jitter needs a delay"},
		{in: "1->2 rate=10mbps", err: "rate such as"},
		{in: "1->2 rate=0mbit", err: "rate such as"},
		{in: "1->2 queue=0", err: "at least 1"},
		{in: "1->2 partition=on", err: "takes no value"},
		{in: "1->2 bogus=1", err: "unknown option"},
		{in: "1->2 loss=1% loss=2%", err: "twice"},
		{in: "1->2 ge=0%,5%", err: "must be above 0"},
		{in: "1->2 dist=pareto", err: "uniform or normal"},
	} {
		got, err := Parse(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) error %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got.Rules, tc.want) || got.ClearAll != tc.all {
			t.Errorf("Parse(%q) = %+v, want %+v (clear %v)", tc.in, got, tc.want, tc.all)
		}
		// What String prints parses back to the same Spec.
		for _, r := range got.Rules {
			back, err := Parse(r.Sel.String() + " " + r.Spec.String())
			if err != nil || len(back.Rules) != 1 || back.Rules[0] != r {
				t.Errorf("%q: round trip of %s %s gave %+v, %v", tc.in, r.Sel, r.Spec, back, err)
			}
		}
	}
}

// sink records what a Link sends, with the time.
type sink struct {
	mu     sync.Mutex
	frames [][]byte
	times  []time.Time
}

func (s *sink) Send(b []byte) error {
	s.mu.Lock()
	s.frames = append(s.frames, append([]byte(nil), b...))
	s.times = append(s.times, time.Now())
	s.mu.Unlock()
	return nil
}

func (s *sink) wait(t *testing.T, n int, d time.Duration) [][]byte {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		s.mu.Lock()
		got := len(s.frames)
		s.mu.Unlock()
		if got >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d frames sent, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frames
}

func frame(i int) [][]byte { return [][]byte{{byte(i >> 8), byte(i)}, make([]byte, 98)} }

// survivors sends n numbered frames through a link with spec and returns
// the numbers of those that came out, in order.
func survivors(t *testing.T, sel Selector, spec Spec, n int) []int {
	t.Helper()
	// The frames are offered faster than any network would: room for all.
	spec.Queue = n + 1
	l := NewLink(Config{Sel: sel}, spec)
	defer l.Close()
	var s sink
	for i := 0; i < n; i++ {
		l.Enqueue(&s, frame(i))
	}
	st := l.Stats()
	sent := s.wait(t, n-int(st.DropLoss+st.DropPartition+st.DropQueue)+int(st.Duplicated), 5*time.Second)
	var out []int
	for _, f := range sent {
		out = append(out, int(f[0])<<8|int(f[1]))
	}
	return out
}

func TestSeedIsDeterministic(t *testing.T) {
	spec := Spec{Loss: 0.2, GE: GilbertElliott{P: 0.05, R: 0.3, LossBad: 1}, Dup: 0.05, Seed: 42, HasSeed: true}
	a := survivors(t, Selector{10, 11}, spec, 2000)
	b := survivors(t, Selector{10, 11}, spec, 2000)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("the same seed let through different frames:\n%v\n%v", a, b)
	}
	// Another link of the same seed draws differently.
	if c := survivors(t, Selector{11, 10}, spec, 2000); reflect.DeepEqual(a, c) {
		t.Errorf("links 10->11 and 11->10 dropped the same frames")
	}
	lost := 2000 - len(a)
	if lost < 400 || lost > 900 {
		t.Errorf("lost %d of 2000 frames with 20%% random and bursty loss", lost)
	}
}

func TestLossRate(t *testing.T) {
	got := survivors(t, Selector{1, 2}, Spec{Loss: 0.05, Seed: 1, HasSeed: true}, 10000)
	if lost := 10000 - len(got); lost < 400 || lost > 600 {
		t.Errorf("lost %d of 10000 frames at 5%%", lost)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("frames reordered without delay: %v", got[i-1:i+1])
		}
	}
}

func TestGilbertElliottBursts(t *testing.T) {
	got := survivors(t, Selector{1, 2}, Spec{GE: GilbertElliott{P: 0.01, R: 0.2, LossBad: 1}, Seed: 3, HasSeed: true}, 20000)
	// Count the runs of consecutive lost frames: bursts of mean 1/R = 5.
	runs, lost, prev := 0, 0, -1
	for _, n := range got {
		if n != prev+1 {
			runs++
			lost += n - prev - 1
		}
		prev = n
	}
	mean := float64(lost) / float64(runs)
	if mean < 3.5 || mean > 7 {
		t.Errorf("mean burst %.1f frames (%d lost in %d runs), want about 5", mean, lost, runs)
	}
}

func TestPartitionAndQueue(t *testing.T) {
	if got := survivors(t, Selector{1, 2}, Spec{Partition: true}, 100); len(got) != 0 {
		t.Errorf("a partition let %d frames through", len(got))
	}
	l := NewLink(Config{Sel: Selector{1, 2}}, Spec{Delay: time.Hour, Queue: 10})
	var s sink
	for i := 0; i < 25; i++ {
		l.Enqueue(&s, frame(i))
	}
	if st := l.Stats(); st.DropQueue != 15 || st.Queued != 10 || st.Delayed != 10 {
		t.Errorf("stats %+v, want 15 tail drops and 10 queued", st)
	}
	l.Close()
	if st := l.Stats(); st.Queued != 0 || st.DropQueue != 25 {
		t.Errorf("after Close: %+v", st)
	}
}

func TestDelayKeepsOrderAndDoesNotBlock(t *testing.T) {
	l := NewLink(Config{Sel: Selector{1, 2}}, Spec{Delay: 50 * time.Millisecond})
	defer l.Close()
	var s sink
	start := time.Now()
	for i := 0; i < 100; i++ {
		l.Enqueue(&s, frame(i))
	}
	if d := time.Since(start); d > 20*time.Millisecond {
		t.Errorf("Enqueue blocked for %v", d)
	}
	sent := s.wait(t, 100, 5*time.Second)
	for i, f := range sent {
		if int(f[1]) != i {
			t.Fatalf("frame %d came out as %d", i, f[1])
		}
	}
	if d := s.times[0].Sub(start); d < 50*time.Millisecond || d > 200*time.Millisecond {
		t.Errorf("first frame sent after %v, want 50ms", d)
	}
}

func TestRate(t *testing.T) {
	// 100 frames of 1250 bytes at 1 Mbit/s: 10 ms each, 1 s in all.
	l := NewLink(Config{Sel: Selector{1, 2}}, Spec{Rate: 1e6})
	defer l.Close()
	var s sink
	start := time.Now()
	for i := 0; i < 100; i++ {
		l.Enqueue(&s, [][]byte{make([]byte, 1250)})
	}
	s.wait(t, 100, 5*time.Second)
	if d := s.times[99].Sub(start); d < 950*time.Millisecond || d > 1300*time.Millisecond {
		t.Errorf("100 frames of 10 ms took %v", d)
	}
}

func TestJitterAndReorder(t *testing.T) {
	got := survivors(t, Selector{1, 2}, Spec{Delay: 20 * time.Millisecond, Reorder: 0.25, Seed: 5, HasSeed: true}, 400)
	out := 0
	for i := 1; i < len(got); i++ {
		if got[i] < got[i-1] {
			out++
		}
	}
	if out == 0 {
		t.Errorf("reorder=25%% reordered nothing")
	}
	l := NewLink(Config{Sel: Selector{1, 2}}, Spec{Delay: 30 * time.Millisecond, Jitter: 10 * time.Millisecond, Dist: Normal, Seed: 1, HasSeed: true})
	defer l.Close()
	var s sink
	start := time.Now()
	for i := 0; i < 200; i++ {
		l.Enqueue(&s, frame(i))
	}
	s.wait(t, 200, 5*time.Second)
	lo, hi := time.Hour, time.Duration(0)
	for _, ts := range s.times {
		lo, hi = min(lo, ts.Sub(start)), max(hi, ts.Sub(start))
	}
	if lo > 25*time.Millisecond || hi < 35*time.Millisecond || lo < 0 || hi > 150*time.Millisecond {
		t.Errorf("delays spread over %v..%v, want around 30ms ± 10ms", lo, hi)
	}
}

func TestRetireDrains(t *testing.T) {
	l := NewLink(Config{Sel: Selector{1, 2}}, Spec{Delay: 30 * time.Millisecond})
	var s sink
	for i := 0; i < 10; i++ {
		l.Enqueue(&s, frame(i))
	}
	l.Retire()
	s.wait(t, 10, 5*time.Second)
	<-l.done
}

func BenchmarkEnqueueLoss(b *testing.B) {
	l := NewLink(Config{Sel: Selector{1, 2}}, Spec{Loss: 1})
	defer l.Close()
	f := frame(0)
	var s sink
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		l.Enqueue(&s, f)
	}
}

// eventSink records a Link's events.
type eventSink struct {
	mu     sync.Mutex
	events []Event
}

func (e *eventSink) add(ev Event) {
	ev.Frame = append([]byte(nil), ev.Frame...) // valid only during the call
	e.mu.Lock()
	e.events = append(e.events, ev)
	e.mu.Unlock()
}

func (e *eventSink) kind(k string) []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Event
	for _, ev := range e.events {
		if ev.Kind == k {
			out = append(out, ev)
		}
	}
	return out
}

func TestDelayedEvents(t *testing.T) {
	// Every frame of a 50 ms link is delayed by 50 ms, and logged once
	// however many copies it has.
	var ev eventSink
	sel := Selector{1, 2}
	l := NewLink(Config{Sel: sel, Events: ev.add}, Spec{Delay: 50 * time.Millisecond, Dup: 0.5, Seed: 7, HasSeed: true})
	var s sink
	for i := 0; i < 20; i++ {
		l.Enqueue(&s, frame(i))
	}
	st := l.Stats()
	s.wait(t, 20+int(st.Duplicated), 5*time.Second)
	l.Close()
	delayed := ev.kind("delayed")
	if len(delayed) != 20 || st.Delayed != 20 || st.Duplicated == 0 {
		t.Fatalf("%d delayed events, stats %+v; want 20 and some duplicates", len(delayed), st)
	}
	for i, e := range delayed {
		if e.Delay != 50*time.Millisecond || e.Link != sel || e.Len != 100 || e.Cause != "" ||
			len(e.Frame) != 2 || int(e.Frame[1]) != i || e.Time.IsZero() {
			t.Errorf("delayed event %d: %+v", i, e)
		}
	}
	for _, e := range ev.kind("dup") {
		if e.Delay != 0 {
			t.Errorf("a dup event with a delay: %+v", e)
		}
	}

	// Jitter: each frame's own delay, within its bounds.
	ev = eventSink{}
	l = NewLink(Config{Sel: sel, Events: ev.add}, Spec{Delay: 30 * time.Millisecond, Jitter: 10 * time.Millisecond, Seed: 1, HasSeed: true})
	for i := 0; i < 50; i++ {
		l.Enqueue(&s, frame(i))
	}
	l.Close()
	delays := map[time.Duration]bool{}
	for _, e := range ev.kind("delayed") {
		if e.Delay < 20*time.Millisecond || e.Delay > 40*time.Millisecond {
			t.Errorf("delay %v with delay=30ms jitter=10ms", e.Delay)
		}
		delays[e.Delay] = true
	}
	if n := len(ev.kind("delayed")); n != 50 || len(delays) < 10 {
		t.Errorf("%d delayed events with %d distinct delays, want 50 and spread", n, len(delays))
	}

	// The rate limit's queue: 1250 bytes at 1 Mbit/s take 10 ms each, so
	// the n-th frame offered at once leaves (n+1)×10 ms later.
	ev = eventSink{}
	l = NewLink(Config{Sel: sel, Events: ev.add}, Spec{Rate: 1e6})
	for i := 0; i < 5; i++ {
		l.Enqueue(&s, [][]byte{make([]byte, 1250)})
	}
	l.Close()
	delayed = ev.kind("delayed")
	if len(delayed) != 5 {
		t.Fatalf("%d delayed events at 1 Mbit/s, want 5", len(delayed))
	}
	for i, e := range delayed {
		// The frames are offered a few µs apart: each waits a little less.
		if want := time.Duration(i+1) * 10 * time.Millisecond; e.Delay > want || e.Delay < want-5*time.Millisecond {
			t.Errorf("frame %d waited %v at 1 Mbit/s, want %v", i, e.Delay, want)
		}
	}

	// A frame that leaves at once is not delayed: no delay, or reordered
	// past it, or dropped.
	ev = eventSink{}
	l = NewLink(Config{Sel: sel, Events: ev.add}, Spec{Loss: 0.5, Dup: 0.5, Seed: 2, HasSeed: true})
	for i := 0; i < 100; i++ {
		l.Enqueue(&s, frame(i))
	}
	l.Close()
	l2 := NewLink(Config{Sel: sel, Events: ev.add}, Spec{Delay: time.Hour, Reorder: 1})
	for i := 0; i < 100; i++ {
		l2.Enqueue(&s, frame(i))
	}
	st2 := l2.Stats()
	l2.Close()
	if n := len(ev.kind("delayed")); n != 0 || st2.Reordered != 100 || st2.Delayed != 0 {
		t.Errorf("%d delayed events for frames sent at once (%+v)", n, st2)
	}
}

func TestEnqueueWithoutEventsDoesNotAllocate(t *testing.T) {
	// Without Events, the events cost no allocation: a lost frame none at
	// all, a delayed one only its copy and its queue entry.
	l := NewLink(Config{Sel: Selector{1, 2}}, Spec{Loss: 1})
	defer l.Close()
	f := frame(0)
	var s sink
	if n := testing.AllocsPerRun(1000, func() { l.Enqueue(&s, f) }); n != 0 {
		t.Errorf("a lost frame: %v allocations", n)
	}
	d := NewLink(Config{Sel: Selector{1, 2}}, Spec{Delay: time.Hour, Queue: 2000})
	defer d.Close()
	if n := testing.AllocsPerRun(1000, func() { d.Enqueue(&s, f) }); n > 2 {
		t.Errorf("a delayed frame: %v allocations", n)
	}
	if st := d.Stats(); st.Delayed != 1001 {
		t.Errorf("stats %+v, want 1001 delayed", st)
	}
}
