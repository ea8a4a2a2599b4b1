package broker

import (
	"net/netip"
	"syscall"

	"golang.org/x/net/dns/dnsmessage"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"

	"github.com/swrap/swrap/addrplan"
	"github.com/swrap/swrap/names"
	"github.com/swrap/swrap/wire"
)

// NameStatus is one record of the name table, for `swrap status`.
type NameStatus struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

// nameStatus lists the table, sorted by name and type.
func (b *Broker) nameStatus() []NameStatus {
	var out []NameStatus
	for _, r := range b.names.Records() {
		out = append(out, NameStatus{Name: r.Name, Type: r.TypeName(), Value: r.Value(), Source: r.Source})
	}
	return out
}

// startDNS starts the DNS server on the service host's addresses, UDP and
// TCP port 53 (package names). shutdown closes it (b.dns.Close).
func (b *Broker) startDNS() error {
	h, err := b.fab.Host(addrplan.ServiceHost)
	if err != nil {
		return err
	}
	plan := b.cfg.Plan
	srv := &names.Server{Table: b.names, Log: b.log, Self: func(a netip.Addr) int {
		id, _ := plan.Host(a)
		return id
	}}
	b.dns = srv
	for _, a := range []struct {
		ip    netip.Addr
		proto tcpip.NetworkProtocolNumber
	}{{h.IPv4, ipv4.ProtocolNumber}, {h.IPv6, ipv6.ProtocolNumber}} {
		fa := tcpip.FullAddress{NIC: h.NIC, Addr: tcpip.AddrFromSlice(a.ip.AsSlice()), Port: 53}
		pc, err := gonet.DialUDP(h.Stack, &fa, nil, a.proto)
		if err != nil {
			return err
		}
		l, err := gonet.ListenTCP(h.Stack, fa, a.proto)
		if err != nil {
			pc.Close()
			srv.Close()
			return err
		}
		go srv.ServeUDP(pc)
		go srv.ServeTCP(l)
	}
	return nil
}

// doResolve answers RESOLVE from the table, for the program's own host
// (HELLO's iface), which localhost names.
func (cc *ctlConn) doResolve(body []byte) reply {
	r, err := wire.ParseResolve(body)
	if err != nil {
		return errReply(syscall.EINVAL)
	}
	t := cc.b.names
	self := int(cc.hello.Iface)
	switch r.Kind {
	case wire.ResolveName:
		if len(r.Data) == 0 || len(r.Data) > 255 {
			return errReply(syscall.EINVAL)
		}
		canon, addrs, ok := t.Addrs(string(r.Data), self)
		if !ok {
			return errReply(syscall.ENOENT)
		}
		var keep []netip.Addr
		for _, a := range addrs {
			if r.Arg == syscall.AF_UNSPEC || (r.Arg == syscall.AF_INET) == a.Is4() {
				keep = append(keep, a)
			}
		}
		if len(keep) == 0 {
			return errReply(syscall.ENODATA)
		}
		keep = keep[:min(len(keep), wire.ResolveMaxAddrs)]
		return okReply(wire.EncodeResolveName(canon, keep))
	case wire.ResolveAddr:
		a, ok := netip.AddrFromSlice(r.Data)
		if !ok || (r.Arg == syscall.AF_INET) != a.Is4() {
			return errReply(syscall.EINVAL)
		}
		n, ok := t.Reverse(a)
		if !ok {
			return errReply(syscall.ENOENT)
		}
		return okReply([]byte(n))
	case wire.ResolveQuery:
		name, err := dnsmessage.NewName(names.Canon(string(r.Data)) + ".")
		if err != nil || len(r.Data) == 0 {
			return errReply(syscall.EINVAL)
		}
		q := dnsmessage.Message{
			Header:    dnsmessage.Header{RecursionDesired: true},
			Questions: []dnsmessage.Question{{Name: name, Type: dnsmessage.Type(r.Arg & 0xffff), Class: dnsmessage.Class(r.Arg >> 16)}},
		}
		qb, err := q.Pack()
		if err != nil {
			return errReply(syscall.EINVAL)
		}
		return okReply(t.Answer(qb, self, 0))
	case wire.ResolveMessage:
		out := t.Answer(r.Data, self, 0)
		if out == nil {
			return errReply(syscall.EINVAL)
		}
		return okReply(out)
	}
	return errReply(syscall.EINVAL)
}
