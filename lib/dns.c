/* dns.c - c-ares driven by libevent: c-ares tells us which sockets to watch
 * (ARES_OPT_SOCK_STATE_CB), one timer follows ares_timeout(). Every query also has its own
 * deadline, and its callback always runs from the event loop, never inside the call that
 * started it, so a caller may free its session from the callback. Queries still pending
 * at tern_dns_free() are dropped without a callback. */
#include "dns.h"
#include "buf.h"
#include "util.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { DNS_MX, DNS_ADDR, DNS_TXT } dns_kind;

typedef struct dns_sock {
	ares_socket_t fd;
	struct event *ev;
	struct tern_dns *dns;
} dns_sock;

typedef struct dns_req {
	struct tern_dns *dns;
	struct dns_req *prev, *next;
	dns_kind kind;
	void *cb;
	void *arg;
	struct event *timer;      /* deadline, then zero-delay delivery */
	int ares_done;            /* c-ares has called back; it will not again */
	int ready;                /* results below are final */
	int delivered;            /* the user callback ran (or the deadline passed) */
	tern_dns_status status;
	tern_mx *mx;
	struct sockaddr_storage *addrs;
	char **txt;
	size_t n;
} dns_req;

struct tern_dns {
	struct event_base *base;
	ares_channel ch;
	struct event *timer;
	dns_sock **socks;
	size_t nsocks;
	dns_req *reqs;
	int timeout;
	int closing;
};

static pthread_once_t dns_lib_once = PTHREAD_ONCE_INIT;
static int dns_lib_status;

static void dns_lib_init(void)
{
	dns_lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}

/* Follow c-ares' next timeout with our one timer. */
static void dns_rearm(tern_dns *dns)
{
	struct timeval tv, *tvp;
	if (dns->closing)
		return;
	tvp = ares_timeout(dns->ch, NULL, &tv);
	if (tvp)
		evtimer_add(dns->timer, tvp);
	else
		evtimer_del(dns->timer);
}

