package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// demoTools are the programs scripts/demo.sh runs from PATH (besides the
// shell's builtins and what is in bin/).
var demoTools = []string{"sh", "timeout", "cat", "sed", "grep", "sleep", "rm", "dirname"}

// runDemo runs `sh scripts/demo.sh args...` from the repository's top
// directory, as `make demo` does, with PATH set to path, and returns its
// output (stdout and stderr together).
func runDemo(t *testing.T, path string, args ...string) string {
	t.Helper()
	cmd := exec.Command("/bin/sh", append([]string{"scripts/demo.sh"}, args...)...)
	cmd.Dir = repoRoot
	cmd.Env = append(cleanEnv(), "PATH="+path)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sh scripts/demo.sh %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// checkDemo asserts what the demo must show: the lines that crossed, the
// server as the program that listened, the capture's summary; and that the
// network's broker and directory are gone afterwards.
func checkDemo(t *testing.T, out, server string) {
	t.Helper()
	for _, want := range []string{
		"server (host 10, 127.0.0.10) received:\n  | hello, host 10\n  | this line crossed a gVisor TCP/IP stack\n",
		"client (host 11, 127.0.0.11) received:\n  | greetings from host 10\n",
		`LISTEN  127.0.0.10:7        *:*                10    ("` + server + `",pid=`,
		"TCP connections: 1\n",
		"    handshake: complete (SYN, SYN-ACK, ACK)\n",
		"    data:      55 bytes client->server, 23 bytes server->client\n",
		"    ending:    FIN client->server, FIN server->client\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`\n  127\.0\.0\.11:\d+ -> 127\.0\.0\.10:7 \(\d+ frames\)\n`).MatchString(out) {
		t.Errorf("the capture summary lacks the connection from host 11 to 127.0.0.10:7:\n%s", out)
	}
	m := regexp.MustCompile(`broker pid (\d+),`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no broker pid in the demo's swrap status:\n%s", out)
	}
	if pid, _ := strconv.Atoi(m[1]); !cliProcessGone(pid) {
		t.Errorf("the demo left its broker %d running", pid)
	}
	d := regexp.MustCompile(`network directory: (\S+)\n`).FindStringSubmatch(out)
	if d == nil {
		t.Fatalf("no network directory in the demo's output:\n%s", out)
	}
	if _, err := os.Stat(d[1]); !os.IsNotExist(err) {
		t.Errorf("the demo left its directory %s behind (%v)", d[1], err)
	}
}

// TestDemoWithoutNetcat runs `make demo`'s script on a PATH that holds
// only the few tools it needs and no nc: the demo uses bin/demo-server and
// bin/demo-client, wrapped, and shows the lines crossing and the capture.
func TestDemoWithoutNetcat(t *testing.T) {
	binPath(t, "demo-server")
	binPath(t, "demo-client")
	path := t.TempDir()
	for _, tool := range demoTools {
		p := needTool(t, tool)
		if err := os.Symlink(p, filepath.Join(path, tool)); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(filepath.Join(path, "sh"), "-c", "PATH="+path+"; command -v nc").CombinedOutput(); err == nil {
		t.Fatalf("nc is on the test's PATH after all: %s", out)
	}
	checkDemo(t, runDemo(t, path), "demo-server")
}

// TestDemoWithNetcat runs the demo with --nc: the same, with wrapped
// netcat-openbsd processes.
func TestDemoWithNetcat(t *testing.T) {
	needTool(t, "nc")
	checkDemo(t, runDemo(t, os.Getenv("PATH"), "--nc"), "nc")
}
