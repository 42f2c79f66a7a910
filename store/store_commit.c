/* store_commit.c - the commit pipeline: writers queue WriteBatches (FIFO); a commit
 * thread takes every pending batch as one group, merges them into one WriteBatch and
 * writes it with sync=1 (one WAL fsync for the group), then completes the batches in
 * queue order: reservations released, watchers notified, callers called back.
 * With several commit threads, groups take tickets: group k+1 is written after group k's
 * write returned and completed after group k completed, so order is kept end to end
 * while the next group is collected and merged. */
#include "store_private.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* WriteBatch representation: 8-byte sequence, 4-byte little-endian count, records. */
#define WB_HEADER 12

store_commit *store_commit_new(store_cb cb)
{
	store_commit *c = calloc(1, sizeof(*c));

	if (!c)
		abort();
	c->wb = rocksdb_writebatch_create();
	c->cb = cb;
	c->waiting = cb.fn == NULL;
	return c;
}

void store_commit_free(store_commit **cp)
{
	store_commit *c = *cp;

	if (!c)
		return;
	*cp = NULL;
	if (c->wb)
		rocksdb_writebatch_destroy(c->wb);
	free(c->ev);
	free(c->blob_shas);
	free(c->mbx);
	free(c->mbx_epoch);
	free(c->rcpt_rc);
	for (size_t i = 0; i < c->ncfg_ops; i++)
		tern__config_op__free_unpacked(c->cfg_ops[i], NULL);
	free(c->cfg_ops);
	free(c->gone);
	free(c->dav_gone);
	free(c);
}

void store_commit_add_event(store_commit *c, const uint8_t user[16], const uint8_t folder[16],
			    uint64_t modseq, Tern__Change__Kind kind, uint32_t uid)
{
	if (c->nev == c->ev_cap) {
		c->ev_cap = c->ev_cap ? 2 * c->ev_cap : 4;
		c->ev = realloc(c->ev, c->ev_cap * sizeof(*c->ev));
		if (!c->ev)
			abort();
	}
	store_event *e = &c->ev[c->nev++];
	memcpy(e->user, user, 16);
	memcpy(e->folder, folder, 16);
	e->modseq = modseq;
	e->kind = kind;
	e->uid = uid;
}

void store_commit_enqueue(store *st, store_commit *c)
{
	c->next = NULL;
	pthread_mutex_lock(&st->cmu);
	if (c->uv_mark)
		store_uidvalidity_put_mark(st, c->wb);
	if (st->qtail)
		st->qtail->next = c;
	else
		st->qhead = c;
	st->qtail = c;
	pthread_cond_signal(&st->ccond);
	pthread_mutex_unlock(&st->cmu);
}

void store_commit_wait(store *st, store_commit *c)
{
	pthread_mutex_lock(&st->cmu);
	while (!c->finished)
		pthread_cond_wait(&st->done_cond, &st->cmu);
	pthread_mutex_unlock(&st->cmu);
}

static void run_posted(void *arg)
{
	store_commit *c = arg;

	c->cb.fn(&c->res, c->cb.arg);
	store_commit_free(&c);
}

/* Thread-local home of the per-recipient codes of a blocking store_submit(): valid
 * until the next blocking delivery on the same thread. */
static __thread int *sync_rcpt_rc;

int store_commit_run(store *st, store_commit *c, store_sync_result *sync)
{
	int rc = c->res.rc;

	c->res.error = rc != STORE_OK ? c->error : NULL;
	if (c->cb.fn == NULL) {
		if (sync) {
			sync->res = c->res;
			snprintf(sync->error, sizeof(sync->error), "%s", rc ? c->error : "");
			sync->res.error = rc ? sync->error : NULL;
			if (c->rcpt_rc) {
				free(sync_rcpt_rc);
				sync_rcpt_rc = c->rcpt_rc;
				c->rcpt_rc = NULL;
				sync->res.rcpt_rc = sync_rcpt_rc;
			}
		}
		store_commit_free(&c);
		return rc;
	}
	if (c->cb.io) {
		tern_io_post(c->cb.io, run_posted, c);
		return rc;
	}
	c->cb.fn(&c->res, c->cb.arg);
	store_commit_free(&c);
	return rc;
}

