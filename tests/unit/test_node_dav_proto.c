/* test_node_dav_proto.c - the protocol side of node/dav/ over real sockets against a
 * temporary store: discovery (well-known redirect, principal and home PROPFIND), Basic
 * authentication, MKCALENDAR, PUT/GET with ETags and If-Match / If-None-Match (412),
 * validation (403 with the CalDAV precondition, 415), calendar-multiget, sync-collection
 * (new, deleted, bad token), PROPPATCH, the free/busy URL, iCal export, and bad input:
 * DOCTYPE / entities, malformed XML, path traversal, unknown methods, other users. Also
 * the URL parser and the iCalendar merge directly. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <cmocka.h>
#include "auth_sasl.h"
#include "dav_private.h"
#include "store_test_util.h"
#include "net_test_util.h"

static struct {
	nt_fixture f;
	nt_server net;
	dav *dav;
	http_service *http;
	unsigned port;
	char bob_auth[128];
	char ann_auth[128];
} T;

static void basic(const char *user, const char *pass, char *out, size_t n)
{
	char raw[128];
	tbuf b = TBUF_INIT;
	snprintf(raw, sizeof(raw), "%s:%s", user, pass);
	auth_b64_encode(raw, strlen(raw), &b);
	snprintf(out, n, "Basic %s", tbuf_cstr(&b));
	tbuf_free(&b);
}

static int group_setup(void **state)
{
	(void)state;
	nt_fixture_init(&T.f, "[server]\nio_threads = 1\nhostname = mx.example.test\n"
			"[dav]\nmax_body_kb = 64\nfreebusy_max_days = 100\n");
	ts_add_domain(T.f.ts->st);
	nt_add_user(T.f.ts->st, "bob", "pencil", NULL);
	nt_add_user(T.f.ts->st, "ann", "paper", NULL);
	dav_env env = { .st = T.f.ts->st, .conf = &T.f.conf, .auth_pool = T.f.auth_pool, .lockout = T.f.lockout,
			.node_name = "n1", .hostname = "mx.example.test" };
	T.dav = dav_new(&env);
	assert_non_null(T.dav);
	http_limits lim = { 65536, 65536, 30, 30 };
	T.http = http_service_new(&lim, dav_handle, T.dav);
	basic("bob@example.test", "pencil", T.bob_auth, sizeof(T.bob_auth));
	basic("ann@example.test", "paper", T.ann_auth, sizeof(T.ann_auth));
	const tern_service_id svc = TERN_SVC_http_alt;
	const tern_service_handler *h = http_service_handler(T.http);
	return nt_start(&T.net, &T.f.conf, T.f.ts->dir, "127.0.0.1", &svc, &h, 1, &T.port);
}

static int group_teardown(void **state)
{
	(void)state;
	nt_stop(&T.net);
	tern_pool_free(&T.f.auth_pool);   /* no request job runs on while the handlers go */
	http_service_free(&T.http);
	dav_free(&T.dav);
	nt_fixture_free(&T.f);
	return 0;
}

typedef struct resp {
	int status;
	tbuf head;
	tbuf body;
} resp;

static void resp_free(resp *r)
{
	tbuf_free(&r->head);
	tbuf_free(&r->body);
}

/* A header value of the response (copied into out), or NULL. */
static const char *resp_header(const resp *r, const char *name, char *out, size_t n)
{
	const char *p = tbuf_cstr(&r->head);
	size_t nl = strlen(name);
	while ((p = strchr(p, '\n')) != NULL) {
		p++;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (*v == ' ')
				v++;
			size_t len = strcspn(v, "\r\n");
			snprintf(out, n, "%.*s", (int)len, v);
			return out;
		}
	}
	return NULL;
}

