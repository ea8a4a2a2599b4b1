/*
 * tcpopt.c - TCP socket options that describe a socket: TCP_INFO of
 * sockets that never connected (the constants of a fresh socket, a
 * listener, a refused one) and IP_PKTOPTIONS / IPV6_2292PKTOPTIONS, with
 * which a server (dnsmasq) learns the interface an accepted connection
 * arrived on. And TCP_CORK: what it holds back leaves at once when the
 * socket is uncorked, shut for writing or closed (nginx's tcp_nopush
 * closes corked sockets). And the keep-alive options, which the shim and
 * the seccomp supervisor set without waiting for the broker when Linux
 * cannot refuse the value: a read right after must see it, from any thread.
 *
 * Ports, addresses and times that vary are left out of the results; the
 * rest must be what Linux reports.
 */
#include "conf.h"

#include <pthread.h>
#include <sys/uio.h>
#include <time.h>

#define CANARY 0xAA

/* ----------------------------------------------------------- TCP_CORK -- */

/* CORK_FAST_MS: the bytes a cork held must arrive well before the 200 ms
 * a cork may hold them (Linux's timer, and netstack's), with slack for a
 * loaded machine. */
#define CORK_FAST_MS 150

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* corked writes 600 bytes to a corked s, ends with how (-1: close, else a
 * shutdown; 'u': uncork) and describes what c receives: the byte count,
 * whether EOF followed, and whether it all came within CORK_FAST_MS. For
 * a shutdown, also TCP_CORK as s reports it afterwards. */
static const char *corked(int how)
{
	int c, s;
	char buf[600], got[700];
	memset(buf, 'c', sizeof(buf));
	tcp_pair(AF_INET, &c, &s);
	setint(s, IPPROTO_TCP, TCP_CORK, 1);
	/* The connection is idle: nothing outstanding lets the bytes go. */
	usleep(20000);
	long long t0 = now_ms();
	writeall(s, buf, sizeof(buf));
	const char *after = "";
	if (how == 'u') {
		setint(s, IPPROTO_TCP, TCP_CORK, 0);
	} else if (how < 0) {
		close(s);
		s = -1;
	} else {
		shutdown(s, how);
		after = getint(s, IPPROTO_TCP, TCP_CORK);
	}
	size_t n = 0;
	bool eof = false;
	while (n < (how == 'u' ? sizeof(buf) : sizeof(got))) {
		if (!(waitev(c, POLLIN, 1000) & POLLIN))
			break;
		ssize_t r = read(c, got + n, sizeof(got) - n);
		if (r <= 0) {
			eof = r == 0;
			break;
		}
		n += r;
	}
	long long dt = now_ms() - t0;
	char *b = ring();
	snprintf(b, 256, "bytes=%zu eof=%d fast=%d%s%s", n, eof, dt < CORK_FAST_MS,
		 how >= 0 && how != 'u' ? " cork_after=" : "", after);
	if (dt >= CORK_FAST_MS)
		fprintf(stderr, "tcpopt: corked(%d): %lld ms\n", how, dt);
	close(c);
	if (s >= 0)
		close(s);
	return b;
}

/* ---------------------------------------------------------- TCP_INFO -- */

static uint32_t u32at(const unsigned char *b, size_t off)
{
	uint32_t v;
	memcpy(&v, b + off, 4);
	return v;
}

static uint64_t u64at(const unsigned char *b, size_t off)
{
	uint64_t v;
	memcpy(&v, b + off, 8);
	return v;
}

/* tcpinfo describes the fields of fd's TCP_INFO that do not depend on
 * time or on the route. full: also the MSS, path MTU and window fields,
 * which only a socket that never looked up a route has as constants. */
