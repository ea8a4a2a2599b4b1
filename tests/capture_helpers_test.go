package tests

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

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

// decodedFrame is one frame as tshark decodes it: field name to value.
type decodedFrame map[string]string

// decodedFields are the fields tsharkDecode extracts.
var decodedFields = []string{"frame.number", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "tcp.srcport", "tcp.dstport",
	"tcp.flags.syn", "tcp.flags.ack", "tcp.flags.fin", "tcp.flags.reset", "tcp.len", "udp.srcport", "udp.dstport",
	"ip.checksum.status", "tcp.checksum.status", "udp.checksum.status", "icmp.checksum.status"}

// tsharkDecode decodes a capture with tshark, checksum validation on,
// keeping the frames that match the display filter (all if empty).
func tsharkDecode(t *testing.T, tshark, file, filter string) []decodedFrame {
	t.Helper()
	args := []string{"-r", file, "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
		"-o", "udp.check_checksum:TRUE", "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"}
	if filter != "" {
		args = append(args, "-Y", filter)
	}
	for _, f := range decodedFields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command(tshark, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %v: %v\n%s", args, err, stderr.Bytes())
	}
	var frames []decodedFrame
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		vals := strings.Split(line, "\t")
		f := decodedFrame{}
		for i, name := range decodedFields {
			if i < len(vals) {
				f[name] = vals[i]
			}
		}
		frames = append(frames, f)
	}
	return frames
}

// flag reports whether a boolean field is set (tshark prints 1 or True).
func (f decodedFrame) flag(name string) bool { return f[name] == "1" || f[name] == "True" }

// badChecksum reports whether tshark found any checksum of the frame bad
// (checksum status 0 is "Bad", 1 "Good", 2 "Unverified").
func (f decodedFrame) badChecksum() bool {
	for _, k := range []string{"ip.checksum.status", "tcp.checksum.status", "udp.checksum.status", "icmp.checksum.status"} {
		if f[k] == "0" {
			return true
		}
	}
	return false
}

// pcapReadFile returns the original length of every frame of a capture.
func pcapReadFile(path string) ([]int, error) {
	f, err := pcap.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var n []int
	for _, r := range f.Records {
		n = append(n, r.Length)
	}
	return n, nil
}
