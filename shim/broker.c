/*
 * broker.c - talking to swrap-broker: the control connection pool, one
 * request/reply exchange, and starting the broker on demand.
 *
 * Interposes nothing.
 *
 * Pool: POOL_SLOTS slots, each taken with an atomic CAS on `busy`, holding a
 * SOCK_SEQPACKET connection (SOCK_CLOEXEC) that has done HELLO. A thread
 * that finds every slot busy opens a temporary connection, so no thread
 * ever waits for another (a blocking connect holds its connection until it
 * completes). No lock is held across a blocking call. After fork() the
 * child closes the connections it inherited (atfork handler, plus a pid
 * check for children made without fork handlers).
 *
 * Ticket: a process's right to the network is what it holds, not its uid.
 * Before a call that may take away its access to broker.sock (setuid and
 * friends, chroot: priv.c), a process obtains one more control connection,
 * the ticket, used for nothing but NEWCTL. When dialling broker.sock later
 * fails (EACCES/EPERM on connect, ENOENT after chroot, the broker's EACCES
 * to HELLO), a new connection comes through the ticket instead. The ticket
 * is inherited by forked children and shared with them: every NEWCTL reply
 * is one fresh connection and they are interchangeable, so processes (and
 * threads) that each send one request and read one reply each get one,
 * whichever reply they read. So fork costs nothing extra, and children
 * forked after a drop (their parent can no longer dial either) keep the
 * network. The ticket is SOCK_CLOEXEC: exec after a drop is not supported.
 *
 * Broker start: only a SOCKET request may start a broker (calls on existing
 * sockets of a dead broker must fail, not resurrect it). The broker is found
 * via $SWRAP_BROKER, next to this library, or on PATH, and started detached
 * (double fork, setsid, stdio on /dev/null, LD_PRELOAD removed). Its flock
 * guarantees one broker per directory however many processes race here.
 */
#include "swrap.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define POOL_SLOTS 16
#define START_TIMEOUT_MS 10000

struct slot {
	atomic_int busy;
	atomic_int fd;    /* -1: no connection */
	atomic_uint gen;  /* pool_gen when fd was dialled */
	/* no_wait requests go with SWRAP_NOREPLY: the broker sends no reply.
	 * seq counts them (only the holder sends, so only it bumps seq); done
	 * is the seq the broker is known to have served: set by the holder
	 * when the SERVED message or the reply of its next request arrives
	 * (the broker serves a connection in order), or when fd is replaced.
	 * A thread whose next request finds the slot busy waits for done, so
	 * that its requests stay in order. */
	atomic_uint seq, done;
	bool noreply; /* fd's broker honours SWRAP_NOREPLY (HELLO); the holder's */
};
static struct slot pool[POOL_SLOTS] = {
	[0 ... POOL_SLOTS - 1] = { .busy = 0, .fd = -1 },
};
/* This thread's last no_wait request: on slot pend_slot (-1: none), the
 * pend_seq'th there, on connection pend_fd. */
static __thread int pend_slot = -1;
static __thread unsigned int pend_seq;
static __thread int pend_fd;
/* The features of the broker the last hello() of this thread reached. */
static __thread uint32_t hello_features;
static atomic_int pool_pid;
static atomic_int ticket = -1;    /* NEWCTL-only connection, shared across fork */
static _Atomic uint64_t ticket_net; /* hash of the ctl_path it was made for */
static _Atomic uint64_t ticket_ino; /* its inode: is fd `ticket` still it? */
static atomic_int acquiring;      /* one thread per process takes a ticket */
static atomic_int starting;       /* one thread per process spawns the broker */
static _Atomic uint64_t instance; /* broker instance from the last HELLO */
static atomic_bool instance_known;
static atomic_uint pool_gen;      /* bumped by swrap_broker_config_changed */
static _Atomic uint32_t hello_mtu; /* the broker's MTU from the last HELLO, 0 if none yet */

extern char **environ;

bool swrap_broker_instance(uint64_t *out)
{
	if (!atomic_load(&instance_known))
		return false;
	*out = atomic_load(&instance);
	return true;
}

/* ------------------------------------------------------------ helpers -- */