int store_commit_complete(store *st, store_commit *c, store_sync_result *sync)
{
	return store_commit_run(st, c, sync);
}

int store_commit_fail(store *st, store_commit *c, store_sync_result *sync, int rc,
		      const char *fmt, ...)
{
	va_list ap;

	c->res.rc = rc;
	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	return store_commit_run(st, c, sync);
}

void store_test_fail_writes(store *st, unsigned n)
{
	atomic_store(&st->fail_writes, n);
}

void store_test_hold_commits(store *st, int hold)
{
	pthread_mutex_lock(&st->cmu);
	if (hold) {
		st->test_ticket = st->ticket_next++;
	} else {
		/* Take the held ticket's turns as an empty group would. */
		while (st->write_turn != st->test_ticket)
			pthread_cond_wait(&st->turn_cond, &st->cmu);
		st->write_turn++;
		pthread_cond_broadcast(&st->turn_cond);
		while (st->finish_turn != st->test_ticket)
			pthread_cond_wait(&st->turn_cond, &st->cmu);
		st->finish_turn++;
		pthread_cond_broadcast(&st->turn_cond);
	}
	pthread_mutex_unlock(&st->cmu);
}

/* One WriteBatch holding every record of the group's batches that are not doomed, in
 * queue order; NULL when every batch is doomed. */
static rocksdb_writebatch_t *merge_group(store_commit *head, int *owned_r)
{
	tbuf rep = TBUF_INIT;
	uint32_t count = 0;
	store_commit *only = NULL;
	size_t live = 0;

	*owned_r = 0;
	for (store_commit *c = head; c; c = c->next) {
		if (!c->doomed) {
			only = c;
			live++;
		}
	}
	if (live <= 1)
		return only ? only->wb : NULL;
	for (store_commit *c = head; c; c = c->next) {
		size_t n;
		const char *d = rocksdb_writebatch_data(c->wb, &n);

		if (c->doomed || n < WB_HEADER)
			continue;
		if (rep.len == 0)
			tbuf_append(&rep, d, WB_HEADER);
		tbuf_append(&rep, d + WB_HEADER, n - WB_HEADER);
		count += (uint32_t)rocksdb_writebatch_count(c->wb);
	}
	for (int i = 0; i < 4; i++)
		rep.data[8 + i] = (char)(count >> (8 * i));
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create_from(rep.data, rep.len);
	tbuf_free(&rep);
	*owned_r = 1;
	return wb;
}

/* Before the group's write (its turn come, so every earlier group's failure is known):
 * doom the batches built on a failed mailbox state, in queue order, so that a doomed
 * batch dooms the later ones of its other mailboxes too. Returns how many. */
static size_t doom_group(store *st, store_commit *head)
{
	size_t n = 0;

	for (store_commit *c = head; c; c = c->next) {
		if (!c->nmbx || !store_mailbox_doomed(c))
			continue;
		c->doomed = 1;
		c->res.rc = STORE_EIO;
		snprintf(c->error, sizeof(c->error), "an earlier write to this mailbox failed");
		store_mailbox_fail(st, c);
		n++;
	}
	return n;
}

/* The group's write failed: every batch still in it fails, and its mailboxes are
 * marked before the next group's turn. */
static void fail_group(store *st, store_commit *head, const char *err)
{
	for (store_commit *c = head; c; c = c->next) {
		if (c->doomed)
			continue;
		c->res.rc = STORE_EIO;
		snprintf(c->error, sizeof(c->error), "write failed: %s", err);
		if (c->nmbx)
			store_mailbox_fail(st, c);
	}
}

