package names

import (
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// TTL of every answer: short, as the table may change between runs.
const TTL = 60

// udpMin is the payload a UDP answer may always have (RFC 1035); an EDNS0
// query may raise it up to ednsMax.
const (
	udpMin  = 512
	ednsMax = 4096
)

// Answer is the DNS reply to query, asked by a program on host self (which
// localhost names), for a reply of at most limit bytes (0: no limit, as
// over TCP). It returns nil for what deserves no reply: a message shorter
// than a header, or a reply itself. A query that does not parse gets
// FORMERR; an opcode other than QUERY, NOTIMP; a class other than IN,
// REFUSED, and so does a zone transfer. A reply longer than limit is
// truncated (TC set, no records), which sends the client to TCP.
func (t *Table) Answer(query []byte, self int, limit int) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil || h.Response {
		return nil
	}
	rh := dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	if h.OpCode != 0 {
		rh.RCode = dnsmessage.RCodeNotImplemented
		return pack(dnsmessage.Message{Header: rh})
	}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) != 1 {
		rh.RCode = dnsmessage.RCodeFormatError
		return pack(dnsmessage.Message{Header: rh})
	}
	q := qs[0]
	// EDNS0: answer an OPT with our own, and honour the client's size.
	// Other additional records are ignored.
	edns := false
	if err := p.SkipAllAnswers(); err == nil {
		if err := p.SkipAllAuthorities(); err == nil {
			for {
				ah, err := p.AdditionalHeader()
				if err != nil {
					break
				}
				if ah.Type == dnsmessage.TypeOPT {
					edns = true
					if limit > 0 {
						limit = max(udpMin, min(int(ah.Class), ednsMax))
					}
				}
				if p.SkipAdditional() != nil {
					break
				}
			}
		}
	}
	m := dnsmessage.Message{Header: rh, Questions: qs}
	switch {
	case q.Class != dnsmessage.ClassINET && q.Class != dnsmessage.ClassANY:
		m.RCode = dnsmessage.RCodeRefused
	case q.Type == dnsmessage.TypeAXFR || q.Type == 251: // IXFR
		// No zone transfers: the table is not a zone file.
		m.RCode = dnsmessage.RCodeRefused
	default:
		m.Authoritative = true
		t.answer(&m, q, self)
	}
	if edns {
		var opt dnsmessage.ResourceHeader
		if err := opt.SetEDNS0(ednsMax, dnsmessage.RCodeSuccess, false); err == nil {
			m.Additionals = append(m.Additionals, dnsmessage.Resource{Header: opt, Body: &dnsmessage.OPTResource{}})
		}
	}
	out := pack(m)
	if limit > 0 && len(out) > limit {
		m.Truncated = true
		m.Answers, m.Authorities = nil, nil
		var keep []dnsmessage.Resource
		for _, r := range m.Additionals {
			if r.Header.Type == dnsmessage.TypeOPT {
				keep = append(keep, r)
			}
		}
		m.Additionals = keep
		out = pack(m)
	}
	return out
}

func pack(m dnsmessage.Message) []byte {
	b, err := m.Pack()
	if err != nil {
		// A record the packer refuses (a name too long after a CNAME
		// chain): say so rather than send nothing.
		m.Answers, m.Authorities, m.Additionals = nil, nil, nil
		m.RCode = dnsmessage.RCodeServerFailure
		b, _ = m.Pack()
	}
	return b
}

// answer fills m's records for q: the records of the asked type, CNAMEs
// followed (chain in the answer), A/AAAA of SRV, NS and MX targets as
// additional records; NXDOMAIN for a name the table lacks, NOERROR with no
// answer (NODATA) for a name that exists without that type.
func (t *Table) answer(m *dnsmessage.Message, q dnsmessage.Question, self int) {
	name := Canon(q.Name.String())
	typ := q.Type
	seen := map[string]bool{}
	for range maxChain {
		rs, ok := t.Lookup(name, typ, self)
		if !ok {
			if len(m.Answers) == 0 {
				m.RCode = dnsmessage.RCodeNameError
			}
			// A chain that ends outside the table: the CNAMEs stand.
			return
		}
		if len(rs) == 0 && typ != dnsmessage.TypeCNAME && typ != dnsmessage.TypeALL {
			if cn, _ := t.Lookup(name, dnsmessage.TypeCNAME, self); len(cn) > 0 && !seen[name] {
				seen[name] = true
				m.Answers = append(m.Answers, resource(cn[0]))
				name = cn[0].Target
				continue
			}
		}
		for _, r := range rs {
			m.Answers = append(m.Answers, resource(r))
			if r.Type == dnsmessage.TypeSRV || r.Type == dnsmessage.TypeNS {
				for _, at := range []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA} {
					as, _ := t.Lookup(r.Target, at, self)
					for _, a := range as {
						m.Additionals = append(m.Additionals, resource(a))
					}
				}
			}
		}
		return
	}
}

