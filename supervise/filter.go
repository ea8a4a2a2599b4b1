package supervise

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// auditArchX86_64 is AUDIT_ARCH_X86_64: the filter serves only the native
// 64-bit ABI (see filterProgram).
const auditArchX86_64 = 0xc000003e

// x32SyscallBit marks x32 system call numbers.
const x32SyscallBit = 0x40000000

// Offsets in struct seccomp_data (little endian: the low word first).
const (
	offNr   = 0
	offArch = 4
)

func offArgLo(i int) uint32 { return 16 + 8*uint32(i) }
func offArgHi(i int) uint32 { return 20 + 8*uint32(i) }

// Always trapped: they take or return addresses or socket state, or read
// messages whose layout the broker's datagram header changes.
var trapAlways = []int{
	unix.SYS_BIND, unix.SYS_CONNECT, unix.SYS_LISTEN, unix.SYS_ACCEPT, unix.SYS_ACCEPT4,
	unix.SYS_GETSOCKNAME, unix.SYS_GETPEERNAME, unix.SYS_GETSOCKOPT, unix.SYS_SETSOCKOPT,
	unix.SYS_SHUTDOWN, unix.SYS_SENDMSG, unix.SYS_RECVMSG, unix.SYS_SENDMMSG, unix.SYS_RECVMMSG,
}

// asm is a tiny BPF assembler with forward jumps to labels.
type asm struct {
	ins    []unix.SockFilter
	labels map[string]int
	fix    []fixup
}

type fixup struct {
	at     int
	jt, jf string // "" means the next instruction
}

func (a *asm) label(name string) { a.labels[name] = len(a.ins) }

func (a *asm) stmt(code uint16, k uint32) {
	a.ins = append(a.ins, unix.SockFilter{Code: code, K: k})
}

// jeq jumps to jt when A == k, else to jf ("" falls through).
func (a *asm) jeq(k uint32, jt, jf string) {
	a.fix = append(a.fix, fixup{at: len(a.ins), jt: jt, jf: jf})
	a.ins = append(a.ins, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: k})
}

func (a *asm) jge(k uint32, jt, jf string) {
	a.fix = append(a.fix, fixup{at: len(a.ins), jt: jt, jf: jf})
	a.ins = append(a.ins, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, K: k})
}

func (a *asm) ld(off uint32) { a.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off) }
func (a *asm) ret(k uint32)  { a.stmt(unix.BPF_RET|unix.BPF_K, k) }

func (a *asm) resolve() ([]unix.SockFilter, error) {
	off := func(from int, l string) (uint8, error) {
		if l == "" {
			return 0, nil
		}
		to, ok := a.labels[l]
		if !ok {
			return 0, fmt.Errorf("bpf: no label %q", l)
		}
		d := to - from - 1
		if d < 0 || d > 255 {
			return 0, fmt.Errorf("bpf: jump to %q out of range", l)
		}
		return uint8(d), nil
	}
	for _, f := range a.fix {
		var err error
		if a.ins[f.at].Jt, err = off(f.at, f.jt); err != nil {
			return nil, err
		}
		if a.ins[f.at].Jf, err = off(f.at, f.jf); err != nil {
			return nil, err
		}
	}
	return a.ins, nil
}

// filterProgram is the seccomp filter: USER_NOTIF for the calls the
// broker must see, ALLOW for everything else, in particular for read,
// write, readv, writev, send/recv without an address, poll and epoll, so
// that an established connection's data never leaves the kernel.
//
// Another ABI (i386 via int 0x80, x32) fails with ENOSYS instead of
// reaching the real network unseen; io_uring_setup fails with ENOSYS
// too, since io_uring socket operations would bypass the filter (programs
// fall back to system calls).
func filterProgram() ([]unix.SockFilter, error) {
	a := &asm{labels: map[string]int{}}
	a.ld(offArch)
	a.jeq(auditArchX86_64, "", "enosys")
	a.ld(offNr)
	a.jge(x32SyscallBit, "enosys", "")
	for _, nr := range trapAlways {
		a.jeq(uint32(nr), "notify", "")
	}
	a.jeq(unix.SYS_SOCKET, "socket", "")
	a.jeq(unix.SYS_SENDTO, "addr4", "")
	a.jeq(unix.SYS_RECVFROM, "addr4", "")
	a.jeq(unix.SYS_IOCTL, "ioctl", "")
	a.jeq(unix.SYS_IO_URING_SETUP, "enosys", "")
	a.ret(unix.SECCOMP_RET_ALLOW)

	// ioctl(fd, request, ...): only the requests in trapIoctls (the
	// kernel takes the request as an unsigned int: the low word).
	a.label("ioctl")
	a.ld(offArgLo(1))
	for _, r := range trapIoctls {
		a.jeq(r, "notify", "")
	}
	// SIOCGIF*: the emulated interface's (ifioctl.go).
	a.jge(ifReqFirst, "", "allow")
	a.jge(ifReqLast+1, "allow", "notify")

	// socket(domain, ...): only the internet families.
	a.label("socket")
	a.ld(offArgLo(0))
	a.jeq(unix.AF_INET, "notify", "")
	a.jeq(unix.AF_INET6, "notify", "allow")

	// sendto/recvfrom: only with an address (argument 4 not NULL).
	a.label("addr4")
	a.ld(offArgLo(4))
	a.jeq(0, "", "notify")
	a.ld(offArgHi(4))
	a.jeq(0, "allow", "notify")

	a.label("allow")
	a.ret(unix.SECCOMP_RET_ALLOW)
	a.label("notify")
	a.ret(unix.SECCOMP_RET_USER_NOTIF)
	a.label("enosys")
	a.ret(unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS))
	return a.resolve()
}

// installFilter sets no_new_privs and installs the filter on the calling
// thread, returning the notification listener (close-on-exec).
func installFilter() (int, error) {
	prog, err := filterProgram()
	if err != nil {
		return -1, err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return -1, fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	fp := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	flags := uintptr(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
	fd, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fp)))
	if e == unix.EINVAL {
		// A kernel before 5.19 has no WAIT_KILLABLE_RECV: without it a
		// signal interrupts a call the supervisor is serving, which
		// the supervisor notices (idValid) and the call is restarted.
		flags &^= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
		fd, _, e = unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fp)))
	}
	if e != 0 {
		return -1, fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER, NEW_LISTENER): %w", e)
	}
	return int(fd), nil
}
