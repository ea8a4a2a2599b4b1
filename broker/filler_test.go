package broker

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDiscardFillerSurvivesWake: a wake (the read deadline another
// goroutine sets when the socket's state changes) that lands while the
// reader drains a connect's filler must not read as the program's close.
// On a broker with two Ps it did: the socket was closed right after its
// connect succeeded, and the program's second connect() said EBADF.
func TestDiscardFillerSurvivesWake(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		t.Fatal(err)
	}
	brokerEnd := os.NewFile(uintptr(fds[0]), "broker end")
	appEnd := os.NewFile(uintptr(fds[1]), "app end")
	defer brokerEnd.Close()
	defer appEnd.Close()
	s := &sock{conn: brokerEnd}

	const n = 100000
	half := make([]byte, n/2)
	go func() {
		appEnd.Write(half)
		time.Sleep(50 * time.Millisecond) // the reader now waits for the rest
		s.wake()
		time.Sleep(50 * time.Millisecond)
		appEnd.Write(half)
		appEnd.Write([]byte("data"))
	}()
	s.filler = n
	if !s.discardFiller(n) {
		t.Fatal("discardFiller gave up after a wake")
	}
	if s.filler != 0 {
		t.Errorf("filler left: %d", s.filler)
	}
	// What follows the filler is the program's data, untouched.
	buf := make([]byte, 16)
	brokerEnd.SetReadDeadline(time.Now().Add(5 * time.Second))
	k, err := brokerEnd.Read(buf)
	if err != nil || string(buf[:k]) != "data" {
		t.Errorf("after the filler: %q, %v; want \"data\"", buf[:k], err)
	}
}
