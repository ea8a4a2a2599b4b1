/*
 * privdrop: a server that drops privileges the way nginx and sshd do, run
 * wrapped as root on host 10.
 *
 *   privdrop server PORT ADDR12 PORT12 libc|syscall|inproc [CHROOTDIR]
 *     master (root): listens on 127.0.0.10:PORT, prints "listening", forks a
 *     worker and exits with its status (inproc: is the worker itself, its
 *     control connections from before the drop still open; through libc). The worker (its pool of control
 *     connections closed by the fork) optionally chroot()s to CHROOTDIR,
 *     drops to nobody/nogroup (setgroups(0), setresgid, setresuid; through
 *     libc or raw syscall()), prints "dropped UID GID", then:
 *       - accepts one connection, sets TCP_NODELAY and SO_KEEPALIVE on it
 *         (and reads them back), echoes everything until EOF, closes;
 *       - opens a NEW socket to ADDR12:PORT12, sends "worker PID\n";
 *       - forks a child (PRIVDROP_CHILDREN of them at once, default 1),
 *         which opens its own socket to ADDR12:PORT12 (with TCP_NODELAY),
 *         sends "child PID\n", and reads until EOF;
 *       - prints "pids WORKER CHILD...", reads its own connection until
 *         EOF, reaps the children, prints "done".
 *   privdrop stranger N
 *     tries socket(AF_INET, SOCK_STREAM) N times, printing "ok" or the
 *     errno number of each failure on one line each.
 *
 * Any failure prints "FAIL what: error" on stderr and exits 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "FAIL %s: %s\n", what, strerror(errno));
	exit(1);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static void set_on(int fd, int level, int name, const char *what)
{
	int one = 1, got = 0;
	socklen_t len = sizeof(got);
	if (setsockopt(fd, level, name, &one, sizeof(one)) != 0)
		die(what);
	if (getsockopt(fd, level, name, &got, &len) != 0 || got == 0) {
		if (got == 0)
			errno = EINVAL;
		die(what);
	}
}

/* dial opens a new TCP socket to addr:port and sends line. */
static int dial(const char *addr, int port, const char *line)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		errno = EINVAL;
		die("address");
	}
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket after the drop");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		die("connect after the drop");
	set_on(fd, IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY on a new socket");
	size_t n = strlen(line);
	if (write(fd, line, n) != (ssize_t)n)
		die("write");
	return fd;
}

static void read_to_eof(int fd)
{
	char buf[256];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	if (n < 0)
		die("read");
}

static void drop(bool raw, const char *root)
{
	uid_t uid = 65534;
	gid_t gid = 65534;
	struct passwd *pw = getpwnam("nobody"); /* before chroot: no NSS there */
	if (pw) {
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	if (root) {
		if ((raw ? syscall(SYS_chroot, root) : chroot(root)) != 0 || chdir("/") != 0)
			die("chroot");
	}
	if (raw) {
		/* One thread: the raw calls change the whole process. */
		if (syscall(SYS_setgroups, 0L, NULL) != 0 || syscall(SYS_setresgid, (long)gid, (long)gid, (long)gid) != 0 ||
		    syscall(SYS_setresuid, (long)uid, (long)uid, (long)uid) != 0)
			die("drop (syscall)");
	} else if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0)
		die("drop");
	if (getuid() != uid || geteuid() != uid || getgid() != gid) {
		errno = EPERM;
		die("still privileged");
	}
	say("dropped %u %u\n", (unsigned)getuid(), (unsigned)getgid());
}

static int worker(int l, const char *a12, int p12, bool raw, const char *root)
{
	drop(raw, root);

	int c = accept(l, NULL, NULL);
	if (c < 0)
		die("accept");
	set_on(c, IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY on the accepted connection");
	set_on(c, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE on the accepted connection");
	static char buf[65536];
	ssize_t n;
	while ((n = read(c, buf, sizeof(buf))) > 0)
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(c, buf + off, (size_t)(n - off));
			if (w <= 0)
				die("echo write");
			off += w;
		}
	if (n < 0)
		die("echo read");
	close(c);

	char line[64];
	snprintf(line, sizeof(line), "worker %d\n", (int)getpid());
	int out = dial(a12, p12, line);

	/* PRIVDROP_CHILDREN children at once: they all get their control
	 * connections through the one ticket they share. */
	const char *nc = getenv("PRIVDROP_CHILDREN");
	int nchild = nc ? atoi(nc) : 1;
	if (nchild < 1 || nchild > 64)
		nchild = 1;
	pid_t kids[64];
	for (int i = 0; i < nchild; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			die("fork");
		if (kids[i] == 0) {
			snprintf(line, sizeof(line), "child %d\n", (int)getpid());
			int fd = dial(a12, p12, line);
			read_to_eof(fd);
			_exit(0);
		}
	}
	printf("pids %d", (int)getpid());
	for (int i = 0; i < nchild; i++)
		printf(" %d", (int)kids[i]);
	say("\n");
	read_to_eof(out);
	for (int i = 0; i < nchild; i++) {
		int st;
		if (waitpid(kids[i], &st, 0) != kids[i])
			die("waitpid");
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "FAIL child %d: status %#x\n", (int)kids[i], st);
			return 1;
		}
	}
	say("done\n");
	return 0;
}

static int server(int port, const char *a12, int p12, bool raw, bool inproc, const char *root)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, "127.0.0.10", &sa.sin_addr);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(l, 16) != 0)
		die("listen");
	say("listening\n");
	if (inproc) /* no worker: the ticket comes from a pooled connection */
		return worker(l, a12, p12, raw, root);
	pid_t w = fork();
	if (w < 0)
		die("fork");
	if (w == 0)
		exit(worker(l, a12, p12, raw, root));
	close(l);
	int st;
	if (waitpid(w, &st, 0) != w)
		die("waitpid");
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

static int stranger(int n)
{
	for (int i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd >= 0) {
			say("ok\n");
			close(fd);
		} else
			say("%d\n", errno);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 6 && !strcmp(argv[1], "server"))
		return server(atoi(argv[2]), argv[3], atoi(argv[4]), !strcmp(argv[5], "syscall"),
			      !strcmp(argv[5], "inproc"), argc > 6 ? argv[6] : NULL);
	if (argc == 3 && !strcmp(argv[1], "stranger"))
		return stranger(atoi(argv[2]));
	fprintf(stderr, "usage: privdrop server PORT ADDR12 PORT12 libc|syscall|inproc [CHROOTDIR] | stranger N\n");
	return 2;
}
