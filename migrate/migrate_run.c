/* migrate_run.c - the target's runner thread: one job at a time, in queue order, through
 * BEGIN, copy, delta rounds, cut-over, commit and drop (migrate.h), with the cleanup of a
 * cancel or failure. Between jobs it settles the mailboxes frozen here (as a source). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "log.h"
#include "migrate_private.h"
#include "util.h"

/* Replace a string field of a record (protobuf-c's empty default is never freed). */
static void set_str(char **f, const char *s)
{
	char *copy = strdup(s != NULL ? s : "");
	if (copy == NULL)
		return;
	if (*f != NULL && *f != protobuf_c_empty_string)
		free(*f);
	*f = copy;
}

void mig_job_error(mig_run *r, const char *msg)
{
	set_str(&r->job->error, msg);
}

int mig_fail(mig_run *r, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	mig_job_error(r, msg);
	return MIG_FAIL;
}

int mig_job_save(mig_run *r)
{
	pthread_mutex_lock(&r->m->mu);
	r->job->cancel = r->job->cancel || r->m->cur_cancel;
	int rc = store_mig_job_put(r->m->st, r->job, STORE_SYNC, NULL);
	pthread_mutex_unlock(&r->m->mu);
	return rc == STORE_OK ? 0 : -1;
}

int mig_import(mig_run *r, const store_mig_row *rows, size_t n, int with_job, tbuf *err)
{
	store_sync_result res;

	pthread_mutex_lock(&r->m->mu);
	r->job->cancel = r->job->cancel || r->m->cur_cancel;
	int rc = store_mig_import(r->m->st, r->job->user_id.data, rows, n, with_job ? r->job : NULL, STORE_SYNC, &res);
	pthread_mutex_unlock(&r->m->mu);
	if (rc != STORE_OK)
		tbuf_appendf(err, "%s", res.error[0] ? res.error : store_strerror(rc));
	return rc == STORE_OK ? 0 : -1;
}

int mig_interrupted(mig_run *r, int *why)
{
	pthread_mutex_lock(&r->m->mu);
	*why = r->m->stop ? MIG_STOP : r->m->cur_cancel ? MIG_CANCEL : 0;
	pthread_mutex_unlock(&r->m->mu);
	return *why != 0;
}

/* Sleep up to ms, woken early by close or cancel. 1 when interrupted. */
static int nap(mig_run *r, int64_t ms)
{
	struct timespec ts;
	int why;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&r->m->mu);
	while (!r->m->stop && !r->m->cur_cancel)
		if (pthread_cond_timedwait(&r->m->cv, &r->m->mu, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&r->m->mu);
	return mig_interrupted(r, &why);
}

int mig_ask(mig_run *r, Tern__Migrate__Request *req, Tern__Migrate__Reply **rep_r)
{
	int64_t until = tern_mono_ms() + r->m->conf->migrate_request_timeout * 1000;
	tbuf raw = TBUF_INIT, err = TBUF_INIT;
	int rc, why;

	*rep_r = NULL;
	mig_request_pack(&raw, r->job->id.data, r->job->user_id.data, req);
	for (;;) {
		Tern__Migrate__Reply *rep = NULL;
		if (mig_interrupted(r, &why)) {
			rc = why;
			break;
		}
		tbuf_reset(&err);
		if (mig_call(&r->conn, &raw, &rep, &err) != 0) {
			tlog(TLOG_WARNING, "migrate: %s from %s: %s", r->job->address, r->job->source, tbuf_cstr(&err));
			rc = MIG_RETRY;
			break;
		}
		if (rep->code == TERN__MIGRATE__REPLY__CODE__OK) {
			*rep_r = rep;
			rc = 0;
			break;
		}
		if (rep->code != TERN__MIGRATE__REPLY__CODE__BUSY) {
			rc = mig_fail(r, "node %s refused: %s", r->job->source, rep->message);
			tern__migrate__reply__free_unpacked(rep, NULL);
			break;
		}
		tern__migrate__reply__free_unpacked(rep, NULL);
		if (tern_mono_ms() > until) {
			rc = MIG_RETRY;
			break;
		}
		usleep(200000);
	}
	tbuf_free(&raw);
	tbuf_free(&err);
	return rc;
}

