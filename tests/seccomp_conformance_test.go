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
	// A TCP socket is a kernel TCP socket until its first stopped call
	// (supervise/placeholder.go): Linux's own poll answer.
	delete(d, "poll_fresh_tcp")
	why := "the emulated interface's NETLINK_ROUTE is the shim's; under seccomp the kernel answers with the real lo (the SIOCGIF* ioctls are stopped and answered as the shim does)"
	d["nl_addr4_dump"] = knownDeviation{"done=1 self4=1 prefix8=1 bad_seq=0 err=none", "done=1 self4=0 prefix8=0 bad_seq=0 err=none", why}
	d["nl_addr6_dump"] = knownDeviation{"done=1 self6=1 bad_seq=0 err=none", "done=1 self6=0 bad_seq=0 err=none", why}
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
	// Data calls are not stopped (the filter lets read, write, send and
	// recv without an address through), so what the shim does on them
	// cannot be done: each check below is one such call.
	hdr := "recv without an address on an unconnected UDP socket is not stopped: it reads the app end's message, the broker's 56-byte datagram header included"
	d["udp_max_65507_recv"] = knownDeviation{"65507", "65563", hdr}
	d["udp_msg_trunc_flag"] = knownDeviation{"100", "156", hdr + " (MSG_TRUNC: the whole message's length)"}
	d["udp_peek"] = knownDeviation{"10", "66", hdr}
	d["udp_after_peek"] = knownDeviation{"10", "66", hdr}
	d["udp_second"] = knownDeviation{"20", "76", hdr}
	d["udp_recv_zero"] = knownDeviation{"IN 0", "IN 56", hdr}
	d["udp_send_unconnected"] = knownDeviation{"EDESTADDRREQ", "1",
		"send without an address on an unconnected UDP socket is not stopped: the unix socket takes it (the broker drops it, having no header)"}
	icmp := "a connected UDP socket's app end carries bare payloads, which have no room for the broker's asynchronous errors: the ICMP port unreachable is dropped"
	d["udp_closed_poll"] = knownDeviation{"ERR", "0", icmp + " (no POLLERR)"}
	d["udp_closed_recv"] = knownDeviation{"ECONNREFUSED", "EAGAIN", icmp}
	delete(d, "udp_recv_after_refused_send") // dropped as well: EAGAIN, as on Linux
	for _, c := range []string{"udp4_after_close_refused", "udp6_after_close_refused"} {
		d[c] = knownDeviation{"refused 50 of 50 ", "refused 0 of 50 EAGAIN", icmp}
	}
	// The shim's close tells the broker and waits for the port to be
	// free; under seccomp close is not stopped (it would cost every
	// close of every fd a supervisor round trip, and the supervisor
	// cannot close the program's fd in its stead: the last reference
	// goes when the program's own call returns), so the broker learns of
	// the close from its end a moment later, and a connect in that
	// moment reaches the closed listener.
	for _, c := range []string{"connect4_after_listener_close", "connect6_after_listener_close"} {
		d[c] = knownDeviation{"refused 50 of 50 ", racyResult, "close is not stopped: a connect right after a listener's close may reach it"}
	}
	d["recv_listener"] = knownDeviation{"ENOTCONN", "EAGAIN",
		"recv on a listener is not stopped: its app end, which carries accept records, has none"}
	rst := "a peer's RST reaches the app end as EOF, its ECONNRESET waiting in the broker's SO_ERROR; the shim asks SO_ERROR on EOF or EPIPE, but under seccomp read, recv and write are not stopped"
	for _, c := range []string{"rst_recv", "rst_unread_data_recv", "rst_readv", "rst_read"} {
		d[c] = knownDeviation{"ECONNRESET", "0", rst}
	}
	d["rst_so_error"] = knownDeviation{"0", "ECONNRESET", rst + " (so SO_ERROR still has it)"}
	d["rst_unread_sent_first"] = knownDeviation{"whole 20 of 20, then ECONNRESET", "whole 20 of 20, then 0", rst + " (the bytes before it all arrive)"}
	for _, op := range []string{"write", "writev", "send"} {
		d["sigpipe_rst_dfl_"+op] = knownDeviation{"ECONNRESET/0 exit=-13", "exit=-13", rst + ": the first write is EPIPE with SIGPIPE"}
		d["sigpipe_rst_handler_"+op] = knownDeviation{"ECONNRESET/0 EPIPE/1 exit=0", "EPIPE/1 EPIPE/2 exit=0", rst + ": the first write is EPIPE with SIGPIPE"}
		d["sigpipe_rst_ign_"+op] = knownDeviation{"ECONNRESET/0 EPIPE/0 exit=0", "EPIPE/0 EPIPE/0 exit=0", rst + ": the first write is EPIPE"}
	}
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
