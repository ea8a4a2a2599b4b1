package broker

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// recvmmsg receives up to len(hdrs) datagrams from fd without blocking;
// x/sys/unix has the types but no wrapper.
func recvmmsg(fd uintptr, hdrs []unix.Mmsghdr) (int, unix.Errno) {
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), unix.MSG_DONTWAIT, 0, 0)
	return int(n), e
}
