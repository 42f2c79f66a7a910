/* store_mig_state.c - the migration state of mailboxes (node-local config rows
 * "mbstate/<user-id hex>", DESIGN.md §6), kept in memory because every login and every
 * ordinary write asks for it, and the records of the migration jobs of this node
 * ("migrate/job/<user-id hex>"). A state change takes the user's mailbox lock (once
 * idle: the batches in flight are durable first) and its DAV owner lock, and updates the
 * cache before it unlocks, so that a writer, which checks the state under one of those
 * locks, never slips a batch past a freeze. A change whose write fails puts the cached
 * state back. */
#include "store_private.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct store_mbs {
	struct store_mbs *next;
	uint8_t user[16];
	Tern__MailboxState *rec;      /* never ACTIVE: that state has no row */
} store_mbs;

static const uint8_t zero_id[16];

/* The entry of user (mbs_mu held), or NULL. */
static store_mbs **mbs_find(store *st, const uint8_t user[16])
{
	store_mbs **pp;

	for (pp = &st->mbs; *pp; pp = &(*pp)->next)
		if (memcmp((*pp)->user, user, 16) == 0)
			return pp;
	return pp;
}

static Tern__MailboxState *state_copy(const Tern__MailboxState *s)
{
	size_t n = protobuf_c_message_get_packed_size(&s->base);
	uint8_t *p = malloc(n ? n : 1);
	Tern__MailboxState *r;

	if (!p)
		abort();
	tern__mailbox_state__pack(s, p);
	r = tern__mailbox_state__unpack(NULL, n, p);
	free(p);
	if (!r)
		abort();
	return r;
}

/* Make the cached state of user rec (a copy is kept; NULL removes it). */
static void mbs_set(store *st, const uint8_t user[16], const Tern__MailboxState *rec)
{
	pthread_mutex_lock(&st->mbs_mu);
	store_mbs **pp = mbs_find(st, user), *e = *pp;

	if (!rec) {
		if (e) {
			*pp = e->next;
			tern__mailbox_state__free_unpacked(e->rec, NULL);
			free(e);
			atomic_fetch_sub(&st->nmbs, 1);
		}
	} else {
		if (!e) {
			e = calloc(1, sizeof(*e));
			if (!e)
				abort();
			memcpy(e->user, user, 16);
			*pp = e;
			atomic_fetch_add(&st->nmbs, 1);
		} else {
			tern__mailbox_state__free_unpacked(e->rec, NULL);
		}
		e->rec = state_copy(rec);
	}
	pthread_mutex_unlock(&st->mbs_mu);
}

static int load_one(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	store *st = arg;
	uint8_t user[16];
	Tern__MailboxState *s;

	if (sk_user_hex_parse(SK_MBSTATE_PREFIX, k, kn, user) != 0)
		return 0;
	if (!(s = tern__mailbox_state__unpack(NULL, vn, (const uint8_t *)v)))
		return -1;
	if (s->state != TERN__MAILBOX_STATE__STATE__ACTIVE)
		mbs_set(st, user, s);
	tern__mailbox_state__free_unpacked(s, NULL);
	return 0;
}

int store_mbs_load(store *st, char **error_r)
{
	if (store_db_scan(st, CF_CONFIG, SK_MBSTATE_PREFIX, strlen(SK_MBSTATE_PREFIX), NULL, 0,
			  load_one, st) != 0) {
		*error_r = strdup("cannot read the mailbox migration states of the store");
		return -1;
	}
	return 0;
}

void store_mbs_free_all(store *st)
{
	while (st->mbs) {
		store_mbs *e = st->mbs;

		st->mbs = e->next;
		tern__mailbox_state__free_unpacked(e->rec, NULL);
		free(e);
	}
	atomic_store(&st->nmbs, 0);
}

int store_mbox_state_get(store *st, const uint8_t user[16], store_mbox_state *s_r,
			 Tern__MailboxState **st_r)
{
	*s_r = STORE_MBOX_ACTIVE;
	if (st_r)
		*st_r = NULL;
	if (atomic_load(&st->nmbs) == 0)
		return STORE_OK;
	pthread_mutex_lock(&st->mbs_mu);
	store_mbs *e = *mbs_find(st, user);

	if (e) {
		*s_r = (store_mbox_state)e->rec->state;
		if (st_r)
			*st_r = state_copy(e->rec);
	}
	pthread_mutex_unlock(&st->mbs_mu);
	return STORE_OK;
}

void store_mbs_forget(store *st, const uint8_t user[16])
{
	mbs_set(st, user, NULL);
}

int store_mbs_held(store *st, const uint8_t user[16])
{
	store_mbox_state s;

	store_mbox_state_get(st, user, &s, NULL);
	return s != STORE_MBOX_ACTIVE;
}

