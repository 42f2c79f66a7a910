/* test_node_dav_proxy.c - the HTTP halves of a proxied DAV request (node/dav/
 * dav_proxy_http.c): the forwarded request (end-to-end headers kept, hop-by-hop and
 * credential headers dropped, the proxy's own fields, body) and the reader of the home
 * node's answer, fed whole and one byte at a time (Content-Length, HEAD, 204, interim
 * 1xx, body up to EOF, fields named by Connection, and the refusals: chunked, too
 * large, cut short, malformed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "dav_proxy.h"

static void add_header(http_request *req, const char *name, const char *value)
{
	req->headers[req->nheaders].name = (char *)name;
	req->headers[req->nheaders].value = (char *)value;
	req->nheaders++;
}

static void test_build_request(void **state)
{
	http_request req;
	tbuf out = TBUF_INIT;
	(void)state;
	memset(&req, 0, sizeof(req));
	req.method = "PUT";
	req.target = "/calendars/example.test/carol/calendar/e1.ics?x=1";
	add_header(&req, "Host", "front.example.test");
	add_header(&req, "Authorization", "Basic Y2Fyb2w6cHc=");
	add_header(&req, "Connection", "keep-alive, X-Private");
	add_header(&req, "X-Private", "hop only");
	add_header(&req, "Keep-Alive", "timeout=5");
	add_header(&req, "X-Tern-User", "mallory@example.test");
	add_header(&req, "X-Forwarded-For", "192.0.2.66");
	add_header(&req, "Content-Length", "5");
	add_header(&req, "If-Match", "\"abc\"");
	add_header(&req, "Content-Type", "text/calendar");
	add_header(&req, "Depth", "0");
	tbuf_append_str(&req.body, "BEGIN");
	assert_int_equal(dav_proxy_build_request(&req, "10.0.0.2", 20443, "Basic bm9kZQ==", "carol@example.test",
						 "192.0.2.7", &out), 0);
	const char *s = tbuf_cstr(&out);
	assert_true(strncmp(s, "PUT /calendars/example.test/carol/calendar/e1.ics?x=1 HTTP/1.1\r\n", 64) == 0);
	assert_non_null(strstr(s, "\r\nHost: 10.0.0.2:20443\r\n"));
	assert_non_null(strstr(s, "\r\nAuthorization: Basic bm9kZQ==\r\n"));
	assert_non_null(strstr(s, "\r\nX-Tern-User: carol@example.test\r\n"));
	assert_non_null(strstr(s, "\r\nX-Forwarded-For: 192.0.2.7\r\n"));
	assert_non_null(strstr(s, "\r\nConnection: close\r\n"));
	assert_non_null(strstr(s, "\r\nIf-Match: \"abc\"\r\n"));
	assert_non_null(strstr(s, "\r\nContent-Type: text/calendar\r\n"));
	assert_non_null(strstr(s, "\r\nDepth: 0\r\n"));
	/* the client's own credentials, hop-by-hop fields and forged proxy fields stay out */
	assert_null(strstr(s, "Y2Fyb2w6cHc="));
	assert_null(strstr(s, "mallory"));
	assert_null(strstr(s, "192.0.2.66"));
	assert_null(strstr(s, "X-Private"));
	assert_null(strstr(s, "Keep-Alive"));
	assert_null(strstr(s, "front.example.test"));
	assert_null(strstr(s, "keep-alive"));
	const char *end = strstr(s, "\r\nContent-Length: 5\r\n\r\nBEGIN");
	assert_non_null(end);
	assert_int_equal(strlen(end), strlen("\r\nContent-Length: 5\r\n\r\nBEGIN"));
	/* one Content-Length only */
	assert_ptr_equal(strstr(s, "Content-Length"), strstr(s, "Content-Length: 5\r\n\r\n"));
	tbuf_free(&out);

	/* IPv6 literal hosts are bracketed; a header with CR/LF is never forwarded */
	tbuf_free(&req.body);
	req.nheaders = 0;
	req.method = "GET";
	req.target = "/dav/principals/";
	assert_int_equal(dav_proxy_build_request(&req, "::1", 443, "Basic x", "c@d", "", &out), 0);
	assert_non_null(strstr(tbuf_cstr(&out), "\r\nHost: [::1]:443\r\n"));
	assert_null(strstr(tbuf_cstr(&out), "X-Forwarded-For"));
	assert_non_null(strstr(tbuf_cstr(&out), "Content-Length: 0\r\n\r\n"));
	tbuf_reset(&out);
	add_header(&req, "X-Evil", "a\r\nX-Tern-User: mallory@example.test");
	assert_int_equal(dav_proxy_build_request(&req, "h", 1, "Basic x", "c@d", "", &out), -1);
	tbuf_free(&out);
}

/* Feed text into a reply reader, whole or one byte at a time; the last code. */
static int feed(dav_proxy_reply *rp, const char *text, size_t n, int bytewise, int eof, const char **err)
{
	struct evbuffer *in = evbuffer_new();
	int rc = DAV_PROXY_MORE;
	assert_non_null(in);
	if (bytewise) {
		for (size_t i = 0; i < n && rc == DAV_PROXY_MORE; i++) {
			evbuffer_add(in, text + i, 1);
			rc = dav_proxy_reply_read(rp, in, 0, err);
		}
	} else {
		evbuffer_add(in, text, n);
		rc = dav_proxy_reply_read(rp, in, 0, err);
	}
	if (rc == DAV_PROXY_MORE && eof)
		rc = dav_proxy_reply_read(rp, in, 1, err);
	evbuffer_free(in);
	return rc;
}

