// Package fabric is the interconnect between emulated hosts: it creates
// hosts on first use, gives each a receive socket in a directory of unix
// datagram sockets, and routes every frame by its destination IP address
// using the address plan.
//
// A frame to host N goes to N: handed to N's netstack in memory, since all
// hosts live in this process (tap.LocalPort), or, with Config.Sockets, as a
// datagram on N's socket, the way a stack in another process reaches it.
// Routing, conditions, capture and counters are the same either way. A
// broadcast (the plan's broadcast
// addresses, or multicast) goes to every other host, the sender's own stack
// delivering its copy itself; a frame to an address of the network that no
// host has is answered with an ICMP destination unreachable, so connects
// fail at once; anything else is dropped and counted. Every frame that
// crosses the fabric, and every ICMP error it makes up, is handed to the
// capture hook once.
//
// The netstack side of a host (package stack) and its NIC (package tap) do
// the packet work; this package only decides where packets go and owns the
// sockets and the directory.
//
// Network conditions (package netem: delay, loss, rate limits, partitions)
// are applied here, per link (links.go): the route function hands a frame
// whose link has conditions to a shaped Port, whose netem.Link decides its
// fate and sends and captures it when it crosses. Links without conditions
// take the plain Port, at the cost of one atomic load.
package fabric
