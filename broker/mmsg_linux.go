package broker

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// recvmmsg receives up to len(hdrs) datagrams from fd without blocking;
// x/sys/unix has the types but no wrappers (of it or sendmmsg).
func recvmmsg(fd uintptr, hdrs []unix.Mmsghdr) (int, unix.Errno) {
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), unix.MSG_DONTWAIT, 0, 0)
	return int(n), e
}

// sendmmsg sends the datagrams of hdrs to fd without blocking and returns
// how many went; an error is returned only when the first one fails.
func sendmmsg(fd uintptr, hdrs []unix.Mmsghdr) (int, unix.Errno) {
	n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}
