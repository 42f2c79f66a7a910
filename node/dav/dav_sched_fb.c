/* dav_sched_fb.c - POST of a VFREEBUSY REQUEST to the schedule outbox (RFC 6638 §5):
 * one CALDAV:response per attendee with its busy time (users: their non-transparent
 * calendars; resources: their bookings, all busy when unavailable) as a VFREEBUSY REPLY.
 * Never any event detail. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dav_sched_int.h"

/* Append s with the XML special characters escaped. */
static void fb_xml(tbuf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (s[i]) {
		case '<': tbuf_append_str(out, "&lt;"); break;
		case '>': tbuf_append_str(out, "&gt;"); break;
		case '&': tbuf_append_str(out, "&amp;"); break;
		case '\r': tbuf_append_str(out, "&#13;"); break;
		default: tbuf_append_char(out, s[i]); break;
		}
	}
}

/* The busy time of addr (a local user or resource) into the response `out`. */
static void fb_attendee(const dav_env *env, const char *org, const char *addr, int64_t start, int64_t end,
			tbuf *out)
{
	Tern__Resource *r = NULL;
	Tern__User *u = NULL;
	dav_busy *list = NULL;
	size_t n = 0;
	int rc = STORE_ENOTFOUND;
	char morg[SCHED_ADDR_MAX + 8], matt[SCHED_ADDR_MAX + 8];

	tbuf_append_str(out, "<C:response><C:recipient><D:href>mailto:");
	fb_xml(out, addr, strlen(addr));
	tbuf_append_str(out, "</D:href></C:recipient>");
	if (store_resource_find(env->st, addr, &r) == STORE_OK) {
		rc = r->available ? sched_owner_busy(env->st, r->id.data, start, end, &list, &n) : STORE_OK;
		if (!r->available) {
			if ((list = malloc(sizeof(*list))) == NULL)
				abort();
			list[0] = (dav_busy){ start, end, TERN__BUSY_PERIOD__TYPE__UNAVAILABLE };
			n = 1;
		}
		store_free_record(r);
	} else if (store_user_find(env->st, addr, &u) == STORE_OK) {
		rc = sched_owner_busy(env->st, u->id.data, start, end, &list, &n);
		store_free_record(u);
	}
	if (rc == STORE_OK) {
		tbuf fb = TBUF_INIT;
		snprintf(morg, sizeof(morg), "mailto:%s", org);
		snprintf(matt, sizeof(matt), "mailto:%s", addr);
		dav_freebusy_render(list, n, start, end, morg, matt, 1, &fb);
		tbuf_append_str(out, "<C:request-status>2.0;Success</C:request-status><C:calendar-data>");
		fb_xml(out, fb.data, fb.len);
		tbuf_append_str(out, "</C:calendar-data>");
		tbuf_free(&fb);
	} else if (rc == STORE_ENOTFOUND) {
		tbuf_append_str(out, "<C:request-status>3.7;Invalid calendar user</C:request-status>");
	} else {
		tbuf_append_str(out, "<C:request-status>5.1;Could not read the calendars</C:request-status>");
	}
	tbuf_append_str(out, "</C:response>");
	free(list);
}

/* The VFREEBUSY of a REQUEST and its range; -1 with a reason. */
static int fb_request(const dav_env *env, icalcomponent *cal, icalcomponent **fb_r, int64_t *start_r,
		      int64_t *end_r, tbuf *err)
{
	int64_t days = env->conf ? env->conf->dav_freebusy_max_days : 366;
	icalcomponent *fb = icalcomponent_get_first_component(cal, ICAL_VFREEBUSY_COMPONENT);

	if (icalcomponent_get_method(cal) != ICAL_METHOD_REQUEST || fb == NULL) {
		tbuf_append_str(err, "a VFREEBUSY with METHOD:REQUEST is expected");
		return -1;
	}
	struct icaltimetype s = icalcomponent_get_dtstart(fb), e = icalcomponent_get_dtend(fb);
	if (icaltime_is_null_time(s) || icaltime_is_null_time(e)) {
		tbuf_append_str(err, "DTSTART and DTEND are required");
		return -1;
	}
	*start_r = (int64_t)icaltime_as_timet_with_zone(s, s.zone ? s.zone : icaltimezone_get_utc_timezone());
	*end_r = (int64_t)icaltime_as_timet_with_zone(e, e.zone ? e.zone : icaltimezone_get_utc_timezone());
	if (*end_r <= *start_r || *end_r - *start_r > days * 86400) {
		tbuf_appendf(err, "the range must be positive and at most %lld days", (long long)days);
		return -1;
	}
	*fb_r = fb;
	return 0;
}

int dav_sched_outbox_post(const dav_env *env, const dav_actor *who, const char *body, size_t len,
			  tbuf *out, tbuf *err)
{
	icalcomponent *cal = sched_parse(body, len), *fb = NULL;
	char org[SCHED_ADDR_MAX], addr[SCHED_ADDR_MAX];
	int64_t start, end;
	int rc = -1;

	if (cal == NULL) {
		tbuf_append_str(err, "not an iCalendar object");
		return -1;
	}
	if (fb_request(env, cal, &fb, &start, &end, err) < 0)
		goto done;
	icalproperty *op = icalcomponent_get_first_property(fb, ICAL_ORGANIZER_PROPERTY);
	if (op == NULL || sched_addr(icalproperty_get_organizer(op), org, sizeof(org)) < 0 ||
	    strcasecmp(org, who->address) != 0) {
		tbuf_append_str(err, "the ORGANIZER must be the authenticated user");
		goto done;
	}
	tbuf_append_str(out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
			"<C:schedule-response xmlns:D=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:caldav\">");
	size_t count = 0;
	for (icalproperty *p = icalcomponent_get_first_property(fb, ICAL_ATTENDEE_PROPERTY);
	     p && count < SCHED_ATTENDEES_MAX; p = icalcomponent_get_next_property(fb, ICAL_ATTENDEE_PROPERTY)) {
		const char *v = icalproperty_get_attendee(p);
		count++;
		if (sched_addr(v, addr, sizeof(addr)) == 0) {
			fb_attendee(env, org, addr, start, end, out);
			continue;
		}
		tbuf_append_str(out, "<C:response><C:recipient><D:href>");
		fb_xml(out, v ? v : "", v ? strlen(v) : 0);
		tbuf_append_str(out, "</D:href></C:recipient>"
				"<C:request-status>3.7;Invalid calendar user</C:request-status></C:response>");
	}
	tbuf_append_str(out, "</C:schedule-response>\n");
	rc = 0;
done:
	icalcomponent_free(cal);
	return rc;
}
