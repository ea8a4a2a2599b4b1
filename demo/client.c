/* client.c - bin/demo-client ADDR PORT: connects to ADDR:PORT over TCP,
 * sends stdin (then shuts down its sending side), prints what it receives,
 * and exits when both directions have ended. The demo's client
 * (scripts/demo.sh), in place of `nc -N ADDR PORT`. */
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>

#include "relay.h"

int main(int argc, char **argv)
{
	struct addrinfo *ai;
	int s;

	if (argc != 3) {
		fprintf(stderr, "usage: demo-client ADDR PORT\n");
		return 2;
	}
	ai = demo_addr("demo-client", argv[1], argv[2], 0);
	s = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
	if (s < 0 || connect(s, ai->ai_addr, ai->ai_addrlen) < 0) {
		fprintf(stderr, "demo-client: connect to %s port %s: %s\n", argv[1], argv[2], strerror(errno));
		return 1;
	}
	freeaddrinfo(ai);
	return demo_relay("demo-client", s);
}
