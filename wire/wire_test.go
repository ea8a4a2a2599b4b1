package wire

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	a4 := AddrFrom(netip.MustParseAddrPort("127.0.0.10:7"))
	a6 := AddrFrom(netip.MustParseAddrPort("[fd00::5357:5f0b]:5001"))
	for _, a := range []Addr{a4, a6, {}} {
		got, err := ParseAddr(AppendAddr(nil, a))
		if err != nil || got != a {
			t.Errorf("addr %v: got %v, %v", a, got, err)
		}
	}
	req := AppendRequest(nil, OpConnect, 42, Connect{Addr: a6, Flags: ConnectNonblock}.Encode())
	r, err := ParseRequest(req)
	if err != nil || r.Op != OpConnect || r.Sock != 42 || r.Version != Version {
		t.Fatalf("request: %+v %v", r, err)
	}
	c, err := ParseConnect(r.Body)
	if err != nil || c.Addr != a6 || c.Flags != ConnectNonblock {
		t.Errorf("connect: %+v %v", c, err)
	}
	rep, err := ParseReply(AppendReply(nil, OpConnect, syscall.ECONNREFUSED, nil))
	if err != nil || rep.Op != OpConnect || rep.Err != syscall.ECONNREFUSED {
		t.Errorf("reply: %+v %v", rep, err)
	}
	h := Hello{PID: 7, Iface: 10, Comm: "nc", Pcap: "/tmp/x.pcap"}
	if got, err := ParseHello(h.Encode()); err != nil || got != h {
		t.Errorf("hello: %+v %v", got, err)
	}
	acc := Accept{Sock: 9, Peer: a4}
	if got, err := ParseAccept(acc.Encode()); err != nil || got != acc {
		t.Errorf("accept: %+v %v", got, err)
	}
	d := Dgram{IfIndex: 1, Peer: a4, Local: AddrFrom(netip.MustParseAddrPort("127.0.0.11:0"))}
	dg, payload, err := ParseDgram(append(AppendDgram(nil, d), "hi"...))
	if err != nil || dg != d || string(payload) != "hi" {
		t.Errorf("dgram: %+v %q %v", dg, payload, err)
	}
	so := SockOpt{Level: 1, Name: 2, OptLen: 4, Value: []byte{1, 0, 0, 0}}
	if got, err := ParseSockOpt(so.Encode(), true); err != nil || !bytes.Equal(got.Value, so.Value) {
		t.Errorf("sockopt: %+v %v", got, err)
	}
	if _, err := ParseSockOpt(so.Encode(), false); err == nil {
		t.Error("GETSOCKOPT with a value accepted")
	}
}

func TestSocketName(t *testing.T) {
	n := SocketName("0123456789abcdef", 0x2a)
	if len(n)+1 != NameLen {
		t.Fatalf("name %q is %d bytes, want %d", n, len(n)+1, NameLen)
	}
	inst, id, ok := ParseSocketName("@" + n)
	if !ok || inst != "0123456789abcdef" || id != 0x2a {
		t.Errorf("ParseSocketName = %q %d %v", inst, id, ok)
	}
	for _, bad := range []string{"", "@swrap.x", "@other.0123456789abcdef.000000000000002a", "@swrap.0123456789abcdef.00000000000000zz"} {
		if _, _, ok := ParseSocketName(bad); ok {
			t.Errorf("ParseSocketName(%q) accepted", bad)
		}
	}
}

func TestMalformed(t *testing.T) {
	for _, b := range [][]byte{nil, {1, 2, 3}, bytes.Repeat([]byte{0xff}, 16)} {
		if _, err := ParseRequest(b); err == nil {
			t.Errorf("ParseRequest(%x) accepted", b)
		}
	}
	if _, err := ParseAddr(append([]byte{99, 0}, make([]byte, 22)...)); err != syscall.EAFNOSUPPORT {
		t.Errorf("unknown family: %v", err)
	}
}

