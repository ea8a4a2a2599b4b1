/*
 * seccomp.c - a wrapped client that sandboxes itself the way sshd's
 * pre-auth child does, then talks over its established connection with
 * read, readv, write and writev only (TestSeccompSandbox):
 *
 *   seccomp MODE SIGPIPE ADDR PORT
 *
 * MODE: echo   - 256 KiB through an echo server, hash printed;
 *       reset  - write until the server resets the connection; prints the
 *                error the writes end with.
 * SIGPIPE: ign (as sshd) or handler (counted).
 *
 * After connecting, the socket is also duplicated with a raw dup system
 * call, which the shim does not see: that fd is unknown to it, like a
 * socket inherited across exec, and is used for half of the writes and
 * reads. The filter allows read, write, readv, writev, poll, ppoll, close,
 * brk, mmap, munmap, futex, clock_gettime, rt_sigreturn, exit and
 * exit_group, and kills the process on anything else (sendto, sendmsg,
 * recvmsg, getsockname, tgkill...).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#else
#error "unsupported architecture"
#endif

#define ALLOW(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

static struct sock_filter insns[] = {
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	ALLOW(__NR_read),
	ALLOW(__NR_write),
	ALLOW(__NR_readv),
	ALLOW(__NR_writev),
#ifdef __NR_poll
	ALLOW(__NR_poll),
#endif
	ALLOW(__NR_ppoll),
	ALLOW(__NR_close),
	ALLOW(__NR_brk),
	ALLOW(__NR_mmap),
	ALLOW(__NR_munmap),
	ALLOW(__NR_futex),
	ALLOW(__NR_clock_gettime),
	ALLOW(__NR_rt_sigreturn),
	ALLOW(__NR_exit),
	ALLOW(__NR_exit_group),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
};

static volatile sig_atomic_t npipe;
static void on_sigpipe(int sig)
{
	(void)sig;
	npipe++;
}

/* say writes a line with write(2) only: stdio might do other calls. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	if (write(1, buf, (size_t)n) != n)
		_exit(3);
}

static const char *ename(int e)
{
	return e == EPIPE ? "EPIPE" : e == ECONNRESET ? "ECONNRESET" : "OTHER";
}

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

#define CHUNK 8192
#define TOTAL (256 * 1024)

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: seccomp echo|reset ign|handler ADDR PORT\n");
		return 2;
	}
	int reset = strcmp(argv[1], "reset") == 0;
	if (strcmp(argv[2], "ign") == 0)
		signal(SIGPIPE, SIG_IGN);
	else
		signal(SIGPIPE, on_sigpipe);

	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[4])) };
	inet_pton(AF_INET, argv[3], &a.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		perror("connect");
		return 2;
	}
	int ufd = (int)syscall(SYS_dup, fd); /* unknown to the shim */
	if (ufd < 0) {
		perror("dup");
		return 2;
	}
	static unsigned char out[CHUNK], in[CHUNK];

	struct sock_fprog prog = { .len = sizeof(insns) / sizeof(insns[0]), .filter = insns };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
		perror("seccomp");
		return 2;
	}

	uint64_t hout = 14695981039346656037ull, hin = hout;
	size_t sent = 0, got = 0;
	for (int round = 0; reset || sent < TOTAL; round++) {
		for (size_t i = 0; i < CHUNK; i++)
			out[i] = (unsigned char)(sent + i * 13 + (i >> 7));
		/* Alternate write and writev, the known fd and the unknown one. */
		int wfd = (round & 2) ? ufd : fd;
		ssize_t n;
		if (round & 1) {
			struct iovec iov[3] = { { out, 100 }, { out + 100, 4000 }, { out + 4100, CHUNK - 4100 } };
			n = writev(wfd, iov, 3);
		} else {
			n = write(wfd, out, CHUNK);
		}
		if (n < 0) {
			if (!reset)
				say("write failed: %s\n", ename(errno));
			else
				say("reset write=%s after=%zu sigpipe=%d\n", ename(errno), sent, (int)npipe);
			_exit(reset ? 0 : 1);
		}
		hout = fnv(hout, out, (size_t)n);
		sent += (size_t)n;
		if (reset)
			continue;
		/* Read the echo back: read and readv, both fds. */
		while (got < sent) {
			int rfd = (got / 1000) & 1 ? ufd : fd;
			size_t want = sent - got < CHUNK ? sent - got : CHUNK;
			ssize_t r;
			if ((got / 1000) & 2) {
				struct iovec iov[2] = { { in, want / 2 }, { in + want / 2, want - want / 2 } };
				r = readv(rfd, iov, 2);
			} else {
				r = read(rfd, in, want);
			}
			if (r <= 0) {
				say("read failed: %zd %s\n", r, r < 0 ? ename(errno) : "EOF");
				_exit(1);
			}
			hin = fnv(hin, in, (size_t)r);
			got += (size_t)r;
		}
	}
	say("echo sent=%zu got=%zu intact=%d\n", sent, got, hin == hout);
	close(ufd);
	close(fd);
	_exit(0);
}
