/* store_msg_ops.c - changes to stored messages (flags, expunge, copy/move) and the
 * message and change scans. Writers wait until the mailbox has no batch in flight before
 * reading message rows, so they always change the latest version. */
#include "store_private.h"
#include <stdlib.h>
#include <string.h>

int store_msg_get(store *st, const uint8_t user[16], const uint8_t folder[16], uint32_t uid,
		  Tern__MessageMeta **m_r)
{
	uint8_t k[SK_MSG_LEN];

	sk_msg(k, user, folder, uid);
	return store_db_get_record(st, CF_MSG, k, sizeof(k), &tern__message_meta__descriptor,
				   (ProtobufCMessage **)m_r);
}

typedef struct msg_scan_ctx {
	int (*fn)(const Tern__MessageMeta *m, void *arg);
	void *arg;
} msg_scan_ctx;

static int msg_scan_one(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	msg_scan_ctx *s = arg;
	Tern__MessageMeta *mm = tern__message_meta__unpack(NULL, vn, (const uint8_t *)v);
	int rc;

	if (!mm)
		return STORE_EIO;
	rc = s->fn(mm, s->arg);
	tern__message_meta__free_unpacked(mm, NULL);
	return rc;
}

int store_msg_scan(store *st, const uint8_t user[16], const uint8_t folder[16], uint32_t from_uid,
		   int (*fn)(const Tern__MessageMeta *m, void *arg), void *arg)
{
	uint8_t from[SK_MSG_LEN];
	msg_scan_ctx s = { fn, arg };
	int rc;

	sk_msg(from, user, folder, from_uid);
	rc = store_db_scan(st, CF_MSG, from, SK_FOLDER_LEN, from, sizeof(from), msg_scan_one, &s);
	return rc < 0 ? rc : STORE_OK;
}

typedef struct change_scan_ctx {
	int (*fn)(uint64_t modseq, const Tern__Change *c, void *arg);
	void *arg;
} change_scan_ctx;

static int change_scan_one(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	change_scan_ctx *s = arg;
	uint8_t user[16], folder[16];
	uint64_t modseq;
	Tern__Change *ch;
	int rc;

	if (sk_change_parse(k, kn, user, folder, &modseq) != 0)
		return 0;
	ch = tern__change__unpack(NULL, vn, (const uint8_t *)v);
	if (!ch)
		return STORE_EIO;
	rc = s->fn(modseq, ch, s->arg);
	tern__change__free_unpacked(ch, NULL);
	return rc;
}

int store_changes_scan(store *st, const uint8_t user[16], const uint8_t folder[16], uint64_t since,
		       int (*fn)(uint64_t modseq, const Tern__Change *c, void *arg), void *arg)
{
	uint8_t from[SK_CHANGE_LEN];
	change_scan_ctx s = { fn, arg };
	int rc;

	if (since == UINT64_MAX)
		return STORE_OK;
	sk_change(from, user, folder, since + 1);
	rc = store_db_scan(st, CF_CHANGES, from, SK_FOLDER_LEN, from, sizeof(from), change_scan_one, &s);
	return rc < 0 ? rc : STORE_OK;
}

/* ---- flags ---- */

static int has_keyword(char **list, size_t n, const char *k)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(list[i], k) == 0)
			return 1;
	return 0;
}

/* Apply op to one message; 1 when its flags or keywords changed. */
static int change_flags(Tern__MessageMeta *mm, store_flags_op op, uint32_t flags,
			const char *const *kw, size_t nkw)
{
	uint32_t nf = op == STORE_FLAGS_SET ? flags : op == STORE_FLAGS_ADD ? mm->flags | flags
									       : mm->flags & ~flags;
	char **list = malloc((mm->n_keywords + nkw + 1) * sizeof(*list));
	size_t n = 0;
	int changed = nf != mm->flags;

	if (!list)
		abort();
	for (size_t i = 0; i < mm->n_keywords; i++) {
		int keep = op == STORE_FLAGS_ADD ||
			   (op == STORE_FLAGS_REMOVE && !has_keyword((char **)kw, nkw, mm->keywords[i])) ||
			   (op == STORE_FLAGS_SET && has_keyword((char **)kw, nkw, mm->keywords[i]));
		if (keep)
			list[n++] = mm->keywords[i];
		else
			free(mm->keywords[i]);
	}
	changed |= n != mm->n_keywords;
	if (op != STORE_FLAGS_REMOVE) {
		for (size_t i = 0; i < nkw; i++) {
			if (has_keyword(list, n, kw[i]))
				continue;
			list[n] = strdup(kw[i]);
			if (!list[n++])
				abort();
			changed = 1;
		}
	}
	free(mm->keywords);
	mm->keywords = list;
	mm->n_keywords = n;
	mm->flags = nf;
	return changed;
}

