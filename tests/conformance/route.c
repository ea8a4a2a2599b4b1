/*
 * route.c - connect() to broadcast and multicast destinations.
 *
 * Linux refuses a TCP connect whose route is broadcast or multicast
 * (tcp_v4_connect: RTCF_BROADCAST|RTCF_MULTICAST; tcp_v6_connect: a
 * multicast address) with ENETUNREACH at once, blocking or not, and the
 * socket stays unconnected. A UDP connect to a broadcast address needs
 * SO_BROADCAST (ip4_datagram_connect: EACCES). Nothing here sends a packet:
 * every connect that could is refused before anything leaves, and the UDP
 * sockets never send.
 */
#include "conf.h"

#include <time.h>

#define PORT 9 /* discard; never reached */

static socklen_t in4(struct sockaddr_storage *ss, uint32_t host_order)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *s = (struct sockaddr_in *)ss;
	s->sin_family = AF_INET;
	s->sin_port = htons(PORT);
	s->sin_addr.s_addr = htonl(host_order);
	return sizeof(*s);
}

static socklen_t in6(struct sockaddr_storage *ss, const char *text, uint32_t scope)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(PORT);
	s->sin6_scope_id = scope;
	if (inet_pton(AF_INET6, text, &s->sin6_addr) != 1)
		die("inet_pton %s", text);
	return sizeof(*s);
}

/* tryconnect connects a new socket of fam/type (non-blocking if nb) to ss
 * and describes the result, the time it took (at once or not) and, for
 * TCP, SO_ERROR and whether the socket got a peer. */
static const char *tryconnect(int fam, int type, bool nb, bool bcast, const struct sockaddr_storage *ss,
			      socklen_t len)
{
	int fd = xsocket(fam, type | (nb ? SOCK_NONBLOCK : 0));
	if (bcast)
		setint(fd, SOL_SOCKET, SO_BROADCAST, 1);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int r = connect(fd, (const struct sockaddr *)ss, len);
	const char *rs = res(r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double dt = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	const char *gp = res(getpeername(fd, SA(&peer), &plen));
	char *b = ring();
	snprintf(b, 256, "%s %s so_error=%s getpeername=%s", rs, dt < 2 ? "at-once" : "SLOW", soerr(fd),
		 r == 0 ? "connected" : gp);
	close(fd);
	return b;
}

int main(void)
{
	conf_init("route");
	struct sockaddr_storage ss;
	socklen_t len;

	struct {
		const char *name;
		uint32_t addr;
	} v4[] = {
		{"limited_bcast", 0xffffffffu}, /* 255.255.255.255 */
		{"net_bcast", 0x7fffffffu},     /* 127.255.255.255: lo's, and the 127 plan's */
		{"mcast", 0xe0000001u},         /* 224.0.0.1 */
	};
	for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
		char name[64];
		len = in4(&ss, v4[i].addr);
		snprintf(name, sizeof(name), "tcp4_%s", v4[i].name);
		check(name, "%s", tryconnect(AF_INET, SOCK_STREAM, false, false, &ss, len));
		snprintf(name, sizeof(name), "tcp4_%s_nonblock", v4[i].name);
		check(name, "%s", tryconnect(AF_INET, SOCK_STREAM, true, false, &ss, len));
		snprintf(name, sizeof(name), "tcp4_%s_so_broadcast", v4[i].name);
		check(name, "%s", tryconnect(AF_INET, SOCK_STREAM, false, true, &ss, len));
		snprintf(name, sizeof(name), "udp4_%s", v4[i].name);
		check(name, "%s", tryconnect(AF_INET, SOCK_DGRAM, false, false, &ss, len));
		snprintf(name, sizeof(name), "udp4_%s_so_broadcast", v4[i].name);
		check(name, "%s", tryconnect(AF_INET, SOCK_DGRAM, false, true, &ss, len));
	}

	/* IPv6: multicast (ff02::1, with and without a scope) and the
	 * v4-mapped broadcast on a dual-stack socket. */
	len = in6(&ss, "ff02::1", 0);
	check("tcp6_mcast", "%s", tryconnect(AF_INET6, SOCK_STREAM, false, false, &ss, len));
	check("tcp6_mcast_nonblock", "%s", tryconnect(AF_INET6, SOCK_STREAM, true, false, &ss, len));
	len = in6(&ss, "ff02::1", 1);
	check("tcp6_mcast_scoped", "%s", tryconnect(AF_INET6, SOCK_STREAM, false, false, &ss, len));
	len = in6(&ss, "ff0e::1", 0);
	check("tcp6_mcast_global", "%s", tryconnect(AF_INET6, SOCK_STREAM, false, false, &ss, len));
	len = in6(&ss, "::ffff:255.255.255.255", 0);
	check("tcp6_mapped_bcast", "%s", tryconnect(AF_INET6, SOCK_STREAM, false, false, &ss, len));
	check("tcp6_mapped_bcast_nonblock", "%s", tryconnect(AF_INET6, SOCK_STREAM, true, false, &ss, len));
	len = in6(&ss, "::ffff:224.0.0.1", 0);
	check("tcp6_mapped_mcast", "%s", tryconnect(AF_INET6, SOCK_STREAM, false, false, &ss, len));
	len = in6(&ss, "::ffff:255.255.255.255", 0);
	check("udp6_mapped_bcast", "%s", tryconnect(AF_INET6, SOCK_DGRAM, false, false, &ss, len));
	check("udp6_mapped_bcast_so_broadcast", "%s", tryconnect(AF_INET6, SOCK_DGRAM, false, true, &ss, len));

	/* The refused socket is still a fresh one: it connects afterwards. */
	{
		int port;
		int l = tcp_listener(AF_INET, &port);
		int fd = xsocket(AF_INET, SOCK_STREAM);
		len = in4(&ss, 0xffffffffu);
		check("tcp4_bcast_refused", "%s", ok0(connect(fd, SA(&ss), len)));
		len = selfaddr(AF_INET, port, &ss);
		check("tcp4_bcast_then_connect", "%s", ok0(connect(fd, SA(&ss), len)));
		close(fd);
		close(l);
	}
	/* A connected socket says EISCONN before it looks at the address. */
	{
		int c, s;
		tcp_pair(AF_INET, &c, &s);
		len = in4(&ss, 0xffffffffu);
		check("tcp4_connected_bcast", "%s", ok0(connect(c, SA(&ss), len)));
		close(c);
		close(s);
	}

	conf_done();
}
