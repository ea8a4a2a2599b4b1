/* relay.c - the copy loop of the demo's server and client: stdin to the
 * socket, the socket to stdout, like nc. Plain libc sockets API: under
 * swrap the preload shim serves these calls, as for any other program. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "relay.h"

struct addrinfo *demo_addr(const char *prog, const char *addr, const char *port, int passive)
{
	struct addrinfo hints, *ai;
	int rc;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	/* Numeric only: the demo must not depend on a resolver. */
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	rc = getaddrinfo(addr, port, &hints, &ai);
	if (rc != 0) {
		fprintf(stderr, "%s: %s port %s: %s\n", prog, addr, port, gai_strerror(rc));
		exit(2);
	}
	return ai;
}

/* write_all writes all of buf to fd, across short writes and EINTR. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int demo_relay(const char *prog, int sock)
{
	struct pollfd pfd[2] = { { .fd = 0, .events = POLLIN }, { .fd = sock, .events = POLLIN } };
	char buf[4096];

	/* A peer that is gone is reported as EPIPE below, not by SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	/* Wait for both ends, not just the peer's: the server's reply may still
	 * be unread on stdin when the client's EOF arrives. pfd[i].fd < 0 is an
	 * end that is done (poll ignores it). */
	while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: poll: %s\n", prog, strerror(errno));
			return 1;
		}
		if (pfd[0].revents) {
			ssize_t n = read(0, buf, sizeof buf);
			if (n < 0 && errno == EINTR)
				continue;
			if (n > 0 && write_all(sock, buf, (size_t)n) < 0) {
				fprintf(stderr, "%s: send: %s\n", prog, strerror(errno));
				return 1;
			}
			if (n <= 0) {
				/* End of input (or an unreadable stdin): tell the peer. */
				shutdown(sock, SHUT_WR);
				pfd[0].fd = -1;
			}
		}
		if (pfd[1].revents) {
			ssize_t n = read(sock, buf, sizeof buf);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				fprintf(stderr, "%s: receive: %s\n", prog, strerror(errno));
				return 1;
			}
			if (n == 0) {
				pfd[1].fd = -1;
				/* An interactive user need not type ^D once the peer
				 * has finished. */
				if (pfd[0].fd >= 0 && isatty(0))
					pfd[0].fd = -1;
			} else if (write_all(1, buf, (size_t)n) < 0) {
				fprintf(stderr, "%s: stdout: %s\n", prog, strerror(errno));
				return 1;
			}
		}
	}
	return 0;
}
