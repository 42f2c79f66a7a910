/* store_submit(): local deliveries and a queue entry in one batch, bodies stored once per
 * content, per-recipient quota codes, the quota warning time, disk refusal, queue
 * watchers. */
#include "store_test_util.h"
#include "store_private.h"
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

typedef ts_fixture fixture;

static int count_chunk0(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	uint8_t sha[32];
	uint32_t chunk;

	(void)v;
	(void)vn;
	if (sk_blob_parse(k, kn, sha, &chunk) == 0 && chunk == 0)
		(*(int *)arg)++;
	return 0;
}

/* Distinct blobs stored. */
static int count_blobs(store *st)
{
	int n = 0;

	assert_int_equal(store_db_scan(st, CF_BLOB, "", 0, NULL, 0, count_chunk0, &n), 0);
	return n;
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

static int count_blobrefs(store *st, const uint8_t sha[32])
{
	int n = 0;

	assert_int_equal(store_db_scan(st, CF_BLOBREF, sha, 32, NULL, 0, count_row, &n), 0);
	return n;
}

static void local(store_append *a, const uint8_t *user, const char *prefix, const char *body)
{
	memset(a, 0, sizeof(*a));
	a->user = user;
	a->header_prefix = prefix;
	a->header_prefix_len = strlen(prefix);
	a->body = body;
	a->body_len = strlen(body);
	a->enforce_quota = 1;
}

/* A queue entry for one remote recipient (rcpt storage lives in the caller). */
static void entry(Tern__QueueEntry *e, Tern__QueueRcpt *r, Tern__QueueRcpt **rp, const char *to)
{
	tern__queue_entry__init(e);
	tern__queue_rcpt__init(r);
	r->address = (char *)to;
	r->notify = 2;
	*rp = r;
	e->sender = (char *)"ann@example.test";
	e->rcpts = rp;
	e->n_rcpts = 1;
	e->helo = (char *)"client.test";
	e->header_prefix.data = (uint8_t *)"Received: from x\r\n";
	e->header_prefix.len = strlen("Received: from x\r\n");
}

static void inbox_of(store *st, const uint8_t user[16], uint8_t id[16])
{
	Tern__Folder *fo = NULL;

	assert_int_equal(store_folder_find(st, user, "INBOX", &fo), STORE_OK);
	memcpy(id, fo->id.data, 16);
	store_free_record(fo);
}

/* The message of uid in user's INBOX reads back as prefix (meta) + body (blob). */
static void assert_message(store *st, const uint8_t user[16], uint32_t uid, const char *prefix,
			   const char *body, uint8_t sha_r[32])
{
	uint8_t inbox[16];
	Tern__MessageMeta *m = NULL;
	tbuf b = TBUF_INIT;

	inbox_of(st, user, inbox);
	assert_int_equal(store_msg_get(st, user, inbox, uid, &m), STORE_OK);
	assert_int_equal(m->header_prefix.len, strlen(prefix));
	assert_memory_equal(m->header_prefix.data, prefix, strlen(prefix));
	assert_int_equal(m->size, strlen(prefix) + strlen(body));
	assert_int_equal(store_blob_read(st, m->blob.data, 0, 0, &b), STORE_OK);
	assert_int_equal(b.len, strlen(body));
	assert_memory_equal(b.data, body, b.len);
	if (sha_r)
		memcpy(sha_r, m->blob.data, 32);
	tbuf_free(&b);
	store_free_record(m);
}

static void test_submit_local_and_queue(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	const char *body = "Subject: hi\r\n\r\nhello world\r\n";
	store_append a[2];
	Tern__QueueEntry e, *got = NULL;
	Tern__QueueRcpt qr, *qrp;
	store_sync_result r;
	uint8_t sha[32], sha2[32], zero[16] = { 0 };
	tbuf b = TBUF_INIT;

	local(&a[0], f->bob, "Return-Path: <ann@example.test>\r\nDelivered-To: bob\r\n", body);
	local(&a[1], f->ann, "Return-Path: <ann@example.test>\r\nDelivered-To: ann\r\n", body);
	entry(&e, &qr, &qrp, "rcpt@remote.test");
	assert_int_equal(store_submit(st, a, 2, &e, body, strlen(body), STORE_SYNC, &r), STORE_OK);
	assert_int_equal(r.res.rcpt_rc[0], STORE_OK);
	assert_int_equal(r.res.rcpt_rc[1], STORE_OK);
	assert_int_equal(r.res.uid, 1);
	assert_memory_not_equal(r.res.id, zero, 16);

	assert_message(st, f->bob, 1, a[0].header_prefix, body, sha);
	assert_message(st, f->ann, 1, a[1].header_prefix, body, sha2);
	assert_memory_equal(sha, sha2, 32);

	assert_int_equal(store_queue_get(st, r.res.id, &got), STORE_OK);
	assert_string_equal(got->sender, "ann@example.test");
	assert_int_equal(got->n_rcpts, 1);
	assert_string_equal(got->rcpts[0]->address, "rcpt@remote.test");
	assert_int_equal(got->rcpts[0]->notify, 2);
	assert_int_equal(got->blob.len, 32);
	assert_memory_equal(got->blob.data, sha, 32);
	assert_int_equal(got->size, e.header_prefix.len + strlen(body));
	assert_true(got->created > 0);
	assert_int_equal(got->next_try, got->created);
	assert_int_equal(store_blob_read(st, got->blob.data, 0, 0, &b), STORE_OK);
	assert_int_equal(b.len, strlen(body));
	assert_memory_equal(b.data, body, b.len);
	store_free_record(got);
	tbuf_free(&b);

	/* One blob for the shared body, referenced by both messages and the queue entry. */
	assert_int_equal(count_blobs(st), 1);
	assert_int_equal(count_blobrefs(st, sha), 3);

	/* The same content at another address is still one blob. */
	char *copy = strdup(body);

	local(&a[0], f->bob, "X: 1\r\n", body);
	local(&a[1], f->ann, "X: 2\r\n", copy);
	assert_int_equal(store_submit(st, a, 2, NULL, NULL, 0, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(r.res.uid, 2);
	free(copy);
	assert_int_equal(count_blobs(st), 1);
	assert_int_equal(count_blobrefs(st, sha), 5);

	/* Nothing to do is refused. */
	assert_int_equal(store_submit(st, NULL, 0, NULL, NULL, 0, STORE_SYNC, &r), STORE_EINVAL);
}

static void test_submit_quota(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	char big[200];
	store_append a[2];
	Tern__QueueEntry e, *got = NULL;
	Tern__QueueRcpt qr, *qrp;
	Tern__Mailbox *mb = NULL;
	store_sync_result r;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	local(&a[0], f->eve, "X: eve\r\n", big);
	local(&a[1], f->bob, "X: bob\r\n", big);
	entry(&e, &qr, &qrp, "far@remote.test");
	assert_int_equal(store_submit(st, a, 2, &e, big, strlen(big), STORE_SYNC, &r), STORE_OK);
	assert_int_equal(r.res.rcpt_rc[0], STORE_EQUOTA);
	assert_int_equal(r.res.rcpt_rc[1], STORE_OK);
	assert_int_equal(store_queue_get(st, r.res.id, &got), STORE_OK);
	store_free_record(got);
	assert_message(st, f->bob, 1, "X: bob\r\n", big, NULL);
	assert_int_equal(store_mailbox_get(st, f->eve, &mb), STORE_OK);
	assert_int_equal(mb->items, 0);
	store_free_record(mb);

	/* Only the over-quota recipient, but a queue entry: still stored. */
	entry(&e, &qr, &qrp, "far2@remote.test");
	assert_int_equal(store_submit(st, a, 1, &e, big, strlen(big), STORE_SYNC, &r), STORE_OK);
	assert_int_equal(r.res.rcpt_rc[0], STORE_EQUOTA);
	assert_int_equal(store_queue_get(st, r.res.id, &got), STORE_OK);
	store_free_record(got);

	/* Nothing stored at all: the recipient's code. */
	assert_int_equal(store_submit(st, a, 1, NULL, NULL, 0, STORE_SYNC, &r), STORE_EQUOTA);
	assert_int_equal(r.res.rcpt_rc[0], STORE_EQUOTA);

	/* A queue id given twice is refused. */
	uint8_t id[16];

	tern_uuid_new(id);
	entry(&e, &qr, &qrp, "x@remote.test");
	e.id.data = id;
	e.id.len = 16;
	assert_int_equal(store_submit(st, NULL, 0, &e, "b", 1, STORE_SYNC, &r), STORE_OK);
	assert_memory_equal(r.res.id, id, 16);
	assert_int_equal(store_submit(st, NULL, 0, &e, "b", 1, STORE_SYNC, &r), STORE_EEXISTS);
}

static void test_submit_footer_bodies(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	const char *plain = "Subject: s\r\n\r\nbody\r\n";
	const char *footer = "Subject: s\r\n\r\nbody\r\n-- \r\nExample Inc.\r\n";
	store_append a[2];
	Tern__QueueEntry e, *got = NULL;
	Tern__QueueRcpt qr, *qrp;
	store_sync_result r;
	uint8_t s1[32], s2[32];

	local(&a[0], f->bob, "X: bob\r\n", plain);
	local(&a[1], f->ann, "X: ann\r\n", footer);
	entry(&e, &qr, &qrp, "out@remote.test");
	assert_int_equal(store_submit(st, a, 2, &e, footer, strlen(footer), STORE_SYNC, &r), STORE_OK);
	assert_int_equal(count_blobs(st), 2);
	assert_message(st, f->bob, 1, "X: bob\r\n", plain, s1);
	assert_message(st, f->ann, 1, "X: ann\r\n", footer, s2);
	assert_memory_not_equal(s1, s2, 32);
	assert_int_equal(store_queue_get(st, r.res.id, &got), STORE_OK);
	assert_memory_equal(got->blob.data, s2, 32);
	store_free_record(got);
	assert_int_equal(count_blobrefs(st, s1), 1);
	assert_int_equal(count_blobrefs(st, s2), 2);
}

static void test_quota_warned_at(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	store_append a[2];
	Tern__Mailbox *mb = NULL;
	store_sync_result r;

	local(&a[0], f->bob, "X: 1\r\n", "m1");
	a[0].quota_warned_at = 1700000000;
	assert_int_equal(store_msg_append(st, &a[0], STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_mailbox_get(st, f->bob, &mb), STORE_OK);
	assert_int_equal(mb->quota_warned_at, 1700000000);
	assert_int_equal(mb->items, 1);
	store_free_record(mb);

	/* In a submission: only the recipient that carries it; 0 leaves it alone. */
	local(&a[0], f->bob, "X: 1\r\n", "m2");
	local(&a[1], f->ann, "X: 2\r\n", "m2");
	a[1].quota_warned_at = 1700000500;
	assert_int_equal(store_submit(st, a, 2, NULL, NULL, 0, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_mailbox_get(st, f->bob, &mb), STORE_OK);
	assert_int_equal(mb->quota_warned_at, 1700000000);
	store_free_record(mb);
	assert_int_equal(store_mailbox_get(st, f->ann, &mb), STORE_OK);
	assert_int_equal(mb->quota_warned_at, 1700000500);
	store_free_record(mb);

	/* Survives a restart (it is in the durable mailbox record). */
	store_close(&f->t->st);
	assert_int_equal(ts_open(f->t), 0);
	assert_int_equal(store_mailbox_get(f->t->st, f->ann, &mb), STORE_OK);
	assert_int_equal(mb->quota_warned_at, 1700000500);
	store_free_record(mb);
}

static void test_submit_disk_full(void **state)
{
	fixture *f = *state;
	store_options o;
	char *err = NULL;
	store_append a;
	Tern__QueueEntry e, **list = NULL;
	Tern__QueueRcpt qr, *qrp;
	store_sync_result r;
	size_t n = 9;

	store_close(&f->t->st);
	ts_options(f->t, &o);
	o.disk_hard_limit = UINT64_MAX / 2;
	assert_int_equal(store_open(&o, &f->t->st, &err), 0);
	local(&a, f->bob, "X: 1\r\n", "refused");
	entry(&e, &qr, &qrp, "out@remote.test");
	assert_int_equal(store_submit(f->t->st, &a, 1, &e, "refused", 7, STORE_SYNC, &r), STORE_EDISK);
	assert_int_equal(store_submit(f->t->st, NULL, 0, &e, "refused", 7, STORE_SYNC, &r), STORE_EDISK);
	assert_int_equal(store_queue_list(f->t->st, &list, &n), STORE_OK);
	assert_int_equal(n, 0);
	store_free_list((void **)list, n);
	assert_int_equal(count_blobs(f->t->st), 0);
}

typedef struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int done, rc;
	atomic_int wakes;
} waiter;

static void on_done(const store_result *res, void *arg)
{
	waiter *w = arg;

	pthread_mutex_lock(&w->mu);
	w->rc = res->rc;
	w->done++;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
}

static void on_queue(void *arg)
{
	waiter *w = arg;

	atomic_fetch_add(&w->wakes, 1);
}

static void wait_done(waiter *w, int n)
{
	pthread_mutex_lock(&w->mu);
	while (w->done < n)
		pthread_cond_wait(&w->cond, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

static void test_submit_async_watch(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };
	waiter w2 = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };
	store_append a;
	Tern__QueueEntry e, *got = NULL;
	Tern__QueueRcpt qr, *qrp;
	store_sync_result r;

	store_queue_watch(st, NULL, on_queue, &w);
	store_queue_watch(st, NULL, on_queue, &w2);
	local(&a, f->bob, "X: 1\r\n", "async body");
	entry(&e, &qr, &qrp, "out@remote.test");
	assert_int_equal(store_submit(st, &a, 1, &e, "async body", 10, (store_cb){ on_done, &w, NULL },
				      NULL), STORE_OK);
	wait_done(&w, 1);
	assert_int_equal(w.rc, STORE_OK);
	assert_int_equal(atomic_load(&w.wakes), 1);
	assert_int_equal(atomic_load(&w2.wakes), 1);

	/* Local-only deliveries and queue updates do not wake the queue runner. */
	assert_int_equal(store_submit(st, &a, 1, NULL, NULL, 0, STORE_SYNC, &r), STORE_OK);
	entry(&e, &qr, &qrp, "out@remote.test");
	assert_int_equal(store_submit(st, NULL, 0, &e, "x", 1, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(atomic_load(&w.wakes), 2);
	assert_int_equal(store_queue_get(st, r.res.id, &got), STORE_OK);
	got->attempts = 1;
	assert_int_equal(store_queue_update(st, got, STORE_SYNC, &r), STORE_OK);
	store_free_record(got);
	assert_int_equal(atomic_load(&w.wakes), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_submit_local_and_queue, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_submit_quota, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_submit_footer_bodies, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_quota_warned_at, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_submit_disk_full, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_submit_async_watch, ts_setup_users, ts_teardown_users),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
