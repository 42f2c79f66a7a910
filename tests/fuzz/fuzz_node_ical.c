/* fuzz_node_ical.c - the iCalendar side of node/dav/ on arbitrary bytes, as a PUT body of
 * a calendar: dav_ical_check for the default components (VEVENT, VTODO, VJOURNAL) and for
 * a VEVENT-only collection, then on what passes what the server does with a stored
 * object: busy time (dav_ical_busy, dav_ical_busy_set, dav_freebusy_render), CALDAV:expand
 * (dav_ical_expand, bounded and unbounded) and calendar-query matching against a few fixed
 * filters. Also dav_time_parse on the first line. Checks the promises of dav_cal.h: a
 * precondition and a reason on refusal, uid and an allowed component on success, the same
 * verdict twice, busy periods inside the window, expansion output a VCALENDAR. */
#include <libxml/parser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "dav_cal.h"
#include "dav_ical_int.h"

#define FUZZ_DAY 86400
#define FUZZ_NOW 1717200000       /* 2024-06-01: a fixed "now" so runs repeat */
#define FUZZ_TIME_MAX 40

static const char *const fuzz_filters_xml[] = {
	("<C:filter xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><C:comp-filter name=\"VCALENDAR\">"
	"<C:comp-filter name=\"VEVENT\"><C:time-range start=\"20240101T000000Z\" end=\"20250101T000000Z\"/>"
	"</C:comp-filter></C:comp-filter></C:filter>"),
	("<C:filter xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><C:comp-filter name=\"VCALENDAR\">"
	"<C:comp-filter name=\"VTODO\"><C:time-range start=\"20240101T000000Z\"/>"
	"<C:prop-filter name=\"COMPLETED\"><C:is-not-defined/></C:prop-filter></C:comp-filter>"
	"</C:comp-filter></C:filter>"),
	("<C:filter xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><C:comp-filter name=\"VCALENDAR\">"
	"<C:comp-filter name=\"VEVENT\"><C:prop-filter name=\"ATTENDEE\">"
	"<C:text-match collation=\"i;ascii-casemap\">mailto:ann@example.org</C:text-match>"
	"<C:param-filter name=\"PARTSTAT\"><C:text-match negate-condition=\"yes\">DECLINED</C:text-match>"
	"</C:param-filter></C:prop-filter></C:comp-filter></C:comp-filter></C:filter>"),
	("<C:filter xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><C:comp-filter name=\"VCALENDAR\">"
	"<C:comp-filter name=\"VEVENT\"><C:prop-filter name=\"SUMMARY\">"
	"<C:text-match collation=\"i;unicode-casemap\" match-type=\"starts-with\">team</C:text-match>"
	"</C:prop-filter><C:comp-filter name=\"VALARM\"><C:time-range start=\"20240101T000000Z\" "
	"end=\"20300101T000000Z\"/></C:comp-filter></C:comp-filter></C:comp-filter></C:filter>"),
	("<C:filter xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><C:comp-filter name=\"VCALENDAR\">"
	"<C:comp-filter name=\"VJOURNAL\"><C:is-not-defined/></C:comp-filter></C:comp-filter></C:filter>"),
};
#define FUZZ_NFILTERS (sizeof(fuzz_filters_xml) / sizeof(fuzz_filters_xml[0]))

static dav_cal_filter *filters[FUZZ_NFILTERS];

/* Compile the fixed filters once; a filter that does not compile is a broken harness. */
static void fuzz_init(void)
{
	for (size_t i = 0; i < FUZZ_NFILTERS; i++) {
		const char *x = fuzz_filters_xml[i];
		xmlDoc *doc = xmlReadMemory(x, (int)strlen(x), "f.xml", NULL, XML_PARSE_NONET);
		tbuf err = TBUF_INIT;
		if (doc == NULL || dav_cal_filter_parse(xmlDocGetRootElement(doc), &filters[i], &err) < 0)
			abort();
		tbuf_free(&err);
		xmlFreeDoc(doc);
	}
}

/* dav_time_parse on the first line: a success from 1970 on formats back to the same
 * instant. */
static void fuzz_time(const uint8_t *data, size_t size)
{
	char s[FUZZ_TIME_MAX + 1];
	size_t n = 0;
	while (n < size && n < FUZZ_TIME_MAX && data[n] != '\n' && data[n] != '\0')
		n++;
	memcpy(s, data, n);
	s[n] = '\0';
	int64_t t = 0, again = 0;
	if (dav_time_parse(s, &t) < 0 || t < 0)
		return;       /* dav_ical_fmt_utc clamps times before 1970 to 1970 */
	char fmt[17];
	dav_ical_fmt_utc(t, fmt);
	if (dav_time_parse(fmt, &again) < 0 || again != t)
		abort();
}

