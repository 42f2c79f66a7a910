/* dav_book.c - resource booking (guide ch. 22, DESIGN.md §5): a resource accepts an
 * invitation when it is available, the organizer may book it and no accepted booking
 * holds any of the slot; else it declines. Decisions for one resource are taken one at a
 * time (the owner lock of dav_sched_store.c) and an accepted booking is stored in the
 * resource's calendar before the lock is released, so concurrent requests for the same
 * slot never both succeed. The reservation manager edits that calendar over CalDAV: a
 * booking moved, declined or deleted there is read as it is now.
 *
 * In a distributed domain resources are homed on the master: a slave forwards every
 * decision (and cancellation) there with cluster_book, and the master takes it with the
 * same code (its book handler, dav_fb_push.c), so one lock decides for the whole domain. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cluster.h"
#include "dav_sched_int.h"

void dav_book_address(const Tern__Resource *r, char *out, size_t n)
{
	snprintf(out, n, "%s@%s", r->name, r->domain);
	tern_lower(out);
}

/* 1 when `member` (or the user's canonical address canon) is in group NAME or NAME@DOMAIN
 * (a bare name: the resource's domain). */
static int book_in_group(store *st, const char *group, const char *dom, const char *member,
			 const char *canon)
{
	char name[128], domain[256];
	Tern__Group *g = NULL;

	if (strchr(group, '@') != NULL) {
		if (tern_split_address(group, name, sizeof(name), domain, sizeof(domain)) < 0)
			return 0;
	} else {
		snprintf(name, sizeof(name), "%s", group);
		snprintf(domain, sizeof(domain), "%s", dom);
	}
	if (store_group_get(st, domain, name, &g) != STORE_OK)
		return 0;
	int in = 0;
	for (size_t i = 0; i < g->n_members && !in; i++)
		in = strcasecmp(g->members[i], member) == 0 || strcasecmp(g->members[i], canon) == 0;
	store_free_record(g);
	return in;
}

/* Whether organizer may book r: the manager always; else any rule of bookable_by (none
 * given = anyone). "server"/"domain" mean an account of this server / of r's domain. */
static int book_allowed(store *st, const Tern__Resource *r, const char *organizer)
{
	char canon[SCHED_ADDR_MAX];
	Tern__User *u = NULL;
	int is_user = store_user_find(st, organizer, &u) == STORE_OK && u->enabled;
	int ok = r->n_bookable_by == 0;

	if (is_user)
		snprintf(canon, sizeof(canon), "%s@%s", u->name, u->domain);
	else
		snprintf(canon, sizeof(canon), "%s", organizer);
	tern_lower(canon);
	if (r->manager && r->manager[0] &&
	    (strcasecmp(r->manager, organizer) == 0 || strcasecmp(r->manager, canon) == 0))
		ok = 1;
	for (size_t i = 0; i < r->n_bookable_by && !ok; i++) {
		const char *rule = r->bookable_by[i];
		if (strcasecmp(rule, "anyone") == 0)
			ok = 1;
		else if (strcasecmp(rule, "server") == 0)
			ok = is_user;
		else if (strcasecmp(rule, "domain") == 0)
			ok = is_user && strcasecmp(u->domain, r->domain) == 0;
		else if (strncasecmp(rule, "group:", 6) == 0)
			ok = book_in_group(st, rule + 6, r->domain, organizer, canon);
		else if (strncasecmp(rule, "user:", 5) == 0)
			ok = strcasecmp(rule + 5, organizer) == 0 || strcasecmp(rule + 5, canon) == 0;
	}
	if (u != NULL)
		store_free_record(u);
	return ok;
}

/* The resource's copy of the invitation: no METHOD, the resource ACCEPTED, always
 * opaque, no alarms; subject and notes hidden unless r shows details. NULL when the
 * resource is not an attendee or the text is not iCalendar. */
