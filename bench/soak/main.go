// Command soak loads one swrap broker for a fixed time with many hosts,
// short-lived connections, UDP flows, packet loss and clients killed with
// SIGKILL, and checks that every surviving transfer arrived intact and that
// the broker returns to its idle footprint afterwards (`make soak`).
//
//	go build -o bin/soak ./bench/soak && bin/soak [-duration 3m] [-hosts 64]
//
// It starts its own broker (bin/swrap-broker --dir TMP --netem RULES), then
// runs itself as worker processes that join the emulated network through
// swrapnet: one server process per host (TCP on port 7000, UDP echo on port
// 7001 of the host's address) and client processes on every host, each
// living a few seconds, which open connections to servers on other hosts,
// make requests of random sizes on them and close them (normally, after a
// half-close, or with a reset), and run UDP request/response flows. Every
// upload and every download carries its SHA-256, checked by the receiver.
// Some links lose 1 % of their frames; a fraction of the client processes
// is killed with SIGKILL at a random moment of its life, mid-transfer.
//
// The broker's RSS, fds, goroutines, threads, control connections and
// sessions (`swrap status --json`, /proc/PID/status, /proc/PID/fd) are
// sampled before the load (idle), with the servers up, every few seconds
// during it, once the clients are gone, and after the servers are gone for
// -settle. It prints a report (Markdown) and writes it with every sample to
// -out/soak-latest.{md,json}; it exits 1 if a transfer was corrupted, a
// surviving client failed, or the broker did not return to its baseline.
//
// Its traffic stays on emulated addresses through the broker.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/swrap/swrap/swrapnet"
)

const (
	tcpPort = 7000
	udpPort = 7001
	hashLen = sha256.Size
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "server":
			serverMain(os.Args[2:])
			return
		case "client":
			clientMain(os.Args[2:])
			return
		}
	}
	os.Exit(masterMain())
}

func fatal(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "soak: "+format+"\n", a...)
	os.Exit(2)
}

func hostAddr(h int) string { return fmt.Sprintf("127.0.0.%d", h) }

// ---------------------------------------------------------------- payloads

// fill writes pseudo-random bytes into b.
func fill(r *mrand.Rand, b []byte) {
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, r.Uint64())
		b = b[8:]
	}
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

// size draws a transfer size: mostly small, sometimes large.
func size(r *mrand.Rand) int {
	switch p := r.IntN(100); {
	case p < 60:
		return 1 + r.IntN(512)
	case p < 90:
		return 512 + r.IntN(16<<10)
	case p < 99:
		return 16<<10 + r.IntN(240<<10)
	default:
		return 256<<10 + r.IntN(1792<<10)
	}
}

// ---------------------------------------------------------------- server

// serverStats are what a server process reports when it is stopped.
type serverStats struct {
	Host        int    `json:"host"`
	Accepted    int64  `json:"accepted"`
	Served      int64  `json:"requests_served"` // requests whose upload verified and whose answer was written
	BytesIn     int64  `json:"bytes_in"`
	BytesOut    int64  `json:"bytes_out"`
	Corrupt     int64  `json:"corrupt"`           // uploads whose hash did not match
	Aborted     int64  `json:"aborted"`           // connections that ended inside a request (killed clients)
	Resets      int64  `json:"resets_at_request"` // connections reset between requests
	ConnsOpen   int64  `json:"conns_open_at_stop"`
	OpenPeers   []int  `json:"open_peers,omitempty"` // the client hosts of those connections
	UDPEchoed   int64  `json:"udp_echoed"`
	AcceptError string `json:"accept_error,omitempty"`
}

