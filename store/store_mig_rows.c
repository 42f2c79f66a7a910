/* store_mig_rows.c - the source side of a mailbox migration (DESIGN.md §6): a user's rows
 * read as raw key ranges (initial copy), the heads (mailbox, folder and collection rows),
 * the deltas read from the changes CF, blob chunks, and the digest and totals both ends
 * compare. Every read is of durable rows; the target applies them with
 * store_mig_import (store_mig_import.c). */
#include "store_private.h"
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static const enum store_cf mig_cf[] = {
	[STORE_MIG_FOLDER] = CF_FOLDER, [STORE_MIG_MSG] = CF_MSG, [STORE_MIG_CHANGES] = CF_CHANGES,
	[STORE_MIG_DAV] = CF_DAV, [STORE_MIG_BLOB] = CF_BLOB,
};

/* ---- initial copy ---- */

typedef struct scan_ctx {
	store_mig_cf cf;
	const void *after;
	size_t an;
	size_t max, used;
	store_mig_fn fn;
	void *arg;
	int more, stopped;
} scan_ctx;

static int scan_one(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	scan_ctx *x = arg;
	store_mig_row r = { x->cf, k, kn, v, vn, 0 };

	if (x->after && kn == x->an && memcmp(k, x->after, kn) == 0)
		return 0;
	if (x->used > 0 && x->used >= x->max) {
		x->more = 1;
		return 1;
	}
	x->used += kn + vn;
	if (x->fn(&r, x->arg) != 0) {
		x->more = 1;
		x->stopped = 1;
		return 1;
	}
	return 0;
}

int store_mig_scan(store *st, const uint8_t user[16], store_mig_cf cf, const void *after, size_t an,
		   size_t max_bytes, store_mig_fn fn, void *arg, int *more_r)
{
	scan_ctx x = { cf, after, an, max_bytes, 0, fn, arg, 0, 0 };

	*more_r = 0;
	if (cf != STORE_MIG_FOLDER && cf != STORE_MIG_MSG && cf != STORE_MIG_CHANGES &&
	    cf != STORE_MIG_DAV)
		return STORE_EINVAL;
	if (after && (an < 16 || memcmp(after, user, 16) != 0))
		return STORE_EINVAL;
	if (store_db_scan(st, mig_cf[cf], user, 16, after, after ? an : 0, scan_one, &x) < 0)
		return STORE_EIO;
	*more_r = x.more;
	return STORE_OK;
}

typedef struct heads_ctx {
	store_mig_cf cf;
	store_mig_fn fn;
	void *arg;
} heads_ctx;

static int head_one(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	heads_ctx *x = arg;
	store_mig_row r = { x->cf, k, kn, v, vn, 0 };

	if (kn != SK_FOLDER_LEN)
		return 0;
	return x->fn(&r, x->arg) != 0;
}

int store_mig_heads(store *st, const uint8_t user[16], store_mig_fn fn, void *arg)
{
	heads_ctx x = { STORE_MIG_FOLDER, fn, arg };
	int rc = store_db_scan(st, CF_FOLDER, user, 16, NULL, 0, head_one, &x);

	if (rc == 0) {
		x.cf = STORE_MIG_DAV;
		rc = store_db_scan(st, CF_DAV, user, 16, NULL, 0, head_one, &x);
	}
	return rc < 0 ? STORE_EIO : STORE_OK;
}

/* ---- deltas ---- */

/* One changes row with what it names (a UID or an href). */
typedef struct delta_chg {
	uint8_t key[SK_CHANGE_LEN];
	char *val;
	size_t vn;
	uint32_t uid;
	char *href;
} delta_chg;

typedef struct delta_ctx {
	store *st;
	const uint8_t *user, *id;
	int dav;
	size_t max, used;
	delta_chg *v;
	size_t n, cap;
	tbuf cur;                 /* the current rows, packed: cf, klen, key, vlen, val, deleted */
	int more, bad;
} delta_ctx;

