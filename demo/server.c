/* server.c - bin/demo-server ADDR PORT: accepts one TCP connection on
 * ADDR:PORT, sends it stdin, prints what it receives, and exits when both
 * directions have ended. The demo's server (scripts/demo.sh), in place of
 * `nc -l ADDR PORT`, so that the demo needs nothing but what make builds. */
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "relay.h"

int main(int argc, char **argv)
{
	struct addrinfo *ai;
	int ls, s, one = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: demo-server ADDR PORT\n");
		return 2;
	}
	ai = demo_addr("demo-server", argv[1], argv[2], 1);
	ls = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(ls, ai->ai_addr, ai->ai_addrlen) < 0 || listen(ls, 1) < 0) {
		fprintf(stderr, "demo-server: listen on %s port %s: %s\n", argv[1], argv[2], strerror(errno));
		return 1;
	}
	freeaddrinfo(ai);
	do
		s = accept(ls, NULL, NULL);
	while (s < 0 && errno == EINTR);
	if (s < 0) {
		fprintf(stderr, "demo-server: accept: %s\n", strerror(errno));
		return 1;
	}
	close(ls);
	return demo_relay("demo-server", s);
}
