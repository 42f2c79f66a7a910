/* dav_cal.h - the iCalendar and vCard logic of node/dav/ (libical; vCard by hand):
 * validation of stored objects, calendar-query and addressbook-query filters, recurrence
 * expansion, free/busy. Private to node/dav/; pure functions of their inputs (no store,
 * no network), so they are unit-tested directly and safe on any thread. Times are unix
 * seconds UTC; floating times are taken as UTC. */
#ifndef TERN_DAV_CAL_H
#define TERN_DAV_CAL_H
#include <libxml/tree.h>
#include <stdint.h>
#include "buf.h"
#include "records.pb-c.h"

#define DAV_CAL_MAX_INSTANCES 10000     /* recurrence expansion bound per object */

/* Check a calendar object resource for a collection that accepts the components
 * allowed[0..n) (RFC 4791 §4.1: one VCALENDAR, one component type, one UID shared by any
 * overrides, no METHOD property) and fill o->uid, o->component, o->start, o->end (first
 * instance start, last instance end; INT64_MAX when the rule is unbounded). 0 ok; -1 with
 * *precondition_r = the CALDAV precondition element name ("valid-calendar-data",
 * "supported-calendar-component", "valid-calendar-object-resource") and a text in why. */
int dav_ical_check(const char *data, size_t len, char *const *allowed, size_t n,
		   Tern__DavObject *o, const char **precondition_r, tbuf *why);

/* A compiled CALDAV:filter (comp-filter, prop-filter, param-filter, time-range,
 * text-match, is-not-defined) of a calendar-query REPORT. */
typedef struct dav_cal_filter dav_cal_filter;
/* filter: the CALDAV:filter element. 0 ok; -1 with a text in err (-> 400/403
 * valid-filter). */
int dav_cal_filter_parse(xmlNode *filter, dav_cal_filter **f_r, tbuf *err);
/* 1 when the object matches (time ranges against expanded recurrences), 0 when not. */
int dav_cal_filter_match(const dav_cal_filter *f, const Tern__DavObject *o);
void dav_cal_filter_free(dav_cal_filter **f);

/* calendar-data with CALDAV:expand: the object's instances overlapping [start, end) as
 * separate components in UTC without RRULE/RDATE/EXDATE, appended to out. 0 or -1. */
int dav_ical_expand(const Tern__DavObject *o, int64_t start, int64_t end, tbuf *out);

/* Busy time of one object within [start, end): instances of VEVENTs that are opaque
 * (TRANSP) and not cancelled, overrides and EXDATEs respected; STATUS:TENTATIVE gives
 * TENTATIVE periods. Appends to *list (grown with realloc, *n updated). 0 or -1. */
typedef struct dav_busy {
	int64_t start, end;
	Tern__BusyPeriod__Type type;
} dav_busy;
int dav_ical_busy(const Tern__DavObject *o, int64_t start, int64_t end, dav_busy **list, size_t *n);
/* The busy time of o within [start, end) as its busy periods (o->busy, o->n_busy, set
 * only when there is some): what a stored calendar object carries for free/busy. */
void dav_ical_busy_set(Tern__DavObject *o, int64_t start, int64_t end);
/* A VFREEBUSY (METHOD:REPLY when reply, else no METHOD) for attendee (mailto address)
 * over [start, end) with the periods merged and sorted; never any event detail. */
void dav_freebusy_render(const dav_busy *list, size_t n, int64_t start, int64_t end,
			 const char *organizer, const char *attendee, int reply, tbuf *out);

/* Check a vCard (3.0 or 4.0: BEGIN/END:VCARD, VERSION, FN, UID) and fill o->uid and
 * o->component = "VCARD". 0 ok; -1 with *precondition_r = "valid-address-data" and why. */
int dav_vcard_check(const char *data, size_t len, Tern__DavObject *o, const char **precondition_r,
		    tbuf *why);
/* A compiled CARDDAV:filter of an addressbook-query REPORT (prop-filter, param-filter,
 * text-match, anyof/allof). */
typedef struct dav_card_filter dav_card_filter;
int dav_card_filter_parse(xmlNode *filter, dav_card_filter **f_r, tbuf *err);
int dav_card_filter_match(const dav_card_filter *f, const Tern__DavObject *o);
void dav_card_filter_free(dav_card_filter **f);
/* A vCard 3.0 for a GAL entry (read-only address book). */
void dav_vcard_from_gal(const char *uid, const char *full_name, const char *address, int is_group,
			tbuf *out);

/* Parse an iCalendar date-time "YYYYMMDDTHHMMSSZ" (UTC) as in time-range attributes and
 * free/busy URLs (also "YYYYMMDD" and ISO 8601 "YYYY-MM-DDTHH:MM:SSZ"). 0 or -1. */
int dav_time_parse(const char *s, int64_t *t_r);

#endif
