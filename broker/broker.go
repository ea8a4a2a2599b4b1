package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swrap/swrap/addrplan"
	"github.com/swrap/swrap/fabric"
	"github.com/swrap/swrap/names"
	"github.com/swrap/swrap/netem"
	"github.com/swrap/swrap/pcap"
	"github.com/swrap/swrap/wire"
)

// Config is everything a broker is started with. cmd/swrap-broker fills it
// from flags and the SOCKET_WRAPPER_* environment.
type Config struct {
	// Dir is SOCKET_WRAPPER_DIR; the broker's files go in Dir/swrap.
	Dir string
	// Plan is the emulated address plan (SOCKET_WRAPPER_IPV4_NETWORK).
	Plan addrplan.Plan
	// MTU is the fabric's IP MTU (SOCKET_WRAPPER_MTU); 0 means 65535.
	MTU uint32
	// PcapFile, if set, receives every frame (SOCKET_WRAPPER_PCAP_FILE).
	// Programs may name further files in HELLO; each gets every frame from
	// then on.
	PcapFile string
	// Snaplen bounds the bytes kept per captured frame; 0 keeps all.
	Snaplen int
	// PcapFormat "pcapng" makes every capture file pcapng (SWRAP_PCAP_FORMAT);
	// otherwise a file is pcapng if its name ends in .pcapng, classic pcap
	// if not.
	PcapFormat string
	// PcapDir, if set, gets one pcapng file per host, with every frame the
	// host sends or receives (SWRAP_PCAP_DIR).
	PcapDir string
	// IdleTimeout, if non-zero, makes Serve return once no program has
	// been connected and no socket has existed for that long (on-demand
	// mode).
	IdleTimeout time.Duration
	// MaxSockets bounds the live sockets; SOCKET beyond it gets ENFILE.
	// 0 means 262140, socket_wrapper's ceiling.
	MaxSockets int
	// Log receives the broker's log; nil discards it.
	Log *slog.Logger
	// Links are the network conditions to start with (SWRAP_NETEM);
	// SETLINK changes them at run time.
	Links netem.Rules
	// FabricSockets makes frames between hosts cross the hosts' unix
	// sockets instead of being handed over in memory (fabric.Config.Sockets):
	// slower, and the path a stack in another process would take.
	FabricSockets bool
	// AckDelay is how long a pure ACK of an interactive TCP connection may
	// wait for the answer to carry it (fabric.Config.AckDelay): 0 means
	// the default, negative never holds an ACK (SWRAP_ACK_DELAY).
	AckDelay time.Duration
	// MaxTimeWait bounds each host's TCP connections in TIME_WAIT, as
	// Linux's net.ipv4.tcp_max_tw_buckets (fabric.Config.MaxTimeWait): 0
	// means the default, negative unbounded (SWRAP_TCP_MAX_TW).
	MaxTimeWait int
	// Names is the name table (package names) served to programs and by
	// the DNS server; nil means the default names only.
	Names *names.Table
}

// Broker serves one SOCKET_WRAPPER_DIR.
type Broker struct {
	cfg      Config
	dir      string // cfg.Dir/swrap
	instance string // hex tag in app ends' names
	start    time.Time
	log      *slog.Logger
	fab      *fabric.Fabric
	ln       *net.UnixListener
	lock     *os.File // holds the directory's flock until the process exits

	captures atomic.Pointer[[]*pcap.Writer] // read on every frame
	capMu    sync.Mutex                     // serialises changes to captures
	events   *eventLog                      // PcapFile.events, if PcapFile is set

	// capOrder makes a frame reach every capture before the next one
	// does, while there are several: hosts send on their own goroutines,
	// and each file must get the frames in one order.
	capOrder sync.Mutex

	mu       sync.Mutex       // guards the fields below
	socks    map[uint64]*sock // live sockets by id
	nextID   uint64
	ctl      map[*ctlConn]struct{} // live control connections
	idleFrom time.Time             // when the last socket or connection went away
	closing  bool

	wg sync.WaitGroup // control connections and session goroutines

	parkOnce sync.Once
	park     *parker // the epoll set of parked sessions (park.go)

	names *names.Table  // cfg.Names or the defaults
	dns   *names.Server // the DNS server on the service host (names.go)
}

