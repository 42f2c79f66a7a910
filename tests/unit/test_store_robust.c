/* Store robustness: UIDVALIDITY strictly increasing across restarts, user removal
 * against changes queued behind it, a failed write failing the batches built on it, and
 * the disk watchdog refusing new mail. */
#include "store_test_util.h"
#include "store_private.h"
#include "log.h"
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static int append(store *st, const uint8_t user[16], const char *body, store_sync_result *r)
{
	store_append a = { 0 };

	a.user = user;
	a.body = body;
	a.body_len = strlen(body);
	return store_msg_append(st, &a, STORE_SYNC, r);
}

static void test_uidvalidity_across_restart(void **state)
{
	test_store *t = ts_new();
	store_sync_result r;
	uint8_t bob[16], bob2[16];
	uint32_t last = 0;
	char *v = NULL;

	(void)state;
	ts_add_domain(t->st);
	ts_add_user(t->st, "bob", 0, bob);
	/* Several folders in one second push the values ahead of the clock. */
	for (int i = 0; i < 5; i++) {
		char name[16];

		snprintf(name, sizeof(name), "f%d", i);
		assert_int_equal(store_folder_create(t->st, bob, name, NULL, STORE_SYNC, &r), STORE_OK);
		assert_true(r.res.uidvalidity > last);
		last = r.res.uidvalidity;
	}
	assert_int_equal(store_setting_get(t->st, "uidvalidity", &v), STORE_OK);
	assert_int_equal(strtoul(v, NULL, 10), last);
	free(v);
	assert_int_equal(store_setting_put(t->st, "uidvalidity", "1", STORE_SYNC, &r), STORE_EREFUSED);

	store_close(&t->st);
	assert_int_equal(ts_open(t), 0);
	assert_int_equal(store_folder_create(t->st, bob, "after", NULL, STORE_SYNC, &r), STORE_OK);
	assert_true(r.res.uidvalidity > last);
	last = r.res.uidvalidity;

	/* A new user's INBOX too, after another restart. */
	store_close(&t->st);
	assert_int_equal(ts_open(t), 0);
	Tern__Folder *in = NULL;

	ts_add_user(t->st, "bob2", 0, bob2);
	assert_int_equal(store_folder_find(t->st, bob2, "INBOX", &in), STORE_OK);
	assert_true(in->uidvalidity > last);
	store_free_record(in);
	ts_free(&t);
}

typedef struct racer {
	store *st;
	uint8_t user[16];
	atomic_int ok;
	int notfound, other;
} racer;

static void *append_until_gone(void *arg)
{
	racer *x = arg;
	store_sync_result r;

	for (int i = 0; i < 400; i++) {
		char body[48];
		int rc;

		snprintf(body, sizeof(body), "race %d", i);
		rc = append(x->st, x->user, body, &r);
		if (rc == STORE_OK) {
			x->ok++;
		} else if (rc == STORE_ENOTFOUND) {
			x->notfound++;
			break;
		} else {
			x->other++;
		}
	}
	return NULL;
}

static int count_msg(const Tern__MessageMeta *m, void *arg)
{
	(void)m;
	(*(int *)arg)++;
	return 0;
}

/* No row of a removed user survives, whatever was queued around the removal. */
static void assert_no_rows(store *st, const uint8_t user[16], const uint8_t inbox[16])
{
	Tern__Mailbox *mb = NULL;
	Tern__Folder **list = NULL;
	size_t n = 9;
	int msgs = 0;

	assert_int_equal(store_mailbox_get(st, user, &mb), STORE_ENOTFOUND);
	assert_int_equal(store_folder_list(st, user, &list, &n), STORE_OK);
	assert_int_equal(n, 0);
	store_free_list((void **)list, n);
	assert_int_equal(store_msg_scan(st, user, inbox, 0, count_msg, &msgs), STORE_OK);
	assert_int_equal(msgs, 0);
}

