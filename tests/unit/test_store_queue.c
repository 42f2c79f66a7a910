/* The outgoing queue in the store: due order, updates moving the next-try index, removal
 * with its blob reference (and the sweeper), persistence across a restart, concurrent
 * updates, and stale index rows left by a failed write. */
#include "store_test_util.h"
#include "store_private.h"
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* Queue body under its own content, with next_try and created given; id into id_r. */
static void enqueue(store *st, const char *body, uint64_t next_try, uint64_t created, uint8_t id_r[16])
{
	Tern__QueueEntry e = TERN__QUEUE_ENTRY__INIT;
	Tern__QueueRcpt r = TERN__QUEUE_RCPT__INIT, *rp = &r;
	store_sync_result res;

	r.address = (char *)"rcpt@remote.test";
	e.sender = (char *)"a@example.test";
	e.rcpts = &rp;
	e.n_rcpts = 1;
	e.next_try = next_try;
	e.created = created;
	assert_int_equal(store_submit(st, NULL, 0, &e, body, strlen(body), STORE_SYNC, &res), STORE_OK);
	memcpy(id_r, res.res.id, 16);
}

typedef struct index_scan {
	uint8_t ids[64][16];
	uint64_t times[64];
	int n;
} index_scan;

static int scan_index_row(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	index_scan *s = arg;

	(void)v;
	(void)vn;
	assert_true(s->n < 64);
	assert_int_equal(sk_queue_index_parse(k, kn, &s->times[s->n], s->ids[s->n]), 0);
	s->n++;
	return 0;
}

/* Every index row of the queue CF, in key order. */
static void scan_index(store *st, index_scan *s)
{
	const uint8_t p = SK_QUEUE_INDEX;

	s->n = 0;
	assert_int_equal(store_db_scan(st, CF_QUEUE, &p, 1, NULL, 0, scan_index_row, s), 0);
}

/* id appears exactly once in the index, at next_try. */
static void assert_indexed_once(const index_scan *s, const uint8_t id[16], uint64_t next_try)
{
	int seen = 0;

	for (int i = 0; i < s->n; i++) {
		if (memcmp(s->ids[i], id, 16) == 0) {
			seen++;
			assert_int_equal(s->times[i], next_try);
		}
	}
	assert_int_equal(seen, 1);
}

static void assert_due(store *st, int64_t now, size_t max, uint8_t (*want)[16], size_t nwant)
{
	Tern__QueueEntry **list = NULL;
	size_t n = 0;

	assert_int_equal(store_queue_due(st, now, max, &list, &n), STORE_OK);
	assert_int_equal(n, nwant);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(list[i]->id.len, 16);
		assert_memory_equal(list[i]->id.data, want[i], 16);
		assert_true(list[i]->next_try <= (uint64_t)now);
		if (i > 0)
			assert_true(list[i - 1]->next_try <= list[i]->next_try);
	}
	store_free_list((void **)list, n);
}

