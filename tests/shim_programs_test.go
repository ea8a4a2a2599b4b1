package tests

// Real Debian programs (nc, curl, python3, socat, iperf3, tshark) under the
// real shim (bin/libswrap.so), each started only with LD_PRELOAD and the
// SOCKET_WRAPPER_* variables, as a user would. These are the acceptance
// criteria of the shim: what they check is what a user of the programs
// would notice — bytes intact (by hash), the addresses the programs print,
// exit statuses.
//
// Network safety: fd00::5357:5fNN shares a prefix with this machine's eth0,
// so every test first proves that the shim really wraps the programs it
// runs (requireShimActive); only 127.0.0.0/8 and ::1 are ever used unwrapped.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
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
	"testing"
	"time"

	"github.com/swrap/swrap/addrplan"
	"github.com/swrap/swrap/broker"
	"github.com/swrap/swrap/pcap"
	"github.com/swrap/swrap/swrapnet"
)

// shimFamily is an address family as these tests use it.
type shimFamily struct {
	name string
	addr func(host int) netip.Addr // host's emulated address
}

var shimPlan, _ = addrplan.New("")

var shimFamilies = []shimFamily{
	{"ipv4", shimPlan.IPv4},
	{"ipv6", shimPlan.IPv6},
}

// testCtx is a context that bounds everything one test runs.
func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newCmd returns a command bounded by ctx with environment env. It runs in
// its own process group, which is killed as a whole when ctx ends, so that
// forked children (socat's) die with it.
func newCmd(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 3 * time.Second
	return cmd
}

// runCmd runs cmd to completion and returns its output. It does not touch
// a testing.T, so goroutines may call it.
func runCmd(cmd *exec.Cmd) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// lineWriter keeps everything written to it and hands out complete lines.
type lineWriter struct {
	mu    sync.Mutex
	all   bytes.Buffer
	part  []byte
	lines chan string
}

func newLineWriter() *lineWriter { return &lineWriter{lines: make(chan string, 4096)} }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	w.part = append(w.part, p...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			break
		}
		select {
		case w.lines <- string(w.part[:i]):
		default: // nobody reads this many lines; all still has them
		}
		w.part = w.part[i+1:]
	}
	return len(p), nil
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

// proc is a program started by a test and killed, with its process group,
// when the test ends.
type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser // nil unless started interactive
	stdout *lineWriter
	stderr *lineWriter
	done   chan struct{}
	err    error // Wait's result, once done is closed
}

// startProc starts cmd (from newCmd). If interactive, its stdin is a pipe
// the test writes to; otherwise it is cmd.Stdin as set by the caller.
func startProc(t *testing.T, cmd *exec.Cmd, interactive bool) *proc {
	t.Helper()
	p := &proc{cmd: cmd, stdout: newLineWriter(), stderr: newLineWriter(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if interactive {
		w, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		p.stdin = w
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if p.stdin != nil {
			p.stdin.Close()
		}
		select {
		case <-p.done:
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
	return p
}

func (p *proc) pid() uint32 { return uint32(p.cmd.Process.Pid) }

// describe is the program, its pid and its output so far, for messages.
func (p *proc) describe() string {
	return fmt.Sprintf("%s (pid %d)\n--- stdout:\n%s\n--- stderr:\n%s", strings.Join(p.cmd.Args, " "),
		p.cmd.Process.Pid, p.stdout.String(), p.stderr.String())
}

func (p *proc) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, s); err != nil {
		t.Fatalf("writing to %s: %v", p.describe(), err)
	}
}

// nextLine returns the next line the program prints on w (its stdout or
// stderr), failing the test if none comes within d.
func (p *proc) nextLine(t *testing.T, w *lineWriter, d time.Duration) string {
	t.Helper()
	select {
	case l := <-w.lines:
		return l
	case <-time.After(d):
		t.Fatalf("no line from %s within %v", p.describe(), d)
	}
	return ""
}

// expectLine fails the test unless the next stdout line is want.
func (p *proc) expectLine(t *testing.T, want string) {
	t.Helper()
	if got := p.nextLine(t, p.stdout, 10*time.Second); got != want {
		t.Fatalf("%s printed %q, want %q", p.describe(), got, want)
	}
}

// wait waits up to d for the program to exit and returns Wait's error; a
// program still running after d is killed and fails the test.
func (p *proc) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		t.Fatalf("still running after %v, killed: %s", d, p.describe())
	}
	return nil
}

// mustSucceed fails the test unless the program exits 0 within d.
func (p *proc) mustSucceed(t *testing.T, d time.Duration) {
	t.Helper()
	if err := p.wait(t, d); err != nil {
		t.Fatalf("%v: %s", err, p.describe())
	}
}

// shimCtl caches one control connection per directory for STATUS queries.
var shimCtl sync.Map // dir -> *swrapnet.Host