int swrap_take_fd(struct msghdr *mh, bool want)
{
	int got = -1;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(mh); h; h = CMSG_NXTHDR(mh, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int x;
			memcpy(&x, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
			if (got < 0 && want)
				got = x;
			else
				swrap_libc.close(x);
		}
	}
	return got;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static uint64_t hex16(const char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 16; i++) {
		char c = p[i];
		int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10
			: (c >= 'A' && c <= 'F') ? c - 'A' + 10 : 0;
		v = v << 4 | (uint64_t)d;
	}
	return v;
}

/* ---------------------------------------------------- one exchange -- */

/* send_req sends c's request on fd, its op or'ed with flags: 0 or a
 * transport errno. */
static int send_req(int fd, const struct swrap_call *c, uint16_t flags)
{
	struct swrap_req rq = { SWRAP_MAGIC, SWRAP_VERSION, (uint16_t)(c->op | flags), c->sock };
	struct iovec iov[3] = {
		{ &rq, sizeof(rq) },
		{ (void *)c->body, c->body ? c->body_len : 0 },
		{ (void *)c->body2, c->body2 ? c->body2_len : 0 },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 3 };
	ssize_t n;

	do
		n = swrap_libc.sendmsg(fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EPIPE || errno == ENOTCONN ? ECONNRESET : errno;
	return 0;
}

/* take_pending: this thread's last request went without a reply on slot
 * i, the seq'th there, on connection fd. Its next one goes on the same
 * connection, which the broker serves in order: returns i once taken.
 * While another thread holds it, waits until that thread learns that ours
 * was served (the broker's SERVED message comes before the reply to the
 * holder's request, even one that blocks, so this is a wait for the
 * broker, not for the other thread's call), or the connection went: then
 * -1, and the request may go on another connection. Bounded: a second or
 * so. */
static int take_pending(int i, unsigned int seq, int fd)
{
	for (int k = 0; k < 20000; k++) {
		int z = 0;
		if (atomic_compare_exchange_strong(&pool[i].busy, &z, 1))
			return i;
		if ((int)(atomic_load(&pool[i].done) - seq) >= 0 || atomic_load(&pool[i].fd) != fd)
			return -1;
		if (k < 100)
			sched_yield();
		else {
			struct timespec ts = { 0, 10000 };
			nanosleep(&ts, NULL);
		}
	}
	return -1;
}

/* exchange sends one request on fd and reads its reply. Returns 0 with
 * *err set to the reply's err, or a transport errno (the connection is then
 * unusable). p: fd is slot p's connection, whose no-reply requests up to
 * seq upto were sent before this one: the SERVED message or the reply that
 * arrives says the broker served them. */
static int exchange(int fd, struct swrap_call *c, int *err, struct slot *p, unsigned int upto)
{
	int t = send_req(fd, c, 0);
	if (t)
		return t;
	ssize_t n;

	struct swrap_rep rp;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} cm;
	/* A SERVED body may come first: a small reply buffer gets a
	 * scratch one that holds it, copied out below. */
	struct swrap_served small;
	bool scratch = !c->rep || c->rep_cap < sizeof(small);
	struct iovec riov[2] = { { &rp, sizeof(rp) },
				 { scratch ? (void *)&small : c->rep, scratch ? sizeof(small) : c->rep_cap } };
	struct msghdr rh = { .msg_iov = riov, .msg_iovlen = 2 };
	for (;;) {
		rh.msg_control = cm.buf;
		rh.msg_controllen = sizeof(cm.buf);
		n = swrap_libc.recvmsg(fd, &rh, c->cloexec ? MSG_CMSG_CLOEXEC : 0);
		if (n < 0 && errno == EINTR) {
			if (c->interruptible)
				return EINTR; /* reply still owed: caller drops the connection */
			continue;
		}
		if (n >= (ssize_t)sizeof(rp) && rp.magic == SWRAP_MAGIC &&
		    rp.op == (SWRAP_OP_SERVED | SWRAP_REPLY)) {
			swrap_take_fd(&rh, false);
			if (p)
				atomic_store(&p->done, upto);
			struct swrap_served sv;
			if ((size_t)n >= sizeof(rp) + sizeof(sv)) {
				memcpy(&sv, riov[1].iov_base, sizeof(sv));
				if (sv.failed)
					SWRAP_LOG(SWRAP_LOG_DEBUG,
						  "%u of %u requests not waited for failed, the last (op %u): %s",
						  sv.failed, sv.count, sv.fail_op, strerror(sv.fail_err));
			}
			continue;
		}
		break;
	}
	if (n == 0)
		return ECONNRESET; /* broker gone */
	if (n < 0)
		return errno;

	int got = swrap_take_fd(&rh, c->fd_out != NULL);
	if ((size_t)n < sizeof(rp) || rp.magic != SWRAP_MAGIC ||
	    rp.op != (c->op | SWRAP_REPLY)) {
		if (got >= 0)
			swrap_libc.close(got);
		SWRAP_LOG(SWRAP_LOG_ERROR, "bad reply to op %u (%zd bytes)", c->op, n);
		return EPROTO;
	}
	if (p)
		atomic_store(&p->done, upto);
	c->rep_len = (size_t)n - sizeof(rp);
	if (c->rep_len > c->rep_cap)
		c->rep_len = c->rep_cap;
	if (scratch && c->rep && c->rep_len > 0)
		memcpy(c->rep, &small, c->rep_len);
	if (c->fd_out)
		*c->fd_out = got;
	else if (got >= 0)
		swrap_libc.close(got);
	*err = rp.err;
	return 0;
}