/* Room for the mailbox here: free disk above the hard limit must exceed its size. */
static int disk_check(mig_run *r)
{
	store_stats s;
	uint64_t hard = (uint64_t)r->m->conf->store_disk_hard_limit_mb << 20, have;

	store_get_stats(r->m->st, &s);
	have = r->m->faults.disk_full || s.free_disk_bytes <= hard ? 0 : s.free_disk_bytes - hard;
	if (have > r->job->bytes_total)
		return 0;
	return mig_fail(r, "not enough disk space on node %s: need %llu MB, have %llu MB", r->m->self,
			(unsigned long long)((r->job->bytes_total + (1u << 20) - 1) >> 20), (unsigned long long)(have >> 20));
}

/* BEGIN at the master, then the mailbox here INCOMING. */
static int begin_move(mig_run *r)
{
	Tern__MigrateJob *j = r->job;
	char source[64] = "";
	tbuf err = TBUF_INIT;
	store_sync_result res;
	store_mbox_state s;

	int rc = cluster_home_move(r->m->cl, j->user_id.data, CLUSTER_MOVE_BEGIN, r->m->self, source, sizeof(source), &err);
	if (rc == -2) {
		tlog(TLOG_WARNING, "migrate: %s: no answer from the master: %s", j->address, tbuf_cstr(&err));
		tbuf_free(&err);
		return MIG_RETRY;
	}
	if (rc != 0) {
		rc = mig_fail(r, "the master refused the move: %s", tbuf_cstr(&err));
		tbuf_free(&err);
		return rc;
	}
	tbuf_free(&err);
	if (j->state == TERN__MIGRATE_JOB__STATE__QUEUED) {
		set_str(&j->source, source);
		snprintf(r->conn.node, sizeof(r->conn.node), "%s", source);
		j->state = TERN__MIGRATE_JOB__STATE__COPYING;
		j->started = tern_now();
		if (mig_job_save(r) != 0)
			return mig_fail(r, "cannot save the job");
		tlog(TLOG_OPERATIONS, "migrate: %s from %s: copying", j->address, j->source);
	}
	if (store_mbox_state_get(r->m->st, j->user_id.data, &s, NULL) != STORE_OK)
		return mig_fail(r, "the store failed");
	if (s != STORE_MBOX_INCOMING && s != STORE_MBOX_PREPARED &&
	    store_mbox_state_set(r->m->st, j->user_id.data, STORE_MBOX_INCOMING, j->source, j->id.data, STORE_SYNC,
				 &res) != STORE_OK)
		return mig_fail(r, "cannot take the mailbox here: %s", res.error);
	return 0;
}

/* Begin at the source: totals, and the delta bases the first time. */
static int begin_source(mig_run *r)
{
	Tern__Migrate__Request rq = TERN__MIGRATE__REQUEST__INIT;
	Tern__Migrate__Begin b = TERN__MIGRATE__BEGIN__INIT;
	Tern__Migrate__Reply *rep = NULL;
	Tern__MigrateJob *j = r->job;

	b.target = r->m->self;
	rq.body_case = TERN__MIGRATE__REQUEST__BODY_BEGIN;
	rq.begin = &b;
	int rc = mig_ask(r, &rq, &rep);
	if (rc != 0)
		return rc;
	Tern__Migrate__BeginOk *ok = tern__migrate__begin_ok__unpack(NULL, rep->body.len, rep->body.data);
	tern__migrate__reply__free_unpacked(rep, NULL);
	if (ok == NULL)
		return mig_fail(r, "undecodable Begin answer from node %s", j->source);
	int had_none = j->n_cursors == 0;
	j->bytes_total = ok->bytes;
	j->messages_total = ok->messages;
	/* the delta bases, the first time only */
	for (size_t i = 0; had_none && i < ok->n_heads; i++) {
		Tern__MigrateCursor *c = ok->heads[i]->id.len == 16 ? mig_cursor(j, ok->heads[i]->id.data, ok->heads[i]->dav)
								    : NULL;
		if (c != NULL)
			c->modseq = ok->heads[i]->modseq;
	}
	tern__migrate__begin_ok__free_unpacked(ok, NULL);
	return mig_job_save(r) == 0 ? 0 : mig_fail(r, "cannot save the job");
}