static void dns_on_timer(evutil_socket_t fd, short what, void *arg)
{
	tern_dns *dns = arg;
	ares_process_fd(dns->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_rearm(dns);
}

static void dns_on_sock(evutil_socket_t fd, short what, void *arg)
{
	dns_sock *s = arg;
	tern_dns *dns = s->dns;   /* s may be freed inside ares_process_fd */
	ares_process_fd(dns->ch, (what & EV_READ) ? (ares_socket_t)fd : ARES_SOCKET_BAD,
			(what & EV_WRITE) ? (ares_socket_t)fd : ARES_SOCKET_BAD);
	dns_rearm(dns);
}

static void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	tern_dns *dns = data;
	size_t i;
	for (i = 0; i < dns->nsocks; i++)
		if (dns->socks[i]->fd == fd)
			break;
	if (!readable && !writable) {
		if (i == dns->nsocks)
			return;
		if (dns->socks[i]->ev)
			event_free(dns->socks[i]->ev);
		free(dns->socks[i]);
		dns->socks[i] = dns->socks[--dns->nsocks];
		return;
	}
	if (i == dns->nsocks) {
		dns_sock **v = realloc(dns->socks, (dns->nsocks + 1) * sizeof(*v));
		dns_sock *s = calloc(1, sizeof(*s));
		if (!v || !s) {
			free(s);
			if (v)
				dns->socks = v;
			return;    /* the query times out */
		}
		dns->socks = v;
		s->fd = fd;
		s->dns = dns;
		dns->socks[dns->nsocks++] = s;
	} else if (dns->socks[i]->ev) {
		event_free(dns->socks[i]->ev);
	}
	dns_sock *s = dns->socks[i];
	short what = (short)(EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
	s->ev = event_new(dns->base, fd, what, dns_on_sock, s);
	if (s->ev)
		event_add(s->ev, NULL);
}

tern_dns *tern_dns_new(struct event_base *base, const char *resolver, int timeout_seconds,
		       char **error_r)
{
	struct ares_options opt;
	int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
	tbuf msg = TBUF_INIT;

	pthread_once(&dns_lib_once, dns_lib_init);
	if (dns_lib_status != ARES_SUCCESS) {
		tbuf_appendf(&msg, "c-ares: %s", ares_strerror(dns_lib_status));
		*error_r = tbuf_steal(&msg);
		return NULL;
	}
	tern_dns *dns = calloc(1, sizeof(*dns));
	if (!dns) {
		*error_r = strdup("out of memory");
		return NULL;
	}
	dns->base = base;
	dns->timeout = timeout_seconds > 0 ? timeout_seconds : 5;
	memset(&opt, 0, sizeof(opt));
	opt.sock_state_cb = dns_sock_state;
	opt.sock_state_cb_data = dns;
	opt.timeout = dns->timeout * 1000 / 2;   /* two tries fit in the deadline */
	opt.tries = 2;
	if (resolver && resolver[0]) {
		/* our own server (tests): no search suffixes from resolv.conf */
		opt.ndomains = 0;
		opt.domains = NULL;
		mask |= ARES_OPT_DOMAINS;
	}
	int r = ares_init_options(&dns->ch, &opt, mask);
	if (r != ARES_SUCCESS) {
		tbuf_appendf(&msg, "c-ares: %s", ares_strerror(r));
		free(dns);
		*error_r = tbuf_steal(&msg);
		return NULL;
	}
	if (resolver && resolver[0] && (r = ares_set_servers_ports_csv(dns->ch, resolver)) != ARES_SUCCESS) {
		tbuf_appendf(&msg, "bad DNS resolver '%s': %s", resolver, ares_strerror(r));
		ares_destroy(dns->ch);
		free(dns);
		*error_r = tbuf_steal(&msg);
		return NULL;
	}
	dns->timer = evtimer_new(base, dns_on_timer, dns);
	if (!dns->timer) {
		ares_destroy(dns->ch);
		free(dns);
		*error_r = strdup("out of memory");
		return NULL;
	}
	return dns;
}

static void dns_req_free(dns_req *q)
{
	tern_dns *dns = q->dns;
	if (q->prev)
		q->prev->next = q->next;
	else
		dns->reqs = q->next;
	if (q->next)
		q->next->prev = q->prev;
	event_free(q->timer);
	free(q->mx);
	free(q->addrs);
	for (size_t i = 0; q->txt && i < q->n; i++)
		free(q->txt[i]);
	free(q->txt);
	free(q);
}

/* Deadline or delivery: hand the results (or TEMPFAIL) to the caller exactly once. */
static void dns_on_req_timer(evutil_socket_t fd, short what, void *arg)
{
	dns_req *q = arg;
	tern_dns_status st = q->ready ? q->status : TERN_DNS_TEMPFAIL;
	size_t n = q->ready && st == TERN_DNS_OK ? q->n : 0;
	q->delivered = 1;
	switch (q->kind) {
	case DNS_MX:
		((void (*)(tern_dns_status, const tern_mx *, size_t, void *))q->cb)(
			st, n ? q->mx : NULL, n, q->arg);
		break;
	case DNS_ADDR:
		((void (*)(tern_dns_status, const struct sockaddr_storage *, size_t, void *))q->cb)(
			st, n ? q->addrs : NULL, n, q->arg);
		break;
	case DNS_TXT:
		((void (*)(tern_dns_status, char **, size_t, void *))q->cb)(
			st, n ? q->txt : NULL, n, q->arg);
		break;
	}
	if (q->ares_done)
		dns_req_free(q);
}

static dns_req *dns_req_new(tern_dns *dns, dns_kind kind, void *cb, void *arg)
{
	dns_req *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->timer = evtimer_new(dns->base, dns_on_req_timer, q);
	if (!q->timer) {
		free(q);
		return NULL;
	}
	q->dns = dns;
	q->kind = kind;
	q->cb = cb;
	q->arg = arg;
	q->next = dns->reqs;
	if (dns->reqs)
		dns->reqs->prev = q;
	dns->reqs = q;
	struct timeval tv = { dns->timeout, 0 };
	evtimer_add(q->timer, &tv);
	return q;
}

static tern_dns_status dns_status(int ares_status)
{
	switch (ares_status) {
	case ARES_SUCCESS:
		return TERN_DNS_OK;
	case ARES_ENOTFOUND:
	case ARES_ENODATA:
	case ARES_ENONAME:
	case ARES_EBADNAME:
		return TERN_DNS_NOTFOUND;
	default:
		return TERN_DNS_TEMPFAIL;
	}
}

/* c-ares is done with q. Returns 1 when q must still be completed by the caller. */
static int dns_req_ares_done(dns_req *q, int status)
{
	q->ares_done = 1;
	if (q->dns->closing || status == ARES_EDESTRUCTION)
		return 0;    /* tern_dns_free() frees every request left */
	if (q->delivered) {
		dns_req_free(q);    /* the deadline passed before the answer */
		return 0;
	}
	return 1;
}

/* Results are final: deliver them from the event loop at once. */
static void dns_req_ready(dns_req *q, tern_dns_status st)
{
	struct timeval zero = { 0, 0 };
	q->status = st;
	q->ready = 1;
	evtimer_del(q->timer);
	evtimer_add(q->timer, &zero);
}

/* Preference order; equal preferences in random order (RFC 5321 5.1): shuffle first,
 * then a stable insertion sort. */
static void dns_mx_order(tern_mx *mx, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		uint32_t r;
		tern_random(&r, sizeof(r));
		size_t j = r % i;
		tern_mx t = mx[i - 1];
		mx[i - 1] = mx[j];
		mx[j] = t;
	}
	for (size_t i = 1; i < n; i++) {
		tern_mx t = mx[i];
		size_t j = i;
		while (j > 0 && mx[j - 1].preference > t.preference) {
			mx[j] = mx[j - 1];
			j--;
		}
		mx[j] = t;
	}
}

