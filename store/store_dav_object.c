/* store_dav_object.c - calendar object resources and vCards in the dav CF: reads, and
 * put/delete under the owner's lock (store_dav.c) with If-Match / If-None-Match and the
 * per-collection UID index decided against current rows. Each change takes the next
 * modseq of its collection and writes the object, the collection (its new sync token)
 * and a changes row in one batch. */
#include "store_private.h"
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HREF_MAX 512
#define UID_MAX 4096
#define COMPONENT_MAX 32

/* ---- reads ---- */

int store_dav_object_get(store *st, const uint8_t owner[16], const uint8_t coll[16],
			 const char *href, Tern__DavObject **o_r)
{
	tbuf k = TBUF_INIT;
	int rc;

	if (!href || !href[0])
		return STORE_ENOTFOUND;
	sk_dav_object(&k, owner, coll, href);
	rc = store_db_get_record(st, CF_DAV, k.data, k.len, &tern__dav_object__descriptor,
				 (ProtobufCMessage **)o_r);
	tbuf_free(&k);
	return rc;
}

typedef struct obj_scan {
	int (*fn)(const Tern__DavObject *o, void *arg);
	void *arg;
	int bad;
} obj_scan;

static int visit_object(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	obj_scan *s = arg;
	Tern__DavObject *o;
	int r;

	/* Skip the collection row itself and the UID index rows (<coll>\0<uid>). */
	if (kn <= SK_DAV_COLL_LEN || k[SK_DAV_COLL_LEN] == '\0')
		return 0;
	if (!(o = tern__dav_object__unpack(NULL, vn, (const uint8_t *)v))) {
		s->bad = 1;
		return 1;
	}
	r = s->fn(o, s->arg);
	tern__dav_object__free_unpacked(o, NULL);
	return r != 0;
}

int store_dav_object_scan(store *st, const uint8_t owner[16], const uint8_t coll[16],
			  int (*fn)(const Tern__DavObject *o, void *arg), void *arg)
{
	uint8_t prefix[SK_DAV_COLL_LEN], from[SK_DAV_COLL_LEN + 1];
	obj_scan s = { fn, arg, 0 };

	sk_dav_collection(prefix, owner, coll);
	/* Hrefs start after the NUL of the UID index: seek past those rows. */
	memcpy(from, prefix, sizeof(prefix));
	from[SK_DAV_COLL_LEN] = 0x01;
	if (store_db_scan(st, CF_DAV, prefix, sizeof(prefix), from, sizeof(from), visit_object,
			  &s) < 0 || s.bad)
		return STORE_EIO;
	return STORE_OK;
}

/* The href the UID index names for uid: STORE_OK with *href_r (free()), or an error. */
static int uid_href(store *st, const uint8_t owner[16], const uint8_t coll[16], const char *uid,
		    char **href_r)
{
	tbuf k = TBUF_INIT;
	char *v = NULL;
	size_t vn = 0;
	int rc;

	sk_dav_uid(&k, owner, coll, uid);
	rc = store_db_get(st, CF_DAV, k.data, k.len, &v, &vn);
	tbuf_free(&k);
	if (rc != STORE_OK)
		return rc;
	*href_r = strndup(v, vn);
	free(v);
	return *href_r ? STORE_OK : STORE_EIO;
}

int store_dav_object_find_uid(store *st, const uint8_t owner[16], const uint8_t coll[16],
			      const char *uid, Tern__DavObject **o_r)
{
	Tern__DavObject *o = NULL;
	char *href = NULL;
	int rc;

	if (!uid || !uid[0])
		return STORE_ENOTFOUND;
	if ((rc = uid_href(st, owner, coll, uid, &href)) != STORE_OK)
		return rc;
	rc = store_dav_object_get(st, owner, coll, href, &o);
	free(href);
	if (rc != STORE_OK)
		return rc;
	if (!o->uid || strcmp(o->uid, uid) != 0) {
		tern__dav_object__free_unpacked(o, NULL);
		return STORE_ENOTFOUND;
	}
	*o_r = o;
	return STORE_OK;
}

/* ---- writes ---- */

/* A name within a collection: 1..512 bytes, no '/', no control characters, not "." or
 * "..". */
static int valid_href(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > HREF_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '/')
			return 0;
	return 1;
}

/* Strong ETag: the first 16 bytes of SHA-256 over the data and the modseq, in hex, so a
 * put of the same bytes still gets a new tag. */