int store_mbox_writable(store *st, const uint8_t user[16], char *why, size_t n)
{
	Tern__MailboxState *rec = NULL;
	store_mbox_state s;
	Tern__User *u = NULL;
	char who[300];

	store_mbox_state_get(st, user, &s, why ? &rec : NULL);
	if (s == STORE_MBOX_ACTIVE)
		return STORE_OK;
	if (!why)
		return STORE_EREFUSED;
	if (store_user_get_by_id(st, user, &u) == STORE_OK) {
		snprintf(who, sizeof(who), "%s@%s", u->name, u->domain);
		tern__user__free_unpacked(u, NULL);
	} else {
		tern_uuid_str(user, who);
	}
	snprintf(why, n, "the mailbox of %s %s node %s", who,
		 s == STORE_MBOX_FROZEN ? "is moving to" : "is arriving from",
		 rec && rec->peer ? rec->peer : "");
	if (rec)
		tern__mailbox_state__free_unpacked(rec, NULL);
	return STORE_EREFUSED;
}

int store_mbox_state_list(store *st, uint8_t (**ids_r)[16], size_t *n_r)
{
	size_t n = 0;

	pthread_mutex_lock(&st->mbs_mu);
	for (store_mbs *e = st->mbs; e; e = e->next)
		n++;
	uint8_t (*ids)[16] = malloc((n ? n : 1) * sizeof(*ids));

	if (!ids)
		abort();
	n = 0;
	for (store_mbs *e = st->mbs; e; e = e->next)
		memcpy(ids[n++], e->user, 16);
	pthread_mutex_unlock(&st->mbs_mu);
	*ids_r = ids;
	*n_r = n;
	return STORE_OK;
}

/* What a state change's hook needs: the state to put back when the write fails. */
typedef struct state_undo {
	uint8_t user[16];
	Tern__MailboxState *old;      /* NULL: there was no row */
} state_undo;

static void state_hook(store *st, store_commit *c, int rc)
{
	state_undo *u = c->hook_arg;

	if (rc != STORE_OK)
		mbs_set(st, u->user, u->old);
	if (u->old)
		tern__mailbox_state__free_unpacked(u->old, NULL);
	free(u);
	c->hook = NULL;
	c->hook_arg = NULL;
}

int store_mig_lock_user(store *st, const uint8_t user[16], store_mbx **m_r, store_dav_owner **o_r)
{
	int rc = store_mbx_lock(st, user, m_r);

	if (rc == STORE_ENOTFOUND) {
		*m_r = NULL;
	} else if (rc != STORE_OK) {
		return rc;
	} else if ((rc = store_mbx_wait_idle(st, *m_r)) != STORE_OK) {
		store_mbx_unlock(*m_r);
		*m_r = NULL;
		if (rc != STORE_ENOTFOUND)
			return rc;
	}
	if (store_dav_lock(st, user, o_r) != STORE_OK)
		*o_r = NULL;
	return STORE_OK;
}

int store_mbox_state_set(store *st, const uint8_t user[16], store_mbox_state s, const char *peer,
			 const uint8_t migration_id[16], store_cb cb, store_sync_result *res_r)
{
	Tern__MailboxState rec = TERN__MAILBOX_STATE__INIT, *cur = NULL;
	store_commit *c = store_commit_new(cb);
	int blocking = c->cb.fn == NULL;
	store_mbox_state have;
	store_dav_owner *o = NULL;
	store_mbx *m = NULL;
	tbuf k = TBUF_INIT;
	char who[37];
	int rc;

	if (s < STORE_MBOX_ACTIVE || s > STORE_MBOX_FROZEN)
		return store_commit_fail(st, c, res_r, STORE_EINVAL, "invalid mailbox state %d", (int)s);
	if ((rc = store_mig_lock_user(st, user, &m, &o)) != STORE_OK)
		return store_commit_fail(st, c, res_r, rc, "cannot read the mailbox");
	store_mbox_state_get(st, user, &have, &cur);
	tern_uuid_str(user, who);
	/* A migration never writes over a live mailbox. */
	if (s == STORE_MBOX_INCOMING && have == STORE_MBOX_ACTIVE && store_mailbox_has_data(st, user)) {
		if (o)
			store_dav_unlock(o);
		if (m)
			store_mbx_unlock(m);
		return store_commit_fail(st, c, res_r, STORE_EREFUSED, "the mailbox of %s here holds "
					 "messages: it cannot receive a migration", who);
	}
	sk_mbstate(&k, user);
	if (s == STORE_MBOX_ACTIVE) {
		rocksdb_writebatch_delete_cf(c->wb, st->cf[CF_CONFIG], k.data, k.len);
	} else {
		rec.state = (Tern__MailboxState__State)s;
		rec.peer = (char *)(peer ? peer : "");
		if (migration_id) {
			rec.migration_id.data = (uint8_t *)migration_id;
			rec.migration_id.len = 16;
		}
		rec.since = tern_now();
		store_wb_put_record(c->wb, st, CF_CONFIG, k.data, k.len, &rec.base);
	}
	tbuf_free(&k);
	/* Sessions of the user close once the freeze is durable. */
	if (s == STORE_MBOX_FROZEN)
		store_commit_add_event(c, user, zero_id, 0, TERN__CHANGE__KIND__MOVED, 0);
	state_undo *u = calloc(1, sizeof(*u));

	if (!u)
		abort();
	memcpy(u->user, user, 16);
	u->old = cur;
	c->hook = state_hook;
	c->hook_arg = u;
	mbs_set(st, user, s == STORE_MBOX_ACTIVE ? NULL : &rec);
	return store_mig_queue_unlock(st, c, m, o, blocking, res_r);
}

