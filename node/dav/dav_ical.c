/* dav_ical.c - iCalendar parsing with libical, times in UTC and the recurrence walk that
 * every calendar function of node/dav/ is built on. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "dav_cal.h"
#include "dav_ical_int.h"

static pthread_once_t dav_ical_once = PTHREAD_ONCE_INIT;

/* libical must never abort the process or print on bad input: errors are non-fatal
 * states the parser records as X-LIC-ERROR properties, which we read. */
static void dav_ical_init(void)
{
	icalerror_set_errors_are_fatal(0);
	icalerror_set_error_state(ICAL_PARSE_ERROR, ICAL_ERROR_NONFATAL);
	icalerror_set_error_state(ICAL_MALFORMEDDATA_ERROR, ICAL_ERROR_NONFATAL);
	icalerror_set_error_state(ICAL_BADARG_ERROR, ICAL_ERROR_NONFATAL);
	icalerror_set_error_state(ICAL_NEWFAILED_ERROR, ICAL_ERROR_NONFATAL);
	icalerror_set_error_state(ICAL_ALLOCATION_ERROR, ICAL_ERROR_NONFATAL);
	icalerror_set_error_state(ICAL_USAGE_ERROR, ICAL_ERROR_NONFATAL);
	icalerror_set_error_state(ICAL_INTERNAL_ERROR, ICAL_ERROR_NONFATAL);
	icalerror_set_error_state(ICAL_UNIMPLEMENTED_ERROR, ICAL_ERROR_NONFATAL);
	icalerror_set_error_state(ICAL_UNKNOWN_ERROR, ICAL_ERROR_NONFATAL);
}

/* The line [p, e) without surrounding blanks equals word (case-insensitive)? */
static int dav_line_is(const char *p, const char *e, const char *word)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\r'))
		p++;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		e--;
	size_t n = strlen(word);
	return (size_t)(e - p) == n && strncasecmp(p, word, n) == 0;
}

#define DAV_ICAL_MAX_DEPTH 8   /* VCALENDAR/VEVENT/VALARM is 3; VTIMEZONE/STANDARD is 3 */

/* BEGIN/END lines properly nested and named alike, at most DAV_ICAL_MAX_DEPTH deep, and
 * nothing after the outermost END. libical prints to stderr on an END before its BEGIN,
 * so such input never reaches it. */
static int dav_ical_nesting(const char *data, size_t len, tbuf *why)
{
	const char *stack[DAV_ICAL_MAX_DEPTH];
	size_t lens[DAV_ICAL_MAX_DEPTH], depth = 0;
	int closed = 0;
	for (const char *p = data, *end = data + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		const char *e = le;
		while (e > p && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
			e--;
		size_t n = (size_t)(e - p);
		if (n && *p != ' ' && *p != '\t' && closed) {
			tbuf_append_str(why, "data after END:VCALENDAR");
			return -1;
		}
		if (n > 6 && strncasecmp(p, "BEGIN:", 6) == 0) {
			if (depth == DAV_ICAL_MAX_DEPTH) {
				tbuf_append_str(why, "components nested too deep");
				return -1;
			}
			stack[depth] = p + 6;
			lens[depth++] = n - 6;
		} else if (n > 4 && strncasecmp(p, "END:", 4) == 0) {
			if (depth == 0 || lens[depth - 1] != n - 4 || strncasecmp(stack[depth - 1], p + 4, n - 4) != 0) {
				tbuf_appendf(why, "unbalanced %.*s", (int)(n < 60 ? n : 60), p);
				return -1;
			}
			closed = --depth == 0;
		}
		p = nl ? nl + 1 : end;
	}
	if (depth) {
		tbuf_append_str(why, "component without END");
		return -1;
	}
	return 0;
}

/* Structure before libical sees it: no NULs, the first line BEGIN:VCALENDAR and the last
 * non-blank line END:VCALENDAR. libical itself is lenient about both. */
static int dav_ical_framed(const char *data, size_t len, tbuf *why)
{
	if (memchr(data, '\0', len)) {
		tbuf_append_str(why, "NUL byte in calendar data");
		return -1;
	}
	const char *end = data + len;
	const char *nl = memchr(data, '\n', len);
	if (!dav_line_is(data, nl ? nl : end, "BEGIN:VCALENDAR")) {
		tbuf_append_str(why, "calendar data does not start with BEGIN:VCALENDAR");
		return -1;
	}
	while (end > data && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	const char *last = end;
	while (last > data && last[-1] != '\n')
		last--;
	if (!dav_line_is(last, end, "END:VCALENDAR")) {
		tbuf_append_str(why, "calendar data does not end with END:VCALENDAR");
		return -1;
	}
	return dav_ical_nesting(data, len, why);
}

/* The first X-LIC-ERROR libical left anywhere below c, or NULL. Property names libical
 * does not know (RFC 5545 iana-prop, newer RFCs) are no error: it drops them, and the text
 * we store keeps them. */
static icalproperty *dav_ical_first_error(icalcomponent *c)
{
	for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_XLICERROR_PROPERTY); p;
	     p = icalcomponent_get_next_property(c, ICAL_XLICERROR_PROPERTY)) {
		const char *t = icalproperty_get_xlicerror(p);
		if (!t || strncmp(t, "Parse error in property name", 28) != 0)
			return p;
	}
	for (icalcomponent *k = icalcomponent_get_first_component(c, ICAL_ANY_COMPONENT); k;
	     k = icalcomponent_get_next_component(c, ICAL_ANY_COMPONENT)) {
		icalproperty *p = dav_ical_first_error(k);
		if (p)
			return p;
	}
	return NULL;
}

