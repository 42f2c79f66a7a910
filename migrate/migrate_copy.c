/* migrate_copy.c - the target's data phases: the heads, the initial copy of a key range,
 * the delta rounds and the digest comparison. Rows and blob chunks are asked with up to
 * [migrate] window requests in flight (the flow control): the next Rows request goes out
 * while the blobs of the last batch come in; a batch is imported, with the job record and
 * its cursor, once every blob its messages need is here (chunk 0 of a blob last). The
 * heads and the digest comparison are in migrate_verify.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "log.h"
#include "migrate_private.h"
#include "util.h"

#define MAX_BATCHES 2            /* received batches waiting for their blobs */

typedef struct blob_fetch {
	uint8_t sha[32];
	uint32_t chunks;         /* 0 = unknown until chunk 0 arrives */
	uint32_t next, got;
	tbuf chunk0;
	int attempts;            /* fetches that did not match the hash */
} blob_fetch;

typedef struct inflight {
	uint64_t tag;
	tbuf req;
	int blob;                /* 0 = the stream's Rows/Delta request */
	uint8_t sha[32];
	uint32_t chunk;
	int attempts;
} inflight;

typedef struct mig_pipe {
	mig_run *r;
	int delta;               /* 0: Rows of cf after `after`; 1: Delta of (id, dav) since */
	store_mig_cf cf;
	tbuf after;
	uint8_t id[16];
	int dav;
	uint64_t since;
	int more, stream_busy;
	blob_fetch *blobs;
	size_t nblobs;
	Tern__Migrate__RowsOk *batch[MAX_BATCHES];
	uint64_t batch_upto[MAX_BATCHES];
	size_t nbatch;
	inflight *fl;
	size_t nfl, window;
	uint64_t moved;
} mig_pipe;

Tern__MigrateCursor *mig_cursor(Tern__MigrateJob *j, const uint8_t id[16], int dav)
{
	for (size_t i = 0; i < j->n_cursors; i++)
		if (j->cursors[i]->id.len == 16 && memcmp(j->cursors[i]->id.data, id, 16) == 0 &&
		    j->cursors[i]->dav == (dav != 0))
			return j->cursors[i];
	Tern__MigrateCursor **nv = realloc(j->cursors, (j->n_cursors + 1) * sizeof(*nv));
	Tern__MigrateCursor *c = malloc(sizeof(*c));
	uint8_t *idc = malloc(16);
	if (nv != NULL)
		j->cursors = nv;
	if (nv == NULL || c == NULL || idc == NULL) {
		free(c);
		free(idc);
		return NULL;
	}
	tern__migrate_cursor__init(c);
	memcpy(idc, id, 16);
	c->id.data = idc;
	c->id.len = 16;
	c->dav = dav != 0;
	j->cursors[j->n_cursors++] = c;
	return c;
}

/* The blob a msg row refers to, or 0 when it is not a (live) message row. */
static int row_blob(const Tern__Migrate__Row *row, uint8_t sha[32], uint64_t *size_r)
{
	if (row->cf != STORE_MIG_MSG || row->deleted)
		return 0;
	Tern__MessageMeta *mm = tern__message_meta__unpack(NULL, row->value.len, row->value.data);
	int ok = mm != NULL && mm->blob.len == 32;
	if (ok) {
		memcpy(sha, mm->blob.data, 32);
		*size_r = mm->size;
	}
	if (mm != NULL)
		tern__message_meta__free_unpacked(mm, NULL);
	return ok;
}

static blob_fetch *blob_find(mig_pipe *p, const uint8_t sha[32])
{
	for (size_t i = 0; i < p->nblobs; i++)
		if (memcmp(p->blobs[i].sha, sha, 32) == 0)
			return &p->blobs[i];
	return NULL;
}

/* Send a request (packed in req, moved into the in-flight slot). */
static int pipe_send(mig_pipe *p, tbuf *req, int blob, const uint8_t *sha, uint32_t chunk, int attempts)
{
	tbuf err = TBUF_INIT;
	inflight *f = &p->fl[p->nfl];
	int rc = mig_send(&p->r->conn, req, &f->tag, &err);

	if (rc != 0) {
		tlog(TLOG_WARNING, "migrate: %s from %s: %s", p->r->job->address, p->r->job->source, tbuf_cstr(&err));
		tbuf_free(&err);
		tbuf_free(req);
		return MIG_RETRY;
	}
	f->req = *req;
	*req = (tbuf)TBUF_INIT;
	f->blob = blob;
	if (sha != NULL)
		memcpy(f->sha, sha, 32);
	f->chunk = chunk;
	f->attempts = attempts;
	p->nfl++;
	return 0;
}

