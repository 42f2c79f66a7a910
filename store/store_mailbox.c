/* store_mailbox.c - per-mailbox in-memory state (usage and folder records, loaded
 * lazily, guarded by one mutex per mailbox) and the folder operations. Batches of one
 * mailbox are queued under its mutex, so they commit in the order UIDs and modseqs were
 * allocated. A failed write makes the state stale (reloaded once idle) and bumps the
 * mailbox's epoch, which dooms the batches already queued on top of it. UIDVALIDITY
 * values only grow, across restarts too: the highest one given out is kept in config
 * "setting/uidvalidity", written with every batch that creates folders. Messages are in
 * store_msg.c. */
#include "store_private.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FOLDER_NAME_MAX 1024
static const uint8_t zero_id[16];

void store_mailbox_init(store *st)
{
	memset(st->mbx, 0, sizeof(st->mbx));
}

static void mbx_unload(store_mbx *m)
{
	if (m->rec)
		tern__mailbox__free_unpacked(m->rec, NULL);
	m->rec = NULL;
	for (size_t i = 0; i < m->nfolders; i++)
		tern__folder__free_unpacked(m->folders[i], NULL);
	free(m->folders);
	m->folders = NULL;
	m->nfolders = 0;
	m->loaded = 0;
}

/* Free an entry nobody can reach any more (unlinked, or the store closing). */
static void mbx_free(store_mbx **mp)
{
	store_mbx *m = *mp;

	*mp = NULL;
	mbx_unload(m);
	pthread_mutex_destroy(&m->mu);
	pthread_cond_destroy(&m->idle);
	free(m);
}

void store_mailbox_free_all(store *st)
{
	for (int i = 0; i < 256; i++) {
		while (st->mbx[i]) {
			store_mbx *m = st->mbx[i];

			st->mbx[i] = m->next;
			mbx_free(&m);
		}
	}
}

static int load_folder(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	store_mbx *m = arg;

	if (kn != SK_FOLDER_LEN || memcmp(k + 16, zero_id, 16) == 0)
		return 0;
	Tern__Folder *f = tern__folder__unpack(NULL, vn, (const uint8_t *)v);

	if (!f)
		return -1;
	m->folders = realloc(m->folders, (m->nfolders + 1) * sizeof(*m->folders));
	if (!m->folders)
		abort();
	m->folders[m->nfolders++] = f;
	return 0;
}

static int mbx_load(store *st, store_mbx *m)
{
	uint8_t k[SK_FOLDER_LEN];
	int rc;

	mbx_unload(m);
	sk_mailbox(k, m->user);
	rc = store_db_get_record(st, CF_FOLDER, k, sizeof(k), &tern__mailbox__descriptor,
				 (ProtobufCMessage **)&m->rec);
	if (rc != STORE_OK)
		return rc;
	if (store_db_scan(st, CF_FOLDER, m->user, 16, NULL, 0, load_folder, m) != 0) {
		mbx_unload(m);
		return STORE_EIO;
	}
	m->loaded = 1;
	m->stale = 0;
	return STORE_OK;
}

/* Make the locked m usable: refused once removed; reloaded (after its batches in flight
 * are written) when a write failed or it was never loaded. */
static int mbx_ready(store *st, store_mbx *m)
{
	for (;;) {
		if (m->removed)
			return STORE_ENOTFOUND;
		if (m->stale && m->inflight) {
			pthread_cond_wait(&m->idle, &m->mu);
			continue;
		}
		if (!m->loaded || m->stale)
			return mbx_load(st, m);
		return STORE_OK;
	}
}

int store_mbx_lock(store *st, const uint8_t user[16], store_mbx **m_r)
{
	store_mbx *m;
	int rc;

	pthread_mutex_lock(&st->mbx_mu);
	for (m = st->mbx[user[15]]; m; m = m->next)
		if (memcmp(m->user, user, 16) == 0)
			break;
	if (!m) {
		m = calloc(1, sizeof(*m));
		if (!m)
			abort();
		memcpy(m->user, user, 16);
		pthread_mutex_init(&m->mu, NULL);
		pthread_cond_init(&m->idle, NULL);
		m->next = st->mbx[user[15]];
		st->mbx[user[15]] = m;
	}
	/* Pinned until unlocked: a removal waits for the pins before freeing m. */
	atomic_fetch_add(&m->pins, 1);
	pthread_mutex_unlock(&st->mbx_mu);
	pthread_mutex_lock(&m->mu);
	if ((rc = mbx_ready(st, m)) != STORE_OK) {
		store_mbx_unlock(m);
		return rc;
	}
	*m_r = m;
	return STORE_OK;
}

