/*
 * threads.c - threads, fork and signals in one process under the shim.
 *
 *	threads MODE ADDR
 *
 * An echo server thread listens on ADDR (an IPv4 address, port chosen by
 * bind(port 0)); each accepted connection gets its own thread. Then:
 *
 *   threads  16 threads each run 100 connect/echo/close cycles.
 *   fork     4 threads run cycles in a loop while the main thread forks 50
 *            times; each child runs one cycle itself and _exits.
 *   signal   as fork, with SIGALRM every 200 us (setitimer) whose handler
 *            write()s to a pipe, and pthread_atfork handlers that do too.
 *
 * A cycle checks that the echo is byte for byte what was sent and that the
 * client's local address is ADDR. Progress goes to stderr; the result is
 * one line on stdout, "OK ..." (exit 0) or "FAIL ..." (exit 1). A child
 * that does not exit within 10 s is reported as hung and killed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG 64

static struct sockaddr_in srv;	/* the echo server's address */
static struct in_addr local_ip; /* ADDR: what every client must be bound to */
static atomic_int failures;
static atomic_int stop;
static atomic_long cycles;
static int alarm_pipe[2] = { -1, -1 };

#define FAIL(...)                                        \
	do {                                             \
		fprintf(stderr, "threads: " __VA_ARGS__); \
		atomic_fetch_add(&failures, 1);          \
	} while (0)

/* Async-signal-safe reporting for forked children: no stdio. */
static void child_say(const char *what, int err)
{
	char buf[160];
	size_t n = 0;
	const char *p = "threads: child: ";
	while (*p && n < sizeof(buf) - 16)
		buf[n++] = *p++;
	for (p = what; *p && n < sizeof(buf) - 16; p++)
		buf[n++] = *p;
	buf[n++] = ' ';
	char digits[12];
	int d = 0;
	unsigned u = (unsigned)err;
	do {
		digits[d++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	while (d)
		buf[n++] = digits[--d];
	buf[n++] = '\n';
	ssize_t r = write(2, buf, n);
	(void)r;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads exactly n bytes; returns the count read before EOF or -1. */
static ssize_t read_full(int fd, char *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* connect, finishing an interrupted one as portable programs do. */
static int connect_srv(int fd)
{
	if (connect(fd, (struct sockaddr *)&srv, sizeof(srv)) == 0)
		return 0;
	if (errno != EINTR && errno != EINPROGRESS)
		return -1;
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int r;
	do
		r = poll(&p, 1, 10000);
	while (r < 0 && errno == EINTR);
	if (r <= 0) {
		errno = r == 0 ? ETIMEDOUT : errno;
		return -1;
	}
	int soerr = 0;
	socklen_t len = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return -1;
	if (soerr) {
		errno = soerr;
		return -1;
	}
	return 0;
}

/* One connect/echo/close cycle. Returns 0 or an error description; uses
 * only async-signal-safe calls, so that forked children can run it. */
static const char *cycle(int id, int it, int *err)
{
	char msg[MSG], back[MSG];
	for (int i = 0; i < MSG; i++)
		msg[i] = (char)(id * 131 + it * 7 + i);
	*err = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err = errno;
		return "socket";
	}
	const char *what = NULL;
	struct sockaddr_in me;
	socklen_t len = sizeof(me);
	if (connect_srv(fd) < 0)
		what = "connect";
	else if (getsockname(fd, (struct sockaddr *)&me, &len) < 0)
		what = "getsockname";
	else if (me.sin_addr.s_addr != local_ip.s_addr) {
		what = "local address is not ADDR";
		errno = 0;
	} else if (write_all(fd, msg, MSG) < 0)
		what = "write";
	else {
		ssize_t n = read_full(fd, back, MSG);
		if (n < 0)
			what = "read";
		else if (n != MSG) {
			what = "short echo";
			errno = (int)n;
		} else if (memcmp(msg, back, MSG) != 0) {
			what = "echo differs";
			errno = 0;
		}
	}
	if (what)
		*err = errno;
	if (close(fd) < 0 && !what) {
		*err = errno;
		what = "close";
	}
	if (!what)
		atomic_fetch_add(&cycles, 1);
	return what;
}

static void *echo_conn(void *arg)
{
	int fd = (int)(long)arg;
	char buf[4096];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (write_all(fd, buf, (size_t)n) < 0)
			break;
	}
	close(fd);
	return NULL;
}

static void *echo_server(void *arg)
{
	int ln = (int)(long)arg;
	for (;;) {
		int fd = accept4(ln, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			FAIL("accept: %s\n", strerror(errno));
			return NULL;
		}
		pthread_t th;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		int e = pthread_create(&th, &attr, echo_conn, (void *)(long)fd);
		pthread_attr_destroy(&attr);
		if (e) {
			FAIL("pthread_create: %s\n", strerror(e));
			close(fd);
		}
	}
}

static void start_server(void)
{
	int ln = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ln < 0) {
		perror("threads: socket");
		exit(1);
	}
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr = local_ip };
	socklen_t len = sizeof(srv);
	if (bind(ln, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ln, 512) < 0 ||
	    getsockname(ln, (struct sockaddr *)&srv, &len) < 0) {
		perror("threads: bind/listen");
		exit(1);
	}
	if (srv.sin_addr.s_addr != local_ip.s_addr || srv.sin_port == 0) {
		fprintf(stderr, "threads: server bound to %s:%d\n", inet_ntoa(srv.sin_addr),
			ntohs(srv.sin_port));
		exit(1);
	}
	pthread_t th;
	if (pthread_create(&th, NULL, echo_server, (void *)(long)ln)) {
		fprintf(stderr, "threads: cannot start the server thread\n");
		exit(1);
	}
	pthread_detach(th);
}

