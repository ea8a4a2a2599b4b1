// Package ctlmsg is the I/O the broker's Go clients (swrapnet and the
// seccomp supervisor) share on a control connection: reading one reply
// with the descriptor it may carry. wire only encodes and decodes; this is
// the part that touches the socket.
package ctlmsg

import (
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/swrap/swrap/wire"
)

// RecvReply reads one reply from the control connection fd into buf (at
// least wire.MaxMessage bytes), with the first descriptor passed along
// (-1 if none). The body is a copy, so buf may be reused at once. A closed
// connection is ECONNRESET.
func RecvReply(fd int, buf []byte) (wire.Reply, int, error) {
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return wire.Reply{}, -1, err
		}
		if n == 0 {
			return wire.Reply{}, -1, syscall.ECONNRESET
		}
		rfd := FirstFD(oob[:oobn])
		rep, err := wire.ParseReply(buf[:n])
		if err != nil {
			if rfd >= 0 {
				unix.Close(rfd)
			}
			return wire.Reply{}, -1, err
		}
		rep.Body = append([]byte(nil), rep.Body...)
		return rep, rfd, nil
	}
}

// FirstFD returns the first descriptor passed in a control message (-1 if
// none) and closes every other one, so that none leaks.
func FirstFD(oob []byte) int {
	fd := -1
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return -1
	}
	for i := range msgs {
		fds, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			continue
		}
		for _, f := range fds {
			if fd < 0 {
				fd = f
			} else {
				unix.Close(f)
			}
		}
	}
	return fd
}
