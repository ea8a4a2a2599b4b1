package supervise

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// runFilter runs the filter on one system call in x/net/bpf's VM. The VM
// loads words big-endian where seccomp loads them native-endian, so the
// seccomp_data words are laid out big-endian here, at the same offsets.
func runFilter(t *testing.T, arch uint32, nr int, args ...uint64) uint32 {
	t.Helper()
	prog, err := filterProgram()
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]bpf.RawInstruction, len(prog))
	for i, f := range prog {
		raw[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	ins, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("the filter does not disassemble")
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	d := make([]byte, 64)
	be := binary.BigEndian
	be.PutUint32(d[offNr:], uint32(nr))
	be.PutUint32(d[offArch:], arch)
	for i, a := range args {
		be.PutUint32(d[offArgLo(i):], uint32(a))
		be.PutUint32(d[offArgHi(i):], uint32(a>>32))
	}
	r, err := vm.Run(d)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(r)
}

// TestFilter: only what needs the broker stops; data calls, and sendto or
// recvfrom without an address, pass; other ABIs and io_uring fail.
func TestFilter(t *testing.T) {
	const notify, allow = unix.SECCOMP_RET_USER_NOTIF, unix.SECCOMP_RET_ALLOW
	enosys := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS))
	x := uint32(auditArchX86_64)
	for _, c := range []struct {
		name string
		arch uint32
		nr   int
		args []uint64
		want uint32
	}{
		{"socket AF_INET", x, unix.SYS_SOCKET, []uint64{unix.AF_INET, unix.SOCK_STREAM}, notify},
		{"socket AF_INET6", x, unix.SYS_SOCKET, []uint64{unix.AF_INET6, unix.SOCK_DGRAM}, notify},
		{"socket AF_UNIX", x, unix.SYS_SOCKET, []uint64{unix.AF_UNIX, unix.SOCK_STREAM}, allow},
		{"socket AF_NETLINK", x, unix.SYS_SOCKET, []uint64{unix.AF_NETLINK, unix.SOCK_RAW}, allow},
		{"connect", x, unix.SYS_CONNECT, nil, notify},
		{"accept4", x, unix.SYS_ACCEPT4, nil, notify},
		{"getsockopt", x, unix.SYS_GETSOCKOPT, nil, notify},
		{"recvmsg", x, unix.SYS_RECVMSG, nil, notify},
		{"read", x, unix.SYS_READ, nil, allow},
		{"write", x, unix.SYS_WRITE, nil, allow},
		{"writev", x, unix.SYS_WRITEV, nil, allow},
		{"epoll_pwait", x, unix.SYS_EPOLL_PWAIT, nil, allow},
		{"sendto without address", x, unix.SYS_SENDTO, []uint64{3, 0x1000, 10, 0, 0, 0}, allow},
		{"sendto with address", x, unix.SYS_SENDTO, []uint64{3, 0x1000, 10, 0, 0x7ffd0000, 16}, notify},
		{"recvfrom with a high address", x, unix.SYS_RECVFROM, []uint64{3, 0x1000, 10, 0, 0x7f0000000000, 0x2000}, notify},
		{"recvfrom without address", x, unix.SYS_RECVFROM, []uint64{3, 0x1000, 10, 0, 0, 0}, allow},
		{"ioctl FIONREAD (SIOCINQ)", x, unix.SYS_IOCTL, []uint64{3, unix.SIOCINQ, 0x1000}, notify},
		{"ioctl SIOCOUTQ", x, unix.SYS_IOCTL, []uint64{3, unix.SIOCOUTQ, 0x1000}, notify},
		{"ioctl FIONBIO", x, unix.SYS_IOCTL, []uint64{3, 0x5421, 0x1000}, allow},
		{"ioctl TCGETS", x, unix.SYS_IOCTL, []uint64{1, unix.TCGETS, 0x1000}, allow},
		{"ioctl SIOCGIFADDR", x, unix.SYS_IOCTL, []uint64{3, unix.SIOCGIFADDR, 0x1000}, notify},
		{"ioctl SIOCGIFNAME", x, unix.SYS_IOCTL, []uint64{3, unix.SIOCGIFNAME, 0x1000}, notify},
		{"ioctl SIOCGIFINDEX", x, unix.SYS_IOCTL, []uint64{3, unix.SIOCGIFINDEX, 0x1000}, notify},
		{"ioctl SIOCGIFINDEX+1", x, unix.SYS_IOCTL, []uint64{3, unix.SIOCGIFINDEX + 1, 0x1000}, allow},
		{"ioctl SIOCGIFNAME-1", x, unix.SYS_IOCTL, []uint64{3, unix.SIOCGIFNAME - 1, 0x1000}, allow},
		{"io_uring_setup", x, unix.SYS_IO_URING_SETUP, nil, enosys},
		{"i386 socketcall", 0x40000003, 102, nil, enosys},
		{"x32", x, unix.SYS_SOCKET | x32SyscallBit, []uint64{unix.AF_INET}, enosys},
	} {
		if got := runFilter(t, c.arch, c.nr, c.args...); got != c.want {
			t.Errorf("%s: %#x, want %#x", c.name, got, c.want)
		}
	}
}
