/* test_migrate_basic.c - live migrations between two in-process nodes over real ZeroMQ:
 * a master "a" holding the mailboxes and a slave "b" pulling them ("migrate here").
 * The tests run in order and build on each other: a migration with changes made on the
 * source during the copy; a cancel in the middle of a (slowed) copy that leaves the source
 * untouched and the target empty; the same user again with a damaged reply on the way;
 * and the refusals of migrate_here and migrate_cancel. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "migrate_test_util.h"

static tnode A, B;
static migrate *MA, *MB;
static mt_reports RA = { PTHREAD_MUTEX_INITIALIZER, 0, "", "" }, RB = { PTHREAD_MUTEX_INITIALIZER, 0, "", "" };
static uint8_t bob[16], carol[16];

static int group_setup(void **state)
{
	(void)state;
	if (logs_open("tern-migrate") != 0)
		return -1;
	mt_node_init(&A, "a", "tern-migrate", "chunk_kb = 16\nwindow = 4\n");
	mt_node_init(&B, "b", "tern-migrate", "chunk_kb = 16\nwindow = 4\ndelta_small = 0\ndelta_rounds = 3\n");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	migrate_close(&MB);
	migrate_close(&MA);
	node_free(&B);
	node_free(&A);
	logs_close();
	return 0;
}

static void test_setup_users(void **state)
{
	(void)state;
	mt_cluster(&A, &B);
	add_user(A.st, "bob", STORE_OK);
	add_user(A.st, "carol", STORE_OK);
	mt_user_id(A.st, "bob@example.test", bob);
	mt_user_id(A.st, "carol@example.test", carol);
	mt_fill(A.st, bob, 300);
	mt_fill(A.st, carol, 200);
	WAIT_FOR(has_user(B.st, "carol@example.test"));
	assert_true(mt_home_is(B.st, "bob@example.test", "a"));
	MA = mt_migrate_open(&A, &RA);
	MB = mt_migrate_open(&B, &RB);
}

/* Appends on the source while the target copies. */
typedef struct writer {
	pthread_t t;
	volatile int stop;
	int appended;
} writer;

static void *write_main(void *arg)
{
	writer *w = arg;
	for (unsigned i = 0; !w->stop && i < 40; i++) {
		if (mt_append(A.st, bob, NULL, 20000 + i, 2000) == STORE_OK)
			w->appended++;
		usleep(20000);
	}
	return NULL;
}

static void test_migrate_with_changes(void **state)
{
	(void)state;
	const char *users[] = { "bob@example.test" };
	tbuf err = TBUF_INIT;
	writer w = { 0 };
	migrate_status s;
	uint64_t bytes0 = 0, msgs0 = 0, dav0 = 0;

	assert_int_equal(store_mig_totals(A.st, bob, &bytes0, &msgs0, &dav0), STORE_OK);
	assert_true(msgs0 >= 302);
	assert_int_equal(pthread_create(&w.t, NULL, write_main, &w), 0);
	if (migrate_here(MB, users, 1, "admin@example.test", &err) != 0)
		fail_msg("migrate_here: %s", tbuf_cstr(&err));
	WAIT_FOR(mt_status(MB, "bob@example.test", &s) && strcmp(s.state, "done") * strcmp(s.state, "failed") == 0);
	w.stop = 1;
	pthread_join(w.t, NULL);
	assert_true(mt_status(MB, "bob@example.test", &s));
	if (strcmp(s.state, "done") != 0)
		fail_msg("migration failed: %s", s.error);
	assert_string_equal(s.source, "a");
	assert_true(w.appended > 0);

	/* B holds everything: the messages of before and the ones appended meanwhile */
	uint64_t bytes = 0, msgs = 0, dav = 0;
	assert_int_equal(store_mig_totals(B.st, bob, &bytes, &msgs, &dav), STORE_OK);
	assert_int_equal(msgs, msgs0 + (uint64_t)w.appended);
	assert_int_equal(dav, dav0);
	assert_true(s.messages >= msgs0);
	Tern__Folder *f = NULL;
	assert_int_equal(store_folder_find(B.st, bob, "Work", &f), STORE_OK);
	Tern__MessageMeta *mm = NULL;
	int found_big = 0;
	for (uint32_t uid = 1; uid <= f->uidnext; uid++) {
		if (store_msg_get(B.st, bob, f->id.data, uid, &mm) != STORE_OK)
			continue;
		if (mm->size >= 700 * 1024) {
			tbuf body = TBUF_INIT;
			assert_int_equal(store_blob_read(B.st, mm->blob.data, 0, 0, &body), STORE_OK);
			assert_int_equal(body.len, 700 * 1024);
			assert_non_null(strstr(body.data, "Subject: message 9000"));
			tbuf_free(&body);
			found_big = 1;
		}
		store_free_record(mm);
	}
	store_free_record(f);
	assert_true(found_big);

	/* the home moved on every node; the source holds nothing of bob */
	WAIT_FOR(mt_home_is(A.st, "bob@example.test", "b"));
	assert_true(mt_home_is(B.st, "bob@example.test", "b"));
	WAIT_FOR(mt_rows(A.st, bob) == 0);
	store_mbox_state ms;
	assert_int_equal(store_mbox_state_get(B.st, bob, &ms, NULL), STORE_OK);
	assert_int_equal(ms, STORE_MBOX_ACTIVE);

	/* the admin's report and the log */
	WAIT_FOR(RB.n == 1);
	assert_string_equal(RB.subject, "Migration of bob@example.test: done");
	assert_non_null(strstr(RB.body, "Cut-over:"));
	assert_true(log_has("operations.log", "migrate: bob@example.test from a: done in"));
	tbuf_free(&err);
}

