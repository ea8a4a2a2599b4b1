/*
 * sigloop.c - trapped calls interrupted by signals, for the seccomp path.
 *
 *	sigloop connect ADDR    200 blocking connects to an echo listener of
 *	                        this process on ADDR, one byte echoed on each
 *	sigloop udp ADDR        a child sends 200 numbered datagrams, 2 ms
 *	                        apart, to a socket on ADDR that the parent
 *	                        reads with blocking recvfrom
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

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: sigloop connect|udp ADDR\n");
		return 2;
	}
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1)
		return 2;
	if (strcmp(argv[1], "connect") == 0)
		return run_connect(&a);
	return run_udp(&a);
}
