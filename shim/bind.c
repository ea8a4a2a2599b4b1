/*
 * bind.c - interposes bind() and bindresvport().
 *
 * bind on a wrapped socket is a BIND request; the broker checks the address
 * against the address plan (EADDRNOTAVAIL for an address of no emulated
 * host; another host's address moves the socket to that host) and for
 * conflicts (EADDRINUSE). bindresvport() picks a free port in 600..1023,
 * and unlike glibc's also works on AF_INET6 sockets (as socket_wrapper's).
 */
#include "swrap.h"

#include <string.h>
#include <unistd.h>

static int swrap_bind(const struct swrap_sock *s, const struct sockaddr *sa, socklen_t len)
{
	struct swrap_addr a;
	int err = swrap_addr_in(sa, len, swrap_sock_family(s), false,
				SWRAP_ADDR_BIND, &a);
	if (err)
		return swrap_fail(err);
	struct swrap_call c = { .op = SWRAP_OP_BIND, .sock = s->id, .body = &a, .body_len = sizeof(a) };
	err = swrap_request(&c);
	SWRAP_LOG(SWRAP_LOG_DEBUG, "fd %d bind port %u: %d", s->fd, a.port, err);
	if (err)
		return swrap_fail(err);
	swrap_fd_flags(s->fd, SWF_BOUND, 0);
	return 0;
}

SWRAP_EXPORT int bind(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s)) {
		if (SWRAP_UNLIKELY(swrap_fd_netlink(fd, NULL, NULL)))
			return swrap_nl_bind(fd, addr.__sockaddr__, len);
		return swrap_libc.bind(fd, addr.__sockaddr__, len);
	}
	return swrap_bind(&s, addr.__sockaddr__, len);
}

#define RESV_LO 600
#define RESV_HI 1023

static int swrap_bindresvport(const struct swrap_sock *s, struct sockaddr_in *sin)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} u;
	socklen_t len;
	int fam = swrap_sock_family(s);

	memset(&u, 0, sizeof(u));
	if (sin && sin->sin_family == AF_INET6) {
		memcpy(&u.in6, sin, sizeof(u.in6));
		len = sizeof(u.in6);
	} else if (sin) {
		if (sin->sin_family != AF_INET)
			return swrap_fail(EPFNOSUPPORT); /* as glibc */
		u.in = *sin;
		len = sizeof(u.in);
	} else if (fam == AF_INET6) {
		u.in6.sin6_family = AF_INET6;
		len = sizeof(u.in6);
	} else {
		u.in.sin_family = AF_INET;
		len = sizeof(u.in);
	}

	/* Start at a pid-seeded port so that parallel processes spread out. */
	int span = RESV_HI - RESV_LO + 1, start = (int)(getpid() % span), err = EADDRINUSE;
	for (int i = 0; i < span; i++) {
		uint16_t port = htons((uint16_t)(RESV_LO + (start + i) % span));
		if (u.sa.sa_family == AF_INET6)
			u.in6.sin6_port = port;
		else
			u.in.sin_port = port;
		if (swrap_bind(s, &u.sa, len) == 0) {
			if (sin && sin->sin_family == AF_INET)
				sin->sin_port = port;
			else if (sin)
				((struct sockaddr_in6 *)sin)->sin6_port = port;
			return 0;
		}
		err = errno;
		if (err != EADDRINUSE && err != EACCES)
			break;
	}
	return swrap_fail(err);
}

SWRAP_EXPORT int bindresvport(int fd, struct sockaddr_in *sin)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s))
		return swrap_libc.bindresvport ? swrap_libc.bindresvport(fd, sin) : swrap_fail(ENOSYS);
	return swrap_bindresvport(&s, sin);
}
