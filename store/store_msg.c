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

/* Add one message to the locked mailbox m within batch c (body hash sha); a refused
 * append changes nothing, not even the quota warning time. */
static int append_locked(store *st, store_commit *c, store_mbx *m, const store_append *a,
			 const uint8_t sha[32])
{
	Tern__Folder *f = store_mbx_folder(m, a->folder);
	Tern__MessageMeta mm = TERN__MESSAGE_META__INIT;
	uint64_t size = a->header_prefix_len + a->body_len;

	if (!f)
		return STORE_ENOTFOUND;
	/* A migration holds the mailbox (checked under its lock, like the freeze). */
	if (store_mbox_writable(st, m->user, NULL, 0) != STORE_OK)
		return STORE_EREFUSED;
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
	mm.mime = (Tern__MimeInfo *)a->mime;
	f->messages++;
	if (!(a->flags & TERN__FLAG__FLAG_SEEN))
		f->unseen++;
	f->bytes += size;
	m->rec->bytes += size;
	m->rec->items++;
	if (a->quota_warned_at)
		m->rec->quota_warned_at = (uint64_t)a->quota_warned_at;
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
	case STORE_EREFUSED: return "the mailbox is moving to another node";
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
	char why[STORE_ERR_MAX];
	uint8_t sha[32];
	store_mbx *m;
	int rc;

	if (disk_full(st))
		return store_commit_fail(st, c, res_r, STORE_EDISK, "%s", append_error(STORE_EDISK));
	SHA256(a->body, a->body_len, sha);
	if ((rc = store_mbx_lock(st, a->user, &m)) != STORE_OK)
		return store_commit_fail(st, c, res_r, rc, "%s", append_error(rc));
	if ((rc = store_mbox_writable(st, a->user, why, sizeof(why))) != STORE_OK) {
		store_mbx_unlock(m);
		return store_commit_fail(st, c, res_r, rc, "%s", why);
	}
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

/* sha[i] = sha256 of local[i]'s body, sha[n] of the queued body (when has_queue); a body
 * given again by the same pointer and length is not hashed again. Equal contents given
 * twice hash alike, and store_blob_hold() writes each hash once per batch. */
static void hash_bodies(const store_append *local, size_t n, const void *qbody, size_t qlen,
			int has_queue, uint8_t (*sha)[32])
{
	for (size_t i = 0; i < n + (has_queue ? 1 : 0); i++) {
		const void *b = i < n ? local[i].body : qbody;
		size_t len = i < n ? local[i].body_len : qlen;
		size_t j = 0;

		while (j < i && !(local[j].body == b && local[j].body_len == len))
			j++;
		if (j < i)
			memcpy(sha[i], sha[j], 32);
		else
			SHA256(b, len, sha[i]);
	}
}

/* Fill the stored form of the caller's queue entry: id (made when empty), blob, size
 * (header prefix + body, as it will be sent) and times. */
static int prepare_entry(store *st, const Tern__QueueEntry *q, size_t qlen, uint8_t id[16],
			 uint8_t sha[32], Tern__QueueEntry *e, const char **why_r)
{
	int64_t now = tern_now();

	*e = *q;
	if (q->id.len == 16) {
		memcpy(id, q->id.data, 16);
		int rc = store_queue_exists(st, id);

		if (rc != 0) {
			*why_r = rc == 1 ? "queue entry exists" : "cannot read the queue";
			return rc == 1 ? STORE_EEXISTS : rc;
		}
	} else if (q->id.len == 0) {
		tern_uuid_new(id);
	} else {
		*why_r = "bad queue id";
		return STORE_EINVAL;
	}
	e->id.data = id;
	e->id.len = 16;
	e->blob.data = sha;
	e->blob.len = 32;
	e->size = q->header_prefix.len + qlen;
	if (!e->created)
		e->created = (uint64_t)now;
	if (!e->next_try)
		e->next_try = (uint64_t)now;
	return STORE_OK;
}

/* The working set of one submission. */
typedef struct submit_ctx {
	const uint8_t **users;
	store_mbx **ms;
	int *touched;                 /* ms[j] got a message */
	uint8_t (*sha)[32];
	size_t nm;
} submit_ctx;

static void submit_ctx_free(submit_ctx *x)
{
	free(x->users);
	free(x->ms);
	free(x->touched);
	free(x->sha);
}

/* Lock each distinct mailbox once, in user-id order, so deliveries never deadlock; the
 * ones that cannot be locked (no such user) are left out. */
static void lock_mailboxes(store *st, const store_append *local, size_t n, submit_ctx *x)
{
	for (size_t i = 0; i < n; i++)
		x->users[i] = local[i].user;
	qsort(x->users, n, sizeof(*x->users), cmp_user);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && memcmp(x->users[i], x->users[i - 1], 16) == 0)
			continue;
		if (store_mbx_lock(st, x->users[i], &x->ms[x->nm]) == STORE_OK)
			x->nm++;
	}
}