/* Append one current row to x->cur. */
static void cur_add(delta_ctx *x, store_mig_cf cf, const void *k, size_t kn, const void *v,
		    size_t vn, int deleted)
{
	uint8_t h[13];

	h[0] = (uint8_t)cf;
	tern_be32_put(h + 1, (uint32_t)kn);
	tern_be32_put(h + 5, (uint32_t)vn);
	tern_be32_put(h + 9, (uint32_t)deleted);
	tbuf_append(&x->cur, h, sizeof(h));
	tbuf_append(&x->cur, k, kn);
	if (vn)
		tbuf_append(&x->cur, v, vn);
	x->used += kn + vn;
}

/* The current msg row of uid, or its deletion. */
static int cur_msg(delta_ctx *x, uint32_t uid)
{
	uint8_t k[SK_MSG_LEN];
	char *v = NULL;
	size_t vn = 0;
	int rc;

	sk_msg(k, x->user, x->id, uid);
	rc = store_db_get(x->st, CF_MSG, k, sizeof(k), &v, &vn);
	if (rc == STORE_ENOTFOUND) {
		cur_add(x, STORE_MIG_MSG, k, sizeof(k), NULL, 0, 1);
		return STORE_OK;
	}
	if (rc != STORE_OK)
		return rc;
	cur_add(x, STORE_MIG_MSG, k, sizeof(k), v, vn, 0);
	free(v);
	return STORE_OK;
}

/* The current object row of href and its UID index row, or the object's deletion. */
static int cur_obj(delta_ctx *x, const char *href)
{
	tbuf k = TBUF_INIT, uk = TBUF_INIT;
	char *v = NULL, *uv = NULL;
	size_t vn = 0, uvn = 0;
	Tern__DavObject *o;
	int rc;

	sk_dav_object(&k, x->user, x->id, href);
	rc = store_db_get(x->st, CF_DAV, k.data, k.len, &v, &vn);
	if (rc == STORE_ENOTFOUND) {
		cur_add(x, STORE_MIG_DAV, k.data, k.len, NULL, 0, 1);
		rc = STORE_OK;
		goto out;
	}
	if (rc != STORE_OK)
		goto out;
	cur_add(x, STORE_MIG_DAV, k.data, k.len, v, vn, 0);
	if (!(o = tern__dav_object__unpack(NULL, vn, (const uint8_t *)v))) {
		rc = STORE_EIO;
		goto out;
	}
	if (o->uid && o->uid[0]) {
		sk_dav_uid(&uk, x->user, x->id, o->uid);
		rc = store_db_get(x->st, CF_DAV, uk.data, uk.len, &uv, &uvn);
		if (rc == STORE_OK)
			cur_add(x, STORE_MIG_DAV, uk.data, uk.len, uv, uvn, 0);
		else if (rc == STORE_ENOTFOUND)
			rc = STORE_OK;
	}
	tern__dav_object__free_unpacked(o, NULL);
out:
	free(v);
	free(uv);
	tbuf_free(&k);
	tbuf_free(&uk);
	return rc;
}

/* 1 when an earlier change of this delta named the same UID or href. */
static int named_before(const delta_ctx *x, const delta_chg *d)
{
	for (size_t i = 0; i + 1 < x->n; i++) {
		const delta_chg *e = &x->v[i];

		if (d->href ? e->href && strcmp(e->href, d->href) == 0 : !e->href && e->uid == d->uid)
			return 1;
	}
	return 0;
}

static int delta_one(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	delta_ctx *x = arg;
	Tern__Change *ch;
	delta_chg *d;

	if (kn != SK_CHANGE_LEN)
		return 0;
	if (x->used > 0 && x->used >= x->max) {
		x->more = 1;
		return 1;
	}
	if (!(ch = tern__change__unpack(NULL, vn, (const uint8_t *)v))) {
		x->bad = STORE_EIO;
		return 1;
	}
	if (x->n == x->cap) {
		x->cap = x->cap ? 2 * x->cap : 32;
		x->v = realloc(x->v, x->cap * sizeof(*x->v));
		if (!x->v)
			abort();
	}
	d = &x->v[x->n++];
	memset(d, 0, sizeof(*d));
	memcpy(d->key, k, kn);
	d->val = malloc(vn ? vn : 1);
	if (!d->val)
		abort();
	memcpy(d->val, v, vn);
	d->vn = vn;
	x->used += kn + vn;
	if (ch->kind == TERN__CHANGE__KIND__DAV_PUT || ch->kind == TERN__CHANGE__KIND__DAV_DELETE) {
		d->href = strdup(ch->href ? ch->href : "");
		if (!d->href)
			abort();
	} else {
		d->uid = ch->uid;
	}
	tern__change__free_unpacked(ch, NULL);
	/* A change of the other kind (a message change in a collection) names nothing. */
	if ((d->href != NULL) != (x->dav != 0) || (d->href && !d->href[0]) || (!d->href && !d->uid))
		return 0;
	if (named_before(x, d))
		return 0;
	int rc = d->href ? cur_obj(x, d->href) : cur_msg(x, d->uid);

	if (rc != STORE_OK) {
		x->bad = rc;
		return 1;
	}
	return 0;
}