// New prepares a broker for cfg.Dir: it makes Dir/swrap (0700), takes the
// lock that makes it the only broker of that directory, and listens on the
// control socket. It returns ErrLocked if another broker already serves
// the directory.
func New(cfg Config) (*Broker, error) {
	if cfg.MTU == 0 {
		cfg.MTU = 65535
	}
	if cfg.MaxSockets == 0 {
		cfg.MaxSockets = 262140
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	var tag [8]byte
	if _, err := rand.Read(tag[:]); err != nil {
		return nil, err
	}
	b := &Broker{
		cfg:      cfg,
		dir:      filepath.Join(cfg.Dir, wire.SubDir),
		instance: hex.EncodeToString(tag[:]),
		start:    time.Now(),
		log:      cfg.Log,
		socks:    make(map[uint64]*sock),
		ctl:      make(map[*ctlConn]struct{}),
		idleFrom: time.Now(),
	}
	b.captures.Store(&[]*pcap.Writer{})
	lf, err := lock(b.dir)
	if err != nil {
		return nil, err
	}
	b.lock = lf
	if cfg.PcapFile != "" {
		if err := b.addCapture(cfg.PcapFile); err != nil {
			return nil, err
		}
	}
	if cfg.PcapDir != "" {
		w, err := pcap.OpenDir(cfg.PcapDir, pcap.Options{Snaplen: cfg.Snaplen, Namer: b.namer()})
		if err != nil {
			b.closeCaptures()
			return nil, err
		}
		b.addWriter(w)
	}
	fcfg := fabric.Config{
		Dir:         filepath.Join(b.dir, wire.HostDir),
		MTU:         cfg.MTU,
		Plan:        cfg.Plan,
		Capture:     b.captureFrame,
		LinkCapture: b.linkCaptureFrame,
		// Checksums only while a capture is written: no one else reads
		// them (hosts trust each other's frames).
		NeedChecksums: b.capturing,
		Links:         cfg.Links,
		Sockets:       cfg.FabricSockets,
		AckDelay:      cfg.AckDelay,
		MaxTimeWait:   cfg.MaxTimeWait,
	}
	if cfg.PcapFile != "" {
		// The frames that links drop are not in the capture; their
		// record goes next to it.
		if b.events, err = openEventLog(cfg.PcapFile + ".events"); err != nil {
			b.closeCaptures()
			return nil, err
		}
		fcfg.Events = b.events.event
	}
	fab, err := fabric.New(fcfg)
	if err != nil {
		b.closeCaptures()
		b.closeEvents()
		return nil, fmt.Errorf("fabric: %w", err)
	}
	b.fab = fab
	if b.names = cfg.Names; b.names == nil {
		b.names = names.New(cfg.Plan)
	}
	if err := b.startDNS(); err != nil {
		fab.Close()
		b.closeCaptures()
		b.closeEvents()
		return nil, fmt.Errorf("dns server: %w", err)
	}
	sockPath := filepath.Join(b.dir, wire.CtlSock)
	os.Remove(sockPath) // a stale socket of a dead broker; we hold the lock
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: sockPath, Net: "unixpacket"})
	if err != nil {
		fab.Close()
		b.closeCaptures()
		b.closeEvents()
		return nil, err
	}
	b.ln = ln
	return b, nil
}

// ErrLocked means another live broker holds the directory's lock.
var ErrLocked = errors.New("another broker serves this directory")

// lock makes dir (0700, owned by us) and takes its broker.lock with flock,
// so that of many brokers started at once exactly one serves; it writes our
// pid into the file for tools and tests.
func lock(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return nil, fmt.Errorf("%s belongs to uid %d, not to us", dir, st.Uid)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, wire.LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, err
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return f, nil
}

