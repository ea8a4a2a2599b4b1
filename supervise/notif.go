package supervise

import (
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// seccompData is struct seccomp_data.
type seccompData struct {
	Nr   int32
	Arch uint32
	IP   uint64
	Args [6]uint64
}

// notif is struct seccomp_notif.
type notif struct {
	ID    uint64
	PID   uint32
	Flags uint32
	Data  seccompData
}

// notifResp is struct seccomp_notif_resp.
type notifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// notifAddFD is struct seccomp_notif_addfd.
type notifAddFD struct {
	ID         uint64
	Flags      uint32
	SrcFD      uint32
	NewFD      uint32
	NewFDFlags uint32
}

func ioctlPtr(fd int, req uintptr, p unsafe.Pointer) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(p))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

// recvNotif waits for the next notification on listener fd.
func recvNotif(fd int, n *notif) error {
	*n = notif{} // the kernel insists on a zeroed struct
	return ioctlPtr(fd, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(n))
}

// idValid reports whether notification id is still pending: the caller
// has not died or been interrupted.
func idValid(fd int, id uint64) bool {
	return ioctlPtr(fd, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id)) == nil
}

// respond answers notification id: the call returns val, or fails with
// errno when errno is not 0.
func respond(fd int, id uint64, val int64, errno syscall.Errno) error {
	r := notifResp{ID: id, Val: val, Error: -int32(errno)}
	if errno != 0 {
		r.Val = 0
	}
	return ioctlPtr(fd, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&r))
}

// continueCall lets notification id's call go on in the kernel.
func continueCall(fd int, id uint64) error {
	r := notifResp{ID: id, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
	return ioctlPtr(fd, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&r))
}

// addFDSend installs our fd src in the caller as the result of its call
// (SECCOMP_ADDFD_FLAG_SEND), close-on-exec if cloexec. It returns the
// caller's new descriptor.
//
// The ioctl runs with every signal blocked on its thread. The kernel
// marks the notification answered when it queues the descriptor, and if
// a signal interrupts the ioctl before the caller has installed it (Go
// preempts goroutines with SIGURG at any time), it withdraws the
// descriptor but leaves the answer, which is then 0: the caller's
// socket() or accept() returns descriptor 0, which is not its socket,
// and the ioctl, restarted, fails with EINPROGRESS or ENOENT. With the
// signals blocked the wait cannot be interrupted.
func addFDSend(fd int, id uint64, src int, cloexec bool) (int, error) {
	a := notifAddFD{ID: id, Flags: unix.SECCOMP_ADDFD_FLAG_SEND, SrcFD: uint32(src)}
	return addFDIoctl(fd, a, cloexec)
}

// addFD installs our fd src in the caller at descriptor number newfd,
// replacing what was there (SECCOMP_ADDFD_FLAG_SETFD); the call stays
// unanswered. Signals are blocked as in addFDSend: an interrupted wait
// withdraws the descriptor, and the restarted ioctl would do it again.
func addFD(fd int, id uint64, src, newfd int, cloexec bool) (int, error) {
	a := notifAddFD{ID: id, Flags: unix.SECCOMP_ADDFD_FLAG_SETFD, SrcFD: uint32(src), NewFD: uint32(newfd)}
	return addFDIoctl(fd, a, cloexec)
}

func addFDIoctl(fd int, a notifAddFD, cloexec bool) (int, error) {
	if cloexec {
		a.NewFDFlags = unix.O_CLOEXEC
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var all, old unix.Sigset_t
	all.Val[0] = ^uint64(0) // signals 1..64: the kernel's sigset is one word
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &all, &old); err != nil {
		return -1, err
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	for {
		r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_ADDFD, uintptr(unsafe.Pointer(&a)))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return -1, e
		}
		return int(r), nil
	}
}

// readMem reads len(b) bytes of process pid's memory at addr.
func readMem(pid int, addr uint64, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if addr == 0 {
		return unix.EFAULT
	}
	l := []unix.Iovec{{Base: &b[0], Len: uint64(len(b))}}
	r := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}
	n, err := unix.ProcessVMReadv(pid, l, r, 0)
	if err != nil {
		return unix.EFAULT
	}
	if n != len(b) {
		return unix.EFAULT
	}
	return nil
}

// writeMem writes b to process pid's memory at addr.
func writeMem(pid int, addr uint64, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if addr == 0 {
		return unix.EFAULT
	}
	l := []unix.Iovec{{Base: &b[0], Len: uint64(len(b))}}
	r := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}
	n, err := unix.ProcessVMWritev(pid, l, r, 0)
	if err != nil || n != len(b) {
		return unix.EFAULT
	}
	return nil
}