static const char *tcpinfo(int fd, bool full)
{
	unsigned char b[512];
	memset(b, 0, sizeof(b));
	socklen_t len = sizeof(b);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, b, &len) < 0)
		return res(-1);
	struct tcp_info ti;
	memcpy(&ti, b, sizeof(ti));
	static char r[1024]; /* longer than ring()'s; one use per check */
	int n = snprintf(r, sizeof(r),
			 "len=%u state=%u ca=%u retrans=%u probes=%u backoff=%u opts=%u wscale=%u/%u rto=%u ato=%u "
			 "unacked=%u sacked=%u lost=%u retr=%u fackets=%u rtt=%u rttvar=%u cwnd=%u reord=%u "
			 "rcv_rtt=%u total_retrans=%u",
			 (unsigned)len, ti.tcpi_state, ti.tcpi_ca_state, ti.tcpi_retransmits, ti.tcpi_probes,
			 ti.tcpi_backoff, ti.tcpi_options, ti.tcpi_snd_wscale, ti.tcpi_rcv_wscale, ti.tcpi_rto,
			 ti.tcpi_ato, ti.tcpi_unacked, ti.tcpi_sacked, ti.tcpi_lost, ti.tcpi_retrans,
			 ti.tcpi_fackets, ti.tcpi_rtt, ti.tcpi_rttvar, ti.tcpi_snd_cwnd, ti.tcpi_reordering,
			 ti.tcpi_rcv_rtt, ti.tcpi_total_retrans);
	if (full) {
		n += snprintf(r + n, sizeof(r) - n, " snd_mss=%u rcv_mss=%u pmtu=%u rcv_ssthresh=%u ssthresh=%u advmss=%u rcv_space=%u",
			      ti.tcpi_snd_mss, ti.tcpi_rcv_mss, ti.tcpi_pmtu, ti.tcpi_rcv_ssthresh,
			      ti.tcpi_snd_ssthresh, ti.tcpi_advmss, ti.tcpi_rcv_space);
		/* Linux's later fields (linux/tcp.h): pacing rates at 104 and
		 * 112 (~0 when unset), min_rtt at 148 (~0 until a sample),
		 * and from 152 on counters, all 0 on such a socket. */
		int nz = 0;
		for (size_t off = 152; off + 4 <= len; off += 4)
			nz += u32at(b, off) != 0;
		if (len >= 152)
			snprintf(r + n, sizeof(r) - n, " pacing=%s max_pacing=%s min_rtt=%s nonzero_after_152=%d",
				 u64at(b, 104) == ~0ull ? "~0" : "set", u64at(b, 112) == ~0ull ? "~0" : "set",
				 u32at(b, 148) == ~0u ? "~0" : u32at(b, 148) ? "set" : "0", nz);
	}
	return r;
}

/* ----------------------------------------------------- PKTOPTIONS ---- */

#ifndef IPV6_2292PKTOPTIONS
#define IPV6_2292PKTOPTIONS 6
#endif

/* pktopts reads IP_PKTOPTIONS (v6: IPV6_2292PKTOPTIONS) with a buffer of
 * blen bytes and describes the optlen and each control message. */
static const char *pktopts(int fd, int v6, size_t blen)
{
	unsigned char buf[256] __attribute__((aligned(8)));
	memset(buf, CANARY, sizeof(buf));
	socklen_t len = blen;
	int r = v6 ? getsockopt(fd, IPPROTO_IPV6, IPV6_2292PKTOPTIONS, buf, &len)
		   : getsockopt(fd, IPPROTO_IP, IP_PKTOPTIONS, buf, &len);
	if (r < 0)
		return res(-1);
	/* Bytes written: put_cmsg leaves the padding after each message as
	 * it was (no address or value here contains the canary byte). */
	int written = 0;
	for (size_t i = 0; i < sizeof(buf); i++)
		written += buf[i] != CANARY;
	char *b = ring();
	int o = snprintf(b, 256, "optlen=%u written=%d", (unsigned)len, written);
	size_t off = 0;
	while (off + sizeof(struct cmsghdr) <= len && o < 200) {
		struct cmsghdr h;
		memcpy(&h, buf + off, sizeof(h));
		size_t data = h.cmsg_len > len - off ? len - off : h.cmsg_len;
		data = data > CMSG_LEN(0) ? data - CMSG_LEN(0) : 0;
		const unsigned char *d = buf + off + CMSG_LEN(0);
		if (h.cmsg_level == IPPROTO_IP && h.cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			memset(&pi, 0, sizeof(pi));
			memcpy(&pi, d, data < sizeof(pi) ? data : sizeof(pi));
			struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr = pi.ipi_addr};
			struct sockaddr_in sd = {.sin_family = AF_INET, .sin_addr = pi.ipi_spec_dst};
			char h1[64];
			snprintf(h1, sizeof(h1), "%s", hoststr((struct sockaddr *)&sd));
			o += snprintf(b + o, 256 - o, " [IP_PKTINFO len=%zu ifindex=%d spec_dst=%s addr=%s]",
				      (size_t)h.cmsg_len, pi.ipi_ifindex, data >= 8 ? h1 : "-",
				      data >= 12 ? hoststr((struct sockaddr *)&a) : "-");
		} else if (h.cmsg_level == IPPROTO_IPV6 && h.cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			memset(&pi, 0, sizeof(pi));
			memcpy(&pi, d, data < sizeof(pi) ? data : sizeof(pi));
			struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = pi.ipi6_addr};
			o += snprintf(b + o, 256 - o, " [IPV6_PKTINFO len=%zu addr=%s ifindex=%u]", (size_t)h.cmsg_len,
				      data >= 16 ? hoststr((struct sockaddr *)&a) : "-", pi.ipi6_ifindex);
		} else {
			int v = 0;
			memcpy(&v, d, data < sizeof(v) ? data : sizeof(v));
			const char *name = h.cmsg_level == IPPROTO_IP && h.cmsg_type == IP_TTL     ? "IP_TTL"
					   : h.cmsg_level == IPPROTO_IP && h.cmsg_type == IP_TOS   ? "IP_TOS"
					   : h.cmsg_level == IPPROTO_IPV6 && h.cmsg_type == IPV6_HOPLIMIT ? "IPV6_HOPLIMIT"
					   : h.cmsg_level == IPPROTO_IPV6 && h.cmsg_type == IPV6_TCLASS   ? "IPV6_TCLASS"
													  : "?";
			o += snprintf(b + o, 256 - o, " [%s/%d/%d len=%zu value=%d]", name, h.cmsg_level, h.cmsg_type,
				      (size_t)h.cmsg_len, v);
		}
		if (h.cmsg_len < sizeof(struct cmsghdr))
			break;
		off += CMSG_ALIGN(h.cmsg_len);
	}
	return b;
}

