/*
 * nbconnect - the non-blocking connect as ab (APR) and many event loops do
 * it: connect() -> EINPROGRESS, poll(POLLOUT), then connect() again to
 * learn the outcome, which Linux answers 0 (or EISCONN) once the
 * connection is made. EALREADY after POLLOUT would mean the socket was
 * reported writable while its connect was still pending.
 *
 *	nbconnect SERVER CLIENT ROUNDS THREADS
 *
 * A listener on SERVER (an IPv4 address, port chosen by bind) accepts and
 * closes; THREADS threads each make ROUNDS connections from CLIENT (port
 * 0). Prints "ok N" when all N second connects said 0 or EISCONN, else
 * "bad K of N: ERRNO-NAMES" (and exits 1).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in srv, cli;
static int rounds;
static atomic_int bad, ealready, other;
static atomic_int last_other;

static void die(const char *what)
{
	printf("FAIL %s: %s\n", what, strerror(errno));
	exit(2);
}

static void *client(void *arg)
{
	(void)arg;
	for (int i = 0; i < rounds; i++) {
		int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (c < 0 || bind(c, (struct sockaddr *)&cli, sizeof(cli)) != 0)
			die("client socket");
		int r = connect(c, (struct sockaddr *)&srv, sizeof(srv));
		if (r != 0 && errno != EINPROGRESS)
			die("first connect");
		if (r != 0) {
			struct pollfd p = { .fd = c, .events = POLLOUT };
			if (poll(&p, 1, 5000) != 1)
				die("poll");
			r = connect(c, (struct sockaddr *)&srv, sizeof(srv));
			if (r != 0 && errno != EISCONN) {
				atomic_fetch_add(&bad, 1);
				if (errno == EALREADY)
					atomic_fetch_add(&ealready, 1);
				else {
					atomic_fetch_add(&other, 1);
					atomic_store(&last_other, errno);
				}
			}
		}
		close(c);
	}
	return NULL;
}

static void *acceptor(void *arg)
{
	int l = *(int *)arg;
	for (;;) {
		int a = accept(l, NULL, NULL);
		if (a < 0)
			continue;
		close(a);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: nbconnect SERVER CLIENT ROUNDS THREADS\n");
		return 2;
	}
	srv.sin_family = cli.sin_family = AF_INET;
	if (inet_pton(AF_INET, argv[1], &srv.sin_addr) != 1 ||
	    inet_pton(AF_INET, argv[2], &cli.sin_addr) != 1)
		die("address");
	rounds = atoi(argv[3]);
	int threads = atoi(argv[4]);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	socklen_t len = sizeof(srv);
	if (l < 0 || bind(l, (struct sockaddr *)&srv, sizeof(srv)) != 0 ||
	    listen(l, 1024) != 0 || getsockname(l, (struct sockaddr *)&srv, &len) != 0)
		die("listener");
	pthread_t at, t[64];
	if (threads < 1 || threads > 64 || pthread_create(&at, NULL, acceptor, &l) != 0)
		die("threads");
	for (int i = 0; i < threads; i++)
		if (pthread_create(&t[i], NULL, client, NULL) != 0)
			die("pthread_create");
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	int n = rounds * threads;
	if (bad) {
		printf("bad %d of %d: EALREADY %d, other %d (last %s)\n", bad, n, ealready, other,
		       other ? strerror(last_other) : "-");
		return 1;
	}
	printf("ok %d\n", n);
	return 0;
}
