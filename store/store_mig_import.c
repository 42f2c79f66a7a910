/* store_mig_import.c - the target side of a mailbox migration (DESIGN.md §6): one batch
 * of the source's rows written with what hangs on them (blob references, the DAV UID
 * index, a deleted folder's messages, the UIDVALIDITY mark), and the drop of a user's
 * whole key range (the source after the commit, the target on a cancel). An import runs
 * under the user's mailbox and DAV owner locks, once their earlier batches are durable,
 * so the rows it reads to replace (an earlier copy of a message or object) are current;
 * the cached mailbox is reloaded once the batch is written. */
#include "store_private.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct import_ctx {
	store *st;
	store_commit *c;
	const uint8_t *user;
	const store_mig_row *rows;
	size_t i;                     /* the row being applied */
	uint32_t uv_max;              /* highest UIDVALIDITY of the folders imported */
	char *error;
} import_ctx;

/* The value an earlier row of this import gave to key (cf), or the stored one: STORE_OK
 * with *v_r (malloc'd), STORE_ENOTFOUND (absent or deleted), STORE_EIO. */
static int current(import_ctx *x, store_mig_cf cf, enum store_cf dbcf, const void *k, size_t kn,
		   char **v_r, size_t *vn_r)
{
	for (size_t i = x->i; i-- > 0;) {
		const store_mig_row *r = &x->rows[i];

		if (r->cf != cf || r->klen != kn || memcmp(r->key, k, kn) != 0)
			continue;
		if (r->deleted)
			return STORE_ENOTFOUND;
		*v_r = malloc(r->vlen ? r->vlen : 1);
		if (!*v_r)
			abort();
		memcpy(*v_r, r->val, r->vlen);
		*vn_r = r->vlen;
		return STORE_OK;
	}
	return store_db_get(x->st, dbcf, k, kn, v_r, vn_r);
}

static int fail(import_ctx *x, int rc, const char *what)
{
	snprintf(x->error, STORE_ERR_MAX, "row %zu: %s", x->i, what);
	return rc;
}

static int import_folder(import_ctx *x, const store_mig_row *r)
{
	static const uint8_t zero[16];
	rocksdb_writebatch_t *wb = x->c->wb;
	const uint8_t *fid = (const uint8_t *)r->key + 16;
	Tern__Folder *f;

	if (r->klen != SK_FOLDER_LEN)
		return fail(x, STORE_EINVAL, "bad folder key");
	if (r->deleted) {
		if (memcmp(fid, zero, 16) != 0 &&
		    store_mbx_drop_messages(x->st, wb, x->user, fid, NULL, NULL) != STORE_OK)
			return fail(x, STORE_EIO, "cannot read the folder's messages");
		rocksdb_writebatch_delete_cf(wb, x->st->cf[CF_FOLDER], r->key, r->klen);
		return STORE_OK;
	}
	if (memcmp(fid, zero, 16) != 0) {
		if (!(f = tern__folder__unpack(NULL, r->vlen, r->val)))
			return fail(x, STORE_EINVAL, "bad folder record");
		if (f->uidvalidity > x->uv_max)
			x->uv_max = f->uidvalidity;
		tern__folder__free_unpacked(f, NULL);
	}
	rocksdb_writebatch_put_cf(wb, x->st->cf[CF_FOLDER], r->key, r->klen, r->val, r->vlen);
	return STORE_OK;
}

/* The blob of a packed MessageMeta into sha: 1 when it has one, 0 when not, -1 bad. */
static int meta_blob(const void *v, size_t vn, uint8_t sha[32])
{
	Tern__MessageMeta *mm = tern__message_meta__unpack(NULL, vn, v);
	int has;

	if (!mm)
		return -1;
	has = mm->blob.len == 32;
	if (has)
		memcpy(sha, mm->blob.data, 32);
	tern__message_meta__free_unpacked(mm, NULL);
	return has;
}

static int import_msg(import_ctx *x, const store_mig_row *r)
{
	uint8_t user[16], folder[16], rk[SK_BLOBREF_LEN], old_sha[32], new_sha[32];
	rocksdb_writebatch_t *wb = x->c->wb;
	int old_has = 0, new_has = 0, rc;
	char *v = NULL;
	size_t vn = 0;
	uint32_t uid;

	if (sk_msg_parse(r->key, r->klen, user, folder, &uid) != 0)
		return fail(x, STORE_EINVAL, "bad message key");
	if (!r->deleted) {
		if ((new_has = meta_blob(r->val, r->vlen, new_sha)) < 0)
			return fail(x, STORE_EINVAL, "bad message record");
		if (new_has) {
			/* Held against the sweeper until the batch is written. */
			store_blob_hold(x->st, x->c, new_sha, NULL, 0);
			if ((rc = store_blob_has(x->st, new_sha)) != 1)
				return fail(x, rc < 0 ? rc : STORE_EINVAL, "the message's blob is "
					    "not here");
		}
	}
	rc = current(x, STORE_MIG_MSG, CF_MSG, r->key, r->klen, &v, &vn);
	if (rc == STORE_OK) {
		old_has = meta_blob(v, vn, old_sha);
		free(v);
		if (old_has < 0)
			return fail(x, STORE_EIO, "bad stored message record");
	} else if (rc != STORE_ENOTFOUND) {
		return fail(x, rc, "cannot read the message");
	}
	if (old_has && !(new_has && memcmp(old_sha, new_sha, 32) == 0)) {
		sk_blobref(rk, old_sha, user, folder, uid);
		rocksdb_writebatch_delete_cf(wb, x->st->cf[CF_BLOBREF], (const char *)rk, sizeof(rk));
		store_blob_mark_orphan(x->st, wb, old_sha);
	}
	if (r->deleted) {
		rocksdb_writebatch_delete_cf(wb, x->st->cf[CF_MSG], r->key, r->klen);
		return STORE_OK;
	}
	rocksdb_writebatch_put_cf(wb, x->st->cf[CF_MSG], r->key, r->klen, r->val, r->vlen);
	if (new_has)
		store_msg_put_blobref(x->st, wb, new_sha, user, folder, uid);
	return STORE_OK;
}