void store_mbx_unlock(store_mbx *m)
{
	if (atomic_fetch_sub(&m->pins, 1) == 1)
		pthread_cond_broadcast(&m->idle);
	pthread_mutex_unlock(&m->mu);
}

int store_mbx_wait_idle(store *st, store_mbx *m)
{
	while (m->inflight)
		pthread_cond_wait(&m->idle, &m->mu);
	return mbx_ready(st, m);
}

int store_mbx_lock_idle(store *st, store_commit *c, const uint8_t user[16],
			store_sync_result *res_r, store_mbx **m_r)
{
	char why[STORE_ERR_MAX];
	int rc;

	if ((rc = store_mbx_lock(st, user, m_r)) != STORE_OK)
		return store_commit_fail(st, c, res_r, rc, "no such mailbox");
	if ((rc = store_mbx_wait_idle(st, *m_r)) != STORE_OK) {
		store_mbx_unlock(*m_r);
		return store_commit_fail(st, c, res_r, rc, "no such mailbox");
	}
	if ((rc = store_mbox_writable(st, user, why, sizeof(why))) != STORE_OK) {
		store_mbx_unlock(*m_r);
		return store_commit_fail(st, c, res_r, rc, "%s", why);
	}
	return STORE_OK;
}

/* Lock the mailbox of user for an ordinary change on behalf of c: STORE_OK with *m_r
 * locked, or c failed (no such mailbox; a migration holds it) and its result returned. */
static int lock_writable(store *st, store_commit *c, const uint8_t user[16],
			 store_sync_result *res_r, store_mbx **m_r)
{
	char why[STORE_ERR_MAX];
	int rc;

	if ((rc = store_mbx_lock(st, user, m_r)) != STORE_OK)
		return store_commit_fail(st, c, res_r, rc, "no such mailbox");
	if ((rc = store_mbox_writable(st, user, why, sizeof(why))) != STORE_OK) {
		store_mbx_unlock(*m_r);
		return store_commit_fail(st, c, res_r, rc, "%s", why);
	}
	return STORE_OK;
}

void store_mailbox_removed(store *st, const uint8_t user[16], int rc)
{
	store_mbx **pp, *m;

	pthread_mutex_lock(&st->mbx_mu);
	for (pp = &st->mbx[user[15]]; *pp; pp = &(*pp)->next)
		if (memcmp((*pp)->user, user, 16) == 0)
			break;
	m = *pp;
	if (!m) {
		pthread_mutex_unlock(&st->mbx_mu);
		return;
	}
	if (rc != STORE_OK) {
		atomic_fetch_add(&m->pins, 1);
		pthread_mutex_unlock(&st->mbx_mu);
		pthread_mutex_lock(&m->mu);
		m->removed = 0;
		m->stale = 1;
		store_mbx_unlock(m);
		return;
	}
	/* Unlinked, m gains no pins; the threads that found it before see `removed`. */
	*pp = m->next;
	pthread_mutex_unlock(&st->mbx_mu);
	pthread_mutex_lock(&m->mu);
	while (m->inflight || atomic_load(&m->pins))
		pthread_cond_wait(&m->idle, &m->mu);
	pthread_mutex_unlock(&m->mu);
	mbx_free(&m);
}

Tern__Folder *store_mbx_folder(store_mbx *m, const uint8_t *folder)
{
	for (size_t i = 0; i < m->nfolders; i++) {
		Tern__Folder *f = m->folders[i];

		if (folder ? f->id.len == 16 && memcmp(f->id.data, folder, 16) == 0
			   : strcasecmp(f->name, "INBOX") == 0)
			return f;
	}
	return NULL;
}

void store_mbx_enqueue(store *st, store_commit *c, store_mbx **ms, size_t n)
{
	c->mbx = malloc(n * sizeof(*c->mbx));
	c->mbx_epoch = malloc(n * sizeof(*c->mbx_epoch));
	if (!c->mbx || !c->mbx_epoch)
		abort();
	for (size_t i = 0; i < n; i++) {
		c->mbx[i] = ms[i];
		c->mbx_epoch[i] = atomic_load(&ms[i]->epoch);
		ms[i]->inflight++;
	}
	c->nmbx = n;
	store_commit_enqueue(st, c);
}

