/*
 * netlink.c - emulated NETLINK_ROUTE sockets, so that iproute2, dnsmasq and
 * other programs that enumerate links and addresses with their own netlink
 * socket see the emulated interface (ifaddrs.c), not the real machine's.
 *
 * socket(AF_NETLINK, ..., NETLINK_ROUTE) returns an AF_UNIX SOCK_DGRAM
 * socket bound to an abstract name private to it,
 * "\0swrapnl.<portid>.<pid>.<n>" (hex), and connected to itself, and marks
 * the fd SWRAP_FD_NETLINK in the fd table. The fd keeps that identity for
 * its whole life. A request written to it is answered here: the reply
 * datagrams are sent by the socket to itself, so they are really queued on
 * the program's fd, and
 * poll, epoll, select, read, recv, MSG_PEEK and MSG_TRUNC work natively
 * (the datagram boundaries are netlink's). Only the addresses are
 * translated: getsockname is a sockaddr_nl with the socket's port id, and a
 * received message comes from sockaddr_nl { pid 0 }, the kernel.
 *
 * Answered: RTM_GETLINK (dump, and the single get by index or name),
 * RTM_GETADDR dumps, RTM_GETROUTE dumps (the on-link routes the kernel
 * would create for the two addresses, so that a program looking for the
 * interface of its network finds it), RTM_GETNEIGH dumps (empty: a link
 * without hardware addresses has no neighbours), each honouring the
 * request's family, sequence number, NLM_F_ACK and the socket's
 * NETLINK_CAP_ACK. Anything else gets the NLMSG_ERROR -EOPNOTSUPP: the
 * emulated network is not configured with netlink. No multicast
 * notification is ever sent (the interface never changes); group
 * memberships are remembered only to be reported back.
 *
 * The fd table entry holds the state: id = port id | groups << 32, aux =
 * NLF_* flags. After exec only the port id survives (it is in the name).
 */
#include "swrap.h"

#include <linux/if_addr.h>
#include <linux/if_arp.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define NL_PREFIX "swrapnl."
#define NL_NAME_LEN (1 + 8 + 8 + 1 + 8 + 1 + 8) /* sun_path bytes, leading NUL included */

/* aux flags */
#define NLF_BOUND (1u << 0)  /* bound (bind, connect or first send): getsockname shows the port id */
#define NLF_RAW (1u << 1)    /* created SOCK_RAW (else SOCK_DGRAM) */
#define NLF_PKTINFO (1u << 2)
#define NLF_BCAST_ERR (1u << 3)
#define NLF_NO_ENOBUFS (1u << 4)
#define NLF_LISTEN_ALL (1u << 5)
#define NLF_CAP_ACK (1u << 6)
#define NLF_EXT_ACK (1u << 7)
#define NLF_STRICT (1u << 8)

#define NL_MAX_REQUEST 65536
#define NL_REPLY_CAP 8192

struct nl_state {
	uint32_t portid, groups, aux;
};

static bool get_state(int fd, struct nl_state *st)
{
	uint64_t id;
	if (!swrap_fd_netlink(fd, &id, &st->aux))
		return false;
	st->portid = (uint32_t)id;
	st->groups = (uint32_t)(id >> 32);
	return true;
}

static void put_state(int fd, const struct nl_state *st)
{
	swrap_fd_netlink_update(fd, (uint64_t)st->groups << 32 | st->portid, st->aux);
}

/* ------------------------------------------------------------- socket -- */

static _Atomic int32_t rover = -4096;
static _Atomic pid_t pid_portid_user; /* the process that took its pid as a port id */
static _Atomic uint32_t name_seq;

/* next_portid: as Linux's autobind, the process's pid first, then
 * negative numbers counting down from -4096. */
static uint32_t next_portid(pid_t pid)
{
	pid_t cur = atomic_load(&pid_portid_user);
	if (cur != pid && atomic_compare_exchange_strong(&pid_portid_user, &cur, pid))
		return (uint32_t)pid;
	return (uint32_t)atomic_fetch_sub(&rover, 1);
}

