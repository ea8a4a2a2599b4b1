/*
 * netdb.c - host names: interposes getaddrinfo, getnameinfo,
 * gethostbyname, gethostbyname2, gethostbyname_r, gethostbyname2_r,
 * gethostbyaddr and gethostbyaddr_r.
 *
 * glibc answers these through NSS, whose DNS module makes its socket calls
 * inside libc, where the shim cannot see them: they would go to the real
 * resolv.conf's servers, off the emulated network. While wrapping is on,
 * names are answered by the broker's table instead (RESOLVE over the
 * control channel: one round trip, no socket of the program, nothing the
 * program can see; the DNS server on the network is there for programs
 * with their own resolver, and its traffic is in the capture). A name the
 * table lacks is "not found" at once, unless SWRAP_RESOLVE_OUTSIDE=1 lets
 * it go to libc (for a program that needs a real outside name).
 *
 * Numeric addresses never reach the table: getaddrinfo and getnameinfo
 * hand them to libc's own functions with AI_NUMERICHOST / NI_NUMERICHOST,
 * which also do the service names (/etc/services) and the addrinfo layout,
 * so that glibc's freeaddrinfo frees our lists.
 */
#include "swrap.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

/* Whether names go to the table now; falls back to libc when off. */
static bool names_on(void)
{
	swrap_init();
	return swrap_config_refresh();
}

bool swrap_resolve_outside(void)
{
	const char *v = getenv("SWRAP_RESOLVE_OUTSIDE");
	return v && strcmp(v, "1") == 0;
}

int swrap_resolve_name(const char *name, int family, struct swrap_resolved *out)
{
	size_t n = strlen(name);
	if (n == 0 || n > 255)
		return ENOENT;
	struct {
		struct swrap_resolve r;
		char name[256];
	} req = { .r = { .kind = SWRAP_RESOLVE_NAME, .arg = (uint32_t)family } };
	memcpy(req.name, name, n);
	struct swrap_call c = { .op = SWRAP_OP_RESOLVE, .body = &req, .body_len = sizeof(req.r) + n,
				.rep = out, .rep_cap = sizeof(*out), .may_start = true };
	int err = swrap_request(&c);
	if (err)
		return err;
	if (c.rep_len < sizeof(out->rep))
		return EPROTO;
	out->rep.canon[sizeof(out->rep.canon) - 1] = 0;
	size_t have = (c.rep_len - sizeof(out->rep)) / sizeof(out->addrs[0]);
	if (out->rep.count > have)
		out->rep.count = (uint32_t)have;
	return 0;
}

int swrap_resolve_addr(int family, const void *addr, char *name, size_t cap)
{
	struct {
		struct swrap_resolve r;
		uint8_t a[16];
	} req = { .r = { .kind = SWRAP_RESOLVE_ADDR, .arg = (uint32_t)family } };
	size_t alen = family == AF_INET ? 4 : 16;
	memcpy(req.a, addr, alen);
	struct swrap_call c = { .op = SWRAP_OP_RESOLVE, .body = &req, .body_len = sizeof(req.r) + alen,
				.rep = name, .rep_cap = cap - 1, .may_start = true };
	int err = swrap_request(&c);
	if (err)
		return err;
	name[c.rep_len] = 0;
	return 0;
}

/* ---------------------------------------------------------- getaddrinfo -- */

#define GAI_KNOWN_FLAGS                                                                              \
	(AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST | AI_V4MAPPED | AI_ALL | AI_ADDRCONFIG | AI_IDN | \
	 AI_CANONIDN | AI_NUMERICSERV)

/* append one numeric address's entries (libc builds them, services too) */
static int gai_one(const char *num, int family, const char *service, const struct addrinfo *hints,
		   struct addrinfo **head, struct addrinfo ***tail)
{
	struct addrinfo h = { 0 };
	if (hints)
		h = *hints;
	h.ai_family = family;
	h.ai_flags = (h.ai_flags & ~(AI_CANONNAME | AI_ADDRCONFIG | AI_V4MAPPED | AI_ALL)) | AI_NUMERICHOST;
	h.ai_canonname = NULL;
	h.ai_addr = NULL;
	h.ai_next = NULL;
	struct addrinfo *r = NULL;
	int e = swrap_libc.getaddrinfo(num, service, &h, &r);
	if (e)
		return e;
	**tail = r;
	while (r->ai_next)
		r = r->ai_next;
	*tail = &r->ai_next;
	(void)head;
	return 0;
}

