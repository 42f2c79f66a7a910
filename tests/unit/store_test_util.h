/* store_test_util.h - a fresh store in a temporary directory for the store unit tests,
 * and the one fixture they share: domain example.test with the users bob, ann and eve. */
#ifndef TERN_STORE_TEST_UTIL_H
#define TERN_STORE_TEST_UTIL_H
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "store.h"

typedef struct test_store {
	char dir[64];
	char path[128];
	store *st;
} test_store;

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(p);
}

static inline void ts_options(test_store *t, store_options *o)
{
	store_options_default(o);
	o->path = t->path;
	o->sweep_interval = 0;
	o->disk_check_interval = 0;
	o->disk_soft_limit = 0;
	o->disk_hard_limit = 0;
	o->cache_bytes = 4u << 20;
}

static inline int ts_open(test_store *t)
{
	store_options o;
	char *err = NULL;

	ts_options(t, &o);
	if (store_open(&o, &t->st, &err) != 0) {
		fprintf(stderr, "store_open: %s\n", err);
		free(err);
		return -1;
	}
	return 0;
}

static inline test_store *ts_new(void)
{
	test_store *t = calloc(1, sizeof(*t));

	snprintf(t->dir, sizeof(t->dir), "/tmp/tern-store-XXXXXX");
	if (!mkdtemp(t->dir))
		abort();
	snprintf(t->path, sizeof(t->path), "%s/db", t->dir);
	if (ts_open(t) != 0)
		abort();
	return t;
}

static inline void ts_free(test_store **tp)
{
	test_store *t = *tp;

	store_close(&t->st);
	nftw(t->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(t);
	*tp = NULL;
}

/* cmocka setup/teardown with a bare store (test_store *) as the state. */
static inline int ts_setup(void **state)
{
	*state = ts_new();
	return 0;
}

static inline int ts_teardown(void **state)
{
	test_store *t = *state;

	ts_free(&t);
	return 0;
}

/* Add the domain example.test. */
static inline void ts_add_domain(store *st)
{
	Tern__Domain d = TERN__DOMAIN__INIT;
	store_sync_result r;

	d.name = (char *)"example.test";
	assert_int_equal(store_domain_add(st, &d, STORE_SYNC, &r), STORE_OK);
}

/* Add name@example.test with a quota (0: none); its id into id. */
static inline void ts_add_user(store *st, const char *name, uint64_t quota_bytes, uint8_t id[16])
{
	Tern__User u = TERN__USER__INIT;
	store_sync_result r;

	u.name = (char *)name;
	u.domain = (char *)"example.test";
	u.quota_bytes = quota_bytes;
	assert_int_equal(store_user_add(st, &u, STORE_SYNC, &r), STORE_OK);
	memcpy(id, r.res.id, 16);
}

/* Add an enabled name@example.test with the id `id` (NULL: the store makes one), homed on
 * the node home ("": this node, or no distributed domain); its id into id_r unless that is
 * NULL. */
static inline void ts_add_user_id(store *st, const char *name, const uint8_t *id, const char *home,
				  uint8_t id_r[16])
{
	Tern__User u = TERN__USER__INIT;
	store_sync_result r;

	u.name = (char *)name;
	u.domain = (char *)"example.test";
	u.enabled = 1;
	u.home = (char *)home;
	if (id != NULL) {
		u.id.data = (uint8_t *)id;
		u.id.len = 16;
	}
	assert_int_equal(store_user_add(st, &u, STORE_SYNC, &r), STORE_OK);
	if (id_r != NULL)
		memcpy(id_r, r.res.id, 16);
}

/* Add an enabled name@example.test homed on the node home ("": this node, or no
 * distributed domain); its id into id_r unless that is NULL. */
static inline void ts_add_user_homed(store *st, const char *name, const char *home, uint8_t id_r[16])
{
	ts_add_user_id(st, name, NULL, home, id_r);
}

/* Put the VEVENT data as href with uid into owner's collection coll, under the conditions
 * if_match (NULL: none) and if_none_match: the store's answer, its result in *r. */
static inline int ts_dav_put(store *st, const uint8_t owner[16], const uint8_t coll[16], const char *href,
			     const char *uid, const char *data, const char *if_match, int if_none_match,
			     store_sync_result *r)
{
	Tern__DavObject o = TERN__DAV_OBJECT__INIT;
	store_dav_write w = { 0 };

	o.href = (char *)href;
	o.uid = (char *)uid;
	o.component = (char *)"VEVENT";
	o.data.data = (uint8_t *)data;
	o.data.len = strlen(data);
	w.owner = owner;
	w.collection = coll;
	w.obj = &o;
	w.if_match = if_match;
	w.if_none_match = if_none_match;
	return store_dav_put(st, &w, STORE_SYNC, r);
}

/* The shared fixture: bob and ann without a quota, eve with a quota of 100 bytes. */
typedef struct ts_fixture {
	test_store *t;
	uint8_t bob[16], ann[16], eve[16];
} ts_fixture;

static inline int ts_setup_users(void **state)
{
	ts_fixture *f = calloc(1, sizeof(*f));

	f->t = ts_new();
	ts_add_domain(f->t->st);
	ts_add_user(f->t->st, "bob", 0, f->bob);
	ts_add_user(f->t->st, "ann", 0, f->ann);
	ts_add_user(f->t->st, "eve", 100, f->eve);
	*state = f;
	return 0;
}

static inline int ts_teardown_users(void **state)
{
	ts_fixture *f = *state;

	ts_free(&f->t);
	free(f);
	return 0;
}

#endif