func serverMain(args []string) {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	dir := fs.String("dir", "", "")
	host := fs.Int("host", 0, "")
	fs.Parse(args)
	h, err := swrapnet.Join(*dir, *host)
	if err != nil {
		fatal("server %d: %v", *host, err)
	}
	ln, err := h.Listen("tcp", fmt.Sprintf("%s:%d", hostAddr(*host), tcpPort))
	if err != nil {
		fatal("server %d: %v", *host, err)
	}
	pc, err := h.ListenPacket("udp", fmt.Sprintf("%s:%d", hostAddr(*host), udpPort))
	if err != nil {
		fatal("server %d: %v", *host, err)
	}
	st := &serverStats{Host: *host}
	var open atomic.Int64
	var omu sync.Mutex
	openConns := map[net.Conn]bool{}
	var accErr atomic.Value
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				accErr.Store(err.Error())
				return
			}
			atomic.AddInt64(&st.Accepted, 1)
			open.Add(1)
			omu.Lock()
			openConns[c] = true
			omu.Unlock()
			go func() {
				defer open.Add(-1)
				serveConn(c, st)
				omu.Lock()
				delete(openConns, c)
				omu.Unlock()
			}()
		}
	}()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, addr, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if _, err := pc.WriteToUDPAddrPort(buf[:n], addr); err == nil {
				atomic.AddInt64(&st.UDPEchoed, 1)
			}
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	fmt.Println("ready")
	<-sig
	ln.Close()
	pc.Close()
	st.ConnsOpen = open.Load()
	omu.Lock()
	for c := range openConns {
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
			st.OpenPeers = append(st.OpenPeers, int(ap.Addr().As4()[3]))
		}
	}
	omu.Unlock()
	if v, ok := accErr.Load().(string); ok && !strings.Contains(v, "closed") {
		st.AcceptError = v
	}
	b, _ := json.Marshal(st)
	fmt.Println(string(b))
}

// serveConn answers requests until the client closes: a request is
// [u32 up][u32 down][u64 seed][up bytes][SHA-256 of them]; the answer
// [down bytes][SHA-256 of them].
func serveConn(c net.Conn, st *serverStats) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10)
	var hdr [16]byte
	buf := make([]byte, 0, 64<<10)
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				atomic.AddInt64(&st.Aborted, 1)
			} else if errors.Is(err, syscall.ECONNRESET) {
				atomic.AddInt64(&st.Resets, 1)
			}
			return
		}
		up := int(binary.LittleEndian.Uint32(hdr[0:]))
		down := int(binary.LittleEndian.Uint32(hdr[4:]))
		seed := binary.LittleEndian.Uint64(hdr[8:])
		if cap(buf) < up+hashLen || cap(buf) < down+hashLen {
			buf = make([]byte, max(up, down)+hashLen)
		}
		b := buf[:up+hashLen]
		if _, err := io.ReadFull(br, b); err != nil {
			atomic.AddInt64(&st.Aborted, 1)
			return
		}
		atomic.AddInt64(&st.BytesIn, int64(up))
		if sum := sha256.Sum256(b[:up]); string(sum[:]) != string(b[up:]) {
			atomic.AddInt64(&st.Corrupt, 1)
			return
		}
		b = buf[:down+hashLen]
		fill(mrand.New(mrand.NewPCG(seed, 1)), b[:down])
		sum := sha256.Sum256(b[:down])
		copy(b[down:], sum[:])
		if _, err := c.Write(b); err != nil {
			atomic.AddInt64(&st.Aborted, 1)
			return
		}
		atomic.AddInt64(&st.BytesOut, int64(down))
		atomic.AddInt64(&st.Served, 1)
	}
}

// ---------------------------------------------------------------- client

// clientStats are what a client process reports when its life ends.
type clientStats struct {
	Host      int            `json:"host"`
	Conns     int64          `json:"conns"`
	Requests  int64          `json:"requests_verified"` // answers whose hash matched
	BytesUp   int64          `json:"bytes_up"`
	BytesDown int64          `json:"bytes_down"`
	Corrupt   int64          `json:"corrupt"`
	Errors    map[string]int `json:"errors,omitempty"`
	UDPFlows  int64          `json:"udp_flows"`
	UDPOK     int64          `json:"udp_verified"`
	UDPLost   int64          `json:"udp_lost"` // no answer within the timeout (loss)
	UDPBad    int64          `json:"udp_corrupt"`
	UDPLate   int64          `json:"udp_late"` // echoes that came after their timeout
	mu        sync.Mutex
}

func (s *clientStats) fail(what string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Errors == nil {
		s.Errors = map[string]int{}
	}
	msg := what + ": " + err.Error()
	// the ephemeral port makes every message unique: drop addresses
	if i := strings.LastIndex(msg, "->"); i > 0 {
		msg = msg[:strings.LastIndex(msg[:i], " ")+1] + "…" + msg[strings.Index(msg[i:], " ")+i:]
	}
	s.Errors[msg]++
}

