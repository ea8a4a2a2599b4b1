/*
 * swrap.h - the shim's internal API, shared by every file of libswrap.so.
 *
 * Layout (one file per call family, torsocks style):
 *   init.c        configuration from the environment, real-symbol table,
 *                 constructor, atfork handler
 *   log.c         SWRAP_<LVL>[prog (pid)] lines via the real write(2)
 *   fdtable.c     per-process cache: which fd is a wrapped socket
 *   broker.c      control connections, request/reply, broker start
 *   addr.c        sockaddr <-> struct swrap_addr, network checks
 *   priv.c        setuid & co., chroot, capset: take a ticket first (broker.c)
 *   signal.c      SIGPIPE's disposition (decides write() vs send())
 *   sandbox.c     seccomp filters installed: only the program's own calls
 *   env.c         setenv & co.: SOCKET_WRAPPER_* may change at run time
 *   ifaddrs.c     the one interface a wrapped program sees; getifaddrs, if_*
 *   ifioctl.c     SIOCGIF* answers for it (called from ioctl.c)
 *   netlink.c     emulated NETLINK_ROUTE sockets describing it
 *   socket.c ...  the interposed calls, three layers each: the real pointer
 *                 (swrap_libc.x), a policy function, the exported symbol.
 *
 * Everything is hidden (-fvisibility=hidden) except the interposed symbols
 * and the public API, which carry SWRAP_EXPORT.
 */
#ifndef SWRAP_H
#define SWRAP_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <time.h>

#include "swrap_proto.h"

#define SWRAP_EXPORT __attribute__((visibility("default")))
#define SWRAP_LIKELY(x) __builtin_expect(!!(x), 1)
#define SWRAP_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---------------------------------------------------------------- libc -- */

/*
 * The real functions, resolved once with dlsym(RTLD_NEXT). The shim never
 * calls an interposed name directly (that would re-enter the shim): it calls
 * swrap_libc.x.
 */
struct ifaddrs;
struct if_nameindex;
struct addrinfo;
struct hostent;
struct swrap_libc {
	int (*socket)(int, int, int);
	int (*socketpair)(int, int, int, int[2]);
	int (*bind)(int, const struct sockaddr *, socklen_t);
	int (*bindresvport)(int, struct sockaddr_in *);
	int (*listen)(int, int);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*shutdown)(int, int);
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*writev)(int, const struct iovec *, int);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	int (*recvmmsg)(int, struct mmsghdr *, unsigned int, int, struct timespec *);
	int (*sendmmsg)(int, struct mmsghdr *, unsigned int, int);
	int (*close)(int);
	int (*close_nocancel)(int);
	int (*close_range)(unsigned int, unsigned int, int);
	void (*closefrom)(int);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*fcntl)(int, int, ...);
	int (*fcntl64)(int, int, ...);
	int (*ioctl)(int, unsigned long, ...);
	long (*syscall)(long, ...);
	int (*open)(const char *, int, ...);
	int (*open64)(const char *, int, ...);
	int (*openat)(int, const char *, int, ...);
	int (*openat64)(int, const char *, int, ...);
	int (*open_2)(const char *, int);
	int (*openat_2)(int, const char *, int);
	FILE *(*fopen)(const char *, const char *);
	FILE *(*fopen64)(const char *, const char *);
	int (*pipe)(int[2]);
	int (*pipe2)(int[2], int);
	int (*eventfd)(unsigned int, int);
	int (*signalfd)(int, const sigset_t *, int);
	int (*timerfd_create)(int, int);
	int (*epoll_create)(int);
	int (*epoll_create1)(int);
	/* priv.c (resolved there) */
	int (*setuid)(uid_t);
	int (*seteuid)(uid_t);
	int (*setreuid)(uid_t, uid_t);
	int (*setresuid)(uid_t, uid_t, uid_t);
	int (*setgid)(gid_t);
	int (*setegid)(gid_t);
	int (*setregid)(gid_t, gid_t);
	int (*setresgid)(gid_t, gid_t, gid_t);
	int (*setfsuid)(uid_t);
	int (*setfsgid)(gid_t);
	int (*setgroups)(size_t, const gid_t *);
	int (*initgroups)(const char *, gid_t);
	int (*chroot)(const char *);
	int (*capset)(void *, const void *);
	int (*sigaction)(int, const struct sigaction *, struct sigaction *);
	__sighandler_t (*signal)(int, __sighandler_t);
	__sighandler_t (*sysv_signal)(int, __sighandler_t);
	__sighandler_t (*bsd_signal)(int, __sighandler_t);
	__sighandler_t (*sigset)(int, __sighandler_t);
	int (*prctl)(int, unsigned long, unsigned long, unsigned long, unsigned long);
	int (*setenv)(const char *, const char *, int);
	int (*unsetenv)(const char *);
	int (*putenv)(char *);
	int (*clearenv)(void);
	int (*getifaddrs)(struct ifaddrs **);
	struct if_nameindex *(*if_nameindex)(void);
	unsigned int (*if_nametoindex)(const char *);
	char *(*if_indextoname)(unsigned int, char *);
	/* netdb.c (resolved there) */
	int (*getaddrinfo)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
	int (*getnameinfo)(const struct sockaddr *, socklen_t, char *, socklen_t, char *, socklen_t, int);
	struct hostent *(*gethostbyname)(const char *);
	struct hostent *(*gethostbyname2)(const char *, int);
	int (*gethostbyname_r)(const char *, struct hostent *, char *, size_t, struct hostent **, int *);
	int (*gethostbyname2_r)(const char *, int, struct hostent *, char *, size_t, struct hostent **, int *);
	struct hostent *(*gethostbyaddr)(const void *, socklen_t, int);
	int (*gethostbyaddr_r)(const void *, socklen_t, int, struct hostent *, char *, size_t, struct hostent **,
			       int *);
};
extern struct swrap_libc swrap_libc;

