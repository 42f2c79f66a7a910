/* store_dav.c - calendars and address books (dav CF): the per-owner write state, the
 * collections and sync-collection changes. An owner is a user or a resource; its writes
 * are serialised by its lock, each one waiting until the owner's previous batch is
 * durable, so every check (name unique, If-Match, UID unique) reads current rows and
 * modseqs grow by one per object change. Objects are in store_dav_object.c. */
#include "store_private.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COLL_NAME_MAX 128
#define COLL_TEXT_MAX 4096

/* ---- per-owner write state ---- */

/* The entry of owner, made on first use; entries live until the store closes (one small
 * record per owner that wrote since the start), so a pointer stays valid unlocked. */
static store_dav_owner *owner_entry(store *st, const uint8_t owner[16])
{
	store_dav_owner *o = NULL;
	unsigned b = owner[15] % 64;

	pthread_mutex_lock(&st->dav_mu);
	for (o = st->dav[b]; o; o = o->next)
		if (memcmp(o->owner, owner, 16) == 0)
			break;
	if (!o) {
		o = calloc(1, sizeof(*o));
		if (!o)
			abort();
		memcpy(o->owner, owner, 16);
		pthread_mutex_init(&o->mu, NULL);
		pthread_cond_init(&o->idle, NULL);
		o->next = st->dav[b];
		st->dav[b] = o;
	}
	pthread_mutex_unlock(&st->dav_mu);
	return o;
}

void store_dav_free_all(store *st)
{
	for (int i = 0; i < 64; i++) {
		while (st->dav[i]) {
			store_dav_owner *o = st->dav[i];

			st->dav[i] = o->next;
			pthread_mutex_destroy(&o->mu);
			pthread_cond_destroy(&o->idle);
			free(o);
		}
	}
}

int store_dav_lock(store *st, const uint8_t owner[16], store_dav_owner **o_r)
{
	store_dav_owner *o = owner_entry(st, owner);

	pthread_mutex_lock(&o->mu);
	while (o->inflight || o->removing)
		pthread_cond_wait(&o->idle, &o->mu);
	if (o->gone) {
		pthread_mutex_unlock(&o->mu);
		return STORE_ENOTFOUND;
	}
	*o_r = o;
	return STORE_OK;
}

void store_dav_unlock(store_dav_owner *o)
{
	pthread_mutex_unlock(&o->mu);
}

/* Commit thread, after the write: the owner has one batch less in flight. */
static void owner_hook(store *st, store_commit *c, int rc)
{
	store_dav_owner *o = c->hook_arg;

	(void)st;
	(void)rc;
	pthread_mutex_lock(&o->mu);
	o->inflight--;
	if (o->inflight == 0)
		pthread_cond_broadcast(&o->idle);
	pthread_mutex_unlock(&o->mu);
	c->hook = NULL;
	c->hook_arg = NULL;
}

void store_dav_track(store_commit *c, store_dav_owner *o)
{
	o->inflight++;
	c->hook = owner_hook;
	c->hook_arg = o;
}

int store_dav_finish(store *st, store_commit *c, store_dav_owner *o, store_sync_result *res_r)
{
	int blocking = c->cb.fn == NULL;

	store_dav_track(c, o);
	store_commit_enqueue(st, c);
	store_dav_unlock(o);
	if (!blocking)
		return STORE_OK;
	store_commit_wait(st, c);
	return store_commit_run(st, c, res_r);
}

int store_dav_owner_remove_batch(store *st, store_commit *c, const uint8_t owner[16])
{
	store_dav_owner *o = owner_entry(st, owner);
	uint8_t hi[16];

	if (sk_prefix_end(owner, 16, hi) != 0)
		return STORE_EINVAL;
	pthread_mutex_lock(&o->mu);
	while (o->inflight || o->removing)
		pthread_cond_wait(&o->idle, &o->mu);
	o->removing = 1;
	pthread_mutex_unlock(&o->mu);
	rocksdb_writebatch_delete_range_cf(c->wb, st->cf[CF_DAV], (const char *)owner, 16,
					   (const char *)hi, 16);
	rocksdb_writebatch_delete_range_cf(c->wb, st->cf[CF_CHANGES], (const char *)owner, 16,
					   (const char *)hi, 16);
	c->dav_gone = realloc(c->dav_gone, (c->ndav_gone + 1) * sizeof(*c->dav_gone));
	if (!c->dav_gone)
		abort();
	memcpy(c->dav_gone[c->ndav_gone++], owner, 16);
	return STORE_OK;
}