func clientMain(args []string) {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	dir := fs.String("dir", "", "")
	host := fs.Int("host", 0, "")
	hosts := fs.Int("hosts", 64, "")
	life := fs.Duration("life", 5*time.Second, "")
	workers := fs.Int("workers", 4, "")
	seed := fs.Uint64("seed", 1, "")
	fs.Parse(args)
	h, err := swrapnet.Join(*dir, *host)
	if err != nil {
		fatal("client %d: %v", *host, err)
	}
	st := &clientStats{Host: *host}
	ctx, cancel := context.WithTimeout(context.Background(), *life)
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := mrand.New(mrand.NewPCG(*seed, uint64(w)))
			for ctx.Err() == nil {
				peer := 1 + r.IntN(*hosts-1)
				if peer >= *host {
					peer++
				}
				if r.IntN(5) == 0 {
					udpFlow(ctx, h, peer, r, st)
				} else {
					tcpConn(ctx, h, peer, r, st)
				}
			}
		}(w)
	}
	wg.Wait()
	b, _ := json.Marshal(st)
	fmt.Println(string(b))
}

// tcpConn makes one connection to peer, 1 to 8 requests on it, and closes
// it in one of three ways.
func tcpConn(ctx context.Context, h *swrapnet.Host, peer int, r *mrand.Rand, st *clientStats) {
	c, err := h.DialTimeout("tcp", fmt.Sprintf("%s:%d", hostAddr(peer), tcpPort), 20*time.Second)
	if err != nil {
		st.fail("dial", err)
		return
	}
	atomic.AddInt64(&st.Conns, 1)
	tc := c.(*swrapnet.Conn)
	br := bufio.NewReaderSize(c, 64<<10)
	n := 1 + r.IntN(8)
	for i := 0; i < n && ctx.Err() == nil; i++ {
		up, down := size(r), size(r)
		req := make([]byte, 16+up+hashLen)
		binary.LittleEndian.PutUint32(req[0:], uint32(up))
		binary.LittleEndian.PutUint32(req[4:], uint32(down))
		seed := r.Uint64()
		binary.LittleEndian.PutUint64(req[8:], seed)
		fill(r, req[16:16+up])
		sum := sha256.Sum256(req[16 : 16+up])
		copy(req[16+up:], sum[:])
		c.SetDeadline(time.Now().Add(60 * time.Second))
		if _, err := c.Write(req); err != nil {
			st.fail("write", err)
			c.Close()
			return
		}
		atomic.AddInt64(&st.BytesUp, int64(up))
		ans := make([]byte, down+hashLen)
		if _, err := io.ReadFull(br, ans); err != nil {
			st.fail("read", err)
			c.Close()
			return
		}
		sum = sha256.Sum256(ans[:down])
		want := make([]byte, down)
		fill(mrand.New(mrand.NewPCG(seed, 1)), want)
		if string(sum[:]) != string(ans[down:]) || string(want) != string(ans[:down]) {
			atomic.AddInt64(&st.Corrupt, 1)
			c.Close()
			return
		}
		atomic.AddInt64(&st.BytesDown, int64(down))
		atomic.AddInt64(&st.Requests, 1)
	}
	switch r.IntN(10) {
	case 0: // half-close, then wait for the server's FIN
		tc.CloseWrite()
		if _, err := br.ReadByte(); err != io.EOF {
			st.fail("EOF after half-close", fmt.Errorf("%v", err))
		}
		c.Close()
	case 1: // reset
		tc.SetLinger(0)
		c.Close()
	default:
		c.Close()
	}
}

