/*
 * conf.h - the tiny harness shared by swrap's conformance programs.
 *
 * Every program in tests/conformance runs a group of socket behaviours and
 * prints one line per check:
 *
 *     CHECK <name> <result>
 *
 * followed by "DONE <count>". The result must be deterministic and identical
 * whether the program runs natively against kernel loopback (127.0.0.1, ::1)
 * or under swrap (127.0.0.10, fd00::5357:5f0a): addresses are printed as
 * symbols (SELF4, ANY6, ...), ephemeral ports only as facts (port!=0,
 * port=expected), errors as errno names.
 *
 * Environment:
 *   CONF_ADDR4        this process's IPv4 address (127.0.0.1 natively)
 *   CONF_ADDR6        this process's IPv6 address (::1 natively)
 *   CONF_NONLOCAL4    an IPv4 address that is not local; only ever bound
 *                     (and the bind must fail), never sent to
 *   CONF_PEER4        another local IPv4 address this process may bind
 *                     (127.0.0.2 natively; another emulated host's
 *                     address under swrap)
 *   CONF_CLOSED_PORT  optional: a TCP port with no listener. Without it the
 *                     program reserves one itself with a bound socket that
 *                     never listens, which is safe under parallel runs.
 *   CONF_EXPECT_SWRAP =1: abort unless the swrap shim is active (=seccomp:
 *                     unless a seccomp filter is, for swrap's seccomp path), so that a
 *                     shim failure can never send packets anywhere real.
 *
 * Network safety: without CONF_EXPECT_SWRAP=1 the addresses must be
 * loopback (127.0.0.0/8, ::1) or the program refuses to run.
 */
#ifndef CONF_H
#define CONF_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Per-program (and per forked child) time limit, in seconds. */
#define CONF_ALARM 20

/* CONF_FN marks harness functions: not every program uses every one. */
#define CONF_FN __attribute__((unused)) static

static struct in_addr conf_addr4;
static struct in6_addr conf_addr6;
static struct in_addr conf_nonlocal4;
static struct in_addr conf_peer4;
static int conf_nchecks;
static const char *conf_prog = "conf";
static const char *conf_last = "(none)";

