/* Mailboxes in the store: folders, appends (UIDs, modseqs, changes), flags, expunge and
 * quota usage, bodies stored once, quota refusal, delivery, watchers, the blob sweeper. */
#include "store_test_util.h"
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

typedef ts_fixture fixture;

static int append(store *st, const uint8_t user[16], const uint8_t *folder, const char *body,
		  int quota, store_sync_result *r)
{
	store_append a = { 0 };

	a.user = user;
	a.folder = folder;
	a.header_prefix = "Return-Path: <a@b.test>\r\n";
	a.header_prefix_len = strlen(a.header_prefix);
	a.body = body;
	a.body_len = strlen(body);
	a.enforce_quota = quota;
	return store_msg_append(st, &a, STORE_SYNC, r);
}

static int count_changes(uint64_t modseq, const Tern__Change *c, void *arg)
{
	uint64_t *v = arg;

	assert_true(modseq > v[1]);
	v[1] = modseq;
	v[0]++;
	return 0;
}

static void test_folder_append_flags_expunge(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	store_sync_result r;
	uint8_t fid[16];
	Tern__Folder *fo = NULL;
	uint64_t last = 0;

	assert_int_equal(store_folder_create(st, f->bob, "Work", NULL, STORE_SYNC, &r), STORE_OK);
	memcpy(fid, r.res.id, 16);
	assert_int_equal(store_folder_create(st, f->bob, "Work", NULL, STORE_SYNC, &r), STORE_EEXISTS);
	for (uint32_t i = 1; i <= 3; i++) {
		char body[64];

		snprintf(body, sizeof(body), "Subject: %u\r\n\r\nbody %u\r\n", i, i);
		assert_int_equal(append(st, f->bob, fid, body, 0, &r), STORE_OK);
		assert_int_equal(r.res.uid, i);
		assert_true(r.res.modseq > last);
		last = r.res.modseq;
	}
	assert_int_equal(store_folder_get(st, f->bob, fid, &fo), STORE_OK);
	assert_int_equal(fo->uidnext, 4);
	assert_int_equal(fo->messages, 3);
	assert_int_equal(fo->unseen, 3);
	assert_true(fo->highestmodseq == last);
	store_free_record(fo);
	uint64_t ch[2] = { 0, 0 };

	assert_int_equal(store_changes_scan(st, f->bob, fid, 0, count_changes, ch), STORE_OK);
	assert_int_equal(ch[0], 3);

	uint32_t uids[] = { 2 };
	const char *kw[] = { "$Important" };
	Tern__MessageMeta *m = NULL;

	assert_int_equal(store_msg_set_flags(st, f->bob, fid, uids, 1, STORE_FLAGS_ADD,
					     TERN__FLAG__FLAG_SEEN | TERN__FLAG__FLAG_FLAGGED, kw, 1, 0,
					     STORE_SYNC, &r), STORE_OK);
	assert_true(r.res.modseq > last);
	assert_int_equal(store_msg_get(st, f->bob, fid, 2, &m), STORE_OK);
	assert_int_equal(m->flags, TERN__FLAG__FLAG_SEEN | TERN__FLAG__FLAG_FLAGGED);
	assert_int_equal(m->n_keywords, 1);
	assert_true(m->header_prefix.len > 0);
	store_free_record(m);
	assert_int_equal(store_msg_set_flags(st, f->bob, fid, uids, 1, STORE_FLAGS_REMOVE,
					     TERN__FLAG__FLAG_FLAGGED, kw, 1, 0, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_msg_get(st, f->bob, fid, 2, &m), STORE_OK);
	assert_int_equal(m->flags, TERN__FLAG__FLAG_SEEN);
	assert_int_equal(m->n_keywords, 0);
	store_free_record(m);
	assert_int_equal(store_msg_set_flags(st, f->bob, fid, uids, 1, STORE_FLAGS_SET,
					     TERN__FLAG__FLAG_DRAFT, NULL, 0, 0, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_msg_get(st, f->bob, fid, 2, &m), STORE_OK);
	assert_int_equal(m->flags, TERN__FLAG__FLAG_DRAFT);
	store_free_record(m);

	Tern__Mailbox *mb = NULL;
	uint64_t before;

	assert_int_equal(store_mailbox_get(st, f->bob, &mb), STORE_OK);
	assert_int_equal(mb->items, 3);
	before = mb->bytes;
	store_free_record(mb);
	uint32_t gone[] = { 1, 3, 99 };

	assert_int_equal(store_msg_expunge(st, f->bob, fid, gone, 3, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_mailbox_get(st, f->bob, &mb), STORE_OK);
	assert_int_equal(mb->items, 1);
	assert_true(mb->bytes < before);
	store_free_record(mb);
	assert_int_equal(store_msg_get(st, f->bob, fid, 1, &m), STORE_ENOTFOUND);
	ch[0] = ch[1] = 0;
	assert_int_equal(store_changes_scan(st, f->bob, fid, last, count_changes, ch), STORE_OK);
	assert_int_equal(ch[0], 5); /* 3 flag changes + 2 expunges */
}

static void test_body_stored_once_and_quota(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	store_sync_result r;
	const char *body = "Subject: shared\r\n\r\nthe same content\r\n";
	Tern__MessageMeta *m1 = NULL, *m2 = NULL;
	Tern__Folder *in1 = NULL, *in2 = NULL;
	tbuf out = TBUF_INIT;

	assert_int_equal(append(st, f->bob, NULL, body, 0, &r), STORE_OK);
	assert_int_equal(append(st, f->ann, NULL, body, 0, &r), STORE_OK);
	assert_int_equal(store_folder_find(st, f->bob, "INBOX", &in1), STORE_OK);
	assert_int_equal(store_folder_find(st, f->ann, "INBOX", &in2), STORE_OK);
	assert_int_equal(store_msg_get(st, f->bob, in1->id.data, 1, &m1), STORE_OK);
	assert_int_equal(store_msg_get(st, f->ann, in2->id.data, 1, &m2), STORE_OK);
	assert_memory_equal(m1->blob.data, m2->blob.data, 32);
	assert_int_equal(store_blob_read(st, m1->blob.data, 0, 0, &out), STORE_OK);
	assert_int_equal(out.len, strlen(body));
	assert_memory_equal(out.data, body, out.len);
	tbuf_reset(&out);
	assert_int_equal(store_blob_read(st, m1->blob.data, 9, 6, &out), STORE_OK);
	assert_string_equal(tbuf_cstr(&out), "shared");
	tbuf_free(&out);
	store_free_record(m1);
	store_free_record(m2);
	store_free_record(in1);
	store_free_record(in2);

	/* eve's quota is 100 bytes */
	assert_int_equal(append(st, f->eve, NULL, "short", 1, &r), STORE_OK);
	char big[200];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(append(st, f->eve, NULL, big, 1, &r), STORE_EQUOTA);
	assert_int_equal(append(st, f->eve, NULL, big, 0, &r), STORE_OK);

	/* one delivery to three recipients, eve over quota */
	store_append a[3];
	const uint8_t *who[3] = { f->bob, f->eve, f->ann };

	for (int i = 0; i < 3; i++) {
		memset(&a[i], 0, sizeof(a[i]));
		a[i].user = who[i];
		a[i].body = "Subject: all\r\n\r\nhello\r\n";
		a[i].body_len = strlen(a[i].body);
		a[i].enforce_quota = 1;
	}
	assert_int_equal(store_deliver(st, a, 3, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(r.res.rcpt_rc[0], STORE_OK);
	assert_int_equal(r.res.rcpt_rc[1], STORE_EQUOTA);
	assert_int_equal(r.res.rcpt_rc[2], STORE_OK);
	Tern__Mailbox *mb = NULL;

	assert_int_equal(store_mailbox_get(st, f->ann, &mb), STORE_OK);
	assert_int_equal(mb->items, 2);
	store_free_record(mb);
}

typedef struct seen {
	pthread_mutex_t mu;
	uint32_t uids[16];
	uint64_t modseqs[16];
	int n;
} seen;

static void on_event(const store_event *ev, void *arg)
{
	seen *s = arg;

	pthread_mutex_lock(&s->mu);
	if (s->n < 16 && ev->kind == TERN__CHANGE__KIND__APPEND) {
		s->uids[s->n] = ev->uid;
		s->modseqs[s->n++] = ev->modseq;
	}
	pthread_mutex_unlock(&s->mu);
}

static void done_cb(const store_result *res, void *arg)
{
	(void)res;
	(void)arg;
}

static void test_watcher_order(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	store_sync_result r;
	seen s = { .n = 0 };
	store_watch *w;

	pthread_mutex_init(&s.mu, NULL);
	w = store_watch_add(st, f->bob, NULL, NULL, on_event, &s);
	assert_non_null(w);
	for (int i = 0; i < 5; i++) {
		store_append a = { 0 };
		char body[32];

		snprintf(body, sizeof(body), "msg %d", i);
		a.user = f->bob;
		a.body = body;
		a.body_len = strlen(body);
		assert_int_equal(store_msg_append(st, &a, (store_cb){ done_cb, NULL, NULL }, NULL), STORE_OK);
	}
	assert_int_equal(append(st, f->bob, NULL, "last", 0, &r), STORE_OK);
	pthread_mutex_lock(&s.mu);
	assert_int_equal(s.n, 6);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(s.uids[i], (uint32_t)i + 1);
		if (i)
			assert_true(s.modseqs[i] > s.modseqs[i - 1]);
	}
	pthread_mutex_unlock(&s.mu);
	store_watch_remove(st, &w);
	assert_null(w);
	assert_int_equal(append(st, f->bob, NULL, "after", 0, &r), STORE_OK);
	assert_int_equal(s.n, 6);
	pthread_mutex_destroy(&s.mu);
}

static void test_sweeper(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	store_sync_result r;
	Tern__Folder *in = NULL;
	Tern__MessageMeta *m = NULL;
	uint8_t sha[32];
	tbuf out = TBUF_INIT;

	assert_int_equal(append(st, f->bob, NULL, "orphan to be", 0, &r), STORE_OK);
	assert_int_equal(append(st, f->ann, NULL, "orphan to be", 0, &r), STORE_OK);
	assert_int_equal(store_folder_find(st, f->bob, "INBOX", &in), STORE_OK);
	assert_int_equal(store_msg_get(st, f->bob, in->id.data, 1, &m), STORE_OK);
	memcpy(sha, m->blob.data, 32);
	store_free_record(m);
	uint32_t one = 1;

	assert_int_equal(store_msg_expunge(st, f->bob, in->id.data, &one, 1, STORE_SYNC, &r), STORE_OK);
	store_free_record(in);
	/* ann still references it */
	assert_int_equal(store_sweep(st), 0);
	assert_int_equal(store_blob_read(st, sha, 0, 0, &out), STORE_OK);
	/* removing ann drops the last reference: swept with grace 0 */
	store_close(&f->t->st);
	store_options o;
	char *err = NULL;

	ts_options(f->t, &o);
	o.blob_grace = 0;
	assert_int_equal(store_open(&o, &f->t->st, &err), 0);
	st = f->t->st;
	assert_int_equal(store_user_remove(st, "example.test", "ann", STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_sweep(st), 1);
	tbuf_reset(&out);
	assert_int_equal(store_blob_read(st, sha, 0, 0, &out), STORE_ENOTFOUND);
	store_stats s;

	store_get_stats(st, &s);
	assert_int_equal(s.blobs_swept, 1);
	tbuf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_folder_append_flags_expunge, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_body_stored_once_and_quota, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_watcher_order, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_sweeper, ts_setup_users, ts_teardown_users),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
