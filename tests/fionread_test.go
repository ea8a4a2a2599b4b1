package tests

import (
	"strings"
	"testing"
	"time"
)

// TestFIONREADQueuedIsLocal runs tests/testdata/fionread.c under the shim
// with request tracing on: 1000 FIONREAD calls on a connection with bytes
// queued make no IOCTL request to the broker (they are answered from the
// program's own socket) and report every byte, while 1000 calls on the
// drained socket make one request each (so the broker's bytes are never
// hidden, and the count itself is shown to work).
func TestFIONREADQueuedIsLocal(t *testing.T) {
	bin := buildTestdataC(t, "fionread")
	dir := swrapDir(t)
	requireShimActive(t, dir, bin)
	ctx := testCtx(t, 60*time.Second)
	const calls = 1000
	p := startProc(t, newCmd(ctx, wrapEnv(t, dir, 10, "SOCKET_WRAPPER_DEBUGLEVEL=3"),
		bin, "127.0.0.10", itoa(calls)), false)
	p.mustSucceed(t, 50*time.Second)

	out := p.stdout.String()
	for _, want := range []string{"queued calls=1000 value=1000 ", "empty calls=1000 value=0 "} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	// The shim traces every request as "swrap_request: op <op> ...";
	// IOCTL is op 13 (shim/swrap_proto.h).
	count := map[string]int{}
	phase := "setup"
	for _, line := range strings.Split(p.stderr.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "fionread: phase "); ok {
			phase = rest
			continue
		}
		if strings.Contains(line, "swrap_request: op 13 ") {
			count[phase]++
		}
	}
	if count["queued"] != 0 {
		t.Errorf("%d IOCTL requests for %d FIONREAD calls with data queued, want 0", count["queued"], calls)
	}
	if count["empty"] != calls {
		t.Errorf("%d IOCTL requests for %d FIONREAD calls on an empty socket, want %d", count["empty"], calls, calls)
	}
	t.Logf("%s", out)
}
