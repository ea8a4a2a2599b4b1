/*
 * sendrecv.c - interposes the data calls: read, write, readv, writev, recv,
 * send, recvfrom, sendto, recvmsg, sendmsg, recvmmsg, sendmmsg.
 *
 * Each exported symbol looks the fd up (lock-free) and, for anything that
 * is not a wrapped socket, calls libc at once. Wrapped TCP goes to stream.c,
 * UDP/ICMP to dgram.c. Receiving from an unwrapped socket also forgets the
 * cache entries of fds arriving with SCM_RIGHTS: a wrapped socket passed to
 * us is then recognised by getsockname() on first use. An emulated netlink
 * socket (fd table state SWRAP_FD_NETLINK) goes to netlink.c for the calls
 * that send or name a peer; read, readv and recv work on it natively.
 */
#include "swrap.h"

#include <string.h>

ssize_t swrap_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s)) {
		if (SWRAP_UNLIKELY(swrap_fd_netlink(fd, NULL, NULL)))
			return swrap_nl_sendmsg(fd, msg, flags);
		return swrap_libc.sendmsg(fd, msg, flags);
	}
	if (!msg)
		return swrap_fail(EFAULT);
	if (s.word & SWF_DGRAM)
		return swrap_dgram_send(&s, msg, flags);
	return swrap_tcp_send(&s, msg, flags);
}

ssize_t swrap_recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s)) {
		if (SWRAP_UNLIKELY(swrap_fd_netlink(fd, NULL, NULL)))
			return swrap_nl_recvmsg(fd, msg, flags);
		ssize_t n = swrap_libc.recvmsg(fd, msg, flags);
		if (n >= 0 && swrap_on())
			swrap_fd_forget_rights(msg);
		return n;
	}
	if (!msg)
		return swrap_fail(EFAULT);
	if (s.word & SWF_DGRAM)
		return swrap_dgram_recv(&s, msg, flags);
	return swrap_tcp_recv(&s, msg, flags);
}

SWRAP_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	return swrap_sendmsg(fd, msg, flags);
}

SWRAP_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	return swrap_recvmsg(fd, msg, flags);
}

SWRAP_EXPORT ssize_t read(int fd, void *buf, size_t len)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s))
		return swrap_libc.read(fd, buf, len);
	if (!(s.word & SWF_DGRAM))
		return swrap_tcp_read(&s, buf, len);
	struct iovec iov = { buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	return swrap_dgram_recv(&s, &m, 0);
}

SWRAP_EXPORT ssize_t write(int fd, const void *buf, size_t len)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s)) {
		if (SWRAP_UNLIKELY(swrap_fd_netlink(fd, NULL, NULL)))
			return swrap_nl_send(fd, buf, len, 0, NULL, 0);
		return swrap_libc.write(fd, buf, len);
	}
	if (!(s.word & SWF_DGRAM))
		return swrap_tcp_write(&s, buf, len);
	struct iovec iov = { (void *)buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	return swrap_dgram_send(&s, &m, 0);
}

SWRAP_EXPORT ssize_t readv(int fd, const struct iovec *iov, int n)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s))
		return swrap_libc.readv(fd, iov, n);
	if (!(s.word & SWF_DGRAM))
		return swrap_tcp_readv(&s, iov, n);
	if (n < 0)
		return swrap_fail(EINVAL);
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
	return swrap_dgram_recv(&s, &m, 0);
}

SWRAP_EXPORT ssize_t writev(int fd, const struct iovec *iov, int n)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s)) {
		if (SWRAP_UNLIKELY(swrap_fd_netlink(fd, NULL, NULL)) && n >= 0) {
			struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
			return swrap_nl_sendmsg(fd, &m, 0);
		}
		return swrap_libc.writev(fd, iov, n);
	}
	if (!(s.word & SWF_DGRAM))
		return swrap_tcp_writev(&s, iov, n);
	if (n < 0)
		return swrap_fail(EINVAL);
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
	return swrap_dgram_send(&s, &m, 0);
}

SWRAP_EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s))
		return swrap_libc.recv(fd, buf, len, flags);
	struct iovec iov = { buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (s.word & SWF_DGRAM)
		return swrap_dgram_recv(&s, &m, flags);
	return swrap_tcp_recv(&s, &m, flags);
}