/* The stream's next Rows or Delta request. */
static int send_stream(mig_pipe *p)
{
	Tern__Migrate__Request rq = TERN__MIGRATE__REQUEST__INIT;
	Tern__Migrate__Rows rows = TERN__MIGRATE__ROWS__INIT;
	Tern__Migrate__Delta delta = TERN__MIGRATE__DELTA__INIT;
	uint32_t max = (uint32_t)p->r->m->conf->migrate_chunk_kb * 1024;
	tbuf req = TBUF_INIT;

	if (p->delta) {
		delta.id.data = p->id;
		delta.id.len = 16;
		delta.dav = p->dav;
		delta.since = p->since;
		delta.max_bytes = max;
		rq.body_case = TERN__MIGRATE__REQUEST__BODY_DELTA;
		rq.delta = &delta;
	} else {
		rows.cf = p->cf;
		rows.after.data = (uint8_t *)p->after.data;
		rows.after.len = p->after.len;
		rows.max_bytes = max;
		rq.body_case = TERN__MIGRATE__REQUEST__BODY_ROWS;
		rq.rows = &rows;
	}
	mig_request_pack(&req, p->r->job->id.data, p->r->job->user_id.data, &rq);
	p->stream_busy = 1;
	return pipe_send(p, &req, 0, NULL, 0, 0);
}

/* The next chunk of a blob being fetched, if one can be asked now. */
static int send_blob(mig_pipe *p, int *sent_r)
{
	*sent_r = 0;
	for (size_t i = 0; i < p->nblobs; i++) {
		blob_fetch *b = &p->blobs[i];
		if (!(b->next == 0 || (b->chunks > 0 && b->next < b->chunks)))
			continue;
		Tern__Migrate__Request rq = TERN__MIGRATE__REQUEST__INIT;
		Tern__Migrate__BlobChunk bc = TERN__MIGRATE__BLOB_CHUNK__INIT;
		tbuf req = TBUF_INIT;
		bc.sha256.data = b->sha;
		bc.sha256.len = 32;
		bc.chunk = b->next;
		rq.body_case = TERN__MIGRATE__REQUEST__BODY_BLOB;
		rq.blob = &bc;
		mig_request_pack(&req, p->r->job->id.data, p->r->job->user_id.data, &rq);
		*sent_r = 1;
		return pipe_send(p, &req, 1, b->sha, b->next++, 0);
	}
	return 0;
}

/* 1 when the blob as received - chunk 0 in memory, the others imported - hashes to its
 * name: the end-to-end check behind the per-reply checksums (a source that sends wrong
 * bytes with a right checksum, or a wrong chunk count). */
static int blob_intact(mig_pipe *p, const blob_fetch *b)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t sha[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	tbuf c = TBUF_INIT;
	int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(md, b->chunk0.data != NULL ? b->chunk0.data : "", b->chunk0.len) == 1;

	for (uint32_t i = 1; ok && i < b->chunks; i++) {
		tbuf_reset(&c);
		ok = store_blob_chunk(p->r->m->st, b->sha, i, &c, NULL) == STORE_OK &&
		     EVP_DigestUpdate(md, c.data != NULL ? c.data : "", c.len) == 1;
	}
	ok = ok && EVP_DigestFinal_ex(md, sha, &len) == 1 && len == 32 && memcmp(sha, b->sha, 32) == 0;
	EVP_MD_CTX_free(md);
	tbuf_free(&c);
	return ok;
}

/* A chunk arrived: import it (chunk 0 once all others are in and the whole matches its
 * hash; else the blob is fetched again, MIG_ATTEMPTS times at most). */
