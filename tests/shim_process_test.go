package tests

// Process-level behaviour of the real shim: threads, fork and signal
// handlers inside it; many processes starting one broker together; and the
// shim preloaded without SOCKET_WRAPPER_DIR, where it must be invisible.

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swrap/swrap/swrapnet"
)

// buildTestdataC compiles tests/testdata/NAME.c with warnings as errors and
// returns the binary's path.
func buildTestdataC(t *testing.T, name string) string {
	t.Helper()
	gcc := needTool(t, "gcc")
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command(gcc, "-Wall", "-Wextra", "-Werror", "-O1", "-pthread",
		"-o", out, filepath.Join(repoRoot, "tests", "testdata", name+".c"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc %s.c: %v\n%s", name, err, b)
	}
	return out
}

// TestThreads runs tests/testdata/threads.c under the shim on host 10:
// 16 threads × 100 connect/echo/close cycles against an echo server thread
// in the same process; 50 forks while other threads are inside the shim,
// each child using a socket itself; and the same with SIGALRM every 200 µs
// and pthread_atfork handlers that write() to a pipe. No deadlock (60 s),
// every echo intact.
func TestThreads(t *testing.T) {
	bin := buildTestdataC(t, "threads")
	for _, mode := range []string{"threads", "fork", "signal"} {
		t.Run(mode, func(t *testing.T) {
			dir := swrapDir(t)
			requireShimActive(t, dir, bin)
			ctx := testCtx(t, 70*time.Second)
			p := startProc(t, newCmd(ctx, wrapEnv(t, dir, 10), bin, mode, "127.0.0.10"), false)
			select {
			case <-p.done:
			case <-time.After(60 * time.Second):
				// Where it hangs: the threads' kernel stacks and wait channels.
				var where strings.Builder
				tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", p.cmd.Process.Pid))
				for _, task := range tasks {
					wchan, _ := os.ReadFile(filepath.Join(task, "wchan"))
					comm, _ := os.ReadFile(filepath.Join(task, "comm"))
					fmt.Fprintf(&where, "%s %s %s\n", filepath.Base(task), bytes.TrimSpace(comm), wchan)
				}
				syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
				<-p.done
				t.Fatalf("deadlock: threads %s did not finish within 60 s; threads (tid comm wchan):\n%s\n%s", mode, where.String(), p.describe())
			}
			if p.err != nil || !strings.HasPrefix(p.stdout.String(), "OK ") {
				t.Fatalf("threads %s: %v: %s", mode, p.err, p.describe())
			}
			t.Log(strings.TrimSpace(p.stdout.String()))
		})
	}
}

// brokersFor returns the pids and command lines of swrap-broker processes
// whose command line has "--dir" followed by one of dirs.
func brokersFor(dirs ...string) map[int]string {
	found := map[int]string{}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if !strings.Contains(filepath.Base(args[0]), "swrap-broker") {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			for _, d := range dirs {
				if (args[i] == "--dir" && args[i+1] == d) || args[i] == "--dir="+d {
					pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
					found[pid] = strings.Join(args, " ")
				}
			}
		}
	}
	return found
}

