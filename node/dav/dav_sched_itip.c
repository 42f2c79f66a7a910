/* dav_sched_itip.c - the iCalendar side of scheduling: organizer and attendees of an
 * object, their parameters, and the iTIP messages (RFC 5546) made from an object. Pure
 * functions over libical components: no store, no network. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dav_sched_int.h"

icalcomponent *sched_parse(const char *data, size_t len)
{
	char *s = malloc(len + 1);
	if (s == NULL)
		abort();
	memcpy(s, data, len);
	s[len] = '\0';
	icalcomponent *c = icalparser_parse_string(s);
	free(s);
	if (c != NULL && icalcomponent_isa(c) != ICAL_VCALENDAR_COMPONENT) {
		icalcomponent_free(c);
		return NULL;
	}
	return c;
}

int sched_addr(const char *value, char *out, size_t n)
{
	if (value == NULL || strncasecmp(value, "mailto:", 7) != 0)
		return -1;
	int w = snprintf(out, n, "%s", value + 7);
	if (w <= 0 || (size_t)w >= n || strchr(out, '@') == NULL)
		return -1;
	tern_lower(out);
	return 0;
}

/* A component that carries scheduling (RFC 6638 §3.1): events and tasks. */
static int sched_kind(icalcomponent *c)
{
	icalcomponent_kind k = icalcomponent_isa(c);
	return k == ICAL_VEVENT_COMPONENT || k == ICAL_VTODO_COMPONENT;
}

icalcomponent *sched_first(icalcomponent *cal)
{
	for (icalcomponent *c = icalcomponent_get_first_component(cal, ICAL_ANY_COMPONENT); c;
	     c = icalcomponent_get_next_component(cal, ICAL_ANY_COMPONENT))
		if (sched_kind(c))
			return c;
	return NULL;
}

int sched_organizer(icalcomponent *cal, char *out, size_t n)
{
	icalcomponent *c = sched_first(cal);
	icalproperty *p = c ? icalcomponent_get_first_property(c, ICAL_ORGANIZER_PROPERTY) : NULL;
	return p ? sched_addr(icalproperty_get_organizer(p), out, n) : -1;
}

const char *sched_uid(icalcomponent *cal)
{
	icalcomponent *c = sched_first(cal);
	return c ? icalcomponent_get_uid(c) : NULL;
}

int sched_list_has(char *const *list, size_t n, const char *addr)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(list[i], addr) == 0)
			return 1;
	return 0;
}

void sched_list_free(char ***list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((*list)[i]);
	free(*list);
	*list = NULL;
}

/* 1 when the attendee asks the client, not the server, to schedule it. */
static int agent_is_client(icalproperty *p)
{
	icalparameter *a = icalproperty_get_first_parameter(p, ICAL_SCHEDULEAGENT_PARAMETER);
	if (a == NULL)
		return 0;
	icalparameter_scheduleagent v = icalparameter_get_scheduleagent(a);
	return v == ICAL_SCHEDULEAGENT_CLIENT || v == ICAL_SCHEDULEAGENT_NONE;
}

size_t sched_attendees(icalcomponent *cal, const char *organizer, int server_only, char ***list_r)
{
	char **list = NULL;
	size_t n = 0;
	char addr[SCHED_ADDR_MAX];

	for (icalcomponent *c = icalcomponent_get_first_component(cal, ICAL_ANY_COMPONENT); c;
	     c = icalcomponent_get_next_component(cal, ICAL_ANY_COMPONENT)) {
		if (!sched_kind(c))
			continue;
		for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_ATTENDEE_PROPERTY); p;
		     p = icalcomponent_get_next_property(c, ICAL_ATTENDEE_PROPERTY)) {
			if (sched_addr(icalproperty_get_attendee(p), addr, sizeof(addr)) < 0 ||
			    (organizer && strcasecmp(addr, organizer) == 0) ||
			    (server_only && agent_is_client(p)) || sched_list_has(list, n, addr) ||
			    n >= SCHED_ATTENDEES_MAX)
				continue;
			if ((list = realloc(list, (n + 1) * sizeof(*list))) == NULL ||
			    (list[n] = strdup(addr)) == NULL)
				abort();
			n++;
		}
	}
	*list_r = list;
	return n;
}