/* ------------------------------------------------- starting a broker -- */

/* broker_path finds the swrap-broker binary; "" if none. */
static void broker_path(char *out, size_t cap)
{
	const char *env = getenv("SWRAP_BROKER");
	Dl_info info;

	out[0] = '\0';
	if (env && *env) {
		snprintf(out, cap, "%s", env);
		return;
	}
	/* Next to the shim (the build tree's bin/), else in the shim's
	 * directory's swrap/ (an installed LIBDIR/swrap/swrap-broker): found
	 * relative to the library itself, so a DESTDIR tree or a moved prefix
	 * works without PATH. */
	if (dladdr((void *)swrap_broker_instance, &info) && info.dli_fname) {
		static const char *const rel[] = { "swrap-broker", "swrap/swrap-broker" };
		const char *slash = strrchr(info.dli_fname, '/');
		for (size_t i = 0; slash && i < sizeof(rel) / sizeof(rel[0]); i++) {
			if ((size_t)(slash - info.dli_fname) + strlen(rel[i]) + 2 > cap)
				break;
			snprintf(out, cap, "%.*s/%s", (int)(slash - info.dli_fname),
				 info.dli_fname, rel[i]);
			if (access(out, X_OK) == 0)
				return;
		}
	}
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *end = strchr(path, ':');
		size_t len = end ? (size_t)(end - path) : strlen(path);
		if (len > 0 && len + 14 < cap) {
			snprintf(out, cap, "%.*s/swrap-broker", (int)len, path);
			if (access(out, X_OK) == 0)
				return;
		}
		path += len;
		if (*path == ':')
			path++;
	}
	out[0] = '\0';
}

/* spawn_broker starts `swrap-broker --on-demand --dir DIR` detached. All
 * memory is prepared before forking; between fork and exec only
 * async-signal-safe system calls run. The fork is a raw clone() so that the
 * program's own pthread_atfork handlers do not run for our helper. */
