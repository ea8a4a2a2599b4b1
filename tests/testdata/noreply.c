/*
 * noreply.c - setsockopt calls the shim does not wait for (TCP_CORK,
 * TCP_NODELAY: sent without a reply) keep their order with the thread's
 * next calls, whichever control connection those take.
 *
 *	noreply order ADDR      6 threads, each on its own connected socket,
 *	                        set TCP_NODELAY / TCP_CORK to alternating
 *	                        values and read each back at once, 3000
 *	                        times, while 4 more threads keep the shim's
 *	                        connections busy with getsockopt.
 *	noreply blocked ADDR PEER
 *	                        one thread sets TCP_CORK and reads it back
 *	                        while another is blocked in a connect to a
 *	                        listener on PEER (an IPv4 address across a
 *	                        partition; given up after 2 s) on the control
 *	                        connection the first one used: the read-back
 *	                        comes at once and says 1.
 *	noreply many ADDR       10000 TCP_CORK toggles in a row, nothing waited
 *	                        for in between, ending corked; 100 bytes; an
 *	                        uncork: the peer has them within 150 ms (the
 *	                        cork timer is 200 ms), and TCP_CORK reads 0.
 *
 * ADDR is the IPv4 address to listen on (port chosen by bind). The result
 * is one line on stdout, "OK ..." (exit 0) or "FAIL ..." (exit 1).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SETTERS 6
#define BUSY 4
#define ROUNDS 3000

static atomic_int failures;
static atomic_int stop;
static struct sockaddr_in srv;

#define FAIL(...)                                        \
	do {                                             \
		fprintf(stderr, "noreply: " __VA_ARGS__); \
		atomic_fetch_add(&failures, 1);          \
	} while (0)

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	printf("FAIL %s: %s\n", what, strerror(errno));
	exit(1);
}

/* pair makes a connected TCP socket pair through the listener lfd:
 * *c the client end, *a the accepted one. */
static void pair(int lfd, int *c, int *a)
{
	*c = socket(AF_INET, SOCK_STREAM, 0);
	if (*c < 0)
		die("socket");
	if (connect(*c, (struct sockaddr *)&srv, sizeof(srv)) != 0)
		die("connect");
	*a = accept(lfd, NULL, NULL);
	if (*a < 0)
		die("accept");
}

static int listener(const char *addr)
{
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0)
		die("socket");
	srv.sin_family = AF_INET;
	if (inet_pton(AF_INET, addr, &srv.sin_addr) != 1) {
		printf("FAIL bad address %s\n", addr);
		exit(1);
	}
	socklen_t len = sizeof(srv);
	if (bind(lfd, (struct sockaddr *)&srv, sizeof(srv)) != 0 || listen(lfd, 64) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&srv, &len) != 0)
		die("listen");
	return lfd;
}

static int get_int(int fd, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);
	if (getsockopt(fd, IPPROTO_TCP, name, &v, &len) != 0) {
		FAIL("getsockopt %d: %s\n", name, strerror(errno));
		return -1;
	}
	return v;
}

static void set_int(int fd, int name, int v)
{
	if (setsockopt(fd, IPPROTO_TCP, name, &v, sizeof(v)) != 0)
		FAIL("setsockopt %d=%d: %s\n", name, v, strerror(errno));
}

/* ------------------------------------------------------------ order -- */

static void *setter(void *arg)
{
	int fd = *(int *)arg;
	for (int i = 0; i < ROUNDS && atomic_load(&failures) < 10; i++) {
		int name = (i & 2) ? TCP_CORK : TCP_NODELAY, v = i & 1;
		set_int(fd, name, v);
		int got = get_int(fd, name);
		if (got != v)
			FAIL("round %d: %s set to %d reads %d\n", i, name == TCP_CORK ? "TCP_CORK" : "TCP_NODELAY",
			     v, got);
	}
	return NULL;
}

static void *busy(void *arg)
{
	int fd = *(int *)arg;
	while (!atomic_load(&stop)) {
		int v;
		socklen_t len = sizeof(v);
		if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &len) != 0) {
			FAIL("getsockopt SO_RCVBUF: %s\n", strerror(errno));
			return NULL;
		}
	}
	return NULL;
}

static int order(int lfd)
{
	int c[SETTERS + BUSY], a[SETTERS + BUSY];
	pthread_t t[SETTERS + BUSY];
	for (int i = 0; i < SETTERS + BUSY; i++)
		pair(lfd, &c[i], &a[i]);
	for (int i = 0; i < BUSY; i++)
		pthread_create(&t[SETTERS + i], NULL, busy, &c[SETTERS + i]);
	double t0 = now_s();
	for (int i = 0; i < SETTERS; i++)
		pthread_create(&t[i], NULL, setter, &c[i]);
	for (int i = 0; i < SETTERS; i++)
		pthread_join(t[i], NULL);
	atomic_store(&stop, 1);
	for (int i = 0; i < BUSY; i++)
		pthread_join(t[SETTERS + i], NULL);
	if (atomic_load(&failures))
		return 1;
	printf("OK order: %d threads x %d set+get in %.2f s\n", SETTERS, ROUNDS, now_s() - t0);
	return 0;
}

