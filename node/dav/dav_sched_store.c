/* dav_sched_store.c - what scheduling writes and reads in the store: objects checked like
 * a PUT (dav_ical_check, busy periods), the copy of an event found by UID, inbox
 * messages, an owner's busy time; and the owner locks that keep two scheduling decisions
 * for one owner (a resource booking, a reply applied to an organizer's copy) apart. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "dav_sched_int.h"

#define SCHED_LOCKS 64
#define SCHED_HREF_MAX 200

static pthread_mutex_t sched_locks[SCHED_LOCKS] = { [0 ... SCHED_LOCKS - 1] = PTHREAD_MUTEX_INITIALIZER };

/* Ids are random UUIDs: their bytes spread owners over the stripes. */
static pthread_mutex_t *sched_lock_of(const uint8_t owner[16])
{
	unsigned h = 0;
	for (int i = 0; i < 16; i++)
		h = h * 31u + owner[i];
	return &sched_locks[h % SCHED_LOCKS];
}

void sched_lock(const uint8_t owner[16])
{
	pthread_mutex_lock(sched_lock_of(owner));
}

void sched_unlock(const uint8_t owner[16])
{
	pthread_mutex_unlock(sched_lock_of(owner));
}

int64_t sched_span_end(const dav_env *env, const Tern__DavObject *o)
{
	int64_t days = env->conf ? env->conf->dav_freebusy_max_days : 366;
	int64_t base = o->start > tern_now() ? o->start : tern_now();
	int64_t horizon = base + days * 86400;
	return o->end > 0 && o->end < horizon ? o->end : horizon;
}

Tern__DavObject *sched_object(const dav_env *env, const char *text, size_t len, tbuf *why)
{
	static char *const allowed[] = { "VEVENT", "VTODO" };
	Tern__DavObject *o = malloc(sizeof(*o));
	const char *pre = NULL;

	if (o == NULL)
		abort();
	tern__dav_object__init(o);
	if (dav_ical_check(text, len, allowed, 2, o, &pre, why) < 0) {
		tern__dav_object__free_unpacked(o, NULL);
		return NULL;
	}
	if ((o->data.data = malloc(len ? len : 1)) == NULL)
		abort();
	memcpy(o->data.data, text, len);
	o->data.len = len;
	/* the busy periods within the free/busy horizon */
	int64_t end = sched_span_end(env, o);
	if (end > o->start)
		dav_ical_busy_set(o, o->start, end);
	return o;
}

int sched_find_uid(store *st, const uint8_t owner[16], const char *uid, Tern__DavCollection **c_r,
		   Tern__DavObject **o_r)
{
	Tern__DavCollection **list = NULL;
	size_t n = 0;
	int rc = store_dav_collection_list(st, owner, &list, &n);
	if (rc != STORE_OK)
		return rc;
	rc = STORE_ENOTFOUND;
	for (size_t i = 0; i < n && rc == STORE_ENOTFOUND; i++) {
		Tern__DavCollection *c = list[i];
		if (c->kind != TERN__DAV_COLLECTION__KIND__CALENDAR || c->id.len != 16)
			continue;
		rc = store_dav_object_find_uid(st, owner, c->id.data, uid, o_r);
		if (rc == STORE_OK) {
			*c_r = c;
			list[i] = NULL;
		}
	}
	store_free_list((void **)list, n);
	return rc;
}

/* A collection name safe href made from uid ("<uid>.ics"), or a fresh UUID. */
static void make_href(const char *uid, char *out, size_t n)
{
	size_t k = 0;
	for (const char *p = uid; p && *p && k + 5 < n && k < SCHED_HREF_MAX; p++) {
		char c = *p;
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			 c == '-' || c == '_' || c == '.';
		out[k++] = ok ? c : '_';
	}
	if (k == 0 || (k <= 2 && out[0] == '.')) {
		uint8_t id[16];
		tern_uuid_new(id);
		tern_uuid_str(id, out);
		k = strlen(out);
	}
	snprintf(out + k, n - k, ".ics");
}

int sched_put(const dav_env *env, const uint8_t owner[16], const uint8_t coll[16], const char *text,
	      size_t len, const char *href, const char *if_match)
{
	tbuf why = TBUF_INIT;
	Tern__DavObject *o = sched_object(env, text, len, &why);
	Tern__DavObject *old = NULL;
	char name[SCHED_HREF_MAX + 48];
	int rc;

	if (o == NULL) {
		tlog(TLOG_WARNING, "Scheduling: object not stored: %s", tbuf_cstr(&why));
		tbuf_free(&why);
		return STORE_EINVAL;
	}
	tbuf_free(&why);
	if (href == NULL && store_dav_object_find_uid(env->st, owner, coll, o->uid, &old) == STORE_OK) {
		snprintf(name, sizeof(name), "%s", old->href);
		href = name;
		store_free_record(old);
	}
	store_dav_write w = { owner, coll, o, if_match, 0 };
	if (href == NULL) {
		make_href(o->uid, name, sizeof(name));
		w.if_none_match = 1;
	} else if (href != name) {
		snprintf(name, sizeof(name), "%s", href);
	}
	for (int attempt = 0;; attempt++) {
		if (o->href != protobuf_c_empty_string)
			free(o->href);
		if ((o->href = strdup(name)) == NULL)
			abort();
		rc = store_dav_put(env->st, &w, STORE_SYNC, NULL);
		if (rc != STORE_ECONFLICT || !w.if_none_match || attempt > 0)
			break;
		/* another object already has the href made from the UID */
		make_href(NULL, name, sizeof(name));
	}
	tern__dav_object__free_unpacked(o, NULL);
	if (rc == STORE_OK)
		dav_fb_calendar_changed(owner);
	return rc;
}

