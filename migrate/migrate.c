/* migrate.c - the module object (open/close), the admin's operations (migrate_here,
 * migrate_list, migrate_cancel) and the end-of-job report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "migrate_private.h"
#include "util.h"

int migrate_open(const migrate_options *o, migrate **m_r, char **error_r)
{
	migrate *m = calloc(1, sizeof(*m));

	*m_r = NULL;
	if (m == NULL) {
		*error_r = strdup("out of memory");
		return -1;
	}
	m->st = o->st;
	m->cl = o->cl;
	m->conf = o->conf;
	m->released = o->released;
	m->report = o->report;
	m->arg = o->arg;
	snprintf(m->self, sizeof(m->self), "%s", store_node_name(o->st) != NULL ? store_node_name(o->st) : "");
	mig_faults_parse(o->conf->migrate_fault, &m->faults);
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	cluster_bulk_set_handler(m->cl, mig_bulk_handler, m);
	if (pthread_create(&m->thread, NULL, mig_runner, m) != 0) {
		cluster_bulk_set_handler(m->cl, NULL, NULL);
		pthread_cond_destroy(&m->cv);
		pthread_mutex_destroy(&m->mu);
		free(m);
		*error_r = strdup("cannot start the migration runner thread");
		return -1;
	}
	if (pthread_create(&m->settler, NULL, mig_settler, m) != 0) {
		pthread_mutex_lock(&m->mu);
		m->stop = 1;
		pthread_cond_broadcast(&m->cv);
		pthread_mutex_unlock(&m->mu);
		pthread_join(m->thread, NULL);
		cluster_bulk_set_handler(m->cl, NULL, NULL);
		pthread_cond_destroy(&m->cv);
		pthread_mutex_destroy(&m->mu);
		free(m);
		*error_r = strdup("cannot start the migration settler thread");
		return -1;
	}
	m->running = 1;
	*m_r = m;
	return 0;
}

void migrate_close(migrate **mp)
{
	migrate *m = *mp;

	if (m == NULL)
		return;
	cluster_bulk_set_handler(m->cl, NULL, NULL);
	pthread_mutex_lock(&m->mu);
	m->stop = 1;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
	if (m->running) {
		pthread_join(m->thread, NULL);
		pthread_join(m->settler, NULL);
	}
	pthread_cond_destroy(&m->cv);
	pthread_mutex_destroy(&m->mu);
	free(m);
	*mp = NULL;
}

/* Check one user for migrate_here: the record, or -1 with err. */
static int check_user(migrate *m, const char *addr, Tern__MigrateJob **jobs, size_t njobs, Tern__User **u_r, tbuf *err)
{
	Tern__User *u = NULL;
	char home[64];

	*u_r = NULL;
	if (store_user_find(m->st, addr, &u) != STORE_OK) {
		tbuf_appendf(err, "no such user: %s", addr);
		return -1;
	}
	store_home_node(m->st, u->home, home, sizeof(home));
	if (home[0] == '\0' || strcmp(home, m->self) == 0) {
		tbuf_appendf(err, "%s is already homed on this node (%s)", addr, m->self);
		goto bad;
	}
	if (u->home_state == TERN__HOME_STATE__HOME_MOVING) {
		tbuf_appendf(err, "a migration of %s to %s is running", addr, u->home_target);
		goto bad;
	}
	for (size_t i = 0; i < njobs; i++)
		if (jobs[i]->user_id.len == 16 && memcmp(jobs[i]->user_id.data, u->id.data, 16) == 0 &&
		    jobs[i]->state <= TERN__MIGRATE_JOB__STATE__PREPARED) {
			tbuf_appendf(err, "%s is already queued for migration here", addr);
			goto bad;
		}
	*u_r = u;
	return 0;
bad:
	store_free_record(u);
	return -1;
}

