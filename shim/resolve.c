/*
 * resolve.c - DNS: interposes res_query, res_search, res_querydomain,
 * res_send and their res_n* and glibc __res_* names; sends the program's
 * own DNS traffic to the broker's DNS server.
 *
 * glibc's resolver sends its queries with socket calls inside libc, which
 * the shim cannot see (to the real resolv.conf's servers). While wrapping
 * is on, the res_* calls are answered by the broker's table instead
 * (RESOLVE, kind QUERY or MESSAGE): the broker's DNS code builds the same
 * reply its server would send, so the program gets a real DNS message.
 * A program with its own resolver (dig, c-ares, Go) reads resolv.conf and
 * sends UDP or TCP to a nameserver's port 53: those destinations are
 * unreachable on the emulated network, so swrap_dns_redirect turns them
 * into the broker's DNS server (host 253, port 53), where the queries
 * cross the fabric and appear in the capture.
 *
 * Names are looked up as given: no search list, no ndots (the table has no
 * domain to search).
 */
#include "swrap.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <arpa/nameser.h>
#include <fcntl.h>
#include <netdb.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------- nameserver redirect -- */

#define MAX_NS 8
static struct {
	int n;
	int family[MAX_NS];
	uint8_t addr[MAX_NS][16];
} nameservers;

/* Read the nameservers of /etc/resolv.conf once, at start-up (the file of
 * the process's mount namespace, before any chroot). */
void swrap_dns_init(void)
{
	char buf[4096];
	int fd = swrap_libc.open("/etc/resolv.conf", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t len = swrap_libc.read(fd, buf, sizeof(buf) - 1);
	swrap_libc.close(fd);
	if (len <= 0)
		return;
	buf[len] = 0;
	char *save = NULL;
	for (char *line = strtok_r(buf, "\n", &save); line && nameservers.n < MAX_NS; line = strtok_r(NULL, "\n", &save)) {
		char a[64];
		if (sscanf(line, " nameserver %63s", a) != 1)
			continue;
		char *pct = strchr(a, '%');
		if (pct)
			*pct = 0;
		int i = nameservers.n;
		if (inet_pton(AF_INET, a, nameservers.addr[i]) == 1)
			nameservers.family[i] = AF_INET;
		else if (inet_pton(AF_INET6, a, nameservers.addr[i]) == 1)
			nameservers.family[i] = AF_INET6;
		else
			continue;
		nameservers.n++;
	}
}

/* The broker's DNS server, in a's family (a v4-mapped a stays mapped). */
static void server_addr(struct swrap_addr *a, bool mapped)
{
	static const uint8_t v6[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53, 0x57, 0x5f, SWRAP_DNS_HOST };
	uint8_t v4[4] = { swrap_cfg.net4, 0, 0, SWRAP_DNS_HOST };
	if (swrap_cfg.net4 == 10) {
		v4[1] = 53;
		v4[2] = 57;
	}
	memset(a->addr, 0, sizeof(a->addr));
	if (a->family == AF_INET) {
		memcpy(a->addr, v4, 4);
	} else if (mapped) {
		a->addr[10] = a->addr[11] = 0xff;
		memcpy(a->addr + 12, v4, 4);
	} else {
		memcpy(a->addr, v6, 16);
	}
	a->scope_id = 0;
}

void swrap_dns_redirect(struct swrap_addr *a)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (a->port != 53 || nameservers.n == 0)
		return;
	bool is_mapped = a->family == AF_INET6 && memcmp(a->addr, mapped, 12) == 0;
	for (int i = 0; i < nameservers.n; i++) {
		bool hit;
		if (nameservers.family[i] == AF_INET)
			hit = (a->family == AF_INET && memcmp(a->addr, nameservers.addr[i], 4) == 0) ||
			      (is_mapped && memcmp(a->addr + 12, nameservers.addr[i], 4) == 0);
		else
			hit = a->family == AF_INET6 && memcmp(a->addr, nameservers.addr[i], 16) == 0;
		if (hit) {
			SWRAP_LOG(SWRAP_LOG_DEBUG, "nameserver %d: to the broker's DNS server", i);
			server_addr(a, is_mapped);
			return;
		}
	}
}

/* ------------------------------------------------------------- res_query -- */

/* h_errno for a reply, as glibc's res_query sets it; true if it answers. */
static bool reply_ok(const unsigned char *msg, int len, int *h_err)
{
	if (len < (int)sizeof(HEADER)) {
		*h_err = NO_RECOVERY;
		return false;
	}
	const HEADER *h = (const HEADER *)msg;
	if (h->rcode != NOERROR || ntohs(h->ancount) == 0) {
		switch (h->rcode) {
		case NXDOMAIN:
			*h_err = HOST_NOT_FOUND;
			break;
		case SERVFAIL:
			*h_err = TRY_AGAIN;
			break;
		case NOERROR:
			*h_err = NO_DATA;
			break;
		default:
			*h_err = NO_RECOVERY;
		}
		return false;
	}
	*h_err = NETDB_SUCCESS;
	return true;
}

