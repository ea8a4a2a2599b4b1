/*
 * socket.c - interposes socket() and socketpair().
 *
 * socket(AF_INET/AF_INET6, SOCK_STREAM/SOCK_DGRAM) becomes a SOCKET request:
 * the broker answers with the app end of a unix socket pair, which is
 * returned to the program as is, for the socket's whole life (never dup2()ed
 * over: epoll registrations must stay valid). Every other family or type
 * goes to libc, except NETLINK_ROUTE, emulated by netlink.c; the new fd's
 * cache entry is reset in any case.
 */
#include "swrap.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <string.h>

static int swrap_socket(int domain, int type, int protocol)
{
	int base = type & 0xf, tflags = type & ~0xf;

	if (domain == AF_NETLINK && protocol == NETLINK_ROUTE)
		return swrap_nl_socket(type); /* netlink.c */
	if ((domain != AF_INET && domain != AF_INET6) || (base != SOCK_STREAM && base != SOCK_DGRAM)) {
		int fd = swrap_libc.socket(domain, type, protocol);
		if (fd >= 0)
			swrap_fd_forget(fd);
		return fd;
	}
	if (tflags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return swrap_fail(EINVAL);
	swrap_config_complain();
	if (swrap_cfg.dir_err)
		return swrap_fail(swrap_cfg.dir_err);
	if (swrap_fd_wrapped_count() >= swrap_cfg.max_sockets) {
		SWRAP_LOG(SWRAP_LOG_WARN, "SOCKET_WRAPPER_MAX_SOCKETS=%d reached", swrap_cfg.max_sockets);
		return swrap_fail(ENFILE);
	}

	struct swrap_socket rq = { domain, base, protocol, swrap_cfg.iface };
	struct swrap_socket_rep rep = { 0 };
	int fd = -1;
	struct swrap_call c = {
		.op = SWRAP_OP_SOCKET,
		.body = &rq,
		.body_len = sizeof(rq),
		.rep = &rep,
		.rep_cap = sizeof(rep),
		.fd_out = &fd,
		.cloexec = (tflags & SOCK_CLOEXEC) != 0,
		.may_start = true,
	};
	int err = swrap_request(&c);
	if (err == 0 && (fd < 0 || c.rep_len < sizeof(rep)))
		err = EPROTO;
	if (err != 0) {
		if (fd >= 0)
			swrap_libc.close(fd);
		SWRAP_LOG(SWRAP_LOG_DEBUG, "socket(%d, %d, %d): %s", domain, type, protocol, strerror(err));
		return swrap_fail(err);
	}
	if (tflags & SOCK_NONBLOCK)
		swrap_libc.fcntl(fd, F_SETFL, O_RDWR | O_NONBLOCK); /* the broker makes it plain O_RDWR */
	uint32_t w = SWRAP_FD_WRAPPED | (domain == AF_INET6 ? SWF_V6 : 0);
	if (base == SOCK_DGRAM)
		w |= SWF_DGRAM;
	if (protocol == IPPROTO_ICMP || protocol == IPPROTO_ICMPV6)
		w |= SWF_ICMP;
	swrap_fd_set(fd, rep.sock, w);
	SWRAP_LOG(SWRAP_LOG_DEBUG, "socket(%s, %s) = fd %d, sock %llx",
		  domain == AF_INET ? "AF_INET" : "AF_INET6", base == SOCK_STREAM ? "STREAM" : "DGRAM",
		  fd, (unsigned long long)rep.sock);
	return fd;
}

SWRAP_EXPORT int socket(int domain, int type, int protocol)
{
	/* The environment decides for each new socket (init.c). */
	if (!swrap_config_refresh()) {
		int fd = swrap_libc.socket(domain, type, protocol);
		if (fd >= 0 && swrap_on())
			swrap_fd_mark_not_wrapped(fd); /* wrapping was on once: a stale entry may exist */
		return fd;
	}
	return swrap_socket(domain, type, protocol);
}

/* socketpair: AF_UNIX only in practice (AF_INET gives EOPNOTSUPP from the
 * kernel); we only forget stale entries for the two new fds. */
SWRAP_EXPORT int socketpair(int domain, int type, int protocol, int sv[2])
{
	swrap_init();
	int r = swrap_libc.socketpair(domain, type, protocol, sv);
	if (r == 0 && swrap_on()) {
		swrap_fd_forget(sv[0]);
		swrap_fd_forget(sv[1]);
	}
	return r;
}
