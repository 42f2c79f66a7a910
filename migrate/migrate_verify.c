/* migrate_verify.c - the target's view of the source's heads (mailbox, folder and
 * collection rows: imported, and those the source no longer has deleted here) and the
 * digest comparison of the cut-over, with the names that make its error readable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "migrate_private.h"
#include "util.h"

/* Remember a folder's / collection's name for messages. */
static void note_name(mig_run *r, const Tern__Migrate__Row *row)
{
	char name[128] = "";
	if (row->cf == STORE_MIG_FOLDER) {
		Tern__Folder *f = tern__folder__unpack(NULL, row->value.len, row->value.data);
		if (f != NULL)
			snprintf(name, sizeof(name), "%s", f->name);
		if (f != NULL)
			tern__folder__free_unpacked(f, NULL);
	} else {
		Tern__DavCollection *c = tern__dav_collection__unpack(NULL, row->value.len, row->value.data);
		if (c != NULL)
			snprintf(name, sizeof(name), "%s", c->name);
		if (c != NULL)
			tern__dav_collection__free_unpacked(c, NULL);
	}
	struct mig_name *nv = realloc(r->names, (r->nnames + 1) * sizeof(*nv));
	if (nv == NULL)
		return;
	r->names = nv;
	memcpy(nv[r->nnames].id, row->key.data + 16, 16);
	nv[r->nnames].dav = row->cf == STORE_MIG_DAV;
	snprintf(nv[r->nnames].name, sizeof(nv[r->nnames].name), "%s", name);
	r->nnames++;
}

/* Local heads, to find what the source no longer has. */
typedef struct local_heads {
	store_mig_row *v;
	uint8_t (*keys)[32];
	size_t n;
} local_heads;

static int local_head(const store_mig_row *row, void *arg)
{
	local_heads *h = arg;
	if (row->klen != 32)
		return 0;
	store_mig_row *nv = realloc(h->v, (h->n + 1) * sizeof(*nv));
	uint8_t (*nk)[32] = realloc(h->keys, (h->n + 1) * sizeof(*nk));
	if (nv != NULL)
		h->v = nv;
	if (nk != NULL)
		h->keys = nk;
	if (nv == NULL || nk == NULL)
		return -1;
	memcpy(h->keys[h->n], row->key, 32);
	h->v[h->n] = (store_mig_row){ row->cf, NULL, 32, NULL, 0, 1 };
	h->n++;
	return 0;
}

/* Heads: import the source's, delete the folders / collections it no longer has. */
int mig_heads(mig_run *r, Tern__Migrate__RowsOk **heads_r)
{
	Tern__Migrate__Request rq = TERN__MIGRATE__REQUEST__INIT;
	Tern__Migrate__Heads heads = TERN__MIGRATE__HEADS__INIT;
	Tern__Migrate__Reply *rep = NULL;
	local_heads lh = { 0 };
	tbuf err = TBUF_INIT;

	*heads_r = NULL;
	rq.body_case = TERN__MIGRATE__REQUEST__BODY_HEADS;
	rq.heads = &heads;
	int rc = mig_ask(r, &rq, &rep);
	if (rc != 0)
		return rc;
	Tern__Migrate__RowsOk *ok = tern__migrate__rows_ok__unpack(NULL, rep->body.len, rep->body.data);
	tern__migrate__reply__free_unpacked(rep, NULL);
	if (ok == NULL)
		return mig_fail(r, "undecodable heads from node %s", r->job->source);
	if (store_mig_heads(r->m->st, r->job->user_id.data, local_head, &lh) != STORE_OK) {
		rc = mig_fail(r, "cannot read the heads here");
		goto out;
	}
	size_t n = ok->n_rows, k = n;
	store_mig_row *rows = calloc(n + lh.n + 1, sizeof(*rows));
	if (rows == NULL) {
		rc = mig_fail(r, "out of memory");
		goto out;
	}
	r->nnames = 0;
	for (size_t i = 0; i < n; i++) {
		const Tern__Migrate__Row *w = ok->rows[i];
		rows[i] = (store_mig_row){ (store_mig_cf)w->cf, w->key.data, w->key.len, w->value.data, w->value.len,
					   w->deleted };
		if (w->key.len == 32)
			note_name(r, w);
	}
	for (size_t i = 0; i < lh.n; i++) {
		int found = 0;
		for (size_t j = 0; j < n && !found; j++)
			found = ok->rows[j]->cf == (uint32_t)lh.v[i].cf && ok->rows[j]->key.len == 32 &&
				memcmp(ok->rows[j]->key.data, lh.keys[i], 32) == 0;
		if (!found) {
			rows[k] = lh.v[i];
			rows[k++].key = lh.keys[i];
		}
	}
	if (mig_import(r, rows, k, 1, &err) != 0)
		rc = mig_fail(r, "import of the heads failed: %s", tbuf_cstr(&err));
	free(rows);
out:
	free(lh.v);
	free(lh.keys);
	tbuf_free(&err);
	if (rc == 0)
		*heads_r = ok;
	else
		tern__migrate__rows_ok__free_unpacked(ok, NULL);
	return rc;
}

