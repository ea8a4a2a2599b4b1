/*
 * scmrights: wrapped sockets passed with SCM_RIGHTS to an unrelated process.
 *
 *   scmrights send UNIXPATH N   - listens on this host, makes N connections
 *                                 to itself, sends the N client ends over the
 *                                 unix socket UNIXPATH (several per message),
 *                                 closes its copies, then expects "fd I" on
 *                                 the I-th accepted connection.
 *   scmrights recv UNIXPATH     - receives the fds; on each, getpeername must
 *                                 name the sender's listener; writes "fd I".
 *
 * The two are started separately by the test (neither is the other's
 * child), both under the shim on the same host. Prints "ok" on success.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PER_MSG 100 /* fds per message (SCM_MAX_FD is 253) */
#define MAXN 1000

static void die(const char *what)
{
	fprintf(stderr, "scmrights: %s: %s\n", what, strerror(errno));
	exit(1);
}

static struct sockaddr_un unix_addr(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	return a;
}

static int do_send(const char *path, int n)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, MAXN) < 0)
		die("listen");
	if (getsockname(l, (struct sockaddr *)&sa, &len) < 0)
		die("getsockname");
	char *self = getenv("SCM_SELF"); /* this host's address */
	if (!self || inet_pton(AF_INET, self, &sa.sin_addr) != 1)
		die("SCM_SELF");
	static int cli[MAXN], srv[MAXN];
	for (int i = 0; i < n; i++) {
		cli[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (cli[i] < 0 || connect(cli[i], (struct sockaddr *)&sa, sizeof(sa)) < 0)
			die("connect");
		srv[i] = accept(l, NULL, NULL);
		if (srv[i] < 0)
			die("accept");
	}
	int u = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un ua = unix_addr(path);
	unlink(path);
	if (u < 0 || bind(u, (struct sockaddr *)&ua, sizeof(ua)) < 0 || listen(u, 1) < 0)
		die("unix listen");
	printf("ready %d\n", ntohs(sa.sin_port));
	fflush(stdout);
	int c = accept(u, NULL, NULL);
	if (c < 0)
		die("unix accept");
	for (int i = 0; i < n; i += PER_MSG) {
		int k = n - i < PER_MSG ? n - i : PER_MSG;
		char cbuf[CMSG_SPACE(sizeof(int) * PER_MSG)];
		memset(cbuf, 0, sizeof(cbuf));
		char count = (char)k;
		struct iovec iov = { &count, 1 };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				    .msg_controllen = CMSG_SPACE(sizeof(int) * k) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * k);
		memcpy(CMSG_DATA(cm), &cli[i], sizeof(int) * k);
		if (sendmsg(c, &m, 0) != 1)
			die("sendmsg");
	}
	for (int i = 0; i < n; i++)
		close(cli[i]); /* only the receiver holds them now */
	for (int i = 0; i < n; i++) {
		char want[32], got[32];
		int w = snprintf(want, sizeof(want), "fd %d", i);
		ssize_t r = recv(srv[i], got, sizeof(got), MSG_WAITALL);
		if (r != w || memcmp(want, got, w) != 0) {
			fprintf(stderr, "scmrights: connection %d: got %zd bytes\n", i, r);
			return 1;
		}
	}
	puts("ok");
	return 0;
}

static int do_recv(const char *path)
{
	int u = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un ua = unix_addr(path);
	if (u < 0 || connect(u, (struct sockaddr *)&ua, sizeof(ua)) < 0)
		die("unix connect");
	int port = atoi(getenv("SCM_PORT"));
	for (int i = 0;;) {
		char cbuf[CMSG_SPACE(sizeof(int) * PER_MSG)];
		char count;
		struct iovec iov = { &count, 1 };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				    .msg_controllen = sizeof(cbuf) };
		ssize_t r = recvmsg(u, &m, 0);
		if (r == 0)
			break;
		if (r < 0)
			die("recvmsg");
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		if (!cm || cm->cmsg_type != SCM_RIGHTS || (m.msg_flags & MSG_CTRUNC))
			die("no fds");
		int k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int fds[PER_MSG];
		memcpy(fds, CMSG_DATA(cm), sizeof(int) * k);
		for (int j = 0; j < k; j++, i++) {
			struct sockaddr_in peer;
			socklen_t len = sizeof(peer);
			char addr[INET_ADDRSTRLEN];
			if (getpeername(fds[j], (struct sockaddr *)&peer, &len) < 0)
				die("getpeername");
			inet_ntop(AF_INET, &peer.sin_addr, addr, sizeof(addr));
			if (ntohs(peer.sin_port) != port || strcmp(addr, getenv("SCM_SELF")) != 0) {
				fprintf(stderr, "scmrights: fd %d: peer %s:%d\n", i, addr, ntohs(peer.sin_port));
				return 1;
			}
			char msg[32];
			int w = snprintf(msg, sizeof(msg), "fd %d", i);
			if (write(fds[j], msg, w) != w)
				die("write");
			close(fds[j]);
		}
	}
	puts("ok");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "send") == 0) {
		int n = atoi(argv[3]);
		if (n < 1 || n > MAXN)
			return 2;
		return do_send(argv[2], n);
	}
	if (argc == 3 && strcmp(argv[1], "recv") == 0)
		return do_recv(argv[2]);
	fprintf(stderr, "usage: scmrights send PATH N | recv PATH\n");
	return 2;
}