// Serve accepts control connections until ctx is done or, in on-demand
// mode, the broker has been idle for Config.IdleTimeout. It then shuts
// down cleanly: connections are closed with FINs, programs see their
// sockets end, and the capture is flushed.
func (b *Broker) Serve(ctx context.Context) error {
	b.log.Info("serving", "dir", b.cfg.Dir, "pid", os.Getpid(), "mtu", b.cfg.MTU, "fabric", b.fabricMode(), "instance", b.instance)
	go func() {
		<-ctx.Done()
		b.ln.Close()
	}()
	if b.cfg.IdleTimeout > 0 {
		go b.idleWatch(ctx)
	}
	go b.memWatch(ctx)
	b.parkerOf() // at start: its goroutine and fd are part of the idle baseline
	for {
		c, err := b.ln.AcceptUnix()
		if err != nil {
			break
		}
		if !b.peerAllowed(c) {
			go refuse(c)
			continue
		}
		if !b.addCtl(c) {
			c.Close()
		}
	}
	b.shutdown()
	return nil
}

// addCtl serves c as a control connection (accepted on broker.sock, or made
// for NEWCTL), unless the broker is shutting down: a connection added after
// shutdown took its list would never be closed, and shutdown would wait for
// it for ever.
func (b *Broker) addCtl(c *net.UnixConn) bool {
	cc := &ctlConn{b: b, c: c}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return false
	}
	b.ctl[cc] = struct{}{}
	b.wg.Add(1)
	go cc.serve()
	return true
}

// refuse answers the first request of a refused connection (its HELLO)
// with EACCES and closes it, so that the shim can tell "not allowed" from
// "broker gone" (a bare close reads as ECONNRESET) and say so. It waits at
// most a second for that request.
func refuse(c *net.UnixConn) {
	defer c.Close()
	buf := make([]byte, wire.MaxMessage)
	c.SetReadDeadline(time.Now().Add(time.Second))
	n, _, _, _, err := c.ReadMsgUnix(buf, nil)
	if err != nil {
		return
	}
	var op wire.Op
	if req, err := wire.ParseRequest(buf[:n]); err == nil {
		op = req.Op
	}
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write(wire.AppendReply(nil, op, syscall.EACCES, nil))
}

// idleWatch closes the listener once nothing has used the broker for the
// idle timeout.
func (b *Broker) idleWatch(ctx context.Context) {
	t := time.NewTicker(b.cfg.IdleTimeout / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.mu.Lock()
		idle := len(b.socks) == 0 && len(b.ctl) == 0 && time.Since(b.idleFrom) >= b.cfg.IdleTimeout
		b.mu.Unlock()
		if _, err := os.Stat(filepath.Join(b.dir, wire.CtlSock)); err != nil {
			// Our directory (or socket) was removed: nobody can reach us.
			b.log.Info("control socket gone; exiting", "err", err)
			b.ln.Close()
			return
		}
		if idle {
			b.log.Info("idle; exiting", "after", b.cfg.IdleTimeout)
			b.ln.Close()
			return
		}
	}
}

// peerAllowed admits only processes of our own uid (SO_PEERCRED); the 0700
// directory already keeps others out, this is the second lock. A wrapped
// process that has since changed uid does not come here: it gets new
// connections with NEWCTL on one it already holds (control.go).
func (b *Broker) peerAllowed(c *net.UnixConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err != nil {
		b.log.Warn("refused control connection: no peer credentials", "err", err)
		return false
	}
	if int(cred.Uid) != os.Getuid() {
		b.log.Warn("refused control connection: the peer's uid is not the broker's, and a process "+
			"of the wrapped tree that changed uid would have asked on a connection it holds (NEWCTL)",
			"peer_pid", cred.Pid, "peer_uid", cred.Uid, "peer_gid", cred.Gid, "broker_uid", os.Getuid())
		return false
	}
	return true
}