icalcomponent *dav_ical_parse(const char *data, size_t len, tbuf *why)
{
	pthread_once(&dav_ical_once, dav_ical_init);
	if (!data || len == 0) {
		tbuf_append_str(why, "empty calendar data");
		return NULL;
	}
	if (dav_ical_framed(data, len, why) < 0)
		return NULL;
	char *s = malloc(len + 1);
	if (!s) {
		tbuf_append_str(why, "out of memory");
		return NULL;
	}
	memcpy(s, data, len);
	s[len] = '\0';
	icalcomponent *root = icalparser_parse_string(s);
	free(s);
	if (!root) {
		tbuf_append_str(why, "not iCalendar data");
		return NULL;
	}
	if (icalcomponent_isa(root) != ICAL_VCALENDAR_COMPONENT) {
		tbuf_append_str(why, "not exactly one VCALENDAR");
		icalcomponent_free(root);
		return NULL;
	}
	icalproperty *err = dav_ical_first_error(root);
	if (err) {
		const char *t = icalproperty_get_xlicerror(err);
		tbuf_appendf(why, "iCalendar syntax: %.200s", t ? t : "error");
		icalcomponent_free(root);
		return NULL;
	}
	return root;
}

int64_t dav_ical_utc(icalproperty *p, icalcomponent *vcal, struct icaltimetype t)
{
	icaltimezone *zone = NULL;   /* floating, DATE and unknown TZID: taken as UTC */
	if (t.is_date) {
		zone = NULL;
	} else if (icaltime_is_utc(t)) {
		zone = icaltimezone_get_utc_timezone();
	} else if (p) {
		icalparameter *tz = icalproperty_get_first_parameter(p, ICAL_TZID_PARAMETER);
		const char *tzid = tz ? icalparameter_get_tzid(tz) : NULL;
		if (tzid && vcal)
			zone = icalcomponent_get_timezone(vcal, tzid);
	}
	if (icaltime_is_null_time(t))
		return 0;
	return (int64_t)icaltime_as_timet_with_zone(t, zone);
}