/* One request on a fresh connection; extra: more header lines, each ending in CRLF. */
static void req(const char *method, const char *target, const char *auth, const char *extra, const char *body,
		resp *out)
{
	int fd = nt_dial(NULL, T.port, 10, 0);
	tbuf q = TBUF_INIT;
	size_t blen = body ? strlen(body) : 0;
	tbuf_appendf(&q, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: %zu\r\n", method,
		     target, blen);
	if (auth != NULL)
		tbuf_appendf(&q, "Authorization: %s\r\n", auth);
	if (extra != NULL)
		tbuf_append_str(&q, extra);
	tbuf_append_str(&q, "\r\n");
	if (body != NULL)
		tbuf_append_str(&q, body);
	assert_int_equal(send(fd, q.data, q.len, 0), (ssize_t)q.len);
	tbuf_free(&q);
	tbuf all = TBUF_INIT;
	char buf[4096];
	ssize_t n;
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		tbuf_append(&all, buf, (size_t)n);
	close(fd);
	memset(out, 0, sizeof(*out));
	const char *sep = strstr(tbuf_cstr(&all), "\r\n\r\n");
	assert_non_null(sep);
	size_t hl = (size_t)(sep - all.data);
	tbuf_append(&out->head, all.data, hl);
	tbuf_append(&out->body, sep + 4, all.len - hl - 4);
	assert_int_equal(sscanf(all.data, "HTTP/1.1 %d", &out->status), 1);
	tbuf_free(&all);
}

static int body_has(const resp *r, const char *s)
{
	return strstr(tbuf_cstr(&r->body), s) != NULL;
}

#define CAL "/calendars/example.test/bob/"
#define PF_HOME "<?xml version=\"1.0\"?><d:propfind xmlns:d=\"DAV:\" xmlns:c=\"urn:ietf:params:xml:ns:caldav\">" \
	"<d:prop><d:resourcetype/><d:displayname/><d:sync-token/><c:calendar-home-set/>" \
	"<c:calendar-user-address-set/><c:schedule-inbox-URL/><d:current-user-principal/>" \
	"<x:nothing xmlns:x=\"urn:x\"/></d:prop></d:propfind>"

static const char event1[] = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
			     "UID:ev1@test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260310T100000Z\r\n"
			     "DTEND:20260310T110000Z\r\nSUMMARY:Planning\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
static const char event2[] = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
			     "UID:ev2@test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260311T140000Z\r\n"
			     "DTEND:20260311T150000Z\r\nSUMMARY:Review\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
static const char todo1[] = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VTODO\r\n"
			    "UID:todo1@test\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Task\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
#define ICAL_CT "Content-Type: text/calendar; charset=utf-8\r\n"

/* Discovery: the well-known redirect, the principal's properties, the home's children,
 * authentication refusals and Depth: infinity. */