// TestCLayout compiles a C program against shim/swrap_proto.h and compares
// the sizes of its structs with this package's constants.
func TestCLayout(t *testing.T) {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("gcc is required under CI")
		}
		t.Skip("gcc not installed")
	}
	_, file, _, _ := runtime.Caller(0)
	inc := filepath.Join(filepath.Dir(filepath.Dir(file)), "shim")
	src := `#include <stdio.h>
#include "swrap_proto.h"
int main(void){printf("%zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu\n",
sizeof(struct swrap_req),sizeof(struct swrap_rep),sizeof(struct swrap_addr),sizeof(struct swrap_hello),
sizeof(struct swrap_hello_rep),sizeof(struct swrap_socket),sizeof(struct swrap_socket_rep),sizeof(struct swrap_listen),
sizeof(struct swrap_connect),sizeof(struct swrap_shutdown),sizeof(struct swrap_sockopt),sizeof(struct swrap_stat_rep),
sizeof(struct swrap_ioctl),sizeof(struct swrap_accept),sizeof(struct swrap_dgram),
sizeof(struct swrap_resolve),sizeof(struct swrap_resolve_rep),sizeof(struct swrap_resolve_addr),
sizeof(struct swrap_served));return 0;}`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "l.c"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(cc, "-I", inc, "-o", filepath.Join(dir, "l"), filepath.Join(dir, "l.c")).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(dir, "l")).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := []int{ReqHeaderSize, RepHeaderSize, AddrSize, HelloSize, HelloRepSize, SocketSize, SocketRepSize,
		ListenSize, ConnectSize, ShutdownSize, SockOptSize, StatRepSize, IoctlSize, AcceptSize, DgramHeaderSize,
		ResolveSize, ResolveRepSize, ResolveAddrSize, ServedSize}
	got := strings.Fields(string(out))
	if len(got) != len(want) {
		t.Fatalf("got %q", out)
	}
	for i, w := range want {
		if got[i] != itoa(w) {
			t.Errorf("struct %d: C size %s, Go %d", i, got[i], w)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// FuzzParse feeds arbitrary bytes to every decoder the broker applies to
// untrusted input; none may panic.
func FuzzParse(f *testing.F) {
	f.Add(AppendRequest(nil, OpConnect, 1, Connect{Addr: AddrFrom(netip.MustParseAddrPort("127.0.0.1:1"))}.Encode()))
	f.Add(AppendRequest(nil, OpHello, 0, Hello{PID: 1, Iface: 10}.Encode()))
	f.Add(AppendRequest(nil, OpSetSockOpt, 1, SockOpt{Level: 1, Name: 2, OptLen: 4, Value: []byte{1, 0, 0, 0}}.Encode()))
	f.Add(AppendDgram(nil, Dgram{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err == nil {
			ParseHello(r.Body)
			ParseSocket(r.Body)
			ParseConnect(r.Body)
			ParseAddr(r.Body)
			ParseInt32Body(r.Body)
			ParseCapture(r.Body)
			ParseSockOpt(r.Body, true)
			ParseSockOpt(r.Body, false)
			ParseHelloRep(r.Body)
			ParseServed(r.Body)
		}
		ParseDgram(b)
		ParseAccept(b)
		ParseReply(b)
		if inst, id, ok := ParseSocketName(string(b)); ok && SocketName(inst, id) != string(b[1:]) {
			t.Errorf("ParseSocketName(%q) = %q, %d: does not round-trip", b, inst, id)
		}
	})
}

// TestCOps compiles the op numbers of shim/swrap_proto.h and compares them
// with this package's, NEWCTL included, and checks that a NEWCTL request
// (empty body, socket 0) survives a round trip.
func TestCOps(t *testing.T) {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("gcc is required under CI")
		}
		t.Skip("gcc not installed")
	}
	_, file, _, _ := runtime.Caller(0)
	inc := filepath.Join(filepath.Dir(filepath.Dir(file)), "shim")
	names := []string{"HELLO", "SOCKET", "BIND", "LISTEN", "CONNECT", "SHUTDOWN", "GETSOCKNAME",
		"GETPEERNAME", "GETSOCKOPT", "SETSOCKOPT", "STAT", "STATUS", "IOCTL", "SETLINK", "GETLINKS", "NEWCTL", "CAPTURE", "SERVED", "CLOSED"}
	ops := []Op{OpHello, OpSocket, OpBind, OpListen, OpConnect, OpShutdown, OpGetSockName,
		OpGetPeerName, OpGetSockOpt, OpSetSockOpt, OpStat, OpStatus, OpIoctl, OpSetLink, OpGetLinks, OpNewCtl, OpCapture, OpServed, OpClosed}
	var src strings.Builder
	src.WriteString("#include <stdio.h>\n#include \"swrap_proto.h\"\nint main(void){\n")
	for _, n := range names {
		src.WriteString(`printf("%d\n", SWRAP_OP_` + n + ");\n")
	}
	src.WriteString(`printf("%u %u %u\n", SWRAP_REPLY, SWRAP_NOREPLY, SWRAP_FEAT_NOREPLY);` + "\n")
	src.WriteString("return 0;}\n")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "o.c"), []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(cc, "-I", inc, "-o", filepath.Join(dir, "o"), filepath.Join(dir, "o.c")).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(dir, "o")).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(string(out))
	if len(got) != len(ops)+3 {
		t.Fatalf("got %q", out)
	}
	if bits := got[len(ops):]; bits[0] != itoa(ReplyBit) || bits[1] != itoa(NoReplyBit) || bits[2] != itoa(FeatNoReply) {
		t.Errorf("SWRAP_REPLY, SWRAP_NOREPLY, SWRAP_FEAT_NOREPLY = %q in C, want %d %d %d",
			bits, ReplyBit, NoReplyBit, FeatNoReply)
	}
	for i, op := range ops {
		if got[i] != itoa(int(op)) {
			t.Errorf("SWRAP_OP_%s = %s in C, %d in Go", names[i], got[i], op)
		}
		if op.String() != names[i] {
			t.Errorf("Op(%d).String() = %q, want %q", op, op.String(), names[i])
		}
	}
	r, err := ParseRequest(AppendRequest(nil, OpNewCtl, 0, nil))
	if err != nil || r.Op != OpNewCtl || r.Sock != 0 || len(r.Body) != 0 {
		t.Errorf("NEWCTL request: %+v %v", r, err)
	}
}

