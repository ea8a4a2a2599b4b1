// Package broker holds swrap-broker's sessions: the control server that
// wrapped programs talk to (docs/protocol.md), and one session per wrapped
// socket joining the program's unix socket to a gVisor endpoint on the
// emulated host's netstack.
//
// The outbound path of one byte, from a wrapped program's write() to the
// capture file:
//
//  1. The program writes to its fd: the app end of a unix socket pair
//     (made in sock.go, handed over by SOCKET or with an accept record).
//  2. tcpSession.pumpOut (tcp.go) reads it from the broker end and writes it
//     to the host's tcpip.Endpoint; netstack segments it into IP packets.
//  3. netstack hands the packets to the host's link endpoint (tap/): at
//     once on the writing goroutine when they are for hosts of this
//     process, else on its fifo qdisc's goroutine (tap.QDisc); the
//     fabric's route function (fabric/) names the
//     destination host's Port, the endpoint hands the frame once to the
//     capture (pcap/, via Broker.captureFrame) and then to that host's
//     netstack: in memory (tap.LocalPort, the default) or as a datagram on
//     the host's unix socket (--fabric-sockets).
//  4. On the receiving host, netstack delivers the data to the peer's
//     endpoint, and tcpSession.pumpIn writes it to that program's unix socket.
//
// Both pumps of a TCP session park after 250 ms without bytes and restart
// on readiness (park.go): an idle connection holds no goroutine.
//
// The package does no packet work itself, and holds no state in the
// programs: everything about a socket lives in its sock here.
package broker
