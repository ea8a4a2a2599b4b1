// Package stack builds one emulated host: a gVisor netstack with a single
// NIC on the fabric (a tap.Endpoint), the host's IPv4 and IPv6 addresses
// from the address plan, and the protocol settings swrap relies on.
//
// Every netstack option swrap sets lives here, each with its reason, so
// that hosts behave alike wherever they are created. The package does not
// route between hosts or open sockets; that is package fabric's job.
package stack
