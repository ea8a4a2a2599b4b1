/*
 * names.c - interposes getsockname() and getpeername().
 *
 * Both are answered by the broker (GETSOCKNAME / GETPEERNAME) and written
 * back kernel style: min(*addrlen, size) bytes copied, *addrlen set to the
 * real size.
 */
#include "swrap.h"

static int swrap_name(const struct swrap_sock *s, uint16_t op, struct sockaddr *sa, socklen_t *len)
{
	int err = swrap_addr_check_outlen(sa, len);
	if (err)
		return swrap_fail(err);
	struct swrap_addr a = { 0 };
	struct swrap_call c = { .op = op, .sock = s->id, .rep = &a, .rep_cap = sizeof(a) };
	err = swrap_request(&c);
	if (err == 0 && c.rep_len < sizeof(a))
		err = EPROTO;
	if (err)
		return swrap_fail(err);
	swrap_addr_out(&a, sa, len);
	return 0;
}

SWRAP_EXPORT int getsockname(int fd, __SOCKADDR_ARG addr, socklen_t *restrict len)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s)) {
		if (SWRAP_UNLIKELY(swrap_fd_netlink(fd, NULL, NULL)))
			return swrap_nl_name(fd, false, addr.__sockaddr__, len);
		return swrap_libc.getsockname(fd, addr.__sockaddr__, len);
	}
	return swrap_name(&s, SWRAP_OP_GETSOCKNAME, addr.__sockaddr__, len);
}

SWRAP_EXPORT int getpeername(int fd, __SOCKADDR_ARG addr, socklen_t *restrict len)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s)) {
		if (SWRAP_UNLIKELY(swrap_fd_netlink(fd, NULL, NULL)))
			return swrap_nl_name(fd, true, addr.__sockaddr__, len);
		return swrap_libc.getpeername(fd, addr.__sockaddr__, len);
	}
	return swrap_name(&s, SWRAP_OP_GETPEERNAME, addr.__sockaddr__, len);
}