// shimStatus fetches the STATUS of the broker serving dir, giving up after
// 5 s: a wedged broker must fail a test, not hang it.
func shimStatus(dir string) (broker.Status, error) {
	type result struct {
		st  broker.Status
		err error
	}
	ch := make(chan result, 1)
	go func() {
		st, err := shimStatusWait(dir)
		ch <- result{st, err}
	}()
	select {
	case r := <-ch:
		return r.st, r.err
	case <-time.After(5 * time.Second):
		return broker.Status{}, fmt.Errorf("the broker serving %s did not answer STATUS within 5 s", dir)
	}
}

// shimStatusWait is shimStatus without the time limit.
func shimStatusWait(dir string) (broker.Status, error) {
	var st broker.Status
	var h *swrapnet.Host
	if v, ok := shimCtl.Load(dir); ok {
		h = v.(*swrapnet.Host)
	} else {
		var err error
		if h, err = swrapnet.Join(dir, 1); err != nil {
			return st, err
		}
		shimCtl.Store(dir, h)
	}
	b, err := h.Status()
	if err != nil {
		shimCtl.Delete(dir) // the broker may have been restarted
		return st, err
	}
	err = json.Unmarshal(b, &st)
	return st, err
}

// waitSocket polls the broker's STATUS until a socket matches, and returns
// it; after 10 s it fails the test, listing the sockets it saw.
func waitSocket(t *testing.T, dir, what string, match func(broker.SocketStatus) bool) broker.SocketStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := shimStatus(dir)
		if err == nil {
			for _, s := range st.Sockets {
				if match(s) {
					return s
				}
			}
		}
		if time.Now().After(deadline) {
			js, _ := json.MarshalIndent(st.Sockets, "", "  ")
			t.Fatalf("no socket in the broker's STATUS for %s after 10 s (last error %v); sockets:\n%s", what, err, js)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// requirePreloadable fails the test unless path (after symlinks) is a
// dynamically linked, non-setuid executable, i.e. one that LD_PRELOAD
// reaches.
func requirePreloadable(t *testing.T, path string) {
	t.Helper()
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
		t.Fatalf("%s is setuid/setgid: LD_PRELOAD would not apply, so the shim could not wrap it", real)
	}
	if interp := shebang(real); interp != "" {
		// A script (e.g. a pyenv shim): what matters is the interpreter,
		// and the runtime probe in requireShimActive checks the program.
		requirePreloadable(t, interp)
		return
	}
	f, err := elf.Open(real)
	if err != nil {
		t.Fatalf("%s: %v", real, err)
	}
	defer f.Close()
	for _, ph := range f.Progs {
		if ph.Type == elf.PT_INTERP {
			return
		}
	}
	t.Fatalf("%s is statically linked: LD_PRELOAD would not apply, so the shim could not wrap it", real)
}

// shebang returns the interpreter a "#!" script runs (resolving
// /usr/bin/env NAME on PATH), or "" for any other file.
func shebang(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b := make([]byte, 256)
	n, _ := io.ReadFull(f, b)
	line, _, _ := bytes.Cut(b[:n], []byte("\n"))
	rest, ok := bytes.CutPrefix(line, []byte("#!"))
	if !ok {
		return ""
	}
	fields := strings.Fields(string(rest))
	if len(fields) == 0 {
		return ""
	}
	if filepath.Base(fields[0]) == "env" && len(fields) > 1 {
		if p, err := exec.LookPath(fields[1]); err == nil {
			return p
		}
		return ""
	}
	return fields[0]
}

var pythonExe struct {
	once sync.Once
	path string
	err  error
}

// pythonTool is needTool for python3, resolved to the interpreter itself
// (sys.executable) so that a wrapper script on PATH, such as pyenv's, does
// not run (and get wrapped) at every start.
func pythonTool(t *testing.T) string {
	t.Helper()
	py := needTool(t, "python3")
	pythonExe.once.Do(func() {
		out, err := exec.Command(py, "-c", "import sys; print(sys.executable)").Output()
		pythonExe.path, pythonExe.err = strings.TrimSpace(string(out)), err
	})
	if pythonExe.err != nil || pythonExe.path == "" {
		t.Fatalf("%s cannot name its interpreter: %v", py, pythonExe.err)
	}
	return pythonExe.path
}

// shimProbe reports whether the shim is active, then holds a listening
// socket on 127.0.0.10 until its stdin closes.
const shimProbe = `
import ctypes, socket, sys
f = getattr(ctypes.CDLL(None), "socket_wrapper_enabled", None)
if f is None:
    print("enabled=absent", flush=True)
    sys.exit(1)
f.restype = ctypes.c_bool
print("enabled=%s" % f(), flush=True)
s = socket.socket()
s.bind(("127.0.0.10", 0))
s.listen(1)
print("listening", flush=True)
sys.stdin.read()
`

