/* Durability of store commits: every commit is a synced WAL write, seen in RocksDB's
 * own "rocksdb.wal.synced" counter, and group commit never counts more groups than
 * batches. */
#include "store_test_util.h"
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

typedef struct writer {
	store *st;
	uint8_t user[16];
	int ok;
} writer;

static void *write_some(void *arg)
{
	writer *w = arg;
	store_sync_result r;

	for (int i = 0; i < 20; i++) {
		char body[64];
		store_append a = { 0 };

		snprintf(body, sizeof(body), "message %d from %p", i, (void *)w);
		a.user = w->user;
		a.body = body;
		a.body_len = strlen(body);
		if (store_msg_append(w->st, &a, STORE_SYNC, &r) == STORE_OK)
			w->ok++;
	}
	return NULL;
}

static void test_wal_synced_grows(void **state)
{
	test_store *t = ts_new();
	Tern__Domain d = TERN__DOMAIN__INIT;
	store_sync_result r;
	store_stats s0, s1, s2;
	writer ws[4];
	pthread_t th[4];

	d.name = (char *)"example.test";
	assert_int_equal(store_domain_add(t->st, &d, STORE_SYNC, &r), STORE_OK);
	for (int i = 0; i < 4; i++) {
		Tern__User u = TERN__USER__INIT;
		char name[16];

		snprintf(name, sizeof(name), "u%d", i);
		u.name = name;
		u.domain = (char *)"example.test";
		assert_int_equal(store_user_add(t->st, &u, STORE_SYNC, &r), STORE_OK);
		ws[i] = (writer){ t->st, { 0 }, 0 };
		memcpy(ws[i].user, r.res.id, 16);
	}
	store_get_stats(t->st, &s0);
	assert_true(s0.wal_synced > 0);
	writer *w = &ws[0];

	write_some(w);
	assert_int_equal(w->ok, 20);
	store_get_stats(t->st, &s1);
	assert_true(s1.wal_synced >= s0.wal_synced + 20);  /* one sync per blocking commit */
	assert_true(s1.commits >= s0.commits + 20);
	assert_true(s1.wal_bytes > s0.wal_bytes);
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, write_some, &ws[i]);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	store_get_stats(t->st, &s2);
	assert_true(s2.commits == s1.commits + 80);
	assert_true(s2.wal_synced > s1.wal_synced);
	assert_true(s2.commit_groups <= s2.commits);
	ts_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wal_synced_grows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
