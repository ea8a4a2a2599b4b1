/*
 * swrap wire protocol, version 1: the messages between the preload shim and
 * swrap-broker. docs/protocol.md explains every message; wire/wire.go is the Go
 * twin of this file and the two must change together.
 *
 * All integers are in host byte order (shim and broker share one machine),
 * except where a field says otherwise. Every struct is naturally aligned and
 * has no implicit padding.
 */
#ifndef SWRAP_PROTO_H
#define SWRAP_PROTO_H

#include <stdint.h>

#define SWRAP_MAGIC 0x50525753u /* "SWRP" read as little-endian bytes */
#define SWRAP_VERSION 1

/* Files inside "$SOCKET_WRAPPER_DIR/swrap/" (a 0700 directory). */
#define SWRAP_SUBDIR "swrap"
#define SWRAP_CTL_SOCK "broker.sock" /* SOCK_SEQPACKET, control requests */
#define SWRAP_LOCK_FILE "broker.lock" /* flock()ed by the one live broker */

/*
 * The app's end of every wrapped socket is bound to an abstract unix name
 * "\0swrap.<instance>.<id>": 16 lower-case hex digits of the broker instance
 * (from HELLO) and 16 of the socket id. getsockname() on any fd therefore tells
 * whether it is a wrapped socket and which one, in one syscall.
 */
#define SWRAP_NAME_PREFIX "swrap."
#define SWRAP_NAME_LEN 40 /* bytes of sun_path used, including the leading NUL */

enum swrap_op {
	SWRAP_OP_HELLO = 1,
	SWRAP_OP_SOCKET = 2,
	SWRAP_OP_BIND = 3,
	SWRAP_OP_LISTEN = 4,
	SWRAP_OP_CONNECT = 5,
	SWRAP_OP_SHUTDOWN = 6,
	SWRAP_OP_GETSOCKNAME = 7,
	SWRAP_OP_GETPEERNAME = 8,
	SWRAP_OP_GETSOCKOPT = 9,
	SWRAP_OP_SETSOCKOPT = 10,
	SWRAP_OP_STAT = 11,
	SWRAP_OP_STATUS = 12,
	SWRAP_OP_IOCTL = 13,
	SWRAP_OP_SETLINK = 14,  /* body: network conditions as text (docs/protocol.md) */
	SWRAP_OP_GETLINKS = 15, /* reply: JSON array of links and their counters */
	SWRAP_OP_NEWCTL = 16,   /* another control connection: empty body, reply carries 1 fd */
	SWRAP_OP_RESOLVE = 17,  /* the name table: struct swrap_resolve + name/address */
	SWRAP_OP_CAPTURE = 18,  /* live pcapng stream (swrap capture); the shim never sends it */
	SWRAP_OP_SERVED = 19,   /* reply only: no-reply requests served (struct swrap_served) */
	SWRAP_OP_CLOSED = 20,   /* an fd of a UDP socket or listener closed: reply once its port is free */
};

#define SWRAP_REPLY 0x8000u /* or'ed into op in a reply */
/* Or'ed into op in a request: send no reply (the broker says so in HELLO's
 * features). The broker serves it in its place in the connection's order
 * and counts it; before the reply to the next request without the bit it
 * sends one SERVED message for all it counted (docs/protocol.md). */
#define SWRAP_NOREPLY 0x4000u

/* Every request starts with this header. */
struct swrap_req {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint64_t sock; /* socket id, 0 for HELLO, SOCKET and STATUS */
};

/* Every reply starts with this header. */
struct swrap_rep {
	uint32_t magic;
	uint16_t version;
	uint16_t op;   /* request op | SWRAP_REPLY */
	int32_t err;   /* 0, or a positive Linux errno */
	uint32_t len;  /* bytes of body after this header */
};

