/* conns: N concurrent idle TCP connections.
 *
 *   conns server ADDR PORT      accepts and keeps every connection; "ready" once listening
 *   conns client ADDR PORT N    opens N connections one after another and keeps them;
 *                               prints "open K of N in S s [error]" and then waits
 *                               for its standard input to close before exiting
 *
 * The caller raises RLIMIT_NOFILE (ulimit -n) for both.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

static double now_s(void) { return now_us() / 1e6; }

int main(int argc, char **argv) {
	if (argc < 4) {
		fprintf(stderr, "usage: conns server|client ADDR PORT [N]\n");
		return 2;
	}
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
	if (inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1) die("inet_pton");
	if (strcmp(argv[1], "server") == 0) {
		int s = tcp_listen(&sa, 4096);
		printf("ready\n");
		fflush(stdout);
		for (;;) {
			int c = accept(s, NULL, NULL);
			if (c < 0) {
				perror("accept");
				sleep(1); /* keep what we have (EMFILE, ENFILE...) */
			}
		}
	}
	int n = argc > 4 ? atoi(argv[4]) : 1000;
	double t0 = now_s();
	int k = 0;
	char err[128] = "";
	for (; k < n; k++) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		if (s < 0) {
			snprintf(err, sizeof err, "socket(): %s", strerror(errno));
			break;
		}
		if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
			snprintf(err, sizeof err, "connect(): %s", strerror(errno));
			break;
		}
	}
	printf("open %d of %d in %.3f s %s\n", k, n, now_s() - t0, err);
	fflush(stdout);
	char buf[64];
	while (read(0, buf, sizeof buf) > 0) {}
	return 0;
}
