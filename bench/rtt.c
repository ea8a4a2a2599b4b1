/* rtt: 1-byte round trips over TCP (TCP_NODELAY) or UDP.
 *
 *   rtt server tcp|udp ADDR PORT      echo server; prints "ready" once bound
 *   rtt client tcp|udp ADDR PORT N    N round trips; prints the median in µs,
 *                                     then "p10=.. p90=.. lost=.." on the same line
 *
 * The TCP server serves one connection and exits at its EOF; the UDP server
 * exits when it receives the byte 'q'. A UDP round trip with no answer
 * within 1 s counts as lost and is left out of the median.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

int main(int argc, char **argv) {
	if (argc < 5) {
		fprintf(stderr, "usage: rtt server|client tcp|udp ADDR PORT [N]\n");
		return 2;
	}
	int server = strcmp(argv[1], "server") == 0;
	int tcp = strcmp(argv[2], "tcp") == 0;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[4]))};
	if (inet_pton(AF_INET, argv[3], &sa.sin_addr) != 1) die("inet_pton");
	int one = 1;
	int s = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
	if (s < 0) die("socket");
	char c = 'x';
	if (server) {
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
		if (tcp) {
			if (listen(s, 16) < 0) die("listen");
			printf("ready\n");
			fflush(stdout);
			int c2 = accept(s, NULL, NULL);
			if (c2 < 0) die("accept");
			setsockopt(c2, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			for (;;) {
				ssize_t n = read(c2, &c, 1);
				if (n <= 0) break;
				if (write(c2, &c, 1) != 1) die("write");
			}
			close(c2);
		} else {
			printf("ready\n");
			fflush(stdout);
			for (;;) {
				struct sockaddr_storage from;
				socklen_t fl = sizeof from;
				ssize_t n = recvfrom(s, &c, 1, 0, (struct sockaddr *)&from, &fl);
				if (n < 0) die("recvfrom");
				if (c == 'q') break;
				if (sendto(s, &c, 1, 0, (struct sockaddr *)&from, fl) != 1) die("sendto");
			}
		}
		close(s);
		return 0;
	}
	int n = argc > 5 ? atoi(argv[5]) : 10000;
	if (n < 1) n = 1;
	if (tcp) setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	else {
		struct timeval tv = {1, 0};
		setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	}
	if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect");
	double *t = calloc(n, sizeof *t);
	int got = 0, lost = 0;
	/* a few warm-up trips, not counted */
	for (int i = 0; i < n + 20; i++) {
		double t0 = now_us();
		if (write(s, &c, 1) != 1) die("write");
		ssize_t r = read(s, &c, 1);
		if (r != 1) {
			if (!tcp && r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) { lost++; continue; }
			die("read");
		}
		if (i >= 20) t[got++] = now_us() - t0;
	}
	if (!tcp) { c = 'q'; for (int i = 0; i < 3; i++) write(s, &c, 1); }
	close(s);
	if (got == 0) { printf("nan lost=%d\n", lost); return 1; }
	qsort(t, got, sizeof *t, cmp_double);
	printf("%.2f p10=%.2f p90=%.2f lost=%d\n", t[got / 2], t[got / 10], t[got * 9 / 10], lost);
	return 0;
}
