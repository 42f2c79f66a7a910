/* migrate_source.c - the bulk handler: the source's answers to its target (Begin, Rows,
 * Delta, Heads, BlobChunk, Freeze, Unfreeze, Digest, Drop), the target's answer to a
 * Probe, and the settling of mailboxes left frozen here. Runs on the cluster's bulk
 * thread, one request at a time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "log.h"
#include "migrate_private.h"
#include "util.h"

/* Rows gathered from a store scan, deep-copied (the store's pointers die with the call). */
typedef struct rows_acc {
	Tern__Migrate__Row **v;
	size_t n, cap;
} rows_acc;

/* store_mig_fn: copy one row. */
static int acc_row(const store_mig_row *r, void *arg)
{
	rows_acc *a = arg;

	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 64;
		Tern__Migrate__Row **nv = realloc(a->v, nc * sizeof(*nv));
		if (nv == NULL)
			return -1;
		a->v = nv;
		a->cap = nc;
	}
	Tern__Migrate__Row *row = malloc(sizeof(*row));
	uint8_t *kv = malloc(r->klen + r->vlen + 1);
	if (row == NULL || kv == NULL) {
		free(row);
		free(kv);
		return -1;
	}
	tern__migrate__row__init(row);
	memcpy(kv, r->key, r->klen);
	if (r->vlen > 0)
		memcpy(kv + r->klen, r->val, r->vlen);
	row->cf = (uint32_t)r->cf;
	row->key.data = kv;
	row->key.len = r->klen;
	row->value.data = kv + r->klen;
	row->value.len = r->vlen;
	row->deleted = r->deleted != 0;
	a->v[a->n++] = row;
	return 0;
}

/* Free the copies. */
static void acc_free(rows_acc *a)
{
	for (size_t i = 0; i < a->n; i++) {
		free(a->v[i]->key.data);
		free(a->v[i]);
	}
	free(a->v);
	memset(a, 0, sizeof(*a));
}

/* Pack a RowsOk into body. */
static void pack_rows(tbuf *body, rows_acc *a, int more, uint64_t upto)
{
	Tern__Migrate__RowsOk ok = TERN__MIGRATE__ROWS_OK__INIT;
	ok.rows = a->v;
	ok.n_rows = a->n;
	ok.more = more != 0;
	ok.upto = upto;
	mig_pack(body, &ok.base);
}

/* The heads' delta bases: the modseq of every folder and collection. */
static int head_modseq(const store_mig_row *r, void *arg)
{
	Tern__Migrate__BeginOk *ok = arg;
	static const uint8_t zero[16];
	Tern__Migrate__Head *h;
	uint64_t modseq;

	if (r->klen != 32 || memcmp((const uint8_t *)r->key + 16, zero, 16) == 0)
		return 0;
	if (r->cf == STORE_MIG_FOLDER) {
		Tern__Folder *f = tern__folder__unpack(NULL, r->vlen, r->val);
		if (f == NULL)
			return -1;
		modseq = f->highestmodseq;
		tern__folder__free_unpacked(f, NULL);
	} else if (r->cf == STORE_MIG_DAV) {
		Tern__DavCollection *c = tern__dav_collection__unpack(NULL, r->vlen, r->val);
		if (c == NULL)
			return -1;
		modseq = c->modseq;
		tern__dav_collection__free_unpacked(c, NULL);
	} else {
		return 0;
	}
	Tern__Migrate__Head **nv = realloc(ok->heads, (ok->n_heads + 1) * sizeof(*nv));
	if (nv == NULL || (h = malloc(sizeof(*h) + 16)) == NULL) {
		if (nv != NULL)
			ok->heads = nv;
		return -1;
	}
	ok->heads = nv;
	tern__migrate__head__init(h);
	h->id.data = (uint8_t *)(h + 1);
	memcpy(h->id.data, (const uint8_t *)r->key + 16, 16);
	h->id.len = 16;
	h->dav = r->cf == STORE_MIG_DAV;
	h->modseq = modseq;
	ok->heads[ok->n_heads++] = h;
	return 0;
}

