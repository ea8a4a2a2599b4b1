/* placeholder.c - the seccomp path's TCP placeholder (supervise/placeholder.go),
 * seen from the program: a fresh TCP socket answers data calls as Linux's, and
 * its first stopped call swaps in the broker's socket at the same descriptor,
 * keeping close-on-exec and O_NONBLOCK, for every copy of it.
 * Prints one line of key=value words; the test compares it whole. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int port_of(int fd)
{
	struct sockaddr_in a;
	socklen_t l = sizeof(a);
	if (getsockname(fd, (struct sockaddr *)&a, &l) != 0)
		return -1;
	return ntohs(a.sin_port);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	signal(SIGPIPE, SIG_IGN);
	char b[4];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int d = dup(fd); /* a copy made before the swap */
	ssize_t r = recv(fd, b, 1, MSG_DONTWAIT);
	printf("recv=%s", r < 0 && errno == ENOTCONN ? "ENOTCONN" : "other");
	r = write(fd, "x", 1);
	printf(" write=%s", r < 0 && errno == EPIPE ? "EPIPE" : "other");
	struct sockaddr_in a = {.sin_family = AF_INET};
	int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 8) == 0;
	printf(" listen=%d", ok);
	printf(" cloexec=%d", (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
	/* the copy: the same socket once it makes its own stopped call */
	int port = port_of(fd);
	printf(" dup_same=%d", port > 0 && port_of(d) == port);
	printf(" dup_cloexec=%d", (fcntl(d, F_GETFD) & FD_CLOEXEC) != 0);

	/* a forked child's copy of a placeholder, swapped by the child */
	int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int up[2], down[2];
	if (pipe(up) != 0 || pipe(down) != 0)
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		a.sin_addr.s_addr = inet_addr("127.0.0.10");
		a.sin_port = htons(port);
		int e = connect(c, (struct sockaddr *)&a, sizeof(a)) < 0 ? errno : 0;
		char k = e == EINPROGRESS ? '1' : '0';
		if (write(up[1], &k, 1) != 1 || read(down[0], &k, 1) < 0)
			_exit(2);
		_exit(0); /* held until the parent has looked */
	}
	char k = '?';
	if (read(up[0], &k, 1) != 1)
		k = '?';
	printf(" child_nonblock_connect=%c", k);
	/* the parent's copy is the connecting socket now too */
	struct sockaddr_in p;
	socklen_t pl = sizeof(p);
	int s = accept(fd, (struct sockaddr *)&p, &pl);
	printf(" accepted=%d", s >= 0);
	printf(" parent_copy_connected=%d\n", s >= 0 && port_of(c) > 0 && port_of(c) == ntohs(p.sin_port));
	if (write(down[1], "x", 1) != 1)
		return 1;
	waitpid(pid, NULL, 0);
	return 0;
}
