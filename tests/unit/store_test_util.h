/* store_test_util.h - a fresh store in a temporary directory for the store unit tests. */
#ifndef TERN_STORE_TEST_UTIL_H
#define TERN_STORE_TEST_UTIL_H
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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

#endif
