package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swrap/swrap/broker"
	"github.com/swrap/swrap/swrapnet"
	"github.com/swrap/swrap/wire"
)

// cliRun runs bin/swrap with args and a clean environment (plus env), and
// returns its stdout, stderr and exit status.
func cliRun(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binPath(t, "swrap"), args...)
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("swrap %s did not finish within 30 s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// cliProcessGone reports whether pid has exited (a zombie counts: the
// broker started on demand is not our child).
func cliProcessGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

// TestCLIRunNcPair runs a wrapped nc server and client inside one
// `swrap run` with no --dir: the data crosses the emulated network, and
// afterwards the private directory and its broker are gone.
func TestCLIRunNcPair(t *testing.T) {
	needTool(t, "nc")
	swrap := binPath(t, "swrap")
	out := t.TempDir()
	script := `set -e
out=$1 swrap=$2
echo "$SOCKET_WRAPPER_DIR" >"$out/dir"
printf 'greetings from host 10\n' | SOCKET_WRAPPER_DEFAULT_IFACE=10 nc -l 127.0.0.10 7 >"$out/server" 2>&1 &
i=0
until "$swrap" status --json 2>/dev/null | grep -q '"tcp_state":"LISTEN","local":"127.0.0.10:7"'; do
	i=$((i+1)); [ $i -lt 400 ] || { echo "server never listened" >&2; exit 9; }
	sleep 0.025
done
cat "$SOCKET_WRAPPER_DIR/swrap/broker.lock" >"$out/pid"
printf 'hello\nworld\n' | nc -N 127.0.0.10 7 >"$out/client"
wait
`
	stdout, stderr, code := cliRun(t, nil, "run", "--iface", "11", "--", "sh", "-c", script, "sh", out, swrap)
	if code != 0 {
		t.Fatalf("swrap run: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("server"); got != "hello\nworld\n" {
		t.Errorf("server received %q, want %q", got, "hello\nworld\n")
	}
	if got := read("client"); got != "greetings from host 10\n" {
		t.Errorf("client received %q, want %q", got, "greetings from host 10\n")
	}
	dir := strings.TrimSpace(read("dir"))
	if dir == "" {
		t.Fatal("SOCKET_WRAPPER_DIR was not set")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("swrap run left its directory %s behind (%v)", dir, err)
		os.RemoveAll(dir)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(read("pid")))
	if err != nil {
		t.Fatalf("broker.lock: %v", err)
	}
	if !cliProcessGone(pid) {
		t.Errorf("broker %d still runs after swrap run returned", pid)
	}
}

// TestCLIRunEnvironment checks what `swrap run` gives CMD: the contract's
// variables, the shim first in LD_PRELOAD, an absolute capture path, a
// given --dir kept afterwards, and CMD's exit status.
func TestCLIRunEnvironment(t *testing.T) {
	dir := swrapDir(t)
	cwd := t.TempDir()
	cmd := exec.Command(binPath(t, "swrap"), "run", "--dir", dir, "--iface", "12", "--pcap", "x.pcap",
		"--network", "10.53.57.0", "--mtu", "9000", "--", "sh", "-c", "env; exit 7")
	cmd.Dir = cwd
	cmd.Env = append(cleanEnv(), "LD_PRELOAD=/nonexistent/other.so")
	outb, err := cmd.Output()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 7 {
		t.Fatalf("exit status: %v (want 7)", err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(string(outb), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			env[k] = v
		}
	}
	want := map[string]string{
		"SOCKET_WRAPPER_DIR":           dir,
		"SOCKET_WRAPPER_DEFAULT_IFACE": "12",
		"SOCKET_WRAPPER_PCAP_FILE":     filepath.Join(cwd, "x.pcap"),
		"SOCKET_WRAPPER_IPV4_NETWORK":  "10.53.57.0",
		"SOCKET_WRAPPER_MTU":           "9000",
		"SWRAP_BROKER":                 binPath(t, "swrap-broker"),
		"LD_PRELOAD":                   binPath(t, "libswrap.so") + ":/nonexistent/other.so",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("the given --dir is gone: %v", err)
	}
}

// TestCLIStatusLarge has a broker whose STATUS document outgrows one
// control message (64 KiB): 700 UDP sockets. Host.Status, `swrap status
// --json` and the table must still list every one of them.
func TestCLIStatusLarge(t *testing.T) {
	dir := swrapDir(t)
	startBroker(t, dir)
	h := swrapnet.MustJoin(dir, 10)
	const n, base = 700, 20000
	for i := range n {
		pc, err := h.ListenPacket("udp", fmt.Sprintf("127.0.0.10:%d", base+i))
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
	}
	// every wants each socket's local address once in what lists.
	every := func(what string, locals []string) {
		t.Helper()
		seen := map[string]int{}
		for _, l := range locals {
			seen[l]++
		}
		for i := range n {
			if a := fmt.Sprintf("127.0.0.10:%d", base+i); seen[a] != 1 {
				t.Fatalf("%s: %s listed %d times", what, a, seen[a])
			}
		}
	}
	fromJSON := func(what string, doc []byte) {
		t.Helper()
		var st broker.Status
		if err := json.Unmarshal(doc, &st); err != nil {
			t.Fatalf("%s: not JSON: %v", what, err)
		}
		var locals []string
		for _, s := range st.Sockets {
			locals = append(locals, s.Local)
		}
		every(what, locals)
	}

	doc, err := h.Status()
	if err != nil {
		t.Fatalf("Host.Status: %v", err)
	}
	if len(doc) <= wire.MaxMessage {
		t.Fatalf("the STATUS document is %d bytes: not more than one message, the test proves nothing", len(doc))
	}
	fromJSON("Host.Status", doc)

	stdout, stderr, code := cliRun(t, nil, "status", "--dir", dir, "--json")
	if code != 0 {
		t.Fatalf("swrap status --json: exit %d: %s", code, stderr)
	}
	fromJSON("swrap status --json", []byte(stdout))

	stdout, stderr, code = cliRun(t, nil, "status", "--dir", dir)
	if code != 0 {
		t.Fatalf("swrap status: exit %d: %s", code, stderr)
	}
	var locals []string
	for _, l := range strings.Split(stdout, "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[0] == "udp" {
			for _, w := range f {
				if strings.HasPrefix(w, "127.0.0.10:") {
					locals = append(locals, w)
				}
			}
		}
	}
	every("swrap status", locals)
}

// TestCLIStatusJSON lists a listener made with swrapnet through
// `swrap status --json` and the table of `swrap status`.
func TestCLIStatusJSON(t *testing.T) {
	dir := swrapDir(t)
	startBroker(t, dir)
	ln, err := swrapnet.MustJoin(dir, 10).Listen("tcp", "127.0.0.10:7")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	stdout, stderr, code := cliRun(t, nil, "status", "--dir", dir, "--json")
	if code != 0 {
		t.Fatalf("swrap status --json: exit %d: %s", code, stderr)
	}
	var st broker.Status
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	found := false
	for _, s := range st.Sockets {
		if s.Local == "127.0.0.10:7" {
			found = true
			if s.Proto != "tcp" || s.State != "listening" || s.Host != 10 || s.PID != uint32(os.Getpid()) {
				t.Errorf("listener: %+v", s)
			}
		}
	}
	if !found {
		t.Errorf("no socket on 127.0.0.10:7 in %s", stdout)
	}

	stdout, stderr, code = cliRun(t, []string{"SOCKET_WRAPPER_DIR=" + dir}, "status")
	if code != 0 {
		t.Fatalf("swrap status: exit %d: %s", code, stderr)
	}
	var line string
	for _, l := range strings.Split(stdout, "\n") {
		if strings.Contains(l, "127.0.0.10:7") {
			line = l
		}
	}
	if f := strings.Fields(line); len(f) < 5 || f[0] != "tcp" || f[1] != "LISTEN" || f[4] != "10" {
		t.Errorf("no tcp LISTEN line for 127.0.0.10:7 on host 10:\n%s", stdout)
	}

	// No broker: a clear error.
	_, stderr, code = cliRun(t, nil, "status", "--dir", t.TempDir())
	if code == 0 || !strings.Contains(stderr, "no broker is running") {
		t.Errorf("status without a broker: exit %d, stderr %q", code, stderr)
	}
}

// TestCLIPcapSummary summarises the capture of one swrapnet TCP exchange.
func TestCLIPcapSummary(t *testing.T) {
	dir := swrapDir(t)
	capFile := filepath.Join(t.TempDir(), "cli.pcap")
	brk := startBroker(t, dir, "SOCKET_WRAPPER_PCAP_FILE="+capFile)
	ln, err := swrapnet.MustJoin(dir, 10).Listen("tcp", "127.0.0.10:7")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	request, reply := bytes.Repeat([]byte("q"), 1000), bytes.Repeat([]byte("r"), 300)
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		if _, err := io.ReadAll(c); err != nil {
			served <- err
			return
		}
		_, err = c.Write(reply)
		served <- err
	}()
	c, err := swrapnet.MustJoin(dir, 11).Dial("tcp", "127.0.0.10:7")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(request); err != nil {
		t.Fatal(err)
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || len(got) != len(reply) {
		t.Fatalf("client read %d bytes, %v", len(got), err)
	}
	c.Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the last ACKs cross
	if !brk.stop() {
		t.Fatal("broker did not stop")
	}

	stdout, stderr, code := cliRun(t, nil, "pcap", "summary", capFile)
	if code != 0 {
		t.Fatalf("swrap pcap summary: exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"TCP connections: 1\n",
		" -> 127.0.0.10:7 (",
		"handshake: complete (SYN, SYN-ACK, ACK)",
		"1000 bytes client->server, 300 bytes server->client",
		"FIN client->server, FIN server->client",
		"UDP flows: 0\n",
		"open it with: wireshark " + capFile,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "RST") {
		t.Errorf("a clean close shows an RST:\n%s", stdout)
	}
}

// TestInspection lists a known set of sockets during a test, with their
// states and owning process, in both `swrap status --json` and the table:
// a listener, an established connection (both ends), a half-closed one
// (FIN-WAIT-2 and CLOSE-WAIT) and a bound UDP socket.
func TestInspection(t *testing.T) {
	dir := swrapDir(t)
	startBroker(t, dir)
	h10, h11 := swrapnet.MustJoin(dir, 10), swrapnet.MustJoin(dir, 11)
	ln, err := h10.Listen("tcp", "127.0.0.10:7100")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	est, err := h11.Dial("tcp", "127.0.0.10:7100")
	if err != nil {
		t.Fatal(err)
	}
	defer est.Close()
	estSrv := <-accepted
	defer estSrv.Close()
	half, err := h11.Dial("tcp", "127.0.0.10:7100")
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	halfSrv := <-accepted
	defer halfSrv.Close()
	half.(*swrapnet.Conn).CloseWrite() // client FIN-WAIT-2, server CLOSE-WAIT
	udp, err := h11.ListenPacket("udp", "127.0.0.11:5300")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()

	pid := strconv.Itoa(os.Getpid())
	type want struct{ proto, state, local, remote string }
	wants := []want{
		{"tcp", "LISTEN", "127.0.0.10:7100", ""},
		{"tcp", "ESTABLISHED", est.LocalAddr().String(), "127.0.0.10:7100"},
		{"tcp", "ESTABLISHED", "127.0.0.10:7100", est.LocalAddr().String()},
		{"tcp", "FIN-WAIT-2", half.LocalAddr().String(), "127.0.0.10:7100"},
		{"tcp", "CLOSE-WAIT", "127.0.0.10:7100", half.LocalAddr().String()},
		{"udp", "", "127.0.0.11:5300", ""},
	}
	var st broker.Status
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := exec.Command(binPath(t, "swrap"), "status", "--dir", dir, "--json").Output()
		if err != nil {
			t.Fatalf("swrap status --json: %v", err)
		}
		if err := json.Unmarshal(out, &st); err != nil {
			t.Fatalf("status JSON: %v\n%s", err, out)
		}
		missing := 0
		for _, w := range wants {
			if !hasSocket(st.Sockets, w.proto, w.state, w.local, w.remote, pid) {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) { // the FIN may still be in flight
			for _, w := range wants {
				if !hasSocket(st.Sockets, w.proto, w.state, w.local, w.remote, pid) {
					t.Errorf("JSON lacks %+v; sockets: %+v", w, st.Sockets)
				}
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(st.Sockets) != len(wants) {
		t.Errorf("JSON lists %d sockets, want %d: %+v", len(st.Sockets), len(wants), st.Sockets)
	}
	table, err := exec.Command(binPath(t, "swrap"), "status", "--dir", dir).Output()
	if err != nil {
		t.Fatalf("swrap status: %v", err)
	}
	for _, w := range wants {
		found := false
		for _, line := range strings.Split(string(table), "\n") {
			f := strings.Fields(line)
			if len(f) >= 4 && f[0] == w.proto && strings.Contains(line, w.local) &&
				(w.state == "" || f[1] == w.state) && (w.remote == "" || strings.Contains(line, w.remote)) &&
				strings.Contains(line, "pid="+pid) {
				found = true
			}
		}
		if !found {
			t.Errorf("table lacks %+v:\n%s", w, table)
		}
	}
}

// hasSocket reports whether sockets holds one matching the fields.
func hasSocket(sockets []broker.SocketStatus, proto, state, local, remote, pid string) bool {
	for _, s := range sockets {
		if s.Proto == proto && (state == "" || s.TCP == state) && s.Local == local &&
			(remote == "" || s.Remote == remote) && strconv.Itoa(int(s.PID)) == pid {
			return true
		}
	}
	return false
}

// TestRunWithNetem: conditions given in SWRAP_NETEM to `swrap run` reach
// the broker that the first wrapped socket starts: a 50 ms delay each way
// makes a wrapped program's TCP handshake take at least 100 ms.
func TestRunWithNetem(t *testing.T) {
	py := pythonTool(t)
	dir := swrapDir(t)
	requireShimActive(t, dir, py)
	stopBroker(t, dir) // the check started one without conditions
	env := []string{"SWRAP_NETEM=10-11 delay=50ms", "SWRAP_BROKER=" + binPath(t, "swrap-broker")}
	server := `import socket, sys
s = socket.socket(); s.bind(("127.0.0.10", 7200)); s.listen()
print("ready", flush=True)
c, _ = s.accept(); c.recv(1)
`
	client := `import socket, time
c = socket.socket(); t = time.monotonic(); c.connect(("127.0.0.10", 7200))
print(int((time.monotonic() - t) * 1000)); c.send(b"x")
`
	srv := exec.Command(binPath(t, "swrap"), "run", "--dir", dir, "--iface", "10", "--", py, "-c", server)
	srv.Env = append(cleanEnv(), env...)
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	line := make([]byte, 6)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "ready\n" {
		t.Fatalf("server: %q %v", line, err)
	}
	stdout, stderr, code := cliRun(t, env, "run", "--dir", dir, "--iface", "11", "--", py, "-c", client)
	if code != 0 {
		t.Fatalf("client exit %d: %s", code, stderr)
	}
	ms, _ := strconv.Atoi(strings.TrimSpace(stdout))
	if ms < 100 || ms > 1000 {
		t.Errorf("handshake took %d ms over a 50 ms-each-way link, want >= 100", ms)
	}
	srv.Wait()
}
