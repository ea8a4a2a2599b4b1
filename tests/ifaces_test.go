package tests

// What a wrapped program learns about the machine's network interfaces:
// exactly its host's emulated interface (index 1, "swrapN"), through
// getifaddrs, if_nameindex and friends, the SIOCGIF* ioctls and iproute2's
// netlink dumps; and, with wrapping off, the real machine's.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/swrap/swrap/broker"
)

// runIfaces runs tests/testdata/ifaces.c with env, asking about ifname.
func runIfaces(t *testing.T, bin string, env []string, ifname string) string {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	cmd := exec.CommandContext(ctx, bin, ifname)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ifaces %s: %v\n%s", ifname, err, out)
	}
	return string(out)
}

// TestInterfaces asserts every line the C program prints: the addresses,
// netmask, broadcast address, index, name, flags and MTU of the one
// emulated interface, with no real interface (lo, 127.0.0.1) anywhere.
// Host 10 is on the default 127.0.0.0 network with the default MTU; host 12
// on 10.53.57.0 with a broker started with SOCKET_WRAPPER_MTU=9000 (which
// the program's environment does not say: the MTU comes from the broker).
func TestInterfaces(t *testing.T) {
	bin := buildTestdataC(t, "ifaces")
	flags := "UP,BROADCAST,RUNNING,MULTICAST,LOWER_UP"
	want := func(n, v4, brd, v6, mtu string) string {
		name := "swrap" + n
		return strings.Join([]string{
			"getifaddrs " + name + " packet ifindex=1 hatype=65534 halen=0 flags=" + flags + " data=yes",
			"getifaddrs " + name + " inet " + v4 + " netmask 255.0.0.0 broadcast " + brd + " flags=" + flags,
			"getifaddrs " + name + " inet6 " + v6 + " netmask ffff:ffff:ffff:ffff:: broadcast - flags=" + flags,
			"if_nameindex 1 " + name,
			"if_nametoindex " + name + " 1 ",
			"if_nametoindex nosuchif0 0 ENODEV",
			"if_indextoname 1 " + name,
			"if_indextoname 4000 ENXIO",
			"SIOCGIFCONF " + name + " " + v4,
			"SIOCGIFADDR " + v4,
			"SIOCGIFNETMASK 255.0.0.0",
			"SIOCGIFBRDADDR " + brd,
			"SIOCGIFFLAGS UP,BROADCAST,RUNNING,MULTICAST",
			"SIOCGIFINDEX 1",
			"SIOCGIFINDEX(unix) 1",
			"SIOCGIFMTU " + mtu,
			"SIOCGIFHWADDR type=65534",
			"SIOCGIFNAME 1 " + name,
			"SIOCGIFFLAGS nosuchif0 ENODEV",
		}, "\n") + "\n"
	}

	t.Run("host10", func(t *testing.T) {
		dir := swrapDir(t)
		got := runIfaces(t, bin, wrapEnv(t, dir, 10), "swrap10")
		if w := want("10", "127.0.0.10", "127.255.255.255", "fd00::5357:5f0a", "65535"); got != w {
			t.Fatalf("wrapped as host 10:\n%s\nwant:\n%s", got, w)
		}
		// A real interface's name is unknown to every call.
		got = runIfaces(t, bin, wrapEnv(t, dir, 10), "lo")
		for _, l := range []string{"if_nametoindex lo 0 ENODEV", "SIOCGIFADDR ENODEV", "SIOCGIFINDEX ENODEV",
			"SIOCGIFMTU ENODEV", "SIOCGIFNAME ENODEV"} {
			if !strings.Contains(got, l+"\n") {
				t.Errorf("asking about lo: no line %q in\n%s", l, got)
			}
		}
	})
	t.Run("host12-net10", func(t *testing.T) {
		dir := swrapDir(t)
		net := "SOCKET_WRAPPER_IPV4_NETWORK=10.53.57.0"
		startBroker(t, dir, net, "SOCKET_WRAPPER_MTU=9000")
		got := runIfaces(t, bin, wrapEnv(t, dir, 12, net), "swrap12")
		if w := want("12", "10.53.57.12", "10.255.255.255", "fd00::5357:5f0c", "9000"); got != w {
			t.Fatalf("wrapped as host 12 on 10.53.57.0:\n%s\nwant:\n%s", got, w)
		}
	})
	t.Run("unwrapped", func(t *testing.T) {
		// The shim preloaded without SOCKET_WRAPPER_DIR: the real machine.
		env := append(cleanEnv(), "LD_PRELOAD="+binPath(t, "libswrap.so"))
		got := runIfaces(t, bin, env, "lo")
		for _, l := range []string{"if_nametoindex lo ", "SIOCGIFADDR 127.0.0.1\n", "SIOCGIFCONF lo 127.0.0.1\n",
			"getifaddrs lo inet 127.0.0.1 netmask 255.0.0.0 "} {
			if !strings.Contains(got, l) {
				t.Errorf("unwrapped: no %q in\n%s", l, got)
			}
		}
		if strings.Contains(got, "swrap") {
			t.Errorf("unwrapped, the emulated interface shows:\n%s", got)
		}
	})
}

