/* test_store_migrate.c - the store side of live mailbox migration (issue 8): states and
 * the freeze, raw copy (scan + import + blob chunks), deltas, digest, drop, the home-map
 * write of a migration and "mailboxes follow homes" around a state row. Two real stores:
 * the source and the target. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include "store_test_util.h"
#include "store_private.h"

/* ---- helpers ---- */

static test_store *open_store(void)
{
	test_store *t = calloc(1, sizeof(*t));
	store_options o;
	char *err = NULL;

	snprintf(t->dir, sizeof(t->dir), "/tmp/tern-store-XXXXXX");
	if (!mkdtemp(t->dir))
		abort();
	snprintf(t->path, sizeof(t->path), "%s/db", t->dir);
	ts_options(t, &o);
	o.blob_grace = 0;
	if (store_open(&o, &t->st, &err) != 0)
		fail_msg("store_open: %s", err);
	return t;
}

static void reopen(test_store *t)
{
	store_options o;
	char *err = NULL;

	store_close(&t->st);
	ts_options(t, &o);
	o.blob_grace = 0;
	if (store_open(&o, &t->st, &err) != 0)
		fail_msg("store_open: %s", err);
}

static uint32_t append(store *st, const uint8_t user[16], const uint8_t *folder, const char *body,
		       uint32_t flags)
{
	store_append a = { 0 };
	store_sync_result r;

	a.user = user;
	a.folder = folder;
	a.body = body;
	a.body_len = strlen(body);
	a.flags = flags;
	assert_int_equal(store_msg_append(st, &a, STORE_SYNC, &r), STORE_OK);
	return r.res.uid;
}

static void folder_id(store *st, const uint8_t user[16], const char *name, uint8_t id[16])
{
	Tern__Folder *f = NULL;

	assert_int_equal(store_folder_find(st, user, name, &f), STORE_OK);
	memcpy(id, f->id.data, 16);
	store_free_record(f);
}

static void make_calendar(store *st, const uint8_t user[16], uint8_t id[16])
{
	Tern__DavCollection c = TERN__DAV_COLLECTION__INIT;
	store_sync_result r;

	c.name = (char *)"calendar";
	c.kind = TERN__DAV_COLLECTION__KIND__CALENDAR;
	assert_int_equal(store_dav_collection_create(st, user, &c, STORE_SYNC, &r), STORE_OK);
	memcpy(id, r.res.id, 16);
}

/* Rows gathered from the source (owned copies). */
typedef struct rowset {
	store_mig_row *v;
	size_t n, cap;
} rowset;

static void rows_add(rowset *s, store_mig_cf cf, const void *k, size_t kn, const void *v, size_t vn,
		     int deleted)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
	}
	store_mig_row *r = &s->v[s->n++];
	void *kc = malloc(kn), *vc = malloc(vn ? vn : 1);

	memcpy(kc, k, kn);
	if (vn)
		memcpy(vc, v, vn);
	r->cf = cf;
	r->key = kc;
	r->klen = kn;
	r->val = vc;
	r->vlen = vn;
	r->deleted = deleted;
}

static void rows_clear(rowset *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free((void *)s->v[i].key);
		free((void *)s->v[i].val);
	}
	s->n = 0;
}

static int collect(const store_mig_row *r, void *arg)
{
	rows_add(arg, r->cf, r->key, r->klen, r->val, r->vlen, r->deleted);
	return 0;
}

/* Copy the blobs the MSG rows of s refer to from src to dst (chunk 0 last). */
static void copy_blobs(store *src, store *dst, const uint8_t user[16], const rowset *s)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i].cf != STORE_MIG_MSG || s->v[i].deleted)
			continue;
		Tern__MessageMeta *mm = tern__message_meta__unpack(NULL, s->v[i].vlen, s->v[i].val);

		assert_non_null(mm);
		assert_int_equal(mm->blob.len, 32);
		if (store_blob_has(dst, mm->blob.data) == 0) {
			rowset b = { 0 };
			uint32_t chunks = 0;
			tbuf out = TBUF_INIT;

			assert_int_equal(store_blob_chunk(src, mm->blob.data, 0, &out, &chunks), STORE_OK);
			assert_true(chunks >= 1);
			for (uint32_t c = chunks; c-- > 0;) {
				uint8_t k[36];

				tbuf_reset(&out);
				assert_int_equal(store_blob_chunk(src, mm->blob.data, c, &out, NULL), STORE_OK);
				memcpy(k, mm->blob.data, 32);
				k[32] = (uint8_t)(c >> 24);
				k[33] = (uint8_t)(c >> 16);
				k[34] = (uint8_t)(c >> 8);
				k[35] = (uint8_t)c;
				rows_add(&b, STORE_MIG_BLOB, k, 36, out.data, out.len, 0);
			}
			assert_int_equal(store_mig_import(dst, user, b.v, b.n, NULL, STORE_SYNC, NULL),
					 STORE_OK);
			assert_int_equal(store_blob_has(dst, mm->blob.data), 1);
			rows_clear(&b);
			free(b.v);
			tbuf_free(&out);
		}
		tern__message_meta__free_unpacked(mm, NULL);
	}
}

