// Package swrapnet lets Go programs join a swrap emulated network. Go
// binaries ignore LD_PRELOAD, so instead of the shim they use this package:
// Dial, Listen and ListenPacket as a given emulated host, returning the
// standard net.Conn, net.Listener and net.PacketConn. It speaks the same
// wire protocol as the shim (docs/protocol.md), which keeps that protocol
// honest.
//
//	h, err := swrapnet.Join(dir, 10) // host 10: 127.0.0.10, fd00::5357:5f0a
//	ln, err := h.Listen("tcp", "127.0.0.10:7")
//	c, err := swrapnet.MustJoin(dir, 11).Dial("tcp", "127.0.0.10:7")
package swrapnet

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/swrap/swrap/addrplan"
	"github.com/swrap/swrap/internal/ctlmsg"
	"github.com/swrap/swrap/wire"
)

// Host is one emulated host of a broker's network, as seen by this process.
// Its methods are safe for concurrent use.
type Host struct {
	dir  string // SOCKET_WRAPPER_DIR
	id   int
	plan addrplan.Plan

	mu   sync.Mutex // guards idle
	idle []*ctl     // control connections not in use
	inst string     // broker instance, from HELLO
}

// Join returns host id (1..64) of the broker serving dir. The broker must be
// running (swrap-broker --dir DIR, or any wrapped program starts one); Join
// checks that it answers.
func Join(dir string, id int) (*Host, error) {
	if !addrplan.ValidHost(id) {
		return nil, fmt.Errorf("swrapnet: host id %d out of range 1..%d", id, addrplan.MaxHost)
	}
	plan, err := addrplan.New(os.Getenv("SOCKET_WRAPPER_IPV4_NETWORK"))
	if err != nil {
		return nil, err
	}
	h := &Host{dir: dir, id: id, plan: plan}
	c, err := h.get()
	if err != nil {
		return nil, err
	}
	h.put(c)
	return h, nil
}

// MustJoin is Join that panics on error, for tests.
func MustJoin(dir string, id int) *Host {
	h, err := Join(dir, id)
	if err != nil {
		panic(err)
	}
	return h
}

// ID returns the host's id.
func (h *Host) ID() int { return h.id }

// IPv4 returns the host's IPv4 address.
func (h *Host) IPv4() netip.Addr { return h.plan.IPv4(h.id) }

// IPv6 returns the host's IPv6 address.
func (h *Host) IPv6() netip.Addr { return h.plan.IPv6(h.id) }

// Status returns the broker's STATUS document (JSON).
func (h *Host) Status() ([]byte, error) {
	return h.doc(wire.OpStatus)
}

// doc asks for a JSON document (STATUS, GETLINKS): the reply's body, or,
// when the reply passes an fd (a document larger than one message), what
// that fd holds from offset 0 to its end.
func (h *Host) doc(op wire.Op) ([]byte, error) {
	rep, fd, err := h.call(op, 0, nil)
	if err != nil {
		return nil, err
	}
	if fd < 0 {
		return rep.Body, nil
	}
	f := os.NewFile(uintptr(fd), "swrap-doc")
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<62))
	if err != nil {
		return nil, fmt.Errorf("swrapnet: reading the %s document: %w", op, err)
	}
	return b, nil
}

// ctl is one control connection.
type ctl struct {
	fd  int
	buf []byte
}

func (h *Host) get() (*ctl, error) {
	h.mu.Lock()
	if n := len(h.idle); n > 0 {
		c := h.idle[n-1]
		h.idle = h.idle[:n-1]
		h.mu.Unlock()
		return c, nil
	}
	h.mu.Unlock()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(h.dir, wire.SubDir, wire.CtlSock)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("swrapnet: no broker at %s: %w", path, err)
	}
	c := &ctl{fd: fd, buf: make([]byte, wire.MaxMessage)}
	comm, _ := os.Executable()
	hello := wire.Hello{PID: uint32(os.Getpid()), Iface: uint32(h.id), Comm: filepath.Base(comm)}
	rep, _, err := c.roundTrip(wire.OpHello, 0, hello.Encode())
	if err == nil && rep.Err != 0 {
		err = rep.Err
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("swrapnet: HELLO: %w", err)
	}
	hr, err := wire.ParseHelloRep(rep.Body)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	h.mu.Lock()
	h.inst = hr.Instance
	h.mu.Unlock()
	return c, nil
}

func (h *Host) put(c *ctl) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.idle) < 8 {
		h.idle = append(h.idle, c)
		return
	}
	unix.Close(c.fd)
}

// roundTrip sends one request and reads its reply (and an fd, if one came).
func (c *ctl) roundTrip(op wire.Op, sock uint64, body []byte) (wire.Reply, int, error) {
	msg := wire.AppendRequest(nil, op, sock, body)
	if _, err := unix.Write(c.fd, msg); err != nil {
		return wire.Reply{}, -1, err
	}
	return ctlmsg.RecvReply(c.fd, c.buf)
}

// call makes a request on a pooled connection. A transport error discards
// the connection (the broker may be gone); an errno reply is returned as
// the error.
func (h *Host) call(op wire.Op, sock uint64, body []byte) (wire.Reply, int, error) {
	c, err := h.get()
	if err != nil {
		return wire.Reply{}, -1, err
	}
	rep, fd, err := c.roundTrip(op, sock, body)
	if err != nil {
		unix.Close(c.fd)
		return rep, -1, err
	}
	h.put(c)
	if rep.Err != 0 {
		if fd >= 0 {
			unix.Close(fd)
		}
		return rep, -1, rep.Err
	}
	return rep, fd, nil
}

// socket creates a wrapped socket and returns its id and app end.
func (h *Host) socket(family, typ, proto int) (uint64, int, error) {
	req := wire.Socket{Family: int32(family), Type: int32(typ), Protocol: int32(proto), Iface: uint32(h.id)}
	rep, fd, err := h.call(wire.OpSocket, 0, req.Encode())
	if err != nil {
		return 0, -1, err
	}
	if fd < 0 || len(rep.Body) != wire.SocketRepSize {
		if fd >= 0 {
			unix.Close(fd)
		}
		return 0, -1, errors.New("swrapnet: SOCKET reply without a socket")
	}
	return ne.Uint64(rep.Body), fd, nil
}

// syscallName names the call behind each net operation in errors.
var syscallName = map[string]string{"dial": "connect", "listen": "listen", "accept": "accept",
	"read": "read", "write": "write", "close": "shutdown"}

// Errors are reported as *net.OpError wrapping the errno, so that
// errors.Is(err, syscall.ECONNREFUSED) works as with the net package.
func opErr(op, network string, addr net.Addr, err error) error {
	if err == nil {
		return nil
	}
	if en, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError(syscallName[op], en)
	}
	return &net.OpError{Op: op, Net: network, Addr: addr, Err: err}
}