int swrap_nl_socket(int type)
{
	int base = type & 0xf, tflags = type & ~0xf;
	if (base != SOCK_RAW && base != SOCK_DGRAM)
		return swrap_fail(ESOCKTNOSUPPORT);
	if (tflags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return swrap_fail(EINVAL);
	int fd = swrap_libc.socket(AF_UNIX, SOCK_DGRAM | tflags, 0);
	if (fd < 0)
		return -1;
	pid_t pid = getpid();
	uint32_t portid = next_portid(pid);
	for (int i = 0; i < 64; i++) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		char name[40];
		snprintf(name, sizeof(name), NL_PREFIX "%08x.%08x.%08x", portid, (uint32_t)pid,
			 atomic_fetch_add(&name_seq, 1));
		memcpy(sun.sun_path + 1, name, NL_NAME_LEN - 1);
		socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + NL_NAME_LEN);
		if (swrap_libc.bind(fd, (struct sockaddr *)&sun, sl) == 0) {
			/* Connected to itself: nobody else can send to it, and its
			 * queue is bounded by bytes (SO_SNDBUF), as netlink's by
			 * SO_RCVBUF, not by net.unix.max_dgram_qlen datagrams. */
			if (swrap_libc.connect(fd, (struct sockaddr *)&sun, sl) != 0)
				break;
			swrap_fd_set_netlink(fd, portid, base == SOCK_RAW ? NLF_RAW : 0);
			SWRAP_LOG(SWRAP_LOG_DEBUG, "netlink socket fd %d, port id %u", fd, portid);
			return fd;
		}
		if (errno != EADDRINUSE)
			break;
	}
	int e = errno;
	swrap_libc.close(fd);
	return swrap_fail(e == EADDRINUSE ? ENOBUFS : e);
}

/* hex8 parses 8 hex digits. */
static bool hex8(const char *p, uint32_t *out)
{
	uint32_t v = 0;
	for (int i = 0; i < 8; i++) {
		char c = p[i];
		int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
		if (d < 0)
			return false;
		v = v << 4 | (uint32_t)d;
	}
	*out = v;
	return true;
}

bool swrap_nl_classify(int fd, const void *p, socklen_t len)
{
	const struct sockaddr_un *sun = p;
	uint32_t portid;
	if (len != offsetof(struct sockaddr_un, sun_path) + NL_NAME_LEN || sun->sun_path[0] != '\0' ||
	    memcmp(sun->sun_path + 1, NL_PREFIX, strlen(NL_PREFIX)) != 0 ||
	    !hex8(sun->sun_path + 1 + strlen(NL_PREFIX), &portid))
		return false;
	/* inherited: it was bound if anyone used it; SOCK_RAW is the common case */
	swrap_fd_set_netlink(fd, portid, NLF_BOUND | NLF_RAW);
	return true;
}

/* ------------------------------------------------------ names, options -- */

int swrap_nl_bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct nl_state st;
	struct sockaddr_nl nl;
	if (!get_state(fd, &st))
		return swrap_libc.bind(fd, sa, len);
	if ((int)len < 0 || len > sizeof(struct sockaddr_storage))
		return swrap_fail(EINVAL);
	if (len < sizeof(nl))
		return swrap_fail(EINVAL);
	if (!sa)
		return swrap_fail(EFAULT);
	memcpy(&nl, sa, sizeof(nl));
	if (nl.nl_family != AF_NETLINK)
		return swrap_fail(EINVAL);
	if (st.aux & NLF_BOUND) {
		if (nl.nl_pid != st.portid)
			return swrap_fail(EINVAL);
	} else if (nl.nl_pid) {
		st.portid = nl.nl_pid; /* a port id of the program's choice */
	}
	st.aux |= NLF_BOUND;
	st.groups = nl.nl_groups;
	put_state(fd, &st);
	return 0;
}

int swrap_nl_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct nl_state st;
	sa_family_t fam;
	if (!get_state(fd, &st))
		return swrap_libc.connect(fd, sa, len);
	if ((int)len < 0 || len > sizeof(struct sockaddr_storage) || len < sizeof(fam))
		return swrap_fail(EINVAL);
	if (!sa)
		return swrap_fail(EFAULT);
	memcpy(&fam, sa, sizeof(fam));
	if (fam == AF_UNSPEC)
		return 0;
	if (fam != AF_NETLINK || len < sizeof(struct sockaddr_nl))
		return swrap_fail(EINVAL);
	st.aux |= NLF_BOUND; /* connect autobinds */
	put_state(fd, &st);
	return 0;
}