/* ---------------------------------------------------------------- init -- */

/* The configuration from the environment (init.c), followed at run time
 * by swrap_config_refresh(). */
struct swrap_config {
	atomic_bool active;    /* SOCKET_WRAPPER_DIR set and non-empty: new sockets are wrapped */
	atomic_bool tracking;  /* it was at some point: the fd table is in use */
	int dir_err;           /* 0 if the dir is usable, else the errno socket() fails with */
	char dir[PATH_MAX];    /* realpath of SOCKET_WRAPPER_DIR */
	char ctl_path[108];    /* DIR/swrap/broker.sock */
	uint32_t iface;        /* SOCKET_WRAPPER_DEFAULT_IFACE, 1..64 */
	uint8_t net4;          /* first octet of the IPv4 network: 127 or 10 */
	char pcap[PATH_MAX];   /* absolute SOCKET_WRAPPER_PCAP_FILE, or "" */
	int max_sockets;       /* SOCKET_WRAPPER_MAX_SOCKETS */
	int loglevel;          /* SOCKET_WRAPPER_DEBUGLEVEL, -1 .. 3 */
	char comm[16];         /* program name for logs and HELLO */
};
extern struct swrap_config swrap_cfg;

extern atomic_int swrap_ready;
/* Print the configuration problem found at start-up, once per process. */
void swrap_config_complain(void);
void swrap_init_slow(void);
/* Bumped by setenv/unsetenv/putenv/clearenv of SOCKET_WRAPPER_* (env.c). */
extern atomic_uint swrap_env_gen;
/* swrap_env_gen when the configuration was last read. */
extern atomic_uint swrap_cfg_gen;
/* swrap_config_refresh re-reads the SOCKET_WRAPPER_* variables (cheap when
 * nothing changed; never on the data path of a known fd) and returns
 * whether new sockets are to be wrapped. */
bool swrap_config_refresh(void);
/* A consistent copy of the configuration (paths may change at run time). */
void swrap_config_copy(struct swrap_config *out);

/*
 * Socket ids as the fd table keeps them carry, in their top byte, a tag
 * (1..255) for the SOCKET_WRAPPER_DIR whose broker made the socket (broker
 * ids are small counters). A socket of a directory the process used before
 * is then still asked about at its own broker (broker.c). The tag is
 * stripped before a request goes out.
 */
#define SWRAP_ID_TAG_SHIFT 56
#define SWRAP_ID_MASK ((UINT64_C(1) << SWRAP_ID_TAG_SHIFT) - 1)
/* The tag of the current directory. */
extern atomic_uint swrap_dir_tag;
/* id with the current tag unless it has one. */
static inline uint64_t swrap_id_tag(uint64_t id)
{
	if (id >> SWRAP_ID_TAG_SHIFT)
		return id;
	return id | (uint64_t)atomic_load_explicit(&swrap_dir_tag, memory_order_relaxed) << SWRAP_ID_TAG_SHIFT;
}
/* The control socket path of the directory with tag; false if unknown. */
bool swrap_config_ctl_path(unsigned int tag, char out[108]);

