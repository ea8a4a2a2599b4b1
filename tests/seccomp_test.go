package tests

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swrap/swrap/broker"
)

// The seccomp path (supervise/): programs LD_PRELOAD cannot reach, Go
// binaries built here with CGO_ENABLED=0 and gcc -static C programs, run
// unmodified under `swrap run`, which supervises them through seccomp user
// notification.

// buildGonet builds tests/testdata/gonet, a standard-library-only Go
// network program, without cgo.
func buildGonet(t *testing.T) string {
	t.Helper()
	gotool := needTool(t, "go")
	out := filepath.Join(t.TempDir(), "gonet")
	cmd := exec.Command(gotool, "build", "-o", out, ".")
	cmd.Dir = filepath.Join(repoRoot, "tests", "testdata", "gonet")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build gonet: %v\n%s", err, b)
	}
	return out
}

// buildStaticC compiles tests/testdata/NAME.c with gcc -static.
func buildStaticC(t *testing.T, name string) string {
	t.Helper()
	return buildStaticCC(t, "gcc", name)
}

// buildStaticCC compiles tests/testdata/NAME.c with compiler cc -static.
func buildStaticCC(t *testing.T, cc, name string) string {
	t.Helper()
	gcc := needTool(t, cc)
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command(gcc, "-static", "-Wall", "-Wextra", "-Werror", "-O1", "-pthread",
		"-o", out, filepath.Join(repoRoot, "tests", "testdata", name+".c"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s -static %s.c: %v\n%s", cc, name, err, b)
	}
	return out
}

// swrapRunCmd is `swrap run --dir dir --iface N [flags] -- argv...`.
func swrapRunCmd(ctx context.Context, t *testing.T, dir string, iface int, flags []string, env []string, argv ...string) *exec.Cmd {
	args := append([]string{"run", "--dir", dir, "--iface", itoa(iface)}, flags...)
	args = append(append(args, "--"), argv...)
	cmd := exec.CommandContext(ctx, binPath(t, "swrap"), args...)
	cmd.Env = append(cleanEnv(), env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// startLine starts cmd and waits for its first stdout line starting with
// prefix; the process is killed when the test ends.
func startLine(t *testing.T, cmd *exec.Cmd, prefix string) (string, io.WriteCloser) {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), prefix) {
				lines <- sc.Text()
				io.Copy(io.Discard, out)
				return
			}
		}
		close(lines)
	}()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatalf("%v ended without %q; stderr:\n%s", cmd.Args, prefix, stderr.String())
		}
		return l, in
	case <-time.After(20 * time.Second):
		t.Fatalf("%v: no %q within 20 s; stderr:\n%s", cmd.Args, prefix, stderr.String())
	}
	return "", nil
}

// gonetPattern is the body gonet serves for /blob?n=N.
func gonetPattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// brokerStatus is `swrap status --json` of dir.
func brokerStatus(t *testing.T, dir string) broker.Status {
	t.Helper()
	stdout, stderr, code := cliRun(t, nil, "status", "--dir", dir, "--json")
	if code != 0 {
		t.Fatalf("swrap status: exit %d: %s", code, stderr)
	}
	var st broker.Status
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, stdout)
	}
	return st
}

// realListener reports whether anything listens on TCP port on the
// machine's real stack (/proc/net/tcp and tcp6, state 0A).
func realListener(t *testing.T, port int) bool {
	t.Helper()
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(l)
			if len(fs) > 3 && fs[3] == "0A" && strings.HasSuffix(fs[1], fmt.Sprintf(":%04X", port)) {
				return true
			}
		}
	}
	return false
}

// ppid is pid's parent (0 when unknown).
func ppid(pid uint32) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

func randomPort() int { return 20000 + rand.IntN(20000) }

