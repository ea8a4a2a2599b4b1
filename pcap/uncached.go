package pcap

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// fileOut returns what a capture file is written through: for a regular
// file, an uncachedFile at the file's position; anything else as it is.
func fileOut(f *os.File) io.Writer {
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return f
	}
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return f
	}
	return &uncachedFile{f: f, off: off}
}

// pageSize is the unit uncachedFile aligns its writes to.
var pageSize = int64(os.Getpagesize())

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
//
// Each write starts at a page boundary: the bytes of the file's last,
// partial page (tail) are kept and written again in front of the next
// write. A write that began inside a page whose cached copy had been
// dropped made the kernel read that page back from the disk first, a
// synchronous read per write (one per 1 MiB of capture, 0.3 ms each on
// this VM's disk, bench/PROFILE.md); a page overwritten whole needs none.
// The file holds everything written when Write returns, as with write(2).
type uncachedFile struct {
	f     *os.File
	plain bool
	off   int64  // where the next write starts: tail's offset in the file
	tail  []byte // the file's bytes from off to its end (less than a page)
}

func (u *uncachedFile) Write(b []byte) (int, error) {
	raw, err := u.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var a [2][]byte
	iov := a[:0]
	if len(u.tail) > 0 {
		iov = append(iov, u.tail)
	}
	iov = append(iov, b)
	total := int64(len(u.tail) + len(b))
	done := int64(0)
	for done < total {
		var k int
		var werr error
		raw.Write(func(fd uintptr) bool {
			if u.plain {
				k, werr = unix.Pwritev(int(fd), iov, u.off+done)
			} else {
				k, werr = unix.Pwritev2(int(fd), iov, u.off+done, unix.RWF_DONTCACHE)
			}
			return true
		})
		switch {
		case werr == nil && k == 0:
			werr = io.ErrShortWrite
		case werr == nil:
			done += int64(k)
			iov = skip(iov, k)
			continue
		case errors.Is(werr, unix.EINTR):
			continue
		case !u.plain && (errors.Is(werr, unix.EOPNOTSUPP) || errors.Is(werr, unix.EINVAL)):
			// The flag refused for this file (EOPNOTSUPP; EINVAL
			// too, to be safe): nothing of this write went out.
			u.plain = true
			continue
		}
		// What reached the file of b: the tail's bytes come first.
		n := max(0, int(done)-len(u.tail))
		u.advance(b[:n])
		return n, &os.PathError{Op: "write", Path: u.f.Name(), Err: werr}
	}
	u.advance(b)
	return len(b), nil
}

// advance moves off to the start of the last page the file's bytes reach
// now that b has been written after the tail, and keeps that page's bytes.
func (u *uncachedFile) advance(b []byte) {
	end := u.off + int64(len(u.tail)+len(b))
	next := end &^ (pageSize - 1)
	if next <= u.off {
		u.tail = append(u.tail, b...) // still within the page off is in
		return
	}
	// The tail lies before the first page boundary after off, and next
	// is at or past it: what stays is the end of b.
	u.tail = append(u.tail[:0], b[len(b)-int(end-next):]...)
	u.off = next
}

// skip drops the first n bytes of iov.
func skip(iov [][]byte, n int) [][]byte {
	for n > 0 && len(iov) > 0 {
		if n < len(iov[0]) {
			iov[0] = iov[0][n:]
			return iov
		}
		n -= len(iov[0])
		iov = iov[1:]
	}
	return iov
}