void store_mailbox_release(store *st, store_commit *c, int rc)
{
	for (size_t i = 0; i < c->nmbx; i++) {
		store_mbx *m = c->mbx[i];

		pthread_mutex_lock(&m->mu);
		m->inflight--;
		if (rc != STORE_OK)
			m->stale = 1;
		if (m->inflight == 0)
			pthread_cond_broadcast(&m->idle);
		pthread_mutex_unlock(&m->mu);
	}
	c->nmbx = 0;
}

int store_mailbox_doomed(const store_commit *c)
{
	for (size_t i = 0; i < c->nmbx; i++)
		if (atomic_load(&c->mbx[i]->epoch) != c->mbx_epoch[i])
			return 1;
	return 0;
}

void store_mailbox_fail(store *st, store_commit *c)
{
	for (size_t i = 0; i < c->nmbx; i++) {
		store_mbx *m = c->mbx[i];

		pthread_mutex_lock(&m->mu);
		atomic_fetch_add(&m->epoch, 1);
		m->stale = 1;
		pthread_mutex_unlock(&m->mu);
	}
}

void store_mbx_put_folder(store *st, rocksdb_writebatch_t *wb, store_mbx *m, const Tern__Folder *f)
{
	uint8_t k[SK_FOLDER_LEN];

	sk_folder(k, m->user, f->id.data);
	store_wb_put_record(wb, st, CF_FOLDER, k, sizeof(k), &f->base);
}

void store_mbx_put_usage(store *st, rocksdb_writebatch_t *wb, store_mbx *m)
{
	uint8_t k[SK_FOLDER_LEN];

	sk_mailbox(k, m->user);
	store_wb_put_record(wb, st, CF_FOLDER, k, sizeof(k), &m->rec->base);
}

#define UV_MARK_KEY "uidvalidity"

int store_uidvalidity_load(store *st, char **error_r)
{
	char *v = NULL, *end;
	int rc = store_setting_get(st, UV_MARK_KEY, &v);

	if (rc == STORE_ENOTFOUND)
		return 0;
	if (rc == STORE_OK) {
		unsigned long long n = strtoull(v, &end, 10);

		if (end != v && *end == '\0' && n <= UINT32_MAX) {
			st->last_uidvalidity = (uint32_t)n;
			free(v);
			return 0;
		}
		free(v);
	}
	*error_r = strdup("cannot read the UIDVALIDITY mark of the store");
	return -1;
}

uint32_t store_new_uidvalidity(store *st)
{
	uint32_t v = (uint32_t)tern_now();

	pthread_mutex_lock(&st->uv_mu);
	if (v <= st->last_uidvalidity)
		v = st->last_uidvalidity + 1;
	st->last_uidvalidity = v;
	pthread_mutex_unlock(&st->uv_mu);
	return v;
}

void store_uidvalidity_put_mark(store *st, rocksdb_writebatch_t *wb)
{
	char v[16];
	tbuf k = TBUF_INIT;
	int n;

	pthread_mutex_lock(&st->uv_mu);
	n = snprintf(v, sizeof(v), "%u", (unsigned)st->last_uidvalidity);
	pthread_mutex_unlock(&st->uv_mu);
	if (n < 0 || (size_t)n >= sizeof(v))
		abort();
	sk_setting(&k, UV_MARK_KEY);
	rocksdb_writebatch_put_cf(wb, st->cf[CF_CONFIG], k.data, k.len, v, (size_t)n);
	tbuf_free(&k);
}

/* A fresh folder record (caller frees). */
static Tern__Folder *folder_new(store *st, const char *name, const char *special_use)
{
	Tern__Folder *f = malloc(sizeof(*f));

	if (!f)
		abort();
	tern__folder__init(f);
	f->id.data = malloc(16);
	f->name = strdup(name);
	f->special_use = strdup(special_use ? special_use : "");
	if (!f->id.data || !f->name || !f->special_use)
		abort();
	f->id.len = 16;
	tern_uuid_new(f->id.data);
	f->uidvalidity = store_new_uidvalidity(st);
	f->uidnext = 1;
	f->highestmodseq = 1;
	f->subscribed = 1;
	f->created = (uint64_t)tern_now();
	return f;
}

