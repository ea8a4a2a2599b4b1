/*
 * sockopt.c - interposes getsockopt() and setsockopt().
 *
 * Options go to the broker, which knows Linux's semantics (GETSOCKOPT /
 * SETSOCKOPT); SO_ERROR waits there for a pending connect. Exceptions:
 *  - SO_RCVTIMEO/SO_SNDTIMEO are applied to the real fd, where the program
 *    actually blocks (and passed on to the broker for connect timeouts).
 *  - SO_BROADCAST, IP_PKTINFO, IPV6_RECVPKTINFO are remembered in the fd
 *    cache: the shim checks broadcast sends and builds the pktinfo control
 *    messages itself.
 */
#include "swrap.h"

#include <linux/capability.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/syscall.h>

static bool is_timeo(int level, int name)
{
	return level == SOL_SOCKET && (name == SO_RCVTIMEO_OLD || name == SO_SNDTIMEO_OLD ||
				       name == SO_RCVTIMEO_NEW || name == SO_SNDTIMEO_NEW);
}

/* shim_flag: the fd-cache flag an option sets, or 0. */
static uint32_t shim_flag(int level, int name)
{
	if (level == SOL_SOCKET && name == SO_BROADCAST)
		return SWF_BROADCAST;
	if (level == IPPROTO_IP && name == IP_PKTINFO)
		return SWF_PKTINFO4;
	if (level == IPPROTO_IPV6 && name == IPV6_RECVPKTINFO)
		return SWF_PKTINFO6;
	return 0;
}

/* IP_PKTOPTIONS / IPV6_2292PKTOPTIONS: the broker answers with control
 * messages, as Linux's put_cmsg lays them out. */
static bool is_pktoptions(int level, int name)
{
	return (level == IPPROTO_IP && name == IP_PKTOPTIONS) ||
	       (level == IPPROTO_IPV6 && name == IPV6_2292PKTOPTIONS);
}

/* copy_cmsgs copies the n bytes of control messages in buf to val but not
 * the padding between them, which put_cmsg leaves as the program had it. */
static void copy_cmsgs(void *val, const uint8_t *buf, size_t n)
{
	size_t off = 0;
	while (off + sizeof(struct cmsghdr) <= n) {
		struct cmsghdr h;
		memcpy(&h, buf + off, sizeof(h));
		size_t cl = h.cmsg_len < n - off ? h.cmsg_len : n - off;
		if (cl < sizeof(h))
			break;
		memcpy((char *)val + off, buf + off, cl);
		off += CMSG_ALIGN(h.cmsg_len);
	}
}

int swrap_so_error(const struct swrap_sock *s)
{
	int32_t v = 0;
	struct swrap_sockopt o = { .level = SOL_SOCKET, .name = SO_ERROR, .optlen = sizeof(v) };
	struct swrap_call c = {
		.op = SWRAP_OP_GETSOCKOPT, .sock = s->id, .body = &o, .body_len = sizeof(o),
		.rep = &v, .rep_cap = sizeof(v),
	};
	int err = swrap_request(&c);
	if (err)
		return ECONNRESET; /* cannot ask: the broker (and the connection) is gone */
	return v;
}

static int swrap_getsockopt(struct swrap_sock *s, int level, int name, void *val, socklen_t *len)
{
	if (!len)
		return swrap_fail(EFAULT);
	if ((int)*len < 0)
		return swrap_fail(EINVAL);
	if (is_timeo(level, name))
		return swrap_libc.getsockopt(s->fd, level, name, val, len);

	uint8_t buf[512];
	socklen_t want = *len > sizeof(buf) ? sizeof(buf) : *len;
	struct swrap_sockopt o = { .level = level, .name = name, .optlen = want };
	struct swrap_call c = {
		.op = SWRAP_OP_GETSOCKOPT, .sock = s->id, .body = &o, .body_len = sizeof(o),
		.rep = buf, .rep_cap = sizeof(buf),
	};
	int err = swrap_request(&c);
	uint32_t f = shim_flag(level, name);
	if (err == ENOPROTOOPT && f && f != SWF_BROADCAST) {
		/* pktinfo is ours: answer from the cache */
		int32_t v = (s->word & f) ? 1 : 0;
		memcpy(buf, &v, sizeof(v));
		c.rep_len = sizeof(v);
		err = 0;
	}
	if (err)
		return swrap_fail(err);
	if (c.rep_len > 0 && !val)
		return swrap_fail(EFAULT);
	socklen_t n = c.rep_len < *len ? (socklen_t)c.rep_len : *len;
	if (n > 0 && is_pktoptions(level, name))
		copy_cmsgs(val, buf, n);
	else if (n > 0)
		memcpy(val, buf, n);
	*len = n;

	if (level == SOL_SOCKET && name == SO_ERROR)
		swrap_filler_done(s, true); /* the broker waited: the connect is over */
	if (level == SOL_SOCKET && name == SO_ERROR && (s->word & SWF_CONNECTING) && n >= sizeof(int)) {
		/* The broker waited for the pending connect: now we know. */
		int v;
		memcpy(&v, buf, sizeof(v));
		if (v == 0)
			swrap_fd_flags(s->fd, SWF_CONNECTED, SWF_CONNECTING);
		else
			swrap_fd_flags(s->fd, 0, SWF_CONNECTING);
	}
	return 0;
}

