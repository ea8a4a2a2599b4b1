/*
 * fdtable.c - the per-process cache of what each fd is.
 *
 * Interposes nothing. The broker is the authority on sockets; this table
 * only remembers, per fd number, whether the fd is a wrapped socket (and its
 * id, family, type and a few flags) so that hot paths do not ask twice.
 *
 * An entry is two atomic words; readers never lock, so lookups are
 * async-signal-safe. An UNKNOWN fd (never seen, inherited across exec,
 * received with SCM_RIGHTS, created behind our back) is classified with one
 * getsockname(): the app end of every wrapped socket is bound to the
 * abstract name "\0swrap.<instance>.<id>". A wrapped fd is then described by
 * a STAT request. The table is mmap()ed once, sized from RLIMIT_NOFILE
 * (untouched pages cost nothing); fds beyond it are classified on every
 * call, which is slower but still right.
 */
#include "swrap.h"

#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/un.h>

struct fd_entry {
	_Atomic uint32_t word; /* SWRAP_FD_* state | SWF_* flags */
	_Atomic uint32_t aux;  /* swrap_fd_aux(): saved SO_SNDBUF with SWF_FILLED */
	_Atomic uint64_t id;
};

static struct fd_entry *table;
static size_t table_size; /* published after table (release): the table may appear at run time */
static atomic_int wrapped_count;   /* entries in state WRAPPED */
static atomic_uint high_water;     /* 1 + highest fd ever stored */

void swrap_fdt_init(void)
{
	struct rlimit rl;
	size_t n = 65536;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (1u << 20))
			n = 1u << 20;
		else if (rl.rlim_max > n)
			n = (size_t)rl.rlim_max;
	}
	void *p = mmap(NULL, n * sizeof(struct fd_entry), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		SWRAP_LOG(SWRAP_LOG_WARN, "no fd table (%s): classifying every call", strerror(errno));
		return;
	}
	table = p;
	__atomic_store_n(&table_size, n, __ATOMIC_RELEASE);
}

static inline struct fd_entry *entry(int fd)
{
	if (fd < 0 || (size_t)fd >= __atomic_load_n(&table_size, __ATOMIC_ACQUIRE))
		return NULL;
	return &table[fd];
}

static void note_high(int fd)
{
	unsigned int want = (unsigned int)fd + 1, cur = atomic_load(&high_water);
	while (cur < want && !atomic_compare_exchange_weak(&high_water, &cur, want))
		;
}

/* store replaces an entry, keeping wrapped_count right. */
static void store(struct fd_entry *e, uint64_t id, uint32_t word)
{
	atomic_store_explicit(&e->id, id, memory_order_relaxed);
	uint32_t old = atomic_exchange_explicit(&e->word, word, memory_order_release);
	bool was = (old & SWRAP_FD_STATE_MASK) == SWRAP_FD_WRAPPED;
	bool is = (word & SWRAP_FD_STATE_MASK) == SWRAP_FD_WRAPPED;
	if (was != is)
		atomic_fetch_add(&wrapped_count, is ? 1 : -1);
}

void swrap_fd_set(int fd, uint64_t id, uint32_t word)
{
	struct fd_entry *e = entry(fd);
	if (!e)
		return;
	note_high(fd);
	store(e, swrap_id_tag(id), (word & ~SWRAP_FD_STATE_MASK) | SWRAP_FD_WRAPPED);
}

void swrap_fd_forget(int fd)
{
	struct fd_entry *e = entry(fd);
	if (!e || atomic_load_explicit(&e->word, memory_order_relaxed) == SWRAP_FD_UNKNOWN)
		return; /* reading first keeps untouched pages untouched */
	store(e, 0, SWRAP_FD_UNKNOWN);
}

uint64_t swrap_fd_id(int fd)
{
	struct fd_entry *e = entry(fd);
	return e ? atomic_load(&e->id) : 0;
}