static void make_etag(const Tern__DavObject *obj, uint64_t modseq, char out[33])
{
	uint8_t sha[EVP_MAX_MD_SIZE], ms[8];
	unsigned shalen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	tern_be64_put(ms, modseq);
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, obj->data.data ? obj->data.data : (const uint8_t *)"",
			     obj->data.len) != 1 ||
	    EVP_DigestUpdate(ctx, ms, sizeof(ms)) != 1 || EVP_DigestFinal_ex(ctx, sha, &shalen) != 1 ||
	    shalen < 16)
		abort();
	EVP_MD_CTX_free(ctx);
	tern_hex(sha, 16, out);
}

/* Does the current object's ETag satisfy If-Match `want` ("*" = any; quotes allowed)? */
static int etag_matches(const Tern__DavObject *cur, const char *want)
{
	size_t n = strlen(want);

	if (!cur)
		return 0;
	if (strcmp(want, "*") == 0)
		return 1;
	if (n >= 2 && want[0] == '"' && want[n - 1] == '"') {
		want++;
		n -= 2;
	}
	return cur->etag && strlen(cur->etag) == n && memcmp(cur->etag, want, n) == 0;
}

/* The preconditions of a put, checked under the lock against the current object `old`:
 * STORE_OK or an error with c's message set. */
static int put_checks(store *st, store_commit *c, const store_dav_write *w,
		      const Tern__DavObject *old)
{
	const Tern__DavObject *obj = w->obj;
	char *href = NULL;
	int rc;

	if (w->if_none_match && old)
		return store_cfg_err(c, STORE_ECONFLICT, "If-None-Match: %s already exists", obj->href);
	if (w->if_match && !etag_matches(old, w->if_match))
		return store_cfg_err(c, STORE_ECONFLICT, "If-Match: %s %s", obj->href,
				     old ? "has another ETag" : "does not exist");
	if (!obj->uid || !obj->uid[0])
		return STORE_OK;
	rc = uid_href(st, w->owner, w->collection, obj->uid, &href);
	if (rc == STORE_ENOTFOUND)
		return STORE_OK;
	if (rc != STORE_OK)
		return store_cfg_err(c, rc, "cannot read the UID index");
	if (strcmp(href, obj->href) != 0) {
		Tern__DavObject *other = NULL;

		/* The index names another object: a conflict while that object holds the UID. */
		rc = store_dav_object_get(st, w->owner, w->collection, href, &other);
		if (rc == STORE_OK && other->uid && strcmp(other->uid, obj->uid) == 0)
			rc = store_cfg_err(c, STORE_EEXISTS, "no-uid-conflict: UID %s is already "
					   "used by %s", obj->uid, href);
		else if (rc == STORE_OK || rc == STORE_ENOTFOUND)
			rc = STORE_OK;
		else
			rc = store_cfg_err(c, rc, "cannot read %s", href);
		if (other)
			tern__dav_object__free_unpacked(other, NULL);
	}
	free(href);
	return rc;
}

/* Next modseq of the collection: its row (the new sync token) goes into c. */
static uint64_t bump_collection(store *st, store_commit *c, const uint8_t owner[16],
				Tern__DavCollection *dc)
{
	uint8_t k[SK_DAV_COLL_LEN];

	dc->modseq++;
	sk_dav_collection(k, owner, dc->id.data);
	store_wb_put_record(c->wb, st, CF_DAV, k, sizeof(k), &dc->base);
	return dc->modseq;
}

static void delete_uid_row(store *st, store_commit *c, const uint8_t owner[16],
			   const uint8_t coll[16], const char *uid)
{
	tbuf k = TBUF_INIT;

	sk_dav_uid(&k, owner, coll, uid);
	rocksdb_writebatch_delete_cf(c->wb, st->cf[CF_DAV], k.data, k.len);
	tbuf_free(&k);
}

/* A write refused under the lock (c's message set): unlock, free what was read and
 * report rc. */
static int write_refused(store *st, store_commit *c, store_sync_result *res_r, store_dav_owner *o,
			 Tern__DavCollection *dc, Tern__DavObject *old, int rc)
{
	store_dav_unlock(o);
	if (old)
		tern__dav_object__free_unpacked(old, NULL);
	tern__dav_collection__free_unpacked(dc, NULL);
	c->res.rc = rc;
	return store_commit_run(st, c, res_r);
}