static char *book_copy(const Tern__Resource *r, const char *self, const char *ical, size_t len,
		       size_t *len_r, tbuf *why)
{
	icalcomponent *cal = sched_parse(ical, len);
	if (cal == NULL) {
		tbuf_append_str(why, "not an iCalendar object");
		return NULL;
	}
	sched_strip_method(cal);
	if (sched_set_param(cal, self, "PARTSTAT", "ACCEPTED") == 0) {
		tbuf_appendf(why, "%s is not an attendee", self);
		icalcomponent_free(cal);
		return NULL;
	}
	sched_set_param(cal, self, "SCHEDULE-STATUS", NULL);
	for (icalcomponent *c = icalcomponent_get_first_component(cal, ICAL_ANY_COMPONENT); c;
	     c = icalcomponent_get_next_component(cal, ICAL_ANY_COMPONENT)) {
		static const icalproperty_kind hidden[] = {
			ICAL_TRANSP_PROPERTY, ICAL_DESCRIPTION_PROPERTY, ICAL_COMMENT_PROPERTY,
			ICAL_ATTACH_PROPERTY, ICAL_SUMMARY_PROPERTY
		};
		size_t nk = r->show_details ? 1 : sizeof(hidden) / sizeof(hidden[0]);
		icalcomponent *a;
		while ((a = icalcomponent_get_first_component(c, ICAL_VALARM_COMPONENT)) != NULL) {
			icalcomponent_remove_component(c, a);
			icalcomponent_free(a);
		}
		for (size_t k = 0; k < nk; k++) {
			icalproperty *p;
			while ((p = icalcomponent_get_first_property(c, hidden[k])) != NULL) {
				icalcomponent_remove_property(c, p);
				icalproperty_free(p);
			}
		}
		if (!r->show_details && icalcomponent_isa(c) == ICAL_VEVENT_COMPONENT)
			icalcomponent_set_summary(c, "Busy");
	}
	char *s = icalcomponent_as_ical_string_r(cal);
	icalcomponent_free(cal);
	if (s == NULL)
		abort();
	*len_r = strlen(s);
	return s;
}

typedef struct book_scan {
	const char *uid;
	const char *self;
	const dav_busy *want;
	size_t nwant;
	int64_t start, end;
	int conflict;
	int rc;
} book_scan;

/* One object of the resource's calendar against the requested periods. */
static int book_conflict_one(const Tern__DavObject *o, void *arg)
{
	book_scan *b = arg;
	dav_busy *list = NULL;
	size_t n = 0;

	if (strcmp(o->uid, b->uid) == 0 || (o->end != 0 && (o->end <= b->start || o->start >= b->end)))
		return 0;
	/* the manager may have declined a booking in the resource's calendar */
	icalcomponent *cal = sched_parse((const char *)o->data.data, o->data.len);
	const char *ps = cal ? sched_partstat(cal, b->self) : NULL;
	int released = ps != NULL && strcmp(ps, "DECLINED") == 0;
	if (cal)
		icalcomponent_free(cal);
	if (released)
		return 0;
	if (dav_ical_busy(o, b->start, b->end, &list, &n) < 0) {
		b->rc = -1;
		return 1;
	}
	for (size_t i = 0; i < n && !b->conflict; i++)
		for (size_t k = 0; k < b->nwant && !b->conflict; k++)
			b->conflict = list[i].start < b->want[k].end && b->want[k].start < list[i].end;
	free(list);
	return b->conflict;
}

