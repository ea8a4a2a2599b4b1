package swrapnet

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/swrap/swrap/addrplan"
)

// DNSServer is the address of the broker's DNS server on the emulated
// network (host addrplan.ServiceHost, port 53), which answers from the
// same table of names as wrapped programs' getaddrinfo.
func (h *Host) DNSServer() netip.AddrPort {
	return netip.AddrPortFrom(h.plan.IPv4(addrplan.ServiceHost), 53)
}

// Resolver returns a net.Resolver (Go's own DNS client) whose queries go
// from this host to the broker's DNS server, over UDP and, after a
// truncated answer, TCP: they cross the emulated network and are in the
// capture. The nameserver the resolver would pick from /etc/resolv.conf is
// never dialled. Like any Go resolver it reads /etc/hosts first.
func (h *Host) Resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			srv := h.DNSServer().String()
			if strings.HasPrefix(network, "tcp") {
				var timeout time.Duration
				if d, ok := ctx.Deadline(); ok {
					timeout = max(time.Until(d), time.Microsecond)
				}
				return h.DialTimeout("tcp", srv, timeout)
			}
			return h.dialUDP("udp", srv)
		},
	}
}
