package tests

import (
	"strings"
	"testing"
	"time"
)

// TestCloseRightAfterWrite: a client that connects, writes 600 bytes and
// closes at once (an HTTP/1.0 request, a notifier that sends and hangs up)
// loses none of them: four threads, 500 connections each from host 11 to a
// listener on host 10, every accepted connection reads its 600 bytes, then
// EOF (tests/testdata/closeafterwrite.c), natively on loopback and under
// the shim. The broker used to drop about 1 % of them: when the program's
// close reached it together with the news that the connect had finished,
// it took the socket for one closed before it ever connected and sent a
// bare FIN.
func TestCloseRightAfterWrite(t *testing.T) {
	bin := buildTestdataC(t, "closeafterwrite")
	ctx := testCtx(t, 60*time.Second)
	if out, err := newCmd(ctx, cleanEnv(), bin, "127.0.0.1", "127.0.0.1", "100", "4").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "ok 400" {
		t.Fatalf("natively: %v: %s", err, out)
	}
	dir := swrapDir(t)
	startBroker(t, dir)
	out, err := newCmd(ctx, wrapEnv(t, dir, 10), bin, "127.0.0.10", "127.0.0.11", "500", "4").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok 2000" {
		t.Fatalf("under swrap: %v: %s", err, out)
	}
}
