// Package pcap writes swrap's capture file: every frame that crosses the
// fabric, as a classic pcap with LINKTYPE_RAW (101), so IPv4 and IPv6 frames
// mix in one file and Wireshark/tshark open it directly.
//
// The Writer is the only writer of the file. Frame never blocks the packet
// path: a capture that stalls on disk must not stall TCP (spurious RTOs were
// measured when it did), so frames are copied into a bounded in-memory queue
// and written by one goroutine; when the queue is full the frame is dropped
// and counted instead.
//
// Frames are written with gopacket's pcapgo over a 1 MiB bufio.Writer.
// ReadFile reads the files back (tests, tools). The package knows nothing about netstack or the
// fabric: it records byte slices with timestamps.
package pcap
