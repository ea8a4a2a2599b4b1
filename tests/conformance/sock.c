/* sock.c - socket() errors and socket options. */
#include "conf.h"

#include <linux/capability.h>
#include <sys/syscall.h>

/* net_admin_effective sets CAP_NET_ADMIN in this thread's effective set,
 * or clears it (on: only if permitted); returns whether it was there. */
static bool net_admin_effective(bool on)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
	if (syscall(SYS_capget, &h, d) != 0)
		return false;
	int i = CAP_TO_INDEX(CAP_NET_ADMIN);
	uint32_t m = CAP_TO_MASK(CAP_NET_ADMIN);
	bool had = d[i].effective & m;
	if (on)
		d[i].effective |= d[i].permitted & m;
	else
		d[i].effective &= ~m;
	syscall(SYS_capset, &h, d);
	return had;
}

#include <net/if.h>

/* sotype prints SO_TYPE/SO_DOMAIN/SO_PROTOCOL of a new socket. */
static void sotype(const char *name, int fam, int type)
{
	int fd = xsocket(fam, type);
	char *b = ring();
	snprintf(b, 256, "type=%s", getint(fd, SOL_SOCKET, SO_TYPE));
	check(name, "%s domain=%s proto=%s", b, getint(fd, SOL_SOCKET, SO_DOMAIN),
	      getint(fd, SOL_SOCKET, SO_PROTOCOL));
	close(fd);
}

/* bufsize sets a buffer size option and prints whether get >= set. */
static void bufsize(const char *name, int type, int opt)
{
	int fd = xsocket(AF_INET, type);
	int want = 65536, got = 0;
	socklen_t len = sizeof(got);
	const char *s = setint(fd, SOL_SOCKET, opt, want);
	int r = getsockopt(fd, SOL_SOCKET, opt, &got, &len);
	check(name, "set=%s get=%s ge=%d", s, ok0(r), got >= want);
	close(fd);
}

/* bufexact prints what getsockopt reports for a buffer size option: on a
 * new socket (set < 0 skips the set), or after setting it to set, which
 * Linux caps at net.core.[rw]mem_max, doubles and floors. */
static void bufexact(const char *name, int type, int opt, int set, int doset)
{
	int fd = xsocket(AF_INET, type);
	const char *s = doset ? setint(fd, SOL_SOCKET, opt, set) : "-";
	int got = 0;
	socklen_t len = sizeof(got);
	int r = getsockopt(fd, SOL_SOCKET, opt, &got, &len);
	check(name, "set=%s get=%s %d", s, ok0(r), got);
	close(fd);
}

