/* migrate_wire.c - the bulk wire of a migration (proto/migrate.proto): checksummed
 * replies, requests asked again when a reply arrives damaged, and the fault points. */
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "log.h"
#include "migrate_private.h"
#include "util.h"

/* Parse "crash:POINT,corrupt:N,disk_full,slow:MS" (unknown items are ignored: the same
 * setting serves the master's points, handled in cluster/). */
void mig_faults_parse(const char *spec, mig_faults *f)
{
	memset(f, 0, sizeof(*f));
	if (spec == NULL)
		return;
	char *copy = strdup(spec), *save = NULL;
	if (copy == NULL)
		return;
	for (char *t = strtok_r(copy, ", ", &save); t != NULL; t = strtok_r(NULL, ", ", &save)) {
		if (strcmp(t, "crash:copy") == 0)
			f->crash_copy = 1;
		else if (strcmp(t, "crash:delta") == 0)
			f->crash_delta = 1;
		else if (strcmp(t, "crash:frozen") == 0)
			f->crash_frozen = 1;
		else if (strcmp(t, "crash:prepared") == 0)
			f->crash_prepared = 1;
		else if (strcmp(t, "crash:committed") == 0)
			f->crash_committed = 1;
		else if (strcmp(t, "crash:drop") == 0)
			f->crash_drop = 1;
		else if (strncmp(t, "corrupt:", 8) == 0)
			f->corrupt = (unsigned)strtoul(t + 8, NULL, 10);
		else if (strncmp(t, "badblob:", 8) == 0)
			f->badblob = (unsigned)strtoul(t + 8, NULL, 10);
		else if (strcmp(t, "disk_full") == 0)
			f->disk_full = 1;
		else if (strncmp(t, "slow:", 5) == 0)
			f->slow_ms = atoi(t + 5);
	}
	free(copy);
}

/* A test's crash point: the process dies at once, as a power cut would leave it. */
void mig_crash_if(int set, const char *point)
{
	if (!set)
		return;
	tlog(TLOG_WARNING, "migrate: fault injection: crash at %s", point);
	raise(SIGKILL);
}

/* Packed straight into the buffer's room (no copy). */
void mig_pack(tbuf *out, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);

	tbuf_reserve(out, len);
	protobuf_c_message_pack(msg, (uint8_t *)out->data + out->len);
	out->len += len;
	out->data[out->len] = '\0';      /* tbuf keeps its terminator (tbuf_cstr) */
}

/* The reply with the SHA-256 of its body; damage flips a body byte after the checksum
 * (or adds one to an empty body) so that the receiver sees a mismatch. */
void mig_reply_pack(tbuf *out, Tern__Migrate__Reply__Code code, const char *msg, const void *body,
		    size_t n, int damage)
{
	Tern__Migrate__Reply rep = TERN__MIGRATE__REPLY__INIT;
	uint8_t sha[SHA256_DIGEST_LENGTH];
	uint8_t *copy = NULL, extra = 0x5a;

	SHA256(body != NULL ? body : (const void *)"", n, sha);
	rep.code = code;
	rep.message = (char *)(msg != NULL ? msg : "");
	rep.body.data = (uint8_t *)body;
	rep.body.len = n;
	if (damage) {
		if (n == 0) {
			rep.body.data = &extra;
			rep.body.len = 1;
		} else if ((copy = malloc(n)) != NULL) {
			memcpy(copy, body, n);
			copy[n / 2] ^= 0x01;
			rep.body.data = copy;
		}
	}
	rep.sha256.data = sha;
	rep.sha256.len = sizeof(sha);
	tbuf_reset(out);
	mig_pack(out, &rep.base);
	free(copy);
}

/* Decode and verify; NULL for anything that is not a whole, matching reply. */
Tern__Migrate__Reply *mig_reply_check(const void *p, size_t n)
{
	uint8_t sha[SHA256_DIGEST_LENGTH];
	Tern__Migrate__Reply *rep = tern__migrate__reply__unpack(NULL, n, p);

	if (rep == NULL)
		return NULL;
	SHA256(rep->body.data != NULL ? rep->body.data : (const uint8_t *)"", rep->body.len, sha);
	if (rep->sha256.len != sizeof(sha) || memcmp(rep->sha256.data, sha, sizeof(sha)) != 0) {
		tern__migrate__reply__free_unpacked(rep, NULL);
		return NULL;
	}
	return rep;
}

/* Decode and validate a request: ids of 16 bytes, one body, a column family in range, a
 * folder id and a blob hash of the right sizes; Rows/Delta max_bytes brought into
 * [1 KiB, MIG_MAX_ROWS_BYTES] (0 = 64 KiB) so that no answer outgrows a frame. NULL with
 * the reason in why. */