/* One question (kind QUERY: name, class, type) or message (MESSAGE) to
 * the table. Returns the reply's length (the bytes copied are at most
 * anslen), -1 with *h_err set, or -2: let libc answer (outside names). */
static int ask(uint32_t kind, uint32_t arg, const void *data, size_t dlen, unsigned char *answer, int anslen,
	       int *h_err)
{
	if (dlen == 0 || dlen > SWRAP_DNS_MAX || anslen < 0) {
		*h_err = NO_RECOVERY;
		errno = EINVAL;
		return -1;
	}
	/* on the heap: a DNS message may be 64 KiB, too much for a thread's
	 * stack (these calls are not async-signal-safe in libc either) */
	struct swrap_resolve *req = malloc(sizeof(*req) + dlen);
	unsigned char *rep = malloc(SWRAP_DNS_MAX);
	if (!req || !rep) {
		free(req);
		free(rep);
		*h_err = NETDB_INTERNAL;
		errno = ENOMEM;
		return -1;
	}
	req->kind = kind;
	req->arg = arg;
	memcpy(req + 1, data, dlen);
	struct swrap_call c = { .op = SWRAP_OP_RESOLVE, .body = req, .body_len = sizeof(*req) + dlen,
				.rep = rep, .rep_cap = SWRAP_DNS_MAX, .may_start = true };
	int err = swrap_request(&c);
	free(req);
	if (err) {
		free(rep);
		*h_err = err == EINVAL ? NO_RECOVERY : TRY_AGAIN;
		errno = err;
		return -1;
	}
	int n = (int)c.rep_len;
	memcpy(answer, rep, (size_t)(n < anslen ? n : anslen));
	bool ok = reply_ok(rep, n, h_err);
	free(rep);
	if (!ok) {
		if (*h_err == HOST_NOT_FOUND && swrap_resolve_outside())
			return -2;
		return -1;
	}
	return n;
}

static int query(const char *name, int class, int type, unsigned char *answer, int anslen, int *h_err)
{
	size_t n = strlen(name);
	uint32_t arg = (uint32_t)(type & 0xffff) | (uint32_t)(class & 0xffff) << 16;
	return ask(SWRAP_RESOLVE_QUERY, arg, name, n, answer, anslen, h_err);
}

static int querydomain(const char *name, const char *domain, int class, int type, unsigned char *answer,
		       int anslen, int *h_err)
{
	char full[NS_MAXDNAME];
	if (!domain)
		return query(name, class, type, answer, anslen, h_err);
	if ((size_t)snprintf(full, sizeof(full), "%s.%s", name, domain) >= sizeof(full)) {
		*h_err = NO_RECOVERY;
		errno = EMSGSIZE;
		return -1;
	}
	return query(full, class, type, answer, anslen, h_err);
}

#define RES_BODY(call, libc_call)                   \
	do {                                        \
		if (!(swrap_init(), swrap_config_refresh())) \
			return libc_call;           \
		int r_ = call;                      \
		if (r_ == -2)                       \
			return libc_call;           \
		return r_;                          \
	} while (0)