// TestOneBrokerForManyProcesses: 20 wrapped processes starting together on
// a directory with no broker bring up exactly one, and all 20 work in it.
func TestOneBrokerForManyProcesses(t *testing.T) {
	py := pythonTool(t)
	requireShimActive(t, swrapDir(t), py) // on another directory: this one must start empty
	dir := swrapDir(t)
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b := brokersFor(dir, realDir); len(b) != 0 {
		t.Fatalf("a broker already serves the fresh directory: %v", b)
	}
	ctx := testCtx(t, 60*time.Second)
	// Every process sleeps until the same instant, then makes its first
	// socket call: the first call is what starts the broker.
	const script = `
import socket, sys, time
time.sleep(max(0.0, float(sys.argv[1]) - time.time()))
s = socket.socket()
s.bind((sys.argv[2], 0))
s.listen(1)
print(s.getsockname()[0], flush=True)
sys.stdin.read()
`
	at := strconv.FormatFloat(float64(time.Now().Add(1500*time.Millisecond).UnixNano())/1e9, 'f', 3, 64)
	const n = 20
	procs := make([]*proc, n+1)
	for i := 1; i <= n; i++ {
		procs[i] = startProc(t, newCmd(ctx, wrapEnv(t, dir, i), py, "-c", script, at, shimPlan.IPv4(i).String()), true)
	}
	for i := 1; i <= n; i++ {
		select {
		case l := <-procs[i].stdout.lines:
			if l != shimPlan.IPv4(i).String() {
				t.Errorf("process %d bound %q, want %s", i, l, shimPlan.IPv4(i))
			}
		case <-procs[i].done:
			t.Errorf("process %d failed: %v: %s", i, procs[i].err, procs[i].describe())
		case <-time.After(20 * time.Second):
			t.Errorf("process %d did not bind within 20 s: %s", i, procs[i].describe())
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// A broker that lost the race may take a moment to exit; then exactly
	// one is left.
	var brokers map[int]string
	for end := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		brokers = brokersFor(dir, realDir)
		if len(brokers) == 1 || time.Now().After(end) {
			break
		}
	}
	if len(brokers) != 1 {
		t.Fatalf("%d broker processes serve %s, want 1: %v", len(brokers), dir, brokers)
	}
	// All 20 listening sockets are in that one broker's network.
	st, err := shimStatus(dir)
	if err != nil {
		t.Fatal(err)
	}
	for pid := range brokers {
		if st.PID != pid {
			t.Errorf("STATUS comes from broker %d, but the running one is %d", st.PID, pid)
		}
	}
	for i := 1; i <= n; i++ {
		found := false
		for _, s := range st.Sockets {
			if s.PID == procs[i].pid() && s.Host == i && s.TCP == "LISTEN" {
				found = true
			}
		}
		if !found {
			t.Errorf("process %d's listening socket is not in the broker's STATUS", i)
		}
	}
	for i := 1; i <= n; i++ {
		procs[i].stdin.Close()
	}
	for i := 1; i <= n; i++ {
		procs[i].mustSucceed(t, 10*time.Second)
	}
}

// noDirEnv is a preloaded environment without a usable SOCKET_WRAPPER_DIR.
// SWRAP_BROKER is a script that leaves marker behind if anything starts it.
func noDirEnv(t *testing.T, dirSetting []string, marker string) []string {
	t.Helper()
	fake := filepath.Join(t.TempDir(), "fake-broker")
	script := "#!/bin/sh\necho \"$@\" >> " + marker + "\nexit 1\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(cleanEnv(),
		"LD_PRELOAD="+binPath(t, "libswrap.so"),
		"SOCKET_WRAPPER_DEFAULT_IFACE=10",
		"SWRAP_BROKER="+fake,
	)
	return append(env, dirSetting...)
}