void store_mailbox_create_batch(store *st, store_commit *c, const uint8_t user[16])
{
	rocksdb_writebatch_t *wb = c->wb;
	Tern__Mailbox mb = TERN__MAILBOX__INIT;
	Tern__Folder *inbox = folder_new(st, "INBOX", NULL);
	uint8_t k[SK_FOLDER_LEN];

	sk_mailbox(k, user);
	store_wb_put_record(wb, st, CF_FOLDER, k, sizeof(k), &mb.base);
	sk_folder(k, user, inbox->id.data);
	store_wb_put_record(wb, st, CF_FOLDER, k, sizeof(k), &inbox->base);
	tern__folder__free_unpacked(inbox, NULL);
	c->uv_mark = 1;
}

typedef struct drop_ctx {
	store *st;
	rocksdb_writebatch_t *wb;
	uint64_t bytes, items;
	int bad;
} drop_ctx;

static int drop_one(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	drop_ctx *d = arg;
	uint8_t user[16], folder[16], rk[SK_BLOBREF_LEN];
	uint32_t uid;
	Tern__MessageMeta *mm;

	if (sk_msg_parse(k, kn, user, folder, &uid) != 0)
		return 0;
	mm = tern__message_meta__unpack(NULL, vn, (const uint8_t *)v);
	if (!mm) {
		d->bad = 1;
		return 1;
	}
	if (mm->blob.len == 32) {
		sk_blobref(rk, mm->blob.data, user, folder, uid);
		rocksdb_writebatch_delete_cf(d->wb, d->st->cf[CF_BLOBREF], (const char *)rk, sizeof(rk));
		store_blob_mark_orphan(d->st, d->wb, mm->blob.data);
	}
	d->bytes += mm->size;
	d->items++;
	tern__message_meta__free_unpacked(mm, NULL);
	return 0;
}

int store_mbx_drop_messages(store *st, rocksdb_writebatch_t *wb, const uint8_t user[16],
			    const uint8_t *folder, uint64_t *bytes_r, uint64_t *items_r)
{
	uint8_t lo[SK_FOLDER_LEN], hi[SK_FOLDER_LEN];
	size_t n = folder ? SK_FOLDER_LEN : 16;
	drop_ctx d = { st, wb, 0, 0, 0 };

	memcpy(lo, user, 16);
	if (folder)
		memcpy(lo + 16, folder, 16);
	if (sk_prefix_end(lo, n, hi) != 0)
		return STORE_EINVAL;
	if (store_db_scan(st, CF_MSG, lo, n, NULL, 0, drop_one, &d) != 0 || d.bad)
		return STORE_EIO;
	rocksdb_writebatch_delete_range_cf(wb, st->cf[CF_MSG], (const char *)lo, n, (const char *)hi, n);
	rocksdb_writebatch_delete_range_cf(wb, st->cf[CF_CHANGES], (const char *)lo, n,
					   (const char *)hi, n);
	if (bytes_r)
		*bytes_r = d.bytes;
	if (items_r)
		*items_r = d.items;
	return STORE_OK;
}

int store_mailbox_remove_batch(store *st, rocksdb_writebatch_t *wb, const uint8_t user[16],
			       int if_empty)
{
	uint8_t hi[16];
	store_mbx *m = NULL;
	int rc;

	if (sk_prefix_end(user, 16, hi) != 0)
		return STORE_EINVAL;
	/* Wait for the mailbox's batches in flight, so every message row is seen; then mark
	 * it removed under its mutex, so that no later change is built on it (a change
	 * queued after this batch would recreate rows of the deleted user). */
	if (store_mbx_lock(st, user, &m) == STORE_OK && store_mbx_wait_idle(st, m) != STORE_OK) {
		store_mbx_unlock(m);
		return STORE_EIO;
	}
	if (if_empty && store_mailbox_has_data(st, user) != 0) {
		if (m)
			store_mbx_unlock(m);
		return STORE_EEXISTS;
	}
	rc = store_mbx_drop_messages(st, wb, user, NULL, NULL, NULL);
	if (rc == STORE_OK)
		rocksdb_writebatch_delete_range_cf(wb, st->cf[CF_FOLDER], (const char *)user, 16,
						   (const char *)hi, 16);
	if (m) {
		if (rc == STORE_OK)
			m->removed = 1;
		store_mbx_unlock(m);
	}
	return rc;
}