Tern__Migrate__Request *mig_request_decode(const void *p, size_t n, tbuf *why)
{
	Tern__Migrate__Request *rq = tern__migrate__request__unpack(NULL, n, p);
	const char *bad = NULL;
	uint32_t *max = NULL;

	if (rq == NULL) {
		tbuf_append_str(why, "malformed request");
		return NULL;
	}
	if (rq->migration_id.len != 16 || rq->user_id.len != 16)
		bad = "malformed request: ids must be 16 bytes";
	else if (rq->body_case == TERN__MIGRATE__REQUEST__BODY__NOT_SET)
		bad = "malformed request: no body";
	else if (rq->body_case == TERN__MIGRATE__REQUEST__BODY_ROWS &&
		 (rq->rows->cf < STORE_MIG_FOLDER || rq->rows->cf > STORE_MIG_DAV))
		bad = "bad column family";
	else if (rq->body_case == TERN__MIGRATE__REQUEST__BODY_DELTA && rq->delta->id.len != 16)
		bad = "bad folder id";
	else if (rq->body_case == TERN__MIGRATE__REQUEST__BODY_BLOB && rq->blob->sha256.len != 32)
		bad = "bad blob hash";
	if (bad != NULL) {
		tbuf_append_str(why, bad);
		tern__migrate__request__free_unpacked(rq, NULL);
		return NULL;
	}
	if (rq->body_case == TERN__MIGRATE__REQUEST__BODY_ROWS)
		max = &rq->rows->max_bytes;
	else if (rq->body_case == TERN__MIGRATE__REQUEST__BODY_DELTA)
		max = &rq->delta->max_bytes;
	if (max != NULL)
		*max = *max == 0 ? 65536 : *max < 1024 ? 1024 : *max > MIG_MAX_ROWS_BYTES ? MIG_MAX_ROWS_BYTES : *max;
	return rq;
}

/* The request with its ids, packed into out. */
void mig_request_pack(tbuf *out, const uint8_t mid[16], const uint8_t user[16], Tern__Migrate__Request *req)
{
	req->migration_id.data = (uint8_t *)mid;
	req->migration_id.len = 16;
	req->user_id.data = (uint8_t *)user;
	req->user_id.len = 16;
	tbuf_reset(out);
	mig_pack(out, &req->base);
}

/* Open the connection when needed and send req with the next tag. */
int mig_send(mig_conn *c, const tbuf *req, uint64_t *tag_r, tbuf *err)
{
	if (c->b == NULL && cluster_bulk_open(c->m->cl, c->node, &c->b, err) != 0)
		return -1;
	*tag_r = ++c->next_tag;
	if (cluster_bulk_send(c->b, *tag_r, req->data, req->len, err) != 0) {
		cluster_bulk_close(&c->b);
		return -1;
	}
	return 0;
}

/* One request, one checked reply; the same request again after a damaged one. Replies
 * with other tags (late answers to an abandoned pipeline) are skipped. */
int mig_call(mig_conn *c, const tbuf *req, Tern__Migrate__Reply **rep_r, tbuf *err)
{
	int timeout_ms = (int)c->m->conf->migrate_request_timeout * 1000;
	tbuf raw = TBUF_INIT;
	int rc = -1;

	*rep_r = NULL;
	for (int attempt = 0; attempt < MIG_ATTEMPTS; attempt++) {
		uint64_t tag, got = 0;
		if (mig_send(c, req, &tag, err) != 0)
			goto out;
		int64_t until = tern_mono_ms() + timeout_ms;
		int r;
		do {
			int left = (int)(until - tern_mono_ms());
			tbuf_reset(&raw);
			r = left > 0 ? cluster_bulk_recv(c->b, &got, &raw, left, err) : 0;
		} while (r == 1 && got != tag);
		if (r != 1) {
			if (r == 0)
				tbuf_appendf(err, "no answer from node %s in %d s", c->node, timeout_ms / 1000);
			cluster_bulk_close(&c->b);
			goto out;
		}
		if ((*rep_r = mig_reply_check(raw.data, raw.len)) != NULL) {
			rc = 0;
			goto out;
		}
		tlog(TLOG_WARNING, "migrate: %s from %s: reply checksum mismatch, asking again", c->user, c->node);
	}
	tbuf_appendf(err, "node %s sent %d damaged replies in a row", c->node, MIG_ATTEMPTS);
out:
	tbuf_free(&raw);
	return rc;
}