int swrap_nl_name(int fd, bool peer, struct sockaddr *sa, socklen_t *len)
{
	struct nl_state st;
	if (!get_state(fd, &st))
		return peer ? swrap_libc.getpeername(fd, sa, len) : swrap_libc.getsockname(fd, sa, len);
	int err = swrap_addr_check_outlen(sa, len);
	if (err)
		return swrap_fail(err);
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK };
	if (!peer && (st.aux & NLF_BOUND)) {
		nl.nl_pid = st.portid;
		nl.nl_groups = st.groups;
	}
	socklen_t n = *len < sizeof(nl) ? *len : sizeof(nl);
	if (n)
		memcpy(sa, &nl, n);
	*len = sizeof(nl);
	return 0;
}

static uint32_t opt_flag(int name)
{
	switch (name) {
	case NETLINK_PKTINFO:
		return NLF_PKTINFO;
	case NETLINK_BROADCAST_ERROR:
		return NLF_BCAST_ERR;
	case NETLINK_NO_ENOBUFS:
		return NLF_NO_ENOBUFS;
	case NETLINK_LISTEN_ALL_NSID:
		return NLF_LISTEN_ALL;
	case NETLINK_CAP_ACK:
		return NLF_CAP_ACK;
	case NETLINK_EXT_ACK:
		return NLF_EXT_ACK;
	case NETLINK_GET_STRICT_CHK:
		return NLF_STRICT;
	}
	return 0;
}

int swrap_nl_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct nl_state st;
	if (!get_state(fd, &st) || level != SOL_NETLINK)
		return swrap_libc.setsockopt(fd, level, name, val, len);
	int v = 0;
	if (len >= sizeof(int)) {
		if (!val)
			return swrap_fail(EFAULT);
		memcpy(&v, val, sizeof(v));
	}
	uint32_t f = opt_flag(name);
	if (f) {
		if (len < sizeof(int))
			return swrap_fail(EINVAL);
		st.aux = v ? st.aux | f : st.aux & ~f;
	} else if (name == NETLINK_ADD_MEMBERSHIP || name == NETLINK_DROP_MEMBERSHIP) {
		if (len < sizeof(int))
			return swrap_fail(EINVAL);
		if (v <= 0 || v > RTNLGRP_MAX)
			return swrap_fail(EINVAL);
		if (v <= 32) {
			uint32_t bit = 1u << (v - 1);
			st.groups = name == NETLINK_ADD_MEMBERSHIP ? st.groups | bit : st.groups & ~bit;
		}
		st.aux |= NLF_BOUND; /* joining a group autobinds */
	} else {
		return swrap_fail(ENOPROTOOPT);
	}
	put_state(fd, &st);
	return 0;
}

int swrap_nl_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct nl_state st;
	if (!get_state(fd, &st))
		return swrap_libc.getsockopt(fd, level, name, val, len);
	int v;
	if (level == SOL_SOCKET && name == SO_DOMAIN)
		v = AF_NETLINK;
	else if (level == SOL_SOCKET && name == SO_PROTOCOL)
		v = NETLINK_ROUTE;
	else if (level == SOL_SOCKET && name == SO_TYPE)
		v = (st.aux & NLF_RAW) ? SOCK_RAW : SOCK_DGRAM;
	else if (level != SOL_NETLINK)
		return swrap_libc.getsockopt(fd, level, name, val, len);
	else if (name == NETLINK_LIST_MEMBERSHIPS)
		v = (int)st.groups;
	else if (opt_flag(name))
		v = (st.aux & opt_flag(name)) ? 1 : 0;
	else
		return swrap_fail(ENOPROTOOPT);
	if (!len)
		return swrap_fail(EFAULT);
	if ((int)*len < 0)
		return swrap_fail(EINVAL);
	if (level == SOL_NETLINK && *len < sizeof(int))
		return swrap_fail(EINVAL);
	socklen_t n = *len < sizeof(v) ? *len : sizeof(v);
	if (n && !val)
		return swrap_fail(EFAULT);
	memcpy(val, &v, n);
	*len = n;
	return 0;
}

/* ------------------------------------------------------------ replies -- */

struct nlbuf {
	uint8_t *p;
	size_t len, cap;
	bool full;
};