int store_mig_delta(store *st, const uint8_t user[16], const uint8_t id[16], int dav, uint64_t since,
		    size_t max_bytes, store_mig_fn fn, void *arg, uint64_t *upto_r, int *more_r)
{
	delta_ctx x = { st, user, id, dav, max_bytes, 0, NULL, 0, 0, TBUF_INIT, 0, 0 };
	uint8_t prefix[SK_FOLDER_LEN], from[SK_CHANGE_LEN];
	int rc = STORE_OK;

	*upto_r = since;
	*more_r = 0;
	sk_folder(prefix, user, id);
	sk_change(from, user, id, since + 1);
	if (store_db_scan(st, CF_CHANGES, prefix, sizeof(prefix), from, sizeof(from), delta_one,
			  &x) < 0)
		rc = STORE_EIO;
	else if (x.bad)
		rc = x.bad;
	for (size_t i = 0; rc == STORE_OK && i < x.n; i++) {
		store_mig_row r = { STORE_MIG_CHANGES, x.v[i].key, SK_CHANGE_LEN, x.v[i].val,
				    x.v[i].vn, 0 };

		if (fn(&r, arg) != 0)
			rc = STORE_EINVAL;
	}
	for (size_t off = 0; rc == STORE_OK && off < x.cur.len;) {
		const uint8_t *h = (const uint8_t *)x.cur.data + off;
		size_t kn = tern_be32_get(h + 1), vn = tern_be32_get(h + 5);
		store_mig_row r = { (store_mig_cf)h[0], h + 13, kn, vn ? h + 13 + kn : NULL, vn,
				    (int)tern_be32_get(h + 9) };

		if (fn(&r, arg) != 0)
			rc = STORE_EINVAL;
		off += 13 + kn + vn;
	}
	if (rc == STORE_OK) {
		if (x.n)
			*upto_r = tern_be64_get(x.v[x.n - 1].key + 32);
		*more_r = x.more;
	}
	for (size_t i = 0; i < x.n; i++) {
		free(x.v[i].val);
		free(x.v[i].href);
	}
	free(x.v);
	tbuf_free(&x.cur);
	return rc;
}

/* ---- blobs ---- */

int store_blob_has(store *st, const uint8_t sha[32])
{
	uint8_t k[SK_BLOB_LEN];

	sk_blob(k, sha, 0);
	return store_db_exists(st, CF_BLOB, k, sizeof(k));
}

/* The number of chunks of blob sha: the last chunk key + 1 (0 when none). */
static int blob_chunks(store *st, const uint8_t sha[32], uint32_t *n_r)
{
	uint8_t k[SK_BLOB_LEN], s[32];
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(st->db, st->ropt, st->cf[CF_BLOB]);
	char *err = NULL;
	uint32_t chunk;

	*n_r = 0;
	sk_blob(k, sha, UINT32_MAX);
	rocksdb_iter_seek_for_prev(it, (const char *)k, sizeof(k));
	if (rocksdb_iter_valid(it)) {
		size_t kn;
		const char *ik = rocksdb_iter_key(it, &kn);

		if (sk_blob_parse(ik, kn, s, &chunk) == 0 && memcmp(s, sha, 32) == 0)
			*n_r = chunk + 1;
	}
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	if (err) {
		tlog(TLOG_ERROR, "store: blob scan failed: %s", err);
		free(err);
		return STORE_EIO;
	}
	return STORE_OK;
}

