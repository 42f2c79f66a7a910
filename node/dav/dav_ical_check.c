/* dav_ical_check.c - validation of a calendar object resource (RFC 4791 §4.1, §5.3.2
 * preconditions) and the time bounds stored with it; dav_time_parse. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "dav_cal.h"
#include "dav_ical_int.h"

static const char *const dav_prec_data = "valid-calendar-data";
static const char *const dav_prec_object = "valid-calendar-object-resource";
static const char *const dav_prec_comp = "supported-calendar-component";

/* What the structure check found: the one component type and its UID. */
struct dav_check {
	icalcomponent_kind kind;
	const char *uid;
	int masters;
};

/* 1 when t is a real date (and time): libical reads "20311345T990000Z" digit by digit
 * without checking the ranges. */
static int dav_time_valid(struct icaltimetype t)
{
	if (icaltime_is_null_time(t))
		return 1;
	if (t.year < 1 || t.year > 9999 || t.month < 1 || t.month > 12 || t.day < 1 ||
	    t.day > icaltime_days_in_month(t.month, t.year))
		return 0;
	return t.is_date || (t.hour >= 0 && t.hour <= 23 && t.minute >= 0 && t.minute <= 59 &&
			     t.second >= 0 && t.second <= 60);
}

/* Every date and date-time value of c (DTSTART, DTEND, DUE, RECURRENCE-ID, EXDATE, RDATE,
 * COMPLETED, ...) must be a real date: 0, or -1 with a reason naming the property. */
static int dav_check_dates(icalcomponent *c, tbuf *why)
{
	for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_ANY_PROPERTY); p != NULL;
	     p = icalcomponent_get_next_property(c, ICAL_ANY_PROPERTY)) {
		icalvalue *v = icalproperty_get_value(p);
		struct icaltimetype t;

		if (v == NULL)
			continue;
		switch (icalvalue_isa(v)) {
		case ICAL_DATETIME_VALUE:
			t = icalvalue_get_datetime(v);
			break;
		case ICAL_DATE_VALUE:
			t = icalvalue_get_date(v);
			break;
		case ICAL_DATETIMEPERIOD_VALUE:
			t = icalvalue_get_datetimeperiod(v).time;
			if (icaltime_is_null_time(t))
				t = icalvalue_get_datetimeperiod(v).period.start;
			break;
		default:
			continue;
		}
		if (!dav_time_valid(t)) {
			tbuf_appendf(why, "%s is not a valid date or time", icalproperty_get_property_name(p));
			return -1;
		}
	}
	return 0;
}

/* Per-component rules of RFC 5545 §3.6 that matter for storing and expanding: DTSTART
 * where required, DTEND xor DURATION (DUE xor DURATION), end not before start, DTEND of
 * the same value type as DTSTART. */
static int dav_check_times(icalcomponent *c, icalcomponent *vcal, icalcomponent_kind kind, tbuf *why)
{
	int has_s, has_e, has_due, s_date, e_date;
	if (dav_check_dates(c, why) < 0)
		return -1;
	int64_t s = dav_ical_prop_utc(c, ICAL_DTSTART_PROPERTY, vcal, &has_s, &s_date);
	int64_t e = dav_ical_prop_utc(c, ICAL_DTEND_PROPERTY, vcal, &has_e, &e_date);
	int64_t due = dav_ical_prop_utc(c, ICAL_DUE_PROPERTY, vcal, &has_due, NULL);
	int has_dur = icalcomponent_get_first_property(c, ICAL_DURATION_PROPERTY) != NULL;
	int has_rule = icalcomponent_get_first_property(c, ICAL_RRULE_PROPERTY) ||
		       icalcomponent_get_first_property(c, ICAL_RDATE_PROPERTY);
	if (!has_s && (kind == ICAL_VEVENT_COMPONENT || has_rule || has_dur)) {
		tbuf_append_str(why, "DTSTART is missing");
		return -1;
	}
	if ((has_e && has_dur) || (has_due && has_dur)) {
		tbuf_append_str(why, "both an end and a DURATION");
		return -1;
	}
	if (has_e && (e < s || e_date != s_date)) {
		tbuf_append_str(why, "DTEND before DTSTART or of another value type");
		return -1;
	}
	if (has_due && has_s && due < s) {
		tbuf_append_str(why, "DUE before DTSTART");
		return -1;
	}
	if (has_dur) {
		struct icaldurationtype d =
			icalproperty_get_duration(icalcomponent_get_first_property(c, ICAL_DURATION_PROPERTY));
		if (d.is_neg) {
			tbuf_append_str(why, "negative DURATION");
			return -1;
		}
	}
	return 0;
}