int migrate_here(migrate *m, const char *const *users, size_t n, const char *admin, tbuf *err)
{
	Tern__MigrateJob **jobs = NULL;
	Tern__User **found = calloc(n ? n : 1, sizeof(*found));
	size_t njobs = 0;
	int rc = -1;

	if (found == NULL) {
		tbuf_append_str(err, "out of memory");
		return -1;
	}
	if (n == 0) {
		tbuf_append_str(err, "no users given");
		goto out_nolock;
	}
	if (cluster_get_role(m->cl) == CLUSTER_STANDALONE) {
		tbuf_append_str(err, "this node is not part of a distributed domain");
		goto out_nolock;
	}
	pthread_mutex_lock(&m->mu);
	if (store_mig_job_list(m->st, &jobs, &njobs) != STORE_OK) {
		tbuf_append_str(err, "cannot read the migration jobs");
		goto out;
	}
	uint64_t order = 0;
	for (size_t i = 0; i < njobs; i++)
		order = jobs[i]->order > order ? jobs[i]->order : order;
	for (size_t i = 0; i < n; i++) {
		if (check_user(m, users[i], jobs, njobs, &found[i], err) != 0)
			goto out;
		for (size_t k = 0; k < i; k++)
			if (memcmp(found[k]->id.data, found[i]->id.data, 16) == 0) {
				tbuf_appendf(err, "%s is given twice", users[i]);
				goto out;
			}
	}
	for (size_t i = 0; i < n; i++) {
		Tern__MigrateJob j = TERN__MIGRATE_JOB__INIT;
		uint8_t id[16];
		char home[64], addr[320];
		tern_uuid_new(id);
		store_home_node(m->st, found[i]->home, home, sizeof(home));
		snprintf(addr, sizeof(addr), "%s@%s", found[i]->name, found[i]->domain);
		j.id.data = id;
		j.id.len = 16;
		j.user_id = found[i]->id;
		j.address = addr;
		j.source = home;
		j.admin = (char *)(admin != NULL ? admin : "");
		j.order = ++order;
		j.queued = tern_now();
		j.state = TERN__MIGRATE_JOB__STATE__QUEUED;
		if (store_mig_job_put(m->st, &j, STORE_SYNC, NULL) != STORE_OK) {
			tbuf_appendf(err, "cannot queue %s", addr);
			goto out;
		}
		tlog(TLOG_OPERATIONS, "migrate: %s from %s: queued by %s", addr, home, j.admin);
	}
	m->wake = 1;
	pthread_cond_broadcast(&m->cv);
	rc = 0;
out:
	pthread_mutex_unlock(&m->mu);
out_nolock:
	for (size_t i = 0; i < njobs; i++)
		store_free_record(jobs[i]);
	free(jobs);
	for (size_t i = 0; i < n; i++)
		store_free_record(found[i]);
	free(found);
	return rc;
}

static const char *state_name(Tern__MigrateJob__State s)
{
	switch (s) {
	case TERN__MIGRATE_JOB__STATE__QUEUED: return "queued";
	case TERN__MIGRATE_JOB__STATE__COPYING: return "copying";
	case TERN__MIGRATE_JOB__STATE__CUTOVER:
	case TERN__MIGRATE_JOB__STATE__PREPARED: return "cutover";
	case TERN__MIGRATE_JOB__STATE__DONE: return "done";
	case TERN__MIGRATE_JOB__STATE__FAILED: return "failed";
	case TERN__MIGRATE_JOB__STATE__CANCELLED: return "cancelled";
	default: return "unknown";
	}
}

int migrate_list(migrate *m, migrate_status **list_r, size_t *n_r)
{
	Tern__MigrateJob **jobs = NULL;
	size_t n = 0;
	int64_t now = tern_now();

	*list_r = NULL;
	*n_r = 0;
	if (store_mig_job_list(m->st, &jobs, &n) != STORE_OK)
		return -1;
	migrate_status *out = calloc(n ? n : 1, sizeof(*out));
	for (size_t i = 0; out != NULL && i < n; i++) {
		const Tern__MigrateJob *j = jobs[i];
		migrate_status *s = &out[i];
		snprintf(s->user, sizeof(s->user), "%s", j->address);
		snprintf(s->state, sizeof(s->state), "%s", state_name(j->state));
		snprintf(s->source, sizeof(s->source), "%s", j->source);
		snprintf(s->error, sizeof(s->error), "%s", j->error);
		s->bytes = j->bytes_done;
		s->messages = j->messages_done;
		/* the totals are the source's at the start; mail that arrived meanwhile is copied
		 * too, so the done figures may pass them: the total is then what is done */
		s->bytes_total = j->bytes_total > j->bytes_done ? j->bytes_total : j->bytes_done;
		s->messages_total = j->messages_total > j->messages_done ? j->messages_total : j->messages_done;
		s->queued = j->queued;
		s->started = j->started;
		s->finished = j->finished;
		s->cutover_ms = j->cutover_ms;
		int64_t end = j->finished ? j->finished : now;
		s->rate = j->started && end > j->started ? (double)j->bytes_done / (double)(end - j->started) : 0;
		if (j->state == TERN__MIGRATE_JOB__STATE__DONE)
			s->eta = 0;
		else if (j->state > TERN__MIGRATE_JOB__STATE__PREPARED || s->rate <= 0)
			s->eta = -1;
		else
			s->eta = j->bytes_total > j->bytes_done ? (int64_t)((double)(j->bytes_total - j->bytes_done) / s->rate) : 0;
	}
	for (size_t i = 0; i < n; i++)
		store_free_record(jobs[i]);
	free(jobs);
	if (out == NULL)
		return -1;
	*list_r = out;
	*n_r = n;
	return 0;
}