/* A request with an empty answer (Freeze, Unfreeze, Drop). */
static int ask_simple(mig_run *r, Tern__Migrate__Request__BodyCase what)
{
	Tern__Migrate__Request rq = TERN__MIGRATE__REQUEST__INIT;
	Tern__Migrate__Freeze fz = TERN__MIGRATE__FREEZE__INIT;
	Tern__Migrate__Unfreeze uf = TERN__MIGRATE__UNFREEZE__INIT;
	Tern__Migrate__Drop dr = TERN__MIGRATE__DROP__INIT;
	Tern__Migrate__Reply *rep = NULL;

	rq.body_case = what;
	if (what == TERN__MIGRATE__REQUEST__BODY_FREEZE) {
		fz.target = r->m->self;
		rq.freeze = &fz;
	} else if (what == TERN__MIGRATE__REQUEST__BODY_UNFREEZE) {
		rq.unfreeze = &uf;
	} else {
		rq.drop = &dr;
	}
	int rc = mig_ask(r, &rq, &rep);
	if (rep != NULL)
		tern__migrate__reply__free_unpacked(rep, NULL);
	return rc;
}

/* Copy and delta rounds (state COPYING). */
static int copy_phase(mig_run *r)
{
	Tern__MigrateJob *j = r->job;
	int rc;

	if (!j->copy_done) {
		Tern__Migrate__RowsOk *heads = NULL;
		if ((rc = mig_heads(r, &heads)) != 0)
			return rc;
		tern__migrate__rows_ok__free_unpacked(heads, NULL);
		if ((rc = mig_copy(r)) != 0)
			return rc;
	}
	while (j->rounds < (uint32_t)r->m->conf->migrate_delta_rounds) {
		uint64_t moved = 0;
		if ((rc = mig_delta_round(r, &moved)) != 0)
			return rc;
		j->rounds++;
		if (mig_job_save(r) != 0)
			return mig_fail(r, "cannot save the job");
		mig_crash_if(r->m->faults.crash_delta, "delta");
		if (moved <= (uint64_t)r->m->conf->migrate_delta_small)
			break;
	}
	j->state = TERN__MIGRATE_JOB__STATE__CUTOVER;
	if (mig_job_save(r) != 0)
		return mig_fail(r, "cannot save the job");
	tlog(TLOG_OPERATIONS, "migrate: %s from %s: cut-over", j->address, j->source);
	return 0;
}

/* Freeze, the last delta, the digests, PREPARED (state CUTOVER). */
static int cutover_phase(mig_run *r)
{
	Tern__MigrateJob *j = r->job;
	uint64_t moved;
	int rc, same = 0;

	if ((rc = ask_simple(r, TERN__MIGRATE__REQUEST__BODY_FREEZE)) != 0)
		return rc;
	r->frozen = 1;
	if (r->freeze_ms == 0)
		r->freeze_ms = tern_mono_ms();
	for (int pass = 0; pass < 2 && !same; pass++) {
		if ((rc = mig_delta_round(r, &moved)) != 0)
			return rc;
		if ((rc = mig_digest_check(r, &same)) != 0)
			return rc;
	}
	if (!same)
		return MIG_FAIL;
	if ((rc = disk_check(r)) != 0)
		return rc;
	pthread_mutex_lock(&r->m->mu);
	if (r->m->cur_cancel || r->m->stop) {
		rc = r->m->stop ? MIG_STOP : MIG_CANCEL;
		pthread_mutex_unlock(&r->m->mu);
		return rc;
	}
	store_sync_result res;
	rc = store_mbox_state_set(r->m->st, j->user_id.data, STORE_MBOX_PREPARED, j->source, j->id.data, STORE_SYNC, &res);
	if (rc == STORE_OK) {
		j->state = TERN__MIGRATE_JOB__STATE__PREPARED;
		j->cutover_ms = tern_mono_ms() - r->freeze_ms;   /* until the commit: see commit_phase */
		rc = store_mig_job_put(r->m->st, j, STORE_SYNC, NULL);
	}
	pthread_mutex_unlock(&r->m->mu);
	if (rc != STORE_OK)
		return mig_fail(r, "cannot record PREPARED: %s", store_strerror(rc));
	mig_crash_if(r->m->faults.crash_prepared, "prepared");
	return 0;
}