int64_t dav_ical_prop_utc(icalcomponent *c, icalproperty_kind kind, icalcomponent *vcal, int *has_r,
			  int *is_date_r)
{
	icalproperty *p = icalcomponent_get_first_property(c, kind);
	*has_r = 0;
	if (is_date_r)
		*is_date_r = 0;
	if (!p)
		return 0;
	icalvalue *v = icalproperty_get_value(p);
	if (!v)
		return 0;
	icalvalue_kind vk = icalvalue_isa(v);
	if (vk != ICAL_DATETIME_VALUE && vk != ICAL_DATE_VALUE)
		return 0;
	struct icaltimetype t = icalvalue_get_datetime(v);
	if (icaltime_is_null_time(t) || !icaltime_is_valid_time(t))
		return 0;
	*has_r = 1;
	if (is_date_r)
		*is_date_r = t.is_date;
	return dav_ical_utc(p, vcal, t);
}

/* The instance a component describes on its own (a single event, an override, or the
 * first instance of a master). */
static void dav_inst_of(icalcomponent *c, icalcomponent *vcal, icalcomponent_kind kind, dav_inst *in)
{
	int has, is_date;
	memset(in, 0, sizeof(*in));
	in->comp = c;
	in->start = dav_ical_prop_utc(c, ICAL_DTSTART_PROPERTY, vcal, &in->has_start, &is_date);
	in->is_date = in->has_start && is_date;
	in->end = in->start;
	int64_t t = dav_ical_prop_utc(c, ICAL_DTEND_PROPERTY, vcal, &has, NULL);
	if (has && kind != ICAL_VTODO_COMPONENT) {
		in->end = t;
		in->end_kind = DAV_END_DTEND;
	} else if ((t = dav_ical_prop_utc(c, ICAL_DUE_PROPERTY, vcal, &has, NULL)), has &&
		   kind == ICAL_VTODO_COMPONENT) {
		in->end = t;
		in->end_kind = DAV_END_DUE;
		if (!in->has_start)
			in->start = t;
	} else if (icalcomponent_get_first_property(c, ICAL_DURATION_PROPERTY) && in->has_start) {
		struct icaldurationtype d =
			icalproperty_get_duration(icalcomponent_get_first_property(c, ICAL_DURATION_PROPERTY));
		in->end = in->start + icaldurationtype_as_int(d);
		in->end_kind = DAV_END_DURATION;
	} else if (in->is_date && kind == ICAL_VEVENT_COMPONENT) {
		in->end = in->start + DAV_DAY;    /* an all-day event lasts its day */
	}
	if (in->end < in->start)
		in->end = in->start;
	in->rid = in->start;
	icalproperty *rid = icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY);
	if (rid) {
		in->recurring = 1;
		in->rid = dav_ical_utc(rid, vcal, icalproperty_get_recurrenceid(rid));
	}
}

/* The recurrence walk of one master: its state while generating. */
struct dav_rset {
	icalcomponent *vcal, *master;
	dav_inst base;
	int64_t dur;
	int64_t *exdates;          /* UTC */
	struct icaltimetype *exdays;   /* DATE-valued EXDATEs, matched on the local date */
	size_t n_ex, n_exdays;
	int64_t *rids;             /* RECURRENCE-IDs of the overrides */
	size_t n_rids;
};

/* Is the generated instance (local time occ, UTC s) excluded or replaced by an override? */
static int dav_rset_skip(const struct dav_rset *r, struct icaltimetype occ, int64_t s)
{
	for (size_t i = 0; i < r->n_ex; i++)
		if (r->exdates[i] == s)
			return 1;
	for (size_t i = 0; i < r->n_exdays; i++)
		if (r->exdays[i].year == occ.year && r->exdays[i].month == occ.month &&
		    r->exdays[i].day == occ.day)
			return 1;
	for (size_t i = 0; i < r->n_rids; i++)
		if (r->rids[i] == s)
			return 1;
	return 0;
}

/* Produce one instance; 1 when the walk must stop (callback said so or bound reached). */
static int dav_emit(const dav_inst *in, size_t max, dav_inst_fn fn, void *arg, dav_walk *w)
{
	if (w->count >= max) {
		w->capped = 1;
		return 1;
	}
	w->count++;
	if (fn(in, arg)) {
		w->stopped = 1;
		return 1;
	}
	return 0;
}

