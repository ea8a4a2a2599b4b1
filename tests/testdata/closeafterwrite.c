/*
 * closeafterwrite - bytes written right before a close, right after a
 * connect, must all arrive before the EOF.
 *
 *	closeafterwrite SERVER CLIENT ROUNDS THREADS [cork]
 *
 * A listener on SERVER (an IPv4 address, port chosen by bind); THREADS
 * threads each make ROUNDS connections from CLIENT (port 0), and on each
 * write 600 bytes and close at once, as an HTTP/1.0 client or a "send
 * and hang up" notifier does. One acceptor reads every accepted
 * connection to EOF (2 s at most each). With "cork", each client sets
 * TCP_CORK before it writes (nginx's tcp_nopush: the close must send the
 * corked bytes with the FIN; the shim does not wait for that setsockopt,
 * which may reach the broker after the close). Prints "ok N" when all N
 * connections delivered their 600 bytes and the EOF, else "lost K of N"
 * (and exits 1).
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

#define MSG 600

static struct sockaddr_in srv, cli;
static int rounds, cork;
static atomic_int client_errors;

static void die(const char *what)
{
	printf("FAIL %s: %s\n", what, strerror(errno));
	exit(2);
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *client(void *arg)
{
	(void)arg;
	char buf[MSG];
	memset(buf, 'w', sizeof(buf));
	for (int i = 0; i < rounds; i++) {
		int c = socket(AF_INET, SOCK_STREAM, 0);
		int on = 1;
		if (c < 0 || bind(c, (struct sockaddr *)&cli, sizeof(cli)) != 0 ||
		    connect(c, (struct sockaddr *)&srv, sizeof(srv)) != 0 ||
		    (cork && setsockopt(c, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)) != 0) ||
		    write(c, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
			fprintf(stderr, "closeafterwrite: client round %d: %s\n", i, strerror(errno));
			atomic_fetch_add(&client_errors, 1);
		}
		if (c >= 0)
			close(c);
	}
	return NULL;
}

/* drain reads fd to EOF for at most 2 s: 1 if exactly MSG bytes of 'w'
 * came, then EOF. */
static int drain(int fd)
{
	char buf[2 * MSG];
	size_t got = 0;
	long end = now_ms() + 2000;
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		long left = end - now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			return 0;
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0)
			return 0;
		if (n == 0)
			return got == MSG;
		for (ssize_t k = 0; k < n; k++)
			if (buf[k] != 'w')
				return 0;
		got += (size_t)n;
	}
}

int main(int argc, char **argv)
{
	if (argc != 5 && !(argc == 6 && strcmp(argv[5], "cork") == 0)) {
		fprintf(stderr, "usage: closeafterwrite SERVER CLIENT ROUNDS THREADS [cork]\n");
		return 2;
	}
	srv.sin_family = cli.sin_family = AF_INET;
	if (inet_pton(AF_INET, argv[1], &srv.sin_addr) != 1 || inet_pton(AF_INET, argv[2], &cli.sin_addr) != 1) {
		fprintf(stderr, "closeafterwrite: bad address\n");
		return 2;
	}
	rounds = atoi(argv[3]);
	cork = argc == 6;
	int threads = atoi(argv[4]);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	socklen_t len = sizeof(srv);
	if (l < 0 || bind(l, (struct sockaddr *)&srv, sizeof(srv)) != 0 || listen(l, 128) != 0 ||
	    getsockname(l, (struct sockaddr *)&srv, &len) != 0)
		die("listen");
	pthread_t t[64];
	if (threads < 1 || threads > 64)
		threads = 1;
	for (int i = 0; i < threads; i++)
		if (pthread_create(&t[i], NULL, client, NULL) != 0)
			die("pthread_create");
	int total = rounds * threads, lost = 0;
	for (int i = 0; i < total; i++) {
		int a = accept(l, NULL, NULL);
		if (a < 0)
			die("accept");
		if (!drain(a))
			lost++;
		close(a);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	if (lost || client_errors) {
		printf("lost %d of %d (client errors %d)\n", lost, total, atomic_load(&client_errors));
		return 1;
	}
	printf("ok %d\n", total);
	return 0;
}
