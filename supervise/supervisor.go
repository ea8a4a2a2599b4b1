package supervise

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swrap/swrap/addrplan"
	"github.com/swrap/swrap/internal/ctlmsg"
	"github.com/swrap/swrap/wire"
)

// debug logs every errno the broker answers (SWRAP_SUPERVISE_DEBUG=1).
var debug = os.Getenv("SWRAP_SUPERVISE_DEBUG") == "1"

// Config says which network the supervised programs join.
type Config struct {
	Dir    string    // SOCKET_WRAPPER_DIR
	Broker string    // swrap-broker, started on demand like the shim does
	Pcap   string    // SOCKET_WRAPPER_PCAP_FILE, passed in HELLO ("" none)
	Stderr io.Writer // where problems are told (nil: os.Stderr)
}

// Supervisor serves the seccomp notifications of one program tree.
type Supervisor struct {
	cfg      Config
	listener int
	pending  *pendingHelper
	inst     string // the broker's instance, from HELLO
	mtuVal   uint32 // the broker's MTU, from HELLO
	noReply  bool   // the broker honours wire.NoReplyBit (HELLO)
	keep     *ctl   // held for the supervisor's life: the broker sees a client

	mu sync.Mutex
	// owed is signalled when a process's owing connection is free again
	// or its no-reply requests are confirmed (getCtl waits for that).
	owed      *sync.Cond
	procs     map[int]*proc        // by thread group id
	tgids     map[int]int          // thread id -> thread group id
	socks     map[uint64]sockInfo  // what each wrapped socket is
	fill      map[uint64]int       // SO_SNDBUF to restore once a connect is over
	listeners map[uint64]bool      // sockets known to listen
	pktinfo   map[uint64]uint8     // 1: IP_PKTINFO set, 2: IPV6_RECVPKTINFO set
	bare      map[uint64]wire.Addr // connected UDP sockets with bare app ends: their peers
	holders   map[uint64]*holder   // TCP placeholders by inode (placeholder.go)

	nameservers []netip.Addr         // /etc/resolv.conf's, at start (dns.go)
	dnsAsked    map[uint64]wire.Addr // sockets sent to the DNS server instead: the nameserver asked
	done        bool
}

// sockInfo is what the supervisor knows of a wrapped socket.
type sockInfo struct {
	family int
	dgram  bool
}

// proc is one supervised process: its control connections carry its pid,
// so the broker's STATUS shows whose sockets are whose.
type proc struct {
	tgid int
	comm string
	idle []*ctl
	// owing is the connection carrying this process's no-reply requests
	// that the broker has not yet confirmed (nil: none). Its next request
	// goes there, or waits until they are confirmed, so that a process's
	// requests are served in the order it made them (sendNoReply).
	owing *ctl
}

// New connects to the broker serving cfg.Dir, starting one if none runs.
func New(cfg Config) (*Supervisor, error) {
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	s := &Supervisor{cfg: cfg, listener: -1, procs: map[int]*proc{}, tgids: map[int]int{},
		socks: map[uint64]sockInfo{}, fill: map[uint64]int{}, listeners: map[uint64]bool{}, pktinfo: map[uint64]uint8{}, bare: map[uint64]wire.Addr{},
		holders: map[uint64]*holder{}, nameservers: resolvNameservers(), dnsAsked: map[uint64]wire.Addr{}}
	s.owed = sync.NewCond(&s.mu)
	c, err := s.dialStart(os.Getpid(), "swrap")
	if err != nil {
		return nil, err
	}
	s.keep = c
	return s, nil
}

// Close stops serving. Calls still trapped afterwards fail (ENOSYS).
func (s *Supervisor) Close() {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
}

