/*
 * ifaces.c - interface enumeration: the SIOCGIF* ioctls, if_nametoindex and
 * if_indextoname, and NETLINK_ROUTE sockets (RTM_GETLINK / RTM_GETADDR).
 *
 * The interface of index 1 is "the" interface: natively lo, under swrap the
 * host's swrapN. Names are never printed, only compared; addresses only as
 * SELF4/SELF6 (lo's 127.0.0.1 and ::1 are CONF_ADDR4/6 natively). What
 * cannot be compared is left out: how many interfaces and addresses the
 * real machine has, lo's flags, MTU, hardware type and IPv6 prefix (/128).
 */
#include "conf.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

static char ifname1[IF_NAMESIZE];

/* ifreq_named returns an ifreq naming name. */
static struct ifreq ifreq_named(const char *name)
{
	struct ifreq r;
	memset(&r, 0, sizeof(r));
	snprintf(r.ifr_name, sizeof(r.ifr_name), "%s", name);
	return r;
}

static void ioctls(void)
{
	int s4 = xsocket(AF_INET, SOCK_DGRAM), s6 = xsocket(AF_INET6, SOCK_DGRAM);
	int su = socket(AF_UNIX, SOCK_DGRAM, 0);
	struct ifreq r;

	char *n = if_indextoname(1, ifname1);
	check("if_indextoname_1", "%s", n ? "ok" : errname(errno));
	errno = 0;
	unsigned int idx = if_nametoindex(ifname1);
	check("if_nametoindex_1", "%u", idx);
	idx = if_nametoindex("nosuchif0");
	check("if_nametoindex_bad", "%u %s", idx, errname(errno));
	char nb[IF_NAMESIZE];
	n = if_indextoname(4000, nb);
	check("if_indextoname_bad", "%s", n ? "ok" : errname(errno));

	r = ifreq_named(ifname1);
	int x = ioctl(s4, SIOCGIFINDEX, &r);
	check("siocgifindex", "%s index=%d", ok0(x), r.ifr_ifindex);
	r = ifreq_named(ifname1);
	x = ioctl(su, SIOCGIFINDEX, &r);
	check("siocgifindex_unix", "%s index=%d", ok0(x), r.ifr_ifindex);
	r = ifreq_named("nosuchif0");
	check("siocgifindex_bad", "%s", ok0(ioctl(s4, SIOCGIFINDEX, &r)));
	memset(&r, 0, sizeof(r));
	r.ifr_ifindex = 1;
	x = ioctl(s4, SIOCGIFNAME, &r);
	check("siocgifname", "%s same=%d", ok0(x), strcmp(r.ifr_name, ifname1) == 0);
	r.ifr_ifindex = 4000;
	check("siocgifname_bad", "%s", ok0(ioctl(s4, SIOCGIFNAME, &r)));
	check("siocgifname_efault", "%s", ok0(ioctl(s4, SIOCGIFNAME, (void *)8)));
	r = ifreq_named(ifname1);
	x = ioctl(s4, SIOCGIFFLAGS, &r);
	check("siocgifflags", "%s up=%d running=%d", ok0(x), !!(r.ifr_flags & IFF_UP),
	      !!(r.ifr_flags & IFF_RUNNING));
	r = ifreq_named("nosuchif0");
	check("siocgifflags_bad", "%s", ok0(ioctl(s6, SIOCGIFFLAGS, &r)));
	check("siocgifflags_efault", "%s", ok0(ioctl(s4, SIOCGIFFLAGS, (void *)8)));
	r = ifreq_named(ifname1);
	x = ioctl(s4, SIOCGIFADDR, &r);
	check("siocgifaddr", "%s %s", ok0(x), hoststr(&r.ifr_addr));
	r = ifreq_named(ifname1);
	x = ioctl(s4, SIOCGIFNETMASK, &r);
	check("siocgifnetmask", "%s %s", ok0(x),
	      ((struct sockaddr_in *)&r.ifr_netmask)->sin_addr.s_addr == htonl(0xff000000) ? "/8" : "other");
	r = ifreq_named("nosuchif0");
	check("siocgifaddr_bad", "%s", ok0(ioctl(s4, SIOCGIFADDR, &r)));
	r = ifreq_named(ifname1);
	check("siocgifaddr_inet6", "%s", ok0(ioctl(s6, SIOCGIFADDR, &r)));
	r = ifreq_named(ifname1);
	check("siocgifaddr_unix", "%s", ok0(ioctl(su, SIOCGIFADDR, &r)));
	check("siocgifaddr_efault", "%s", ok0(ioctl(s4, SIOCGIFADDR, (void *)8)));
	{
		int pfd[2];
		if (pipe(pfd) != 0)
			die("pipe");
		r = ifreq_named(ifname1);
		check("siocgifindex_pipe", "%s", ok0(ioctl(pfd[0], SIOCGIFINDEX, &r)));
		close(pfd[0]);
		close(pfd[1]);
	}

	/* SIOCGIFCONF: the real machine may list more IPv4 addresses than
	 * lo's, so only the first entry and the shape are compared. */
	struct ifconf ic = { .ifc_len = 0, .ifc_buf = NULL };
	x = ioctl(s4, SIOCGIFCONF, &ic);
	check("siocgifconf_size", "%s whole=%d nonzero=%d", ok0(x), ic.ifc_len % (int)sizeof(struct ifreq) == 0,
	      ic.ifc_len > 0);
	struct ifreq rq[2];
	ic.ifc_len = sizeof(struct ifreq);
	ic.ifc_req = rq;
	x = ioctl(s4, SIOCGIFCONF, &ic);
	check("siocgifconf_one", "%s len=%d same=%d %s", ok0(x), ic.ifc_len, strcmp(rq[0].ifr_name, ifname1) == 0,
	      hoststr(&rq[0].ifr_addr));
	ic.ifc_len = sizeof(struct ifreq) - 1;
	x = ioctl(s4, SIOCGIFCONF, &ic);
	check("siocgifconf_small", "%s len=%d", ok0(x), ic.ifc_len);
	ic.ifc_len = -1;
	x = ioctl(s6, SIOCGIFCONF, &ic);
	check("siocgifconf_negative", "%s len=%d", ok0(x), ic.ifc_len);
	ic.ifc_len = sizeof(rq);
	ic.ifc_buf = (void *)8;
	check("siocgifconf_efault", "%s", ok0(ioctl(s4, SIOCGIFCONF, &ic)));
	check("siocgifconf_efault_arg", "%s", ok0(ioctl(s4, SIOCGIFCONF, (void *)8)));
	close(s4);
	close(s6);
	close(su);
}