int store_mig_queue_unlock(store *st, store_commit *c, store_mbx *m, store_dav_owner *o, int blocking,
			   store_sync_result *res_r)
{
	if (m)
		store_mbx_enqueue(st, c, &m, 1);
	else
		store_commit_enqueue(st, c);
	if (o)
		store_dav_unlock(o);
	if (m)
		store_mbx_unlock(m);
	if (!blocking)
		return STORE_OK;
	store_commit_wait(st, c);
	return store_commit_run(st, c, res_r);
}

/* ---- migration jobs ---- */

int store_mig_job_get(store *st, const uint8_t user[16], Tern__MigrateJob **j_r)
{
	tbuf k = TBUF_INIT;
	int rc;

	*j_r = NULL;
	sk_migjob(&k, user);
	rc = store_db_get_record(st, CF_CONFIG, k.data, k.len, &tern__migrate_job__descriptor,
				 (ProtobufCMessage **)j_r);
	tbuf_free(&k);
	return rc;
}

static int by_order(const void *x, const void *y)
{
	const Tern__MigrateJob *a = *(Tern__MigrateJob *const *)x, *b = *(Tern__MigrateJob *const *)y;

	return a->order < b->order ? -1 : a->order > b->order;
}

int store_mig_job_list(store *st, Tern__MigrateJob ***list_r, size_t *n_r)
{
	tbuf p = TBUF_INIT;
	int rc;

	tbuf_append_str(&p, SK_MIGJOB_PREFIX);
	rc = store_config_list(st, &p, &tern__migrate_job__descriptor, (void ***)list_r, n_r);
	tbuf_free(&p);
	if (rc == STORE_OK && *n_r > 1)
		qsort(*list_r, *n_r, sizeof(**list_r), by_order);
	return rc;
}

static int apply_job_put(store *st, store_cfg_job *j, store_commit *c)
{
	Tern__MigrateJob *job = (Tern__MigrateJob *)j->rec;
	tbuf k = TBUF_INIT;

	if (job->user_id.len != 16)
		return store_cfg_err(c, STORE_EINVAL, "the job's user id is not 16 bytes");
	if (job->id.len != 0 && job->id.len != 16)
		return store_cfg_err(c, STORE_EINVAL, "the job's migration id is not 16 bytes");
	sk_migjob(&k, job->user_id.data);
	store_cfg_put(st, c, &k, &job->base);
	tbuf_free(&k);
	return STORE_OK;
}

int store_mig_job_put(store *st, const Tern__MigrateJob *j, store_cb cb, store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_job_put, &j->base, NULL, NULL, NULL, NULL),
				cb, res_r);
}

static int apply_job_delete(store *st, store_cfg_job *j, store_commit *c)
{
	tbuf k = TBUF_INIT;
	int rc;

	sk_migjob(&k, j->id);
	rc = store_db_exists(st, CF_CONFIG, k.data, k.len);
	if (rc == 1)
		store_cfg_delete(st, c, k.data, k.len);
	tbuf_free(&k);
	if (rc < 0)
		return store_cfg_err(c, rc, "cannot read the migration job");
	return rc == 1 ? STORE_OK : store_cfg_err(c, STORE_ENOTFOUND, "no such migration job");
}

int store_mig_job_delete(store *st, const uint8_t user[16], store_cb cb, store_sync_result *res_r)
{
	store_cfg_job *j = store_cfg_job_new(apply_job_delete, NULL, NULL, NULL, NULL, NULL);

	memcpy(j->id, user, 16);
	return store_cfg_submit(st, j, cb, res_r);
}
