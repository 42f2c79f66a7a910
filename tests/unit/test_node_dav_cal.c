/* test_node_dav_cal.c - the iCalendar/vCard logic of node/dav/ (dav_cal.h): object checks,
 * calendar-query and addressbook-query filters, recurrence with EXDATE and overrides,
 * time zones across DST, VTODO time ranges, busy time and the VFREEBUSY rendering. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <libxml/parser.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dav_cal.h"

#define CAL_HEAD "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n"
#define CAL_TAIL "END:VCALENDAR\n"

/* Weekly on Mondays 10:00-11:00Z from 2024-01-01, five times; the 15th excluded; the
 * 22nd moved to Wednesday the 24th 15:00-16:00Z. */
static const char weekly[] = CAL_HEAD
	"BEGIN:VEVENT\nUID:w1\nDTSTAMP:20240101T000000Z\nDTSTART:20240101T100000Z\n"
	"DTEND:20240101T110000Z\nSUMMARY:Team Meeting\nRRULE:FREQ=WEEKLY;COUNT=5\n"
	"EXDATE:20240115T100000Z\n"
	"ATTENDEE;PARTSTAT=ACCEPTED;CN=Ann:mailto:ann@example.org\nEND:VEVENT\n"
	"BEGIN:VEVENT\nUID:w1\nDTSTAMP:20240101T000000Z\nRECURRENCE-ID:20240122T100000Z\n"
	"DTSTART:20240124T150000Z\nDTEND:20240124T160000Z\nSUMMARY:Team Meeting (moved)\n"
	"END:VEVENT\n" CAL_TAIL;

static const char berlin[] = CAL_HEAD
	"BEGIN:VTIMEZONE\nTZID:Europe/Berlin\n"
	"BEGIN:DAYLIGHT\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0200\nTZNAME:CEST\n"
	"DTSTART:19700329T020000\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\nEND:DAYLIGHT\n"
	"BEGIN:STANDARD\nTZOFFSETFROM:+0200\nTZOFFSETTO:+0100\nTZNAME:CET\n"
	"DTSTART:19701025T030000\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\nEND:STANDARD\n"
	"END:VTIMEZONE\n"
	"BEGIN:VEVENT\nUID:b1\nDTSTAMP:20240101T000000Z\n"
	"DTSTART;TZID=Europe/Berlin:20240325T090000\nDTEND;TZID=Europe/Berlin:20240325T100000\n"
	"RRULE:FREQ=WEEKLY\nSUMMARY:Standup\nEND:VEVENT\n" CAL_TAIL;

static const char allday[] = CAL_HEAD
	"BEGIN:VEVENT\nUID:a1\nDTSTAMP:20240101T000000Z\nDTSTART;VALUE=DATE:20240310\n"
	"SUMMARY:Holiday\nEND:VEVENT\n" CAL_TAIL;

static const char card3[] = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c3\r\nFN:Jürgen Müller\r\n"
			    "N:Müller;Jürgen;;;\r\nitem1.EMAIL;TYPE=INTERNET,WORK:juergen@examp\r\n le.org\r\n"
			    "TEL;TYPE=cell:+49 170 1234567\r\nNOTE:one\\, two\\; three\r\nEND:VCARD\r\n";
static const char card4[] = "BEGIN:VCARD\nVERSION:4.0\nUID:urn:uuid:c4\nFN:Ann Smith\n"
			    "EMAIL;TYPE=home:ann@home.example\nEND:VCARD\n";

static Tern__DavObject obj(const char *s)
{
	Tern__DavObject o = TERN__DAV_OBJECT__INIT;
	o.data.data = (uint8_t *)s;
	o.data.len = strlen(s);
	return o;
}

static int64_t T(const char *s)
{
	int64_t t = 0;
	assert_int_equal(dav_time_parse(s, &t), 0);
	return t;
}

/* Check s for a VEVENT-only collection; returns the result, fills o and *prec. */
static int check(const char *s, const char *comp, Tern__DavObject *o, const char **prec)
{
	char *allowed[1] = { (char *)comp };
	tbuf why = TBUF_INIT;
	*o = (Tern__DavObject)TERN__DAV_OBJECT__INIT;
	int rc = dav_ical_check(s, strlen(s), allowed, 1, o, prec, &why);
	if (rc < 0)
		assert_true(why.len > 0);
	tbuf_free(&why);
	return rc;
}

static void free_obj(Tern__DavObject *o)
{
	if (o->uid != protobuf_c_empty_string)
		free(o->uid);
	if (o->component != protobuf_c_empty_string)
		free(o->component);
}

/* Match s against a CALDAV:filter given as XML. */
static int cal_match(const char *xml, const char *s)
{
	xmlDoc *doc = xmlReadMemory(xml, (int)strlen(xml), "f.xml", NULL, XML_PARSE_NONET);
	assert_non_null(doc);
	dav_cal_filter *f = NULL;
	tbuf err = TBUF_INIT;
	int rc = dav_cal_filter_parse(xmlDocGetRootElement(doc), &f, &err);
	if (rc < 0)
		fail_msg("filter: %s", tbuf_cstr(&err));
	Tern__DavObject o = obj(s);
	int hit = dav_cal_filter_match(f, &o);
	dav_cal_filter_free(&f);
	assert_null(f);
	tbuf_free(&err);
	xmlFreeDoc(doc);
	return hit;
}

