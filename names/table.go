// Package names holds the names of the emulated network: one table of DNS
// records, filled with every host's default name (hostN) and the records of
// the files a user names (SWRAP_HOSTS and NSS_WRAPPER_HOSTS in hosts(5)
// format, RESOLV_WRAPPER_HOSTS in resolv_wrapper's format), and the DNS
// server that answers from it (dns.go). The broker serves the table both to
// the shim (libc's lookups) and, through the server, on the emulated
// network; so every client sees the same answers.
//
// The package never resolves anything outside the table.
package names

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/swrap/swrap/addrplan"
)

// ServerID is the host id whose addresses (127.0.0.253 and fd00::5357:5ffd
// in the default plan) the broker's DNS server answers on, UDP and TCP port
// 53: addrplan.ServiceHost, which no host can have.
const ServerID = addrplan.ServiceHost

// Source of the default records.
const SourceDefault = "default"

// TypeURI is the URI record type (RFC 7553), which dnsmessage has no name
// for; its records are packed as dnsmessage.UnknownResource.
const TypeURI dnsmessage.Type = 256

// Record is one resource record of the table. Name and the names inside
// it are lower case, without the final dot.
type Record struct {
	Name   string
	Type   dnsmessage.Type
	Addr   netip.Addr // A, AAAA
	Target string     // CNAME, PTR, NS, SRV target, SOA name server
	// SRV and URI.
	Priority, Weight, Port uint16
	Text                   string // TXT, URI target, SOA mailbox
	// SOA numbers: serial, refresh, retry, expire, minimum.
	SOA [5]uint32
	// Source says where the record came from: "default", or "file:line".
	Source string
}

// Table is the set of records. Its methods are safe for concurrent use.
type Table struct {
	plan addrplan.Plan
	mu   sync.RWMutex
	recs map[string][]Record // by Name
}

// New returns the table of plan with every host's default records: hostN
// has A Plan.IPv4(N) and AAAA Plan.IPv6(N), and both reverse names point
// back at hostN.
func New(plan addrplan.Plan) *Table {
	t := &Table{plan: plan, recs: make(map[string][]Record)}
	for id := 1; id <= addrplan.MaxHost; id++ {
		n := "host" + strconv.Itoa(id)
		for _, a := range []netip.Addr{plan.IPv4(id), plan.IPv6(id)} {
			t.add(addrRecord(n, a, SourceDefault))
			t.add(Record{Name: ReverseName(a), Type: dnsmessage.TypePTR, Target: n, Source: SourceDefault})
		}
	}
	return t
}

func addrRecord(name string, a netip.Addr, src string) Record {
	typ := dnsmessage.TypeA
	if a.Is6() {
		typ = dnsmessage.TypeAAAA
	}
	return Record{Name: name, Type: typ, Addr: a, Source: src}
}

func (t *Table) add(r Record) {
	t.recs[r.Name] = append(t.recs[r.Name], r)
}

// Canon is name as the table keys it: lower case, without the final dot.
func Canon(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// ReverseName is a's name in in-addr.arpa or ip6.arpa, without the final
// dot.
func ReverseName(a netip.Addr) string {
	a = a.Unmap()
	var b strings.Builder
	if a.Is4() {
		o := a.As4()
		fmt.Fprintf(&b, "%d.%d.%d.%d.in-addr.arpa", o[3], o[2], o[1], o[0])
		return b.String()
	}
	o := a.As16()
	const hex = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		b.WriteByte(hex[o[i]&0xf])
		b.WriteByte('.')
		b.WriteByte(hex[o[i]>>4])
		b.WriteByte('.')
	}
	b.WriteString("ip6.arpa")
	return b.String()
}

// ReverseAddr is the address whose reverse name is name (ReverseName's
// inverse), if name is one.
func ReverseAddr(name string) (netip.Addr, bool) {
	name = Canon(name)
	if v4, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		p := strings.Split(v4, ".")
		if len(p) != 4 {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(p[3] + "." + p[2] + "." + p[1] + "." + p[0])
		return a, err == nil
	}
	v6, ok := strings.CutSuffix(name, ".ip6.arpa")
	p := strings.Split(v6, ".")
	if !ok || len(p) != 32 {
		return netip.Addr{}, false
	}
	var b [16]byte
	for i, nib := range p {
		v, err := strconv.ParseUint(nib, 16, 4)
		if err != nil || len(nib) != 1 {
			return netip.Addr{}, false
		}
		j := 15 - i/2
		if i%2 == 0 {
			b[j] |= byte(v)
		} else {
			b[j] |= byte(v) << 4
		}
	}
	return netip.AddrFrom16(b), true
}

