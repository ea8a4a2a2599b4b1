// Package pcap writes swrap's captures: every frame that crosses the
// fabric, with LINKTYPE_RAW (101), so IPv4 and IPv6 frames mix and
// Wireshark/tshark open them directly. There are four kinds of Writer:
//
//   - Open: a classic pcap file, as socket_wrapper wrote
//     (SOCKET_WRAPPER_PCAP_FILE);
//   - OpenFile: a pcapng file with one Interface Description Block per
//     host, named for it (host10) and described with its addresses, added
//     when the host's first frame comes; every frame on its sender's
//     interface; what netem did to a frame (Note) as a packet comment, and
//     the frames it dropped on an interface of their own
//     ("host10->host11 dropped");
//   - OpenDir: one such pcapng file per host, each frame in its sender's
//     and its receiver's file;
//   - NewStream: the same pcapng, live, to a reader, with a small queue:
//     a reader that falls behind loses frames, and the stream says so.
//
// No Writer ever blocks the packet path: a capture that stalls on disk or
// on its reader must not stall TCP (spurious RTOs were measured when it
// did), so frames are copied into a bounded in-memory queue of reused
// chunks (no allocation per frame) and written by one goroutine; when the
// queue is full the frame is dropped and counted instead.
//
// The writer goroutine is woken by the first frame after a quiet spell and
// by a chunk that fills (a live stream's: by every frame); in between it
// looks at the queue every 50 ms, so a busy packet path pays no wake-up
// per frame. A classic file's queue holds its
// records as the file does, and whole chunks are written to it; pcapng
// frames are written with gopacket's NgWriter (packet comments,
// epb_dropcount and interface statistics are its own) over a
// bufio.Writer. NgWriter has no if_IPv4addr/if_IPv6addr options,
// so a host's addresses are in its if_description. ReadFile reads classic
// files back (tests, tools). The package knows nothing about netstack or
// the fabric: it records byte slices with timestamps, and a Namer tells
// it which host an address is.
package pcap
