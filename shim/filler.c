/*
 * filler.c - making the app end's writability mean what it means for TCP.
 *
 * Interposes nothing. A unix stream socket is writable as soon as it
 * exists; a TCP socket only once connected, and a listener never. poll,
 * select and epoll go straight to the kernel, so the shim cannot answer
 * for them: instead it makes the app end itself unwritable, by shrinking
 * its SO_SNDBUF to the minimum and filling it with zero bytes
 * (docs/protocol.md, "Filler"). unix_writable() is wmem_alloc * 4 <=
 * sndbuf, so a filled minimum buffer stays unwritable until the broker
 * reads the bytes:
 *  - before a non-blocking CONNECT, whose `filler` says how many bytes:
 *    the broker discards exactly those when the connect is decided, and
 *    POLLOUT arrives when Linux would give it. The program's buffer size
 *    is kept in the fd table (aux) and put back, once the connect is over,
 *    by the next call that cares (swrap_filler_done);
 *  - after LISTEN: never discarded, so a listener is never writable.
 */
#include "swrap.h"

#include <string.h>

/* An upper bound on what a minimum-sized buffer can hold (SOCK_MIN_SNDBUF
 * is a few KiB); it only guards against a peer that reads the filler. */
#define FILL_MAX (256u * 1024u)

uint32_t swrap_filler_fill(int fd)
{
	static const char zeros[4096];
	int saved = errno, one = 1;
	uint32_t total = 0;

	/* The kernel clamps 1 up to its minimum (and doubles it). */
	swrap_libc.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
	while (total < FILL_MAX) {
		ssize_t n = swrap_libc.send(fd, zeros, sizeof(zeros), MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* EAGAIN: full; anything else: the real calls will tell */
		total += (uint32_t)n;
	}
	SWRAP_LOG(SWRAP_LOG_TRACE, "fd %d: %u bytes of filler", fd, total);
	errno = saved;
	return total;
}

void swrap_filler_restore(struct swrap_sock *s, bool known_over)
{
	int saved = errno;

	if (!known_over) {
		/* Restoring while the connect is pending would make the fd
		 * writable early: ask the broker. If it is gone, restore. */
		if (swrap_fd_stat(s) && (s->word & SWF_CONNECTING) && !(s->word & SWF_CONNECTED)) {
			errno = saved;
			return;
		}
	}
	/* getsockopt reported the doubled value; setsockopt doubles again. */
	int v = (int)(swrap_fd_aux(s->fd) / 2);
	if (v > 0)
		swrap_libc.setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	swrap_fd_flags(s->fd, 0, SWF_FILLED);
	s->word &= ~SWF_FILLED;
	SWRAP_LOG(SWRAP_LOG_TRACE, "fd %d: connect over, SO_SNDBUF %d restored", s->fd, v);
	errno = saved;
}