/* The UID of a packed DavObject (malloc'd, "" when none), or NULL when bad. */
static char *object_uid(const void *v, size_t vn)
{
	Tern__DavObject *o = tern__dav_object__unpack(NULL, vn, v);
	char *uid;

	if (!o)
		return NULL;
	uid = strdup(o->uid ? o->uid : "");
	tern__dav_object__free_unpacked(o, NULL);
	if (!uid)
		abort();
	return uid;
}

static int import_dav(import_ctx *x, const store_mig_row *r)
{
	rocksdb_writebatch_t *wb = x->c->wb;
	const char *k = r->key;
	char *v = NULL, *old_uid = NULL, *new_uid = NULL;
	size_t vn = 0;
	int rc = STORE_OK;

	if (r->klen < SK_DAV_COLL_LEN)
		return fail(x, STORE_EINVAL, "bad DAV key");
	if (r->klen == SK_DAV_COLL_LEN && r->deleted) {
		uint8_t hi[SK_DAV_COLL_LEN];

		if (sk_prefix_end((const uint8_t *)k, SK_DAV_COLL_LEN, hi) != 0)
			return fail(x, STORE_EINVAL, "bad collection key");
		rocksdb_writebatch_delete_range_cf(wb, x->st->cf[CF_DAV], k, SK_DAV_COLL_LEN,
						   (const char *)hi, sizeof(hi));
		rocksdb_writebatch_delete_range_cf(wb, x->st->cf[CF_CHANGES], k, SK_DAV_COLL_LEN,
						   (const char *)hi, sizeof(hi));
		return STORE_OK;
	}
	/* An object row replaces the UID index row of its earlier copy. */
	if (r->klen > SK_DAV_COLL_LEN && k[SK_DAV_COLL_LEN] != '\0') {
		rc = current(x, STORE_MIG_DAV, CF_DAV, r->key, r->klen, &v, &vn);
		if (rc == STORE_OK) {
			old_uid = object_uid(v, vn);
			free(v);
			if (!old_uid)
				return fail(x, STORE_EIO, "bad stored object record");
		} else if (rc != STORE_ENOTFOUND) {
			return fail(x, rc, "cannot read the object");
		}
		rc = STORE_OK;
		if (!r->deleted && !(new_uid = object_uid(r->val, r->vlen))) {
			free(old_uid);
			return fail(x, STORE_EINVAL, "bad object record");
		}
		if (old_uid && old_uid[0] && !(new_uid && strcmp(old_uid, new_uid) == 0)) {
			tbuf uk = TBUF_INIT;

			sk_dav_uid(&uk, x->user, (const uint8_t *)k + 16, old_uid);
			rocksdb_writebatch_delete_cf(wb, x->st->cf[CF_DAV], uk.data, uk.len);
			tbuf_free(&uk);
		}
		free(old_uid);
		free(new_uid);
	}
	if (r->deleted)
		rocksdb_writebatch_delete_cf(wb, x->st->cf[CF_DAV], r->key, r->klen);
	else
		rocksdb_writebatch_put_cf(wb, x->st->cf[CF_DAV], r->key, r->klen, r->val, r->vlen);
	return rc;
}

static int import_row(import_ctx *x, const store_mig_row *r)
{
	rocksdb_writebatch_t *wb = x->c->wb;
	uint8_t sha[32];
	uint32_t chunk;

	if (r->cf != STORE_MIG_BLOB && (r->klen < 16 || memcmp(r->key, x->user, 16) != 0))
		return fail(x, STORE_EINVAL, "the key is not the user's");
	switch (r->cf) {
	case STORE_MIG_FOLDER:
		return import_folder(x, r);
	case STORE_MIG_MSG:
		return import_msg(x, r);
	case STORE_MIG_CHANGES:
		if (r->klen != SK_CHANGE_LEN)
			return fail(x, STORE_EINVAL, "bad changes key");
		if (r->deleted)
			rocksdb_writebatch_delete_cf(wb, x->st->cf[CF_CHANGES], r->key, r->klen);
		else
			rocksdb_writebatch_put_cf(wb, x->st->cf[CF_CHANGES], r->key, r->klen, r->val,
						  r->vlen);
		return STORE_OK;
	case STORE_MIG_DAV:
		return import_dav(x, r);
	case STORE_MIG_BLOB:
		if (r->deleted || sk_blob_parse(r->key, r->klen, sha, &chunk) != 0 ||
		    r->vlen > STORE_BLOB_CHUNK)
			return fail(x, STORE_EINVAL, "bad blob chunk");
		rocksdb_writebatch_put_cf(wb, x->st->cf[CF_BLOB], r->key, r->klen, r->val, r->vlen);
		/* Unreferenced until a message row refers to it: the sweeper's, after its grace. */
		store_blob_mark_orphan(x->st, wb, sha);
		return STORE_OK;
	}
	return fail(x, STORE_EINVAL, "unknown column family");
}

