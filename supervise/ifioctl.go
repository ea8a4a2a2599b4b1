package supervise

import (
	"bytes"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// The SIOCGIF* requests are stopped by number (SIOCGIFNAME .. SIOCGIFINDEX)
// and answered for the emulated interface on any socket, as the shim's
// ifioctl.c does: interface "swrapN" (N the process's host), index 1,
// the host's IPv4 address, /8, up, the broker's MTU, no hardware address.
// A name other than the interface's is ENODEV whatever the machine has, so
// no request reaches, let alone changes, a real interface; the set
// requests on it are EOPNOTSUPP. Every family answers the link requests,
// only AF_INET the IPv4 address ones (ENOTTY elsewhere, as inet_ioctl).
const (
	ifReqFirst = unix.SIOCGIFNAME  // 0x8910
	ifReqLast  = unix.SIOCGIFINDEX // 0x8933
	ifIndex    = 1
	ifreqSize  = 40 // struct ifreq on x86-64
	ifconfSize = 16 // struct ifconf: int ifc_len, padding, char *ifc_buf
)

// ifReq says whether ioctl request req is one of the interface requests.
func ifReq(req uint32) bool { return req >= ifReqFirst && req <= ifReqLast }

// ifAnswered are the requests answered; others in the range go on to
// the kernel.
var ifAnswered = map[uint32]bool{
	unix.SIOCGIFADDR: true, unix.SIOCGIFNETMASK: true, unix.SIOCGIFBRDADDR: true,
	unix.SIOCGIFCONF: true, unix.SIOCGIFNAME: true, unix.SIOCGIFFLAGS: true, unix.SIOCGIFINDEX: true,
	unix.SIOCGIFMTU: true, unix.SIOCGIFHWADDR: true, unix.SIOCGIFMETRIC: true,
	unix.SIOCSIFFLAGS: true, unix.SIOCSIFADDR: true, unix.SIOCGIFDSTADDR: true, unix.SIOCSIFDSTADDR: true,
	unix.SIOCSIFBRDADDR: true, unix.SIOCSIFNETMASK: true, unix.SIOCSIFMETRIC: true, unix.SIOCSIFMTU: true,
	unix.SIOCSIFNAME: true, unix.SIOCSIFHWADDR: true, unix.SIOCADDMULTI: true, unix.SIOCDELMULTI: true,
}

// ifFamily is the family the program sees for its descriptor fd (our
// copy), or -1 when it is not a socket.
func (s *Supervisor) ifFamily(tgid, fd int) int {
	if id, err := s.classify(fd); err == nil {
		if si, en := s.info(tgid, id); en == 0 {
			return si.family
		}
		return -1
	}
	if h := s.placeholderOf(fd); h != nil {
		return h.family
	}
	d, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return -1
	}
	return d
}

// doIfIoctl serves a stopped SIOCGIF* request.
func (s *Supervisor) doIfIoctl(n *notif) {
	tid := int(n.PID)
	req, argp := uint32(n.Data.Args[1]), n.Data.Args[2]
	if !ifAnswered[req] {
		continueCall(s.listener, n.ID)
		return
	}
	fd, err := takeFD(tid, int(int32(n.Data.Args[0])))
	if err != nil {
		continueCall(s.listener, n.ID) // EBADF: the kernel's
		return
	}
	tgid := s.tgidOf(tid)
	fam := s.ifFamily(tgid, fd)
	unix.Close(fd)
	if fam < 0 {
		continueCall(s.listener, n.ID) // ENOTSOCK: the kernel's
		return
	}
	respond(s.listener, n.ID, 0, s.ifIoctl(tid, tgid, fam, req, argp))
}

func (s *Supervisor) ifIoctl(tid, tgid, fam int, req uint32, argp uint64) syscall.Errno {
	host := ifaceOf(tgid)
	v4 := planOf(tgid).Network4().As4()
	v4[3] = byte(host)
	name := fmt.Sprintf("swrap%d", host)
	sin := func(a [4]byte) []byte {
		b := make([]byte, 16)
		ne.PutUint16(b, unix.AF_INET)
		copy(b[4:], a[:])
		return b
	}
	if req == unix.SIOCGIFCONF {
		var c [ifconfSize]byte
		if readMem(tid, argp, c[:]) != nil {
			return unix.EFAULT
		}
		l, buf := int32(ne.Uint32(c[0:])), ne.Uint64(c[8:])
		total := int32(0)
		if buf == 0 {
			total = ifreqSize
		} else if l >= ifreqSize {
			r := make([]byte, ifreqSize)
			copy(r, name)
			copy(r[16:], sin(v4))
			if writeMem(tid, buf, r) != nil {
				return unix.EFAULT
			}
			total = ifreqSize
		}
		ne.PutUint32(c[0:], uint32(total))
		if writeMem(tid, argp, c[:4]) != nil {
			return unix.EFAULT
		}
		return 0
	}
	r := make([]byte, ifreqSize)
	if readMem(tid, argp, r) != nil {
		return unix.EFAULT
	}
	if req == unix.SIOCGIFNAME {
		if int32(ne.Uint32(r[16:])) != ifIndex {
			return unix.ENODEV
		}
		clear(r[:16])
		copy(r, name)
		if writeMem(tid, argp, r) != nil {
			return unix.EFAULT
		}
		return 0
	}
	if (req == unix.SIOCGIFADDR || req == unix.SIOCGIFNETMASK || req == unix.SIOCGIFBRDADDR) && fam != unix.AF_INET {
		return unix.ENOTTY
	}
	r[15] = 0
	if got, _, _ := bytes.Cut(r[:16], []byte{0}); string(got) != name {
		return unix.ENODEV
	}
	u := r[16:]
	clear(u)
	switch req {
	case unix.SIOCGIFADDR:
		copy(u, sin(v4))
	case unix.SIOCGIFNETMASK:
		copy(u, sin([4]byte{255, 0, 0, 0}))
	case unix.SIOCGIFBRDADDR:
		copy(u, sin([4]byte{v4[0], 255, 255, 255}))
	case unix.SIOCGIFFLAGS:
		ne.PutUint16(u, unix.IFF_UP|unix.IFF_BROADCAST|unix.IFF_RUNNING|unix.IFF_MULTICAST)
	case unix.SIOCGIFINDEX:
		ne.PutUint32(u, ifIndex)
	case unix.SIOCGIFMTU:
		ne.PutUint32(u, s.mtu())
	case unix.SIOCGIFMETRIC:
	case unix.SIOCGIFHWADDR:
		ne.PutUint16(u, unix.ARPHRD_NONE) // like a tun device
	default:
		return unix.EOPNOTSUPP // the emulated interface cannot be reconfigured
	}
	if writeMem(tid, argp, r) != nil {
		return unix.EFAULT
	}
	return 0
}