icalproperty *sched_attendee(icalcomponent *comp, const char *addr)
{
	char a[SCHED_ADDR_MAX];
	for (icalproperty *p = icalcomponent_get_first_property(comp, ICAL_ATTENDEE_PROPERTY); p;
	     p = icalcomponent_get_next_property(comp, ICAL_ATTENDEE_PROPERTY))
		if (sched_addr(icalproperty_get_attendee(p), a, sizeof(a)) == 0 && strcasecmp(a, addr) == 0)
			return p;
	return NULL;
}

const char *sched_partstat(icalcomponent *cal, const char *addr)
{
	for (icalcomponent *c = icalcomponent_get_first_component(cal, ICAL_ANY_COMPONENT); c;
	     c = icalcomponent_get_next_component(cal, ICAL_ANY_COMPONENT)) {
		icalproperty *p = sched_kind(c) ? sched_attendee(c, addr) : NULL;
		if (p == NULL)
			continue;
		icalparameter *ps = icalproperty_get_first_parameter(p, ICAL_PARTSTAT_PARAMETER);
		switch (ps ? icalparameter_get_partstat(ps) : ICAL_PARTSTAT_NEEDSACTION) {
		case ICAL_PARTSTAT_ACCEPTED: return "ACCEPTED";
		case ICAL_PARTSTAT_DECLINED: return "DECLINED";
		case ICAL_PARTSTAT_TENTATIVE: return "TENTATIVE";
		case ICAL_PARTSTAT_DELEGATED: return "DELEGATED";
		case ICAL_PARTSTAT_COMPLETED: return "COMPLETED";
		case ICAL_PARTSTAT_INPROCESS: return "IN-PROCESS";
		default: return "NEEDS-ACTION";
		}
	}
	return NULL;
}

int sched_set_param(icalcomponent *cal, const char *addr, const char *param, const char *value)
{
	int changed = 0;
	for (icalcomponent *c = icalcomponent_get_first_component(cal, ICAL_ANY_COMPONENT); c;
	     c = icalcomponent_get_next_component(cal, ICAL_ANY_COMPONENT)) {
		icalproperty *p = sched_kind(c) ? sched_attendee(c, addr) : NULL;
		if (p == NULL)
			continue;
		if (value != NULL)
			icalproperty_set_parameter_from_string(p, param, value);
		else
			icalproperty_remove_parameter_by_name(p, param);
		changed++;
	}
	return changed;
}

void sched_strip_method(icalcomponent *cal)
{
	icalproperty *p;
	while ((p = icalcomponent_get_first_property(cal, ICAL_METHOD_PROPERTY)) != NULL) {
		icalcomponent_remove_property(cal, p);
		icalproperty_free(p);
	}
}

void sched_text(icalcomponent *cal, tbuf *out)
{
	char *s = icalcomponent_as_ical_string_r(cal);
	if (s == NULL)
		abort();
	tbuf_append_str(out, s);
	free(s);
}

/* Remove every property of kind k from c. */
static void drop_props(icalcomponent *c, icalproperty_kind k)
{
	icalproperty *p;
	while ((p = icalcomponent_get_first_property(c, k)) != NULL) {
		icalcomponent_remove_property(c, p);
		icalproperty_free(p);
	}
}

/* Remove the ATTENDEEs of c other than `only` (NULL keeps all). */
static void keep_attendee(icalcomponent *c, const char *only)
{
	char a[SCHED_ADDR_MAX];
	icalproperty *p = icalcomponent_get_first_property(c, ICAL_ATTENDEE_PROPERTY);
	while (p != NULL) {
		icalproperty *next = icalcomponent_get_next_property(c, ICAL_ATTENDEE_PROPERTY);
		if (only != NULL && (sched_addr(icalproperty_get_attendee(p), a, sizeof(a)) < 0 ||
				     strcasecmp(a, only) != 0)) {
			icalcomponent_remove_property(c, p);
			icalproperty_free(p);
		} else {
			icalproperty_remove_parameter_by_name(p, "SCHEDULE-STATUS");
		}
		p = next;
	}
}

/* Remove subcomponents of kind k (alarms) from c. */
static void drop_subs(icalcomponent *c, icalcomponent_kind k)
{
	icalcomponent *s;
	while ((s = icalcomponent_get_first_component(c, k)) != NULL) {
		icalcomponent_remove_component(c, s);
		icalcomponent_free(s);
	}
}

