/*
 * dgram.c - UDP and ICMP data on a wrapped fd. Interposes nothing itself;
 * the entry points are in sendrecv.c.
 *
 * Every message on the app end (a unix SOCK_SEQPACKET) is a struct
 * swrap_dgram header followed by the payload, both ways. Sends put the
 * header in front with one more iovec (no copy of the payload); receives
 * read the header into a local buffer with the first iovec and turn it into
 * msg_name and IP_PKTINFO / IPV6_PKTINFO control messages.
 *
 * Before sending we check what Linux checks synchronously: a destination
 * outside the emulated network (ENETUNREACH), the datagram size (EMSGSIZE),
 * a missing destination (EDESTADDRREQ), broadcast without SO_BROADCAST
 * (EACCES). Everything after that is asynchronous, as with real UDP: an
 * error the broker learns later (ICMP unreachable) arrives as a header-only
 * message with SWRAP_DGRAM_ERROR, which the receive call reading it returns.
 */
#include "swrap.h"

#include <string.h>

#define MAX_IOV 1024           /* UIO_MAXIOV */
#define MAX_PAYLOAD4 65507     /* 65535 - IPv4 header - UDP header */
#define MAX_PAYLOAD6 65527     /* 65535 - UDP header */

static bool is_v4(const struct swrap_addr *a)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	return a->family == AF_INET || (a->family == AF_INET6 && !memcmp(a->addr, mapped, 12));
}

/* pktinfo_in reads an IP_PKTINFO / IPV6_PKTINFO control message of a send
 * into the header's local address. */
static void pktinfo_in(const struct msghdr *msg, struct swrap_dgram *h)
{
	if (!msg->msg_control || msg->msg_controllen < sizeof(struct cmsghdr))
		return;
	for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)msg); c;
	     c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
		    c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			h->local.family = AF_INET;
			/* ip_cmsg_send: the source is ipi_spec_dst */
			memcpy(h->local.addr, &pi.ipi_spec_dst, 4);
			h->ifindex = (uint32_t)pi.ipi_ifindex;
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
			   c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			h->local.family = AF_INET6;
			memcpy(h->local.addr, &pi.ipi6_addr, 16);
			h->ifindex = pi.ipi6_ifindex;
		}
	}
}

ssize_t swrap_dgram_send(struct swrap_sock *s, const struct msghdr *msg, int flags)
{
	struct swrap_dgram h;
	int fam = swrap_sock_family(s);

	memset(&h, 0, sizeof(h));
	if (flags & MSG_OOB)
		return swrap_fail(EOPNOTSUPP);
	if (s->word & SWF_SHUT_WR) {
		if (!(flags & MSG_NOSIGNAL))
			raise(SIGPIPE); /* as udp_sendmsg after shutdown(SHUT_WR) */
		return swrap_fail(EPIPE);
	}
	int err = swrap_addr_in(msg->msg_name, msg->msg_name ? msg->msg_namelen : 0, fam,
				!(s->word & SWF_ICMP),
				SWRAP_ADDR_SENDTO, &h.peer);
	if (err)
		return swrap_fail(err);
	if (msg->msg_iovlen > MAX_IOV - 1)
		return swrap_fail(EMSGSIZE);

	size_t total = 0;
	for (size_t i = 0; i < msg->msg_iovlen; i++) {
		if (msg->msg_iov[i].iov_len > SSIZE_MAX - total)
			return swrap_fail(EINVAL);
		total += msg->msg_iov[i].iov_len;
	}

	if (h.peer.family == 0) {
		if (!(s->word & SWF_CONNECTED) && swrap_fd_stat(s) && !(s->word & SWF_CONNECTED))
			return swrap_fail(EDESTADDRREQ);
		if (total > (fam == AF_INET ? MAX_PAYLOAD4 : MAX_PAYLOAD6))
			return swrap_fail(EMSGSIZE);
	} else {
		if (!swrap_addr_in_network(&h.peer))
			return swrap_fail(ENETUNREACH);
		if (total > (is_v4(&h.peer) ? MAX_PAYLOAD4 : MAX_PAYLOAD6))
			return swrap_fail(EMSGSIZE);
		if (swrap_addr_is_broadcast(&h.peer) && !(s->word & SWF_BROADCAST) &&
		    !(swrap_fd_stat(s) && (s->word & SWF_BROADCAST)))
			return swrap_fail(EACCES);
	}
	pktinfo_in(msg, &h);

	struct iovec iov[msg->msg_iovlen + 1];
	iov[0].iov_base = &h;
	iov[0].iov_len = sizeof(h);
	if (msg->msg_iovlen)
		memcpy(iov + 1, msg->msg_iov, msg->msg_iovlen * sizeof(struct iovec));
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = msg->msg_iovlen + 1 };
	ssize_t n = swrap_libc.sendmsg(s->fd, &m, (flags & MSG_DONTWAIT) | MSG_NOSIGNAL);
	if (n < 0) {
		if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN)
			return swrap_fail(EPIPE); /* broker gone; no SIGPIPE for UDP */
		return -1;
	}
	return n >= (ssize_t)sizeof(h) ? n - (ssize_t)sizeof(h) : 0;
}

/*
 * cmsg_put appends one control message exactly as Linux's put_cmsg does:
 * without room for a header (or without msg_control) nothing is written;
 * otherwise min(CMSG_LEN(len), room) bytes are copied, with cmsg_len saying
 * how many, MSG_CTRUNC only when CMSG_LEN did not fit, and the next message
 * goes min(CMSG_SPACE(len), room) further on. So a last message fits in
 * CMSG_LEN, and the padding after it is never written.
 */