// TestNoDirIsInvisible: with the shim preloaded but SOCKET_WRAPPER_DIR unset
// or empty, loopback programs (a python3 client/server on 127.0.0.1 and
// ::1, and nc) print exactly what they print without the shim, the public
// API says the shim is off, and no broker is started.
func TestNoDirIsInvisible(t *testing.T) {
	py := pythonTool(t)
	nc := needTool(t, "nc")
	requirePreloadable(t, py)
	requirePreloadable(t, nc)
	script := filepath.Join(repoRoot, "tests", "testdata", "loopback_check.py")
	ctx := testCtx(t, 60*time.Second)
	nativeOut, nativeErr, err := runCmd(newCmd(ctx, cleanEnv(), py, script))
	if err != nil {
		t.Fatalf("native run of loopback_check.py: %v\n%s", err, nativeErr)
	}
	nativeNC := runLoopbackNC(t, nc, cleanEnv())
	for _, c := range []struct {
		name    string
		setting []string
	}{
		{"unset", nil},
		{"empty", []string{"SOCKET_WRAPPER_DIR="}},
	} {
		t.Run(c.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "broker-started")
			env := noDirEnv(t, c.setting, marker)
			out, stderr, err := runCmd(newCmd(ctx, env, py, script))
			if err != nil || out != nativeOut || stderr != nativeErr {
				t.Errorf("loopback_check.py with the shim: %v\nstdout:\n%s\nstderr:\n%s\nwithout the shim:\nstdout:\n%s\nstderr:\n%s",
					err, out, stderr, nativeOut, nativeErr)
			}
			if got := runLoopbackNC(t, nc, env); got != nativeNC {
				t.Errorf("nc with the shim:\n%s\nwithout:\n%s", got, nativeNC)
			}
			probe := `import ctypes; f = ctypes.CDLL(None).socket_wrapper_enabled; f.restype = ctypes.c_bool; print(f())`
			if out, stderr, err := runCmd(newCmd(ctx, env, py, "-c", probe)); err != nil || out != "False\n" {
				t.Errorf("socket_wrapper_enabled() with no SOCKET_WRAPPER_DIR: %v %q %s, want False", err, out, stderr)
			}
			if b, err := os.ReadFile(marker); err == nil {
				t.Errorf("the shim started a broker with no SOCKET_WRAPPER_DIR: %s", b)
			}
		})
	}
}

var service = regexp.MustCompile(`\[tcp/[^\]]*\]`)

// runLoopbackNC runs `nc -l 127.0.0.1 PORT` and `nc 127.0.0.1 PORT` with
// env and returns what both print, with the port numbers taken out.
func runLoopbackNC(t *testing.T, nc string, env []string) string {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	port := strconv.Itoa(freeLoopbackPort(t))
	srvCmd := newCmd(ctx, env, nc, "-n", "-N", "-v", "-l", "127.0.0.1", port)
	srvCmd.Stdin = strings.NewReader("reply\n")
	srv := startProc(t, srvCmd, false)
	if l := srv.nextLine(t, srv.stderr, 10*time.Second); !strings.HasPrefix(l, "Listening on") {
		t.Fatalf("nc -l printed %q: %s", l, srv.describe())
	}
	cliCmd := newCmd(ctx, env, nc, "-n", "-N", "-v", "127.0.0.1", port)
	cliCmd.Stdin = strings.NewReader("hello\nworld\n")
	cli := startProc(t, cliCmd, false)
	cli.mustSucceed(t, 10*time.Second)
	srv.mustSucceed(t, 10*time.Second)
	var b strings.Builder
	for _, s := range []string{srv.stdout.String(), srv.stderr.String(), cli.stdout.String(), cli.stderr.String()} {
		s = service.ReplaceAllString(s, "[tcp/SERVICE]")
		fields := strings.Fields(s)
		for i, f := range fields {
			if _, err := strconv.Atoi(f); err == nil {
				fields[i] = "N" // ports
			}
		}
		b.WriteString(strings.Join(fields, " ") + "\n")
	}
	return b.String()
}

// freeLoopbackPort returns a TCP port on 127.0.0.1 that was free a moment
// ago.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestSCMRightsToUnrelatedProcess passes 300 wrapped TCP sockets with
// SCM_RIGHTS (100 per message) from one wrapped process to another that is
// not its child; the receiver identifies every one (getpeername) and uses
// it, and the sender, which closed its copies, reads each message on the
// matching accepted connection.
func TestSCMRightsToUnrelatedProcess(t *testing.T) {
	bin := buildTestdataC(t, "scmrights")
	dir := swrapDir(t)
	requireShimActive(t, dir, bin)
	ctx := testCtx(t, 60*time.Second)
	path := filepath.Join(dir, "pass.sock")
	env := append(wrapEnv(t, dir, 10), "SCM_SELF=127.0.0.10")
	sender := startProc(t, newCmd(ctx, env, bin, "send", path, "300"), false)
	line := sender.nextLine(t, sender.stdout, 30*time.Second)
	var port int
	if _, err := fmt.Sscanf(line, "ready %d", &port); err != nil {
		t.Fatalf("sender said %q: %s", line, sender.describe())
	}
	receiver := startProc(t, newCmd(ctx, append(env, "SCM_PORT="+strconv.Itoa(port)), bin, "recv", path), false)
	receiver.mustSucceed(t, 30*time.Second)
	sender.mustSucceed(t, 30*time.Second)
	if got := sender.stdout.String(); !strings.Contains(got, "ok") {
		t.Errorf("sender: %q", got)
	}
}

