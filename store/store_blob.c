/* store_blob.c - message bodies stored once per distinct content (blob CF, 256 KiB
 * chunks under <sha256><chunk be32>), and the in-memory set of hashes that batches in
 * flight hold, which keeps the writer and the sweeper from racing: a hash held by a
 * queued batch is never swept, and a hash being swept is written again by the next
 * writer (its batch commits after the deletion). */
#include "store_private.h"
#include <stdlib.h>
#include <string.h>

struct store_pending_blob {
	store_pending_blob *next;
	uint8_t sha[32];
	unsigned refs;       /* batches in flight that reference the blob */
	int deleting;        /* the sweeper's deletion is in flight */
};

/* The entry of sha (blob_mu held), created when `create`. */
static store_pending_blob *pending_find(store *st, const uint8_t sha[32], int create)
{
	store_pending_blob **pp = &st->pending[sha[0]];

	for (; *pp; pp = &(*pp)->next)
		if (memcmp((*pp)->sha, sha, 32) == 0)
			return *pp;
	if (!create)
		return NULL;
	store_pending_blob *p = calloc(1, sizeof(*p));

	if (!p)
		abort();
	memcpy(p->sha, sha, 32);
	*pp = p;
	return p;
}

static void pending_drop_if_idle(store *st, store_pending_blob *p)
{
	if (p->refs || p->deleting)
		return;
	for (store_pending_blob **pp = &st->pending[p->sha[0]]; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			free(p);
			return;
		}
	}
}

static void put_chunks(store *st, rocksdb_writebatch_t *wb, const uint8_t sha[32],
		       const void *body, size_t len)
{
	uint8_t k[SK_BLOB_LEN];
	uint32_t chunk = 0;
	size_t off = 0;

	do {
		size_t n = len - off < STORE_BLOB_CHUNK ? len - off : STORE_BLOB_CHUNK;

		sk_blob(k, sha, chunk++);
		rocksdb_writebatch_put_cf(wb, st->cf[CF_BLOB], (const char *)k, sizeof(k),
					  (const char *)body + off, n);
		off += n;
	} while (off < len);
}

void store_blob_hold(store *st, store_commit *c, const uint8_t sha[32], const void *body,
		     size_t len)
{
	uint8_t k[SK_BLOB_LEN];
	int write = 0;

	pthread_mutex_lock(&st->blob_mu);
	store_pending_blob *p = pending_find(st, sha, 1);

	if (p->deleting) {
		write = 1;
	} else if (p->refs == 0) {
		sk_blob(k, sha, 0);
		write = store_db_exists(st, CF_BLOB, k, sizeof(k)) != 1;
	}
	if (write && body)
		put_chunks(st, c->wb, sha, body, len);
	p->refs++;
	pthread_mutex_unlock(&st->blob_mu);
	if (c->nshas == c->shas_cap) {
		c->shas_cap = c->shas_cap ? 2 * c->shas_cap : 2;
		c->blob_shas = realloc(c->blob_shas, c->shas_cap * sizeof(*c->blob_shas));
		if (!c->blob_shas)
			abort();
	}
	memcpy(c->blob_shas[c->nshas++], sha, 32);
}

void store_blob_release(store *st, store_commit *c)
{
	pthread_mutex_lock(&st->blob_mu);
	for (size_t i = 0; i < c->nshas; i++) {
		store_pending_blob *p = pending_find(st, c->blob_shas[i], 0);

		if (p) {
			p->refs--;
			pending_drop_if_idle(st, p);
		}
	}
	pthread_mutex_unlock(&st->blob_mu);
	c->nshas = 0;
}

void store_blob_mark_orphan(store *st, rocksdb_writebatch_t *wb, const uint8_t sha[32])
{
	Tern__BlobOrphan o = TERN__BLOB_ORPHAN__INIT;
	tbuf k = TBUF_INIT;

	o.since = (uint64_t)tern_now();
	sk_blobgc(&k, sha);
	store_wb_put_record(wb, st, CF_CONFIG, k.data, k.len, &o.base);
	tbuf_free(&k);
}

int store_blob_begin_delete(store *st, const uint8_t sha[32])
{
	store_pending_blob *p = pending_find(st, sha, 0);

	if (p)
		return 0;
	pending_find(st, sha, 1)->deleting = 1;
	return 1;
}

static void end_delete(store *st, store_commit *c, int rc)
{
	uint8_t *sha = c->hook_arg;

	pthread_mutex_lock(&st->blob_mu);
	store_pending_blob *p = pending_find(st, sha, 0);

	if (p) {
		p->deleting = 0;
		pending_drop_if_idle(st, p);
	}
	pthread_mutex_unlock(&st->blob_mu);
	free(sha);
	c->hook_arg = NULL;
}

void store_blob_set_delete_hook(store_commit *c, const uint8_t sha[32])
{
	uint8_t *copy = malloc(32);

	if (!copy)
		abort();
	memcpy(copy, sha, 32);
	c->hook = end_delete;
	c->hook_arg = copy;
}

void store_blob_free_all(store *st)
{
	for (int i = 0; i < 256; i++) {
		while (st->pending[i]) {
			store_pending_blob *p = st->pending[i];

			st->pending[i] = p->next;
			free(p);
		}
	}
}

int store_blob_read(store *st, const uint8_t sha[32], uint64_t offset, uint64_t len, tbuf *out)
{
	uint8_t k[SK_BLOB_LEN];
	uint32_t chunk = (uint32_t)(offset / STORE_BLOB_CHUNK);
	size_t skip = (size_t)(offset % STORE_BLOB_CHUNK);
	uint64_t want = len;
	int first = 1;

	for (;;) {
		char *v = NULL;
		size_t vn = 0;

		sk_blob(k, sha, chunk);
		int rc = store_db_get(st, CF_BLOB, k, sizeof(k), &v, &vn);

		if (rc == STORE_ENOTFOUND && !first)
			return STORE_OK;
		if (rc != STORE_OK) {
			if (rc == STORE_ENOTFOUND && chunk > 0) {
				/* offset beyond the end: is the blob there at all? */
				sk_blob(k, sha, 0);
				return store_db_exists(st, CF_BLOB, k, sizeof(k)) == 1 ? STORE_OK
										       : STORE_ENOTFOUND;
			}
			return rc;
		}
		first = 0;
		if (skip < vn) {
			size_t n = vn - skip;

			if (len && n > want)
				n = (size_t)want;
			tbuf_append(out, v + skip, n);
			want -= len ? n : 0;
		}
		skip = 0;
		free(v);
		if (vn < STORE_BLOB_CHUNK || (len && want == 0))
			return STORE_OK;
		chunk++;
	}
}
