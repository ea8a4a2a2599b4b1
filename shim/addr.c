/*
 * addr.c - socket addresses: a program's sockaddr to struct swrap_addr with
 * the checks Linux makes (and in the order it makes them), the way back in
 * the kernel's style, and the emulated network's boundaries.
 *
 * Interposes nothing.
 */
#include "swrap.h"

#include <string.h>

#define SIN6_LEN_RFC2133 24 /* sockaddr_in6 without sin6_scope_id */

static void from_in(const struct sockaddr_in *in, struct swrap_addr *out)
{
	memset(out, 0, sizeof(*out));
	out->family = AF_INET;
	out->port = ntohs(in->sin_port);
	memcpy(out->addr, &in->sin_addr, 4);
}

static void from_in6(const struct sockaddr_in6 *in6, socklen_t len, struct swrap_addr *out)
{
	memset(out, 0, sizeof(*out));
	out->family = AF_INET6;
	out->port = ntohs(in6->sin6_port);
	memcpy(out->addr, &in6->sin6_addr, 16);
	if (len >= sizeof(struct sockaddr_in6))
		out->scope_id = in6->sin6_scope_id;
}

static int addr_in(const struct sockaddr *sa, socklen_t len, int sfam, bool need_port, enum swrap_addr_use use,
		   struct swrap_addr *out)
{
	struct sockaddr_storage ss;

	memset(out, 0, sizeof(*out));
	/* move_addr_to_kernel(): size first, then the copy. */
	if ((int)len < 0 || len > sizeof(ss))
		return EINVAL;
	if (len > 0 && !sa)
		return EFAULT;
	memset(&ss, 0, sizeof(ss));
	if (len > 0)
		memcpy(&ss, sa, len);
	int fam = len >= sizeof(sa_family_t) ? ss.ss_family : -1;

	switch (use) {
	case SWRAP_ADDR_BIND:
		if (sfam == AF_INET) {
			const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
			if (len < sizeof(struct sockaddr_in))
				return EINVAL;
			/* inet_bind tolerates AF_UNSPEC with INADDR_ANY */
			if (fam != AF_INET && !(fam == AF_UNSPEC && in->sin_addr.s_addr == htonl(INADDR_ANY)))
				return EAFNOSUPPORT;
			from_in(in, out);
			return 0;
		}
		if (len < SIN6_LEN_RFC2133)
			return EINVAL;
		if (fam != AF_INET6)
			return EAFNOSUPPORT;
		from_in6((const struct sockaddr_in6 *)&ss, len, out);
		return 0;

	case SWRAP_ADDR_CONNECT:
		if (len < sizeof(sa_family_t))
			return EINVAL;
		if (fam == AF_UNSPEC)
			return 0; /* disconnect */
		if (fam == AF_INET) {
			/* On an AF_INET6 socket the broker decides (dual stack
			 * for UDP, socket_wrapper's v6->v4 quirk for TCP). */
			if (len < sizeof(struct sockaddr_in))
				return EINVAL;
			from_in((const struct sockaddr_in *)&ss, out);
			return 0;
		}
		if (sfam == AF_INET) {
			if (len < sizeof(struct sockaddr_in))
				return EINVAL;
			return EAFNOSUPPORT;
		}
		if (len < SIN6_LEN_RFC2133)
			return EINVAL;
		if (fam != AF_INET6)
			return EAFNOSUPPORT;
		from_in6((const struct sockaddr_in6 *)&ss, len, out);
		return 0;

	case SWRAP_ADDR_SENDTO:
		if (len == 0)
			return 0; /* no address */
		if (sfam == AF_INET) {
			/* udp_sendmsg: AF_UNSPEC is read as AF_INET */
			if (len < sizeof(struct sockaddr_in))
				return EINVAL;
			if (fam != AF_INET && fam != AF_UNSPEC)
				return EAFNOSUPPORT;
			from_in((const struct sockaddr_in *)&ss, out);
		} else {
			if (len < sizeof(sa_family_t))
				return EINVAL;
			if (fam == AF_UNSPEC)
				return 0;
			if (fam == AF_INET) {
				if (len < sizeof(struct sockaddr_in))
					return EINVAL;
				from_in((const struct sockaddr_in *)&ss, out);
			} else if (fam == AF_INET6) {
				if (len < SIN6_LEN_RFC2133)
					return EINVAL;
				from_in6((const struct sockaddr_in6 *)&ss, len, out);
			} else {
				return EINVAL;
			}
		}
		if (out->port == 0 && need_port)
			return EINVAL; /* udp_sendmsg: no destination port (ping: none) */
		return 0;
	}
	return EINVAL;
}

int swrap_addr_in(const struct sockaddr *sa, socklen_t len, int sfam, bool need_port,
		  enum swrap_addr_use use, struct swrap_addr *out)
{
	int err = addr_in(sa, len, sfam, need_port, use, out);
	/* a resolv.conf nameserver is the broker's DNS server (resolve.c) */
	if (err == 0 && use != SWRAP_ADDR_BIND)
		swrap_dns_redirect(out);
	return err;
}

void swrap_addr_out(const struct swrap_addr *a, struct sockaddr *sa, socklen_t *len)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} u;
	socklen_t size;

	memset(&u, 0, sizeof(u));
	if (a->family == AF_INET) {
		u.in.sin_family = AF_INET;
		u.in.sin_port = htons(a->port);
		memcpy(&u.in.sin_addr, a->addr, 4);
		size = sizeof(u.in);
	} else if (a->family == AF_INET6) {
		u.in6.sin6_family = AF_INET6;
		u.in6.sin6_port = htons(a->port);
		memcpy(&u.in6.sin6_addr, a->addr, 16);
		u.in6.sin6_scope_id = a->scope_id;
		size = sizeof(u.in6);
	} else {
		u.sa.sa_family = AF_UNSPEC;
		size = sizeof(sa_family_t);
	}
	if (!len)
		return;
	socklen_t n = *len < size ? *len : size;
	if (sa && n > 0)
		memcpy(sa, &u, n);
	*len = size;
}

int swrap_addr_check_outlen(const struct sockaddr *sa, const socklen_t *len)
{
	if (!len)
		return EFAULT;
	if ((int)*len < 0)
		return EINVAL;
	if (!sa && *len > 0)
		return EFAULT;
	return 0;
}

/* v4 returns the IPv4 address of a (plain or v4-mapped), or false. */
static bool v4(const struct swrap_addr *a, uint8_t out[4])
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (a->family == AF_INET) {
		memcpy(out, a->addr, 4);
		return true;
	}
	if (a->family == AF_INET6 && memcmp(a->addr, mapped, 12) == 0) {
		memcpy(out, a->addr + 12, 4);
		return true;
	}
	return false;
}

bool swrap_addr_is_broadcast(const struct swrap_addr *a)
{
	uint8_t b[4];
	if (!v4(a, b))
		return false;
	return b[1] == 255 && b[2] == 255 && b[3] == 255 && (b[0] == 255 || b[0] == swrap_cfg.net4);
}

bool swrap_addr_in_network(const struct swrap_addr *a)
{
	/* fd00::5357:5f00/120 */
	static const uint8_t net6[15] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53, 0x57, 0x5f };
	uint8_t b[4];
	if (v4(a, b))
		return b[0] == swrap_cfg.net4 || swrap_addr_is_broadcast(a);
	if (a->family == AF_INET6)
		return memcmp(a->addr, net6, 15) == 0;
	return false;
}
