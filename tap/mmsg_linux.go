package tap

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// sendmmsg sends hdrs on fd without blocking; x/sys/unix has the types but
// no wrapper. It returns the number of datagrams sent.
func sendmmsg(fd uintptr, hdrs []unix.Mmsghdr) (int, unix.Errno) {
	n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, 0, 0)
	return int(n), e
}

// recvmmsg receives up to len(hdrs) datagrams from fd without blocking.
func recvmmsg(fd uintptr, hdrs []unix.Mmsghdr) (int, unix.Errno) {
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), unix.MSG_DONTWAIT, 0, 0)
	return int(n), e
}
