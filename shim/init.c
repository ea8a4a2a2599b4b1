/*
 * init.c - start-up of the shim: the real-symbol table (dlsym(RTLD_NEXT),
 * resolved once), the configuration from SOCKET_WRAPPER_* variables, the
 * constructor and the fork handler.
 *
 * Interposes nothing. Initialisation is lock-free: the first caller resolves
 * everything; a concurrent caller spins until it is done (microseconds, once
 * per process). Nothing here may call an interposed function by name.
 */
#include "swrap.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sched.h>

struct swrap_libc swrap_libc;
struct swrap_config swrap_cfg = { .loglevel = 0, .iface = 1, .net4 = 127, .max_sockets = 65535 };
atomic_int swrap_ready;
static atomic_int init_state; /* 0 not started, 1 in progress, 2 done */

/* resolve stores dlsym(RTLD_NEXT, name) into *slot; a missing optional
 * symbol stays NULL and callers fall back. */
static void resolve(void *slot, const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);
	memcpy(slot, &p, sizeof(p));
}

static void resolve_all(void)
{
	struct swrap_libc *l = &swrap_libc;

	resolve(&l->socket, "socket");
	resolve(&l->getifaddrs, "getifaddrs");
	resolve(&l->if_nameindex, "if_nameindex");
	resolve(&l->if_nametoindex, "if_nametoindex");
	resolve(&l->if_indextoname, "if_indextoname");
	resolve(&l->socketpair, "socketpair");
	resolve(&l->bind, "bind");
	resolve(&l->bindresvport, "bindresvport");
	resolve(&l->listen, "listen");
	resolve(&l->accept, "accept");
	resolve(&l->accept4, "accept4");
	resolve(&l->connect, "connect");
	resolve(&l->shutdown, "shutdown");
	resolve(&l->getsockname, "getsockname");
	resolve(&l->getpeername, "getpeername");
	resolve(&l->getsockopt, "getsockopt");
	resolve(&l->setsockopt, "setsockopt");
	resolve(&l->read, "read");
	resolve(&l->write, "write");
	resolve(&l->readv, "readv");
	resolve(&l->writev, "writev");
	resolve(&l->recv, "recv");
	resolve(&l->send, "send");
	resolve(&l->recvfrom, "recvfrom");
	resolve(&l->sendto, "sendto");
	resolve(&l->recvmsg, "recvmsg");
	resolve(&l->sendmsg, "sendmsg");
	resolve(&l->recvmmsg, "recvmmsg");
	resolve(&l->sendmmsg, "sendmmsg");
	resolve(&l->close, "close");
	resolve(&l->close_nocancel, "__close_nocancel");
	resolve(&l->close_range, "close_range");
	resolve(&l->closefrom, "closefrom");
	resolve(&l->dup, "dup");
	resolve(&l->dup2, "dup2");
	resolve(&l->dup3, "dup3");
	resolve(&l->fcntl, "fcntl");
	resolve(&l->fcntl64, "fcntl64");
	resolve(&l->ioctl, "ioctl");
	resolve(&l->syscall, "syscall");
	resolve(&l->open, "open");
	resolve(&l->open64, "open64");
	resolve(&l->openat, "openat");
	resolve(&l->openat64, "openat64");
	resolve(&l->open_2, "__open_2");
	resolve(&l->openat_2, "__openat_2");
	resolve(&l->fopen, "fopen");
	resolve(&l->fopen64, "fopen64");
	resolve(&l->pipe, "pipe");
	resolve(&l->pipe2, "pipe2");
	resolve(&l->eventfd, "eventfd");
	resolve(&l->signalfd, "signalfd");
	resolve(&l->timerfd_create, "timerfd_create");
	resolve(&l->epoll_create, "epoll_create");
	resolve(&l->epoll_create1, "epoll_create1");
	if (!l->fcntl64)
		l->fcntl64 = l->fcntl;
	if (!l->close_nocancel)
		l->close_nocancel = l->close;
}

/* parse_loglevel: 0..3 or error/warn/debug/trace (socket_wrapper's names). */
static int parse_loglevel(const char *v)
{
	if (!v || !*v)
		return 0;
	if (!strcasecmp(v, "error"))
		return SWRAP_LOG_ERROR;
	if (!strcasecmp(v, "warn") || !strcasecmp(v, "warning"))
		return SWRAP_LOG_WARN;
	if (!strcasecmp(v, "debug"))
		return SWRAP_LOG_DEBUG;
	if (!strcasecmp(v, "trace"))
		return SWRAP_LOG_TRACE;
	int n = atoi(v);
	if (n < 0)
		return 0;
	return n > 3 ? 3 : n;
}

/*
 * A problem with the configuration is reported on stderr once, when it first
 * matters (the first socket() that fails because of it), not at start-up:
 * every process of a wrapped shell script would print it otherwise.
 */
static char deferred[512];
static atomic_bool deferred_done;

static void defer(const char *func, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void defer(const char *func, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(deferred, sizeof(deferred), "%s: ", func);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(deferred))
		vsnprintf(deferred + n, sizeof(deferred) - (size_t)n, fmt, ap);
	va_end(ap);
}

