package fabric

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swrap/swrap/addrplan"
	"github.com/swrap/swrap/netem"
	"github.com/swrap/swrap/stack"
	"github.com/swrap/swrap/tap"
)

const (
	// DefaultMTU is the fabric MTU when Config.MTU is 0. Per-packet costs
	// dominate netstack throughput, so the largest IP packet is the fastest:
	// ≈10 Gbit/s at 64 KiB against ≈1 Gbit/s at 1500.
	DefaultMTU = 65535

	// DefaultSocketBuffer is SO_SNDBUF/SO_RCVBUF of fabric sockets when
	// Config.SocketBuffer is 0: a few 64 KiB frames in flight per peer.
	DefaultSocketBuffer = 4 << 20

	// RouterID is the host id whose addresses (127.0.0.254 and
	// fd00::5357:5ffe in the default plan) the fabric's ICMP errors come
	// from, as from a router. No host can have it (ids end at
	// addrplan.MaxHost), and it cannot be the sender's own address, which
	// netstack would drop as a martian.
	RouterID = 254
)

// Config configures a Fabric.
type Config struct {
	// Dir is the directory of the hosts' receive sockets, created 0700 if
	// missing; host N's socket is Dir/N.
	Dir string
	// MTU is the fabric MTU; 0 means DefaultMTU.
	MTU uint32
	// Plan is the address plan. The zero Plan means addrplan.Default.
	Plan addrplan.Plan
	// Capture, if set, is called once for every frame that crosses the
	// fabric and every ICMP error the fabric makes up. It must not block
	// and must copy what it keeps (pcap.Writer.Frame does both).
	Capture func(ts time.Time, parts [][]byte)
	// LinkCapture, if set, is called instead of Capture for the frames of
	// links with conditions, with what the link did to each (a delay, a
	// duplicate, a drop: netem.Config.Capture). Unset, Capture gets the
	// frames links send and none of those they drop.
	LinkCapture func(ts time.Time, parts [][]byte, n netem.Note)
	// SocketBuffer is SO_SNDBUF and SO_RCVBUF for the fabric sockets; 0
	// means DefaultSocketBuffer. It is raised to at least MTU: a unix
	// datagram larger than the sender's buffer fails with EMSGSIZE, so a
	// smaller buffer would silently lose every full-sized frame. Tests make
	// it tiny to exercise back-pressure.
	SocketBuffer int
	// NeedChecksums, if set, tells whether frames must carry transport
	// checksums now (tap.Config.NeedChecksums): it must answer true
	// whenever Capture keeps frames. Unset means always, and so does
	// Sockets: frames on a socket may be read by another process.
	NeedChecksums func() bool
	// VerifyChecksums makes hosts verify checksums on RX. Off by default:
	// every frame comes from one of our stacks, which compute them on TX.
	VerifyChecksums bool
	// Links are the network conditions to start with (package netem);
	// SetLinks changes them later.
	Links netem.Rules
	// Events, if set, is told of every frame a link with conditions drops,
	// duplicates, reorders or delays. It must not block.
	Events func(netem.Event)
	// Sockets makes frames between hosts of this fabric cross the hosts'
	// unix sockets, as frames from another process must. By default they
	// are handed over in memory (tap.LocalPort): same routing, conditions,
	// capture and counters, without two system calls and two goroutine
	// hand-offs per frame.
	Sockets bool
	// AckDelay is how long a host may hold a pure ACK of an interactive
	// TCP connection for its answer to carry it (tap.Config.AckDelay); 0
	// means tap.DefaultAckDelay, negative sends every ACK at once.
	AckDelay time.Duration
	// MaxTimeWait bounds each host's TCP connections in TIME_WAIT
	// (stack.Config.MaxTimeWait): 0 means stack.DefaultMaxTimeWait,
	// negative unbounded.
	MaxTimeWait int
}

