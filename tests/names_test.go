package tests

// Names inside the emulated network (package names, shim/netdb.c,
// shim/resolve.c): libc's lookups answered by the shim, the broker's DNS
// server on host 253, and no lookup that leaves the machine.
//
// Network safety: every wrapped or native program of these tests runs in
// a private mount namespace whose /etc/resolv.conf names only 127.0.0.1
// (realEnv.cmd), so a lookup the shim missed could never reach the
// machine's resolver; newNamesEnv refuses to run unless the namespace shows
// that file.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swrap/swrap/swrapnet"
)

// The name files every names test loads, one per format.
const (
	namesHosts = `# SWRAP_HOSTS, hosts(5)
127.0.0.20   web web.example.test   # the web server
fd00::5357:5f14 web
`
	namesNSS = `fd00::5357:5f15 nss.example.test nssalias
`
	namesResolv = `A rw.example.test 127.0.0.22
AAAA rw.example.test fd00::5357:5f16
SRV _ldap._tcp.example.test dc1.example.test 389 0 100
A dc1.example.test 127.0.0.30
CNAME alias.example.test web.example.test
CNAME a2.example.test alias.example.test
TXT txt.example.test hello world
`
)

// newNamesEnv starts a broker (with a capture) that loads the three name
// files, with extra broker environment, and returns a realEnv whose cmd
// runs programs in a private mount namespace with resolv as
// /etc/resolv.conf.
func newNamesEnv(t *testing.T, resolv string, brokerEnv ...string) *realEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("names tests need root (a private mount namespace for /etc/resolv.conf) under CI=true")
		}
		t.Skip("names tests need root: without a private resolv.conf a missed lookup could leave the machine")
	}
	needTool(t, "unshare")
	needTool(t, "mount")
	e := &realEnv{t: t}
	e.tmp = realTempDir(t)
	e.tag = e.tmp
	e.resolv = filepath.Join(e.tmp, "resolv.conf")
	writeFile(t, e.resolv, resolv, 0o644)
	files := map[string]string{"SWRAP_HOSTS": namesHosts, "NSS_WRAPPER_HOSTS": namesNSS, "RESOLV_WRAPPER_HOSTS": namesResolv}
	env := []string{"SOCKET_WRAPPER_PCAP_FILE=" + filepath.Join(e.tmp, "capture.pcap")}
	for v, data := range files {
		p := filepath.Join(e.tmp, strings.ToLower(v))
		writeFile(t, p, data, 0o644)
		env = append(env, v+"="+p)
	}
	e.pcap = filepath.Join(e.tmp, "capture.pcap")
	e.dir = swrapDir(t)
	e.broker = startBroker(t, e.dir, append(env, brokerEnv...)...)
	t.Cleanup(func() { killTagged(t, e.tag) })
	e.ctx = testCtx(t, 3*time.Minute)
	// Refuse to go on unless programs really see our resolv.conf.
	out, errOut, err := runCmd(e.cmd(e.step(10*time.Second), 11, "cat", "/etc/resolv.conf"))
	if err != nil || out != resolv {
		t.Fatalf("the private mount namespace does not show the test's resolv.conf (%v): %q %s", err, out, errOut)
	}
	return e
}

// safeResolv names only 127.0.0.1, with short timeouts for unwrapped
// programs of the tests.
const safeResolv = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"

// nrun runs a wrapped program on host and returns its stdout; it fails the
// test unless the exit status is want.
func nrun(e *realEnv, host, want int, name string, args ...string) string {
	e.t.Helper()
	out, errOut, err := runCmd(e.cmd(e.step(30*time.Second), host, name, args...))
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("%s %v: %v", name, args, err)
	}
	if code != want {
		e.t.Fatalf("%s %v on host %d: exit %d, want %d\n--- stdout:\n%s--- stderr:\n%s", name, args, host, code, want, out, errOut)
	}
	return out
}

// lineSet is s's lines, each with its whitespace runs made single spaces,
// sorted.
func lineSet(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

func wantLines(t *testing.T, what, got string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if g := lineSet(got); !slices.Equal(g, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, g, want)
	}
}

