/*
 * connect.c - interposes connect() and shutdown().
 *
 * connect is a CONNECT request. Non-blocking (O_NONBLOCK on the fd) the
 * broker answers EINPROGRESS at once and the program learns the outcome
 * from poll + getsockopt(SO_ERROR), which the broker answers once the
 * attempt is over. Blocking, the reply comes when the connection is made
 * or has failed; only this thread's control connection waits. A signal
 * interrupts a blocking connect with EINTR, as on Linux (the attempt goes
 * on; the connection whose reply is still owed is dropped).
 *
 * shutdown is a SHUTDOWN request (validation, bookkeeping), then the real
 * shutdown() on the app end, which is what the broker acts upon (FIN after
 * the bytes already written).
 */
#include "swrap.h"

#include <fcntl.h>

static int swrap_connect(const struct swrap_sock *s, const struct sockaddr *sa, socklen_t len)
{
	struct swrap_connect rq = { 0 };
	int err = swrap_addr_in(sa, len, swrap_sock_family(s), s->word & SWF_DGRAM,
				SWRAP_ADDR_CONNECT, &rq.addr);
	if (err)
		return swrap_fail(err);
	int fl = swrap_libc.fcntl(s->fd, F_GETFL);
	bool nonblock = fl >= 0 && (fl & O_NONBLOCK);
	if (nonblock)
		rq.flags |= SWRAP_CONNECT_NONBLOCK;

	struct swrap_call c = {
		.op = SWRAP_OP_CONNECT,
		.sock = s->id,
		.body = &rq,
		.body_len = sizeof(rq),
		.interruptible = !nonblock,
	};
	err = swrap_request(&c);
	SWRAP_LOG(SWRAP_LOG_DEBUG, "fd %d connect(family %u port %u)%s: %d", s->fd, rq.addr.family,
		  rq.addr.port, nonblock ? " nonblocking" : "", err);
	switch (err) {
	case 0:
		if (rq.addr.family == 0)
			swrap_fd_flags(s->fd, 0, SWF_CONNECTED | SWF_CONNECTING | SWF_SHUT_RD | SWF_SHUT_WR);
		else
			swrap_fd_flags(s->fd, SWF_CONNECTED, SWF_CONNECTING | SWF_EOF_SEEN);
		return 0;
	case EINPROGRESS:
	case EALREADY:
		swrap_fd_flags(s->fd, SWF_CONNECTING, 0);
		break;
	}
	return swrap_fail(err);
}

SWRAP_EXPORT int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s))
		return swrap_libc.connect(fd, addr.__sockaddr__, len);
	return swrap_connect(&s, addr.__sockaddr__, len);
}

static int swrap_shutdown(const struct swrap_sock *s, int how)
{
	if (how < SHUT_RD || how > SHUT_RDWR)
		return swrap_fail(EINVAL);
	struct swrap_shutdown rq = { .how = how };
	struct swrap_call c = { .op = SWRAP_OP_SHUTDOWN, .sock = s->id, .body = &rq, .body_len = sizeof(rq) };
	int err = swrap_request(&c);
	SWRAP_LOG(SWRAP_LOG_DEBUG, "fd %d shutdown(%d): %d", s->fd, how, err);
	if (err)
		return swrap_fail(err);
	if (s->word & SWF_DGRAM) {
		/* UDP has nothing to send on shutdown; Linux only stops
		 * sends (EPIPE) or lets recv return 0. Kept in the shim: a
		 * real shutdown of the app end would read as a hang-up. */
		uint32_t f = (how == SHUT_RD ? SWF_SHUT_RD : how == SHUT_WR ? SWF_SHUT_WR
			      : SWF_SHUT_RD | SWF_SHUT_WR);
		swrap_fd_flags(s->fd, f, 0);
		return 0;
	}
	return swrap_libc.shutdown(s->fd, how);
}

SWRAP_EXPORT int shutdown(int fd, int how)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s))
		return swrap_libc.shutdown(fd, how);
	return swrap_shutdown(&s, how);
}