static void test_due_update_list(void **state)
{
	test_store *t = *state;
	store *st = t->st;
	uint8_t a[16], b[16], c[16];
	Tern__QueueEntry *e = NULL, **list = NULL;
	store_sync_result r;
	index_scan s;
	size_t n;

	enqueue(st, "body a", 300, 3, a);
	enqueue(st, "body b", 100, 1, b);
	enqueue(st, "body c", 200, 2, c);

	uint8_t want1[2][16];
	memcpy(want1[0], b, 16);
	memcpy(want1[1], c, 16);
	assert_due(st, 250, 0, want1, 2);
	assert_due(st, 1000, 1, want1, 1);
	assert_due(st, 99, 0, NULL, 0);
	assert_due(st, -1, 0, NULL, 0);

	/* Oldest first. */
	assert_int_equal(store_queue_list(st, &list, &n), STORE_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(list[0]->id.data, b, 16);
	assert_memory_equal(list[1]->id.data, c, 16);
	assert_memory_equal(list[2]->id.data, a, 16);
	store_free_list((void **)list, n);

	/* b tried once: next try at 500, its recipient state changed. */
	assert_int_equal(store_queue_get(st, b, &e), STORE_OK);
	e->next_try = 500;
	e->attempts = 1;
	e->rcpts[0]->attempts = 1;
	e->rcpts[0]->last_reply = (char *)"451 4.3.0 try later";
	uint8_t bogus[32] = { 1 };
	uint8_t *real = e->blob.data;
	e->blob.data = bogus;    /* the store keeps the entry's own body */
	assert_int_equal(store_queue_update(st, e, STORE_SYNC, &r), STORE_OK);
	e->blob.data = real;
	e->rcpts[0]->last_reply = NULL;
	store_free_record(e);

	uint8_t want2[1][16];
	memcpy(want2[0], c, 16);
	assert_due(st, 250, 0, want2, 1);
	uint8_t want3[3][16];
	memcpy(want3[0], c, 16);
	memcpy(want3[1], a, 16);
	memcpy(want3[2], b, 16);
	assert_due(st, 600, 0, want3, 3);

	assert_int_equal(store_queue_get(st, b, &e), STORE_OK);
	assert_int_equal(e->attempts, 1);
	assert_int_equal(e->next_try, 500);
	assert_string_equal(e->rcpts[0]->last_reply, "451 4.3.0 try later");
	assert_int_equal(e->created, 1);
	tbuf body = TBUF_INIT;
	assert_int_equal(store_blob_read(st, e->blob.data, 0, 0, &body), STORE_OK);
	assert_int_equal(body.len, 6);
	assert_memory_equal(body.data, "body b", 6);
	tbuf_free(&body);
	store_free_record(e);

	scan_index(st, &s);
	assert_int_equal(s.n, 3);
	assert_indexed_once(&s, a, 300);
	assert_indexed_once(&s, b, 500);
	assert_indexed_once(&s, c, 200);

	/* Unknown entries. */
	uint8_t none[16];

	tern_uuid_new(none);
	assert_int_equal(store_queue_get(st, none, &e), STORE_ENOTFOUND);
	assert_int_equal(store_queue_remove(st, none, STORE_SYNC, &r), STORE_ENOTFOUND);
	Tern__QueueEntry ghost = TERN__QUEUE_ENTRY__INIT;
	ghost.id.data = none;
	ghost.id.len = 16;
	assert_int_equal(store_queue_update(st, &ghost, STORE_SYNC, &r), STORE_ENOTFOUND);
	ghost.id.len = 3;
	assert_int_equal(store_queue_update(st, &ghost, STORE_SYNC, &r), STORE_EINVAL);
}

static int count_row(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	(void)k;
	(void)kn;
	(void)v;
	(void)vn;
	(*(int *)arg)++;
	return 0;
}

static void test_remove_and_sweep(void **state)
{
	test_store *t = *state;
	uint8_t a[16], b[16], sha_a[32], sha_b[32];
	Tern__QueueEntry *e = NULL;
	store_sync_result r;
	store_options o;
	char *err = NULL;
	tbuf body = TBUF_INIT;
	index_scan s;
	int refs;

	/* a has its own body; b shares its body with a local message. */
	Tern__Domain d = TERN__DOMAIN__INIT;
	Tern__User u = TERN__USER__INIT;
	uint8_t bob[16];

	d.name = (char *)"example.test";
	assert_int_equal(store_domain_add(t->st, &d, STORE_SYNC, &r), STORE_OK);
	u.name = (char *)"bob";
	u.domain = (char *)"example.test";
	assert_int_equal(store_user_add(t->st, &u, STORE_SYNC, &r), STORE_OK);
	memcpy(bob, r.res.id, 16);
	enqueue(t->st, "only queued", 10, 0, a);
	store_append la = { 0 };
	Tern__QueueEntry qe = TERN__QUEUE_ENTRY__INIT;

	la.user = bob;
	la.body = "shared";
	la.body_len = 6;
	qe.sender = (char *)"";
	assert_int_equal(store_submit(t->st, &la, 1, &qe, "shared", 6, STORE_SYNC, &r), STORE_OK);
	memcpy(b, r.res.id, 16);

	assert_int_equal(store_queue_get(t->st, a, &e), STORE_OK);
	memcpy(sha_a, e->blob.data, 32);
	store_free_record(e);
	assert_int_equal(store_queue_get(t->st, b, &e), STORE_OK);
	memcpy(sha_b, e->blob.data, 32);
	store_free_record(e);

	assert_int_equal(store_queue_remove(t->st, a, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_queue_remove(t->st, b, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_queue_remove(t->st, a, STORE_SYNC, &r), STORE_ENOTFOUND);
	assert_int_equal(store_queue_get(t->st, a, &e), STORE_ENOTFOUND);
	scan_index(t->st, &s);
	assert_int_equal(s.n, 0);
	refs = 0;
	assert_int_equal(store_db_scan(t->st, CF_BLOBREF, sha_a, 32, NULL, 0, count_row, &refs), 0);
	assert_int_equal(refs, 0);
	refs = 0;
	assert_int_equal(store_db_scan(t->st, CF_BLOBREF, sha_b, 32, NULL, 0, count_row, &refs), 0);
	assert_int_equal(refs, 1);     /* bob's message */

	/* Within the grace period nothing goes; with none, a's blob goes and b's stays. */
	assert_int_equal(store_sweep(t->st), 0);
	store_close(&t->st);
	ts_options(t, &o);
	o.blob_grace = 0;
	assert_int_equal(store_open(&o, &t->st, &err), 0);
	assert_int_equal(store_sweep(t->st), 1);
	assert_int_equal(store_blob_read(t->st, sha_a, 0, 0, &body), STORE_ENOTFOUND);
	assert_int_equal(store_blob_read(t->st, sha_b, 0, 0, &body), STORE_OK);
	assert_int_equal(body.len, 6);
	tbuf_free(&body);
}

static void test_restart(void **state)
{
	test_store *t = *state;
	uint8_t a[16], b[16];
	tbuf body = TBUF_INIT;

	enqueue(t->st, "persistent a", 50, 0, a);
	enqueue(t->st, "persistent b", 40, 0, b);
	store_close(&t->st);
	assert_int_equal(ts_open(t), 0);

	uint8_t want[2][16];
	memcpy(want[0], b, 16);
	memcpy(want[1], a, 16);
	assert_due(t->st, 60, 0, want, 2);

	Tern__QueueEntry *e = NULL;

	assert_int_equal(store_queue_get(t->st, a, &e), STORE_OK);
	assert_string_equal(e->rcpts[0]->address, "rcpt@remote.test");
	assert_int_equal(store_blob_read(t->st, e->blob.data, 0, 0, &body), STORE_OK);
	assert_int_equal(body.len, strlen("persistent a"));
	assert_memory_equal(body.data, "persistent a", body.len);
	tbuf_free(&body);
	store_free_record(e);
}

#define NTHREADS 4
#define PER_THREAD 8
#define ROUNDS 5

typedef struct worker {
	store *st;
	uint8_t ids[PER_THREAD][16];
	int base;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int done, failed;
} worker;

static void on_update(const store_result *res, void *arg)
{
	worker *w = arg;

	pthread_mutex_lock(&w->mu);
	if (res->rc != STORE_OK)
		w->failed++;
	w->done++;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
}

/* Round after round of asynchronous updates of this thread's entries: several batches
 * of one entry are in flight at once. */
static void *update_main(void *arg)
{
	worker *w = arg;

	for (int round = 1; round <= ROUNDS; round++) {
		for (int i = 0; i < PER_THREAD; i++) {
			Tern__QueueEntry *e = NULL;

			assert_int_equal(store_queue_get(w->st, w->ids[i], &e), STORE_OK);
			e->next_try = (uint64_t)(1000 * round + w->base + i);
			e->attempts = (uint32_t)round;
			assert_int_equal(store_queue_update(w->st, e, (store_cb){ on_update, w, NULL }, NULL),
					 STORE_OK);
			store_free_record(e);
		}
	}
	pthread_mutex_lock(&w->mu);
	while (w->done < ROUNDS * PER_THREAD)
		pthread_cond_wait(&w->cond, &w->mu);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void test_concurrent_updates(void **state)
{
	test_store *t = *state;
	worker w[NTHREADS];
	pthread_t thr[NTHREADS];
	index_scan s;

	for (int k = 0; k < NTHREADS; k++) {
		memset(&w[k], 0, sizeof(w[k]));
		w[k].st = t->st;
		w[k].base = 10 * k;
		pthread_mutex_init(&w[k].mu, NULL);
		pthread_cond_init(&w[k].cond, NULL);
		for (int i = 0; i < PER_THREAD; i++) {
			char body[32];

			snprintf(body, sizeof(body), "concurrent %d %d", k, i);
			enqueue(t->st, body, 1, 0, w[k].ids[i]);
		}
	}
	for (int k = 0; k < NTHREADS; k++)
		assert_int_equal(pthread_create(&thr[k], NULL, update_main, &w[k]), 0);
	for (int k = 0; k < NTHREADS; k++)
		pthread_join(thr[k], NULL);
	scan_index(t->st, &s);
	assert_int_equal(s.n, NTHREADS * PER_THREAD);
	for (int k = 0; k < NTHREADS; k++) {
		assert_int_equal(w[k].failed, 0);
		for (int i = 0; i < PER_THREAD; i++) {
			Tern__QueueEntry *e = NULL;
			uint64_t want = (uint64_t)(1000 * ROUNDS + w[k].base + i);

			assert_indexed_once(&s, w[k].ids[i], want);
			assert_int_equal(store_queue_get(t->st, w[k].ids[i], &e), STORE_OK);
			assert_int_equal(e->next_try, want);
			assert_int_equal(e->attempts, ROUNDS);
			store_free_record(e);
		}
		pthread_mutex_destroy(&w[k].mu);
		pthread_cond_destroy(&w[k].cond);
	}
}

static void ignore(const store_result *res, void *arg)
{
	int *rcs = arg;

	rcs[rcs[0] + 1] = res->rc;
	rcs[0]++;
}

/* A failed update followed by a successful one leaves a stale index row: due() does not
 * return the entry twice, and the row is deleted. */
static void test_stale_index_purged(void **state)
{
	test_store *t = *state;
	uint8_t a[16];
	Tern__QueueEntry *e = NULL;
	store_sync_result r;
	index_scan s;
	int rcs[3] = { 0 };

	enqueue(t->st, "stale", 10, 0, a);
	assert_int_equal(store_queue_get(t->st, a, &e), STORE_OK);

	store_test_hold_commits(t->st, 1);
	store_test_fail_writes(t->st, 1);
	e->next_try = 20;
	assert_int_equal(store_queue_update(t->st, e, (store_cb){ ignore, rcs, NULL }, NULL), STORE_OK);
	/* Let the commit thread take the first batch as a group of its own. */
	for (;;) {
		pthread_mutex_lock(&t->st->cmu);
		int taken = t->st->qhead == NULL;

		pthread_mutex_unlock(&t->st->cmu);
		if (taken)
			break;
		usleep(1000);
	}
	e->next_try = 30;
	assert_int_equal(store_queue_update(t->st, e, (store_cb){ ignore, rcs, NULL }, NULL), STORE_OK);
	store_test_hold_commits(t->st, 0);
	store_free_record(e);
	/* A blocking write queued after both: when it is done, they are. */
	assert_int_equal(store_setting_put(t->st, "test", "1", STORE_SYNC, &r), STORE_OK);
	assert_int_equal(rcs[0], 2);
	assert_int_equal(rcs[1], STORE_EIO);
	assert_int_equal(rcs[2], STORE_OK);

	scan_index(t->st, &s);
	assert_int_equal(s.n, 2);     /* 10 (stale) and 30 */

	uint8_t want[1][16];
	memcpy(want[0], a, 16);
	assert_due(t->st, 100, 0, want, 1);
	assert_int_equal(store_setting_put(t->st, "test", "2", STORE_SYNC, &r), STORE_OK);
	scan_index(t->st, &s);
	assert_int_equal(s.n, 1);
	assert_indexed_once(&s, a, 30);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_due_update_list, ts_setup, ts_teardown),
		cmocka_unit_test_setup_teardown(test_remove_and_sweep, ts_setup, ts_teardown),
		cmocka_unit_test_setup_teardown(test_restart, ts_setup, ts_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_updates, ts_setup, ts_teardown),
		cmocka_unit_test_setup_teardown(test_stale_index_purged, ts_setup, ts_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