/* Queue c for the mailboxes that got a message (and the queue entry qe, if any), unlock
 * every mailbox, and in the blocking form wait until durable. */
static int submit_finish(store *st, store_commit *c, const Tern__QueueEntry *qe, const void *qbody,
			 size_t qlen, submit_ctx *x, store_sync_result *res_r)
{
	int blocking = c->cb.fn == NULL;
	size_t nt = 0;

	for (size_t j = 0; j < x->nm; j++) {
		if (x->touched[j])
			x->ms[nt++] = x->ms[j];
		else
			store_mbx_unlock(x->ms[j]);
	}
	if (qe) {
		store_blob_hold(st, c, qe->blob.data, qbody, qlen);
		memcpy(c->res.id, qe->id.data, 16);
		store_queue_enqueue_new(st, c, qe, x->ms, nt);
	} else {
		store_mbx_enqueue(st, c, x->ms, nt);
	}
	for (size_t j = 0; j < nt; j++)
		store_mbx_unlock(x->ms[j]);
	submit_ctx_free(x);
	if (!blocking)
		return STORE_OK;
	store_commit_wait(st, c);
	return store_commit_run(st, c, res_r);
}

int store_submit(store *st, const store_append *local, size_t nlocal, const Tern__QueueEntry *queued,
		 const void *queued_body, size_t queued_len, store_cb cb, store_sync_result *res_r)
{
	store_commit *c = store_commit_new(cb);
	size_t slots = nlocal + 1, ok = 0;
	submit_ctx x = { 0 };
	Tern__QueueEntry qe;
	uint8_t qid[16];
	const char *why = NULL;
	int rc, first_err = STORE_ENOTFOUND;

	x.users = calloc(slots, sizeof(*x.users));
	x.ms = calloc(slots, sizeof(*x.ms));
	x.touched = calloc(slots, sizeof(*x.touched));
	x.sha = calloc(slots, sizeof(*x.sha));
	c->rcpt_rc = calloc(slots, sizeof(int));
	if (!x.users || !x.ms || !x.touched || !x.sha || !c->rcpt_rc)
		abort();
	if (nlocal == 0 && !queued) {
		submit_ctx_free(&x);
		return store_commit_fail(st, c, res_r, STORE_EINVAL, "no recipients");
	}
	if (disk_full(st)) {
		submit_ctx_free(&x);
		return store_commit_fail(st, c, res_r, STORE_EDISK, "%s", append_error(STORE_EDISK));
	}
	if (queued && (rc = prepare_entry(st, queued, queued_len, qid, x.sha[nlocal], &qe, &why)) != 0) {
		submit_ctx_free(&x);
		return store_commit_fail(st, c, res_r, rc, "%s", why);
	}
	hash_bodies(local, nlocal, queued_body, queued_len, queued != NULL, x.sha);
	lock_mailboxes(st, local, nlocal, &x);
	for (size_t i = 0; i < nlocal; i++) {
		store_result keep = c->res;
		size_t j = 0;

		while (j < x.nm && memcmp(x.ms[j]->user, local[i].user, 16) != 0)
			j++;
		rc = j < x.nm ? append_locked(st, c, x.ms[j], &local[i], x.sha[i]) : STORE_ENOTFOUND;
		c->rcpt_rc[i] = rc;
		if (rc == STORE_OK) {
			x.touched[j] = 1;
			if (ok++ > 0)
				c->res = keep;   /* res describes the first recipient */
		} else if (first_err == STORE_ENOTFOUND) {
			first_err = rc;
		}
	}
	c->res.rcpt_rc = c->rcpt_rc;
	if (ok == 0 && !queued) {
		for (size_t j = 0; j < x.nm; j++)
			store_mbx_unlock(x.ms[j]);
		submit_ctx_free(&x);
		return store_commit_fail(st, c, res_r, first_err, "%s", append_error(first_err));
	}
	return submit_finish(st, c, queued ? &qe : NULL, queued_body, queued_len, &x, res_r);
}

/* One body to n mailboxes: rcpts[0]'s body for everyone (the other bodies are ignored). */
int store_deliver(store *st, const store_append *rcpts, size_t n, store_cb cb, store_sync_result *res_r)
{
	store_append *a = calloc(n ? n : 1, sizeof(*a));
	int rc;

	if (!a)
		abort();
	for (size_t i = 0; i < n; i++) {
		a[i] = rcpts[i];
		a[i].body = rcpts[0].body;
		a[i].body_len = rcpts[0].body_len;
	}
	rc = store_submit(st, a, n, NULL, NULL, 0, cb, res_r);
	free(a);
	return rc;
}
