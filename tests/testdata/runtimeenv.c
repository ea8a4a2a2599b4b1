/*
 * runtimeenv.c - a test program that configures socket_wrapper at run time,
 * as test suites do in their set-up and tear-down code. Started under the
 * shim with no SOCKET_WRAPPER_* variable (TestRuntimeEnv):
 *
 *   runtimeenv NATIVE_PORT TCP_PORT UDP_PORT DIR PCAP DIR2 PORT2
 *
 *  1. socket_wrapper_enabled() is false; a TCP connect to 127.0.0.1:NATIVE_PORT
 *     (a real listener) gets a plain socket;
 *  2. setenv DIR, DEFAULT_IFACE=11, PCAP_FILE: enabled; a TCP exchange with the
 *     wrapped server on 127.0.0.10:TCP_PORT (messages of a 4-byte length and
 *     data, answered by the FNV-1a 64 of the data in 16 hex digits), and a UDP
 *     exchange with 127.0.0.10:UDP_PORT (echo);
 *  3. setenv MAX_SOCKETS=5: with 2 wrapped sockets open, 3 more are created
 *     and the next fails with ENFILE;
 *  4. unsetenv all: disabled; a new socket is plain again (native connect);
 *     the wrapped TCP socket of step 2 still exchanges data;
 *  5. setenv DIR=DIR2 (another network), DEFAULT_IFACE=12: a TCP exchange with
 *     DIR2's server on 127.0.0.10:PORT2 from 127.0.0.12, while the socket of
 *     step 2 still reports its own addresses (asked at DIR's broker) and
 *     exchanges data;
 *  6. unsetenv, then environ replaced by the program itself (no setenv):
 *     socket_wrapper_enabled() follows it both ways.
 *
 * Prints "KEY value" lines for the test to check, and exits 0, or prints
 * "FAIL ..." and exits 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;
	int e = errno;
	printf("FAIL ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" (errno %s)\n", strerrorname_np(e) ? strerrorname_np(e) : "?");
	exit(1);
}

static bool enabled(void)
{
	bool (*f)(void) = (bool (*)(void))dlsym(RTLD_DEFAULT, "socket_wrapper_enabled");
	if (!f)
		fail("socket_wrapper_enabled not found: shim not preloaded");
	return f();
}

static struct sockaddr_in addr4(const char *ip, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static const char *local(int fd)
{
	static char buf[64];
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	if (getsockname(fd, (struct sockaddr *)&a, &len) != 0)
		fail("getsockname");
	inet_ntop(AF_INET, &a.sin_addr, buf, sizeof(buf));
	return buf;
}

static int tcp_connect(const char *ip, int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		fail("socket");
	struct sockaddr_in a = addr4(ip, port);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		fail("connect %s:%d", ip, port);
	return fd;
}

static void xwrite(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w <= 0)
			fail("write");
		c += w;
		n -= (size_t)w;
	}
}

static void xread(int fd, void *p, size_t n)
{
	char *c = p;
	while (n > 0) {
		ssize_t r = read(fd, c, n);
		if (r <= 0)
			fail("read (%zd)", r);
		c += r;
		n -= (size_t)r;
	}
}

static uint64_t fnv64(const unsigned char *p, size_t n)
{
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

/* exchange sends a message of n pattern bytes on fd and checks the hash the
 * server answers with. */
static void exchange(const char *what, int fd, size_t n, unsigned seed)
{
	unsigned char *buf = malloc(n);
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)((i * 31 + seed) ^ (i >> 8));
	uint32_t len = htonl((uint32_t)n);
	xwrite(fd, &len, 4);
	xwrite(fd, buf, n);
	char want[17], got[17] = { 0 };
	snprintf(want, sizeof(want), "%016llx", (unsigned long long)fnv64(buf, n));
	xread(fd, got, 16);
	if (strcmp(want, got) != 0)
		fail("%s: server hash %s, sent %s", what, got, want);
	printf("%s bytes=%zu hash=%s\n", what, n, got);
	free(buf);
}

/* native checks a connect to the real listener: a plain socket. */
static void native(const char *what, int port)
{
	int fd = tcp_connect("127.0.0.1", port);
	printf("%s_local %s\n", what, local(fd));
	xwrite(fd, "hi\n", 3);
	char b[3];
	xread(fd, b, 3);
	if (memcmp(b, "hi\n", 3) != 0)
		fail("%s: echo", what);
	close(fd);
}

