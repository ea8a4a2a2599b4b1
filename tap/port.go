package tap

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Port is a socket connected to one host's receive socket: the way frames
// reach that host. It must be connected (not sendto on an unconnected
// socket) because only then does the kernel wake a sender parked on a full
// receiver (unix_dgram_peer_wake), which is what makes back-pressure work.
//
// A Port may be shared by the endpoints of several hosts: each send holds
// the socket's write lock for one batch, so batches never interleave.
type Port struct {
	conn *net.UnixConn
	raw  syscall.RawConn
	// local, if set, is the endpoint of a host in this process: frames
	// are handed to its netstack in memory instead of crossing conn (see
	// LocalPort). conn and raw are nil then.
	local *Endpoint
	// shaper, if set, takes the frames routed to this Port instead of the
	// endpoint sending them (see Shaped). Nil on the fabric's own Ports,
	// so that a link without conditions costs one nil check per frame.
	shaper Shaper
}

// Shaper takes the frames of a shaped Port (package netem: delay, loss,
// rate limit...). Divert is called on the sender's TX path with the
// frame's slices, valid only during the call: it copies what it keeps,
// must not block, and later sends the frame with out.Send (or drops it).
// The endpoint neither captures nor sends a diverted frame: the shaper does
// both when the frame crosses.
type Shaper interface {
	Divert(out *Port, parts [][]byte)
}

// Shaped returns a Port to the same host whose frames go through s. It
// shares p's socket: close p, never the shaped Port.
func (p *Port) Shaped(s Shaper) *Port {
	return &Port{conn: p.conn, raw: p.raw, local: p.local, shaper: s}
}

// LocalPort returns a Port that hands frames to dst, the endpoint of a host
// in the same process, in memory. It is the fabric's fast path: the frame
// is routed, shaped and captured exactly as on a socket Port, but it skips
// two system calls and two goroutine hand-offs per frame (sendmmsg, and the
// receiver's wake-up and recvmmsg). There is no back-pressure: as on a
// link, a receiver that cannot keep up drops (netstack's queues do), and
// TCP's window normally keeps that from happening.
func LocalPort(dst *Endpoint) *Port { return &Port{local: dst} }

// Send sends one frame, parking in the netpoller while the receiver is
// full. It is for shapers, which send frames one at a time from their own
// goroutine; it may be called concurrently with the endpoints' batches.
func (p *Port) Send(frame []byte) error {
	if p.local != nil {
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
			Payload: buffer.MakeWithData(frame),
		})
		p.local.inject(protocolOf(frame), pkt, len(frame))
		pkt.DecRef()
		return nil
	}
	var serr error
	err := p.raw.Write(func(fd uintptr) bool {
		for {
			_, e := unix.Write(int(fd), frame)
			switch e {
			case nil:
				return true
			case unix.EINTR:
			case unix.EAGAIN:
				return false
			default:
				serr = e
				return true
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// NewPort wraps c, a unix datagram socket connected to a host's receive
// socket. The Port owns c from then on.
func NewPort(c *net.UnixConn) (*Port, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &Port{conn: c, raw: raw}, nil
}

// Close closes the socket. Senders parked on it return and count their
// remaining frames as dropped. A LocalPort has nothing to close.
func (p *Port) Close() error {
	if p.conn == nil {
		return nil
	}
	return p.conn.Close()
}

// sender is one endpoint's state for sending a run of datagrams on a Port.
// Its write method is bound once into writeFn so that RawConn.Write gets a
// callback without a closure being allocated per batch.
type sender struct {
	cur     []unix.Mmsghdr // datagrams to send
	off     int            // how many of cur are done (sent or failed)
	failed  int            // datagrams the kernel refused
	writeFn func(fd uintptr) bool
}

// send sends hdrs on p, parking in the netpoller while p's peer is full.
// It returns how many datagrams were not delivered.
func (s *sender) send(p *Port, hdrs []unix.Mmsghdr) int {
	s.cur, s.off, s.failed = hdrs, 0, 0
	err := p.raw.Write(s.writeFn)
	lost := s.failed
	if err != nil {
		lost += len(hdrs) - s.off
	}
	s.cur = nil
	return lost
}

// write is the RawConn.Write callback: it returns false to wait for the
// socket to become writable again.
func (s *sender) write(fd uintptr) bool {
	for s.off < len(s.cur) {
		n, errno := sendmmsg(fd, s.cur[s.off:])
		switch {
		case errno == 0:
			s.off += n
		case errno == unix.EINTR:
		case errno == unix.EAGAIN:
			return false
		default:
			// This datagram cannot be sent (the receiver is gone:
			// ECONNREFUSED; or it is too big: EMSGSIZE). Skip it so
			// one bad frame does not hold up the rest.
			s.failed++
			s.off++
		}
	}
	return true
}