/* The zone a DTSTART is expressed in (NULL: UTC or floating). */
static icaltimezone *dav_dtstart_zone(icalproperty *p, icalcomponent *vcal, struct icaltimetype t)
{
	if (t.is_date || icaltime_is_utc(t))
		return NULL;
	icalparameter *tz = icalproperty_get_first_parameter(p, ICAL_TZID_PARAMETER);
	const char *tzid = tz ? icalparameter_get_tzid(tz) : NULL;
	return tzid ? icalcomponent_get_timezone(vcal, tzid) : NULL;
}

/* The RRULE part: instances generated by the first RRULE (DTSTART first), skipping ahead
 * to the window when the rule has no COUNT. */
static int dav_walk_rrule(struct dav_rset *r, icalproperty *rp, int64_t from, int64_t to, size_t max,
			  dav_inst_fn fn, void *arg, dav_walk *w)
{
	icalproperty *sp = icalcomponent_get_first_property(r->master, ICAL_DTSTART_PROPERTY);
	struct icaltimetype t0 = icalproperty_get_dtstart(sp);
	icaltimezone *zone = dav_dtstart_zone(sp, r->vcal, t0);
	struct icalrecurrencetype rule = icalproperty_get_rrule(rp);
	if (rule.freq == ICAL_NO_RECURRENCE)
		return 0;
	if (rule.count == 0 && icaltime_is_null_time(rule.until))
		w->unbounded = 1;
	icalrecur_iterator *it = icalrecur_iterator_new(rule, t0);
	if (!it) {
		/* a rule libical cannot iterate: DTSTART is still the first instance */
		dav_inst in = r->base;
		in.recurring = 1;
		return in.start < to && !dav_rset_skip(r, t0, in.start) ? dav_emit(&in, max, fn, arg, w) : 0;
	}
	int skipped = 0;
	if (rule.count == 0 && from != INT64_MIN && from - r->dur - 2 * DAV_DAY > r->base.start) {
		struct icaltimetype s = icaltime_from_timet_with_zone((time_t)(from - r->dur - 2 * DAV_DAY),
								      t0.is_date, zone);
		s.zone = t0.zone;
		skipped = icalrecur_iterator_set_start(it, s) != 0;
	}
	size_t guard = max + r->n_ex + r->n_exdays + r->n_rids + 2;
	int stop = 0;
	for (size_t i = 0; i < guard && !stop; i++) {
		struct icaltimetype occ = icalrecur_iterator_next(it);
		int done = icaltime_is_null_time(occ);
		int64_t s = done ? INT64_MAX : (int64_t)icaltime_as_timet_with_zone(occ, occ.is_date ? NULL : zone);
		if (i == 0 && !skipped && s != r->base.start && r->base.start < to &&
		    !dav_rset_skip(r, t0, r->base.start)) {
			/* DTSTART off the rule: RFC 5545 §3.8.5.3 counts it as the first instance
			 * anyway (libical does not produce it) */
			dav_inst in = r->base;
			in.recurring = 1;
			stop = dav_emit(&in, max, fn, arg, w);
		}
		if (stop || done || s >= to)
			break;
		if (dav_rset_skip(r, occ, s))
			continue;
		dav_inst in = r->base;
		in.rid = in.start = s;
		in.end = s + r->dur;
		in.recurring = 1;
		stop = dav_emit(&in, max, fn, arg, w);
		if (i + 1 == guard)
			w->capped = 1;
	}
	icalrecur_iterator_free(it);
	return stop;
}

