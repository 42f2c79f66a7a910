/* fuzz_migrate_wire.c - the migration bulk wire (migrate/migrate_wire.c). The first byte
 * picks the parser: even = a request as the source's handler decodes it, odd = a reply as
 * the target checks it. A request either is refused with a reason or comes out valid (ids
 * of 16 bytes, a body, sizes and ranges checked, max_bytes bounded) and packs again; when
 * the packed form decodes (protobuf-c keeps odd unknown fields, e.g. field number 0, that it
 * then refuses) it has the same body and user. A reply passes only with the checksum of its
 * body. */
#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "migrate_private.h"

static void check_request(const uint8_t *data, size_t size)
{
	tbuf why = TBUF_INIT, again = TBUF_INIT;
	Tern__Migrate__Request *rq = mig_request_decode(data, size, &why);

	if (rq == NULL) {
		if (why.len == 0)
			abort();
		tbuf_free(&why);
		return;
	}
	if (rq->migration_id.len != 16 || rq->user_id.len != 16 ||
	    rq->body_case == TERN__MIGRATE__REQUEST__BODY__NOT_SET)
		abort();
	if (rq->body_case == TERN__MIGRATE__REQUEST__BODY_ROWS &&
	    (rq->rows->cf < STORE_MIG_FOLDER || rq->rows->cf > STORE_MIG_DAV || rq->rows->max_bytes < 1024 ||
	     rq->rows->max_bytes > MIG_MAX_ROWS_BYTES))
		abort();
	if (rq->body_case == TERN__MIGRATE__REQUEST__BODY_DELTA &&
	    (rq->delta->id.len != 16 || rq->delta->max_bytes < 1024 || rq->delta->max_bytes > MIG_MAX_ROWS_BYTES))
		abort();
	if (rq->body_case == TERN__MIGRATE__REQUEST__BODY_BLOB && rq->blob->sha256.len != 32)
		abort();
	uint8_t user[16];
	memcpy(user, rq->user_id.data, 16);
	Tern__Migrate__Request__BodyCase body = rq->body_case;
	/* the record's own id buffers: pack points the fields at what they point at already */
	mig_request_pack(&again, rq->migration_id.data, rq->user_id.data, rq);
	Tern__Migrate__Request *rq2 = mig_request_decode(again.data, again.len, &why);
	if (rq2 != NULL && (rq2->body_case != body || memcmp(rq2->user_id.data, user, 16) != 0))
		abort();
	if (rq2 != NULL)
		tern__migrate__request__free_unpacked(rq2, NULL);
	tern__migrate__request__free_unpacked(rq, NULL);
	tbuf_free(&again);
	tbuf_free(&why);
}

static void check_reply(const uint8_t *data, size_t size)
{
	Tern__Migrate__Reply *rep = mig_reply_check(data, size);
	uint8_t sha[SHA256_DIGEST_LENGTH];

	if (rep == NULL)
		return;
	SHA256(rep->body.data != NULL ? rep->body.data : (const uint8_t *)"", rep->body.len, sha);
	if (rep->sha256.len != sizeof(sha) || memcmp(rep->sha256.data, sha, sizeof(sha)) != 0)
		abort();
	tern__migrate__reply__free_unpacked(rep, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] % 2 == 0)
		check_request(data + 1, size - 1);
	else
		check_reply(data + 1, size - 1);
	return 0;
}