// ParseError is one bad line of a file.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Format is a file format the table reads.
type Format int

// The formats.
const (
	Hosts         Format = iota // hosts(5): "address name [alias...]"
	ResolvWrapper               // resolv_wrapper: "TYPE key value...", one record a line
)

// LoadFile adds the records of the file at path, in format f. Bad lines
// are skipped, each with one ParseError; good lines are kept. A file that
// cannot be opened is one error.
func (t *Table) LoadFile(path string, f Format) []error {
	fh, err := os.Open(path)
	if err != nil {
		return []error{err}
	}
	defer fh.Close()
	return t.Load(fh, path, f)
}

// Load adds the records read from r, named file in errors and sources.
func (t *Table) Load(r io.Reader, file string, f Format) []error {
	var errs []error
	var recs []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 && f == Hosts {
			line = line[:i]
		}
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		src := fmt.Sprintf("%s:%d", file, n)
		var rs []Record
		var msg string
		if f == Hosts {
			rs, msg = t.parseHostsLine(line, src)
		} else {
			rs, msg = t.parseResolvLine(line, src)
		}
		if msg != "" {
			errs = append(errs, &ParseError{File: file, Line: n, Msg: msg})
			continue
		}
		recs = append(recs, rs...)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", file, err))
	}
	t.mu.Lock()
	for _, r := range recs {
		t.add(r)
	}
	t.mu.Unlock()
	return errs
}

// validName reports whether s can be a DNS name.
func validName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, c := range []byte(l) {
			if c <= ' ' || c >= 0x7f || c == '\\' || c == '"' {
				return false
			}
		}
	}
	return true
}

// parseHostsLine reads "address name [alias...]": every name gets the
// address, and the address's reverse name points at the first.
func (t *Table) parseHostsLine(line, src string) ([]Record, string) {
	fs := strings.Fields(line)
	if len(fs) < 2 {
		return nil, fmt.Sprintf("%q: want an address and at least one name", line)
	}
	a, err := netip.ParseAddr(fs[0])
	if err != nil || a.Zone() != "" {
		return nil, fmt.Sprintf("%q is not an IPv4 or IPv6 address", fs[0])
	}
	a = a.Unmap()
	var rs []Record
	for _, n := range fs[1:] {
		if !validName(n) {
			return nil, fmt.Sprintf("%q is not a host name", n)
		}
		rs = append(rs, addrRecord(Canon(n), a, src))
	}
	rs = append(rs, Record{Name: ReverseName(a), Type: dnsmessage.TypePTR, Target: Canon(fs[1]), Source: src})
	return rs, ""
}