void store_dav_owner_removed(store *st, const uint8_t owner[16], int rc)
{
	store_dav_owner *o = owner_entry(st, owner);

	pthread_mutex_lock(&o->mu);
	o->removing = 0;
	if (rc == STORE_OK)
		o->gone = 1;
	pthread_cond_broadcast(&o->idle);
	pthread_mutex_unlock(&o->mu);
}

void store_dav_owner_revive(store *st, const uint8_t owner[16])
{
	store_dav_owner *o = owner_entry(st, owner);

	pthread_mutex_lock(&o->mu);
	o->gone = 0;
	pthread_mutex_unlock(&o->mu);
}

void store_dav_put_change(store *st, store_commit *c, const uint8_t owner[16],
			  const uint8_t coll[16], uint64_t modseq, Tern__Change__Kind kind,
			  const char *href)
{
	Tern__Change ch = TERN__CHANGE__INIT;
	uint8_t k[SK_CHANGE_LEN];

	ch.kind = kind;
	ch.href = (char *)href;
	ch.time = (uint64_t)tern_now();
	sk_change(k, owner, coll, modseq);
	store_wb_put_record(c->wb, st, CF_CHANGES, k, sizeof(k), &ch.base);
	store_commit_add_event(c, owner, coll, modseq, kind, 0);
}

/* ---- collections: reads ---- */

typedef struct coll_list {
	Tern__DavCollection **v;
	size_t n;
	uint8_t next[SK_DAV_COLL_LEN];  /* where the next scan starts */
	int found, bad;
} coll_list;

/* The first row at or after the scan start: a collection row (32 bytes) is taken and the
 * next scan starts after its objects; an object row is skipped the same way. */
static int take_collection(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	coll_list *l = arg;

	l->found = 1;
	if (kn < SK_DAV_COLL_LEN || sk_prefix_end((const uint8_t *)k, SK_DAV_COLL_LEN, l->next) != 0) {
		l->found = 0;
		return 1;
	}
	if (kn == SK_DAV_COLL_LEN) {
		Tern__DavCollection *c = tern__dav_collection__unpack(NULL, vn, (const uint8_t *)v);

		if (!c) {
			l->bad = 1;
			return 1;
		}
		l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
		if (!l->v)
			abort();
		l->v[l->n++] = c;
	}
	return 1;
}

int store_dav_collection_list(store *st, const uint8_t owner[16], Tern__DavCollection ***list_r,
			      size_t *n_r)
{
	coll_list l = { NULL, 0, { 0 }, 0, 0 };

	memcpy(l.next, owner, 16);
	/* One seek per collection: the scan jumps over each collection's objects. */
	for (;;) {
		l.found = 0;
		if (store_db_scan(st, CF_DAV, owner, 16, l.next, SK_DAV_COLL_LEN, take_collection,
				  &l) < 0 || l.bad) {
			store_free_list((void **)l.v, l.n);
			return STORE_EIO;
		}
		if (!l.found || memcmp(l.next, owner, 16) != 0)
			break;
	}
	*list_r = l.v;
	*n_r = l.n;
	return STORE_OK;
}

int store_dav_collection_get(store *st, const uint8_t owner[16], const char *name,
			     Tern__DavCollection **c_r)
{
	Tern__DavCollection **v = NULL;
	size_t n = 0;
	int rc = store_dav_collection_list(st, owner, &v, &n);

	if (rc != STORE_OK)
		return rc;
	rc = STORE_ENOTFOUND;
	for (size_t i = 0; i < n && rc != STORE_OK; i++) {
		if (name && strcmp(v[i]->name, name) == 0) {
			*c_r = v[i];
			v[i] = NULL;
			rc = STORE_OK;
		}
	}
	store_free_list((void **)v, n);
	return rc;
}

int store_dav_collection_get_by_id(store *st, const uint8_t owner[16], const uint8_t id[16],
				   Tern__DavCollection **c_r)
{
	uint8_t k[SK_DAV_COLL_LEN];

	sk_dav_collection(k, owner, id);
	return store_db_get_record(st, CF_DAV, k, sizeof(k), &tern__dav_collection__descriptor,
				   (ProtobufCMessage **)c_r);
}