// TestSeccompGoHTTP: an unmodified Go HTTP server (host 10) and Go client
// (host 11), both CGO_ENABLED=0, exchange 10 MiB intact through the
// broker; the capture has the handshake and every data byte; `swrap
// status` lists the listener and both ends of a held connection with the
// Go processes' pids; the real stack has no listener on the port.
func TestSeccompGoHTTP(t *testing.T) {
	gonet := buildGonet(t)
	dir := swrapDir(t)
	capFile := filepath.Join(t.TempDir(), "cap.pcap")
	ctx := testCtx(t, 120*time.Second)
	port := randomPort()
	srvAddr := fmt.Sprintf("127.0.0.10:%d", port)
	srv := swrapRunCmd(ctx, t, dir, 10, []string{"--pcap", capFile}, nil, gonet, "serve", srvAddr)
	startLine(t, srv, "listening")
	if realListener(t, port) {
		t.Errorf("port %d listens on the machine's real stack", port)
	}

	const size = 10 << 20
	cli := swrapRunCmd(ctx, t, dir, 11, []string{"--pcap", capFile}, nil, gonet, "get", fmt.Sprintf("http://%s/blob?n=%d", srvAddr, size))
	out, err := cli.CombinedOutput()
	if err != nil {
		t.Fatalf("gonet get: %v\n%s", err, out)
	}
	f := strings.Fields(string(out))
	if len(f) != 3 || f[0] != itoa(size) || f[1] != sha(gonetPattern(size)) || !strings.HasPrefix(f[2], "127.0.0.11:") {
		t.Fatalf("gonet get: %q, want %d bytes, sha256 %s, from 127.0.0.11", out, size, sha(gonetPattern(size)))
	}

	// A held connection: status shows both ends and whose they are.
	hold := swrapRunCmd(ctx, t, dir, 11, nil, nil, gonet, "hold", srvAddr)
	line, in := startLine(t, hold, "connected")
	local := strings.TrimPrefix(line, "connected ")
	st := brokerStatus(t, dir)
	var listener, client, server *broker.SocketStatus
	for i, s := range st.Sockets {
		switch {
		case s.Local == srvAddr && s.TCP == "LISTEN":
			listener = &st.Sockets[i]
		case s.Local == local && s.Remote == srvAddr:
			client = &st.Sockets[i]
		case s.Local == srvAddr && s.Remote == local:
			server = &st.Sockets[i]
		}
	}
	if listener == nil || client == nil || server == nil {
		t.Fatalf("status lacks the listener, client %s or server end: %+v", local, st.Sockets)
	}
	for _, s := range []*broker.SocketStatus{listener, client, server} {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", s.PID))
		if strings.TrimSpace(string(comm)) != "gonet" {
			t.Errorf("socket %s->%s: pid %d is %q, want gonet", s.Local, s.Remote, s.PID, comm)
		}
	}
	// swrap run stays the program's parent (it is the supervisor).
	if ppid(listener.PID) != srv.Process.Pid || ppid(client.PID) != hold.Process.Pid {
		t.Errorf("pids: listener %d (parent %d, want swrap run %d), client %d (parent %d, want %d)",
			listener.PID, ppid(listener.PID), srv.Process.Pid, client.PID, ppid(client.PID), hold.Process.Pid)
	}
	in.Close()
	hold.Wait()
	srv.Process.Kill()
	srv.Wait()
	stopBroker(t, dir)

	pkts, err := readCapture(capFile)
	if err != nil {
		t.Fatal(err)
	}
	var syn, synack bool
	data := 0
	for _, p := range pkts {
		if p.dstIP == "127.0.0.10" && p.dstPort == port && p.syn && !p.ack {
			syn = true
		}
		if p.srcIP == "127.0.0.10" && p.srcPort == port && p.syn && p.ack {
			synack = true
		}
		if p.srcIP == "127.0.0.10" && p.srcPort == port {
			data += p.payload
		}
	}
	if !syn || !synack || data < size {
		t.Errorf("capture: SYN %v, SYN-ACK %v, %d bytes from the server, want both and >= %d", syn, synack, data, size)
	}
}

// goUDPEcho starts the Go UDP echo server (gonet udpecho) on host 10 under
// swrap run and returns what its clients need: the gonet binary, the
// network's directory, the test's context and the server's address.
func goUDPEcho(t *testing.T) (gonet, dir string, ctx context.Context, srvAddr string) {
	gonet = buildGonet(t)
	dir = swrapDir(t)
	ctx = testCtx(t, 60*time.Second)
	srvAddr = fmt.Sprintf("127.0.0.10:%d", randomPort())
	startLine(t, swrapRunCmd(ctx, t, dir, 10, nil, nil, gonet, "udpecho", srvAddr), "listening")
	return gonet, dir, ctx, srvAddr
}

