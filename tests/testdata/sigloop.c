/*
 * sigloop.c - trapped calls interrupted by signals, for the seccomp path.
 *
 *	sigloop connect ADDR    200 blocking connects to an echo listener of
 *	                        this process on ADDR, one byte echoed on each
 *	sigloop udp ADDR        a child sends 200 numbered datagrams, 2 ms
 *	                        apart, to a socket on ADDR that the parent
 *	                        reads with blocking recvfrom
 *
 *	sigloop slow PEER       blocking connects to a listener of this
 *	                        process on PEER, a host the test has put
 *	                        behind a delay of at least 1 s: one
 *	                        SIGALRM 50 ms in, without SA_RESTART, must
 *	                        fail the connect with EINTR at once while the
 *	                        attempt goes on (poll, SO_ERROR 0, one byte
 *	                        echoed); with SA_RESTART the connect is
 *	                        restarted and succeeds
 *
 * SIGALRM arrives every 200 us throughout (setitimer), its handler counts;
 * connect runs with SA_RESTART, udp without (recvfrom's EINTR is retried).
 * Prints "OK ..." and exits 0 when nothing was lost or reordered and every
 * source address is ADDR's; "FAIL ..." and exit 1 otherwise.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N 200

static atomic_long alarms;

static void on_alarm(int sig)
{
	(void)sig;
	atomic_fetch_add(&alarms, 1);
}

static void fail(const char *what)
{
	printf("FAIL %s: %s\n", what, strerror(errno));
	exit(1);
}

static void arm(bool restart)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, 200 }, { 0, 200 } };
	setitimer(ITIMER_REAL, &it, NULL);
}

static void disarm(void)
{
	struct itimerval it;
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
}

static void *echo(void *arg)
{
	int l = *(int *)arg;
	for (int i = 0; i < N; i++) {
		int c;
		do
			c = accept(l, NULL, NULL);
		while (c < 0 && errno == EINTR);
		if (c < 0)
			fail("accept");
		char b;
		ssize_t n;
		do
			n = read(c, &b, 1);
		while (n < 0 && errno == EINTR);
		if (n == 1)
			while (write(c, &b, 1) < 0 && errno == EINTR)
				;
		close(c);
	}
	return NULL;
}

static int run_connect(struct sockaddr_in *a)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)a, sizeof(*a)) != 0 || listen(l, 64) != 0)
		fail("listen");
	socklen_t len = sizeof(*a);
	getsockname(l, (struct sockaddr *)a, &len);
	pthread_t t;
	pthread_create(&t, NULL, echo, &l);
	arm(true);
	for (int i = 0; i < N; i++) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		if (s < 0)
			fail("socket");
		if (connect(s, (struct sockaddr *)a, sizeof(*a)) != 0)
			fail("connect");
		char b = (char)i, r = 0;
		while (write(s, &b, 1) < 0 && errno == EINTR)
			;
		ssize_t n;
		do
			n = read(s, &r, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1 || r != b) {
			printf("FAIL echo %d: got %zd bytes\n", i, n);
			return 1;
		}
		close(s);
	}
	disarm();
	pthread_join(t, NULL);
	printf("OK connects=%d alarms=%ld\n", N, atomic_load(&alarms));
	return 0;
}

static int run_udp(struct sockaddr_in *a)
{
	int r = socket(AF_INET, SOCK_DGRAM, 0);
	if (r < 0 || bind(r, (struct sockaddr *)a, sizeof(*a)) != 0)
		fail("bind");
	socklen_t len = sizeof(*a);
	getsockname(r, (struct sockaddr *)a, &len);
	pid_t pid = fork();
	if (pid == 0) {
		int s = socket(AF_INET, SOCK_DGRAM, 0);
		struct sockaddr_in src = *a;
		src.sin_port = 0;
		if (s < 0 || bind(s, (struct sockaddr *)&src, sizeof(src)) != 0)
			_exit(2);
		for (int i = 0; i < N; i++) {
			if (sendto(s, &i, sizeof(i), 0, (struct sockaddr *)a, sizeof(*a)) != sizeof(i))
				_exit(3);
			struct timespec ts = { 0, 2000000 };
			nanosleep(&ts, NULL);
		}
		_exit(0);
	}
	arm(false);
	int eintr = 0;
	for (int i = 0; i < N; i++) {
		int v = -1;
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(r, &v, sizeof(v), 0, (struct sockaddr *)&from, &fl);
		if (n < 0 && errno == EINTR) {
			eintr++;
			i--;
			continue;
		}
		if (n != sizeof(v) || v != i || from.sin_addr.s_addr != a->sin_addr.s_addr) {
			printf("FAIL datagram %d: n=%zd v=%d from %s\n", i, n, v, inet_ntoa(from.sin_addr));
			return 1;
		}
	}
	disarm();
	int st;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		printf("FAIL sender status %d\n", st);
		return 1;
	}
	printf("OK datagrams=%d alarms=%ld eintr=%d\n", N, atomic_load(&alarms), eintr);
	return 0;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* One alarm after 50 ms. */