// TestNamesLibc: libc's lookups under the shim, from the default names and
// each file format: getent (gethostbyname2, getaddrinfo), python's
// getaddrinfo/getnameinfo, an ssh-style AI_CANONNAME lookup through a CNAME
// chain, gethostbyname_r, res_query of an SRV record, localhost, and a name
// the table lacks.
func TestNamesLibc(t *testing.T) {
	getent := needTool(t, "getent")
	py := pythonTool(t)
	resolve := buildTestdataC(t, "resolve")
	e := newNamesEnv(t, safeResolv)

	wantLines(t, "getent hosts host10", nrun(e, 11, 0, getent, "hosts", "host10"), "fd00::5357:5f0a host10")
	wantLines(t, "getent ahosts host10", nrun(e, 11, 0, getent, "ahosts", "host10"),
		"127.0.0.10 STREAM host10", "127.0.0.10 DGRAM", "127.0.0.10 RAW",
		"fd00::5357:5f0a STREAM", "fd00::5357:5f0a DGRAM", "fd00::5357:5f0a RAW")
	wantLines(t, "getent ahostsv4 web", nrun(e, 11, 0, getent, "ahostsv4", "web"),
		"127.0.0.20 STREAM web", "127.0.0.20 DGRAM", "127.0.0.20 RAW")
	// Each file format.
	wantLines(t, "getent hosts web.example.test (SWRAP_HOSTS)", nrun(e, 11, 0, getent, "ahostsv4", "web.example.test"),
		"127.0.0.20 STREAM web.example.test", "127.0.0.20 DGRAM", "127.0.0.20 RAW")
	wantLines(t, "getent hosts nssalias (NSS_WRAPPER_HOSTS)", nrun(e, 11, 0, getent, "hosts", "nssalias"), "fd00::5357:5f15 nssalias")
	wantLines(t, "getent ahostsv4 rw.example.test (RESOLV_WRAPPER_HOSTS)", nrun(e, 11, 0, getent, "ahostsv4", "rw.example.test"),
		"127.0.0.22 STREAM rw.example.test", "127.0.0.22 DGRAM", "127.0.0.22 RAW")
	// gethostbyaddr: a file's name for its address, the default for a host's.
	wantLines(t, "getent hosts 127.0.0.20", nrun(e, 11, 0, getent, "hosts", "127.0.0.20"), "127.0.0.20 web")
	wantLines(t, "getent hosts fd00::5357:5f0d", nrun(e, 11, 0, getent, "hosts", "fd00::5357:5f0d"), "fd00::5357:5f0d host13")
	// localhost is the asker's own host.
	wantLines(t, "getent ahostsv4 localhost on host 12", nrun(e, 12, 0, getent, "ahostsv4", "localhost"),
		"127.0.0.12 STREAM localhost", "127.0.0.12 DGRAM", "127.0.0.12 RAW")
	// Not in the table: "not found" (getent's exit 2) at once.
	start := time.Now()
	nrun(e, 11, 2, getent, "hosts", "nosuch.example.com")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a name outside the table took %v to fail", d)
	}

	script := `import socket, sys
def ga(name, fam):
    try:
        return sorted(set(a[4][0] for a in socket.getaddrinfo(name, 80, fam, socket.SOCK_STREAM)))
    except socket.gaierror as e:
        return "gaierror %d" % e.errno
print(ga("host10", socket.AF_INET))
print(ga("host10", socket.AF_INET6))
print(ga("host10", socket.AF_UNSPEC))
print(ga("web", socket.AF_UNSPEC))
print(ga("nosuch.example.com", socket.AF_UNSPEC))
print(ga("rw.example.test", socket.AF_INET6))
print(socket.getnameinfo(("127.0.0.10", 80), 0))
print(socket.getnameinfo(("fd00::5357:5f14", 22), 0))
print(socket.getnameinfo(("127.0.0.99", 80), socket.NI_NUMERICSERV))
print(socket.getaddrinfo("127.0.0.99", "http", socket.AF_INET, socket.SOCK_STREAM)[0][4])
print(socket.gethostbyname("a2.example.test"))
print(sorted((a[0].name, a[1].name, a[4][:2]) for a in socket.getaddrinfo("host10", "domain", 0, socket.SOCK_DGRAM, 0, socket.AI_ADDRCONFIG)))
print([a[4][0] for a in socket.getaddrinfo("dc1.example.test", 80, socket.AF_INET6, socket.SOCK_STREAM, 0, socket.AI_V4MAPPED)])
print(ga("dc1.example.test", socket.AF_INET6))
try: socket.getaddrinfo("host10", 80, 0, 0, 0, socket.AI_NUMERICHOST)
except socket.gaierror as e: print("gaierror %d" % e.errno)
print(len(socket.getaddrinfo("web", 80, socket.AF_INET)))
print(socket.getaddrinfo("a2.example.test", 80, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_CANONNAME)[0][3])
`
	got := strings.Split(strings.TrimSpace(nrun(e, 11, 0, py, "-c", script)), "\n")
	want := []string{
		"['127.0.0.10']", "['fd00::5357:5f0a']", "['127.0.0.10', 'fd00::5357:5f0a']",
		"['127.0.0.20', 'fd00::5357:5f14']", fmt.Sprintf("gaierror %d", -2), "['fd00::5357:5f16']",
		"('host10', 'http')", "('web', 'ssh')", "('127.0.0.99', '80')", "('127.0.0.99', 80)", "127.0.0.20",
		// AI_ADDRCONFIG: the emulated interface has both families.
		"[('AF_INET', 'SOCK_DGRAM', ('127.0.0.10', 53)), ('AF_INET6', 'SOCK_DGRAM', ('fd00::5357:5f0a', 53))]",
		"['::ffff:127.0.0.30']", "gaierror -5", "gaierror -2", "3", "web.example.test",
	}
	if !slices.Equal(got, want) {
		t.Errorf("python lookups:\n got %q\nwant %q", got, want)
	}

	// ssh's lookup: AI_CANONNAME through the CNAME chain a2 -> alias -> web.
	wantLines(t, "getaddrinfo(AI_CANONNAME) a2.example.test", nrun(e, 11, 0, resolve, "canon", "a2.example.test"),
		"canon web.example.test", "127.0.0.20 22")
	wantLines(t, "gethostbyname_r a2.example.test", nrun(e, 11, 0, resolve, "hostbyname", "a2.example.test"),
		"name web.example.test", "alias a2.example.test", "addr 127.0.0.20")
	wantLines(t, "getnameinfo(NI_NAMEREQD) fd00::5357:5f15", nrun(e, 11, 0, resolve, "nameinfo", "fd00::5357:5f15"), "nss.example.test")
	wantLines(t, "getnameinfo(NI_NAMEREQD) of an unnamed address", nrun(e, 11, 1, resolve, "nameinfo", "127.0.0.99"),
		"error Name or service not known")
	wantLines(t, "res_query SRV", nrun(e, 11, 0, resolve, "srv", "_ldap._tcp.example.test"), "SRV 0 100 389 dc1.example.test")
	// The names binaries linked before glibc 2.34 call (libresolv's).
	wantLines(t, "__res_search SRV", nrun(e, 11, 0, resolve, "srv-old", "_ldap._tcp.example.test"), "SRV 0 100 389 dc1.example.test")
	wantLines(t, "res_query SRV of a missing name", nrun(e, 11, 1, resolve, "srv", "_kerberos._udp.example.test"), "h_errno 1")
}