/* ---------------------------------------------------------------- priv -- */

/* Fill swrap_libc's credential calls (priv.c). */
void swrap_priv_resolve(struct swrap_libc *l);
/* Before a call that changes credentials or the root directory: make sure
 * the process holds a ticket (broker.c). Keeps errno. */
void swrap_priv_before(void);

/* swrap_init makes sure symbols and configuration are loaded. Cheap. */
static inline void swrap_init(void)
{
	if (SWRAP_UNLIKELY(!atomic_load_explicit(&swrap_ready, memory_order_acquire)))
		swrap_init_slow();
}

/* swrap_on: initialise; may this process hold wrapped fds (was
 * SOCKET_WRAPPER_DIR ever set)? Does not look at the environment: whether
 * new sockets are wrapped is swrap_config_refresh()'s question. */
static inline bool swrap_on(void)
{
	swrap_init();
	return atomic_load_explicit(&swrap_cfg.tracking, memory_order_relaxed);
}

/* ------------------------------------------------------ signal, sandbox -- */

/* signal.c: SIGPIPE's disposition is SIG_IGN (tracked across signal(),
 * sigaction() and friends, and syscall(SYS_rt_sigaction)). */
extern atomic_bool swrap_sigpipe_ignored;
/* sandbox.c: a seccomp filter (or strict mode) was installed by this
 * process (prctl, syscall(SYS_seccomp)). The shim then issues no system
 * call of its own on the data path. */
extern atomic_bool swrap_seccomp;
void swrap_signal_init(void);
/* Re-read SIGPIPE's disposition after the program changed it. */
void swrap_sigpipe_changed(void);
/* Policy layers shared with syscall.c. */
long swrap_prctl_done(long r, int option, unsigned long a2);
long swrap_seccomp_done(long r, unsigned int op);

static inline bool swrap_sandboxed(void)
{
	return atomic_load_explicit(&swrap_seccomp, memory_order_relaxed);
}
/* write()/writev() on a connected wrapped socket may be issued as they
 * are (rather than as send(MSG_NOSIGNAL)/sendmsg()) when the difference
 * cannot be seen, or must be in a sandbox. */
static inline bool swrap_native_write(void)
{
	return swrap_sandboxed() || atomic_load_explicit(&swrap_sigpipe_ignored, memory_order_relaxed);
}

/* swrap_fail sets errno from a positive errno value and returns -1: the one
 * place where a broker reply's err (or a local check) becomes errno. */
static inline int swrap_fail(int err)
{
	errno = err;
	return -1;
}

/* ----------------------------------------------------------------- log -- */

enum { SWRAP_LOG_ERROR = 0, SWRAP_LOG_WARN = 1, SWRAP_LOG_DEBUG = 2, SWRAP_LOG_TRACE = 3 };