/* ---- reads (durable state) ---- */

int store_mailbox_get(store *st, const uint8_t user[16], Tern__Mailbox **m_r)
{
	uint8_t k[SK_FOLDER_LEN];

	sk_mailbox(k, user);
	return store_db_get_record(st, CF_FOLDER, k, sizeof(k), &tern__mailbox__descriptor,
				   (ProtobufCMessage **)m_r);
}

int store_folder_list(store *st, const uint8_t user[16], Tern__Folder ***list_r, size_t *n_r)
{
	store_mbx tmp;

	memset(&tmp, 0, sizeof(tmp));
	if (store_db_scan(st, CF_FOLDER, user, 16, NULL, 0, load_folder, &tmp) != 0) {
		store_free_list((void **)tmp.folders, tmp.nfolders);
		return STORE_EIO;
	}
	*list_r = tmp.folders;
	*n_r = tmp.nfolders;
	return STORE_OK;
}

int store_folder_get(store *st, const uint8_t user[16], const uint8_t folder[16], Tern__Folder **f_r)
{
	uint8_t k[SK_FOLDER_LEN];

	sk_folder(k, user, folder);
	return store_db_get_record(st, CF_FOLDER, k, sizeof(k), &tern__folder__descriptor,
				   (ProtobufCMessage **)f_r);
}

static int name_eq(const char *a, const char *b)
{
	if (strcasecmp(a, "INBOX") == 0 || strcasecmp(b, "INBOX") == 0)
		return strcasecmp(a, b) == 0;
	return strcmp(a, b) == 0;
}

int store_folder_find(store *st, const uint8_t user[16], const char *name, Tern__Folder **f_r)
{
	Tern__Folder **list = NULL;
	size_t n = 0;
	int rc = store_folder_list(st, user, &list, &n);

	if (rc != STORE_OK)
		return rc;
	rc = STORE_ENOTFOUND;
	for (size_t i = 0; i < n; i++) {
		if (rc != STORE_OK && name_eq(list[i]->name, name)) {
			*f_r = list[i];
			list[i] = NULL;
			rc = STORE_OK;
		}
	}
	store_free_list((void **)list, n);
	return rc;
}

/* ---- folder changes ---- */

static int valid_folder_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > FOLDER_NAME_MAX || s[0] == '/' || s[n - 1] == '/' || strstr(s, "//"))
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

static Tern__Folder *folder_by_name(store_mbx *m, const char *name)
{
	for (size_t i = 0; i < m->nfolders; i++)
		if (name_eq(m->folders[i]->name, name))
			return m->folders[i];
	return NULL;
}

int store_folder_create(store *st, const uint8_t user[16], const char *name, const char *special_use,
			store_cb cb, store_sync_result *res_r)
{
	store_commit *c = store_commit_new(cb);
	store_mbx *m;
	int rc;

	if (!name || !valid_folder_name(name))
		return store_commit_fail(st, c, res_r, STORE_EINVAL, "invalid folder name '%s'",
					 name ? name : "");
	if ((rc = lock_writable(st, c, user, res_r, &m)) != STORE_OK)
		return rc;
	if (folder_by_name(m, name)) {
		store_mbx_unlock(m);
		return store_commit_fail(st, c, res_r, STORE_EEXISTS, "folder %s already exists", name);
	}
	Tern__Folder *f = folder_new(st, name, special_use);

	m->folders = realloc(m->folders, (m->nfolders + 1) * sizeof(*m->folders));
	if (!m->folders)
		abort();
	m->folders[m->nfolders++] = f;
	store_mbx_put_folder(st, c->wb, m, f);
	c->uv_mark = 1;
	memcpy(c->res.id, f->id.data, 16);
	c->res.uidvalidity = f->uidvalidity;
	c->res.modseq = f->highestmodseq;
	store_commit_add_event(c, user, f->id.data, f->highestmodseq, TERN__CHANGE__KIND__FOLDER, 0);
	return store_mbx_finish(st, c, &m, 1, res_r);
}