static int swrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
			     struct addrinfo **res)
{
	int flags = hints ? hints->ai_flags : (AI_V4MAPPED | AI_ADDRCONFIG);
	int family = hints ? hints->ai_family : AF_UNSPEC;

	/* glibc's checks, in its order */
	if (flags & ~GAI_KNOWN_FLAGS)
		return EAI_BADFLAGS;
	if (node == NULL && service == NULL)
		return EAI_NONAME;
	if ((flags & AI_CANONNAME) && node == NULL)
		return EAI_BADFLAGS;
	if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
		return EAI_FAMILY;

	/* No name, or a numeric one: libc, which never looks anything up
	 * for these. AI_ADDRCONFIG is dropped: the emulated interface has
	 * both families (glibc would judge the real machine's). */
	struct addrinfo h = { 0 };
	if (hints)
		h = *hints;
	else
		h.ai_flags = AI_V4MAPPED;
	h.ai_flags &= ~AI_ADDRCONFIG;
	if (node == NULL) {
		return swrap_libc.getaddrinfo(node, service, &h, res);
	}
	h.ai_flags |= AI_NUMERICHOST;
	int e = swrap_libc.getaddrinfo(node, service, &h, res);
	if (e != EAI_NONAME || (flags & AI_NUMERICHOST))
		return e;

	/* A name: the table. */
	struct swrap_resolved r;
	int ask = family == AF_INET6 && (flags & AI_V4MAPPED) ? AF_UNSPEC : family;
	int err = swrap_resolve_name(node, ask, &r);
	if (err == ENOENT && swrap_resolve_outside())
		return swrap_libc.getaddrinfo(node, service, hints, res);
	if (err == ENOENT)
		return EAI_NONAME;
	if (err == ENODATA)
		return EAI_NODATA;
	if (err) {
		errno = err;
		return EAI_AGAIN;
	}
	bool have6 = false;
	for (uint32_t i = 0; i < r.rep.count; i++)
		have6 |= r.addrs[i].family == AF_INET6;

	struct addrinfo *head = NULL, **tail = &head;
	int first_err = 0;
	for (uint32_t i = 0; i < r.rep.count; i++) {
		char num[INET6_ADDRSTRLEN + 8];
		int fam = (int)r.addrs[i].family;
		if (family == AF_INET6 && fam == AF_INET) {
			/* AI_V4MAPPED: v4 addresses only if there is no v6 one,
			 * or with AI_ALL */
			if (have6 && !(flags & AI_ALL))
				continue;
			strcpy(num, "::ffff:");
			inet_ntop(AF_INET, r.addrs[i].addr, num + 7, sizeof(num) - 7);
			fam = AF_INET6;
		} else {
			inet_ntop(fam, r.addrs[i].addr, num, sizeof(num));
		}
		int e2 = gai_one(num, fam, service, hints, &head, &tail);
		if (e2 && !first_err)
			first_err = e2;
	}
	if (!head) {
		return first_err ? first_err : EAI_NODATA;
	}
	if (flags & AI_CANONNAME) {
		head->ai_canonname = strdup(r.rep.canon);
		if (!head->ai_canonname) {
			freeaddrinfo(head);
			return EAI_MEMORY;
		}
	}
	*res = head;
	return 0;
}

SWRAP_EXPORT int getaddrinfo(const char *restrict node, const char *restrict service,
			     const struct addrinfo *restrict hints, struct addrinfo **restrict res)
{
	if (!names_on())
		return swrap_libc.getaddrinfo(node, service, hints, res);
	return swrap_getaddrinfo(node, service, hints, res);
}

/* ---------------------------------------------------------- getnameinfo -- */

static int swrap_getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, socklen_t hostlen,
			     char *serv, socklen_t servlen, int flags)
{
	/* libc does the checks, the service, and the numeric form */
	int e = swrap_libc.getnameinfo(sa, salen, host, hostlen, serv, servlen, (flags | NI_NUMERICHOST) & ~NI_NAMEREQD);
	if (e || !host || hostlen == 0 || (flags & NI_NUMERICHOST))
		return e;
	const void *a;
	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	else
		return e;
	char name[256];
	int err = swrap_resolve_addr(sa->sa_family, a, name, sizeof(name));
	if (err == ENOENT && swrap_resolve_outside())
		return swrap_libc.getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
	if (err) {
		/* not in the table: the numeric form stands */
		return (flags & NI_NAMEREQD) ? EAI_NONAME : 0;
	}
	if (flags & NI_NOFQDN) {
		char *dot = strchr(name, '.');
		if (dot)
			*dot = 0;
	}
	if (strlen(name) >= hostlen)
		return EAI_OVERFLOW;
	strcpy(host, name);
	return 0;
}

