package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// pcapUsage is the help of `swrap pcap`.
const pcapUsage = `Usage: swrap pcap summary FILE

Summarises a capture (pcap or pcapng; swrap writes raw-IP pcap files with
SOCKET_WRAPPER_PCAP_FILE): frames, TCP connections with their handshake,
bytes each way and how they ended, UDP flows, and ICMP messages.
'swrap capture summary' is the same command.
`

// cmdPcap implements `swrap pcap summary FILE`.
func cmdPcap(args []string, stdout, stderr io.Writer) error {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		fmt.Fprint(stdout, pcapUsage)
		return nil
	}
	if len(args) != 2 || args[0] != "summary" {
		fmt.Fprint(stderr, pcapUsage)
		return errUsage
	}
	s, err := summarize(args[1])
	if err != nil {
		return err
	}
	s.print(stdout, args[1])
	return nil
}

// packetSource is what pcapgo's pcap and pcapng readers have in common.
type packetSource interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	LinkType() layers.LinkType
}

// endpoint is one end of a flow.
type endpoint = netip.AddrPort

// flowKey names a flow regardless of direction: the smaller endpoint first.
type flowKey struct{ a, b endpoint }

func keyOf(src, dst endpoint) flowKey {
	if src.Compare(dst) < 0 {
		return flowKey{src, dst}
	}
	return flowKey{dst, src}
}

// tcpDir is what one direction of a TCP connection carried.
type tcpDir struct {
	started bool   // nextSeq is known
	nextSeq uint32 // the sequence number after the highest byte seen
	bytes   uint64 // distinct payload bytes (retransmissions count once)
	fin     int
	rst     int
}

// add accounts a segment of n payload bytes at seq.
func (d *tcpDir) add(seq uint32, n int) {
	if n == 0 {
		return
	}
	if !d.started {
		d.started, d.nextSeq = true, seq
	}
	if delta := int32(seq + uint32(n) - d.nextSeq); delta > 0 {
		d.bytes += uint64(delta)
		d.nextSeq += uint32(delta)
	}
}

// tcpConn is one TCP connection: client is the sender of the SYN, or of the
// first segment seen when the capture started mid-connection.
type tcpConn struct {
	client, server endpoint
	frames         int
	syn, synAck    bool
	ack            bool // the handshake's final ACK
	isn            uint32
	c2s, s2c       tcpDir
}

func (c *tcpConn) handshake() string {
	if c.syn && c.synAck && c.ack {
		return "complete (SYN, SYN-ACK, ACK)"
	}
	if !c.syn && !c.synAck {
		return "not seen (the capture starts mid-connection)"
	}
	var seen, missing []string
	for _, p := range []struct {
		ok   bool
		name string
	}{{c.syn, "SYN"}, {c.synAck, "SYN-ACK"}, {c.ack, "ACK"}} {
		if p.ok {
			seen = append(seen, p.name)
		} else {
			missing = append(missing, p.name)
		}
	}
	s := "incomplete: " + strings.Join(seen, ", ") + " seen, no " + strings.Join(missing, ", ")
	if c.s2c.rst > 0 && !c.synAck {
		s += " (refused with RST)"
	}
	return s
}

func (c *tcpConn) ending() string {
	var parts []string
	for _, d := range []struct {
		dir  *tcpDir
		name string
	}{{&c.c2s, "client->server"}, {&c.s2c, "server->client"}} {
		if d.dir.fin > 0 {
			parts = append(parts, "FIN "+d.name)
		}
	}
	for _, d := range []struct {
		dir  *tcpDir
		name string
	}{{&c.c2s, "client->server"}, {&c.s2c, "server->client"}} {
		if d.dir.rst > 0 {
			parts = append(parts, "RST "+d.name)
		}
	}
	if len(parts) == 0 {
		return "none (open at the end of the capture)"
	}
	return strings.Join(parts, ", ")
}

// udpFlow is the datagrams between two endpoints; a sent first.
type udpFlow struct {
	a, b               endpoint
	abDgrams, baDgrams int
	abBytes, baBytes   uint64
}