static int spawn_broker(void)
{
	static struct swrap_config cfg; /* under `starting`: one spawner at a time */
	swrap_config_copy(&cfg);
	char path[PATH_MAX];
	broker_path(path, sizeof(path));
	if (!path[0]) {
		swrap_complain(__func__, "cannot find swrap-broker (set SWRAP_BROKER, or put it "
					 "next to the shim or on PATH)");
		return ENOENT;
	}
	if (access(path, X_OK) != 0) {
		int e = errno;
		swrap_complain(__func__, "cannot run broker %s: %s", path, strerror(e));
		return e;
	}

	size_t n = 0;
	for (char **e = environ; e && *e; e++)
		n++;
	char **envp = malloc((n + 1) * sizeof(char *));
	if (!envp)
		return ENOMEM;
	size_t k = 0;
	for (char **e = environ; e && *e; e++)
		if (strncmp(*e, "LD_PRELOAD=", 11) != 0)
			envp[k++] = *e;
	envp[k] = NULL;
	char *argv[] = { path, (char *)"--on-demand", (char *)"--dir", cfg.dir, NULL };
	struct rlimit rl;
	long maxfd = (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
		      rl.rlim_cur < 65536) ? (long)rl.rlim_cur : 65536;
	sigset_t none;
	sigemptyset(&none);
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;

	SWRAP_LOG(SWRAP_LOG_DEBUG, "starting %s --on-demand --dir %s", path, cfg.dir);
	long pid = swrap_libc.syscall(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L);
	if (pid < 0) {
		int e = errno;
		free(envp);
		return e;
	}
	if (pid == 0) {
		/* Child: detach, fork again so the broker is not our child. */
		if (setsid() < 0)
			_exit(1);
		long p2 = swrap_libc.syscall(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L);
		if (p2 != 0)
			_exit(p2 < 0 ? 1 : 0);
		int nul = (int)swrap_libc.syscall(SYS_openat, (long)AT_FDCWD, "/dev/null", (long)O_RDWR);
		if (nul >= 0) {
			swrap_libc.syscall(SYS_dup2, (long)nul, 0L);
			swrap_libc.syscall(SYS_dup2, (long)nul, 1L);
			swrap_libc.syscall(SYS_dup2, (long)nul, 2L);
		}
		/* The broker must not hold the program's fds: a wrapped socket's
		 * hang-up is how the broker learns it was closed. */
		if (swrap_libc.syscall(SYS_close_range, 3L, (long)~0U, 0L) != 0)
			for (long fd = 3; fd < maxfd; fd++)
				swrap_libc.syscall(SYS_close, fd);
		for (int sig = 1; sig < NSIG; sig++)
			if (sig != SIGKILL && sig != SIGSTOP)
				sigaction(sig, &dfl, NULL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve(path, argv, envp);
		_exit(127);
	}
	int st;
	while (waitpid((pid_t)pid, &st, 0) < 0 && errno == EINTR)
		;
	free(envp);
	return 0;
}

/* ---------------------------------------------------- connections -- */

/* hello does HELLO on a new control connection fd for configuration cfg;
 * closes it on failure. Returns fd, or -1 with *err set (EACCES: the broker
 * refused us). current: cfg is the process's configuration now, whose
 * broker instance is then remembered. */
static int hello(int fd, const struct swrap_config *cfg, bool current, int *err)
{
	struct swrap_hello h = { .pid = (uint32_t)getpid(), .iface = cfg->iface };
	memcpy(h.comm, cfg->comm, sizeof(h.comm));
	struct swrap_hello_rep hr;
	memset(&hr, 0, sizeof(hr));
	struct swrap_call c = {
		.op = SWRAP_OP_HELLO,
		.body = &h,
		.body_len = sizeof(h),
		.body2 = cfg->pcap[0] ? cfg->pcap : NULL,
		.body2_len = strlen(cfg->pcap),
		.rep = &hr,
		.rep_cap = sizeof(hr),
	};
	int rerr = 0, t = exchange(fd, &c, &rerr, NULL, 0);
	/* A broker without features answers with the first 24 bytes. */
	if (t != 0 || rerr != 0 || c.rep_len < offsetof(struct swrap_hello_rep, features)) {
		*err = t ? t : rerr ? rerr : EPROTO;
		if (rerr && rerr != EACCES) /* EACCES: dial() explains */
			swrap_complain(__func__, "broker refused HELLO: %s", strerror(rerr));
		swrap_libc.close(fd);
		return -1;
	}
	if (current) {
		atomic_store(&instance, hex16(hr.instance));
		atomic_store(&instance_known, true);
		atomic_store(&hello_mtu, hr.mtu);
	}
	hello_features = hr.features;
	return fd;
}

static int dial_cfg(const struct swrap_config *cfg, int *err, bool current);

/* dial_once connects to broker.sock and does HELLO. Returns the fd, or -1
 * with *err set. */
static int dial_once(int *err)
{
	/* The paths may change at run time (init.c): work on a copy (no
	 * malloc: socket() is async-signal-safe). */
	struct swrap_config cfg;
	swrap_config_copy(&cfg);
	return dial_cfg(&cfg, err, true);
}

static int dial_cfg(const struct swrap_config *cfg, int *err, bool current)
{
	int fd = swrap_libc.socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err = errno;
		return -1;
	}
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", cfg->ctl_path);
	int r;
	do
		r = swrap_libc.connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		*err = errno;
		swrap_libc.close(fd);
		return -1;
	}
	return hello(fd, cfg, current, err);
}

/* newctl asks the broker for a new control connection on via (NEWCTL) and
 * does HELLO on it. Returns the fd, or -1 with *err set and *via_dead
 * telling whether via itself is unusable now (transport failure). p, upto:
 * via is a pooled connection (exchange). */
