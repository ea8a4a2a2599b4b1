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
	swrap_netdb_resolve(l);
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
	swrap_priv_resolve(l);
	resolve(&l->sigaction, "sigaction");
	resolve(&l->signal, "signal");
	resolve(&l->sysv_signal, "__sysv_signal");
	resolve(&l->bsd_signal, "bsd_signal");
	resolve(&l->sigset, "sigset");
	resolve(&l->prctl, "prctl");
	resolve(&l->setenv, "setenv");
	resolve(&l->unsetenv, "unsetenv");
	resolve(&l->putenv, "putenv");
	resolve(&l->clearenv, "clearenv");
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

/*
 * The configuration follows the environment, as socket_wrapper's does: test
 * programs setenv() SOCKET_WRAPPER_* in their set-up code and unsetenv() them
 * to switch wrapping off. swrap_config_refresh() re-reads the few variables
 * at the calls that need the configuration anyway (socket(),
 * socket_wrapper_enabled(), the classification of an unknown fd), never on
 * the data path of a known fd. It compares each value with the string seen
 * last and redoes the work of a variable only when it changed: in
 * particular SOCKET_WRAPPER_DIR is validated (realpath, access) only when
 * its value changed, so a process that dropped privileges or chroot()ed
 * keeps the result it had. setenv/unsetenv/putenv/clearenv bump
 * swrap_env_gen (env.c), which lets a process that never had
 * SOCKET_WRAPPER_DIR skip the comparison on its data path.
 *
 * Semantics at run time:
 *  - DIR set: new sockets are wrapped (fd table set up on first use);
 *    DIR changed: new sockets go to the new directory's broker (the pooled
 *    control connections are dropped); DIR unset or empty: new sockets are
 *    plain libc sockets, socket_wrapper_enabled() is false, and the sockets
 *    already wrapped keep working (and talk to the broker they came from);
 *  - DEFAULT_IFACE: the host of sockets created from then on (a socket
 *    lives on its host's stack: existing sockets, bound or not, stay);
 *  - MAX_SOCKETS: checked by the next socket();
 *  - PCAP_FILE: a new value reaches the broker with the HELLO of fresh
 *    control connections, which starts that capture; unsetting it does not
 *    stop a capture (the broker writes it for the whole network);
 *  - IPV4_NETWORK is read at start only: it is the address plan of
 *    sockets that already exist.
 */
atomic_uint swrap_env_gen;
atomic_uint swrap_cfg_gen;
atomic_uint swrap_dir_tag = 1;
/* ctl_path of each directory tag (untouched pages cost nothing). */
static char tag_ctl[256][sizeof(swrap_cfg.ctl_path)];
static pthread_mutex_t cfg_lock = PTHREAD_MUTEX_INITIALIZER;

/* The last value seen of each variable followed at run time. */
struct seen {
	const char *name;
	bool set;
	char val[PATH_MAX];
};
enum { V_DIR, V_IFACE, V_MAX, V_PCAP, V_DEBUG, V_COUNT };
static struct seen seen[V_COUNT] = {
	[V_DIR] = { .name = "SOCKET_WRAPPER_DIR" },
	[V_IFACE] = { .name = "SOCKET_WRAPPER_DEFAULT_IFACE" },
	[V_MAX] = { .name = "SOCKET_WRAPPER_MAX_SOCKETS" },
	[V_PCAP] = { .name = "SOCKET_WRAPPER_PCAP_FILE" },
	[V_DEBUG] = { .name = "SOCKET_WRAPPER_DEBUGLEVEL" },
};

/* update reads one variable; returns true (and records it) if it differs
 * from what was seen last. An empty value counts as unset. */
static bool update(struct seen *v, const char **out)
{
	const char *e = getenv(v->name);
	if (e && !*e)
		e = NULL;
	*out = e;
	if (!e)
		return v->set ? (v->set = false, true) : false;
	if (v->set && strncmp(v->val, e, sizeof(v->val)) == 0)
		return false;
	v->set = true;
	snprintf(v->val, sizeof(v->val), "%s", e);
	return true;
}

/* set_dir applies a new SOCKET_WRAPPER_DIR value (NULL: unset). */
static void set_dir(const char *v)
{
	struct swrap_config *c = &swrap_cfg;
	if (!v) {
		/* dir and ctl_path stay: sockets already wrapped still use them. */
		atomic_store(&c->active, false);
		return;
	}
	/* The value validated last: set again after an unset, it keeps its
	 * result (the process may have dropped the rights to check it). */
	static char checked[PATH_MAX];
	static int checked_err;
	char old[sizeof(c->ctl_path)];
	memcpy(old, c->ctl_path, sizeof(old));
	if (checked[0] && strcmp(checked, v) == 0) {
		c->dir_err = checked_err;
		atomic_store(&c->active, true);
		return;
	}
	c->dir_err = check_dir(v);
	snprintf(checked, sizeof(checked), "%s", v);
	checked_err = c->dir_err;
	if (c->dir_err == 0 && strcmp(old, c->ctl_path) != 0) {
		if (old[0]) {
			/* Another directory: its sockets get a tag of their own. */
			unsigned int t = atomic_load(&swrap_dir_tag) % 255 + 1;
			atomic_store(&swrap_dir_tag, t);
			swrap_broker_config_changed();
		}
		memcpy(tag_ctl[atomic_load(&swrap_dir_tag)], c->ctl_path, sizeof(c->ctl_path));
	}
	if (!atomic_load(&c->tracking)) {
		swrap_fdt_init();
		atomic_store(&c->tracking, true);
	}
	atomic_store(&c->active, true);
}