// udpFlow sends 10 to 60 datagrams to peer's echo port, one at a time,
// each [u64 flow][u32 seq][payload][SHA-256 of the rest], and checks the
// echo; an echo that does not come within 300 ms is lost.
func udpFlow(ctx context.Context, h *swrapnet.Host, peer int, r *mrand.Rand, st *clientStats) {
	pc, err := h.ListenPacket("udp", hostAddr(st.Host)+":0")
	if err != nil {
		st.fail("udp socket", err)
		return
	}
	defer pc.Close()
	atomic.AddInt64(&st.UDPFlows, 1)
	dst := netip.MustParseAddrPort(fmt.Sprintf("%s:%d", hostAddr(peer), udpPort))
	flow := r.Uint64()
	buf := make([]byte, 2048)
	n := 10 + r.IntN(50)
	for seq := 0; seq < n && ctx.Err() == nil; seq++ {
		l := 12 + 4 + r.IntN(1400)
		d := make([]byte, l+hashLen)
		binary.LittleEndian.PutUint64(d, flow)
		binary.LittleEndian.PutUint32(d[8:], uint32(seq))
		fill(r, d[12:l])
		sum := sha256.Sum256(d[:l])
		copy(d[l:], sum[:])
		if _, err := pc.WriteToUDPAddrPort(d, dst); err != nil {
			st.fail("udp send", err)
			return
		}
		deadline := time.Now().Add(300 * time.Millisecond)
		for {
			pc.SetReadDeadline(deadline)
			m, _, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					atomic.AddInt64(&st.UDPLost, 1)
				} else {
					st.fail("udp recv", err)
				}
				break
			}
			if m < 12 || binary.LittleEndian.Uint64(buf) != flow || binary.LittleEndian.Uint32(buf[8:]) != uint32(seq) {
				atomic.AddInt64(&st.UDPLate, 1) // the echo of an earlier datagram, after its timeout
				continue
			}
			if m != len(d) || string(buf[:m]) != string(d) {
				atomic.AddInt64(&st.UDPBad, 1)
			} else {
				atomic.AddInt64(&st.UDPOK, 1)
			}
			break
		}
	}
}

// ---------------------------------------------------------------- master

// sample is the broker's footprint at one moment.
type sample struct {
	Phase        string  `json:"phase"`
	T            float64 `json:"t_s"`
	RSSMiB       float64 `json:"rss_mib"`
	HWMMiB       float64 `json:"hwm_mib"`
	Threads      int     `json:"threads"`
	FDs          int     `json:"fds"`
	Goroutines   int     `json:"goroutines"`
	Sessions     int     `json:"sessions"`
	ControlConns int     `json:"control_connections"`
	Hosts        int     `json:"hosts"`
	Err          string  `json:"error,omitempty"`
}

type master struct {
	dir, swrapBin string
	pid           int
	t0            time.Time
	mu            sync.Mutex
	samples       []sample
}

func (m *master) sample(phase string) sample {
	s := sample{Phase: phase, T: time.Since(m.t0).Seconds()}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.pid))
	if err != nil {
		s.Err = err.Error()
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "VmRSS:":
			s.RSSMiB = float64(v) / 1024
		case "VmHWM:":
			s.HWMMiB = float64(v) / 1024
		case "Threads:":
			s.Threads = v
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", m.pid)); err == nil {
		s.FDs = len(ents)
	}
	out, err := exec.Command(m.swrapBin, "status", "--dir", m.dir, "--json").Output()
	var st struct {
		Sessions     int               `json:"sessions"`
		Goroutines   int               `json:"goroutines"`
		ControlConns int               `json:"control_connections"`
		Hosts        []json.RawMessage `json:"hosts"`
	}
	if err == nil {
		err = json.Unmarshal(out, &st)
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%s", strings.TrimSpace(string(ee.Stderr)))
		}
		s.Err = strings.TrimSpace(s.Err + " status: " + err.Error())
		// unknown, not zero
		st.Sessions, st.Goroutines, st.ControlConns = -1, -1, -1
	}
	s.Sessions, s.Goroutines, s.ControlConns, s.Hosts = st.Sessions, st.Goroutines, st.ControlConns, len(st.Hosts)
	m.mu.Lock()
	m.samples = append(m.samples, s)
	m.mu.Unlock()
	return s
}

// digits groups error messages that differ only in their numbers.
var digits = regexp.MustCompile(`[0-9]+`)

// check is one line of the verdict.
type check struct {
	what     string
	ok       bool
	required bool
}

// worker is a started worker process.
type worker struct {
	cmd    *exec.Cmd
	out    *bufio.Scanner
	killed bool
}

func startWorker(self string, ready bool, args ...string) (*worker, error) {
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	p, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w := &worker{cmd: cmd, out: bufio.NewScanner(p)}
	w.out.Buffer(make([]byte, 1<<20), 1<<20)
	if ready {
		if !w.out.Scan() || w.out.Text() != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, fmt.Errorf("%s did not start", strings.Join(args[:3], " "))
		}
	}
	return w, nil
}