/* After the group's write: each batch in order gets its result and is completed. */
static void finish_group(store *st, store_commit *head)
{
	while (head) {
		store_commit *c = head;

		head = head->next;
		if (c->hook)
			c->hook(st, c, c->res.rc);
		if (c->nshas)
			store_blob_release(st, c);
		if (c->nmbx)
			store_mailbox_release(st, c, c->res.rc);
		if (c->res.rc == STORE_OK && c->nev)
			store_notify_publish(st, c);
		if (c->waiting) {
			pthread_mutex_lock(&st->cmu);
			c->finished = 1;
			pthread_cond_broadcast(&st->done_cond);
			pthread_mutex_unlock(&st->cmu);
		} else {
			store_commit_run(st, c, NULL);
		}
	}
}

static void wait_turn(store *st, uint64_t *turn, uint64_t ticket)
{
	while (*turn != ticket)
		pthread_cond_wait(&st->turn_cond, &st->cmu);
}

static void *commit_main(void *arg)
{
	store *st = arg;

	pthread_mutex_lock(&st->cmu);
	for (;;) {
		while (!st->qhead && !st->cstop)
			pthread_cond_wait(&st->ccond, &st->cmu);
		if (!st->qhead)
			break;
		store_commit *group = st->qhead;
		uint64_t ticket = st->ticket_next++, n = 0;

		st->qhead = st->qtail = NULL;
		pthread_mutex_unlock(&st->cmu);

		int owned;
		char *err = NULL;
		rocksdb_writebatch_t *wb = merge_group(group, &owned);

		for (store_commit *c = group; c; c = c->next)
			n++;
		pthread_mutex_lock(&st->cmu);
		wait_turn(st, &st->write_turn, ticket);
		pthread_mutex_unlock(&st->cmu);
		if (doom_group(st, group) > 0) {
			if (owned)
				rocksdb_writebatch_destroy(wb);
			wb = merge_group(group, &owned);
		}
		if (wb) {
			unsigned f = atomic_load(&st->fail_writes);

			while (f && !atomic_compare_exchange_weak(&st->fail_writes, &f, f - 1))
				;
			if (f) {
				err = strdup("injected write failure");
				if (!err)
					abort();
			} else {
				rocksdb_write(st->db, st->wopt, wb, &err);
			}
		}
		if (owned)
			rocksdb_writebatch_destroy(wb);
		if (err) {
			tlog(TLOG_ERROR, "store: commit of %llu batches failed: %s",
			     (unsigned long long)n, err);
			fail_group(st, group, err);
		}
		atomic_fetch_add(&st->commits, n);
		atomic_fetch_add(&st->groups, 1);
		pthread_mutex_lock(&st->cmu);
		st->write_turn++;
		pthread_cond_broadcast(&st->turn_cond);
		wait_turn(st, &st->finish_turn, ticket);
		pthread_mutex_unlock(&st->cmu);

		finish_group(st, group);
		free(err);

		pthread_mutex_lock(&st->cmu);
		st->finish_turn++;
		pthread_cond_broadcast(&st->turn_cond);
	}
	pthread_mutex_unlock(&st->cmu);
	return NULL;
}

int store_commit_start(store *st, char **error_r)
{
	for (unsigned i = 0; i < st->opt.commit_threads; i++) {
		if (pthread_create(&st->commit_thr[i], NULL, commit_main, st) != 0) {
			*error_r = strdup("cannot start the store commit threads");
			store_commit_stop(st);
			return -1;
		}
		st->ncommit++;
	}
	return 0;
}

/* Drain the queue, then stop and join the commit threads. */
void store_commit_stop(store *st)
{
	pthread_mutex_lock(&st->cmu);
	st->cstop = 1;
	pthread_cond_broadcast(&st->ccond);
	pthread_mutex_unlock(&st->cmu);
	for (unsigned i = 0; i < st->ncommit; i++)
		pthread_join(st->commit_thr[i], NULL);
	st->ncommit = 0;
}