static void set_pcap(const char *v)
{
	struct swrap_config *c = &swrap_cfg;
	char old[sizeof(c->pcap)];
	memcpy(old, c->pcap, sizeof(old));
	c->pcap[0] = '\0';
	if (v) {
		char cwd[PATH_MAX];
		if (v[0] == '/')
			snprintf(c->pcap, sizeof(c->pcap), "%s", v);
		else if (getcwd(cwd, sizeof(cwd)) && strlen(cwd) + strlen(v) + 2 <= sizeof(c->pcap)) {
			strcpy(c->pcap, cwd);
			strcat(c->pcap, "/");
			strcat(c->pcap, v);
		} else
			defer(__func__, "SOCKET_WRAPPER_PCAP_FILE=%s: path too long", v);
	}
	/* A new file reaches the broker with a HELLO on a fresh connection. */
	if (c->pcap[0] && strcmp(old, c->pcap) != 0)
		swrap_broker_config_changed();
}

/* reload re-reads the variables; cfg_lock held. */
static void reload(void)
{
	struct swrap_config *c = &swrap_cfg;
	const char *v;

	atomic_store(&swrap_cfg_gen, atomic_load(&swrap_env_gen));
	if (update(&seen[V_DEBUG], &v))
		c->loglevel = parse_loglevel(v);
	if (update(&seen[V_IFACE], &v)) {
		uint32_t iface = 1;
		if (v) {
			char *end;
			long n = strtol(v, &end, 10);
			iface = (*end == '\0' && n >= 1 && n <= 64) ? (uint32_t)n : 1;
		}
		c->iface = iface;
	}
	if (update(&seen[V_MAX], &v)) {
		long n = v ? strtol(v, NULL, 10) : 0;
		if (n <= 0)
			n = 65535;
		if (n > 262140)
			n = 262140;
		c->max_sockets = (int)n;
	}
	if (update(&seen[V_PCAP], &v))
		set_pcap(v);
	if (update(&seen[V_DIR], &v)) {
		set_dir(v);
		SWRAP_LOG(SWRAP_LOG_DEBUG, "SOCKET_WRAPPER_DIR=%s: active=%d dir=%s err=%d", v ? v : "(unset)",
			  (int)atomic_load(&c->active), c->dir, c->dir_err);
	}
}

/* lock_briefly takes cfg_lock, waiting a little at most: never a blocking
 * lock, as a signal handler may have interrupted this thread's own
 * refresh. Refreshes are short. */
static bool lock_briefly(void)
{
	for (int i = 0; i < 1000; i++) {
		if (pthread_mutex_trylock(&cfg_lock) == 0)
			return true;
		sched_yield();
	}
	return false;
}

bool swrap_config_refresh(void)
{
	swrap_init();
	/* Inside a seccomp sandbox the checks could be fatal system calls
	 * (and such a process does not reconfigure itself). Without the lock
	 * the configuration is used as it is. */
	if (!swrap_sandboxed() && lock_briefly()) {
		reload();
		pthread_mutex_unlock(&cfg_lock);
	}
	return atomic_load(&swrap_cfg.active);
}

bool swrap_config_ctl_path(unsigned int tag, char out[108])
{
	if (tag == 0 || tag > 255)
		return false;
	bool locked = lock_briefly();
	memcpy(out, tag_ctl[tag], sizeof(tag_ctl[tag]));
	if (locked)
		pthread_mutex_unlock(&cfg_lock);
	out[107] = '\0';
	return out[0] != '\0';
}

void swrap_config_copy(struct swrap_config *out)
{
	bool locked = lock_briefly(); /* else taken as it is */
	memcpy(out, &swrap_cfg, sizeof(*out));
	if (locked)
		pthread_mutex_unlock(&cfg_lock);
}

static void load_config(void)
{
	struct swrap_config *c = &swrap_cfg;
	const char *v;

	snprintf(c->comm, sizeof(c->comm), "%s", program_invocation_short_name);

	v = getenv("SOCKET_WRAPPER_IPV4_NETWORK");
	if (v && *v) {
		if (!strcmp(v, "10.53.57.0"))
			c->net4 = 10;
		else if (strcmp(v, "127.0.0.0") != 0)
			defer(__func__,
				       "SOCKET_WRAPPER_IPV4_NETWORK=%s is not supported "
				       "(127.0.0.0 or 10.53.57.0); using 127.0.0.0", v);
	}
	reload();
	/* SOCKET_WRAPPER_MTU is read by the broker; SOCKET_WRAPPER_DISABLE_DEEPBIND
	 * is accepted and has no effect (we never dlopen libc). */
}

static void atfork_child(void)
{
	/* A thread of the parent may have held it across the fork. */
	pthread_mutex_init(&cfg_lock, NULL);
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
	swrap_signal_init();
	load_config();
	swrap_dns_init();
	/* Registered whatever the configuration: wrapping may start later. */
	pthread_atfork(NULL, NULL, atfork_child);
	SWRAP_LOG(SWRAP_LOG_DEBUG, "active=%d dir=%s iface=%u", (int)atomic_load(&swrap_cfg.active),
		  swrap_cfg.dir, swrap_cfg.iface);
	atomic_store(&init_state, 2);
	atomic_store_explicit(&swrap_ready, 1, memory_order_release);
}

__attribute__((constructor)) static void swrap_constructor(void)
{
	swrap_init();
}
