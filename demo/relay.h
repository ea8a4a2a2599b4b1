/* relay.h - what the demo's server and client share. */
#ifndef DEMO_RELAY_H
#define DEMO_RELAY_H

#include <netdb.h>

/* demo_addr resolves a numeric ADDR and PORT (IPv4 or IPv6), exiting with a
 * message naming prog when they are not valid. */
struct addrinfo *demo_addr(const char *prog, const char *addr, const char *port, int passive);

/* demo_relay copies stdin to sock and sock to stdout until both have ended:
 * at the end of stdin it shuts down sock's sending side (the peer sees EOF),
 * and it returns when the peer has shut down its own side too. Returns the
 * exit status: 0, or 1 after a message naming prog. */
int demo_relay(const char *prog, int sock);

#endif