static int newctl(int via, int *err, bool *via_dead, struct slot *p, unsigned int upto)
{
	int fd = -1, rerr = 0;
	struct swrap_call c = { .op = SWRAP_OP_NEWCTL, .fd_out = &fd, .cloexec = true };
	int t = exchange(via, &c, &rerr, p, upto);
	*via_dead = t != 0;
	if (t != 0 || rerr != 0 || fd < 0) {
		if (fd >= 0)
			swrap_libc.close(fd);
		*err = t ? t : rerr ? rerr : EPROTO;
		return -1;
	}
	struct swrap_config cfg;
	swrap_config_copy(&cfg);
	return hello(fd, &cfg, true, err);
}

/* net_hash names the network of the current configuration (FNV-1a of
 * ctl_path): a ticket serves only the network it was made for, should the
 * program switch SOCKET_WRAPPER_DIR at run time. */
static uint64_t net_hash(void)
{
	uint64_t h = 14695981039346656037ULL;
	for (const char *p = swrap_cfg.ctl_path; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h;
}

/* fd_ino is the inode of fd, 0 if it is not open. */
static uint64_t fd_ino(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* ticket_get returns the ticket fd, or -1. The number is checked against
 * the inode it had when made: a vfork() child that took a ticket stored
 * its own fd number in memory it shares with its parent, and a program may
 * replace the fd by means we do not see (raw dup2). */
static int ticket_get(void)
{
	int tk = atomic_load(&ticket);
	if (tk < 0)
		return -1;
	if (fd_ino(tk) == atomic_load(&ticket_ino))
		return tk;
	atomic_compare_exchange_strong(&ticket, &tk, -1); /* not ours: not closed */
	return -1;
}

/* dial_ticket gets a new connection through the ticket. -1 with ENOENT:
 * no usable ticket (none, another network's, or dead: then dropped);
 * another errno: the broker said no. */
static int dial_ticket(int *err)
{
	int tk = ticket_get();
	if (tk < 0 || atomic_load(&ticket_net) != net_hash()) {
		*err = ENOENT;
		return -1;
	}
	bool dead;
	int fd = newctl(tk, err, &dead, NULL, 0);
	if (fd < 0 && dead) {
		if (atomic_compare_exchange_strong(&ticket, &tk, -1))
			swrap_libc.close(tk);
		SWRAP_LOG(SWRAP_LOG_DEBUG, "ticket fd %d is dead: %s", tk, strerror(*err));
		*err = ENOENT;
	}
	if (fd >= 0)
		SWRAP_LOG(SWRAP_LOG_DEBUG, "new control connection %d through the ticket", fd);
	return fd;
}

/* denied: dialling failed because this process may not use broker.sock. */
static bool denied(int err)
{
	return err == EACCES || err == EPERM;
}

/* complain_refused says once why this process cannot reach the broker:
 * the uids involved, and that it holds no connection of the wrapped tree. */
static void complain_refused(int err)
{
	char sub[PATH_MAX + 8];
	struct stat st;
	char owner[PATH_MAX + 96];
	snprintf(sub, sizeof(sub), "%s/%s", swrap_cfg.dir, SWRAP_SUBDIR);
	if (stat(sub, &st) == 0)
		snprintf(owner, sizeof(owner), "is owned by uid %u (mode %03o)", (unsigned)st.st_uid,
			 (unsigned)(st.st_mode & 0777));
	else if (stat(swrap_cfg.dir, &st) == 0) /* a 0700 SOCKET_WRAPPER_DIR hides it */
		snprintf(owner, sizeof(owner), "is out of reach: %s is owned by uid %u (mode %03o)",
			 swrap_cfg.dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777));
	else
		snprintf(owner, sizeof(owner), "cannot be examined (%s)", strerror(errno));
	swrap_complain("broker",
		       "SOCKET_WRAPPER_DIR=%s: access refused (%s): this process runs as uid %u "
		       "(euid %u), the broker's directory %s %s, and the process holds no "
		       "connection of the wrapped tree (a wrapped process keeps the network when it "
		       "changes uid or chroot()s, and so do the children it forks; a process of "
		       "another user, or one exec'd after the change, does not); new sockets fail "
		       "with EACCES",
		       swrap_cfg.dir, strerror(err), (unsigned)getuid(), (unsigned)geteuid(), sub, owner);
}

static int dial(bool may_start, int *err)
{
	int fd = dial_once(err);
	if (fd >= 0)
		return fd;
	if (denied(*err) || *err == ENOENT || *err == ECONNREFUSED) {
		/* No access (changed uid, chroot), or no broker where we look:
		 * a ticket, if we hold one, still reaches ours. */
		int terr;
		fd = dial_ticket(&terr);
		if (fd >= 0)
			return fd;
		if (terr != ENOENT) {
			*err = terr; /* a live ticket whose broker said no */
			return -1;
		}
	}
	if (denied(*err)) {
		complain_refused(*err);
		*err = EACCES;
		return -1;
	}
	if (!may_start || (*err != ENOENT && *err != ECONNREFUSED))
		return fd;

	int expect = 0;
	bool spawner = atomic_compare_exchange_strong(&starting, &expect, 1);
	long last_spawn = now_ms();
	if (spawner) {
		int e = spawn_broker();
		if (e != 0) {
			atomic_store(&starting, 0);
			*err = e == ENOENT ? ENETDOWN : e;
			return -1;
		}
	}
	long deadline = now_ms() + START_TIMEOUT_MS, wait = 1;
	while (now_ms() < deadline) {
		sleep_ms(wait);
		if (wait < 100)
			wait *= 2;
		/* A broker that is shutting down still holds the lock after its
		 * socket is gone, and the one we started then exits at once:
		 * start another now and then until one serves. */
		if (spawner && now_ms() - last_spawn >= 1000) {
			spawn_broker();
			last_spawn = now_ms();
		}
		fd = dial_once(err);
		if (fd >= 0 || (*err != ENOENT && *err != ECONNREFUSED))
			break;
	}
	if (spawner)
		atomic_store(&starting, 0);
	if (fd < 0) {
		swrap_complain(__func__, "swrap-broker for %s did not come up: %s (see %s/%s/broker.log)",
			       swrap_cfg.dir, strerror(*err), swrap_cfg.dir, SWRAP_SUBDIR);
		*err = ENETDOWN;
	}
	return fd;
}

/* reset_pool_if_forked: a child made without fork handlers (raw clone)
 * must not use the parent's connections. */
static void reset_pool_if_forked(void)
{
	int me = (int)getpid();
	if (SWRAP_LIKELY(atomic_load_explicit(&pool_pid, memory_order_relaxed) == me))
		return;
	if (atomic_exchange(&pool_pid, me) == me)
		return;
	for (int i = 0; i < POOL_SLOTS; i++) {
		atomic_store(&pool[i].fd, -1); /* not closed: it may be the parent's fd number in use */
		atomic_store(&pool[i].busy, 0);
	}
	pend_slot = -1;
}

/* The child keeps the ticket: shared NEWCTL use is safe (header). */
void swrap_broker_atfork_child(void)
{
	for (int i = 0; i < POOL_SLOTS; i++) {
		int fd = atomic_exchange(&pool[i].fd, -1);
		if (fd >= 0)
			swrap_libc.close(fd);
		atomic_store(&pool[i].busy, 0);
	}
	pend_slot = -1; /* the parent's connection */
	atomic_store(&pool_pid, (int)getpid());
	atomic_store(&starting, 0);
	atomic_store(&acquiring, 0);
}

void swrap_broker_fd_closing(int fd)
{
	if (fd < 0)
		return;
	int tk = fd;
	if (atomic_load(&ticket) == fd && atomic_compare_exchange_strong(&ticket, &tk, -1))
		SWRAP_LOG(SWRAP_LOG_DEBUG, "program closes our ticket fd %d", fd);
	for (int i = 0; i < POOL_SLOTS; i++) {
		int cur = fd;
		if (atomic_load(&pool[i].fd) == fd &&
		    atomic_compare_exchange_strong(&pool[i].fd, &cur, -1))
			SWRAP_LOG(SWRAP_LOG_DEBUG, "program closes our control fd %d", fd);
	}
}

void swrap_broker_fds_closing(unsigned int first, unsigned int last)
{
	int tk = atomic_load(&ticket);
	if (tk >= 0 && (unsigned int)tk >= first && (unsigned int)tk <= last)
		swrap_broker_fd_closing(tk);
	for (int i = 0; i < POOL_SLOTS; i++) {
		int fd = atomic_load(&pool[i].fd);
		if (fd >= 0 && (unsigned int)fd >= first && (unsigned int)fd <= last)
			swrap_broker_fd_closing(fd);
	}
}

void swrap_broker_config_changed(void)
{
	atomic_fetch_add(&pool_gen, 1);
	atomic_store(&instance_known, false);
	/* Idle connections go now; a busy one when its user releases it. */
	for (int i = 0; i < POOL_SLOTS; i++) {
		int z = 0;
		if (atomic_compare_exchange_strong(&pool[i].busy, &z, 1)) {
			int fd = atomic_exchange(&pool[i].fd, -1);
			if (fd >= 0)
				swrap_libc.close(fd);
			atomic_store(&pool[i].busy, 0);
		}
	}
}

/* release gives a slot back, closing a connection of an older
 * configuration. */
static void release(int slot)
{
	if (atomic_load(&pool[slot].gen) != atomic_load(&pool_gen)) {
		int fd = atomic_exchange(&pool[slot].fd, -1);
		if (fd >= 0)
			swrap_libc.close(fd);
	}
	atomic_store(&pool[slot].busy, 0);
}

/* request_elsewhere: a socket of a SOCKET_WRAPPER_DIR this process used
 * before is asked about at its own broker, on a connection of its own
 * (rare: the pool serves the current directory). */
static int request_elsewhere(struct swrap_call *c, unsigned int tag)
{
	struct swrap_config cfg;
	swrap_config_copy(&cfg);
	int err = 0, rerr = 0;
	if (!swrap_config_ctl_path(tag, cfg.ctl_path))
		return ECONNRESET;
	int fd = dial_cfg(&cfg, &err, false);
	if (fd < 0)
		return ECONNRESET; /* that broker is gone */
	int t = exchange(fd, c, &rerr, NULL, 0);
	swrap_libc.close(fd);
	return t ? t : rerr;
}

int swrap_request(struct swrap_call *c)
{
	unsigned int tag = (unsigned int)(c->sock >> SWRAP_ID_TAG_SHIFT);
	c->sock &= SWRAP_ID_MASK;
	if (SWRAP_UNLIKELY(tag != 0 && tag != atomic_load_explicit(&swrap_dir_tag, memory_order_relaxed)))
		return request_elsewhere(c, tag);
	reset_pool_if_forked();
	for (int attempt = 0; attempt < 2; attempt++) {
		int slot = -1, fd = -1, err = 0;

		/* After a no_wait request, this thread goes on on the same
		 * connection, or once that request has been served. */
		int want = pend_slot;
		pend_slot = -1;
		if (want >= 0)
			slot = take_pending(want, pend_seq, pend_fd);
		for (int i = 0; i < POOL_SLOTS && slot < 0; i++) {
			int z = 0;
			if (atomic_load_explicit(&pool[i].busy, memory_order_relaxed) == 0 &&
			    atomic_compare_exchange_strong(&pool[i].busy, &z, 1)) {
				slot = i;
				break;
			}
		}
		struct slot *p = slot >= 0 ? &pool[slot] : NULL;
		if (p) {
			fd = atomic_load(&p->fd);
			if (fd >= 0 && atomic_load(&p->gen) != atomic_load(&pool_gen)) {
				atomic_store(&p->fd, -1); /* of an older configuration */
				swrap_libc.close(fd);
				fd = -1;
			}
		}
		if (fd < 0) {
			unsigned int gen = atomic_load(&pool_gen);
			fd = dial(c->may_start, &err);
			if (fd < 0) {
				if (p)
					atomic_store(&p->busy, 0);
				SWRAP_LOG(SWRAP_LOG_DEBUG, "op %u: no broker: %s", c->op, strerror(err));
				/* Existing sockets of a dead broker: connection reset. */
				return c->may_start ? err : ECONNRESET;
			}
			if (p) {
				p->noreply = hello_features & SWRAP_FEAT_NOREPLY;
				/* Nothing is owed on a new connection. */
				atomic_store(&p->done, atomic_load(&p->seq));
				atomic_store(&p->gen, gen);
				atomic_store(&p->fd, fd);
			}
		}

		/* A no_wait request goes without a reply where the broker
		 * honours that (else it is waited for, as any other). */
		int rerr = 0, t;
		if (c->no_wait && p && p->noreply) {
			t = send_req(fd, c, SWRAP_NOREPLY);
			if (t == 0) {
				unsigned int seq = atomic_fetch_add(&p->seq, 1) + 1;
				release(slot);
				pend_seq = seq;
				pend_fd = fd;
				pend_slot = slot;
				SWRAP_LOG(SWRAP_LOG_TRACE, "op %u sock %llx sent, no reply", c->op,
					  (unsigned long long)c->sock);
				return 0;
			}
		} else
			t = exchange(fd, c, &rerr, p, p ? atomic_load(&p->seq) : 0);
		if (t != 0) {
			/* The connection is unusable (broker gone, or a reply
			 * still owed after EINTR): drop it. */
			if (slot >= 0) {
				int cur = fd;
				atomic_compare_exchange_strong(&pool[slot].fd, &cur, -1);
				atomic_store(&pool[slot].busy, 0);
			}
			swrap_libc.close(fd);
			SWRAP_LOG(SWRAP_LOG_DEBUG, "op %u: transport: %s", c->op, strerror(t));
			/* A stale pooled connection (broker restarted) deserves one
			 * retry on a fresh one; only when the request cannot have
			 * been acted upon twice would matter, and a dead broker
			 * acted on nothing. */
			if (t == ECONNRESET && attempt == 0)
				continue;
			return t;
		}
		if (slot >= 0)
			release(slot);
		else
			swrap_libc.close(fd);
		SWRAP_LOG(SWRAP_LOG_TRACE, "op %u sock %llx -> err %d len %zu", c->op,
			  (unsigned long long)c->sock, rerr, c->rep_len);
		return rerr;
	}
	return ECONNRESET;
}

void swrap_broker_ticket(void)
{
	if (ticket_get() >= 0 && atomic_load(&ticket_net) == net_hash())
		return;
	/* One thread takes a ticket at a time; another that calls meanwhile
	 * goes on without waiting (no lock across a blocking call). */
	int z = 0;
	if (!atomic_compare_exchange_strong(&acquiring, &z, 1))
		return;
	int err = 0, fd = -1;
	/* An idle pooled connection is the cheapest source (and the only
	 * one if this process already cannot dial, e.g. after seteuid). */
	reset_pool_if_forked();
	for (int i = 0; i < POOL_SLOTS && fd < 0; i++) {
		z = 0;
		if (atomic_load(&pool[i].fd) < 0 ||
		    !atomic_compare_exchange_strong(&pool[i].busy, &z, 1))
			continue;
		int via = atomic_load(&pool[i].fd);
		bool dead = false;
		if (via >= 0) {
			fd = newctl(via, &err, &dead, &pool[i], atomic_load(&pool[i].seq));
			if (dead) {
				int cur = via;
				if (atomic_compare_exchange_strong(&pool[i].fd, &cur, -1))
					swrap_libc.close(via);
			}
		}
		atomic_store(&pool[i].busy, 0);
	}
	if (fd < 0)
		fd = dial(true, &err);
	if (fd >= 0) {
		/* A ticket of another network (SOCKET_WRAPPER_DIR changed at
		 * run time) is replaced; the inode goes first, so that
		 * ticket_get never sees the new fd with the old inode. */
		int old = atomic_exchange(&ticket, -1);
		if (old >= 0 && fd_ino(old) == atomic_load(&ticket_ino))
			swrap_libc.close(old);
		atomic_store(&ticket_net, net_hash());
		atomic_store(&ticket_ino, fd_ino(fd));
		atomic_store(&ticket, fd);
		SWRAP_LOG(SWRAP_LOG_DEBUG, "ticket fd %d", fd);
	} else
		SWRAP_LOG(SWRAP_LOG_DEBUG, "no ticket: %s", strerror(err));
	atomic_store(&acquiring, 0);
}

uint32_t swrap_broker_mtu(void)
{
	uint32_t m = atomic_load(&hello_mtu);
	if (m)
		return m;
	/* No HELLO yet: what the broker this process would start reads
	 * (cmd/swrap-broker: SOCKET_WRAPPER_MTU, 1280..65535, default 65535). */
	const char *v = getenv("SOCKET_WRAPPER_MTU");
	if (v && *v) {
		char *end;
		long n = strtol(v, &end, 10);
		if (*end == '\0' && n >= 1280 && n <= 65535)
			return (uint32_t)n;
	}
	return 65535;
}