void swrap_config_complain(void)
{
	if (deferred[0] && !atomic_exchange(&deferred_done, true))
		swrap_complain("socket", "%s", deferred);
}

/* check_dir validates SOCKET_WRAPPER_DIR and fills dir/ctl_path; returns 0
 * or the errno socket() will fail with. */
static int check_dir(const char *v)
{
	char buf[PATH_MAX];
	struct stat st;

	if (!realpath(v, buf)) {
		int e = errno;
		defer(__func__, "SOCKET_WRAPPER_DIR=%s is unusable: %s", v, strerror(e));
		return e;
	}
	if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
		defer(__func__, "SOCKET_WRAPPER_DIR=%s is not a directory", v);
		return ENOTDIR;
	}
	if (access(buf, W_OK | X_OK) != 0) {
		int e = errno;
		defer(__func__, "SOCKET_WRAPPER_DIR=%s is not writable: %s", v, strerror(e));
		return e;
	}
	size_t need = strlen(buf) + strlen("/" SWRAP_SUBDIR "/" SWRAP_CTL_SOCK) + 1;
	if (need > sizeof(swrap_cfg.ctl_path)) {
		defer(__func__,
			       "SOCKET_WRAPPER_DIR=%s is too long for a unix socket path "
			       "(%zu bytes needed, %zu allowed)",
			       buf, need, sizeof(swrap_cfg.ctl_path));
		return ENAMETOOLONG;
	}
	strcpy(swrap_cfg.dir, buf);
	snprintf(swrap_cfg.ctl_path, sizeof(swrap_cfg.ctl_path), "%s/%s/%s", buf, SWRAP_SUBDIR,
		 SWRAP_CTL_SOCK);
	return 0;
}

static void load_config(void)
{
	struct swrap_config *c = &swrap_cfg;
	const char *v;

	snprintf(c->comm, sizeof(c->comm), "%s", program_invocation_short_name);
	c->loglevel = parse_loglevel(getenv("SOCKET_WRAPPER_DEBUGLEVEL"));

	v = getenv("SOCKET_WRAPPER_DIR");
	if (!v || !*v)
		return; /* off: every call goes to libc */
	c->active = true;
	c->dir_err = check_dir(v);

	v = getenv("SOCKET_WRAPPER_DEFAULT_IFACE");
	if (v && *v) {
		char *end;
		long n = strtol(v, &end, 10);
		c->iface = (*end == '\0' && n >= 1 && n <= 64) ? (uint32_t)n : 1;
	}

	v = getenv("SOCKET_WRAPPER_IPV4_NETWORK");
	if (v && *v) {
		if (!strcmp(v, "10.53.57.0"))
			c->net4 = 10;
		else if (strcmp(v, "127.0.0.0") != 0)
			defer(__func__,
				       "SOCKET_WRAPPER_IPV4_NETWORK=%s is not supported "
				       "(127.0.0.0 or 10.53.57.0); using 127.0.0.0", v);
	}

	v = getenv("SOCKET_WRAPPER_MAX_SOCKETS");
	if (v && *v) {
		long n = strtol(v, NULL, 10);
		if (n <= 0)
			n = 65535;
		if (n > 262140)
			n = 262140;
		c->max_sockets = (int)n;
	}

	v = getenv("SOCKET_WRAPPER_PCAP_FILE");
	if (v && *v) {
		char cwd[PATH_MAX];
		if (v[0] == '/')
			snprintf(c->pcap, sizeof(c->pcap), "%s", v);
		else if (getcwd(cwd, sizeof(cwd)) &&
			 strlen(cwd) + strlen(v) + 2 <= sizeof(c->pcap))
		{
			strcpy(c->pcap, cwd);
			strcat(c->pcap, "/");
			strcat(c->pcap, v);
		}
		else
			defer(__func__, "SOCKET_WRAPPER_PCAP_FILE=%s: path too long", v);
	}
	/* SOCKET_WRAPPER_MTU is read by the broker; SOCKET_WRAPPER_DISABLE_DEEPBIND
	 * is accepted and has no effect (we never dlopen libc). */
}

static void atfork_child(void)
{
	swrap_broker_atfork_child();
}

void swrap_init_slow(void)
{
	int expect = 0;

	if (!atomic_compare_exchange_strong(&init_state, &expect, 1)) {
		/* Another thread is initialising: wait for it. (Re-entry from
		 * the same thread cannot happen: nothing below calls an
		 * interposed function.) */
		while (atomic_load(&init_state) != 2)
			sched_yield();
		return;
	}
	resolve_all();
	load_config();
	if (swrap_cfg.active) {
		swrap_fdt_init();
		pthread_atfork(NULL, NULL, atfork_child);
	}
	SWRAP_LOG(SWRAP_LOG_DEBUG, "active=%d dir=%s iface=%u", swrap_cfg.active, swrap_cfg.dir,
		  swrap_cfg.iface);
	atomic_store(&init_state, 2);
	atomic_store_explicit(&swrap_ready, 1, memory_order_release);
}

__attribute__((constructor)) static void swrap_constructor(void)
{
	swrap_init();
}