// last reads the worker's output to EOF and returns its last line.
func (w *worker) last() string {
	var l string
	for w.out.Scan() {
		l = w.out.Text()
	}
	return l
}

type totals struct {
	Clients, Killed, Hung, ClientFailures int
	// server connections still open at the end whose client is gone, on
	// a link with loss (where the client's lost RST leaves them half-open,
	// as on Linux) or not (a leak)
	HalfOpenLossy, HalfOpenClean int
	Client                       clientStats
	Server                       serverStats
	ClientErrors                 map[string]int
}

func masterMain() int {
	duration := flag.Duration("duration", 3*time.Minute, "how long clients are started")
	hosts := flag.Int("hosts", 64, "emulated hosts (2..64): a server and clients on each")
	perHost := flag.Int("clients", 1, "client processes alive at a time on each host")
	workers := flag.Int("workers", 3, "concurrent connections or UDP flows in each client process")
	killFrac := flag.Float64("kill", 0.15, "fraction of client processes killed with SIGKILL mid-life")
	lossHosts := flag.Int("loss-hosts", 8, "hosts 1..N lose 1% of the frames they send and receive")
	settle := flag.Duration("settle", 60*time.Second, "how long the broker is watched after the load")
	brokerBin := flag.String("broker", "bin/swrap-broker", "the broker binary")
	swrapBin := flag.String("swrap", "bin/swrap", "the swrap CLI (for swrap status --json)")
	outDir := flag.String("out", "bench/results", "where soak-latest.{md,json} go")
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()), "seed of the clients' choices")
	flag.Parse()
	if *hosts < 2 || *hosts > 64 {
		fatal("-hosts must be 2..64")
	}
	self, err := os.Executable()
	if err != nil {
		fatal("%v", err)
	}
	dir, err := os.MkdirTemp("", "swrap-soak-")
	if err != nil {
		fatal("%v", err)
	}
	defer os.RemoveAll(dir)

	var rules []string
	for h := 1; h <= *lossHosts && h <= *hosts; h++ {
		rules = append(rules, fmt.Sprintf("%d loss=1%% seed=%d", h, h))
	}
	netemRules := strings.Join(rules, "; ")
	bcmd := exec.Command(*brokerBin, "--dir", dir, "--netem", netemRules)
	blog, _ := os.Create(filepath.Join(dir, "broker.log"))
	bcmd.Stdout, bcmd.Stderr = blog, blog
	if err := bcmd.Start(); err != nil {
		fatal("starting the broker: %v", err)
	}
	m := &master{dir: dir, swrapBin: *swrapBin, pid: bcmd.Process.Pid, t0: time.Now()}
	bdone := make(chan error, 1)
	go func() { bdone <- bcmd.Wait() }()
	defer func() {
		bcmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-bdone:
		case <-time.After(15 * time.Second):
			bcmd.Process.Kill()
		}
	}()
	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join(dir, "swrap", "broker.sock")); err == nil {
			break
		}
		if i > 500 {
			fatal("the broker did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second)
	before := m.sample("idle (before)")
	log := func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, "soak %6.1fs: %s\n", time.Since(m.t0).Seconds(), fmt.Sprintf(f, a...))
	}
	log("broker %d idle: %+v", m.pid, before)

	servers := make([]*worker, *hosts+1)
	startServers := func() {
		for h := 1; h <= *hosts; h++ {
			w, err := startWorker(self, true, "server", "-dir", dir, "-host", strconv.Itoa(h))
			if err != nil {
				fatal("%v", err)
			}
			servers[h] = w
		}
	}
	// The broker makes a host's stack when a program first uses the host
	// and keeps it: the baseline to return to is the idle broker with its
	// hosts made, which the servers' first start and stop leave.
	startServers()
	for h := 1; h <= *hosts; h++ {
		servers[h].cmd.Process.Signal(syscall.SIGTERM)
		servers[h].last()
		servers[h].cmd.Wait()
	}
	time.Sleep(2 * time.Second)
	warm := m.sample("idle, hosts made (baseline)")
	log("idle with %d hosts: %+v", warm.Hosts, warm)
	startServers()
	time.Sleep(time.Second)
	up := m.sample("servers up")
	log("%d servers up: %+v", *hosts, up)

	var tot totals
	tot.ClientErrors = map[string]int{}
	var tmu sync.Mutex
	deadline := time.Now().Add(*duration)
	var wg sync.WaitGroup
	var nseq atomic.Uint64
	for h := 1; h <= *hosts; h++ {
		for k := 0; k < *perHost; k++ {
			wg.Add(1)
			go func(h int) {
				defer wg.Done()
				for time.Now().Before(deadline) {
					n := nseq.Add(1)
					r := mrand.New(mrand.NewPCG(*seed, n))
					life := time.Duration(2000+r.IntN(6000)) * time.Millisecond
					w, err := startWorker(self, false, "client", "-dir", dir, "-host", strconv.Itoa(h),
						"-hosts", strconv.Itoa(*hosts), "-life", life.String(), "-workers", strconv.Itoa(*workers),
						"-seed", strconv.FormatUint(*seed^n*0x9e3779b97f4a7c15, 10))
					if err != nil {
						tmu.Lock()
						tot.ClientFailures++
						tot.ClientErrors["start: "+err.Error()]++
						tmu.Unlock()
						time.Sleep(time.Second)
						continue
					}
					var timer *time.Timer
					if r.Float64() < *killFrac {
						at := time.Duration(float64(life) * (0.2 + 0.7*r.Float64()))
						timer = time.AfterFunc(at, func() {
							w.killed = true
							w.cmd.Process.Signal(syscall.SIGKILL)
						})
					}
					// a client that outlives its life by a minute hangs
					hang := time.AfterFunc(life+60*time.Second, func() { w.cmd.Process.Signal(syscall.SIGKILL) })
					line := w.last()
					err = w.cmd.Wait()
					hung := !hang.Stop()
					if timer != nil {
						timer.Stop()
					}
					tmu.Lock()
					tot.Clients++
					switch {
					case w.killed:
						tot.Killed++
					case hung:
						tot.Hung++
					case err != nil:
						tot.ClientFailures++
						tot.ClientErrors["exit: "+err.Error()]++
					default:
						var cs clientStats
						if json.Unmarshal([]byte(line), &cs) != nil {
							tot.ClientFailures++
							tot.ClientErrors["unparsed report: "+line]++
							break
						}
						c := &tot.Client
						c.Conns += cs.Conns
						c.Requests += cs.Requests
						c.BytesUp += cs.BytesUp
						c.BytesDown += cs.BytesDown
						c.Corrupt += cs.Corrupt
						c.UDPFlows += cs.UDPFlows
						c.UDPOK += cs.UDPOK
						c.UDPLost += cs.UDPLost
						c.UDPBad += cs.UDPBad
						c.UDPLate += cs.UDPLate
						for k, v := range cs.Errors {
							tot.ClientErrors[k] += v
						}
					}
					tmu.Unlock()
				}
			}(h)
		}
	}
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
				s := m.sample("during")
				tmu.Lock()
				log("during: %d clients done (%d killed), %d requests verified; broker RSS %.0f MiB, %d fds, %d goroutines, %d sessions",
					tot.Clients, tot.Killed, tot.Client.Requests, s.RSSMiB, s.FDs, s.Goroutines, s.Sessions)
				tmu.Unlock()
			}
		}
	}()
	wg.Wait()
	close(stopSampling)
	<-sampled
	time.Sleep(5 * time.Second)
	gone := m.sample("clients gone 5 s ago (servers up)")
	log("clients gone: %+v", gone)

	for h := 1; h <= *hosts; h++ {
		servers[h].cmd.Process.Signal(syscall.SIGTERM)
	}
	for h := 1; h <= *hosts; h++ {
		line := servers[h].last()
		servers[h].cmd.Wait()
		var ss serverStats
		if err := json.Unmarshal([]byte(line), &ss); err != nil {
			tot.ClientErrors[fmt.Sprintf("server %d report: %q", h, line)]++
			continue
		}
		s := &tot.Server
		s.Accepted += ss.Accepted
		s.Served += ss.Served
		s.BytesIn += ss.BytesIn
		s.BytesOut += ss.BytesOut
		s.Corrupt += ss.Corrupt
		s.Aborted += ss.Aborted
		s.Resets += ss.Resets
		s.ConnsOpen += ss.ConnsOpen
		for _, peer := range ss.OpenPeers {
			if peer <= *lossHosts || h <= *lossHosts {
				tot.HalfOpenLossy++
			} else {
				tot.HalfOpenClean++
			}
		}
		s.UDPEchoed += ss.UDPEchoed
		if ss.AcceptError != "" {
			tot.ClientErrors[fmt.Sprintf("server %d accept: %s", h, ss.AcceptError)]++
		}
	}
	loadEnd := time.Now()
	var settled *sample
	var last sample
	for time.Since(loadEnd) < *settle {
		time.Sleep(2 * time.Second)
		last = m.sample("after")
		if settled == nil && last.Sessions == 0 && last.ControlConns <= warm.ControlConns &&
			last.FDs <= warm.FDs && last.Goroutines <= warm.Goroutines+2 {
			s := last
			s.Phase = fmt.Sprintf("back to idle (%.0f s after the last program)", time.Since(loadEnd).Seconds())
			settled = &s
		}
	}
	last.Phase = fmt.Sprintf("after (%.0f s after the last program)", time.Since(loadEnd).Seconds())
	m.mu.Lock()
	m.samples[len(m.samples)-1] = last
	m.mu.Unlock()

	checks := []check{
		{"every surviving transfer intact (TCP and UDP hashes)", tot.Client.Corrupt == 0 && tot.Client.UDPBad == 0 && tot.Server.Corrupt == 0, true},
		{"no surviving client failed, hung or saw an error", tot.Hung == 0 && tot.ClientFailures == 0 && len(tot.ClientErrors) == 0, true},
		{"no server connection left open by a dead client on a link without loss", tot.HalfOpenClean == 0, true},
		{fmt.Sprintf("broker back to its baseline: 0 sessions, fds ≤ %d, goroutines ≤ %d", warm.FDs, warm.Goroutines+2),
			last.Sessions == 0 && last.FDs <= warm.FDs && last.Goroutines <= warm.Goroutines+2, true},
		{fmt.Sprintf("broker RSS after the load within 2× its baseline (%.0f MiB; not required: issue 12's goal)", warm.RSSMiB),
			last.RSSMiB <= 2*warm.RSSMiB, false},
	}
	ok := true
	for _, c := range checks {
		if c.required && !c.ok {
			ok = false
		}
	}
	md := report(m, *hosts, *duration, *perHost, *workers, *killFrac, netemRules, &tot, []sample{before, warm, up}, gone, settled, last, checks, ok)
	fmt.Print(md)
	if err := os.MkdirAll(*outDir, 0o755); err == nil {
		os.WriteFile(filepath.Join(*outDir, "soak-latest.md"), []byte(md), 0o644)
		j, _ := json.MarshalIndent(map[string]any{
			"config": map[string]any{"hosts": *hosts, "duration_s": duration.Seconds(), "clients_per_host": *perHost,
				"workers": *workers, "kill": *killFrac, "netem": netemRules, "seed": *seed},
			"totals": &tot, "samples": m.samples, "ok": ok}, "", " ")
		os.WriteFile(filepath.Join(*outDir, "soak-latest.json"), j, 0o644)
	}
	if !ok {
		return 1
	}
	return 0
}