/* die reports a failure of the harness itself (not a check) and exits 2. */
__attribute__((format(printf, 1, 2), noreturn)) CONF_FN void die(const char *fmt, ...)
{
	va_list ap;
	int e = errno;
	fflush(stdout);
	fprintf(stderr, "%s: FATAL: ", conf_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (errno %d %s)\n", e, strerror(e));
	exit(2);
}

/* check prints one "CHECK name result" line. */
__attribute__((format(printf, 2, 3))) CONF_FN void check(const char *name, const char *fmt, ...)
{
	va_list ap;
	conf_last = name;
	printf("CHECK %s ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	conf_nchecks++;
}

/* ring returns one of 16 rotating scratch buffers for formatted results. */
CONF_FN char *ring(void)
{
	static char bufs[16][256];
	static int n;
	return bufs[n++ & 15];
}

/* errname is the symbolic name of an errno value. */
CONF_FN const char *errname(int e)
{
	const char *s = strerrorname_np(e);
	if (s != NULL)
		return s;
	char *b = ring();
	snprintf(b, 256, "E#%d", e);
	return b;
}

/*
 * res formats a syscall result: the number when >= 0, else the errno name.
 * Use it as res(call(...)) so errno is read right after the call.
 */
CONF_FN const char *res(long r)
{
	int e = errno;
	char *b = ring();
	if (r < 0)
		snprintf(b, 256, "%s", errname(e));
	else
		snprintf(b, 256, "%ld", r);
	return b;
}

/* ok0 formats a result that is expected to be 0 or -1 as "0" or an errno. */
#define ok0(x) res((long)(x))

/* revstr names the bits of a poll revents mask, "0" if none. */
CONF_FN const char *revstr(int rev)
{
	static const struct {
		int bit;
		const char *name;
	} bits[] = {
		{POLLIN, "IN"},         {POLLPRI, "PRI"},       {POLLOUT, "OUT"},
		{POLLERR, "ERR"},       {POLLHUP, "HUP"},       {POLLNVAL, "NVAL"},
		{POLLRDNORM, "RDNORM"}, {POLLRDBAND, "RDBAND"}, {POLLWRNORM, "WRNORM"},
		{POLLWRBAND, "WRBAND"}, {POLLRDHUP, "RDHUP"},
	};
	char *b = ring();
	b[0] = 0;
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		if (rev & bits[i].bit) {
			if (b[0])
				strcat(b, "|");
			strcat(b, bits[i].name);
			rev &= ~bits[i].bit;
		}
	}
	if (rev)
		snprintf(b + strlen(b), 64, "%s0x%x", b[0] ? "|" : "", rev);
	if (!b[0])
		strcpy(b, "0");
	return b;
}

/* hoststr names an address symbolically (SELF4, ANY6, MAPPED_SELF4, ...). */
CONF_FN const char *hoststr(const struct sockaddr *sa)
{
	char *b = ring();
	char tmp[INET6_ADDRSTRLEN];
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
		if (s->sin_addr.s_addr == conf_addr4.s_addr)
			return "SELF4";
		if (s->sin_addr.s_addr == htonl(INADDR_ANY))
			return "ANY4";
		if (s->sin_addr.s_addr == conf_nonlocal4.s_addr)
			return "NONLOCAL4";
		if (s->sin_addr.s_addr == conf_peer4.s_addr)
			return "PEER4";
		if (s->sin_addr.s_addr == htonl(0x7fffffff))
			return "BCAST4";
		inet_ntop(AF_INET, &s->sin_addr, tmp, sizeof(tmp));
		snprintf(b, 256, "OTHER4(%s)", tmp);
		return b;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
		if (IN6_ARE_ADDR_EQUAL(&s->sin6_addr, &conf_addr6))
			return "SELF6";
		if (IN6_IS_ADDR_UNSPECIFIED(&s->sin6_addr))
			return "ANY6";
		if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr)) {
			if (memcmp(&s->sin6_addr.s6_addr[12], &conf_addr4, 4) == 0)
				return "MAPPED_SELF4";
		}
		inet_ntop(AF_INET6, &s->sin6_addr, tmp, sizeof(tmp));
		snprintf(b, 256, "OTHER6(%s)", tmp);
		return b;
	}
	snprintf(b, 256, "AF%d", sa->sa_family);
	return b;
}

/* saport is the port of an AF_INET or AF_INET6 address, host order. */
CONF_FN int saport(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return -1;
}

/*
 * sastr formats an address as "HOST port-fact". With expect >= 0 the port
 * fact is "port=expected" or "port=WRONG"; with expect == -1 it is
 * "port!=0" or "port=0".
 */
CONF_FN const char *sastr(const struct sockaddr *sa, int expect)
{
	char *b = ring();
	int p = saport(sa);
	if (expect >= 0)
		snprintf(b, 256, "%s %s", hoststr(sa), p == expect ? "port=expected" : "port=WRONG");
	else
		snprintf(b, 256, "%s %s", hoststr(sa), p != 0 ? "port!=0" : "port=0");
	return b;
}

/* selfaddr fills ss with this process's address of family fam and port. */
CONF_FN socklen_t selfaddr(int fam, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (fam == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		s->sin_family = AF_INET;
		s->sin_port = htons(port);
		s->sin_addr = conf_addr4;
		return sizeof(*s);
	}
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(port);
	s->sin6_addr = conf_addr6;
	return sizeof(*s);
}

/* peeraddr4 fills ss with CONF_PEER4 and port. */
CONF_FN socklen_t peeraddr4(int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *s = (struct sockaddr_in *)ss;
	s->sin_family = AF_INET;
	s->sin_port = htons(port);
	s->sin_addr = conf_peer4;
	return sizeof(*s);
}

/* anyaddr fills ss with the wildcard address of family fam and port. */
CONF_FN socklen_t anyaddr(int fam, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (fam == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		s->sin_family = AF_INET;
		s->sin_port = htons(port);
		return sizeof(*s);
	}
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(port);
	s->sin6_addr = in6addr_any;
	return sizeof(*s);
}

/* SA casts a sockaddr_storage pointer for the socket calls. */
#define SA(p) ((struct sockaddr *)(p))

/* localport is the port a socket is bound to (dies on failure). */
CONF_FN int localport(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(fd, SA(&ss), &len) < 0)
		die("getsockname");
	return saport(SA(&ss));
}

