/* dav_sched.c - implicit scheduling (RFC 6638 §3.2): after a user wrote or deleted a
 * calendar object, the server sends what the change means - the organizer's REQUEST to
 * new and changed attendees and CANCEL to removed ones, an attendee's REPLY when its
 * answer changed - and records each recipient's SCHEDULE-STATUS (and a resource's
 * decision) in the organizer's copy. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dav_sched_int.h"

/* 1 when the two versions differ in more than the attendees' answers. */
static int sched_changed(icalcomponent *a, icalcomponent *b)
{
	tbuf da = TBUF_INIT, db = TBUF_INIT;
	sched_digest(a, &da);
	sched_digest(b, &db);
	int changed = da.len != db.len || memcmp(da.data, db.data, da.len) != 0;
	tbuf_free(&da);
	tbuf_free(&db);
	return changed;
}

/* The organizer changed or deleted its event (ncal NULL): REQUESTs and CANCELs.
 * Returns how many attendee parameters of ncal changed. */
static int sched_as_organizer(const dav_env *env, const dav_actor *who, const char *org,
			      icalcomponent *ocal, icalcomponent *ncal)
{
	char **nl = NULL, **ol = NULL;
	size_t nn = ncal ? sched_attendees(ncal, org, 1, &nl) : 0;
	size_t on = ocal ? sched_attendees(ocal, org, 1, &ol) : 0;
	int changed = ocal == NULL || ncal == NULL || sched_changed(ocal, ncal);
	int touched = 0;
	tbuf msg = TBUF_INIT;

	if (ncal != NULL && nn > 0)
		sched_itip(ncal, ICAL_METHOD_REQUEST, NULL, &msg);
	for (size_t i = 0; i < nn; i++) {
		const char *ps = NULL;
		if (!changed && sched_list_has(ol, on, nl[i]))
			continue;
		const char *st = sched_deliver(env, org, who->full_name, nl[i], ICAL_METHOD_REQUEST, msg.data,
					       msg.len, &ps);
		touched += sched_set_param(ncal, nl[i], "SCHEDULE-STATUS", st);
		if (ps != NULL)
			touched += sched_set_param(ncal, nl[i], "PARTSTAT", ps);
	}
	for (size_t i = 0; i < on; i++) {
		const char *ps = NULL;
		if (sched_list_has(nl, nn, ol[i]))
			continue;
		tbuf_reset(&msg);
		sched_itip(ocal, ICAL_METHOD_CANCEL, ol[i], &msg);
		sched_deliver(env, org, who->full_name, ol[i], ICAL_METHOD_CANCEL, msg.data, msg.len, &ps);
	}
	tbuf_free(&msg);
	sched_list_free(&nl, nn);
	sched_list_free(&ol, on);
	return touched;
}

/* 1 when the event (its first component) is cancelled. */
static int sched_cancelled(icalcomponent *cal)
{
	icalcomponent *c = sched_first(cal);
	return c != NULL && icalcomponent_get_status(c) == ICAL_STATUS_CANCELLED;
}

/* An attendee changed its answer, or deleted its copy (ncal NULL: it declines). */
static void sched_as_attendee(const dav_env *env, const dav_actor *who, const char *org,
			      icalcomponent *ocal, icalcomponent *ncal)
{
	const char *me = who->address;
	const char *nps = ncal ? sched_partstat(ncal, me) : "DECLINED";
	const char *ops = ocal ? sched_partstat(ocal, me) : NULL;
	const char *ps = NULL;
	tbuf msg = TBUF_INIT;

	if (nps == NULL || (ocal && ops == NULL))
		return;                  /* not an attendee (any more) */
	if (ops != NULL && strcmp(ops, nps) == 0)
		return;                  /* no new answer */
	if (ocal == NULL && strcmp(nps, "NEEDS-ACTION") == 0)
		return;                  /* a copy stored without an answer */
	if (ncal == NULL && sched_cancelled(ocal))
		return;                  /* removing a cancelled event answers nothing */
	icalcomponent *base = icalcomponent_new_clone(ncal ? ncal : ocal);
	if (ncal == NULL)
		sched_set_param(base, me, "PARTSTAT", "DECLINED");
	sched_itip(base, ICAL_METHOD_REPLY, me, &msg);
	sched_deliver(env, me, who->full_name, org, ICAL_METHOD_REPLY, msg.data, msg.len, &ps);
	icalcomponent_free(base);
	tbuf_free(&msg);
}

int dav_sched_after_write(const dav_env *env, const dav_actor *who, const Tern__DavObject *old,
			  const Tern__DavObject *new_obj, tbuf *updated)
{
	icalcomponent *ocal = old ? sched_parse((const char *)old->data.data, old->data.len) : NULL;
	icalcomponent *ncal = new_obj ? sched_parse((const char *)new_obj->data.data, new_obj->data.len) : NULL;
	char org[SCHED_ADDR_MAX];
	int rc = 0;

	if ((new_obj && ncal == NULL) || (new_obj == NULL && ocal == NULL)) {
		rc = new_obj || old ? -1 : 0;
	} else if (sched_organizer(ncal ? ncal : ocal, org, sizeof(org)) < 0) {
		rc = 0;                  /* no ORGANIZER: nothing to schedule */
	} else if (strcasecmp(org, who->address) == 0) {
		if (sched_as_organizer(env, who, org, ocal, ncal) > 0 && ncal != NULL)
			sched_text(ncal, updated);
	} else {
		sched_as_attendee(env, who, org, ocal, ncal);
	}
	if (ocal)
		icalcomponent_free(ocal);
	if (ncal)
		icalcomponent_free(ncal);
	return rc;
}
