/* dav_ical_busy.c - CALDAV:expand output, busy time of an object and the VFREEBUSY
 * rendering (RFC 4791 §7.10, RFC 5545 §3.6.4, RFC 6638 / RFC 5546 REPLY). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "dav_cal.h"
#include "dav_ical_int.h"

/* The component type of a parsed object (the first non-VTIMEZONE component). */
static icalcomponent_kind dav_ical_kind(icalcomponent *vcal)
{
	for (icalcomponent *c = icalcomponent_get_first_component(vcal, ICAL_ANY_COMPONENT); c;
	     c = icalcomponent_get_next_component(vcal, ICAL_ANY_COMPONENT))
		if (icalcomponent_isa(c) != ICAL_VTIMEZONE_COMPONENT)
			return icalcomponent_isa(c);
	return ICAL_NO_COMPONENT;
}

struct dav_expand {
	icalcomponent *vcal;
	icalcomponent_kind kind;
	int64_t start, end;
	tbuf *out;
};

/* An icaltime for UTC seconds t: a DATE when is_date, else a UTC DATE-TIME. */
static struct icaltimetype dav_ical_time(int64_t t, int is_date)
{
	return icaltime_from_timet_with_zone((time_t)t, is_date,
					     is_date ? NULL : icaltimezone_get_utc_timezone());
}

/* Replace every property of kind in c by p (p may be NULL: only remove). */
static void dav_ical_replace(icalcomponent *c, icalproperty_kind kind, icalproperty *p)
{
	icalproperty *old;
	while ((old = icalcomponent_get_first_property(c, kind)) != NULL) {
		icalcomponent_remove_property(c, old);
		icalproperty_free(old);
	}
	if (p)
		icalcomponent_add_property(c, p);
}

/* One overlapping instance as a stand-alone component in UTC. */
static int dav_expand_one(const dav_inst *in, void *arg)
{
	struct dav_expand *x = arg;
	if (!dav_ical_inst_overlaps(in, x->kind, x->vcal, x->start, x->end))
		return 0;
	icalcomponent *c = icalcomponent_new_clone(in->comp);
	dav_ical_replace(c, ICAL_RRULE_PROPERTY, NULL);
	dav_ical_replace(c, ICAL_RDATE_PROPERTY, NULL);
	dav_ical_replace(c, ICAL_EXDATE_PROPERTY, NULL);
	dav_ical_replace(c, ICAL_EXRULE_PROPERTY, NULL);
	if (in->has_start)
		dav_ical_replace(c, ICAL_DTSTART_PROPERTY, icalproperty_new_dtstart(dav_ical_time(in->start, in->is_date)));
	if (in->end_kind == DAV_END_DTEND)
		dav_ical_replace(c, ICAL_DTEND_PROPERTY, icalproperty_new_dtend(dav_ical_time(in->end, in->is_date)));
	else if (in->end_kind == DAV_END_DUE)
		dav_ical_replace(c, ICAL_DUE_PROPERTY, icalproperty_new_due(dav_ical_time(in->end, in->is_date)));
	if (in->recurring)
		dav_ical_replace(c, ICAL_RECURRENCEID_PROPERTY,
				 icalproperty_new_recurrenceid(dav_ical_time(in->rid, in->is_date)));
	char *s = icalcomponent_as_ical_string_r(c);
	if (s) {
		tbuf_append_str(x->out, s);
		free(s);
	}
	icalcomponent_free(c);
	return 0;
}

/* Appends a whole VCALENDAR (VERSION, the object's PRODID, the instances; no VTIMEZONE
 * since everything is in UTC). */
