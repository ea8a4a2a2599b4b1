/* connect.c - connect(): refusal, EISCONN, non-blocking connect. */
#include "conf.h"

/* nbconnect starts a non-blocking connect to SELF:port; returns the fd and
 * stores connect's result text in *r. */
static int nbconnect(int fam, int port, const char **r)
{
	struct sockaddr_storage ss;
	int fd = xsocket(fam, SOCK_STREAM | SOCK_NONBLOCK);
	socklen_t len = selfaddr(fam, port, &ss);
	*r = ok0(connect(fd, SA(&ss), len));
	return fd;
}

/* again repeats connect on fd to SELF:port. */
static const char *again(int fd, int fam, int port)
{
	struct sockaddr_storage ss;
	socklen_t len = selfaddr(fam, port, &ss);
	return ok0(connect(fd, SA(&ss), len));
}

int main(void)
{
	conf_init("connect");
	struct sockaddr_storage ss, got;
	socklen_t len, glen;
	const char *r;

	for (int i = 0; i < 2; i++) {
		int fam = i ? AF_INET6 : AF_INET;
		int fd = xsocket(fam, SOCK_STREAM);
		len = selfaddr(fam, closed_port(fam), &ss);
		check(i ? "connect6_refused" : "connect4_refused", "%s", ok0(connect(fd, SA(&ss), len)));
		check(i ? "connect6_refused_so_error" : "connect4_refused_so_error", "%s",
		      soerr(fd));
		close(fd);
	}

	for (int i = 0; i < 2; i++) {
		int fam = i ? AF_INET6 : AF_INET;
		int port;
		int l = tcp_listener(fam, &port);
		int fd = xsocket(fam, SOCK_STREAM);
		glen = sizeof(got);
		check(i ? "getpeername6_before_connect" : "getpeername4_before_connect", "%s",
		      ok0(getpeername(fd, SA(&got), &glen)));
		len = selfaddr(fam, port, &ss);
		check(i ? "connect6_ok" : "connect4_ok", "%s", ok0(connect(fd, SA(&ss), len)));
		glen = sizeof(got);
		getsockname(fd, SA(&got), &glen);
		check(i ? "connect6_sockname" : "connect4_sockname", "%s len=%u", sastr(SA(&got), -1),
		      (unsigned)glen);
		glen = sizeof(got);
		getpeername(fd, SA(&got), &glen);
		check(i ? "connect6_peername" : "connect4_peername", "%s len=%u", sastr(SA(&got), port),
		      (unsigned)glen);
		check(i ? "connect6_eisconn" : "connect4_eisconn", "%s", ok0(connect(fd, SA(&ss), len)));
		close(fd);
		close(l);
	}

	{
		/* An unbound AF_INET socket connecting with an AF_INET6 address. */
		int port;
		int l = tcp_listener(AF_INET, &port);
		int fd = xsocket(AF_INET, SOCK_STREAM);
		len = selfaddr(AF_INET6, port, &ss);
		check("connect4_with_inet6_addr", "%s", ok0(connect(fd, SA(&ss), len)));
		len = selfaddr(AF_INET, port, &ss);
		check("connect4_short_addrlen", "%s", ok0(connect(fd, SA(&ss), 8)));
		close(fd);
		close(l);
	}

	{
		/* Non-blocking connect to a listener. */
		int port;
		int l = tcp_listener(AF_INET, &port);
		int fd = nbconnect(AF_INET, port, &r);
		check("nbconnect_listener", "%s", r);
		check("nbconnect_listener_poll", "%s", revstr(waitev(fd, POLLOUT, 5000)));
		check("nbconnect_listener_so_error", "%s", soerr(fd));
		/* Linux: the first connect() after completion returns 0, the next
		 * one EISCONN. */
		check("nbconnect_listener_again", "%s", again(fd, AF_INET, port));
		check("nbconnect_listener_third", "%s", again(fd, AF_INET, port));
		close(fd);
		close(l);
	}

	{
		/* Non-blocking connect to a closed port. */
		int port = closed_port(AF_INET);
		int fd = nbconnect(AF_INET, port, &r);
		check("nbconnect_closed", "%s", r);
		check("nbconnect_closed_poll", "%s", revstr(waitev(fd, POLLOUT, 5000)));
		check("nbconnect_closed_so_error", "%s", soerr(fd));
		check("nbconnect_closed_so_error_cleared", "%s", soerr(fd));
		close(fd);

		fd = nbconnect(AF_INET, port, &r);
		waitev(fd, POLLOUT, 5000);
		check("nbconnect_closed_again", "%s", again(fd, AF_INET, port));
		check("nbconnect_closed_again_so_error", "%s", soerr(fd));
		close(fd);

		fd = nbconnect(AF_INET6, closed_port(AF_INET6), &r);
		check("nbconnect6_closed", "%s %s", r, revstr(waitev(fd, POLLOUT, 5000)));
		check("nbconnect6_closed_so_error", "%s", soerr(fd));
		close(fd);
	}

	{
		/* A refused socket can connect again to a listener. */
		int port;
		int l = tcp_listener(AF_INET, &port);
		int fd = xsocket(AF_INET, SOCK_STREAM);
		len = selfaddr(AF_INET, closed_port(AF_INET), &ss);
		connect(fd, SA(&ss), len);
		len = selfaddr(AF_INET, port, &ss);
		check("connect_after_refused", "%s", ok0(connect(fd, SA(&ss), len)));
		close(fd);
		close(l);
	}

	for (int i = 0; i < 2; i++) {
		/* A listener's port is closed when close() returns: a connect
		 * right after it is refused, every time (the broker learns of
		 * a close from its end of the socket, a moment later; the
		 * shim's close waits for it). */
		int fam = i ? AF_INET6 : AF_INET, refused = 0;
		char other[64] = "";
		for (int n = 0; n < 50; n++) {
			int port;
			int l = tcp_listener(fam, &port);
			close(l);
			int fd = xsocket(fam, SOCK_STREAM);
			len = selfaddr(fam, port, &ss);
			r = ok0(connect(fd, SA(&ss), len));
			if (strcmp(r, "ECONNREFUSED") == 0)
				refused++;
			else {
				snprintf(other, sizeof(other), "%s", r);
				close(fd);
				break; /* each such round may cost a timeout */
			}
			close(fd);
		}
		check(i ? "connect6_after_listener_close" : "connect4_after_listener_close",
		      "refused %d of 50 %s", refused, other);
	}

	{
		/* AF_UNSPEC connect disconnects a TCP socket that never connected. */
		int fd = xsocket(AF_INET, SOCK_STREAM);
		struct sockaddr sa = {.sa_family = AF_UNSPEC};
		check("connect_unspec_unconnected", "%s", ok0(connect(fd, &sa, sizeof(sa))));
		close(fd);
	}

	conf_done();
}