int store_dav_put(store *st, const store_dav_write *w, store_cb cb, store_sync_result *res_r)
{
	store_commit *c = store_commit_new(cb);
	const Tern__DavObject *obj = w->obj;
	Tern__DavCollection *dc = NULL;
	Tern__DavObject *old = NULL, rec;
	store_dav_owner *o = NULL;
	tbuf k = TBUF_INIT;
	char etag[33];
	int rc;

	if (!w->owner || !w->collection || !obj || !valid_href(obj->href))
		return store_commit_fail(st, c, res_r, STORE_EINVAL, "invalid object name '%s'",
					 obj && obj->href ? obj->href : "");
	if (obj->data.len == 0 || (obj->uid && strlen(obj->uid) > UID_MAX) ||
	    (obj->component && strlen(obj->component) > COMPONENT_MAX))
		return store_commit_fail(st, c, res_r, STORE_EINVAL, "invalid object %s", obj->href);
	if ((rc = store_dav_lock_collection(st, c, res_r, w->owner, w->collection, &o, &dc)) != STORE_OK)
		return rc;
	rc = store_dav_object_get(st, w->owner, w->collection, obj->href, &old);
	if (rc == STORE_ENOTFOUND)
		rc = STORE_OK;
	else if (rc != STORE_OK)
		store_cfg_err(c, rc, "cannot read %s", obj->href);
	if (rc == STORE_OK)
		rc = put_checks(st, c, w, old);
	if (rc != STORE_OK)
		return write_refused(st, c, res_r, o, dc, old, rc);
	uint64_t now = (uint64_t)tern_now(), modseq = bump_collection(st, c, w->owner, dc);

	make_etag(obj, modseq, etag);
	rec = *obj;
	rec.etag = etag;
	rec.modseq = modseq;
	rec.created = old && old->created ? old->created : now;
	rec.modified = now;
	sk_dav_object(&k, w->owner, w->collection, obj->href);
	store_wb_put_record(c->wb, st, CF_DAV, k.data, k.len, &rec.base);
	if (old && old->uid && old->uid[0] && (!obj->uid || strcmp(old->uid, obj->uid) != 0))
		delete_uid_row(st, c, w->owner, w->collection, old->uid);
	if (obj->uid && obj->uid[0]) {
		sk_dav_uid(&k, w->owner, w->collection, obj->uid);
		rocksdb_writebatch_put_cf(c->wb, st->cf[CF_DAV], k.data, k.len, obj->href,
					  strlen(obj->href));
	}
	tbuf_free(&k);
	store_dav_put_change(st, c, w->owner, w->collection, modseq, TERN__CHANGE__KIND__DAV_PUT,
			     obj->href);
	memcpy(c->res.id, w->collection, 16);
	c->res.modseq = modseq;
	snprintf(c->res.etag, sizeof(c->res.etag), "%s", etag);
	if (old)
		tern__dav_object__free_unpacked(old, NULL);
	tern__dav_collection__free_unpacked(dc, NULL);
	return store_dav_finish(st, c, o, res_r);
}

int store_dav_delete(store *st, const uint8_t owner[16], const uint8_t coll[16], const char *href,
		     const char *if_match, store_cb cb, store_sync_result *res_r)
{
	store_commit *c = store_commit_new(cb);
	Tern__DavCollection *dc = NULL;
	Tern__DavObject *old = NULL;
	store_dav_owner *o = NULL;
	tbuf k = TBUF_INIT;
	int rc;

	if (!valid_href(href))
		return store_commit_fail(st, c, res_r, STORE_ENOTFOUND, "no such object");
	if ((rc = store_dav_lock_collection(st, c, res_r, owner, coll, &o, &dc)) != STORE_OK)
		return rc;
	rc = store_dav_object_get(st, owner, coll, href, &old);
	if (rc != STORE_OK)
		store_cfg_err(c, rc, rc == STORE_ENOTFOUND ? "no such object %s" : "cannot read %s", href);
	else if (if_match && !etag_matches(old, if_match))
		rc = store_cfg_err(c, STORE_ECONFLICT, "If-Match: %s has another ETag", href);
	if (rc != STORE_OK)
		return write_refused(st, c, res_r, o, dc, old, rc);
	uint64_t modseq = bump_collection(st, c, owner, dc);

	sk_dav_object(&k, owner, coll, href);
	rocksdb_writebatch_delete_cf(c->wb, st->cf[CF_DAV], k.data, k.len);
	tbuf_free(&k);
	if (old->uid && old->uid[0])
		delete_uid_row(st, c, owner, coll, old->uid);
	store_dav_put_change(st, c, owner, coll, modseq, TERN__CHANGE__KIND__DAV_DELETE, href);
	memcpy(c->res.id, coll, 16);
	c->res.modseq = modseq;
	tern__dav_object__free_unpacked(old, NULL);
	tern__dav_collection__free_unpacked(dc, NULL);
	return store_dav_finish(st, c, o, res_r);
}
