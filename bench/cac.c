/* cac: connect+accept+close cycles over TCP.
 *
 *   cac server ADDR PORT      accepts and closes at once, forever; "ready" once listening
 *   cac client ADDR PORT N    N cycles of socket, connect, read until EOF, close;
 *                             prints the mean µs per cycle and cycles per second
 *
 * The server closes first, so TIME_WAIT stays on its side and the client's
 * ephemeral ports are not used up.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

int main(int argc, char **argv) {
	if (argc < 4) {
		fprintf(stderr, "usage: cac server|client ADDR PORT [N]\n");
		return 2;
	}
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
	if (inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1) die("inet_pton");
	if (strcmp(argv[1], "server") == 0) {
		int s = tcp_listen(&sa, 128);
		printf("ready\n");
		fflush(stdout);
		for (;;) {
			int c = accept(s, NULL, NULL);
			if (c < 0) die("accept");
			close(c);
		}
	}
	int n = argc > 4 ? atoi(argv[4]) : 2000;
	char buf[16];
	double t0 = 0;
	for (int i = 0; i < n + 10; i++) {
		if (i == 10) t0 = now_us(); /* 10 warm-up cycles */
		int s = socket(AF_INET, SOCK_STREAM, 0);
		if (s < 0) die("socket");
		if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect");
		while (read(s, buf, sizeof buf) > 0) {}
		close(s);
	}
	double us = (now_us() - t0) / n;
	printf("%.2f per_s=%.0f\n", us, 1e6 / us);
	return 0;
}