static void cmsg_put(struct msghdr *msg, size_t *used, int level, int type, const void *data,
		     size_t len)
{
	size_t room = msg->msg_controllen - *used;
	if (!msg->msg_control || room < sizeof(struct cmsghdr)) {
		msg->msg_flags |= MSG_CTRUNC;
		return;
	}
	size_t cmlen = CMSG_LEN(len);
	if (room < cmlen) {
		msg->msg_flags |= MSG_CTRUNC;
		cmlen = room;
	}
	struct cmsghdr c = { .cmsg_len = cmlen, .cmsg_level = level, .cmsg_type = type };
	char *p = (char *)msg->msg_control + *used;
	memcpy(p, &c, sizeof(c));
	memcpy(p + CMSG_LEN(0), data, cmlen - CMSG_LEN(0));
	*used += CMSG_SPACE(len) < room ? CMSG_SPACE(len) : room;
}

static void pktinfo_out(const struct swrap_sock *s, const struct swrap_dgram *h, struct msghdr *msg)
{
	size_t used = 0;

	if ((s->word & SWF_PKTINFO6) && (s->word & SWF_V6) && h->local.family) {
		struct in6_pktinfo pi;
		memset(&pi, 0, sizeof(pi));
		if (h->local.family == AF_INET) {
			pi.ipi6_addr.s6_addr[10] = 0xff;
			pi.ipi6_addr.s6_addr[11] = 0xff;
			memcpy(&pi.ipi6_addr.s6_addr[12], h->local.addr, 4);
		} else {
			memcpy(&pi.ipi6_addr, h->local.addr, 16);
		}
		pi.ipi6_ifindex = h->ifindex;
		cmsg_put(msg, &used, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof(pi));
	}
	if ((s->word & SWF_PKTINFO4) && is_v4(&h->local)) {
		struct in_pktinfo pi;
		memset(&pi, 0, sizeof(pi));
		memcpy(&pi.ipi_addr, h->local.family == AF_INET ? h->local.addr : h->local.addr + 12, 4);
		pi.ipi_spec_dst = pi.ipi_addr;
		pi.ipi_ifindex = (int)h->ifindex;
		cmsg_put(msg, &used, IPPROTO_IP, IP_PKTINFO, &pi, sizeof(pi));
	}
	msg->msg_controllen = used;
}

/* async_error: the message read is an asynchronous error (SWRAP_DGRAM_ERROR,
 * e.g. ECONNREFUSED after an ICMP port unreachable). Linux reports sk_err
 * once, from the receive call, and clears it even under MSG_PEEK; a peeked
 * error message is therefore taken off the queue here. */
static ssize_t async_error(const struct swrap_sock *s, const struct swrap_dgram *h, int flags)
{
	int err = (int)h->ifindex;
	if (flags & MSG_PEEK) {
		struct swrap_dgram drop;
		struct iovec iov = { &drop, sizeof(drop) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
		swrap_libc.recvmsg(s->fd, &m, MSG_DONTWAIT);
	}
	SWRAP_LOG(SWRAP_LOG_DEBUG, "fd %d: asynchronous error %d", s->fd, err);
	if (err <= 0 || err > 4095)
		err = EPROTO;
	return swrap_fail(err);
}

ssize_t swrap_dgram_recv(struct swrap_sock *s, struct msghdr *msg, int flags)
{
	struct swrap_dgram h;

	if (flags & MSG_ERRQUEUE)
		return swrap_fail(EAGAIN); /* no ICMP errors are queued */
	if (flags & MSG_OOB)
		return swrap_fail(EOPNOTSUPP);
	if (msg->msg_iovlen > MAX_IOV - 1)
		return swrap_fail(EMSGSIZE);

	struct iovec iov[msg->msg_iovlen + 1];
	iov[0].iov_base = &h;
	iov[0].iov_len = sizeof(h);
	if (msg->msg_iovlen)
		memcpy(iov + 1, msg->msg_iov, msg->msg_iovlen * sizeof(struct iovec));
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = msg->msg_iovlen + 1 };
	bool shut = (s->word & SWF_SHUT_RD) != 0;
	int rflags = flags & (MSG_DONTWAIT | MSG_PEEK | MSG_TRUNC);
	ssize_t n = swrap_libc.recvmsg(s->fd, &m, shut ? rflags | MSG_DONTWAIT : rflags);
	if (n < 0 && shut && errno == EAGAIN)
		return 0; /* shut down for reading and drained: 0, as Linux UDP */
	if (n < 0)
		return -1;
	if (n == 0)
		return swrap_fail(ECONNRESET); /* EOF: the broker is gone */
	if (n < (ssize_t)sizeof(h)) {
		SWRAP_LOG(SWRAP_LOG_ERROR, "fd %d: short datagram header (%zd bytes)", s->fd, n);
		return swrap_fail(EPROTO);
	}
	if (SWRAP_UNLIKELY(h.flags & SWRAP_DGRAM_ERROR))
		return async_error(s, &h, flags);
	msg->msg_flags = m.msg_flags & MSG_TRUNC;
	if (msg->msg_name)
		swrap_addr_out(&h.peer, msg->msg_name, &msg->msg_namelen);
	else
		msg->msg_namelen = 0;
	pktinfo_out(s, &h, msg); /* without msg_control too: MSG_CTRUNC, as Linux */
	return n - (ssize_t)sizeof(h);
}
