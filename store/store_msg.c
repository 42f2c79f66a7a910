/* store_msg.c - messages: append and delivery (UID/modseq allocated and the batch queued
 * under the mailbox mutex), flags, expunge, copy/move, and the message and change scans. */
#include "store_private.h"
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

int store_mbx_finish(store *st, store_commit *c, store_mbx **ms, size_t n, store_sync_result *res_r)
{
	int blocking = c->cb.fn == NULL;

	store_mbx_enqueue(st, c, ms, n);
	for (size_t i = 0; i < n; i++)
		store_mbx_unlock(ms[i]);
	if (!blocking)
		return STORE_OK;
	store_commit_wait(st, c);
	return store_commit_run(st, c, res_r);
}

void store_msg_put_meta(store *st, rocksdb_writebatch_t *wb, const uint8_t user[16],
		     const uint8_t folder[16], const Tern__MessageMeta *mm)
{
	uint8_t k[SK_MSG_LEN];

	sk_msg(k, user, folder, mm->uid);
	store_wb_put_record(wb, st, CF_MSG, k, sizeof(k), &mm->base);
}

/* A `changes` row for one message and its event for the watchers. */
void store_msg_put_change(store *st, store_commit *c, const uint8_t user[16], const uint8_t folder[16],
		       uint64_t modseq, Tern__Change__Kind kind, const Tern__MessageMeta *mm)
{
	Tern__Change ch = TERN__CHANGE__INIT;
	uint8_t k[SK_CHANGE_LEN];

	ch.kind = kind;
	ch.uid = mm->uid;
	if (kind != TERN__CHANGE__KIND__EXPUNGE) {
		ch.flags = mm->flags;
		ch.n_keywords = mm->n_keywords;
		ch.keywords = mm->keywords;
	}
	ch.time = (uint64_t)tern_now();
	sk_change(k, user, folder, modseq);
	store_wb_put_record(c->wb, st, CF_CHANGES, k, sizeof(k), &ch.base);
	store_commit_add_event(c, user, folder, modseq, kind, mm->uid);
}

void store_msg_put_blobref(store *st, rocksdb_writebatch_t *wb, const uint8_t sha[32],
			const uint8_t user[16], const uint8_t folder[16], uint32_t uid)
{
	Tern__BlobRef r = TERN__BLOB_REF__INIT;
	uint8_t k[SK_BLOBREF_LEN];

	r.time = (uint64_t)tern_now();
	sk_blobref(k, sha, user, folder, uid);
	store_wb_put_record(wb, st, CF_BLOBREF, k, sizeof(k), &r.base);
}

/* Quota of the mailbox's user: would one more message of `size` bytes exceed it? */
static int over_quota(store *st, store_mbx *m, uint64_t size)
{
	Tern__User *u = NULL;
	int over = 0;

	if (store_user_get_by_id(st, m->user, &u) != STORE_OK)
		return 0;
	if (u->quota_bytes && m->rec->bytes + size > u->quota_bytes)
		over = 1;
	if (u->quota_items && m->rec->items + 1 > u->quota_items)
		over = 1;
	tern__user__free_unpacked(u, NULL);
	return over;
}

/* Add one message to the locked mailbox m within batch c. */
static int append_locked(store *st, store_commit *c, store_mbx *m, const store_append *a,
			 const uint8_t sha[32])
{
	Tern__Folder *f = store_mbx_folder(m, a->folder);
	Tern__MessageMeta mm = TERN__MESSAGE_META__INIT;
	uint64_t size = a->header_prefix_len + a->body_len;

	if (!f)
		return STORE_ENOTFOUND;
	if (a->enforce_quota && over_quota(st, m, size))
		return STORE_EQUOTA;
	mm.uid = f->uidnext++;
	mm.modseq = ++f->highestmodseq;
	mm.flags = a->flags;
	mm.keywords = (char **)a->keywords;
	mm.n_keywords = a->nkeywords;
	mm.internaldate = (uint64_t)(a->internaldate ? a->internaldate : tern_now());
	mm.size = size;
	mm.blob.data = (uint8_t *)sha;
	mm.blob.len = 32;
	mm.blob_size = a->body_len;
	mm.header_prefix.data = (uint8_t *)a->header_prefix;
	mm.header_prefix.len = a->header_prefix_len;
	f->messages++;
	if (!(a->flags & TERN__FLAG__FLAG_SEEN))
		f->unseen++;
	f->bytes += size;
	m->rec->bytes += size;
	m->rec->items++;
	store_msg_put_meta(st, c->wb, m->user, f->id.data, &mm);
	store_msg_put_change(st, c, m->user, f->id.data, mm.modseq, TERN__CHANGE__KIND__APPEND, &mm);
	store_mbx_put_folder(st, c->wb, m, f);
	store_mbx_put_usage(st, c->wb, m);
	store_blob_hold(st, c, sha, a->body, a->body_len);
	store_msg_put_blobref(st, c->wb, sha, m->user, f->id.data, mm.uid);
	c->res.uid = mm.uid;
	c->res.uidvalidity = f->uidvalidity;
	c->res.modseq = mm.modseq;
	memcpy(c->res.id, f->id.data, 16);
	return STORE_OK;
}