// serve receives notifications until no supervised task is left, each one
// served by a goroutine of its own.
func (s *Supervisor) serve() {
	pfd := []unix.PollFd{{Fd: int32(s.listener), Events: unix.POLLIN}}
	for {
		s.mu.Lock()
		done := s.done
		s.mu.Unlock()
		if done {
			unix.Close(s.listener)
			return
		}
		n, err := unix.Poll(pfd, 500)
		if err == unix.EINTR || n == 0 {
			continue
		}
		if err != nil {
			return
		}
		if pfd[0].Revents&unix.POLLIN == 0 {
			if pfd[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0 {
				return // every supervised task is gone
			}
			continue
		}
		nt := new(notif)
		if err := recvNotif(s.listener, nt); err != nil {
			continue // ENOENT: the caller went away meanwhile
		}
		if quickCall(nt) {
			s.handle(nt)
		} else {
			go s.handle(nt)
		}
	}
}

// quickCall reports whether nt's call is one the broker answers at once and
// the supervisor serves on this loop's goroutine: handing it to a goroutine
// of its own woke another thread, a wake-up per call (Go sets five socket
// options on each connection it makes or accepts). A call that can wait
// (connect, accept, SO_ERROR of a pending connect, a receive) keeps its
// goroutine, so as not to hold the loop for the other threads' calls.
func quickCall(nt *notif) bool {
	switch int(nt.Data.Nr) {
	case unix.SYS_SETSOCKOPT, unix.SYS_GETSOCKNAME, unix.SYS_GETPEERNAME:
		return true
	}
	return false
}

// ---------------------------------------------------------------- broker

// ctl is one control connection.
type ctl struct {
	fd  int
	buf []byte
}

func (s *Supervisor) dial(pid int, comm string) (*ctl, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(s.cfg.Dir, wire.SubDir, wire.CtlSock)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	c := &ctl{fd: fd, buf: make([]byte, wire.MaxMessage)}
	hello := wire.Hello{PID: uint32(pid), Comm: comm, Pcap: s.cfg.Pcap}
	rep, rfd, err := c.roundTrip(wire.OpHello, 0, hello.Encode())
	if rfd >= 0 {
		unix.Close(rfd)
	}
	if err == nil && rep.Err != 0 {
		err = rep.Err
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("HELLO: %w", err)
	}
	hr, err := wire.ParseHelloRep(rep.Body)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	s.mu.Lock()
	s.inst = hr.Instance
	s.mtuVal = hr.MTU
	s.noReply = hr.Features&wire.FeatNoReply != 0
	s.mu.Unlock()
	return c, nil
}

// dialStart is dial that starts a broker when none answers, as the shim
// does: `swrap-broker --on-demand --dir DIR`, detached.
func (s *Supervisor) dialStart(pid int, comm string) (*ctl, error) {
	c, err := s.dial(pid, comm)
	if err == nil {
		return c, nil
	}
	if s.cfg.Broker == "" {
		return nil, fmt.Errorf("supervise: no broker at %s: %w", s.cfg.Dir, err)
	}
	cmd := exec.Command(s.cfg.Broker, "--on-demand", "--dir", s.cfg.Dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LD_PRELOAD=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("supervise: starting %s: %w", s.cfg.Broker, err)
	}
	go cmd.Wait() // reaped when it exits; it is not waited for otherwise
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err = s.dial(pid, comm); err == nil {
			return c, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil, fmt.Errorf("supervise: the broker did not answer at %s: %w", s.cfg.Dir, err)
}

// roundTrip sends one request and reads its reply (and an fd, if one came).
func (c *ctl) roundTrip(op wire.Op, sock uint64, body []byte) (wire.Reply, int, error) {
	if err := c.send(op, sock, body); err != nil {
		return wire.Reply{}, -1, err
	}
	return c.recv()
}

// send sends one request.
func (c *ctl) send(op wire.Op, sock uint64, body []byte) error {
	msg := wire.AppendRequest(nil, op, sock, body)
	for {
		_, err := unix.Write(c.fd, msg)
		if err == unix.EINTR {
			continue
		}
		return err
	}
}

// recv reads one reply (and an fd, if one came).
func (c *ctl) recv() (wire.Reply, int, error) {
	return ctlmsg.RecvReply(c.fd, c.buf)
}

// recvFor reads the reply to c's request for process tgid. A SERVED
// message before it (c carried no-reply requests) confirms them and is
// skipped, or, with once (callWaiting reads one message at a time),
// returned as served=true.
func (s *Supervisor) recvFor(tgid int, c *ctl, once bool) (rep wire.Reply, fd int, served bool, err error) {
	for {
		rep, fd, err = c.recv()
		if err != nil {
			s.dropCtl(tgid, c)
			return rep, -1, false, err
		}
		// A reply confirms too: the broker serves a connection in order.
		s.confirmed(tgid, c)
		if rep.Op != wire.OpServed {
			return rep, fd, false, nil
		}
		if fd >= 0 {
			unix.Close(fd)
		}
		if once {
			return rep, -1, true, nil
		}
	}
}

// confirmed records that the broker has served c's no-reply requests, if
// it carried the process's (proc.owing).
func (s *Supervisor) confirmed(tgid int, c *ctl) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.procs[tgid]; p != nil && p.owing == c {
		p.owing = nil
		s.owed.Broadcast()
	}
}

// dropCtl closes c, which is unusable (the broker is gone, or a reply is
// still owed on it).
func (s *Supervisor) dropCtl(tgid int, c *ctl) {
	unix.Close(c.fd)
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.procs[tgid]; p != nil && p.owing == c {
		// What it carried is served or lost with the broker; nothing
		// more comes on it to wait for.
		p.owing = nil
		s.owed.Broadcast()
	}
}

// call makes one request for process tgid. An errno reply is returned as
// rep.Err with a nil error; a broker that is gone is ENETDOWN.
func (s *Supervisor) call(tgid int, op wire.Op, sock uint64, body []byte) (wire.Reply, int, syscall.Errno) {
	c, err := s.getCtl(tgid)
	if err != nil {
		return wire.Reply{}, -1, syscall.ENETDOWN
	}
	if err := c.send(op, sock, body); err != nil {
		s.dropCtl(tgid, c)
		return wire.Reply{}, -1, syscall.ENETDOWN
	}
	rep, fd, _, err := s.recvFor(tgid, c, false)
	if debug && err == nil && rep.Err != 0 {
		fmt.Fprintf(os.Stderr, "swrap supervise: pid %d %v sock %x: %v\n", tgid, op, sock, rep.Err)
	}
	if err != nil {
		return wire.Reply{}, -1, syscall.ENETDOWN
	}
	s.putCtl(tgid, c)
	if rep.Err != 0 && fd >= 0 {
		unix.Close(fd)
		fd = -1
	}
	return rep, fd, rep.Err
}

// callWaiting is call for a request the broker answers only when it is
// done (a blocking connect): while the reply is owed, ready is asked every
// waitTick whether to go on waiting. When it answers an errno (a signal is
// due, the caller is gone), the connection, whose reply is still owed, is
// dropped and that errno returned; the broker goes on with the request, as
// Linux goes on with an interrupted connect.
func (s *Supervisor) callWaiting(tgid int, op wire.Op, sock uint64, body []byte, ready func() syscall.Errno) (wire.Reply, syscall.Errno) {
	c, err := s.getCtl(tgid)
	if err != nil {
		return wire.Reply{}, syscall.ENETDOWN
	}
	if err := c.send(op, sock, body); err != nil {
		s.dropCtl(tgid, c)
		return wire.Reply{}, syscall.ENETDOWN
	}
	var rep wire.Reply
	var fd int
	for {
		p := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}}
		if n, err := unix.Poll(p, waitTick); err == nil && n > 0 {
			// The reply, or a SERVED before it, which comes at once.
			r, rfd, served, err := s.recvFor(tgid, c, true)
			if err != nil {
				return wire.Reply{}, syscall.ENETDOWN
			}
			if !served {
				rep, fd = r, rfd
				break
			}
			continue
		}
		if en := ready(); en != 0 {
			s.dropCtl(tgid, c)
			return wire.Reply{}, en
		}
	}
	s.putCtl(tgid, c)
	if fd >= 0 {
		unix.Close(fd)
	}
	return rep, rep.Err
}

