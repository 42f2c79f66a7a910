/* dav_ical_int.h - internals shared by dav_ical*.c, dav_cal*.c and dav_vcard*.c: parsing an
 * iCalendar object with libical, times in UTC, recurrence instances, and the text-match
 * used by both the CalDAV and the CardDAV filter. Not for use outside these files. */
#ifndef TERN_DAV_ICAL_INT_H
#define TERN_DAV_ICAL_INT_H
#include <libical/ical.h>
#include <libxml/tree.h>
#include <stdint.h>
#include "buf.h"

#define DAV_NS_CALDAV "urn:ietf:params:xml:ns:caldav"
#define DAV_NS_CARDDAV "urn:ietf:params:xml:ns:carddav"
#define DAV_DAY 86400

/* Parse data[0..len) into its VCALENDAR (one, well framed). NULL with a text in why
 * otherwise. Free the result with icalcomponent_free(). */
icalcomponent *dav_ical_parse(const char *data, size_t len, tbuf *why);

/* The UTC seconds of a DATE or DATE-TIME property value t of p: UTC stays UTC, a TZID is
 * looked up among the VTIMEZONEs of vcal, floating times and unknown TZIDs are taken as
 * UTC (an object must carry its VTIMEZONEs, RFC 4791 §4.1; we do not guess). DATE values
 * are 00:00 UTC of that date. */
int64_t dav_ical_utc(icalproperty *p, icalcomponent *vcal, struct icaltimetype t);
/* The UTC seconds of the first property of kind in c, 0 and *has_r = 0 when absent. */
int64_t dav_ical_prop_utc(icalcomponent *c, icalproperty_kind kind, icalcomponent *vcal, int *has_r,
			  int *is_date_r);

/* How an instance's end is known (the time-range rules of RFC 4791 §9.9 differ by it). */
enum dav_end_kind { DAV_END_NONE, DAV_END_DTEND, DAV_END_DURATION, DAV_END_DUE };

/* One instance of a recurring (or single) VEVENT, VTODO or VJOURNAL. */
typedef struct dav_inst {
	icalcomponent *comp;    /* the master, or the override that replaces this instance */
	int64_t rid;            /* recurrence id in UTC (the instance's original start) */
	int64_t start, end;     /* UTC, end >= start */
	int has_start;          /* DTSTART present (a VTODO may lack it) */
	int is_date;            /* DTSTART is a DATE */
	int recurring;          /* part of a recurrence set (RRULE/RDATE or overrides) */
	enum dav_end_kind end_kind;
} dav_inst;

/* Called per instance; nonzero stops the walk. */
typedef int (*dav_inst_fn)(const dav_inst *in, void *arg);

/* Result of a walk: how many instances were produced, whether the set has no end
 * (RRULE without COUNT/UNTIL) and whether the bound on instances was reached. */
typedef struct dav_walk {
	size_t count;
	int unbounded;
	int capped;
	int stopped;
} dav_walk;

/* Walk the instances of the components of kind in vcal that may overlap [from, to)
 * (generated instances starting at or after to are not produced; overrides always are),
 * at most max of them. The first RRULE, every RDATE and EXDATE and the overrides
 * (RECURRENCE-ID; RANGE=THISANDFUTURE is taken as this instance only) are honoured. */
void dav_ical_walk(icalcomponent *vcal, icalcomponent_kind kind, int64_t from, int64_t to,
		   size_t max, dav_inst_fn fn, void *arg, dav_walk *w);

/* RFC 4791 §9.9: does instance in of a component of kind overlap [start, end)? */
int dav_ical_inst_overlaps(const dav_inst *in, icalcomponent_kind kind, icalcomponent *vcal,
			   int64_t start, int64_t end);

/* A text-match (CalDAV or CardDAV). */
enum dav_collation { DAV_COLL_ASCII, DAV_COLL_OCTET, DAV_COLL_UNICODE };
enum dav_match_type { DAV_MATCH_CONTAINS, DAV_MATCH_EQUALS, DAV_MATCH_STARTS, DAV_MATCH_ENDS };
typedef struct dav_text_match {
	char *text;             /* NUL-terminated, owned */
	enum dav_collation coll;
	enum dav_match_type type;
	int negate;
} dav_text_match;

/* Compile a CALDAV:/CARDDAV:text-match element; def is the default collation. 0 or -1
 * with a text in err. */
int dav_text_match_parse(xmlNode *n, enum dav_collation def, dav_text_match *tm, tbuf *err);
/* 1 when value matches (negate-condition applied), else 0. */
int dav_text_match_test(const dav_text_match *tm, const char *value);
void dav_text_match_clear(dav_text_match *tm);

/* Parse helpers of the CalDAV and CardDAV filters. The name attribute of a filter
 * element (required; upper-cased when upper), malloc'ed; NULL with a text in err. */
char *dav_filter_name(xmlNode *n, int upper, tbuf *err);
/* test="anyof"|"allof" of n into *anyof (def when absent). 0, or -1 with a text in err. */
int dav_filter_test(xmlNode *n, int def, int *anyof, tbuf *err);
/* Grow the array *arr of *n elements of sz bytes by one zeroed element; returns it. */
void *dav_filter_grow(void **arr, size_t *n, size_t sz);

/* A param-filter: is-not-defined, or at most one text-match on the parameter's value. */
typedef struct dav_param_filter {
	char *name;
	int not_defined, has_tm;
	dav_text_match tm;
} dav_param_filter;
/* Parse the param-filter element n of namespace ns (CALDAV or CARDDAV); coll: the
 * default collation of its text-match; upper: upper-case the name (vCard). budget (NULL:
 * none) counts the text-match against max. 0, or -1 with a text in err. */
int dav_param_filter_parse(xmlNode *n, const char *ns, enum dav_collation coll, int upper, size_t *budget,
			   size_t max, dav_param_filter *pf, tbuf *err);
void dav_param_filter_clear(dav_param_filter *pf);

/* Helpers on libxml2 nodes: the attribute value (NULL when absent; xmlFree it) and whether
 * a node is the element ns:name. */
char *dav_xml_attr(xmlNode *n, const char *name);
int dav_xml_is(const xmlNode *n, const char *ns, const char *name);

/* A vCard as content lines (unfolded, group prefixes dropped, values as written). */
typedef struct dav_vparam {
	char *name;             /* "TYPE" for a bare vCard 2.1/3.0 style parameter */
	char *value;            /* without surrounding quotes */
} dav_vparam;
typedef struct dav_vprop {
	char *name;             /* upper case */
	char *value;            /* raw (escaped) value */
	dav_vparam *params;
	size_t n_params;
} dav_vprop;
typedef struct dav_vcard {
	dav_vprop *props;
	size_t n;
} dav_vcard;

/* Split data[0..len) into content lines. 0 or -1 with a text in why. */
int dav_vcard_parse(const char *data, size_t len, dav_vcard *vc, tbuf *why);
void dav_vcard_clear(dav_vcard *vc);
/* A text value with its backslash escapes (\n \, \; \\) undone, malloc'ed. */
char *dav_vcard_unescape(const char *v);

/* Append one iCalendar/vCard content line, folded at 75 octets, ended with CRLF. */
void dav_ical_line(tbuf *out, const char *line);
/* "YYYYMMDDTHHMMSSZ" of t into buf[17]. */
void dav_ical_fmt_utc(int64_t t, char buf[17]);

#endif
