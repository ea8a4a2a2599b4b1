/*
 * smoke.c - a small socket exerciser for the shim. Run it with and without
 * LD_PRELOAD=bin/libswrap.so: without SOCKET_WRAPPER_DIR it must behave
 * exactly as plain libc on 127.0.0.1; with SOCKET_WRAPPER_DIR it runs the
 * same checks on the emulated network (server and client both in this
 * process: they are on the same host, SOCKET_WRAPPER_DEFAULT_IFACE).
 *
 * build: gcc -O1 -g -Wall -o smoke smoke.c -pthread
 * usage: smoke <ipv4-address-of-this-host>     e.g. smoke 127.0.0.1
 *   LD_PRELOAD=bin/libswrap.so smoke 127.0.0.1                 (passthrough)
 *   SOCKET_WRAPPER_DIR=$(mktemp -d) SOCKET_WRAPPER_DEFAULT_IFACE=10 \
 *   LD_PRELOAD=bin/libswrap.so smoke 127.0.0.10                 (emulated)
 * Prints one line per check; exits non-zero if any check failed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *host;
static int failures;

#define CHECK(cond, ...)                                                    \
	do {                                                                \
		if (cond) {                                                 \
			printf("ok   ");                                    \
		} else {                                                    \
			printf("FAIL (errno %d %s) ", errno, strerror(errno)); \
			failures++;                                         \
		}                                                           \
		printf(__VA_ARGS__);                                        \
		printf("\n");                                               \
		fflush(stdout);                                             \
	} while (0)

static struct sockaddr_in sin_of(const char *a, int port)
{
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, a, &s.sin_addr);
	return s;
}

static void tcp_tests(void)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(l >= 0, "tcp socket");
	int one = 1;
	CHECK(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0, "SO_REUSEADDR");
	struct sockaddr_in a = sin_of(host, 0);
	CHECK(bind(l, (struct sockaddr *)&a, sizeof(a)) == 0, "bind %s:0", host);
	socklen_t len = sizeof(a);
	CHECK(getsockname(l, (struct sockaddr *)&a, &len) == 0 && len == sizeof(a) && a.sin_port != 0,
	      "getsockname port %d", ntohs(a.sin_port));
	CHECK(listen(l, 16) == 0, "listen");

	/* bad args, as Linux */
	errno = 0;
	CHECK(connect(socket(AF_INET, SOCK_STREAM, 0), NULL, 16) < 0 && errno == EFAULT, "connect NULL -> EFAULT");
	int c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(connect(c, (struct sockaddr *)&a, 8) < 0 && errno == EINVAL, "connect short len -> EINVAL");
	char buf[64];
	CHECK(read(c, buf, sizeof(buf)) < 0 && errno == ENOTCONN, "read unconnected -> ENOTCONN");
	CHECK(send(c, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "send unconnected -> EPIPE");

	CHECK(connect(c, (struct sockaddr *)&a, sizeof(a)) == 0, "connect");
	struct sockaddr_in p;
	len = sizeof(p);
	int s = accept(l, (struct sockaddr *)&p, &len);
	CHECK(s >= 0 && len == sizeof(p) && p.sin_family == AF_INET, "accept from %s:%d", inet_ntoa(p.sin_addr), ntohs(p.sin_port));
	struct sockaddr_in cn;
	len = sizeof(cn);
	CHECK(getsockname(c, (struct sockaddr *)&cn, &len) == 0 && cn.sin_port == p.sin_port, "client name matches accept peer");
	len = sizeof(cn);
	CHECK(getpeername(s, (struct sockaddr *)&cn, &len) == 0 && cn.sin_port == p.sin_port, "getpeername");
	socklen_t tiny = 4;
	CHECK(getpeername(s, (struct sockaddr *)&cn, &tiny) == 0 && tiny == sizeof(cn), "getpeername short len -> real size");

	CHECK(write(c, "hello", 5) == 5, "write");
	memset(buf, 0, sizeof(buf));
	CHECK(recv(s, buf, sizeof(buf), MSG_PEEK) == 5 && !memcmp(buf, "hello", 5), "recv MSG_PEEK");
	len = sizeof(cn);
	cn.sin_family = 99;
	CHECK(recvfrom(s, buf, sizeof(buf), 0, (struct sockaddr *)&cn, &len) == 5 && len == 0,
	      "recvfrom on TCP reports addrlen 0 (len %u)", len);
	struct iovec iov[2] = { { (void *)"ab", 2 }, { (void *)"cd", 2 } };
	CHECK(writev(s, iov, 2) == 4, "writev");
	CHECK(recv(c, buf, 4, MSG_WAITALL) == 4 && !memcmp(buf, "abcd", 4), "recv MSG_WAITALL");

	/* epoll + nonblocking */
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = c };
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) == 0, "epoll_ctl");
	fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
	CHECK(read(c, buf, 1) < 0 && errno == EAGAIN, "nonblocking read -> EAGAIN");
	CHECK(send(s, "z", 1, 0) == 1, "send");
	CHECK(epoll_wait(ep, &ev, 1, 2000) == 1 && ev.data.fd == c, "epoll_wait readable");
	CHECK(read(c, buf, 1) == 1 && buf[0] == 'z', "read");

	/* dup keeps it working */
	int d = dup(c);
	CHECK(d >= 0 && write(d, "D", 1) == 1 && read(s, buf, 1) == 1 && buf[0] == 'D', "dup'd fd works");
	close(d);

	/* fork: child writes on the inherited socket */
	pid_t pid = fork();
	if (pid == 0) {
		_exit(write(s, "F", 1) == 1 ? 0 : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	fcntl(c, F_SETFL, fcntl(c, F_GETFL) & ~O_NONBLOCK);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0 && read(c, buf, 1) == 1 && buf[0] == 'F', "fork child writes inherited socket");

	/* shutdown -> EOF */
	CHECK(shutdown(s, SHUT_WR) == 0, "shutdown(SHUT_WR)");
	CHECK(read(c, buf, sizeof(buf)) == 0, "EOF after peer shutdown");
	CHECK(write(c, "after", 5) == 5, "write after peer's SHUT_WR");
	CHECK(read(s, buf, sizeof(buf)) == 5, "read it");
	close(c);
	CHECK(read(s, buf, sizeof(buf)) == 0, "EOF after close");
	signal(SIGPIPE, SIG_IGN);
	/* write to a closed peer: eventually EPIPE/ECONNRESET */
	ssize_t w = 0;
	for (int i = 0; i < 50 && w >= 0; i++) {
		w = write(s, "x", 1);
		usleep(10000);
	}
	CHECK(w < 0 && (errno == EPIPE || errno == ECONNRESET), "write to closed peer fails (%s)", strerror(errno));
	close(s);

	/* connection refused */
	struct sockaddr_in none = sin_of(host, 1);
	c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(connect(c, (struct sockaddr *)&none, sizeof(none)) < 0 && errno == ECONNREFUSED, "connect to closed port -> ECONNREFUSED");
	close(c);

	/* nonblocking connect */
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int r = connect(c, (struct sockaddr *)&a, sizeof(a));
	CHECK(r == 0 || errno == EINPROGRESS, "nonblocking connect: %s", r == 0 ? "0" : "EINPROGRESS");
	struct pollfd pfd = { c, POLLOUT, 0 };
	CHECK(poll(&pfd, 1, 2000) == 1, "poll POLLOUT");
	int soe = -1;
	len = sizeof(soe);
	CHECK(getsockopt(c, SOL_SOCKET, SO_ERROR, &soe, &len) == 0 && soe == 0, "SO_ERROR 0");
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	CHECK(s >= 0 && (fcntl(s, F_GETFD) & FD_CLOEXEC), "accept4 SOCK_CLOEXEC");
	CHECK(write(c, "nb", 2) == 2 && read(s, buf, 2) == 2, "data after nonblocking connect");
	close(c);
	close(s);
	int t = -1;
	len = sizeof(t);
	CHECK(getsockopt(l, SOL_SOCKET, SO_TYPE, &t, &len) == 0 && t == SOCK_STREAM, "SO_TYPE");
	close(l);
}