// TestNamesCurl: curl http://host10:8080/ against a wrapped python
// http.server on host 10.
func TestNamesCurl(t *testing.T) {
	curl := needTool(t, "curl")
	py := pythonTool(t)
	e := newNamesEnv(t, safeResolv)
	www := filepath.Join(e.tmp, "www")
	mkdirs(t, 0o755, www)
	writeFile(t, filepath.Join(www, "hello.txt"), "hello from host10\n", 0o644)
	srv := startProc(t, e.cmd(e.ctx, 10, py, "-m", "http.server", "8080", "--bind", "host10", "--directory", www), false)
	e.waitListen(srv, "127.0.0.10:8080")
	out := nrun(e, 11, 0, curl, "-sS", "--max-time", "10", "http://host10:8080/hello.txt")
	if out != "hello from host10\n" {
		t.Errorf("curl got %q", out)
	}
	// web.example.test is 127.0.0.20, where nothing listens: curl's
	// "couldn't connect" (7), not "couldn't resolve" (6).
	nrun(e, 11, 7, curl, "-sS", "--max-time", "10", "http://web.example.test:8080/")
	nrun(e, 11, 6, curl, "-sS", "--max-time", "10", "http://nosuch.example.com:8080/")
}

// dig runs a wrapped dig on host 11 and returns its output.
func dig(e *realEnv, args ...string) string {
	e.t.Helper()
	d := needTool(e.t, "dig")
	return nrun(e, 11, 0, d, append([]string{"+tries=1", "+time=3"}, args...)...)
}

var digStatus = regexp.MustCompile(`status: ([A-Z]+)`)

