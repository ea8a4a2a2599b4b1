package broker

import (
	"encoding/json"
	"os"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swrap/swrap/netem"
	"github.com/swrap/swrap/wire"
)

// Status is the broker's answer to STATUS (docs/protocol.md): what runs,
// for `swrap status` and for tests that check that nothing is left behind.
type Status struct {
	Version        int             `json:"version"`
	PID            int             `json:"pid"`
	Instance       string          `json:"instance"`
	Dir            string          `json:"dir"`
	MTU            uint32          `json:"mtu"`
	Fabric         string          `json:"fabric"` // "memory" or "sockets": how frames reach hosts
	UptimeS        float64         `json:"uptime_s"`
	Hosts          []HostStatus    `json:"hosts"`
	Sockets        []SocketStatus  `json:"sockets"`
	Captures       []CaptureStatus `json:"captures"`
	Links          []netem.Status  `json:"links"` // links with network conditions (links.go)
	ControlConns   int             `json:"control_connections"`
	Sessions       int             `json:"sessions"`
	Goroutines     int             `json:"goroutines"`
	FDs            int             `json:"fds"`
	DgramDrops     uint64          `json:"dgram_drops"`      // for a full receive queue
	DgramSendDrops uint64          `json:"dgram_send_drops"` // sent by a program, not put on the network
	Names          []NameStatus    `json:"names"`            // the name table (names.go)
}

// HostStatus describes one emulated host and its link's counters.
type HostStatus struct {
	ID   int       `json:"id"`
	IPv4 string    `json:"ipv4"`
	IPv6 string    `json:"ipv6"`
	Link LinkStats `json:"link"`
	// TCPClosing counts the host's TCP connections past ESTABLISHED and
	// not yet gone (FIN_WAIT, TIME_WAIT, CLOSE_WAIT, LAST_ACK, CLOSING):
	// after a load, mostly TIME_WAIT, which MaxTimeWait bounds (0: no
	// bound; stack.Host.NoteTCPClose).
	TCPClosing  uint64 `json:"tcp_closing"`
	MaxTimeWait int    `json:"tcp_max_tw"`
}

// LinkStats are a host link's counters.
type LinkStats struct {
	TxFrames    uint64 `json:"tx_frames"`
	TxBytes     uint64 `json:"tx_bytes"`
	RxFrames    uint64 `json:"rx_frames"`
	RxBytes     uint64 `json:"rx_bytes"`
	Unreachable uint64 `json:"unreachable"`
	Dropped     uint64 `json:"dropped"`
	// The ACK policy (tap.Stats): pure ACKs held, held ACKs a later
	// segment carried (never sent), held ACKs sent by the timer.
	AcksHeld    uint64 `json:"acks_held,omitempty"`
	AcksMerged  uint64 `json:"acks_merged,omitempty"`
	AcksFlushed uint64 `json:"acks_flushed,omitempty"`
}

// SocketStatus describes one wrapped socket.
type SocketStatus struct {
	ID     uint64 `json:"id"`
	Host   int    `json:"host"`
	Family string `json:"family"`
	Proto  string `json:"proto"`
	State  string `json:"state"`
	TCP    string `json:"tcp_state,omitempty"`
	Local  string `json:"local"`
	Remote string `json:"remote,omitempty"`
	PID    uint32 `json:"pid"`
}

// CaptureStatus describes one capture: a file, a per-host directory or a
// live stream (File names its reader). Dropped counts the frames it lost
// (a live reader too slow for the network).
type CaptureStatus struct {
	File    string `json:"file"`
	Kind    string `json:"kind"` // "file", "dir" or "live"
	Frames  uint64 `json:"frames"`
	Bytes   uint64 `json:"bytes"`
	Dropped uint64 `json:"dropped"`
}

var tcpStateNames = map[uint8]string{
	1: "ESTABLISHED", 2: "SYN-SENT", 3: "SYN-RECV", 4: "FIN-WAIT-1", 5: "FIN-WAIT-2",
	6: "TIME-WAIT", 7: "CLOSE", 8: "CLOSE-WAIT", 9: "LAST-ACK", 10: "LISTEN", 11: "CLOSING",
}

func (b *Broker) status() []byte {
	st := Status{
		Version: wire.Version, PID: os.Getpid(), Instance: b.instance, Dir: b.cfg.Dir,
		MTU: b.cfg.MTU, Fabric: b.fabricMode(), UptimeS: time.Since(b.start).Seconds(), DgramDrops: dgramDrops.Load(), DgramSendDrops: dgramSendDrops.Load(),
	}
	for _, h := range b.fab.Hosts() {
		ls := h.LinkStats()
		st.Hosts = append(st.Hosts, HostStatus{ID: h.ID, IPv4: h.IPv4.String(), IPv6: h.IPv6.String(),
			Link: LinkStats{TxFrames: ls.TxFrames, TxBytes: ls.TxBytes, RxFrames: ls.RxFrames,
				RxBytes: ls.RxBytes, Unreachable: ls.Unreachable, Dropped: ls.Dropped,
				AcksHeld: ls.AcksHeld, AcksMerged: ls.AcksMerged, AcksFlushed: ls.AcksFlushed},
			TCPClosing: h.TCPClosing(), MaxTimeWait: h.MaxTimeWait()})
	}
	b.mu.Lock()
	socks := make([]*sock, 0, len(b.socks))
	for _, s := range b.socks {
		socks = append(socks, s)
	}
	st.ControlConns = len(b.ctl)
	b.mu.Unlock()
	sort.Slice(socks, func(i, j int) bool { return socks[i].id < socks[j].id })
	for _, s := range socks {
		st.Sockets = append(st.Sockets, s.describe())
	}
	st.Sessions = len(st.Sockets)
	for _, w := range *b.captures.Load() {
		cs := w.Stats()
		st.Captures = append(st.Captures, CaptureStatus{File: w.Path(), Kind: w.Kind(), Frames: cs.Frames, Bytes: cs.Bytes, Dropped: cs.Dropped})
	}
	st.Links = b.linkStatus()
	st.Names = b.nameStatus()
	st.Goroutines = goroutines()
	st.FDs = openFDs()
	out, _ := json.Marshal(st)
	return out
}

func (s *sock) describe() SocketStatus {
	// Under mu, as bind may move the socket to another host's endpoint.
	// tcpInfo reads the endpoint on its own: of an unbound socket, which
	// alone can move, both endpoints report CLOSE.
	s.mu.Lock()
	d := SocketStatus{ID: s.id, Host: s.host.Load().ID, Family: "ipv4", State: s.state.String(), PID: s.pid,
		Local: s.localAddr().String()}
	if s.family == unix.AF_INET6 {
		d.Family = "ipv6"
	}
	if r, en := s.remoteAddr(); en == 0 {
		d.Remote = r.String()
	}
	s.mu.Unlock()
	switch s.proto {
	case unix.IPPROTO_TCP:
		d.Proto = "tcp"
		d.TCP = tcpStateNames[s.tcpInfo(1)[0]]
	case unix.IPPROTO_UDP:
		d.Proto = "udp"
	default:
		d.Proto = "icmp"
	}
	return d
}

// fabricMode names how frames reach hosts (Config.FabricSockets).
func (b *Broker) fabricMode() string {
	if b.cfg.FabricSockets {
		return "sockets"
	}
	return "memory"
}