void swrap_log_line(int level, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Level is checked before anything is formatted. */
#define SWRAP_LOG(level, ...)                                                   \
	do {                                                                    \
		if (SWRAP_UNLIKELY((level) <= swrap_cfg.loglevel))              \
			swrap_log_line((level), __func__, __VA_ARGS__);         \
	} while (0)
/* swrap_complain prints one line on stderr whatever the level, once per
 * process: for problems the user must see (unusable SOCKET_WRAPPER_DIR,
 * broker not starting), which then fail every call alike. */
/* swrap_take_fd returns the first fd that came with a received message (if
 * want, else -1) and closes every other one, so that none ever leaks. */
int swrap_take_fd(struct msghdr *mh, bool want);

void swrap_complain(const char *func, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------- fdtable -- */

/* SWRAP_FD_NETLINK: an emulated NETLINK_ROUTE socket (netlink.c), which
 * swrap_fd_get reports as not wrapped; its entry's id and aux words hold
 * netlink.c's own state. */
enum { SWRAP_FD_UNKNOWN = 0, SWRAP_FD_NOT_WRAPPED = 1, SWRAP_FD_WRAPPED = 2, SWRAP_FD_NETLINK = 3 };
#define SWRAP_FD_STATE_MASK 3u

/* Flags of a wrapped fd, in the same word as the state. */
#define SWF_V6 (1u << 2)         /* AF_INET6 (else AF_INET) */
#define SWF_DGRAM (1u << 3)      /* UDP or ICMP: swrap_dgram framing */
#define SWF_ICMP (1u << 4)       /* ICMP echo socket */
#define SWF_LISTENING (1u << 5)
#define SWF_CONNECTED (1u << 6)
#define SWF_CONNECTING (1u << 7) /* non-blocking connect in progress */
#define SWF_BROADCAST (1u << 8)  /* SO_BROADCAST set */
#define SWF_PKTINFO4 (1u << 9)   /* IP_PKTINFO wanted */
#define SWF_PKTINFO6 (1u << 10)  /* IPV6_RECVPKTINFO wanted */
#define SWF_EOF_SEEN (1u << 11)  /* a TCP EOF was checked against SO_ERROR */
#define SWF_SHUT_RD (1u << 12)   /* UDP: shutdown(SHUT_RD) done (kept here) */
#define SWF_SHUT_WR (1u << 13)   /* UDP: shutdown(SHUT_WR) done (kept here) */
#define SWF_FILLED (1u << 14)    /* connect filler written; SO_SNDBUF to restore (aux) */
#define SWF_SS_CONNECTING (1u << 15) /* TCP: a connect() said EINPROGRESS, none said how it ended */
#define SWF_BOUND (1u << 16)     /* bind() done by the program (not an autobind) */
/* The flags only the shim knows: a STAT refresh keeps them. */
#define SWF_SHIM_ONLY (SWF_PKTINFO4 | SWF_PKTINFO6 | SWF_EOF_SEEN | SWF_SHUT_RD | SWF_SHUT_WR | SWF_FILLED | \
		       SWF_SS_CONNECTING | SWF_BOUND)

/* A snapshot of one wrapped fd. */
struct swrap_sock {
	int fd;
	uint32_t word; /* state | SWF_* */
	uint64_t id;   /* broker socket id */
};
static inline int swrap_sock_family(const struct swrap_sock *s)
{
	return (s->word & SWF_V6) ? AF_INET6 : AF_INET;
}

void swrap_fdt_init(void);
/* swrap_fd_get: true if fd is a wrapped socket (filling *s), classifying an
 * unknown fd with getsockname() + STAT. False for everything else, and
 * always false when wrapping is off. Async-signal-safe for known fds. */
bool swrap_fd_get(int fd, struct swrap_sock *s);
/* swrap_fd_known: like swrap_fd_get for an fd the table already knows as
 * wrapped, and false for every other one, which it never classifies (for
 * close: an fd about to go is not worth a getsockname). */
bool swrap_fd_known(int fd, struct swrap_sock *s);
void swrap_fd_set(int fd, uint64_t id, uint32_t word);
void swrap_fd_forget(int fd);
void swrap_fd_forget_range(unsigned int first, unsigned int last);
/* For close: the id an entry holds (0 for none), taken before the real
 * close, and the forget after it, which leaves alone an entry that now has
 * another id (a socket another thread made with the freed number). */
uint64_t swrap_fd_id(int fd);
void swrap_fd_forget_closed(int fd, uint64_t id);
void swrap_fd_mark_not_wrapped(int fd);
void swrap_fd_flags(int fd, uint32_t set, uint32_t clear);
void swrap_fd_copy(int from, int to);
/* A second word per fd for the shim's own use: with SWF_FILLED, the app
 * end's SO_SNDBUF (as getsockopt reported it) before the connect filler. */
void swrap_fd_set_aux(int fd, uint32_t v);
uint32_t swrap_fd_aux(int fd);
int swrap_fd_wrapped_count(void);
/* Refresh a snapshot from the broker (STAT); false if the broker is gone. */
bool swrap_fd_stat(struct swrap_sock *s);
/* Forget the fds carried by SCM_RIGHTS in a received message. */
void swrap_fd_forget_rights(const struct msghdr *msg);
/* Emulated netlink fds: mark, look up (false if fd is not one), update. */
void swrap_fd_set_netlink(int fd, uint64_t id, uint32_t aux);
bool swrap_fd_netlink(int fd, uint64_t *id, uint32_t *aux);
void swrap_fd_netlink_update(int fd, uint64_t id, uint32_t aux);

/* -------------------------------------------------------------- broker -- */

/* One request to the broker and its reply. */
struct swrap_call {
	uint16_t op;
	uint64_t sock;
	const void *body;   /* request body, may be NULL */
	size_t body_len;
	const void *body2;  /* appended after body (setsockopt value) */
	size_t body2_len;
	void *rep;          /* reply body buffer */
	size_t rep_cap;
	size_t rep_len;     /* out: reply body bytes received */
	int *fd_out;        /* if set: receive one fd (or -1) */
	bool cloexec;       /* MSG_CMSG_CLOEXEC for the received fd */
	bool may_start;     /* start the broker if it is not running */
	bool interruptible; /* a signal aborts the wait (blocking connect) */
	bool no_wait;       /* send only, with SWRAP_NOREPLY: a request whose
			     * reply would carry no body or fd, and whose err
			     * is known to be 0 (broker.c) */
};
/* swrap_request sends one request and waits for its reply. Returns 0 or a
 * positive errno: the reply's err, or the transport failure (ECONNRESET if
 * the broker is gone). With no_wait it returns once the request is sent;
 * this thread's later requests are still served after it. */
int swrap_request(struct swrap_call *c);
/* Current broker instance (from HELLO), if known. */
bool swrap_broker_instance(uint64_t *out);
void swrap_broker_atfork_child(void);
/* An fd of the program is being closed/replaced: if it is one of our
 * control connections, drop it from the pool first. */
void swrap_broker_fd_closing(int fd);
void swrap_broker_fds_closing(unsigned int first, unsigned int last);
/* Make sure this process holds a ticket (broker.c header): called before
 * any call that may take away its access to broker.sock. Cheap when it
 * holds one. */
void swrap_broker_ticket(void);
/* SOCKET_WRAPPER_DIR or the pcap file changed: pooled control connections
 * are dropped (a busy one when released), fresh ones do a new HELLO. */
void swrap_broker_config_changed(void);

/* ---------------------------------------------------------------- addr -- */

enum swrap_addr_use { SWRAP_ADDR_BIND, SWRAP_ADDR_CONNECT, SWRAP_ADDR_SENDTO };
/* Validate and convert a program's sockaddr for a socket of family sfam,
 * with Linux's checks. Returns 0 or an errno. out->family 0 = no address
 * (AF_UNSPEC connect/sendto). need_port: a sendto destination must name a
 * port (UDP; ICMP echo sockets have none). */
int swrap_addr_in(const struct sockaddr *sa, socklen_t len, int sfam, bool need_port,
		  enum swrap_addr_use use, struct swrap_addr *out);
/* Write a wire address as a sockaddr, kernel style: copy min(*len, size),
 * set *len to the real size. sa may be NULL when *len is 0. */
void swrap_addr_out(const struct swrap_addr *a, struct sockaddr *sa, socklen_t *len);
bool swrap_addr_in_network(const struct swrap_addr *a);
bool swrap_addr_is_broadcast(const struct swrap_addr *a);
/* For getsockname-like output arguments: EFAULT/EINVAL checks. */
int swrap_addr_check_outlen(const struct sockaddr *sa, const socklen_t *len);

/* ------------------------------------------------------------ sendrecv -- */

/* stream.c: TCP data on a wrapped fd (a unix stream socket underneath). */
ssize_t swrap_tcp_send(struct swrap_sock *s, const struct msghdr *msg, int flags);
ssize_t swrap_tcp_recv(struct swrap_sock *s, struct msghdr *msg, int flags);
ssize_t swrap_tcp_read(struct swrap_sock *s, void *buf, size_t len);
ssize_t swrap_tcp_write(struct swrap_sock *s, const void *buf, size_t len);
/* writev/readv: issued as themselves when swrap_native_write() (writev)
 * or always (readv); see stream.c. */
ssize_t swrap_tcp_writev(struct swrap_sock *s, const struct iovec *iov, int n);
ssize_t swrap_tcp_readv(struct swrap_sock *s, const struct iovec *iov, int n);

/* dgram.c: UDP/ICMP data on a wrapped fd (swrap_dgram framing). */
ssize_t swrap_dgram_send(struct swrap_sock *s, const struct msghdr *msg, int flags);
ssize_t swrap_dgram_recv(struct swrap_sock *s, struct msghdr *msg, int flags);

/* filler.c: keeping the app end unwritable (docs/protocol.md, Filler). */
/* Shrink fd's SO_SNDBUF to the minimum and fill it with zero bytes until
 * EAGAIN; returns the bytes written. errno is preserved. */
uint32_t swrap_filler_fill(int fd);
/* Slow path of swrap_filler_done: restore SO_SNDBUF if the connect is over
 * (known_over, or the broker's STAT says so). */
void swrap_filler_restore(struct swrap_sock *s, bool known_over);
/* Call on every path where a finished connect matters (send, write,
 * connect, SO_ERROR): one flag test unless a filler is outstanding. */
static inline void swrap_filler_done(struct swrap_sock *s, bool known_over)
{
	if (SWRAP_UNLIKELY(s->word & SWF_FILLED))
		swrap_filler_restore(s, known_over);
}

/* Shared by sendrecv.c, syscall.c: the policy layer of the msg calls. */
ssize_t swrap_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t swrap_recvmsg(int fd, struct msghdr *msg, int flags);
int swrap_recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags, struct timespec *t);
int swrap_sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags);
int swrap_close(int fd);
int swrap_close_range(unsigned int first, unsigned int last, int flags);