static void test_cancel_mid_copy(void **state)
{
	(void)state;
	const char *users[] = { "carol@example.test" };
	tbuf err = TBUF_INIT;
	migrate_status s;
	store_mig_digest_entry *before = NULL, *after = NULL;

	migrate_close(&MA);
	mt_set_fault(&A, "slow:150");
	MA = mt_migrate_open(&A, &RA);
	size_t n0 = mt_digest(A.st, carol, &before);
	if (migrate_here(MB, users, 1, "admin@example.test", &err) != 0)
		fail_msg("migrate_here: %s", tbuf_cstr(&err));
	WAIT_FOR(mt_status(MB, "carol@example.test", &s) && s.bytes > 0);
	assert_string_equal(s.state, "copying");
	assert_true(s.rate > 0 || s.started == tern_now());
	assert_int_equal(migrate_cancel(MB, "carol@example.test", &err), 0);
	WAIT_FOR(mt_state_is(MB, "carol@example.test", "cancelled"));

	/* the source untouched, the target empty, the home where it was */
	size_t n1 = mt_digest(A.st, carol, &after);
	assert_int_equal(n0, n1);
	assert_memory_equal(before, after, n0 * sizeof(*before));
	WAIT_FOR(mt_home_is(B.st, "carol@example.test", "a"));
	assert_true(mt_home_is(A.st, "carol@example.test", "a"));
	assert_int_equal(mt_rows(B.st, carol), 0);
	store_mbox_state ms;
	assert_int_equal(store_mbox_state_get(B.st, carol, &ms, NULL), STORE_OK);
	assert_int_equal(ms, STORE_MBOX_ACTIVE);
	assert_int_equal(store_mbox_state_get(A.st, carol, &ms, NULL), STORE_OK);
	assert_int_equal(ms, STORE_MBOX_ACTIVE);
	WAIT_FOR(RB.n == 2);
	assert_string_equal(RB.subject, "Migration of carol@example.test: cancelled");
	free(before);
	free(after);
	tbuf_free(&err);
}

/* A damaged reply (checksum) and a wrong blob chunk under a right checksum (the blob's
 * hash) are both asked for again; the mailbox arrives whole. */
static void test_corrupt_reply_still_succeeds(void **state)
{
	(void)state;
	const char *users[] = { "carol@example.test" };
	tbuf err = TBUF_INIT;
	store_mig_digest_entry *before = NULL, *after = NULL;

	migrate_close(&MA);
	mt_set_fault(&A, "corrupt:3,badblob:1");
	MA = mt_migrate_open(&A, &RA);
	/* a new message of three chunks: b has every other blob of carol's from the
	 * cancelled copy, so this one's chunks are the first that a sends */
	assert_int_equal(mt_append(A.st, carol, NULL, 7001, 600000), STORE_OK);
	size_t n0 = mt_digest(A.st, carol, &before);
	if (migrate_here(MB, users, 1, "admin@example.test", &err) != 0)
		fail_msg("migrate_here: %s", tbuf_cstr(&err));
	WAIT_FOR(mt_state_is(MB, "carol@example.test", "done") || mt_state_is(MB, "carol@example.test", "failed"));
	migrate_status s;
	assert_true(mt_status(MB, "carol@example.test", &s));
	if (strcmp(s.state, "done") != 0)
		fail_msg("migration failed: %s", s.error);
	size_t n1 = mt_digest(B.st, carol, &after);
	assert_int_equal(n0, n1);
	assert_memory_equal(before, after, n0 * sizeof(*before));
	assert_true(log_has("warning.log", "checksum mismatch, asking again"));
	assert_true(log_has("warning.log", "does not match its hash, asking again"));
	WAIT_FOR(mt_home_is(A.st, "carol@example.test", "b"));
	WAIT_FOR(mt_rows(A.st, carol) == 0);
	free(before);
	free(after);
	tbuf_free(&err);
}