int store_blob_chunk(store *st, const uint8_t sha[32], uint32_t chunk, tbuf *out, uint32_t *chunks_r)
{
	uint8_t k[SK_BLOB_LEN];
	char *v = NULL;
	size_t vn = 0;
	int rc;

	sk_blob(k, sha, chunk);
	if ((rc = store_db_get(st, CF_BLOB, k, sizeof(k), &v, &vn)) != STORE_OK)
		return rc;
	tbuf_append(out, v, vn);
	free(v);
	return chunks_r ? blob_chunks(st, sha, chunks_r) : STORE_OK;
}

/* ---- digest and totals ---- */

typedef struct digest_ctx {
	EVP_MD_CTX *md;
	uint64_t count, bytes;
	int bad;
} digest_ctx;

static void md_u32(EVP_MD_CTX *md, uint32_t v)
{
	uint8_t b[4];

	tern_be32_put(b, v);
	EVP_DigestUpdate(md, b, sizeof(b));
}

static void md_u64(EVP_MD_CTX *md, uint64_t v)
{
	uint8_t b[8];

	tern_be64_put(b, v);
	EVP_DigestUpdate(md, b, sizeof(b));
}

/* A length-prefixed byte string. */
static void md_bytes(EVP_MD_CTX *md, const void *p, size_t n)
{
	md_u32(md, (uint32_t)n);
	if (n)
		EVP_DigestUpdate(md, p, n);
}

static int digest_msg(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	digest_ctx *d = arg;
	Tern__MessageMeta *mm;

	if (kn != SK_MSG_LEN)
		return 0;
	if (!(mm = tern__message_meta__unpack(NULL, vn, (const uint8_t *)v))) {
		d->bad = 1;
		return 1;
	}
	md_u32(d->md, mm->uid);
	md_u32(d->md, mm->flags);
	md_u32(d->md, (uint32_t)mm->n_keywords);
	for (size_t i = 0; i < mm->n_keywords; i++)
		md_bytes(d->md, mm->keywords[i], strlen(mm->keywords[i]));
	md_u64(d->md, mm->modseq);
	md_u64(d->md, mm->internaldate);
	md_bytes(d->md, mm->blob.data, mm->blob.len);
	d->count++;
	d->bytes += mm->size;
	tern__message_meta__free_unpacked(mm, NULL);
	return 0;
}

static int digest_obj(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	digest_ctx *d = arg;
	Tern__DavObject *o;

	if (kn <= SK_DAV_COLL_LEN || k[SK_DAV_COLL_LEN] == '\0')
		return 0;
	if (!(o = tern__dav_object__unpack(NULL, vn, (const uint8_t *)v))) {
		d->bad = 1;
		return 1;
	}
	md_bytes(d->md, o->href, strlen(o->href));
	md_bytes(d->md, o->etag, strlen(o->etag));
	md_u64(d->md, o->modseq);
	d->count++;
	d->bytes += o->data.len;
	tern__dav_object__free_unpacked(o, NULL);
	return 0;
}

typedef struct digest_list {
	store *st;
	const uint8_t *user;
	store_mig_digest_entry *v;
	size_t n;
	int rc;
} digest_list;

static store_mig_digest_entry *entry_add(digest_list *l)
{
	l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
	if (!l->v)
		abort();
	memset(&l->v[l->n], 0, sizeof(l->v[l->n]));
	return &l->v[l->n++];
}

/* The digest of the rows under prefix (a folder's messages or a collection's objects). */
static int digest_range(store *st, enum store_cf cf, const uint8_t prefix[SK_FOLDER_LEN],
			store_mig_digest_entry *e)
{
	digest_ctx d = { EVP_MD_CTX_new(), 0, 0, 0 };
	unsigned int len = 0;
	int rc;

	if (!d.md)
		abort();
	EVP_DigestInit_ex(d.md, EVP_sha256(), NULL);
	rc = store_db_scan(st, cf, prefix, SK_FOLDER_LEN, NULL, 0,
			   cf == CF_MSG ? digest_msg : digest_obj, &d);
	EVP_DigestFinal_ex(d.md, e->sha, &len);
	EVP_MD_CTX_free(d.md);
	if (rc < 0 || d.bad)
		return STORE_EIO;
	e->count = d.count;
	if (cf == CF_MSG)
		e->bytes = d.bytes;
	return STORE_OK;
}