/* A time-range filter on comp inside VCALENDAR. */
static int in_range(const char *comp, const char *start, const char *end, const char *s)
{
	char xml[512];
	int n = snprintf(xml, sizeof(xml),
			 "<C:filter xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><C:comp-filter name=\"VCALENDAR\">"
			 "<C:comp-filter name=\"%s\"><C:time-range start=\"%s\" end=\"%s\"/></C:comp-filter>"
			 "</C:comp-filter></C:filter>", comp, start, end);
	assert_true(n > 0 && (size_t)n < sizeof(xml));
	return cal_match(xml, s);
}

static void test_check_valid(void **state)
{
	Tern__DavObject o;
	const char *prec = NULL;
	assert_int_equal(check(weekly, "VEVENT", &o, &prec), 0);
	assert_string_equal(o.uid, "w1");
	assert_string_equal(o.component, "VEVENT");
	assert_int_equal(o.start, T("20240101T100000Z"));
	assert_int_equal(o.end, T("20240129T110000Z"));
	free_obj(&o);
	/* unbounded rule: end is open */
	assert_int_equal(check(berlin, "VEVENT", &o, &prec), 0);
	assert_int_equal(o.start, T("20240325T080000Z"));
	assert_true(o.end == INT64_MAX);
	free_obj(&o);
	/* all-day: 00:00 UTC of the date, one day */
	assert_int_equal(check(allday, "VEVENT", &o, &prec), 0);
	assert_int_equal(o.start, T("20240310"));
	assert_int_equal(o.end, T("20240311"));
	free_obj(&o);
}