/* Check once; the result's invariants. */
static int fuzz_check(const char *d, size_t len, char *const *allowed, size_t n, Tern__DavObject *o)
{
	const char *prec = NULL;
	tbuf why = TBUF_INIT;
	tern__dav_object__init(o);
	o->uid = NULL;        /* malloc'ed by a success only */
	o->component = NULL;
	int rc = dav_ical_check(d, len, allowed, n, o, &prec, &why);
	if (rc == 0) {
		int ok = 0;
		for (size_t i = 0; i < n; i++)
			ok |= strcmp(o->component, allowed[i]) == 0;
		if (!ok || o->uid == NULL || o->uid[0] == '\0')
			abort();
	} else if (rc != -1 || why.len == 0 || prec == NULL ||
		   (strcmp(prec, "valid-calendar-data") != 0 && strcmp(prec, "supported-calendar-component") != 0 &&
		    strcmp(prec, "valid-calendar-object-resource") != 0)) {
		abort();
	}
	tbuf_free(&why);
	return rc;
}

/* Busy time in [start, end): every period inside and non-empty; rendered as VFREEBUSY. */
static void fuzz_busy(const Tern__DavObject *o, int64_t start, int64_t end)
{
	dav_busy *list = NULL;
	size_t n = 0;
	if (dav_ical_busy(o, start, end, &list, &n) < 0)
		abort();      /* it passed dav_ical_check, so it parses */
	for (size_t i = 0; i < n; i++)
		if (list[i].start < start || list[i].end > end || list[i].start >= list[i].end)
			abort();
	tbuf fb = TBUF_INIT;
	dav_freebusy_render(list, n, start, end, "mailto:org@example.org", "mailto:ann@example.org", 1, &fb);
	if (fb.len == 0 || strstr(tbuf_cstr(&fb), "BEGIN:VFREEBUSY") == NULL)
		abort();
	tbuf_free(&fb);
	free(list);
}

/* CALDAV:expand over [start, end): a whole VCALENDAR when it succeeds. */
static void fuzz_expand(const Tern__DavObject *o, int64_t start, int64_t end)
{
	tbuf x = TBUF_INIT;
	if (dav_ical_expand(o, start, end, &x) == 0 && x.len > 0 &&
	    strstr(tbuf_cstr(&x), "BEGIN:VCALENDAR") == NULL)
		abort();
	tbuf_free(&x);
}

/* What the server does with a stored object: o as protobuf-c would unpack it (data not
 * NUL-terminated, every field malloc'ed). */
static void fuzz_stored(const uint8_t *data, size_t size, Tern__DavObject *checked)
{
	Tern__DavObject *o = malloc(sizeof(*o));
	if (o == NULL)
		abort();
	tern__dav_object__init(o);
	o->data.data = malloc(size ? size : 1);
	if (o->data.data == NULL)
		abort();
	memcpy(o->data.data, data, size);
	o->data.len = size;
	o->uid = checked->uid;
	o->component = checked->component;
	o->start = checked->start;
	o->end = checked->end;
	checked->uid = NULL;
	checked->component = NULL;

	int64_t s = o->start, e = o->end;
	if (s < -(INT64_C(1) << 40) || s > (INT64_C(1) << 40))
		s = FUZZ_NOW;
	fuzz_busy(o, s - FUZZ_DAY, s + 60 * FUZZ_DAY);
	fuzz_busy(o, FUZZ_NOW - 31 * FUZZ_DAY, FUZZ_NOW + 366 * FUZZ_DAY);
	if (strcmp(o->component, "VEVENT") == 0)
		dav_ical_busy_set(o, FUZZ_NOW - 31 * FUZZ_DAY, FUZZ_NOW + 366 * FUZZ_DAY);
	fuzz_expand(o, s - FUZZ_DAY, s + 60 * FUZZ_DAY);
	if (e != INT64_MAX && e > s)
		fuzz_expand(o, s, e);
	for (size_t i = 0; i < FUZZ_NFILTERS; i++) {
		int m = dav_cal_filter_match(filters[i], o);
		if ((m != 0 && m != 1) || dav_cal_filter_match(filters[i], o) != m)
			abort();
	}
	tern__dav_object__free_unpacked(o, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int inited;
	static char *const all[] = { "VEVENT", "VTODO", "VJOURNAL" };
	static char *const events[] = { "VEVENT" };
	Tern__DavObject o, again, ev;

	if (!inited) {
		fuzz_init();
		inited = 1;
	}
	fuzz_time(data, size);
	/* as a PUT body: exactly size bytes, no terminator promised by the caller */
	char *d = malloc(size ? size : 1);
	if (d == NULL)
		abort();
	memcpy(d, data, size);
	int rc = fuzz_check(d, size, all, 3, &o);
	int rc2 = fuzz_check(d, size, all, 3, &again);
	if (rc != rc2 || (rc == 0 && (strcmp(o.uid, again.uid) != 0 || strcmp(o.component, again.component) != 0 ||
				     o.start != again.start || o.end != again.end)))
		abort();
	int rce = fuzz_check(d, size, events, 1, &ev);
	if (rc == 0 && (strcmp(o.component, "VEVENT") == 0) != (rce == 0))
		abort();
	if (rc != 0 && rce == 0)
		abort();
	if (rc == 0)
		fuzz_stored(data, size, &o);
	free(o.uid);
	free(o.component);
	free(again.uid);
	free(again.component);
	free(ev.uid);
	free(ev.component);
	free(d);
	return 0;
}