static int digest_head(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	digest_list *l = arg;
	static const uint8_t zero[16];
	store_mig_digest_entry *e;

	if (kn != SK_FOLDER_LEN)
		return 0;
	e = entry_add(l);
	memcpy(e->id, k + 16, 16);
	if (memcmp(k + 16, zero, 16) == 0) {
		Tern__Mailbox *mb = tern__mailbox__unpack(NULL, vn, (const uint8_t *)v);

		if (!mb)
			goto bad;
		e->count = mb->items;
		e->bytes = mb->bytes;
		tern__mailbox__free_unpacked(mb, NULL);
		return 0;
	}
	Tern__Folder *f = tern__folder__unpack(NULL, vn, (const uint8_t *)v);

	if (!f)
		goto bad;
	e->modseq = f->highestmodseq;
	tern__folder__free_unpacked(f, NULL);
	if ((l->rc = digest_range(l->st, CF_MSG, (const uint8_t *)k, e)) != STORE_OK)
		return 1;
	return 0;
bad:
	l->rc = STORE_EIO;
	return 1;
}

static int digest_coll(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	digest_list *l = arg;
	store_mig_digest_entry *e;
	Tern__DavCollection *dc;

	if (kn != SK_DAV_COLL_LEN)
		return 0;
	if (!(dc = tern__dav_collection__unpack(NULL, vn, (const uint8_t *)v))) {
		l->rc = STORE_EIO;
		return 1;
	}
	e = entry_add(l);
	memcpy(e->id, k + 16, 16);
	e->dav = 1;
	e->modseq = dc->modseq;
	tern__dav_collection__free_unpacked(dc, NULL);
	if ((l->rc = digest_range(l->st, CF_DAV, (const uint8_t *)k, e)) != STORE_OK)
		return 1;
	return 0;
}

static int by_dav_id(const void *x, const void *y)
{
	const store_mig_digest_entry *a = x, *b = y;

	if (a->dav != b->dav)
		return a->dav < b->dav ? -1 : 1;
	return memcmp(a->id, b->id, 16);
}

int store_mig_digest(store *st, const uint8_t user[16], store_mig_digest_entry **list_r, size_t *n_r)
{
	digest_list l = { st, user, NULL, 0, STORE_OK };

	*list_r = NULL;
	*n_r = 0;
	if (store_db_scan(st, CF_FOLDER, user, 16, NULL, 0, digest_head, &l) < 0 ||
	    (l.rc == STORE_OK && store_db_scan(st, CF_DAV, user, 16, NULL, 0, digest_coll, &l) < 0))
		l.rc = STORE_EIO;
	if (l.rc != STORE_OK) {
		free(l.v);
		return l.rc;
	}
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), by_dav_id);
	*list_r = l.v;
	*n_r = l.n;
	return STORE_OK;
}

static int count_obj(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	(void)v;
	(void)vn;
	if (kn > SK_DAV_COLL_LEN && k[SK_DAV_COLL_LEN] != '\0')
		(*(uint64_t *)arg)++;
	return 0;
}

int store_mig_totals(store *st, const uint8_t user[16], uint64_t *bytes_r, uint64_t *messages_r,
		     uint64_t *dav_objects_r)
{
	Tern__Mailbox *mb = NULL;
	uint64_t objs = 0;
	int rc = store_mailbox_get(st, user, &mb);

	*bytes_r = *messages_r = *dav_objects_r = 0;
	if (rc == STORE_OK) {
		*bytes_r = mb->bytes;
		*messages_r = mb->items;
		tern__mailbox__free_unpacked(mb, NULL);
	} else if (rc != STORE_ENOTFOUND) {
		return rc;
	}
	if (store_db_scan(st, CF_DAV, user, 16, NULL, 0, count_obj, &objs) < 0)
		return STORE_EIO;
	*dav_objects_r = objs;
	return STORE_OK;
}