/* 1 when this node's replicated record names it the home, ACTIVE. */
static int home_is_here(mig_run *r)
{
	Tern__User *u = NULL;
	char home[64];
	int here = 0;

	if (store_user_get_by_id(r->m->st, r->job->user_id.data, &u) == STORE_OK) {
		store_home_node(r->m->st, u->home, home, sizeof(home));
		here = strcmp(home, r->m->self) == 0 && u->home_state == TERN__HOME_STATE__HOME_ACTIVE;
	}
	store_free_record(u);
	return here;
}

/* COMMIT at the master (never given up), the mailbox ACTIVE here, Drop on the source. */
static int commit_phase(mig_run *r)
{
	Tern__MigrateJob *j = r->job;
	int64_t retry_ms = r->m->conf->migrate_retry_interval * 1000;
	store_sync_result res;
	int why;

	for (;;) {
		tbuf err = TBUF_INIT;
		int rc = cluster_home_move(r->m->cl, j->user_id.data, CLUSTER_MOVE_COMMIT, r->m->self, NULL, 0, &err);
		if (rc == -1 && !home_is_here(r)) {
			rc = mig_fail(r, "the master refused the commit: %s", tbuf_cstr(&err));
			tbuf_free(&err);
			return rc;
		}
		if (rc == -2)
			tlog(TLOG_WARNING, "migrate: %s: no answer from the master for the commit: %s", j->address,
			     tbuf_cstr(&err));
		tbuf_free(&err);
		if (rc != -2) {
			mig_crash_if(r->m->faults.crash_committed, "committed");
			if (store_mbox_state_set(r->m->st, j->user_id.data, STORE_MBOX_ACTIVE, NULL, NULL, STORE_SYNC, &res) !=
			    STORE_OK)
				tlog(TLOG_ERROR, "migrate: %s: cannot make the mailbox active: %s", j->address, res.error);
			int64_t until = tern_mono_ms() + r->m->conf->migrate_request_timeout * 1000;
			int here;
			while (!(here = home_is_here(r)) && tern_mono_ms() < until && !mig_interrupted(r, &why))
				usleep(100000);
			if (here) {
				/* Unavailability ends here: the new home serves the mailbox. */
				if (r->freeze_ms != 0)
					j->cutover_ms = tern_mono_ms() - r->freeze_ms;
				break;
			}
		}
		pthread_mutex_lock(&r->m->mu);
		int stop = r->m->stop;
		pthread_mutex_unlock(&r->m->mu);
		if (stop)
			return MIG_STOP;
		nap(r, rc == -2 ? retry_ms : 100);
	}
	for (;;) {
		pthread_mutex_lock(&r->m->mu);
		r->m->cur_cancel = 0;                   /* refused once PREPARED */
		int stop = r->m->stop;
		pthread_mutex_unlock(&r->m->mu);
		if (stop)
			return MIG_STOP;
		int rc = ask_simple(r, TERN__MIGRATE__REQUEST__BODY_DROP);
		if (rc == 0)
			break;
		if (rc == MIG_FAIL) {
			tlog(TLOG_WARNING, "migrate: %s: the source did not drop its copy: %s", j->address, j->error);
			mig_job_error(r, "");
			break;
		}
		nap(r, retry_ms);
	}
	j->state = TERN__MIGRATE_JOB__STATE__DONE;
	j->finished = tern_now();
	if (mig_job_save(r) != 0)
		tlog(TLOG_ERROR, "migrate: %s: cannot save the finished job", j->address);
	mig_report(r, "done");
	return 0;
}

