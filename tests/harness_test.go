package tests

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// repoRoot is the repository's top directory.
var repoRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}()

// binPath returns the path of a built artefact in bin/, failing the test when
// it is missing: `make` builds them, and `make test` depends on `make`.
func binPath(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(repoRoot, "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is not built (run make): %v", p, err)
	}
	return p
}

// needTool returns the path of an external program the test runs. Outside
// CI a missing tool skips the test with a message; under CI=true it fails,
// so that a missing install step can never pass silently.
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI=true but not installed", name)
	}
	t.Skipf("%s not installed; skipping (apt-get install it, or run .ci/run)", name)
	return ""
}

// swrapDir makes a fresh SOCKET_WRAPPER_DIR for one test. When the test
// ends, the broker serving it (if any) is stopped with SIGTERM.
func swrapDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "swrap-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopBroker(t, d)
		if os.Getenv("SWRAP_KEEP") == "" {
			os.RemoveAll(d)
		}
	})
	return d
}

// stopBroker terminates the broker that serves dir, if one runs, and waits
// for it to exit so that its capture file is complete.
func stopBroker(t testing.TB, dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "swrap", "broker.lock"))
	if err != nil {
		return
	}
	var pid int
	for _, c := range strings.TrimSpace(string(b)) {
		if c < '0' || c > '9' {
			return
		}
		pid = pid*10 + int(c-'0')
	}
	if pid <= 1 {
		return
	}
	if syscall.Kill(pid, syscall.SIGTERM) != nil {
		return
	}
	for i := 0; i < 200; i++ {
		if !alive(pid) {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Logf("broker %d did not exit after SIGTERM; killing it", pid)
	syscall.Kill(pid, syscall.SIGKILL)
}

// alive reports whether process pid runs. An on-demand broker is not our
// child, so once it exits it may stay a zombie until init reaps it: that
// counts as gone.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}

// brokerProc is a broker started by a test.
type brokerProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	log  *bytes.Buffer
}

// stop sends SIGTERM and waits for the broker to exit (flushing its
// capture); it reports whether it exited within 10 s, after which it is
// dumped (SIGQUIT) and killed. Safe to call more than once.
func (b *brokerProc) stop() bool {
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
		return true
	case <-time.After(10 * time.Second):
	}
	// A goroutine dump in the log shows where it hangs.
	b.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-b.done:
	case <-time.After(2 * time.Second):
		b.cmd.Process.Kill()
		<-b.done
	}
	return false
}

// startBroker starts a foreground broker for dir with extra environment
// (e.g. SOCKET_WRAPPER_PCAP_FILE=...), waits until its control socket
// exists, and stops it at cleanup, failing the test if it does not stop
// cleanly.
func startBroker(t testing.TB, dir string, env ...string) *brokerProc {
	t.Helper()
	cmd := exec.Command(binPath(t, "swrap-broker"), "--dir", dir)
	if p := os.Getenv("SWRAP_TEST_BROKER_PROCS"); p != "" && !slices.ContainsFunc(env, func(kv string) bool {
		return strings.HasPrefix(kv, "SWRAP_BROKER_PROCS=")
	}) {
		// make test's second pass: the Ps of a broker on a bigger machine
		// (default: half its CPUs), where hand-offs between goroutines
		// really run in parallel.
		env = append([]string{"SWRAP_BROKER_PROCS=" + p}, env...)
	}
	cmd.Env = append(cleanEnv(), env...)
	b := &brokerProc{cmd: cmd, done: make(chan struct{}), log: &bytes.Buffer{}}
	cmd.Stdout = b.log
	cmd.Stderr = b.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(b.done) }()
	t.Cleanup(func() {
		if !b.stop() {
			t.Errorf("broker did not exit within 10 s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("broker output:\n%s", b.log.String())
		}
	})
	sock := filepath.Join(dir, "swrap", "broker.sock")
	for i := 0; i < 400; i++ {
		// The file appears at bind(), a moment before listen(): only a
		// connection that succeeds says the broker is ready.
		if c, err := net.Dial("unixpacket", sock); err == nil {
			c.Close()
			return b
		}
		select {
		case <-b.done:
			t.Fatalf("broker exited early:\n%s", b.log.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("broker socket %s did not appear:\n%s", sock, b.log.String())
	return nil
}

// cleanEnv is the test process's environment without any SOCKET_WRAPPER_*
// or LD_PRELOAD setting that could leak in from the caller's shell.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SOCKET_WRAPPER_") || strings.HasPrefix(kv, "LD_PRELOAD=") || strings.HasPrefix(kv, "SWRAP_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// wrapEnv is the environment for a program wrapped by the shim on host
// iface of dir, with extra settings appended.
func wrapEnv(t testing.TB, dir string, iface int, extra ...string) []string {
	t.Helper()
	env := append(cleanEnv(),
		"LD_PRELOAD="+binPath(t, "libswrap.so"),
		"SOCKET_WRAPPER_DIR="+dir,
		"SOCKET_WRAPPER_DEFAULT_IFACE="+strconv.Itoa(iface),
		"SWRAP_BROKER="+binPath(t, "swrap-broker"),
	)
	return append(env, extra...)
}

func itoa(i int) string { return strconv.Itoa(i) }
