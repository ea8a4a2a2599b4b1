package supervise

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"strings"

	"github.com/swrap/swrap/addrplan"
	"github.com/swrap/swrap/wire"
)

// A program's own resolver (Go's, static glibc's) sends its queries to
// port 53 of resolv.conf's nameservers, which are not on the emulated
// network: as the shim does (shim/resolve.c, swrap_dns_redirect), such a
// destination becomes the broker's DNS server. Unlike the shim, the
// supervisor also reports the nameserver asked as the peer and source of
// what comes back, as Linux would: musl's resolver (unconnected UDP) drops
// a reply whose source is not one of its nameservers (under the shim,
// libc's resolver is answered by the shim and never sees one).

// resolvNameservers returns the nameservers of /etc/resolv.conf (the
// supervised tree shares swrap run's mount namespace), at most 8 as the
// shim keeps.
func resolvNameservers() []netip.Addr {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	var ns []netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() && len(ns) < 8 {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		s, _, _ := strings.Cut(f[1], "%")
		if a, err := netip.ParseAddr(s); err == nil {
			ns = append(ns, a)
		}
	}
	return ns
}

// dnsRedirect turns a, a destination of connect, sendto or sendmsg on
// socket c, into the broker's DNS server when it is port 53 of a
// nameserver, in a's family (a v4-mapped address stays mapped).
func (c *call) dnsRedirect(a wire.Addr) wire.Addr {
	if a.Port != 53 || len(c.s.nameservers) == 0 {
		return a
	}
	plan := planOf(c.tgid)
	if plan.IsService(a.IP) {
		c.s.mu.Lock()
		delete(c.s.dnsAsked, c.id) // the server itself, asked by its address
		c.s.mu.Unlock()
		return a
	}
	for _, ns := range c.s.nameservers {
		if ns != a.IP && !(ns.Is4() && a.IP.Is4In6() && ns == a.IP.Unmap()) {
			continue
		}
		to := a
		to.ScopeID = 0
		switch {
		case a.IP.Is4():
			to.IP = plan.IPv4(addrplan.ServiceHost)
		case a.IP.Is4In6():
			to.IP = netip.AddrFrom16(plan.IPv4(addrplan.ServiceHost).As16())
		default:
			to.IP = plan.IPv6(addrplan.ServiceHost)
		}
		c.s.mu.Lock()
		c.s.dnsAsked[c.id] = a
		c.s.mu.Unlock()
		return to
	}
	return a
}

// dnsPeer is the address to report for a, a peer or source on socket c:
// the nameserver the program asked when a is the DNS server it was sent
// to instead.
func (c *call) dnsPeer(a wire.Addr) wire.Addr {
	if a.Port != 53 || !planOf(c.tgid).IsService(a.IP) {
		return a
	}
	c.s.mu.Lock()
	asked, ok := c.s.dnsAsked[c.id]
	c.s.mu.Unlock()
	if !ok || asked.IP.Is4In6() != a.IP.Is4In6() || asked.IP.Is4() != a.IP.Is4() {
		return a
	}
	return asked
}
