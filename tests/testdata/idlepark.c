/* idlepark: connections that sit idle, then carry bytes, a FIN, an RST and
 * a close. Run under the shim on one host, it connects N clients bound to
 * CLIENT (another host) to its own listener on SERVER:PORT, prints
 * "idle N" and waits for a line on standard input (the test then checks
 * that the broker parked the idle sessions). Then, on those connections:
 *
 *   0: 1 MiB client -> server, then 1 MiB server -> client, checked bytes
 *   1: one byte each way, twice
 *   2: client shutdown(SHUT_WR): the server reads EOF, then writes; the
 *      client reads it, then EOF once the server closes
 *   3: client close with SO_LINGER 0: the server's read fails
 *   4: server close with SO_LINGER 0: the client's read fails
 *   5: client close: the server reads EOF
 *   6: server close: the client reads EOF
 *   7: client shutdown(SHUT_RD): its read returns EOF at once
 *
 * printing one line per check ("data ok", "rst errno=104", ...), then
 * "done" and waits for standard input again (the rest stay idle).
 *
 *   idlepark SERVER CLIENT PORT N    (PORT 0: any)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BULK (1 << 20)

static void die(const char *what) {
	printf("error %s: %s\n", what, strerror(errno));
	fflush(stdout);
	exit(1);
}

static unsigned char pattern(size_t i, unsigned seed) { return (unsigned char)((i * 131 + seed) >> 3); }

struct bulk {
	int fd;
	unsigned seed;
	int err;
};

static void *writer(void *arg) {
	struct bulk *b = arg;
	static unsigned char buf[BULK];
	for (size_t i = 0; i < BULK; i++) buf[i] = pattern(i, b->seed);
	for (size_t off = 0; off < BULK;) {
		ssize_t n = write(b->fd, buf + off, BULK - off);
		if (n < 0) {
			b->err = errno;
			return NULL;
		}
		off += (size_t)n;
	}
	return NULL;
}

/* bulk sends 1 MiB from 'from' to 'to' (a thread writes) and reports
 * whether every byte arrived as sent. */
static int bulk(int from, int to, unsigned seed) {
	struct bulk b = {from, seed, 0};
	pthread_t t;
	if (pthread_create(&t, NULL, writer, &b) != 0) die("pthread_create");
	static unsigned char buf[65536];
	size_t got = 0;
	int ok = 1;
	while (got < BULK) {
		ssize_t n = read(to, buf, sizeof buf);
		if (n <= 0) {
			ok = 0;
			break;
		}
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != pattern(got + (size_t)i, seed)) ok = 0;
		got += (size_t)n;
	}
	pthread_join(t, NULL);
	return ok && b.err == 0;
}

static void linger0(int fd) {
	struct linger l = {1, 0};
	if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) < 0) die("SO_LINGER");
}

/* readResult reads once and describes it: "eof", "errno=N" or "bytes=N". */
static const char *readResult(int fd) {
	static char s[64];
	char c[16];
	ssize_t n = read(fd, c, sizeof c);
	if (n == 0) return "eof";
	if (n < 0)
		snprintf(s, sizeof s, "errno=%d", errno);
	else
		snprintf(s, sizeof s, "bytes=%zd", n);
	return s;
}

static void waitLine(void) {
	char line[64];
	if (!fgets(line, sizeof line, stdin)) exit(0);
}

int main(int argc, char **argv) {
	if (argc != 5) {
		fprintf(stderr, "usage: idlepark SERVER CLIENT PORT N\n");
		return 2;
	}
	int n = atoi(argv[4]);
	if (n < 8) n = 8;
	struct sockaddr_in srv = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
	struct sockaddr_in cli = {.sin_family = AF_INET};
	if (inet_pton(AF_INET, argv[1], &srv.sin_addr) != 1 || inet_pton(AF_INET, argv[2], &cli.sin_addr) != 1)
		die("inet_pton");
	int ln = socket(AF_INET, SOCK_STREAM, 0);
	if (ln < 0 || bind(ln, (struct sockaddr *)&srv, sizeof srv) < 0 || listen(ln, 1024) < 0) die("listen");
	socklen_t sl = sizeof srv;
	if (getsockname(ln, (struct sockaddr *)&srv, &sl) < 0) die("getsockname"); /* PORT 0: the one given */
	int *c = calloc(n, sizeof *c), *s = calloc(n, sizeof *s);
	for (int i = 0; i < n; i++) {
		c[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (c[i] < 0 || bind(c[i], (struct sockaddr *)&cli, sizeof cli) < 0) die("client bind");
		if (connect(c[i], (struct sockaddr *)&srv, sizeof srv) < 0) die("connect");
		s[i] = accept(ln, NULL, NULL);
		if (s[i] < 0) die("accept");
	}
	printf("idle %d\n", n);
	fflush(stdout);
	waitLine();

	/* 0: bulk both ways, the server's direction first woken by the client's */
	printf("data c2s %s\n", bulk(c[0], s[0], 1) ? "ok" : "BAD");
	printf("data s2c %s\n", bulk(s[0], c[0], 2) ? "ok" : "BAD");

	/* 1: single bytes */
	int small = 1;
	for (int k = 0; k < 2; k++) {
		char x = (char)('a' + k), y = 0;
		if (write(c[1], &x, 1) != 1 || read(s[1], &y, 1) != 1 || y != x) small = 0;
		if (write(s[1], &x, 1) != 1 || read(c[1], &y, 1) != 1 || y != x) small = 0;
		if (k == 0) usleep(600 * 1000); /* idle again between the two */
	}
	printf("bytes %s\n", small ? "ok" : "BAD");

	/* 2: half-close */
	if (shutdown(c[2], SHUT_WR) < 0) die("shutdown");
	printf("fin server %s\n", readResult(s[2]));
	if (write(s[2], "late", 4) != 4) die("write after FIN");
	printf("fin client %s\n", readResult(c[2]));
	close(s[2]);
	printf("fin client %s\n", readResult(c[2]));

	/* 3, 4: resets */
	linger0(c[3]);
	close(c[3]);
	printf("rst server %s\n", readResult(s[3]));
	linger0(s[4]);
	close(s[4]);
	printf("rst client %s\n", readResult(c[4]));

	/* 5, 6: closes */
	close(c[5]);
	printf("close server %s\n", readResult(s[5]));
	close(s[6]);
	printf("close client %s\n", readResult(c[6]));

	/* 7: the read half */
	if (shutdown(c[7], SHUT_RD) < 0) die("shutdown");
	printf("shut_rd client %s\n", readResult(c[7]));

	printf("done\n");
	fflush(stdout);
	waitLine();
	return 0;
}