struct worker {
	pthread_t th;
	int id;
	int n; /* cycles to run, or 0: until stop */
};

static void *work(void *arg)
{
	struct worker *w = arg;
	for (int it = 0; w->n == 0 ? !atomic_load(&stop) : it < w->n; it++) {
		int err;
		const char *what = cycle(w->id, it, &err);
		if (what) {
			FAIL("thread %d cycle %d: %s: %s\n", w->id, it, what, strerror(err));
			if (atomic_load(&failures) > 20)
				break;
		}
	}
	return NULL;
}

static void on_alarm(int sig)
{
	(void)sig;
	int saved = errno;
	ssize_t r = write(alarm_pipe[1], "a", 1); /* EAGAIN when full: fine */
	(void)r;
	errno = saved;
}

static void atfork_write(void)
{
	int saved = errno;
	ssize_t r = write(alarm_pipe[1], "f", 1);
	(void)r;
	errno = saved;
}

static atomic_long pipe_bytes;

static void *drain(void *arg)
{
	(void)arg;
	char buf[512];
	for (;;) {
		ssize_t n = read(alarm_pipe[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NULL;
		atomic_fetch_add(&pipe_bytes, n);
	}
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Forks n times while workers run; each child runs one cycle. */
static void forks(int n)
{
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			FAIL("fork %d: %s\n", i, strerror(errno));
			return;
		}
		if (pid == 0) {
			int err;
			const char *what = cycle(1000 + i, 0, &err);
			if (what) {
				child_say(what, err);
				_exit(1);
			}
			/* A datagram socket too: bind to ADDR:0 and close. */
			int u = socket(AF_INET, SOCK_DGRAM, 0);
			struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr = local_ip };
			if (u < 0 || bind(u, (struct sockaddr *)&a, sizeof(a)) < 0) {
				child_say("udp socket/bind", errno);
				_exit(1);
			}
			close(u);
			_exit(0);
		}
		double deadline = now() + 10;
		int status;
		pid_t r;
		while ((r = waitpid(pid, &status, WNOHANG)) == 0 && now() < deadline) {
			struct timespec ms = { 0, 1000000 };
			nanosleep(&ms, NULL);
		}
		if (r == 0) {
			FAIL("fork %d: child %d hung (no exit within 10 s); killing it\n", i, (int)pid);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			continue;
		}
		if (r < 0) {
			FAIL("fork %d: waitpid: %s\n", i, strerror(errno));
			continue;
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			FAIL("fork %d: child %d ended with status 0x%x\n", i, (int)pid, status);
		if ((i + 1) % 10 == 0)
			fprintf(stderr, "threads: %d forks done\n", i + 1);
	}
}

static void run_workers(struct worker *w, int nthreads, int per)
{
	for (int i = 0; i < nthreads; i++) {
		w[i].id = i;
		w[i].n = per;
		if (pthread_create(&w[i].th, NULL, work, &w[i])) {
			fprintf(stderr, "threads: pthread_create failed\n");
			exit(1);
		}
	}
}

static void join_workers(struct worker *w, int nthreads)
{
	for (int i = 0; i < nthreads; i++)
		pthread_join(w[i].th, NULL);
}

int main(int argc, char **argv)
{
	if (argc != 3 || inet_pton(AF_INET, argv[2], &local_ip) != 1) {
		fprintf(stderr, "usage: threads threads|fork|signal IPV4ADDR\n");
		return 2;
	}
	const char *mode = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	start_server();

	if (strcmp(mode, "threads") == 0) {
		struct worker w[16];
		run_workers(w, 16, 100);
		join_workers(w, 16);
		if (atomic_load(&failures) || atomic_load(&cycles) != 1600) {
			printf("FAIL %d failures, %ld of 1600 cycles done\n", atomic_load(&failures),
			       atomic_load(&cycles));
			return 1;
		}
		printf("OK threads=16 cycles=%ld\n", atomic_load(&cycles));
		return 0;
	}

	int with_signals = strcmp(mode, "signal") == 0;
	if (!with_signals && strcmp(mode, "fork") != 0) {
		fprintf(stderr, "threads: unknown mode %s\n", mode);
		return 2;
	}
	pthread_t drainer;
	if (with_signals) {
		if (pipe2(alarm_pipe, O_CLOEXEC) < 0 ||
		    fcntl(alarm_pipe[1], F_SETFL, O_NONBLOCK) < 0) {
			perror("threads: pipe");
			return 1;
		}
		if (pthread_create(&drainer, NULL, drain, NULL)) {
			fprintf(stderr, "threads: pthread_create failed\n");
			return 1;
		}
		if (pthread_atfork(atfork_write, atfork_write, atfork_write)) {
			fprintf(stderr, "threads: pthread_atfork failed\n");
			return 1;
		}
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_alarm;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGALRM, &sa, NULL);
		struct itimerval it = { { 0, 200 }, { 0, 200 } };
		if (setitimer(ITIMER_REAL, &it, NULL) < 0) {
			perror("threads: setitimer");
			return 1;
		}
	}
	struct worker w[4];
	long before = atomic_load(&cycles);
	run_workers(w, 4, 0);
	forks(50);
	atomic_store(&stop, 1);
	join_workers(w, 4);
	long n = atomic_load(&cycles) - before;
	if (with_signals) {
		struct itimerval off = { { 0, 0 }, { 0, 0 } };
		setitimer(ITIMER_REAL, &off, NULL);
		close(alarm_pipe[1]);
		pthread_join(drainer, NULL);
		if (atomic_load(&pipe_bytes) == 0)
			FAIL("no SIGALRM or atfork write reached the pipe\n");
	}
	if (atomic_load(&failures)) {
		printf("FAIL %d failures (%ld cycles, 50 forks)\n", atomic_load(&failures), n);
		return 1;
	}
	if (with_signals)
		printf("OK forks=50 parent_cycles=%ld pipe_writes=%ld\n", n, atomic_load(&pipe_bytes));
	else
		printf("OK forks=50 parent_cycles=%ld\n", n);
	return 0;
}