/* An IPv4 or IPv6 socket address. */
struct swrap_addr {
	uint16_t family;   /* AF_INET, AF_INET6, or 0 (AF_UNSPEC: none) */
	uint16_t port;     /* host byte order */
	uint32_t scope_id; /* IPv6 scope; 0 for IPv4 */
	uint8_t addr[16];  /* IPv4 uses the first 4 bytes, network order */
};

/* HELLO: first request on every control connection. */
struct swrap_hello {
	uint32_t pid;
	uint32_t iface; /* SOCKET_WRAPPER_DEFAULT_IFACE of the process, 1..64 */
	char comm[16];  /* program name, NUL padded */
	/* followed by an optional pcap file path (no NUL), to capture into */
};
struct swrap_hello_rep {
	uint32_t broker_pid;
	uint32_t mtu;
	char instance[16]; /* hex digits used in socket names */
	uint32_t features; /* SWRAP_FEAT_*; absent (a 24-byte reply) means none */
	uint32_t reserved;
};
#define SWRAP_FEAT_NOREPLY 1u /* requests may carry SWRAP_NOREPLY */

/* SERVED: a reply-only message (op SWRAP_OP_SERVED | SWRAP_REPLY, err 0)
 * that precedes the reply to a request without SWRAP_NOREPLY when no-reply
 * requests were served on the connection since the last one. */
struct swrap_served {
	uint32_t count;    /* no-reply requests served since the last SERVED */
	uint32_t failed;   /* how many of them failed */
	uint16_t fail_op;  /* the last failed one's op, its errno: */
	uint16_t reserved;
	int32_t fail_err;
};

/* SOCKET: reply body is struct swrap_socket_rep, plus one fd (SCM_RIGHTS):
 * the app end, AF_UNIX SOCK_STREAM for TCP, SOCK_SEQPACKET for UDP/ICMP. */
struct swrap_socket {
	int32_t family;   /* AF_INET or AF_INET6 */
	int32_t type;     /* SOCK_STREAM or SOCK_DGRAM, without flags */
	int32_t protocol; /* 0, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP(V6) */
	uint32_t iface;
};
struct swrap_socket_rep {
	uint64_t sock;
};

/* BIND body: struct swrap_addr. */

/* LISTEN */
struct swrap_listen {
	int32_t backlog;
	uint32_t reserved;
};

/* CONNECT: err is 0 when connected, EINPROGRESS when non-blocking and
 * pending; a blocking CONNECT is answered when it completes. For UDP an
 * AF_UNSPEC address disconnects. */
struct swrap_connect {
	struct swrap_addr addr;
	uint32_t flags;  /* SWRAP_CONNECT_NONBLOCK */
	uint32_t filler; /* bytes of filler the app end wrote before (below) */
};
#define SWRAP_CONNECT_NONBLOCK 1u
/*
 * A unix socket is writable at once, a TCP socket only once connected. So
 * that poll/epoll report POLLOUT when the connection is made (or fails),
 * the shim shrinks the app end's SO_SNDBUF and fills it with zero bytes
 * before a non-blocking CONNECT, and says how many: the broker discards
 * exactly that many bytes when the connect completes, which makes the app
 * end writable then. The same filler (never discarded) keeps a listening
 * socket's app end from ever being writable.
 */

/* SHUTDOWN: validates and records; on success the shim also calls the real
 * shutdown(how) on the app end, which is what the broker acts upon. */
struct swrap_shutdown {
	int32_t how;
	uint32_t reserved;
};

/* GETSOCKNAME / GETPEERNAME reply body: struct swrap_addr. */

/* GETSOCKOPT: reply body is the option value (at most optlen bytes).
 * getsockopt(SOL_SOCKET, SO_ERROR) waits for a pending connect to finish. */
struct swrap_sockopt {
	int32_t level;
	int32_t name;
	uint32_t optlen;
	uint32_t reserved;
	/* SETSOCKOPT: followed by optlen bytes of value */
};