/* Lock the mailbox of user (idle) and find folder in it for c; on failure c is failed
 * ("no such mailbox" / "no such folder") and its result returned. */
static int lock_folder(store *st, store_commit *c, const uint8_t user[16],
		       const uint8_t folder[16], store_sync_result *res_r, store_mbx **m_r,
		       Tern__Folder **f_r)
{
	int rc;

	if ((rc = store_mbx_lock_idle(st, c, user, res_r, m_r)) != STORE_OK)
		return rc;
	if (!(*f_r = store_mbx_folder(*m_r, folder))) {
		store_mbx_unlock(*m_r);
		return store_commit_fail(st, c, res_r, STORE_ENOTFOUND, "no such folder");
	}
	return STORE_OK;
}

int store_msg_set_flags(store *st, const uint8_t user[16], const uint8_t folder[16],
			const uint32_t *uids, size_t n, store_flags_op op, uint32_t flags,
			const char *const *keywords, size_t nkeywords, uint64_t unchanged_since,
			store_cb cb, store_sync_result *res_r)
{
	store_commit *c = store_commit_new(cb);
	Tern__Folder *f;
	store_mbx *m;
	int rc;

	if ((rc = lock_folder(st, c, user, folder, res_r, &m, &f)) != STORE_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		Tern__MessageMeta *mm = NULL;

		if (store_msg_get(st, user, folder, uids[i], &mm) != STORE_OK)
			continue;
		int was_seen = (mm->flags & TERN__FLAG__FLAG_SEEN) != 0;

		if ((unchanged_since && mm->modseq > unchanged_since) ||
		    !change_flags(mm, op, flags, keywords, nkeywords)) {
			tern__message_meta__free_unpacked(mm, NULL);
			continue;
		}
		int seen = (mm->flags & TERN__FLAG__FLAG_SEEN) != 0;

		if (was_seen && !seen)
			f->unseen++;
		else if (!was_seen && seen && f->unseen)
			f->unseen--;
		mm->modseq = ++f->highestmodseq;
		store_msg_put_meta(st, c->wb, user, folder, mm);
		store_msg_put_change(st, c, user, folder, mm->modseq, TERN__CHANGE__KIND__FLAGS, mm);
		c->res.modseq = mm->modseq;
		tern__message_meta__free_unpacked(mm, NULL);
	}
	store_mbx_put_folder(st, c->wb, m, f);
	if (!c->res.modseq)
		c->res.modseq = f->highestmodseq;
	return store_mbx_finish(st, c, &m, 1, res_r);
}

/* ---- expunge, copy, move ---- */

/* Remove one message's rows within c (mailbox m locked and idle). */
static void expunge_one(store *st, store_commit *c, store_mbx *m, Tern__Folder *f,
			Tern__MessageMeta *mm)
{
	uint8_t k[SK_MSG_LEN], rk[SK_BLOBREF_LEN];

	sk_msg(k, m->user, f->id.data, mm->uid);
	rocksdb_writebatch_delete_cf(c->wb, st->cf[CF_MSG], (const char *)k, sizeof(k));
	if (mm->blob.len == 32) {
		sk_blobref(rk, mm->blob.data, m->user, f->id.data, mm->uid);
		rocksdb_writebatch_delete_cf(c->wb, st->cf[CF_BLOBREF], (const char *)rk, sizeof(rk));
		store_blob_mark_orphan(st, c->wb, mm->blob.data);
	}
	uint64_t modseq = ++f->highestmodseq;

	store_msg_put_change(st, c, m->user, f->id.data, modseq, TERN__CHANGE__KIND__EXPUNGE, mm);
	c->res.modseq = modseq;
	if (f->messages)
		f->messages--;
	if (!(mm->flags & TERN__FLAG__FLAG_SEEN) && f->unseen)
		f->unseen--;
	f->bytes = f->bytes > mm->size ? f->bytes - mm->size : 0;
}

int store_msg_expunge(store *st, const uint8_t user[16], const uint8_t folder[16],
		      const uint32_t *uids, size_t n, store_cb cb, store_sync_result *res_r)
{
	store_commit *c = store_commit_new(cb);
	Tern__Folder *f;
	store_mbx *m;
	int rc;

	if ((rc = lock_folder(st, c, user, folder, res_r, &m, &f)) != STORE_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		Tern__MessageMeta *mm = NULL;

		if (store_msg_get(st, user, folder, uids[i], &mm) != STORE_OK)
			continue;
		expunge_one(st, c, m, f, mm);
		m->rec->bytes = m->rec->bytes > mm->size ? m->rec->bytes - mm->size : 0;
		if (m->rec->items)
			m->rec->items--;
		tern__message_meta__free_unpacked(mm, NULL);
	}
	store_mbx_put_folder(st, c->wb, m, f);
	store_mbx_put_usage(st, c->wb, m);
	if (!c->res.modseq)
		c->res.modseq = f->highestmodseq;
	return store_mbx_finish(st, c, &m, 1, res_r);
}