/* ---- collections: writes ---- */

/* A URL segment: [A-Za-z0-9._-], 1..128 bytes, not "." or "..". */
static int valid_coll_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > COLL_NAME_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (; *s; s++) {
		char ch = *s;

		if (!(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z') && !(ch >= '0' && ch <= '9') &&
		    ch != '.' && ch != '_' && ch != '-')
			return 0;
	}
	return 1;
}

static size_t slen(const char *s)
{
	return s ? strlen(s) : 0;
}

/* The properties a client may set: bounded text, known components. */
static int check_props(store *st, store_commit *c, store_sync_result *res_r,
		       const Tern__DavCollection *dc)
{
	static const char *const comps[] = { "VEVENT", "VTODO", "VJOURNAL", "VAVAILABILITY", NULL };

	if (slen(dc->display_name) > COLL_TEXT_MAX || slen(dc->description) > COLL_TEXT_MAX ||
	    slen(dc->color) > 64 || slen(dc->timezone) > 64 * 1024)
		return store_commit_fail(st, c, res_r, STORE_EINVAL, "collection property too long");
	for (size_t i = 0; i < dc->n_components; i++) {
		size_t m = 0;

		while (comps[m] && strcmp(comps[m], dc->components[i]) != 0)
			m++;
		if (!comps[m])
			return store_commit_fail(st, c, res_r, STORE_EINVAL,
						 "unsupported calendar component '%s'",
						 dc->components[i]);
	}
	return STORE_OK;
}

static void put_collection(store *st, store_commit *c, const uint8_t owner[16],
			   const Tern__DavCollection *dc)
{
	uint8_t k[SK_DAV_COLL_LEN];

	sk_dav_collection(k, owner, dc->id.data);
	store_wb_put_record(c->wb, st, CF_DAV, k, sizeof(k), &dc->base);
}

int store_dav_collection_create(store *st, const uint8_t owner[16], const Tern__DavCollection *dc,
				store_cb cb, store_sync_result *res_r)
{
	store_commit *c = store_commit_new(cb);
	Tern__DavCollection rec = *dc, *old = NULL;
	store_dav_owner *o = NULL;
	char why[STORE_ERR_MAX];
	uint8_t id[16];
	int rc;

	if (!valid_coll_name(dc->name))
		return store_commit_fail(st, c, res_r, STORE_EINVAL, "invalid collection name '%s'",
					 dc->name ? dc->name : "");
	if (dc->id.len != 0 && dc->id.len != 16)
		return store_commit_fail(st, c, res_r, STORE_EINVAL, "collection id is not 16 bytes");
	if ((rc = check_props(st, c, res_r, dc)) != STORE_OK)
		return rc;
	if (dc->id.len == 16)
		memcpy(id, dc->id.data, 16);
	else
		tern_uuid_new(id);
	if (store_dav_lock(st, owner, &o) != STORE_OK)
		return store_commit_fail(st, c, res_r, STORE_ENOTFOUND, "the owner was removed");
	if ((rc = store_mbox_writable(st, owner, why, sizeof(why))) != STORE_OK) {
		store_dav_unlock(o);
		return store_commit_fail(st, c, res_r, rc, "%s", why);
	}
	rc = store_dav_collection_get(st, owner, dc->name, &old);
	if (rc == STORE_ENOTFOUND)
		rc = store_dav_collection_get_by_id(st, owner, id, &old);
	if (rc != STORE_ENOTFOUND) {
		store_dav_unlock(o);
		if (old)
			tern__dav_collection__free_unpacked(old, NULL);
		return store_commit_fail(st, c, res_r, rc == STORE_OK ? STORE_EEXISTS : rc,
					 rc == STORE_OK ? "collection %s already exists"
							: "cannot read the collections (%s)", dc->name);
	}
	rec.id.data = id;
	rec.id.len = 16;
	rec.modseq = 1;
	rec.created = (uint64_t)tern_now();
	put_collection(st, c, owner, &rec);
	memcpy(c->res.id, id, 16);
	c->res.modseq = rec.modseq;
	store_commit_add_event(c, owner, id, rec.modseq, TERN__CHANGE__KIND__FOLDER, 0);
	return store_dav_finish(st, c, o, res_r);
}

