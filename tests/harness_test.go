package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
		os.RemoveAll(d)
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
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Logf("broker %d did not exit after SIGTERM; killing it", pid)
	syscall.Kill(pid, syscall.SIGKILL)
}

// startBroker starts a foreground broker for dir with extra environment
// (e.g. SOCKET_WRAPPER_PCAP_FILE=...), waits until its control socket
// exists, and stops it with SIGTERM at cleanup. It returns the command so a
// test can signal it.
func startBroker(t testing.TB, dir string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binPath(t, "swrap-broker"), "--dir", dir)
	cmd.Env = append(cleanEnv(), env...)
	var logBuf bytes.Buffer
	cmd.Stdout = &logBuf
	cmd.Stderr = &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			// A goroutine dump in the log shows where it hangs.
			cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				cmd.Process.Kill()
				<-done
			}
			t.Errorf("broker did not exit within 10 s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("broker output:\n%s", logBuf.String())
		}
	})
	sock := filepath.Join(dir, "swrap", "broker.sock")
	for i := 0; i < 400; i++ {
		if _, err := os.Stat(sock); err == nil {
			return cmd
		}
		select {
		case <-done:
			t.Fatalf("broker exited early:\n%s", logBuf.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("broker socket %s did not appear:\n%s", sock, logBuf.String())
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
		"SOCKET_WRAPPER_DEFAULT_IFACE="+itoa(iface),
		"SWRAP_BROKER="+binPath(t, "swrap-broker"),
	)
	return append(env, extra...)
}

// wrapped returns a command that runs name under the shim on host iface.
func wrapped(t testing.TB, dir string, iface int, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = wrapEnv(t, dir, iface)
	return cmd
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	neg := i < 0
	if neg {
		i = -i
	}
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			break
		}
	}
	if neg {
		n--
		b[n] = '-'
	}
	return string(b[n:])
}
