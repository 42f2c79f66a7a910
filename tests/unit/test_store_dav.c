/* Calendars and contacts in the store: collections (names, duplicates, update, delete),
 * objects (put/get/scan/find by UID, modseq and ETag per put, If-Match, If-None-Match,
 * UID conflicts, delete), sync-collection changes, durability across a reopen, racing
 * conditional puts, resources and their addresses, and user/resource removal dropping
 * their DAV rows. */
#include "store_test_util.h"
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

typedef ts_fixture fixture;

static const char *const EVENT =
	"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:%s\r\nSUMMARY:%s\r\n"
	"END:VEVENT\r\nEND:VCALENDAR\r\n";

/* Create collection name of owner; its id into id. */
static int make_coll(store *st, const uint8_t owner[16], const char *name, uint8_t id[16])
{
	Tern__DavCollection c = TERN__DAV_COLLECTION__INIT;
	store_sync_result r;
	int rc;

	c.name = (char *)name;
	c.kind = TERN__DAV_COLLECTION__KIND__CALENDAR;
	c.display_name = (char *)"My calendar";
	rc = store_dav_collection_create(st, owner, &c, STORE_SYNC, &r);
	if (rc == STORE_OK && id)
		memcpy(id, r.res.id, 16);
	return rc;
}

/* Put href with uid and a summary (the data differs per summary). */
static int put(store *st, const uint8_t owner[16], const uint8_t coll[16], const char *href,
	       const char *uid, const char *summary, const char *if_match, int if_none_match,
	       store_sync_result *r)
{
	char data[512];

	snprintf(data, sizeof(data), EVENT, uid, summary);
	return ts_dav_put(st, owner, coll, href, uid, data, if_match, if_none_match, r);
}

