/* test_lib_dns.c - c-ares on libevent against a tiny DNS responder on 127.0.0.1 run by
 * this test (canned MX, A/AAAA, TXT answers built by hand; no network). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dns.h"
#include "util.h"

/* ---- the responder ---- */

enum { T_A = 1, T_MX = 15, T_TXT = 16, T_AAAA = 28 };

static int srv_fd = -1;
static uint16_t srv_port;
static pthread_t srv_thread;
static atomic_int srv_stop;

typedef struct wire {
	uint8_t b[512];
	size_t n;
} wire;

static void put8(wire *w, uint8_t v) { if (w->n < sizeof(w->b)) w->b[w->n++] = v; }
static void put16(wire *w, unsigned v) { put8(w, (uint8_t)(v >> 8)); put8(w, (uint8_t)v); }
static void put32(wire *w, uint32_t v) { put16(w, v >> 16); put16(w, v & 0xffff); }
static void putname(wire *w, const char *name)
{
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t len = dot ? (size_t)(dot - name) : strlen(name);
		put8(w, (uint8_t)len);
		for (size_t i = 0; i < len; i++)
			put8(w, (uint8_t)name[i]);
		name += len + (dot ? 1 : 0);
	}
	put8(w, 0);
}

/* An answer record for the question name (compressed pointer to offset 12). */
static void answer(wire *w, unsigned *count, unsigned type, const wire *rdata)
{
	put16(w, 0xc00c);
	put16(w, type);
	put16(w, 1);
	put32(w, 300);
	put16(w, (unsigned)rdata->n);
	for (size_t i = 0; i < rdata->n; i++)
		put8(w, rdata->b[i]);
	(*count)++;
}

static void ans_mx(wire *w, unsigned *count, unsigned pref, const char *host)
{
	wire rd = { .n = 0 };
	put16(&rd, pref);
	putname(&rd, host);
	answer(w, count, T_MX, &rd);
}

static void ans_addr(wire *w, unsigned *count, int family, const char *ip)
{
	wire rd = { .n = family == AF_INET ? 4 : 16 };
	inet_pton(family, ip, rd.b);
	answer(w, count, family == AF_INET ? T_A : T_AAAA, &rd);
}

static void ans_txt(wire *w, unsigned *count, const char *const *strings)
{
	wire rd = { .n = 0 };
	for (; *strings; strings++) {
		put8(&rd, (uint8_t)strlen(*strings));
		for (const char *p = *strings; *p; p++)
			put8(&rd, (uint8_t)*p);
	}
	answer(w, count, T_TXT, &rd);
}