static int got_chunk(mig_pipe *p, const uint8_t sha[32], uint32_t chunk, const Tern__Migrate__BlobOk *ok)
{
	blob_fetch *b = blob_find(p, sha);
	tbuf err = TBUF_INIT;
	uint8_t key[36];
	int rc = 0;

	if (b == NULL)
		return 0;
	if (chunk == 0) {
		b->chunks = ok->chunks ? ok->chunks : 1;
		tbuf_append(&b->chunk0, ok->data.data, ok->data.len);
	} else {
		store_mig_row row = { STORE_MIG_BLOB, key, 36, ok->data.data, ok->data.len, 0 };
		memcpy(key, sha, 32);
		tern_be32_put(key + 32, chunk);
		if (mig_import(p->r, &row, 1, 0, &err) != 0)
			rc = mig_fail(p->r, "import of a blob chunk failed: %s", tbuf_cstr(&err));
	}
	if (rc == 0 && b->got + 1 == b->chunks && !blob_intact(p, b)) {
		char hex[65];
		tern_hex(b->sha, 32, hex);
		tlog(TLOG_WARNING, "migrate: %s from %s: blob %.16s... does not match its hash, asking again",
		     p->r->job->address, p->r->job->source, hex);
		if (++b->attempts >= MIG_ATTEMPTS) {
			tbuf_free(&err);
			return mig_fail(p->r, "node %s sent blob %.16s... %d times with bytes that do not match "
					"its hash", p->r->job->source, hex, MIG_ATTEMPTS);
		}
		tbuf_reset(&b->chunk0);
		b->chunks = b->next = b->got = 0;
		tbuf_free(&err);
		return 0;
	}
	if (rc == 0 && ++b->got == b->chunks) {
		store_mig_row row = { STORE_MIG_BLOB, key, 36, b->chunk0.data, b->chunk0.len, 0 };
		memcpy(key, sha, 32);
		tern_be32_put(key + 32, 0);
		if (mig_import(p->r, &row, 1, 0, &err) != 0)
			rc = mig_fail(p->r, "import of a blob failed: %s", tbuf_cstr(&err));
		tbuf_free(&b->chunk0);
		*b = p->blobs[--p->nblobs];
	}
	tbuf_free(&err);
	return rc;
}

/* A batch of rows arrived: note the blobs it needs, queue it. */
static int got_rows(mig_pipe *p, Tern__Migrate__RowsOk *ok)
{
	p->stream_busy = 0;
	p->more = ok->more;
	if (p->delta) {
		p->since = ok->upto > p->since ? ok->upto : p->since;
	} else if (ok->n_rows > 0) {
		const Tern__Migrate__Row *last = ok->rows[ok->n_rows - 1];
		tbuf_reset(&p->after);
		tbuf_append(&p->after, last->key.data, last->key.len);
	}
	for (size_t i = 0; i < ok->n_rows; i++) {
		uint8_t sha[32];
		uint64_t size;
		if (!row_blob(ok->rows[i], sha, &size) || blob_find(p, sha) != NULL)
			continue;
		int has = store_blob_has(p->r->m->st, sha);
		if (has < 0)
			return mig_fail(p->r, "the store failed: %s", store_strerror(has));
		if (has)
			continue;
		blob_fetch *nv = realloc(p->blobs, (p->nblobs + 1) * sizeof(*nv));
		if (nv == NULL)
			return mig_fail(p->r, "out of memory");
		p->blobs = nv;
		memset(&nv[p->nblobs], 0, sizeof(*nv));
		memcpy(nv[p->nblobs].sha, sha, 32);
		p->nblobs++;
	}
	p->batch_upto[p->nbatch] = p->since;
	p->batch[p->nbatch++] = ok;
	return 0;
}

/* Import the front batches whose blobs are all here, each with the job moved on. */
static int import_ready(mig_pipe *p)
{
	Tern__MigrateJob *j = p->r->job;

	while (p->nbatch > 0) {
		Tern__Migrate__RowsOk *ok = p->batch[0];
		uint64_t bytes = 0, msgs = 0;
		for (size_t i = 0; i < ok->n_rows; i++) {
			uint8_t sha[32];
			uint64_t size = 0;
			if (row_blob(ok->rows[i], sha, &size)) {
				if (blob_find(p, sha) != NULL)
					return 0;
				bytes += size;
				msgs++;
			}
		}
		store_mig_row *rows = calloc(ok->n_rows ? ok->n_rows : 1, sizeof(*rows));
		if (rows == NULL)
			return mig_fail(p->r, "out of memory");
		for (size_t i = 0; i < ok->n_rows; i++) {
			const Tern__Migrate__Row *w = ok->rows[i];
			rows[i] = (store_mig_row){ (store_mig_cf)w->cf, w->key.data, w->key.len, w->value.data,
						   w->value.len, w->deleted };
		}
		if (p->delta) {
			Tern__MigrateCursor *c = mig_cursor(j, p->id, p->dav);
			if (c != NULL)
				c->modseq = p->batch_upto[0];
		} else if (ok->n_rows > 0) {
			const Tern__Migrate__Row *last = ok->rows[ok->n_rows - 1];
			uint8_t *after = malloc(last->key.len ? last->key.len : 1);
			if (after != NULL) {
				memcpy(after, last->key.data, last->key.len);
				free(j->copy_after.data);
				j->copy_after.data = after;
				j->copy_after.len = last->key.len;
			}
			j->copy_cf = p->cf;
			j->bytes_done += bytes;
			j->messages_done += msgs;
		}
		tbuf err = TBUF_INIT;
		int rc = ok->n_rows > 0 || p->delta ? mig_import(p->r, rows, ok->n_rows, 1, &err) : 0;
		free(rows);
		if (rc != 0) {
			rc = mig_fail(p->r, "import failed: %s", tbuf_cstr(&err));
			tbuf_free(&err);
			return rc;
		}
		tbuf_free(&err);
		p->moved += ok->n_rows;
		tern__migrate__rows_ok__free_unpacked(ok, NULL);
		memmove(p->batch, p->batch + 1, (p->nbatch - 1) * sizeof(p->batch[0]));
		memmove(p->batch_upto, p->batch_upto + 1, (p->nbatch - 1) * sizeof(p->batch_upto[0]));
		p->nbatch--;
		if (!p->delta)
			mig_crash_if(p->r->m->faults.crash_copy, "copy");
	}
	return 0;
}