static void import_rows(store *src, store *dst, const uint8_t user[16], rowset *s)
{
	store_sync_result r;

	copy_blobs(src, dst, user, s);
	assert_int_equal(store_mig_import(dst, user, s->v, s->n, NULL, STORE_SYNC, &r), STORE_OK);
	rows_clear(s);
}

/* The initial copy, in small scans. */
static void copy_all(store *src, store *dst, const uint8_t user[16])
{
	static const store_mig_cf cfs[] = { STORE_MIG_FOLDER, STORE_MIG_MSG, STORE_MIG_CHANGES,
					    STORE_MIG_DAV };
	rowset s = { 0 };

	for (size_t i = 0; i < 4; i++) {
		uint8_t after[600];
		size_t an = 0;
		int more = 1;

		while (more) {
			assert_int_equal(store_mig_scan(src, user, cfs[i], an ? after : NULL, an, 300,
							 collect, &s, &more), STORE_OK);
			if (s.n == 0)
				break;
			an = s.v[s.n - 1].klen;
			assert_true(an <= sizeof(after));
			memcpy(after, s.v[s.n - 1].key, an);
			import_rows(src, dst, user, &s);
		}
	}
	free(s.v);
}

/* The delta base: the modseq of every folder and collection now (the digest has them). */
typedef struct cursor {
	uint8_t id[16];
	int dav;
	uint64_t modseq;
} cursor;

static size_t take_cursors(store *st, const uint8_t user[16], cursor *c, size_t max)
{
	store_mig_digest_entry *d = NULL;
	size_t n = 0, k = 0;
	static const uint8_t zero[16];

	assert_int_equal(store_mig_digest(st, user, &d, &n), STORE_OK);
	for (size_t i = 0; i < n && k < max; i++) {
		if (!d[i].dav && memcmp(d[i].id, zero, 16) == 0)
			continue;
		memcpy(c[k].id, d[i].id, 16);
		c[k].dav = d[i].dav;
		c[k].modseq = d[i].modseq;
		k++;
	}
	free(d);
	return k;
}

static int has_key(const rowset *s, const void *k, size_t kn)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].klen == kn && memcmp(s->v[i].key, k, kn) == 0)
			return 1;
	return 0;
}

/* One delta round: heads (and the deletion of heads gone at the source), then the
 * changes of every folder and collection since its cursor. */
static void apply_deltas(store *src, store *dst, const uint8_t user[16], const cursor *cur, size_t ncur)
{
	rowset heads = { 0 }, old = { 0 }, s = { 0 };

	assert_int_equal(store_mig_heads(src, user, collect, &heads), STORE_OK);
	assert_int_equal(store_mig_heads(dst, user, collect, &old), STORE_OK);
	for (size_t i = 0; i < old.n; i++)
		if (!has_key(&heads, old.v[i].key, old.v[i].klen))
			rows_add(&s, old.v[i].cf, old.v[i].key, old.v[i].klen, NULL, 0, 1);
	for (size_t h = 0; h < heads.n; h++) {
		const uint8_t *id = (const uint8_t *)heads.v[h].key + 16;
		int dav = heads.v[h].cf == STORE_MIG_DAV;
		static const uint8_t zero[16];
		uint64_t since = 0, upto = 0;
		int more = 1;

		if (!dav && memcmp(id, zero, 16) == 0)
			continue;
		for (size_t i = 0; i < ncur; i++)
			if (cur[i].dav == dav && memcmp(cur[i].id, id, 16) == 0)
				since = cur[i].modseq;
		while (more) {
			assert_int_equal(store_mig_delta(src, user, id, dav, since, 200, collect, &s,
							 &upto, &more), STORE_OK);
			assert_true(upto >= since);
			since = upto;
			import_rows(src, dst, user, &s);
		}
	}
	for (size_t i = 0; i < heads.n; i++)
		rows_add(&s, heads.v[i].cf, heads.v[i].key, heads.v[i].klen, heads.v[i].val,
			 heads.v[i].vlen, 0);
	import_rows(src, dst, user, &s);
	rows_clear(&heads);
	rows_clear(&old);
	free(heads.v);
	free(old.v);
	free(s.v);
}