/* The name of folder / collection id for a message. */
static void name_of(mig_run *r, const uint8_t *id, size_t len, int dav, char *out, size_t n)
{
	if (len != 16) {
		snprintf(out, n, "the mailbox totals");
		return;
	}
	for (size_t i = 0; i < r->nnames; i++)
		if (memcmp(r->names[i].id, id, 16) == 0 && r->names[i].dav == dav) {
			snprintf(out, n, "%s \"%s\"", dav ? "collection" : "folder", r->names[i].name);
			return;
		}
	char uid[37];
	tern_uuid_str(id, uid);
	snprintf(out, n, "%s %s", dav ? "collection" : "folder", uid);
}

/* Compare the digests of both ends: *same_r = 1 when equal, else the job's error names
 * the first folder that differs. */
int mig_digest_check(mig_run *r, int *same_r)
{
	Tern__Migrate__Request rq = TERN__MIGRATE__REQUEST__INIT;
	Tern__Migrate__Digest dg = TERN__MIGRATE__DIGEST__INIT;
	Tern__Migrate__Reply *rep = NULL;
	store_mig_digest_entry *e = NULL;
	size_t n = 0;

	*same_r = 0;
	rq.body_case = TERN__MIGRATE__REQUEST__BODY_DIGEST;
	rq.digest = &dg;
	int rc = mig_ask(r, &rq, &rep);
	if (rc != 0)
		return rc;
	Tern__Migrate__DigestOk *ok = tern__migrate__digest_ok__unpack(NULL, rep->body.len, rep->body.data);
	tern__migrate__reply__free_unpacked(rep, NULL);
	if (ok == NULL)
		return mig_fail(r, "undecodable digest from node %s", r->job->source);
	if (store_mig_digest(r->m->st, r->job->user_id.data, &e, &n) != STORE_OK) {
		tern__migrate__digest_ok__free_unpacked(ok, NULL);
		return mig_fail(r, "cannot compute the digest here");
	}
	static const uint8_t zero[16];
	char what[200] = "";
	size_t i;
	for (i = 0; i < n && i < ok->n_folders; i++) {
		const Tern__Migrate__FolderDigest *f = ok->folders[i];
		const uint8_t *fid = f->id.len == 16 ? f->id.data : zero;
		if (memcmp(fid, e[i].id, 16) != 0 || f->dav != (e[i].dav != 0)) {
			name_of(r, f->id.data, f->id.len, f->dav, what, sizeof(what));
			break;
		}
		if (f->count != e[i].count || f->bytes != e[i].bytes || f->modseq != e[i].modseq ||
		    f->sha256.len != 32 || memcmp(f->sha256.data, e[i].sha, 32) != 0) {
			name_of(r, e[i].id, memcmp(e[i].id, zero, 16) == 0 && !e[i].dav ? 0 : 16, e[i].dav, what,
				sizeof(what));
			snprintf(what + strlen(what), sizeof(what) - strlen(what),
				 " (source %llu messages, %llu bytes; here %llu, %llu)", (unsigned long long)f->count,
				 (unsigned long long)f->bytes, (unsigned long long)e[i].count,
				 (unsigned long long)e[i].bytes);
			break;
		}
	}
	if (what[0] == '\0' && n != ok->n_folders) {
		if (i < ok->n_folders)
			name_of(r, ok->folders[i]->id.data, ok->folders[i]->id.len, ok->folders[i]->dav, what, sizeof(what));
		else
			name_of(r, e[i].id, 16, e[i].dav, what, sizeof(what));
	}
	*same_r = what[0] == '\0';
	if (!*same_r) {
		char msg[256];
		snprintf(msg, sizeof(msg), "digest mismatch in %s", what);
		mig_job_error(r, msg);
	}
	free(e);
	tern__migrate__digest_ok__free_unpacked(ok, NULL);
	return 0;
}