// requireShimActive proves that the shim really wraps programs for dir
// before a test lets any program use emulated addresses: every program the
// test will run (progs) is one LD_PRELOAD reaches, and a wrapped python3
// reports socket_wrapper_enabled() and has its socket listed in the
// broker's STATUS. Call it first in every test that uses emulated
// addresses.
func requireShimActive(t *testing.T, dir string, progs ...string) {
	t.Helper()
	py := pythonTool(t)
	for _, p := range append(progs, py) {
		requirePreloadable(t, p)
	}
	ctx := testCtx(t, 30*time.Second)
	p := startProc(t, newCmd(ctx, wrapEnv(t, dir, 10), py, "-c", shimProbe), true)
	if l := p.nextLine(t, p.stdout, 10*time.Second); l != "enabled=True" {
		t.Fatalf("the shim is not active (probe printed %q): %s", l, p.describe())
	}
	p.nextLine(t, p.stdout, 10*time.Second)
	waitSocket(t, dir, "the wrapped probe's listening socket", func(s broker.SocketStatus) bool {
		return s.PID == p.pid() && s.Host == 10 && strings.HasPrefix(s.Local, "127.0.0.10:")
	})
	p.stdin.Close()
	p.mustSucceed(t, 10*time.Second)
}

// isListener reports whether s is p's TCP listening socket on ap.
func isListener(p *proc, ap netip.AddrPort) func(broker.SocketStatus) bool {
	return func(s broker.SocketStatus) bool {
		return s.PID == p.pid() && s.Proto == "tcp" && s.TCP == "LISTEN" && s.Local == ap.String()
	}
}

// TestSeedNetcat is the seed example: `nc -l ADDR 7` on host 10 and
// `nc ADDR 7` on host 11. Lines typed at the client reach the server, the
// server's reply reaches the client, and the server sees the client as
// host 11 — in nc -v's message and in the broker's STATUS. nc runs with -n
// (numeric only): without it, nc -v looks the peer up in DNS, and glibc's
// resolver sockets are internal to libc, out of LD_PRELOAD's reach, so the
// query would leave the machine.
func TestSeedNetcat(t *testing.T) {
	nc := needTool(t, "nc")
	for _, fam := range shimFamilies {
		t.Run(fam.name, func(t *testing.T) {
			dir := swrapDir(t)
			requireShimActive(t, dir, nc)
			ctx := testCtx(t, 60*time.Second)
			server, client := fam.addr(10), fam.addr(11)
			srvAP := netip.AddrPortFrom(server, 7)

			srv := startProc(t, newCmd(ctx, wrapEnv(t, dir, 10), nc, "-n", "-N", "-v", "-l", server.String(), "7"), true)
			waitSocket(t, dir, "nc -l on "+srvAP.String(), isListener(srv, srvAP))
			cli := startProc(t, newCmd(ctx, wrapEnv(t, dir, 11), nc, "-n", "-N", "-v", server.String(), "7"), true)

			lines := []string{"hello from host 11", "a second line, typed later"}
			for _, l := range lines {
				cli.send(t, l+"\n")
				srv.expectLine(t, l)
			}
			reply := "reply from host 10"
			srv.send(t, reply+"\n")
			cli.expectLine(t, reply)

			// While connected, the broker lists both ends with host 11 as
			// the server's peer.
			conn := waitSocket(t, dir, "the server's connection", func(s broker.SocketStatus) bool {
				return s.PID == srv.pid() && s.Proto == "tcp" && s.Local == srvAP.String() && s.Remote != ""
			})
			peer, err := netip.ParseAddrPort(conn.Remote)
			if err != nil || peer.Addr() != client {
				t.Errorf("server's connection has remote %q, want %s:PORT", conn.Remote, client)
			}
			waitSocket(t, dir, "the client's connection", func(s broker.SocketStatus) bool {
				return s.PID == cli.pid() && s.Proto == "tcp" && s.Local == peer.String() && s.Remote == srvAP.String() && s.TCP == "ESTABLISHED"
			})

			cli.stdin.Close()
			srv.stdin.Close()
			cli.mustSucceed(t, 10*time.Second)
			srv.mustSucceed(t, 10*time.Second)
			if got, want := srv.stdout.String(), strings.Join(lines, "\n")+"\n"; got != want {
				t.Errorf("server printed %q, want %q", got, want)
			}
			if got := cli.stdout.String(); got != reply+"\n" {
				t.Errorf("client printed %q, want %q", got, reply+"\n")
			}
			if want := fmt.Sprintf("Connection received on %s %d", client, peer.Port()); !strings.Contains(srv.stderr.String(), want) {
				t.Errorf("server's nc -v output lacks %q:\n%s", want, srv.stderr.String())
			}
			if want := fmt.Sprintf("Connection to %s 7 port", server); !strings.Contains(cli.stderr.String(), want) {
				t.Errorf("client's nc -v output lacks %q:\n%s", want, cli.stderr.String())
			}
		})
	}
}