/* xsocket makes a socket or dies. */
CONF_FN int xsocket(int fam, int type)
{
	int fd = socket(fam, type, 0);
	if (fd < 0)
		die("socket(%d,%d)", fam, type);
	return fd;
}

/* bound makes a socket bound to SELF:0 and returns it; *port gets the port. */
CONF_FN int bound(int fam, int type, int *port)
{
	struct sockaddr_storage ss;
	int fd = xsocket(fam, type);
	socklen_t len = selfaddr(fam, 0, &ss);
	if (bind(fd, SA(&ss), len) < 0)
		die("bind self");
	if (port)
		*port = localport(fd);
	return fd;
}

/* tcp_listener makes a TCP listener on SELF:0; *port gets its port. */
CONF_FN int tcp_listener(int fam, int *port)
{
	int fd = bound(fam, SOCK_STREAM, port);
	if (listen(fd, 16) < 0)
		die("listen");
	return fd;
}

/* tcp_connect makes a blocking TCP connection to SELF:port. */
CONF_FN int tcp_connect(int fam, int port)
{
	struct sockaddr_storage ss;
	int fd = xsocket(fam, SOCK_STREAM);
	socklen_t len = selfaddr(fam, port, &ss);
	if (connect(fd, SA(&ss), len) < 0)
		die("connect self:%d", port);
	return fd;
}

/* tcp_pair makes a connected TCP pair: *c the client, *s the accepted end. */
CONF_FN void tcp_pair(int fam, int *c, int *s)
{
	int port;
	int l = tcp_listener(fam, &port);
	*c = tcp_connect(fam, port);
	*s = accept(l, NULL, NULL);
	if (*s < 0)
		die("accept");
	close(l);
}

/* waitev polls one fd for events up to ms milliseconds; returns revents. */
CONF_FN int waitev(int fd, int events, int ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	int n = poll(&p, 1, ms);
	if (n < 0)
		die("poll");
	return n == 0 ? 0 : p.revents;
}

/* readall reads exactly n bytes (blocking) or dies. */
CONF_FN void readall(int fd, void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r <= 0)
			die("readall: %zd after %zu of %zu", r, got, n);
		got += r;
	}
}

/* writeall writes exactly n bytes or dies. */
CONF_FN void writeall(int fd, const void *buf, size_t n)
{
	size_t put = 0;
	while (put < n) {
		ssize_t r = write(fd, (const char *)buf + put, n - put);
		if (r <= 0)
			die("writeall");
		put += r;
	}
}

/* getint reads an int socket option; returns the value or -errno-ish text. */
CONF_FN const char *getint(int fd, int level, int opt)
{
	int v = -1;
	socklen_t len = sizeof(v);
	if (getsockopt(fd, level, opt, &v, &len) < 0)
		return res(-1);
	char *b = ring();
	snprintf(b, 256, "%d", v);
	return b;
}

/* soerr reads and clears SO_ERROR; returns "0" or the errno name. */
CONF_FN const char *soerr(int fd)
{
	int v = -1;
	socklen_t len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &len) < 0)
		return res(-1);
	return v == 0 ? "0" : errname(v);
}

/* setint sets an int socket option; returns "0" or the errno name. */
CONF_FN const char *setint(int fd, int level, int opt, int v)
{
	return ok0(setsockopt(fd, level, opt, &v, sizeof(v)));
}

/* fdflags describes O_NONBLOCK and FD_CLOEXEC of fd, e.g. "nonblock,cloexec". */
CONF_FN const char *fdflags(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	int fdf = fcntl(fd, F_GETFD);
	char *b = ring();
	if (fl < 0 || fdf < 0)
		return res(-1);
	snprintf(b, 256, "%s,%s", (fl & O_NONBLOCK) ? "nonblock" : "block",
		 (fdf & FD_CLOEXEC) ? "cloexec" : "inherit");
	return b;
}

/* conf_fork flushes stdout and forks; the child gets its own time limit. */
CONF_FN pid_t conf_fork(void)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0)
		alarm(CONF_ALARM);
	return pid;
}

/* waitchild waits for a child and returns its exit status (-sig if killed). */
CONF_FN int waitchild(pid_t pid)
{
	int st;
	if (waitpid(pid, &st, 0) < 0)
		die("waitpid");
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return -WTERMSIG(st);
}

