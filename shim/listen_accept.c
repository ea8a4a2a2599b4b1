/*
 * listen_accept.c - interposes listen(), accept() and accept4().
 *
 * A listening wrapped socket's app end carries swrap_accept records, each
 * with the new connection's fd attached. accept() is therefore one
 * recvmsg() on the program's own fd: blocking, O_NONBLOCK/EAGAIN, EINTR,
 * poll and epoll all behave as on a kernel listener, and a thread blocked
 * in accept never holds anything another thread needs.
 */
#include "swrap.h"

#include <fcntl.h>
#include <string.h>

static int swrap_listen(const struct swrap_sock *s, int backlog)
{
	struct swrap_listen l = { .backlog = backlog };
	struct swrap_call c = { .op = SWRAP_OP_LISTEN, .sock = s->id, .body = &l, .body_len = sizeof(l) };
	int err = swrap_request(&c);
	SWRAP_LOG(SWRAP_LOG_DEBUG, "fd %d listen(%d): %d", s->fd, backlog, err);
	if (err)
		return swrap_fail(err);
	swrap_fd_flags(s->fd, SWF_LISTENING, 0);
	/* A listener is never writable; the broker never reads its bytes. */
	swrap_filler_fill(s->fd);
	return 0;
}

SWRAP_EXPORT int listen(int fd, int backlog)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s))
		return swrap_libc.listen(fd, backlog);
	return swrap_listen(&s, backlog);
}

static int swrap_accept(struct swrap_sock *s, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return swrap_fail(EINVAL);
	if (s->word & SWF_DGRAM)
		return swrap_fail(EOPNOTSUPP); /* sock_no_accept */
	if (s->word & SWF_SHUT_RD)
		return swrap_fail(EINVAL); /* shut down: closed, no longer listening */
	if (addr || addrlen) {
		int e = swrap_addr_check_outlen(addr, addrlen);
		if (e)
			return swrap_fail(e);
	}
	if (!(s->word & SWF_LISTENING)) {
		/* Maybe listen() was called through another fd or process. */
		if (!swrap_fd_stat(s))
			return swrap_fail(ECONNABORTED);
		if (!(s->word & SWF_LISTENING))
			return swrap_fail(EINVAL);
	}

	struct swrap_accept rec;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 2)];
	} cm;
	struct iovec iov = { &rec, sizeof(rec) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf),
	};
	ssize_t n = swrap_libc.recvmsg(s->fd, &mh, (flags & SOCK_CLOEXEC) ? MSG_CMSG_CLOEXEC : 0);
	if (n < 0)
		return -1; /* EAGAIN, EINTR, ... as they are */

	int nfd = swrap_take_fd(&mh, true);
	if (n == 0 || n != (ssize_t)sizeof(rec) || rec.magic != SWRAP_MAGIC || nfd < 0) {
		if (nfd >= 0)
			swrap_libc.close(nfd);
		SWRAP_LOG(SWRAP_LOG_DEBUG, "fd %d: accept got %zd bytes, fd %d: aborted", s->fd, n, nfd);
		return swrap_fail(ECONNABORTED); /* 0: broker gone */
	}
	if (flags & SOCK_NONBLOCK)
		swrap_libc.fcntl(nfd, F_SETFL, O_RDWR | O_NONBLOCK); /* the broker makes it plain O_RDWR */
	/* Made by the listener's broker: the listener's directory tag. */
	swrap_fd_set(nfd, (rec.sock & SWRAP_ID_MASK) | (s->id & ~SWRAP_ID_MASK),
		     SWRAP_FD_WRAPPED | (s->word & SWF_V6) | SWF_CONNECTED);
	if (addrlen)
		swrap_addr_out(&rec.peer, addr, addrlen);
	SWRAP_LOG(SWRAP_LOG_DEBUG, "fd %d accept = fd %d sock %llx port %u", s->fd, nfd,
		  (unsigned long long)rec.sock, rec.peer.port);
	return nfd;
}

SWRAP_EXPORT int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *restrict addrlen, int flags)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s)) {
		int nfd = swrap_libc.accept4(fd, addr.__sockaddr__, addrlen, flags);
		if (nfd >= 0)
			swrap_fd_forget(nfd);
		return nfd;
	}
	return swrap_accept(&s, addr.__sockaddr__, addrlen, flags);
}

SWRAP_EXPORT int accept(int fd, __SOCKADDR_ARG addr, socklen_t *restrict addrlen)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s)) {
		int nfd = swrap_libc.accept(fd, addr.__sockaddr__, addrlen);
		if (nfd >= 0)
			swrap_fd_forget(nfd);
		return nfd;
	}
	return swrap_accept(&s, addr.__sockaddr__, addrlen, 0);
}