static void alarm_once(bool restart)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, 0 }, { 0, 50000 } };
	setitimer(ITIMER_REAL, &it, NULL);
}

/* The connection s (connected to listener l) carries one byte each way. */
static int exchange(int l, int s, const char *what)
{
	int c = accept(l, NULL, NULL);
	char b = 'x', r = 0;
	if (c < 0 || write(s, &b, 1) != 1 || read(c, &r, 1) != 1 || r != b || write(c, &b, 1) != 1 ||
	    read(s, &r, 1) != 1 || r != b) {
		printf("FAIL %s: no byte echoed: %s\n", what, strerror(errno));
		return -1;
	}
	close(c);
	return 0;
}

static int run_slow(struct sockaddr_in *a)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)a, sizeof(*a)) != 0 || listen(l, 8) != 0)
		fail("listen");
	socklen_t len = sizeof(*a);
	getsockname(l, (struct sockaddr *)a, &len);

	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	alarm_once(false);
	int r = connect(s, (struct sockaddr *)a, sizeof(*a));
	int e = errno;
	double eintr_ms = ms_since(&t0);
	if (r == 0 || e != EINTR || eintr_ms > 800) {
		printf("FAIL connect without SA_RESTART: %d %s after %.0f ms, want EINTR at 50 ms\n", r,
		       r ? strerror(e) : "", eintr_ms);
		return 1;
	}
	struct pollfd p = { .fd = s, .events = POLLOUT };
	int soerr = -1;
	socklen_t sl = sizeof(soerr);
	if (poll(&p, 1, 5000) != 1 || getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
		printf("FAIL interrupted connect: poll/SO_ERROR %d: %s\n", soerr, strerror(errno));
		return 1;
	}
	double done_ms = ms_since(&t0);
	if (done_ms < 900) {
		printf("FAIL interrupted connect done after %.0f ms: the link has no delay\n", done_ms);
		return 1;
	}
	if (exchange(l, s, "interrupted connect") < 0)
		return 1;
	close(s);

	s = socket(AF_INET, SOCK_STREAM, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	long before = atomic_load(&alarms);
	alarm_once(true);
	r = connect(s, (struct sockaddr *)a, sizeof(*a));
	double restart_ms = ms_since(&t0);
	if (r != 0 || atomic_load(&alarms) == before) {
		printf("FAIL connect with SA_RESTART: %s after %.0f ms (%ld alarms)\n", r ? strerror(errno) : "0",
		       restart_ms, atomic_load(&alarms) - before);
		return 1;
	}
	if (exchange(l, s, "restarted connect") < 0)
		return 1;
	printf("OK eintr_ms=%.0f done_ms=%.0f restart_ms=%.0f\n", eintr_ms, done_ms, restart_ms);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: sigloop connect|udp|slow ADDR\n");
		return 2;
	}
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1)
		return 2;
	if (strcmp(argv[1], "connect") == 0)
		return run_connect(&a);
	if (strcmp(argv[1], "slow") == 0)
		return run_slow(&a);
	return run_udp(&a);
}
