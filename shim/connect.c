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

/* fresh: will a CONNECT on this TCP socket start a connect (state NEW or
 * BOUND)? Only then does the broker take the filler: on a connected or
 * listening socket the bytes would be data, and while a connect is pending
 * the broker answers EALREADY. So ask it; connect() is not a hot path. */
static bool fresh(struct swrap_sock *s)
{
	/* Linux's SS_CONNECTING (the broker's too): once a connect said
	 * EINPROGRESS, the next connect() reports the outcome (0, or the
	 * pending error) instead of starting anything, even if the attempt
	 * is over. Filler sent then would never be discarded, and would
	 * reach the peer as data after a later connect. */
	if (s->word & (SWF_LISTENING | SWF_CONNECTED | SWF_CONNECTING | SWF_SS_CONNECTING))
		return false;
	return swrap_fd_stat(s) && !(s->word & (SWF_LISTENING | SWF_CONNECTED | SWF_CONNECTING));
}

/* fill: before a non-blocking connect, remember the app end's send buffer
 * size and fill it (filler.c); returns the bytes for swrap_connect.filler. */
static uint32_t fill(struct swrap_sock *s)
{
	int v = 0;
	socklen_t l = sizeof(v);
	if (swrap_libc.getsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &v, &l) != 0 || v <= 0)
		return 0;
	uint32_t n = swrap_filler_fill(s->fd);
	swrap_fd_set_aux(s->fd, (uint32_t)v);
	swrap_fd_flags(s->fd, SWF_FILLED, 0);
	s->word |= SWF_FILLED;
	return n;
}

static int swrap_connect(struct swrap_sock *s, const struct sockaddr *sa, socklen_t len)
{
	struct swrap_connect rq = { 0 };
	int err = swrap_addr_in(sa, len, swrap_sock_family(s), false,
				SWRAP_ADDR_CONNECT, &rq.addr);
	if (err)
		return swrap_fail(err);
	int fl = swrap_libc.fcntl(s->fd, F_GETFL);
	bool nonblock = fl >= 0 && (fl & O_NONBLOCK);
	if (nonblock)
		rq.flags |= SWRAP_CONNECT_NONBLOCK;
	bool tcp = !(s->word & SWF_DGRAM);
	/* A connect() after EINPROGRESS starts nothing (Linux's
	 * SS_CONNECTING): it reports how the attempt went, and its reply
	 * says whether the attempt is over, so the filler is put back after
	 * it, not after a STAT of its own (apr and ab poll for POLLOUT and
	 * then connect again: a round trip per connection). A failure is
	 * rare: there the STAT stays, to update the socket's state. */
	bool again = tcp && (s->word & SWF_SS_CONNECTING);
	if (tcp && !again)
		swrap_filler_done(s, false); /* an earlier connect may be over */
	if (tcp && nonblock && !(s->word & SWF_FILLED) && fresh(s))
		rq.filler = fill(s);

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
	if (rq.filler && err != EINPROGRESS)
		swrap_filler_done(s, true); /* decided at once; the broker discards it */
	if (again && err == 0)
		swrap_filler_done(s, true); /* connected: the broker discarded it */
	else if (again && err != EALREADY && err != EINPROGRESS && err != EINTR)
		swrap_filler_done(s, false); /* failed (or refused): the STAT also updates the state */
	if (!(s->word & SWF_DGRAM) && err != EALREADY)
		swrap_fd_flags(s->fd, err == EINPROGRESS ? SWF_SS_CONNECTING : 0,
			       err == EINPROGRESS ? 0 : SWF_SS_CONNECTING);
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
	if (!swrap_fd_get(fd, &s)) {
		if (SWRAP_UNLIKELY(swrap_fd_netlink(fd, NULL, NULL)))
			return swrap_nl_connect(fd, addr.__sockaddr__, len);
		return swrap_libc.connect(fd, addr.__sockaddr__, len);
	}
	return swrap_connect(&s, addr.__sockaddr__, len);
}

static int swrap_shutdown(struct swrap_sock *s, int how)
{
	if (how < SHUT_RD || how > SHUT_RDWR)
		return swrap_fail(EINVAL);
	struct swrap_shutdown rq = { .how = how };
	struct swrap_call c = { .op = SWRAP_OP_SHUTDOWN, .sock = s->id, .body = &rq, .body_len = sizeof(rq) };
	int err = swrap_request(&c);
	SWRAP_LOG(SWRAP_LOG_DEBUG, "fd %d shutdown(%d): %d", s->fd, how, err);
	if (err)
		return swrap_fail(err);
	if (!(s->word & SWF_DGRAM) && (how == SHUT_RD || how == SHUT_RDWR) &&
	    ((s->word & SWF_LISTENING) ||
	     (!(s->word & (SWF_CONNECTED | SWF_CONNECTING)) && swrap_fd_stat(s) &&
	      (s->word & SWF_LISTENING)))) {
		/* shutdown(SHUT_RD) closes a listener (inet_shutdown ->
		 * tcp_disconnect): accept() then fails with EINVAL. The real
		 * shutdown below makes the app end read EOF, so remember it
		 * here rather than let accept see a hang-up (ECONNABORTED). */
		swrap_fd_flags(s->fd, SWF_SHUT_RD, SWF_LISTENING);
	}
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