static const char *append_error(int rc)
{
	switch (rc) {
	case STORE_ENOTFOUND: return "no such mailbox or folder";
	case STORE_EQUOTA: return "mailbox is over quota";
	case STORE_EDISK: return "disk space low, try again later";
	}
	return store_strerror(rc);
}

static int disk_full(store *st)
{
	if (store_disk(st) != STORE_DISK_HARD)
		return 0;
	tlog(TLOG_ERROR, "store: new mail refused: free disk space below the hard limit");
	return 1;
}

int store_msg_append(store *st, const store_append *a, store_cb cb, store_sync_result *res_r)
{
	store_commit *c = store_commit_new(cb);
	uint8_t sha[32];
	store_mbx *m;
	int rc;

	if (disk_full(st))
		return store_commit_fail(st, c, res_r, STORE_EDISK, "%s", append_error(STORE_EDISK));
	SHA256(a->body, a->body_len, sha);
	if ((rc = store_mbx_lock(st, a->user, &m)) != STORE_OK)
		return store_commit_fail(st, c, res_r, rc, "%s", append_error(rc));
	if ((rc = append_locked(st, c, m, a, sha)) != STORE_OK) {
		store_mbx_unlock(m);
		return store_commit_fail(st, c, res_r, rc, "%s", append_error(rc));
	}
	return store_mbx_finish(st, c, &m, 1, res_r);
}

static int cmp_user(const void *x, const void *y)
{
	return memcmp(*(const uint8_t *const *)x, *(const uint8_t *const *)y, 16);
}

int store_deliver(store *st, const store_append *rcpts, size_t n, store_cb cb, store_sync_result *res_r)
{
	store_commit *c = store_commit_new(cb);
	const uint8_t **users = calloc(n ? n : 1, sizeof(*users));
	store_mbx **ms = calloc(n ? n : 1, sizeof(*ms));
	size_t nu = 0, nm = 0, ok = 0;
	uint8_t sha[32];
	int first_err = STORE_ENOTFOUND;

	c->rcpt_rc = calloc(n ? n : 1, sizeof(int));
	if (!users || !ms || !c->rcpt_rc)
		abort();
	if (n == 0 || disk_full(st)) {
		free(users);
		free(ms);
		int rc = n ? STORE_EDISK : STORE_EINVAL;

		return store_commit_fail(st, c, res_r, rc, "%s", n ? append_error(rc) : "no recipients");
	}
	SHA256(rcpts[0].body, rcpts[0].body_len, sha);
	/* Lock each distinct mailbox once, in user-id order, so deliveries never deadlock. */
	for (size_t i = 0; i < n; i++)
		users[nu++] = rcpts[i].user;
	qsort(users, nu, sizeof(*users), cmp_user);
	for (size_t i = 0; i < nu; i++) {
		if (i > 0 && memcmp(users[i], users[i - 1], 16) == 0)
			continue;
		if (store_mbx_lock(st, users[i], &ms[nm]) == STORE_OK)
			nm++;
	}
	for (size_t i = 0; i < n; i++) {
		store_mbx *m = NULL;
		int rc = STORE_ENOTFOUND;
		store_append a = rcpts[i];
		store_result keep = c->res;

		a.body = rcpts[0].body;
		a.body_len = rcpts[0].body_len;
		for (size_t j = 0; j < nm && !m; j++)
			if (memcmp(ms[j]->user, a.user, 16) == 0)
				m = ms[j];
		if (m)
			rc = append_locked(st, c, m, &a, sha);
		c->rcpt_rc[i] = rc;
		if (rc == STORE_OK && ok++ > 0)
			c->res = keep;           /* res describes the first recipient */
		if (rc != STORE_OK && first_err == STORE_ENOTFOUND)
			first_err = rc;
	}
	free(users);
	c->res.rcpt_rc = c->rcpt_rc;
	if (ok == 0) {
		for (size_t j = 0; j < nm; j++)
			store_mbx_unlock(ms[j]);
		free(ms);
		return store_commit_fail(st, c, res_r, first_err, "%s", append_error(first_err));
	}
	int rc = store_mbx_finish(st, c, ms, nm, res_r);

	free(ms);
	return rc;
}