static void assert_digests_equal(store *a, store *b, const uint8_t user[16])
{
	store_mig_digest_entry *da = NULL, *db = NULL;
	size_t na = 0, nb = 0;

	assert_int_equal(store_mig_digest(a, user, &da, &na), STORE_OK);
	assert_int_equal(store_mig_digest(b, user, &db, &nb), STORE_OK);
	assert_true(na > 0);
	assert_int_equal(na, nb);
	for (size_t i = 0; i < na; i++) {
		assert_memory_equal(da[i].id, db[i].id, 16);
		assert_int_equal(da[i].dav, db[i].dav);
		assert_int_equal(da[i].count, db[i].count);
		assert_int_equal(da[i].bytes, db[i].bytes);
		assert_int_equal(da[i].modseq, db[i].modseq);
		assert_memory_equal(da[i].sha, db[i].sha, 32);
	}
	free(da);
	free(db);
}

static int by_id(const void *x, const void *y)
{
	const Tern__Folder *a = *(Tern__Folder *const *)x, *b = *(Tern__Folder *const *)y;

	return memcmp(a->id.data, b->id.data, 16);
}

static void assert_folders_equal(store *a, store *b, const uint8_t user[16])
{
	Tern__Folder **fa = NULL, **fb = NULL;
	size_t na = 0, nb = 0;

	assert_int_equal(store_folder_list(a, user, &fa, &na), STORE_OK);
	assert_int_equal(store_folder_list(b, user, &fb, &nb), STORE_OK);
	assert_int_equal(na, nb);
	qsort(fa, na, sizeof(*fa), by_id);
	qsort(fb, nb, sizeof(*fb), by_id);
	for (size_t i = 0; i < na; i++) {
		assert_string_equal(fa[i]->name, fb[i]->name);
		assert_int_equal(fa[i]->uidvalidity, fb[i]->uidvalidity);
		assert_int_equal(fa[i]->uidnext, fb[i]->uidnext);
		assert_int_equal(fa[i]->highestmodseq, fb[i]->highestmodseq);
		assert_int_equal(fa[i]->messages, fb[i]->messages);
	}
	store_free_list((void **)fa, na);
	store_free_list((void **)fb, nb);
}

static const char *ETAG_HREF[] = { "a.ics", "b.ics", "c.ics" };

static void assert_etags_equal(store *a, store *b, const uint8_t user[16], const uint8_t coll[16])
{
	for (size_t i = 0; i < 3; i++) {
		Tern__DavObject *oa = NULL, *ob = NULL;
		int ra = store_dav_object_get(a, user, coll, ETAG_HREF[i], &oa);

		assert_int_equal(store_dav_object_get(b, user, coll, ETAG_HREF[i], &ob), ra);
		if (ra == STORE_OK) {
			assert_string_equal(oa->etag, ob->etag);
			assert_int_equal(oa->modseq, ob->modseq);
			store_free_record(oa);
			store_free_record(ob);
		}
	}
}

static const uint8_t MIG_ID[16] = { 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9 };

/* ---- tests ---- */

/* Initial copy, changes at the source, deltas: both ends equal. Then the freeze at the
 * source, activation at the target, writes there, and the source's drop. */
