/*
 * stream.c - TCP data on a wrapped fd. Interposes nothing itself; the
 * entry points are in sendrecv.c.
 *
 * A connected wrapped TCP socket is a unix stream socket whose peer is the
 * broker, so data goes to the real calls untouched (MSG_PEEK, MSG_WAITALL,
 * MSG_DONTWAIT, O_NONBLOCK are native). What differs from a unix socket:
 *  - EOF may hide an error (a peer's RST): after a read of 0 we ask SO_ERROR
 *    once, and return the error instead of EOF if there is one. A clean
 *    FIN needs no question: the broker then shuts only its sending side,
 *    and the app end does not report POLLHUP;
 *  - writes never raise SIGPIPE in the kernel (MSG_NOSIGNAL): on EPIPE we ask
 *    SO_ERROR; a pending error is returned without a signal, as Linux does
 *    for ECONNRESET; otherwise we raise SIGPIPE unless MSG_NOSIGNAL. When
 *    SIGPIPE is ignored (signal.c) the kernel's signal cannot be seen, and
 *    write()/writev() are issued as the program made them (then an EPIPE
 *    still becomes the pending error);
 *  - in a seccomp sandbox (sandbox.c) read, readv, write and writev are the
 *    program's own system calls and nothing else: no STAT, no SO_ERROR,
 *    no filler, no raise(); an EOF is 0 and an EPIPE is what the kernel
 *    said (with its SIGPIPE). readv is always issued as itself;
 *  - on a socket that is not connected, reads fail with ENOTCONN and writes
 *    with EPIPE (+SIGPIPE), as TCP does, rather than touching the app end
 *    (which for a listener carries accept records);
 *  - recvfrom/recvmsg report no address (msg_namelen 0), like Linux TCP;
 *  - MSG_OOB receives fail with EINVAL: the broker passes no urgent data;
 *  - a pending connect filler (filler.c) is taken back on the first send
 *    or write after the connect is over.
 */
#include "swrap.h"

#include <poll.h>
#include <string.h>

/* connected: may data flow? Trusts a positive cache flag, asks STAT
 * otherwise (listen/connect may have happened via another fd or process). */
static bool connected(struct swrap_sock *s)
{
	if (s->word & (SWF_CONNECTED | SWF_CONNECTING))
		return true;
	if (swrap_sandboxed())
		return true; /* no question to the broker: the real call tells */
	if (!swrap_fd_stat(s))
		return true; /* broker gone: the real call reports EOF/EPIPE */
	return (s->word & (SWF_CONNECTED | SWF_CONNECTING)) != 0;
}

/* eof: a read returned 0 for a non-empty buffer. */
static ssize_t eof(struct swrap_sock *s)
{
	if (s->word & SWF_EOF_SEEN || swrap_sandboxed())
		return 0;
	/* The broker reports an error (reset, timeout) by shutting both
	 * directions of its end, which the app end shows as POLLHUP; so does
	 * a broker that is gone, or this program's own SHUT_WR. Without it the
	 * EOF is the peer's FIN, and Linux reports 0 then even if an RST
	 * follows: no need for a round trip to the broker. */
	struct pollfd p = { .fd = s->fd, .events = POLLIN };
	int err = 0;
	if (poll(&p, 1, 0) != 1 || (p.revents & (POLLHUP | POLLERR)))
		err = swrap_so_error(s);
	swrap_fd_flags(s->fd, SWF_EOF_SEEN, 0);
	s->word |= SWF_EOF_SEEN;
	SWRAP_LOG(SWRAP_LOG_DEBUG, "fd %d EOF, SO_ERROR %d", s->fd, err);
	return err ? swrap_fail(err) : 0;
}

/* epipe: a write failed with EPIPE. */
static ssize_t epipe(struct swrap_sock *s, int flags)
{
	int err = swrap_so_error(s);
	SWRAP_LOG(SWRAP_LOG_DEBUG, "fd %d EPIPE, SO_ERROR %d", s->fd, err);
	if (err && err != EPIPE)
		return swrap_fail(err);
	if (!(flags & MSG_NOSIGNAL))
		raise(SIGPIPE);
	return swrap_fail(EPIPE);
}

static ssize_t not_connected_write(int flags)
{
	if (!(flags & MSG_NOSIGNAL))
		raise(SIGPIPE);
	return swrap_fail(EPIPE);
}

