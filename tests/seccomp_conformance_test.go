package tests

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// seccompConfSkipped are the conformance programs not run under the
// seccomp path, and why: data calls are not trapped (the filter lets read,
// write, send and recv without an address through), so what the shim
// answers on them cannot be answered.
var seccompConfSkipped = map[string]string{
	"stream": "recv/send on a never-connected TCP socket block or succeed on the unix socket instead of ENOTCONN/EPIPE (the first check hangs)",
	"udp":    "on an unconnected UDP socket recv/read without an address see the broker's 56-byte datagram header (and FIONREAD counts it); a connected one's are bare, but its ICMP errors (ECONNREFUSED, POLLERR) are not reported",
}

// seccompDeviations are the checks where the seccomp path differs from
// Linux: the preload path's, less those the seccomp path does as Linux,
// plus its own.
func seccompDeviations() map[string]knownDeviation {
	d := map[string]knownDeviation{}
	for k, v := range knownDeviations {
		d[k] = v
	}
	// NETLINK_ROUTE is the kernel's under seccomp: Linux's own behaviour.
	delete(d, "nl_pipelined_dumps")
	why := "the emulated interface (NETLINK_ROUTE, SIOCGIF* ioctls) is the shim's; under seccomp the kernel answers with the real lo"
	d["nl_addr4_dump"] = knownDeviation{"done=1 self4=1 prefix8=1 bad_seq=0 err=none", "done=1 self4=0 prefix8=0 bad_seq=0 err=none", why}
	d["nl_addr6_dump"] = knownDeviation{"done=1 self6=1 bad_seq=0 err=none", "done=1 self6=0 bad_seq=0 err=none", why}
	d["siocgifaddr"] = knownDeviation{"0 SELF4", "ENOTTY AF0", why + " (ioctl on a wrapped socket is the unix socket's)"}
	d["siocgifnetmask"] = knownDeviation{"0 /8", "ENOTTY other", why}
	d["siocgifaddr_bad"] = knownDeviation{"ENODEV", "ENOTTY", why}
	d["siocgifconf_one"] = knownDeviation{"0 len=40 same=1 SELF4", "0 len=40 same=1 OTHER4(127.0.0.1)", why}
	// glibc sorts getaddrinfo's answers (RFC 6724) by the source address
	// a UDP connect to each one yields. Under the preload path those
	// connects are glibc's internal calls, which the shim does not see;
	// under seccomp they are trapped like any other and the broker
	// answers with the emulated host's sources, 127.0.0.10 and
	// fd00::5357:5f0a. The latter has the global scope of "::", so rule 2
	// (matching scope) puts "::" first; natively neither ::1 nor
	// 127.0.0.1 matches and the order stays 0.0.0.0, ::.
	d["passive_unspec"] = knownDeviation{"0.0.0.0:80/1/6 :::80/1/6", ":::80/1/6 0.0.0.0:80/1/6",
		"glibc's RFC 6724 sort probes with UDP connects, which under seccomp get the emulated host's sources (fd00::5357:5f0a matches the scope of ::)"}
	return d
}

// TestConformanceSeccomp builds the conformance programs with gcc -static
// and compares each run natively and under `swrap run` (the seccomp path,
// host 10) check by check, with the deviations of seccompDeviations.
func TestConformanceSeccomp(t *testing.T) {
	needSwrap(t)
	gcc := needTool(t, "gcc")
	src := filepath.Join(repoRoot, "tests", "conformance")
	out := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, len(conformancePrograms))
	for i, name := range confProgramNames() {
		if seccompConfSkipped[name] != "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(gcc, "-static", "-w", "-O1", "-o", filepath.Join(out, name), filepath.Join(src, name+".c"), "-ldl")
			if b, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("gcc -static %s.c: %v\n%s", name, err, b)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	devs := seccompDeviations()
	for _, name := range confProgramNames() {
		t.Run(name, func(t *testing.T) {
			if why := seccompConfSkipped[name]; why != "" {
				t.Skipf("not run under seccomp: %s", why)
			}
			t.Parallel()
			bin := filepath.Join(out, name)
			native := runConformance(bin, nativeConfEnv())
			verifyRun(t, "native", name, native)
			dir := swrapDir(t)
			startBroker(t, dir)
			env := append(confCleanEnv(cleanEnv()),
				"CONF_ADDR4=127.0.0.10", "CONF_ADDR6=fd00::5357:5f0a", "CONF_NONLOCAL4=192.0.2.1",
				"CONF_PEER4=127.0.0.20", "CONF_EXPECT_SWRAP=seccomp")
			ctx := testCtx(t, 60*time.Second)
			cmd := exec.CommandContext(ctx, binPath(t, "swrap"), "run", "--dir", dir, "--iface", "10", "--", bin)
			cmd.Env = env
			stdout, err := cmd.Output()
			wrapped := parseConf(string(stdout))
			if err != nil {
				t.Errorf("seccomp run of %s failed: %v", name, err)
			}
			compareChecksWith(t, native.checks, wrapped, devs)
		})
	}
}
