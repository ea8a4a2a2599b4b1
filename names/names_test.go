package names

import (
	"math/rand"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/swrap/swrap/addrplan"
)

func load(t *testing.T, f Format, data string) (*Table, []error) {
	t.Helper()
	tb := New(addrplan.Default)
	return tb, tb.Load(strings.NewReader(data), "f", f)
}

func TestDefaults(t *testing.T) {
	tb := New(addrplan.Default)
	canon, as, ok := tb.Addrs("HOST10.", 0)
	if !ok || canon != "host10" || len(as) != 2 || as[0] != netip.MustParseAddr("127.0.0.10") || as[1] != netip.MustParseAddr("fd00::5357:5f0a") {
		t.Errorf("host10: %v %v %v", canon, as, ok)
	}
	for _, a := range []string{"127.0.0.64", "fd00::5357:5f40"} {
		if n, ok := tb.Reverse(netip.MustParseAddr(a)); !ok || n != "host64" {
			t.Errorf("reverse %s: %q %v", a, n, ok)
		}
	}
	if _, _, ok := tb.Addrs("host65", 0); ok {
		t.Error("host65 exists")
	}
	// localhost is the asker's own host.
	if _, as, ok := tb.Addrs("localhost", 12); !ok || len(as) != 2 || as[0] != addrplan.Default.IPv4(12) {
		t.Errorf("localhost for host 12: %v %v", as, ok)
	}
}

func TestHostsParse(t *testing.T) {
	tb, errs := load(t, Hosts, "# comment\n127.0.0.20 web www # trailing\n\nbad line\n127.0.0.21\n::ffff:127.0.0.22 mapped\n127.0.0.23 ok bad\"name\nfd00::5357:5f14 web\n")
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	if len(errs) != 3 || !strings.HasPrefix(msgs[0], "f:4: ") || !strings.HasPrefix(msgs[1], "f:5: ") || !strings.HasPrefix(msgs[2], "f:7: ") {
		t.Fatalf("errors: %q", msgs)
	}
	if _, as, _ := tb.Addrs("www", 0); len(as) != 1 || as[0].String() != "127.0.0.20" {
		t.Errorf("www: %v", as)
	}
	if _, as, _ := tb.Addrs("web", 0); len(as) != 2 {
		t.Errorf("web: %v", as)
	}
	if _, as, _ := tb.Addrs("mapped", 0); len(as) != 1 || as[0].String() != "127.0.0.22" {
		t.Errorf("mapped: %v", as)
	}
	if _, _, ok := tb.Addrs("ok", 0); ok {
		t.Error("a bad line's good name was kept")
	}
	// A file's name for an address wins over the default.
	if n, _ := tb.Reverse(netip.MustParseAddr("127.0.0.20")); n != "web" {
		t.Errorf("reverse 127.0.0.20: %q", n)
	}
}

func TestResolvWrapperParse(t *testing.T) {
	tb, errs := load(t, ResolvWrapper, `A a.test 127.0.0.30
AAAA a.test fd00::1
SRV _s._tcp.test a.test 88
SRV _t._tcp.test a.test 89 5 7
URI _u._tcp.test https://x.test/ 3 4
TXT t.test hello  world
NS test ns.test
SOA test ns.test admin.test 1 2 3 4 5
CNAME c.test a.test
PTR 30.0.0.127.in-addr.arpa a.test
A bad.test fd00::1
SRV _x._tcp.test a.test notaport
FOO x y
A
`)
	if len(errs) != 4 {
		t.Fatalf("errors: %v", errs)
	}
	for i, want := range []string{"f:11:", "f:12:", "f:13:", "f:14:"} {
		if !strings.HasPrefix(errs[i].Error(), want) {
			t.Errorf("error %d: %v, want %s", i, errs[i], want)
		}
	}
	srv, _ := tb.Lookup("_s._tcp.test", dnsmessage.TypeSRV, 0)
	if len(srv) != 1 || srv[0].Port != 88 || srv[0].Priority != 1 || srv[0].Weight != 100 {
		t.Errorf("SRV defaults: %+v", srv)
	}
	srv, _ = tb.Lookup("_t._tcp.test", dnsmessage.TypeSRV, 0)
	if len(srv) != 1 || srv[0].Port != 89 || srv[0].Priority != 5 || srv[0].Weight != 7 {
		t.Errorf("SRV: %+v", srv)
	}
	txt, _ := tb.Lookup("t.test", dnsmessage.TypeTXT, 0)
	if len(txt) != 1 || txt[0].Text != "hello  world" {
		t.Errorf("TXT: %+v", txt)
	}
	if canon, as, _ := tb.Addrs("c.test", 0); canon != "a.test" || len(as) != 2 {
		t.Errorf("CNAME: %s %v", canon, as)
	}
}

// ask packs a query and returns the parsed answer.
func ask(t *testing.T, tb *Table, name string, typ dnsmessage.Type, edns bool, limit int) dnsmessage.Message {
	t.Helper()
	q := dnsmessage.Message{Header: dnsmessage.Header{ID: 77, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}}}
	if edns {
		var h dnsmessage.ResourceHeader
		h.SetEDNS0(1232, 0, false)
		q.Additionals = []dnsmessage.Resource{{Header: h, Body: &dnsmessage.OPTResource{}}}
	}
	b, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var m dnsmessage.Message
	if err := m.Unpack(tb.Answer(b, 10, limit)); err != nil {
		t.Fatal(err)
	}
	if m.ID != 77 || !m.Response {
		t.Fatalf("header %+v", m.Header)
	}
	return m
}