static void test_copy_delta_drop(void **state)
{
	test_store *src = open_store(), *dst = open_store();
	uint8_t bob[16], bob2[16], work[16], old[16], coll[16], inbox[16];
	uint32_t uids[4];
	store_sync_result r;
	cursor cur[16];
	size_t ncur;
	static const char big_fill = 'x';
	char *big = malloc(STORE_BLOB_CHUNK_BYTES + 5000);

	(void)state;
	memset(big, big_fill, STORE_BLOB_CHUNK_BYTES + 4999);
	big[STORE_BLOB_CHUNK_BYTES + 4999] = '\0';
	ts_add_domain(src->st);
	ts_add_domain(dst->st);
	ts_add_user_id(src->st, "bob", NULL, "", bob);
	/* At the target bob is homed elsewhere: no mailbox yet. */
	ts_add_user_id(dst->st, "bob", bob, "src", bob2);
	assert_int_equal(store_mailbox_get(dst->st, bob, &(Tern__Mailbox *){ NULL }), STORE_ENOTFOUND);

	assert_int_equal(store_folder_create(src->st, bob, "Work", NULL, STORE_SYNC, &r), STORE_OK);
	memcpy(work, r.res.id, 16);
	assert_int_equal(store_folder_create(src->st, bob, "Old", NULL, STORE_SYNC, &r), STORE_OK);
	memcpy(old, r.res.id, 16);
	folder_id(src->st, bob, "INBOX", inbox);
	uids[0] = append(src->st, bob, NULL, "Subject: one\r\n\r\nbody one\r\n", 0);
	uids[1] = append(src->st, bob, NULL, big, 0);
	uids[2] = append(src->st, bob, work, "Subject: w\r\n\r\nwork\r\n", TERN__FLAG__FLAG_SEEN);
	append(src->st, bob, old, "Subject: old\r\n\r\nold\r\n", 0);
	const char *kw[] = { "$Important" };

	assert_int_equal(store_msg_set_flags(src->st, bob, inbox, &uids[0], 1, STORE_FLAGS_ADD,
					     TERN__FLAG__FLAG_FLAGGED, kw, 1, 0, STORE_SYNC, &r), STORE_OK);
	uids[3] = append(src->st, bob, NULL, "Subject: gone\r\n\r\ngone\r\n", 0);
	assert_int_equal(store_msg_expunge(src->st, bob, inbox, &uids[3], 1, STORE_SYNC, &r), STORE_OK);
	make_calendar(src->st, bob, coll);
	assert_int_equal(ts_dav_put(src->st, bob, coll, "a.ics", "uid-a", "BEGIN:VCALENDAR\r\nA\r\n", NULL, 0, &r),
			 STORE_OK);
	assert_int_equal(ts_dav_put(src->st, bob, coll, "b.ics", "uid-b", "BEGIN:VCALENDAR\r\nB\r\n", NULL, 0, &r),
			 STORE_OK);

	/* Not INCOMING: refused. */
	rowset s = { 0 };
	int more = 0;

	assert_int_equal(store_mig_scan(src->st, bob, STORE_MIG_FOLDER, NULL, 0, 1 << 20, collect, &s,
					&more), STORE_OK);
	assert_int_equal(more, 0);
	assert_int_equal(s.n, 4);            /* mailbox row, INBOX, Work, Old */
	assert_int_equal(store_mig_import(dst->st, bob, s.v, s.n, NULL, STORE_SYNC, &r), STORE_EREFUSED);
	rows_clear(&s);
	free(s.v);

	assert_int_equal(store_mbox_state_set(dst->st, bob, STORE_MBOX_INCOMING, "src", MIG_ID,
					      STORE_SYNC, &r), STORE_OK);
	/* Sessions are refused at the target: ordinary writes too. */
	assert_int_equal(store_folder_create(dst->st, bob, "X", NULL, STORE_SYNC, &r), STORE_ENOTFOUND);
	ncur = take_cursors(src->st, bob, cur, 16);
	copy_all(src->st, dst->st, bob);
	assert_digests_equal(src->st, dst->st, bob);
	assert_folders_equal(src->st, dst->st, bob);

	/* More changes at the source. */
	uint32_t u5 = append(src->st, bob, work, "Subject: five\r\n\r\nfive\r\n", 0);

	assert_int_equal(store_msg_set_flags(src->st, bob, work, &u5, 1, STORE_FLAGS_ADD,
					     TERN__FLAG__FLAG_ANSWERED, NULL, 0, 0, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_msg_expunge(src->st, bob, inbox, &uids[1], 1, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_folder_delete(src->st, bob, old, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_folder_create(src->st, bob, "New", NULL, STORE_SYNC, &r), STORE_OK);
	uint8_t newf[16];

	memcpy(newf, r.res.id, 16);
	append(src->st, bob, newf, "Subject: new\r\n\r\nnew\r\n", 0);
	assert_int_equal(ts_dav_put(src->st, bob, coll, "a.ics", "uid-a2", "BEGIN:VCALENDAR\r\nA2\r\n", NULL, 0, &r),
			 STORE_OK);
	assert_int_equal(store_dav_delete(src->st, bob, coll, "b.ics", NULL, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(ts_dav_put(src->st, bob, coll, "c.ics", "uid-b", "BEGIN:VCALENDAR\r\nC\r\n", NULL, 0, &r),
			 STORE_OK);

	apply_deltas(src->st, dst->st, bob, cur, ncur);
	assert_digests_equal(src->st, dst->st, bob);
	assert_folders_equal(src->st, dst->st, bob);
	assert_etags_equal(src->st, dst->st, bob, coll);
	Tern__DavObject *o = NULL;

	/* The UID index follows the objects. */
	assert_int_equal(store_dav_object_find_uid(dst->st, bob, coll, "uid-b", &o), STORE_OK);
	assert_string_equal(o->href, "c.ics");
	store_free_record(o);
	assert_int_equal(store_dav_object_find_uid(dst->st, bob, coll, "uid-a", &o), STORE_ENOTFOUND);
	assert_int_equal(store_dav_object_find_uid(dst->st, bob, coll, "uid-a2", &o), STORE_OK);
	store_free_record(o);

	/* Cut-over: the source freezes, the target goes active. */
	assert_int_equal(store_mbox_state_set(src->st, bob, STORE_MBOX_FROZEN, "dst", MIG_ID,
					      STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_mbox_state_set(dst->st, bob, STORE_MBOX_PREPARED, "src", MIG_ID,
					      STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_mbox_state_set(dst->st, bob, STORE_MBOX_ACTIVE, NULL, NULL,
					      STORE_SYNC, &r), STORE_OK);
	/* The target continues the folders: UIDs go on, a new folder's UIDVALIDITY is larger. */
	Tern__Folder *wf = NULL;

	assert_int_equal(store_folder_get(dst->st, bob, work, &wf), STORE_OK);
	uint32_t next = wf->uidnext, uv = wf->uidvalidity;

	store_free_record(wf);
	assert_int_equal(append(dst->st, bob, work, "Subject: after\r\n\r\nafter\r\n", 0), next);
	assert_int_equal(store_folder_create(dst->st, bob, "Later", NULL, STORE_SYNC, &r), STORE_OK);
	assert_true(r.res.uidvalidity > uv);
	Tern__MessageMeta *mm = NULL;

	assert_int_equal(store_msg_get(dst->st, bob, inbox, uids[0], &mm), STORE_OK);
	assert_int_equal(mm->n_keywords, 1);
	assert_string_equal(mm->keywords[0], "$Important");
	tbuf body = TBUF_INIT;

	assert_int_equal(store_blob_read(dst->st, mm->blob.data, 0, 0, &body), STORE_OK);
	assert_int_equal(body.len, strlen("Subject: one\r\n\r\nbody one\r\n"));
	tbuf_free(&body);
	store_free_record(mm);

	/* The source drops its copy: nothing left, its blobs lose every reference. */
	uint8_t sha[32];

	assert_int_equal(store_msg_get(src->st, bob, inbox, uids[0], &mm), STORE_OK);
	memcpy(sha, mm->blob.data, 32);
	store_free_record(mm);
	/* The expunged messages' blobs (and the deleted folder's) go first. */
	assert_int_equal(store_sweep(src->st), 3);
	assert_int_equal(store_sweep(src->st), 0);
	assert_int_equal(store_mig_drop(src->st, bob, STORE_SYNC, &r), STORE_OK);
	store_mig_digest_entry *d = NULL;
	size_t nd = 5;
	uint64_t b, m, objs;

	assert_int_equal(store_mig_digest(src->st, bob, &d, &nd), STORE_OK);
	assert_int_equal(nd, 0);
	free(d);
	assert_int_equal(store_mig_totals(src->st, bob, &b, &m, &objs), STORE_OK);
	assert_true(b == 0 && m == 0 && objs == 0);
	store_mbox_state st;

	assert_int_equal(store_mbox_state_get(src->st, bob, &st, NULL), STORE_OK);
	assert_int_equal(st, STORE_MBOX_ACTIVE);
	assert_int_equal(store_sweep(src->st), 4);  /* one, work, five, new: no reference left */
	assert_int_equal(store_blob_has(src->st, sha), 0);
	assert_int_equal(store_blob_has(dst->st, sha), 1);
	/* Dropped, the user can come back later. */
	assert_int_equal(store_mbox_state_set(src->st, bob, STORE_MBOX_INCOMING, "dst", MIG_ID,
					      STORE_SYNC, &r), STORE_OK);
	free(big);
	ts_free(&src);
	ts_free(&dst);
}

typedef struct watch_rec {
	atomic_int moved, other;
} watch_rec;

static void on_event(const store_event *ev, void *arg)
{
	watch_rec *w = arg;

	if (ev->kind == TERN__CHANGE__KIND__MOVED)
		atomic_fetch_add(&w->moved, 1);
	else
		atomic_fetch_add(&w->other, 1);
}

/* The freeze refuses every ordinary write, tells the watchers, and lifts with ACTIVE. */
static void test_freeze(void **state)
{
	ts_fixture *f = *state;
	store *st = f->t->st;
	uint8_t inbox[16], coll[16];
	store_sync_result r;
	watch_rec wr = { 0 }, other = { 0 }, mv = { 0 };
	uint32_t uid;

	folder_id(st, f->bob, "INBOX", inbox);
	uid = append(st, f->bob, NULL, "Subject: a\r\n\r\na\r\n", 0);
	make_calendar(st, f->bob, coll);
	store_watch *w = store_watch_add(st, f->bob, inbox, NULL, on_event, &wr);
	store_watch *w2 = store_watch_add(st, f->ann, NULL, NULL, on_event, &other);
	store_watch *w3 = store_watch_add_moved(st, f->bob, NULL, on_event, &mv);

	assert_int_equal(store_mbox_state_set(st, f->bob, STORE_MBOX_FROZEN, "node2", MIG_ID,
					      STORE_SYNC, &r), STORE_OK);
	assert_int_equal(atomic_load(&wr.moved), 1);
	assert_int_equal(atomic_load(&mv.moved), 1);
	assert_int_equal(atomic_load(&other.moved), 0);
	store_mbox_state s;
	Tern__MailboxState *rec = NULL;

	assert_int_equal(store_mbox_state_get(st, f->bob, &s, &rec), STORE_OK);
	assert_int_equal(s, STORE_MBOX_FROZEN);
	assert_string_equal(rec->peer, "node2");
	assert_memory_equal(rec->migration_id.data, MIG_ID, 16);
	store_free_record(rec);

	store_append a = { 0 };

	a.user = f->bob;
	a.body = "Subject: b\r\n\r\nb\r\n";
	a.body_len = strlen(a.body);
	assert_int_equal(store_msg_append(st, &a, STORE_SYNC, &r), STORE_EREFUSED);
	assert_non_null(strstr(r.error, "is moving to node node2"));
	assert_non_null(strstr(r.error, "bob@example.test"));
	assert_int_equal(store_msg_set_flags(st, f->bob, inbox, &uid, 1, STORE_FLAGS_ADD,
					     TERN__FLAG__FLAG_SEEN, NULL, 0, 0, STORE_SYNC, &r),
			 STORE_EREFUSED);
	assert_int_equal(store_msg_expunge(st, f->bob, inbox, &uid, 1, STORE_SYNC, &r), STORE_EREFUSED);
	assert_int_equal(store_msg_copy(st, f->bob, inbox, inbox, &uid, 1, 0, STORE_SYNC, &r),
			 STORE_EREFUSED);
	assert_int_equal(store_folder_create(st, f->bob, "X", NULL, STORE_SYNC, &r), STORE_EREFUSED);
	assert_int_equal(store_folder_subscribe(st, f->bob, inbox, 0, STORE_SYNC, &r), STORE_EREFUSED);
	assert_int_equal(ts_dav_put(st, f->bob, coll, "x.ics", "x", "BEGIN:VCALENDAR\r\n", NULL, 0, &r), STORE_EREFUSED);
	assert_non_null(strstr(r.error, "is moving to node node2"));
	Tern__DavCollection c = TERN__DAV_COLLECTION__INIT;

	c.name = (char *)"tasks";
	assert_int_equal(store_dav_collection_create(st, f->bob, &c, STORE_SYNC, &r), STORE_EREFUSED);
	assert_int_equal(store_dav_collection_delete(st, f->bob, coll, STORE_SYNC, &r), STORE_EREFUSED);

	/* Delivery: the frozen recipient is refused, the other one gets the message. */
	store_append rc2[2] = { a, a };

	rc2[1].user = f->ann;
	assert_int_equal(store_deliver(st, rc2, 2, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(r.res.rcpt_rc[0], STORE_EREFUSED);
	assert_int_equal(r.res.rcpt_rc[1], STORE_OK);
	assert_int_equal(store_deliver(st, rc2, 1, STORE_SYNC, &r), STORE_EREFUSED);

	/* Unfrozen: writes go on. */
	assert_int_equal(store_mbox_state_set(st, f->bob, STORE_MBOX_ACTIVE, NULL, NULL, STORE_SYNC, &r),
			 STORE_OK);
	assert_int_equal(store_msg_append(st, &a, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(ts_dav_put(st, f->bob, coll, "x.ics", "x", "BEGIN:VCALENDAR\r\n", NULL, 0, &r), STORE_OK);
	assert_int_equal(atomic_load(&wr.moved), 1);
	/* a moved-only watch is not woken by ordinary changes */
	assert_true(atomic_load(&wr.other) > 0);
	assert_int_equal(atomic_load(&mv.other), 0);
	store_watch_remove(st, &w);
	store_watch_remove(st, &w2);
	store_watch_remove(st, &w3);
}

typedef struct async_done {
	atomic_int rc, done;
	struct timespec at;
} async_done;

static void on_done(const store_result *res, void *arg)
{
	async_done *d = arg;

	clock_gettime(CLOCK_MONOTONIC, &d->at);
	atomic_store(&d->rc, res->rc);
	atomic_store(&d->done, 1);
}

typedef struct freezer {
	store *st;
	const uint8_t *user;
	int rc;
	atomic_int done;
	struct timespec at;
} freezer;

static void *freeze_main(void *arg)
{
	freezer *z = arg;
	store_sync_result r;

	z->rc = store_mbox_state_set(z->st, z->user, STORE_MBOX_FROZEN, "n2", MIG_ID, STORE_SYNC, &r);
	clock_gettime(CLOCK_MONOTONIC, &z->at);
	atomic_store(&z->done, 1);
	return NULL;
}

/* A freeze asked while a batch of the mailbox is in flight is durable after it. */
static void test_freeze_waits(void **state)
{
	ts_fixture *f = *state;
	store *st = f->t->st;
	async_done d = { 0 };
	freezer z = { st, f->bob, 0, 0, { 0, 0 } };
	store_append a = { 0 };
	pthread_t thr;

	a.user = f->bob;
	a.body = "Subject: in flight\r\n\r\nx\r\n";
	a.body_len = strlen(a.body);
	store_test_hold_commits(st, 1);
	assert_int_equal(store_msg_append(st, &a, (store_cb){ on_done, &d, NULL }, NULL), STORE_OK);
	assert_int_equal(pthread_create(&thr, NULL, freeze_main, &z), 0);
	usleep(100000);
	assert_int_equal(atomic_load(&z.done), 0);
	assert_int_equal(atomic_load(&d.done), 0);
	store_test_hold_commits(st, 0);
	pthread_join(thr, NULL);
	assert_int_equal(z.rc, STORE_OK);
	assert_int_equal(atomic_load(&d.done), 1);
	assert_int_equal(atomic_load(&d.rc), STORE_OK);
	assert_true(d.at.tv_sec < z.at.tv_sec ||
		    (d.at.tv_sec == z.at.tv_sec && d.at.tv_nsec <= z.at.tv_nsec));
	assert_int_equal(store_msg_append(st, &a, STORE_SYNC, NULL), STORE_EREFUSED);
}

/* State rows are durable; INCOMING over a live mailbox is refused. */
static void test_state_reopen(void **state)
{
	ts_fixture *f = *state;
	store_sync_result r;
	store_mbox_state s;
	uint8_t (*ids)[16] = NULL;
	size_t n = 0;

	append(f->t->st, f->bob, NULL, "Subject: a\r\n\r\na\r\n", 0);
	assert_int_equal(store_mbox_state_set(f->t->st, f->bob, STORE_MBOX_INCOMING, "n1", MIG_ID,
					      STORE_SYNC, &r), STORE_EREFUSED);
	assert_int_equal(store_mbox_state_set(f->t->st, f->ann, STORE_MBOX_INCOMING, "n1", MIG_ID,
					      STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_mbox_state_set(f->t->st, f->bob, STORE_MBOX_FROZEN, "n3", MIG_ID,
					      STORE_SYNC, &r), STORE_OK);
	reopen(f->t);
	assert_int_equal(store_mbox_state_get(f->t->st, f->bob, &s, NULL), STORE_OK);
	assert_int_equal(s, STORE_MBOX_FROZEN);
	assert_int_equal(store_mbox_state_get(f->t->st, f->ann, &s, NULL), STORE_OK);
	assert_int_equal(s, STORE_MBOX_INCOMING);
	assert_int_equal(store_mbox_state_get(f->t->st, f->eve, &s, NULL), STORE_OK);
	assert_int_equal(s, STORE_MBOX_ACTIVE);
	assert_int_equal(store_mbox_state_list(f->t->st, &ids, &n), STORE_OK);
	assert_int_equal(n, 2);
	free(ids);
	assert_int_equal(store_folder_create(f->t->st, f->ann, "X", NULL, STORE_SYNC, &r), STORE_EREFUSED);
	assert_non_null(strstr(r.error, "is arriving from node n1"));
	assert_int_equal(store_mbox_state_set(f->t->st, f->ann, STORE_MBOX_ACTIVE, NULL, NULL,
					      STORE_SYNC, &r), STORE_OK);
	reopen(f->t);
	assert_int_equal(store_mbox_state_get(f->t->st, f->ann, &s, NULL), STORE_OK);
	assert_int_equal(s, STORE_MBOX_ACTIVE);
}

/* The home-map write of a migration skips the data check; a state row keeps the
 * mailbox out of "mailboxes follow homes". */
static void test_homes(void **state)
{
	ts_fixture *f = *state;
	store_sync_result r;
	Tern__User *u = NULL;
	Tern__Mailbox *mb = NULL;

	append(f->t->st, f->bob, NULL, "Subject: a\r\n\r\na\r\n", 0);
	/* An ordinary update moving bob's home is refused: his mailbox holds data. */
	assert_int_equal(store_user_get_by_id(f->t->st, f->bob, &u), STORE_OK);
	free(u->home != protobuf_c_empty_string ? u->home : NULL);
	u->home = strdup("n2");
	assert_int_equal(store_user_update(f->t->st, u, STORE_SYNC, &r), STORE_EREFUSED);

	assert_int_equal(store_user_set_home_state(f->t->st, f->bob, "", TERN__HOME_STATE__HOME_MOVING,
						   "n2", STORE_SYNC, &r), STORE_OK);
	Tern__User *v = NULL;

	assert_int_equal(store_user_get_by_id(f->t->st, f->bob, &v), STORE_OK);
	assert_int_equal(v->home_state, TERN__HOME_STATE__HOME_MOVING);
	assert_string_equal(v->home_target, "n2");
	store_free_record(v);
	assert_int_equal(store_user_set_home_state(f->t->st, f->bob, "n2", TERN__HOME_STATE__HOME_ACTIVE,
						   "", STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_user_get_by_id(f->t->st, f->bob, &v), STORE_OK);
	assert_string_equal(v->home, "n2");
	assert_int_equal(v->home_state, TERN__HOME_STATE__HOME_ACTIVE);
	store_free_record(v);
	assert_int_equal(store_mailbox_get(f->t->st, f->bob, &mb), STORE_OK);   /* kept */
	assert_int_equal(mb->items, 1);
	store_free_record(mb);
	uint8_t nobody[16] = { 1 };

	assert_int_equal(store_user_set_home_state(f->t->st, nobody, "n2", TERN__HOME_STATE__HOME_ACTIVE,
						   "", STORE_SYNC, &r), STORE_ENOTFOUND);

	/* ann (empty mailbox) with a state row: a home elsewhere does not remove it. */
	assert_int_equal(store_mbox_state_set(f->t->st, f->ann, STORE_MBOX_FROZEN, "n2", MIG_ID,
					      STORE_SYNC, &r), STORE_OK);
	Tern__User *a = NULL;

	assert_int_equal(store_user_get_by_id(f->t->st, f->ann, &a), STORE_OK);
	free(a->home != protobuf_c_empty_string ? a->home : NULL);
	a->home = strdup("n2");
	assert_int_equal(store_user_update(f->t->st, a, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_mailbox_get(f->t->st, f->ann, &mb), STORE_OK);
	store_free_record(mb);
	/* And bob, with data and a state row, may be homed anywhere by an update. */
	assert_int_equal(store_mbox_state_set(f->t->st, f->bob, STORE_MBOX_FROZEN, "n2", MIG_ID,
					      STORE_SYNC, &r), STORE_OK);
	free(u->home);
	u->home = strdup("n3");
	assert_int_equal(store_user_update(f->t->st, u, STORE_SYNC, &r), STORE_OK);
	store_free_record(u);
	store_free_record(a);
}

/* Jobs: put, get, list in order, delete; the import writes its job in its batch. */
static void test_jobs(void **state)
{
	ts_fixture *f = *state;
	Tern__MigrateJob j = TERN__MIGRATE_JOB__INIT, **list = NULL, *g = NULL;
	store_sync_result r;
	size_t n = 0;

	j.id.data = (uint8_t *)MIG_ID;
	j.id.len = 16;
	j.user_id.data = f->bob;
	j.user_id.len = 16;
	j.address = (char *)"bob@example.test";
	j.order = 7;
	assert_int_equal(store_mig_job_put(f->t->st, &j, STORE_SYNC, &r), STORE_OK);
	j.user_id.data = f->ann;
	j.address = (char *)"ann@example.test";
	j.order = 3;
	assert_int_equal(store_mig_job_put(f->t->st, &j, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_mig_job_list(f->t->st, &list, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(list[0]->address, "ann@example.test");
	assert_string_equal(list[1]->address, "bob@example.test");
	store_free_list((void **)list, n);
	assert_int_equal(store_mig_job_delete(f->t->st, f->ann, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_mig_job_delete(f->t->st, f->ann, STORE_SYNC, &r), STORE_ENOTFOUND);
	assert_int_equal(store_mig_job_get(f->t->st, f->ann, &g), STORE_ENOTFOUND);

	/* eve's mailbox is empty: it can receive; the import stores the job with its rows. */
	assert_int_equal(store_mbox_state_set(f->t->st, f->eve, STORE_MBOX_INCOMING, "n1", MIG_ID,
					      STORE_SYNC, &r), STORE_OK);
	j.user_id.data = f->eve;
	j.copy_cf = STORE_MIG_CHANGES;
	j.state = TERN__MIGRATE_JOB__STATE__COPYING;
	assert_int_equal(store_mig_import(f->t->st, f->eve, NULL, 0, &j, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_mig_job_get(f->t->st, f->eve, &g), STORE_OK);
	assert_int_equal(g->state, TERN__MIGRATE_JOB__STATE__COPYING);
	assert_int_equal(g->copy_cf, STORE_MIG_CHANGES);
	store_free_record(g);
	/* A message row whose blob is not here is refused, and nothing is written. */
	store_mig_row row = { 0 };
	uint8_t k[36];
	Tern__MessageMeta mm = TERN__MESSAGE_META__INIT;
	uint8_t sha[32] = { 7 }, buf[256];

	mm.uid = 1;
	mm.blob.data = sha;
	mm.blob.len = 32;
	memcpy(k, f->eve, 16);
	memset(k + 16, 3, 16);
	memset(k + 32, 0, 3);
	k[35] = 1;
	row.cf = STORE_MIG_MSG;
	row.key = k;
	row.klen = 36;
	row.val = buf;
	row.vlen = tern__message_meta__pack(&mm, buf);
	assert_int_equal(store_mig_import(f->t->st, f->eve, &row, 1, NULL, STORE_SYNC, &r), STORE_EINVAL);
	uint8_t other[36];

	memcpy(other, k, 36);
	other[0] ^= 0xff;
	row.key = other;
	assert_int_equal(store_mig_import(f->t->st, f->eve, &row, 1, NULL, STORE_SYNC, &r), STORE_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_delta_drop),
		cmocka_unit_test_setup_teardown(test_freeze, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_freeze_waits, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_state_reopen, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_homes, ts_setup_users, ts_teardown_users),
		cmocka_unit_test_setup_teardown(test_jobs, ts_setup_users, ts_teardown_users),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