int dav_ical_expand(const Tern__DavObject *o, int64_t start, int64_t end, tbuf *out)
{
	tbuf why = TBUF_INIT;
	icalcomponent *vcal = dav_ical_parse((const char *)o->data.data, o->data.len, &why);
	tbuf_free(&why);
	if (!vcal)
		return -1;
	struct dav_expand x = { vcal, dav_ical_kind(vcal), start, end, out };
	icalproperty *pp = icalcomponent_get_first_property(vcal, ICAL_PRODID_PROPERTY);
	const char *prodid = pp ? icalproperty_get_prodid(pp) : NULL;
	tbuf line = TBUF_INIT;
	tbuf_append_str(out, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n");
	tbuf_appendf(&line, "PRODID:%s", prodid && !strpbrk(prodid, "\r\n") ? prodid : "-//Tern//Tern DAV//EN");
	dav_ical_line(out, tbuf_cstr(&line));
	tbuf_free(&line);
	dav_walk w;
	if (x.kind != ICAL_NO_COMPONENT)
		dav_ical_walk(vcal, x.kind, start, end, DAV_CAL_MAX_INSTANCES, dav_expand_one, &x, &w);
	tbuf_append_str(out, "END:VCALENDAR\r\n");
	icalcomponent_free(vcal);
	return 0;
}

struct dav_busy_acc {
	icalcomponent *vcal;
	int64_t start, end;
	dav_busy *list;
	size_t n, cap;
};

/* One instance's busy time: opaque, not cancelled, clipped to the range. */
static int dav_busy_one(const dav_inst *in, void *arg)
{
	struct dav_busy_acc *a = arg;
	if (!in->has_start || in->end <= in->start || in->start >= a->end || in->end <= a->start)
		return 0;
	icalproperty *p = icalcomponent_get_first_property(in->comp, ICAL_TRANSP_PROPERTY);
	if (p && icalproperty_get_transp(p) == ICAL_TRANSP_TRANSPARENT)
		return 0;
	p = icalcomponent_get_first_property(in->comp, ICAL_STATUS_PROPERTY);
	icalproperty_status st = p ? icalproperty_get_status(p) : ICAL_STATUS_NONE;
	if (st == ICAL_STATUS_CANCELLED)
		return 0;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		dav_busy *l = realloc(a->list, cap * sizeof(*l));
		if (!l)
			abort();
		a->list = l;
		a->cap = cap;
	}
	dav_busy *b = &a->list[a->n++];
	b->start = in->start < a->start ? a->start : in->start;
	b->end = in->end > a->end ? a->end : in->end;
	b->type = st == ICAL_STATUS_TENTATIVE ? TERN__BUSY_PERIOD__TYPE__TENTATIVE
					     : TERN__BUSY_PERIOD__TYPE__BUSY;
	return 0;
}

int dav_ical_busy(const Tern__DavObject *o, int64_t start, int64_t end, dav_busy **list, size_t *n)
{
	tbuf why = TBUF_INIT;
	icalcomponent *vcal = dav_ical_parse((const char *)o->data.data, o->data.len, &why);
	tbuf_free(&why);
	if (!vcal)
		return -1;
	struct dav_busy_acc a = { vcal, start, end, *list, *n, *n };
	dav_walk w;
	dav_ical_walk(vcal, ICAL_VEVENT_COMPONENT, start, end, DAV_CAL_MAX_INSTANCES, dav_busy_one, &a, &w);
	*list = a.list;
	*n = a.n;
	icalcomponent_free(vcal);
	return 0;
}

void dav_ical_busy_set(Tern__DavObject *o, int64_t start, int64_t end)
{
	dav_busy *list = NULL;
	size_t n = 0;
	if (dav_ical_busy(o, start, end, &list, &n) < 0 || n == 0) {
		free(list);
		return;
	}
	o->busy = calloc(n, sizeof(*o->busy));
	if (o->busy == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		Tern__BusyPeriod *b = malloc(sizeof(*b));
		if (b == NULL)
			abort();
		tern__busy_period__init(b);
		b->start = list[i].start;
		b->end = list[i].end;
		b->type = list[i].type;
		o->busy[i] = b;
	}
	o->n_busy = n;
	free(list);
}

/* A boundary of a busy period in the sweep of dav_freebusy_render. */
struct dav_edge {
	int64_t t;
	int delta;
	Tern__BusyPeriod__Type type;
};

static int dav_edge_cmp(const void *a, const void *b)
{
	const struct dav_edge *x = a, *y = b;
	return x->t < y->t ? -1 : x->t > y->t;
}

/* The strongest type covering a point: BUSY over UNAVAILABLE over TENTATIVE; -1 free. */
static int dav_cover(const long cnt[3])
{
	if (cnt[TERN__BUSY_PERIOD__TYPE__BUSY])
		return TERN__BUSY_PERIOD__TYPE__BUSY;
	if (cnt[TERN__BUSY_PERIOD__TYPE__UNAVAILABLE])
		return TERN__BUSY_PERIOD__TYPE__UNAVAILABLE;
	if (cnt[TERN__BUSY_PERIOD__TYPE__TENTATIVE])
		return TERN__BUSY_PERIOD__TYPE__TENTATIVE;
	return -1;
}

