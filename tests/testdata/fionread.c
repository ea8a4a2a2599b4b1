/*
 * fionread.c - FIONREAD the way wrk uses it: after data arrives, ask how
 * much is queued, many times. Prints one line per phase:
 *
 *     <phase> calls=<n> value=<last value> ns_per_call=<mean>
 *
 * Phases: "queued" (1000 bytes waiting on the socket) and "empty" (all
 * read). Usage: fionread SELF4 CALLS
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static void phase(const char *name, int fd, int calls)
{
	int v = -1;
	double t0 = now_ns();
	for (int i = 0; i < calls; i++)
		if (ioctl(fd, FIONREAD, &v) < 0)
			die("ioctl");
	double dt = now_ns() - t0;
	printf("%s calls=%d value=%d ns_per_call=%.0f\n", name, calls, v, dt / calls);
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	int calls = atoi(argv[2]);
	struct sockaddr_in a = {.sin_family = AF_INET};
	if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1)
		return 2;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0)
		die("listen");
	socklen_t len = sizeof(a);
	getsockname(l, (struct sockaddr *)&a, &len);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("connect");
	int s = accept(l, NULL, NULL);
	if (s < 0)
		die("accept");
	char buf[1000];
	memset(buf, 'f', sizeof(buf));
	if (write(c, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		die("write");
	struct pollfd p = {.fd = s, .events = POLLIN};
	if (poll(&p, 1, 5000) != 1)
		die("poll");
	/* A marker in the log between the set-up and the measured calls. */
	fprintf(stderr, "fionread: phase queued\n");
	phase("queued", s, calls);
	size_t got = 0;
	while (got < sizeof(buf)) {
		ssize_t r = read(s, buf, sizeof(buf) - got);
		if (r <= 0)
			die("read");
		got += r;
	}
	fprintf(stderr, "fionread: phase empty\n");
	phase("empty", s, calls);
	fflush(stdout);
	return 0;
}