// TestSeccompGoUDP: net.ListenPacket + WriteTo/ReadFrom between hosts 10
// and 11: each side sees the other's address as the source.
func TestSeccompGoUDP(t *testing.T) {
	gonet, dir, ctx, srvAddr := goUDPEcho(t)
	out, err := swrapRunCmd(ctx, t, dir, 11, nil, nil, gonet, "udpsend", "127.0.0.11:0", srvAddr, "hello").CombinedOutput()
	if err != nil {
		t.Fatalf("udpsend: %v\n%s", err, out)
	}
	// "<reply source> <client address as the server saw it> hello"
	f := strings.Fields(string(out))
	if len(f) != 3 || f[0] != srvAddr || !strings.HasPrefix(f[1], "127.0.0.11:") || f[2] != "hello" {
		t.Fatalf("udpsend: %q, want %s 127.0.0.11:PORT hello", out, srvAddr)
	}
}

// TestSeccompGoUDPConnected: net.Dial("udp") + Write/Read, i.e. write and
// read on a connected UDP socket, which the filter lets through: the
// datagram reaches the server bare (the server echoes exactly "SOURCE
// hello") and the reply reaches the client bare, its local address the one
// the server saw.
func TestSeccompGoUDPConnected(t *testing.T) {
	gonet, dir, ctx, srvAddr := goUDPEcho(t)
	for i := 0; i < 3; i++ {
		out, err := swrapRunCmd(ctx, t, dir, 11, nil, nil, gonet, "udpdial", srvAddr, "hello").CombinedOutput()
		if err != nil {
			t.Fatalf("udpdial: %v\n%s", err, out)
		}
		// "<client's local address> <client address as the server saw it> hello"
		f := strings.Fields(string(out))
		if len(f) != 3 || !strings.HasPrefix(f[0], "127.0.0.11:") || f[1] != f[0] || f[2] != "hello" {
			t.Fatalf("udpdial: %q, want 127.0.0.11:PORT 127.0.0.11:PORT hello", out)
		}
	}
}

// TestSeccompGoUDPEmpty: an empty datagram on a connected UDP socket of a
// Go program is a datagram (the server answers it with its "SOURCE "),
// and the socket goes on: the app end carries bare payloads, where an
// empty record is not the program's close. The broker took it for one and
// ended the socket, so the datagram after it went nowhere.
func TestSeccompGoUDPEmpty(t *testing.T) {
	gonet, dir, ctx, srvAddr := goUDPEcho(t)
	out, err := swrapRunCmd(ctx, t, dir, 11, nil, nil, gonet, "udpdialempty", srvAddr, "hello").CombinedOutput()
	if err != nil {
		t.Fatalf("udpdialempty: %v\n%s", err, out)
	}
	f := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(f) != 2 || !strings.HasPrefix(f[0], `"127.0.0.11:`) || !strings.HasSuffix(f[0], ` "`) ||
		f[1] != strings.TrimSuffix(f[0], `"`)+`hello"` {
		t.Fatalf("udpdialempty: %q, want \"127.0.0.11:PORT \" and \"127.0.0.11:PORT hello\"", out)
	}
}