/* Would adding `bytes` in `items` messages pass the quota of the mailbox's user? */
static int copy_over_quota(store *st, store_mbx *m, uint64_t bytes, uint64_t items)
{
	Tern__User *u = NULL;
	int over;

	if (store_user_get_by_id(st, m->user, &u) != STORE_OK)
		return 0;
	over = (u->quota_bytes && m->rec->bytes + bytes > u->quota_bytes) ||
	       (u->quota_items && m->rec->items + items > u->quota_items);
	tern__user__free_unpacked(u, NULL);
	return over;
}

/* The messages of uids that exist in folder, read once (caller frees each). */
static Tern__MessageMeta **copy_load(store *st, const uint8_t user[16], const uint8_t folder[16],
				     const uint32_t *uids, size_t n, size_t *nfound_r, uint64_t *bytes_r)
{
	Tern__MessageMeta **v = calloc(n ? n : 1, sizeof(*v));
	size_t k = 0;

	if (!v)
		abort();
	*bytes_r = 0;
	for (size_t i = 0; i < n; i++)
		if (store_msg_get(st, user, folder, uids[i], &v[k]) == STORE_OK)
			*bytes_r += v[k++]->size;
	*nfound_r = k;
	return v;
}

int store_msg_copy(store *st, const uint8_t user[16], const uint8_t from[16], const uint8_t to[16],
		   const uint32_t *uids, size_t n, int how, store_cb cb, store_sync_result *res_r)
{
	store_commit *c = store_commit_new(cb);
	int move = (how & STORE_COPY_MOVE) != 0;
	uint32_t first_uid = 0;
	uint64_t bytes;
	size_t nfound;
	store_mbx *m;
	int rc;

	if ((rc = store_mbx_lock_idle(st, c, user, res_r, &m)) != STORE_OK)
		return rc;
	Tern__Folder *src = store_mbx_folder(m, from), *dst = store_mbx_folder(m, to);

	if (!src || !dst) {
		store_mbx_unlock(m);
		return store_commit_fail(st, c, res_r, STORE_ENOTFOUND, "no such folder");
	}
	/* read every source row before writing: with src == dst the new rows must not be
	 * seen as sources */
	Tern__MessageMeta **msgs = copy_load(st, user, from, uids, n, &nfound, &bytes);

	if (!move && (how & STORE_COPY_QUOTA) && copy_over_quota(st, m, bytes, nfound)) {
		for (size_t i = 0; i < nfound; i++)
			tern__message_meta__free_unpacked(msgs[i], NULL);
		free(msgs);
		store_mbx_unlock(m);
		return store_commit_fail(st, c, res_r, STORE_EQUOTA, "mailbox is over quota");
	}
	for (size_t i = 0; i < nfound; i++) {
		Tern__MessageMeta *mm = msgs[i];

		if (move) {
			expunge_one(st, c, m, src, mm);
		} else {
			m->rec->bytes += mm->size;
			m->rec->items++;
		}
		mm->uid = dst->uidnext++;
		mm->modseq = ++dst->highestmodseq;
		if (!first_uid)
			first_uid = mm->uid;
		dst->messages++;
		if (!(mm->flags & TERN__FLAG__FLAG_SEEN))
			dst->unseen++;
		dst->bytes += mm->size;
		store_msg_put_meta(st, c->wb, user, to, mm);
		store_msg_put_change(st, c, user, to, mm->modseq, TERN__CHANGE__KIND__APPEND, mm);
		if (mm->blob.len == 32) {
			store_blob_hold(st, c, mm->blob.data, NULL, 0);
			store_msg_put_blobref(st, c->wb, mm->blob.data, user, to, mm->uid);
		}
		c->res.modseq = mm->modseq;
		tern__message_meta__free_unpacked(mm, NULL);
	}
	free(msgs);
	store_mbx_put_folder(st, c->wb, m, src);
	if (dst != src)
		store_mbx_put_folder(st, c->wb, m, dst);
	store_mbx_put_usage(st, c->wb, m);
	c->res.uid = first_uid;
	c->res.uidvalidity = dst->uidvalidity;
	return store_mbx_finish(st, c, &m, 1, res_r);
}