// TestCurlHTTPDownload: curl on host 11 downloads 10 MiB from python3's
// http.server on host 10, intact, and both sides report the emulated
// addresses.
func TestCurlHTTPDownload(t *testing.T) {
	curl := needTool(t, "curl")
	py := pythonTool(t)
	root := t.TempDir()
	data := make([]byte, 10<<20)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(root, "file"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	for _, fam := range shimFamilies {
		t.Run(fam.name, func(t *testing.T) {
			dir := swrapDir(t)
			requireShimActive(t, dir, curl, py)
			ctx := testCtx(t, 90*time.Second)
			server, client := fam.addr(10), fam.addr(11)
			srvAP := netip.AddrPortFrom(server, 8000)
			srv := startProc(t, newCmd(ctx, wrapEnv(t, dir, 10), py, "-m", "http.server", "8000",
				"--bind", server.String(), "--directory", root), false)
			waitSocket(t, dir, "http.server on "+srvAP.String(), isListener(srv, srvAP))

			base := "http://" + srvAP.String() + "/"
			clientEnv := wrapEnv(t, dir, 11)
			deadline := time.Now().Add(10 * time.Second)
			for {
				code, stderr, err := runCmd(newCmd(ctx, clientEnv, curl, "-g", "-sS", "-o", "/dev/null",
					"-w", "%{http_code}", "--max-time", "3", base))
				if err == nil && code == "200" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("http.server not answering after 10 s: curl %v %q %s\n%s", err, code, stderr, srv.describe())
				}
				time.Sleep(50 * time.Millisecond)
			}

			out := filepath.Join(t.TempDir(), "file")
			info, stderr, err := runCmd(newCmd(ctx, clientEnv, curl, "-g", "-sS", "--fail", "--max-time", "60",
				"-o", out, "-w", "%{remote_ip} %{local_ip} %{size_download}", base+"file"))
			if err != nil {
				t.Fatalf("curl %sfile: %v\n%s\nserver: %s", base, err, stderr, srv.describe())
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(got); sum != want {
				t.Errorf("downloaded %d bytes with sha256 %x, want %d bytes with %x", len(got), sum, len(data), want)
			}
			f := strings.Fields(info)
			if len(f) != 3 || f[0] != server.String() || f[1] != client.String() || f[2] != strconv.Itoa(len(data)) {
				t.Errorf("curl reports remote_ip local_ip size_download %q, want %q", info,
					fmt.Sprintf("%s %s %d", server, client, len(data)))
			}
			// http.server logs the client's address with each request.
			logLine := client.String() + ` - - `
			for end := time.Now().Add(2 * time.Second); !strings.Contains(srv.stderr.String(), `"GET /file HTTP/1.1" 200`); {
				if time.Now().After(end) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			for _, l := range strings.Split(srv.stderr.String(), "\n") {
				if strings.Contains(l, `"GET /file HTTP/1.1" 200`) {
					if !strings.HasPrefix(l, logLine) {
						t.Errorf("http.server logged %q, want the client address %s", l, client)
					}
					return
				}
			}
			t.Errorf("http.server did not log the download: %s", srv.describe())
		})
	}
}

// asyncioPayload is asyncio_echo.py's data for connection i.
func asyncioPayload(i, size int) []byte {
	var out []byte
	for block := 0; len(out) < size; block++ {
		s := sha256.Sum256([]byte(fmt.Sprintf("conn %d block %d", i, block)))
		out = append(out, s[:]...)
	}
	return out[:size]
}

// TestAsyncioEcho: a python3 asyncio echo server on host 10 and a client on
// host 11 with 100 concurrent connections (non-blocking connect, epoll),
// 64 KiB each way on each: every byte comes back.
func TestAsyncioEcho(t *testing.T) {
	py := pythonTool(t)
	script := filepath.Join(repoRoot, "tests", "testdata", "asyncio_echo.py")
	const conns, size = 100, 64 << 10
	total := sha256.New()
	for i := range conns {
		total.Write(asyncioPayload(i, size))
	}
	wantOut := fmt.Sprintf("OK %d %d %x\n", conns, conns*size, total.Sum(nil))
	for _, fam := range shimFamilies {
		t.Run(fam.name, func(t *testing.T) {
			dir := swrapDir(t)
			requireShimActive(t, dir, py)
			ctx := testCtx(t, 90*time.Second)
			server, client := fam.addr(10), fam.addr(11)
			srvAP := netip.AddrPortFrom(server, 7000)
			srv := startProc(t, newCmd(ctx, wrapEnv(t, dir, 10), py, script, "server", server.String(), "7000"), false)
			waitSocket(t, dir, "asyncio server on "+srvAP.String(), isListener(srv, srvAP))
			cli := startProc(t, newCmd(ctx, wrapEnv(t, dir, 11), py, script, "client", server.String(), "7000",
				strconv.Itoa(conns), strconv.Itoa(size), client.String()), false)
			if err := cli.wait(t, 60*time.Second); err != nil {
				t.Fatalf("client: %v: %s\nserver: %s", err, cli.describe(), srv.describe())
			}
			if got := cli.stdout.String(); got != wantOut {
				t.Errorf("client printed %q, want %q\nstderr: %s", got, wantOut, cli.stderr.String())
			}
			select {
			case <-srv.done:
				t.Errorf("server exited: %v: %s", srv.err, srv.describe())
			default:
			}
		})
	}
}

// parseSocatAddr parses socat's rendering of an address
// ("127.0.0.11", "[fd00:0000:...:5f0b]").
func parseSocatAddr(s string) (netip.Addr, error) {
	return netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
}

// TestSocatUDP: socat answers datagrams on host 10, one forked child per
// datagram (UDP-RECVFROM,fork), with the sender's address as it saw it and
// the line it got; a socat client on host 11 gets every answer intact.
func TestSocatUDP(t *testing.T) {
	socat := needTool(t, "socat")
	for _, fam := range shimFamilies {
		t.Run(fam.name, func(t *testing.T) {
			dir := swrapDir(t)
			requireShimActive(t, dir, socat, "/bin/sh")
			ctx := testCtx(t, 60*time.Second)
			server, client := fam.addr(10), fam.addr(11)
			srvAP := netip.AddrPortFrom(server, 9000)
			v := "4"
			bracket := server.String()
			if server.Is6() {
				v, bracket = "6", "["+server.String()+"]"
			}
			srv := startProc(t, newCmd(ctx, wrapEnv(t, dir, 10), socat,
				"UDP"+v+"-RECVFROM:9000,bind="+bracket+",fork",
				`SYSTEM:read -r l; echo "$SOCAT_PEERADDR:$SOCAT_PEERPORT $l"`), false)
			waitSocket(t, dir, "socat's UDP socket on "+srvAP.String(), func(s broker.SocketStatus) bool {
				return s.PID == srv.pid() && s.Proto == "udp" && s.Local == srvAP.String()
			})
			cli := startProc(t, newCmd(ctx, wrapEnv(t, dir, 11), socat, "-", "UDP"+v+":"+srvAP.String()), true)
			var port string
			for i := range 5 {
				b := make([]byte, 300+100*i)
				rand.Read(b)
				line := fmt.Sprintf("datagram %d %x", i, b)
				cli.send(t, line+"\n")
				got := cli.nextLine(t, cli.stdout, 10*time.Second)
				from, rest, _ := strings.Cut(got, " ")
				if rest != line {
					t.Fatalf("answer %d is %q, want the line sent, %q", i, got, line)
				}
				colon := strings.LastIndexByte(from, ':')
				if colon < 0 {
					t.Fatalf("answer %d names sender %q", i, from)
				}
				a, err := parseSocatAddr(from[:colon])
				if err != nil || a != client {
					t.Errorf("server saw datagram %d from %s, want %s", i, from, client)
				}
				if port == "" {
					port = from[colon+1:]
				} else if port != from[colon+1:] {
					t.Errorf("client's port changed from %s to %s", port, from[colon+1:])
				}
			}
			cli.stdin.Close()
			cli.mustSucceed(t, 10*time.Second)
			select {
			case <-srv.done:
				t.Errorf("server exited: %v: %s", srv.err, srv.describe())
			default:
			}
		})
	}
}

// iperfResult is the part of iperf3 --json output the test checks.
type iperfResult struct {
	Error string `json:"error"`
	Start struct {
		Connected []struct {
			LocalHost  string `json:"local_host"`
			RemoteHost string `json:"remote_host"`
			RemotePort int    `json:"remote_port"`
		} `json:"connected"`
	} `json:"start"`
	End struct {
		Sum         map[string]any `json:"sum"`
		SumSent     map[string]any `json:"sum_sent"`
		SumReceived map[string]any `json:"sum_received"`
	} `json:"end"`
}

// TestIperf3: iperf3 TCP and UDP from host 11 to a one-off server on host
// 10: data arrives, the addresses are the emulated ones, and for UDP the
// loss figure is reported.
func TestIperf3(t *testing.T) {
	iperf := needTool(t, "iperf3")
	for _, c := range []struct {
		name string
		fam  shimFamily
		udp  bool
	}{
		{"tcp", shimFamilies[0], false},
		{"udp", shimFamilies[0], true},
		{"tcp-ipv6", shimFamilies[1], false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := swrapDir(t)
			requireShimActive(t, dir, iperf)
			ctx := testCtx(t, 60*time.Second)
			server, client := c.fam.addr(10), c.fam.addr(11)
			srvAP := netip.AddrPortFrom(server, 5201)
			srv := startProc(t, newCmd(ctx, wrapEnv(t, dir, 10), iperf, "-s", "-1", "-B", server.String(), "-p", "5201"), false)
			waitSocket(t, dir, "iperf3 -s on "+srvAP.String(), isListener(srv, srvAP))
			args := []string{"-c", server.String(), "-p", "5201", "-t", "2", "--json"}
			if c.udp {
				args = append(args, "-u", "-b", "100M")
			}
			cli := startProc(t, newCmd(ctx, wrapEnv(t, dir, 11), iperf, args...), false)
			select {
			case <-cli.done:
			case <-time.After(20 * time.Second):
				// iperf3 -t 2 takes about 2.5 s: say whether the broker
				// still answers before giving up.
				_, serr := shimStatus(dir)
				t.Fatalf("iperf3 client still running after 20 s (broker STATUS: %v): %s\nserver: %s", serr, cli.describe(), srv.describe())
			}
			err := cli.err
			var r iperfResult
			if jerr := json.Unmarshal([]byte(cli.stdout.String()), &r); jerr != nil {
				t.Fatalf("iperf3 client (%v) printed no JSON (%v): %s\nserver: %s", err, jerr, cli.describe(), srv.describe())
			}
			if err != nil || r.Error != "" {
				t.Fatalf("iperf3 client failed: %v, error %q\nserver: %s", err, r.Error, srv.describe())
			}
			if err := srv.wait(t, 10*time.Second); err != nil {
				t.Errorf("iperf3 server: %v: %s", err, srv.describe())
			}
			if len(r.Start.Connected) == 0 {
				t.Fatalf("no start.connected in iperf3's JSON")
			}
			cn := r.Start.Connected[0]
			if cn.LocalHost != client.String() || cn.RemoteHost != server.String() || cn.RemotePort != 5201 {
				t.Errorf("iperf3 connected %s -> %s:%d, want %s -> %s", cn.LocalHost, cn.RemoteHost, cn.RemotePort, client, srvAP)
			}
			sent, _ := r.End.SumSent["bytes"].(float64)
			received, _ := r.End.SumReceived["bytes"].(float64)
			if sent <= 0 || received <= 0 {
				t.Errorf("iperf3 sent %v bytes, receiver got %v, want both > 0", sent, received)
			}
			if c.udp {
				lost, ok := r.End.Sum["lost_percent"].(float64)
				packets, _ := r.End.Sum["packets"].(float64)
				if !ok || packets <= 0 {
					t.Errorf("iperf3 UDP reports lost_percent %v (present %v) over %v packets; want a figure over > 0 packets", r.End.Sum["lost_percent"], ok, packets)
				}
				t.Logf("UDP: %v packets, %.2f%% lost", packets, lost)
			}
			t.Logf("%s: %.0f bytes sent, %.0f received, %.2f Gbit/s", c.name, sent, received,
				received*8/2/1e9)
		})
	}
}

// TestManyHosts: 64 hosts with a server each (socat on 127.0.0.N:7,
// answering with the peer's address and an echo) and a client on another
// host talking to it, all at once; every exchange is intact.
func TestManyHosts(t *testing.T) {
	socat := needTool(t, "socat")
	dir := swrapDir(t)
	requireShimActive(t, dir, socat, "/bin/sh", "/bin/cat")
	ctx := testCtx(t, 120*time.Second)
	const hosts = 64
	servers := make([]*proc, hosts+1)
	for n := 1; n <= hosts; n++ {
		a := shimPlan.IPv4(n)
		servers[n] = startProc(t, newCmd(ctx, wrapEnv(t, dir, n), socat,
			"TCP4-LISTEN:7,bind="+a.String()+",reuseaddr", "SYSTEM:echo $SOCAT_PEERADDR; exec cat"), false)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := shimStatus(dir)
		listening := 0
		if err == nil {
			for _, s := range st.Sockets {
				if s.Proto == "tcp" && s.TCP == "LISTEN" && s.Host >= 1 && s.Host <= hosts &&
					s.PID == servers[s.Host].pid() && s.Local == shimPlan.IPv4(s.Host).String()+":7" {
					listening++
				}
			}
		}
		if listening == hosts {
			break
		}
		if time.Now().After(deadline) {
			for n := 1; n <= hosts; n++ {
				select {
				case <-servers[n].done:
					t.Errorf("server %d exited: %v: %s", n, servers[n].err, servers[n].describe())
				default:
				}
			}
			t.Fatalf("only %d of %d servers listening after 20 s (status error %v)", listening, hosts, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	envs := make([]([]string), hosts+1)
	for n := 1; n <= hosts; n++ {
		envs[n] = wrapEnv(t, dir, n)
	}
	errs := make([]string, hosts+1)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for n := 1; n <= hosts; n++ {
		m := n%hosts + 1 // the client's host
		b := make([]byte, 1024)
		rand.Read(b)
		payload := fmt.Sprintf("from host %d to host %d: %x\n", m, n, b)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := newCmd(ctx, envs[m], socat, "-t", "10", "-", "TCP4:"+shimPlan.IPv4(n).String()+":7")
			cmd.Stdin = strings.NewReader(payload)
			out, stderr, err := runCmd(cmd)
			want := shimPlan.IPv4(m).String() + "\n" + payload
			if err != nil || out != want {
				errs[n] = fmt.Sprintf("client on host %d to host %d: %v; got %d bytes (sha256 %x), want %d (sha256 %x)\nstdout %.200q\nstderr %s",
					m, n, err, len(out), sha256.Sum256([]byte(out)), len(want), sha256.Sum256([]byte(want)), out, stderr)
			}
		}()
	}
	wg.Wait()
	failed := 0
	for n := 1; n <= hosts; n++ {
		if errs[n] != "" {
			failed++
			if failed <= 5 {
				t.Error(errs[n])
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d exchanges failed", failed, hosts)
	}
	for n := 1; n <= hosts; n++ {
		if err := servers[n].wait(t, 10*time.Second); err != nil {
			t.Errorf("server on host %d: %v: %s", n, err, servers[n].describe())
		}
	}
}

// stopBrokerWait sends SIGTERM to the broker serving dir and waits until it
// has exited, so that its capture file is complete.
func stopBrokerWait(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "swrap", "broker.lock"))
	if err != nil {
		t.Fatalf("no broker.lock: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Fatalf("broker.lock holds %q", b)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM to broker %d: %v", pid, err)
	}
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return
		}
	}
	t.Fatalf("broker %d still running 10 s after SIGTERM", pid)
}

// tsharkFrame is one TCP frame as tshark decodes it.
type tsharkFrame struct {
	src, dst           netip.AddrPort
	syn, ack, fin, rst bool
	seq, ackNo         uint64
	payload            []byte
}

// tsharkCount runs tshark on file with checksum validation and filter and
// returns the number of frames that match.
func tsharkCount(t *testing.T, ctx context.Context, tshark, file, filter string) int {
	t.Helper()
	out, stderr, err := runCmd(newCmd(ctx, cleanEnv(), tshark, "-n", "-r", file,
		"-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
		"-Y", filter, "-T", "fields", "-e", "frame.number"))
	if err != nil {
		t.Fatalf("tshark -Y %q: %v\n%s", filter, err, stderr)
	}
	return len(strings.Fields(out))
}

// TestShimCaptureNetcat: the capture of the nc example
// (SOCKET_WRAPPER_PCAP_FILE) opens in tshark with no bad checksum, and
// holds exactly one real TCP connection: three-way handshake, the data,
// both FINs, each frame once. Named .pcapng, it is pcapng with every frame
// on its sender's interface.
func TestShimCaptureNetcat(t *testing.T) {
	nc := needTool(t, "nc")
	tshark := needTool(t, "tshark")
	for _, fam := range shimFamilies {
		for _, ext := range []string{"pcap", "pcapng"} {
			t.Run(fam.name+"/"+ext, func(t *testing.T) {
				dir := swrapDir(t)
				requireShimActive(t, dir, nc)
				ctx := testCtx(t, 60*time.Second)
				capFile := filepath.Join(t.TempDir(), "nc."+ext)
				server, client := fam.addr(10), fam.addr(11)
				srvAP := netip.AddrPortFrom(server, 7)
				request, reply := "hello from host 11\nsecond line\n", "reply from host 10\n"

				srvCmd := newCmd(ctx, wrapEnv(t, dir, 10, "SOCKET_WRAPPER_PCAP_FILE="+capFile), nc, "-n", "-N", "-l", server.String(), "7")
				srvCmd.Stdin = strings.NewReader(reply)
				srv := startProc(t, srvCmd, false)
				waitSocket(t, dir, "nc -l on "+srvAP.String(), isListener(srv, srvAP))
				cliCmd := newCmd(ctx, wrapEnv(t, dir, 11, "SOCKET_WRAPPER_PCAP_FILE="+capFile), nc, "-n", "-N", server.String(), "7")
				cliCmd.Stdin = strings.NewReader(request)
				cli := startProc(t, cliCmd, false)
				cli.mustSucceed(t, 10*time.Second)
				srv.mustSucceed(t, 10*time.Second)
				if srv.stdout.String() != request || cli.stdout.String() != reply {
					t.Fatalf("exchange failed: server got %q, client got %q", srv.stdout.String(), cli.stdout.String())
				}
				stopBrokerWait(t, dir)

				ip := "ip"
				if server.Is6() {
					ip = "ipv6"
				}
				if n := tsharkCount(t, ctx, tshark, capFile, `ip.checksum.status == "Bad" || tcp.checksum.status == "Bad" || udp.checksum.status == "Bad"`); n != 0 {
					t.Errorf("%d frames have a bad checksum", n)
				}
				analysis := "tcp.analysis.retransmission || tcp.analysis.fast_retransmission || tcp.analysis.spurious_retransmission || " +
					"tcp.analysis.duplicate_ack || tcp.analysis.out_of_order || tcp.analysis.lost_segment || tcp.analysis.ack_lost_segment"
				if n := tsharkCount(t, ctx, tshark, capFile, analysis); n != 0 {
					out, _, _ := runCmd(newCmd(ctx, cleanEnv(), tshark, "-n", "-r", capFile, "-Y", analysis))
					t.Errorf("tshark flags %d frames as retransmitted, duplicate or out of order:\n%s", n, out)
				}

				// Every frame, with its checksums verified (IPv6 has no header
				// checksum: its column is just the version).
				ipCheck := "ip.checksum.status"
				if ip == "ipv6" {
					ipCheck = "ipv6.version"
				}
				out, stderr, err := runCmd(newCmd(ctx, cleanEnv(), tshark, "-n", "-r", capFile,
					"-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-T", "fields",
					"-E", "separator=/t", "-E", "occurrence=f", "-e", "frame.number", "-e", ipCheck, "-e", "tcp.checksum.status",
					"-e", ip+".src", "-e", "tcp.srcport", "-e", ip+".dst", "-e", "tcp.dstport",
					"-e", "tcp.flags.syn", "-e", "tcp.flags.ack", "-e", "tcp.flags.fin", "-e", "tcp.flags.reset",
					"-e", "tcp.seq_raw", "-e", "tcp.ack_raw", "-e", "tcp.payload"))
				if err != nil {
					t.Fatalf("tshark: %v\n%s", err, stderr)
				}
				frames := parseTsharkFrames(t, out, ip == "ip")
				checkNetcatConnection(t, frames, netip.AddrPortFrom(client, 0), srvAP, request, reply, out)

				// Each frame once: no record is an exact copy of another.
				f, err := pcap.ReadFile(capFile)
				if err != nil {
					t.Fatal(err)
				}
				seen := map[string]int{}
				for i, r := range f.Records {
					if j, ok := seen[string(r.Data)]; ok {
						t.Errorf("frame %d is an exact copy of frame %d", i+1, j+1)
					}
					seen[string(r.Data)] = i
				}
				if ext == "pcapng" {
					names := map[string]string{server.String(): "host10", client.String(): "host11"}
					for _, r := range tsharkFields(t, tshark, capFile, "", "frame.interface_name", ip+".src") {
						if names[r[1]] != r[0] {
							t.Errorf("frame from %s on interface %q", r[1], r[0])
						}
					}
				}
			})
		}
	}
}

// parseTsharkFrames parses tshark's fields output (frame number, IP and
// TCP checksum status, then the fields of tsharkFrame), failing the test on
// a frame that is not TCP or whose checksums were not verified as good.
func parseTsharkFrames(t *testing.T, out string, ipv4 bool) []tsharkFrame {
	t.Helper()
	flag := func(s string) bool { return s == "1" || s == "True" }
	const good = "1" // PROTO_CHECKSUM_E_GOOD
	var frames []tsharkFrame
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 14 {
			t.Fatalf("tshark line %q has %d fields, want 14 (a TCP frame)", l, len(f))
		}
		if (ipv4 && f[1] != good) || f[2] != good {
			t.Errorf("frame %s: IP checksum status %q, TCP checksum status %q, want both verified good (%s)", f[0], f[1], f[2], good)
		}
		f = f[3:]
		var fr tsharkFrame
		src, err1 := netip.ParseAddr(f[0])
		dst, err2 := netip.ParseAddr(f[2])
		sp, err3 := strconv.Atoi(f[1])
		dp, err4 := strconv.Atoi(f[3])
		seq, err5 := strconv.ParseUint(f[8], 10, 32)
		ack, err6 := strconv.ParseUint(f[9], 10, 32)
		payload, err7 := hex.DecodeString(strings.ReplaceAll(f[10], ":", ""))
		for _, err := range []error{err1, err2, err3, err4, err5, err6, err7} {
			if err != nil {
				t.Fatalf("tshark line %q: %v", l, err)
			}
		}
		fr.src, fr.dst = netip.AddrPortFrom(src, uint16(sp)), netip.AddrPortFrom(dst, uint16(dp))
		fr.syn, fr.ack, fr.fin, fr.rst = flag(f[4]), flag(f[5]), flag(f[6]), flag(f[7])
		fr.seq, fr.ackNo, fr.payload = seq, ack, payload
		frames = append(frames, fr)
	}
	return frames
}