static void test_collections(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	Tern__DavCollection **list = NULL, *c = NULL, upd = TERN__DAV_COLLECTION__INIT;
	store_sync_result r;
	uint8_t cal[16], books[16];
	char *comps[] = { (char *)"VEVENT", (char *)"VTODO" };
	size_t n = 0;

	assert_int_equal(make_coll(st, f->bob, "calendar", cal), STORE_OK);
	assert_int_equal(make_coll(st, f->bob, "contacts", books), STORE_OK);
	assert_int_equal(make_coll(st, f->bob, "calendar", NULL), STORE_EEXISTS);
	assert_int_equal(make_coll(st, f->ann, "calendar", NULL), STORE_OK);
	assert_int_equal(make_coll(st, f->bob, "..", NULL), STORE_EINVAL);
	assert_int_equal(make_coll(st, f->bob, "a/b", NULL), STORE_EINVAL);
	assert_int_equal(make_coll(st, f->bob, "", NULL), STORE_EINVAL);
	assert_int_equal(make_coll(st, f->bob, "with space", NULL), STORE_EINVAL);
	assert_int_equal(make_coll(st, f->bob, "Work-2024_x.y", NULL), STORE_OK);

	assert_int_equal(store_dav_collection_list(st, f->bob, &list, &n), STORE_OK);
	assert_int_equal(n, 3);
	store_free_list((void **)list, n);
	assert_int_equal(store_dav_collection_get(st, f->bob, "calendar", &c), STORE_OK);
	assert_memory_equal(c->id.data, cal, 16);
	assert_int_equal(c->modseq, 1);
	assert_string_equal(c->display_name, "My calendar");
	store_free_record(c);
	assert_int_equal(store_dav_collection_get(st, f->bob, "Calendar", &c), STORE_ENOTFOUND);

	/* Update replaces the properties and keeps name, modseq and created. */
	upd.id.data = cal;
	upd.id.len = 16;
	upd.name = (char *)"renamed";
	upd.display_name = (char *)"Work";
	upd.color = (char *)"#FF0000FF";
	upd.components = comps;
	upd.n_components = 2;
	upd.modseq = 99;
	assert_int_equal(store_dav_collection_update(st, f->bob, &upd, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_dav_collection_get_by_id(st, f->bob, cal, &c), STORE_OK);
	assert_string_equal(c->name, "calendar");
	assert_string_equal(c->display_name, "Work");
	assert_string_equal(c->color, "#FF0000FF");
	assert_int_equal(c->n_components, 2);
	assert_int_equal(c->modseq, 1);
	store_free_record(c);
	comps[1] = (char *)"VBOGUS";
	assert_int_equal(store_dav_collection_update(st, f->bob, &upd, STORE_SYNC, &r), STORE_EINVAL);
	comps[1] = (char *)"VTODO";
	upd.id.data = f->eve;
	assert_int_equal(store_dav_collection_update(st, f->bob, &upd, STORE_SYNC, &r),
			 STORE_ENOTFOUND);
}

typedef struct seen {
	char hrefs[8][32];
	int deleted[8];
	uint64_t modseq[8];
	int n;
} seen;

static int see_object(const Tern__DavObject *o, void *arg)
{
	seen *s = arg;

	snprintf(s->hrefs[s->n], sizeof(s->hrefs[0]), "%s", o->href);
	s->modseq[s->n] = o->modseq;
	s->n++;
	return 0;
}

static int see_change(const char *href, int deleted, uint64_t modseq, void *arg)
{
	seen *s = arg;

	snprintf(s->hrefs[s->n], sizeof(s->hrefs[0]), "%s", href);
	s->deleted[s->n] = deleted;
	s->modseq[s->n] = modseq;
	s->n++;
	return 0;
}

static void test_objects(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	store_sync_result r;
	Tern__DavObject *o = NULL;
	Tern__DavCollection *c = NULL;
	uint8_t cal[16];
	char etag1[48], etag2[48];
	seen s = { 0 };

	assert_int_equal(make_coll(st, f->bob, "calendar", cal), STORE_OK);
	assert_int_equal(put(st, f->bob, cal, "a.ics", "uid-a", "one", NULL, 1, &r), STORE_OK);
	assert_int_equal(r.res.modseq, 2);
	assert_int_equal(strlen(r.res.etag), 32);
	snprintf(etag1, sizeof(etag1), "%s", r.res.etag);
	/* The same bytes again: a new modseq and a new ETag. */
	assert_int_equal(put(st, f->bob, cal, "a.ics", "uid-a", "one", etag1, 0, &r), STORE_OK);
	assert_int_equal(r.res.modseq, 3);
	assert_string_not_equal(r.res.etag, etag1);
	snprintf(etag2, sizeof(etag2), "%s", r.res.etag);

	/* Preconditions. */
	assert_int_equal(put(st, f->bob, cal, "a.ics", "uid-a", "two", etag1, 0, &r), STORE_ECONFLICT);
	assert_non_null(strstr(r.error, "If-Match"));
	assert_int_equal(put(st, f->bob, cal, "a.ics", "uid-a", "two", NULL, 1, &r), STORE_ECONFLICT);
	assert_int_equal(put(st, f->bob, cal, "new.ics", "uid-n", "x", "*", 0, &r), STORE_ECONFLICT);
	char quoted[64];

	snprintf(quoted, sizeof(quoted), "\"%s\"", etag2);
	assert_int_equal(put(st, f->bob, cal, "a.ics", "uid-a", "two", quoted, 0, &r), STORE_OK);
	assert_int_equal(r.res.modseq, 4);

	/* UID unique per collection; the same UID is fine in another collection. */
	assert_int_equal(put(st, f->bob, cal, "b.ics", "uid-a", "dup", NULL, 0, &r), STORE_EEXISTS);
	assert_true(strncmp(r.error, "no-uid-conflict:", 16) == 0);
	assert_int_equal(put(st, f->bob, cal, "b.ics", "uid-b", "bee", NULL, 0, &r), STORE_OK);
	assert_int_equal(put(st, f->bob, cal, "c.ics", "uid-c", "sea", NULL, 0, &r), STORE_OK);
	assert_int_equal(r.res.modseq, 6);
	assert_int_equal(put(st, f->bob, cal, "x/y.ics", "uid-x", "bad", NULL, 0, &r), STORE_EINVAL);
	assert_int_equal(put(st, f->bob, f->eve, "z.ics", "uid-z", "z", NULL, 0, &r), STORE_ENOTFOUND);

	assert_int_equal(store_dav_object_get(st, f->bob, cal, "a.ics", &o), STORE_OK);
	assert_string_equal(o->uid, "uid-a");
	assert_int_equal(o->modseq, 4);
	assert_non_null(strstr((const char *)o->data.data, "SUMMARY:two"));
	assert_true(o->created > 0 && o->modified >= o->created);
	store_free_record(o);
	assert_int_equal(store_dav_object_find_uid(st, f->bob, cal, "uid-b", &o), STORE_OK);
	assert_string_equal(o->href, "b.ics");
	store_free_record(o);
	assert_int_equal(store_dav_object_find_uid(st, f->bob, cal, "nope", &o), STORE_ENOTFOUND);

	/* Replacing b.ics with another UID frees its old UID. */
	assert_int_equal(put(st, f->bob, cal, "b.ics", "uid-b2", "bee", NULL, 0, &r), STORE_OK);
	assert_int_equal(store_dav_object_find_uid(st, f->bob, cal, "uid-b", &o), STORE_ENOTFOUND);
	assert_int_equal(put(st, f->bob, cal, "d.ics", "uid-b", "dee", NULL, 0, &r), STORE_OK);

	assert_int_equal(store_dav_object_scan(st, f->bob, cal, see_object, &s), STORE_OK);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.hrefs[0], "a.ics");
	assert_string_equal(s.hrefs[3], "d.ics");

	/* Delete with a wrong and the right ETag; a missing object. */
	assert_int_equal(store_dav_delete(st, f->bob, cal, "c.ics", etag1, STORE_SYNC, &r),
			 STORE_ECONFLICT);
	assert_int_equal(store_dav_delete(st, f->bob, cal, "c.ics", NULL, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(r.res.modseq, 9);
	assert_int_equal(store_dav_delete(st, f->bob, cal, "c.ics", NULL, STORE_SYNC, &r),
			 STORE_ENOTFOUND);
	assert_int_equal(store_dav_object_find_uid(st, f->bob, cal, "uid-c", &o), STORE_ENOTFOUND);
	assert_int_equal(put(st, f->bob, cal, "c2.ics", "uid-c", "again", NULL, 0, &r), STORE_OK);
	assert_int_equal(store_dav_collection_get_by_id(st, f->bob, cal, &c), STORE_OK);
	assert_int_equal(c->modseq, 10);
	store_free_record(c);
}

static void test_changes(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	store_sync_result r;
	uint8_t cal[16];
	seen s;

	assert_int_equal(make_coll(st, f->bob, "calendar", cal), STORE_OK);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_dav_changes(st, f->bob, cal, 0, see_change, &s), STORE_OK);
	assert_int_equal(s.n, 0);
	assert_int_equal(put(st, f->bob, cal, "a.ics", "A", "1", NULL, 0, &r), STORE_OK);   /* 2 */
	assert_int_equal(put(st, f->bob, cal, "b.ics", "B", "1", NULL, 0, &r), STORE_OK);   /* 3 */
	assert_int_equal(put(st, f->bob, cal, "a.ics", "A", "2", NULL, 0, &r), STORE_OK);   /* 4 */
	assert_int_equal(put(st, f->bob, cal, "c.ics", "C", "1", NULL, 0, &r), STORE_OK);   /* 5 */
	assert_int_equal(store_dav_delete(st, f->bob, cal, "b.ics", NULL, STORE_SYNC, &r),
			 STORE_OK);                                                         /* 6 */

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_dav_changes(st, f->bob, cal, 0, see_change, &s), STORE_OK);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.hrefs[0], "a.ics");
	assert_int_equal(s.modseq[0], 4);
	assert_string_equal(s.hrefs[1], "c.ics");
	assert_string_equal(s.hrefs[2], "b.ics");
	assert_int_equal(s.deleted[2], 1);
	assert_int_equal(s.deleted[0], 0);

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_dav_changes(st, f->bob, cal, 4, see_change, &s), STORE_OK);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.hrefs[0], "c.ics");
	assert_string_equal(s.hrefs[1], "b.ics");
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_dav_changes(st, f->bob, cal, 6, see_change, &s), STORE_OK);
	assert_int_equal(s.n, 0);
	/* A token from the future (or another collection's life) is refused. */
	assert_int_equal(store_dav_changes(st, f->bob, cal, 7, see_change, &s), STORE_EINVAL);
	assert_int_equal(store_dav_changes(st, f->bob, f->eve, 0, see_change, &s), STORE_ENOTFOUND);
}