/* Every phase from where the job stands. */
static int run_phases(mig_run *r)
{
	Tern__MigrateJob *j = r->job;
	int rc;

	if (j->cancel)
		return MIG_CANCEL;
	if (j->state != TERN__MIGRATE_JOB__STATE__PREPARED) {
		if ((rc = begin_move(r)) != 0)
			return rc;
		if ((rc = begin_source(r)) != 0)
			return rc;
		if ((rc = disk_check(r)) != 0)
			return rc;
		r->unreachable_since = 0;
		if (j->state == TERN__MIGRATE_JOB__STATE__COPYING && (rc = copy_phase(r)) != 0)
			return rc;
		if ((rc = cutover_phase(r)) != 0)
			return rc;
	}
	return commit_phase(r);
}

/* Cancel or failure: ABORT at the master, Unfreeze, the rows here dropped. */
static void cleanup(mig_run *r, int cancel)
{
	Tern__MigrateJob *j = r->job;
	int begun = j->state != TERN__MIGRATE_JOB__STATE__QUEUED;
	store_sync_result res;

	while (begun) {
		tbuf err = TBUF_INIT;
		int rc = cluster_home_move(r->m->cl, j->user_id.data, CLUSTER_MOVE_ABORT, r->m->self, NULL, 0, &err);
		if (rc == -1)
			tlog(TLOG_WARNING, "migrate: %s: the master refused the abort: %s", j->address, tbuf_cstr(&err));
		tbuf_free(&err);
		if (rc != -2)
			break;
		pthread_mutex_lock(&r->m->mu);
		int stop = r->m->stop;
		pthread_mutex_unlock(&r->m->mu);
		if (stop)
			return;                         /* resumed (and cleaned up) at the next start */
		sleep(1);
	}
	if (begun && (r->frozen || j->state == TERN__MIGRATE_JOB__STATE__CUTOVER)) {
		Tern__Migrate__Request rq = TERN__MIGRATE__REQUEST__INIT;
		Tern__Migrate__Unfreeze uf = TERN__MIGRATE__UNFREEZE__INIT;
		Tern__Migrate__Reply *rep = NULL;
		tbuf raw = TBUF_INIT, err = TBUF_INIT;
		rq.body_case = TERN__MIGRATE__REQUEST__BODY_UNFREEZE;
		rq.unfreeze = &uf;
		mig_request_pack(&raw, j->id.data, j->user_id.data, &rq);
		if (mig_call(&r->conn, &raw, &rep, &err) != 0 || rep->code != TERN__MIGRATE__REPLY__CODE__OK)
			tlog(TLOG_WARNING, "migrate: %s: no unfreeze on %s (it settles by itself): %s", j->address, j->source,
			     rep != NULL ? rep->message : tbuf_cstr(&err));
		if (rep != NULL)
			tern__migrate__reply__free_unpacked(rep, NULL);
		tbuf_free(&raw);
		tbuf_free(&err);
	}
	if (begun && store_mig_drop(r->m->st, j->user_id.data, STORE_SYNC, &res) != STORE_OK)
		tlog(TLOG_ERROR, "migrate: %s: cannot drop the copied rows: %s", j->address, res.error);
	if (cancel)
		mig_job_error(r, "cancelled");
	j->state = cancel ? TERN__MIGRATE_JOB__STATE__CANCELLED : TERN__MIGRATE_JOB__STATE__FAILED;
	j->finished = tern_now();
	if (mig_job_save(r) != 0)
		tlog(TLOG_ERROR, "migrate: %s: cannot save the job", j->address);
	mig_report(r, cancel ? "cancelled" : "failed");
}

/* Run one job until it ends (or the module closes): retries while the source or the
 * master does not answer, until give_up (never once PREPARED). */
static void run_job(migrate *m, Tern__MigrateJob *j)
{
	mig_run r = { .m = m, .job = j, .conn = { .m = m } };
	int rc;

	snprintf(r.conn.node, sizeof(r.conn.node), "%s", j->source);
	snprintf(r.conn.user, sizeof(r.conn.user), "%s", j->address);
	for (;;) {
		rc = run_phases(&r);
		if (rc != MIG_RETRY)
			break;
		int64_t now = tern_now();
		if (r.unreachable_since == 0)
			r.unreachable_since = now;
		if (j->state != TERN__MIGRATE_JOB__STATE__PREPARED && now - r.unreachable_since > m->conf->migrate_give_up) {
			rc = mig_fail(&r, "node %s did not answer for %lld s", j->source[0] ? j->source : "(master)",
				      (long long)(now - r.unreachable_since));
			break;
		}
		int why = 0;
		if (nap(&r, m->conf->migrate_retry_interval * 1000) && mig_interrupted(&r, &why) && why == MIG_STOP) {
			rc = MIG_STOP;
			break;
		}
	}
	if (rc == MIG_CANCEL || rc == MIG_FAIL)
		cleanup(&r, rc == MIG_CANCEL);
	cluster_bulk_close(&r.conn.b);
	free(r.names);
}