/* One reply of the pipeline: checked, asked again when damaged or BUSY, dispatched. */
static int pipe_reply(mig_pipe *p, uint64_t tag, const tbuf *raw)
{
	size_t k;
	for (k = 0; k < p->nfl && p->fl[k].tag != tag; k++)
		;
	if (k == p->nfl)
		return 0;                       /* an answer to an abandoned request */
	inflight f = p->fl[k];
	memmove(p->fl + k, p->fl + k + 1, (p->nfl - k - 1) * sizeof(*p->fl));
	p->nfl--;
	Tern__Migrate__Reply *rep = mig_reply_check(raw->data, raw->len);
	int rc = 0;
	if (rep == NULL || rep->code == TERN__MIGRATE__REPLY__CODE__BUSY) {
		if (rep == NULL)
			tlog(TLOG_WARNING, "migrate: %s from %s: reply checksum mismatch, asking again",
			     p->r->job->address, p->r->job->source);
		else
			usleep(200000);
		if (f.attempts + 1 >= MIG_ATTEMPTS)
			rc = rep == NULL ? mig_fail(p->r, "node %s sent %d damaged replies in a row", p->r->job->source,
						    MIG_ATTEMPTS)
					 : MIG_RETRY;
		else
			rc = pipe_send(p, &f.req, f.blob, f.sha, f.chunk, f.attempts + 1);
	} else if (rep->code != TERN__MIGRATE__REPLY__CODE__OK) {
		rc = mig_fail(p->r, "node %s refused: %s", p->r->job->source, rep->message);
	} else if (f.blob) {
		Tern__Migrate__BlobOk *ok = tern__migrate__blob_ok__unpack(NULL, rep->body.len, rep->body.data);
		rc = ok != NULL ? got_chunk(p, f.sha, f.chunk, ok) : mig_fail(p->r, "undecodable blob reply");
		if (ok != NULL)
			tern__migrate__blob_ok__free_unpacked(ok, NULL);
	} else {
		Tern__Migrate__RowsOk *ok = tern__migrate__rows_ok__unpack(NULL, rep->body.len, rep->body.data);
		rc = ok != NULL ? got_rows(p, ok) : mig_fail(p->r, "undecodable rows reply");
	}
	if (rep != NULL)
		tern__migrate__reply__free_unpacked(rep, NULL);
	tbuf_free(&f.req);
	return rc != 0 ? rc : import_ready(p);
}