// parseResolvLine reads one line of resolv_wrapper's format:
//
//	A name 192.0.2.1            AAAA name 2001:db8::1
//	SRV name target port [priority [weight]]
//	URI name uri [priority [weight]]
//	CNAME name target           PTR name target      NS name target
//	TXT name text...            SOA name ns mailbox serial refresh retry expire minimum
func (t *Table) parseResolvLine(line, src string) ([]Record, string) {
	fs := strings.Fields(line)
	if len(fs) < 3 {
		return nil, fmt.Sprintf("%q: want TYPE name value", line)
	}
	typ, name, args := strings.ToUpper(fs[0]), fs[1], fs[2:]
	if !validName(name) {
		return nil, fmt.Sprintf("%q is not a DNS name", name)
	}
	r := Record{Name: Canon(name), Source: src}
	want := func(lo, hi int) string {
		if len(args) < lo || len(args) > hi {
			return fmt.Sprintf("%s takes %d to %d values, not %d", typ, lo, hi, len(args))
		}
		return ""
	}
	target := func(s string) string {
		if !validName(s) {
			return fmt.Sprintf("%q is not a DNS name", s)
		}
		r.Target = Canon(s)
		return ""
	}
	num := func(s string, bits int) (uint64, string) {
		v, err := strconv.ParseUint(s, 10, bits)
		if err != nil {
			return 0, fmt.Sprintf("%q is not a %d-bit number", s, bits)
		}
		return v, ""
	}
	var msg string
	switch typ {
	case "A", "AAAA":
		if msg = want(1, 1); msg != "" {
			break
		}
		a, err := netip.ParseAddr(args[0])
		if err != nil || (typ == "A") != a.Is4() || a.Zone() != "" {
			msg = fmt.Sprintf("%q is not an %s address", args[0], map[string]string{"A": "IPv4", "AAAA": "IPv6"}[typ])
			break
		}
		r.Addr = a
		r.Type = dnsmessage.TypeA
		if typ == "AAAA" {
			r.Type = dnsmessage.TypeAAAA
		}
	case "CNAME", "PTR", "NS":
		if msg = want(1, 1); msg == "" {
			msg = target(args[0])
		}
		r.Type = map[string]dnsmessage.Type{"CNAME": dnsmessage.TypeCNAME, "PTR": dnsmessage.TypePTR, "NS": dnsmessage.TypeNS}[typ]
	case "SRV":
		r.Type = dnsmessage.TypeSRV
		// resolv_wrapper's defaults: priority 1, weight 100.
		r.Priority, r.Weight = 1, 100
		if msg = want(2, 4); msg != "" {
			break
		}
		if msg = target(args[0]); msg != "" {
			break
		}
		var v [3]uint64
		for i, s := range args[1:] {
			if v[i], msg = num(s, 16); msg != "" {
				break
			}
		}
		r.Port = uint16(v[0])
		if len(args) > 2 {
			r.Priority = uint16(v[1])
		}
		if len(args) > 3 {
			r.Weight = uint16(v[2])
		}
	case "URI":
		r.Type = TypeURI
		r.Priority, r.Weight = 1, 100
		if msg = want(1, 3); msg != "" {
			break
		}
		r.Text = args[0]
		for i, s := range args[1:] {
			var v uint64
			if v, msg = num(s, 16); msg != "" {
				break
			}
			if i == 0 {
				r.Priority = uint16(v)
			} else {
				r.Weight = uint16(v)
			}
		}
	case "TXT":
		r.Type = dnsmessage.TypeTXT
		// The rest of the line, as resolv_wrapper takes it.
		rest := strings.TrimSpace(line)
		for range 2 {
			rest = strings.TrimLeft(rest[strings.IndexAny(rest, " \t"):], " \t")
		}
		r.Text = rest
	case "SOA":
		r.Type = dnsmessage.TypeSOA
		if msg = want(7, 7); msg != "" {
			break
		}
		if msg = target(args[0]); msg != "" {
			break
		}
		if !validName(args[1]) {
			msg = fmt.Sprintf("%q is not a mailbox name", args[1])
			break
		}
		r.Text = Canon(args[1])
		for i, s := range args[2:] {
			var v uint64
			if v, msg = num(s, 32); msg != "" {
				break
			}
			r.SOA[i] = uint32(v)
		}
	default:
		msg = fmt.Sprintf("unknown record type %q (want A, AAAA, SRV, CNAME, PTR, TXT, NS, SOA or URI)", fs[0])
	}
	if msg != "" {
		return nil, msg
	}
	return []Record{r}, ""
}

// Env names the variables LoadEnv reads, in order.
var Env = []struct {
	Var    string
	Format Format
}{
	{"SWRAP_HOSTS", Hosts},
	{"NSS_WRAPPER_HOSTS", Hosts},
	{"RESOLV_WRAPPER_HOSTS", ResolvWrapper},
}

// LoadEnv returns the table of plan with the files the environment names
// (getenv is os.Getenv or a stand-in), and the errors met reading them.
func LoadEnv(plan addrplan.Plan, getenv func(string) string) (*Table, []error) {
	t := New(plan)
	var errs []error
	for _, e := range Env {
		if p := getenv(e.Var); p != "" {
			for _, err := range t.LoadFile(p, e.Format) {
				errs = append(errs, fmt.Errorf("%s: %w", e.Var, err))
			}
		}
	}
	return t, errs
}

