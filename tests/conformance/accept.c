/* accept.c - accept()/accept4(), getsockname/getpeername semantics. */
#include "conf.h"

int main(void)
{
	conf_init("accept");
	struct sockaddr_storage got;
	socklen_t glen;

	{
		int fd = xsocket(AF_INET, SOCK_STREAM);
		check("accept_unbound", "%s", res(accept(fd, NULL, NULL)));
		close(fd);
		int port;
		fd = bound(AF_INET, SOCK_STREAM, &port);
		check("accept_bound_not_listening", "%s", res(accept(fd, NULL, NULL)));
		close(fd);
		fd = bound(AF_INET, SOCK_DGRAM, &port);
		check("accept_udp", "%s", res(accept(fd, NULL, NULL)));
		close(fd);
	}

	{
		int port;
		int l = tcp_listener(AF_INET, &port);
		fcntl(l, F_SETFL, O_NONBLOCK);
		check("accept_nonblock_empty", "%s", res(accept(l, NULL, NULL)));
		check("accept4_nonblock_flag_empty", "%s", res(accept4(l, NULL, NULL, SOCK_NONBLOCK)));
		check("accept4_bad_flags", "%s", res(accept4(l, NULL, NULL, 0x40000000)));
		int c = tcp_connect(AF_INET, port);
		check("listener_poll_pending", "%s", revstr(waitev(l, POLLIN | POLLOUT, 5000)));
		/* accept() does not inherit O_NONBLOCK from the listener. */
		glen = sizeof(got);
		int s = accept(l, SA(&got), &glen);
		check("accept_nonblock_listener", "%s %s", s < 0 ? res(s) : "ok", fdflags(s));
		check("accept_peer_addr", "%s len=%u", sastr(SA(&got), localport(c)), (unsigned)glen);
		glen = sizeof(got);
		getsockname(s, SA(&got), &glen);
		check("accepted_sockname", "%s", sastr(SA(&got), port));
		glen = sizeof(got);
		getpeername(s, SA(&got), &glen);
		check("accepted_peername", "%s", sastr(SA(&got), localport(c)));
		check("accepted_so_acceptconn", "%s", getint(s, SOL_SOCKET, SO_ACCEPTCONN));
		close(s);
		close(c);

		c = tcp_connect(AF_INET, port);
		waitev(l, POLLIN, 5000);
		s = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		check("accept4_nonblock_cloexec", "%s", fdflags(s));
		check("accept4_nonblock_getfl", "%#x", fcntl(s, F_GETFL));
		check("accept4_nonblock_recv", "%s", res(recv(s, &glen, 1, 0)));
		close(s);
		close(c);

		c = tcp_connect(AF_INET, port);
		waitev(l, POLLIN, 5000);
		s = accept4(l, NULL, NULL, 0);
		check("accept4_no_flags", "%s", fdflags(s));
		close(s);
		close(c);

		/* A short addrlen truncates the address but reports its size. */
		c = tcp_connect(AF_INET, port);
		waitev(l, POLLIN, 5000);
		struct sockaddr_in sin;
		memset(&sin, 0xee, sizeof(sin));
		glen = 4;
		s = accept(l, (struct sockaddr *)&sin, &glen);
		check("accept_short_addrlen", "%s len=%u family=%s port=%s rest_untouched=%d", s < 0 ? res(s) : "ok",
		      (unsigned)glen, sin.sin_family == AF_INET ? "AF_INET" : "?",
		      ntohs(sin.sin_port) == localport(c) ? "expected" : "WRONG", sin.sin_addr.s_addr == 0xeeeeeeee);
		close(s);
		close(c);
		close(l);
	}

	{
		/* IPv6 accept */
		int port;
		int l = tcp_listener(AF_INET6, &port);
		int c = tcp_connect(AF_INET6, port);
		glen = sizeof(got);
		int s = accept(l, SA(&got), &glen);
		check("accept6_peer_addr", "%s len=%u", sastr(SA(&got), localport(c)), (unsigned)glen);
		close(s);
		close(c);
		close(l);
	}

	{
		/* An IPv4 client accepted by a dual-stack IPv6 wildcard listener. */
		int l = xsocket(AF_INET6, SOCK_STREAM);
		struct sockaddr_storage ss;
		socklen_t len = anyaddr(AF_INET6, 0, &ss);
		bind(l, SA(&ss), len);
		listen(l, 4);
		int port = localport(l);
		int c = tcp_connect(AF_INET, port);
		glen = sizeof(got);
		int s = accept(l, SA(&got), &glen);
		check("accept_dualstack_v4_peer", "%s len=%u", sastr(SA(&got), localport(c)), (unsigned)glen);
		glen = sizeof(got);
		getsockname(s, SA(&got), &glen);
		check("accept_dualstack_v4_sockname", "%s", sastr(SA(&got), port));
		close(s);
		close(c);
		close(l);
	}

	{
		/* Options set on the listener are inherited by accepted sockets. */
		int port;
		int l = tcp_listener(AF_INET, &port);
		setint(l, IPPROTO_TCP, TCP_NODELAY, 1);
		setint(l, SOL_SOCKET, SO_KEEPALIVE, 1);
		int c = tcp_connect(AF_INET, port);
		int s = accept(l, NULL, NULL);
		const char *nd = getint(s, IPPROTO_TCP, TCP_NODELAY);
		check("accept_inherits", "nodelay=%s keepalive=%s", strcmp(nd, "0") ? "on" : "off",
		      strcmp(getint(s, SOL_SOCKET, SO_KEEPALIVE), "0") ? "on" : "off");
		close(s);
		close(c);
		close(l);
	}

	{
		int fd = xsocket(AF_INET, SOCK_STREAM);
		glen = sizeof(got);
		memset(&got, 0xee, sizeof(got));
		int r = getsockname(fd, SA(&got), &glen);
		check("getsockname_unbound4", "%s %s len=%u", ok0(r), sastr(SA(&got), -1), (unsigned)glen);
		close(fd);
		fd = xsocket(AF_INET6, SOCK_DGRAM);
		glen = sizeof(got);
		r = getsockname(fd, SA(&got), &glen);
		check("getsockname_unbound6", "%s %s len=%u", ok0(r), sastr(SA(&got), -1), (unsigned)glen);
		close(fd);

		int port;
		fd = tcp_listener(AF_INET, &port);
		glen = sizeof(got);
		check("getpeername_listener", "%s", ok0(getpeername(fd, SA(&got), &glen)));
		struct sockaddr_in sin;
		memset(&sin, 0xee, sizeof(sin));
		glen = 4;
		r = getsockname(fd, (struct sockaddr *)&sin, &glen);
		check("getsockname_short_addrlen", "%s len=%u family=%s port=%s rest_untouched=%d", ok0(r),
		      (unsigned)glen, sin.sin_family == AF_INET ? "AF_INET" : "?",
		      ntohs(sin.sin_port) == port ? "expected" : "WRONG", sin.sin_addr.s_addr == 0xeeeeeeee);
		glen = 0;
		r = getsockname(fd, (struct sockaddr *)&sin, &glen);
		check("getsockname_zero_addrlen", "%s len=%u", ok0(r), (unsigned)glen);
		int c = tcp_connect(AF_INET, port);
		glen = 2;
		memset(&sin, 0xee, sizeof(sin));
		r = getpeername(c, (struct sockaddr *)&sin, &glen);
		check("getpeername_short_addrlen", "%s len=%u family=%s port_untouched=%d", ok0(r), (unsigned)glen,
		      sin.sin_family == AF_INET ? "AF_INET" : "?", sin.sin_port == 0xeeee);
		close(c);
		close(fd);
	}

	conf_done();
}