/* 1 when st's record of the user says MOVING to target. */
static int mt_moving_to(store *st, const char *addr, const char *target)
{
	Tern__User *u = NULL;
	int ok = 0;

	if (store_user_find(st, addr, &u) == STORE_OK)
		ok = u->home_state == TERN__HOME_STATE__HOME_MOVING && strcmp(u->home_target, target) == 0;
	store_free_record(u);
	return ok;
}

/* A mailbox frozen for a target that has no such migration (it lost it): the source's
 * settler asks the target, has the master abort the move, and unfreezes. bob lives on
 * the slave b here, so the abort is a source's request over the control plane. */
static void test_orphaned_freeze(void **state)
{
	(void)state;
	uint8_t mid[16];
	tbuf err = TBUF_INIT;
	store_mbox_state s = STORE_MBOX_ACTIVE;
	store_sync_result res;

	assert_true(mt_home_is(B.st, "bob@example.test", "b"));
	tern_uuid_new(mid);
	if (cluster_home_move(A.cl, bob, CLUSTER_MOVE_BEGIN, "a", NULL, 0, &err) != 0)
		fail_msg("BEGIN: %s", tbuf_cstr(&err));
	WAIT_FOR(mt_moving_to(B.st, "bob@example.test", "a"));
	assert_int_equal(store_mbox_state_set(B.st, bob, STORE_MBOX_FROZEN, "a", mid, STORE_SYNC, &res), STORE_OK);
	assert_int_equal(mt_append(B.st, bob, NULL, 9001, 100), STORE_EREFUSED);
	/* a has no job for bob: the settler of b (every second) gets the move aborted */
	WAIT_FOR(store_mbox_state_get(B.st, bob, &s, NULL) == STORE_OK && s == STORE_MBOX_ACTIVE);
	assert_true(mt_home_is(A.st, "bob@example.test", "b"));
	WAIT_FOR(mt_home_is(B.st, "bob@example.test", "b"));
	assert_int_equal(mt_append(B.st, bob, NULL, 9002, 100), STORE_OK);
	tbuf_free(&err);
}

static void test_refusals(void **state)
{
	(void)state;
	tbuf err = TBUF_INIT;
	const char *here[] = { "bob@example.test" };
	const char *mixed[] = { "carol@example.test", "nobody@example.test" };
	const char *back[] = { "bob@example.test", "carol@example.test" };

	/* homed here already, unknown user: nothing is queued */
	assert_int_equal(migrate_here(MB, here, 1, "admin@example.test", &err), -1);
	assert_non_null(strstr(tbuf_cstr(&err), "already homed on this node"));
	tbuf_reset(&err);
	assert_int_equal(migrate_here(MA, mixed, 2, "admin@example.test", &err), -1);
	assert_non_null(strstr(tbuf_cstr(&err), "no such user: nobody@example.test"));
	migrate_status *list = NULL;
	size_t n = 0;
	assert_int_equal(migrate_list(MA, &list, &n), 0);
	assert_int_equal(n, 0);
	free(list);
	/* nothing to cancel */
	tbuf_reset(&err);
	assert_int_equal(migrate_cancel(MB, "bob@example.test", &err), -1);

	/* both back to a, in one request, in order */
	migrate_close(&MA);
	mt_set_fault(&A, "");
	MA = mt_migrate_open(&A, &RA);
	tbuf_reset(&err);
	if (migrate_here(MA, back, 2, "admin@example.test", &err) != 0)
		fail_msg("migrate_here: %s", tbuf_cstr(&err));
	tbuf_reset(&err);
	assert_int_equal(migrate_here(MA, back, 1, "admin@example.test", &err), -1);
	assert_non_null(strstr(tbuf_cstr(&err), "already queued"));
	WAIT_FOR(mt_state_is(MA, "carol@example.test", "done"));
	assert_true(mt_state_is(MA, "bob@example.test", "done"));
	WAIT_FOR(mt_home_is(B.st, "carol@example.test", "a") && mt_home_is(B.st, "bob@example.test", "a"));
	WAIT_FOR(mt_rows(B.st, bob) == 0 && mt_rows(B.st, carol) == 0);
	tbuf_free(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_setup_users),
		cmocka_unit_test(test_migrate_with_changes),
		cmocka_unit_test(test_cancel_mid_copy),
		cmocka_unit_test(test_corrupt_reply_still_succeeds),
		cmocka_unit_test(test_orphaned_freeze),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
