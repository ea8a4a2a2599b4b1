/*
 * close_dup.c - interposes close, __close_nocancel, close_range, closefrom,
 * dup, dup2, dup3, fcntl and fcntl64 (F_DUPFD, F_DUPFD_CLOEXEC).
 *
 * The broker sees a close as the hang-up of its end when the last process
 * holding the socket closes it, which gives dup, fork and fd passing their
 * kernel semantics. It sees it a moment later, though: so close() of a
 * bound UDP socket or a listener also tells the broker (CLOSED) and returns
 * once the port is free, as Linux's does; a datagram or SYN sent to the
 * port next is refused. Otherwise these calls only keep the fd cache right
 * (forget closed numbers, copy entries to duplicates) and keep the program
 * from closing or overwriting our control connections unnoticed.
 */
#include "swrap.h"

#include <fcntl.h>

/* closing notes, before fd is closed, whether its close must be settled
 * with the broker: a listener's port, or that of a UDP (or ICMP) socket
 * the program bound. An autobound one (a client's: connect or sendto
 * without bind, a DNS lookup's) is not worth the round trip: nobody is
 * told its port to reach it after the close. */
static bool closing(int fd, struct swrap_sock *s)
{
	swrap_broker_fd_closing(fd);
	if (!swrap_fd_known(fd, s)) {
		s->id = swrap_fd_id(fd); /* for closed(): a netlink fd's, or 0 */
		return false;
	}
	return (s->word & SWF_LISTENING) || (s->word & (SWF_DGRAM | SWF_BOUND)) == (SWF_DGRAM | SWF_BOUND);
}

/* closed forgets fd once the real close returned r (errno e) and, for a
 * socket closing() picked, waits for the broker to free its port (at once
 * if another process still holds the socket). errno is e on return. */
static void closed(int fd, int r, int e, bool settle, const struct swrap_sock *s)
{
	if (r == 0 || e != EBADF) {
		swrap_fd_forget_closed(fd, s->id); /* the number is free even after EINTR */
		if (settle) {
			struct swrap_call c = { .op = SWRAP_OP_CLOSED, .sock = s->id };
			swrap_request(&c); /* an error (broker gone): nothing to free */
		}
	}
	errno = e;
}

int swrap_close(int fd)
{
	/* A setsockopt not waited for (TCP_CORK on) may reach the broker
	 * after the close, which it sees on the data socket: the broker
	 * then flushes the cork itself (broker/sockopt.go), so a close
	 * need not wait for it. */
	struct swrap_sock s;
	bool settle = closing(fd, &s);
	int r = swrap_libc.close(fd);
	closed(fd, r, errno, settle, &s);
	return r;
}

SWRAP_EXPORT int close(int fd)
{
	if (!swrap_on())
		return swrap_libc.close(fd);
	return swrap_close(fd);
}

int __close_nocancel(int fd);
SWRAP_EXPORT int __close_nocancel(int fd)
{
	if (!swrap_on())
		return swrap_libc.close_nocancel(fd);
	struct swrap_sock s;
	bool settle = closing(fd, &s);
	int r = swrap_libc.close_nocancel(fd);
	closed(fd, r, errno, settle, &s);
	return r;
}

int swrap_close_range(unsigned int first, unsigned int last, int flags)
{
	if (!(flags & CLOSE_RANGE_CLOEXEC) && first <= last)
		swrap_broker_fds_closing(first, last);
	int r = swrap_libc.close_range ? swrap_libc.close_range(first, last, flags)
				       : (int)swrap_libc.syscall(436 /* SYS_close_range */, (long)first,
								 (long)last, (long)flags);
	if (r == 0 && !(flags & CLOSE_RANGE_CLOEXEC))
		swrap_fd_forget_range(first, last);
	return r;
}

SWRAP_EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	if (!swrap_on())
		return swrap_libc.close_range(first, last, flags);
	return swrap_close_range(first, last, flags);
}

SWRAP_EXPORT void closefrom(int lowfd)
{
	if (!swrap_on()) {
		swrap_libc.closefrom(lowfd);
		return;
	}
	if (lowfd < 0)
		lowfd = 0;
	swrap_broker_fds_closing((unsigned int)lowfd, ~0U);
	swrap_libc.closefrom(lowfd);
	swrap_fd_forget_range((unsigned int)lowfd, ~0U);
}

SWRAP_EXPORT int dup(int fd)
{
	if (!swrap_on())
		return swrap_libc.dup(fd);
	int nfd = swrap_libc.dup(fd);
	if (nfd >= 0)
		swrap_fd_copy(fd, nfd);
	return nfd;
}

SWRAP_EXPORT int dup2(int fd, int nfd)
{
	if (!swrap_on())
		return swrap_libc.dup2(fd, nfd);
	if (fd != nfd)
		swrap_broker_fd_closing(nfd);
	int r = swrap_libc.dup2(fd, nfd);
	if (r >= 0 && fd != nfd)
		swrap_fd_copy(fd, nfd);
	return r;
}

SWRAP_EXPORT int dup3(int fd, int nfd, int flags)
{
	if (!swrap_on())
		return swrap_libc.dup3(fd, nfd, flags);
	if (fd != nfd)
		swrap_broker_fd_closing(nfd);
	int r = swrap_libc.dup3(fd, nfd, flags);
	if (r >= 0)
		swrap_fd_copy(fd, nfd);
	return r;
}

/* fcntl's third argument is an int or a pointer; it is passed on as a
 * pointer-sized value, which carries either on every Linux ABI. */
static int swrap_fcntl(int (*real)(int, int, ...), int fd, int cmd, void *arg)
{
	if (!swrap_on())
		return real(fd, cmd, arg);
	int r = real(fd, cmd, arg);
	if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
		swrap_fd_copy(fd, r);
	return r;
}

SWRAP_EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	swrap_init();
	return swrap_fcntl(swrap_libc.fcntl, fd, cmd, arg);
}

SWRAP_EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	swrap_init();
	return swrap_fcntl(swrap_libc.fcntl64, fd, cmd, arg);
}