int store_dav_lock_collection(store *st, store_commit *c, store_sync_result *res_r,
			      const uint8_t owner[16], const uint8_t id[16], store_dav_owner **o_r,
			      Tern__DavCollection **dc_r)
{
	char why[STORE_ERR_MAX];
	int rc;

	if (store_dav_lock(st, owner, o_r) != STORE_OK)
		return store_commit_fail(st, c, res_r, STORE_ENOTFOUND, "the owner was removed");
	/* A migration holds the owner's rows: no ordinary write (checked under the lock). */
	if ((rc = store_mbox_writable(st, owner, why, sizeof(why))) != STORE_OK) {
		store_dav_unlock(*o_r);
		return store_commit_fail(st, c, res_r, rc, "%s", why);
	}
	if ((rc = store_dav_collection_get_by_id(st, owner, id, dc_r)) != STORE_OK) {
		store_dav_unlock(*o_r);
		return store_commit_fail(st, c, res_r, rc, rc == STORE_ENOTFOUND ? "no such collection"
					 : "cannot read the collection");
	}
	return STORE_OK;
}

int store_dav_collection_update(store *st, const uint8_t owner[16], const Tern__DavCollection *dc,
				store_cb cb, store_sync_result *res_r)
{
	store_commit *c = store_commit_new(cb);
	Tern__DavCollection *old = NULL, rec = *dc;
	store_dav_owner *o = NULL;
	int rc;

	if (dc->id.len != 16)
		return store_commit_fail(st, c, res_r, STORE_ENOTFOUND, "no such collection");
	if ((rc = check_props(st, c, res_r, dc)) != STORE_OK)
		return rc;
	if ((rc = store_dav_lock_collection(st, c, res_r, owner, dc->id.data, &o, &old)) != STORE_OK)
		return rc;
	/* Identity and sync state are the store's. */
	rec.name = old->name;
	rec.kind = old->kind;
	rec.modseq = old->modseq;
	rec.created = old->created;
	put_collection(st, c, owner, &rec);
	memcpy(c->res.id, dc->id.data, 16);
	c->res.modseq = old->modseq;
	store_commit_add_event(c, owner, dc->id.data, old->modseq, TERN__CHANGE__KIND__FOLDER, 0);
	tern__dav_collection__free_unpacked(old, NULL);
	return store_dav_finish(st, c, o, res_r);
}

int store_dav_collection_delete(store *st, const uint8_t owner[16], const uint8_t id[16],
				store_cb cb, store_sync_result *res_r)
{
	store_commit *c = store_commit_new(cb);
	Tern__DavCollection *old = NULL;
	uint8_t lo[SK_DAV_COLL_LEN], hi[SK_DAV_COLL_LEN];
	store_dav_owner *o = NULL;
	int rc;

	if ((rc = store_dav_lock_collection(st, c, res_r, owner, id, &o, &old)) != STORE_OK)
		return rc;
	sk_dav_collection(lo, owner, id);
	if (sk_prefix_end(lo, sizeof(lo), hi) != 0) {
		store_dav_unlock(o);
		tern__dav_collection__free_unpacked(old, NULL);
		return store_commit_fail(st, c, res_r, STORE_EINVAL, "invalid collection id");
	}
	/* The collection row, its objects and UID index, and its changes rows. */
	rocksdb_writebatch_delete_range_cf(c->wb, st->cf[CF_DAV], (const char *)lo, sizeof(lo),
					   (const char *)hi, sizeof(hi));
	rocksdb_writebatch_delete_range_cf(c->wb, st->cf[CF_CHANGES], (const char *)lo, sizeof(lo),
					   (const char *)hi, sizeof(hi));
	memcpy(c->res.id, id, 16);
	c->res.modseq = old->modseq;
	store_commit_add_event(c, owner, id, old->modseq, TERN__CHANGE__KIND__FOLDER, 0);
	tern__dav_collection__free_unpacked(old, NULL);
	return store_dav_finish(st, c, o, res_r);
}

/* ---- sync-collection ---- */

typedef struct dav_chg {
	char *href;
	uint64_t modseq;
	int deleted;
} dav_chg;

typedef struct chg_scan {
	dav_chg *v;
	size_t n, cap;
	int bad;
} chg_scan;