// TestSeccompMixed: a preloaded C client (curl) fetches from the
// seccomp-wrapped Go server, and the seccomp-wrapped Go client from a
// preloaded `python3 -m http.server`.
func TestSeccompMixed(t *testing.T) {
	gonet := buildGonet(t)
	curl := needTool(t, "curl")
	python := needTool(t, "python3")
	dir := swrapDir(t)
	ctx := testCtx(t, 90*time.Second)

	port := randomPort()
	srvAddr := fmt.Sprintf("127.0.0.10:%d", port)
	startLine(t, swrapRunCmd(ctx, t, dir, 10, nil, nil, gonet, "serve", srvAddr), "listening")
	body := filepath.Join(t.TempDir(), "body")
	c := newCmd(ctx, wrapEnv(t, dir, 11), curl, "-sS", "--max-time", "30", "-o", body, fmt.Sprintf("http://%s/blob?n=1000000", srvAddr))
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	got, _ := os.ReadFile(body)
	if sha(got) != sha(gonetPattern(1000000)) {
		t.Errorf("curl got %d bytes, sha256 %s; want 1000000 bytes of the pattern", len(got), sha(got))
	}

	root := t.TempDir()
	file := make([]byte, 3<<20)
	for i := range file {
		file[i] = byte(i * 13)
	}
	if err := os.WriteFile(filepath.Join(root, "f.bin"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	pport := randomPort()
	py := newCmd(ctx, wrapEnv(t, dir, 12), python, "-u", "-m", "http.server", "--bind", "127.0.0.12", "--directory", root, itoa(pport))
	startLine(t, py, "Serving HTTP")
	out, err := swrapRunCmd(ctx, t, dir, 11, nil, nil, gonet, "get", fmt.Sprintf("http://127.0.0.12:%d/f.bin", pport)).CombinedOutput()
	if err != nil {
		t.Fatalf("gonet get from python: %v\n%s", err, out)
	}
	if f := strings.Fields(string(out)); len(f) < 2 || f[0] != itoa(len(file)) || f[1] != sha(file) {
		t.Errorf("gonet get from python: %q, want %d bytes, sha256 %s", out, len(file), sha(file))
	}
	if realListener(t, pport) || realListener(t, port) {
		t.Errorf("a server listens on the real stack")
	}
}

// hostSeen reports whether dir's broker has host id: it makes a host on
// its first socket, so the program's sockets were the broker's.
func hostSeen(t *testing.T, dir string, id int) bool {
	for _, h := range brokerStatus(t, dir).Hosts {
		if h.ID == id {
			return true
		}
	}
	return false
}

// TestSeccompStatic: threads.c built with gcc -static under swrap run (the
// seccomp path, chosen automatically): 16 threads × 100 connects; 50
// forks whose children use sockets; the same with SIGALRM every 200 µs.
// The sockets were the broker's (it has host 10); threads.c also checks
// each client's local address is 127.0.0.10, which natively is 127.0.0.1.
func TestSeccompStatic(t *testing.T) {
	bin := buildStaticC(t, "threads")
	for _, mode := range []string{"threads", "fork", "signal"} {
		t.Run(mode, func(t *testing.T) {
			dir := swrapDir(t)
			startBroker(t, dir) // stays up to be asked for its counters
			ctx := testCtx(t, 90*time.Second)
			out, err := swrapRunCmd(ctx, t, dir, 10, nil, nil, bin, mode, "127.0.0.10").Output()
			if err != nil || !strings.HasPrefix(string(out), "OK ") {
				t.Fatalf("threads %s: %v: %s", mode, err, out)
			}
			if !hostSeen(t, dir, 10) {
				t.Errorf("the broker has no host 10: the program did not use the emulated network")
			}
		})
	}
}

// TestSeccompSignals: a static program whose blocking connect, accept and
// UDP recvfrom are interrupted by SIGALRM every 200 µs loses no
// connection and no datagram, and hangs nowhere (with SA_RESTART the calls
// restart; without it recvfrom fails with EINTR and is retried). "slow":
// a blocking connect over a link delayed by 1 s is interrupted by one
// signal as on Linux: EINTR after 50 ms (well before the second) without
// SA_RESTART, the attempt going on (POLLOUT, SO_ERROR 0, a byte echoed
// after the second); restarted and successful with SA_RESTART.
func TestSeccompSignals(t *testing.T) {
	bin := buildStaticC(t, "sigloop")
	for _, mode := range []string{"connect", "udp", "slow"} {
		t.Run(mode, func(t *testing.T) {
			dir := swrapDir(t)
			addr := "127.0.0.10"
			if mode == "slow" {
				startBroker(t, dir, "SWRAP_NETEM=10->11 delay=1s")
				addr = "127.0.0.11" // the listener is host 11's
			} else {
				startBroker(t, dir)
			}
			ctx := testCtx(t, 60*time.Second)
			out, err := swrapRunCmd(ctx, t, dir, 10, nil, nil, bin, mode, addr).Output()
			if err != nil || !strings.HasPrefix(string(out), "OK ") {
				t.Fatalf("sigloop %s: %v: %s", mode, err, out)
			}
			if !hostSeen(t, dir, 10) {
				t.Errorf("the broker has no host 10: the program did not use the emulated network")
			}
		})
	}
}

// TestSeccompGoroutines: 16 goroutines × 100 connects of a Go client to a
// Go echo server, each echo intact.
func TestSeccompGoroutines(t *testing.T) {
	gonet := buildGonet(t)
	dir := swrapDir(t)
	ctx := testCtx(t, 120*time.Second)
	srvAddr := fmt.Sprintf("127.0.0.10:%d", randomPort())
	startLine(t, swrapRunCmd(ctx, t, dir, 10, nil, nil, gonet, "echo", srvAddr), "listening")
	out, err := swrapRunCmd(ctx, t, dir, 11, nil, nil, gonet, "connects", srvAddr, "16", "100").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok 1600" {
		t.Fatalf("connects: %v: %s", err, out)
	}
}

// TestSeccompShellExecsGo: with --seccomp (and SWRAP_SECCOMP=1) a shell
// script, itself dynamically linked, that runs a Go binary (as a child,
// and by exec) puts the Go binary on the emulated network: the whole tree
// is supervised.
func TestSeccompShellExecsGo(t *testing.T) {
	gonet := buildGonet(t)
	sh := needTool(t, "sh")
	dir := swrapDir(t)
	ctx := testCtx(t, 90*time.Second)
	srvAddr := fmt.Sprintf("127.0.0.10:%d", randomPort())
	startLine(t, swrapRunCmd(ctx, t, dir, 10, nil, nil, gonet, "serve", srvAddr), "listening")
	url := fmt.Sprintf("http://%s/blob?n=100000", srvAddr)
	want := sha(gonetPattern(100000))
	for _, c := range []struct {
		name  string
		flags []string
		env   []string
		cmd   string
	}{
		{"--seccomp child", []string{"--seccomp"}, nil, `"$0" get "$1"; echo done`},
		{"SWRAP_SECCOMP=1 exec", nil, []string{"SWRAP_SECCOMP=1"}, `exec "$0" get "$1"`},
	} {
		out, err := swrapRunCmd(ctx, t, dir, 11, c.flags, c.env, sh, "-c", c.cmd, gonet, url).CombinedOutput()
		f := strings.Fields(string(out))
		if err != nil || len(f) < 3 || f[1] != want || !strings.HasPrefix(f[2], "127.0.0.11:") {
			t.Errorf("%s: %v: %q, want sha256 %s from 127.0.0.11", c.name, err, out, want)
		}
	}
}

// TestSeccompNames: Go programs under the seccomp path use the emulated
// network's names through the broker's DNS server (127.0.0.253): with a
// resolv.conf that names it (in a private mount namespace), a Go client
// looks up host10 (both its addresses) and web.example.test (SWRAP_HOSTS),
// and fetches a page by name from the seccomp-wrapped Go server on host
// 10. The machine knows neither name. Go's resolver asks over a connected
// UDP socket (read and write, which the filter lets through), and over TCP
// with "options use-vc": both.
func TestSeccompNames(t *testing.T) {
	gonet := buildGonet(t)
	e := newNamesEnv(t, "nameserver 127.0.0.253\noptions timeout:1 attempts:1\n")
	tcpResolv := filepath.Join(e.tmp, "resolv-tcp.conf")
	writeFile(t, tcpResolv, "nameserver 127.0.0.253\noptions use-vc timeout:1 attempts:1\n", 0o644)
	unshare := needTool(t, "unshare")
	port := randomPort()
	startLine(t, swrapRunCmd(e.ctx, t, e.dir, 10, nil, nil, gonet, "serve", fmt.Sprintf("127.0.0.10:%d", port)), "listening")
	for _, resolv := range []string{e.resolv, tcpResolv} {
		run := func(args ...string) string {
			t.Helper()
			argv := append([]string{"-m", "sh", "-c", `mount --bind "$0" /etc/resolv.conf && exec "$@"`, resolv,
				binPath(t, "swrap"), "run", "--dir", e.dir, "--iface", "11", "--", gonet}, args...)
			cmd := exec.CommandContext(e.step(30*time.Second), unshare, argv...)
			cmd.Env = cleanEnv()
			cmd.WaitDelay = 5 * time.Second
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: gonet %v: %v: %s", filepath.Base(resolv), args, err, out)
			}
			return strings.TrimSpace(string(out))
		}
		if got := run("lookup", "host10"); got != "127.0.0.10 fd00::5357:5f0a" {
			t.Errorf("%s: lookup host10: %q, want 127.0.0.10 fd00::5357:5f0a", filepath.Base(resolv), got)
		}
		if got := run("lookup", "web.example.test"); got != "127.0.0.20" {
			t.Errorf("%s: lookup web.example.test: %q, want 127.0.0.20", filepath.Base(resolv), got)
		}
		want := sha(gonetPattern(100000))
		f := strings.Fields(run("get", fmt.Sprintf("http://host10:%d/blob?n=100000", port)))
		if len(f) < 3 || f[0] != "100000" || f[1] != want || !strings.HasPrefix(f[2], "127.0.0.11:") {
			t.Errorf("%s: get http://host10: %q, want 100000 bytes, sha256 %s, from 127.0.0.11", filepath.Base(resolv), f, want)
		}
	}
}