static void test_check_invalid(void **state)
{
	static const struct {
		const char *data, *comp, *prec;
	} cases[] = {
		{ CAL_HEAD "BEGIN:VEVENT\nUID:a\nDTSTART:20240101T100000Z\nEND:VEVENT\n"
			  "BEGIN:VEVENT\nUID:b\nDTSTART:20240102T100000Z\nEND:VEVENT\n" CAL_TAIL,
		  "VEVENT", "valid-calendar-object-resource" },
		{ CAL_HEAD "METHOD:REQUEST\nBEGIN:VEVENT\nUID:a\nDTSTART:20240101T100000Z\nEND:VEVENT\n" CAL_TAIL,
		  "VEVENT", "valid-calendar-object-resource" },
		{ CAL_HEAD "BEGIN:VTODO\nUID:t\nDUE:20240101T100000Z\nEND:VTODO\n" CAL_TAIL, "VEVENT",
		  "supported-calendar-component" },
		{ CAL_HEAD "BEGIN:VEVENT\nUID:a\nDTSTART:20240101T100000Z\nEND:VEVENT\n"
			  "BEGIN:VTODO\nUID:a\nEND:VTODO\n" CAL_TAIL,
		  "VEVENT", "valid-calendar-object-resource" },
		{ CAL_HEAD "BEGIN:VEVENT\nDTSTART:20240101T100000Z\nEND:VEVENT\n" CAL_TAIL, "VEVENT",
		  "valid-calendar-object-resource" },
		{ CAL_HEAD "BEGIN:VEVENT\nUID:a\nDTSTART:20240101T100000Z\nDTEND:20231231T100000Z\nEND:VEVENT\n" CAL_TAIL,
		  "VEVENT", "valid-calendar-data" },
		{ "this is not a calendar\n", "VEVENT", "valid-calendar-data" },
		{ CAL_HEAD "BEGIN:VEVENT\nUID:a\nDTSTART:20240101T100000Z\nEND:VEVENT\n", "VEVENT",
		  "valid-calendar-data" },
		{ CAL_HEAD "BEGIN:VEVENT\nUID:a\nDTSTART:20240101T100000Z\nEND:VEVENT\n" CAL_TAIL CAL_HEAD
			  "BEGIN:VEVENT\nUID:a\nDTSTART:20240101T100000Z\nEND:VEVENT\n" CAL_TAIL,
		  "VEVENT", "valid-calendar-data" },
		{ "BEGIN:VCALENDAR\nPRODID:x\nBEGIN:VEVENT\nUID:a\nDTSTART:20240101T100000Z\nEND:VEVENT\n" CAL_TAIL,
		  "VEVENT", "valid-calendar-data" },
		{ CAL_HEAD "BEGIN:VEVENT\nUID:a\nDTSTART:garbage\nEND:VEVENT\n" CAL_TAIL, "VEVENT",
		  "valid-calendar-data" },
		{ CAL_HEAD "BEGIN:VEVENT\nUID:a\nDTSTART:20311345T990000Z\nEND:VEVENT\n" CAL_TAIL, "VEVENT",
		  "valid-calendar-data" },
		{ CAL_HEAD "BEGIN:VEVENT\nUID:a\nDTSTART:20240101T100000Z\nEXDATE:20240230T100000Z\n"
			  "RRULE:FREQ=DAILY\nEND:VEVENT\n" CAL_TAIL, "VEVENT", "valid-calendar-data" },
		{ "BEGIN:VCALENDAR\n\x01\xff\xfe:::;;;\nBEGIN:\nEND:\nEND:VCALENDAR\n", "VEVENT",
		  "valid-calendar-data" },
		{ CAL_HEAD "BEGIN:VEVENT\nUID:a\nDTSTART:20240101T100000Z\nEND:VEVENT\n"
			  "BEGIN:VEVENT\nUID:a\nDTSTART:20240108T100000Z\nEND:VEVENT\n" CAL_TAIL,
		  "VEVENT", "valid-calendar-object-resource" },
		{ CAL_HEAD "BEGIN:VJOURNAL\nUID:j\nDTSTART:20240101T100000Z\nEND:VJOURNAL\n" CAL_TAIL,
		  "VEVENT", "supported-calendar-component" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Tern__DavObject o;
		const char *prec = NULL;
		if (check(cases[i].data, cases[i].comp, &o, &prec) != -1)
			fail_msg("case %zu accepted", i);
		if (strcmp(prec, cases[i].prec) != 0)
			fail_msg("case %zu: %s, expected %s", i, prec, cases[i].prec);
	}
	/* a VTODO collection takes the VTODO */
	Tern__DavObject o;
	const char *prec = NULL;
	assert_int_equal(check(CAL_HEAD "BEGIN:VTODO\nUID:t\nDUE:20240101T100000Z\nEND:VTODO\n" CAL_TAIL,
			       "VTODO", &o, &prec), 0);
	assert_string_equal(o.component, "VTODO");
	assert_int_equal(o.start, T("20240101T100000Z"));
	free_obj(&o);
}

static void test_recurrence_ranges(void **state)
{
	/* instances on the 1st and the 8th, at the edges of [10:00, 11:00) */
	assert_true(in_range("VEVENT", "20240108T100000Z", "20240108T110000Z", weekly));
	assert_false(in_range("VEVENT", "20240108T110000Z", "20240108T120000Z", weekly));
	assert_false(in_range("VEVENT", "20240108T090000Z", "20240108T100000Z", weekly));
	assert_true(in_range("VEVENT", "20240108T105959Z", "20240108T110000Z", weekly));
	/* the 15th is excluded, the 22nd moved to the 24th */
	assert_false(in_range("VEVENT", "20240115T000000Z", "20240116T000000Z", weekly));
	assert_false(in_range("VEVENT", "20240122T000000Z", "20240123T000000Z", weekly));
	assert_true(in_range("VEVENT", "20240124T150000Z", "20240124T153000Z", weekly));
	assert_false(in_range("VEVENT", "20240124T100000Z", "20240124T110000Z", weekly));
	assert_true(in_range("VEVENT", "20240129T100000Z", "20240129T103000Z", weekly));
	/* COUNT=5 ends on the 29th */
	assert_false(in_range("VEVENT", "20240205T000000Z", "20240206T000000Z", weekly));
	/* an unbounded rule far in the future (the walk skips ahead) */
	assert_true(in_range("VEVENT", "20300902T070000Z", "20300902T080000Z", berlin));
	assert_false(in_range("VEVENT", "20300903T000000Z", "20300908T000000Z", berlin));
	assert_false(in_range("VTODO", "20240101T000000Z", "20250101T000000Z", weekly));
}

static void test_allday(void **state)
{
	assert_true(in_range("VEVENT", "20240310T230000Z", "20240311T010000Z", allday));
	assert_true(in_range("VEVENT", "20240309T230000Z", "20240310T000001Z", allday));
	assert_false(in_range("VEVENT", "20240311T000000Z", "20240311T010000Z", allday));
	assert_false(in_range("VEVENT", "20240309T000000Z", "20240310T000000Z", allday));
}

static void test_timezone_dst(void **state)
{
	/* 09:00 Berlin is 08:00Z in CET (25 March) and 07:00Z in CEST (1 April) */
	Tern__DavObject o = obj(berlin);
	dav_busy *list = NULL;
	size_t n = 0;
	assert_int_equal(dav_ical_busy(&o, T("20240324T000000Z"), T("20240403T000000Z"), &list, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].start, T("20240325T080000Z"));
	assert_int_equal(list[0].end, T("20240325T090000Z"));
	assert_int_equal(list[1].start, T("20240401T070000Z"));
	assert_int_equal(list[1].end, T("20240401T080000Z"));
	free(list);
	assert_true(in_range("VEVENT", "20240401T070000Z", "20240401T071000Z", berlin));
	assert_false(in_range("VEVENT", "20240401T080000Z", "20240401T090000Z", berlin));
	assert_true(in_range("VEVENT", "20240325T080000Z", "20240325T081000Z", berlin));
}

static void test_vtodo(void **state)
{
	static const char due_only[] = CAL_HEAD "BEGIN:VTODO\nUID:t1\nDUE:20240301T120000Z\nEND:VTODO\n" CAL_TAIL;
	static const char start_due[] = CAL_HEAD
		"BEGIN:VTODO\nUID:t2\nDTSTART:20240301T080000Z\nDUE:20240301T120000Z\nEND:VTODO\n" CAL_TAIL;
	static const char completed[] = CAL_HEAD
		"BEGIN:VTODO\nUID:t3\nCOMPLETED:20240305T100000Z\nEND:VTODO\n" CAL_TAIL;
	static const char nothing[] = CAL_HEAD "BEGIN:VTODO\nUID:t4\nSUMMARY:x\nEND:VTODO\n" CAL_TAIL;
	/* DUE only: (start < DUE) AND (end >= DUE) */
	assert_true(in_range("VTODO", "20240301T110000Z", "20240301T120000Z", due_only));
	assert_false(in_range("VTODO", "20240301T120000Z", "20240301T130000Z", due_only));
	assert_false(in_range("VTODO", "20240301T100000Z", "20240301T115959Z", due_only));
	/* DTSTART and DUE */
	assert_true(in_range("VTODO", "20240301T090000Z", "20240301T100000Z", start_due));
	assert_true(in_range("VTODO", "20240301T080000Z", "20240301T080001Z", start_due));
	assert_false(in_range("VTODO", "20240301T120000Z", "20240301T130000Z", start_due));
	assert_false(in_range("VTODO", "20240301T000000Z", "20240301T080000Z", start_due));
	/* COMPLETED only: (start <= COMPLETED) AND (end >= COMPLETED) */
	assert_true(in_range("VTODO", "20240305T100000Z", "20240305T110000Z", completed));
	assert_true(in_range("VTODO", "20240305T090000Z", "20240305T100000Z", completed));
	assert_false(in_range("VTODO", "20240305T100001Z", "20240305T110000Z", completed));
	/* no dates: every range */
	assert_true(in_range("VTODO", "19990101T000000Z", "19990102T000000Z", nothing));
	assert_false(in_range("VEVENT", "19990101T000000Z", "19990102T000000Z", nothing));
}

#define F_OPEN "<C:filter xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><C:comp-filter name=\"VCALENDAR\">" \
	       "<C:comp-filter name=\"VEVENT\">"
#define F_CLOSE "</C:comp-filter></C:comp-filter></C:filter>"

static void test_text_match(void **state)
{
	assert_true(cal_match(F_OPEN "<C:prop-filter name=\"SUMMARY\"><C:text-match>meet</C:text-match>"
				     "</C:prop-filter>" F_CLOSE, weekly));
	assert_false(cal_match(F_OPEN "<C:prop-filter name=\"SUMMARY\"><C:text-match collation=\"i;octet\">"
				      "meet</C:text-match></C:prop-filter>" F_CLOSE, weekly));
	assert_true(cal_match(F_OPEN "<C:prop-filter name=\"SUMMARY\"><C:text-match collation=\"i;octet\">"
				     "Meet</C:text-match></C:prop-filter>" F_CLOSE, weekly));
	assert_false(cal_match(F_OPEN "<C:prop-filter name=\"SUMMARY\"><C:text-match negate-condition=\"yes\">"
				      "team</C:text-match></C:prop-filter>" F_CLOSE, weekly));
	assert_true(cal_match(F_OPEN "<C:prop-filter name=\"SUMMARY\"><C:text-match>moved</C:text-match>"
				     "</C:prop-filter>" F_CLOSE, weekly));
	assert_true(cal_match(F_OPEN "<C:prop-filter name=\"ATTENDEE\"><C:text-match>ann@example.org"
				     "</C:text-match><C:param-filter name=\"PARTSTAT\"><C:text-match>ACCEPTED"
				     "</C:text-match></C:param-filter></C:prop-filter>" F_CLOSE, weekly));
	assert_false(cal_match(F_OPEN "<C:prop-filter name=\"ATTENDEE\"><C:param-filter name=\"PARTSTAT\">"
				      "<C:text-match>DECLINED</C:text-match></C:param-filter></C:prop-filter>" F_CLOSE,
			       weekly));
	assert_true(cal_match(F_OPEN "<C:prop-filter name=\"LOCATION\"><C:is-not-defined/></C:prop-filter>" F_CLOSE,
			      weekly));
	assert_false(cal_match(F_OPEN "<C:prop-filter name=\"SUMMARY\"><C:is-not-defined/></C:prop-filter>" F_CLOSE,
			       weekly));
	assert_true(cal_match("<C:filter xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><C:comp-filter name=\"VCALENDAR\">"
			      "<C:comp-filter name=\"VTODO\"><C:is-not-defined/></C:comp-filter>"
			      "</C:comp-filter></C:filter>", weekly));
	/* time-range and text-match together: the moved instance carries "moved" */
	assert_true(cal_match(F_OPEN "<C:time-range start=\"20240124T000000Z\" end=\"20240125T000000Z\"/>"
				     "<C:prop-filter name=\"SUMMARY\"><C:text-match>moved</C:text-match></C:prop-filter>"
				     F_CLOSE, weekly));
	assert_false(cal_match(F_OPEN "<C:time-range start=\"20240101T000000Z\" end=\"20240102T000000Z\"/>"
				      "<C:prop-filter name=\"SUMMARY\"><C:text-match>moved</C:text-match></C:prop-filter>"
				      F_CLOSE, weekly));
	/* a bad filter is refused */
	static const char *const bad[] = {
		"<C:filter xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><C:comp-filter name=\"VEVENT\"/></C:filter>",
		F_OPEN "<C:time-range start=\"garbage\"/>" F_CLOSE,
		F_OPEN "<C:prop-filter name=\"SUMMARY\"><C:text-match collation=\"i;klingon\">x</C:text-match>"
		       "</C:prop-filter>" F_CLOSE,
	};
	for (size_t i = 0; i < 3; i++) {
		xmlDoc *doc = xmlReadMemory(bad[i], (int)strlen(bad[i]), "f.xml", NULL, XML_PARSE_NONET);
		dav_cal_filter *f = NULL;
		tbuf err = TBUF_INIT;
		assert_int_equal(dav_cal_filter_parse(xmlDocGetRootElement(doc), &f, &err), -1);
		assert_null(f);
		assert_true(err.len > 0);
		tbuf_free(&err);
		xmlFreeDoc(doc);
	}
}

static void test_alarm_and_rdate(void **state)
{
	static const char alarm[] = CAL_HEAD
		"BEGIN:VEVENT\nUID:al\nDTSTART:20240108T100000Z\nDTEND:20240108T110000Z\n"
		"RRULE:FREQ=DAILY;COUNT=3\nBEGIN:VALARM\nACTION:DISPLAY\nDESCRIPTION:x\n"
		"TRIGGER:-PT15M\nEND:VALARM\nEND:VEVENT\n" CAL_TAIL;
	static const char rdate[] = CAL_HEAD
		"BEGIN:VEVENT\nUID:rd\nDTSTART:20240601T100000Z\nDURATION:PT30M\n"
		"RDATE:20240605T120000Z,20240610T080000Z\nEND:VEVENT\n" CAL_TAIL;
	const char *va = "<C:filter xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><C:comp-filter name=\"VCALENDAR\">"
			 "<C:comp-filter name=\"VEVENT\"><C:comp-filter name=\"VALARM\">"
			 "<C:time-range start=\"%s\" end=\"%s\"/></C:comp-filter></C:comp-filter>"
			 "</C:comp-filter></C:filter>";
	char xml[512];
	snprintf(xml, sizeof(xml), va, "20240109T094000Z", "20240109T095000Z");
	assert_true(cal_match(xml, alarm));
	snprintf(xml, sizeof(xml), va, "20240109T100000Z", "20240109T110000Z");
	assert_false(cal_match(xml, alarm));
	assert_true(in_range("VEVENT", "20240605T122000Z", "20240605T123000Z", rdate));
	assert_false(in_range("VEVENT", "20240605T123000Z", "20240605T130000Z", rdate));
	assert_true(in_range("VEVENT", "20240601T100000Z", "20240601T100100Z", rdate));
	Tern__DavObject o;
	const char *prec;
	assert_int_equal(check(rdate, "VEVENT", &o, &prec), 0);
	assert_int_equal(o.start, T("20240601T100000Z"));
	assert_int_equal(o.end, T("20240610T083000Z"));
	free_obj(&o);
}

/* Every function on damaged copies of valid objects: refused or handled, never a crash
 * (run under AddressSanitizer). */
static void test_garbage(void **state)
{
	const char *srcs[] = { weekly, berlin, card3 };
	unsigned seed = 12345;
	for (int round = 0; round < 600; round++) {
		const char *src = srcs[round % 3];
		size_t n = strlen(src);
		char *d = malloc(n + 1);
		memcpy(d, src, n + 1);
		for (int k = 0; k < 1 + round % 4; k++) {
			seed = seed * 1103515245u + 12345u;
			size_t at = (seed >> 8) % n;
			seed = seed * 1103515245u + 12345u;
			d[at] = (char)(":;=\n\r ,0123ZT-\\\"\x80"[(seed >> 8) % 17]);
		}
		Tern__DavObject o = TERN__DAV_OBJECT__INIT;
		const char *prec;
		tbuf why = TBUF_INIT, out = TBUF_INIT;
		if (dav_ical_check(d, n, NULL, 0, &o, &prec, &why) == 0)
			free_obj(&o);
		o = (Tern__DavObject)TERN__DAV_OBJECT__INIT;
		if (dav_vcard_check(d, n, &o, &prec, &why) == 0)
			free_obj(&o);
		o = obj(d);
		dav_busy *list = NULL;
		size_t nb = 0;
		(void)dav_ical_busy(&o, T("20240101T000000Z"), T("20250101T000000Z"), &list, &nb);
		free(list);
		(void)dav_ical_expand(&o, T("20240101T000000Z"), T("20240201T000000Z"), &out);
		(void)in_range("VEVENT", "20240101T000000Z", "20240201T000000Z", d);
		tbuf_free(&why);
		tbuf_free(&out);
		free(d);
	}
}

static void test_busy(void **state)
{
	static const char mixed[] = CAL_HEAD
		"BEGIN:VEVENT\nUID:m1\nDTSTART:20240501T090000Z\nDTEND:20240501T100000Z\n"
		"RRULE:FREQ=DAILY;COUNT=4\nEXDATE:20240502T090000Z\nEND:VEVENT\n"
		"BEGIN:VEVENT\nUID:m1\nRECURRENCE-ID:20240503T090000Z\nDTSTART:20240503T090000Z\n"
		"DTEND:20240503T100000Z\nSTATUS:CANCELLED\nEND:VEVENT\n"
		"BEGIN:VEVENT\nUID:m1\nRECURRENCE-ID:20240504T090000Z\nDTSTART:20240504T093000Z\n"
		"DTEND:20240504T103000Z\nSTATUS:TENTATIVE\nEND:VEVENT\n" CAL_TAIL;
	static const char transparent[] = CAL_HEAD
		"BEGIN:VEVENT\nUID:x1\nDTSTART:20240501T090000Z\nDTEND:20240501T100000Z\nTRANSP:TRANSPARENT\n"
		"END:VEVENT\n" CAL_TAIL;
	Tern__DavObject o = obj(mixed), ot = obj(transparent);
	dav_busy *list = NULL;
	size_t n = 0;
	assert_int_equal(dav_ical_busy(&ot, T("20240501T000000Z"), T("20240510T000000Z"), &list, &n), 0);
	assert_int_equal(n, 0);
	/* range starting mid-first instance: clipped */
	assert_int_equal(dav_ical_busy(&o, T("20240501T093000Z"), T("20240510T000000Z"), &list, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].start, T("20240501T093000Z"));
	assert_int_equal(list[0].end, T("20240501T100000Z"));
	assert_int_equal(list[0].type, TERN__BUSY_PERIOD__TYPE__BUSY);
	assert_int_equal(list[1].start, T("20240504T093000Z"));
	assert_int_equal(list[1].end, T("20240504T103000Z"));
	assert_int_equal(list[1].type, TERN__BUSY_PERIOD__TYPE__TENTATIVE);
	free(list);
}

static void test_freebusy_render(void **state)
{
	dav_busy list[] = {
		{ T("20240501T090000Z"), T("20240501T100000Z"), TERN__BUSY_PERIOD__TYPE__BUSY },
		{ T("20240501T093000Z"), T("20240501T110000Z"), TERN__BUSY_PERIOD__TYPE__BUSY },
		{ T("20240501T103000Z"), T("20240501T120000Z"), TERN__BUSY_PERIOD__TYPE__TENTATIVE },
		{ T("20240430T220000Z"), T("20240501T010000Z"), TERN__BUSY_PERIOD__TYPE__BUSY },
	};
	tbuf out = TBUF_INIT;
	dav_freebusy_render(list, 4, T("20240501T000000Z"), T("20240502T000000Z"), "boss@example.org",
			    "mailto:ann@example.org", 1, &out);
	const char *s = tbuf_cstr(&out);
	assert_non_null(strstr(s, "METHOD:REPLY\r\n"));
	assert_non_null(strstr(s, "DTSTART:20240501T000000Z\r\nDTEND:20240502T000000Z\r\n"));
	assert_non_null(strstr(s, "ORGANIZER:mailto:boss@example.org\r\n"));
	assert_non_null(strstr(s, "ATTENDEE:mailto:ann@example.org\r\n"));
	assert_non_null(strstr(s, "DTSTAMP:"));
	const char *p = strstr(s, "FREEBUSY;");
	assert_non_null(p);
	assert_memory_equal(p,
			    "FREEBUSY;FBTYPE=BUSY:20240501T000000Z/20240501T010000Z\r\n"
			    "FREEBUSY;FBTYPE=BUSY:20240501T090000Z/20240501T110000Z\r\n"
			    "FREEBUSY;FBTYPE=BUSY-TENTATIVE:20240501T110000Z/20240501T120000Z\r\n"
			    "END:VFREEBUSY\r\nEND:VCALENDAR\r\n",
			    strlen(p));
	assert_null(strstr(s, "SUMMARY"));
	tbuf_reset(&out);
	dav_freebusy_render(NULL, 0, T("20240501T000000Z"), T("20240502T000000Z"), NULL, NULL, 0, &out);
	assert_null(strstr(tbuf_cstr(&out), "METHOD"));
	assert_null(strstr(tbuf_cstr(&out), "FREEBUSY;"));
	assert_non_null(strstr(tbuf_cstr(&out), "BEGIN:VFREEBUSY\r\n"));
	tbuf_free(&out);
}

static void test_expand(void **state)
{
	Tern__DavObject o = obj(weekly);
	tbuf out = TBUF_INIT;
	assert_int_equal(dav_ical_expand(&o, T("20240107T000000Z"), T("20240125T000000Z"), &out), 0);
	const char *s = tbuf_cstr(&out);
	assert_non_null(strstr(s, "BEGIN:VCALENDAR"));
	assert_null(strstr(s, "RRULE"));
	assert_null(strstr(s, "EXDATE"));
	assert_non_null(strstr(s, "RECURRENCE-ID:20240108T100000Z"));
	assert_non_null(strstr(s, "DTSTART:20240108T100000Z"));
	assert_non_null(strstr(s, "DTEND:20240108T110000Z"));
	assert_non_null(strstr(s, "RECURRENCE-ID:20240122T100000Z"));
	assert_non_null(strstr(s, "DTSTART:20240124T150000Z"));
	assert_null(strstr(s, "20240101T100000Z"));
	assert_null(strstr(s, "20240115T100000Z"));
	/* two instances only */
	const char *p = s;
	int k = 0;
	while ((p = strstr(p, "BEGIN:VEVENT"))) {
		k++;
		p++;
	}
	assert_int_equal(k, 2);
	tbuf_reset(&out);
	/* time zone gone: instances in UTC */
	Tern__DavObject b = obj(berlin);
	assert_int_equal(dav_ical_expand(&b, T("20240331T000000Z"), T("20240402T000000Z"), &out), 0);
	assert_non_null(strstr(tbuf_cstr(&out), "DTSTART:20240401T070000Z"));
	assert_null(strstr(tbuf_cstr(&out), "TZID"));
	tbuf_free(&out);
}

static void test_time_parse(void **state)
{
	int64_t t;
	assert_int_equal(dav_time_parse("20240101T000000Z", &t), 0);
	assert_int_equal(t, 1704067200);
	assert_int_equal(dav_time_parse("20240101", &t), 0);
	assert_int_equal(t, 1704067200);
	assert_int_equal(dav_time_parse("2024-01-01T00:00:01Z", &t), 0);
	assert_int_equal(t, 1704067201);
	assert_int_equal(dav_time_parse("2024-01-01", &t), 0);
	assert_int_equal(t, 1704067200);
	assert_int_equal(dav_time_parse("20240230T000000Z", &t), -1);
	assert_int_equal(dav_time_parse("2024010", &t), -1);
	assert_int_equal(dav_time_parse("20240101X000000Z", &t), -1);
	assert_int_equal(dav_time_parse("2024-01-01T00:00:00.123Z", &t), -1);
	assert_int_equal(dav_time_parse("", &t), -1);
}

static int card_match(const char *xml, const char *s)
{
	xmlDoc *doc = xmlReadMemory(xml, (int)strlen(xml), "f.xml", NULL, XML_PARSE_NONET);
	assert_non_null(doc);
	dav_card_filter *f = NULL;
	tbuf err = TBUF_INIT;
	if (dav_card_filter_parse(xmlDocGetRootElement(doc), &f, &err) < 0)
		fail_msg("filter: %s", tbuf_cstr(&err));
	Tern__DavObject o = obj(s);
	int hit = dav_card_filter_match(f, &o);
	dav_card_filter_free(&f);
	tbuf_free(&err);
	xmlFreeDoc(doc);
	return hit;
}

static void test_vcard_check(void **state)
{
	Tern__DavObject o = TERN__DAV_OBJECT__INIT;
	const char *prec = NULL;
	tbuf why = TBUF_INIT;
	assert_int_equal(dav_vcard_check(card3, strlen(card3), &o, &prec, &why), 0);
	assert_string_equal(o.uid, "c3");
	assert_string_equal(o.component, "VCARD");
	free_obj(&o);
	o = (Tern__DavObject)TERN__DAV_OBJECT__INIT;
	assert_int_equal(dav_vcard_check(card4, strlen(card4), &o, &prec, &why), 0);
	assert_string_equal(o.uid, "urn:uuid:c4");
	free_obj(&o);
	static const char *const bad[] = {
		"BEGIN:VCARD\nVERSION:3.0\nFN:No Uid\nEND:VCARD\n",
		"BEGIN:VCARD\nVERSION:2.1\nUID:x\nFN:Old\nEND:VCARD\n",
		"BEGIN:VCARD\nVERSION:4.0\nUID:x\nEND:VCARD\n",
		"BEGIN:VCARD\nVERSION:4.0\nUID:x\nFN:a\nEND:VCARD\nBEGIN:VCARD\nVERSION:4.0\nUID:y\nFN:b\nEND:VCARD\n",
		"BEGIN:VCARD\nVERSION:4.0\nUID:x\nFN:a\n",
		"garbage without colon\n",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = (Tern__DavObject)TERN__DAV_OBJECT__INIT;
		tbuf_reset(&why);
		if (dav_vcard_check(bad[i], strlen(bad[i]), &o, &prec, &why) != -1)
			fail_msg("vcard %zu accepted", i);
		assert_string_equal(prec, "valid-address-data");
		assert_true(why.len > 0);
	}
	tbuf_free(&why);
}

#define CF_OPEN "<C:filter xmlns:C=\"urn:ietf:params:xml:ns:carddav\""

static void test_vcard_filter(void **state)
{
	/* i;unicode-casemap by default: case-folded beyond ASCII */
	assert_true(card_match(CF_OPEN "><C:prop-filter name=\"FN\"><C:text-match>MÜLLER</C:text-match>"
				       "</C:prop-filter></C:filter>", card3));
	assert_false(card_match(CF_OPEN "><C:prop-filter name=\"FN\"><C:text-match collation=\"i;ascii-casemap\">"
					"MÜLLER</C:text-match></C:prop-filter></C:filter>", card3));
	/* folded line, grouped property, ends-with */
	assert_true(card_match(CF_OPEN "><C:prop-filter name=\"EMAIL\"><C:text-match match-type=\"ends-with\">"
				       "@example.org</C:text-match></C:prop-filter></C:filter>", card3));
	assert_false(card_match(CF_OPEN "><C:prop-filter name=\"EMAIL\"><C:text-match match-type=\"equals\">"
					"juergen</C:text-match></C:prop-filter></C:filter>", card3));
	assert_true(card_match(CF_OPEN "><C:prop-filter name=\"EMAIL\"><C:text-match match-type=\"starts-with\">"
				       "Juergen@</C:text-match></C:prop-filter></C:filter>", card3));
	/* escaped text */
	assert_true(card_match(CF_OPEN "><C:prop-filter name=\"NOTE\"><C:text-match match-type=\"equals\">"
				       "one, two; three</C:text-match></C:prop-filter></C:filter>", card3));
	/* param-filter on TYPE list */
	assert_true(card_match(CF_OPEN "><C:prop-filter name=\"EMAIL\"><C:param-filter name=\"TYPE\">"
				       "<C:text-match match-type=\"equals\">work</C:text-match></C:param-filter>"
				       "</C:prop-filter></C:filter>", card3));
	assert_false(card_match(CF_OPEN "><C:prop-filter name=\"EMAIL\"><C:param-filter name=\"TYPE\">"
					"<C:text-match match-type=\"equals\">work</C:text-match></C:param-filter>"
					"</C:prop-filter></C:filter>", card4));
	/* is-not-defined, negate, anyof / allof */
	assert_true(card_match(CF_OPEN "><C:prop-filter name=\"TEL\"><C:is-not-defined/></C:prop-filter>"
				       "</C:filter>", card4));
	assert_false(card_match(CF_OPEN "><C:prop-filter name=\"TEL\"><C:is-not-defined/></C:prop-filter>"
					"</C:filter>", card3));
	assert_true(card_match(CF_OPEN "><C:prop-filter name=\"FN\"><C:text-match negate-condition=\"yes\">"
				       "smith</C:text-match></C:prop-filter></C:filter>", card3));
	const char *two = "<C:prop-filter name=\"FN\"><C:text-match>ann</C:text-match></C:prop-filter>"
			  "<C:prop-filter name=\"TEL\"/></C:filter>";
	char xml[512];
	snprintf(xml, sizeof(xml), CF_OPEN " test=\"anyof\">%s", two);
	assert_true(card_match(xml, card4));
	snprintf(xml, sizeof(xml), CF_OPEN " test=\"allof\">%s", two);
	assert_false(card_match(xml, card4));
	/* an empty filter matches everything */
	assert_true(card_match(CF_OPEN "/>", card4));
}

static void test_vcard_from_gal(void **state)
{
	tbuf out = TBUF_INIT;
	dav_vcard_from_gal("u1", "Ann Smith", "ann@example.org", 0, &out);
	assert_string_equal(tbuf_cstr(&out), "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u1\r\nFN:Ann Smith\r\n"
					     "N:Smith;Ann;;;\r\nEMAIL;TYPE=INTERNET:ann@example.org\r\nEND:VCARD\r\n");
	Tern__DavObject o = TERN__DAV_OBJECT__INIT;
	const char *prec;
	tbuf why = TBUF_INIT;
	assert_int_equal(dav_vcard_check(out.data, out.len, &o, &prec, &why), 0);
	free_obj(&o);
	tbuf_reset(&out);
	dav_vcard_from_gal("g1", "Sales, EMEA", "sales@example.org", 1, &out);
	assert_non_null(strstr(tbuf_cstr(&out), "FN:Sales\\, EMEA\r\n"));
	assert_non_null(strstr(tbuf_cstr(&out), "X-ADDRESSBOOKSERVER-KIND:group\r\n"));
	tbuf_free(&out);
	tbuf_free(&why);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_valid),
		cmocka_unit_test(test_check_invalid),
		cmocka_unit_test(test_recurrence_ranges),
		cmocka_unit_test(test_allday),
		cmocka_unit_test(test_timezone_dst),
		cmocka_unit_test(test_vtodo),
		cmocka_unit_test(test_text_match),
		cmocka_unit_test(test_alarm_and_rdate),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_busy),
		cmocka_unit_test(test_freebusy_render),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_time_parse),
		cmocka_unit_test(test_vcard_check),
		cmocka_unit_test(test_vcard_filter),
		cmocka_unit_test(test_vcard_from_gal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