/* Structure: no METHOD, only VTIMEZONE and one type of VEVENT/VTODO/VJOURNAL/VFREEBUSY,
 * one UID, one master, distinct RECURRENCE-IDs. */
static int dav_check_structure(icalcomponent *vcal, struct dav_check *k, const char **prec, tbuf *why)
{
	icalproperty *v = icalcomponent_get_first_property(vcal, ICAL_VERSION_PROPERTY);
	const char *ver = v ? icalproperty_get_version(v) : NULL;
	if (!ver || strcmp(ver, "2.0") != 0) {
		*prec = dav_prec_data;
		tbuf_append_str(why, "VERSION:2.0 is required");
		return -1;
	}
	*prec = dav_prec_object;
	if (icalcomponent_get_first_property(vcal, ICAL_METHOD_PROPERTY)) {
		tbuf_append_str(why, "METHOD is not allowed in a stored calendar object");
		return -1;
	}
	size_t n = (size_t)icalcomponent_count_components(vcal, ICAL_ANY_COMPONENT), i = 0;
	icalcomponent **cs = calloc(n + 1, sizeof(*cs));
	if (!cs)
		abort();
	for (icalcomponent *c = icalcomponent_get_first_component(vcal, ICAL_ANY_COMPONENT); c && i < n;
	     c = icalcomponent_get_next_component(vcal, ICAL_ANY_COMPONENT))
		cs[i++] = c;
	int rc = 0;
	int64_t *rids = calloc(n + 1, sizeof(*rids));
	size_t n_rids = 0;
	if (!rids)
		abort();
	for (size_t j = 0; j < i && rc == 0; j++) {
		icalcomponent_kind ck = icalcomponent_isa(cs[j]);
		if (ck == ICAL_VTIMEZONE_COMPONENT)
			continue;
		if (ck != ICAL_VEVENT_COMPONENT && ck != ICAL_VTODO_COMPONENT &&
		    ck != ICAL_VJOURNAL_COMPONENT && ck != ICAL_VFREEBUSY_COMPONENT) {
			const char *name = icalcomponent_kind_to_string(ck);
			tbuf_appendf(why, "component %s is not allowed here", name ? name : "X-");
			rc = -1;
		} else if (k->kind != ICAL_NO_COMPONENT && ck != k->kind) {
			tbuf_append_str(why, "more than one component type");
			rc = -1;
		} else {
			k->kind = ck;
			const char *uid = icalcomponent_get_uid(cs[j]);
			icalproperty *rid = icalcomponent_get_first_property(cs[j], ICAL_RECURRENCEID_PROPERTY);
			if (!uid || !*uid) {
				tbuf_append_str(why, "UID is missing");
				rc = -1;
			} else if (k->uid && strcmp(k->uid, uid) != 0) {
				tbuf_append_str(why, "more than one UID");
				rc = -1;
			} else {
				k->uid = uid;
				if (!rid) {
					if (++k->masters > 1) {
						tbuf_append_str(why, "two components without RECURRENCE-ID");
						rc = -1;
					}
				} else {
					int64_t t = dav_ical_utc(rid, vcal, icalproperty_get_recurrenceid(rid));
					for (size_t r = 0; r < n_rids && rc == 0; r++)
						if (rids[r] == t) {
							tbuf_append_str(why, "duplicate RECURRENCE-ID");
							rc = -1;
						}
					rids[n_rids++] = t;
				}
			}
			if (rc == 0 && dav_check_times(cs[j], vcal, ck, why) < 0) {
				*prec = dav_prec_data;
				rc = -1;
			}
		}
	}
	free(rids);
	free(cs);
	if (rc == 0 && k->kind == ICAL_NO_COMPONENT) {
		tbuf_append_str(why, "no VEVENT, VTODO or VJOURNAL");
		rc = -1;
	}
	return rc;
}

/* The bounds of all instances (see dav_ical_check). */
struct dav_bounds {
	icalcomponent *vcal;
	icalcomponent_kind kind;
	int64_t start, end;
	int any;
};