/* Begin: totals and delta bases. */
static int do_begin(migrate *m, const uint8_t user[16], tbuf *body)
{
	Tern__Migrate__BeginOk ok = TERN__MIGRATE__BEGIN_OK__INIT;
	int rc = store_mig_totals(m->st, user, &ok.bytes, &ok.messages, &ok.dav_objects);

	if (rc == STORE_OK)
		rc = store_mig_heads(m->st, user, head_modseq, &ok);
	if (rc == STORE_OK)
		mig_pack(body, &ok.base);
	for (size_t i = 0; i < ok.n_heads; i++)
		free(ok.heads[i]);
	free(ok.heads);
	return rc;
}

/* Digest: the store's entries as FolderDigests. */
static int do_digest(migrate *m, const uint8_t user[16], tbuf *body)
{
	store_mig_digest_entry *e = NULL;
	size_t n = 0;
	int rc = store_mig_digest(m->st, user, &e, &n);

	if (rc != STORE_OK)
		return rc;
	Tern__Migrate__DigestOk ok = TERN__MIGRATE__DIGEST_OK__INIT;
	Tern__Migrate__FolderDigest *fd = calloc(n ? n : 1, sizeof(*fd));
	Tern__Migrate__FolderDigest **pv = calloc(n ? n : 1, sizeof(*pv));
	static const uint8_t zero[16];
	if (fd == NULL || pv == NULL) {
		free(fd);
		free(pv);
		free(e);
		return STORE_EIO;
	}
	for (size_t i = 0; i < n; i++) {
		tern__migrate__folder_digest__init(&fd[i]);
		fd[i].id.data = e[i].id;
		fd[i].id.len = memcmp(e[i].id, zero, 16) == 0 && !e[i].dav ? 0 : 16;
		fd[i].dav = e[i].dav != 0;
		fd[i].count = e[i].count;
		fd[i].bytes = e[i].bytes;
		fd[i].modseq = e[i].modseq;
		fd[i].sha256.data = e[i].sha;
		fd[i].sha256.len = 32;
		pv[i] = &fd[i];
	}
	ok.folders = pv;
	ok.n_folders = n;
	mig_pack(body, &ok.base);
	free(pv);
	free(fd);
	free(e);
	return STORE_OK;
}

/* Probe (asked of the target): what became of migration mid of user? */
static void do_probe(migrate *m, const char *peer, const uint8_t mid[16], const uint8_t user[16], tbuf *body)
{
	Tern__Migrate__ProbeOk ok = TERN__MIGRATE__PROBE_OK__INIT;
	Tern__MigrateJob *j = NULL;

	if (store_mig_job_get(m->st, user, &j) == STORE_OK && j->id.len == 16 && memcmp(j->id.data, mid, 16) == 0 &&
	    strcmp(j->source, peer) == 0) {
		switch (j->state) {
		case TERN__MIGRATE_JOB__STATE__DONE:
			ok.outcome = TERN__MIGRATE__PROBE_OK__OUTCOME__DONE;
			break;
		case TERN__MIGRATE_JOB__STATE__FAILED:
		case TERN__MIGRATE_JOB__STATE__CANCELLED:
			ok.outcome = TERN__MIGRATE__PROBE_OK__OUTCOME__ABORTED;
			break;
		default:
			ok.outcome = TERN__MIGRATE__PROBE_OK__OUTCOME__RUNNING;
		}
	}
	store_free_record(j);
	mig_pack(body, &ok.base);
}

/* May peer ask this of the user's mailbox here? The replicated record decides: data
 * requests and Freeze need MOVING(here -> peer); Drop needs ACTIVE(peer) (else BUSY: the
 * commit is not replicated here yet); Unfreeze anything but a committed move. */
