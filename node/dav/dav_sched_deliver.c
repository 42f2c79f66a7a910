/* dav_sched_deliver.c - one iTIP message to one recipient (RFC 6638 §3.2): a local user
 * gets it in its schedule inbox and its calendar updated, a resource decides at once
 * (dav_book), an external address gets it by mail (iMIP). Each answers with the
 * SCHEDULE-STATUS the organizer's copy records. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cluster.h"
#include "dav_sched_int.h"

/* The component of cal with the same RECURRENCE-ID as like (none: the master), or NULL. */
static icalcomponent *same_instance(icalcomponent *cal, icalcomponent *like)
{
	int like_rid = icalcomponent_get_first_property(like, ICAL_RECURRENCEID_PROPERTY) != NULL;
	struct icaltimetype rid = icalcomponent_get_recurrenceid(like);
	for (icalcomponent *c = icalcomponent_get_first_component(cal, ICAL_ANY_COMPONENT); c;
	     c = icalcomponent_get_next_component(cal, ICAL_ANY_COMPONENT)) {
		if (icalcomponent_isa(c) != icalcomponent_isa(like))
			continue;
		int c_rid = icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY) != NULL;
		if (c_rid != like_rid)
			continue;
		if (!like_rid || icaltime_compare(icalcomponent_get_recurrenceid(c), rid) == 0)
			return c;
	}
	return NULL;
}

int sched_apply_reply(const dav_env *env, const uint8_t owner[16], const char *from, icalcomponent *reply,
		      const char *text, size_t len)
{
	Tern__DavCollection *c = NULL;
	Tern__DavObject *o = NULL;
	const char *uid = sched_uid(reply);
	char org[SCHED_ADDR_MAX], rorg[SCHED_ADDR_MAX];
	int rc, changed = 0;

	if (uid == NULL)
		return STORE_EINVAL;
	sched_lock(owner);
	rc = sched_find_uid(env->st, owner, uid, &c, &o);
	icalcomponent *copy = rc == STORE_OK ? sched_parse((const char *)o->data.data, o->data.len) : NULL;
	if (rc == STORE_OK && (copy == NULL || sched_organizer(copy, org, sizeof(org)) < 0 ||
			       sched_organizer(reply, rorg, sizeof(rorg)) < 0 || strcasecmp(org, rorg) != 0))
		rc = STORE_EINVAL;       /* not the organizer's copy of this event */
	for (icalcomponent *r = rc == STORE_OK ? icalcomponent_get_first_component(reply, ICAL_ANY_COMPONENT) : NULL;
	     r; r = icalcomponent_get_next_component(reply, ICAL_ANY_COMPONENT)) {
		icalproperty *ra = sched_attendee(r, from);
		icalcomponent *mine = ra ? same_instance(copy, r) : NULL;
		icalproperty *ma = mine ? sched_attendee(mine, from) : NULL;
		if (ma == NULL)
			continue;
		icalparameter *ps = icalproperty_get_first_parameter(ra, ICAL_PARTSTAT_PARAMETER);
		icalproperty_set_parameter_from_string(ma, "PARTSTAT",
						       ps ? icalparameter_enum_to_string(icalparameter_get_partstat(ps))
							  : "NEEDS-ACTION");
		icalproperty_set_parameter_from_string(ma, "SCHEDULE-STATUS", "2.0");
		changed++;
	}
	if (changed > 0) {
		tbuf t = TBUF_INIT;
		sched_text(copy, &t);
		rc = sched_put(env, owner, c->id.data, t.data, t.len, o->href, o->etag);
		tbuf_free(&t);
	} else if (rc == STORE_OK) {
		rc = STORE_ENOTFOUND;    /* `from` is not an attendee of the event */
	}
	if (rc == STORE_OK)
		sched_inbox_put(env, owner, text, len);
	sched_unlock(owner);
	if (copy)
		icalcomponent_free(copy);
	if (o)
		store_free_record(o);
	if (c)
		store_free_record(c);
	return rc;
}

/* The attendee's copy of a REQUEST: no METHOD, no server parameters; its own answer kept
 * when only details changed (RFC 6638 §3.2.8 leaves PARTSTAT when the timing is the same). */
static void request_copy(icalcomponent *copy, icalcomponent *existing, const char *addr)
{
	char **att = NULL;
	size_t n = sched_attendees(copy, NULL, 0, &att);
	sched_strip_method(copy);
	for (size_t i = 0; i < n; i++)
		sched_set_param(copy, att[i], "SCHEDULE-STATUS", NULL);
	sched_list_free(&att, n);
	if (existing != NULL && !sched_timing_changed(existing, copy)) {
		const char *ps = sched_partstat(existing, addr);
		if (ps != NULL)
			sched_set_param(copy, addr, "PARTSTAT", ps);
	}
}