/* Build the reply to one query; returns 0 to stay silent. */
static size_t respond(const uint8_t *q, size_t qn, uint8_t *out)
{
	char name[256];
	size_t pos = 12, nl = 0;
	if (qn < 17)
		return 0;
	while (pos < qn && q[pos]) {
		size_t len = q[pos++];
		if (pos + len > qn || nl + len + 1 >= sizeof(name))
			return 0;
		if (nl)
			name[nl++] = '.';
		for (size_t i = 0; i < len; i++) {
			char c = (char)q[pos + i];
			name[nl++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
		}
		pos += len;
	}
	name[nl] = '\0';
	if (pos + 5 > qn)
		return 0;
	unsigned qtype = (unsigned)q[pos + 1] << 8 | q[pos + 2];
	size_t qend = pos + 5;

	wire w = { .n = 0 };
	unsigned an = 0, rcode = 0;
	memcpy(w.b, q, qend);       /* id, flags (fixed below), counts, question */
	w.n = qend;
	if (strcmp(name, "slow.example.test") == 0)
		return 0;
	if (strcmp(name, "fail.example.test") == 0) {
		rcode = 2;
	} else if (strcmp(name, "example.test") == 0 && qtype == T_MX) {
		ans_mx(&w, &an, 20, "mx3.example.test");
		ans_mx(&w, &an, 10, "mx1.example.test");
		ans_mx(&w, &an, 10, "mx2.example.test");
	} else if (strcmp(name, "mx1.example.test") == 0) {
		if (qtype == T_A)
			ans_addr(&w, &an, AF_INET, "192.0.2.1");
		if (qtype == T_AAAA)
			ans_addr(&w, &an, AF_INET6, "2001:db8::1");
	} else if (strcmp(name, "v4only.example.test") == 0) {
		if (qtype == T_A) {
			ans_addr(&w, &an, AF_INET, "192.0.2.7");
			ans_addr(&w, &an, AF_INET, "192.0.2.8");
		}
	} else if (strcmp(name, "txt.example.test") == 0 && qtype == T_TXT) {
		static const char *const r1[] = { "v=spf1 ", "-all", NULL };
		static const char *const r2[] = { "hello", NULL };
		ans_txt(&w, &an, r1);
		ans_txt(&w, &an, r2);
	} else if (strcmp(name, "nodata.example.test") != 0 &&
		   strcmp(name, "example.test") != 0 && strcmp(name, "txt.example.test") != 0) {
		rcode = 3;    /* NXDOMAIN */
	}
	w.b[2] = (uint8_t)(0x84 | (q[2] & 0x79));   /* QR, AA, opcode and RD copied */
	w.b[3] = (uint8_t)(0x80 | rcode);           /* RA */
	w.b[6] = (uint8_t)(an >> 8);
	w.b[7] = (uint8_t)an;
	w.b[8] = w.b[9] = w.b[10] = w.b[11] = 0;
	memcpy(out, w.b, w.n);
	return w.n;
}

static void *srv_main(void *arg)
{
	while (!atomic_load(&srv_stop)) {
		struct pollfd pfd = { .fd = srv_fd, .events = POLLIN };
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		uint8_t q[512], out[512];
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(srv_fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
		if (n <= 0)
			continue;
		size_t rn = respond(q, (size_t)n, out);
		if (rn)
			sendto(srv_fd, out, rn, 0, (struct sockaddr *)&from, fl);
	}
	return NULL;
}

static int srv_start(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	srv_fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (srv_fd < 0 || bind(srv_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(srv_fd, (struct sockaddr *)&sin, &sl) < 0)
		return -1;
	srv_port = ntohs(sin.sin_port);
	atomic_store(&srv_stop, 0);
	return pthread_create(&srv_thread, NULL, srv_main, NULL) == 0 ? 0 : -1;
}

static int srv_end(void **state)
{
	atomic_store(&srv_stop, 1);
	pthread_join(srv_thread, NULL);
	close(srv_fd);
	return 0;
}

/* ---- the client side ---- */

typedef struct result {
	int called;
	tern_dns_status st;
	size_t n;
	char s[8][256];              /* hosts, TXT records or numeric addresses */
	unsigned pref[8];
} result;

static struct event_base *base;
static int outstanding;
static int in_submit;

static void finish(void)
{
	if (--outstanding == 0)
		event_base_loopbreak(base);
}

static void on_mx(tern_dns_status st, const tern_mx *mx, size_t n, void *arg)
{
	result *r = arg;
	assert_false(in_submit);        /* never from inside tern_dns_mx() */
	r->called++;
	r->st = st;
	r->n = n;
	for (size_t i = 0; i < n && i < 8; i++) {
		snprintf(r->s[i], sizeof(r->s[i]), "%s", mx[i].host);
		r->pref[i] = mx[i].preference;
	}
	finish();
}

static void on_addr(tern_dns_status st, const struct sockaddr_storage *a, size_t n, void *arg)
{
	result *r = arg;
	assert_false(in_submit);
	r->called++;
	r->st = st;
	r->n = n;
	for (size_t i = 0; i < n && i < 8; i++) {
		if (a[i].ss_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)&a[i])->sin_addr, r->s[i], 256);
		else
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a[i])->sin6_addr, r->s[i], 256);
	}
	finish();
}

static void on_txt(tern_dns_status st, char **txt, size_t n, void *arg)
{
	result *r = arg;
	assert_false(in_submit);
	r->called++;
	r->st = st;
	r->n = n;
	for (size_t i = 0; i < n && i < 8; i++)
		snprintf(r->s[i], sizeof(r->s[i]), "%s", txt[i]);
	finish();
}

static tern_dns *client(int timeout)
{
	char resolver[64], *err = NULL;
	snprintf(resolver, sizeof(resolver), "127.0.0.1:%u", srv_port);
	base = event_base_new();
	assert_non_null(base);
	tern_dns *dns = tern_dns_new(base, resolver, timeout, &err);
	if (!dns)
		fail_msg("tern_dns_new: %s", err);
	return dns;
}

static void run(void)
{
	struct timeval limit = { 15, 0 };
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	assert_int_equal(outstanding, 0);
}

static int has(const result *r, const char *s)
{
	for (size_t i = 0; i < r->n && i < 8; i++)
		if (strcmp(r->s[i], s) == 0)
			return 1;
	return 0;
}

