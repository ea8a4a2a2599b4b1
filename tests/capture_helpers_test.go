package tests

import (
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/swrap/swrap/pcap"
)

// capturedPacket is what tests need to know of one captured frame.
type capturedPacket struct {
	srcIP, dstIP     string
	srcPort, dstPort int
	syn, ack, fin    bool
	rst              bool
	payload          int
}

// readCapture decodes a capture file (LINKTYPE_RAW) with gopacket.
func readCapture(path string) ([]capturedPacket, error) {
	f, err := pcap.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []capturedPacket
	for _, r := range f.Records {
		var first gopacket.Decoder = layers.LayerTypeIPv4
		if len(r.Data) > 0 && r.Data[0]>>4 == 6 {
			first = layers.LayerTypeIPv6
		}
		p := gopacket.NewPacket(r.Data, first, gopacket.Default)
		var cp capturedPacket
		if ip, ok := p.NetworkLayer().(*layers.IPv4); ok {
			cp.srcIP, cp.dstIP = ip.SrcIP.String(), ip.DstIP.String()
		} else if ip, ok := p.NetworkLayer().(*layers.IPv6); ok {
			cp.srcIP, cp.dstIP = ip.SrcIP.String(), ip.DstIP.String()
		}
		if tcp, ok := p.TransportLayer().(*layers.TCP); ok {
			cp.srcPort, cp.dstPort = int(tcp.SrcPort), int(tcp.DstPort)
			cp.syn, cp.ack, cp.fin, cp.rst = tcp.SYN, tcp.ACK, tcp.FIN, tcp.RST
			cp.payload = len(tcp.Payload)
		} else if udp, ok := p.TransportLayer().(*layers.UDP); ok {
			cp.srcPort, cp.dstPort = int(udp.SrcPort), int(udp.DstPort)
			cp.payload = len(udp.Payload)
		}
		out = append(out, cp)
	}
	return out, nil
}