// TestNamesDNSServer: a wrapped dig against the broker's DNS server on
// 127.0.0.253 and fd00::5357:5ffd: A, AAAA, reverse names of both families,
// TCP, NXDOMAIN and NODATA, SRV with its target's address as additional
// record, truncation and dig's TCP retry, EDNS0; a plain `dig host10`
// (resolv.conf's 127.0.0.1) reaches the same server; the queries are in
// the capture as DNS packets.
func TestNamesDNSServer(t *testing.T) {
	e := newNamesEnv(t, safeResolv)
	const v4, v6 = "@127.0.0.253", "@fd00::5357:5ffd"
	wantLines(t, "dig A", dig(e, v4, "host10", "A", "+short"), "127.0.0.10")
	wantLines(t, "dig AAAA over v6", dig(e, v6, "host10", "AAAA", "+short"), "fd00::5357:5f0a")
	wantLines(t, "dig -x v4", dig(e, v4, "-x", "127.0.0.10", "+short"), "host10.")
	wantLines(t, "dig -x v6", dig(e, v4, "-x", "fd00::5357:5f0a", "+short"), "host10.")
	wantLines(t, "dig -x of a file's address", dig(e, v4, "-x", "127.0.0.20", "+short"), "web.")
	wantLines(t, "dig +tcp", dig(e, v6, "+tcp", "web.example.test", "A", "+short"), "127.0.0.20")
	wantLines(t, "dig CNAME chain", dig(e, v4, "a2.example.test", "A", "+short"), "alias.example.test.", "web.example.test.", "127.0.0.20")
	wantLines(t, "dig TXT", dig(e, v4, "txt.example.test", "TXT", "+short"), `"hello world"`)
	if m := digStatus.FindStringSubmatch(dig(e, v4, "nosuch.example.com", "A")); m == nil || m[1] != "NXDOMAIN" {
		t.Errorf("missing name: status %v, want NXDOMAIN", m)
	}
	nodata := dig(e, v4, "dc1.example.test", "AAAA")
	if m := digStatus.FindStringSubmatch(nodata); m == nil || m[1] != "NOERROR" || !strings.Contains(nodata, "ANSWER: 0") {
		t.Errorf("name without AAAA: want NOERROR with no answer (NODATA):\n%s", nodata)
	}
	srv := dig(e, v4, "_ldap._tcp.example.test", "SRV")
	if !regexp.MustCompile(`(?m)^_ldap\._tcp\.example\.test\.\s+\d+\s+IN\s+SRV\s+0 100 389 dc1\.example\.test\.$`).MatchString(srv) ||
		!regexp.MustCompile(`(?m)ADDITIONAL SECTION:\ndc1\.example\.test\.\s+\d+\s+IN\s+A\s+127\.0\.0\.30$`).MatchString(srv) {
		t.Errorf("SRV answer without its target's address as additional record:\n%s", srv)
	}
	// Plain dig: resolv.conf's nameserver 127.0.0.1, port 53, is the
	// broker's server.
	plain := dig(e, "host10")
	if !strings.Contains(plain, "SERVER: 127.0.0.1#53") || !regexp.MustCompile(`(?m)^host10\.\s+\d+\s+IN\s+A\s+127\.0\.0\.10$`).MatchString(plain) {
		t.Errorf("plain dig host10 did not get the broker's answer:\n%s", plain)
	}
	pkts := e.capture()
	var udp4, udp6, tcp6 int
	for _, p := range pkts {
		switch {
		case p.dstIP == "127.0.0.253" && p.dstPort == 53 && p.payload > 0 && !p.syn:
			udp4++
		case p.dstIP == "fd00::5357:5ffd" && p.dstPort == 53 && p.payload > 0:
			if p.ack {
				tcp6++
			} else {
				udp6++
			}
		}
	}
	if udp4 < 8 || udp6 < 1 || tcp6 < 1 {
		t.Errorf("capture: %d DNS packets to 127.0.0.253:53, %d UDP and %d TCP to [fd00::5357:5ffd]:53; want >=8, >=1, >=1", udp4, udp6, tcp6)
	}
}

// TestNamesTruncation: a name with 60 addresses does not fit a 512-byte
// UDP answer: the server sets TC, and dig retries over TCP and gets all.
func TestNamesTruncation(t *testing.T) {
	var big strings.Builder
	for i := 1; i <= 60; i++ {
		fmt.Fprintf(&big, "127.0.0.%d big.example.test\n", i)
	}
	dir := realTempDir(t)
	p := filepath.Join(dir, "big")
	writeFile(t, p, big.String(), 0o644)
	e := newNamesEnv(t, safeResolv, "SWRAP_HOSTS="+p)
	out := dig(e, "@127.0.0.253", "+noedns", "big.example.test", "A")
	if !strings.Contains(out, "Truncated, retrying in TCP mode") || !strings.Contains(out, "ANSWER: 60") || !strings.Contains(out, "(TCP)") {
		t.Errorf("want a truncated UDP answer and a full one over TCP:\n%s", out)
	}
	// With EDNS0 the answer is complete too (over UDP or after TC).
	if out := dig(e, "@127.0.0.253", "big.example.test", "A", "+short"); len(lineSet(out)) != 60 {
		t.Errorf("with EDNS0: %d answers, want 60", len(lineSet(out)))
	}
}

