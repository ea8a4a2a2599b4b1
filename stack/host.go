package stack

import (
	"fmt"
	"net/netip"

	"golang.org/x/time/rate"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/swrap/swrap/addrplan"
	"github.com/swrap/swrap/tap"
)

// NICID is the id of every host's only NIC.
const NICID tcpip.NICID = 1

// TCP buffer sizes. Netstack's defaults (1 MiB max) cap a flow's window at
// what a 64 KiB-MTU fabric fills in well under a millisecond; 4 MiB leaves
// room, and moderation grows receive buffers only for flows that need it,
// so idle connections stay small.
const (
	tcpBufMin     = 4 << 10
	tcpBufDefault = 1 << 20
	tcpBufMax     = 4 << 20
)

// qdiscQueueLen is the fifo qdisc's queue length in packets (tap.QDisc:
// frames for hosts of this process skip it when they can). The qdisc
// decouples netstack from the endpoint: TX may park on a full peer socket
// (back-pressure) without stalling RX and ACK processing, and it batches
// packets into one sendmmsg. It drops on overflow, which TCP recovers from.
const qdiscQueueLen = 1000

// Config describes a host to build.
type Config struct {
	// ID is the host id, 1..addrplan.MaxHost.
	ID int
	// Plan gives the host's addresses.
	Plan addrplan.Plan
	// Link configures the host's NIC; Link.MTU is the fabric MTU.
	Link tap.Config
	// MaxTimeWait bounds the host's TCP connections in TIME_WAIT, as
	// Linux's net.ipv4.tcp_max_tw_buckets (see timewait.go): 0 means
	// DefaultMaxTimeWait, negative unbounded.
	MaxTimeWait int
}

// Host is one emulated host: a netstack with one NIC on the fabric.
type Host struct {
	ID    int
	IPv4  netip.Addr // Plan.IPv4(ID)
	IPv6  netip.Addr // Plan.IPv6(ID)
	Stack *stack.Stack
	NIC   tcpip.NICID
	// Link is the host's NIC; its counters are in LinkStats.
	Link *tap.Endpoint

	tw timeWait
}

// New builds the host described by cfg. On error, cfg.Link.Conn is closed.
func New(cfg Config) (*Host, error) {
	if !addrplan.ValidHost(cfg.ID) && cfg.ID != addrplan.ServiceHost {
		cfg.Link.Conn.Close()
		return nil, fmt.Errorf("stack: host id %d out of range 1..%d", cfg.ID, addrplan.MaxHost)
	}
	ep, err := tap.New(cfg.Link)
	if err != nil {
		cfg.Link.Conn.Close()
		return nil, fmt.Errorf("stack: host %d: %w", cfg.ID, err)
	}
	h := &Host{
		ID:   cfg.ID,
		IPv4: cfg.Plan.IPv4(cfg.ID),
		IPv6: cfg.Plan.IPv6(cfg.ID),
		NIC:  NICID,
		Link: ep,
	}
	h.setMaxTimeWait(cfg.MaxTimeWait)
	h.Stack = stack.New(stack.Options{
		NetworkProtocols: []stack.NetworkProtocolFactory{
			// 127.0.0.N is a loopback address to netstack, which drops
			// loopback traffic arriving on an ordinary NIC as martian
			// unless told otherwise.
			ipv4.NewProtocolWithOptions(ipv4.Options{AllowExternalLoopbackTraffic: true}),
			// The defaults send no DAD, MLD or link-local traffic, so
			// captures hold only what the applications do.
			ipv6.NewProtocolWithOptions(ipv6.Options{AllowExternalLoopbackTraffic: true}),
		},
		TransportProtocols: []stack.TransportProtocolFactory{
			tcp.NewProtocol, udp.NewProtocol,
			// ICMP transport protocols make ICMP echo ("ping") sockets
			// creatable; echo requests are answered by the network
			// protocols either way.
			icmp.NewProtocol4, icmp.NewProtocol6,
		},
		// A host talking to itself (its own address) loops inside its
		// stack instead of crossing the fabric, as on Linux.
		HandleLocal: true,
		RandSource:  newRandSource(),
	})
	if err := h.setup(cfg); err != nil {
		h.Close()
		return nil, fmt.Errorf("stack: host %d: %v", cfg.ID, err)
	}
	return h, nil
}