func report(m *master, hosts int, duration time.Duration, perHost, workers int, killFrac float64, netemRules string,
	tot *totals, first []sample, gone sample, settled *sample, last sample, checks []check, ok bool) string {
	var b strings.Builder
	p := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	p("# swrap soak (%s)\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	p("%d hosts, each with a server (TCP echo-with-hash, UDP echo) and %d client process(es) alive at a time "+
		"(%d connections or UDP flows each, 2-8 s lives), for %s; %.0f %% of the clients killed with SIGKILL mid-life; "+
		"netem `%s`. %d CPUs.\n\n", hosts, perHost, workers, duration, killFrac*100, netemRules, runtime.NumCPU())
	p("| | |\n|---|---|\n")
	p("| client processes | %d (%d killed with SIGKILL, %d hung, %d failed) |\n", tot.Clients, tot.Killed, tot.Hung, tot.ClientFailures)
	p("| TCP requests served (server side, upload hash checked) | %d (%.0f/s), %.1f MiB in, %.1f MiB out |\n",
		tot.Server.Served, float64(tot.Server.Served)/duration.Seconds(), float64(tot.Server.BytesIn)/(1<<20), float64(tot.Server.BytesOut)/(1<<20))
	p("| TCP answers verified by surviving clients (hash and bytes) | %d on %d connections, %.1f MiB down |\n",
		tot.Client.Requests, tot.Client.Conns, float64(tot.Client.BytesDown)/(1<<20))
	p("| connections accepted by the servers | %d; %d ended inside a request (killed clients), %d reset between requests "+
		"(resets by clients and by killed clients), %d still open at the end (%d on links with loss, %d without) |\n",
		tot.Server.Accepted, tot.Server.Aborted, tot.Server.Resets, tot.Server.ConnsOpen, tot.HalfOpenLossy, tot.HalfOpenClean)
	p("| UDP flows of surviving clients | %d: %d datagrams echoed and verified, %d without an echo within 300 ms (%d of those echoes came later), %d corrupt; servers echoed %d |\n",
		tot.Client.UDPFlows, tot.Client.UDPOK, tot.Client.UDPLost, tot.Client.UDPLate, tot.Client.UDPBad, tot.Server.UDPEchoed)
	p("| corrupt transfers | %d client-side, %d server-side |\n", tot.Client.Corrupt, tot.Server.Corrupt)
	var errs []string
	for k, v := range tot.ClientErrors {
		errs = append(errs, fmt.Sprintf("%s (×%d)", k, v))
	}
	sort.Strings(errs)
	if len(errs) == 0 {
		errs = []string{"none"}
	}
	p("| errors seen by surviving clients | %s |\n", strings.Join(errs, "; "))
	for _, c := range checks {
		v := "yes"
		if !c.ok {
			v = "**no**"
		}
		p("| %s | %s |\n", c.what, v)
	}
	verdict := "PASS"
	if !ok {
		verdict = "FAIL"
	}
	p("| verdict (the required checks) | %s |\n\n", verdict)

	var maxS sample
	maxS.Goroutines, maxS.Sessions, maxS.ControlConns = -1, -1, -1
	statusErrs := map[string]int{}
	nDuring := 0
	for _, s := range m.samples {
		if s.Err != "" {
			statusErrs[digits.ReplaceAllString(s.Err, "N")]++
		}
		if s.Phase == "during" {
			nDuring++
			maxS.RSSMiB = max(maxS.RSSMiB, s.RSSMiB)
			maxS.FDs = max(maxS.FDs, s.FDs)
			maxS.Goroutines = max(maxS.Goroutines, s.Goroutines)
			maxS.Sessions = max(maxS.Sessions, s.Sessions)
			maxS.Threads = max(maxS.Threads, s.Threads)
			maxS.ControlConns = max(maxS.ControlConns, s.ControlConns)
			maxS.Hosts = max(maxS.Hosts, s.Hosts)
		}
	}
	maxS.Phase = "during (maximum of the samples every 5 s)"
	maxS.HWMMiB = last.HWMMiB
	p("Broker (pid %d) footprint:\n\n| moment | RSS MiB | fds | goroutines | threads | sessions | control conns | hosts |\n|---|---|---|---|---|---|---|---|\n", m.pid)
	rows := append(first, maxS, gone)
	if settled != nil {
		rows = append(rows, *settled)
	} else {
		rows = append(rows, sample{Phase: "back to idle: never within the settle time"})
	}
	rows = append(rows, last)
	n := func(v int) string {
		if v < 0 {
			return "—"
		}
		return strconv.Itoa(v)
	}
	for _, s := range rows {
		p("| %s | %.1f | %d | %s | %d | %s | %s | %d |\n", s.Phase, s.RSSMiB, s.FDs, n(s.Goroutines), s.Threads,
			n(s.Sessions), n(s.ControlConns), s.Hosts)
	}
	if len(statusErrs) > 0 {
		p("\nSamples whose `swrap status --json` failed (their goroutines, sessions and control connections are unknown; "+
			"the maximum is over the others; %d samples during the load):\n\n", nDuring)
		for k, v := range statusErrs {
			p("- %s (×%d)\n", k, v)
		}
	}
	p("\nPeak RSS (VmHWM) %.0f MiB. The status call of each sample is itself one control connection.\n", last.HWMMiB)
	return b.String()
}