// TestSeccompPlaceholder: a fresh TCP socket under the seccomp path is a
// kernel TCP placeholder (recv ENOTCONN, write EPIPE, as Linux), and its
// first stopped call swaps in the broker's socket at the same descriptor:
// close-on-exec kept; a dup made before the swap is the same socket (its
// port); a forked child's non-blocking connect on an inherited placeholder
// is EINPROGRESS (O_NONBLOCK kept), and the parent's copy is then that
// connection (its port is the peer port the listener accepted).
func TestSeccompPlaceholder(t *testing.T) {
	bin := buildStaticC(t, "placeholder")
	dir := swrapDir(t)
	startBroker(t, dir)
	ctx := testCtx(t, 60*time.Second)
	out, err := swrapRunCmd(ctx, t, dir, 10, nil, nil, bin).Output()
	want := "recv=ENOTCONN write=EPIPE listen=1 cloexec=1 dup_same=1 dup_cloexec=0 child_nonblock_connect=1 accepted=1 parent_copy_connected=1\n"
	if err != nil || string(out) != want {
		t.Fatalf("placeholder: %v:\n got %q\nwant %q", err, out, want)
	}
	if !hostSeen(t, dir, 10) {
		t.Errorf("the broker has no host 10: the program did not use the emulated network")
	}
}