// TestIproute2 runs ip(8) under the shim as host 10: its netlink dumps list
// swrap10 with the host's addresses, prefix and broadcast address, and
// nothing of the real machine; a real interface's name does not exist.
func TestIproute2(t *testing.T) {
	ip := needTool(t, "ip")
	dir := swrapDir(t)
	run := func(args ...string) (string, error) {
		ctx := testCtx(t, 30*time.Second)
		cmd := exec.CommandContext(ctx, ip, args...)
		cmd.Env = wrapEnv(t, dir, 10)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		out, err := run(args...)
		if err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		for _, real := range []string{"lo:", "127.0.0.1/", "127.0.0.1 ", "::1/", "link/loopback", "link/ether"} {
			if strings.Contains(out, real) {
				t.Errorf("ip %s shows %q of the real machine:\n%s", strings.Join(args, " "), real, out)
			}
		}
		return out
	}
	link := "1: swrap10: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 65535 "
	v4 := "    inet 127.0.0.10/8 brd 127.255.255.255 scope global swrap10\n"
	v6 := "    inet6 fd00::5357:5f0a/64 scope global \n"
	check := func(out string, want []string, not []string, what string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: no %q in\n%s", what, w, out)
			}
		}
		for _, n := range not {
			if strings.Contains(out, n) {
				t.Errorf("%s: %q in\n%s", what, n, out)
			}
		}
	}
	check(must("-4", "addr"), []string{link, v4}, []string{"inet6"}, "ip -4 addr")
	check(must("-6", "addr"), []string{link, v6}, []string{"inet "}, "ip -6 addr")
	out := must("-o", "link")
	check(out, []string{link, "link/none"}, nil, "ip -o link")
	if n := strings.Count(strings.TrimSpace(out), "\n"); n != 0 {
		t.Errorf("ip -o link: %d lines, want 1:\n%s", n+1, out)
	}
	check(must("addr", "show", "dev", "swrap10"), []string{link, "link/none", v4, v6}, nil, "ip addr show dev swrap10")
	check(must("route"), []string{"127.0.0.0/8 dev swrap10 proto kernel scope link src 127.0.0.10"}, nil, "ip route")
	if out, err := run("addr", "show", "dev", "lo"); err == nil || !strings.Contains(out, `Device "lo" does not exist`) {
		t.Errorf("ip addr show dev lo: %v\n%s", err, out)
	}
}

