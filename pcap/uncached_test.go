package pcap

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestUncachedFileWrites: what goes through an uncachedFile is the file's
// content, in order, by the uncached path and by the plain one it falls
// back to.
func TestUncachedFileWrites(t *testing.T) {
	dir, _ := dontcacheDir(t) // the uncached path itself where possible
	for _, plain := range []bool{false, true} {
		path := filepath.Join(dir, "out")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w := fileOut(f)
		u, ok := w.(*uncachedFile)
		if !ok {
			t.Fatalf("a regular file is written through %T", w)
		}
		u.plain = plain
		var want bytes.Buffer
		for i := 0; i < 40; i++ {
			b := bytes.Repeat([]byte{byte(i)}, 1+i*7919)
			if n, err := w.Write(b); n != len(b) || err != nil {
				t.Fatalf("write %d: %d, %v", i, n, err)
			}
			want.Write(b)
		}
		f.Close()
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("plain=%v: file of %d bytes, want %d (err %v)", plain, len(got), want.Len(), err)
		}
	}
}

// TestCaptureLeavesPageCache: a capture written to a file system that
// supports RWF_DONTCACHE does not stay in the page cache once it is on
// disk, where plain writes would leave all of it there. 64 MiB of frames
// through a pcap Writer, then fsync, then mincore over the file.
func TestCaptureLeavesPageCache(t *testing.T) {
	dir, ok := dontcacheDir(t)
	if !ok {
		t.Skipf("neither the test's temporary directory nor the source directory supports RWF_DONTCACHE (kernel before 6.14, or their file systems): captures are written with plain writes")
	}
	path := filepath.Join(dir, "c.pcap")
	w, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 65000)
	frame[0] = 0x45
	for i := 0; i < 1024; i++ {
		w.Frame(time.Now(), [][]byte{frame})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Dropped != 0 {
		t.Fatalf("%d frames dropped", st.Dropped)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	// Dropping written-back pages is done as writeback ends, perhaps by
	// a worker a moment later.
	var resident, pages int
	for try := 0; try < 50; try++ {
		resident, pages = residentPages(t, f)
		if resident*4 < pages {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if resident*4 >= pages {
		t.Fatalf("%d of %d pages of the capture still in the page cache", resident, pages)
	}
	t.Logf("%d of %d pages of a 64 MiB capture in the page cache after fsync", resident, pages)
}

// residentPages counts f's pages in the page cache (mincore of a mapping).
func residentPages(t *testing.T, f *os.File) (int, int) {
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	pg := os.Getpagesize()
	vec := make([]byte, (len(m)+pg-1)/pg)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n, len(vec)
}

// dontcacheDir returns a temporary directory whose file system supports
// RWF_DONTCACHE: the test's own, or (where that is a tmpfs, which does not)
// one beside the package's sources, which are on a disk. Where neither
// does (a kernel before 6.14) it returns the test's own and false.
func dontcacheDir(t *testing.T) (string, bool) {
	dir := t.TempDir()
	if dontcacheSupported(dir) {
		return dir, true
	}
	src, err := os.MkdirTemp(".", "testcapture")
	if err == nil {
		t.Cleanup(func() { os.RemoveAll(src) })
		if dontcacheSupported(src) {
			return src, true
		}
	}
	return dir, false
}

// dontcacheSupported asks the file system of dir.
func dontcacheSupported(dir string) bool {
	f, err := os.CreateTemp(dir, "probe")
	if err != nil {
		return false
	}
	defer os.Remove(f.Name())
	defer f.Close()
	_, err = unix.Pwritev2(int(f.Fd()), [][]byte{[]byte("x")}, 0, unix.RWF_DONTCACHE)
	return err == nil
}

// TestUncachedFileReadsNothing: writing a capture reads nothing back from
// the disk. Each write starts where the last one ended, inside a page
// whose cached copy RWF_DONTCACHE dropped once it was written back; a
// write that began there made the kernel read the page first (one
// synchronous read per 1 MiB of capture), so every write begins at a page
// boundary with the last partial page written again in front of it. 40
// writes of odd sizes, each written back (fsync) before the next; the
// test process's read_bytes (/proc/self/io) must not grow, and the file
// must hold every byte.
func TestUncachedFileReadsNothing(t *testing.T) {
	dir, ok := dontcacheDir(t)
	if !ok {
		t.Skipf("neither the test's temporary directory nor the source directory supports RWF_DONTCACHE: no page is dropped, none read back")
	}
	f, err := os.Create(filepath.Join(dir, "c.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := fileOut(f)
	var want bytes.Buffer
	before := readBytes(t)
	for i := 0; i < 40; i++ {
		b := bytes.Repeat([]byte{byte(i + 1)}, 100003+i*517)
		if n, err := w.Write(b); n != len(b) || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
		want.Write(b)
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if read := readBytes(t) - before; read != 0 {
		t.Errorf("writing the capture read %d bytes from the disk", read)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("file of %d bytes, want %d (err %v)", len(got), want.Len(), err)
	}
}

// readBytes is this process's read_bytes: what it made the kernel read
// from storage.
func readBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "read_bytes: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no read_bytes in /proc/self/io")
	return 0
}