/* libc's own, for the fallback paths only (wrapping off, outside names) */
static void *real(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

typedef int (*query_fn)(const char *, int, int, unsigned char *, int);
typedef int (*nquery_fn)(res_state, const char *, int, int, unsigned char *, int);
typedef int (*querydomain_fn)(const char *, const char *, int, int, unsigned char *, int);
typedef int (*nquerydomain_fn)(res_state, const char *, const char *, int, int, unsigned char *, int);
typedef int (*send_fn)(const unsigned char *, int, unsigned char *, int);
typedef int (*nsend_fn)(res_state, const unsigned char *, int, unsigned char *, int);

static int my_query(const char *name, int class, int type, unsigned char *ans, int len)
{
	return query(name, class, type, ans, len, &h_errno);
}
static int my_nquery(res_state st, const char *name, int class, int type, unsigned char *ans, int len)
{
	int r = query(name, class, type, ans, len, &h_errno);
	if (st)
		st->res_h_errno = h_errno;
	return r;
}
static int my_querydomain(const char *name, const char *dom, int class, int type, unsigned char *ans, int len)
{
	return querydomain(name, dom, class, type, ans, len, &h_errno);
}
static int my_nquerydomain(res_state st, const char *name, const char *dom, int class, int type,
			   unsigned char *ans, int len)
{
	int r = querydomain(name, dom, class, type, ans, len, &h_errno);
	if (st)
		st->res_h_errno = h_errno;
	return r;
}
/* res_send: the message as it is, the reply whatever its RCODE. */
static int send_msg(const unsigned char *msg, int mlen, unsigned char *ans, int len)
{
	if (mlen <= 0 || mlen > SWRAP_DNS_MAX || len < 0)
		return swrap_fail(EINVAL);
	struct swrap_resolve *req = malloc(sizeof(*req) + (size_t)mlen);
	unsigned char *rep = malloc(SWRAP_DNS_MAX);
	if (!req || !rep) {
		free(req);
		free(rep);
		return swrap_fail(ENOMEM);
	}
	req->kind = SWRAP_RESOLVE_MESSAGE;
	req->arg = 0;
	memcpy(req + 1, msg, (size_t)mlen);
	struct swrap_call c = { .op = SWRAP_OP_RESOLVE, .body = req, .body_len = sizeof(*req) + (size_t)mlen,
				.rep = rep, .rep_cap = SWRAP_DNS_MAX, .may_start = true };
	int err = swrap_request(&c);
	free(req);
	if (err) {
		free(rep);
		return swrap_fail(err == EINVAL ? EMSGSIZE : ETIMEDOUT);
	}
	int n = (int)c.rep_len;
	memcpy(ans, rep, (size_t)(n < len ? n : len));
	free(rep);
	return n;
}

/* The exported names. The plain names are glibc 2.34's; __res_* are the
 * names older binaries (linked against libresolv) use. */
#define QUERY_EXPORT(sym, libname)                                                                      \
	SWRAP_EXPORT int sym(const char *name, int class, int type, unsigned char *ans, int len)         \
	{                                                                                               \
		RES_BODY(my_query(name, class, type, ans, len),                                         \
			 ((query_fn)real(libname))(name, class, type, ans, len));                       \
	}
#define NQUERY_EXPORT(sym, libname)                                                                     \
	SWRAP_EXPORT int sym(res_state st, const char *name, int class, int type, unsigned char *ans,    \
			     int len)                                                                   \
	{                                                                                               \
		RES_BODY(my_nquery(st, name, class, type, ans, len),                                    \
			 ((nquery_fn)real(libname))(st, name, class, type, ans, len));                  \
	}

QUERY_EXPORT(res_query, "res_query")
QUERY_EXPORT(__res_query, "__res_query")
QUERY_EXPORT(res_search, "res_search")
QUERY_EXPORT(__res_search, "__res_search")
NQUERY_EXPORT(res_nquery, "res_nquery")
NQUERY_EXPORT(__res_nquery, "__res_nquery")
NQUERY_EXPORT(res_nsearch, "res_nsearch")
NQUERY_EXPORT(__res_nsearch, "__res_nsearch")

SWRAP_EXPORT int res_querydomain(const char *name, const char *dom, int class, int type, unsigned char *ans,
				 int len)
{
	RES_BODY(my_querydomain(name, dom, class, type, ans, len),
		 ((querydomain_fn)real("res_querydomain"))(name, dom, class, type, ans, len));
}
SWRAP_EXPORT int __res_querydomain(const char *name, const char *dom, int class, int type, unsigned char *ans,
				   int len)
{
	RES_BODY(my_querydomain(name, dom, class, type, ans, len),
		 ((querydomain_fn)real("__res_querydomain"))(name, dom, class, type, ans, len));
}
SWRAP_EXPORT int res_nquerydomain(res_state st, const char *name, const char *dom, int class, int type,
				  unsigned char *ans, int len)
{
	RES_BODY(my_nquerydomain(st, name, dom, class, type, ans, len),
		 ((nquerydomain_fn)real("res_nquerydomain"))(st, name, dom, class, type, ans, len));
}

SWRAP_EXPORT int res_send(const unsigned char *msg, int mlen, unsigned char *ans, int len)
{
	RES_BODY(send_msg(msg, mlen, ans, len), ((send_fn)real("res_send"))(msg, mlen, ans, len));
}
SWRAP_EXPORT int __res_send(const unsigned char *msg, int mlen, unsigned char *ans, int len)
{
	RES_BODY(send_msg(msg, mlen, ans, len), ((send_fn)real("__res_send"))(msg, mlen, ans, len));
}
SWRAP_EXPORT int res_nsend(res_state st, const unsigned char *msg, int mlen, unsigned char *ans, int len)
{
	RES_BODY(send_msg(msg, mlen, ans, len), ((nsend_fn)real("res_nsend"))(st, msg, mlen, ans, len));
}
SWRAP_EXPORT int __res_nsend(res_state st, const unsigned char *msg, int mlen, unsigned char *ans, int len)
{
	RES_BODY(send_msg(msg, mlen, ans, len), ((nsend_fn)real("__res_nsend"))(st, msg, mlen, ans, len));
}