// countingDNS listens natively on addr port 53 (UDP and TCP) and counts
// what arrives.
func countingDNS(t *testing.T, ip string) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "53"))
	if err != nil {
		t.Fatalf("a native listener on %s:53: %v", ip, err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "53"))
	if err != nil {
		pc.Close()
		t.Fatalf("a native listener on %s:53/tcp: %v", ip, err)
	}
	t.Cleanup(func() { pc.Close(); l.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			n.Add(1)
		}
	}()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return &n
}

// TestNamesNoLeak: with resolv.conf's nameserver a native listener on
// 127.0.0.1:53 that counts what it receives, wrapped lookups of table names
// and of unknown names (getent, python, res_query, dig) send it nothing;
// the same unknown name looked up unwrapped does reach it, which shows the
// listener would see a leak.
func TestNamesNoLeak(t *testing.T) {
	getent := needTool(t, "getent")
	py := pythonTool(t)
	resolve := buildTestdataC(t, "resolve")
	count := countingDNS(t, "127.0.0.1")
	e := newNamesEnv(t, safeResolv)

	nrun(e, 11, 0, getent, "hosts", "host10")
	nrun(e, 11, 2, getent, "hosts", "nosuch.example.com")
	nrun(e, 11, 2, getent, "ahosts", "nosuch.example.com")
	nrun(e, 11, 0, py, "-c", `import socket
for n in ("host10", "web", "nosuch.example.com", "nosuch"):
    try: socket.getaddrinfo(n, 80)
    except socket.gaierror: pass
try: socket.gethostbyaddr("192.0.2.1")
except OSError: pass
`)
	nrun(e, 11, 1, resolve, "srv", "_nosuch._tcp.example.com")
	dig(e, "nosuch.example.com")
	dig(e, "host10")
	if n := count.Load(); n != 0 {
		t.Fatalf("wrapped lookups sent %d messages to resolv.conf's nameserver", n)
	}
	// The control: unwrapped, glibc asks the nameserver.
	cmd := e.cmd(e.step(20*time.Second), 11, getent, "hosts", "nosuch.example.com")
	cmd.Env = append(cleanEnv(), "REALPROGS_TAG="+e.tag)
	runCmd(cmd)
	n := count.Load()
	if n == 0 {
		t.Fatalf("an unwrapped lookup did not reach the counting listener: the test could not see a leak")
	}
	// SWRAP_RESOLVE_OUTSIDE=1 hands names outside the table to libc,
	// whose resolver asks resolv.conf's (here: the counting) server.
	cmd = e.cmd(e.step(20*time.Second), 11, getent, "hosts", "nosuch.example.com")
	cmd.Env = append(cmd.Env, "SWRAP_RESOLVE_OUTSIDE=1")
	runCmd(cmd)
	if count.Load() == n {
		t.Errorf("SWRAP_RESOLVE_OUTSIDE=1: the outside name was not passed to libc's resolver")
	}
}