/* The RDATE part (DATE, DATE-TIME or PERIOD values). */
static int dav_walk_rdates(struct dav_rset *r, int64_t to, size_t max, dav_inst_fn fn, void *arg,
			   dav_walk *w)
{
	for (icalproperty *p = icalcomponent_get_first_property(r->master, ICAL_RDATE_PROPERTY); p;
	     p = icalcomponent_get_next_property(r->master, ICAL_RDATE_PROPERTY)) {
		struct icaldatetimeperiodtype v = icalproperty_get_rdate(p);
		dav_inst in = r->base;
		in.recurring = 1;
		struct icaltimetype local = v.time;
		if (!icaltime_is_null_time(v.period.start)) {
			local = v.period.start;
			in.start = dav_ical_utc(p, r->vcal, v.period.start);
			if (!icaltime_is_null_time(v.period.end))
				in.end = dav_ical_utc(p, r->vcal, v.period.end);
			else
				in.end = in.start + icaldurationtype_as_int(v.period.duration);
			if (in.end < in.start)
				in.end = in.start;
		} else if (!icaltime_is_null_time(v.time)) {
			in.start = dav_ical_utc(p, r->vcal, v.time);
			in.end = in.start + r->dur;
		} else {
			continue;
		}
		in.rid = in.start;
		if (in.start >= to || in.start == r->base.start || dav_rset_skip(r, local, in.start))
			continue;
		if (dav_emit(&in, max, fn, arg, w))
			return 1;
	}
	return 0;
}

/* Collect EXDATEs and override ids of a master into r (arrays owned by r). */
static void dav_rset_collect(struct dav_rset *r, icalcomponent_kind kind)
{
	size_t n = 0, k = 0;
	for (icalproperty *p = icalcomponent_get_first_property(r->master, ICAL_EXDATE_PROPERTY); p;
	     p = icalcomponent_get_next_property(r->master, ICAL_EXDATE_PROPERTY))
		n++;
	for (icalcomponent *c = icalcomponent_get_first_component(r->vcal, kind); c;
	     c = icalcomponent_get_next_component(r->vcal, kind))
		k++;
	r->exdates = calloc(n + 1, sizeof(*r->exdates));
	r->exdays = calloc(n + 1, sizeof(*r->exdays));
	r->rids = calloc(k + 1, sizeof(*r->rids));
	if (!r->exdates || !r->exdays || !r->rids)
		abort();
	for (icalproperty *p = icalcomponent_get_first_property(r->master, ICAL_EXDATE_PROPERTY); p;
	     p = icalcomponent_get_next_property(r->master, ICAL_EXDATE_PROPERTY)) {
		struct icaltimetype t = icalproperty_get_exdate(p);
		if (icaltime_is_null_time(t))
			continue;
		if (t.is_date && !r->base.is_date)
			r->exdays[r->n_exdays++] = t;
		else
			r->exdates[r->n_ex++] = dav_ical_utc(p, r->vcal, t);
	}
	for (icalcomponent *c = icalcomponent_get_first_component(r->vcal, kind); c;
	     c = icalcomponent_get_next_component(r->vcal, kind)) {
		icalproperty *rid = icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY);
		if (rid)
			r->rids[r->n_rids++] = dav_ical_utc(rid, r->vcal, icalproperty_get_recurrenceid(rid));
	}
}

/* All instances of one master: itself when it does not recur, else its recurrence set. */
static int dav_walk_master(icalcomponent *vcal, icalcomponent *master, icalcomponent_kind kind,
			   int has_overrides, int64_t from, int64_t to, size_t max, dav_inst_fn fn,
			   void *arg, dav_walk *w)
{
	struct dav_rset r = { .vcal = vcal, .master = master };
	dav_inst_of(master, vcal, kind, &r.base);
	r.dur = r.base.end - r.base.start;
	icalproperty *rp = icalcomponent_get_first_property(master, ICAL_RRULE_PROPERTY);
	int has_rdate = icalcomponent_get_first_property(master, ICAL_RDATE_PROPERTY) != NULL;
	if (!r.base.has_start || (!rp && !has_rdate)) {
		r.base.recurring = has_overrides;
		return dav_emit(&r.base, max, fn, arg, w);
	}
	dav_rset_collect(&r, kind);
	int stop = 0;
	if (rp) {
		stop = dav_walk_rrule(&r, rp, from, to, max, fn, arg, w);
	} else if (!dav_rset_skip(&r, icalproperty_get_dtstart(icalcomponent_get_first_property(
					      master, ICAL_DTSTART_PROPERTY)),
				  r.base.start)) {
		dav_inst in = r.base;   /* RDATE only: DTSTART is the first instance */
		in.recurring = 1;
		stop = dav_emit(&in, max, fn, arg, w);
	}
	if (!stop)
		stop = dav_walk_rdates(&r, to, max, fn, arg, w);
	free(r.exdates);
	free(r.exdays);
	free(r.rids);
	return stop;
}