// sendNoReply sends a request of process tgid that gets no reply
// (wire.NoReplyBit): served in its place in the process's order, its
// result is not waited for. Only for requests Linux cannot refuse.
func (s *Supervisor) sendNoReply(tgid int, op wire.Op, sock uint64, body []byte) syscall.Errno {
	c, err := s.getCtl(tgid)
	if err != nil {
		return syscall.ENETDOWN
	}
	if err := c.send(op|wire.NoReplyBit, sock, body); err != nil {
		s.dropCtl(tgid, c)
		return syscall.ENETDOWN
	}
	s.mu.Lock()
	if p := s.procs[tgid]; p != nil {
		p.owing = c // getCtl gave c, the owing one if there was one
	}
	s.mu.Unlock()
	s.putCtl(tgid, c)
	return 0
}

func (s *Supervisor) getCtl(tgid int) (*ctl, error) {
	s.mu.Lock()
	p := s.procLocked(tgid)
	for p.owing != nil {
		// The process's earlier no-reply requests are on p.owing: go on
		// there, or wait until the broker has confirmed them (its holder
		// reads the SERVED that comes first for its own request).
		for i, c := range p.idle {
			if c == p.owing {
				p.idle = append(p.idle[:i], p.idle[i+1:]...)
				s.mu.Unlock()
				return c, nil
			}
		}
		s.owed.Wait()
		p = s.procLocked(tgid)
	}
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		s.mu.Unlock()
		return c, nil
	}
	comm := p.comm
	s.mu.Unlock()
	return s.dialStart(tgid, comm)
}

// procLocked returns process tgid's entry, made if new.
func (s *Supervisor) procLocked(tgid int) *proc {
	p := s.procs[tgid]
	if p == nil {
		p = &proc{tgid: tgid, comm: procComm(tgid)}
		s.procs[tgid] = p
		if len(s.procs) > 256 {
			s.reapLocked()
		}
	}
	return p
}