int main(void)
{
	conf_init("sock");

	check("socket_bad_domain", "%s", res(socket(12345, SOCK_STREAM, 0)));
	check("socket_bad_type", "%s", res(socket(AF_INET, 99, 0)));
	check("socket_bad_proto_stream", "%s", res(socket(AF_INET, SOCK_STREAM, IPPROTO_UDP)));
	check("socket_bad_proto_dgram", "%s", res(socket(AF_INET6, SOCK_DGRAM, IPPROTO_TCP)));
	check("socket_bad_flags", "%s", res(socket(AF_INET, SOCK_STREAM | 0x40000000, 0)));

	{
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		check("socket_type_flags", "%s", fdflags(fd));
		/* All the file status flags, not just O_NONBLOCK. */
		check("socket_nonblock_getfl", "%#x", fcntl(fd, F_GETFL));
		close(fd);
		fd = xsocket(AF_INET6, SOCK_DGRAM);
		check("socket_default_flags", "%s", fdflags(fd));
		close(fd);
	}

	sotype("so_type_tcp4", AF_INET, SOCK_STREAM);
	sotype("so_type_udp4", AF_INET, SOCK_DGRAM);
	sotype("so_type_tcp6", AF_INET6, SOCK_STREAM);
	sotype("so_type_udp6", AF_INET6, SOCK_DGRAM);

	{
		int port;
		int fd = bound(AF_INET, SOCK_STREAM, &port);
		const char *before = getint(fd, SOL_SOCKET, SO_ACCEPTCONN);
		listen(fd, 4);
		check("so_acceptconn", "before=%s after=%s", before, getint(fd, SOL_SOCKET, SO_ACCEPTCONN));
		close(fd);
	}

	{
		int fd = xsocket(AF_INET, SOCK_STREAM);
		const char *def = getint(fd, IPPROTO_TCP, TCP_NODELAY);
		const char *set = setint(fd, IPPROTO_TCP, TCP_NODELAY, 1);
		check("tcp_nodelay", "default=%s set=%s get=%s", def, set,
		      strcmp(getint(fd, IPPROTO_TCP, TCP_NODELAY), "0") ? "on" : "off");
		setint(fd, IPPROTO_TCP, TCP_NODELAY, 0);
		check("tcp_nodelay_clear", "%s", getint(fd, IPPROTO_TCP, TCP_NODELAY));

		def = getint(fd, SOL_SOCKET, SO_KEEPALIVE);
		set = setint(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
		check("so_keepalive", "default=%s set=%s get=%s", def, set,
		      strcmp(getint(fd, SOL_SOCKET, SO_KEEPALIVE), "0") ? "on" : "off");

		def = getint(fd, SOL_SOCKET, SO_REUSEADDR);
		set = setint(fd, SOL_SOCKET, SO_REUSEADDR, 1);
		check("so_reuseaddr", "default=%s set=%s get=%s", def, set,
		      strcmp(getint(fd, SOL_SOCKET, SO_REUSEADDR), "0") ? "on" : "off");

		check("so_error_fresh", "%s", getint(fd, SOL_SOCKET, SO_ERROR));
		check("so_rcvlowat_default", "%s", getint(fd, SOL_SOCKET, SO_RCVLOWAT));

		struct linger lg = {.l_onoff = 7, .l_linger = 7};
		socklen_t len = sizeof(lg);
		int r = getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len);
		check("so_linger_default", "%s onoff=%d linger=%d len=%u", ok0(r), lg.l_onoff, lg.l_linger,
		      (unsigned)len);
		lg.l_onoff = 1;
		lg.l_linger = 5;
		r = setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		memset(&lg, 0, sizeof(lg));
		len = sizeof(lg);
		getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len);
		check("so_linger_set", "%s onoff=%d linger=%d", ok0(r), lg.l_onoff != 0, lg.l_linger);

		check("so_bad_optname", "%s", getint(fd, SOL_SOCKET, 9999));
		{
			/* sshd asks SO_BINDTODEVICE of every connection (its VRF):
			 * an unbound socket answers with nothing. */
			char dev[IFNAMSIZ] = "x";
			socklen_t dl = sizeof(dev);
			int r = getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &dl);
			check("so_bindtodevice_unbound", "%s len=%u", ok0(r), dl);
			r = setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "nosuchdev0", 10);
			check("so_bindtodevice_unknown", "%s", res(r));
			r = setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "", 0);
			check("so_bindtodevice_clear", "%s", res(r));
		}
		check("tcp_v6only_on_inet", "%s", getint(fd, IPPROTO_IPV6, IPV6_V6ONLY));
		set = setint(fd, IPPROTO_IP, IP_TTL, 20);
		check("ip_ttl_set", "set=%s get=%s", set, getint(fd, IPPROTO_IP, IP_TTL));
		check("ip_ttl_bad", "%s", setint(fd, IPPROTO_IP, IP_TTL, 256));
		check("ip_ttl_default_restore", "set=%s", setint(fd, IPPROTO_IP, IP_TTL, -1));
		check("ip_ttl_default", "%s", getint(fd, IPPROTO_IP, IP_TTL));
		set = setint(fd, IPPROTO_IP, IP_TOS, 0x10);
		check("ip_tos_set", "set=%s get=%s", set, getint(fd, IPPROTO_IP, IP_TOS));
		close(fd);
	}

	{
		/* The options Linux cannot refuse given an int, which the shim
		 * sets without waiting for the broker: each call still reads
		 * back what the last one set, and bad arguments still fail. */
		int fd = xsocket(AF_INET, SOCK_STREAM);
		const char *on = setint(fd, IPPROTO_TCP, TCP_CORK, 1);
		check("tcp_cork_set", "set=%s get=%s", on, getint(fd, IPPROTO_TCP, TCP_CORK));
		for (int i = 0; i < 100; i++) {
			setint(fd, IPPROTO_TCP, TCP_CORK, i & 1);
			setint(fd, IPPROTO_TCP, TCP_NODELAY, !(i & 1));
			setint(fd, SOL_SOCKET, SO_KEEPALIVE, i & 1);
		}
		check("tcp_cork_nodelay_keepalive_last", "cork=%s nodelay=%s keepalive=%s",
		      getint(fd, IPPROTO_TCP, TCP_CORK), getint(fd, IPPROTO_TCP, TCP_NODELAY),
		      getint(fd, SOL_SOCKET, SO_KEEPALIVE));
		short two = 1;
		check("tcp_cork_short", "%s", ok0(setsockopt(fd, IPPROTO_TCP, TCP_CORK, &two, sizeof(two))));
		check("tcp_nodelay_short", "%s", ok0(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &two, sizeof(two))));
		check("so_keepalive_null", "%s", ok0(setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, NULL, 0)));
		check("tcp_cork_bad_pointer", "%s", ok0(setsockopt(fd, IPPROTO_TCP, TCP_CORK, (void *)8, sizeof(int))));
		check("tcp_cork_after_errors", "%s", getint(fd, IPPROTO_TCP, TCP_CORK));
		close(fd);
	}

	{
		int fd = xsocket(AF_INET, SOCK_DGRAM);
		check("tcp_nodelay_on_udp", "%s", getint(fd, IPPROTO_TCP, TCP_NODELAY));
		close(fd);
	}

	bufsize("so_rcvbuf_tcp", SOCK_STREAM, SO_RCVBUF);
	bufsize("so_sndbuf_tcp", SOCK_STREAM, SO_SNDBUF);
	bufsize("so_rcvbuf_udp", SOCK_DGRAM, SO_RCVBUF);
	bufsize("so_sndbuf_udp", SOCK_DGRAM, SO_SNDBUF);
	/* The machine's sysctls, as Linux reports them: defaults
	 * (net.ipv4.tcp_[rw]mem, net.core.[rw]mem_default), the cap at
	 * twice [rw]mem_max, the floor, and a negative value taken as
	 * unsigned (so capped). */
	bufexact("so_rcvbuf_tcp_default", SOCK_STREAM, SO_RCVBUF, 0, 0);
	bufexact("so_sndbuf_tcp_default", SOCK_STREAM, SO_SNDBUF, 0, 0);
	bufexact("so_rcvbuf_udp_default", SOCK_DGRAM, SO_RCVBUF, 0, 0);
	bufexact("so_sndbuf_udp_default", SOCK_DGRAM, SO_SNDBUF, 0, 0);
	bufexact("so_rcvbuf_udp_64m", SOCK_DGRAM, SO_RCVBUF, 64 << 20, 1);
	bufexact("so_sndbuf_tcp_64m", SOCK_STREAM, SO_SNDBUF, 64 << 20, 1);
	bufexact("so_rcvbuf_tcp_1", SOCK_STREAM, SO_RCVBUF, 1, 1);
	bufexact("so_sndbuf_udp_1", SOCK_DGRAM, SO_SNDBUF, 1, 1);
	bufexact("so_rcvbuf_tcp_neg", SOCK_STREAM, SO_RCVBUF, -1, 1);

	{
		/* SO_*BUFFORCE needs CAP_NET_ADMIN: EPERM without it (after the
		 * length check), as a process that dropped it sees. The
		 * capability comes back afterwards where it is permitted (root:
		 * the forced size, past net.core.rmem_max; else EPERM again). */
		int fd = xsocket(AF_INET, SOCK_DGRAM);
		bool had = net_admin_effective(false);
		short two = 1;
		check("so_rcvbufforce_no_cap", "%s", setint(fd, SOL_SOCKET, SO_RCVBUFFORCE, 1 << 20));
		check("so_sndbufforce_no_cap", "%s", setint(fd, SOL_SOCKET, SO_SNDBUFFORCE, 1 << 20));
		check("so_rcvbufforce_no_cap_short", "%s",
		      ok0(setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &two, sizeof(two))));
		check("so_rcvbufforce_no_cap_get", "%s", getint(fd, SOL_SOCKET, SO_RCVBUF));
		net_admin_effective(had);
		const char *set = setint(fd, SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20);
		check("so_rcvbufforce_cap", "had=%d set=%s get=%s", had, set, getint(fd, SOL_SOCKET, SO_RCVBUF));
		close(fd);
	}

	{
		int fd = xsocket(AF_INET6, SOCK_STREAM);
		const char *def = getint(fd, IPPROTO_IPV6, IPV6_V6ONLY);
		const char *set = setint(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
		check("ipv6_v6only", "default=%s set=%s get=%s", def, set, getint(fd, IPPROTO_IPV6, IPV6_V6ONLY));
		set = setint(fd, IPPROTO_IPV6, IPV6_TCLASS, 0x20);
		check("ipv6_tclass_set", "set=%s get=%s", set, getint(fd, IPPROTO_IPV6, IPV6_TCLASS));
		/* After bind, IPV6_V6ONLY can no longer change. */
		struct sockaddr_storage ss;
		socklen_t len = selfaddr(AF_INET6, 0, &ss);
		bind(fd, SA(&ss), len);
		check("ipv6_v6only_after_bind", "%s", setint(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0));
		close(fd);
	}

	{
		int p[2];
		if (pipe(p) < 0)
			die("pipe");
		check("setsockopt_notsock", "%s", setint(p[0], SOL_SOCKET, SO_REUSEADDR, 1));
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		check("getsockname_notsock", "%s", ok0(getsockname(p[0], SA(&ss), &len)));
		close(p[0]);
		close(p[1]);
		check("getsockname_badfd", "%s", ok0(getsockname(p[0], SA(&ss), &len)));
	}

	conf_done();
}