// setup sets options, creates the NIC and assigns addresses and routes.
func (h *Host) setup(cfg Config) error {
	s := h.Stack
	opts := []tcpip.SettableTransportProtocolOption{
		// SACK is off by default in netstack; it matters as soon as the
		// fabric loses packets (impairments, qdisc overflow).
		ptr(tcpip.TCPSACKEnabled(true)),
		&tcpip.TCPSendBufferSizeRangeOption{Min: tcpBufMin, Default: tcpBufDefault, Max: tcpBufMax},
		&tcpip.TCPReceiveBufferSizeRangeOption{Min: tcpBufMin, Default: tcpBufDefault, Max: tcpBufMax},
		ptr(tcpip.TCPModerateReceiveBufferOption(true)),
		// No RACK/TLP: netstack's probe timeout is 2×SRTT with no floor
		// (Linux keeps at least 10 ms), and on a fabric whose RTT is well
		// under a millisecond any scheduling hiccup then fires a spurious
		// retransmission. SACK recovery and the 200 ms minimum RTO remain.
		ptr(tcpip.TCPRecovery(0)),
	}
	for _, o := range opts {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, o); err != nil {
			return fmt.Errorf("TCP option %T: %v", o, err)
		}
	}
	// No ICMP rate limit: the hosts' addresses are loopback addresses to
	// the programs (127.0.0.N, the plan socket_wrapper users write), and
	// Linux never rate-limits ICMP on loopback; netstack's 1000/s with a
	// burst of 50 dropped port unreachables, and with them the
	// ECONNREFUSED of a UDP client's next receive, past 50 in a burst.
	s.SetICMPLimit(rate.Inf)
	if err := s.CreateNICWithOptions(NICID, h.Link, stack.NICOptions{
		Name:  fmt.Sprintf("swrap%d", h.ID),
		QDisc: tap.NewQDisc(h.Link, qdiscQueueLen),
	}); err != nil {
		return fmt.Errorf("CreateNIC: %v", err)
	}
	for _, a := range []struct {
		proto tcpip.NetworkProtocolNumber
		addr  netip.Addr
		bits  int
	}{
		// /8 makes the plan's broadcast address (127.255.255.255 or
		// 10.255.255.255) the subnet broadcast, which netstack both
		// delivers locally and sends out, as Linux does.
		{ipv4.ProtocolNumber, h.IPv4, cfg.Plan.PrefixLen4()},
		// fd00::/64 holds the whole fd00::5357:5fXX range on-link.
		{ipv6.ProtocolNumber, h.IPv6, 64},
	} {
		pa := tcpip.ProtocolAddress{
			Protocol: a.proto,
			AddressWithPrefix: tcpip.AddressWithPrefix{
				Address:   tcpip.AddrFromSlice(a.addr.AsSlice()),
				PrefixLen: a.bits,
			},
		}
		if err := s.AddProtocolAddress(NICID, pa, stack.AddressProperties{}); err != nil {
			return fmt.Errorf("address %v: %v", a.addr, err)
		}
	}
	// Everything goes to the NIC: the fabric decides what is reachable
	// (and the broker rejects destinations outside the network earlier,
	// with ENETUNREACH), so netstack must not answer "no route" itself.
	s.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, NIC: NICID},
		{Destination: header.IPv6EmptySubnet, NIC: NICID},
	})
	return nil
}

func ptr[T any](v T) *T { return &v }

// LinkStats returns the counters of the host's NIC.
func (h *Host) LinkStats() tap.Stats { return h.Link.Stats() }

// Close aborts the host's connections and waits for every goroutine of the
// stack and its NIC to end. Close connections first for clean FINs: netstack
// answers aborted ones with RST.
func (h *Host) Close() {
	h.Link.StopRX() // before the stack: see tap.Endpoint.StopRX
	h.Stack.Close()
	h.Stack.Wait()
	// Stack.Wait closes the NIC; this covers a host whose NIC was never
	// created.
	h.Link.Close()
}