// Fabric is the set of hosts and the sockets between them. Its methods are
// safe for concurrent use.
type Fabric struct {
	cfg Config

	// nodes[id] is host id, nil until created. Read without a lock on the
	// TX path (routing); written with mu held.
	// addrplan.ServiceHost is the broker's services' node (its DNS
	// server): reachable like a host, but never a host of Hosts or Lookup.
	nodes [addrplan.ServiceHost + 1]atomic.Pointer[node]

	dropped atomic.Uint64 // frames to outside the network

	mu sync.Mutex
	// closed is set by Close; guarded by mu, which also serializes host
	// creation so that each host is created once.
	closed bool

	// links is the table of shaped ports (links.go), nil while no link has
	// conditions; read without a lock on the TX path.
	links atomic.Pointer[linkTable]
	// linkMu guards rules and linksClosed; it is taken after mu, never
	// before.
	linkMu      sync.Mutex
	rules       map[netem.Selector]*netem.Link
	linksClosed bool
}

// node is one host and the socket other hosts reach it by.
type node struct {
	host *stack.Host
	path string
	// port is connected to the host's receive socket. All senders share
	// it: a full receiver back-pressures exactly those who send to it.
	port *tap.Port
	// local hands frames to the host in memory (tap.LocalPort).
	local *tap.Port
}

// needChecksums is the hosts' tap.Config.NeedChecksums.
func (f *Fabric) needChecksums() func() bool {
	if f.cfg.Sockets {
		return nil
	}
	return f.cfg.NeedChecksums
}

// in returns the Port frames from other hosts of this fabric take to n.
func (f *Fabric) in(n *node) *tap.Port {
	if f.cfg.Sockets {
		return n.port
	}
	return n.local
}

// New creates the fabric and its socket directory. Hosts come later, on
// first use.
func New(cfg Config) (*Fabric, error) {
	if cfg.Dir == "" {
		return nil, errors.New("fabric: Config.Dir is required")
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.Plan == (addrplan.Plan{}) {
		cfg.Plan = addrplan.Default
	}
	if cfg.SocketBuffer == 0 {
		cfg.SocketBuffer = DefaultSocketBuffer
	}
	cfg.SocketBuffer = max(cfg.SocketBuffer, int(cfg.MTU))
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("fabric: %w", err)
	}
	f := &Fabric{cfg: cfg}
	f.SetLinks(cfg.Links)
	return f, nil
}

// Plan returns the fabric's address plan.
func (f *Fabric) Plan() addrplan.Plan { return f.cfg.Plan }

// MTU returns the fabric MTU.
func (f *Fabric) MTU() uint32 { return f.cfg.MTU }

// Dropped returns how many frames were dropped for going outside the
// network (the broker normally refuses those earlier with ENETUNREACH).
func (f *Fabric) Dropped() uint64 { return f.dropped.Load() }

// Host returns host id, creating it on first use.
func (f *Fabric) Host(id int) (*stack.Host, error) {
	if !addrplan.ValidHost(id) && id != addrplan.ServiceHost {
		return nil, fmt.Errorf("fabric: host id %d out of range 1..%d", id, addrplan.MaxHost)
	}
	if n := f.nodes[id].Load(); n != nil {
		return n.host, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, errors.New("fabric: closed")
	}
	if n := f.nodes[id].Load(); n != nil {
		return n.host, nil
	}
	n, err := f.newNode(id)
	if err != nil {
		return nil, fmt.Errorf("fabric: host %d: %w", id, err)
	}
	f.nodes[id].Store(n)
	// Conditions that name this host apply from its first frame on.
	f.rebuildLinks()
	return n.host, nil
}

// newNode creates host id's sockets and stack. Called with mu held.
func (f *Fabric) newNode(id int) (*node, error) {
	path := filepath.Join(f.cfg.Dir, strconv.Itoa(id))
	// A socket file left by a crashed broker would make bind fail; the
	// directory is ours, so it is stale.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	rx, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	if err := f.sizeBuffers(rx); err != nil {
		rx.Close()
		os.Remove(path)
		return nil, err
	}
	tx, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		rx.Close()
		os.Remove(path)
		return nil, err
	}
	port, err := tap.NewPort(tx)
	if err == nil {
		err = f.sizeBuffers(tx)
	}
	if err != nil {
		tx.Close()
		rx.Close()
		os.Remove(path)
		return nil, err
	}
	p := f.cfg.Plan
	h, err := stack.New(stack.Config{
		ID:   id,
		Plan: p,
		Link: tap.Config{
			Conn:           rx,
			MTU:            f.cfg.MTU,
			Route:          f.router(id),
			Capture:        f.cfg.Capture,
			ICMPSource4:    p.IPv4(RouterID),
			ICMPSource6:    p.IPv6(RouterID),
			TrustChecksums: !f.cfg.VerifyChecksums,
			NeedChecksums:  f.needChecksums(),
			AckDelay:       f.ackDelay(),
		},
		MaxTimeWait: f.cfg.MaxTimeWait,
	})
	if err != nil { // stack.New closed rx
		port.Close()
		os.Remove(path)
		return nil, err
	}
	return &node{host: h, path: path, port: port, local: tap.LocalPort(h.Link)}, nil
}

