/* fuzz_node_davxml.c - the XML of a REPORT body as node/dav/ reads it, on arbitrary bytes:
 * dav_xml_parse (libxml2 without network, entities or DTDs; any DOCTYPE refused), then
 * what dav_do_report takes from it: a calendar-query's CALDAV:filter compiled with
 * dav_cal_filter_parse, an addressbook-query's CARDDAV:filter with dav_card_filter_parse,
 * both matched against fixed stored objects; the time-range of a free-busy-query and the
 * CALDAV:expand of calendar-data through dav_time_parse and dav_ical_expand. Checks: a
 * refused body gets a 4xx and a text, an accepted one has no DTD in it; a compiled filter
 * on success, none and a reason on failure; match results of 0 or 1, the same twice. */
#include <libxml/parser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "dav_private.h"

#define CAL_HEAD "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//fuzz//EN\r\n"
#define CAL_TAIL "END:VCALENDAR\r\n"

/* What a calendar or address book holds: checked at start as a PUT would. */
static const char *const fuzz_cal_objects[] = {
	(CAL_HEAD "BEGIN:VEVENT\r\nUID:w1\r\nDTSTAMP:20240101T000000Z\r\nDTSTART:20240101T100000Z\r\n"
	"DTEND:20240101T110000Z\r\nSUMMARY:Team Meeting\r\nRRULE:FREQ=WEEKLY;COUNT=5\r\n"
	"EXDATE:20240115T100000Z\r\nATTENDEE;PARTSTAT=ACCEPTED;CN=Ann:mailto:ann@example.org\r\n"
	"BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nDESCRIPTION:x\r\nEND:VALARM\r\nEND:VEVENT\r\n"
	"BEGIN:VEVENT\r\nUID:w1\r\nDTSTAMP:20240101T000000Z\r\nRECURRENCE-ID:20240122T100000Z\r\n"
	"DTSTART:20240124T150000Z\r\nDTEND:20240124T160000Z\r\nSUMMARY:Team Meeting (moved)\r\n"
	"END:VEVENT\r\n" CAL_TAIL),
	(CAL_HEAD "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\n"
	"TZOFFSETTO:+0200\r\nDTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n"
	"END:DAYLIGHT\r\nBEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
	"DTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n"
	"END:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:b1\r\nDTSTAMP:20240101T000000Z\r\n"
	"DTSTART;TZID=Europe/Berlin:20240325T090000\r\nDURATION:PT1H\r\nRRULE:FREQ=DAILY;COUNT=60\r\n"
	"SUMMARY:Standup\r\nEND:VEVENT\r\n" CAL_TAIL),
	(CAL_HEAD "BEGIN:VEVENT\r\nUID:a1\r\nDTSTAMP:20240101T000000Z\r\nDTSTART;VALUE=DATE:20240310\r\n"
	"SUMMARY:Holiday\r\nTRANSP:TRANSPARENT\r\nEND:VEVENT\r\n" CAL_TAIL),
	(CAL_HEAD "BEGIN:VTODO\r\nUID:t1\r\nDTSTAMP:20240101T000000Z\r\nDUE:20240401T120000Z\r\n"
	"SUMMARY:Report\r\nSTATUS:NEEDS-ACTION\r\nEND:VTODO\r\n" CAL_TAIL),
	(CAL_HEAD "BEGIN:VJOURNAL\r\nUID:j1\r\nDTSTAMP:20240101T000000Z\r\nDTSTART;VALUE=DATE:20240102\r\n"
	"SUMMARY:Notes\r\nEND:VJOURNAL\r\n" CAL_TAIL),
};
static const char *const fuzz_card_objects[] = {
	("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c3\r\nFN:J\xc3\xbcrgen M\xc3\xbcller\r\n"
	"N:M\xc3\xbcller;J\xc3\xbcrgen;;;\r\n"
	"item1.EMAIL;TYPE=INTERNET,WORK:juergen@examp\r\n le.org\r\nTEL;TYPE=cell:+49 170 1234567\r\n"
	"NOTE:one\\, two\\; three\r\nEND:VCARD\r\n"),
	("BEGIN:VCARD\r\nVERSION:4.0\r\nUID:urn:uuid:c4\r\nFN:Ann Smith\r\nEMAIL;TYPE=home:ann@home.example\r\n"
	"END:VCARD\r\n"),
};
#define FUZZ_NCAL (sizeof(fuzz_cal_objects) / sizeof(fuzz_cal_objects[0]))
#define FUZZ_NCARD (sizeof(fuzz_card_objects) / sizeof(fuzz_card_objects[0]))

static Tern__DavObject *cal_objs[FUZZ_NCAL], *card_objs[FUZZ_NCARD];

/* A stored object made from text s the way dav_put does (check, then keep). */
static Tern__DavObject *fuzz_object(const char *s, int card)
{
	static char *const all[] = { "VEVENT", "VTODO", "VJOURNAL" };
	Tern__DavObject *o = malloc(sizeof(*o));
	const char *prec = NULL;
	tbuf why = TBUF_INIT;
	size_t len = strlen(s);
	if (o == NULL)
		abort();
	tern__dav_object__init(o);
	int rc = card ? dav_vcard_check(s, len, o, &prec, &why) : dav_ical_check(s, len, all, 3, o, &prec, &why);
	if (rc < 0)
		abort();
	o->data.data = malloc(len);
	if (o->data.data == NULL)
		abort();
	memcpy(o->data.data, s, len);
	o->data.len = len;
	tbuf_free(&why);
	return o;
}