/* The number is free once the real close returns: a socket() or accept()
 * of another thread may take it and store its entry before this forget
 * runs. A plain forget then wiped that entry, and with it what only the
 * shim knows (SWF_SS_CONNECTING, SWF_FILLED and the saved SO_SNDBUF, a UDP
 * shutdown); the next call re-classified the fd without them. */
void swrap_fd_forget_closed(int fd, uint64_t id)
{
	struct fd_entry *e = entry(fd);
	if (!e)
		return;
	uint32_t w = atomic_load(&e->word);
	do {
		if (w == SWRAP_FD_UNKNOWN || atomic_load(&e->id) != id)
			return;
	} while (!atomic_compare_exchange_weak(&e->word, &w, SWRAP_FD_UNKNOWN));
	if ((w & SWRAP_FD_STATE_MASK) == SWRAP_FD_WRAPPED)
		atomic_fetch_add(&wrapped_count, -1);
}

void swrap_fd_forget_range(unsigned int first, unsigned int last)
{
	unsigned int hi = atomic_load(&high_water);
	if (hi == 0 || first >= hi)
		return;
	if (last >= hi)
		last = hi - 1;
	for (unsigned int fd = first; fd <= last; fd++)
		swrap_fd_forget((int)fd);
}

void swrap_fd_mark_not_wrapped(int fd)
{
	struct fd_entry *e = entry(fd);
	if (!e)
		return;
	note_high(fd);
	store(e, 0, SWRAP_FD_NOT_WRAPPED);
}

void swrap_fd_flags(int fd, uint32_t set, uint32_t clear)
{
	struct fd_entry *e = entry(fd);
	if (!e)
		return;
	uint32_t old = atomic_load(&e->word), nw;
	do {
		if ((old & SWRAP_FD_STATE_MASK) != SWRAP_FD_WRAPPED)
			return;
		nw = (old & ~clear) | set;
	} while (!atomic_compare_exchange_weak(&e->word, &old, nw));
}

void swrap_fd_copy(int from, int to)
{
	struct fd_entry *src = entry(from), *dst = entry(to);
	if (!dst)
		return;
	if (!src) {
		swrap_fd_forget(to);
		return;
	}
	uint32_t w = atomic_load_explicit(&src->word, memory_order_acquire);
	uint64_t id = atomic_load_explicit(&src->id, memory_order_relaxed);
	if ((w & SWRAP_FD_STATE_MASK) == SWRAP_FD_WRAPPED || (w & SWRAP_FD_STATE_MASK) == SWRAP_FD_NETLINK) {
		note_high(to);
		atomic_store_explicit(&dst->aux, atomic_load_explicit(&src->aux, memory_order_relaxed),
				      memory_order_relaxed);
		store(dst, id, w & ~SWF_EOF_SEEN);
	} else {
		swrap_fd_forget(to);
	}
}

bool swrap_fd_known(int fd, struct swrap_sock *s)
{
	struct fd_entry *e = entry(fd);
	if (!e)
		return false;
	uint32_t w = atomic_load_explicit(&e->word, memory_order_acquire);
	if ((w & SWRAP_FD_STATE_MASK) != SWRAP_FD_WRAPPED)
		return false;
	s->fd = fd;
	s->word = w;
	s->id = atomic_load_explicit(&e->id, memory_order_relaxed);
	return true;
}

void swrap_fd_set_aux(int fd, uint32_t v)
{
	struct fd_entry *e = entry(fd);
	if (e)
		atomic_store_explicit(&e->aux, v, memory_order_relaxed);
}

uint32_t swrap_fd_aux(int fd)
{
	struct fd_entry *e = entry(fd);
	return e ? atomic_load_explicit(&e->aux, memory_order_relaxed) : 0;
}

int swrap_fd_wrapped_count(void)
{
	return atomic_load(&wrapped_count);
}