int main(int argc, char **argv)
{
	if (argc != 8)
		fail("usage: runtimeenv NATIVE_PORT TCP_PORT UDP_PORT DIR PCAP DIR2 PORT2");
	int nport = atoi(argv[1]), tport = atoi(argv[2]), uport = atoi(argv[3]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "SOCKET_WRAPPER_", 15) == 0)
			fail("started with %s", *e);

	/* 1. Not configured. */
	printf("enabled_at_start %d\n", enabled());
	native("native_before", nport);

	/* 2. Configured at run time. */
	if (setenv("SOCKET_WRAPPER_DIR", argv[4], 1) || setenv("SOCKET_WRAPPER_DEFAULT_IFACE", "11", 1) ||
	    setenv("SOCKET_WRAPPER_PCAP_FILE", argv[5], 1))
		fail("setenv");
	printf("enabled_after_setenv %d\n", enabled());
	int w = tcp_connect("127.0.0.10", tport);
	printf("wrapped_local %s\n", local(w));
	exchange("wrapped_tcp", w, 100000, 1);

	int u = socket(AF_INET, SOCK_DGRAM, 0);
	if (u < 0)
		fail("udp socket");
	struct sockaddr_in ua = addr4("127.0.0.10", uport);
	if (sendto(u, "ping", 4, 0, (struct sockaddr *)&ua, sizeof(ua)) != 4)
		fail("sendto");
	struct pollfd p = { .fd = u, .events = POLLIN };
	if (poll(&p, 1, 10000) != 1)
		fail("udp: no reply in 10 s");
	char ub[64] = { 0 };
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	ssize_t un = recvfrom(u, ub, sizeof(ub) - 1, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
	if (un < 0)
		fail("recvfrom");
	char fs[32];
	inet_ntop(AF_INET, &from.sin_addr, fs, sizeof(fs));
	printf("udp_reply %s from=%s\n", ub, fs);

	/* 3. A limit set at run time: 2 wrapped sockets are open (w, u). */
	if (setenv("SOCKET_WRAPPER_MAX_SOCKETS", "5", 1))
		fail("setenv");
	int extra[8], made = 0, err = 0;
	for (; made < 8; made++) {
		extra[made] = socket(AF_INET, SOCK_STREAM, 0);
		if (extra[made] < 0) {
			err = errno;
			break;
		}
	}
	printf("max_sockets made=%d errno=%s\n", made, err ? strerrorname_np(err) : "0");
	for (int i = 0; i < made; i++)
		close(extra[i]);
	close(u);

	/* 4. Switched off again. */
	if (unsetenv("SOCKET_WRAPPER_DIR") || unsetenv("SOCKET_WRAPPER_DEFAULT_IFACE") ||
	    unsetenv("SOCKET_WRAPPER_PCAP_FILE") || unsetenv("SOCKET_WRAPPER_MAX_SOCKETS"))
		fail("unsetenv");
	printf("enabled_after_unsetenv %d\n", enabled());
	native("native_after", nport);
	exchange("wrapped_tcp_after_unsetenv", w, 50000, 2);

	/* 5. Another directory. */
	if (setenv("SOCKET_WRAPPER_DIR", argv[6], 1) || setenv("SOCKET_WRAPPER_DEFAULT_IFACE", "12", 1))
		fail("setenv");
	int w2 = tcp_connect("127.0.0.10", atoi(argv[7]));
	printf("dir2_local %s\n", local(w2));
	exchange("dir2_tcp", w2, 30000, 3);
	struct sockaddr_in pa;
	socklen_t pl = sizeof(pa);
	if (getpeername(w, (struct sockaddr *)&pa, &pl) != 0)
		fail("getpeername of the first directory's socket");
	char ps[32];
	inet_ntop(AF_INET, &pa.sin_addr, ps, sizeof(ps));
	printf("dir1_socket local=%s peer=%s:%d\n", local(w), ps, ntohs(pa.sin_port));
	exchange("dir1_tcp_after_dir2", w, 20000, 4);
	close(w2);
	close(w);

	/* 6. environ edited directly. */
	if (unsetenv("SOCKET_WRAPPER_DIR") || unsetenv("SOCKET_WRAPPER_DEFAULT_IFACE"))
		fail("unsetenv");
	char **saved = environ, var[4200];
	snprintf(var, sizeof(var), "SOCKET_WRAPPER_DIR=%s", argv[4]);
	char *mine[] = { var, NULL };
	environ = mine;
	int on = enabled();
	environ = saved;
	printf("environ_edit enabled=%d then=%d\n", on, enabled());
	printf("DONE\n");
	return 0;
}
