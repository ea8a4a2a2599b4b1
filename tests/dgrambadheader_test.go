package tests

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// dgramBadHeaderPy writes three datagrams without the shim's header on a
// wrapped UDP socket, with a raw write(2) the shim does not see (as a
// static program or one with its own syscalls would), then sends one
// datagram properly and prints what the receiver gets.
const dgramBadHeaderPy = `
import ctypes, os, platform, socket
SYS_write = {"x86_64": 1, "aarch64": 64}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.bind(("127.0.0.10", 0))
r.settimeout(10)
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.bind(("127.0.0.11", 0))
for i in range(3):
    if libc.syscall(SYS_write, c.fileno(), b"abc", 3) != 3:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
c.sendto(b"after", r.getsockname())
print(r.recv(100).decode())
`

// TestDgramWithoutHeader: a datagram that reaches the broker without the
// shim's header is malformed input on a data socket: the broker drops it,
// says so once on its stderr, counts it in STATUS (dgram_send_drops), and
// the socket goes on working. These drops used to leave no trace at all.
func TestDgramWithoutHeader(t *testing.T) {
	python := needTool(t, "python3")
	dir := swrapDir(t)
	b := startBroker(t, dir)
	ctx := testCtx(t, 30*time.Second)
	cmd := exec.CommandContext(ctx, python, "-c", dgramBadHeaderPy)
	cmd.Env = wrapEnv(t, dir, 10)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "after" {
		t.Fatalf("python3: %v: %s (want the datagram sent after the bad ones: after)", err, out)
	}
	st, err := shimStatus(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.DgramSendDrops != 3 {
		t.Errorf("STATUS dgram_send_drops %d, want 3", st.DgramSendDrops)
	}
	if !b.stop() {
		t.Fatal("broker did not stop")
	}
	if n := strings.Count(b.log.String(), "datagram without a valid header"); n != 1 {
		t.Errorf("the broker said %d times that a datagram had no valid header, want once:\n%s", n, b.log.String())
	}
}