int sched_inbox_put(const dav_env *env, const uint8_t owner[16], const char *text, size_t len)
{
	Tern__DavCollection *c = NULL;
	int rc = store_dav_collection_get(env->st, owner, "inbox", &c);
	if (rc != STORE_OK)
		return rc;
	Tern__DavObject o;
	uint8_t id[16];
	char href[48];
	tern__dav_object__init(&o);
	tern_uuid_new(id);
	tern_uuid_str(id, href);
	snprintf(href + 36, sizeof(href) - 36, ".ics");
	o.href = href;
	o.data.data = (uint8_t *)text;
	o.data.len = len;
	icalcomponent *cal = sched_parse(text, len);
	const char *uid = cal ? sched_uid(cal) : NULL;
	o.uid = (char *)(uid ? uid : href);
	o.component = cal && sched_first(cal) && icalcomponent_isa(sched_first(cal)) == ICAL_VTODO_COMPONENT
			      ? "VTODO" : "VEVENT";
	store_dav_write w = { owner, c->id.data, &o, NULL, 1 };
	rc = store_dav_put(env->st, &w, STORE_SYNC, NULL);
	if (rc == STORE_EEXISTS) {
		/* an earlier message of the same UID waits in the inbox: keep the newest */
		Tern__DavObject *old = NULL;
		if (store_dav_object_find_uid(env->st, owner, c->id.data, o.uid, &old) == STORE_OK) {
			store_dav_delete(env->st, owner, c->id.data, old->href, NULL, STORE_SYNC, NULL);
			store_free_record(old);
			rc = store_dav_put(env->st, &w, STORE_SYNC, NULL);
		}
	}
	if (cal)
		icalcomponent_free(cal);
	store_free_record(c);
	return rc;
}

int sched_default_calendar(store *st, const uint8_t owner[16], Tern__DavCollection **c_r)
{
	if (store_dav_collection_get(st, owner, "calendar", c_r) == STORE_OK)
		return STORE_OK;
	Tern__DavCollection **list = NULL;
	size_t n = 0;
	int rc = store_dav_collection_list(st, owner, &list, &n);
	if (rc != STORE_OK)
		return rc;
	rc = STORE_ENOTFOUND;
	for (size_t i = 0; i < n; i++) {
		int events = list[i]->n_components == 0;
		for (size_t k = 0; k < list[i]->n_components; k++)
			events |= strcmp(list[i]->components[k], "VEVENT") == 0;
		if (rc == STORE_ENOTFOUND && list[i]->kind == TERN__DAV_COLLECTION__KIND__CALENDAR && events) {
			*c_r = list[i];
			list[i] = NULL;
			rc = STORE_OK;
		}
	}
	store_free_list((void **)list, n);
	return rc;
}

typedef struct busy_scan {
	int64_t start, end;
	dav_busy **list;
	size_t *n;
	int rc;
} busy_scan;

static int busy_one(const Tern__DavObject *o, void *arg)
{
	busy_scan *b = arg;
	if (o->end != 0 && (o->end <= b->start || o->start >= b->end))
		return 0;
	if (dav_ical_busy(o, b->start, b->end, b->list, b->n) < 0)
		b->rc = -1;
	return 0;
}

int sched_owner_busy(store *st, const uint8_t owner[16], int64_t start, int64_t end, dav_busy **list,
		     size_t *n)
{
	Tern__DavCollection **cols = NULL;
	size_t nc = 0;
	int rc = store_dav_collection_list(st, owner, &cols, &nc);
	if (rc != STORE_OK)
		return rc;
	busy_scan b = { start, end, list, n, 0 };
	for (size_t i = 0; i < nc; i++)
		if (cols[i]->kind == TERN__DAV_COLLECTION__KIND__CALENDAR && !cols[i]->transparent &&
		    cols[i]->id.len == 16)
			store_dav_object_scan(st, owner, cols[i]->id.data, busy_one, &b);
	store_free_list((void **)cols, nc);
	return b.rc < 0 ? STORE_EIO : STORE_OK;
}