int migrate_cancel(migrate *m, const char *user, tbuf *err)
{
	Tern__User *u = NULL;
	Tern__MigrateJob *j = NULL;
	int rc = -1;

	if (store_user_find(m->st, user, &u) != STORE_OK) {
		tbuf_appendf(err, "no such user: %s", user);
		return -1;
	}
	pthread_mutex_lock(&m->mu);
	if (store_mig_job_get(m->st, u->id.data, &j) != STORE_OK || j->state > TERN__MIGRATE_JOB__STATE__PREPARED) {
		tbuf_appendf(err, "no migration of %s is queued or running here", user);
		goto out;
	}
	if (j->state == TERN__MIGRATE_JOB__STATE__PREPARED) {
		tbuf_appendf(err, "the migration of %s is past its point of no return (waiting for the commit)", user);
		goto out;
	}
	int running = m->has_cur && memcmp(m->cur_user, u->id.data, 16) == 0;
	j->cancel = 1;
	if (!running) {
		j->state = TERN__MIGRATE_JOB__STATE__CANCELLED;
		j->finished = tern_now();
		if (j->error != protobuf_c_empty_string)
			free(j->error);
		j->error = strdup("cancelled");
	}
	if (store_mig_job_put(m->st, j, STORE_SYNC, NULL) != STORE_OK) {
		tbuf_appendf(err, "cannot record the cancel of %s", user);
		goto out;
	}
	if (running)
		m->cur_cancel = 1;
	else
		tlog(TLOG_OPERATIONS, "migrate: %s from %s: cancelled while queued", j->address, j->source);
	pthread_cond_broadcast(&m->cv);
	rc = 0;
out:
	pthread_mutex_unlock(&m->mu);
	store_free_record(j);
	store_free_record(u);
	return rc;
}

/* The log line and the admin's message at the end of a job. */
void mig_report(mig_run *r, const char *result)
{
	const Tern__MigrateJob *j = r->job;
	double secs = j->started && j->finished >= j->started ? (double)(j->finished - j->started) : 0;
	double mb = (double)j->bytes_done / 1048576.0;
	char subject[400];
	tbuf body = TBUF_INIT;

	if (strcmp(result, "done") == 0)
		tlog(TLOG_OPERATIONS, "migrate: %s from %s: done in %.1f s, %.1f MB, %llu messages, cut-over %lld ms",
		     j->address, j->source, secs, mb, (unsigned long long)j->messages_done, (long long)j->cutover_ms);
	else
		tlog(TLOG_OPERATIONS, "migrate: %s from %s: %s: %s", j->address, j->source, result, j->error);
	if (r->m->report == NULL || j->admin[0] == '\0')
		return;
	snprintf(subject, sizeof(subject), "Migration of %s: %s", j->address, result);
	tbuf_appendf(&body, "Result: %s\n", result);
	if (strcmp(result, "done") != 0)
		tbuf_appendf(&body, "Reason: %s\n", j->error);
	tbuf_appendf(&body, "User: %s\nFrom: %s\nTo: %s\nDuration: %.1f s\nSize: %.1f MB\nMessages: %llu\n",
		     j->address, j->source[0] ? j->source : "-", r->m->self, secs, mb,
		     (unsigned long long)j->messages_done);
	if (strcmp(result, "done") == 0)
		tbuf_appendf(&body, "Cut-over: %lld ms\n", (long long)j->cutover_ms);
	r->m->report(r->m->arg, j->admin, subject, tbuf_cstr(&body));
	tbuf_free(&body);
}
