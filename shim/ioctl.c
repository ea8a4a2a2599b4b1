/*
 * ioctl.c - interposes ioctl() for wrapped sockets.
 *
 * FIONBIO works natively on the app end (the program blocks on it).
 * FIONREAD/SIOCINQ and SIOCOUTQ add what the broker still holds (IOCTL
 * request) to what is queued in the app end; on UDP, FIONREAD is the size
 * of the next datagram's payload, as on Linux. On a connected TCP socket
 * with bytes in the app end, FIONREAD is answered from those alone (see
 * tcp_inq). Anything else goes to the real ioctl on the app end. The SIOCGIF*
 * interface requests are answered by ifioctl.c, on any socket.
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

/*
 * tcp_inq: may FIONREAD on s be answered from the app end's queue alone
 * when it holds bytes? Linux's value is every byte received and not read;
 * ours lie in the app end and, not yet pumped, in netstack. The app end's
 * count is a lower bound that can all be read without blocking, and the
 * rest moves into the app end as the broker pumps it. That is what callers
 * need: "is there data?" (wrk, after every read) and "how much can I read
 * at once?" get right answers without a broker round trip, and a caller
 * polling FIONREAD for a total sees it grow to it. Where it falls short:
 * a total larger than the app end holds (1 MiB) is never reached without
 * reading; but Linux's own value stops at its receive buffer too (129024
 * bytes with the default tcp_rmem), so no correct program waits for that.
 * With nothing local we ask the broker, so data it holds is never hidden.
 * UDP, listening and unconnected sockets stay exact.
 */
static bool tcp_inq(const struct swrap_sock *s)
{
	return (s->word & (SWF_DGRAM | SWF_LISTENING | SWF_CONNECTED)) == SWF_CONNECTED;
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
	if (req == FIONREAD && local > 0 && tcp_inq(s)) {
		*(int *)arg = local;
		return 0;
	}
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