static void *put(struct nlbuf *b, size_t n)
{
	size_t an = NLMSG_ALIGN(n);
	if (b->full || b->len + an > b->cap) {
		b->full = true;
		return NULL;
	}
	void *r = b->p + b->len;
	memset(r, 0, an);
	b->len += an;
	return r;
}

static size_t msg_start(struct nlbuf *b, uint16_t type, uint16_t flags, const struct nlmsghdr *rq,
			uint32_t portid, const void *fixed, size_t flen)
{
	size_t at = b->len;
	struct nlmsghdr *h = put(b, NLMSG_HDRLEN);
	if (h) {
		h->nlmsg_type = type;
		h->nlmsg_flags = flags;
		h->nlmsg_seq = rq->nlmsg_seq;
		h->nlmsg_pid = portid;
	}
	void *f = flen ? put(b, flen) : NULL;
	if (f)
		memcpy(f, fixed, flen);
	return at;
}

static void msg_end(struct nlbuf *b, size_t at)
{
	if (!b->full)
		((struct nlmsghdr *)(b->p + at))->nlmsg_len = (uint32_t)(b->len - at);
}

static void attr(struct nlbuf *b, uint16_t type, const void *data, size_t n)
{
	struct rtattr *a = put(b, RTA_LENGTH(n));
	if (!a)
		return;
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(n);
	memcpy(RTA_DATA(a), data, n);
}

static void attr_u32(struct nlbuf *b, uint16_t type, uint32_t v)
{
	attr(b, type, &v, sizeof(v));
}

static void attr_u8(struct nlbuf *b, uint16_t type, uint8_t v)
{
	attr(b, type, &v, sizeof(v));
}

static void put_link(struct nlbuf *b, const struct swrap_iface *ifc, int family, uint16_t flags,
		     const struct nlmsghdr *rq, uint32_t portid)
{
	struct ifinfomsg im = {
		.ifi_family = (unsigned char)(family == AF_INET6 ? AF_INET6 : AF_UNSPEC),
		.ifi_type = ARPHRD_NONE, /* IP packets, no link header: "link/none" */
		.ifi_index = SWRAP_IFINDEX,
		.ifi_flags = ifc->flags | IFF_LOWER_UP,
	};
	struct rtnl_link_stats stats;
	struct rtnl_link_stats64 stats64;
	memset(&stats, 0, sizeof(stats));
	memset(&stats64, 0, sizeof(stats64));
	size_t at = msg_start(b, RTM_NEWLINK, flags, rq, portid, &im, sizeof(im));
	attr(b, IFLA_IFNAME, ifc->name, strlen(ifc->name) + 1);
	attr_u32(b, IFLA_TXQLEN, 1000);
	attr_u8(b, IFLA_OPERSTATE, IF_OPER_UP);
	attr_u8(b, IFLA_LINKMODE, 0);
	attr_u32(b, IFLA_MTU, ifc->mtu);
	attr_u32(b, IFLA_MIN_MTU, 1280);
	attr_u32(b, IFLA_MAX_MTU, 65535);
	attr_u32(b, IFLA_GROUP, 0);
	attr_u32(b, IFLA_PROMISCUITY, 0);
	attr_u32(b, IFLA_NUM_TX_QUEUES, 1);
	attr_u32(b, IFLA_NUM_RX_QUEUES, 1);
	attr_u8(b, IFLA_CARRIER, 1);
	attr(b, IFLA_QDISC, "noqueue", sizeof("noqueue"));
	attr(b, IFLA_STATS, &stats, sizeof(stats));
	attr(b, IFLA_STATS64, &stats64, sizeof(stats64));
	msg_end(b, at);
}

