// Package tap is an emulated host's network card on the fabric: a gVisor
// stack.LinkEndpoint that sends and receives raw IP packets as unix
// datagrams, one packet per datagram, with no link-layer header.
//
// The endpoint does the socket I/O and nothing else. Where a frame goes is
// asked of a route function (the fabric's routing, see package fabric);
// the endpoint sends it on the Port(s) the route names, hands it once to the
// capture hook, or, for a destination in the network with no host behind
// it, answers the sending stack with an ICMP destination unreachable as a
// router would, so that connects fail fast instead of timing out.
//
// A Port is a destination: a unix datagram socket connected to another
// host's receive socket, or (LocalPort) another endpoint of this process,
// to whose netstack the frame is handed in memory, sharing its buffers.
//
// On sockets, TX batches with sendmmsg and RX with recvmmsg, both inside
// syscall.RawConn callbacks, so a full peer socket parks the sender in the
// Go netpoller (back-pressure) instead of dropping the frame, and no OS
// thread is blocked per NIC. Checksums are computed by netstack on TX
// whenever a frame may be captured (Config.NeedChecksums), so every
// captured frame carries valid checksums.
//
// With Config.AckDelay set, the endpoint delays and piggybacks TCP ACKs as
// Linux does, which netstack does not (see ack.go): a pure ACK of an
// interactive connection is held until the answer carries it, and is then
// never sent nor captured.
package tap