/* The first unfinished job, in queue order (with the runner's claim on it). */
static Tern__MigrateJob *next_job(migrate *m)
{
	Tern__MigrateJob **list = NULL, *pick = NULL;
	size_t n = 0;

	pthread_mutex_lock(&m->mu);
	if (store_mig_job_list(m->st, &list, &n) == STORE_OK) {
		for (size_t i = 0; i < n; i++) {
			if (pick == NULL && list[i]->state <= TERN__MIGRATE_JOB__STATE__PREPARED && list[i]->user_id.len == 16 &&
			    list[i]->id.len == 16) {
				pick = list[i];
				continue;
			}
			store_free_record(list[i]);
		}
	}
	free(list);
	if (pick != NULL) {
		m->has_cur = 1;
		memcpy(m->cur_user, pick->user_id.data, 16);
		m->cur_cancel = pick->cancel && pick->state != TERN__MIGRATE_JOB__STATE__PREPARED;
	}
	pthread_mutex_unlock(&m->mu);
	return pick;
}

/* Keep at most keep_done finished jobs (the oldest go). */
static void trim_done(migrate *m)
{
	Tern__MigrateJob **list = NULL;
	size_t n = 0, done = 0;

	pthread_mutex_lock(&m->mu);
	if (store_mig_job_list(m->st, &list, &n) == STORE_OK) {
		for (size_t i = 0; i < n; i++)
			done += list[i]->state > TERN__MIGRATE_JOB__STATE__PREPARED;
		for (size_t i = 0; i < n; i++) {
			if (done > (size_t)m->conf->migrate_keep_done && list[i]->state > TERN__MIGRATE_JOB__STATE__PREPARED &&
			    store_mig_job_delete(m->st, list[i]->user_id.data, STORE_SYNC, NULL) == STORE_OK)
				done--;
			store_free_record(list[i]);
		}
	}
	free(list);
	pthread_mutex_unlock(&m->mu);
}

void *mig_runner(void *arg)
{
	migrate *m = arg;

	for (;;) {
		pthread_mutex_lock(&m->mu);
		int stop = m->stop;
		pthread_mutex_unlock(&m->mu);
		if (stop)
			break;
		Tern__MigrateJob *j = next_job(m);
		if (j != NULL) {
			run_job(m, j);
			pthread_mutex_lock(&m->mu);
			m->has_cur = 0;
			m->cur_cancel = 0;
			pthread_mutex_unlock(&m->mu);
			store_free_record(j);
			trim_done(m);
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += m->conf->migrate_retry_interval;
		pthread_mutex_lock(&m->mu);
		while (!m->stop && !m->wake)
			if (pthread_cond_timedwait(&m->cv, &m->mu, &ts) == ETIMEDOUT)
				break;
		m->wake = 0;
		pthread_mutex_unlock(&m->mu);
	}
	return NULL;
}

/* The settler thread: every retry_interval, the mailboxes frozen here as a source
 * (mig_settle_frozen), also while the runner is busy with a long job as a target. */
void *mig_settler(void *arg)
{
	migrate *m = arg;

	pthread_mutex_lock(&m->mu);
	while (!m->stop) {
		pthread_mutex_unlock(&m->mu);
		mig_settle_frozen(m);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += m->conf->migrate_retry_interval;
		pthread_mutex_lock(&m->mu);
		while (!m->stop)
			if (pthread_cond_timedwait(&m->cv, &m->mu, &ts) == ETIMEDOUT)
				break;
	}
	pthread_mutex_unlock(&m->mu);
	return NULL;
}