/* parse_hex16 reads 16 lower-case hex digits. */
static bool parse_hex16(const char *p, uint64_t *out)
{
	uint64_t v = 0;
	for (int i = 0; i < 16; i++) {
		char c = p[i];
		int d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return false;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return true;
}

/* stat_to_word turns a STAT reply into entry flags. */
static uint32_t stat_to_word(const struct swrap_stat_rep *st)
{
	uint32_t w = SWRAP_FD_WRAPPED;
	if (st->family == AF_INET6)
		w |= SWF_V6;
	if (st->type == SOCK_DGRAM)
		w |= SWF_DGRAM;
	if (st->protocol == IPPROTO_ICMP || st->protocol == IPPROTO_ICMPV6)
		w |= SWF_ICMP;
	switch (st->state) {
	case SWRAP_STATE_LISTENING:
		w |= SWF_LISTENING;
		break;
	case SWRAP_STATE_CONNECTING:
		w |= SWF_CONNECTING;
		break;
	case SWRAP_STATE_CONNECTED:
	case SWRAP_STATE_CLOSED: /* was connected: data calls see EOF/EPIPE */
		w |= SWF_CONNECTED;
		break;
	}
	if (st->flags & SWRAP_STAT_BROADCAST)
		w |= SWF_BROADCAST;
	return w;
}

bool swrap_fd_stat(struct swrap_sock *s)
{
	struct swrap_stat_rep st;
	struct swrap_call c = { .op = SWRAP_OP_STAT, .sock = s->id, .rep = &st, .rep_cap = sizeof(st) };

	memset(&st, 0, sizeof(st));
	if (swrap_request(&c) != 0 || c.rep_len < sizeof(st))
		return false;
	/* Keep what the broker does not know (pktinfo wishes, UDP shutdown,
	 * connect filler). */
	uint32_t keep = s->word & SWF_SHIM_ONLY;
	s->word = stat_to_word(&st) | keep;
	struct fd_entry *e = entry(s->fd);
	if (e) {
		uint32_t cur = atomic_load(&e->word);
		if ((cur & SWRAP_FD_STATE_MASK) == SWRAP_FD_WRAPPED && atomic_load(&e->id) == s->id) {
			s->word |= cur & SWF_SHIM_ONLY;
			atomic_compare_exchange_strong(&e->word, &cur, s->word);
		}
	}
	return true;
}

void swrap_fd_set_netlink(int fd, uint64_t id, uint32_t aux)
{
	struct fd_entry *e = entry(fd);
	if (!e)
		return;
	note_high(fd);
	atomic_store_explicit(&e->aux, aux, memory_order_relaxed);
	store(e, id, SWRAP_FD_NETLINK);
}

bool swrap_fd_netlink(int fd, uint64_t *id, uint32_t *aux)
{
	struct fd_entry *e = entry(fd);
	if (!e || (atomic_load_explicit(&e->word, memory_order_acquire) & SWRAP_FD_STATE_MASK) != SWRAP_FD_NETLINK)
		return false;
	if (id)
		*id = atomic_load_explicit(&e->id, memory_order_relaxed);
	if (aux)
		*aux = atomic_load_explicit(&e->aux, memory_order_relaxed);
	return true;
}

void swrap_fd_netlink_update(int fd, uint64_t id, uint32_t aux)
{
	struct fd_entry *e = entry(fd);
	if (!e || (atomic_load(&e->word) & SWRAP_FD_STATE_MASK) != SWRAP_FD_NETLINK)
		return;
	atomic_store(&e->id, id);
	atomic_store(&e->aux, aux);
}

/* classify looks at an fd we know nothing about. */
static bool classify(int fd, struct swrap_sock *s)
{
	struct sockaddr_un sun;
	socklen_t len = sizeof(sun);
	uint64_t inst, id, cur;

	if (swrap_libc.getsockname(fd, (struct sockaddr *)&sun, &len) != 0) {
		int e = errno;
		if (e == ENOTSOCK)
			swrap_fd_mark_not_wrapped(fd);
		/* EBADF and others: not cached, the real call reports it. */
		errno = e;
		return false;
	}
	/* An emulated netlink socket inherited across exec (netlink.c). */
	if (sun.sun_family == AF_UNIX && swrap_nl_classify(fd, &sun, len))
		return false;
	if (sun.sun_family != AF_UNIX ||
	    len != offsetof(struct sockaddr_un, sun_path) + SWRAP_NAME_LEN ||
	    sun.sun_path[0] != '\0' ||
	    memcmp(sun.sun_path + 1, SWRAP_NAME_PREFIX, strlen(SWRAP_NAME_PREFIX)) != 0 ||
	    sun.sun_path[23] != '.' || !parse_hex16(sun.sun_path + 7, &inst) ||
	    !parse_hex16(sun.sun_path + 24, &id)) {
		swrap_fd_mark_not_wrapped(fd);
		return false;
	}
	s->fd = fd;
	s->id = id;
	s->word = SWRAP_FD_WRAPPED;
	if (!swrap_fd_stat(s)) {
		/* The broker is gone (or never ran in this dir): the socket is
		 * dead; let the real calls report EOF/EPIPE. Not cached. */
		SWRAP_LOG(SWRAP_LOG_DEBUG, "fd %d: wrapped socket %llx, broker unreachable", fd,
			  (unsigned long long)id);
		return false;
	}
	if (swrap_broker_instance(&cur) && cur != inst) {
		/* A socket of another (dead) broker instance. */
		swrap_fd_mark_not_wrapped(fd);
		return false;
	}
	s->id = swrap_id_tag(id);
	swrap_fd_set(fd, s->id, s->word);
	SWRAP_LOG(SWRAP_LOG_DEBUG, "fd %d: wrapped socket %llx word %#x", fd,
		  (unsigned long long)id, s->word);
	return true;
}

bool swrap_fd_get(int fd, struct swrap_sock *s)
{
	swrap_init();
	if (SWRAP_UNLIKELY(!atomic_load_explicit(&swrap_cfg.tracking, memory_order_relaxed))) {
		/* Never wrapped: only a setenv() since the last look can change
		 * that (no environment walk per call). */
		if (atomic_load_explicit(&swrap_env_gen, memory_order_relaxed) ==
			    atomic_load_explicit(&swrap_cfg_gen, memory_order_relaxed) ||
		    !swrap_config_refresh())
			return false;
	}
	struct fd_entry *e = entry(fd);
	if (SWRAP_LIKELY(e != NULL)) {
		uint32_t w = atomic_load_explicit(&e->word, memory_order_acquire);
		switch (w & SWRAP_FD_STATE_MASK) {
		case SWRAP_FD_NOT_WRAPPED:
		case SWRAP_FD_NETLINK:
			return false;
		case SWRAP_FD_WRAPPED:
			s->fd = fd;
			s->word = w;
			s->id = atomic_load_explicit(&e->id, memory_order_relaxed);
			return true;
		}
	}
	/* An unknown fd. In a seccomp sandbox it is not probed (getsockname
	 * and STAT could be fatal there): to a program that only reads and
	 * writes, a wrapped TCP socket not yet known is a stream socket. */
	if (fd < 0 || swrap_sandboxed())
		return false;
	/* Wrapping switched off (and no setenv since): unknown fds are plain.
	 * Otherwise the configuration is re-read: classifying needs it. */
	if (!atomic_load(&swrap_cfg.active) && atomic_load(&swrap_env_gen) == atomic_load(&swrap_cfg_gen))
		return false;
	if (!swrap_config_refresh())
		return false;
	int saved = errno;
	bool r = classify(fd, s);
	errno = saved;
	return r;
}

void swrap_fd_forget_rights(const struct msghdr *msg)
{
	if (!msg || !msg->msg_control || msg->msg_controllen < sizeof(struct cmsghdr))
		return;
	for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)msg); c;
	     c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *fds = (int *)CMSG_DATA(c);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, fds + i, sizeof(fd));
			swrap_fd_forget(fd);
		}
	}
}