static Tern__Migrate__Reply__Code check_source(migrate *m, const char *peer, const uint8_t user[16],
					       Tern__Migrate__Request__BodyCase what, tbuf *msg)
{
	Tern__User *u = NULL;
	char home[64];

	if (store_user_get_by_id(m->st, user, &u) != STORE_OK) {
		tbuf_append_str(msg, "no such user here");
		return TERN__MIGRATE__REPLY__CODE__NOT_FOUND;
	}
	store_home_node(m->st, u->home, home, sizeof(home));
	int moving = u->home_state == TERN__HOME_STATE__HOME_MOVING;
	int to_peer = moving && strcmp(u->home_target, peer) == 0;
	Tern__Migrate__Reply__Code code = TERN__MIGRATE__REPLY__CODE__OK;
	if (what == TERN__MIGRATE__REQUEST__BODY_DROP) {
		if (strcmp(home, peer) != 0 || moving) {
			tbuf_appendf(msg, "the home of %s@%s is not %s yet", u->name, u->domain, peer);
			code = TERN__MIGRATE__REPLY__CODE__BUSY;
		}
	} else if (what == TERN__MIGRATE__REQUEST__BODY_UNFREEZE) {
		if (strcmp(home, peer) == 0 && !moving) {
			tbuf_appendf(msg, "the move of %s@%s to %s is committed", u->name, u->domain, peer);
			code = TERN__MIGRATE__REPLY__CODE__REFUSED;
		}
	} else if (strcmp(home, m->self) != 0) {
		tbuf_appendf(msg, "%s@%s is not homed on node %s", u->name, u->domain, m->self);
		code = TERN__MIGRATE__REPLY__CODE__REFUSED;
	} else if (!moving) {
		tbuf_appendf(msg, "%s@%s is not moving (yet)", u->name, u->domain);
		code = TERN__MIGRATE__REPLY__CODE__BUSY;
	} else if (!to_peer) {
		tbuf_appendf(msg, "%s@%s is moving to node %s, not %s", u->name, u->domain, u->home_target, peer);
		code = TERN__MIGRATE__REPLY__CODE__REFUSED;
	}
	store_free_record(u);
	return code;
}

/* Freeze (idempotent for the same target), durable before the answer. */
static int do_freeze(migrate *m, const char *peer, const uint8_t mid[16], const uint8_t user[16], tbuf *msg)
{
	store_mbox_state s;
	Tern__MailboxState *rec = NULL;
	store_sync_result res;

	if (store_mbox_state_get(m->st, user, &s, &rec) != STORE_OK)
		return STORE_EIO;
	int same = s == STORE_MBOX_FROZEN && rec != NULL && strcmp(rec->peer, peer) == 0;
	store_free_record(rec);
	if (same)
		return STORE_OK;
	if (s != STORE_MBOX_ACTIVE) {
		tbuf_append_str(msg, "the mailbox is held by another migration");
		return STORE_EREFUSED;
	}
	int rc = store_mbox_state_set(m->st, user, STORE_MBOX_FROZEN, peer, mid, STORE_SYNC, &res);
	if (rc != STORE_OK) {
		tbuf_append_str(msg, res.error);
		return rc;
	}
	char uid[37];
	tern_uuid_str(user, uid);
	tlog(TLOG_OPERATIONS, "migrate: user %s frozen for the cut-over to node %s", uid, peer);
	mig_crash_if(m->faults.crash_frozen, "frozen");
	return STORE_OK;
}

/* After an unfreeze or a drop: the store's answer, and the node told that mail held
 * for the user may go. */
static int release_done(migrate *m, const uint8_t user[16], int rc, const store_sync_result *res, tbuf *msg)
{
	if (rc != STORE_OK) {
		tbuf_append_str(msg, res->error);
		return rc;
	}
	if (m->released != NULL)
		m->released(m->arg, user);
	return STORE_OK;
}

