/* fdops.c - sockets as file descriptors: dup, fork, SCM_RIGHTS, exec. */
#include "conf.h"

#include <grp.h>
#include <sys/time.h>

/* sendfd passes fd over the AF_UNIX socket u with SCM_RIGHTS. */
static void sendfd(int u, int fd)
{
	char ctl[CMSG_SPACE(sizeof(int))];
	memset(ctl, 0, sizeof(ctl));
	struct iovec iov = {"F", 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(u, &mh, 0) != 1)
		die("sendmsg SCM_RIGHTS");
}

/* recvfd receives a descriptor sent by sendfd, or -1. */
static int recvfd(int u)
{
	char ctl[CMSG_SPACE(sizeof(int))], c;
	struct iovec iov = {&c, 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
	if (recvmsg(u, &mh, 0) != 1)
		return -1;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/* privdrop_send connects a new socket to SELF:port, sets TCP_NODELAY and
 * sends the byte c: 0, or the number of the step that failed. */
static int privdrop_send(int port, char c)
{
	struct sockaddr_storage ss;
	socklen_t len = selfaddr(AF_INET, port, &ss);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return 1;
	if (connect(fd, SA(&ss), len) != 0)
		return 2;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		return 3;
	if (send(fd, &c, 1, 0) != 1)
		return 4;
	close(fd);
	return 0;
}

/* report sends a short text line from a child to the parent over u. */
static void report(int u, const char *s)
{
	size_t n = strlen(s);
	if (write(u, s, n) != (ssize_t)n)
		_exit(3);
}

/* hear reads one report from a child. */
static const char *hear(int u)
{
	char *b = ring();
	ssize_t n = read(u, b, 255);
	if (n <= 0)
		return "NO-REPORT";
	b[n] = 0;
	return b;
}

/* execchild is the re-executed program: argv = self --exec-child FD PORT.
 * It proves an inherited socket still works after exec. */
static int execchild(char **argv)
{
	int fd = atoi(argv[2]);
	int port = atoi(argv[3]);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getpeername(fd, SA(&ss), &len) < 0)
		return 10;
	if (saport(SA(&ss)) != port || strcmp(hoststr(SA(&ss)), "SELF4") != 0)
		return 11;
	if (write(fd, "exec", 4) != 4)
		return 12;
	char b[4];
	if (read(fd, b, 4) != 4 || memcmp(b, "back", 4) != 0)
		return 13;
	return 0;
}

/* fd_survives_exec re-executes this program to test whether fd survives
 * exec: 0 when it is still an open socket there. */
static int fd_survives_exec(int fd)
{
	char num[16];
	snprintf(num, sizeof(num), "%d", fd);
	pid_t pid = conf_fork();
	if (pid == 0) {
		execl("/proc/self/exe", "fdops", "--probe-fd", num, (char *)NULL);
		_exit(127);
	}
	return waitchild(pid);
}

int main(int argc, char **argv)
{
	conf_init("fdops");
	if (argc == 3 && strcmp(argv[1], "--probe-fd") == 0) {
		/* 0: the fd is an open AF_INET socket; 1: it is not. (A shim
		 * may reuse the number for its own AF_UNIX socket.) */
		int dom = -1;
		socklen_t len = sizeof(dom);
		return getsockopt(atoi(argv[2]), SOL_SOCKET, SO_DOMAIN, &dom, &len) == 0 && dom == AF_INET ? 0 : 1;
	}
	if (argc == 4 && strcmp(argv[1], "--exec-child") == 0)
		return execchild(argv);

	char buf[64];
	int c, s;
	struct sockaddr_storage got;
	socklen_t glen;

	{
		tcp_pair(AF_INET, &c, &s);
		int d = dup(c);
		check("dup_send", "%s", res(send(d, "dup", 3, 0)));
		readall(s, buf, 3);
		close(c);
		check("dup_after_close_orig", "%s", res(send(d, "two", 3, 0)));
		readall(s, buf, 3);
		glen = sizeof(got);
		getsockname(d, SA(&got), &glen);
		check("dup_sockname", "%s", sastr(SA(&got), -1));
		check("dup2_fixed", "%s", res(dup2(d, 100)));
		check("dup2_send", "%s", res(send(100, "d2", 2, 0)));
		readall(s, buf, 2);
		const char *r3 = res(dup3(d, 101, O_CLOEXEC));
		check("dup3_cloexec", "%s %s", r3, fdflags(101));
		check("dup3_same_fd", "%s", res(dup3(d, d, 0)));
		int e = fcntl(d, F_DUPFD_CLOEXEC, 200);
		check("f_dupfd_cloexec", "%s %s", e >= 200 ? "ge200" : res(e), fdflags(e));
		glen = sizeof(got);
		getpeername(e, SA(&got), &glen);
		check("f_dupfd_cloexec_peer", "%s", sastr(SA(&got), -1));
		/* The connection stays open until the last duplicate closes. */
		close(d);
		close(100);
		close(101);
		check("dup_last_open", "%s", res(send(e, "x", 1, 0)));
		readall(s, buf, 1);
		close(e);
		waitev(s, POLLIN, 5000);
		check("dup_all_closed_peer_eof", "%s", res(recv(s, buf, sizeof(buf), MSG_DONTWAIT)));
		check("send_closed_fd", "%s", res(send(e, "x", 1, 0)));
		close(s);
	}

	{
		/* O_NONBLOCK via fcntl and FIONBIO; SO_RCVTIMEO. */
		tcp_pair(AF_INET, &c, &s);
		fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
		check("fcntl_nonblock_recv", "%s", res(recv(c, buf, 1, 0)));
		fcntl(c, F_SETFL, fcntl(c, F_GETFL) & ~O_NONBLOCK);
		int on = 1;
		ioctl(s, FIONBIO, &on);
		const char *rr = res(read(s, buf, 1));
		check("fionbio_recv", "%s %s", rr, fdflags(s));
		struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
		int r = setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		const char *rt = res(recv(c, buf, 1, 0));
		check("so_rcvtimeo", "%s %s", ok0(r), rt);
		memset(&tv, 0, sizeof(tv));
		socklen_t len = sizeof(tv);
		getsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, &len);
		check("so_rcvtimeo_get", "%ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
		close(c);
		close(s);
	}

	{
		/* A forked child writes on the socket, the parent reads. */
		tcp_pair(AF_INET, &c, &s);
		pid_t pid = conf_fork();
		if (pid == 0) {
			close(s);
			char b[5];
			if (send(c, "child", 5, 0) != 5)
				_exit(1);
			if (recv(c, b, 5, MSG_WAITALL) != 5 || memcmp(b, "paren", 5))
				_exit(2);
			_exit(0);
		}
		memset(buf, 0, 8);
		readall(s, buf, 5);
		check("fork_child_send", "%.5s", buf);
		send(s, "paren", 5, 0);
		check("fork_child_exit", "%d", waitchild(pid));
		/* The parent's copy still works after the child exited. */
		check("fork_parent_send", "%s", res(send(c, "p", 1, 0)));
		readall(s, buf, 1);
		close(c);
		close(s);
	}

	{
		/* SCM_RIGHTS: a connected socket passed to a forked child. */
		int u[2];
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, u) < 0)
			die("socketpair");
		tcp_pair(AF_INET, &c, &s);
		int cport = localport(c), sport = localport(s);
		pid_t pid = conf_fork();
		if (pid == 0) {
			close(u[0]);
			close(c);
			close(s);
			int fd = recvfd(u[1]);
			char rep[200];
			struct sockaddr_storage a, b;
			socklen_t al = sizeof(a), bl = sizeof(b);
			if (fd < 0)
				_exit(1);
			getsockname(fd, SA(&a), &al);
			getpeername(fd, SA(&b), &bl);
			char b1[64];
			snprintf(b1, sizeof(b1), "%s", sastr(SA(&a), cport));
			snprintf(rep, sizeof(rep), "name=%s peer=%s", b1, sastr(SA(&b), sport));
			report(u[1], rep);
			if (send(fd, "viafd", 5, 0) != 5)
				_exit(2);
			char in[3];
			if (recv(fd, in, 3, MSG_WAITALL) != 3 || memcmp(in, "ack", 3))
				_exit(3);
			_exit(0);
		}
		close(u[1]);
		sendfd(u[0], c);
		close(c);
		check("scm_rights_child_names", "%s", hear(u[0]));
		memset(buf, 0, 8);
		readall(s, buf, 5);
		check("scm_rights_child_send", "%.5s", buf);
		send(s, "ack", 3, 0);
		check("scm_rights_child_exit", "%d", waitchild(pid));
		waitev(s, POLLIN, 5000);
		check("scm_rights_eof_after_child", "%s", res(recv(s, buf, sizeof(buf), MSG_DONTWAIT)));
		close(s);
		close(u[0]);
	}

	{
		/* SCM_RIGHTS: a listener passed to a child, which accepts. */
		int u[2];
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, u) < 0)
			die("socketpair");
		int port;
		int l = tcp_listener(AF_INET, &port);
		pid_t pid = conf_fork();
		if (pid == 0) {
			close(u[0]);
			close(l);
			int fd = recvfd(u[1]);
			if (fd < 0)
				_exit(1);
			int a = accept(fd, NULL, NULL);
			if (a < 0)
				_exit(2);
			if (send(a, "acc", 3, 0) != 3)
				_exit(3);
			_exit(0);
		}
		close(u[1]);
		sendfd(u[0], l);
		close(l);
		c = tcp_connect(AF_INET, port);
		memset(buf, 0, 8);
		readall(c, buf, 3);
		check("scm_rights_listener", "%.3s", buf);
		check("scm_rights_listener_exit", "%d", waitchild(pid));
		close(c);
		close(u[0]);
	}

	{
		/* Close-on-exec: a SOCK_CLOEXEC socket is gone after exec, a
		 * plain one survives. */
		int a = xsocket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC);
		int b = xsocket(AF_INET, SOCK_STREAM);
		check("exec_cloexec_socket", "%s", fd_survives_exec(a) == 0 ? "open" : "closed");
		check("exec_plain_socket", "%s", fd_survives_exec(b) == 0 ? "open" : "closed");
		close(a);
		close(b);

		/* An inherited connected socket works in the exec'd program. */
		tcp_pair(AF_INET, &c, &s);
		char fdnum[16], portnum[16];
		snprintf(fdnum, sizeof(fdnum), "%d", c);
		snprintf(portnum, sizeof(portnum), "%d", localport(s));
		pid_t pid = conf_fork();
		if (pid == 0) {
			close(s);
			execl("/proc/self/exe", "fdops", "--exec-child", fdnum, portnum, (char *)NULL);
			_exit(127);
		}
		close(c);
		memset(buf, 0, 8);
		readall(s, buf, 4);
		check("exec_inherited_send", "%.4s", buf);
		send(s, "back", 4, 0);
		check("exec_inherited_exit", "%d", waitchild(pid));
		close(s);
	}

	{
		/* A process that drops to nobody keeps the network: a new
		 * socket connects, sets TCP_NODELAY and sends, and so does a
		 * child it forks after the drop (under swrap through the
		 * ticket it took before setresuid: docs/protocol.md, NEWCTL).
		 * Needs root; otherwise both runs say so alike. */
		if (geteuid() != 0) {
			check("privdrop_sends", "not-root");
			check("privdrop_child_exit", "not-root");
		} else {
			int port;
			int l = tcp_listener(AF_INET, &port);
			pid_t pid = conf_fork();
			if (pid == 0) {
				close(l);
				if (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 ||
				    setresuid(65534, 65534, 65534) != 0)
					_exit(10);
				int r = privdrop_send(port, 'c');
				if (r != 0)
					_exit(r);
				pid_t g = fork();
				if (g == 0)
					_exit(privdrop_send(port, 'g'));
				int st;
				if (g < 0 || waitpid(g, &st, 0) != g || !WIFEXITED(st))
					_exit(30);
				_exit(WEXITSTATUS(st) ? 20 + WEXITSTATUS(st) : 0);
			}
			char got[3] = "--";
			for (int i = 0; i < 2; i++) {
				if (!(waitev(l, POLLIN, 5000) & POLLIN))
					break;
				int a = accept(l, NULL, NULL);
				if (a < 0)
					break;
				waitev(a, POLLIN, 5000);
				if (recv(a, &got[i], 1, 0) != 1)
					got[i] = '?';
				close(a);
			}
			check("privdrop_sends", "%s", got);
			check("privdrop_child_exit", "%d", waitchild(pid));
			close(l);
		}
	}

	conf_done();
}