// ackDelay is the hosts' tap.Config.AckDelay.
func (f *Fabric) ackDelay() time.Duration {
	switch d := f.cfg.AckDelay; {
	case d == 0:
		return tap.DefaultAckDelay
	case d < 0:
		return 0
	default:
		return d
	}
}

// sizeBuffers sets SO_SNDBUF and SO_RCVBUF, with the FORCE variants first
// so that root is not capped by net.core.[rw]mem_max.
func (f *Fabric) sizeBuffers(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		for _, o := range [][2]int{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], f.cfg.SocketBuffer) == nil {
				continue
			}
			if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], f.cfg.SocketBuffer); e != nil {
				serr = os.NewSyscallError("setsockopt", e)
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// router returns host src's route function.
func (f *Fabric) router(src int) tap.RouteFunc {
	plan := f.cfg.Plan
	return func(dst netip.Addr, ports []*tap.Port) ([]*tap.Port, tap.Verdict) {
		id, ok := plan.Host(dst)
		if !ok && plan.IsService(dst) {
			id, ok = addrplan.ServiceHost, true
		}
		if ok {
			if n := f.nodes[id].Load(); n != nil {
				if p := f.shaped(src, id); p != nil {
					return append(ports, p), tap.Deliver
				}
				return append(ports, f.in(n)), tap.Deliver
			}
			return ports, tap.NoHost
		}
		if plan.IsBroadcast(dst) || dst.IsMulticast() {
			// The sender's stack delivers its own copy (netstack loops
			// broadcast and subnet broadcast back), so it is skipped:
			// a listener on the sending host hears it once, as on Linux.
			for id := 1; id <= addrplan.MaxHost; id++ {
				if n := f.nodes[id].Load(); n != nil && id != src {
					if p := f.shaped(src, id); p != nil {
						ports = append(ports, p)
					} else {
						ports = append(ports, f.in(n))
					}
				}
			}
			return ports, tap.Deliver
		}
		if plan.InNetwork(dst) {
			return ports, tap.NoHost
		}
		f.dropped.Add(1)
		return ports, tap.Drop
	}
}

// Lookup returns host id, or nil if it has not been created.
func (f *Fabric) Lookup(id int) *stack.Host {
	if !addrplan.ValidHost(id) {
		return nil
	}
	if n := f.nodes[id].Load(); n != nil {
		return n.host
	}
	return nil
}

// Hosts returns the hosts created so far, by id.
func (f *Fabric) Hosts() []*stack.Host {
	var hs []*stack.Host
	for id := 1; id <= addrplan.MaxHost; id++ {
		if n := f.nodes[id].Load(); n != nil {
			hs = append(hs, n.host)
		}
	}
	return hs
}

// Close closes every host and socket and removes the socket files. It waits
// for all goroutines of the hosts. Close the hosts' connections first for
// clean FINs: what is still open is aborted.
func (f *Fabric) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	var nodes []*node
	for id := range f.nodes {
		if n := f.nodes[id].Load(); n != nil {
			nodes = append(nodes, n)
		}
	}
	f.mu.Unlock()

	// Ports first: a host's TX may be parked on a full peer, and
	// closing its stack waits for that TX. Frames sent from now on are
	// dropped (RSTs of aborted connections among them).
	var errs []error
	for _, n := range nodes {
		if err := n.port.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	// A link parked on a full peer has returned now that the ports are
	// closed; what the links still hold is lost, as on a cut cable.
	f.closeLinks()
	for _, n := range nodes {
		n.host.Close()
		if err := os.Remove(n.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for id := range f.nodes {
		f.nodes[id].Store(nil)
	}
	return errors.Join(errs...)
}