// TestSeccompNamesRedirect: under the seccomp path, with resolv.conf's only
// nameserver 127.0.0.1 (a native listener there counts what it gets), a Go
// program's resolver (UDP, and TCP with use-vc) and a static glibc
// getaddrinfo (connected UDP; res_send drops a reply whose source is not the
// server it asked) and a static musl getaddrinfo (unconnected UDP, sendto
// and recvfrom: musl drops a reply whose source is not a nameserver of
// resolv.conf) resolve host10 and a SWRAP_HOSTS name: the supervisor sends
// port 53 of the nameserver to the broker's DNS server and reports the
// nameserver as the replies' source. The listener gets nothing; unwrapped,
// the same Go lookup reaches it, which shows it would see a leak.
func TestSeccompNamesRedirect(t *testing.T) {
	gonet := buildGonet(t)
	resolve := buildStaticC(t, "resolve")
	resolveMusl := buildStaticCC(t, "musl-gcc", "resolve")
	count := countingDNS(t, "127.0.0.1")
	e := newNamesEnv(t, safeResolv)
	tcpResolv := filepath.Join(e.tmp, "resolv-tcp.conf")
	writeFile(t, tcpResolv, "nameserver 127.0.0.1\noptions use-vc timeout:1 attempts:1\n", 0o644)
	unshare := needTool(t, "unshare")
	run := func(resolv string, wrap bool, args ...string) (string, error) {
		t.Helper()
		argv := []string{"-m", "sh", "-c", `mount --bind "$0" /etc/resolv.conf && exec "$@"`, resolv}
		if wrap {
			argv = append(argv, binPath(t, "swrap"), "run", "--dir", e.dir, "--iface", "11", "--")
		}
		cmd := exec.CommandContext(e.step(30*time.Second), unshare, append(argv, args...)...)
		cmd.Env = cleanEnv()
		cmd.WaitDelay = 5 * time.Second
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	for _, resolv := range []string{e.resolv, tcpResolv} {
		rc := filepath.Base(resolv)
		for name, want := range map[string]string{"host10": "127.0.0.10 fd00::5357:5f0a", "web.example.test": "127.0.0.20"} {
			if got, err := run(resolv, true, gonet, "lookup", name); err != nil || got != want {
				t.Errorf("%s: gonet lookup %s: %v: %q, want %q", rc, name, err, got, want)
			}
		}
	}
	for name, want := range map[string]string{"host10": "127.0.0.10 22\nfd00::5357:5f0a 22", "web.example.test": "127.0.0.20 22"} {
		for libc, bin := range map[string]string{"glibc": resolve, "musl": resolveMusl} {
			out, err := run(e.resolv, true, bin, "canon", name)
			if got, w := lineSet(out), lineSet("canon "+name+"\n"+want); err != nil || !slices.Equal(got, w) {
				t.Errorf("static %s getaddrinfo %s: %v: %q, want %q", libc, name, err, got, w)
			}
		}
	}
	if n := count.Load(); n != 0 {
		t.Fatalf("seccomp-wrapped lookups sent %d messages to resolv.conf's nameserver 127.0.0.1", n)
	}
	run(e.resolv, false, gonet, "lookup", "nosuch.example.com")
	if count.Load() == 0 {
		t.Fatalf("an unwrapped Go lookup did not reach the counting listener: the test could not see a leak")
	}
}
