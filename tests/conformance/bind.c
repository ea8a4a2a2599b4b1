/* bind.c - bind() and listen() semantics, address reuse. */
#include "conf.h"

/* bindport binds fd to SELF:port of family fam; returns the bind result. */
static int bindport(int fd, int fam, int port)
{
	struct sockaddr_storage ss;
	socklen_t len = selfaddr(fam, port, &ss);
	return bind(fd, SA(&ss), len);
}

/* reusable makes a TCP socket with SO_REUSEADDR set to on. */
static int reusable(int fam, int on)
{
	int fd = xsocket(fam, SOCK_STREAM);
	if (on)
		setint(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	return fd;
}

/* The holders bind_beside tries: a TCP socket bound to port 0 of SELF4, of
 * PEER4, or of [::] with IPV6_V6ONLY. */
enum holder { HOLD_SELF4, HOLD_PEER4, HOLD_ANY6_V6ONLY };

/* bind_beside binds a socket of type to SELF4 on the port a holder socket
 * has, and returns bind's result (errno set). The first try uses port,
 * when not 0; each other one a new holder of kind hold. Natively another
 * program of the suite (run in parallel) may hold that port on 127.0.0.1:
 * up to 16 tries. A stack where the holder does own SELF4's port fails
 * every try. */
static int bind_beside(int port, enum holder hold, int type)
{
	int r = -1;
	for (int try = 0; try < 16 && r != 0; try++) {
		int h = -1;
		if (try > 0 || port == 0) {
			struct sockaddr_storage hs;
			socklen_t hl;
			if (hold == HOLD_ANY6_V6ONLY) {
				h = xsocket(AF_INET6, SOCK_STREAM);
				setint(h, IPPROTO_IPV6, IPV6_V6ONLY, 1);
				hl = anyaddr(AF_INET6, 0, &hs);
			} else {
				h = xsocket(AF_INET, SOCK_STREAM);
				hl = hold == HOLD_PEER4 ? peeraddr4(0, &hs) : selfaddr(AF_INET, 0, &hs);
			}
			bind(h, SA(&hs), hl);
			port = localport(h);
		}
		int b = xsocket(AF_INET, type);
		r = bindport(b, AF_INET, port);
		int e = errno;
		close(b);
		if (h >= 0)
			close(h);
		errno = e;
	}
	return r;
}

int main(void)
{
	conf_init("bind");
	struct sockaddr_storage ss, got;
	socklen_t len, glen;

	{
		int fd = xsocket(AF_INET, SOCK_STREAM);
		int r = bindport(fd, AF_INET, 0);
		glen = sizeof(got);
		getsockname(fd, SA(&got), &glen);
		check("bind_self4_port0", "%s %s len=%u", ok0(r), sastr(SA(&got), -1), (unsigned)glen);
		check("bind_twice", "%s", ok0(bindport(fd, AF_INET, 0)));
		int port = saport(SA(&got));
		int fd2 = xsocket(AF_INET, SOCK_STREAM);
		check("bind_inuse", "%s", ok0(bindport(fd2, AF_INET, port)));
		r = bind_beside(port, HOLD_SELF4, SOCK_DGRAM);
		check("bind_udp_same_port_as_tcp", "%s", ok0(r));
		close(fd2);
		close(fd);
		/* The port is free again once the only socket on it is closed. */
		fd = xsocket(AF_INET, SOCK_STREAM);
		check("bind_after_close", "%s", ok0(bindport(fd, AF_INET, port)));
		close(fd);
	}

	{
		int fd = xsocket(AF_INET6, SOCK_STREAM);
		int r = bindport(fd, AF_INET6, 0);
		glen = sizeof(got);
		getsockname(fd, SA(&got), &glen);
		check("bind_self6_port0", "%s %s len=%u", ok0(r), sastr(SA(&got), -1), (unsigned)glen);
		close(fd);
	}

	{
		int fd = xsocket(AF_INET, SOCK_STREAM);
		len = anyaddr(AF_INET, 0, &ss);
		int r = bind(fd, SA(&ss), len);
		glen = sizeof(got);
		getsockname(fd, SA(&got), &glen);
		check("bind_any4", "%s %s", ok0(r), sastr(SA(&got), -1));
		close(fd);
		fd = xsocket(AF_INET6, SOCK_STREAM);
		len = anyaddr(AF_INET6, 0, &ss);
		r = bind(fd, SA(&ss), len);
		glen = sizeof(got);
		getsockname(fd, SA(&got), &glen);
		check("bind_any6", "%s %s", ok0(r), sastr(SA(&got), -1));
		close(fd);
	}

	{
		/* Linux accepts AF_UNSPEC + INADDR_ANY on an AF_INET socket. */
		int fd = xsocket(AF_INET, SOCK_DGRAM);
		struct sockaddr_in sin = {.sin_family = AF_UNSPEC};
		int r = bind(fd, (struct sockaddr *)&sin, sizeof(sin));
		check("bind_unspec_any", "%s", ok0(r));
		close(fd);
		fd = xsocket(AF_INET, SOCK_DGRAM);
		sin.sin_addr = conf_addr4;
		check("bind_unspec_self", "%s", ok0(bind(fd, (struct sockaddr *)&sin, sizeof(sin))));
		close(fd);
	}

	{
		int fd = xsocket(AF_INET, SOCK_STREAM);
		len = selfaddr(AF_INET, 0, &ss);
		check("bind_short_addrlen4", "%s", ok0(bind(fd, SA(&ss), 8)));
		ss.ss_family = AF_INET6;
		check("bind_wrong_family4", "%s", ok0(bind(fd, SA(&ss), len)));
		close(fd);
		fd = xsocket(AF_INET6, SOCK_STREAM);
		len = selfaddr(AF_INET6, 0, &ss);
		check("bind_short_addrlen6", "%s", ok0(bind(fd, SA(&ss), 16)));
		ss.ss_family = AF_INET;
		check("bind_wrong_family6", "%s", ok0(bind(fd, SA(&ss), len)));
		close(fd);
	}

	{
		/* bind only, never send: the address must not be local. */
		int fd = xsocket(AF_INET, SOCK_STREAM);
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr = conf_nonlocal4};
		check("bind_nonlocal4", "%s", ok0(bind(fd, (struct sockaddr *)&sin, sizeof(sin))));
		close(fd);
		fd = xsocket(AF_INET, SOCK_DGRAM);
		check("bind_nonlocal4_udp", "%s", ok0(bind(fd, (struct sockaddr *)&sin, sizeof(sin))));
		close(fd);
	}

	{
		/* Both SO_REUSEADDR, neither listening: Linux allows the second
		 * bind, but only one of them may listen. */
		int port;
		int a = reusable(AF_INET, 1), b = reusable(AF_INET, 1);
		bindport(a, AF_INET, 0);
		port = localport(a);
		check("bind_reuseaddr_both_unlistened", "%s", ok0(bindport(b, AF_INET, port)));
		check("listen_first_of_reused", "%s", ok0(listen(a, 4)));
		check("listen_second_of_reused", "%s", ok0(listen(b, 4)));
		close(a);
		close(b);

		/* A listener holds its port even against SO_REUSEADDR. */
		a = reusable(AF_INET, 1);
		bindport(a, AF_INET, 0);
		port = localport(a);
		listen(a, 4);
		b = reusable(AF_INET, 1);
		check("bind_reuseaddr_vs_listener", "%s", ok0(bindport(b, AF_INET, port)));
		close(b);
		b = reusable(AF_INET, 0);
		check("bind_noreuse_vs_listener", "%s", ok0(bindport(b, AF_INET, port)));
		close(b);
		close(a);
	}

	{
		/* The server closes first, so its end of the connection lingers
		 * (FIN_WAIT/TIME_WAIT) on the listener's port after everything is
		 * closed. Rebinding that port needs SO_REUSEADDR. */
		int port;
		int l = reusable(AF_INET, 1);
		bindport(l, AF_INET, 0);
		port = localport(l);
		listen(l, 4);
		int c = tcp_connect(AF_INET, port);
		int s = accept(l, NULL, NULL);
		close(l);
		close(s);
		char buf[4];
		waitev(c, POLLIN, 5000);
		check("timewait_peer_eof", "%s", res(recv(c, buf, sizeof(buf), MSG_DONTWAIT)));
		close(c);
		usleep(50 * 1000);
		int b = reusable(AF_INET, 0);
		check("bind_timewait_noreuse", "%s", ok0(bindport(b, AF_INET, port)));
		close(b);
		b = reusable(AF_INET, 1);
		check("bind_timewait_reuseaddr", "%s", ok0(bindport(b, AF_INET, port)));
		check("listen_timewait_reuseaddr", "%s", ok0(listen(b, 4)));
		close(b);
	}

	{
		/* The same four-tuple again while the server's end of the last
		 * connection is in TIME_WAIT (the server closed first): the new
		 * SYN ends that TIME_WAIT and is accepted (RFC 6191; Linux's
		 * tcp_timewait_state_process), five times in a row, from a
		 * client port held with SO_REUSEADDR. */
		int port, cport = 0, ok = 0;
		int l = reusable(AF_INET, 1);
		bindport(l, AF_INET, 0);
		port = localport(l);
		listen(l, 4);
		for (int i = 0; i < 5; i++) {
			int c = reusable(AF_INET, 1);
			if (bindport(c, AF_INET, cport) != 0) {
				close(c);
				break;
			}
			cport = localport(c);
			struct sockaddr_storage to;
			socklen_t tl = selfaddr(AF_INET, port, &to);
			fcntl(c, F_SETFL, O_NONBLOCK);
			int r = connect(c, SA(&to), tl);
			if (r != 0 && errno == EINPROGRESS && waitev(c, POLLOUT, 3000) & POLLOUT)
				r = strcmp(soerr(c), "0") == 0 ? 0 : -1;
			int s = r == 0 ? accept(l, NULL, NULL) : -1;
			char b[1];
			if (s >= 0) {
				close(s);
				waitev(c, POLLIN, 3000);
				if (recv(c, b, 1, 0) == 0)
					ok++;
			}
			close(c);
			usleep(10 * 1000);
		}
		check("timewait_same_tuple_reconnect", "ok=%d", ok);
		close(l);
	}

	{
		/* Dual stack: a v6 wildcard socket (V6ONLY=0) owns the v4 port
		 * too; with V6ONLY=1 it does not. */
		int port;
		int a = xsocket(AF_INET6, SOCK_STREAM);
		len = anyaddr(AF_INET6, 0, &ss);
		bind(a, SA(&ss), len);
		port = localport(a);
		int b = xsocket(AF_INET, SOCK_STREAM);
		check("bind_v4_vs_dualstack_any6", "%s", ok0(bindport(b, AF_INET, port)));
		close(b);
		close(a);

		int r = bind_beside(0, HOLD_ANY6_V6ONLY, SOCK_STREAM);
		check("bind_v4_vs_v6only_any6", "%s", ok0(r));
	}

	{
		/* Another local address (natively any 127/8 address; under swrap
		 * any emulated host's): bind, listen, connect both ways. */
		int l = xsocket(AF_INET, SOCK_STREAM);
		len = peeraddr4(0, &ss);
		int r = bind(l, SA(&ss), len);
		glen = sizeof(got);
		getsockname(l, SA(&got), &glen);
		check("bind_peer4", "%s %s", ok0(r), sastr(SA(&got), -1));
		int port = saport(SA(&got));
		check("listen_peer4", "%s", ok0(listen(l, 4)));
		int c = xsocket(AF_INET, SOCK_STREAM);
		len = peeraddr4(port, &ss);
		check("connect_peer4", "%s", ok0(connect(c, SA(&ss), len)));
		int a = accept(l, NULL, NULL);
		glen = sizeof(got);
		getsockname(a, SA(&got), &glen);
		check("accepted_peer4_name", "%s", sastr(SA(&got), port));
		glen = sizeof(got);
		getpeername(a, SA(&got), &glen);
		check("accepted_peer4_peer", "%s", sastr(SA(&got), localport(c)));
		glen = sizeof(got);
		getpeername(c, SA(&got), &glen);
		check("connected_peer4_peer", "%s", sastr(SA(&got), port));
		char buf[4] = {0};
		writeall(c, "ping", 4);
		readall(a, buf, 4);
		writeall(a, buf, 4);
		check("peer4_echo", "%s", res(recv(c, buf, sizeof(buf), MSG_WAITALL)));
		close(a);
		close(c);

		/* Ports are per address: the same port on SELF is free, a second
		 * bind of PEER4:port is not. */
		int b = xsocket(AF_INET, SOCK_STREAM);
		check("bind_peer4_inuse", "%s", ok0(bind(b, SA(&ss), len)));
		close(b);
		r = bind_beside(port, HOLD_PEER4, SOCK_STREAM);
		check("bind_self4_port_of_peer4", "%s", ok0(r));

		/* A socket bound to PEER4 connects from it. */
		int sp;
		int sl = tcp_listener(AF_INET, &sp);
		c = xsocket(AF_INET, SOCK_STREAM);
		len = peeraddr4(0, &ss);
		bind(c, SA(&ss), len);
		struct sockaddr_storage dst;
		socklen_t dlen = selfaddr(AF_INET, sp, &dst);
		check("connect_from_peer4", "%s", ok0(connect(c, SA(&dst), dlen)));
		a = accept(sl, NULL, NULL);
		glen = sizeof(got);
		getpeername(a, SA(&got), &glen);
		check("accepted_from_peer4_peer", "%s", sastr(SA(&got), localport(c)));
		glen = sizeof(got);
		getsockname(c, SA(&got), &glen);
		check("connected_from_peer4_name", "%s", sastr(SA(&got), -1));
		close(a);
		close(c);
		close(sl);

		/* Options set before bind stay set, also where bind moved the
		 * socket (under swrap, to another host's netstack), and after a
		 * bind that failed. */
		for (int i = 0; i < 2; i++) {
			b = xsocket(AF_INET, SOCK_STREAM);
			setint(b, SOL_SOCKET, SO_KEEPALIVE, 1);
			setint(b, SOL_SOCKET, SO_KEEPALIVE, 0);
			setint(b, SOL_SOCKET, SO_KEEPALIVE, 1);
			setint(b, IPPROTO_TCP, TCP_NODELAY, 1);
			setint(b, IPPROTO_TCP, TCP_KEEPIDLE, 77);
			setint(b, IPPROTO_IP, IP_TTL, 33);
			setint(b, IPPROTO_IP, IP_TOS, 0x10);
			setint(b, SOL_SOCKET, SO_RCVBUF, 50000);
			if (i == 1) {
				len = peeraddr4(port, &ss); /* l's port: in use */
				check("bind_peer4_inuse_with_opts", "%s", ok0(bind(b, SA(&ss), len)));
			}
			len = peeraddr4(0, &ss);
			r = bind(b, SA(&ss), len);
			check(i ? "opts_after_failed_bind_peer4" : "opts_after_bind_peer4", "%s keepalive=%s nodelay=%s keepidle=%s ttl=%s tos=%s rcvbuf=%s",
			      ok0(r), getint(b, SOL_SOCKET, SO_KEEPALIVE), getint(b, IPPROTO_TCP, TCP_NODELAY),
			      getint(b, IPPROTO_TCP, TCP_KEEPIDLE), getint(b, IPPROTO_IP, IP_TTL),
			      getint(b, IPPROTO_IP, IP_TOS), getint(b, SOL_SOCKET, SO_RCVBUF));
			close(b);
		}
		close(l);

		/* Under swrap the wildcard is the default host's address only:
		 * it neither holds PEER4's port nor answers for PEER4. */
		a = xsocket(AF_INET, SOCK_STREAM);
		len = anyaddr(AF_INET, 0, &ss);
		bind(a, SA(&ss), len);
		port = localport(a);
		b = xsocket(AF_INET, SOCK_STREAM);
		len = peeraddr4(port, &ss);
		check("bind_peer4_vs_any4", "%s", ok0(bind(b, SA(&ss), len)));
		close(b);
		listen(a, 4);
		c = xsocket(AF_INET, SOCK_STREAM);
		check("connect_peer4_any4_listener", "%s", ok0(connect(c, SA(&ss), len)));
		close(c);
		close(a);

		/* 127.0.0.200: a loopback address natively, no emulated host
		 * (1..64) under swrap. */
		b = xsocket(AF_INET, SOCK_STREAM);
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f0000c8)};
		check("bind_loopback_nonhost4", "%s", ok0(bind(b, (struct sockaddr *)&sin, sizeof(sin))));
		close(b);
	}

	{
		int fd = xsocket(AF_INET, SOCK_STREAM);
		check("listen_autobind", "%s", ok0(listen(fd, 4)));
		glen = sizeof(got);
		getsockname(fd, SA(&got), &glen);
		check("listen_autobind_name", "%s", sastr(SA(&got), -1));
		check("listen_again", "%s", ok0(listen(fd, 8)));
		check("bind_after_listen", "%s", ok0(bindport(fd, AF_INET, 0)));
		close(fd);

		int u = xsocket(AF_INET, SOCK_DGRAM);
		check("listen_udp", "%s", ok0(listen(u, 4)));
		close(u);

		int c, s;
		tcp_pair(AF_INET, &c, &s);
		check("listen_connected", "%s", ok0(listen(c, 4)));
		check("bind_connected", "%s", ok0(bindport(c, AF_INET, 0)));
		close(c);
		close(s);
	}

	conf_done();
}