SWRAP_EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s)) {
		if (SWRAP_UNLIKELY(swrap_fd_netlink(fd, NULL, NULL)))
			return swrap_nl_send(fd, buf, len, flags, NULL, 0);
		return swrap_libc.send(fd, buf, len, flags);
	}
	struct iovec iov = { (void *)buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (s.word & SWF_DGRAM)
		return swrap_dgram_send(&s, &m, flags);
	return swrap_tcp_send(&s, &m, flags);
}

SWRAP_EXPORT ssize_t recvfrom(int fd, void *restrict buf, size_t len, int flags,
			      __SOCKADDR_ARG addr, socklen_t *restrict addrlen)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s)) {
		if (SWRAP_UNLIKELY(swrap_fd_netlink(fd, NULL, NULL)))
			return swrap_nl_recvfrom(fd, buf, len, flags, addr.__sockaddr__, addrlen);
		return swrap_libc.recvfrom(fd, buf, len, flags, addr.__sockaddr__, addrlen);
	}
	struct sockaddr *sa = addr.__sockaddr__;
	if (sa) {
		int e = swrap_addr_check_outlen(sa, addrlen);
		if (e)
			return swrap_fail(e);
	}
	struct iovec iov = { buf, len };
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_name = sa, .msg_namelen = sa ? *addrlen : 0,
	};
	ssize_t n = (s.word & SWF_DGRAM) ? swrap_dgram_recv(&s, &m, flags) : swrap_tcp_recv(&s, &m, flags);
	if (n >= 0 && sa)
		*addrlen = m.msg_namelen;
	return n;
}

SWRAP_EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags,
			    __CONST_SOCKADDR_ARG addr, socklen_t addrlen)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s)) {
		if (SWRAP_UNLIKELY(swrap_fd_netlink(fd, NULL, NULL)))
			return swrap_nl_send(fd, buf, len, flags, addr.__sockaddr__, addrlen);
		return swrap_libc.sendto(fd, buf, len, flags, addr.__sockaddr__, addrlen);
	}
	struct iovec iov = { (void *)buf, len };
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_name = (void *)addr.__sockaddr__, .msg_namelen = addr.__sockaddr__ ? addrlen : 0,
	};
	if (s.word & SWF_DGRAM)
		return swrap_dgram_send(&s, &m, flags);
	return swrap_tcp_send(&s, &m, flags);
}

/* recvmmsg: one message after another; with MSG_WAITFORONE only the first
 * may block. The timeout is honoured only by the real call (unwrapped).
 * Emulated netlink sockets take the loop too (for their addresses). */
int swrap_recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags, struct timespec *t)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s) && !swrap_fd_netlink(fd, NULL, NULL)) {
		int r = swrap_libc.recvmmsg(fd, v, n, flags, t);
		if (r > 0 && swrap_on())
			for (int i = 0; i < r; i++)
				swrap_fd_forget_rights(&v[i].msg_hdr);
		return r;
	}
	if (n > 1024)
		n = 1024;
	unsigned int i;
	for (i = 0; i < n; i++) {
		int f = flags & ~MSG_WAITFORONE;
		if (i > 0 && (flags & MSG_WAITFORONE))
			f |= MSG_DONTWAIT;
		ssize_t r = swrap_recvmsg(fd, &v[i].msg_hdr, f);
		if (r < 0) {
			if (i > 0)
				break;
			return -1;
		}
		v[i].msg_len = (unsigned int)r;
	}
	return (int)i;
}

int swrap_sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s) && !swrap_fd_netlink(fd, NULL, NULL))
		return swrap_libc.sendmmsg(fd, v, n, flags);
	if (n > 1024)
		n = 1024;
	unsigned int i;
	for (i = 0; i < n; i++) {
		ssize_t r = swrap_sendmsg(fd, &v[i].msg_hdr, flags);
		if (r < 0) {
			if (i > 0)
				break;
			return -1;
		}
		v[i].msg_len = (unsigned int)r;
	}
	return (int)i;
}

SWRAP_EXPORT int recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags, struct timespec *t)
{
	return swrap_recvmmsg(fd, v, n, flags, t);
}

SWRAP_EXPORT int sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags)
{
	return swrap_sendmmsg(fd, v, n, flags);
}
