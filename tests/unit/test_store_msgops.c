/* Store operations on stored mail: folder rename with subfolders, copy and move, the
 * change log after flags and expunge, group update, bodies stored once (blob rows) and
 * bodies spanning several chunks. */
#include "store_test_util.h"
#include <rocksdb/c.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

typedef ts_fixture fixture;

static int append_full(store *st, const uint8_t user[16], const uint8_t *folder, const void *body,
		       size_t len, uint32_t flags, int64_t date, store_sync_result *r)
{
	store_append a = { 0 };
	const char *kw[] = { "$Label1" };

	a.user = user;
	a.folder = folder;
	a.body = body;
	a.body_len = len;
	a.flags = flags;
	a.keywords = kw;
	a.nkeywords = 1;
	a.internaldate = date;
	return store_msg_append(st, &a, STORE_SYNC, r);
}

static void create(store *st, const uint8_t user[16], const char *name, uint8_t id[16])
{
	store_sync_result r;

	assert_int_equal(store_folder_create(st, user, name, NULL, STORE_SYNC, &r), STORE_OK);
	memcpy(id, r.res.id, 16);
}

static void assert_folder_name(store *st, const uint8_t user[16], const uint8_t id[16],
			       const char *name)
{
	Tern__Folder *fo = NULL;

	assert_int_equal(store_folder_get(st, user, id, &fo), STORE_OK);
	assert_string_equal(fo->name, name);
	store_free_record(fo);
}

static void test_folder_rename(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	store_sync_result r;
	uint8_t a[16], ax[16], axy[16], ab[16], inbox[16];
	Tern__Folder *fo = NULL;

	create(st, f->bob, "a", a);
	create(st, f->bob, "a/x", ax);
	create(st, f->bob, "a/x/y", axy);
	create(st, f->bob, "ab", ab);
	assert_int_equal(store_folder_rename(st, f->bob, a, "b", STORE_SYNC, &r), STORE_OK);
	assert_folder_name(st, f->bob, a, "b");
	assert_folder_name(st, f->bob, ax, "b/x");
	assert_folder_name(st, f->bob, axy, "b/x/y");
	assert_folder_name(st, f->bob, ab, "ab");
	assert_int_equal(store_folder_find(st, f->bob, "a", &fo), STORE_ENOTFOUND);
	assert_int_equal(store_folder_find(st, f->bob, "b/x/y", &fo), STORE_OK);
	assert_memory_equal(fo->id.data, axy, 16);
	store_free_record(fo);
	/* A subfolder alone, onto a taken name, and INBOX. */
	assert_int_equal(store_folder_rename(st, f->bob, axy, "top", STORE_SYNC, &r), STORE_OK);
	assert_folder_name(st, f->bob, axy, "top");
	assert_folder_name(st, f->bob, ax, "b/x");
	assert_int_equal(store_folder_rename(st, f->bob, ab, "b", STORE_SYNC, &r), STORE_EEXISTS);
	assert_int_equal(store_folder_find(st, f->bob, "INBOX", &fo), STORE_OK);
	memcpy(inbox, fo->id.data, 16);
	store_free_record(fo);
	assert_int_equal(store_folder_rename(st, f->bob, inbox, "Old", STORE_SYNC, &r), STORE_EREFUSED);
	assert_int_equal(store_folder_rename(st, f->bob, a, "INBOX", STORE_SYNC, &r), STORE_EINVAL);
}