func TestAnswer(t *testing.T) {
	tb, _ := load(t, ResolvWrapper, "SRV _s._tcp.test a.test 88\nA a.test 127.0.0.30\nAAAA a.test fd00::5357:5f1e\nCNAME c.test a.test\n")
	if m := ask(t, tb, "nosuch.test.", dnsmessage.TypeA, false, 512); m.RCode != dnsmessage.RCodeNameError || !m.Authoritative {
		t.Errorf("NXDOMAIN: %+v", m.Header)
	}
	if m := ask(t, tb, "_s._tcp.test.", dnsmessage.TypeA, false, 512); m.RCode != dnsmessage.RCodeSuccess || len(m.Answers) != 0 {
		t.Errorf("NODATA: %+v %v", m.Header, m.Answers)
	}
	m := ask(t, tb, "_s._tcp.test.", dnsmessage.TypeSRV, false, 512)
	if len(m.Answers) != 1 || len(m.Additionals) != 2 {
		t.Errorf("SRV: %v additional %v", m.Answers, m.Additionals)
	}
	m = ask(t, tb, "c.test.", dnsmessage.TypeAAAA, true, 512)
	if len(m.Answers) != 2 || m.Answers[0].Header.Type != dnsmessage.TypeCNAME || m.Answers[1].Header.Type != dnsmessage.TypeAAAA {
		t.Errorf("CNAME chain: %v", m.Answers)
	}
	if len(m.Additionals) != 1 || m.Additionals[0].Header.Type != dnsmessage.TypeOPT {
		t.Errorf("EDNS0: no OPT in the reply: %v", m.Additionals)
	}
	m = ask(t, tb, "30.0.0.127.in-addr.arpa.", dnsmessage.TypePTR, false, 512)
	if len(m.Answers) != 1 || m.Answers[0].Body.(*dnsmessage.PTRResource).PTR.String() != "host30." {
		t.Errorf("PTR: %v", m.Answers)
	}
	m = ask(t, tb, "localhost.", dnsmessage.TypeA, false, 512)
	if len(m.Answers) != 1 || netip.AddrFrom4(m.Answers[0].Body.(*dnsmessage.AResource).A) != addrplan.Default.IPv4(10) {
		t.Errorf("localhost: %v", m.Answers)
	}
	// Truncation: 60 addresses do not fit 512 bytes.
	var big strings.Builder
	for i := 1; i <= 60; i++ {
		big.WriteString("A big.test 127.0.0.1\n")
	}
	tb.Load(strings.NewReader(big.String()), "big", ResolvWrapper)
	if m := ask(t, tb, "big.test.", dnsmessage.TypeA, false, 512); !m.Truncated || len(m.Answers) != 0 {
		t.Errorf("UDP: %+v with %d answers, want TC", m.Header, len(m.Answers))
	}
	if m := ask(t, tb, "big.test.", dnsmessage.TypeA, false, 0); m.Truncated || len(m.Answers) != 60 {
		t.Errorf("TCP: %+v with %d answers", m.Header, len(m.Answers))
	}
}

// TestGarbage: random messages never crash Answer; those with a header
// that is a query get a reply with its ID.
func TestGarbage(t *testing.T) {
	tb := New(addrplan.Default)
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 100000; i++ {
		b := make([]byte, r.Intn(300))
		r.Read(b)
		out := tb.Answer(b, 1, 512)
		if out == nil {
			continue
		}
		if len(out) < 12 || out[0] != b[0] || out[1] != b[1] || out[2]&0x80 == 0 || len(out) > 512 {
			t.Fatalf("reply %x to %x", out, b)
		}
	}
	if out := tb.Answer([]byte{1, 2, 0, 0, 0, 1}, 1, 512); out != nil {
		t.Errorf("short message answered: %x", out)
	}
	if out := tb.Answer([]byte{1, 2, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 1, 512); out != nil {
		t.Errorf("a reply was answered: %x", out)
	}
	out := tb.Answer([]byte{1, 2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0}, 1, 512)
	if len(out) < 12 || out[3]&0xf != byte(dnsmessage.RCodeFormatError) {
		t.Errorf("two questions that are not there: %x, want FORMERR", out)
	}
}

func TestReverseAddr(t *testing.T) {
	for _, s := range []string{"127.0.0.10", "fd00::5357:5f0a", "2001:db8::1"} {
		a := netip.MustParseAddr(s)
		if got, ok := ReverseAddr(ReverseName(a) + "."); !ok || got != a {
			t.Errorf("%s: %v %v", s, got, ok)
		}
	}
	for _, s := range []string{"host10", "1.2.3.in-addr.arpa", "x.0.0.127.in-addr.arpa", "1.ip6.arpa"} {
		if _, ok := ReverseAddr(s); ok {
			t.Errorf("%s parsed", s)
		}
	}
}