// isLocalhost reports whether name is one that means "this host".
func isLocalhost(name string) bool {
	switch name {
	case "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback":
		return true
	}
	return strings.HasSuffix(name, ".localhost")
}

// Lookup returns name's records of type typ (TypeALL: every type), and
// whether the name exists at all. localhost and its variants are the
// addresses of host self (the asker's own host), whatever the files say:
// a program that talks to localhost expects to reach itself, and 127.0.0.1
// is host 1 on the emulated network.
func (t *Table) Lookup(name string, typ dnsmessage.Type, self int) ([]Record, bool) {
	name = Canon(name)
	if isLocalhost(name) {
		if !addrplan.ValidHost(self) {
			return nil, false
		}
		var rs []Record
		for _, a := range []netip.Addr{t.plan.IPv4(self), t.plan.IPv6(self)} {
			r := addrRecord(name, a, "localhost")
			if typ == dnsmessage.TypeALL || r.Type == typ {
				rs = append(rs, r)
			}
		}
		return rs, true
	}
	t.mu.RLock()
	all, ok := t.recs[name]
	t.mu.RUnlock()
	var rs []Record
	for _, r := range all {
		if typ == dnsmessage.TypeALL || r.Type == typ {
			rs = append(rs, r)
		}
	}
	if typ == dnsmessage.TypePTR {
		rs = preferFiles(rs)
	}
	return rs, ok
}

// preferFiles drops default PTR records when a file gave the address a
// name: a user's name for an address is the one a reverse lookup wants.
func preferFiles(rs []Record) []Record {
	var out []Record
	for _, r := range rs {
		if r.Source != SourceDefault {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return rs
	}
	return out[:1]
}

// maxChain bounds the CNAME links followed.
const maxChain = 8

// Addrs resolves name to its addresses, following CNAMEs: the canonical
// name, its addresses (IPv4 first), and whether the name exists.
func (t *Table) Addrs(name string, self int) (string, []netip.Addr, bool) {
	name = Canon(name)
	for range maxChain {
		cn, ok := t.Lookup(name, dnsmessage.TypeCNAME, self)
		if !ok {
			return name, nil, false
		}
		if len(cn) == 0 {
			break
		}
		name = cn[0].Target
	}
	var as []netip.Addr
	for _, typ := range []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA} {
		rs, _ := t.Lookup(name, typ, self)
		for _, r := range rs {
			as = append(as, r.Addr)
		}
	}
	_, ok := t.Lookup(name, dnsmessage.TypeALL, self)
	return name, as, ok
}

// Reverse returns the name of address a, if the table has one.
func (t *Table) Reverse(a netip.Addr) (string, bool) {
	rs, _ := t.Lookup(ReverseName(a), dnsmessage.TypePTR, 0)
	if len(rs) == 0 {
		return "", false
	}
	return rs[0].Target, true
}

// Records returns every record, sorted by name and type, for status.
func (t *Table) Records() []Record {
	t.mu.RLock()
	var rs []Record
	for _, l := range t.recs {
		rs = append(rs, l...)
	}
	t.mu.RUnlock()
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].Name != rs[j].Name {
			return rs[i].Name < rs[j].Name
		}
		return rs[i].Type < rs[j].Type
	})
	return rs
}

// Value is the record's data as a zone file would show it.
func (r Record) Value() string {
	switch r.Type {
	case dnsmessage.TypeA, dnsmessage.TypeAAAA:
		return r.Addr.String()
	case dnsmessage.TypeSRV:
		return fmt.Sprintf("%d %d %d %s.", r.Priority, r.Weight, r.Port, r.Target)
	case TypeURI:
		return fmt.Sprintf("%d %d %q", r.Priority, r.Weight, r.Text)
	case dnsmessage.TypeTXT:
		return strconv.Quote(r.Text)
	case dnsmessage.TypeSOA:
		return fmt.Sprintf("%s. %s. %d %d %d %d %d", r.Target, r.Text, r.SOA[0], r.SOA[1], r.SOA[2], r.SOA[3], r.SOA[4])
	}
	return r.Target + "."
}

// TypeName is the record type's mnemonic ("A", "SRV").
func (r Record) TypeName() string {
	if r.Type == TypeURI {
		return "URI"
	}
	return strings.TrimPrefix(r.Type.String(), "Type")
}