/* Unfreeze (abort before the commit): the mailbox is live here again. */
static int do_unfreeze(migrate *m, const uint8_t user[16], tbuf *msg)
{
	store_mbox_state s;
	store_sync_result res;

	if (store_mbox_state_get(m->st, user, &s, NULL) != STORE_OK)
		return STORE_EIO;
	if (s != STORE_MBOX_FROZEN)
		return STORE_OK;
	int rc = store_mbox_state_set(m->st, user, STORE_MBOX_ACTIVE, NULL, NULL, STORE_SYNC, &res);
	return release_done(m, user, rc, &res, msg);
}

/* Drop (committed elsewhere): the source's copy goes. */
static int do_drop(migrate *m, const uint8_t user[16], tbuf *msg)
{
	store_sync_result res;

	mig_crash_if(m->faults.crash_drop, "drop");
	int rc = store_mig_drop(m->st, user, STORE_SYNC, &res);
	return release_done(m, user, rc, &res, msg);
}

/* Rows, Delta, Heads: scan into a RowsOk. */
static int do_rows(migrate *m, const uint8_t user[16], const Tern__Migrate__Request *rq, tbuf *body, tbuf *msg)
{
	rows_acc a = { 0 };
	int more = 0, rc;
	uint64_t upto = 0;

	if (rq->body_case == TERN__MIGRATE__REQUEST__BODY_ROWS) {
		const Tern__Migrate__Rows *r = rq->rows;
		rc = store_mig_scan(m->st, user, (store_mig_cf)r->cf, r->after.len ? r->after.data : NULL, r->after.len,
				    r->max_bytes, acc_row, &a, &more);
	} else if (rq->body_case == TERN__MIGRATE__REQUEST__BODY_DELTA) {
		const Tern__Migrate__Delta *d = rq->delta;
		rc = store_mig_delta(m->st, user, d->id.data, d->dav, d->since, d->max_bytes, acc_row, &a, &upto,
				     &more);
	} else {
		rc = store_mig_heads(m->st, user, acc_row, &a);
	}
	if (rc == STORE_OK)
		pack_rows(body, &a, more, upto);
	else
		tbuf_append_str(msg, store_strerror(rc));
	acc_free(&a);
	return rc;
}

/* BlobChunk; the count of chunks with chunk 0 only (the target reads it there). */
static int do_blob(migrate *m, const Tern__Migrate__BlobChunk *b, tbuf *body, tbuf *msg)
{
	Tern__Migrate__BlobOk ok = TERN__MIGRATE__BLOB_OK__INIT;
	tbuf data = TBUF_INIT;

	int rc = store_blob_chunk(m->st, b->sha256.data, b->chunk, &data, b->chunk == 0 ? &ok.chunks : NULL);
	/* fault badblob:N - wrong bytes under a right checksum: only the blob's hash shows it */
	if (rc == STORE_OK && m->faults.badblob != 0 && atomic_fetch_add(&m->chunks, 1) + 1 == m->faults.badblob &&
	    data.len > 0)
		data.data[0] ^= 0x20;
	if (rc == STORE_OK) {
		ok.data.data = (uint8_t *)data.data;
		ok.data.len = data.len;
		mig_pack(body, &ok.base);
	} else {
		tbuf_append_str(msg, "no such blob chunk here");
	}
	tbuf_free(&data);
	return rc;
}