/* closed_port returns a TCP port of SELF with no listener. */
CONF_FN int closed_port(int fam)
{
	static int reserved[2] = {-1, -1};
	const char *e = getenv("CONF_CLOSED_PORT");
	if (e && *e)
		return atoi(e);
	int i = fam == AF_INET ? 0 : 1;
	if (reserved[i] < 0) {
		/* A bound socket that never listens keeps the port ours, and a
		 * SYN to it is answered with RST. */
		int port;
		int fd = bound(fam, SOCK_STREAM, &port);
		reserved[i] = port;
		(void)fd;
	}
	return reserved[i];
}

/* fnv is a 32-bit FNV-1a hash step over a buffer. */
CONF_FN uint32_t fnv(uint32_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

/* conf_timeout reports which check the program was past when its time
 * limit expired, then exits 124. */
CONF_FN void conf_timeout(int sig)
{
	(void)sig;
	const char *parts[] = {conf_prog, ": time limit expired after check ", conf_last, "\n"};
	for (size_t i = 0; i < 4; i++)
		if (write(2, parts[i], strlen(parts[i])) < 0)
			break;
	_exit(124);
}

/* loopback4 reports whether a is in 127.0.0.0/8. */
CONF_FN bool loopback4(struct in_addr a)
{
	return (ntohl(a.s_addr) >> 24) == 127;
}

/*
 * conf_init parses the environment, proves the wrapper is active when
 * CONF_EXPECT_SWRAP=1, refuses non-loopback addresses otherwise, ignores
 * SIGPIPE and arms the time limit.
 */
CONF_FN void conf_init(const char *prog)
{
	conf_prog = prog;
	signal(SIGALRM, conf_timeout);
	alarm(CONF_ALARM);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	const char *a4 = getenv("CONF_ADDR4");
	const char *a6 = getenv("CONF_ADDR6");
	const char *nl = getenv("CONF_NONLOCAL4");
	const char *p4 = getenv("CONF_PEER4");
	if (!a4 || inet_pton(AF_INET, a4, &conf_addr4) != 1)
		die("CONF_ADDR4 must be an IPv4 address");
	if (!a6 || inet_pton(AF_INET6, a6, &conf_addr6) != 1)
		die("CONF_ADDR6 must be an IPv6 address");
	if (!nl || inet_pton(AF_INET, nl, &conf_nonlocal4) != 1)
		die("CONF_NONLOCAL4 must be an IPv4 address");
	if (!p4 || inet_pton(AF_INET, p4, &conf_peer4) != 1)
		die("CONF_PEER4 must be an IPv4 address");

	const char *ex = getenv("CONF_EXPECT_SWRAP");
	if (ex && strcmp(ex, "1") == 0) {
		bool (*enabled)(void) = (bool (*)(void))dlsym(RTLD_DEFAULT, "socket_wrapper_enabled");
		if (enabled == NULL || !enabled()) {
			fprintf(stderr, "%s: CONF_EXPECT_SWRAP=1 but socket_wrapper_enabled() is %s; aborting\n",
				prog, enabled ? "false" : "missing");
			abort();
		}
	} else if (ex && strcmp(ex, "seccomp") == 0) {
		/* A static program under swrap's seccomp supervisor: no shim
		 * to ask, but the filter shows in /proc (mode 2: filter). */
		FILE *f = fopen("/proc/self/status", "r");
		char line[256];
		bool filtered = false;
		while (f && fgets(line, sizeof(line), f))
			if (strcmp(line, "Seccomp:\t2\n") == 0)
				filtered = true;
		if (f)
			fclose(f);
		if (!filtered) {
			fprintf(stderr, "%s: CONF_EXPECT_SWRAP=seccomp but no seccomp filter is installed; aborting\n", prog);
			abort();
		}
	} else if (!loopback4(conf_addr4) || !loopback4(conf_peer4) || !IN6_IS_ADDR_LOOPBACK(&conf_addr6)) {
		fprintf(stderr, "%s: without swrap only 127.0.0.0/8 and ::1 may be used\n", prog);
		abort();
	}
}

/* conf_done prints the check count and exits 0. */
CONF_FN void conf_done(void)
{
	printf("DONE %d\n", conf_nchecks);
	fflush(stdout);
	exit(0);
}

#endif