SWRAP_EXPORT int getnameinfo(const struct sockaddr *restrict sa, socklen_t salen, char *restrict host,
			     socklen_t hostlen, char *restrict serv, socklen_t servlen, int flags)
{
	if (!names_on())
		return swrap_libc.getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
	return swrap_getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
}

/* -------------------------------------------------------- gethostbyname -- */

/*
 * fill_hostent lays out a hostent in buf, glibc style: the name, an alias
 * list (the asked name if a CNAME led elsewhere), the address list.
 * Returns 0 or ERANGE.
 */
static int fill_hostent(struct hostent *he, char *buf, size_t len, const char *asked, const char *canon,
			int af, const uint8_t (*addrs)[16], int n)
{
	size_t alen = af == AF_INET ? 4 : 16;
	size_t need = (size_t)n * alen + (size_t)(n + 1) * sizeof(char *) + 2 * sizeof(char *) +
		      strlen(canon) + strlen(asked) + 2 + sizeof(char *);
	if (need > len)
		return ERANGE;
	/* pointers first, aligned */
	uintptr_t p = ((uintptr_t)buf + sizeof(char *) - 1) & ~(uintptr_t)(sizeof(char *) - 1);
	if (p + need > (uintptr_t)buf + len)
		return ERANGE;
	char **list = (char **)p;
	char **aliases = list + n + 1;
	char *data = (char *)(aliases + 2);
	for (int i = 0; i < n; i++) {
		memcpy(data, addrs[i], alen);
		list[i] = data;
		data += alen;
	}
	list[n] = NULL;
	strcpy(data, canon);
	he->h_name = data;
	data += strlen(canon) + 1;
	aliases[0] = aliases[1] = NULL;
	if (strcasecmp(asked, canon) != 0) {
		strcpy(data, asked);
		aliases[0] = data;
	}
	he->h_aliases = aliases;
	he->h_addrtype = af;
	he->h_length = (int)alen;
	he->h_addr_list = list;
	return 0;
}

/* Returns 0 with *result set, or an errno (ERANGE) with *h_err set, glibc's
 * _r convention; a miss is 0 with *result NULL. -1: let libc answer. */
static int swrap_ghbn_r(const char *name, int af, struct hostent *he, char *buf, size_t len,
			struct hostent **result, int *h_err)
{
	*result = NULL;
	if (af != AF_INET && af != AF_INET6) {
		*h_err = NETDB_INTERNAL;
		return EAFNOSUPPORT;
	}
	uint8_t addrs[SWRAP_RESOLVE_MAX][16];
	int n = 0;
	/* a numeric name is its own address, as glibc's */
	if (inet_pton(af, name, addrs[0]) == 1) {
		n = 1;
		int e = fill_hostent(he, buf, len, name, name, af, (const uint8_t (*)[16])addrs, n);
		if (e) {
			*h_err = NETDB_INTERNAL;
			return e;
		}
		*result = he;
		*h_err = NETDB_SUCCESS;
		return 0;
	}
	struct swrap_resolved r;
	int err = swrap_resolve_name(name, af, &r);
	if (err == ENOENT && swrap_resolve_outside())
		return -1;
	if (err) {
		*h_err = err == ENOENT ? HOST_NOT_FOUND : err == ENODATA ? NO_DATA : TRY_AGAIN;
		return 0;
	}
	for (uint32_t i = 0; i < r.rep.count && n < SWRAP_RESOLVE_MAX; i++) {
		if ((int)r.addrs[i].family == af)
			memcpy(addrs[n++], r.addrs[i].addr, 16);
	}
	if (n == 0) {
		*h_err = NO_DATA;
		return 0;
	}
	int e = fill_hostent(he, buf, len, name, r.rep.canon, af, (const uint8_t (*)[16])addrs, n);
	if (e) {
		*h_err = NETDB_INTERNAL;
		return e;
	}
	*result = he;
	*h_err = NETDB_SUCCESS;
	return 0;
}