static void put_addr(struct nlbuf *b, const struct swrap_iface *ifc, int family, const struct nlmsghdr *rq,
		     uint32_t portid)
{
	struct ifaddrmsg am = {
		.ifa_family = (uint8_t)family,
		.ifa_prefixlen = family == AF_INET ? ifc->prefix4 : ifc->prefix6,
		.ifa_flags = IFA_F_PERMANENT,
		.ifa_scope = RT_SCOPE_UNIVERSE,
		.ifa_index = SWRAP_IFINDEX,
	};
	struct ifa_cacheinfo ci = { .ifa_prefered = 0xffffffffu, .ifa_valid = 0xffffffffu };
	size_t at = msg_start(b, RTM_NEWADDR, NLM_F_MULTI, rq, portid, &am, sizeof(am));
	if (family == AF_INET) {
		attr(b, IFA_ADDRESS, ifc->v4, 4);
		attr(b, IFA_LOCAL, ifc->v4, 4);
		attr(b, IFA_BROADCAST, ifc->brd4, 4);
		attr(b, IFA_LABEL, ifc->name, strlen(ifc->name) + 1);
	} else {
		attr(b, IFA_ADDRESS, ifc->v6, 16);
	}
	attr_u32(b, IFA_FLAGS, IFA_F_PERMANENT);
	attr(b, IFA_CACHEINFO, &ci, sizeof(ci));
	msg_end(b, at);
}

/* put_route: the on-link route of one address, as the kernel adds it. */
static void put_route(struct nlbuf *b, const struct swrap_iface *ifc, int family, const struct nlmsghdr *rq,
		      uint32_t portid)
{
	struct rtmsg rm = {
		.rtm_family = (unsigned char)family,
		.rtm_dst_len = family == AF_INET ? ifc->prefix4 : ifc->prefix6,
		.rtm_table = RT_TABLE_MAIN,
		.rtm_protocol = RTPROT_KERNEL,
		.rtm_scope = family == AF_INET ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE,
		.rtm_type = RTN_UNICAST,
	};
	size_t at = msg_start(b, RTM_NEWROUTE, NLM_F_MULTI, rq, portid, &rm, sizeof(rm));
	attr_u32(b, RTA_TABLE, RT_TABLE_MAIN);
	if (family == AF_INET) {
		uint8_t net[4] = { ifc->v4[0], 0, 0, 0 };
		attr(b, RTA_DST, net, 4);
		attr(b, RTA_PREFSRC, ifc->v4, 4);
		attr_u32(b, RTA_OIF, SWRAP_IFINDEX);
	} else {
		uint8_t net[16];
		memset(net, 0, sizeof(net));
		memcpy(net, ifc->v6, ifc->prefix6 / 8);
		attr(b, RTA_DST, net, 16);
		attr_u32(b, RTA_PRIORITY, 256);
		attr_u32(b, RTA_OIF, SWRAP_IFINDEX);
		attr_u8(b, RTA_PREF, 0);
	}
	msg_end(b, at);
}

static void put_done(struct nlbuf *b, const struct nlmsghdr *rq, uint32_t portid)
{
	int32_t zero = 0;
	size_t at = msg_start(b, NLMSG_DONE, NLM_F_MULTI, rq, portid, &zero, sizeof(zero));
	msg_end(b, at);
}

/* put_error: NLMSG_ERROR with err (0: an ack), followed by the request,
 * whole for an error unless NETLINK_CAP_ACK, else its header only. */
static void put_error(struct nlbuf *b, int err, const struct nlmsghdr *rq, uint32_t portid, uint32_t aux)
{
	bool whole = err != 0 && !(aux & NLF_CAP_ACK) && rq->nlmsg_len + 64 <= b->cap - b->len;
	size_t at = msg_start(b, NLMSG_ERROR, whole ? 0 : NLM_F_CAPPED, rq, portid, NULL, 0);
	int32_t e = -err;
	void *p = put(b, sizeof(e));
	if (p)
		memcpy(p, &e, sizeof(e));
	p = put(b, whole ? rq->nlmsg_len : NLMSG_HDRLEN);
	if (p)
		memcpy(p, rq, whole ? rq->nlmsg_len : NLMSG_HDRLEN);
	msg_end(b, at);
}