// TestNamesBadInput: a hosts file with bad lines gives one message per bad
// line (file:line) and its good lines work; 1000 random datagrams to the
// DNS server get FORMERR (or no answer) and it keeps serving.
func TestNamesBadInput(t *testing.T) {
	getent := needTool(t, "getent")
	py := pythonTool(t)
	dir := realTempDir(t)
	bad := filepath.Join(dir, "badhosts")
	writeFile(t, bad, "127.0.0.40 good1\nnot-an-address name\n127.0.0.41\n127.0.0.42 good2 bad\"name\nfd00::5357:5f2b good3\n", 0o644)
	e := newNamesEnv(t, safeResolv, "SWRAP_HOSTS="+bad)
	wantLines(t, "good1", nrun(e, 11, 0, getent, "ahostsv4", "good1"), "127.0.0.40 STREAM good1", "127.0.0.40 DGRAM", "127.0.0.40 RAW")
	wantLines(t, "good3", nrun(e, 11, 0, getent, "hosts", "good3"), "fd00::5357:5f2b good3")
	nrun(e, 11, 2, getent, "hosts", "good2")
	log := e.broker.log.String()
	for _, line := range []int{2, 3, 4} {
		if n := strings.Count(log, fmt.Sprintf("%s:%d:", bad, line)); n != 1 {
			t.Errorf("line %d: %d messages, want 1\n%s", line, n, log)
		}
	}
	for _, line := range []int{1, 5} {
		if strings.Contains(log, fmt.Sprintf("%s:%d:", bad, line)) {
			t.Errorf("good line %d reported:\n%s", line, log)
		}
	}
	// swrap status lists the table with each record's source.
	st, stderr, code := cliRun(t, nil, "status", "--dir", e.dir)
	if code != 0 {
		t.Fatalf("swrap status: %d %s", code, stderr)
	}
	for _, re := range []string{
		`(?m)^  host1 \.\. host64: A, AAAA and PTR of every host \(256 default records\)$`,
		`(?m)^  good1\s+A\s+127\.0\.0\.40\s+` + regexp.QuoteMeta(bad) + `:1$`,
		`(?m)^  good3\s+AAAA\s+fd00::5357:5f2b\s+` + regexp.QuoteMeta(bad) + `:5$`,
		`(?m)^  _ldap\._tcp\.example\.test\s+SRV\s+0 100 389 dc1\.example\.test\.\s+\S+resolv_wrapper_hosts:3$`,
	} {
		if !regexp.MustCompile(re).MatchString(st) {
			t.Errorf("swrap status does not match %s:\n%s", re, st)
		}
	}
	if strings.Contains(st, "good2") {
		t.Errorf("a bad line's name is in the table:\n%s", st)
	}

	script := `import os, random, socket, struct
random.seed(10)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
formerr = other = 0
for i in range(1000):
    n = random.randrange(0, 200)
    b = bytearray(os.urandom(n))
    if n >= 3 and i % 2:
        b[2] &= 0x7f   # a query, not a reply: deserves an answer
    s.sendto(bytes(b), ("127.0.0.253", 53))
    if i % 50 == 0:
        try:
            while True:
                r = s.recv(65536)
                if r[3] & 0xf == 1: formerr += 1
                else: other += 1
        except socket.timeout:
            pass
s.settimeout(2)
try:
    while True:
        r = s.recv(65536)
        if r[3] & 0xf == 1: formerr += 1
        else: other += 1
except socket.timeout:
    pass
print(formerr, other)
`
	out := strings.Fields(nrun(e, 11, 0, py, "-c", script))
	if len(out) != 2 || out[0] == "0" {
		t.Errorf("random queries: FORMERR, other answers = %v; want some FORMERR", out)
	}
	wantLines(t, "dig after garbage", dig(e, "@127.0.0.253", "host10", "+short"), "127.0.0.10")
}

// TestNamesGoResolver: swrapnet's net.Resolver asks the broker's DNS
// server over the emulated network (its Dial never uses the address Go
// picked from resolv.conf).
func TestNamesGoResolver(t *testing.T) {
	e := newNamesEnv(t, safeResolv)
	h := swrapnet.MustJoin(e.dir, 11)
	r := h.Resolver()
	ctx := e.step(20 * time.Second)
	as, err := r.LookupHost(ctx, "rw.example.test")
	slices.Sort(as)
	if err != nil || !slices.Equal(as, []string{"127.0.0.22", "fd00::5357:5f16"}) {
		t.Errorf("LookupHost: %v %v", as, err)
	}
	_, srvs, err := r.LookupSRV(ctx, "ldap", "tcp", "example.test")
	if err != nil || len(srvs) != 1 || srvs[0].Target != "dc1.example.test." || srvs[0].Port != 389 {
		t.Errorf("LookupSRV: %v %v", srvs, err)
	}
	names, err := r.LookupAddr(ctx, "fd00::5357:5f0c")
	if err != nil || !slices.Equal(names, []string{"host12."}) {
		t.Errorf("LookupAddr: %v %v", names, err)
	}
	if _, err := r.LookupHost(ctx, "nosuch.example.test"); err == nil || !err.(*net.DNSError).IsNotFound {
		t.Errorf("a missing name: %v", err)
	}
	var n int
	for _, p := range e.capture() {
		if p.dstIP == "127.0.0.253" && p.dstPort == 53 && p.srcIP == "127.0.0.11" {
			n++
		}
	}
	if n < 4 {
		t.Errorf("%d DNS queries from host 11 in the capture, want >= 4", n)
	}
}