static int swrap_ghba_r(const void *addr, socklen_t alen, int af, struct hostent *he, char *buf, size_t len,
			struct hostent **result, int *h_err)
{
	*result = NULL;
	if ((af == AF_INET && alen < 4) || (af == AF_INET6 && alen < 16) || (af != AF_INET && af != AF_INET6)) {
		*h_err = NETDB_INTERNAL;
		return EINVAL;
	}
	char name[256];
	int err = swrap_resolve_addr(af, addr, name, sizeof(name));
	if (err == ENOENT && swrap_resolve_outside())
		return -1;
	if (err) {
		*h_err = err == ENOENT ? HOST_NOT_FOUND : TRY_AGAIN;
		return 0;
	}
	uint8_t a[1][16] = { { 0 } };
	memcpy(a[0], addr, af == AF_INET ? 4 : 16);
	int e = fill_hostent(he, buf, len, name, name, af, (const uint8_t (*)[16])a, 1);
	if (e) {
		*h_err = NETDB_INTERNAL;
		return e;
	}
	*result = he;
	*h_err = NETDB_SUCCESS;
	return 0;
}

/* The non-reentrant calls' storage: per thread, which glibc's is not,
 * but a program cannot tell. */
static __thread struct hostent tls_he;
static __thread char tls_buf[2048];

SWRAP_EXPORT int gethostbyname2_r(const char *restrict name, int af, struct hostent *restrict he,
				  char *restrict buf, size_t len, struct hostent **restrict result,
				  int *restrict h_err)
{
	if (names_on()) {
		int e = swrap_ghbn_r(name, af, he, buf, len, result, h_err);
		if (e >= 0)
			return e;
	}
	return swrap_libc.gethostbyname2_r(name, af, he, buf, len, result, h_err);
}

SWRAP_EXPORT int gethostbyname_r(const char *restrict name, struct hostent *restrict he, char *restrict buf,
				 size_t len, struct hostent **restrict result, int *restrict h_err)
{
	if (names_on()) {
		int e = swrap_ghbn_r(name, AF_INET, he, buf, len, result, h_err);
		if (e >= 0)
			return e;
	}
	return swrap_libc.gethostbyname_r(name, he, buf, len, result, h_err);
}

SWRAP_EXPORT struct hostent *gethostbyname2(const char *name, int af)
{
	if (!names_on())
		return swrap_libc.gethostbyname2(name, af);
	struct hostent *r = NULL;
	int e = swrap_ghbn_r(name, af, &tls_he, tls_buf, sizeof(tls_buf), &r, &h_errno);
	if (e < 0)
		return swrap_libc.gethostbyname2(name, af);
	return r;
}

SWRAP_EXPORT struct hostent *gethostbyname(const char *name)
{
	if (!names_on())
		return swrap_libc.gethostbyname(name);
	struct hostent *r = NULL;
	int e = swrap_ghbn_r(name, AF_INET, &tls_he, tls_buf, sizeof(tls_buf), &r, &h_errno);
	if (e < 0)
		return swrap_libc.gethostbyname(name);
	return r;
}

SWRAP_EXPORT int gethostbyaddr_r(const void *restrict addr, socklen_t alen, int af, struct hostent *restrict he,
				 char *restrict buf, size_t len, struct hostent **restrict result,
				 int *restrict h_err)
{
	if (names_on()) {
		int e = swrap_ghba_r(addr, alen, af, he, buf, len, result, h_err);
		if (e >= 0)
			return e;
	}
	return swrap_libc.gethostbyaddr_r(addr, alen, af, he, buf, len, result, h_err);
}

SWRAP_EXPORT struct hostent *gethostbyaddr(const void *addr, socklen_t alen, int af)
{
	if (!names_on())
		return swrap_libc.gethostbyaddr(addr, alen, af);
	struct hostent *r = NULL;
	int e = swrap_ghba_r(addr, alen, af, &tls_he, tls_buf, sizeof(tls_buf), &r, &h_errno);
	if (e < 0)
		return swrap_libc.gethostbyaddr(addr, alen, af);
	return r;
}

void swrap_netdb_resolve(struct swrap_libc *l)
{
	l->getaddrinfo = dlsym(RTLD_NEXT, "getaddrinfo");
	l->getnameinfo = dlsym(RTLD_NEXT, "getnameinfo");
	l->gethostbyname = dlsym(RTLD_NEXT, "gethostbyname");
	l->gethostbyname2 = dlsym(RTLD_NEXT, "gethostbyname2");
	l->gethostbyname_r = dlsym(RTLD_NEXT, "gethostbyname_r");
	l->gethostbyname2_r = dlsym(RTLD_NEXT, "gethostbyname2_r");
	l->gethostbyaddr = dlsym(RTLD_NEXT, "gethostbyaddr");
	l->gethostbyaddr_r = dlsym(RTLD_NEXT, "gethostbyaddr_r");
}