/* ---------------------------------------------------------------- netlink -- */

static uint32_t nlpid(int fd)
{
	struct sockaddr_nl nl;
	socklen_t len = sizeof(nl);
	memset(&nl, 0xff, sizeof(nl));
	if (getsockname(fd, (struct sockaddr *)&nl, &len) != 0)
		return 0xdeadbeef;
	return nl.nl_pid;
}

static int nlsend(int fd, uint16_t type, uint16_t flags, uint32_t seq, int family, int index)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} rq;
	memset(&rq, 0, sizeof(rq));
	rq.h.nlmsg_len = sizeof(rq);
	rq.h.nlmsg_type = type;
	rq.h.nlmsg_flags = flags;
	rq.h.nlmsg_seq = seq;
	rq.i.ifi_family = (unsigned char)family;
	rq.i.ifi_index = index;
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };
	return (int)sendto(fd, &rq, sizeof(rq), 0, (struct sockaddr *)&to, sizeof(to));
}

/* the facts of one reply sequence, up to NLMSG_DONE or a non-multi message */
struct nlfacts {
	int msgs, dgrams, done, error, bad_seq, bad_pid, idx1, self, prefix8;
	int from_kernel, peek_trunc;
};

static bool rta_is(const struct rtattr *a, int fam)
{
	if (fam == AF_INET)
		return RTA_PAYLOAD(a) == 4 && memcmp(RTA_DATA(a), &conf_addr4, 4) == 0;
	return RTA_PAYLOAD(a) == 16 && memcmp(RTA_DATA(a), &conf_addr6, 16) == 0;
}