/* accepted makes a connection to a listener of family fam (on SELF, or on
 * the wildcard address when any) whose options opts() set first; *c is the
 * client, the accepted socket is returned. */
static int accepted(int fam, bool any, int lopt_level, int lopt, int *c, int cfam)
{
	struct sockaddr_storage ss;
	int l = xsocket(fam, SOCK_STREAM);
	socklen_t len = any ? anyaddr(fam, 0, &ss) : selfaddr(fam, 0, &ss);
	if (bind(l, SA(&ss), len) < 0)
		die("bind listener");
	if (lopt)
		setint(l, lopt_level, lopt, 1);
	if (listen(l, 5) < 0)
		die("listen");
	*c = tcp_connect(cfam, localport(l));
	int s = accept(l, NULL, NULL);
	if (s < 0)
		die("accept");
	close(l);
	return s;
}

/* ------------------------------------------------- keep-alive options -- */

/* optseq appends to b (of size sz, holding o bytes) what setting option
 * (level, opt) of fd to each of the n values in turn and reading it back
 * at once gives: "name[RESULT=VALUE ...] ". Returns the new length. */
static size_t optseq(char *b, size_t sz, size_t o, const char *name, int fd, int level, int opt, const int *vals,
		     int n)
{
	o += snprintf(b + o, sz - o, "%s[", name);
	for (int i = 0; i < n && o < sz; i++) {
		const char *r = setint(fd, level, opt, vals[i]);
		o += snprintf(b + o, sz - o, "%s%s=%s", i ? " " : "", r, getint(fd, level, opt));
	}
	if (o < sz)
		o += snprintf(b + o, sz - o, "] ");
	return o;
}

/* keepalive describes what fd says to the keep-alive options set in and
 * out of Linux's ranges (1..32767 seconds, 1..127 probes). */
static const char *keepalive(int fd)
{
	static const int times[] = { 1, 32767, 0, 32768, -1, 75 };
	static const int counts[] = { 1, 127, 0, 128, 9 };
	static const int flags[] = { 1, 0, 7 };
	static char b[512]; /* not ring(): setint and getint take its buffers */
	size_t o = 0;
	o = optseq(b, sizeof(b), o, "keepalive", fd, SOL_SOCKET, SO_KEEPALIVE, flags, 3);
	o = optseq(b, sizeof(b), o, "idle", fd, IPPROTO_TCP, TCP_KEEPIDLE, times, 6);
	o = optseq(b, sizeof(b), o, "intvl", fd, IPPROTO_TCP, TCP_KEEPINTVL, times, 6);
	o = optseq(b, sizeof(b), o, "cnt", fd, IPPROTO_TCP, TCP_KEEPCNT, counts, 5);
	optseq(b, sizeof(b), o, "nodelay", fd, IPPROTO_TCP, TCP_NODELAY, flags, 3);
	return b;
}

#define KEEP_THREADS 4
#define KEEP_ROUNDS 300