/* ---------------------------------------------------------- blocked -- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int phase;
static struct sockaddr_in peer;
static double connect_s;

static void wait_phase(int p)
{
	pthread_mutex_lock(&mu);
	while (phase < p)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

static void set_phase(int p)
{
	pthread_mutex_lock(&mu);
	phase = p;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void *connector(void *arg)
{
	(void)arg;
	/* Everything but the connect itself before phase 1: the connect is
	 * this thread's first request after the other's TCP_CORK. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct timeval tv = { 2, 0 };
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
		FAIL("connector socket: %s\n", strerror(errno));
		set_phase(2);
		return NULL;
	}
	wait_phase(1);
	set_phase(2);
	double t0 = now_s();
	if (connect(fd, (struct sockaddr *)&peer, sizeof(peer)) == 0)
		FAIL("connect across the partition succeeded\n");
	connect_s = now_s() - t0;
	close(fd);
	return NULL;
}

static int blocked(int lfd, const char *peeraddr)
{
	/* A listener on PEERADDR (another host, across a partition): the
	 * connect to it blocks until SO_SNDTIMEO gives up. */
	struct sockaddr_in mine = srv;
	int pfd = listener(peeraddr);
	peer = srv;
	srv = mine;
	(void)pfd;
	int c, a;
	pair(lfd, &c, &a);
	pthread_t t;
	pthread_create(&t, NULL, connector, NULL);
	usleep(100000); /* the connector has made its socket */
	set_int(c, TCP_CORK, 1);
	set_phase(1);
	wait_phase(2);
	usleep(200000); /* the connector is inside its blocking connect */
	double t0 = now_s();
	int got = get_int(c, TCP_CORK);
	double took = now_s() - t0;
	pthread_join(t, NULL);
	if (got != 1)
		FAIL("TCP_CORK set to 1 reads %d\n", got);
	if (took > 0.3)
		FAIL("getsockopt took %.3f s while another thread was connecting\n", took);
	if (connect_s < 1.0)
		FAIL("the connect across the partition ended after %.3f s: it did not block\n", connect_s);
	if (atomic_load(&failures))
		return 1;
	printf("OK blocked: getsockopt %.1f ms, the connect blocked %.2f s\n", took * 1e3, connect_s);
	return 0;
}

/* ------------------------------------------------------------- many -- */

static int many(int lfd)
{
	int c, a;
	pair(lfd, &c, &a);
	double t0 = now_s();
	for (int i = 0; i < 10000; i++)
		set_int(c, TCP_CORK, !(i & 1)); /* 1, 0, ..., the last (i = 9999) 0 */
	set_int(c, TCP_CORK, 1);
	double sets = now_s() - t0;
	char buf[100];
	memset(buf, 'x', sizeof(buf));
	if (write(c, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		die("write");
	t0 = now_s();
	set_int(c, TCP_CORK, 0);
	size_t got = 0;
	while (got < sizeof(buf)) {
		struct pollfd p = { a, POLLIN, 0 };
		int left = 1000 - (int)((now_s() - t0) * 1e3);
		if (left <= 0 || poll(&p, 1, left) != 1)
			break;
		ssize_t n = read(a, buf, sizeof(buf) - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	double took = now_s() - t0;
	if (got != sizeof(buf))
		FAIL("%zu of 100 bytes after the uncork\n", got);
	else if (took > 0.15)
		FAIL("the uncorked bytes took %.3f s\n", took);
	int v = get_int(c, TCP_CORK);
	if (v != 0)
		FAIL("TCP_CORK reads %d after the uncork\n", v);
	if (atomic_load(&failures))
		return 1;
	printf("OK many: 10001 corks in %.3f s, uncorked bytes in %.1f ms\n", sets, took * 1e3);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 3) {
		fprintf(stderr, "usage: noreply order|blocked|many ADDR [PEER]\n");
		return 2;
	}
	int lfd = listener(argv[2]);
	int r;
	if (strcmp(argv[1], "order") == 0)
		r = order(lfd);
	else if (strcmp(argv[1], "blocked") == 0 && argc > 3)
		r = blocked(lfd, argv[3]);
	else if (strcmp(argv[1], "many") == 0)
		r = many(lfd);
	else {
		fprintf(stderr, "usage: noreply order|blocked|many ADDR [PEER]\n");
		return 2;
	}
	if (r != 0)
		printf("FAIL %s: %d failures (stderr)\n", argv[1], atomic_load(&failures));
	return r;
}