/* nlread reads replies until NLMSG_DONE, NLMSG_ERROR, or (unless wait_ack)
 * a single answer. */
static struct nlfacts nlread_ack(int fd, uint32_t seq, uint32_t pid, bool wait_ack)
{
	bool single = false;
	struct nlfacts f;
	memset(&f, 0, sizeof(f));
	static char buf[1 << 16];
	for (int round = 0; round < 64 && !f.done && !f.error && !single; round++) {
		if (waitev(fd, POLLIN, 2000) == 0)
			break;
		/* the dnsmasq/iproute2 way: the size first */
		char one;
		struct iovec iov = { &one, 1 };
		struct sockaddr_nl from;
		struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t want = recvmsg(fd, &m, MSG_PEEK | MSG_TRUNC);
		if (round == 0)
			f.peek_trunc = want > 1 && (m.msg_flags & MSG_TRUNC);
		memset(&from, 0xff, sizeof(from));
		iov.iov_base = buf;
		iov.iov_len = sizeof(buf);
		m.msg_namelen = sizeof(from);
		ssize_t n = recvmsg(fd, &m, 0);
		if (n <= 0)
			break;
		f.dgrams++;
		f.from_kernel = m.msg_namelen == sizeof(from) && from.nl_family == AF_NETLINK && from.nl_pid == 0;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			f.msgs++;
			if (h->nlmsg_seq != seq)
				f.bad_seq++;
			if (h->nlmsg_pid != pid)
				f.bad_pid++;
			if (h->nlmsg_type == NLMSG_DONE) {
				f.done = 1;
				break;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);
				f.error = e->error ? -e->error : -1; /* -1: an ack */
				break;
			}
			if (h->nlmsg_type == RTM_NEWLINK) {
				struct ifinfomsg *i = NLMSG_DATA(h);
				if (i->ifi_index == 1)
					f.idx1 = 1;
			}
			if (h->nlmsg_type == RTM_NEWADDR) {
				struct ifaddrmsg *a = NLMSG_DATA(h);
				int len = (int)IFA_PAYLOAD(h);
				for (struct rtattr *r = IFA_RTA(a); RTA_OK(r, len); r = RTA_NEXT(r, len))
					if (a->ifa_index == 1 && (r->rta_type == IFA_LOCAL || r->rta_type == IFA_ADDRESS) &&
					    rta_is(r, a->ifa_family)) {
						f.self = 1;
						f.prefix8 = a->ifa_prefixlen == 8;
					}
			}
			if (!(h->nlmsg_flags & NLM_F_MULTI) && !wait_ack)
				single = true;
		}
	}
	return f;
}

static struct nlfacts nlread(int fd, uint32_t seq, uint32_t pid)
{
	return nlread_ack(fd, seq, pid, false);
}

static const char *errstr(int e)
{
	return e == -1 ? "ack" : e ? errname(e) : "none";
}