// resource is r as a dnsmessage resource.
func resource(r Record) dnsmessage.Resource {
	h := dnsmessage.ResourceHeader{Name: mustName(r.Name), Type: r.Type, Class: dnsmessage.ClassINET, TTL: TTL}
	var body dnsmessage.ResourceBody
	switch r.Type {
	case dnsmessage.TypeA:
		body = &dnsmessage.AResource{A: r.Addr.As4()}
	case dnsmessage.TypeAAAA:
		body = &dnsmessage.AAAAResource{AAAA: r.Addr.As16()}
	case dnsmessage.TypeCNAME:
		body = &dnsmessage.CNAMEResource{CNAME: mustName(r.Target)}
	case dnsmessage.TypePTR:
		body = &dnsmessage.PTRResource{PTR: mustName(r.Target)}
	case dnsmessage.TypeNS:
		body = &dnsmessage.NSResource{NS: mustName(r.Target)}
	case dnsmessage.TypeSRV:
		body = &dnsmessage.SRVResource{Priority: r.Priority, Weight: r.Weight, Port: r.Port, Target: mustName(r.Target)}
	case dnsmessage.TypeTXT:
		// Character strings hold 255 bytes: longer text is split.
		var txt []string
		s := r.Text
		for len(s) > 255 {
			txt, s = append(txt, s[:255]), s[255:]
		}
		body = &dnsmessage.TXTResource{TXT: append(txt, s)}
	case dnsmessage.TypeSOA:
		body = &dnsmessage.SOAResource{NS: mustName(r.Target), MBox: mustName(r.Text),
			Serial: r.SOA[0], Refresh: r.SOA[1], Retry: r.SOA[2], Expire: r.SOA[3], MinTTL: r.SOA[4]}
	case TypeURI:
		// RFC 7553: priority, weight, then the target to the end.
		d := binary.BigEndian.AppendUint16(nil, r.Priority)
		d = binary.BigEndian.AppendUint16(d, r.Weight)
		body = &dnsmessage.UnknownResource{Type: TypeURI, Data: append(d, r.Text...)}
	}
	return dnsmessage.Resource{Header: h, Body: body}
}

// mustName is s as a fully qualified dnsmessage.Name; the parsers checked
// every name, so it cannot fail but for a name made too long by the root.
func mustName(s string) dnsmessage.Name {
	n, err := dnsmessage.NewName(s + ".")
	if err != nil {
		n, _ = dnsmessage.NewName("invalid.")
	}
	return n
}

// Server serves a Table over DNS: UDP on a PacketConn, TCP on a Listener.
// Self tells which host a client address belongs to (for localhost).
type Server struct {
	Table *Table
	Self  func(netip.Addr) int
	Log   *slog.Logger

	wg      sync.WaitGroup
	mu      sync.Mutex
	closed  bool
	closers []io.Closer
}

// track registers c to be closed by Close; false if Close already ran.
func (s *Server) track(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	s.closers = append(s.closers, c)
	return true
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close closes every PacketConn and Listener being served; the Serve
// calls return.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	cs := s.closers
	s.closers = nil
	s.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

func (s *Server) self(a net.Addr) int {
	if s.Self == nil {
		return 0
	}
	var ip netip.Addr
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	}
	return s.Self(ip.Unmap())
}

// ServeUDP answers the queries on pc until it or the Server is closed.
func (s *Server) ServeUDP(pc net.PacketConn) {
	if !s.track(pc) {
		return
	}
	buf := make([]byte, 64<<10)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.isClosed() {
				return
			}
			time.Sleep(time.Millisecond)
			continue
		}
		if out := s.Table.Answer(buf[:n], s.self(from), udpMin); out != nil {
			pc.WriteTo(out, from)
		}
	}
}

// tcpIdle bounds how long a TCP client may sit without a complete query.
const tcpIdle = 10 * time.Second

// ServeTCP answers queries on connections accepted on l until it or the
// Server is closed; each connection may carry many (RFC 7766).
func (s *Server) ServeTCP(l net.Listener) {
	if !s.track(l) {
		return
	}
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.isClosed() {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.wg.Add(1)
		go s.serveConn(c)
	}
}

func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer c.Close()
	self := s.self(c.RemoteAddr())
	var lb [2]byte
	for {
		c.SetReadDeadline(time.Now().Add(tcpIdle))
		if _, err := io.ReadFull(c, lb[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(lb[:]))
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		out := s.Table.Answer(q, self, 0)
		if out == nil {
			return
		}
		if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(out))), out...)); err != nil {
			return
		}
	}
}

// Wait waits for the TCP connections' goroutines, which end within
// tcpIdle of Close.
func (s *Server) Wait() { s.wg.Wait() }