static int dav_bounds_add(const dav_inst *in, void *arg)
{
	struct dav_bounds *b = arg;
	int64_t s = in->start, e = in->end;
	if (!in->has_start && in->end_kind != DAV_END_DUE) {
		if (b->kind != ICAL_VTODO_COMPONENT)
			return 0;      /* a VJOURNAL without DTSTART matches no time-range */
		/* VTODO with neither DTSTART nor DUE: by COMPLETED and CREATED, else always */
		int has_cpl, has_cre;
		int64_t cpl = dav_ical_prop_utc(in->comp, ICAL_COMPLETED_PROPERTY, b->vcal, &has_cpl, NULL);
		int64_t cre = dav_ical_prop_utc(in->comp, ICAL_CREATED_PROPERTY, b->vcal, &has_cre, NULL);
		s = has_cre ? cre : has_cpl ? cpl : INT64_MIN;
		e = has_cpl ? (has_cre && cre > cpl ? cre : cpl) : INT64_MAX;
	}
	if (!b->any || s < b->start)
		b->start = s;
	if (!b->any || e > b->end)
		b->end = e;
	b->any = 1;
	return 0;
}

/* Is the component name k among allowed[0..n) (no list: everything allowed)? */
static int dav_check_allowed(icalcomponent_kind k, char *const *allowed, size_t n)
{
	if (!allowed || n == 0)
		return 1;
	const char *name = icalcomponent_kind_to_string(k);
	for (size_t i = 0; i < n; i++)
		if (allowed[i] && strcasecmp(allowed[i], name) == 0)
			return 1;
	return 0;
}

int dav_ical_check(const char *data, size_t len, char *const *allowed, size_t n,
		   Tern__DavObject *o, const char **precondition_r, tbuf *why)
{
	*precondition_r = dav_prec_data;
	icalcomponent *vcal = dav_ical_parse(data, len, why);
	if (!vcal)
		return -1;
	struct dav_check k = { .kind = ICAL_NO_COMPONENT };
	if (dav_check_structure(vcal, &k, precondition_r, why) < 0) {
		icalcomponent_free(vcal);
		return -1;
	}
	if (!dav_check_allowed(k.kind, allowed, n)) {
		*precondition_r = dav_prec_comp;
		tbuf_appendf(why, "%s is not supported by this collection", icalcomponent_kind_to_string(k.kind));
		icalcomponent_free(vcal);
		return -1;
	}
	struct dav_bounds b = { .vcal = vcal, .kind = k.kind };
	dav_walk w;
	dav_ical_walk(vcal, k.kind, INT64_MIN, INT64_MAX, DAV_CAL_MAX_INSTANCES, dav_bounds_add, &b, &w);
	char *uid = strdup(k.uid);
	char *comp = strdup(icalcomponent_kind_to_string(k.kind));
	if (!uid || !comp)
		abort();
	o->uid = uid;
	o->component = comp;
	o->start = b.any && b.start != INT64_MIN ? b.start : 0;
	o->end = !b.any || w.unbounded || w.capped ? INT64_MAX : b.end;
	icalcomponent_free(vcal);
	return 0;
}

/* n decimal digits at s, -1 when any is not a digit. */
static int dav_digits(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int dav_time_parse(const char *s, int64_t *t_r)
{
	if (!s)
		return -1;
	size_t n = strlen(s);
	int iso = n >= 10 && s[4] == '-';
	const char *d = s;
	char compact[16];
	if (iso) {
		/* "YYYY-MM-DD[THH:MM:SS[Z]]" -> "YYYYMMDD[THHMMSS[Z]]" */
		if (n > 20 || s[7] != '-' || (n > 10 && (n < 19 || s[10] != 'T' || s[13] != ':' || s[16] != ':')))
			return -1;
		size_t k = 0;
		for (size_t i = 0; i < n && k < sizeof(compact) - 1; i++)
			if (s[i] != '-' && s[i] != ':')
				compact[k++] = s[i];
		compact[k] = '\0';
		d = compact;
		n = k;
	}
	struct tm tm = { 0 };
	int y = dav_digits(d, 4), mo = n >= 8 ? dav_digits(d + 4, 2) : -1, dd = n >= 8 ? dav_digits(d + 6, 2) : -1;
	int h = 0, mi = 0, se = 0;
	if (n == 8) {
		/* a DATE */
	} else if ((n == 15 || (n == 16 && d[15] == 'Z')) && d[8] == 'T') {
		h = dav_digits(d + 9, 2);
		mi = dav_digits(d + 11, 2);
		se = dav_digits(d + 13, 2);
	} else {
		return -1;
	}
	if (y < 0 || mo < 1 || mo > 12 || dd < 1 || dd > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
	    se < 0 || se > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = dd;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	time_t t = timegm(&tm);
	if (tm.tm_mday != dd)     /* 20230231 normalised to March: not a date */
		return -1;
	*t_r = (int64_t)t;
	return 0;
}