static void dav_fb_period(tbuf *out, int type, int64_t s, int64_t e)
{
	static const char *const names[] = { "BUSY", "BUSY-TENTATIVE", "BUSY-UNAVAILABLE" };
	char a[17], b[17];
	dav_ical_fmt_utc(s, a);
	dav_ical_fmt_utc(e, b);
	tbuf_appendf(out, "FREEBUSY;FBTYPE=%s:%s/%s\r\n", names[type], a, b);
}

/* The merged periods: a sweep over the clipped boundaries. */
static void dav_fb_periods(const dav_busy *list, size_t n, int64_t start, int64_t end, tbuf *out)
{
	struct dav_edge *ev = calloc(2 * n + 1, sizeof(*ev));
	if (!ev)
		abort();
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t s = list[i].start < start ? start : list[i].start;
		int64_t e = list[i].end > end ? end : list[i].end;
		if (e <= s || (unsigned)list[i].type > TERN__BUSY_PERIOD__TYPE__UNAVAILABLE)
			continue;
		ev[k++] = (struct dav_edge){ s, 1, list[i].type };
		ev[k++] = (struct dav_edge){ e, -1, list[i].type };
	}
	qsort(ev, k, sizeof(*ev), dav_edge_cmp);
	long cnt[3] = { 0, 0, 0 };
	int cur = -1;
	int64_t since = 0;
	for (size_t i = 0; i < k;) {
		int64_t t = ev[i].t;
		for (; i < k && ev[i].t == t; i++)
			cnt[ev[i].type] += ev[i].delta;
		int now = dav_cover(cnt);
		if (now == cur)
			continue;
		if (cur >= 0)
			dav_fb_period(out, cur, since, t);
		cur = now;
		since = t;
	}
	free(ev);
}

/* "NAME:mailto:addr" (mailto: added when missing, control characters dropped). */
static void dav_fb_address(tbuf *out, const char *name, const char *addr)
{
	tbuf l = TBUF_INIT;
	tbuf_append_str(&l, name);
	tbuf_append_char(&l, ':');
	if (strncasecmp(addr, "mailto:", 7) != 0)
		tbuf_append_str(&l, "mailto:");
	for (const char *p = addr; *p; p++)
		if ((unsigned char)*p >= 0x20 && *p != 0x7f)
			tbuf_append_char(&l, *p);
	dav_ical_line(out, tbuf_cstr(&l));
	tbuf_free(&l);
}

void dav_freebusy_render(const dav_busy *list, size_t n, int64_t start, int64_t end,
			 const char *organizer, const char *attendee, int reply, tbuf *out)
{
	char s[17], e[17], now[17];
	int64_t t = (int64_t)time(NULL);
	dav_ical_fmt_utc(start, s);
	dav_ical_fmt_utc(end, e);
	dav_ical_fmt_utc(t, now);
	tbuf_append_str(out, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Tern//Tern DAV//EN\r\n");
	if (reply)
		tbuf_append_str(out, "METHOD:REPLY\r\n");
	tbuf_append_str(out, "BEGIN:VFREEBUSY\r\n");
	if (reply) {
		/* RFC 5546 §3.3.3 wants a UID in a REPLY: one per reply, from its inputs */
		uint64_t h = 1469598103934665603ULL;
		const char *parts[2] = { attendee ? attendee : "", organizer ? organizer : "" };
		for (int i = 0; i < 2; i++)
			for (const char *p = parts[i]; *p; p++)
				h = (h ^ (unsigned char)*p) * 1099511628211ULL;
		h ^= (uint64_t)start * 31 + (uint64_t)end * 17 + (uint64_t)t;
		tbuf_appendf(out, "UID:fb-%016llx-%s\r\n", (unsigned long long)h, now);
	}
	tbuf_appendf(out, "DTSTAMP:%s\r\nDTSTART:%s\r\nDTEND:%s\r\n", now, s, e);
	if (organizer && *organizer)
		dav_fb_address(out, "ORGANIZER", organizer);
	if (attendee && *attendee)
		dav_fb_address(out, "ATTENDEE", attendee);
	dav_fb_periods(list, n, start, end, out);
	tbuf_append_str(out, "END:VFREEBUSY\r\nEND:VCALENDAR\r\n");
}
