/* helpers.h - what the bench/ C programs share: failing loudly, a
 * monotonic clock in microseconds, a comparison for qsort of doubles, and
 * a TCP listener. */
#ifndef SWRAP_BENCH_HELPERS_H
#define SWRAP_BENCH_HELPERS_H

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

static inline void die(const char *what) { perror(what); exit(1); }

static inline double now_us(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static inline int cmp_double(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* tcp_listen returns a TCP socket listening on sa (SO_REUSEADDR), or dies. */
static inline int tcp_listen(const struct sockaddr_in *sa, int backlog) {
	int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0) die("socket");
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(s, (const struct sockaddr *)sa, sizeof *sa) < 0) die("bind");
	if (listen(s, backlog) < 0) die("listen");
	return s;
}

#endif
