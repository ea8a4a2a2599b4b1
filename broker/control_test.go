package broker

import (
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestEndOfConnLooksAtTheQueue: a read of 0 bytes on a control connection
// is its end only once the client is gone and nothing it sent is still
// queued: the kernel can report the end before a client's last requests
// (see endOfFile), and those were lost with the connection.
func TestEndOfConnLooksAtTheQueue(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), "broker end")
	fc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	uc := fc.(*net.UnixConn)
	defer uc.Close()

	if end, skip := endOfConn(uc); end || skip {
		t.Errorf("client there: end %v, skip %v; want an empty message", end, skip)
	}
	if _, err := unix.Write(fds[1], []byte("a request")); err != nil {
		t.Fatal(err)
	}
	unix.Close(fds[1])
	if end, skip := endOfConn(uc); end || !skip {
		t.Errorf("client gone, a request queued: end %v, skip %v; want skip", end, skip)
	}
	buf := make([]byte, 64)
	if n, err := uc.Read(buf); n != 9 || err != nil {
		t.Fatalf("read %d, %v", n, err)
	}
	if end, skip := endOfConn(uc); !end || skip {
		t.Errorf("client gone, nothing queued: end %v, skip %v; want the end", end, skip)
	}
}