/* cluster_bulk_fn: decode, validate, check, answer. */
void mig_bulk_handler(void *arg, const char *peer, const void *req, size_t n, tbuf *reply)
{
	migrate *m = arg;
	tbuf body = TBUF_INIT, msg = TBUF_INIT;
	Tern__Migrate__Request *rq = mig_request_decode(req, n, &msg);
	Tern__Migrate__Reply__Code code = TERN__MIGRATE__REPLY__CODE__OK;
	int rc = STORE_OK;

	if (rq == NULL) {
		code = TERN__MIGRATE__REPLY__CODE__REFUSED;
		goto answer;
	}
	const uint8_t *mid = rq->migration_id.data, *user = rq->user_id.data;
	if (rq->body_case == TERN__MIGRATE__REQUEST__BODY_PROBE) {
		do_probe(m, peer, mid, user, &body);
		goto answer;
	}
	if ((code = check_source(m, peer, user, rq->body_case, &msg)) != TERN__MIGRATE__REPLY__CODE__OK)
		goto answer;
	switch (rq->body_case) {
	case TERN__MIGRATE__REQUEST__BODY_BEGIN:
		rc = do_begin(m, user, &body);
		break;
	case TERN__MIGRATE__REQUEST__BODY_ROWS:
	case TERN__MIGRATE__REQUEST__BODY_DELTA:
	case TERN__MIGRATE__REQUEST__BODY_HEADS:
		if (m->faults.slow_ms > 0 && rq->body_case == TERN__MIGRATE__REQUEST__BODY_ROWS)
			usleep((useconds_t)m->faults.slow_ms * 1000);
		rc = do_rows(m, user, rq, &body, &msg);
		break;
	case TERN__MIGRATE__REQUEST__BODY_BLOB:
		if (m->faults.slow_ms > 0)
			usleep((useconds_t)m->faults.slow_ms * 1000);
		rc = do_blob(m, rq->blob, &body, &msg);
		break;
	case TERN__MIGRATE__REQUEST__BODY_FREEZE:
		rc = do_freeze(m, peer, mid, user, &msg);
		break;
	case TERN__MIGRATE__REQUEST__BODY_UNFREEZE:
		rc = do_unfreeze(m, user, &msg);
		break;
	case TERN__MIGRATE__REQUEST__BODY_DIGEST:
		rc = do_digest(m, user, &body);
		break;
	case TERN__MIGRATE__REQUEST__BODY_DROP:
		rc = do_drop(m, user, &msg);
		break;
	default:
		rc = STORE_EINVAL;
		tbuf_append_str(&msg, "unknown request");
	}
	if (rc == STORE_ENOTFOUND)
		code = TERN__MIGRATE__REPLY__CODE__NOT_FOUND;
	else if (rc == STORE_EIO)
		code = TERN__MIGRATE__REPLY__CODE__INTERNAL;
	else if (rc != STORE_OK)
		code = TERN__MIGRATE__REPLY__CODE__REFUSED;
	if (rc != STORE_OK)
		tbuf_reset(&body);
answer:;
	unsigned nth = atomic_fetch_add(&m->replies, 1) + 1;
	mig_reply_pack(reply, code, tbuf_cstr(&msg), body.data, body.len, m->faults.corrupt != 0 && nth == m->faults.corrupt);
	if (rq != NULL)
		tern__migrate__request__free_unpacked(rq, NULL);
	tbuf_free(&body);
	tbuf_free(&msg);
}

/* Ask the target about a frozen mailbox: "unknown", "running", "done", "aborted",
 * or "unreachable" / "undecodable". */
static const char *probe_target(migrate *m, const char *target, const uint8_t mid[16], const uint8_t user[16])
{
	Tern__Migrate__Request rq = TERN__MIGRATE__REQUEST__INIT;
	Tern__Migrate__Probe probe = TERN__MIGRATE__PROBE__INIT;
	mig_conn c = { .m = m };
	tbuf req = TBUF_INIT, err = TBUF_INIT;
	Tern__Migrate__Reply *rep = NULL;
	const char *what = "unreachable";

	snprintf(c.node, sizeof(c.node), "%s", target);
	snprintf(c.user, sizeof(c.user), "probe");
	rq.body_case = TERN__MIGRATE__REQUEST__BODY_PROBE;
	rq.probe = &probe;
	mig_request_pack(&req, mid, user, &rq);
	if (mig_call(&c, &req, &rep, &err) == 0) {
		Tern__Migrate__ProbeOk *ok = tern__migrate__probe_ok__unpack(NULL, rep->body.len, rep->body.data);
		static const char *names[] = { "unknown", "running", "done", "aborted" };
		what = ok != NULL && ok->outcome <= 3 ? names[ok->outcome] : "undecodable";
		if (ok != NULL)
			tern__migrate__probe_ok__free_unpacked(ok, NULL);
		tern__migrate__reply__free_unpacked(rep, NULL);
	}
	cluster_bulk_close(&c.b);
	tbuf_free(&req);
	tbuf_free(&err);
	return what;
}

