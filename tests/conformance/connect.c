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

/* nbsend_echo writes 32 KiB on the connected non-blocking fd in one send,
 * shuts it for writing, and has the listener l's next connection read all
 * of it: "sent=BUCKET got=N hash=OK|BAD". A send buffer still shrunk for
 * the connect would take only a few KiB. */
static const char *nbsend_echo(int fd, int l)
{
	static unsigned char out[32768], in[40000];
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (unsigned char)(i * 7 + 3);
	ssize_t n = send(fd, out, sizeof(out), MSG_DONTWAIT);
	const char *bucket = n < 0 ? errname(errno) : n >= 16384 ? ">=16K" : "<16K";
	for (size_t put = n > 0 ? (size_t)n : 0; put < sizeof(out);) {
		ssize_t k = send(fd, out + put, sizeof(out) - put, MSG_DONTWAIT);
		if (k > 0)
			put += (size_t)k;
		else if (k < 0 && errno == EAGAIN)
			waitev(fd, POLLOUT, 5000);
		else
			break;
	}
	shutdown(fd, SHUT_WR);
	int a = accept(l, NULL, NULL);
	if (a < 0)
		return res(-1);
	size_t got = 0;
	for (;;) {
		ssize_t k = read(a, in + got, sizeof(in) - got);
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	close(a);
	char *b = ring();
	snprintf(b, 256, "sent=%s got=%zu hash=%s", bucket, got,
		 got == sizeof(out) && memcmp(in, out, got) == 0 ? "OK" : "BAD");
	return b;
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

	/* What getsockname says of a socket whose connect was refused:
	 * Linux forgets the address it chose (the wildcard again) but not
	 * the port, unless the program bound the address itself; a bound
	 * port survives the refusal too. Unbound, bound to the wildcard and
	 * bound to SELF, each with port 0, and then connected again. */
	for (int i = 0; i < 6; i++) {
		int fam = i % 2 ? AF_INET6 : AF_INET, how = i / 2;
		static const char *const hows[] = { "unbound", "anybound", "selfbound" };
		char name[64];
		int fd = xsocket(fam, SOCK_STREAM), bport = -1;
		if (how) {
			len = how == 1 ? anyaddr(fam, 0, &ss) : selfaddr(fam, 0, &ss);
			if (bind(fd, SA(&ss), len) != 0)
				die("bind: %s", strerror(errno));
			glen = sizeof(got);
			getsockname(fd, SA(&got), &glen);
			bport = saport(SA(&got));
		}
		len = selfaddr(fam, closed_port(fam), &ss);
		r = ok0(connect(fd, SA(&ss), len));
		glen = sizeof(got);
		int gr = getsockname(fd, SA(&got), &glen);
		snprintf(name, sizeof(name), "refused%d_sockname_%s", fam == AF_INET ? 4 : 6, hows[how]);
		check(name, "%s %s %s len=%u", r, ok0(gr), sastr(SA(&got), bport), (unsigned)glen);
		r = ok0(connect(fd, SA(&ss), len));
		glen = sizeof(got);
		gr = getsockname(fd, SA(&got), &glen);
		snprintf(name, sizeof(name), "refused%d_again_sockname_%s", fam == AF_INET ? 4 : 6, hows[how]);
		check(name, "%s %s %s", r, ok0(gr), sastr(SA(&got), -1));
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
		/* and that third connect() wrote nothing into the connection */
		check("nbconnect_listener_data", "%s", nbsend_echo(fd, l));
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
		/* ab and apr: poll for POLLOUT, then connect() again for the
		 * outcome (no SO_ERROR). The connection then carries exactly
		 * what is written, and takes a large write at once. */
		int port;
		int l = tcp_listener(AF_INET, &port);
		int fd = nbconnect(AF_INET, port, &r);
		const char *rev = revstr(waitev(fd, POLLOUT, 5000));
		check("nbconnect_poll_again", "%s %s %s", r, rev, again(fd, AF_INET, port));
		check("nbconnect_poll_again_third", "%s", again(fd, AF_INET, port));
		check("nbconnect_poll_again_data", "%s", nbsend_echo(fd, l));
		close(fd);

		/* Refused, told by connect() again; then a new attempt on the
		 * same socket, told the same way. */
		int closed = closed_port(AF_INET);
		fd = nbconnect(AF_INET, closed, &r);
		/* POLLOUT only: swrap's ERR|HUP differ (nbconnect6_closed) */
		rev = revstr(waitev(fd, POLLOUT, 5000) & POLLOUT);
		check("nbconnect_refused_again", "%s %s %s", r, rev, again(fd, AF_INET, closed));
		r = again(fd, AF_INET, port);
		rev = revstr(waitev(fd, POLLOUT, 5000));
		check("nbconnect_refused_then_listener", "%s %s %s", r, rev, again(fd, AF_INET, port));
		check("nbconnect_refused_then_listener_data", "%s", nbsend_echo(fd, l));
		close(fd);
		close(l);
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