int store_folder_rename(store *st, const uint8_t user[16], const uint8_t folder[16],
			const char *new_name, store_cb cb, store_sync_result *res_r)
{
	store_commit *c = store_commit_new(cb);
	store_mbx *m;
	int rc;

	if (!new_name || !valid_folder_name(new_name) || strcasecmp(new_name, "INBOX") == 0)
		return store_commit_fail(st, c, res_r, STORE_EINVAL, "invalid folder name '%s'",
					 new_name ? new_name : "");
	if ((rc = lock_writable(st, c, user, res_r, &m)) != STORE_OK)
		return rc;
	Tern__Folder *f = store_mbx_folder(m, folder);

	if (!f || strcasecmp(f->name, "INBOX") == 0 || folder_by_name(m, new_name)) {
		rc = !f ? STORE_ENOTFOUND : folder_by_name(m, new_name) ? STORE_EEXISTS : STORE_EREFUSED;
		store_mbx_unlock(m);
		return store_commit_fail(st, c, res_r, rc, rc == STORE_EEXISTS ? "folder %s already "
					 "exists" : "cannot rename this folder to %s", new_name);
	}
	char *old = strdup(f->name);
	size_t ol = strlen(old);

	for (size_t i = 0; i < m->nfolders; i++) {
		Tern__Folder *x = m->folders[i];

		if (strcmp(x->name, old) != 0 && !(strncmp(x->name, old, ol) == 0 && x->name[ol] == '/'))
			continue;
		tbuf nn = TBUF_INIT;

		tbuf_append_str(&nn, new_name);
		tbuf_append_str(&nn, x->name + ol);
		free(x->name);
		x->name = tbuf_steal(&nn);
		store_mbx_put_folder(st, c->wb, m, x);
		store_commit_add_event(c, user, x->id.data, x->highestmodseq, TERN__CHANGE__KIND__FOLDER, 0);
	}
	free(old);
	return store_mbx_finish(st, c, &m, 1, res_r);
}

int store_folder_subscribe(store *st, const uint8_t user[16], const uint8_t folder[16], int on,
			   store_cb cb, store_sync_result *res_r)
{
	store_commit *c = store_commit_new(cb);
	store_mbx *m;
	int rc;

	if ((rc = lock_writable(st, c, user, res_r, &m)) != STORE_OK)
		return rc;
	Tern__Folder *f = store_mbx_folder(m, folder);

	if (!f) {
		store_mbx_unlock(m);
		return store_commit_fail(st, c, res_r, STORE_ENOTFOUND, "no such folder");
	}
	f->subscribed = on != 0;
	store_mbx_put_folder(st, c->wb, m, f);
	memcpy(c->res.id, f->id.data, 16);
	return store_mbx_finish(st, c, &m, 1, res_r);
}

int store_folder_delete(store *st, const uint8_t user[16], const uint8_t folder[16], store_cb cb,
			store_sync_result *res_r)
{
	store_commit *c = store_commit_new(cb);
	uint8_t k[SK_FOLDER_LEN];
	uint64_t bytes = 0, items = 0;
	store_mbx *m;
	int rc;

	if ((rc = store_mbx_lock_idle(st, c, user, res_r, &m)) != STORE_OK)
		return rc;
	Tern__Folder *f = store_mbx_folder(m, folder);

	if (!f || strcasecmp(f->name, "INBOX") == 0) {
		store_mbx_unlock(m);
		return store_commit_fail(st, c, res_r, f ? STORE_EREFUSED : STORE_ENOTFOUND,
					 f ? "INBOX cannot be deleted" : "no such folder");
	}
	if ((rc = store_mbx_drop_messages(st, c->wb, user, folder, &bytes, &items)) != STORE_OK) {
		store_mbx_unlock(m);
		return store_commit_fail(st, c, res_r, rc, "cannot read the folder's messages");
	}
	sk_folder(k, user, folder);
	rocksdb_writebatch_delete_cf(c->wb, st->cf[CF_FOLDER], (const char *)k, sizeof(k));
	m->rec->bytes = m->rec->bytes > bytes ? m->rec->bytes - bytes : 0;
	m->rec->items = m->rec->items > items ? m->rec->items - items : 0;
	store_mbx_put_usage(st, c->wb, m);
	store_commit_add_event(c, user, folder, f->highestmodseq, TERN__CHANGE__KIND__FOLDER, 0);
	for (size_t i = 0; i < m->nfolders; i++) {
		if (m->folders[i] == f) {
			tern__folder__free_unpacked(f, NULL);
			m->folders[i] = m->folders[--m->nfolders];
			break;
		}
	}
	return store_mbx_finish(st, c, &m, 1, res_r);
}
