/*
 * resolve.c - name lookups as programs make them, for tests/names_test.go.
 *
 *   resolve canon NAME      getaddrinfo(AI_CANONNAME, SOCK_STREAM), as ssh
 *                           does: "canon NAME" then one "ADDR" per entry
 *   resolve srv NAME        res_query(C_IN, T_SRV): "SRV prio weight port
 *                           target" per answer; "h_errno N" on failure
 *   resolve srv-old NAME    the same through __res_search, the name binaries
 *                           linked against libresolv before glibc 2.34 call
 *   resolve nameinfo ADDR   getnameinfo(NI_NAMEREQD): the name, or the error
 *   resolve hostbyname NAME gethostbyname_r: "name N", "alias A", "addr ADDR"
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <netdb.h>
#include <resolv.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static int canon(const char *name)
{
	struct addrinfo hints = { .ai_flags = AI_CANONNAME, .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res, *p;
	int e = getaddrinfo(name, "22", &hints, &res);
	if (e) {
		printf("error %s\n", gai_strerror(e));
		return 1;
	}
	printf("canon %s\n", res->ai_canonname ? res->ai_canonname : "(null)");
	for (p = res; p; p = p->ai_next) {
		char host[NI_MAXHOST], serv[NI_MAXSERV];
		getnameinfo(p->ai_addr, p->ai_addrlen, host, sizeof(host), serv, sizeof(serv),
			    NI_NUMERICHOST | NI_NUMERICSERV);
		printf("%s %s\n", host, serv);
	}
	freeaddrinfo(res);
	return 0;
}

static int srv(const char *name, bool old)
{
	unsigned char buf[4096];
	int n;
	if (old) {
		typedef int (*search_fn)(const char *, int, int, unsigned char *, int);
		search_fn f = (search_fn)dlsym(RTLD_DEFAULT, "__res_search");
		if (!f)
			return 2;
		n = f(name, C_IN, T_SRV, buf, sizeof(buf));
	} else {
		n = res_query(name, C_IN, T_SRV, buf, sizeof(buf));
	}
	if (n < 0) {
		printf("h_errno %d\n", h_errno);
		return 1;
	}
	const unsigned char *p = buf + NS_HFIXEDSZ, *end = buf + n;
	int qd = buf[4] << 8 | buf[5], an = buf[6] << 8 | buf[7];
	for (int i = 0; i < qd; i++) {
		int l = dn_skipname(p, end);
		if (l < 0)
			return 2;
		p += l + 4;
	}
	for (int i = 0; i < an; i++) {
		int l = dn_skipname(p, end);
		if (l < 0 || p + l + 10 > end)
			return 2;
		p += l;
		int type = p[0] << 8 | p[1], rdlen = p[8] << 8 | p[9];
		p += 10;
		if (type == T_SRV) {
			char target[NS_MAXDNAME];
			if (dn_expand(buf, end, p + 6, target, sizeof(target)) < 0)
				return 2;
			printf("SRV %d %d %d %s\n", p[0] << 8 | p[1], p[2] << 8 | p[3], p[4] << 8 | p[5], target);
		}
		p += rdlen;
	}
	return 0;
}

static int nameinfo(const char *addr)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		len = sizeof(*in);
	} else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		len = sizeof(*in6);
	} else {
		return 2;
	}
	char host[NI_MAXHOST];
	int e = getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), NULL, 0, NI_NAMEREQD);
	if (e) {
		printf("error %s\n", gai_strerror(e));
		return 1;
	}
	printf("%s\n", host);
	return 0;
}

static int hostbyname(const char *name)
{
	struct hostent he, *r;
	char buf[1024];
	int herr;
	if (gethostbyname_r(name, &he, buf, sizeof(buf), &r, &herr) != 0 || !r) {
		printf("h_errno %d\n", herr);
		return 1;
	}
	printf("name %s\n", r->h_name);
	for (char **a = r->h_aliases; *a; a++)
		printf("alias %s\n", *a);
	for (char **a = r->h_addr_list; *a; a++) {
		char s[INET6_ADDRSTRLEN];
		printf("addr %s\n", inet_ntop(r->h_addrtype, *a, s, sizeof(s)));
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	if (strcmp(argv[1], "canon") == 0)
		return canon(argv[2]);
	if (strcmp(argv[1], "srv") == 0)
		return srv(argv[2], false);
	if (strcmp(argv[1], "srv-old") == 0)
		return srv(argv[2], true);
	if (strcmp(argv[1], "nameinfo") == 0)
		return nameinfo(argv[2]);
	if (strcmp(argv[1], "hostbyname") == 0)
		return hostbyname(argv[2]);
	return 2;
}