static void test_user_remove_race(void **state)
{
	test_store *t = ts_new();
	store_sync_result r;
	uint8_t bob[16], again[16], inbox[16];
	Tern__Folder *in = NULL;

	(void)state;
	ts_add_domain(t->st);
	ts_add_user(t->st, "bob", 0, bob);
	assert_int_equal(append(t->st, bob, "before", &r), STORE_OK);
	memcpy(inbox, r.res.id, 16);

	/* Appends racing the removal: the ones after it fail, nothing is recreated. */
	racer x = { .st = t->st };
	pthread_t th;

	memcpy(x.user, bob, 16);
	assert_int_equal(pthread_create(&th, NULL, append_until_gone, &x), 0);
	while (atomic_load(&x.ok) < 3)
		usleep(1000);
	assert_int_equal(store_user_remove(t->st, "example.test", "bob", STORE_SYNC, &r), STORE_OK);
	pthread_join(th, NULL);
	assert_int_equal(x.notfound, 1);
	assert_int_equal(x.other, 0);
	assert_no_rows(t->st, bob, inbox);

	/* Every later change to the old id fails. */
	uint32_t one = 1;
	store_append a = { 0 };

	assert_int_equal(append(t->st, bob, "after", &r), STORE_ENOTFOUND);
	a.user = bob;
	a.body = "x";
	a.body_len = 1;
	assert_int_equal(store_deliver(t->st, &a, 1, STORE_SYNC, &r), STORE_ENOTFOUND);
	assert_int_equal(r.res.rcpt_rc[0], STORE_ENOTFOUND);
	assert_int_equal(store_msg_set_flags(t->st, bob, inbox, &one, 1, STORE_FLAGS_ADD,
					     TERN__FLAG__FLAG_SEEN, NULL, 0, 0, STORE_SYNC, &r),
			 STORE_ENOTFOUND);
	assert_int_equal(store_msg_expunge(t->st, bob, inbox, &one, 1, STORE_SYNC, &r), STORE_ENOTFOUND);
	assert_int_equal(store_folder_create(t->st, bob, "New", NULL, STORE_SYNC, &r), STORE_ENOTFOUND);
	assert_no_rows(t->st, bob, inbox);

	/* The same name again: a new id and an empty mailbox. */
	ts_add_user(t->st, "bob", 0, again);
	assert_memory_not_equal(again, bob, 16);
	Tern__Mailbox *mb = NULL;

	assert_int_equal(store_mailbox_get(t->st, again, &mb), STORE_OK);
	assert_int_equal(mb->items, 0);
	assert_int_equal(mb->bytes, 0);
	store_free_record(mb);
	assert_int_equal(store_folder_find(t->st, again, "INBOX", &in), STORE_OK);
	assert_int_equal(in->messages, 0);
	assert_int_equal(in->uidnext, 1);
	int msgs = 0;

	assert_int_equal(store_msg_scan(t->st, again, in->id.data, 0, count_msg, &msgs), STORE_OK);
	assert_int_equal(msgs, 0);
	store_free_record(in);
	assert_int_equal(append(t->st, again, "new life", &r), STORE_OK);
	assert_int_equal(r.res.uid, 1);
	ts_free(&t);
}

typedef struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int rc[4];
	uint32_t uid[4];
	int n;
} waiter;

static void on_done(const store_result *res, void *arg)
{
	waiter *w = arg;

	pthread_mutex_lock(&w->mu);
	w->rc[w->n] = res->rc;
	w->uid[w->n++] = res->uid;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
}