static void test_copy_and_move(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	store_sync_result r;
	uint8_t src[16], dst[16];
	Tern__Folder *fs = NULL, *fd = NULL;
	Tern__MessageMeta *m = NULL, *orig = NULL;
	Tern__Mailbox *mb = NULL;
	uint64_t bytes;

	create(st, f->bob, "Src", src);
	create(st, f->bob, "Dst", dst);
	assert_int_equal(append_full(st, f->bob, dst, "already", 7, 0, 0, &r), STORE_OK);
	assert_int_equal(append_full(st, f->bob, src, "first", 5, 0, 1000000001, &r), STORE_OK);
	assert_int_equal(append_full(st, f->bob, src, "second", 6, TERN__FLAG__FLAG_SEEN, 1000000002,
				     &r), STORE_OK);
	assert_int_equal(append_full(st, f->bob, src, "third", 5, TERN__FLAG__FLAG_FLAGGED,
				     1000000003, &r), STORE_OK);
	assert_int_equal(store_mailbox_get(st, f->bob, &mb), STORE_OK);
	assert_int_equal(mb->items, 4);
	bytes = mb->bytes;
	assert_int_equal(bytes, 7 + 5 + 6 + 5);
	store_free_record(mb);

	/* Copy 1 and 2: new UIDs 2 and 3 in Dst, flags, keywords and date kept. */
	uint32_t two[] = { 1, 2, 77 };

	assert_int_equal(store_msg_copy(st, f->bob, src, dst, two, 3, 0, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(r.res.uid, 2);
	assert_int_equal(store_msg_get(st, f->bob, src, 2, &orig), STORE_OK);
	assert_int_equal(store_msg_get(st, f->bob, dst, 3, &m), STORE_OK);
	assert_int_equal(m->flags, TERN__FLAG__FLAG_SEEN);
	assert_int_equal(m->internaldate, 1000000002);
	assert_int_equal(m->n_keywords, 1);
	assert_string_equal(m->keywords[0], "$Label1");
	assert_int_equal(m->size, 6);
	assert_memory_equal(m->blob.data, orig->blob.data, 32);
	store_free_record(m);
	store_free_record(orig);
	assert_int_equal(store_mailbox_get(st, f->bob, &mb), STORE_OK);
	assert_int_equal(mb->items, 6);
	assert_int_equal(mb->bytes, bytes + 5 + 6);
	store_free_record(mb);

	/* Move 3: UID 4 in Dst, gone from Src, usage unchanged. */
	uint32_t three = 3;

	assert_int_equal(store_msg_copy(st, f->bob, src, dst, &three, 1, 1, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(r.res.uid, 4);
	assert_int_equal(store_msg_get(st, f->bob, src, 3, &m), STORE_ENOTFOUND);
	assert_int_equal(store_msg_get(st, f->bob, dst, 4, &m), STORE_OK);
	assert_int_equal(m->flags, TERN__FLAG__FLAG_FLAGGED);
	assert_int_equal(m->internaldate, 1000000003);
	store_free_record(m);
	assert_int_equal(store_mailbox_get(st, f->bob, &mb), STORE_OK);
	assert_int_equal(mb->items, 6);
	assert_int_equal(mb->bytes, bytes + 5 + 6);
	store_free_record(mb);
	assert_int_equal(store_folder_get(st, f->bob, src, &fs), STORE_OK);
	assert_int_equal(store_folder_get(st, f->bob, dst, &fd), STORE_OK);
	assert_int_equal(fs->messages, 2);
	assert_int_equal(fs->unseen, 1);
	assert_int_equal(fs->bytes, 5 + 6);
	assert_int_equal(fd->messages, 4);
	assert_int_equal(fd->unseen, 3);
	assert_int_equal(fd->uidnext, 5);
	assert_int_equal(fd->bytes, 7 + 5 + 6 + 5);
	store_free_record(fs);
	store_free_record(fd);
	/* Copy into the same folder: a new UID, the original kept. */
	uint32_t one = 1;

	assert_int_equal(store_msg_copy(st, f->bob, src, src, &one, 1, 0, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(r.res.uid, 4);
	assert_int_equal(store_msg_get(st, f->bob, src, 1, &m), STORE_OK);
	store_free_record(m);
	assert_int_equal(store_msg_get(st, f->bob, src, 4, &m), STORE_OK);
	assert_int_equal(m->size, 5);
	store_free_record(m);
	assert_int_equal(store_folder_get(st, f->bob, src, &fs), STORE_OK);
	assert_int_equal(fs->messages, 3);
	assert_int_equal(fs->uidnext, 5);
	store_free_record(fs);
}

/* STORE_COPY_QUOTA refuses a copy past the quota atomically; a move is not counted. */
static void test_copy_quota(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	store_sync_result r;
	uint8_t a[16], b[16];
	Tern__Mailbox *mb = NULL;
	Tern__Folder *fo = NULL;
	char body[40];
	uint32_t uids[] = { 1, 2 };

	memset(body, 'x', sizeof(body));
	create(st, f->eve, "A", a);
	create(st, f->eve, "B", b);
	assert_int_equal(append_full(st, f->eve, a, body, 40, 0, 0, &r), STORE_OK);
	assert_int_equal(append_full(st, f->eve, a, body, 40, 0, 0, &r), STORE_OK);
	/* 80 + 80 > 100: nothing copied */
	assert_int_equal(store_msg_copy(st, f->eve, a, b, uids, 2, STORE_COPY_QUOTA, STORE_SYNC, &r),
			 STORE_EQUOTA);
	assert_int_equal(store_folder_get(st, f->eve, b, &fo), STORE_OK);
	assert_int_equal(fo->messages, 0);
	store_free_record(fo);
	assert_int_equal(store_mailbox_get(st, f->eve, &mb), STORE_OK);
	assert_int_equal(mb->bytes, 80);
	assert_int_equal(mb->items, 2);
	store_free_record(mb);
	/* without the flag (delivery-style internal copy) the quota is not checked */
	assert_int_equal(store_msg_copy(st, f->eve, a, b, uids, 1, 0, STORE_SYNC, &r), STORE_OK);
	/* a move does not change the usage: allowed at 120 of 100 */
	assert_int_equal(store_msg_copy(st, f->eve, a, b, uids + 1, 1, STORE_COPY_MOVE | STORE_COPY_QUOTA,
					STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_mailbox_get(st, f->eve, &mb), STORE_OK);
	assert_int_equal(mb->bytes, 120);
	assert_int_equal(mb->items, 3);
	store_free_record(mb);
}

/* Folder.subscribed follows store_folder_subscribe; new folders start subscribed. */
static void test_folder_subscribe(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	store_sync_result r;
	uint8_t a[16], none[16] = { 0 };
	Tern__Folder *fo = NULL;

	create(st, f->bob, "Sub", a);
	assert_int_equal(store_folder_get(st, f->bob, a, &fo), STORE_OK);
	assert_true(fo->subscribed);
	store_free_record(fo);
	assert_int_equal(store_folder_subscribe(st, f->bob, a, 0, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_folder_get(st, f->bob, a, &fo), STORE_OK);
	assert_false(fo->subscribed);
	assert_string_equal(fo->name, "Sub");
	store_free_record(fo);
	assert_int_equal(store_folder_subscribe(st, f->bob, a, 1, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_folder_find(st, f->bob, "Sub", &fo), STORE_OK);
	assert_true(fo->subscribed);
	store_free_record(fo);
	assert_int_equal(store_folder_subscribe(st, f->bob, none, 1, STORE_SYNC, &r), STORE_ENOTFOUND);
}

typedef struct change_log {
	uint64_t modseq[8];
	Tern__Change__Kind kind[8];
	uint32_t uid[8], flags[8];
	int n;
} change_log;

static int log_change(uint64_t modseq, const Tern__Change *c, void *arg)
{
	change_log *l = arg;

	if (l->n < 8) {
		l->modseq[l->n] = modseq;
		l->kind[l->n] = c->kind;
		l->uid[l->n] = c->uid;
		l->flags[l->n++] = c->flags;
	}
	return 0;
}

static void test_changes_after_flags_and_expunge(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	store_sync_result r;
	uint8_t box[16];
	uint64_t after_appends, after_flags;
	change_log l = { .n = 0 };

	create(st, f->ann, "Box", box);
	assert_int_equal(append_full(st, f->ann, box, "m1", 2, 0, 0, &r), STORE_OK);
	assert_int_equal(append_full(st, f->ann, box, "m2", 2, 0, 0, &r), STORE_OK);
	after_appends = r.res.modseq;
	assert_int_equal(store_changes_scan(st, f->ann, box, after_appends, log_change, &l), STORE_OK);
	assert_int_equal(l.n, 0);

	uint32_t one = 1, two = 2;

	assert_int_equal(store_msg_set_flags(st, f->ann, box, &one, 1, STORE_FLAGS_ADD,
					     TERN__FLAG__FLAG_ANSWERED, NULL, 0, 0, STORE_SYNC, &r),
			 STORE_OK);
	after_flags = r.res.modseq;
	assert_true(after_flags > after_appends);
	/* CONDSTORE: unchanged since an older modseq leaves the message alone. */
	assert_int_equal(store_msg_set_flags(st, f->ann, box, &one, 1, STORE_FLAGS_ADD,
					     TERN__FLAG__FLAG_DELETED, NULL, 0, after_appends,
					     STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_msg_expunge(st, f->ann, box, &two, 1, STORE_SYNC, &r), STORE_OK);
	assert_true(r.res.modseq > after_flags);

	assert_int_equal(store_changes_scan(st, f->ann, box, after_appends, log_change, &l), STORE_OK);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.kind[0], TERN__CHANGE__KIND__FLAGS);
	assert_int_equal(l.uid[0], 1);
	assert_int_equal(l.flags[0], TERN__FLAG__FLAG_ANSWERED);
	assert_true(l.modseq[0] == after_flags);
	assert_int_equal(l.kind[1], TERN__CHANGE__KIND__EXPUNGE);
	assert_int_equal(l.uid[1], 2);
	assert_true(l.modseq[1] == r.res.modseq);

	l.n = 0;
	assert_int_equal(store_changes_scan(st, f->ann, box, 0, log_change, &l), STORE_OK);
	assert_int_equal(l.n, 4);
	assert_int_equal(l.kind[0], TERN__CHANGE__KIND__APPEND);
	assert_int_equal(l.kind[1], TERN__CHANGE__KIND__APPEND);
	l.n = 0;
	assert_int_equal(store_changes_scan(st, f->ann, box, after_flags, log_change, &l), STORE_OK);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.kind[0], TERN__CHANGE__KIND__EXPUNGE);
}

static void test_group_update(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	store_sync_result r;
	Tern__Group g = TERN__GROUP__INIT, *got = NULL;
	char *a1[] = { (char *)"sales" }, *a2[] = { (char *)"team", (char *)"crew" };
	char *members[] = { (char *)"bob@example.test" };

	g.name = (char *)"Sales";
	g.domain = (char *)"example.test";
	g.addresses = a1;
	g.n_addresses = 1;
	assert_int_equal(store_group_add(st, &g, STORE_SYNC, &r), STORE_OK);

	g.name = (char *)"SALES";
	g.addresses = a2;
	g.n_addresses = 2;
	g.members = members;
	g.n_members = 1;
	g.description = (char *)"the sales team";
	assert_int_equal(store_group_update(st, &g, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_group_get(st, "example.test", "sales", &got), STORE_OK);
	assert_string_equal(got->name, "Sales");
	assert_string_equal(got->description, "the sales team");
	assert_int_equal(got->n_members, 1);
	assert_string_equal(got->members[0], "bob@example.test");
	store_free_record(got);
	assert_int_equal(store_group_find(st, "crew@example.test", &got), STORE_OK);
	assert_string_equal(got->name, "Sales");
	store_free_record(got);
	assert_int_equal(store_group_find(st, "sales@example.test", &got), STORE_ENOTFOUND);

	/* Taking a user's address, a bad member, an unknown group: nothing changes. */
	char *taken[] = { (char *)"bob" };

	g.addresses = taken;
	g.n_addresses = 1;
	assert_int_equal(store_group_update(st, &g, STORE_SYNC, &r), STORE_EEXISTS);
	g.addresses = a2;
	g.n_addresses = 2;
	members[0] = (char *)"not an address";
	assert_int_equal(store_group_update(st, &g, STORE_SYNC, &r), STORE_EINVAL);
	assert_int_equal(store_group_find(st, "team@example.test", &got), STORE_OK);
	assert_int_equal(got->n_members, 1);
	assert_string_equal(got->members[0], "bob@example.test");
	store_free_record(got);
	g.name = (char *)"nobody";
	assert_int_equal(store_group_update(st, &g, STORE_SYNC, &r), STORE_ENOTFOUND);
}

/* Count the rows of one column family, reopening the database with RocksDB directly. */
static size_t count_rows(const char *path, const char *cf_name)
{
	const char *names[] = { "default", "config", "folder", "msg", "changes", "blob", "blobref",
				"queue", "dav", "changelog" };
	enum { NCF = sizeof(names) / sizeof(names[0]) };
	const rocksdb_options_t *opts[NCF];
	rocksdb_column_family_handle_t *cf[NCF];
	rocksdb_options_t *o = rocksdb_options_create();
	char *err = NULL;
	size_t n = 0;
	int want = -1;

	for (int i = 0; i < NCF; i++) {
		opts[i] = o;
		if (strcmp(names[i], cf_name) == 0)
			want = i;
	}
	assert_true(want >= 0);
	rocksdb_t *db = rocksdb_open_for_read_only_column_families(o, path, NCF, names, opts, cf, 0,
								   &err);
	assert_null(err);
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db, ro, cf[want]);

	for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it))
		n++;
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	for (int i = 0; i < NCF; i++)
		rocksdb_column_family_handle_destroy(cf[i]);
	rocksdb_close(db);
	rocksdb_options_destroy(o);
	return n;
}

static void test_large_body_stored_once(void **state)
{
	fixture *f = *state;
	store *st = f->t->st;
	store_sync_result r;
	size_t len = 600 * 1024;       /* chunks of 256 + 256 + 88 KiB */
	unsigned char *body = malloc(len);
	uint8_t inbox[16], sha[32];
	Tern__MessageMeta *m = NULL;
	tbuf out = TBUF_INIT;
	uint32_t x = 12345;

	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		body[i] = (unsigned char)(x >> 16);
	}
	assert_int_equal(append_full(st, f->bob, NULL, body, len, 0, 0, &r), STORE_OK);
	memcpy(inbox, r.res.id, 16);
	assert_int_equal(append_full(st, f->ann, NULL, body, len, 0, 0, &r), STORE_OK);
	assert_int_equal(store_msg_get(st, f->bob, inbox, 1, &m), STORE_OK);
	assert_int_equal(m->blob_size, len);
	memcpy(sha, m->blob.data, 32);
	store_free_record(m);

	assert_int_equal(store_blob_read(st, sha, 0, 0, &out), STORE_OK);
	assert_int_equal(out.len, len);
	assert_memory_equal(out.data, body, len);
	/* Across the first chunk boundary, and from inside the last chunk to the end. */
	tbuf_reset(&out);
	assert_int_equal(store_blob_read(st, sha, 256 * 1024 - 100, 300, &out), STORE_OK);
	assert_int_equal(out.len, 300);
	assert_memory_equal(out.data, body + 256 * 1024 - 100, 300);
	tbuf_reset(&out);
	assert_int_equal(store_blob_read(st, sha, 100, 2 * 256 * 1024, &out), STORE_OK);
	assert_int_equal(out.len, 2 * 256 * 1024);
	assert_memory_equal(out.data, body + 100, out.len);
	tbuf_reset(&out);
	assert_int_equal(store_blob_read(st, sha, 512 * 1024 + 10, 0, &out), STORE_OK);
	assert_int_equal(out.len, len - 512 * 1024 - 10);
	assert_memory_equal(out.data, body + 512 * 1024 + 10, out.len);
	tbuf_reset(&out);
	assert_int_equal(store_blob_read(st, sha, len - 5, 100, &out), STORE_OK);
	assert_int_equal(out.len, 5);
	tbuf_free(&out);

	/* The same body twice: the chunk rows of one blob, two references. */
	store_close(&f->t->st);
	assert_int_equal(count_rows(f->t->path, "blob"), 3);
	assert_int_equal(count_rows(f->t->path, "blobref"), 2);
	assert_int_equal(ts_open(f->t), 0);
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_folder_rename, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_copy_and_move, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_copy_quota, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_folder_subscribe, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_changes_after_flags_and_expunge, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_group_update, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_large_body_stored_once, ts_setup_users, ts_teardown_users),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