static void netlink(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	check("nl_socket", "%s", fd >= 0 ? "ok" : errname(errno));
	if (fd < 0)
		return;
	check("nl_sotype", "type=%s domain=%s proto=%s", getint(fd, SOL_SOCKET, SO_TYPE),
	      getint(fd, SOL_SOCKET, SO_DOMAIN), getint(fd, SOL_SOCKET, SO_PROTOCOL));
	check("nl_fdflags", "%s", fdflags(fd));
	{
		struct sockaddr_nl nl;
		socklen_t len = sizeof(nl) + 4;
		memset(&nl, 0xff, sizeof(nl));
		int x = getsockname(fd, (struct sockaddr *)&nl, &len);
		check("nl_getsockname_unbound", "%s len=%u fam=%d pid=%u", ok0(x), len, nl.nl_family, nl.nl_pid);
	}
	check("nl_setsockopt_ext_ack", "%s", setint(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1));
	check("nl_getsockopt_ext_ack", "%s", getint(fd, SOL_NETLINK, NETLINK_EXT_ACK));
	check("nl_setsockopt_unknown", "%s", setint(fd, SOL_NETLINK, 999, 1));
	check("nl_setsockopt_rcvbuf", "%s", setint(fd, SOL_SOCKET, SO_RCVBUF, 1 << 20));
	{
		struct sockaddr_in bad = { .sin_family = AF_INET };
		check("nl_bind_bad_family", "%s", ok0(bind(fd, (struct sockaddr *)&bad, sizeof(struct sockaddr_nl))));
		struct sockaddr_nl nl = { .nl_family = AF_NETLINK };
		check("nl_bind_short", "%s", ok0(bind(fd, (struct sockaddr *)&nl, 4)));
		check("nl_bind", "%s", ok0(bind(fd, (struct sockaddr *)&nl, sizeof(nl))));
		uint32_t pid = nlpid(fd);
		check("nl_portid", "nonzero=%d is_pid=%d", pid != 0, pid == (uint32_t)getpid());
		nl.nl_pid = pid + 1;
		check("nl_rebind_other_pid", "%s", ok0(bind(fd, (struct sockaddr *)&nl, sizeof(nl))));
	}
	uint32_t pid = nlpid(fd);
	{
		int fd2 = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE);
		struct sockaddr_nl nl = { .nl_family = AF_NETLINK };
		bind(fd2, (struct sockaddr *)&nl, sizeof(nl));
		uint32_t p2 = nlpid(fd2);
		check("nl_second_portid", "type=%s nonzero=%d differs=%d", getint(fd2, SOL_SOCKET, SO_TYPE), p2 != 0,
		      p2 != pid);
		close(fd2);
	}
	check("nl_poll_idle", "%s", revstr(waitev(fd, POLLIN | POLLOUT, 0)));

	struct nlfacts f;
	check("nl_send_link_dump", "%s", res(nlsend(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 42, AF_UNSPEC, 0)));
	check("nl_poll_reply", "%s", revstr(waitev(fd, POLLIN, 2000)));
	f = nlread(fd, 42, pid);
	check("nl_link_dump", "done=%d idx1=%d bad_seq=%d bad_pid=%d from_kernel=%d peek_trunc=%d err=%s", f.done,
	      f.idx1, f.bad_seq, f.bad_pid, f.from_kernel, f.peek_trunc, errstr(f.error));
	check("nl_poll_drained", "%s", revstr(waitev(fd, POLLIN, 0)));

	nlsend(fd, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 43, AF_INET, 0);
	f = nlread(fd, 43, pid);
	check("nl_addr4_dump", "done=%d self4=%d prefix8=%d bad_seq=%d err=%s", f.done, f.self, f.prefix8, f.bad_seq,
	      errstr(f.error));
	nlsend(fd, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 44, AF_INET6, 0);
	f = nlread(fd, 44, pid);
	check("nl_addr6_dump", "done=%d self6=%d bad_seq=%d err=%s", f.done, f.self, f.bad_seq, errstr(f.error));

	/* the single get, by index; an unknown index; a no-op with an ack */
	nlsend(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, 45, AF_UNSPEC, 1);
	f = nlread_ack(fd, 45, pid, true);
	check("nl_getlink_1", "idx1=%d bad_seq=%d err=%s", f.idx1, f.bad_seq, errstr(f.error));
	nlsend(fd, RTM_GETLINK, NLM_F_REQUEST, 46, AF_UNSPEC, 4000);
	f = nlread(fd, 46, pid);
	check("nl_getlink_bad", "idx1=%d bad_seq=%d err=%s", f.idx1, f.bad_seq, errstr(f.error));
	nlsend(fd, NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, 47, AF_UNSPEC, 0);
	f = nlread(fd, 47, pid);
	check("nl_noop_ack", "msgs=%d err=%s", f.msgs, errstr(f.error));
	nlsend(fd, NLMSG_NOOP, NLM_F_REQUEST, 48, AF_UNSPEC, 0);
	check("nl_noop_silent", "%s", revstr(waitev(fd, POLLIN, 100)));

	{
		/* to another port id: nobody there */
		char rq[NLMSG_SPACE(sizeof(struct ifinfomsg))];
		memset(rq, 0, sizeof(rq));
		struct nlmsghdr *h = (struct nlmsghdr *)rq;
		h->nlmsg_len = sizeof(rq);
		h->nlmsg_type = RTM_GETLINK;
		h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
		struct sockaddr_nl to = { .nl_family = AF_NETLINK, .nl_pid = 0x7ffffff0 };
		check("nl_sendto_nobody", "%s", res(sendto(fd, rq, sizeof(rq), 0, (struct sockaddr *)&to, sizeof(to))));
		struct sockaddr_in bad = { .sin_family = AF_INET };
		check("nl_sendto_bad_family", "%s",
		      res(sendto(fd, rq, sizeof(rq), 0, (struct sockaddr *)&bad, sizeof(struct sockaddr_nl))));
		/* write(), and the reply read with read() */
		h->nlmsg_seq = 49;
		check("nl_write", "%s", res(write(fd, rq, sizeof(rq))));
		f = nlread(fd, 49, pid);
		check("nl_write_reply", "done=%d idx1=%d", f.done, f.idx1);

		/* a child sends on the inherited socket, the parent reads */
		h->nlmsg_seq = 50;
		pid_t c = fork();
		if (c == 0)
			_exit(write(fd, rq, sizeof(rq)) == (ssize_t)sizeof(rq) ? 0 : 1);
		int st;
		waitpid(c, &st, 0);
		f = nlread(fd, 50, pid);
		check("nl_fork", "child=%d done=%d idx1=%d", WIFEXITED(st) ? WEXITSTATUS(st) : -1, f.done, f.idx1);

		/* many requests before reading any reply: single gets, then
		 * dumps (Linux runs one dump at a time: a pinned deviation) */
		int sent = 0, got = 0;
		for (uint32_t i = 0; i < 40; i++)
			sent += nlsend(fd, RTM_GETLINK, NLM_F_REQUEST, 100 + i, AF_UNSPEC, 1) > 0;
		for (uint32_t i = 0; i < 40; i++) {
			f = nlread(fd, 100 + i, pid);
			got += f.idx1 && !f.bad_seq && !f.error;
		}
		check("nl_pipelined_gets", "sent=%d got=%d", sent, got);
		sent = got = 0;
		for (uint32_t i = 0; i < 40; i++) {
			h->nlmsg_seq = 200 + i;
			sent += send(fd, rq, sizeof(rq), MSG_DONTWAIT) == (ssize_t)sizeof(rq);
		}
		for (uint32_t i = 0; i < 40; i++)
			got += nlread(fd, 200 + i, pid).done;
		while (waitev(fd, POLLIN, 100) != 0) {
			char junk[8192];
			if (recv(fd, junk, sizeof(junk), 0) <= 0)
				break;
		}
		check("nl_pipelined_dumps", "sent=%d done=%d", sent, got);

		/* sendmmsg of two requests, recvmmsg of the two replies */
		{
			char rq2[2][NLMSG_SPACE(sizeof(struct ifinfomsg))];
			struct mmsghdr mv[2];
			struct iovec iv[2];
			static char rb[2][8192];
			struct sockaddr_nl from[2];
			memset(mv, 0, sizeof(mv));
			for (int i = 0; i < 2; i++) {
				memcpy(rq2[i], rq, sizeof(rq));
				((struct nlmsghdr *)rq2[i])->nlmsg_seq = 300 + (uint32_t)i;
				((struct nlmsghdr *)rq2[i])->nlmsg_flags = NLM_F_REQUEST;
				((struct ifinfomsg *)NLMSG_DATA((struct nlmsghdr *)rq2[i]))->ifi_index = 1;
				iv[i].iov_base = rq2[i];
				iv[i].iov_len = sizeof(rq2[i]);
				mv[i].msg_hdr.msg_iov = &iv[i];
				mv[i].msg_hdr.msg_iovlen = 1;
			}
			int ns = sendmmsg(fd, mv, 2, 0);
			memset(mv, 0, sizeof(mv));
			memset(from, 0xff, sizeof(from));
			for (int i = 0; i < 2; i++) {
				iv[i].iov_base = rb[i];
				iv[i].iov_len = sizeof(rb[i]);
				mv[i].msg_hdr.msg_iov = &iv[i];
				mv[i].msg_hdr.msg_iovlen = 1;
				mv[i].msg_hdr.msg_name = &from[i];
				mv[i].msg_hdr.msg_namelen = sizeof(from[i]);
			}
			waitev(fd, POLLIN, 2000);
			int nr = recvmmsg(fd, mv, 2, MSG_WAITFORONE, NULL);
			int ok = 0;
			for (int i = 0; i < nr && i < 2; i++) {
				struct nlmsghdr *rh = (struct nlmsghdr *)rb[i];
				ok += mv[i].msg_hdr.msg_namelen == sizeof(from[i]) && from[i].nl_pid == 0 &&
				      from[i].nl_family == AF_NETLINK && rh->nlmsg_seq == 300 + (uint32_t)i &&
				      rh->nlmsg_type == RTM_NEWLINK;
			}
			check("nl_mmsg", "sent=%s got=%s ok=%d", res(ns), res(nr), ok);
		}

		/* an inherited socket after exec: still netlink, same port id */
		{
			char fdnum[16], pidnum[16];
			snprintf(fdnum, sizeof(fdnum), "%d", fd);
			snprintf(pidnum, sizeof(pidnum), "%u", pid);
			int fl = fcntl(fd, F_GETFD);
			fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
			pid_t c2 = conf_fork();
			if (c2 == 0) {
				execl("/proc/self/exe", "ifaces", "--nl-exec-child", fdnum, pidnum, (char *)NULL);
				_exit(127);
			}
			check("nl_exec_child", "%d", waitchild(c2));
			fcntl(fd, F_SETFD, fl);
		}

		/* a dup'ed fd is the same socket */
		int d = dup(fd);
		h->nlmsg_seq = 51;
		check("nl_dup_send", "%s", res(send(d, rq, sizeof(rq), 0)));
		close(d);
		f = nlread(fd, 51, pid);
		check("nl_dup", "done=%d idx1=%d pid=%d", f.done, f.idx1, nlpid(fd) == pid);
	}
	close(fd);
}

/* nl_exec_child: in the exec'd program, the inherited netlink socket
 * argv[2] of port id argv[3] answers a dump. Exit status: 0 if so. */
static int nl_exec_child(char **argv)
{
	int fd = atoi(argv[2]);
	uint32_t pid = (uint32_t)strtoul(argv[3], NULL, 10);
	int dom = -1;
	socklen_t len = sizeof(dom);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &len) != 0 || dom != AF_NETLINK)
		return 3;
	if (nlpid(fd) != pid)
		return 4;
	if (nlsend(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 400, AF_UNSPEC, 0) <= 0)
		return 5;
	struct nlfacts f = nlread(fd, 400, pid);
	return f.done && f.idx1 && !f.bad_pid && f.from_kernel ? 0 : 6;
}

int main(int argc, char **argv)
{
	conf_init("ifaces");
	if (argc == 4 && strcmp(argv[1], "--nl-exec-child") == 0)
		return nl_exec_child(argv);
	netlink(); /* first: the first netlink socket's port id is the pid */
	ioctls();
	conf_done();
}