/* Run a stream (Rows of a cf, or Delta of a folder) to its end. */
static int pipe_run(mig_pipe *p)
{
	int timeout_ms = (int)p->r->m->conf->migrate_request_timeout * 1000, rc = 0, why;
	tbuf raw = TBUF_INIT, err = TBUF_INIT;

	p->window = (size_t)p->r->m->conf->migrate_window;
	p->fl = calloc(p->window + 1, sizeof(*p->fl));
	if (p->fl == NULL)
		return mig_fail(p->r, "out of memory");
	p->more = 1;
	for (;;) {
		int sent = 1;
		while (rc == 0 && p->nfl < p->window && sent) {
			if (mig_interrupted(p->r, &why)) {
				rc = why;
				break;
			}
			if (p->more && !p->stream_busy && p->nbatch < MAX_BATCHES)
				rc = send_stream(p);
			else
				rc = send_blob(p, &sent);
		}
		if (rc != 0 || (p->nfl == 0 && p->nbatch == 0 && !p->more))
			break;
		if (p->nfl == 0) {
			rc = mig_fail(p->r, "internal error: the copy stalled");
			break;
		}
		uint64_t tag = 0;
		tbuf_reset(&raw);
		int got = cluster_bulk_recv(p->r->conn.b, &tag, &raw, timeout_ms, &err);
		if (got != 1) {
			tlog(TLOG_WARNING, "migrate: %s from %s: %s", p->r->job->address, p->r->job->source,
			     got == 0 ? "no answer in time" : tbuf_cstr(&err));
			cluster_bulk_close(&p->r->conn.b);
			rc = MIG_RETRY;
			break;
		}
		rc = pipe_reply(p, tag, &raw);
	}
	for (size_t i = 0; i < p->nfl; i++)
		tbuf_free(&p->fl[i].req);
	for (size_t i = 0; i < p->nblobs; i++)
		tbuf_free(&p->blobs[i].chunk0);
	for (size_t i = 0; i < p->nbatch; i++)
		tern__migrate__rows_ok__free_unpacked(p->batch[i], NULL);
	free(p->fl);
	free(p->blobs);
	tbuf_free(&p->after);
	tbuf_free(&raw);
	tbuf_free(&err);
	return rc;
}

/* The initial copy: cf MSG, DAV, CHANGES in turn from the job's position. */
int mig_copy(mig_run *r)
{
	static const store_mig_cf order[] = { STORE_MIG_MSG, STORE_MIG_DAV, STORE_MIG_CHANGES };
	Tern__MigrateJob *j = r->job;
	size_t start = 0;

	for (size_t i = 0; i < 3; i++)
		if (j->copy_cf == (uint32_t)order[i])
			start = i;
	for (size_t i = start; i < 3 && !j->copy_done; i++) {
		mig_pipe p = { .r = r, .cf = order[i] };
		if (j->copy_cf == (uint32_t)order[i] && j->copy_after.len > 0)
			tbuf_append(&p.after, j->copy_after.data, j->copy_after.len);
		int rc = pipe_run(&p);
		if (rc != 0)
			return rc;
		free(j->copy_after.data);
		j->copy_after.data = NULL;
		j->copy_after.len = 0;
		if (i + 1 < 3)
			j->copy_cf = order[i + 1];
		else
			j->copy_done = 1;
		if (mig_job_save(r) != 0)
			return mig_fail(r, "cannot save the job");
	}
	return 0;
}

/* One delta round: the heads, then every folder / collection whose head moved past its
 * cursor. *moved_r = rows imported. */
int mig_delta_round(mig_run *r, uint64_t *moved_r)
{
	Tern__Migrate__RowsOk *heads = NULL;
	int rc = mig_heads(r, &heads);

	*moved_r = 0;
	if (rc != 0)
		return rc;
	static const uint8_t zero[16];
	for (size_t i = 0; i < heads->n_rows && rc == 0; i++) {
		const Tern__Migrate__Row *w = heads->rows[i];
		if (w->key.len != 32 || w->deleted || memcmp(w->key.data + 16, zero, 16) == 0 ||
		    (w->cf != STORE_MIG_FOLDER && w->cf != STORE_MIG_DAV))
			continue;
		uint64_t modseq = 0;
		if (w->cf == STORE_MIG_FOLDER) {
			Tern__Folder *f = tern__folder__unpack(NULL, w->value.len, w->value.data);
			modseq = f != NULL ? f->highestmodseq : 0;
			if (f != NULL)
				tern__folder__free_unpacked(f, NULL);
		} else {
			Tern__DavCollection *c = tern__dav_collection__unpack(NULL, w->value.len, w->value.data);
			modseq = c != NULL ? c->modseq : 0;
			if (c != NULL)
				tern__dav_collection__free_unpacked(c, NULL);
		}
		int dav = w->cf == STORE_MIG_DAV;
		Tern__MigrateCursor *c = mig_cursor(r->job, w->key.data + 16, dav);
		if (c == NULL) {
			rc = mig_fail(r, "out of memory");
			break;
		}
		if (modseq <= c->modseq)
			continue;
		mig_pipe p = { .r = r, .delta = 1, .dav = dav, .since = c->modseq };
		memcpy(p.id, w->key.data + 16, 16);
		rc = pipe_run(&p);
		*moved_r += p.moved;
	}
	tern__migrate__rows_ok__free_unpacked(heads, NULL);
	return rc;
}
