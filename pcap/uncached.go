package pcap

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// fileOut returns what a capture file is written through: for a regular
// file, an uncachedFile; anything else as it is.
func fileOut(f *os.File) io.Writer {
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return f
	}
	return &uncachedFile{f: f}
}

// uncachedFile writes a capture with RWF_DONTCACHE (Linux 6.14 and later):
// buffered writes whose page-cache pages are dropped once written back.
// A capture is written once and read later, if ever, so keeping it cached
// only costs: a long capture fills the page cache with pages nobody reads,
// and every write lands in freshly allocated pages, which on a VM whose
// host takes back free guest memory (virtio-balloon free page reporting)
// are the slow kind to touch: copying into them was most of the broker's
// CPU in a bulk transfer with a capture (bench/PROFILE.md). Dropped pages
// go back to the allocator at once and the next writes reuse them warm.
// Where the kernel or the file system does not support the flag
// (EOPNOTSUPP), it falls back to plain writes for good.
type uncachedFile struct {
	f     *os.File
	plain bool
}

func (u *uncachedFile) Write(b []byte) (int, error) {
	if u.plain {
		return u.f.Write(b)
	}
	raw, err := u.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	n := 0
	for n < len(b) {
		var k int
		var werr error
		// Offset -1: at the file's position, which it moves, as write(2).
		raw.Write(func(fd uintptr) bool {
			k, werr = unix.Pwritev2(int(fd), [][]byte{b[n:]}, -1, unix.RWF_DONTCACHE)
			return true
		})
		switch {
		case werr == nil:
			n += k
		case errors.Is(werr, unix.EINTR):
		case errors.Is(werr, unix.EOPNOTSUPP) || errors.Is(werr, unix.EINVAL):
			// The flag refused for this file (EOPNOTSUPP; EINVAL
			// too, to be safe): nothing of this write went out.
			u.plain = true
			k, err := u.f.Write(b[n:])
			return n + k, err
		default:
			return n, &os.PathError{Op: "write", Path: u.f.Name(), Err: werr}
		}
	}
	return n, nil
}
