package broker

// Binding another host's address. A socket is made on its program's
// default host (SOCKET_WRAPPER_DEFAULT_IFACE), but any program may bind any
// emulated host's address, as with socket_wrapper, and a socket bound to
// host M's address lives on host M's netstack: its frames leave host M,
// host M's link conditions apply, its connections are host M's. A netstack
// endpoint cannot change stacks, so bind makes a new endpoint on host M,
// sets on it again the options the program set before bind, binds it, and
// only then replaces the old one: a bind that fails leaves the socket
// unbound where it was, as Linux leaves it.

import (
	"bytes"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"

	"github.com/swrap/swrap/stack"
	"github.com/swrap/swrap/wire"
)

// setOpt is one SETSOCKOPT a program made while its socket was unbound.
type setOpt struct {
	level, name int
	val         []byte
}

// recordOpt remembers an option that was set successfully while the socket
// is unbound, the only time it can still move. Setting an option again
// replaces its earlier record, which keeps the record as small as the set
// of options and the order that of their last settings (SO_RCVBUF and
// SO_RCVBUFFORCE, say, must end as the program left them).
func (s *sock) recordOpt(level, name int, val []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != wire.StateNew {
		return
	}
	s.preBind = slices.DeleteFunc(s.preBind, func(o setOpt) bool { return o.level == level && o.name == name })
	s.preBind = append(s.preBind, setOpt{level, name, bytes.Clone(val)})
}

// bindHost returns the host a bind to a puts the socket on: the host whose
// address a is, or for the any-address the socket's own host.
func (s *sock) bindHost(a wire.Addr) (*stack.Host, syscall.Errno) {
	cur := s.host.Load()
	id, ok := s.b.cfg.Plan.Host(a.IP)
	if !ok || id == cur.ID {
		return cur, 0
	}
	h, err := s.b.fab.Host(id)
	if err != nil {
		s.b.log.Error("host", "id", id, "err", err)
		return nil, syscall.ENETDOWN
	}
	return h, 0
}

// endpointOn makes an endpoint for the socket on host h, as newSock makes
// one, with the options the program has set so far. Called with s.mu held.
func (s *sock) endpointOn(h *stack.Host) (tcpip.Endpoint, syscall.Errno) {
	tp, en := transportFor(s.family, s.typ, s.proto)
	if en != 0 {
		return nil, en
	}
	np := ipv4.ProtocolNumber
	if s.family == unix.AF_INET6 {
		np = ipv6.ProtocolNumber
	}
	ep, err := h.Stack.NewEndpoint(tp, np, &s.wq)
	if err != nil {
		return nil, errno(err)
	}
	// The options go through setsockopt again, on a socket that is only
	// a view of the new endpoint: what they set on the endpoint is set
	// again; what they record in the sock (reported buffer sizes,
	// timeouts, pktinfo) is already in s, unchanged.
	v := &sock{b: s.b, family: s.family, typ: s.typ, proto: s.proto, ep: ep, state: wire.StateNew}
	v.host.Store(h)
	v.initEndpoint()
	if s.typ == unix.SOCK_STREAM {
		ep.SocketOptions().SetDelayOption(true) // Nagle on, as newSock sets it
	}
	for _, o := range s.preBind {
		if en := v.setsockopt(o.level, o.name, o.val); en != 0 {
			// It succeeded once, on an endpoint of the same kind.
			s.b.log.Warn("option not carried to another host", "sock", s.id, "level", o.level, "name", o.name, "err", en)
		}
	}
	return ep, 0
}

// setEndpointLocked makes ep, on host h, the socket's endpoint. Called
// with s.mu held; b.mu is taken too, because reapClosed reads other
// sockets' endpoints under b.mu (it cannot take their mu).
func (s *sock) setEndpointLocked(ep tcpip.Endpoint, h *stack.Host) {
	s.b.mu.Lock()
	s.ep = ep
	s.host.Store(h)
	s.b.mu.Unlock()
}

// endpoint returns the socket's current endpoint, for the goroutines that
// run while a bind may replace it (a datagram socket's).
func (s *sock) endpoint() tcpip.Endpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ep
}