// TestHelloRepServed round-trips a HELLO reply with features and a SERVED
// body, and reads a broker's reply without features as having none.
func TestHelloRepServed(t *testing.T) {
	h := HelloRep{BrokerPID: 7, MTU: 1500, Instance: "0123456789abcdef", Features: FeatNoReply}
	b := h.Encode()
	if len(b) != HelloRepSize {
		t.Fatalf("HELLO reply of %d bytes, want %d", len(b), HelloRepSize)
	}
	if got, err := ParseHelloRep(b); err != nil || got != h {
		t.Errorf("ParseHelloRep = %+v, %v; want %+v", got, err, h)
	}
	if got, err := ParseHelloRep(b[:HelloRepSizeV1]); err != nil || got.Features != 0 || got.MTU != 1500 {
		t.Errorf("24-byte HELLO reply: %+v, %v", got, err)
	}
	if _, err := ParseHelloRep(b[:HelloRepSizeV1-1]); err == nil {
		t.Error("a 23-byte HELLO reply parsed")
	}
	s := Served{Count: 40, Failed: 2, FailOp: OpSetSockOpt, FailErr: syscall.EBADF}
	sb := s.Encode()
	if got, err := ParseServed(sb); len(sb) != ServedSize || err != nil || got != s {
		t.Errorf("ParseServed = %+v, %v (%d bytes); want %+v", got, err, len(sb), s)
	}
	if _, err := ParseServed(sb[:ServedSize-1]); err == nil {
		t.Error("a short SERVED body parsed")
	}
}

// TestCapture round-trips a CAPTURE body and checks that malformed ones
// are refused.
func TestCapture(t *testing.T) {
	c := Capture{Snaplen: 96, QueueKiB: 512, Hosts: []uint8{10, 11}, Ports: []uint16{53, 7000}}
	got, err := ParseCapture(c.Encode())
	if err != nil || got.Snaplen != 96 || got.QueueKiB != 512 || !bytes.Equal(got.Hosts, c.Hosts) ||
		len(got.Ports) != 2 || got.Ports[0] != 53 || got.Ports[1] != 7000 {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if got, err := ParseCapture(Capture{}.Encode()); err != nil || got.Hosts != nil {
		t.Errorf("empty capture: %+v %v", got, err)
	}
	bad := map[string][]byte{
		"short":         c.Encode()[:CaptureHeaderSize-1],
		"missing hosts": c.Encode()[:CaptureHeaderSize+1],
		"extra bytes":   append(c.Encode(), 12),
		"version 2":     append([]byte{2, 0}, c.Encode()[2:]...),
		"reserved":      func() []byte { b := c.Encode(); b[14] = 1; return b }(),
		"odd ports":     c.Encode()[:len(c.Encode())-1],
		"too many hosts": func() []byte {
			return Capture{Hosts: make([]uint8, MaxCaptureHosts+1)}.Encode()
		}(),
	}
	for name, b := range bad {
		if _, err := ParseCapture(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
