package tests

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWriteAfterReset: a program that keeps writing to a peer that resets
// the connection gets ECONNRESET from a write, as on Linux: 100 connections
// from host 11 to a server on host 10 that reads 64 KiB and closes with
// SO_LINGER 0 (tests/testdata/resetwrite.py), natively on loopback, then
// under the shim with a broker on 1 and on 4 Ps. Netstack reports a reset
// once, to whichever of the endpoint's Read and Write asks first; when the
// broker's write of the program's bytes asked first, the reset was never
// passed on and the program's writes were dropped without an error for
// ever (3-5 of 50 connections, also on 1 P; TestSeccompSandbox's reset
// cases hung until killed).
func TestWriteAfterReset(t *testing.T) {
	python := needTool(t, "python3")
	script := filepath.Join(repoRoot, "tests", "testdata", "resetwrite.py")
	const want = "ECONNRESET=100"
	ctx := testCtx(t, 120*time.Second)
	wantOutput(t, "natively", newCmd(ctx, cleanEnv(), python, script, "127.0.0.1", "127.0.0.1", "100"), want)
	for _, procs := range []string{"1", "4"} {
		t.Run("procs"+procs, func(t *testing.T) {
			dir := swrapDir(t)
			startBroker(t, dir, "SWRAP_BROKER_PROCS="+procs)
			wantOutput(t, "under swrap", newCmd(ctx, wrapEnv(t, dir, 11), python, script, "127.0.0.10", "127.0.0.11", "100"), want)
		})
	}
}

// wantOutput runs cmd and fails the test unless it succeeds and prints
// want (surrounding white space aside).
func wantOutput(t *testing.T, what string, cmd *exec.Cmd, want string) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != want {
		t.Fatalf("%s: %v: %s (want %s)", what, err, out, want)
	}
}