// summary is what `swrap pcap summary` reports.
type summary struct {
	linkType       layers.LinkType
	snaplen        uint32
	frames         int
	bytes          uint64 // captured bytes
	first, last    time.Time
	tcp            []*tcpConn
	udp            []*udpFlow
	icmp           map[string]int // "ICMPv4 EchoRequest" -> count
	other          int            // frames that are none of the above
	tcpIdx         map[flowKey]*tcpConn
	udpIdx         map[flowKey]*udpFlow
	truncatedFrame int // frames shorter than on the wire
	netemDropped   int // pcapng: frames on "A->B dropped" interfaces
}

// summarize reads a capture file and tallies its traffic.
func summarize(path string) (*summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	magic, _ := br.Peek(4)
	var src packetSource
	var ng *pcapgo.NgReader
	s := &summary{icmp: map[string]int{}, tcpIdx: map[flowKey]*tcpConn{}, udpIdx: map[flowKey]*udpFlow{}}
	if bytes.Equal(magic, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		r, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		src, ng = r, r
	} else {
		r, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: not a pcap or pcapng file: %v", path, err)
		}
		s.snaplen = r.Snaplen()
		src = r
	}
	s.linkType = src.LinkType()
	for {
		data, ci, err := src.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: frame %d: %v", path, s.frames+1, err)
		}
		if ng != nil {
			// A frame netem dropped never crossed: it is not traffic.
			if intf, err := ng.Interface(ci.InterfaceIndex); err == nil && strings.HasSuffix(intf.Name, " dropped") {
				s.netemDropped++
				continue
			}
		}
		s.frame(data, ci, src.LinkType())
	}
	return s, nil
}

