package tests

// Real Debian servers (nginx, sshd, smbd, dnsmasq, redis, memcached)
// started with their packaged default configuration, changed only by the
// lines a user of socket_wrapper would write (listen addresses, ports, paths
// under a temporary directory), on host 10, with real clients on hosts 11
// and 12.
//
// Each scenario runs twice: "swrap", under the real shim, and "native", the
// same server and clients unwrapped, in a private network namespace whose
// loopback interface also has 127.0.0.10-12 (so that smbd's "interfaces =
// 127.0.0.10" finds its interface, and the well-known ports are free). The
// native run proves the test's own mechanics, so that a failure of the swrap
// run is the shim's.
//
// Network safety: every process of these tests runs in a private mount
// namespace whose /etc/resolv.conf names only 127.0.0.1 (realEnv.cmd), so a
// name lookup the shim misses can never reach the machine's resolver, and
// all addresses are numeric.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swrap/swrap/broker"
)

// realEnv is one run of a real-server scenario: wrapped or native, with its
// temporary directory and the time limit of the whole run.
type realEnv struct {
	t      *testing.T
	native bool
	dir    string // SOCKET_WRAPPER_DIR (wrapped runs only)
	tmp    string // the servers' files: configuration, logs, pid files, data
	resolv string // the resolv.conf bind-mounted over /etc/resolv.conf
	tag    string // REALPROGS_TAG value marking every process of this run
	netns  int    // native runs: pid of the process holding the network namespace
	broker *brokerProc
	pcap   string // the broker's capture (wrapped runs only)
	ctx    context.Context
}

// realModes runs fn as subtests "swrap" and "native". tools are the
// programs the scenario runs (checked with needTool, and, wrapped, with
// requireShimActive).
func realModes(t *testing.T, limit time.Duration, tools []string, fn func(t *testing.T, e *realEnv)) {
	for _, name := range []string{"swrap", "native"} {
		t.Run(name, func(t *testing.T) {
			// unshare and mount only set up the namespace: they need not
			// be wrapped (mount is setuid).
			needTool(t, "unshare")
			needTool(t, "mount")
			var paths []string
			for _, tool := range tools {
				paths = append(paths, needTool(t, tool))
			}
			e := &realEnv{t: t, native: name == "native"}
			e.tmp = realTempDir(t)
			e.tag = e.tmp
			e.resolv = filepath.Join(e.tmp, "resolv.conf")
			writeFile(t, e.resolv, "nameserver 127.0.0.1\n", 0o644)
			if !e.native {
				e.dir = swrapDir(t)
				e.pcap = filepath.Join(e.tmp, "capture.pcap")
				e.broker = startBroker(t, e.dir, "SOCKET_WRAPPER_PCAP_FILE="+e.pcap)
				requireShimActive(t, e.dir, paths...)
			}
			// Registered after the broker's cleanup, so it runs first:
			// stray servers go before the network does.
			t.Cleanup(func() { killTagged(t, e.tag) })
			e.ctx = testCtx(t, limit)
			if e.native {
				e.startNetns()
			}
			fn(t, e)
		})
	}
}

// realTempDir is a temporary directory that servers' unprivileged
// processes (nginx's www-data workers, smbd's guest) can read: t.TempDir's
// are 0700.
func realTempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "swrap-real-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if os.Getenv("SWRAP_KEEP") == "" {
			os.RemoveAll(d)
		} else {
			t.Logf("kept %s", d)
		}
	})
	return d
}