// shutdown ends everything: sockets first, so that their connections close
// with FINs that still cross the fabric and reach the capture, then the
// control connections, the fabric and the capture.
func (b *Broker) shutdown() {
	b.mu.Lock()
	b.closing = true
	socks := make([]*sock, 0, len(b.socks))
	for _, s := range b.socks {
		socks = append(socks, s)
	}
	ctls := make([]*ctlConn, 0, len(b.ctl))
	for c := range b.ctl {
		ctls = append(ctls, c)
	}
	b.mu.Unlock()
	for _, s := range socks {
		s.close()
	}
	// Let the FINs and their ACKs cross before the stacks go away.
	b.waitQuiet(500 * time.Millisecond)
	for _, c := range ctls {
		c.c.Close()
	}
	b.wg.Wait()
	b.closeParker()
	b.dns.Close()
	// The capture ends here: tearing the stacks down aborts what is left
	// (TIME-WAIT endpoints answer with RSTs), which no network would show.
	b.closeCaptures()
	b.fab.Close()
	b.closeEvents() // after the fabric: its links report no more events
	os.Remove(filepath.Join(b.dir, wire.CtlSock))
	b.log.Info("stopped")
	// The lock goes last: a new broker may start as soon as it is free.
	b.lock.Close()
}

// waitQuiet waits until no host has sent a frame for 50 ms, or for max.
func (b *Broker) waitQuiet(max time.Duration) {
	deadline := time.Now().Add(max)
	last := b.txFrames()
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		n := b.txFrames()
		if n == last {
			return
		}
		last = n
	}
}

func (b *Broker) txFrames() uint64 {
	var n uint64
	for _, h := range b.fab.Hosts() {
		n += h.LinkStats().TxFrames
	}
	return n
}

// captureFrame hands a frame that crossed the fabric to every capture file.
// It is called on the packet path, so it only queues (pcap.Writer.Frame
// never blocks).
func (b *Broker) captureFrame(ts time.Time, parts [][]byte) {
	ws := *b.captures.Load()
	if len(ws) > 1 {
		b.capOrder.Lock()
		defer b.capOrder.Unlock()
	}
	for _, w := range ws {
		w.Frame(ts, parts)
	}
}

// capturing tells whether any capture file is being written.
func (b *Broker) capturing() bool { return len(*b.captures.Load()) > 0 }

// addCapture starts writing every frame to path, unless it already does.
func (b *Broker) addCapture(path string) error {
	b.capMu.Lock()
	defer b.capMu.Unlock()
	cur := *b.captures.Load()
	for _, w := range cur {
		if w.Path() == path {
			return nil
		}
	}
	w, err := b.openCapture(path)
	if err != nil {
		return err
	}
	b.log.Info("capturing", "file", path, "format", w.Kind())
	next := append(append([]*pcap.Writer{}, cur...), w)
	b.captures.Store(&next)
	return nil
}

func (b *Broker) closeEvents() {
	if b.events != nil {
		b.events.close()
		if n := b.events.lost.Load(); n > 0 {
			// Never silently incomplete: say how many records are missing.
			b.log.Warn("network event log incomplete", "lost_records", n)
		}
		b.events = nil
	}
}

func (b *Broker) closeCaptures() {
	b.capMu.Lock()
	defer b.capMu.Unlock()
	// At once: a live stream whose reader does not read holds its Close
	// for a second.
	var wg sync.WaitGroup
	for _, w := range *b.captures.Load() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := w.Close()
			if err != nil && w.Kind() != "live" {
				b.log.Error("capture", "file", w.Path(), "err", err)
			}
			if st := w.Stats(); st.Dropped > 0 {
				b.log.Warn("capture incomplete", "file", w.Path(), "dropped_frames", st.Dropped)
			}
		}()
	}
	wg.Wait()
	b.captures.Store(&[]*pcap.Writer{})
}

// register gives s an id and makes it live; it fails with ENFILE when the
// broker already has Config.MaxSockets sockets.
func (b *Broker) register(s *sock) syscall.Errno {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return syscall.ENETDOWN
	}
	if len(b.socks) >= b.cfg.MaxSockets {
		return syscall.ENFILE
	}
	b.nextID++
	s.id = b.nextID
	b.socks[s.id] = s
	return 0
}

func (b *Broker) unregister(s *sock) {
	b.mu.Lock()
	delete(b.socks, s.id)
	if len(b.socks) == 0 {
		b.idleFrom = time.Now()
	}
	b.mu.Unlock()
}

func (b *Broker) lookup(id uint64) *sock {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.socks[id]
}

// goroutines and openFDs are reported by STATUS so that tests can show that
// a dead client left nothing behind.
func goroutines() int { return runtime.NumGoroutine() }

func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}