static void test_mx(void **state)
{
	enum { ROUNDS = 16 };
	result r[ROUNDS], nx, nodata;
	memset(r, 0, sizeof(r));
	memset(&nx, 0, sizeof(nx));
	memset(&nodata, 0, sizeof(nodata));
	tern_dns *dns = client(5);
	in_submit = 1;
	for (int i = 0; i < ROUNDS; i++)
		tern_dns_mx(dns, "example.test", on_mx, &r[i]);
	tern_dns_mx(dns, "missing.example.test", on_mx, &nx);
	tern_dns_mx(dns, "nodata.example.test", on_mx, &nodata);
	in_submit = 0;
	outstanding = ROUNDS + 2;
	run();
	int first_mx1 = 0;
	for (int i = 0; i < ROUNDS; i++) {
		assert_int_equal(r[i].called, 1);
		assert_int_equal(r[i].st, TERN_DNS_OK);
		assert_int_equal(r[i].n, 3);
		assert_int_equal(r[i].pref[0], 10);
		assert_int_equal(r[i].pref[1], 10);
		assert_int_equal(r[i].pref[2], 20);
		assert_string_equal(r[i].s[2], "mx3.example.test");
		assert_true(has(&r[i], "mx1.example.test") && has(&r[i], "mx2.example.test"));
		first_mx1 += strcmp(r[i].s[0], "mx1.example.test") == 0;
	}
	/* ties come in random order: both orders are seen (fails with p = 2^-15) */
	assert_true(first_mx1 > 0 && first_mx1 < ROUNDS);
	assert_int_equal(nx.st, TERN_DNS_NOTFOUND);
	assert_int_equal(nx.n, 0);
	assert_int_equal(nodata.st, TERN_DNS_NOTFOUND);
	tern_dns_free(&dns);
	assert_null(dns);
	event_base_free(base);
}

static void test_addr_txt(void **state)
{
	result a1, a2, a3, t1, t2;
	memset(&a1, 0, sizeof(a1));
	memset(&a2, 0, sizeof(a2));
	memset(&a3, 0, sizeof(a3));
	memset(&t1, 0, sizeof(t1));
	memset(&t2, 0, sizeof(t2));
	tern_dns *dns = client(5);
	in_submit = 1;
	tern_dns_addr(dns, "mx1.example.test", on_addr, &a1);
	tern_dns_addr(dns, "v4only.example.test", on_addr, &a2);
	tern_dns_addr(dns, "missing.example.test", on_addr, &a3);
	tern_dns_txt(dns, "txt.example.test", on_txt, &t1);
	tern_dns_txt(dns, "missing.example.test", on_txt, &t2);
	in_submit = 0;
	outstanding = 5;
	run();
	assert_int_equal(a1.st, TERN_DNS_OK);
	assert_int_equal(a1.n, 2);
	assert_true(has(&a1, "192.0.2.1") && has(&a1, "2001:db8::1"));
	assert_int_equal(a2.st, TERN_DNS_OK);
	assert_int_equal(a2.n, 2);
	assert_true(has(&a2, "192.0.2.7") && has(&a2, "192.0.2.8"));
	assert_int_equal(a3.st, TERN_DNS_NOTFOUND);
	assert_int_equal(t1.st, TERN_DNS_OK);
	assert_int_equal(t1.n, 2);
	assert_true(has(&t1, "v=spf1 -all") && has(&t1, "hello"));
	assert_int_equal(t2.st, TERN_DNS_NOTFOUND);
	tern_dns_free(&dns);
	event_base_free(base);
}

static void test_failures(void **state)
{
	result f, s;
	memset(&f, 0, sizeof(f));
	memset(&s, 0, sizeof(s));
	tern_dns *dns = client(1);
	int64_t t0 = tern_mono_ms();
	tern_dns_mx(dns, "fail.example.test", on_mx, &f);
	tern_dns_mx(dns, "slow.example.test", on_mx, &s);
	outstanding = 2;
	run();
	int64_t took = tern_mono_ms() - t0;
	assert_int_equal(f.st, TERN_DNS_TEMPFAIL);
	assert_int_equal(s.st, TERN_DNS_TEMPFAIL);
	assert_int_equal(s.called, 1);
	assert_true(took >= 900 && took < 3000);    /* the 1 s deadline */

	/* a query still pending at free is dropped without a callback */
	result p;
	memset(&p, 0, sizeof(p));
	tern_dns_mx(dns, "slow.example.test", on_mx, &p);
	tern_dns_free(&dns);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(p.called, 0);
	event_base_free(base);

	char *err = NULL;
	base = event_base_new();
	assert_null(tern_dns_new(base, "not a server!", 5, &err));
	assert_non_null(err);
	free(err);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mx),
		cmocka_unit_test(test_addr_txt),
		cmocka_unit_test(test_failures),
	};
	return cmocka_run_group_tests(tests, srv_start, srv_end);
}