struct keeper {
	int fd;
	int wrong; /* reads that did not see the value just set */
};

/* keeper sets TCP_KEEPIDLE and TCP_NODELAY on its own socket and reads
 * each back at once, while the other threads do the same on theirs. */
static void *keeper(void *arg)
{
	struct keeper *k = arg;
	for (int i = 0; i < KEEP_ROUNDS; i++) {
		int want = 1 + (i * 7 + k->fd) % 1000, got = -1, nd = i & 1;
		socklen_t l = sizeof(got);
		if (setsockopt(k->fd, IPPROTO_TCP, TCP_KEEPIDLE, &want, sizeof(want)) != 0 ||
		    getsockopt(k->fd, IPPROTO_TCP, TCP_KEEPIDLE, &got, &l) != 0 || got != want)
			k->wrong++;
		got = -1;
		l = sizeof(got);
		if (setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &nd, sizeof(nd)) != 0 ||
		    getsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &got, &l) != 0 || (got != 0) != (nd != 0))
			k->wrong++;
	}
	return NULL;
}

/* keepers runs KEEP_THREADS keepers, each on a connected socket of its own. */
static const char *keepers(void)
{
	struct keeper k[KEEP_THREADS];
	pthread_t th[KEEP_THREADS];
	int peers[KEEP_THREADS];
	for (int i = 0; i < KEEP_THREADS; i++) {
		tcp_pair(AF_INET, &k[i].fd, &peers[i]);
		k[i].wrong = 0;
	}
	for (int i = 0; i < KEEP_THREADS; i++)
		if (pthread_create(&th[i], NULL, keeper, &k[i]) != 0)
			die("pthread_create");
	int wrong = 0;
	for (int i = 0; i < KEEP_THREADS; i++) {
		pthread_join(th[i], NULL);
		wrong += k[i].wrong;
		close(k[i].fd);
		close(peers[i]);
	}
	char *b = ring();
	snprintf(b, 256, "wrong=%d", wrong);
	return b;
}