static void dns_on_mx(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	dns_req *q = arg;
	struct ares_mx_reply *reply = NULL;
	if (!dns_req_ares_done(q, status))
		return;
	if (status == ARES_SUCCESS)
		status = ares_parse_mx_reply(abuf, alen, &reply);
	if (status != ARES_SUCCESS) {
		dns_req_ready(q, dns_status(status));
		return;
	}
	size_t n = 0;
	for (struct ares_mx_reply *r = reply; r; r = r->next)
		n++;
	q->mx = n ? calloc(n, sizeof(*q->mx)) : NULL;
	if (!q->mx) {
		ares_free_data(reply);
		dns_req_ready(q, n ? TERN_DNS_TEMPFAIL : TERN_DNS_NOTFOUND);
		return;
	}
	for (struct ares_mx_reply *r = reply; r; r = r->next, q->n++) {
		q->mx[q->n].preference = r->priority;
		snprintf(q->mx[q->n].host, sizeof(q->mx[q->n].host), "%s", r->host ? r->host : "");
	}
	ares_free_data(reply);
	dns_mx_order(q->mx, q->n);
	dns_req_ready(q, TERN_DNS_OK);
}

static void dns_on_txt(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	dns_req *q = arg;
	struct ares_txt_ext *reply = NULL;
	if (!dns_req_ares_done(q, status))
		return;
	if (status == ARES_SUCCESS)
		status = ares_parse_txt_reply_ext(abuf, alen, &reply);
	if (status != ARES_SUCCESS) {
		dns_req_ready(q, dns_status(status));
		return;
	}
	size_t n = 0;
	for (struct ares_txt_ext *r = reply; r; r = r->next)
		n += r->record_start || r == reply;
	q->txt = n ? calloc(n, sizeof(*q->txt)) : NULL;
	if (!q->txt) {
		ares_free_data(reply);
		dns_req_ready(q, n ? TERN_DNS_TEMPFAIL : TERN_DNS_NOTFOUND);
		return;
	}
	/* a record is one or more strings, joined without separator (RFC 7208 3.3) */
	tbuf rec = TBUF_INIT;
	for (struct ares_txt_ext *r = reply; r; r = r->next) {
		if ((r->record_start || r == reply) && r != reply)
			q->txt[q->n++] = tbuf_steal(&rec);
		tbuf_append(&rec, r->txt, r->length);
	}
	q->txt[q->n++] = tbuf_steal(&rec);
	ares_free_data(reply);
	dns_req_ready(q, TERN_DNS_OK);
}

