package supervise

import (
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/swrap/swrap/wire"
)

// trapIoctls are the ioctl requests the filter stops (by the request
// argument; every other ioctl stays in the kernel): what is queued, which
// the app end alone cannot tell (our datagram headers, the bytes the
// broker still holds, a listener's accept records).
var trapIoctls = []uint32{unix.SIOCINQ, unix.SIOCOUTQ}

// ioctl serves FIONREAD (SIOCINQ) and SIOCOUTQ on a wrapped socket, as the
// shim's ioctl.c does: on UDP, FIONREAD is the size of the next datagram's
// payload; on TCP what the app end holds, or else what the broker holds;
// a listener's is EINVAL.
func (c *call) ioctl() (int64, syscall.Errno) {
	req, argp := uint32(c.arg(1)), c.arg(2)
	if argp == 0 {
		return 0, unix.EFAULT
	}
	var v int
	if req == unix.SIOCINQ && c.info.dgram {
		var h [wire.DgramHeaderSize]byte
		n, _, _, _, err := unix.Recvmsg(c.fd, h[:], nil, unix.MSG_PEEK|unix.MSG_TRUNC|unix.MSG_DONTWAIT)
		if err == nil {
			if _, bare := c.barePeer(); bare {
				v = n
			} else if n > wire.DgramHeaderSize {
				v = n - wire.DgramHeaderSize
			}
		}
	} else {
		if req == unix.SIOCINQ && !c.info.dgram && c.s.listening(c.tgid, c.id) == 0 {
			return 0, unix.EINVAL
		}
		local, err := unix.IoctlGetInt(c.fd, uint(req))
		if err != nil || (req == unix.SIOCOUTQ && c.info.dgram) {
			local = 0 // our headers are not the program's bytes
		}
		v = local
		if req != unix.SIOCINQ || local == 0 {
			rep, en := c.req(wire.OpIoctl, ne.AppendUint32(ne.AppendUint32(nil, req), 0))
			if en == 0 && len(rep.Body) >= 4 {
				v += int(int32(ne.Uint32(rep.Body)))
			}
		}
	}
	if err := writeMem(c.tid, argp, ne.AppendUint32(nil, uint32(int32(v)))); err != nil {
		return 0, unix.EFAULT
	}
	return 0, 0
}
