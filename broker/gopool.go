package broker

import "time"

// goIdle is how long a finished session goroutine waits for the next one
// before it exits: long enough to carry a burst of short connections, short
// enough that STATUS's goroutine count is back to its baseline within about
// a second of the last socket.
const goIdle = time.Second

// goWork hands a function to an idle session goroutine (one blocked in
// goRun's receive); unbuffered, so a send succeeds only if one is waiting.
var goWork = make(chan func())

// goSession runs f on a session goroutine, reusing one that has finished
// if there is one. A new goroutine starts with a small stack, and a TCP
// socket's tcpReader grows its own on the first segment it sends (data, or
// the FIN of the close), which netstack delivers to the peer's stack on the
// same goroutine, many frames deep: that growth (runtime.copystack) was
// 13 % of the broker's CPU per connect+accept+close. A reused goroutine
// keeps the stack it grew (until a GC finds it idle and shrinks it). Used
// for tcpReader and finishConnect; pumpIn stays on a go statement (on the
// pool, the 1-byte round trip had slow runs, p10 160-220 us against 83).
// The caller does the b.wg accounting as for a go statement.
func goSession(f func()) {
	select {
	case goWork <- f:
	default:
		go goRun(f)
	}
}

// goRun runs f, then the functions goSession hands it, until none comes for
// goIdle.
func goRun(f func()) {
	t := time.NewTimer(goIdle)
	for {
		f()
		t.Reset(goIdle)
		select {
		case f = <-goWork:
		case <-t.C:
			return
		}
	}
}
