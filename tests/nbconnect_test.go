package tests

import (
	"strings"
	"testing"
	"time"
)

// TestNonblockConnectAgain: a program that connects without blocking,
// polls for POLLOUT and calls connect() again to learn the outcome (ab
// through APR, many event loops) gets 0 or EISCONN, as on Linux, never
// EALREADY: four threads, 500 connections each from host 11 to a listener
// on host 10 (tests/testdata/nbconnect.c), natively and under the shim.
// The broker runs on two Ps, as it does by default on a machine with four
// CPUs or more: it used to count the shim's connect filler a moment before
// it marked the socket connecting, and its reader, on the other P, took
// the filler for that of a connect already decided and drained it, so the
// app end became writable while the connect was pending (8-16 of 2000
// connects said EALREADY in every run). And a wake landing while the
// reader drained the filler was taken for the program's close: the
// connection was closed as soon as it was made, and the second connect()
// said EBADF (1 in 2000, in CI; broker/filler_test.go makes it happen).
func TestNonblockConnectAgain(t *testing.T) {
	bin := buildTestdataC(t, "nbconnect")
	ctx := testCtx(t, 60*time.Second)
	if out, err := newCmd(ctx, cleanEnv(), bin, "127.0.0.1", "127.0.0.1", "100", "4").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "ok 400" {
		t.Fatalf("natively: %v: %s", err, out)
	}
	for _, procs := range []string{"1", "2"} {
		t.Run("procs"+procs, func(t *testing.T) {
			dir := swrapDir(t)
			startBroker(t, dir, "SWRAP_BROKER_PROCS="+procs)
			out, err := newCmd(ctx, wrapEnv(t, dir, 10), bin, "127.0.0.10", "127.0.0.11", "500", "4").CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "ok 2000" {
				t.Fatalf("under swrap: %v: %s", err, out)
			}
		})
	}
}