static void test_discovery(void **state)
{
	(void)state;
	resp r;
	char v[256];
	req("GET", "/.well-known/caldav", NULL, NULL, NULL, &r);
	assert_int_equal(r.status, 301);
	assert_string_equal(resp_header(&r, "Location", v, sizeof(v)), "/dav/principals/");
	resp_free(&r);

	req("PROPFIND", "/dav/principals/example.test/bob/", NULL, "Depth: 0\r\n", PF_HOME, &r);
	assert_int_equal(r.status, 401);
	assert_non_null(resp_header(&r, "WWW-Authenticate", v, sizeof(v)));
	assert_non_null(strstr(v, "Basic realm=\"Tern\""));
	resp_free(&r);
	char bad[128];
	basic("bob@example.test", "wrong", bad, sizeof(bad));
	req("PROPFIND", "/dav/principals/example.test/bob/", bad, "Depth: 0\r\n", PF_HOME, &r);
	assert_int_equal(r.status, 401);
	resp_free(&r);

	req("PROPFIND", "/dav/principals/example.test/bob/", T.bob_auth, "Depth: 0\r\n", PF_HOME, &r);
	assert_int_equal(r.status, 207);
	assert_true(body_has(&r, "<c:calendar-home-set><d:href>/calendars/example.test/bob/</d:href>"));
	assert_true(body_has(&r, "<d:href>mailto:bob@example.test</d:href>"));
	assert_true(body_has(&r, "<c:schedule-inbox-URL><d:href>/calendars/example.test/bob/inbox/</d:href>"));
	assert_true(body_has(&r, "<d:resourcetype><d:principal/></d:resourcetype>"));
	/* the unknown property in a 404 propstat */
	assert_true(body_has(&r, "<x:nothing xmlns:x=\"urn:x\"/></d:prop><d:status>HTTP/1.1 404"));
	resp_free(&r);

	/* provisioned on the first request: calendar, tasks, inbox, outbox */
	req("PROPFIND", CAL, T.bob_auth, "Depth: 1\r\n", PF_HOME, &r);
	assert_int_equal(r.status, 207);
	assert_true(body_has(&r, "<d:href>/calendars/example.test/bob/calendar/</d:href>"));
	assert_true(body_has(&r, "<d:href>/calendars/example.test/bob/tasks/</d:href>"));
	assert_true(body_has(&r, "<c:schedule-inbox/>"));
	assert_true(body_has(&r, "<c:schedule-outbox/>"));
	assert_true(body_has(&r, "<d:sync-token>http://tern/sync/"));
	resp_free(&r);
	req("PROPFIND", "/addressbooks/example.test/bob/", T.bob_auth, "Depth: 1\r\n", NULL, &r);
	assert_int_equal(r.status, 207);
	assert_true(body_has(&r, "<d:href>/addressbooks/example.test/bob/contacts/</d:href>"));
	assert_true(body_has(&r, "<d:href>/addressbooks/example.test/bob/gal/</d:href>"));
	resp_free(&r);

	req("PROPFIND", CAL, T.bob_auth, "Depth: infinity\r\n", PF_HOME, &r);
	assert_int_equal(r.status, 403);
	assert_true(body_has(&r, "propfind-finite-depth"));
	resp_free(&r);
	req("OPTIONS", CAL, NULL, NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(resp_header(&r, "DAV", v, sizeof(v)));
	assert_non_null(strstr(v, "calendar-access"));
	resp_free(&r);
}

/* MKCALENDAR, PUT, GET, ETags and the conditional requests. */
static void test_put_get_etag(void **state)
{
	(void)state;
	resp r;
	char etag[128], etag2[128], v[256];
	req("MKCALENDAR", CAL "work/", T.bob_auth, NULL,
	    "<?xml version=\"1.0\"?><c:mkcalendar xmlns:d=\"DAV:\" xmlns:c=\"urn:ietf:params:xml:ns:caldav\">"
	    "<d:set><d:prop><d:displayname>Work</d:displayname><c:supported-calendar-component-set>"
	    "<c:comp name=\"VEVENT\"/></c:supported-calendar-component-set></d:prop></d:set></c:mkcalendar>", &r);
	assert_int_equal(r.status, 201);
	resp_free(&r);
	req("MKCALENDAR", CAL "work/", T.bob_auth, NULL, NULL, &r);
	assert_int_equal(r.status, 405);
	assert_true(body_has(&r, "resource-must-be-null"));
	resp_free(&r);

	req("PUT", CAL "work/ev1.ics", T.bob_auth, ICAL_CT "If-None-Match: *\r\n", event1, &r);
	assert_int_equal(r.status, 201);
	assert_non_null(resp_header(&r, "ETag", etag, sizeof(etag)));
	resp_free(&r);
	req("GET", CAL "work/ev1.ics", T.bob_auth, NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(tbuf_cstr(&r.body), event1);
	assert_string_equal(resp_header(&r, "ETag", v, sizeof(v)), etag);
	assert_non_null(strstr(resp_header(&r, "Content-Type", v, sizeof(v)), "text/calendar"));
	resp_free(&r);

	/* a second create of the same href, and a replace with a stale ETag: 412 */
	req("PUT", CAL "work/ev1.ics", T.bob_auth, ICAL_CT "If-None-Match: *\r\n", event1, &r);
	assert_int_equal(r.status, 412);
	resp_free(&r);
	req("PUT", CAL "work/ev1.ics", T.bob_auth, ICAL_CT "If-Match: \"not-the-etag\"\r\n", event1, &r);
	assert_int_equal(r.status, 412);
	resp_free(&r);
	char hdr[200];
	snprintf(hdr, sizeof(hdr), ICAL_CT "If-Match: %s\r\n", etag);
	req("PUT", CAL "work/ev1.ics", T.bob_auth, hdr, event1, &r);
	assert_int_equal(r.status, 204);
	assert_non_null(resp_header(&r, "ETag", etag2, sizeof(etag2)));
	resp_free(&r);
	/* the old ETag no longer deletes */
	snprintf(hdr, sizeof(hdr), "If-Match: %s\r\n", strcmp(etag, etag2) != 0 ? etag : "\"x\"");
	req("DELETE", CAL "work/ev1.ics", T.bob_auth, hdr, NULL, &r);
	assert_int_equal(r.status, 412);
	resp_free(&r);

	/* validation: a VTODO in a VEVENT calendar, broken data, wrong media type, UID clash */
	req("PUT", CAL "work/t.ics", T.bob_auth, ICAL_CT, todo1, &r);
	assert_int_equal(r.status, 403);
	assert_true(body_has(&r, "<c:supported-calendar-component"));
	resp_free(&r);
	req("PUT", CAL "work/bad.ics", T.bob_auth, ICAL_CT, "BEGIN:VCALENDAR\r\nthis is not\r\n", &r);
	assert_int_equal(r.status, 403);
	assert_true(body_has(&r, "<c:valid-calendar-data"));
	resp_free(&r);
	req("PUT", CAL "work/x.ics", T.bob_auth, "Content-Type: image/png\r\n", event1, &r);
	assert_int_equal(r.status, 415);
	resp_free(&r);
	req("PUT", CAL "work/other.ics", T.bob_auth, ICAL_CT, event1, &r);
	assert_int_equal(r.status, 403);
	assert_true(body_has(&r, "no-uid-conflict"));
	assert_true(body_has(&r, "<d:href>/calendars/example.test/bob/work/ev1.ics</d:href>"));
	resp_free(&r);
	/* tasks go into "tasks" */
	req("PUT", CAL "tasks/t1.ics", T.bob_auth, ICAL_CT, todo1, &r);
	assert_int_equal(r.status, 201);
	resp_free(&r);
}

/* calendar-multiget: the object's data, and 404 for a missing href. */
static void test_multiget(void **state)
{
	(void)state;
	resp r;
	req("PUT", CAL "work/ev2.ics", T.bob_auth, ICAL_CT, event2, &r);
	assert_int_equal(r.status, 201);
	resp_free(&r);
	req("REPORT", CAL "work/", T.bob_auth, "Depth: 1\r\n",
	    "<?xml version=\"1.0\"?><c:calendar-multiget xmlns:d=\"DAV:\" xmlns:c=\"urn:ietf:params:xml:ns:caldav\">"
	    "<d:prop><d:getetag/><c:calendar-data/></d:prop>"
	    "<d:href>/calendars/example.test/bob/work/ev2.ics</d:href>"
	    "<d:href>/calendars/example.test/bob/work/missing.ics</d:href></c:calendar-multiget>", &r);
	assert_int_equal(r.status, 207);
	assert_true(body_has(&r, "<d:href>/calendars/example.test/bob/work/ev2.ics</d:href>"));
	assert_true(body_has(&r, "UID:ev2@test"));
	assert_true(body_has(&r, "<d:getetag>&quot;"));
	assert_true(body_has(&r, "<d:href>/calendars/example.test/bob/work/missing.ics</d:href><d:status>HTTP/1.1 404"));
	resp_free(&r);
	/* calendar-query with a time range: ev2 (11 March) only */
	req("REPORT", CAL "work/", T.bob_auth, "Depth: 1\r\n",
	    "<?xml version=\"1.0\"?><c:calendar-query xmlns:d=\"DAV:\" xmlns:c=\"urn:ietf:params:xml:ns:caldav\">"
	    "<d:prop><d:getetag/></d:prop><c:filter><c:comp-filter name=\"VCALENDAR\"><c:comp-filter name=\"VEVENT\">"
	    "<c:time-range start=\"20260311T000000Z\" end=\"20260312T000000Z\"/></c:comp-filter></c:comp-filter>"
	    "</c:filter></c:calendar-query>", &r);
	assert_int_equal(r.status, 207);
	assert_true(body_has(&r, "work/ev2.ics"));
	assert_false(body_has(&r, "work/ev1.ics"));
	resp_free(&r);
}

static void sync_report(const char *token, resp *r)
{
	char body[1024];
	snprintf(body, sizeof(body),
		 "<?xml version=\"1.0\"?><d:sync-collection xmlns:d=\"DAV:\"><d:sync-token>%s</d:sync-token>"
		 "<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>", token);
	req("REPORT", CAL "synced/", T.bob_auth, NULL, body, r);
}

/* The token of a sync-collection answer, copied into out. */
static void sync_token_of(const resp *r, char *out, size_t n)
{
	const char *s = strstr(tbuf_cstr(&r->body), "<d:sync-token>");
	assert_non_null(s);
	s += strlen("<d:sync-token>");
	size_t len = strcspn(s, "<");
	snprintf(out, n, "%.*s", (int)len, s);
}

/* sync-collection: everything at first, then only changes; deletions as 404. */
static void test_sync_collection(void **state)
{
	(void)state;
	resp r;
	char tok[128], tok2[128];
	req("MKCALENDAR", CAL "synced/", T.bob_auth, NULL, NULL, &r);
	assert_int_equal(r.status, 201);
	resp_free(&r);
	req("PUT", CAL "synced/a.ics", T.bob_auth, ICAL_CT, event1, &r);
	assert_int_equal(r.status, 201);
	resp_free(&r);
	sync_report("", &r);
	assert_int_equal(r.status, 207);
	assert_true(body_has(&r, "synced/a.ics"));
	sync_token_of(&r, tok, sizeof(tok));
	resp_free(&r);

	req("PUT", CAL "synced/b.ics", T.bob_auth, ICAL_CT, event2, &r);
	assert_int_equal(r.status, 201);
	resp_free(&r);
	req("DELETE", CAL "synced/a.ics", T.bob_auth, NULL, NULL, &r);
	assert_int_equal(r.status, 204);
	resp_free(&r);
	sync_report(tok, &r);
	assert_int_equal(r.status, 207);
	assert_true(body_has(&r, "synced/b.ics</d:href><d:propstat>"));
	assert_true(body_has(&r, "synced/a.ics</d:href><d:status>HTTP/1.1 404"));
	sync_token_of(&r, tok2, sizeof(tok2));
	assert_string_not_equal(tok, tok2);
	resp_free(&r);
	sync_report(tok2, &r);
	assert_int_equal(r.status, 207);
	assert_false(body_has(&r, "<d:response>"));
	resp_free(&r);

	sync_report("http://tern/sync/999999", &r);
	assert_int_equal(r.status, 403);
	assert_true(body_has(&r, "valid-sync-token"));
	resp_free(&r);
	sync_report("bogus", &r);
	assert_int_equal(r.status, 403);
	resp_free(&r);
}

/* PROPPATCH: all or nothing; the new values read back. */
static void test_proppatch(void **state)
{
	(void)state;
	resp r;
	req("PROPPATCH", CAL "synced/", T.bob_auth, NULL,
	    "<?xml version=\"1.0\"?><d:propertyupdate xmlns:d=\"DAV:\" xmlns:a=\"http://apple.com/ns/ical/\">"
	    "<d:set><d:prop><d:displayname>Synced</d:displayname><a:calendar-color>#FF0000FF</a:calendar-color>"
	    "<z:mine xmlns:z=\"urn:z\">v<z:b>1</z:b></z:mine></d:prop></d:set></d:propertyupdate>", &r);
	assert_int_equal(r.status, 207);
	assert_true(body_has(&r, "HTTP/1.1 200"));
	assert_false(body_has(&r, "HTTP/1.1 424"));
	resp_free(&r);
	/* a protected property fails the whole update */
	req("PROPPATCH", CAL "synced/", T.bob_auth, NULL,
	    "<?xml version=\"1.0\"?><d:propertyupdate xmlns:d=\"DAV:\"><d:set><d:prop>"
	    "<d:displayname>Never</d:displayname><d:getetag>x</d:getetag></d:prop></d:set></d:propertyupdate>", &r);
	assert_int_equal(r.status, 207);
	assert_true(body_has(&r, "HTTP/1.1 403"));
	assert_true(body_has(&r, "HTTP/1.1 424"));
	resp_free(&r);
	req("PROPFIND", CAL "synced/", T.bob_auth, "Depth: 0\r\n",
	    "<?xml version=\"1.0\"?><d:propfind xmlns:d=\"DAV:\" xmlns:a=\"http://apple.com/ns/ical/\">"
	    "<d:prop><d:displayname/><a:calendar-color/><z:mine xmlns:z=\"urn:z\"/></d:prop></d:propfind>", &r);
	assert_int_equal(r.status, 207);
	assert_true(body_has(&r, "<d:displayname>Synced</d:displayname>"));
	assert_true(body_has(&r, "<ical:calendar-color>#FF0000FF</ical:calendar-color>"));
	assert_true(body_has(&r, ">v<"));
	assert_true(body_has(&r, "urn:z"));
	resp_free(&r);
}

/* Free/busy URL and the iCal export of a calendar. */
static void test_freebusy_ical(void **state)
{
	(void)state;
	resp r;
	req("GET", "/freebusy/bob@example.test?start=20260301T000000Z&end=20260320T000000Z", T.ann_auth, NULL, NULL,
	    &r);
	assert_int_equal(r.status, 200);
	assert_true(body_has(&r, "BEGIN:VFREEBUSY"));
	assert_true(body_has(&r, "20260311T140000Z/20260311T150000Z"));
	assert_false(body_has(&r, "Review"));   /* never details */
	resp_free(&r);
	req("GET", "/freebusy/bob@example.test?start=20260101T000000Z&end=20270101T000000Z", T.ann_auth, NULL, NULL,
	    &r);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	req("GET", "/freebusy/bob@example.test", NULL, NULL, NULL, &r);
	assert_int_equal(r.status, 401);
	resp_free(&r);
	req("GET", "/ical/example.test/bob/work.ics", T.bob_auth, NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_true(body_has(&r, "UID:ev1@test"));
	assert_true(body_has(&r, "UID:ev2@test"));
	assert_int_equal(strstr(tbuf_cstr(&r.body), "BEGIN:VCALENDAR") == tbuf_cstr(&r.body), 1);
	resp_free(&r);
	req("GET", "/ical/public/example.test/work.ics", NULL, NULL, NULL, &r);
	assert_int_equal(r.status, 404);   /* not marked public */
	resp_free(&r);
}

/* Bad input: DOCTYPE and entities, malformed XML, traversal, other users, methods. */
static void test_bad_input(void **state)
{
	(void)state;
	resp r;
	req("PROPFIND", CAL, T.bob_auth, "Depth: 0\r\n",
	    "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]>"
	    "<d:propfind xmlns:d=\"DAV:\"><d:prop><d:displayname>&lol2;</d:displayname></d:prop></d:propfind>", &r);
	assert_int_equal(r.status, 400);
	assert_true(body_has(&r, "DOCTYPE"));
	resp_free(&r);
	req("PROPFIND", CAL, T.bob_auth, "Depth: 0\r\n",
	    "<!-- c --><!DOCTYPE x SYSTEM \"file:///etc/passwd\"><d:propfind xmlns:d=\"DAV:\"/>", &r);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	req("PROPFIND", CAL, T.bob_auth, "Depth: 0\r\n", "<d:propfind xmlns:d=\"DAV:\"><d:prop>", &r);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	req("GET", "/calendars/example.test/bob/%2e%2e/ann/calendar/", T.bob_auth, NULL, NULL, &r);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	req("GET", "/calendars/example.test/bob/work%2Fx/ev1.ics", T.bob_auth, NULL, NULL, &r);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	req("PROPFIND", "/calendars/example.test/ann/", T.bob_auth, "Depth: 0\r\n", NULL, &r);
	assert_int_equal(r.status, 403);
	resp_free(&r);
	req("PUT", "/addressbooks/example.test/bob/gal/x.vcf", T.bob_auth, "Content-Type: text/vcard\r\n",
	    "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:X\r\nUID:x\r\nEND:VCARD\r\n", &r);
	assert_int_equal(r.status, 403);
	resp_free(&r);
	char v[256];
	req("LOCK", CAL, T.bob_auth, NULL, NULL, &r);
	assert_int_equal(r.status, 405);
	assert_non_null(resp_header(&r, "Allow", v, sizeof(v)));
	resp_free(&r);
	/* a body over [dav] max_body_kb is refused by the HTTP layer, before it is read */
	int fd = nt_dial(NULL, T.port, 10, 0);
	char line[512];
	snprintf(line, sizeof(line), "PUT " CAL "work/big.ics HTTP/1.1\r\nHost: t\r\nAuthorization: %s\r\n"
		 ICAL_CT "Content-Length: %d\r\n\r\n", T.bob_auth, 70 * 1024);
	nt_say(fd, line);
	nt_hear(fd, line, sizeof(line));
	assert_string_equal(line, "HTTP/1.1 413 Payload Too Large");
	close(fd);
}

/* The URL parser directly. */
static void test_path_parse(void **state)
{
	(void)state;
	dav_path p;
	assert_int_equal(dav_path_parse("/calendars/Example.TEST/Bob/work/a%40b.ics",
					"/calendars/Example.TEST/Bob/work/a@b.ics", &p), 0);
	assert_int_equal(p.kind, DAV_P_OBJ);
	assert_string_equal(p.domain, "example.test");
	assert_string_equal(p.user, "bob");
	assert_string_equal(p.coll, "work");
	assert_string_equal(p.obj, "a@b.ics");
	assert_int_equal(dav_path_parse("/addressbooks/d.test/u/", "/addressbooks/d.test/u/", &p), 0);
	assert_int_equal(p.kind, DAV_P_HOME);
	assert_int_equal(p.card, 1);
	assert_int_equal(dav_path_parse("/freebusy/Bob@Example.test.ifb", "/freebusy/Bob@Example.test.ifb", &p), 0);
	assert_int_equal(p.kind, DAV_P_FREEBUSY);
	assert_string_equal(p.user, "bob");
	assert_string_equal(p.domain, "example.test");
	assert_int_equal(dav_path_parse("/ical/public/d.test/team.ics", "/ical/public/d.test/team.ics", &p), 0);
	assert_int_equal(p.kind, DAV_P_ICAL_PUBLIC);
	assert_string_equal(p.coll, "team");
	assert_int_equal(dav_path_parse("/a/../b", "/a/../b", &p), -2);
	assert_int_equal(dav_path_parse("/calendars//x/", "/calendars//x/", &p), -2);
	assert_int_equal(dav_path_parse("/calendars/d/u/a%2fb/", "/calendars/d/u/a/b/", &p), -2);
	assert_int_equal(dav_path_parse("/calendars/d/u/c/o/x", "/calendars/d/u/c/o/x", &p), -1);
	assert_int_equal(dav_path_parse("/nothing", "/nothing", &p), -1);
}

/* The iCalendar merge: one VCALENDAR, each VTIMEZONE once. */
static void test_ics_merge(void **state)
{
	(void)state;
	static const char a[] = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:a\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\n"
				"BEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
				"BEGIN:VEVENT\r\nUID:a\r\nSUMMARY:long\r\n  folded\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
	static const char b[] = "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VTIMEZONE\nTZID:Europe/Paris\nEND:VTIMEZONE\n"
				"BEGIN:VTODO\nUID:b\nEND:VTODO\nEND:VCALENDAR\n";
	dav_ics_merge *m = dav_ics_merge_new("My; cal");
	dav_ics_merge_add(m, a, strlen(a));
	dav_ics_merge_add(m, b, strlen(b));
	tbuf out = TBUF_INIT;
	dav_ics_merge_finish(m, &out);
	dav_ics_merge_free(&m);
	assert_null(m);
	const char *s = tbuf_cstr(&out);
	assert_non_null(strstr(s, "X-WR-CALNAME:My\\; cal\r\n"));
	assert_non_null(strstr(s, "UID:a\r\nSUMMARY:long\r\n  folded\r\n"));
	assert_non_null(strstr(s, "BEGIN:VTODO\r\nUID:b\r\nEND:VTODO\r\n"));
	assert_non_null(strstr(s, "TZID:Europe/Paris"));
	assert_null(strstr(strstr(s, "TZID:Europe/Paris") + 1, "TZID:Europe/Paris"));
	assert_null(strstr(s, "PRODID:a"));
	assert_int_equal(strncmp(s, "BEGIN:VCALENDAR\r\n", 17), 0);
	assert_non_null(strstr(s, "END:VCALENDAR\r\n"));
	tbuf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_parse),
		cmocka_unit_test(test_ics_merge),
		cmocka_unit_test(test_discovery),
		cmocka_unit_test(test_put_get_etag),
		cmocka_unit_test(test_multiget),
		cmocka_unit_test(test_sync_collection),
		cmocka_unit_test(test_proppatch),
		cmocka_unit_test(test_freebusy_ical),
		cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