/* ----------------------------------------------------------- interface -- */

/* ifaddrs.c: the one network interface a wrapped program sees, its host's
 * (index 1, name "swrapN"), described from the configuration at call time. */
#define SWRAP_IFINDEX 1
struct swrap_iface {
	char name[16];      /* "swrapN" */
	uint8_t v4[4];      /* 127.0.0.N or 10.53.57.N */
	uint8_t mask4[4];   /* 255.0.0.0 */
	uint8_t brd4[4];    /* 127.255.255.255 or 10.255.255.255 */
	uint8_t prefix4;    /* 8 */
	uint8_t v6[16];     /* fd00::5357:5fNN */
	uint8_t prefix6;    /* 64 */
	uint32_t mtu;
	unsigned int flags; /* IFF_* as SIOCGIFFLAGS reports them (no IFF_LOWER_UP) */
};
void swrap_iface_get(struct swrap_iface *ifc);
/* Is name the interface's? (at most IFNAMSIZ bytes are looked at) */
bool swrap_iface_is(const char *name);

/* ifioctl.c: SIOCGIF* on any socket while wrapping is on. */
static inline bool swrap_ifioctl_req(unsigned long req)
{
	/* SIOCGIFNAME 0x8910 .. SIOCGIFINDEX 0x8933, checked in detail there */
	return req >= 0x8910 && req <= 0x8933;
}
/* Returns 1 and sets *ret if the request was answered, else 0. */
int swrap_ifioctl(int fd, unsigned long req, void *arg, int *ret);