// TestDnsmasqInterface runs dnsmasq on host 10 told to serve only on
// interface swrap10 (--interface=swrap10 --bind-interfaces): it finds the
// interface and its addresses through its own netlink socket and binds
// exactly 127.0.0.10:5353 and [fd00::5357:5f0a]:5353 (with the real
// machine's interfaces it stops with "unknown interface swrap10"). dig on
// host 11 then gets its answer over UDP on both addresses and over TCP.
func TestDnsmasqInterface(t *testing.T) {
	dnsmasq, dig := needTool(t, "dnsmasq"), needTool(t, "dig")
	dir := swrapDir(t)
	requireShimActive(t, dir, dnsmasq, dig)
	ctx := testCtx(t, 60*time.Second)
	srv := startProc(t, newCmd(ctx, wrapEnv(t, dir, 10), dnsmasq, "-d", "-k", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--port=5353", "--interface=swrap10", "--bind-interfaces",
		"--user=root", "--pid-file=", "--address=/test.example/198.51.100.7"), false)
	for _, ap := range []string{"127.0.0.10:5353", "[fd00::5357:5f0a]:5353"} {
		waitSocket(t, dir, "dnsmasq's UDP socket on "+ap, func(s broker.SocketStatus) bool {
			return s.PID == srv.pid() && s.Proto == "udp" && s.Local == ap
		})
	}
	for _, q := range [][]string{
		{"@127.0.0.10"}, {"@fd00::5357:5f0a"}, {"+tcp", "@127.0.0.10"},
	} {
		args := append([]string{"+short", "+tries=1", "+time=5", "-p", "5353"}, q...)
		args = append(args, "test.example")
		cmd := newCmd(ctx, wrapEnv(t, dir, 11), dig, args...)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "198.51.100.7" {
			t.Errorf("dig %s: %v, answer %q, want 198.51.100.7; dnsmasq: %s", strings.Join(args, " "), err, out, srv.describe())
		}
	}
	select {
	case <-srv.done:
		t.Errorf("dnsmasq exited: %v: %s", srv.err, srv.describe())
	default:
	}
}

// TestSmbdInterfaces runs smbd on host 10 with "interfaces = 127.0.0.10" and
// "bind interfaces only": Samba matches that against getifaddrs(), so with
// the real machine's interfaces it logs "no network interfaces found" and
// panics. It must listen on exactly 127.0.0.10:4450, and smbclient on host
// 11 must list its share.
func TestSmbdInterfaces(t *testing.T) {
	smbd, smbclient := needTool(t, "smbd"), needTool(t, "smbclient")
	dir := swrapDir(t)
	requireShimActive(t, dir, smbd, smbclient)
	conf := func(iface string) string {
		d := t.TempDir()
		for _, sub := range []string{"priv", "lock", "state", "cache", "share"} {
			if err := os.Mkdir(filepath.Join(d, sub), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		text := "[global]\ninterfaces = " + iface + "\nbind interfaces only = yes\nsmb ports = 4450\n" +
			"disable netbios = yes\nserver role = standalone server\n" +
			"private dir = " + d + "/priv\nlock directory = " + d + "/lock\nstate directory = " + d + "/state\n" +
			"cache directory = " + d + "/cache\npid directory = " + d + "/lock\nncalrpc dir = " + d + "/lock/ncalrpc\n" +
			"log file = " + d + "/log.%m\n[share]\npath = " + d + "/share\n"
		p := filepath.Join(d, "smb.conf")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ctx := testCtx(t, 90*time.Second)
	srv := startProc(t, newCmd(ctx, wrapEnv(t, dir, 10), smbd, "-F", "--no-process-group", "--debug-stdout", "-d", "1",
		"-s", conf("127.0.0.10")), false)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("smbd: %s", srv.describe())
		}
	})
	waitSocket(t, dir, "smbd's listener on 127.0.0.10:4450", func(s broker.SocketStatus) bool {
		return s.PID == srv.pid() && s.Proto == "tcp" && s.TCP == "LISTEN" && s.Local == "127.0.0.10:4450"
	})
	cmd := newCmd(ctx, wrapEnv(t, dir, 11), smbclient, "-N", "-p", "4450", "-L", "//127.0.0.10", "-s", conf("127.0.0.11"))
	out, err := cmd.CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^\s+share\s+Disk`).Match(out) {
		t.Errorf("smbclient -L //127.0.0.10: %v\n%s\nsmbd: %s", err, out, srv.describe())
	}
	for _, w := range []string{"no network interfaces found"} {
		if strings.Contains(string(out), w) || strings.Contains(srv.describe(), w) {
			t.Errorf("%q logged; smbd: %s\nsmbclient: %s", w, srv.describe(), out)
		}
	}
	select {
	case <-srv.done:
		t.Errorf("smbd exited: %v: %s", srv.err, srv.describe())
	default:
	}
}