int sched_apply_request(const dav_env *env, const uint8_t owner[16], const char *addr,
			icalproperty_method method, icalcomponent *msg, const char *text, size_t len)
{
	Tern__DavCollection *c = NULL;
	Tern__DavObject *o = NULL;
	icalcomponent *existing = NULL, *copy = NULL;
	const char *uid = sched_uid(msg);
	char org[SCHED_ADDR_MAX], eorg[SCHED_ADDR_MAX];
	int rc = STORE_OK;

	if (uid == NULL || sched_organizer(msg, org, sizeof(org)) < 0)
		return STORE_EINVAL;
	sched_lock(owner);
	if (sched_find_uid(env->st, owner, uid, &c, &o) == STORE_OK) {
		existing = sched_parse((const char *)o->data.data, o->data.len);
		/* an event of another organizer with this UID is not this one's to change */
		if (existing == NULL || sched_organizer(existing, eorg, sizeof(eorg)) < 0 ||
		    strcasecmp(eorg, org) != 0)
			rc = STORE_EREFUSED;
	}
	if (rc == STORE_OK)
		rc = sched_inbox_put(env, owner, text, len);
	if (rc == STORE_OK && method == ICAL_METHOD_REQUEST) {
		copy = icalcomponent_new_clone(msg);
		request_copy(copy, existing, addr);
		tbuf t = TBUF_INIT;
		sched_text(copy, &t);
		if (c == NULL && (rc = sched_default_calendar(env->st, owner, &c)) != STORE_OK)
			tlog(TLOG_WARNING, "Scheduling: %s has no calendar for UID %s", addr, uid);
		else
			rc = sched_put(env, owner, c->id.data, t.data, t.len, o ? o->href : NULL, o ? o->etag : NULL);
		tbuf_free(&t);
	} else if (rc == STORE_OK && o != NULL) {
		/* a CANCEL of the whole event removes it; of one instance, marks that one */
		icalcomponent *first = sched_first(msg);
		if (first && icalcomponent_get_first_property(first, ICAL_RECURRENCEID_PROPERTY) == NULL) {
			rc = store_dav_delete(env->st, owner, c->id.data, o->href, o->etag, STORE_SYNC, NULL);
			if (rc == STORE_OK)
				dav_fb_calendar_changed(owner);
		} else if (first) {
			icalcomponent *inst = same_instance(existing, first);
			if (inst != NULL) {
				icalcomponent_set_status(inst, ICAL_STATUS_CANCELLED);
				tbuf t = TBUF_INIT;
				sched_text(existing, &t);
				rc = sched_put(env, owner, c->id.data, t.data, t.len, o->href, o->etag);
				tbuf_free(&t);
			}
		}
	}
	sched_unlock(owner);
	if (copy)
		icalcomponent_free(copy);
	if (existing)
		icalcomponent_free(existing);
	if (o)
		store_free_record(o);
	if (c)
		store_free_record(c);
	return rc;
}

/* A local user's account, or a domain served here (for 3.7 "invalid calendar user"). */
static int address_is_local_domain(store *st, const char *addr)
{
	char local[128], domain[256], canon[256];
	return tern_split_address(addr, local, sizeof(local), domain, sizeof(domain)) == 0 &&
	       store_domain_resolve(st, domain, canon, sizeof(canon)) == STORE_OK;
}

/* 1 when addr is a user of the distributed domain whose home is another node. */
static int user_homed_elsewhere(store *st, const char *addr)
{
	char home[128];
	return cluster_user_home(st, addr, home, sizeof(home)) == 1;
}

const char *sched_deliver(const dav_env *env, const char *from, const char *from_name, const char *to,
			  icalproperty_method method, const char *itip, size_t len,
			  const char **partstat_r)
{
	Tern__Resource *r = NULL;
	Tern__User *u = NULL;
	icalcomponent *msg = sched_parse(itip, len);
	const char *status = "5.1";
	tbuf why = TBUF_INIT;

	/* a user whose calendars live on another node is reached like an external one */
	const int away = user_homed_elsewhere(env->st, to);

	*partstat_r = NULL;
	if (msg == NULL || sched_uid(msg) == NULL) {
		status = "5.1";
	} else if (store_resource_find(env->st, to, &r) == STORE_OK) {
		if (method == ICAL_METHOD_REQUEST) {
			int rc = dav_book(env, r, from, sched_uid(msg), itip, len, &why);
			*partstat_r = rc == 1 ? "ACCEPTED" : "DECLINED";
			status = "2.0";
		} else if (method == ICAL_METHOD_CANCEL) {
			dav_book_cancel(env, r, sched_uid(msg));
			status = "2.0";
		} else {
			status = "3.8";
		}
		store_free_record(r);
	} else if (!away && store_user_find(env->st, to, &u) == STORE_OK) {
		int rc = method == ICAL_METHOD_REPLY ? sched_apply_reply(env, u->id.data, from, msg, itip, len)
						     : sched_apply_request(env, u->id.data, to, method, msg, itip, len);
		status = rc == STORE_OK ? "1.2" : "5.1";
		store_free_record(u);
	} else if (!away && address_is_local_domain(env->st, to)) {
		status = "3.7";
	} else {
		/* an external address, or a user whose calendars live on its home node: the
		 * message goes by mail (iMIP; the cluster routes it home), where it is applied
		 * like any incoming iTIP */
		status = sched_imip_send(env, from, from_name, to, method, sched_summary(msg), itip, len) == 0
				 ? "1.1" : "5.1";
	}
	if (msg)
		icalcomponent_free(msg);
	tbuf_free(&why);
	return status;
}