/* netlink.c: emulated NETLINK_ROUTE sockets. */
int swrap_nl_socket(int type);
bool swrap_nl_classify(int fd, const void *sun, socklen_t len);
int swrap_nl_bind(int fd, const struct sockaddr *sa, socklen_t len);
int swrap_nl_connect(int fd, const struct sockaddr *sa, socklen_t len);
int swrap_nl_name(int fd, bool peer, struct sockaddr *sa, socklen_t *len);
int swrap_nl_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
int swrap_nl_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
ssize_t swrap_nl_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t swrap_nl_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t swrap_nl_send(int fd, const void *buf, size_t len, int flags, const struct sockaddr *sa, socklen_t salen);
ssize_t swrap_nl_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *sa, socklen_t *salen);
/* The MTU of the emulated network (broker.c: from HELLO, else the environment). */
uint32_t swrap_broker_mtu(void);

/* Ask the broker for SO_ERROR of a socket: 0, the pending error, or
 * ECONNRESET if the broker cannot be asked. */
int swrap_so_error(const struct swrap_sock *s);

/* ---------------------------------------------------------------- names -- */

/* netdb.c: getaddrinfo & co. from the broker's name table (RESOLVE). */
void swrap_netdb_resolve(struct swrap_libc *l);
struct swrap_resolved {
	struct swrap_resolve_rep rep;
	struct swrap_resolve_addr addrs[SWRAP_RESOLVE_MAX];
};
/* 0, ENOENT (no such name), ENODATA (no address of that family), or the
 * transport's errno. */
int swrap_resolve_name(const char *name, int family, struct swrap_resolved *out);
/* 0 with the address's name in name, ENOENT, or the transport's errno. */
int swrap_resolve_addr(int family, const void *addr, char *name, size_t cap);
/* SWRAP_RESOLVE_OUTSIDE=1: names outside the table go to libc. */
bool swrap_resolve_outside(void);

/* resolve.c: the res_* calls, and DNS traffic to the broker's server. */
#define SWRAP_DNS_HOST 253  /* addrplan.ServiceHost: the DNS server's host id */
#define SWRAP_DNS_MAX 65535 /* the largest DNS message */
/* Read /etc/resolv.conf's nameservers (once, at start-up). */
void swrap_dns_init(void);
/* A connect/sendto destination that is a resolv.conf nameserver's port
 * 53 becomes the broker's DNS server. */
void swrap_dns_redirect(struct swrap_addr *a);

#endif /* SWRAP_H */