/* get_link answers a single RTM_GETLINK: by index, else by name. */
static int get_link(struct nlbuf *b, const struct swrap_iface *ifc, const struct nlmsghdr *h, uint32_t portid)
{
	struct ifinfomsg im;
	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(im)))
		return EINVAL;
	memcpy(&im, NLMSG_DATA(h), sizeof(im));
	bool found;
	if (im.ifi_index > 0) {
		found = im.ifi_index == SWRAP_IFINDEX;
	} else {
		const char *name = NULL;
		int rem = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(im)));
		/* attributes may be unaligned in a hostile request: copy each header */
		const uint8_t *p = (const uint8_t *)NLMSG_DATA(h) + NLMSG_ALIGN(sizeof(im));
		char nb[IFNAMSIZ];
		while (rem >= (int)sizeof(struct rtattr)) {
			struct rtattr a;
			memcpy(&a, p, sizeof(a));
			if (a.rta_len < sizeof(a) || a.rta_len > rem)
				break;
			if (a.rta_type == IFLA_IFNAME || a.rta_type == IFLA_ALT_IFNAME) {
				size_t n = a.rta_len - sizeof(a);
				if (n > sizeof(nb) - 1)
					n = sizeof(nb) - 1;
				memcpy(nb, p + sizeof(a), n);
				nb[n] = '\0';
				name = nb;
			}
			rem -= (int)RTA_ALIGN(a.rta_len);
			p += RTA_ALIGN(a.rta_len);
		}
		if (!name)
			return EINVAL;
		found = swrap_iface_is(name);
	}
	if (!found)
		return ENODEV;
	put_link(b, ifc, AF_UNSPEC, 0, h, portid);
	return 0;
}

/* handle answers one request message into b. */
static void handle(struct nlbuf *b, const struct nlmsghdr *h, const struct nl_state *st)
{
	struct swrap_iface ifc;
	int err = 0;
	uint32_t pid = st->portid;

	if (!(h->nlmsg_flags & NLM_F_REQUEST) || h->nlmsg_type < NLMSG_MIN_TYPE)
		goto ack;
	if (h->nlmsg_type < RTM_BASE || h->nlmsg_type > RTM_MAX) {
		err = EOPNOTSUPP;
		goto ack;
	}
	swrap_iface_get(&ifc);
	int family = h->nlmsg_len >= NLMSG_LENGTH(1) ? *(const uint8_t *)NLMSG_DATA(h) : AF_UNSPEC;
	bool v4 = family != AF_INET6, v6 = family != AF_INET;
	bool get = ((h->nlmsg_type - RTM_BASE) & 3) == 2;

	if (get && (h->nlmsg_flags & NLM_F_DUMP)) {
		switch (h->nlmsg_type) {
		case RTM_GETLINK:
			put_link(b, &ifc, family, NLM_F_MULTI, h, pid);
			break;
		case RTM_GETADDR:
			if ((st->aux & NLF_STRICT) && h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct ifaddrmsg))) {
				struct ifaddrmsg am;
				memcpy(&am, NLMSG_DATA(h), sizeof(am));
				if (am.ifa_index != 0 && am.ifa_index != SWRAP_IFINDEX) {
					err = ENODEV;
					goto ack;
				}
			}
			if (v4)
				put_addr(b, &ifc, AF_INET, h, pid);
			if (v6)
				put_addr(b, &ifc, AF_INET6, h, pid);
			break;
		case RTM_GETROUTE:
			if (v4)
				put_route(b, &ifc, AF_INET, h, pid);
			if (v6)
				put_route(b, &ifc, AF_INET6, h, pid);
			break;
		case RTM_GETNEIGH:
			break;
		default:
			err = EOPNOTSUPP;
			goto ack;
		}
		put_done(b, h, pid);
		return; /* a dump is not acked: NLMSG_DONE ends it */
	}
	if (get && h->nlmsg_type == RTM_GETLINK)
		err = get_link(b, &ifc, h, pid);
	else
		err = EOPNOTSUPP;
ack:
	if (err || (h->nlmsg_flags & NLM_F_ACK))
		put_error(b, err, h, pid, st->aux);
}

/* deliver queues a reply datagram on fd itself (connected to itself), so
 * that the program's poll/recv see it as the kernel's. */
static int deliver(int fd, const void *p, size_t n)
{
	ssize_t r;
	do
		r = swrap_libc.send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN ? ENOBUFS : errno; /* the queue is full */
	return 0;
}