static int count_rows(uint64_t modseq, const Tern__Change *c, void *arg)
{
	(void)modseq;
	(void)c;
	(*(int *)arg)++;
	return 0;
}

static void test_collection_delete(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	store_sync_result r;
	Tern__DavObject *o = NULL;
	uint8_t cal[16], other[16];
	seen s = { 0 };
	int rows = 0;

	assert_int_equal(make_coll(st, f->bob, "calendar", cal), STORE_OK);
	assert_int_equal(make_coll(st, f->bob, "other", other), STORE_OK);
	assert_int_equal(put(st, f->bob, cal, "a.ics", "A", "1", NULL, 0, &r), STORE_OK);
	assert_int_equal(put(st, f->bob, cal, "b.ics", "B", "1", NULL, 0, &r), STORE_OK);
	assert_int_equal(put(st, f->bob, other, "k.ics", "K", "1", NULL, 0, &r), STORE_OK);
	assert_int_equal(store_changes_scan(st, f->bob, cal, 0, count_rows, &rows), STORE_OK);
	assert_int_equal(rows, 2);

	assert_int_equal(store_dav_collection_delete(st, f->bob, cal, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_dav_collection_delete(st, f->bob, cal, STORE_SYNC, &r), STORE_ENOTFOUND);
	assert_int_equal(store_dav_object_get(st, f->bob, cal, "a.ics", &o), STORE_ENOTFOUND);
	assert_int_equal(store_dav_object_find_uid(st, f->bob, cal, "A", &o), STORE_ENOTFOUND);
	assert_int_equal(store_dav_object_scan(st, f->bob, cal, see_object, &s), STORE_OK);
	assert_int_equal(s.n, 0);
	rows = 0;
	assert_int_equal(store_changes_scan(st, f->bob, cal, 0, count_rows, &rows), STORE_OK);
	assert_int_equal(rows, 0);
	assert_int_equal(put(st, f->bob, cal, "a.ics", "A", "1", NULL, 0, &r), STORE_ENOTFOUND);
	/* The other collection is untouched. */
	assert_int_equal(store_dav_object_get(st, f->bob, other, "k.ics", &o), STORE_OK);
	store_free_record(o);
	/* The name is free again. */
	assert_int_equal(make_coll(st, f->bob, "calendar", NULL), STORE_OK);
}

static void test_durability(void **state)
{
	fixture *f = *state;
	store_sync_result r;
	Tern__DavObject *o = NULL;
	Tern__DavCollection *c = NULL;
	uint8_t cal[16];
	char etag[48];
	seen s = { 0 };

	assert_int_equal(make_coll(f->t->st, f->bob, "calendar", cal), STORE_OK);
	assert_int_equal(put(f->t->st, f->bob, cal, "a.ics", "A", "1", NULL, 0, &r), STORE_OK);
	snprintf(etag, sizeof(etag), "%s", r.res.etag);
	assert_int_equal(put(f->t->st, f->bob, cal, "b.ics", "B", "1", NULL, 0, &r), STORE_OK);
	store_close(&f->t->st);
	assert_int_equal(ts_open(f->t), 0);
	store *st = f->t->st;

	assert_int_equal(store_dav_collection_get(st, f->bob, "calendar", &c), STORE_OK);
	assert_int_equal(c->modseq, 3);
	store_free_record(c);
	assert_int_equal(store_dav_object_get(st, f->bob, cal, "a.ics", &o), STORE_OK);
	assert_string_equal(o->etag, etag);
	store_free_record(o);
	assert_int_equal(store_dav_changes(st, f->bob, cal, 0, see_change, &s), STORE_OK);
	assert_int_equal(s.n, 2);
	assert_int_equal(put(st, f->bob, cal, "a.ics", "A", "2", etag, 0, &r), STORE_OK);
	assert_int_equal(r.res.modseq, 4);
}

typedef struct racer {
	store *st;
	const uint8_t *owner, *coll;
	const char *etag;
	const char *summary;
	int rc;
	pthread_barrier_t *go;
} racer;

static void *race_put(void *arg)
{
	racer *x = arg;
	store_sync_result r;

	pthread_barrier_wait(x->go);
	x->rc = put(x->st, x->owner, x->coll, "race.ics", "R", x->summary, x->etag, 0, &r);
	return NULL;
}

static void test_racing_puts(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	store_sync_result r;
	uint8_t cal[16];
	char etag[48];
	static const char *const summaries[4] = { "w", "x", "y", "z" };

	assert_int_equal(make_coll(st, f->bob, "calendar", cal), STORE_OK);
	for (int round = 0; round < 5; round++) {
		pthread_barrier_t go;
		pthread_t th[4];
		racer rs[4];
		int ok = 0, conflict = 0;

		assert_int_equal(put(st, f->bob, cal, "race.ics", "R", "base", NULL, 0, &r), STORE_OK);
		snprintf(etag, sizeof(etag), "%s", r.res.etag);
		pthread_barrier_init(&go, NULL, 4);
		for (int i = 0; i < 4; i++) {
			rs[i] = (racer){ st, f->bob, cal, etag, summaries[i], 0, &go };
			pthread_create(&th[i], NULL, race_put, &rs[i]);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(th[i], NULL);
			ok += rs[i].rc == STORE_OK;
			conflict += rs[i].rc == STORE_ECONFLICT;
		}
		pthread_barrier_destroy(&go);
		assert_int_equal(ok, 1);
		assert_int_equal(conflict, 3);
	}
}

static int add_resource(store *st, const char *name, Tern__Resource__Type type,
			const char *bookable, const char *manager, store_sync_result *r)
{
	Tern__Resource res = TERN__RESOURCE__INIT;
	char *b[1] = { (char *)bookable };

	res.name = (char *)name;
	res.domain = (char *)"example.test";
	res.type = type;
	res.available = 1;
	res.bookable_by = bookable ? b : NULL;
	res.n_bookable_by = bookable ? 1 : 0;
	res.manager = (char *)(manager ? manager : "");
	return store_resource_add(st, &res, STORE_SYNC, r);
}

static void test_resources(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	store_sync_result r;
	Tern__Resource *res = NULL, **list = NULL;
	Tern__User u = TERN__USER__INIT;
	Tern__Group g = TERN__GROUP__INIT;
	uint8_t rid[16], cal[16];
	size_t n = 0;

	assert_int_equal(add_resource(st, "Room1", TERN__RESOURCE__TYPE__ROOM, "anyone",
				      "bob@example.test", &r), STORE_OK);
	memcpy(rid, r.res.id, 16);
	assert_int_equal(add_resource(st, "room1", TERN__RESOURCE__TYPE__ROOM, NULL, NULL, &r),
			 STORE_EEXISTS);
	assert_int_equal(add_resource(st, "beamer", TERN__RESOURCE__TYPE__EQUIPMENT,
				      "group:staff", NULL, &r), STORE_OK);
	assert_int_equal(add_resource(st, "bad name", TERN__RESOURCE__TYPE__ROOM, NULL, NULL, &r),
			 STORE_EINVAL);
	assert_int_equal(add_resource(st, "r2", 7, NULL, NULL, &r), STORE_EINVAL);
	assert_int_equal(add_resource(st, "r2", TERN__RESOURCE__TYPE__ROOM, "everyone", NULL, &r),
			 STORE_EINVAL);
	assert_int_equal(add_resource(st, "r2", TERN__RESOURCE__TYPE__ROOM, "user:nobody", NULL, &r),
			 STORE_EINVAL);
	assert_int_equal(add_resource(st, "r2", TERN__RESOURCE__TYPE__ROOM, NULL, "not-an-address",
				      &r), STORE_EINVAL);
	assert_int_equal(add_resource(st, "r2", TERN__RESOURCE__TYPE__ROOM, "user:ann@example.test",
				      NULL, &r), STORE_OK);

	/* Address conflicts both ways: users, groups, aliases. */
	assert_int_equal(add_resource(st, "bob", TERN__RESOURCE__TYPE__ROOM, NULL, NULL, &r),
			 STORE_EEXISTS);
	u.name = (char *)"room1";
	u.domain = (char *)"example.test";
	assert_int_equal(store_user_add(st, &u, STORE_SYNC, &r), STORE_EEXISTS);
	assert_non_null(strstr(r.error, "resource"));
	char *ga[1] = { (char *)"beamer" };

	g.name = (char *)"staff";
	g.domain = (char *)"example.test";
	g.addresses = ga;
	g.n_addresses = 1;
	assert_int_equal(store_group_add(st, &g, STORE_SYNC, &r), STORE_EEXISTS);
	ga[0] = (char *)"staff";
	assert_int_equal(store_group_add(st, &g, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(add_resource(st, "staff", TERN__RESOURCE__TYPE__ROOM, NULL, NULL, &r),
			 STORE_EEXISTS);
	assert_int_equal(store_alias_add(st, "example.test", "room1", "bob@example.test", NULL,
					 STORE_SYNC, &r), STORE_EEXISTS);
	assert_int_equal(store_alias_add(st, "example.test", "sales", "bob@example.test", NULL,
					 STORE_SYNC, &r), STORE_OK);
	assert_int_equal(add_resource(st, "sales", TERN__RESOURCE__TYPE__ROOM, NULL, NULL, &r),
			 STORE_EEXISTS);

	/* Reads. */
	assert_int_equal(store_resource_get(st, "EXAMPLE.test", "ROOM1", &res), STORE_OK);
	assert_string_equal(res->name, "Room1");
	assert_memory_equal(res->id.data, rid, 16);
	assert_string_equal(res->manager, "bob@example.test");
	assert_true(res->created > 0);
	store_free_record(res);
	assert_int_equal(store_resource_find(st, "room1@example.test", &res), STORE_OK);
	assert_int_equal(res->type, TERN__RESOURCE__TYPE__ROOM);
	store_free_record(res);
	assert_int_equal(store_resource_find(st, "bob@example.test", &res), STORE_ENOTFOUND);
	assert_int_equal(store_resource_list(st, "example.test", &list, &n), STORE_OK);
	assert_int_equal(n, 3);
	store_free_list((void **)list, n);

	/* Update keeps the identity. */
	Tern__Resource up = TERN__RESOURCE__INIT;

	up.name = (char *)"room1";
	up.domain = (char *)"example.test";
	up.type = TERN__RESOURCE__TYPE__ROOM;
	up.description = (char *)"Third floor";
	assert_int_equal(store_resource_update(st, &up, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_resource_get(st, "example.test", "room1", &res), STORE_OK);
	assert_string_equal(res->description, "Third floor");
	assert_string_equal(res->name, "Room1");
	assert_memory_equal(res->id.data, rid, 16);
	store_free_record(res);
	up.name = (char *)"nothere";
	assert_int_equal(store_resource_update(st, &up, STORE_SYNC, &r), STORE_ENOTFOUND);

	/* The domain cannot go while it has resources. */
	Tern__Domain d = TERN__DOMAIN__INIT;

	d.name = (char *)"other.test";
	assert_int_equal(store_domain_add(st, &d, STORE_SYNC, &r), STORE_OK);
	up.name = (char *)"lab";
	up.domain = (char *)"other.test";
	assert_int_equal(store_resource_add(st, &up, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_domain_remove(st, "other.test", STORE_SYNC, &r), STORE_EREFUSED);
	assert_non_null(strstr(r.error, "resource"));
	/* A domain rename moves its resources and their addresses. */
	assert_int_equal(store_domain_rename(st, "other.test", "new.test", STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_resource_find(st, "lab@new.test", &res), STORE_OK);
	assert_string_equal(res->domain, "new.test");
	store_free_record(res);
	assert_int_equal(store_resource_get(st, "other.test", "lab", &res), STORE_ENOTFOUND);
	assert_int_equal(store_resource_remove(st, "new.test", "lab", STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_domain_remove(st, "new.test", STORE_SYNC, &r), STORE_OK);

	/* Remove drops its calendar; its address is free again. */
	assert_int_equal(make_coll(st, rid, "calendar", cal), STORE_OK);
	assert_int_equal(put(st, rid, cal, "m.ics", "M", "meeting", NULL, 0, &r), STORE_OK);
	assert_int_equal(store_resource_remove(st, "example.test", "room1", STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_resource_remove(st, "example.test", "room1", STORE_SYNC, &r),
			 STORE_ENOTFOUND);
	assert_int_equal(store_resource_find(st, "room1@example.test", &res), STORE_ENOTFOUND);
	Tern__DavCollection **cl = NULL;

	assert_int_equal(store_dav_collection_list(st, rid, &cl, &n), STORE_OK);
	assert_int_equal(n, 0);
	int rows = 0;

	assert_int_equal(store_changes_scan(st, rid, cal, 0, count_rows, &rows), STORE_OK);
	assert_int_equal(rows, 0);
	assert_int_equal(make_coll(st, rid, "calendar", NULL), STORE_ENOTFOUND);
	assert_int_equal(store_user_add(st, &u, STORE_SYNC, &r), STORE_OK);
}

static void test_user_remove_drops_dav(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	store_sync_result r;
	Tern__DavCollection **cl = NULL;
	uint8_t cal[16], book[16], acal[16];
	size_t n = 0;
	int rows = 0;

	assert_int_equal(make_coll(st, f->bob, "calendar", cal), STORE_OK);
	assert_int_equal(make_coll(st, f->bob, "contacts", book), STORE_OK);
	assert_int_equal(make_coll(st, f->ann, "calendar", acal), STORE_OK);
	assert_int_equal(put(st, f->bob, cal, "a.ics", "A", "1", NULL, 0, &r), STORE_OK);
	assert_int_equal(put(st, f->bob, book, "c.vcf", "C", "1", NULL, 0, &r), STORE_OK);
	assert_int_equal(put(st, f->ann, acal, "a.ics", "A", "1", NULL, 0, &r), STORE_OK);
	assert_int_equal(store_user_remove(st, "example.test", "bob", STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_dav_collection_list(st, f->bob, &cl, &n), STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_changes_scan(st, f->bob, cal, 0, count_rows, &rows), STORE_OK);
	assert_int_equal(rows, 0);
	assert_int_equal(make_coll(st, f->bob, "calendar", NULL), STORE_ENOTFOUND);
	/* Ann keeps hers. */
	assert_int_equal(store_dav_collection_list(st, f->ann, &cl, &n), STORE_OK);
	assert_int_equal(n, 1);
	store_free_list((void **)cl, n);
	assert_int_equal(put(st, f->ann, acal, "b.ics", "B", "1", NULL, 0, &r), STORE_OK);
}

typedef struct evbox {
	pthread_mutex_t mu;
	int n;
	uint64_t modseq;
	Tern__Change__Kind kind;
} evbox;

static void on_put_done(const store_result *res, void *arg)
{
	evbox *b = arg;

	pthread_mutex_lock(&b->mu);
	b->n += res->rc == STORE_OK && res->etag[0] != '\0';
	b->modseq = res->modseq;
	pthread_mutex_unlock(&b->mu);
}

/* Non-blocking puts on the commit thread complete in order with increasing modseqs. */
static void test_async_puts(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	store_sync_result r;
	Tern__DavCollection *c = NULL;
	evbox b = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0 };
	uint8_t cal[16];
	char data[256];

	assert_int_equal(make_coll(st, f->bob, "calendar", cal), STORE_OK);
	for (int i = 0; i < 20; i++) {
		Tern__DavObject o = TERN__DAV_OBJECT__INIT;
		store_dav_write w = { f->bob, cal, &o, NULL, 0 };
		char href[32], uid[32];

		snprintf(href, sizeof(href), "%d.ics", i);
		snprintf(uid, sizeof(uid), "u%d", i);
		snprintf(data, sizeof(data), EVENT, uid, "s");
		o.href = href;
		o.uid = uid;
		o.data.data = (uint8_t *)data;
		o.data.len = strlen(data);
		assert_int_equal(store_dav_put(st, &w, (store_cb){ on_put_done, &b, NULL }, NULL),
				 STORE_OK);
	}
	/* A blocking write after them sees every one. */
	assert_int_equal(put(st, f->bob, cal, "last.ics", "last", "s", NULL, 0, &r), STORE_OK);
	assert_int_equal(r.res.modseq, 22);
	pthread_mutex_lock(&b.mu);
	assert_int_equal(b.n, 20);
	assert_int_equal(b.modseq, 21);
	pthread_mutex_unlock(&b.mu);
	assert_int_equal(store_dav_collection_get_by_id(st, f->bob, cal, &c), STORE_OK);
	assert_int_equal(c->modseq, 22);
	store_free_record(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_collections, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_objects, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_changes, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_collection_delete, ts_setup_users,
						ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_durability, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_racing_puts, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_resources, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_user_remove_drops_dav, ts_setup_users,
						ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_async_puts, ts_setup_users, ts_teardown_users),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