static void dns_on_addr(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	dns_req *q = arg;
	if (!dns_req_ares_done(q, status)) {
		if (res)
			ares_freeaddrinfo(res);
		return;
	}
	size_t n = 0;
	for (struct ares_addrinfo_node *a = res ? res->nodes : NULL; a; a = a->ai_next)
		n++;
	if (status != ARES_SUCCESS || n == 0) {
		if (res)
			ares_freeaddrinfo(res);
		dns_req_ready(q, status == ARES_SUCCESS ? TERN_DNS_NOTFOUND : dns_status(status));
		return;
	}
	q->addrs = calloc(n, sizeof(*q->addrs));
	if (!q->addrs) {
		ares_freeaddrinfo(res);
		dns_req_ready(q, TERN_DNS_TEMPFAIL);
		return;
	}
	for (struct ares_addrinfo_node *a = res->nodes; a; a = a->ai_next) {
		if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
		    a->ai_addrlen > sizeof(q->addrs[0]))
			continue;
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, a->ai_addr, a->ai_addrlen);
		int dup = 0;
		for (size_t i = 0; i < q->n && !dup; i++)
			dup = memcmp(&q->addrs[i], &ss, sizeof(ss)) == 0;
		if (!dup)
			q->addrs[q->n++] = ss;
	}
	ares_freeaddrinfo(res);
	dns_req_ready(q, q->n ? TERN_DNS_OK : TERN_DNS_NOTFOUND);
}

void tern_dns_mx(tern_dns *dns, const char *domain,
		 void (*cb)(tern_dns_status st, const tern_mx *mx, size_t n, void *arg), void *arg)
{
	dns_req *q = dns_req_new(dns, DNS_MX, (void *)cb, arg);
	if (!q)
		return;    /* out of memory: no way left to answer */
	ares_query(dns->ch, domain, ns_c_in, ns_t_mx, dns_on_mx, q);
	dns_rearm(dns);
}

void tern_dns_txt(tern_dns *dns, const char *name,
		  void (*cb)(tern_dns_status st, char **txt, size_t n, void *arg), void *arg)
{
	dns_req *q = dns_req_new(dns, DNS_TXT, (void *)cb, arg);
	if (!q)
		return;    /* out of memory: no way left to answer */
	ares_query(dns->ch, name, ns_c_in, ns_t_txt, dns_on_txt, q);
	dns_rearm(dns);
}

void tern_dns_addr(tern_dns *dns, const char *host,
		   void (*cb)(tern_dns_status st, const struct sockaddr_storage *a, size_t n, void *arg),
		   void *arg)
{
	struct ares_addrinfo_hints hints;
	dns_req *q = dns_req_new(dns, DNS_ADDR, (void *)cb, arg);
	if (!q)
		return;    /* out of memory: no way left to answer */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_flags = ARES_AI_NOSORT;
	ares_getaddrinfo(dns->ch, host, NULL, &hints, dns_on_addr, q);
	dns_rearm(dns);
}

void tern_dns_free(tern_dns **pdns)
{
	tern_dns *dns = *pdns;
	if (!dns)
		return;
	dns->closing = 1;
	ares_destroy(dns->ch);     /* calls back every pending query with ARES_EDESTRUCTION */
	while (dns->reqs)
		dns_req_free(dns->reqs);
	for (size_t i = 0; i < dns->nsocks; i++) {
		if (dns->socks[i]->ev)
			event_free(dns->socks[i]->ev);
		free(dns->socks[i]);
	}
	free(dns->socks);
	event_free(dns->timer);
	free(dns);
	*pdns = NULL;
}