// frame accounts one captured frame.
func (s *summary) frame(data []byte, ci gopacket.CaptureInfo, lt layers.LinkType) {
	s.frames++
	s.bytes += uint64(len(data))
	if s.frames == 1 || ci.Timestamp.Before(s.first) {
		s.first = ci.Timestamp
	}
	if ci.Timestamp.After(s.last) {
		s.last = ci.Timestamp
	}
	if ci.Length > len(data) {
		s.truncatedFrame++
	}
	pkt := gopacket.NewPacket(data, lt, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	var srcIP, dstIP netip.Addr
	ipPayload := -1 // the IP payload's length on the wire, if known
	switch ip := pkt.NetworkLayer().(type) {
	case *layers.IPv4:
		srcIP, _ = netip.AddrFromSlice(ip.SrcIP.To4())
		dstIP, _ = netip.AddrFromSlice(ip.DstIP.To4())
		if ip.Length != 0 {
			ipPayload = int(ip.Length) - int(ip.IHL)*4
		}
	case *layers.IPv6:
		srcIP, _ = netip.AddrFromSlice(ip.SrcIP)
		dstIP, _ = netip.AddrFromSlice(ip.DstIP)
		if ip.Length != 0 && ip.NextHeader != layers.IPProtocolIPv6HopByHop {
			ipPayload = int(ip.Length)
		}
	default:
		s.other++
		return
	}
	// ICMP first: an ICMP error quotes the packet it is about, whose
	// transport header must not count as traffic.
	if l := pkt.Layer(layers.LayerTypeICMPv4); l != nil {
		s.icmp["ICMPv4 "+l.(*layers.ICMPv4).TypeCode.String()]++
		return
	}
	if l := pkt.Layer(layers.LayerTypeICMPv6); l != nil {
		s.icmp["ICMPv6 "+l.(*layers.ICMPv6).TypeCode.String()]++
		return
	}
	switch l4 := pkt.TransportLayer().(type) {
	case *layers.TCP:
		n := len(l4.Payload)
		if ipPayload >= 0 && ipPayload-int(l4.DataOffset)*4 >= 0 {
			n = ipPayload - int(l4.DataOffset)*4
		}
		s.tcpSegment(netip.AddrPortFrom(srcIP, uint16(l4.SrcPort)), netip.AddrPortFrom(dstIP, uint16(l4.DstPort)), l4, n)
		return
	case *layers.UDP:
		n := len(l4.Payload)
		if l4.Length >= 8 {
			n = int(l4.Length) - 8
		}
		s.udpDatagram(netip.AddrPortFrom(srcIP, uint16(l4.SrcPort)), netip.AddrPortFrom(dstIP, uint16(l4.DstPort)), n)
		return
	}
	s.other++
}

// tcpSegment accounts one TCP segment of n payload bytes.
func (s *summary) tcpSegment(src, dst endpoint, t *layers.TCP, n int) {
	k := keyOf(src, dst)
	c := s.tcpIdx[k]
	if t.SYN && !t.ACK && (c == nil || (c.syn && c.isn != t.Seq) || (!c.syn && c.frames > 0)) {
		c = nil // a new connection, possibly reusing the 4-tuple
	}
	if c == nil {
		c = &tcpConn{client: src, server: dst}
		s.tcpIdx[k] = c
		s.tcp = append(s.tcp, c)
	}
	c.frames++
	fromClient := src == c.client
	d := &c.s2c
	if fromClient {
		d = &c.c2s
	}
	switch {
	case t.SYN && !t.ACK && fromClient:
		c.syn, c.isn = true, t.Seq
		d.started, d.nextSeq = true, t.Seq+1
	case t.SYN && t.ACK && !fromClient:
		c.synAck = true
		d.started, d.nextSeq = true, t.Seq+1
	case !t.SYN && t.ACK && fromClient && c.synAck:
		c.ack = true
	}
	d.add(t.Seq, n)
	if t.FIN {
		d.fin++
	}
	if t.RST {
		d.rst++
	}
}

// udpDatagram accounts one UDP datagram of n payload bytes.
func (s *summary) udpDatagram(src, dst endpoint, n int) {
	k := keyOf(src, dst)
	f := s.udpIdx[k]
	if f == nil {
		f = &udpFlow{a: src, b: dst}
		s.udpIdx[k] = f
		s.udp = append(s.udp, f)
	}
	if src == f.a {
		f.abDgrams++
		f.abBytes += uint64(n)
	} else {
		f.baDgrams++
		f.baBytes += uint64(n)
	}
}

// maxListed bounds how many connections or flows are listed one by one.
const maxListed = 50

// print writes the summary of the capture at path.
func (s *summary) print(w io.Writer, path string) {
	span := s.last.Sub(s.first)
	fmt.Fprintf(w, "%s: %d frames, %d bytes captured over %.3f s (link type %s", path, s.frames, s.bytes, span.Seconds(), s.linkType)
	if s.snaplen != 0 {
		fmt.Fprintf(w, ", snaplen %d", s.snaplen)
	}
	fmt.Fprintln(w, ")")
	if s.netemDropped > 0 {
		fmt.Fprintf(w, "%d frames that netem dropped (on the capture's drop interfaces) are not counted\n", s.netemDropped)
	}
	if s.truncatedFrame > 0 {
		fmt.Fprintf(w, "%d frames were cut short by the snaplen; byte counts come from the IP headers\n", s.truncatedFrame)
	}

	fmt.Fprintf(w, "\nTCP connections: %d\n", len(s.tcp))
	for i, c := range s.tcp {
		if i == maxListed {
			fmt.Fprintf(w, "  ... and %d more\n", len(s.tcp)-maxListed)
			break
		}
		fmt.Fprintf(w, "  %s -> %s (%d frames)\n", c.client, c.server, c.frames)
		fmt.Fprintf(w, "    handshake: %s\n", c.handshake())
		fmt.Fprintf(w, "    data:      %d bytes client->server, %d bytes server->client\n", c.c2s.bytes, c.s2c.bytes)
		fmt.Fprintf(w, "    ending:    %s\n", c.ending())
	}

	fmt.Fprintf(w, "\nUDP flows: %d\n", len(s.udp))
	for i, f := range s.udp {
		if i == maxListed {
			fmt.Fprintf(w, "  ... and %d more\n", len(s.udp)-maxListed)
			break
		}
		fmt.Fprintf(w, "  %s -> %s: %d datagrams (%d bytes); back: %d datagrams (%d bytes)\n",
			f.a, f.b, f.abDgrams, f.abBytes, f.baDgrams, f.baBytes)
	}

	n := 0
	for _, c := range s.icmp {
		n += c
	}
	fmt.Fprintf(w, "\nICMP messages: %d\n", n)
	kinds := make([]string, 0, len(s.icmp))
	for k := range s.icmp {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "  %s: %d\n", k, s.icmp[k])
	}
	if s.other > 0 {
		fmt.Fprintf(w, "\nOther frames: %d\n", s.other)
	}
	fmt.Fprintf(w, "\nopen it with: wireshark %s (or tshark -r %s)\n", path, path)
}