func (s *Supervisor) putCtl(tgid int, c *ctl) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.procs[tgid]
	if p != nil && p.owing == c {
		// Kept whatever the pool holds: a waiter wants this one.
		if len(p.idle) >= 4 {
			unix.Close(p.idle[0].fd)
			p.idle = p.idle[1:]
		}
		p.idle = append(p.idle, c)
		s.owed.Broadcast()
		return
	}
	if p != nil && len(p.idle) < 4 {
		p.idle = append(p.idle, c)
		return
	}
	unix.Close(c.fd)
}

// reapLocked forgets processes that have exited.
func (s *Supervisor) reapLocked() {
	for tgid, p := range s.procs {
		if unix.Kill(tgid, 0) == unix.ESRCH {
			for _, c := range p.idle {
				unix.Close(c.fd)
			}
			delete(s.procs, tgid)
		}
	}
	for tid, tgid := range s.tgids {
		if unix.Kill(tgid, 0) == unix.ESRCH {
			delete(s.tgids, tid)
		}
	}
}

// ------------------------------------------------------------- processes

func procComm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// tgidOf returns the process of thread tid.
func (s *Supervisor) tgidOf(tid int) int {
	s.mu.Lock()
	g, ok := s.tgids[tid]
	s.mu.Unlock()
	if ok {
		return g
	}
	g = tid
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", tid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Tgid:"); ok {
				if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
					g = n
				}
				break
			}
		}
	}
	s.mu.Lock()
	s.tgids[tid] = g
	s.mu.Unlock()
	return g
}

// ifaceOf reads SOCKET_WRAPPER_DEFAULT_IFACE from the environment process
// pid started with (1 when unset or invalid, as the shim does).
func ifaceOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return 1
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("SOCKET_WRAPPER_DEFAULT_IFACE=")); ok {
			if n, err := strconv.Atoi(string(v)); err == nil && addrplan.ValidHost(n) {
				return n
			}
		}
	}
	return 1
}

// mtu is the broker's MTU (the emulated interface's).
func (s *Supervisor) mtu() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mtuVal
}

// envOf reads variable key of the environment process pid started with.
func envOf(pid int, key string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return ""
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(key+"=")); ok {
			return string(v)
		}
	}
	return ""
}

// planOf is the address plan of process pid (SOCKET_WRAPPER_IPV4_NETWORK).
func planOf(pid int) addrplan.Plan {
	p, err := addrplan.New(envOf(pid, "SOCKET_WRAPPER_IPV4_NETWORK"))
	if err != nil {
		return addrplan.Default
	}
	return p
}

// pidfdThread is PIDFD_THREAD: a pidfd for a thread, not only a leader.
const pidfdThread = unix.O_EXCL

// takeFD returns a copy of thread tid's descriptor fd. (A pidfd kept per
// thread instead of one opened per call saved no measurable time: two
// system calls of a trapped call's ten, bench/PROFILE.md.)
func takeFD(tid, fd int) (int, error) {
	pidfd, err := unix.PidfdOpen(tid, pidfdThread)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pidfd)
	return unix.PidfdGetfd(pidfd, fd, 0)
}

// errUnwrapped marks a descriptor that is not a wrapped socket.
var errUnwrapped = errors.New("not a wrapped socket")

// classify says whether our copy fd is a wrapped socket of our broker,
// and which.
func (s *Supervisor) classify(fd int) (uint64, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, errUnwrapped
	}
	su, ok := sa.(*unix.SockaddrUnix)
	if !ok {
		return 0, errUnwrapped
	}
	inst, id, ok := wire.ParseSocketName(su.Name)
	s.mu.Lock()
	mine := s.inst
	s.mu.Unlock()
	if !ok || inst != mine {
		return 0, errUnwrapped
	}
	return id, nil
}

// info returns what socket id is, asking the broker (STAT) once.
func (s *Supervisor) info(tgid int, id uint64) (sockInfo, syscall.Errno) {
	s.mu.Lock()
	si, ok := s.socks[id]
	s.mu.Unlock()
	if ok {
		return si, 0
	}
	rep, _, en := s.call(tgid, wire.OpStat, id, nil)
	if en != 0 {
		return sockInfo{}, en
	}
	st, err := wire.ParseStatRep(rep.Body)
	if err != nil {
		return sockInfo{}, syscall.EPROTO
	}
	si = sockInfo{family: int(st.Family), dgram: st.Type == unix.SOCK_DGRAM}
	s.mu.Lock()
	s.socks[id] = si
	s.mu.Unlock()
	return si, 0
}