/* STAT: what a socket is (for fds inherited or received). */
struct swrap_stat_rep {
	int32_t family;
	int32_t type;
	int32_t protocol;
	uint32_t state; /* enum swrap_state */
	uint32_t flags; /* SWRAP_STAT_* */
	uint32_t iface;
};
enum swrap_state {
	SWRAP_STATE_NEW = 0,
	SWRAP_STATE_BOUND = 1,
	SWRAP_STATE_LISTENING = 2,
	SWRAP_STATE_CONNECTING = 3,
	SWRAP_STATE_CONNECTED = 4,
	SWRAP_STATE_CLOSED = 5,
};
#define SWRAP_STAT_BROADCAST 1u /* SO_BROADCAST is set */

/* IOCTL: request body struct swrap_ioctl; reply body one int32 value. */
struct swrap_ioctl {
	uint32_t request; /* FIONREAD (SIOCINQ) or SIOCOUTQ */
	uint32_t reserved;
};

/* STATUS: empty body; reply body is a JSON document, or empty with a memfd
 * holding it when it exceeds one message (docs/protocol.md). */

/*
 * NEWCTL: on a connection that has done HELLO; empty body (EINVAL
 * otherwise). The reply has an empty body and one fd: an AF_UNIX
 * SOCK_SEQPACKET socket the broker serves like a connection accepted on
 * broker.sock (HELLO first). What a process holds is its right to the
 * network: once it has changed uid or chroot()ed it can no longer connect
 * to broker.sock, but it still gets new control connections this way.
 * Its replies are interchangeable (each is one fresh connection), so
 * processes may share one connection used only for NEWCTL: each that
 * sends one request and reads one reply gets one connection.
 */

/*
 * Accept records: the broker writes one to a listening socket's app end for
 * each established connection, with the new connection's app end attached
 * (SCM_RIGHTS, exactly one fd). accept() is one recvmsg() of this size.
 */
struct swrap_accept {
	uint32_t magic;
	uint32_t reserved;
	uint64_t sock;          /* id of the new connection */
	struct swrap_addr peer; /* the connecting peer */
};

/*
 * Datagram header: every message on a UDP/ICMP socket's app end (both ways)
 * starts with this header, followed by the payload.
 *  app -> broker: peer is the destination (family 0: the connected peer);
 *                 local is the IP_PKTINFO source address (family 0: none).
 *  broker -> app: peer is the source; local is the destination address the
 *                 datagram was sent to (for IP_PKTINFO / IPV6_PKTINFO).
 */
struct swrap_dgram {
	uint32_t flags;   /* SWRAP_DGRAM_ERROR, or 0 */
	uint32_t ifindex; /* pktinfo interface index; the errno for an error */
	struct swrap_addr peer;
	struct swrap_addr local;
};

/* broker -> app: no payload; an asynchronous error for the socket (e.g.
 * ECONNREFUSED from an ICMP port unreachable on a connected UDP socket),
 * in ifindex, which the next receive call reports once, as Linux does. */
#define SWRAP_DGRAM_ERROR 1u

/*
 * RESOLVE: a question to the broker's name table. The body is this struct
 * and then a name (no NUL) or address bytes; see wire.go for the kinds.
 */
enum { SWRAP_RESOLVE_NAME = 1, SWRAP_RESOLVE_ADDR = 2, SWRAP_RESOLVE_QUERY = 3, SWRAP_RESOLVE_MESSAGE = 4 };
#define SWRAP_RESOLVE_MAX 64 /* addresses in a NAME reply, at most */
struct swrap_resolve {
	uint32_t kind;
	uint32_t arg; /* NAME, ADDR: the family; QUERY: type | class << 16 */
};

/* NAME reply: this, then count struct swrap_resolve_addr. */
struct swrap_resolve_rep {
	char canon[256]; /* the canonical name, NUL-terminated */
	uint32_t count;
	uint32_t reserved;
};

struct swrap_resolve_addr {
	uint32_t family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
};

#endif /* SWRAP_PROTO_H */