/* The flags a unix stream understands the way TCP means them. */
#define SEND_FLAGS (MSG_DONTWAIT | MSG_OOB)
#define RECV_FLAGS (MSG_DONTWAIT | MSG_PEEK | MSG_WAITALL | MSG_TRUNC | MSG_CMSG_CLOEXEC)

ssize_t swrap_tcp_send(struct swrap_sock *s, const struct msghdr *msg, int flags)
{
	swrap_filler_done(s, false);
	if (!connected(s))
		return not_connected_write(flags);
	/* Linux TCP ignores a destination on a connected socket; a unix
	 * stream would not, so drop it. */
	struct msghdr m = *msg;
	m.msg_name = NULL;
	m.msg_namelen = 0;
	ssize_t n = swrap_libc.sendmsg(s->fd, &m, (flags & SEND_FLAGS) | MSG_NOSIGNAL);
	if (n < 0 && errno == EPIPE)
		return epipe(s, flags);
	return n;
}

/* native_epipe: a write()/writev() issued natively failed with EPIPE; the
 * kernel raised SIGPIPE (ignored, or the sandbox's business). */
static ssize_t native_epipe(struct swrap_sock *s)
{
	if (swrap_sandboxed())
		return -1; /* what the kernel said */
	return epipe(s, MSG_NOSIGNAL);
}

ssize_t swrap_tcp_write(struct swrap_sock *s, const void *buf, size_t len)
{
	if (swrap_native_write()) {
		if (!swrap_sandboxed()) {
			swrap_filler_done(s, false);
			if (!connected(s))
				return not_connected_write(MSG_NOSIGNAL);
		}
		ssize_t n = swrap_libc.write(s->fd, buf, len);
		if (n < 0 && errno == EPIPE)
			return native_epipe(s);
		return n;
	}
	swrap_filler_done(s, false);
	if (!connected(s))
		return not_connected_write(0);
	ssize_t n = swrap_libc.send(s->fd, buf, len, MSG_NOSIGNAL);
	if (n < 0 && errno == EPIPE)
		return epipe(s, 0);
	return n;
}

ssize_t swrap_tcp_writev(struct swrap_sock *s, const struct iovec *iov, int n)
{
	if (!swrap_native_write()) {
		if (n < 0)
			return swrap_fail(EINVAL);
		struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
		return swrap_tcp_send(s, &m, 0);
	}
	if (!swrap_sandboxed()) {
		swrap_filler_done(s, false);
		if (!connected(s))
			return not_connected_write(MSG_NOSIGNAL);
	}
	ssize_t r = swrap_libc.writev(s->fd, iov, n);
	if (r < 0 && errno == EPIPE)
		return native_epipe(s);
	return r;
}

ssize_t swrap_tcp_readv(struct swrap_sock *s, const struct iovec *iov, int n)
{
	if (!connected(s))
		return swrap_fail(ENOTCONN);
	ssize_t r = swrap_libc.readv(s->fd, iov, n);
	if (r == 0) {
		size_t want = 0;
		for (int i = 0; i < n; i++)
			want += iov[i].iov_len;
		if (want > 0)
			return eof(s);
	}
	return r;
}

ssize_t swrap_tcp_recv(struct swrap_sock *s, struct msghdr *msg, int flags)
{
	if (flags & MSG_ERRQUEUE)
		return swrap_fail(EAGAIN); /* nothing is ever queued there */
	if (!connected(s))
		return swrap_fail(ENOTCONN);
	if (flags & MSG_OOB)
		return swrap_fail(EINVAL); /* tcp_recv_urg: no urgent data, ever */
	void *name = msg->msg_name;
	msg->msg_name = NULL;
	msg->msg_namelen = 0;
	ssize_t n = swrap_libc.recvmsg(s->fd, msg, flags & RECV_FLAGS);
	msg->msg_name = name;
	msg->msg_namelen = 0;
	if (n == 0) {
		size_t want = 0;
		for (size_t i = 0; i < msg->msg_iovlen; i++)
			want += msg->msg_iov[i].iov_len;
		if (want > 0)
			return eof(s);
	}
	return n;
}

ssize_t swrap_tcp_read(struct swrap_sock *s, void *buf, size_t len)
{
	if (!connected(s))
		return swrap_fail(ENOTCONN);
	ssize_t n = swrap_libc.read(s->fd, buf, len);
	if (n == 0 && len > 0)
		return eof(s);
	return n;
}