/* The decision with the lock held: 1 accepted (and stored), 0 declined, -1 error. */
static int book_locked(const dav_env *env, const Tern__Resource *r, const char *self,
		       const char *organizer, const char *uid, const char *ical, size_t len, tbuf *why)
{
	Tern__DavCollection *cal = NULL;
	Tern__DavObject *o = NULL, *old = NULL;
	dav_busy *want = NULL;
	size_t nwant = 0, clen = 0;
	char *copy = NULL;
	int rc = -1;

	if (store_dav_collection_get(env->st, r->id.data, "calendar", &cal) != STORE_OK) {
		tbuf_appendf(why, "%s has no calendar", self);
		return -1;
	}
	if (store_dav_object_find_uid(env->st, r->id.data, cal->id.data, uid, &old) != STORE_OK)
		old = NULL;
	if (!r->available) {
		tbuf_appendf(why, "%s is not available", self);
		rc = 0;
	} else if (!book_allowed(env->st, r, organizer)) {
		tbuf_appendf(why, "%s may not book %s", organizer, self);
		rc = 0;
	} else if ((copy = book_copy(r, self, ical, len, &clen, why)) == NULL ||
		   (o = sched_object(env, copy, clen, why)) == NULL) {
		rc = -1;
	} else if (strcmp(o->uid, uid) != 0) {
		tbuf_appendf(why, "UID %s does not match the invitation", o->uid);
		rc = -1;
	} else {
		book_scan b = { uid, self, NULL, 0, o->start, sched_span_end(env, o), 0, 0 };
		if (b.end > b.start && dav_ical_busy(o, b.start, b.end, &want, &nwant) < 0)
			b.rc = -1;
		b.want = want;
		b.nwant = nwant;
		if (b.rc == 0 && nwant > 0)
			store_dav_object_scan(env->st, r->id.data, cal->id.data, book_conflict_one, &b);
		if (b.rc < 0) {
			tbuf_append_str(why, "cannot expand the bookings");
			rc = -1;
		} else if (b.conflict) {
			tbuf_appendf(why, "%s is already booked at that time", self);
			rc = 0;
		} else {
			int src = sched_put(env, r->id.data, cal->id.data, copy, clen, old ? old->href : NULL, NULL);
			if (src != STORE_OK)
				tbuf_appendf(why, "booking not stored: %s", store_strerror(src));
			rc = src == STORE_OK ? 1 : -1;
		}
	}
	/* a booking that this version no longer gets gives its slot back */
	if (rc == 0 && old != NULL)
		store_dav_delete(env->st, r->id.data, cal->id.data, old->href, NULL, STORE_SYNC, NULL);
	free(want);
	free(copy);
	if (o != NULL)
		tern__dav_object__free_unpacked(o, NULL);
	if (old != NULL)
		store_free_record(old);
	store_free_record(cal);
	return rc;
}

/* 1 when this node is a slave: the master decides bookings. */
static int book_remote(const dav_env *env)
{
	return env->cl != NULL && cluster_get_role(env->cl) == CLUSTER_SLAVE;
}

int dav_book(const dav_env *env, const Tern__Resource *r, const char *organizer, const char *uid,
	     const char *ical, size_t len, tbuf *why)
{
	char self[SCHED_ADDR_MAX];
	int rc, remote = book_remote(env);

	if (r->id.len != 16 || uid == NULL || uid[0] == '\0') {
		tbuf_append_str(why, "invalid booking request");
		return -1;
	}
	dav_book_address(r, self, sizeof(self));
	if (remote) {
		rc = cluster_book(env->cl, self, organizer, uid, ical, len, 0, why);
	} else {
		sched_lock(r->id.data);
		rc = book_locked(env, r, self, organizer, uid, ical, len, why);
		sched_unlock(r->id.data);
	}
	tlog(TLOG_OPERATIONS, "Booking: %s by %s, UID %s: %s%s%s%s", self, organizer, uid,
	     rc == 1 ? "accepted" : rc == 0 ? "declined" : "failed", remote ? " by the master" : "",
	     rc == 1 ? "" : ", ", rc == 1 ? "" : tbuf_cstr(why));
	return rc;
}

int dav_book_cancel(const dav_env *env, const Tern__Resource *r, const char *uid)
{
	Tern__DavCollection *cal = NULL;
	Tern__DavObject *o = NULL;
	int rc;

	if (r->id.len != 16)
		return STORE_EINVAL;
	if (book_remote(env)) {
		char self[SCHED_ADDR_MAX];
		tbuf why = TBUF_INIT;

		dav_book_address(r, self, sizeof(self));
		rc = cluster_book(env->cl, self, "", uid, NULL, 0, 1, &why);
		if (rc != 1)
			tlog(TLOG_WARNING, "Booking: cancellation of UID %s at %s not done by the master: %s", uid, self,
			     tbuf_cstr(&why));
		tbuf_free(&why);
		return rc == 1 ? STORE_OK : STORE_EINVAL;
	}
	sched_lock(r->id.data);
	rc = store_dav_collection_get(env->st, r->id.data, "calendar", &cal);
	if (rc == STORE_OK && (rc = store_dav_object_find_uid(env->st, r->id.data, cal->id.data, uid, &o)) == STORE_OK)
		rc = store_dav_delete(env->st, r->id.data, cal->id.data, o->href, NULL, STORE_SYNC, NULL);
	sched_unlock(r->id.data);
	if (o != NULL)
		store_free_record(o);
	if (cal != NULL)
		store_free_record(cal);
	return rc;
}
