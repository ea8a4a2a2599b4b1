package broker

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/waiter"
)

// An idle TCP session holds no goroutine. Its two pumps park after
// idlePark without bytes and restart on readiness:
//
//   - pumpOut (program -> netstack) arms the broker end in the broker-wide
//     epoll set (parker) with EPOLLONESHOT and exits; bytes, a shutdown or a
//     close of the app end restart it. The epoll set is level-triggered,
//     so bytes that arrived before it was armed restart it at once.
//   - pumpIn (netstack -> program) exits; the session's waiter callback
//     (inNotify) restarts it on the next readable, hang-up or error event.
//
// Either restart takes the socket's mutex and gives up if the socket is
// closed, so that no session goroutine is added to Broker.wg after close():
// shutdown closes every socket before it waits.
//
// Measured (bench/bench.py footprint rows): two goroutines per session were
// about 12 KiB of stacks per connection, 40 % of a broker's memory with 10k
// idle connections.
const idlePark = 250 * time.Millisecond

// The pumpIn states.
const (
	inRunning int32 = iota + 1
	inParked
)

// parker is the broker's epoll set of parked broker ends. Its own fd is in
// the Go netpoller, so the goroutine that serves it never blocks a thread
// in epoll_wait (the broker runs on one P).
type parker struct {
	b    *Broker
	efd  int
	file *os.File // efd, in the Go netpoller
}

// parkerOf returns the broker's parker, made on first use; nil if the
// epoll set cannot be made (then sessions keep their goroutines).
func (b *Broker) parkerOf() *parker {
	b.parkOnce.Do(func() {
		efd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			b.log.Warn("epoll", "err", err)
			return
		}
		if err := unix.SetNonblock(efd, true); err != nil {
			unix.Close(efd)
			return
		}
		p := &parker{b: b, efd: efd, file: os.NewFile(uintptr(efd), "swrap-parker")}
		b.park = p
		go p.serve()
	})
	return b.park
}

// arm adds the broker end fd of s to the set, to be reported once.
func (p *parker) arm(s *sock, fd int) bool {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLPRI | unix.EPOLLRDHUP | unix.EPOLLONESHOT,
		Fd: int32(uint32(s.id)), Pad: int32(uint32(s.id >> 32))}
	op := unix.EPOLL_CTL_ADD
	if s.outArmed {
		op = unix.EPOLL_CTL_MOD
	}
	err := unix.EpollCtl(p.efd, op, fd, &ev)
	switch {
	case err == unix.EEXIST:
		err = unix.EpollCtl(p.efd, unix.EPOLL_CTL_MOD, fd, &ev)
	case err == unix.ENOENT:
		err = unix.EpollCtl(p.efd, unix.EPOLL_CTL_ADD, fd, &ev)
	}
	if err != nil {
		return false
	}
	s.outArmed = true
	return true
}

// serve restarts the pumpOut of every reported session, until the set is
// closed (shutdown).
func (p *parker) serve() {
	raw, err := p.file.SyscallConn()
	if err != nil {
		return
	}
	evs := make([]unix.EpollEvent, 64)
	raw.Read(func(fd uintptr) bool {
		for {
			n, err := unix.EpollWait(int(fd), evs, 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return true
			}
			for _, ev := range evs[:n] {
				id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
				if s := p.b.lookup(id); s != nil {
					s.resumeOut()
				}
			}
			if n < len(evs) {
				return false // empty: wait for the set's fd to be readable
			}
		}
	})
}

// close ends serve; the broker ends still in the set leave it as they close.
func (p *parker) close() { p.file.Close() }

// closeParker closes the broker's epoll set, if it was made.
func (b *Broker) closeParker() {
	b.parkOnce.Do(func() {}) // none made from now on
	if b.park != nil {
		b.park.close()
	}
}

// parkOut arms the broker end so that a parked pumpOut restarts on
// readiness; false if it cannot be parked (then pumpOut goes on waiting).
func (s *sock) parkOut() bool {
	p := s.b.parkerOf()
	if p == nil {
		return false
	}
	raw, err := s.conn.SyscallConn()
	if err != nil {
		return false
	}
	s.conn.SetReadDeadline(time.Time{})
	ok := false
	raw.Control(func(fd uintptr) { ok = p.arm(s, int(fd)) })
	return ok
}

// resumeOut restarts a parked pumpOut (from the parker's goroutine).
func (s *sock) resumeOut() {
	if !s.addSessionGoroutine() {
		return
	}
	go func() {
		defer s.b.wg.Done()
		if !s.pumpOut() {
			s.close()
		}
	}()
}

// addSessionGoroutine counts a restarted pump in Broker.wg, unless the
// socket is closed (then it must not restart).
func (s *sock) addSessionGoroutine() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.b.wg.Add(1)
	return true
}

// startIn starts pumpIn once the socket is connected, with the waiter
// callback that wakes it and restarts it once parked.
func (s *sock) startIn() {
	s.inCh = make(chan struct{}, 1)
	s.inEntry = waiter.NewFunctionEntry(waiter.ReadableEvents|waiter.EventHUp|waiter.EventErr, s.inNotify)
	s.wq.EventRegister(&s.inEntry)
	s.inState.Store(inRunning)
	s.b.wg.Add(1)
	go s.pumpIn()
}

// inNotify is the waiter callback of pumpIn. It runs in netstack, possibly
// under its locks: it only signals, or starts a goroutine. The token goes
// first, then the state is looked at: a pump that parks stores the state
// first, then looks for a token (parkIn), so one of the two sees the other.
func (s *sock) inNotify(waiter.EventMask) {
	select {
	case s.inCh <- struct{}{}:
	default:
	}
	if s.inState.Load() == inParked && s.inState.CompareAndSwap(inParked, inRunning) {
		go s.resumeIn()
	}
}

// resumeIn runs a restarted pumpIn.
func (s *sock) resumeIn() {
	if s.addSessionGoroutine() {
		s.pumpIn()
	}
}

// parkIn marks pumpIn parked; true if the calling pump must exit (parked,
// or another pump was started meanwhile), false if an event came in the
// meantime and it goes on.
func (s *sock) parkIn() bool {
	s.inState.Store(inParked)
	select {
	case <-s.inCh:
		return !s.inState.CompareAndSwap(inParked, inRunning)
	default:
		return true
	}
}