ssize_t swrap_nl_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct nl_state st;
	if (!get_state(fd, &st))
		return swrap_libc.sendmsg(fd, msg, flags);
	if (!msg)
		return swrap_fail(EFAULT);
	if (flags & MSG_OOB)
		return swrap_fail(EOPNOTSUPP);
	if (msg->msg_name && msg->msg_namelen) {
		struct sockaddr_nl nl;
		if (msg->msg_namelen < sizeof(nl))
			return swrap_fail(EINVAL);
		memcpy(&nl, msg->msg_name, sizeof(nl));
		if (nl.nl_family != AF_NETLINK)
			return swrap_fail(EINVAL);
		if (nl.nl_pid != 0)
			return swrap_fail(ECONNREFUSED); /* no other netlink peer exists here */
	}
	size_t total = 0;
	for (size_t i = 0; i < msg->msg_iovlen; i++) {
		total += msg->msg_iov[i].iov_len;
		if (total > NL_MAX_REQUEST)
			return swrap_fail(EMSGSIZE);
	}
	uint8_t *req = malloc(total ? total : 1), *rep = malloc(NL_REPLY_CAP);
	if (!req || !rep) {
		free(req);
		free(rep);
		return swrap_fail(ENOBUFS);
	}
	size_t off = 0;
	for (size_t i = 0; i < msg->msg_iovlen; i++) {
		if (msg->msg_iov[i].iov_len)
			memcpy(req + off, msg->msg_iov[i].iov_base, msg->msg_iov[i].iov_len);
		off += msg->msg_iov[i].iov_len;
	}
	if (!(st.aux & NLF_BOUND)) {
		st.aux |= NLF_BOUND; /* the first send autobinds */
		put_state(fd, &st);
	}

	/* As netlink_rcv_skb: message after message while the lengths hold;
	 * one reply datagram per request. */
	int err = 0;
	size_t pos = 0;
	while (pos + NLMSG_HDRLEN <= total) {
		struct nlmsghdr hh;
		memcpy(&hh, req + pos, sizeof(hh));
		if (hh.nlmsg_len < NLMSG_HDRLEN || hh.nlmsg_len > total - pos)
			break;
		/* pos is a multiple of 4 in a malloc()ed block: aligned */
		struct nlmsghdr *h = (struct nlmsghdr *)(void *)(req + pos);
		struct nlbuf b = { rep, 0, NL_REPLY_CAP, false };
		handle(&b, h, &st);
		if (b.full) {
			b.len = 0;
			b.full = false;
			put_error(&b, ENOBUFS, h, st.portid, st.aux | NLF_CAP_ACK);
		}
		if (b.len && (err = deliver(fd, rep, b.len)) != 0)
			break;
		pos += NLMSG_ALIGN(hh.nlmsg_len);
	}
	free(req);
	free(rep);
	if (err)
		return swrap_fail(err);
	return (ssize_t)total;
}

ssize_t swrap_nl_recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (!swrap_fd_netlink(fd, NULL, NULL))
		return swrap_libc.recvmsg(fd, msg, flags);
	if (!msg)
		return swrap_fail(EFAULT);
	struct sockaddr_un sun;
	struct msghdr m = *msg;
	m.msg_name = &sun; /* the sender is ourselves: never shown */
	m.msg_namelen = sizeof(sun);
	ssize_t n = swrap_libc.recvmsg(fd, &m, flags);
	if (n < 0)
		return -1;
	msg->msg_controllen = m.msg_controllen;
	msg->msg_flags = m.msg_flags;
	if (msg->msg_name) {
		struct sockaddr_nl nl = { .nl_family = AF_NETLINK }; /* from the kernel */
		socklen_t k = msg->msg_namelen < sizeof(nl) ? msg->msg_namelen : sizeof(nl);
		memcpy(msg->msg_name, &nl, k);
		msg->msg_namelen = sizeof(nl);
	}
	return n;
}

ssize_t swrap_nl_send(int fd, const void *buf, size_t len, int flags, const struct sockaddr *sa, socklen_t salen)
{
	struct iovec iov = { (void *)buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_name = (void *)sa, .msg_namelen = sa ? salen : 0 };
	return swrap_nl_sendmsg(fd, &m, flags);
}

ssize_t swrap_nl_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *sa, socklen_t *salen)
{
	if (sa) {
		int e = swrap_addr_check_outlen(sa, salen);
		if (e)
			return swrap_fail(e);
	}
	struct iovec iov = { buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_name = sa, .msg_namelen = sa ? *salen : 0 };
	ssize_t n = swrap_nl_recvmsg(fd, &m, flags);
	if (n >= 0 && sa)
		*salen = m.msg_namelen;
	return n;
}