// TestMisconfiguration: an unusable SOCKET_WRAPPER_DIR or a broker that
// cannot start gives one line on stderr naming the problem, and socket()
// fails with a fitting errno (each time, the line only once).
func TestMisconfiguration(t *testing.T) {
	py := pythonTool(t)
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	probe := `import socket
for _ in range(2):
    try:
        socket.socket()
        print("ok")
    except OSError as e:
        print(e.errno)
`
	cases := []struct {
		name string
		env  []string
		want syscall.Errno
		line string
	}{
		{"missing dir", []string{"SOCKET_WRAPPER_DIR=/nonexistent/swrap"}, syscall.ENOENT, "/nonexistent/swrap"},
		{"dir is a file", []string{"SOCKET_WRAPPER_DIR=" + file}, syscall.ENOTDIR, "not a directory"},
		{"no broker", []string{"SOCKET_WRAPPER_DIR=" + t.TempDir(), "SWRAP_BROKER=/nonexistent/swrap-broker"}, syscall.ENETDOWN, "/nonexistent/swrap-broker"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := append(cleanEnv(), "LD_PRELOAD="+binPath(t, "libswrap.so"))
			env = append(env, c.env...)
			out, stderr, _ := runCmd(newCmd(testCtx(t, 20*time.Second), env, py, "-c", probe))
			want := strconv.Itoa(int(c.want))
			if out != want+"\n"+want+"\n" {
				t.Errorf("socket() errnos %q, want %s twice (%v)", out, want, c.want)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], c.line) {
				t.Errorf("stderr %q: want one line naming %q", stderr, c.line)
			}
		})
	}
}

// TestPing runs iputils ping between two hosts through ICMP echo sockets.
// ping carries file capabilities, which make the loader ignore LD_PRELOAD
// for unprivileged users: the IPv4 run (to a loopback address, harmless if
// unwrapped) must show up in the broker's counters before the IPv6 one,
// whose address would otherwise be routed to a real network, is tried.
func TestPing(t *testing.T) {
	ping := needTool(t, "ping")
	dir := swrapDir(t)
	startBroker(t, dir)
	h10 := swrapnet.MustJoin(dir, 10)
	pc, err := h10.ListenPacket("udp", "127.0.0.10:0") // host 10 exists
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	run := func(args ...string) string {
		out, stderr, err := runCmd(newCmd(testCtx(t, 20*time.Second), wrapEnv(t, dir, 11), ping, args...))
		if err != nil {
			t.Fatalf("ping %v: %v\n%s%s", args, err, out, stderr)
		}
		return out
	}
	out := run("-n", "-c", "2", "-W", "2", "127.0.0.10")
	var sent uint64
	for _, h := range status(t, h10).Hosts {
		if h.ID == 11 {
			sent = h.Link.TxFrames
		}
	}
	if sent < 2 {
		t.Fatalf("ping did not go through swrap (host 11 sent %d frames); not trying IPv6:\n%s", sent, out)
	}
	if !strings.Contains(out, "2 received") {
		t.Errorf("IPv4 ping: %s", out)
	}
	if out := run("-n", "-6", "-c", "2", "-W", "2", "fd00::5357:5f0a"); !strings.Contains(out, "2 received") {
		t.Errorf("IPv6 ping: %s", out)
	}
}