// checkNetcatConnection checks that frames are one TCP connection from
// client (any port) to server: handshake, request and reply data, one FIN
// each way, no RST.
func checkNetcatConnection(t *testing.T, frames []tsharkFrame, client, server netip.AddrPort, request, reply, dump string) {
	t.Helper()
	if len(frames) < 3 {
		t.Fatalf("only %d frames:\n%s", len(frames), dump)
	}
	syn, synack, ack := frames[0], frames[1], frames[2]
	if !syn.syn || syn.ack || syn.src.Addr() != client.Addr() || syn.dst != server {
		t.Fatalf("first frame is not a SYN from %s to %s:\n%s", client.Addr(), server, dump)
	}
	cl := syn.src
	if !synack.syn || !synack.ack || synack.src != server || synack.dst != cl || synack.ackNo != (syn.seq+1)&0xffffffff {
		t.Errorf("second frame is not the SYN-ACK answering the SYN:\n%s", dump)
	}
	if ack.syn || !ack.ack || ack.src != cl || ack.seq != (syn.seq+1)&0xffffffff || ack.ackNo != (synack.seq+1)&0xffffffff {
		t.Errorf("third frame is not the ACK completing the handshake:\n%s", dump)
	}
	var up, down []byte
	var finUp, finDown, rst int
	for i, f := range frames {
		switch {
		case f.src == cl && f.dst == server:
			up = append(up, f.payload...)
			if f.fin {
				finUp++
			}
		case f.src == server && f.dst == cl:
			down = append(down, f.payload...)
			if f.fin {
				finDown++
			}
		default:
			t.Errorf("frame %d (%s -> %s) is not part of the connection", i+1, f.src, f.dst)
		}
		if f.rst {
			rst++
		}
	}
	if string(up) != request || string(down) != reply {
		t.Errorf("captured data %q from client and %q from server, want %q and %q", up, down, request, reply)
	}
	if finUp != 1 || finDown != 1 || rst != 0 {
		t.Errorf("captured %d FIN from the client, %d from the server, %d RST; want 1, 1, 0:\n%s", finUp, finDown, rst, dump)
	}
}