/* The time-range of a free-busy-query, as rp_freebusy reads it. */
static void fuzz_freebusy(xmlNode *root)
{
	xmlNode *tr = dav_xml_child(root, DAV_NS_CAL, "time-range");
	if (tr == NULL)
		return;
	char *s = (char *)xmlGetProp(tr, (const xmlChar *)"start");
	char *e = (char *)xmlGetProp(tr, (const xmlChar *)"end");
	int64_t start = 0, end = INT64_MAX;
	if (s != NULL && dav_time_parse(s, &start) == 0 && (e == NULL || dav_time_parse(e, &end) == 0) &&
	    end > start) {
		dav_busy *list = NULL;
		size_t n = 0;
		for (size_t i = 0; i < FUZZ_NCAL; i++)
			if (dav_ical_busy(cal_objs[i], start, end, &list, &n) < 0)
				abort();
		for (size_t i = 0; i < n; i++)
			if (list[i].start < start || list[i].end > end || list[i].start >= list[i].end)
				abort();
		free(list);
	}
	xmlFree(s);
	xmlFree(e);
}

/* calendar-data with CALDAV:expand, as object_data in dav_propfind.c reads it. */
static void fuzz_expand(xmlNode *root)
{
	dav_propreq pr;
	if (dav_propreq_parse(root, &pr) < 0 || pr.cal_data == NULL) {
		dav_propreq_free(&pr);
		return;
	}
	xmlNode *exp = dav_xml_child(pr.cal_data, DAV_NS_CAL, "expand");
	if (exp != NULL) {
		char *s = (char *)xmlGetProp(exp, (const xmlChar *)"start");
		char *e = (char *)xmlGetProp(exp, (const xmlChar *)"end");
		int64_t start = INT64_MIN, end = INT64_MAX;
		if ((s == NULL || dav_time_parse(s, &start) == 0) && (e == NULL || dav_time_parse(e, &end) == 0)) {
			for (size_t i = 0; i < FUZZ_NCAL; i++) {
				tbuf x = TBUF_INIT;
				if (dav_ical_expand(cal_objs[i], start, end, &x) < 0)
					abort();
				tbuf_free(&x);
			}
		}
		xmlFree(s);
		xmlFree(e);
	}
	dav_propreq_free(&pr);
}

/* Match every object twice: 0 or 1, the same both times. */
#define FUZZ_MATCH(fn, f, objs, n)                                      \
	do {                                                            \
		for (size_t i_ = 0; i_ < (n); i_++) {                   \
			int m_ = fn((f), (objs)[i_]);                   \
			if ((m_ != 0 && m_ != 1) || fn((f), (objs)[i_]) != m_) \
				abort();                                \
		}                                                       \
	} while (0)

/* No DTD or entity declaration may survive into an accepted document. */
static void fuzz_no_dtd(const xmlNode *n)
{
	for (; n != NULL; n = n->next) {
		if (n->type == XML_DTD_NODE || n->type == XML_ENTITY_DECL || n->type == XML_ENTITY_NODE)
			abort();
		if (n->type == XML_ELEMENT_NODE)
			fuzz_no_dtd(n->children);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int inited;
	if (!inited) {
		for (size_t i = 0; i < FUZZ_NCAL; i++)
			cal_objs[i] = fuzz_object(fuzz_cal_objects[i], 0);
		for (size_t i = 0; i < FUZZ_NCARD; i++)
			card_objs[i] = fuzz_object(fuzz_card_objects[i], 1);
		inited = 1;
	}
	http_request req;
	dav_req r;
	memset(&req, 0, sizeof(req));
	memset(&r, 0, sizeof(r));
	req.method = "REPORT";
	tbuf_append(&req.body, data, size);
	r.req = &req;

	xmlDoc *doc = dav_xml_parse(&r);
	if (doc == NULL) {
		if ((r.status != 400 && r.status != 413) || r.body.len == 0)
			abort();
		goto out;
	}
	if (r.status != 0 || doc->intSubset != NULL || doc->extSubset != NULL)
		abort();
	fuzz_no_dtd(doc->children);
	xmlNode *root = xmlDocGetRootElement(doc);
	tbuf err = TBUF_INIT;
	if (dav_el_is(root, DAV_NS_CAL, "free-busy-query")) {
		fuzz_freebusy(root);
	} else if (dav_el_is(root, DAV_NS_CAL, "calendar-query")) {
		xmlNode *fn = dav_xml_child(root, DAV_NS_CAL, "filter");
		dav_cal_filter *f = NULL;
		if (fn != NULL) {
			int rc = dav_cal_filter_parse(fn, &f, &err);
			if (rc == 0 ? f == NULL : (rc != -1 || f != NULL || err.len == 0))
				abort();
			if (f != NULL)
				FUZZ_MATCH(dav_cal_filter_match, f, cal_objs, FUZZ_NCAL);
			dav_cal_filter_free(&f);
			if (f != NULL)
				abort();
		}
		fuzz_expand(root);
	} else if (dav_el_is(root, DAV_NS_CARD, "addressbook-query")) {
		xmlNode *fn = dav_xml_child(root, DAV_NS_CARD, "filter");
		dav_card_filter *f = NULL;
		if (fn != NULL) {
			int rc = dav_card_filter_parse(fn, &f, &err);
			if (rc == 0 ? f == NULL : (rc != -1 || f != NULL || err.len == 0))
				abort();
			if (f != NULL)
				FUZZ_MATCH(dav_card_filter_match, f, card_objs, FUZZ_NCARD);
			dav_card_filter_free(&f);
			if (f != NULL)
				abort();
		}
	}
	tbuf_free(&err);
	xmlFreeDoc(doc);
out:
	tbuf_free(&r.body);
	tbuf_free(&req.body);
	return 0;
}