static void test_failed_write_fails_later_batches(void **state)
{
	test_store *t = ts_new();
	store_sync_result r;
	uint8_t bob[16], inbox[16];
	waiter w = { .n = 0 };
	Tern__MessageMeta *m = NULL;

	(void)state;
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cond, NULL);
	ts_add_domain(t->st);
	ts_add_user(t->st, "bob", 0, bob);
	assert_int_equal(append(t->st, bob, "one", &r), STORE_OK);
	memcpy(inbox, r.res.id, 16);

	/* A and B are both queued (B built on A's state) before A's write fails. */
	store_test_hold_commits(t->st, 1);
	store_test_fail_writes(t->st, 1);
	for (int i = 0; i < 2; i++) {
		store_append a = { 0 };

		a.user = bob;
		a.body = i ? "B" : "A";
		a.body_len = 1;
		assert_int_equal(store_msg_append(t->st, &a, (store_cb){ on_done, &w, NULL }, NULL),
				 STORE_OK);
		/* Let a commit thread take A alone, so that B is in a later group. */
		for (int taken = 0; !taken; usleep(1000)) {
			pthread_mutex_lock(&t->st->cmu);
			taken = t->st->qhead == NULL;
			pthread_mutex_unlock(&t->st->cmu);
		}
	}
	store_test_hold_commits(t->st, 0);
	pthread_mutex_lock(&w.mu);
	while (w.n < 2)
		pthread_cond_wait(&w.cond, &w.mu);
	pthread_mutex_unlock(&w.mu);
	assert_int_equal(w.rc[0], STORE_EIO);
	assert_int_equal(w.rc[1], STORE_EIO);
	assert_int_equal(store_msg_get(t->st, bob, inbox, 2, &m), STORE_ENOTFOUND);
	assert_int_equal(store_msg_get(t->st, bob, inbox, 3, &m), STORE_ENOTFOUND);

	/* The state is reloaded from the database: the next message is UID 2. */
	assert_int_equal(append(t->st, bob, "C", &r), STORE_OK);
	assert_int_equal(r.res.uid, 2);
	Tern__Folder *in = NULL;
	Tern__Mailbox *mb = NULL;

	assert_int_equal(store_folder_get(t->st, bob, inbox, &in), STORE_OK);
	assert_int_equal(in->messages, 2);
	assert_int_equal(in->uidnext, 3);
	store_free_record(in);
	assert_int_equal(store_mailbox_get(t->st, bob, &mb), STORE_OK);
	assert_int_equal(mb->items, 2);
	assert_int_equal(mb->bytes, strlen("one") + strlen("C"));
	store_free_record(mb);
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.mu);
	ts_free(&t);
}

/* Does file dir/name contain needle? */
static int file_has(const char *dir, const char *name, const char *needle)
{
	char path[256], buf[8192];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

static void test_disk_watchdog(void **state)
{
	test_store *t = ts_new();
	store_options o;
	store_sync_result r;
	char logs[160], *err = NULL;
	const char *lerr = NULL;
	uint8_t bob[16];
	store_stats s;

	(void)state;
	ts_add_domain(t->st);
	ts_add_user(t->st, "bob", 0, bob);
	store_close(&t->st);
	snprintf(logs, sizeof(logs), "%s/logs", t->dir);
	assert_int_equal(mkdir(logs, 0700), 0);
	assert_int_equal(tlog_open(logs, &(tlog_options){ 0, 0, 0 }, &lerr), 0);

	/* A hard limit above the real free space: new mail refused. */
	ts_options(t, &o);
	o.disk_hard_limit = UINT64_MAX / 2;
	o.disk_check_interval = 1;
	assert_int_equal(store_open(&o, &t->st, &err), 0);
	assert_int_equal(store_disk(t->st), STORE_DISK_HARD);
	store_get_stats(t->st, &s);
	assert_true(s.free_disk_bytes > 0);
	assert_int_equal(append(t->st, bob, "refused", &r), STORE_EDISK);
	store_append a = { 0 };

	a.user = bob;
	a.body = "refused too";
	a.body_len = strlen(a.body);
	assert_int_equal(store_deliver(t->st, &a, 1, STORE_SYNC, &r), STORE_EDISK);
	assert_true(file_has(logs, "error.log", "below the hard limit"));
	assert_true(file_has(logs, "error.log", "new mail refused"));
	store_close(&t->st);

	/* Below the soft limit only: a warning, mail still accepted. */
	ts_options(t, &o);
	o.disk_soft_limit = UINT64_MAX / 2;
	assert_int_equal(store_open(&o, &t->st, &err), 0);
	assert_int_equal(store_disk(t->st), STORE_DISK_SOFT);
	assert_true(file_has(logs, "warning.log", "below the soft limit"));
	assert_int_equal(append(t->st, bob, "accepted", &r), STORE_OK);
	assert_int_equal(r.res.uid, 1);
	store_close(&t->st);

	/* Enough space again. */
	assert_int_equal(ts_open(t), 0);
	assert_int_equal(store_disk(t->st), STORE_DISK_OK);
	tlog_close();
	ts_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uidvalidity_across_restart),
		cmocka_unit_test(test_user_remove_race),
		cmocka_unit_test(test_failed_write_fails_later_batches),
		cmocka_unit_test(test_disk_watchdog),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