void sched_itip(icalcomponent *cal, icalproperty_method method, const char *only, tbuf *out)
{
	icalcomponent *m = icalcomponent_new_clone(cal);
	struct icaltimetype now = icaltime_current_time_with_zone(icaltimezone_get_utc_timezone());

	sched_strip_method(m);
	icalcomponent_add_property(m, icalproperty_new_method(method));
	for (icalcomponent *c = icalcomponent_get_first_component(m, ICAL_ANY_COMPONENT); c;
	     c = icalcomponent_get_next_component(m, ICAL_ANY_COMPONENT)) {
		if (!sched_kind(c))
			continue;
		drop_props(c, ICAL_DTSTAMP_PROPERTY);
		icalcomponent_add_property(c, icalproperty_new_dtstamp(now));
		if (method == ICAL_METHOD_REPLY) {
			keep_attendee(c, only);
			drop_subs(c, ICAL_VALARM_COMPONENT);
		} else if (method == ICAL_METHOD_CANCEL) {
			keep_attendee(c, only);
			drop_subs(c, ICAL_VALARM_COMPONENT);
			drop_props(c, ICAL_STATUS_PROPERTY);
			icalcomponent_add_property(c, icalproperty_new_status(ICAL_STATUS_CANCELLED));
			int seq = icalcomponent_get_sequence(c);
			icalcomponent_set_sequence(c, seq + 1);
		} else {
			keep_attendee(c, NULL);
		}
	}
	sched_text(m, out);
	icalcomponent_free(m);
}

/* Text of every property of c whose kind is in kinds (0-terminated), in order. */
static void props_text(icalcomponent *cal, const icalproperty_kind *kinds, tbuf *out)
{
	for (icalcomponent *c = icalcomponent_get_first_component(cal, ICAL_ANY_COMPONENT); c;
	     c = icalcomponent_get_next_component(cal, ICAL_ANY_COMPONENT)) {
		if (!sched_kind(c))
			continue;
		for (const icalproperty_kind *k = kinds; *k != ICAL_NO_PROPERTY; k++)
			for (icalproperty *p = icalcomponent_get_first_property(c, *k); p;
			     p = icalcomponent_get_next_property(c, *k)) {
				char *s = icalproperty_as_ical_string_r(p);
				if (s != NULL)
					tbuf_append_str(out, s);
				free(s);
			}
		tbuf_append_str(out, "--\n");
	}
}

int sched_timing_changed(icalcomponent *a, icalcomponent *b)
{
	static const icalproperty_kind kinds[] = {
		ICAL_RECURRENCEID_PROPERTY, ICAL_DTSTART_PROPERTY, ICAL_DTEND_PROPERTY,
		ICAL_DURATION_PROPERTY, ICAL_DUE_PROPERTY, ICAL_RRULE_PROPERTY, ICAL_RDATE_PROPERTY,
		ICAL_EXDATE_PROPERTY, ICAL_NO_PROPERTY
	};
	tbuf ta = TBUF_INIT, tb = TBUF_INIT;
	props_text(a, kinds, &ta);
	props_text(b, kinds, &tb);
	int changed = ta.len != tb.len || memcmp(ta.data, tb.data, ta.len) != 0;
	tbuf_free(&ta);
	tbuf_free(&tb);
	return changed;
}

void sched_digest(icalcomponent *cal, tbuf *out)
{
	icalcomponent *m = icalcomponent_new_clone(cal);
	for (icalcomponent *c = icalcomponent_get_first_component(m, ICAL_ANY_COMPONENT); c;
	     c = icalcomponent_get_next_component(m, ICAL_ANY_COMPONENT)) {
		if (!sched_kind(c))
			continue;
		drop_subs(c, ICAL_VALARM_COMPONENT);
		drop_props(c, ICAL_DTSTAMP_PROPERTY);
		drop_props(c, ICAL_LASTMODIFIED_PROPERTY);
		drop_props(c, ICAL_X_PROPERTY);
		for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_ATTENDEE_PROPERTY); p;
		     p = icalcomponent_get_next_property(c, ICAL_ATTENDEE_PROPERTY)) {
			icalproperty_remove_parameter_by_name(p, "PARTSTAT");
			icalproperty_remove_parameter_by_name(p, "SCHEDULE-STATUS");
		}
	}
	sched_strip_method(m);
	sched_text(m, out);
	icalcomponent_free(m);
}

const char *sched_summary(icalcomponent *cal)
{
	icalcomponent *c = sched_first(cal);
	const char *s = c ? icalcomponent_get_summary(c) : NULL;
	return s ? s : "";
}
