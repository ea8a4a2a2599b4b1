package broker

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestEndOfFileLooksAtTheQueue: a read of length 0 is the program's end of
// file only once nothing follows it. The kernel can report it with
// datagrams still to come (see endOfFile), which dgramOut then dropped
// with the socket: the last datagrams a program sent before its close.
func TestEndOfFileLooksAtTheQueue(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	brokerEnd := os.NewFile(uintptr(fds[0]), "broker end")
	defer brokerEnd.Close()
	s := &sock{conn: brokerEnd}
	for _, bare := range []bool{false, true} {
		s.bare.Store(bare)
		rd := outReader{bt: dgramBatches.Get().(*dgramBatch)}
		defer dgramBatches.Put(rd.bt)
		batch := func(lens ...uint32) {
			rd.got = len(lens)
			for i, n := range lens {
				rd.bt.hdrs[i].Len = n
			}
		}

		// The program is still writing: a length 0 is no end of file
		// (only a shut-down peer gives one).
		batch(0)
		if s.endOfFile(&rd, 0) {
			t.Errorf("bare %v: end of file while the peer is open", bare)
		}

		// A datagram after it in the same batch.
		batch(60, 0, 60)
		if s.endOfFile(&rd, 1) {
			t.Errorf("bare %v: end of file with a datagram after it in the batch", bare)
		}
	}

	// The program queued one more datagram and closed: the read's end of
	// file came before it (the race), and it is still queued.
	if _, err := unix.Write(fds[1], make([]byte, 60)); err != nil {
		t.Fatal(err)
	}
	unix.Close(fds[1])
	for _, bare := range []bool{false, true} {
		s.bare.Store(bare)
		rd := outReader{bt: dgramBatches.Get().(*dgramBatch), got: 2}
		rd.bt.hdrs[0].Len, rd.bt.hdrs[1].Len = 60, 0
		if s.endOfFile(&rd, 1) {
			t.Errorf("bare %v: end of file with a datagram still queued", bare)
		}
		dgramBatches.Put(rd.bt)
	}

	// Read it: now the end of file is one.
	buf := make([]byte, 100)
	if n, err := unix.Read(fds[0], buf); n != 60 || err != nil {
		t.Fatalf("read %d, %v", n, err)
	}
	for _, bare := range []bool{false, true} {
		s.bare.Store(bare)
		rd := outReader{bt: dgramBatches.Get().(*dgramBatch), got: 1}
		rd.bt.hdrs[0].Len = 0
		if !s.endOfFile(&rd, 0) {
			t.Errorf("bare %v: no end of file after the close with the queue empty", bare)
		}
		dgramBatches.Put(rd.bt)
	}
}