void dav_ical_walk(icalcomponent *vcal, icalcomponent_kind kind, int64_t from, int64_t to,
		   size_t max, dav_inst_fn fn, void *arg, dav_walk *w)
{
	memset(w, 0, sizeof(*w));
	/* Collect the components first: libical keeps one iteration cursor per parent, and
	 * the callbacks may iterate vcal themselves. */
	size_t n = (size_t)icalcomponent_count_components(vcal, kind), k = 0;
	icalcomponent **overrides = calloc(n + 1, sizeof(*overrides));
	if (!overrides)
		abort();
	icalcomponent *master = NULL;
	for (icalcomponent *c = icalcomponent_get_first_component(vcal, kind); c && k < n;
	     c = icalcomponent_get_next_component(vcal, kind)) {
		if (icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY))
			overrides[k++] = c;
		else if (!master)
			master = c;
	}
	int stop = master && dav_walk_master(vcal, master, kind, k > 0, from, to, max, fn, arg, w);
	/* Overrides: few (bounded by the object's size), each its own instance. */
	for (size_t i = 0; i < k && !stop; i++) {
		dav_inst in;
		dav_inst_of(overrides[i], vcal, kind, &in);
		stop = dav_emit(&in, max, fn, arg, w);
	}
	free(overrides);
}

/* RFC 4791 §9.9 for a VTODO instance. */
static int dav_todo_overlaps(const dav_inst *in, icalcomponent *vcal, int64_t S, int64_t E)
{
	if (in->has_start && in->end_kind == DAV_END_DURATION)
		return S <= in->end && (E > in->start || E >= in->end);
	if (in->has_start && in->end_kind == DAV_END_DUE)
		return (S < in->end || S <= in->start) && (E > in->start || E >= in->end);
	if (in->has_start)
		return S <= in->start && E > in->start;
	if (in->end_kind == DAV_END_DUE)
		return S < in->end && E >= in->end;
	int has_cpl, has_cre;
	int64_t cpl = dav_ical_prop_utc(in->comp, ICAL_COMPLETED_PROPERTY, vcal, &has_cpl, NULL);
	int64_t cre = dav_ical_prop_utc(in->comp, ICAL_CREATED_PROPERTY, vcal, &has_cre, NULL);
	if (has_cpl && has_cre)
		return (S <= cre || S <= cpl) && (E >= cre || E >= cpl);
	if (has_cpl)
		return S <= cpl && E >= cpl;
	if (has_cre)
		return E > cre;
	return 1;
}

int dav_ical_inst_overlaps(const dav_inst *in, icalcomponent_kind kind, icalcomponent *vcal,
			   int64_t S, int64_t E)
{
	if (kind == ICAL_VTODO_COMPONENT)
		return dav_todo_overlaps(in, vcal, S, E);
	if (!in->has_start)
		return 0;
	if (in->end > in->start)   /* DTEND, DURATION > 0, or an all-day DATE */
		return S < in->end && E > in->start;
	return S <= in->start && E > in->start;
}

void dav_ical_fmt_utc(int64_t t, char buf[17])
{
	if (t < 0)
		t = 0;
	if (t > 253402300799LL)   /* 9999-12-31T23:59:59Z */
		t = 253402300799LL;
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	if (strftime(buf, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
		memcpy(buf, "19700101T000000Z", 17);
}

void dav_ical_line(tbuf *out, const char *line)
{
	size_t n = strlen(line), col = 0;
	for (size_t i = 0; i < n;) {
		/* the length of the UTF-8 sequence at i, so a fold never splits it */
		size_t k = 1;
		while (i + k < n && ((unsigned char)line[i + k] & 0xC0) == 0x80)
			k++;
		if (col + k > 75) {
			tbuf_append(out, "\r\n ", 3);
			col = 1;
		}
		tbuf_append(out, line + i, k);
		col += k;
		i += k;
	}
	tbuf_append(out, "\r\n", 2);
}