static const char *find(const dav_proxy_reply *rp, const char *name)
{
	for (unsigned i = 0; i < rp->nheaders; i++)
		if (strcasecmp(rp->headers[i].name, name) == 0)
			return rp->headers[i].value;
	return NULL;
}

static void test_reply_content_length(void **state)
{
	static const char text[] =
		"HTTP/1.1 100 Continue\r\n\r\n"
		"HTTP/1.1 201 Created\r\nDate: Mon, 01 Jan 2030 00:00:00 GMT\r\nContent-Length: 4\r\n"
		"Content-Type: text/plain; charset=utf-8\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\n"
		"ETag: \"e1\"\r\nDAV: 1, 3\r\nLocation: /calendars/d/u/c/e1.ics\r\n\r\nbodyEXTRA";
	(void)state;
	for (int bytewise = 0; bytewise < 2; bytewise++) {
		dav_proxy_reply rp;
		const char *err = NULL;
		dav_proxy_reply_init(&rp, 0, 1024);
		assert_int_equal(feed(&rp, text, sizeof(text) - 1, bytewise, 0, &err), DAV_PROXY_DONE);
		assert_int_equal(rp.status, 201);
		assert_int_equal(rp.body.len, 4);
		assert_string_equal(tbuf_cstr(&rp.body), "body");
		assert_string_equal(rp.ctype, "text/plain; charset=utf-8");
		assert_string_equal(find(&rp, "ETag"), "\"e1\"");
		assert_string_equal(find(&rp, "Location"), "/calendars/d/u/c/e1.ics");
		assert_null(find(&rp, "Date"));
		assert_null(find(&rp, "DAV"));
		assert_null(find(&rp, "Connection"));
		assert_null(find(&rp, "X-Hop"));
		assert_null(find(&rp, "Content-Length"));
		assert_int_equal(rp.nheaders, 2);
		dav_proxy_reply_clear(&rp);
	}
}

static void test_reply_bodiless_and_eof(void **state)
{
	dav_proxy_reply rp;
	const char *err = NULL;
	(void)state;
	/* HEAD: Content-Length describes a body that does not come */
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 900\r\nETag: \"x\"\r\n\r\n";
	dav_proxy_reply_init(&rp, 1, 100);
	assert_int_equal(feed(&rp, head, sizeof(head) - 1, 1, 0, &err), DAV_PROXY_DONE);
	assert_int_equal(rp.status, 200);
	assert_int_equal(rp.body.len, 0);
	dav_proxy_reply_clear(&rp);
	/* 204 and 304 have no body either */
	static const char nc[] = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";
	dav_proxy_reply_init(&rp, 0, 100);
	assert_int_equal(feed(&rp, nc, sizeof(nc) - 1, 0, 0, &err), DAV_PROXY_DONE);
	assert_int_equal(rp.status, 204);
	dav_proxy_reply_clear(&rp);
	/* no Content-Length: the body ends with the connection */
	static const char open_ended[] = "HTTP/1.0 207 Multi-Status\r\n\r\n<multistatus/>";
	dav_proxy_reply_init(&rp, 0, 100);
	assert_int_equal(feed(&rp, open_ended, sizeof(open_ended) - 1, 1, 0, &err), DAV_PROXY_MORE);
	dav_proxy_reply_clear(&rp);
	dav_proxy_reply_init(&rp, 0, 100);
	assert_int_equal(feed(&rp, open_ended, sizeof(open_ended) - 1, 0, 1, &err), DAV_PROXY_DONE);
	assert_int_equal(rp.status, 207);
	assert_string_equal(tbuf_cstr(&rp.body), "<multistatus/>");
	dav_proxy_reply_clear(&rp);
}

static void test_reply_refused(void **state)
{
	static const struct {
		const char *text;
		const char *why;
	} cases[] = {
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n", "chunked" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n", "too large" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "cut short" },
		{ "HTTP/1.1 200 OK\r\n\r\n0123456789012345678901234567890123456789012345678901234567890123456789"
		  "0123456789012345678901234567890123456789", "too large" },
		{ "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", "status line" },
		{ "ICY 200 OK\r\n\r\n", "status line" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "Content-Length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length" },
		{ "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", "malformed" },
		{ "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", "folded" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n", "before answering" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dav_proxy_reply rp;
		const char *err = NULL;
		dav_proxy_reply_init(&rp, 0, 100);
		int rc = feed(&rp, cases[i].text, strlen(cases[i].text), (int)(i % 2), 1, &err);
		if (rc != DAV_PROXY_BAD || err == NULL || strstr(err, cases[i].why) == NULL)
			fail_msg("case %zu: rc %d, error %s (expected %s)", i, rc, err ? err : "none", cases[i].why);
		dav_proxy_reply_clear(&rp);
	}
	/* an endless head is refused once it passes the bound */
	dav_proxy_reply rp;
	const char *err = NULL;
	struct evbuffer *in = evbuffer_new();
	dav_proxy_reply_init(&rp, 0, 100);
	evbuffer_add_printf(in, "HTTP/1.1 200 OK\r\n");
	int rc = DAV_PROXY_MORE;
	for (int i = 0; i < 10000 && rc == DAV_PROXY_MORE; i++) {
		evbuffer_add_printf(in, "X-Filler-%d: 0123456789\r\n", i);
		rc = dav_proxy_reply_read(&rp, in, 0, &err);
	}
	assert_int_equal(rc, DAV_PROXY_BAD);
	assert_non_null(strstr(err, "over-long"));
	evbuffer_free(in);
	dav_proxy_reply_clear(&rp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_request),
		cmocka_unit_test(test_reply_content_length),
		cmocka_unit_test(test_reply_bodiless_and_eof),
		cmocka_unit_test(test_reply_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
