/* helpers.h - what the bench/ C programs share: failing loudly, a
 * monotonic clock in microseconds, and a comparison for qsort of doubles. */
#ifndef SWRAP_BENCH_HELPERS_H
#define SWRAP_BENCH_HELPERS_H

#include <stdio.h>
#include <stdlib.h>
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

#endif