static void udp_tests(void)
{
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	CHECK(u >= 0, "udp socket");
	struct sockaddr_in a = sin_of(host, 0);
	CHECK(bind(u, (struct sockaddr *)&a, sizeof(a)) == 0, "udp bind");
	socklen_t len = sizeof(a);
	getsockname(u, (struct sockaddr *)&a, &len);
	int one = 1;
	CHECK(setsockopt(u, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) == 0, "IP_PKTINFO");

	int c = socket(AF_INET, SOCK_DGRAM, 0);
	CHECK(sendto(c, "ping", 4, 0, (struct sockaddr *)&a, sizeof(a)) == 4, "sendto");
	char buf[100];
	struct sockaddr_in from;
	len = sizeof(from);
	struct iovec iov = { buf, sizeof(buf) };
	union { struct cmsghdr h; char b[256]; } cm;
	struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = cm.b, .msg_controllen = sizeof(cm.b) };
	ssize_t n = recvmsg(u, &m, 0);
	struct in_pktinfo *pi = NULL;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
		if (h->cmsg_level == IPPROTO_IP && h->cmsg_type == IP_PKTINFO)
			pi = (struct in_pktinfo *)CMSG_DATA(h);
	CHECK(n == 4 && !memcmp(buf, "ping", 4) && m.msg_namelen == sizeof(from), "recvmsg ping from %s:%d", inet_ntoa(from.sin_addr), ntohs(from.sin_port));
	CHECK(pi && pi->ipi_addr.s_addr == a.sin_addr.s_addr, "IP_PKTINFO dst %s", pi ? inet_ntoa(pi->ipi_addr) : "-");
	struct sockaddr_in cl = from;
	CHECK(sendto(u, "pong!", 5, 0, (struct sockaddr *)&cl, sizeof(cl)) == 5, "reply");
	len = sizeof(from);
	CHECK(recvfrom(c, buf, 2, 0, (struct sockaddr *)&from, &len) == 2 && len == sizeof(from), "recvfrom truncated");
	CHECK(sendto(u, "12345678", 8, 0, (struct sockaddr *)&cl, sizeof(cl)) == 8, "send 8");
	CHECK(recv(c, buf, 3, MSG_TRUNC) == 8, "recv MSG_TRUNC returns real length");
	CHECK(connect(c, (struct sockaddr *)&a, sizeof(a)) == 0, "udp connect");
	CHECK(send(c, "c", 1, 0) == 1 && recv(u, buf, sizeof(buf), 0) == 1, "connected send");
	CHECK(write(c, "w", 1) == 1 && read(u, buf, sizeof(buf)) == 1 && buf[0] == 'w', "write/read on udp");
	int c2 = socket(AF_INET, SOCK_DGRAM, 0);
	CHECK(send(c2, "x", 1, 0) < 0 && errno == EDESTADDRREQ, "unconnected send -> EDESTADDRREQ");
	static char big[70000];
	CHECK(sendto(c2, big, 65508, 0, (struct sockaddr *)&a, sizeof(a)) < 0 && errno == EMSGSIZE, "65508 bytes -> EMSGSIZE");
	struct sockaddr_in bc = sin_of(strncmp(host, "10.", 3) ? "127.255.255.255" : "10.255.255.255", ntohs(a.sin_port));
	CHECK(sendto(c2, "b", 1, 0, (struct sockaddr *)&bc, sizeof(bc)) < 0 && errno == EACCES, "broadcast w/o SO_BROADCAST -> EACCES");
	close(c);
	close(c2);
	close(u);
}

int main(int argc, char **argv)
{
	host = argc > 1 ? argv[1] : "127.0.0.1";
	tcp_tests();
	udp_tests();
	printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
	return failures ? 1 : 0;
}