int main(void)
{
	conf_init("tcpopt");

	/* TCP_INFO of sockets that never connected. */
	{
		int f4 = xsocket(AF_INET, SOCK_STREAM);
		check("tcp_info_fresh4", "%s", tcpinfo(f4, true));
		int f6 = xsocket(AF_INET6, SOCK_STREAM);
		check("tcp_info_fresh6", "%s", tcpinfo(f6, true));
		int port;
		int b4 = bound(AF_INET, SOCK_STREAM, &port);
		check("tcp_info_bound4", "%s", tcpinfo(b4, true));
		int l4 = bound(AF_INET, SOCK_STREAM, NULL);
		listen(l4, 5);
		check("tcp_info_listen4", "%s", tcpinfo(l4, true));
		int l6 = bound(AF_INET6, SOCK_STREAM, NULL);
		listen(l6, 4096);
		check("tcp_info_listen6_4096", "%s", tcpinfo(l6, true));
		/* A connect refused (RST): the route's MSS and MTU are known by
		 * then, and differ between loopback and the emulated link. */
		int r4 = xsocket(AF_INET, SOCK_STREAM);
		struct sockaddr_storage ss;
		socklen_t len = selfaddr(AF_INET, closed_port(AF_INET), &ss);
		int rc = connect(r4, SA(&ss), len);
		check("tcp_info_refused4", "%s %s", res(rc), tcpinfo(r4, false));
		/* Short buffers get the first bytes, as everywhere. */
		struct tcp_info ti;
		memset(&ti, 0, sizeof(ti));
		socklen_t tl = 12;
		rc = getsockopt(f4, IPPROTO_TCP, TCP_INFO, &ti, &tl);
		check("tcp_info_fresh_short", "%s len=%u state=%u rto=%u", ok0(rc), (unsigned)tl, ti.tcpi_state,
		      ti.tcpi_rto);
		close(f4);
		close(f6);
		close(b4);
		close(l4);
		close(l6);
		close(r4);
	}

	/* IP_PKTOPTIONS (IPv4). */
	{
		int c, s;
		s = accepted(AF_INET, false, IPPROTO_IP, IP_PKTINFO, &c, AF_INET);
		check("pktopt4_inherited_flag", "%s", getint(s, IPPROTO_IP, IP_PKTINFO));
		check("pktopt4_listener_pktinfo", "%s", pktopts(s, 0, 256));
		check("pktopt4_short_len", "%s", pktopts(s, 0, CMSG_LEN(sizeof(struct in_pktinfo))));
		check("pktopt4_short_len_minus1", "%s", pktopts(s, 0, CMSG_LEN(sizeof(struct in_pktinfo)) - 1));
		check("pktopt4_short_hdr_minus1", "%s", pktopts(s, 0, CMSG_LEN(0) - 1));
		check("pktopt4_short_zero", "%s", pktopts(s, 0, 0));
		setint(c, IPPROTO_IP, IP_PKTINFO, 1);
		check("pktopt4_client_pktinfo", "%s", pktopts(c, 0, 256));
		close(c);
		close(s);

		/* dnsmasq's way: IP_PKTINFO set on the accepted socket. */
		s = accepted(AF_INET, true, 0, 0, &c, AF_INET);
		check("pktopt4_none", "%s", pktopts(s, 0, 256));
		setint(s, IPPROTO_IP, IP_PKTINFO, 1);
		check("pktopt4_set_after_accept", "%s", pktopts(s, 0, 256));
		setint(s, IPPROTO_IP, IP_RECVTTL, 1);
		setint(s, IPPROTO_IP, IP_RECVTOS, 1);
		check("pktopt4_ttl_tos", "%s", pktopts(s, 0, 256));
		check("pktopt4_ttl_tos_short", "%s",
		      pktopts(s, 0, CMSG_SPACE(sizeof(struct in_pktinfo)) + CMSG_LEN(sizeof(int))));
		setint(s, IPPROTO_IP, IP_PKTINFO, 0);
		check("pktopt4_ttl_tos_only", "%s", pktopts(s, 0, 256));
		close(c);
		close(s);

		int f = xsocket(AF_INET, SOCK_STREAM);
		setint(f, IPPROTO_IP, IP_PKTINFO, 1);
		check("pktopt4_fresh", "%s", pktopts(f, 0, 256));
		close(f);
		int u = bound(AF_INET, SOCK_DGRAM, NULL);
		setint(u, IPPROTO_IP, IP_PKTINFO, 1);
		check("pktopt4_udp", "%s", pktopts(u, 0, 256));
		close(u);
	}

	/* IPV6_2292PKTOPTIONS (IPv6), as dnsmasq uses it. */
	{
		int c, s;
		s = accepted(AF_INET6, false, 0, 0, &c, AF_INET6);
		check("pktopt6_none", "%s", pktopts(s, 1, 256));
		setint(s, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
		check("pktopt6_set_after_accept", "%s", pktopts(s, 1, 256));
		setint(s, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1);
		check("pktopt6_hoplimit", "%s", pktopts(s, 1, 256));
		check("pktopt6_short_len_minus1", "%s", pktopts(s, 1, CMSG_LEN(sizeof(struct in6_pktinfo)) - 1));
		close(c);
		close(s);

		s = accepted(AF_INET6, false, IPPROTO_IPV6, IPV6_RECVPKTINFO, &c, AF_INET6);
		check("pktopt6_inherited_flag", "%s", getint(s, IPPROTO_IPV6, IPV6_RECVPKTINFO));
		check("pktopt6_listener_pktinfo", "%s", pktopts(s, 1, 256));
		setint(c, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
		check("pktopt6_client_pktinfo", "%s", pktopts(c, 1, 256));
		close(c);
		close(s);

		/* A dual-stack listener's IPv4 connection. */
		s = accepted(AF_INET6, true, 0, 0, &c, AF_INET);
		setint(s, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
		check("pktopt6_mapped_set_after_accept", "%s", pktopts(s, 1, 256));
		close(c);
		close(s);

		int u = bound(AF_INET6, SOCK_DGRAM, NULL);
		setint(u, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
		check("pktopt6_udp", "%s", pktopts(u, 1, 256));
		close(u);
	}

	/* TCP_CORK: the held bytes leave at once when the cork goes. */
	check("cork_uncork_sends", "%s", corked('u'));
	check("cork_shutwr_sends_with_fin", "%s", corked(SHUT_WR));
	check("cork_close_sends_with_fin", "%s", corked(-1));

	/* Keep-alive options: set, then read back at once. */
	{
		int f = xsocket(AF_INET, SOCK_STREAM);
		check("keepalive_opts_fresh", "%s", keepalive(f));
		close(f);
		int c, s;
		tcp_pair(AF_INET6, &c, &s);
		check("keepalive_opts_client6", "%s", keepalive(c));
		check("keepalive_opts_accepted6", "%s", keepalive(s));
		close(c);
		close(s);
		check("keepalive_opts_threads", "%s", keepers());
	}

	conf_done();
}
