/*
 * ioctl.c - interposes ioctl() for wrapped sockets.
 *
 * FIONBIO works natively on the app end (the program blocks on it).
 * FIONREAD/SIOCINQ and SIOCOUTQ add what the broker still holds (IOCTL
 * request) to what is queued in the app end; on UDP, FIONREAD is the size
 * of the next datagram's payload, as on Linux. Anything else goes to the
 * real ioctl on the app end. The SIOCGIF* interface requests are answered
 * by ifioctl.c, on any socket.
 */
#include "swrap.h"

#include <linux/sockios.h>
#include <sys/ioctl.h>

static int32_t broker_bytes(const struct swrap_sock *s, unsigned long req)
{
	int32_t v = 0;
	struct swrap_ioctl rq = { .request = (uint32_t)req };
	struct swrap_call c = {
		.op = SWRAP_OP_IOCTL, .sock = s->id, .body = &rq, .body_len = sizeof(rq),
		.rep = &v, .rep_cap = sizeof(v),
	};
	if (swrap_request(&c) != 0 || c.rep_len < sizeof(v))
		return 0;
	return v;
}

static int swrap_ioctl(const struct swrap_sock *s, unsigned long req, void *arg)
{
	if (req != FIONREAD && req != SIOCOUTQ)
		return swrap_libc.ioctl(s->fd, req, arg);
	if (!arg)
		return swrap_fail(EFAULT);

	int local = 0;
	if (req == FIONREAD && (s->word & SWF_DGRAM)) {
		/* the size of the next datagram, without our header */
		struct swrap_dgram h;
		struct iovec iov = { &h, sizeof(h) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n = swrap_libc.recvmsg(s->fd, &m, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
		*(int *)arg = n > (ssize_t)sizeof(h) ? (int)(n - (ssize_t)sizeof(h)) : 0;
		return 0;
	}
	if (swrap_libc.ioctl(s->fd, req, &local) != 0)
		local = 0;
	if (req == SIOCOUTQ && (s->word & SWF_DGRAM))
		local = 0; /* our headers are not the program's bytes */
	if (req == FIONREAD && (s->word & SWF_LISTENING))
		return swrap_fail(EINVAL);
	*(int *)arg = local + broker_bytes(s, req);
	return 0;
}

SWRAP_EXPORT int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	int r;
	/* interface requests, on any socket: ifioctl.c */
	if (SWRAP_UNLIKELY(swrap_ifioctl_req(req)) && swrap_on() && swrap_ifioctl(fd, req, arg, &r))
		return r;
	struct swrap_sock s;
	if (!swrap_fd_get(fd, &s))
		return swrap_libc.ioctl(fd, req, arg);
	return swrap_ioctl(&s, req, arg);
}