/* Every mailbox frozen here, settled by the master's record and the target's word:
 *   committed to the target (ACTIVE there)  drop, once the target confirms (DONE; or
 *                                           it no longer tracks the move: UNKNOWN)
 *   ACTIVE here again (an abort)            unfreeze
 *   still MOVING                            the target says it will never commit
 *                                           (UNKNOWN: no job; ABORTED): ask the master to
 *                                           abort, and unfreeze at the next pass;
 *                                           otherwise stay frozen. */
void mig_settle_frozen(migrate *m)
{
	uint8_t (*ids)[16] = NULL;
	size_t n = 0;

	if (store_mbox_state_list(m->st, &ids, &n) != STORE_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		store_mbox_state s;
		Tern__MailboxState *rec = NULL;
		Tern__User *u = NULL;
		char home[64], peer[64];
		uint8_t mid[16] = { 0 };

		if (store_mbox_state_get(m->st, ids[i], &s, &rec) != STORE_OK || s != STORE_MBOX_FROZEN || rec == NULL ||
		    store_user_get_by_id(m->st, ids[i], &u) != STORE_OK) {
			store_free_record(rec);
			continue;
		}
		snprintf(peer, sizeof(peer), "%s", rec->peer);
		if (rec->migration_id.len == 16)
			memcpy(mid, rec->migration_id.data, 16);
		store_free_record(rec);
		store_home_node(m->st, u->home, home, sizeof(home));
		int moving = u->home_state == TERN__HOME_STATE__HOME_MOVING;
		tbuf msg = TBUF_INIT;
		if (!moving && strcmp(home, m->self) == 0) {
			if (do_unfreeze(m, ids[i], &msg) == STORE_OK)
				tlog(TLOG_OPERATIONS, "migrate: %s@%s stays on node %s (the move to %s was aborted): unfrozen",
				     u->name, u->domain, m->self, peer);
		} else if (!moving && strcmp(home, peer) == 0) {
			const char *what = probe_target(m, peer, mid, ids[i]);
			if (strcmp(what, "done") == 0 || strcmp(what, "unknown") == 0) {
				if (do_drop(m, ids[i], &msg) == STORE_OK)
					tlog(TLOG_OPERATIONS, "migrate: %s@%s moved to node %s (which says: %s): the copy "
					     "here is dropped", u->name, u->domain, peer, what);
			}
		} else if (moving) {
			const char *what = probe_target(m, peer, mid, ids[i]);
			int hopeless = strcmp(what, "unknown") == 0 || strcmp(what, "aborted") == 0;
			tbuf err = TBUF_INIT;
			if (hopeless &&
			    cluster_home_move(m->cl, ids[i], CLUSTER_MOVE_ABORT, peer, NULL, 0, &err) == 0)
				tlog(TLOG_OPERATIONS, "migrate: %s@%s frozen for node %s, which says: %s; the move is "
				     "aborted at the master", u->name, u->domain, peer, what);
			else
				tlog(TLOG_OPERATIONS, "migrate: %s@%s frozen for node %s, which says: %s; the master "
				     "says moving%s%s: stays frozen", u->name, u->domain, peer, what,
				     err.len ? ", abort refused: " : "", tbuf_cstr(&err));
			tbuf_free(&err);
		}
		tbuf_free(&msg);
		store_free_record(u);
	}
	free(ids);
}