// killTagged kills every process whose environment holds
// REALPROGS_TAG=tag: the servers and whatever they forked, including
// children that left the process group (sshd's per-connection processes
// call setsid).
func killTagged(t *testing.T, tag string) {
	want := []byte("REALPROGS_TAG=" + tag + "\x00")
	for round := 0; round < 50; round++ {
		ents, _ := os.ReadDir("/proc")
		found := 0
		for _, ent := range ents {
			pid, err := strconv.Atoi(ent.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			b, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "environ"))
			if err != nil || !bytes.Contains(b, want) || !alive(pid) {
				continue
			}
			found++
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if found == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("processes tagged %s survive SIGKILL", tag)
}

// checkRunsAs fails the test unless, within 5 s, some process of the
// server srv (in its process group, or tagged as this run's) whose command
// line starts with prefix exists, and all such come to run as user: the servers
// drop privileges as packaged, so the test covers what a user runs. (nginx
// overwrites its environment with its process titles, hence the group.)
func (e *realEnv) checkRunsAs(srv *proc, prefix, user string) {
	e.t.Helper()
	u, err := osuser.Lookup(user)
	if err != nil {
		e.t.Fatalf("user %s: %v", user, err)
	}
	tag := []byte("REALPROGS_TAG=" + e.tag + "\x00")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(25 * time.Millisecond) {
		uids := map[string]uint32{} // pid -> uid of the matching processes
		ents, _ := os.ReadDir("/proc")
		for _, ent := range ents {
			dir := filepath.Join("/proc", ent.Name())
			cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
			if err != nil || !bytes.HasPrefix(cmdline, []byte(prefix)) {
				continue
			}
			env, _ := os.ReadFile(filepath.Join(dir, "environ"))
			stat, _ := os.ReadFile(filepath.Join(dir, "stat"))
			// The fields after the parenthesised name: state ppid pgrp.
			var pgrp int
			if i := bytes.LastIndexByte(stat, ')'); i > 0 {
				if f := strings.Fields(string(stat[i+1:])); len(f) > 2 {
					pgrp, _ = strconv.Atoi(f[2])
				}
			}
			if !bytes.Contains(env, tag) && pgrp != int(srv.pid()) {
				continue
			}
			var st syscall.Stat_t
			if syscall.Stat(dir, &st) == nil {
				uids[ent.Name()] = st.Uid
			}
		}
		// A server drops privileges after its sockets are set up (dnsmasq
		// after listening): wait for every process to have switched.
		wrong := 0
		for _, uid := range uids {
			if strconv.Itoa(int(uid)) != u.Uid {
				wrong++
			}
		}
		if len(uids) > 0 && (wrong == 0 || time.Now().After(deadline)) {
			for pid, uid := range uids {
				if strconv.Itoa(int(uid)) != u.Uid {
					e.t.Errorf("process %s (%s) runs as uid %d, want %s (%s)", pid, prefix, uid, user, u.Uid)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no process of %s starts with %q after 5 s", srv.describe(), prefix)
		}
	}
}

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

func mkdirs(t *testing.T, mode os.FileMode, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, mode); err != nil {
			t.Fatal(err)
		}
	}
}

// randomFile writes size random bytes to path and returns their sha256.
func randomFile(t *testing.T, path string, size int) [32]byte {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// fileSum is the sha256 of a file, failing the test if it cannot be read.
func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return sha256.Sum256(b)
}

// startNetns starts the process that holds a native run's network
// namespace: loopback up, with 127.0.0.10, .11 and .12 as addresses of
// their own (as the emulated hosts have them).
func (e *realEnv) startNetns() {
	e.t.Helper()
	unshare, _ := exec.LookPath("unshare")
	ip := needTool(e.t, "ip")
	script := fmt.Sprintf("%[1]s link set lo up && %[1]s addr add 127.0.0.10/8 dev lo && "+
		"%[1]s addr add 127.0.0.11/8 dev lo && %[1]s addr add 127.0.0.12/8 dev lo && echo ready && exec sleep 600", ip)
	h := startProc(e.t, newCmd(e.ctx, append(cleanEnv(), "REALPROGS_TAG="+e.tag), unshare, "-n", "sh", "-c", script), false)
	if l := h.nextLine(e.t, h.stdout, 10*time.Second); l != "ready" {
		e.t.Fatalf("setting up the network namespace: %s", h.describe())
	}
	e.netns = int(h.pid())
}

// cmd is a command on host (10 for servers, 11 and 12 for clients), bounded
// by ctx (e.ctx: the run's time limit, for servers), in a private mount namespace
// with the safe resolv.conf, wrapped unless the run is native.
func (e *realEnv) cmd(ctx context.Context, host int, name string, args ...string) *exec.Cmd {
	var env []string
	if e.native {
		env = cleanEnv()
	} else {
		env = wrapEnv(e.t, e.dir, host)
	}
	env = append(env, "REALPROGS_TAG="+e.tag)
	unshare, _ := exec.LookPath("unshare")
	argv := append([]string{"-m", "sh", "-c", `mount --bind "$0" /etc/resolv.conf && exec "$@"`, e.resolv, name}, args...)
	if e.native {
		nsenter := needTool(e.t, "nsenter")
		return newCmd(ctx, env, nsenter, append([]string{"--net=/proc/" + strconv.Itoa(e.netns) + "/ns/net", unshare}, argv...)...)
	}
	return newCmd(ctx, env, unshare, argv...)
}

// step is a context for one client step: a hang fails in d, not at the
// end of the whole run.
func (e *realEnv) step(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(e.ctx, d)
	e.t.Cleanup(cancel)
	return ctx
}

// run runs a client step on host and returns its stdout, failing the test
// (with the server's output) if it does not exit 0 within d.
func (e *realEnv) run(srv *proc, host int, d time.Duration, name string, args ...string) string {
	e.t.Helper()
	out, errOut, err := runCmd(e.cmd(e.step(d), host, name, args...))
	if err != nil {
		e.t.Fatalf("%s %s on host %d: %v\n--- stdout:\n%s\n--- stderr:\n%s\n--- server: %s", name,
			strings.Join(args, " "), host, err, out, errOut, srv.describe())
	}
	return out
}

// waitListen waits until something listens on TCP addr (host:port):
// wrapped, a LISTEN socket in the broker's STATUS; natively, a connection
// that succeeds. It fails the test if the server exits first.
func (e *realEnv) waitListen(srv *proc, addr string) {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-srv.done:
			e.t.Fatalf("server exited before listening on %s: %v\n%s", addr, srv.err, srv.describe())
		default:
		}
		if e.native {
			if nativeListening(e.netns, addr) {
				return
			}
		} else if st, err := shimStatus(e.dir); err == nil {
			for _, s := range st.Sockets {
				if s.Proto == "tcp" && s.TCP == "LISTEN" && s.Local == addr {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			var socks []broker.SocketStatus
			if !e.native {
				st, _ := shimStatus(e.dir)
				socks = st.Sockets
			}
			e.t.Fatalf("nothing listens on %s after 15 s (broker sockets %+v)\n%s", addr, socks, srv.describe())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// nativeListening reports whether a TCP socket listens on addr in the
// network namespace of process pid (its /proc/PID/net/tcp).
func nativeListening(pid int, addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return false
	}
	a := ap.Addr().As4()
	// The address as the kernel prints it: a host-order (little-endian)
	// u32 in hex, then the port.
	want := fmt.Sprintf("%02X%02X%02X%02X:%04X", a[3], a[2], a[1], a[0], ap.Port())
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 3 && f[1] == want && f[3] == "0A" {
			return true
		}
	}
	return false
}

// capture stops a wrapped run's broker (its servers see the network go,
// so call it last) and returns the frames it captured.
func (e *realEnv) capture() []capturedPacket {
	e.t.Helper()
	if !e.broker.stop() {
		e.t.Fatalf("broker did not stop within 10 s")
	}
	pkts, err := readCapture(e.pcap)
	if err != nil {
		e.t.Fatalf("reading the capture: %v", err)
	}
	return pkts
}

// syns counts the connection attempts (SYN without ACK) from src to dst
// (ip:port) in a capture.
func syns(pkts []capturedPacket, src, dst string) int {
	n := 0
	for _, p := range pkts {
		if p.syn && !p.ack && p.srcIP == src && net.JoinHostPort(p.dstIP, strconv.Itoa(p.dstPort)) == dst {
			n++
		}
	}
	return n
}

// logOnFailure adds the named files (server logs) to the test's output if
// it fails.
func (e *realEnv) logOnFailure(paths ...string) {
	e.t.Cleanup(func() {
		if !e.t.Failed() {
			return
		}
		for _, p := range paths {
			matches, _ := filepath.Glob(p)
			for _, m := range matches {
				b, _ := os.ReadFile(m)
				if len(b) > 8000 {
					b = b[len(b)-8000:]
				}
				e.t.Logf("--- %s (tail):\n%s", m, b)
			}
		}
	})
}

// debianConf reads a configuration file as the package installed it.
func debianConf(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the packaged configuration %s is missing: %v", path, err)
	}
	return string(b)
}

// replaceLine replaces the (one-line, whole-line) setting matching re in
// conf, failing the test if the packaged file no longer has it.
func replaceLine(t *testing.T, conf, re, repl string) string {
	t.Helper()
	rx := regexp.MustCompile(`(?m)^[ \t]*` + re + `[ \t]*$`)
	if !rx.MatchString(conf) {
		t.Fatalf("the packaged configuration has no line matching %q", re)
	}
	return rx.ReplaceAllLiteralString(conf, repl)
}

// TestRealNginx: nginx as root with Debian's nginx.conf (workers as
// www-data) and its default site listening on 127.0.0.10:80; curl on host
// 11 fetches two small files over one keep-alive connection (the second
// transfer makes no new connection and uses the same local port), and curl
// on host 12 a 10 MB file, intact.
func TestRealNginx(t *testing.T) {
	realModes(t, 60*time.Second, []string{"nginx", "curl"}, func(t *testing.T, e *realEnv) {
		nginx, _ := exec.LookPath("nginx")
		curl, _ := exec.LookPath("curl")
		port := 80
		addr := "127.0.0.10:" + strconv.Itoa(port)
		www := filepath.Join(e.tmp, "www")
		mkdirs(t, 0o755, www)
		writeFile(t, filepath.Join(www, "a.txt"), "first file\n", 0o644)
		writeFile(t, filepath.Join(www, "b.txt"), "second file\n", 0o644)
		bigSum := randomFile(t, filepath.Join(www, "big"), 10<<20)

		conf := debianConf(t, "/etc/nginx/nginx.conf")
		if !regexp.MustCompile(`(?m)^user www-data;`).MatchString(conf) {
			t.Fatalf("Debian's nginx.conf no longer runs workers as www-data:\n%s", conf)
		}
		conf = replaceLine(t, conf, `pid /run/nginx.pid;`, "pid "+e.tmp+"/nginx.pid;")
		conf = replaceLine(t, conf, `error_log /var/log/nginx/error.log;`, "error_log "+e.tmp+"/error.log;")
		conf = replaceLine(t, conf, `access_log /var/log/nginx/access.log;`, "access_log "+e.tmp+"/access.log;")
		conf = replaceLine(t, conf, `include /etc/nginx/sites-enabled/\*;`, "include "+e.tmp+"/site;")
		site := debianConf(t, "/etc/nginx/sites-available/default")
		site = replaceLine(t, site, `listen 80 default_server;`, "listen "+addr+" default_server;")
		site = replaceLine(t, site, `listen \[::\]:80 default_server;`, "")
		site = replaceLine(t, site, `root /var/www/html;`, "root "+www+";")
		writeFile(t, filepath.Join(e.tmp, "nginx.conf"), conf, 0o644)
		writeFile(t, filepath.Join(e.tmp, "site"), site, 0o644)
		e.logOnFailure(filepath.Join(e.tmp, "error.log"))

		srv := startProc(t, e.cmd(e.ctx, 10, nginx, "-e", filepath.Join(e.tmp, "error.log"),
			"-c", filepath.Join(e.tmp, "nginx.conf"), "-g", "daemon off;"), false)
		e.waitListen(srv, addr)
		e.checkRunsAs(srv, "nginx: worker process", "www-data")

		// Two URLs in one curl: the second must reuse the first's
		// connection. %{num_connects} is what curl counted (1, then 0), on
		// every curl since 7.12; the local port shows it is one connection.
		base := "http://" + addr + "/"
		out := e.run(srv, 11, 15*time.Second, curl, "-sS", "--fail", "--max-time", "10",
			"-w", "%{http_code} %{num_connects} %{local_ip} %{local_port}\n", base+"a.txt", base+"b.txt")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 || lines[0] != "first file" || lines[2] != "second file" {
			t.Fatalf("curl printed %q, want both files each followed by its -w line", out)
		}
		first, second := strings.Fields(lines[1]), strings.Fields(lines[3])
		if len(first) != 4 || len(second) != 4 || first[0] != "200" || second[0] != "200" {
			t.Fatalf("curl's -w lines %q and %q: want two 200s", lines[1], lines[3])
		}
		if first[1] != "1" || second[1] != "0" || first[3] != second[3] {
			t.Errorf("the second request did not reuse the keep-alive connection: num_connects %s then %s, local ports %s and %s\n%s",
				first[1], second[1], first[3], second[3], srv.describe())
		}
		if !e.native && first[2] != "127.0.0.11" {
			t.Errorf("curl on host 11 connected from %s", first[2])
		}

		got := filepath.Join(e.tmp, "big.got")
		e.run(srv, 12, 30*time.Second, curl, "-sS", "--fail", "--max-time", "25", "-o", got, base+"big")
		if fileSum(t, got) != bigSum {
			t.Errorf("the 10 MB file arrived changed (sha256 differs)")
		}
		if b, err := os.ReadFile(filepath.Join(e.tmp, "access.log")); err != nil || !strings.Contains(string(b), `"GET /big HTTP/1.1" 200 10485760`) {
			t.Errorf("nginx's access log does not show the download (%v):\n%s", err, b)
		} else if !e.native && !strings.Contains(string(b), "127.0.0.12 - - ") {
			t.Errorf("nginx's access log does not show the client on host 12:\n%s", b)
		}
		if !e.native {
			// On the wire: host 11 opened one connection for both URLs,
			// host 12 one for the download.
			pkts := e.capture()
			if n := syns(pkts, "127.0.0.11", addr); n != 1 {
				t.Errorf("the capture holds %d connection attempts from host 11 to %s, want 1 (keep-alive)", n, addr)
			}
			if n := syns(pkts, "127.0.0.12", addr); n != 1 {
				t.Errorf("the capture holds %d connection attempts from host 12 to %s, want 1", n, addr)
			}
		}
	})
}

// TestRealSSHD: sshd with Debian's sshd_config (privilege separation and
// its seccomp sandbox, as packaged) plus its own host key, port 2222 and
// ListenAddress 127.0.0.10; ssh on host 11 runs a command (its output shows
// the connection's addresses) and scp copies 5 MB to the server and back
// from host 12, intact.
func TestRealSSHD(t *testing.T) {
	realModes(t, 90*time.Second, []string{"sshd", "ssh", "scp", "ssh-keygen"}, func(t *testing.T, e *realEnv) {
		sshd := "/usr/sbin/sshd" // sshd re-executes itself and wants an absolute path
		needTool(t, sshd)
		ssh, _ := exec.LookPath("ssh")
		scp, _ := exec.LookPath("scp")
		keygen, _ := exec.LookPath("ssh-keygen")
		port := 2222
		addr := "127.0.0.10:" + strconv.Itoa(port)
		// The privilege-separated child chroots here; Debian's init script
		// creates it at boot.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
		hostKey := filepath.Join(e.tmp, "ssh_host_ed25519_key")
		userKey := filepath.Join(e.tmp, "id_ed25519")
		for _, k := range []string{hostKey, userKey} {
			if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", k).CombinedOutput(); err != nil {
				t.Fatalf("ssh-keygen: %v\n%s", err, out)
			}
		}
		pub, err := os.ReadFile(userKey + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(e.tmp, "authorized_keys"), string(pub), 0o600)
		// sshd keeps the first value of each keyword: these lines go first.
		// StrictModes no: the keys live under /tmp, which is world-writable,
		// and StrictModes refuses any file below such a directory.
		conf := fmt.Sprintf("Port %d\nListenAddress 127.0.0.10\nHostKey %s\nPidFile %s/sshd.pid\n"+
			"AuthorizedKeysFile %s/authorized_keys\nStrictModes no\n", port, hostKey, e.tmp, e.tmp)
		conf += debianConf(t, "/etc/ssh/sshd_config")
		writeFile(t, filepath.Join(e.tmp, "sshd_config"), conf, 0o644)

		srv := startProc(t, e.cmd(e.ctx, 10, sshd, "-D", "-e", "-f", filepath.Join(e.tmp, "sshd_config")), false)
		e.waitListen(srv, addr)

		opts := []string{"-F", "/dev/null", "-i", userKey, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
			"-o", "UserKnownHostsFile=" + filepath.Join(e.tmp, "known_hosts"), "-o", "ConnectTimeout=10"}
		out := e.run(srv, 11, 20*time.Second, ssh, append(append([]string{}, opts...), "-p", strconv.Itoa(port),
			"root@127.0.0.10", "echo ssh-ok; echo $SSH_CONNECTION")...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 || lines[0] != "ssh-ok" {
			t.Fatalf("ssh printed %q, want ssh-ok and $SSH_CONNECTION", out)
		}
		conn := strings.Fields(lines[1])
		if len(conn) != 4 || conn[2] != "127.0.0.10" || conn[3] != strconv.Itoa(port) || (!e.native && conn[0] != "127.0.0.11") {
			t.Errorf("$SSH_CONNECTION is %q, want \"127.0.0.11 PORT 127.0.0.10 %d\"", lines[1], port)
		}

		src := filepath.Join(e.tmp, "scp.src")
		sum := randomFile(t, src, 5<<20)
		remote := filepath.Join(e.tmp, "scp.remote")
		back := filepath.Join(e.tmp, "scp.back")
		scpArgs := append(append([]string{}, opts...), "-P", strconv.Itoa(port))
		e.run(srv, 12, 30*time.Second, scp, append(scpArgs, src, "root@127.0.0.10:"+remote)...)
		if fileSum(t, remote) != sum {
			t.Fatalf("scp to the server: the 5 MB file arrived changed")
		}
		e.run(srv, 12, 30*time.Second, scp, append(scpArgs, "root@127.0.0.10:"+remote, back)...)
		if fileSum(t, back) != sum {
			t.Errorf("scp from the server: the 5 MB file arrived changed")
		}
	})
}

// sambaDirs is the [global] lines that move every file smbd (or smbclient)
// writes under root.
func sambaDirs(root string) string {
	var b strings.Builder
	for _, kv := range [][2]string{
		{"lock directory", "lock"}, {"state directory", "state"}, {"cache directory", "cache"},
		{"private dir", "private"}, {"pid directory", "run"}, {"ncalrpc dir", "ncalrpc"},
		{"binddns dir", "bind-dns"}, {"usershare path", "usershares"},
	} {
		fmt.Fprintf(&b, "   %s = %s/%s\n", kv[0], root, kv[1])
	}
	fmt.Fprintf(&b, "   log file = %s/log/log.%%m\n", root)
	return b.String()
}

// TestRealSmbd: smbd with Debian's smb.conf (map to guest = bad user, as
// packaged) plus interfaces = 127.0.0.10, bind interfaces only = yes, its
// directories under a temporary one and a guest share; smbclient on host 11
// lists the share, and on host 12 puts a file and gets it back, intact.
func TestRealSmbd(t *testing.T) {
	realModes(t, 90*time.Second, []string{"smbd", "smbclient"}, func(t *testing.T, e *realEnv) {
		smbd, _ := exec.LookPath("smbd")
		smbclient, _ := exec.LookPath("smbclient")
		port := 445
		srvRoot, cliRoot := filepath.Join(e.tmp, "server"), filepath.Join(e.tmp, "client")
		share := filepath.Join(e.tmp, "share")
		for _, r := range []string{srvRoot, cliRoot} {
			for _, d := range []string{"lock", "state", "cache", "private", "run", "ncalrpc", "bind-dns", "usershares", "log"} {
				mkdirs(t, 0o755, filepath.Join(r, d))
			}
		}
		mkdirs(t, 0o755, share)
		// The guest (nobody) writes here.
		if err := os.Chmod(share, 0o777); err != nil {
			t.Fatal(err)
		}
		packaged := debianConf(t, "/etc/samba/smb.conf")
		if !regexp.MustCompile(`(?m)^\s*map to guest = bad user`).MatchString(packaged) {
			t.Fatalf("Debian's smb.conf no longer maps unknown users to guest")
		}
		// A second [global] section continues the first; later values win.
		srvConf := packaged + "\n[global]\n   interfaces = 127.0.0.10\n   bind interfaces only = yes\n" +
			fmt.Sprintf("   smb ports = %d\n", port) + sambaDirs(srvRoot) +
			"\n[share]\n   path = " + share + "\n   guest ok = yes\n   read only = no\n"
		cliConf := packaged + "\n[global]\n" + sambaDirs(cliRoot)
		writeFile(t, filepath.Join(e.tmp, "smb.conf"), srvConf, 0o644)
		writeFile(t, filepath.Join(e.tmp, "client.conf"), cliConf, 0o644)
		e.logOnFailure(filepath.Join(srvRoot, "log", "*"))

		srv := startProc(t, e.cmd(e.ctx, 10, smbd, "--foreground", "--no-process-group", "--debug-stdout",
			"-d", "1", "-s", filepath.Join(e.tmp, "smb.conf")), false)
		e.waitListen(srv, "127.0.0.10:"+strconv.Itoa(port))

		cli := []string{"-s", filepath.Join(e.tmp, "client.conf"), "-p", strconv.Itoa(port), "-N"}
		out := e.run(srv, 11, 20*time.Second, smbclient, append(append([]string{}, cli...), "-L", "//127.0.0.10")...)
		if !regexp.MustCompile(`(?m)^\s+share\s+Disk`).MatchString(out) {
			t.Errorf("smbclient -L does not list the share:\n%s", out)
		}

		src := filepath.Join(e.tmp, "smb.src")
		back := filepath.Join(e.tmp, "smb.back")
		sum := randomFile(t, src, 5<<20)
		e.run(srv, 12, 30*time.Second, smbclient, append(append([]string{}, cli...), "//127.0.0.10/share",
			"-c", fmt.Sprintf("put %s up; get up %s", src, back))...)
		if fileSum(t, filepath.Join(share, "up")) != sum {
			t.Errorf("smbclient put: the file in the share differs")
		}
		if fileSum(t, back) != sum {
			t.Errorf("smbclient get: the file fetched back differs")
		}
	})
}

// TestRealDnsmasq: dnsmasq as Debian's init starts it (its dnsmasq.conf and
// dnsmasq.d, user dnsmasq, --local-service), in its default wildcard mode,
// serving a name from an --addn-hosts file, with --no-resolv so that it can
// never forward a query; dig on host 11 asks over UDP and dig on host 12
// over TCP, and both get the address.
func TestRealDnsmasq(t *testing.T) {
	realModes(t, 60*time.Second, []string{"dnsmasq", "dig"}, func(t *testing.T, e *realEnv) {
		dnsmasq, _ := exec.LookPath("dnsmasq")
		dig, _ := exec.LookPath("dig")
		port := 53
		hosts := filepath.Join(e.tmp, "hosts")
		writeFile(t, hosts, "127.0.0.77 real.swrap.test\n", 0o644)
		srv := startProc(t, e.cmd(e.ctx, 10, dnsmasq, "-k", "--log-facility=-", "--log-queries",
			"--conf-file=/etc/dnsmasq.conf", "-7", "/etc/dnsmasq.d,.dpkg-dist,.dpkg-old,.dpkg-new",
			"-u", "dnsmasq", "--local-service", "-x", filepath.Join(e.tmp, "dnsmasq.pid"),
			"--no-resolv", "--addn-hosts="+hosts, "--port="+strconv.Itoa(port)), false)
		// Wildcard mode: one socket on 0.0.0.0 per protocol.
		e.waitListen(srv, "0.0.0.0:"+strconv.Itoa(port))
		e.checkRunsAs(srv, dnsmasq, "dnsmasq")

		for _, q := range []struct {
			host  int
			flags []string
		}{{11, []string{"+notcp"}}, {12, []string{"+tcp"}}} {
			args := append([]string{"@127.0.0.10", "-p", strconv.Itoa(port), "+tries=1", "+time=3", "+short"}, q.flags...)
			out := e.run(srv, q.host, 15*time.Second, dig, append(args, "real.swrap.test", "A")...)
			if strings.TrimSpace(out) != "127.0.0.77" {
				t.Errorf("dig %s from host %d answered %q, want 127.0.0.77\n%s", q.flags[0], q.host, out, srv.describe())
			}
		}
	})
}

// TestRealRedis: redis-server with Debian's redis.conf, changed to bind
// 127.0.0.10, stay in the foreground and keep its files in a temporary
// directory; redis-cli on host 11 stores a 1 MB value, and on host 12 reads
// it back intact and sees itself as 127.0.0.12 in CLIENT LIST. Protected
// mode is turned off: as packaged it accepts only peers on 127.0.0.1 or ::1
// (on Linux too: a client bound to 127.0.0.11 is DENIED), so clients on
// other hosts need it off, as Redis's own message says.
func TestRealRedis(t *testing.T) {
	realModes(t, 60*time.Second, []string{"redis-server", "redis-cli"}, func(t *testing.T, e *realEnv) {
		server, _ := exec.LookPath("redis-server")
		cli, _ := exec.LookPath("redis-cli")
		conf := debianConf(t, "/etc/redis/redis.conf")
		conf = replaceLine(t, conf, `bind 127.0.0.1 -::1`, "bind 127.0.0.10")
		conf = replaceLine(t, conf, `protected-mode yes`, "protected-mode no")
		conf = replaceLine(t, conf, `daemonize yes`, "daemonize no")
		conf = replaceLine(t, conf, `pidfile /run/redis/redis-server.pid`, "pidfile "+e.tmp+"/redis.pid")
		conf = replaceLine(t, conf, `logfile /var/log/redis/redis-server.log`, `logfile ""`)
		conf = replaceLine(t, conf, `dir /var/lib/redis`, "dir "+e.tmp)
		writeFile(t, filepath.Join(e.tmp, "redis.conf"), conf, 0o644)
		srv := startProc(t, e.cmd(e.ctx, 10, server, filepath.Join(e.tmp, "redis.conf")), false)
		e.waitListen(srv, "127.0.0.10:6379")

		// Printable data: redis-cli --raw prints the value and a newline.
		val := make([]byte, 1<<20)
		rand.Read(val)
		for i := range val {
			val[i] = 'a' + val[i]%26
		}
		src := filepath.Join(e.tmp, "value")
		writeFile(t, src, string(val), 0o644)
		set := e.cmd(e.step(15*time.Second), 11, cli, "-h", "127.0.0.10", "-x", "set", "big")
		f, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		set.Stdin = f
		if out, errOut, err := runCmd(set); err != nil || strings.TrimSpace(out) != "OK" {
			t.Fatalf("redis-cli set on host 11: %v %q %s\n%s", err, out, errOut, srv.describe())
		}
		got := e.run(srv, 12, 15*time.Second, cli, "-h", "127.0.0.10", "--raw", "get", "big")
		if sha256.Sum256([]byte(strings.TrimSuffix(got, "\n"))) != sha256.Sum256(val) {
			t.Errorf("redis-cli get on host 12: the 1 MB value came back changed (%d bytes)", len(got))
		}
		list := e.run(srv, 12, 15*time.Second, cli, "-h", "127.0.0.10", "client", "list")
		if !strings.Contains(list, " laddr=127.0.0.10:6379 ") || (!e.native && !strings.Contains(list, "addr=127.0.0.12:")) {
			t.Errorf("CLIENT LIST from host 12 is %q, want addr=127.0.0.12:PORT laddr=127.0.0.10:6379", list)
		}
	})
}

// TestRealMemcached: memcached started as Debian's systemd unit starts it
// (its systemd-memcached-wrapper reading memcached.conf: 64 MB, port 11211,
// user memcache), the conf changed only in its -l and -P lines; memccp on
// host 11 stores a file and memccat on host 12 fetches it, intact.
func TestRealMemcached(t *testing.T) {
	wrapper := "/usr/share/memcached/scripts/systemd-memcached-wrapper"
	realModes(t, 60*time.Second, []string{"memcached", "memccp", "memccat", "perl"}, func(t *testing.T, e *realEnv) {
		needTool(t, wrapper)
		memccp, _ := exec.LookPath("memccp")
		memccat, _ := exec.LookPath("memccat")
		conf := debianConf(t, "/etc/memcached.conf")
		if !regexp.MustCompile(`(?m)^-u memcache$`).MatchString(conf) {
			t.Fatalf("Debian's memcached.conf no longer runs memcached as user memcache")
		}
		conf = replaceLine(t, conf, `-l 127.0.0.1`, "-l 127.0.0.10")
		conf = replaceLine(t, conf, `-P /var/run/memcached/memcached.pid`, "-P "+e.tmp+"/memcached.pid")
		writeFile(t, filepath.Join(e.tmp, "memcached.conf"), conf, 0o644)
		srv := startProc(t, e.cmd(e.ctx, 10, wrapper, filepath.Join(e.tmp, "memcached.conf")), false)
		e.waitListen(srv, "127.0.0.10:11211")
		e.checkRunsAs(srv, "/usr/bin/memcached", "memcache")

		src := filepath.Join(e.tmp, "item")
		sum := randomFile(t, src, 500<<10)
		e.run(srv, 11, 15*time.Second, memccp, "--servers=127.0.0.10", src)
		back := filepath.Join(e.tmp, "item.back")
		e.run(srv, 12, 15*time.Second, memccat, "--servers=127.0.0.10", "--file="+back, "item")
		if fileSum(t, back) != sum {
			t.Errorf("memccat on host 12: the 500 KB item came back changed")
		}
	})
}