/* Lock the user's mailbox (idle; NULL when it has none yet) and DAV owner (revived when
 * an earlier drop removed it). */
static int lock_target(store *st, const uint8_t user[16], store_mbx **m_r, store_dav_owner **o_r)
{
	int rc = store_mig_lock_user(st, user, m_r, o_r);

	if (rc != STORE_OK || *o_r != NULL)
		return rc;
	store_dav_owner_revive(st, user);
	if (store_dav_lock(st, user, o_r) != STORE_OK) {
		if (*m_r)
			store_mbx_unlock(*m_r);
		return STORE_EIO;
	}
	return STORE_OK;
}

int store_mig_import(store *st, const uint8_t user[16], const store_mig_row *rows, size_t n,
		     const Tern__MigrateJob *job, store_cb cb, store_sync_result *res_r)
{
	store_commit *c = store_commit_new(cb);
	int blocking = c->cb.fn == NULL;
	import_ctx x = { st, c, user, rows, 0, 0, c->error };
	store_dav_owner *o = NULL;
	store_mbox_state s;
	store_mbx *m = NULL;
	int rc;

	if ((rc = lock_target(st, user, &m, &o)) != STORE_OK)
		return store_commit_fail(st, c, res_r, rc, "cannot read the mailbox");
	store_mbox_state_get(st, user, &s, NULL);
	if (s != STORE_MBOX_INCOMING) {
		rc = STORE_EREFUSED;
		snprintf(c->error, sizeof(c->error), "the mailbox is not receiving a migration");
	}
	for (x.i = 0; rc == STORE_OK && x.i < n; x.i++)
		rc = import_row(&x, &rows[x.i]);
	if (rc == STORE_OK && job) {
		tbuf k = TBUF_INIT;

		sk_migjob(&k, user);
		store_wb_put_record(c->wb, st, CF_CONFIG, k.data, k.len, &job->base);
		tbuf_free(&k);
	}
	if (rc != STORE_OK) {
		char why[STORE_ERR_MAX];

		memcpy(why, c->error, sizeof(why));
		store_dav_unlock(o);
		if (m)
			store_mbx_unlock(m);
		/* The holds taken for the message rows go with the batch. */
		store_blob_release(st, c);
		return store_commit_fail(st, c, res_r, rc, "%s", why);
	}
	/* A folder made here later gets a larger UIDVALIDITY than every imported one. */
	if (x.uv_max) {
		pthread_mutex_lock(&st->uv_mu);
		if (st->last_uidvalidity < x.uv_max)
			st->last_uidvalidity = x.uv_max;
		pthread_mutex_unlock(&st->uv_mu);
		c->uv_mark = 1;
	}
	store_dav_track(c, o);
	if (m)
		m->stale = 1;           /* reloaded from the rows once this batch is written */
	return store_mig_queue_unlock(st, c, m, o, blocking, res_r);
}

/* ---- drop ---- */

static int apply_drop(store *st, store_cfg_job *j, store_commit *c)
{
	tbuf k = TBUF_INIT;
	char who[37];
	int rc;

	tern_uuid_str(j->id, who);
	if ((rc = store_mailbox_remove_batch(st, c->wb, j->id, 0)) != STORE_OK)
		return store_cfg_err(c, rc, "cannot remove the mailbox of %s", who);
	store_cfg_mailbox_gone(c, j->id);
	if ((rc = store_dav_owner_remove_batch(st, c, j->id)) != STORE_OK)
		return store_cfg_err(c, rc, "cannot remove the calendars of %s", who);
	sk_mbstate(&k, j->id);
	store_cfg_delete(st, c, k.data, k.len);
	tbuf_free(&k);
	return STORE_OK;
}

/* After the drop: the user may be imported (or get a mailbox) here again later. */
static void after_drop(store *st, store_cfg_job *j, int rc)
{
	if (rc != STORE_OK)
		return;
	store_dav_owner_revive(st, j->id);
	store_mbs_forget(st, j->id);
}

int store_mig_drop(store *st, const uint8_t user[16], store_cb cb, store_sync_result *res_r)
{
	store_cfg_job *j = store_cfg_job_new(apply_drop, NULL, NULL, NULL, NULL, NULL);

	memcpy(j->id, user, 16);
	j->after = after_drop;
	return store_cfg_submit(st, j, cb, res_r);
}