SWRAP_EXPORT int getsockopt(int fd, int level, int name, void *restrict val, socklen_t *restrict len)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s)) {
		if (SWRAP_UNLIKELY(swrap_fd_netlink(fd, NULL, NULL)))
			return swrap_nl_getsockopt(fd, level, name, val, len);
		return swrap_libc.getsockopt(fd, level, name, val, len);
	}
	return swrap_getsockopt(&s, level, name, val, len);
}

/* no_answer: options Linux cannot refuse on a TCP socket given an int
 * (shorter values get EINVAL, from the broker as before). Setting them needs
 * no reply: the request is sent and the call returns (nginx sets TCP_CORK
 * around every response); the broker still serves it before this thread's
 * next request (broker.c), and getsockopt reads it back. */
static bool no_answer(const struct swrap_sock *s, int level, int name, socklen_t len)
{
	if (len < sizeof(int) || (s->word & SWF_DGRAM))
		return false;
	if (level == SOL_SOCKET)
		return name == SO_KEEPALIVE;
	return level == IPPROTO_TCP && (name == TCP_NODELAY || name == TCP_CORK || name == TCP_QUICKACK);
}

/* net_admin reports whether the calling thread has CAP_NET_ADMIN in its
 * effective set: what Linux asks of SO_SNDBUFFORCE and SO_RCVBUFFORCE (the
 * broker cannot tell, it sees only the control connection's creator). */
static bool net_admin(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
	if (swrap_libc.syscall(SYS_capget, &h, d) != 0)
		return false;
	return d[CAP_TO_INDEX(CAP_NET_ADMIN)].effective & CAP_TO_MASK(CAP_NET_ADMIN);
}

static int swrap_setsockopt(struct swrap_sock *s, int level, int name, const void *val, socklen_t len)
{
	if ((int)len < 0)
		return swrap_fail(EINVAL);
	if (len > 0 && !val)
		return swrap_fail(EFAULT);
	if (len > 4096)
		return swrap_fail(EINVAL);
	/* Linux: the length first, then the capability. */
	if (level == SOL_SOCKET && (name == SO_SNDBUFFORCE || name == SO_RCVBUFFORCE) && len >= sizeof(int) &&
	    !net_admin())
		return swrap_fail(EPERM);

	if (is_timeo(level, name)) {
		if (swrap_libc.setsockopt(s->fd, level, name, val, len) != 0)
			return -1;
	}
	struct swrap_sockopt o = { .level = level, .name = name, .optlen = len };
	struct swrap_call c = {
		.op = SWRAP_OP_SETSOCKOPT, .sock = s->id, .body = &o, .body_len = sizeof(o),
		.body2 = val, .body2_len = len,
		.no_wait = no_answer(s, level, name, len),
	};
	int err = swrap_request(&c);
	uint32_t f = shim_flag(level, name);
	if (is_timeo(level, name))
		return 0; /* applied where it matters; the broker's view is advisory */
	if (err == ENOPROTOOPT && f && f != SWF_BROADCAST)
		err = 0; /* pktinfo is implemented here */
	if (err)
		return swrap_fail(err);
	if (f) {
		int v = 0;
		if (len >= sizeof(int))
			memcpy(&v, val, sizeof(v));
		else if (len > 0)
			v = *(const unsigned char *)val;
		swrap_fd_flags(s->fd, v ? f : 0, v ? 0 : f);
	}
	return 0;
}

SWRAP_EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s)) {
		if (SWRAP_UNLIKELY(swrap_fd_netlink(fd, NULL, NULL)))
			return swrap_nl_setsockopt(fd, level, name, val, len);
		return swrap_libc.setsockopt(fd, level, name, val, len);
	}
	return swrap_setsockopt(&s, level, name, val, len);
}
