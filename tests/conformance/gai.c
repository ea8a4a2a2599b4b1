/*
 * gai.c - getaddrinfo and getnameinfo without names: NULL and numeric
 * hosts, hints (AI_PASSIVE, AI_NUMERICHOST, AI_NUMERICSERV, AI_V4MAPPED,
 * AI_CANONNAME), family and socktype filtering, service names, and the
 * errors, in glibc's order. Under swrap these never reach the name table
 * (shim/netdb.c): the answers must be libc's own.
 *
 * Only literal addresses are used (and printed); no name is ever looked
 * up, natively or wrapped.
 */
#include "conf.h"

#include <netdb.h>

static const char *gai_name(int e)
{
	switch (e) {
	case 0: return "0";
	case EAI_BADFLAGS: return "EAI_BADFLAGS";
	case EAI_NONAME: return "EAI_NONAME";
	case EAI_AGAIN: return "EAI_AGAIN";
	case EAI_FAIL: return "EAI_FAIL";
	case EAI_FAMILY: return "EAI_FAMILY";
	case EAI_SOCKTYPE: return "EAI_SOCKTYPE";
	case EAI_SERVICE: return "EAI_SERVICE";
	case EAI_MEMORY: return "EAI_MEMORY";
	case EAI_SYSTEM: return "EAI_SYSTEM";
	case EAI_OVERFLOW: return "EAI_OVERFLOW";
	case EAI_NODATA: return "EAI_NODATA";
	case EAI_ADDRFAMILY: return "EAI_ADDRFAMILY";
	}
	char *b = ring();
	snprintf(b, 256, "EAI#%d", e);
	return b;
}

/* gai runs getaddrinfo and prints the list: addr:port/type/proto, canon. */
static void gai(const char *name, const char *node, const char *serv, int family, int socktype, int flags)
{
	struct addrinfo hints = { .ai_family = family, .ai_socktype = socktype, .ai_flags = flags }, *res, *p;
	int e = getaddrinfo(node, serv, &hints, &res);
	if (e) {
		check(name, "%s", gai_name(e));
		return;
	}
	char out[1024] = "";
	size_t n = 0;
	for (p = res; p && n < sizeof(out) - 128; p = p->ai_next) {
		char host[NI_MAXHOST] = "?";
		int port = 0;
		if (p->ai_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)p->ai_addr)->sin_addr, host, sizeof(host));
			port = ntohs(((struct sockaddr_in *)p->ai_addr)->sin_port);
		} else if (p->ai_family == AF_INET6) {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)p->ai_addr)->sin6_addr, host, sizeof(host));
			port = ntohs(((struct sockaddr_in6 *)p->ai_addr)->sin6_port);
		}
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s:%d/%d/%d%s%s", n ? " " : "", host, port,
				      p->ai_socktype, p->ai_protocol, p->ai_canonname ? "/canon=" : "",
				      p->ai_canonname ? p->ai_canonname : "");
	}
	freeaddrinfo(res);
	check(name, "%s", out);
}

static void gni(const char *name, const char *addr, int port, int flags, socklen_t hostlen)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	socklen_t len;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		len = sizeof(*in);
	} else {
		inet_pton(AF_INET6, addr, &in6->sin6_addr);
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		len = sizeof(*in6);
	}
	char host[NI_MAXHOST] = "", serv[NI_MAXSERV] = "";
	int e = getnameinfo((struct sockaddr *)&ss, len, host, hostlen, serv, sizeof(serv), flags);
	check(name, "%s host=%s serv=%s", gai_name(e), e ? "" : host, e ? "" : serv);
}

int main(void)
{
	conf_init("gai");
	gai("passive_v4", NULL, "80", AF_INET, SOCK_STREAM, AI_PASSIVE);
	gai("passive_v6", NULL, "80", AF_INET6, SOCK_DGRAM, AI_PASSIVE);
	gai("passive_unspec", NULL, "80", AF_UNSPEC, SOCK_STREAM, AI_PASSIVE);
	gai("null_node_v4", NULL, "80", AF_INET, SOCK_STREAM, 0);
	gai("null_node_v6", NULL, "80", AF_INET6, SOCK_STREAM, 0);
	gai("numeric_v4_any_type", "127.0.0.1", "7", AF_UNSPEC, 0, 0);
	gai("numeric_v4_dgram", "127.0.0.1", "7", AF_INET, SOCK_DGRAM, 0);
	gai("numeric_v6", "::1", "http", AF_UNSPEC, SOCK_STREAM, 0);
	gai("numeric_v6_as_v4", "::1", "80", AF_INET, SOCK_STREAM, 0);
	gai("numeric_v4_as_v6", "127.0.0.1", "80", AF_INET6, SOCK_STREAM, 0);
	gai("numeric_v4mapped", "127.0.0.1", "80", AF_INET6, SOCK_STREAM, AI_V4MAPPED);
	gai("numeric_canon", "127.0.0.1", "80", AF_INET, SOCK_STREAM, AI_CANONNAME);
	gai("numeric_short_v4", "127.1", "80", AF_INET, SOCK_STREAM, 0);
	gai("numerichost_name", "not-a-number.invalid", "80", AF_UNSPEC, SOCK_STREAM, AI_NUMERICHOST);
	gai("numericserv_name", "127.0.0.1", "http", AF_INET, SOCK_STREAM, AI_NUMERICSERV);
	gai("service_name", "127.0.0.1", "ssh", AF_INET, SOCK_STREAM, 0);
	gai("service_unknown", "127.0.0.1", "no-such-service", AF_INET, SOCK_STREAM, 0);
	gai("service_udp_only", "127.0.0.1", "syslog", AF_INET, 0, 0);
	gai("no_node_no_service", NULL, NULL, AF_UNSPEC, 0, 0);
	gai("bad_flags", "127.0.0.1", "80", AF_UNSPEC, 0, 0x40000);
	gai("canon_without_node", NULL, "80", AF_UNSPEC, 0, AI_CANONNAME);
	gai("bad_family", "127.0.0.1", "80", AF_UNIX, 0, 0);
	gai("bad_socktype", "127.0.0.1", "80", AF_INET, 77, 0);
	gni("gni_numeric", "127.0.0.1", 80, NI_NUMERICHOST | NI_NUMERICSERV, NI_MAXHOST);
	gni("gni_service", "127.0.0.1", 22, NI_NUMERICHOST, NI_MAXHOST);
	gni("gni_service_dgram", "127.0.0.1", 514, NI_NUMERICHOST | NI_DGRAM, NI_MAXHOST);
	gni("gni_v6", "::1", 80, NI_NUMERICHOST, NI_MAXHOST);
	gni("gni_overflow", "127.0.0.1", 80, NI_NUMERICHOST, 4);
	conf_done();
}
