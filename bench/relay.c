/* relay: the floor of any design that puts a broker process between two
 * programs. N 1-byte round trips from a client to an echo process through a
 * relay process that moves bytes between two unix socket pairs with epoll,
 * doing no other work: four process wake-ups per round trip where kernel
 * loopback TCP has two. Prints the median in µs, then p10/p90.
 *
 *   relay N
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

int main(int argc, char **argv) {
	int n = argc > 1 ? atoi(argv[1]) : 10000;
	if (n < 1) n = 1;
	int a[2], b[2];
	char c = 'x';
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, a) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, b) < 0)
		die("socketpair");
	pid_t relay = fork();
	if (relay < 0) die("fork");
	if (relay == 0) { /* a[1] <-> b[1] */
		close(a[0]);
		close(b[0]);
		int ep = epoll_create1(0);
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = a[1]};
		epoll_ctl(ep, EPOLL_CTL_ADD, a[1], &ev);
		ev.data.fd = b[1];
		epoll_ctl(ep, EPOLL_CTL_ADD, b[1], &ev);
		char buf[64];
		for (;;) {
			struct epoll_event e;
			if (epoll_wait(ep, &e, 1, -1) < 1) continue;
			ssize_t k = read(e.data.fd, buf, sizeof buf);
			if (k <= 0) _exit(0);
			if (write(e.data.fd == a[1] ? b[1] : a[1], buf, k) != k) _exit(1);
		}
	}
	pid_t echo = fork();
	if (echo < 0) die("fork");
	if (echo == 0) {
		close(a[0]);
		close(a[1]);
		close(b[1]);
		while (read(b[0], &c, 1) == 1)
			if (write(b[0], &c, 1) != 1) _exit(1);
		_exit(0);
	}
	close(a[1]);
	close(b[0]);
	close(b[1]);
	double *t = calloc(n, sizeof *t);
	for (int i = 0; i < n + 20; i++) {
		double t0 = now_us();
		if (write(a[0], &c, 1) != 1) die("write");
		if (read(a[0], &c, 1) != 1) die("read");
		if (i >= 20) t[i - 20] = now_us() - t0;
	}
	close(a[0]);
	while (wait(NULL) > 0)
		;
	qsort(t, n, sizeof *t, cmp_double);
	printf("%.2f p10=%.2f p90=%.2f\n", t[n / 2], t[n / 10], t[n * 9 / 10]);
	return 0;
}