static int take_change(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	chg_scan *s = arg;
	uint8_t owner[16], coll[16];
	uint64_t modseq;
	Tern__Change *ch;

	if (sk_change_parse(k, kn, owner, coll, &modseq) != 0)
		return 0;
	if (!(ch = tern__change__unpack(NULL, vn, (const uint8_t *)v))) {
		s->bad = 1;
		return 1;
	}
	if (ch->kind == TERN__CHANGE__KIND__DAV_PUT || ch->kind == TERN__CHANGE__KIND__DAV_DELETE) {
		if (s->n == s->cap) {
			s->cap = s->cap ? 2 * s->cap : 16;
			s->v = realloc(s->v, s->cap * sizeof(*s->v));
			if (!s->v)
				abort();
		}
		s->v[s->n].href = strdup(ch->href ? ch->href : "");
		if (!s->v[s->n].href)
			abort();
		s->v[s->n].modseq = modseq;
		s->v[s->n].deleted = ch->kind == TERN__CHANGE__KIND__DAV_DELETE;
		s->n++;
	}
	tern__change__free_unpacked(ch, NULL);
	return 0;
}

static int first_modseq(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	uint8_t owner[16], coll[16];

	(void)v;
	(void)vn;
	if (sk_change_parse(k, kn, owner, coll, (uint64_t *)arg) != 0)
		return 0;
	return 1;
}

static int by_href_modseq(const void *x, const void *y)
{
	const dav_chg *a = x, *b = y;
	int r = strcmp(a->href, b->href);

	return r ? r : a->modseq < b->modseq ? -1 : a->modseq > b->modseq;
}

static int by_modseq(const void *x, const void *y)
{
	const dav_chg *a = x, *b = y;

	return a->modseq < b->modseq ? -1 : a->modseq > b->modseq;
}

int store_dav_changes(store *st, const uint8_t owner[16], const uint8_t coll[16], uint64_t since,
		      int (*fn)(const char *href, int deleted, uint64_t modseq, void *arg), void *arg)
{
	Tern__DavCollection *dc = NULL;
	uint8_t prefix[SK_DAV_COLL_LEN], from[SK_CHANGE_LEN];
	uint64_t first = 0, floor;
	chg_scan s = { NULL, 0, 0, 0 };
	size_t kept = 0;
	int rc;

	if ((rc = store_dav_collection_get_by_id(st, owner, coll, &dc)) != STORE_OK)
		return rc;
	uint64_t head = dc->modseq;

	tern__dav_collection__free_unpacked(dc, NULL);
	sk_dav_collection(prefix, owner, coll);
	if (store_db_scan(st, CF_CHANGES, prefix, sizeof(prefix), NULL, 0, first_modseq, &first) < 0)
		return STORE_EIO;
	/* Modseq 1 is the creation: when the changes from 2 on are all kept, any token back
	 * to 0 is answerable; otherwise the oldest answerable is the one before the first
	 * kept change (or the head when none is kept). */
	floor = first ? (first <= 2 ? 0 : first - 1) : (head <= 1 ? 0 : head);
	if (since < floor || since > head)
		return STORE_EINVAL;
	sk_change(from, owner, coll, since + 1);
	if (store_db_scan(st, CF_CHANGES, prefix, sizeof(prefix), from, sizeof(from), take_change,
			  &s) < 0 || s.bad) {
		rc = STORE_EIO;
		goto out;
	}
	/* Each href once, with its last change, in the order of those changes. */
	if (s.n > 1)
		qsort(s.v, s.n, sizeof(*s.v), by_href_modseq);
	for (size_t i = 0; i < s.n; i++) {
		if (i + 1 < s.n && strcmp(s.v[i].href, s.v[i + 1].href) == 0) {
			free(s.v[i].href);
			continue;
		}
		s.v[kept++] = s.v[i];
	}
	s.n = kept;
	if (s.n > 1)
		qsort(s.v, s.n, sizeof(*s.v), by_modseq);
	rc = STORE_OK;
	for (size_t i = 0; i < s.n; i++)
		if (fn(s.v[i].href, s.v[i].deleted, s.v[i].modseq, arg) != 0)
			break;
out:
	for (size_t i = 0; i < s.n; i++)
		free(s.v[i].href);
	free(s.v);
	return rc;
}
