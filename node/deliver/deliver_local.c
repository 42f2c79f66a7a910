/* deliver_local.c - the deliverer: one accepted message to its local mailboxes and the
 * queue in ONE durable store batch (store_submit), then the mail.log lines, the failure
 * or success reports (deliver_dsn.c) and the quota warnings.
 *
 * A submission is a job that goes through three steps:
 *   prepare   (caller's thread, or the cpu pool for a large message): copy, size limit,
 *             recipient plan, footer, header prefixes, MIME structure (node/mime),
 *             queue entry;
 *   commit    store_submit(); its callback runs on the caller's I/O thread once durable;
 *   follow-ups reports and quota warnings, each its own durable write; the caller's
 *             callback runs when they are durable too, then the job is freed.
 * A message is refused as a whole only when nothing could be stored (size limit, every
 * recipient unknown or over quota, disk low, write error); otherwise the recipients
 * that failed get a report. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deliver_dsn.h"
#include "deliver_int.h"
#include "mime.h"

/* Messages above this are prepared on the cpu pool (footer work scans the body). */
#define DLV_INLINE_MAX (1024u * 1024u)

typedef struct dlv_job {
	deliverer *d;
	tern_io *io;
	void (*cb)(const deliver_result *r, void *arg);
	void *arg;
	deliver_message m;              /* deep copy: every pointer below is owned */
	deliver_rcpt_req *rcpts;
	uint8_t uuid[16];
	char queue_id[40];
	int64_t now;
	int prepared;                   /* 0: refused before the store was asked */
	dlv_plan plan;
	tbuf footed;                    /* the message with the domain footer */
	Tern__MimeInfo *mime;           /* IMAP structure of the local body, shared by every
					 * local recipient (node/mime) */
	tbuf *prefixes;                 /* per local recipient */
	store_append *apps;
	tbuf qprefix;                   /* Received without "for": queue entry, reports */
	Tern__QueueEntry qe;
	Tern__QueueRcpt *qrcpts;
	Tern__QueueRcpt **qrcpt_ptrs;
	const void *qbody;
	size_t qlen;
	int *delivered;                 /* per local recipient: its store code */
	atomic_int pending;             /* follow-ups not yet durable, plus one for the job */
	deliver_result res;
} dlv_job;

/* The deliverer keeps only the environment and its counters: jobs own everything else. */
deliverer *deliverer_new(const deliver_env *env)
{
	deliverer *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->st = env->st;
	d->conf = env->conf;
	d->cpu_pool = env->cpu_pool;
	snprintf(d->hostname, sizeof(d->hostname), "%s",
		 env->hostname && env->hostname[0] ? env->hostname : tern_conf_hostname(env->conf));
	pthread_mutex_init(&d->warn_mu, NULL);
	return d;
}

void deliverer_free(deliverer **dp)
{
	deliverer *d = *dp;

	if (d == NULL)
		return;
	*dp = NULL;
	pthread_mutex_destroy(&d->warn_mu);
	free(d);
}

void deliverer_stats(deliverer *d, deliver_stats *out)
{
	out->received = atomic_load(&d->received);
	out->delivered_local = atomic_load(&d->delivered_local);
	out->queued_remote = atomic_load(&d->queued_remote);
	out->queued_node = atomic_load(&d->queued_node);
	out->over_quota = atomic_load(&d->over_quota);
	out->failed_local = atomic_load(&d->failed_local);
	out->dsn_sent = atomic_load(&d->dsn_sent);
	out->quota_warnings = atomic_load(&d->warnings_sent);
	out->refused = atomic_load(&d->refused);
}

/* strdup that keeps NULL; out of memory aborts, as tbuf does. */
static char *dlv_dup(const char *s)
{
	char *p;

	if (s == NULL)
		return NULL;
	if ((p = strdup(s)) == NULL)
		abort();
	return p;
}

/* Release the job and its deep copy of the message; after the caller's callback only. */
static void job_free(dlv_job *j)
{
	deliver_message *m = &j->m;

	for (size_t i = 0; i < m->nrcpts; i++) {
		free((char *)j->rcpts[i].address);
		free((char *)j->rcpts[i].orcpt);
	}
	free(j->rcpts);
	free((void *)m->data);
	free((char *)m->sender);
	free((char *)m->helo);
	free((char *)m->client_ip);
	free((char *)m->client_host);
	free((char *)m->auth_user);
	free((char *)m->protocol);
	free((char *)m->tls_info);
	free((char *)m->envid);
	free((char *)m->service);
	free((char *)m->report);
	free((char *)m->relayed_from);
	for (size_t i = 0; j->prefixes && i < j->plan.nlocal; i++)
		tbuf_free(&j->prefixes[i]);
	free(j->prefixes);
	free(j->apps);
	free(j->qrcpts);
	free(j->qrcpt_ptrs);
	free(j->delivered);
	tbuf_free(&j->footed);
	mime_info_free(&j->mime);
	tbuf_free(&j->qprefix);
	dlv_plan_free(&j->plan);
	free(j);
}

/* A job with a deep copy of src (the caller may free src on return), a fresh uuid as
 * queue id and the arrival time. */
static dlv_job *job_new(deliverer *d, const deliver_message *src, tern_io *io,
			void (*cb)(const deliver_result *r, void *arg), void *arg)
{
	dlv_job *j = calloc(1, sizeof(*j));
	deliver_message *m;
	void *data;

	if (j == NULL || (data = malloc(src->len ? src->len : 1)) == NULL)
		abort();
	j->d = d;
	j->io = io;
	j->cb = cb;
	j->arg = arg;
	m = &j->m;
	*m = *src;
	memcpy(data, src->data, src->len);
	m->data = data;
	m->sender = dlv_dup(src->sender ? src->sender : "");
	m->helo = dlv_dup(src->helo);
	m->client_ip = dlv_dup(src->client_ip ? src->client_ip : "");
	m->client_host = dlv_dup(src->client_host);
	m->auth_user = dlv_dup(src->auth_user);
	m->protocol = dlv_dup(src->protocol);
	m->tls_info = dlv_dup(src->tls_info);
	m->envid = dlv_dup(src->envid);
	m->service = dlv_dup(src->service ? src->service : "SMTP");
	m->report = dlv_dup(src->report);
	m->relayed_from = dlv_dup(src->relayed_from);
	if ((j->rcpts = calloc(src->nrcpts ? src->nrcpts : 1, sizeof(*j->rcpts))) == NULL)
		abort();
	for (size_t i = 0; i < src->nrcpts; i++) {
		j->rcpts[i].address = dlv_dup(src->rcpts[i].address ? src->rcpts[i].address : "");
		j->rcpts[i].notify = src->rcpts[i].notify;
		j->rcpts[i].orcpt = dlv_dup(src->rcpts[i].orcpt);
	}
	m->rcpts = j->rcpts;
	atomic_init(&j->pending, 1);
	tern_uuid_new(j->uuid);
	snprintf(j->queue_id, sizeof(j->queue_id), "%02x%02x%02x%02x-%02x%02x%02x%02x", j->uuid[0],
		 j->uuid[1], j->uuid[2], j->uuid[3], j->uuid[4], j->uuid[5], j->uuid[6], j->uuid[7]);
	j->now = tern_now();
	return j;
}

static void job_refuse(dlv_job *j, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The message as a whole is refused with rc and this SMTP reply. */
static void job_refuse(dlv_job *j, int rc, const char *fmt, ...)
{
	va_list ap;

	j->res.rc = rc;
	va_start(ap, fmt);
	vsnprintf(j->res.reply, sizeof(j->res.reply), fmt, ap);
	va_end(ap);
}

/* Clients of the relay group are hidden in Received lines when the setting says so. */
static int job_hide_client(const dlv_job *j)
{
	const tern_conf *c = j->d->conf;
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	if (!c->smtpd_hide_local_ip || !c->smtpd_relay_ipgroup || !c->smtpd_relay_ipgroup[0] ||
	    !j->m.client_ip[0])
		return 0;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, j->m.client_ip, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, j->m.client_ip, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	else
		return 0;
	return store_ipgroup_match(j->d->st, c->smtpd_relay_ipgroup, (struct sockaddr *)&ss) == 1;
}

/* The sender's local domain record when the sender is in a local domain, else NULL. */
static Tern__Domain *job_sender_domain(const dlv_job *j)
{
	char local[65], domain[254], canon[254];
	Tern__Domain *dom = NULL;

	if (tern_split_address(j->m.sender, local, sizeof(local), domain, sizeof(domain)) < 0 ||
	    store_domain_resolve(j->d->st, domain, canon, sizeof(canon)) != STORE_OK ||
	    store_domain_get(j->d->st, canon, &dom) != STORE_OK)
		return NULL;
	return dom;
}

/* Bodies: with the footer for remote recipients, and for local ones unless the domain
 * keeps the footer off internal mail. Users on other nodes are internal too: an entry that
 * holds only them carries the local body (one entry has one body, so when it also holds
 * remote recipients they all get the remote one). Relayed mail got its footer at the
 * node that accepted it. */
static void job_bodies(dlv_job *j, const void **local_r, size_t *local_len_r)
{
	Tern__Domain *dom = j->m.relayed_from ? NULL : job_sender_domain(j);
	int footed = dom && dom->footer && dom->footer[0] &&
		     dlv_footer_apply(j->m.data, j->m.len, dom->footer, &j->footed);

	if (footed && !dom->footer_skip_internal) {
		*local_r = j->footed.data;
		*local_len_r = j->footed.len;
	} else {
		*local_r = j->m.data;
		*local_len_r = j->m.len;
	}
	if (footed && j->plan.nremote > j->plan.nnode) {
		j->qbody = j->footed.data;
		j->qlen = j->footed.len;
	} else {
		j->qbody = *local_r;
		j->qlen = *local_len_r;
	}
	if (dom)
		store_free_record(dom);
}

/* The queue entry of the remote recipients; it points into the job (no copies). */
static void job_queue_entry(dlv_job *j)
{
	dlv_plan *p = &j->plan;

	if ((j->qrcpts = calloc(p->nremote, sizeof(*j->qrcpts))) == NULL ||
	    (j->qrcpt_ptrs = calloc(p->nremote, sizeof(*j->qrcpt_ptrs))) == NULL)
		abort();
	tern__queue_entry__init(&j->qe);
	for (size_t i = 0; i < p->nremote; i++) {
		const deliver_rcpt_req *req = &j->rcpts[p->remote[i].rcpt];
		Tern__QueueRcpt *r = &j->qrcpts[i];
		tern__queue_rcpt__init(r);
		r->address = p->remote[i].address;
		r->state = TERN__QUEUE_RCPT__STATE__PENDING;
		r->notify = req->notify;
		r->orcpt = req->orcpt ? (char *)req->orcpt : "";
		j->qrcpt_ptrs[i] = r;
	}
	j->qe.id.data = j->uuid;
	j->qe.id.len = 16;
	j->qe.sender = (char *)j->m.sender;
	j->qe.n_rcpts = p->nremote;
	j->qe.rcpts = j->qrcpt_ptrs;
	j->qe.header_prefix.data = (uint8_t *)j->qprefix.data;
	j->qe.header_prefix.len = j->qprefix.len;
	j->qe.created = (uint64_t)j->now;
	j->qe.next_try = (uint64_t)j->now;
	j->qe.envid = j->m.envid ? (char *)j->m.envid : "";
	j->qe.ret = j->m.ret;
	j->qe.helo = j->m.helo ? (char *)j->m.helo : "";
	j->qe.client_ip = (char *)j->m.client_ip;
	j->qe.auth_user = j->m.auth_user ? (char *)j->m.auth_user : "";
}

/* How the recipients are planned: relayed mail is final; relayed by this very node, it
 * is the queue's hand-back of mail for users homed here. */
static unsigned job_plan_flags(const dlv_job *j)
{
	const char *self = store_node_name(j->d->st);
	unsigned flags = 0;

	if (j->m.relayed_from != NULL) {
		flags |= DLV_PLAN_FINAL;
		if (self != NULL && self[0] != '\0' && strcmp(j->m.relayed_from, self) == 0)
			flags |= DLV_PLAN_HANDBACK;
	}
	return flags;
}

/* Everything up to the store call; sets res on a refusal (prepared stays 0). */
static void job_prepare(void *arg)
{
	dlv_job *j = arg;
	deliverer *d = j->d;
	dlv_plan *p = &j->plan;
	/* a relayed message was held to the sender's limit where it was accepted */
	uint64_t limit = j->m.relayed_from ? 0 : dlv_size_limit(d->st, j->m.auth_user, j->m.sender);
	const void *lbody;
	size_t llen;
	int hide, rc;

	if (limit && j->m.len > limit) {
		job_refuse(j, STORE_EINVAL, "552 5.3.4 Message size exceeds the limit for this sender");
		return;
	}
	if ((rc = dlv_plan_build(d->st, j->rcpts, j->m.nrcpts, job_plan_flags(j), p)) != 0) {
		if (rc == STORE_EREFUSED && p->held)
			job_refuse(j, rc, "450 4.2.1 <%s>: mailbox is being moved to another server, try again later",
				   p->held_address);
		else
			job_refuse(j, rc, "451 4.3.0 Temporary lookup failure, try again later");
		return;
	}
	if (p->nlocal == 0 && p->nremote == 0 && p->nresource == 0) {
		if (p->nfailed)
			job_refuse(j, STORE_ENOTFOUND, "%s", p->failed[0].diagnostic);
		else
			job_refuse(j, STORE_ENOTFOUND, "554 5.5.1 No valid recipients");
		return;
	}
	job_bodies(j, &lbody, &llen);
	/* parsed once for all local recipients; large bodies get here on the cpu pool */
	if (p->nlocal)
		j->mime = mime_analyze(lbody, llen);
	hide = job_hide_client(j);
	dlv_received(&j->qprefix, &j->m, d->hostname, j->queue_id, NULL, hide, j->now);
	if ((j->prefixes = calloc(p->nlocal ? p->nlocal : 1, sizeof(*j->prefixes))) == NULL ||
	    (j->apps = calloc(p->nlocal ? p->nlocal : 1, sizeof(*j->apps))) == NULL ||
	    (j->delivered = calloc(p->nlocal ? p->nlocal : 1, sizeof(int))) == NULL)
		abort();
	for (size_t i = 0; i < p->nlocal; i++) {
		store_append *a = &j->apps[i];
		dlv_local_prefix(&j->prefixes[i], &j->m, d->hostname, j->queue_id, p->local[i].address,
				 hide, d->conf->smtpd_x_envelope_to, j->now);
		a->user = p->local[i].id;
		a->header_prefix = j->prefixes[i].data;
		a->header_prefix_len = j->prefixes[i].len;
		a->body = lbody;
		a->body_len = llen;
		a->internaldate = j->now;
		a->enforce_quota = 1;
		a->mime = j->mime;
	}
	if (p->nremote)
		job_queue_entry(j);
	j->prepared = 1;
}

/* mail.log "Recv:" in the guide's format (SSL shown for SMTP only). */
static void job_log_recv(const dlv_job *j)
{
	tbuf line = TBUF_INIT;
	const deliver_message *m = &j->m;

	tbuf_appendf(&line, "Recv: Queue-ID: %s, Service: %s, From: <%s>, To: ", j->queue_id, m->service,
		     m->sender);
	for (size_t i = 0; i < m->nrcpts; i++)
		tbuf_appendf(&line, "%s<%s>", i ? ", " : "", m->rcpts[i].address);
	tbuf_appendf(&line, ", Size: %zu", m->len);
	if (m->auth_user && m->auth_user[0])
		tbuf_appendf(&line, ", User: %s", m->auth_user);
	if (m->client_ip[0])
		tbuf_appendf(&line, ", Sender-Host: %s", m->client_ip);
	if (m->relayed_from && m->relayed_from[0])
		tbuf_appendf(&line, ", Relayed-From: node %s", m->relayed_from);
	if (strcmp(m->service, "SMTP") == 0)
		tbuf_appendf(&line, ", SSL: %s", m->tls_info && m->tls_info[0] ? "yes" : "no");
	if (m->report && m->report[0])
		tbuf_appendf(&line, ", Report: %s", m->report);
	tlog(TLOG_MAIL, "%s", tbuf_cstr(&line));
	tbuf_free(&line);
}

/* The caller's callback with the final result, then the job is gone. */
static void job_finish(dlv_job *j)
{
	if (j->res.rc == STORE_OK)
		snprintf(j->res.reply, sizeof(j->res.reply), "250 2.0.0 Ok: queued as %s", j->queue_id);
	else
		atomic_fetch_add(&j->d->refused, 1);
	snprintf(j->res.queue_id, sizeof(j->res.queue_id), "%s", j->queue_id);
	if (j->cb)
		j->cb(&j->res, j->arg);
	job_free(j);
}

/* Drop one pending reference (the job's own or a follow-up's); the last one finishes. */
static void job_release(dlv_job *j)
{
	if (atomic_fetch_sub(&j->pending, 1) == 1)
		job_finish(j);
}

/* A report made for this message is durable (or failed: logged, not fatal). */
static void job_followup_done(const deliver_result *r, void *arg)
{
	dlv_job *j = arg;

	if (r->rc != STORE_OK)
		tlog(TLOG_ERROR, "Queue-ID: %s: delivery report not stored: %s", j->queue_id, r->reply);
	job_release(j);
}

/* The failure/success report to the sender, for the recipients whose NOTIFY asks. */
static void job_report(dlv_job *j)
{
	dlv_plan *p = &j->plan;
	dsn_rcpt *rr = calloc(p->nfailed + p->nlocal + 1, sizeof(*rr));
	tbuf orig = TBUF_INIT;
	size_t n = 0;

	if (rr == NULL)
		abort();
	for (size_t i = 0; i < p->nfailed; i++) {
		const deliver_rcpt_req *req = &j->rcpts[p->failed[i].rcpt];
		if (!deliver_dsn_wanted(req->notify, DSN_ACTION_FAILED))
			continue;
		rr[n] = (dsn_rcpt){ p->failed[i].address, req->orcpt, DSN_ACTION_FAILED, p->failed[i].status,
				    p->failed[i].diagnostic, NULL, j->now, 0 };
		n++;
	}
	for (size_t i = 0; i < p->nlocal; i++) {
		const deliver_rcpt_req *req = &j->rcpts[p->local[i].rcpt];
		if (j->delivered[i] != STORE_OK || !deliver_dsn_wanted(req->notify, DSN_ACTION_DELIVERED))
			continue;
		rr[n] = (dsn_rcpt){ p->local[i].address, req->orcpt, DSN_ACTION_DELIVERED, "2.0.0",
				    "250 2.0.0 delivered to mailbox", NULL, j->now, 0 };
		n++;
	}
	if (n > 0) {
		dsn_report r = { j->d->hostname, j->m.sender, j->m.envid, j->now, j->m.ret, NULL, 0, rr, n };
		tbuf_append(&orig, j->qprefix.data, j->qprefix.len);
		tbuf_append(&orig, j->m.data, j->m.len);
		r.original = orig.data;
		r.original_len = orig.len;
		atomic_fetch_add(&j->pending, 1);
		deliver_dsn_submit(j->d, &r, j->io, job_followup_done, j);
	}
	tbuf_free(&orig);
	free(rr);
}

/* One quota warning being written: its buffers live until the append is durable. */
typedef struct dlv_warn {
	dlv_job *job;
	uint8_t user[16];
	tbuf prefix, body;
	Tern__MimeInfo *mime;
	char queue_id[40];
	char address[DELIVER_ADDR_MAX];
} dlv_warn;

/* The warning (and its quota_warned_at) is durable: the user may be warned again later. */
static void job_warn_done(const store_result *res, void *arg)
{
	dlv_warn *w = arg;
	dlv_job *j = w->job;

	if (res->rc == STORE_OK) {
		atomic_fetch_add(&j->d->warnings_sent, 1);
		tlog(TLOG_MAIL, "Sent: Queue-ID: %s, Recipient: <%s>, Result: delivered, Status: 2.0.0 (quota warning)",
		     w->queue_id, w->address);
	} else {
		tlog(TLOG_ERROR, "Quota warning to %s not stored: %s", w->address,
		     res->error ? res->error : store_strerror(res->rc));
	}
	dlv_quota_warn_done(j->d, w->user);
	tbuf_free(&w->prefix);
	tbuf_free(&w->body);
	mime_info_free(&w->mime);
	free(w);
	job_release(j);
}

/* A warning for each delivered recipient that reached the warning level. */
static void job_quota_warnings(dlv_job *j)
{
	dlv_plan *p = &j->plan;

	for (size_t i = 0; i < p->nlocal; i++) {
		dlv_quota_view v;
		dlv_warn *w;
		deliver_message wm;
		store_append a;
		uint8_t id[16];

		if (j->delivered[i] != STORE_OK || !dlv_quota_warn_needed(j->d, p->local[i].id, j->now, &v))
			continue;
		if ((w = calloc(1, sizeof(*w))) == NULL)
			abort();
		w->job = j;
		memcpy(w->user, p->local[i].id, 16);
		snprintf(w->address, sizeof(w->address), "%s", v.address);
		tern_uuid_new(id);
		snprintf(w->queue_id, sizeof(w->queue_id), "%02x%02x%02x%02x-%02x%02x%02x%02x", id[0], id[1],
			 id[2], id[3], id[4], id[5], id[6], id[7]);
		dlv_quota_warn_message(&w->body, j->d, &v, j->now);
		memset(&wm, 0, sizeof(wm));
		wm.sender = "";
		wm.client_ip = "";
		dlv_local_prefix(&w->prefix, &wm, j->d->hostname, w->queue_id, v.address, 0,
				 j->d->conf->smtpd_x_envelope_to, j->now);
		memset(&a, 0, sizeof(a));
		a.user = w->user;
		a.header_prefix = w->prefix.data;
		a.header_prefix_len = w->prefix.len;
		a.body = w->body.data;
		a.body_len = w->body.len;
		a.internaldate = j->now;
		a.quota_warned_at = j->now;
		w->mime = mime_analyze(w->body.data, w->body.len);
		a.mime = w->mime;
		tlog(TLOG_MAIL, "Recv: Queue-ID: %s, Service: Quota, From: <postmaster@%s>, To: <%s>, Size: %zu",
		     w->queue_id, v.domain, v.address, w->body.len);
		atomic_fetch_add(&j->pending, 1);
		store_msg_append(j->d->st, &a, (store_cb){ job_warn_done, w, j->io }, NULL);
	}
}

/* Resources take the message as a booking request, and local users that got it have
 * their calendars updated from its iTIP part (node/dav, off this thread). */
static void job_imip(dlv_job *j)
{
	dlv_plan *p = &j->plan;
	const char **to = calloc(p->nlocal + p->nresource + 1, sizeof(*to));
	size_t n = 0;

	if (to == NULL)
		abort();
	for (size_t i = 0; i < p->nlocal; i++)
		if (j->delivered[i] == STORE_OK)
			to[n++] = p->local[i].address;
	for (size_t i = 0; i < p->nresource; i++) {
		to[n++] = p->resource[i].address;
		tlog(TLOG_MAIL, "Sent: Queue-ID: %s, Recipient: <%s>, Result: delivered, Status: 2.0.0 (resource)",
		     j->queue_id, p->resource[i].address);
	}
	dlv_imip_dispatch(j->d, j->m.data, j->m.len, j->m.sender, to, n);
	free(to);
}

/* The mail.log Queue-ID of a 16-byte id (as the queue prints it). */
static void queue_id_hex(const uint8_t id[16], char out[18])
{
	snprintf(out, 18, "%02x%02x%02x%02x-%02x%02x%02x%02x", id[0], id[1], id[2], id[3], id[4], id[5],
		 id[6], id[7]);
}

/* Local recipients whose mailbox froze for a migration between the plan and the commit:
 * queued for this node in a follow-up entry (the queue delivers them at their home when
 * the migration ends). Its buffers live until the entry is durable. */
typedef struct dlv_requeue {
	dlv_job *job;
	uint8_t id[16];
	char qid[18];
	Tern__QueueEntry qe;
	Tern__QueueRcpt *rcpts;
	Tern__QueueRcpt **ptrs;
} dlv_requeue;

/* The follow-up entry is durable (or not: the recipients' mail is then lost - logged). */
static void job_requeue_done(const store_result *res, void *arg)
{
	dlv_requeue *q = arg;
	dlv_job *j = q->job;

	for (size_t i = 0; i < q->qe.n_rcpts; i++) {
		if (res->rc == STORE_OK)
			tlog(TLOG_MAIL, "Sent: Queue-ID: %s, Recipient: <%s>, Result: deferred, Status: 4.2.1 "
			     "(mailbox moving, queued as %s)", j->queue_id, q->rcpts[i].address, q->qid);
		else
			tlog(TLOG_ERROR, "Queue-ID: %s: recipient <%s> held by a migration not queued: %s",
			     j->queue_id, q->rcpts[i].address, res->error ? res->error : store_strerror(res->rc));
	}
	free(q->rcpts);
	free(q->ptrs);
	free(q);
	job_release(j);
}

/* Queue local recipients held[0..n) (indexes into the plan's local list) for this node. */
static void job_requeue(dlv_job *j, const size_t *held, size_t n)
{
	dlv_plan *p = &j->plan;
	dlv_requeue *q = calloc(1, sizeof(*q));

	if (q == NULL || (q->rcpts = calloc(n, sizeof(*q->rcpts))) == NULL ||
	    (q->ptrs = calloc(n, sizeof(*q->ptrs))) == NULL)
		abort();
	q->job = j;
	tern_uuid_new(q->id);
	queue_id_hex(q->id, q->qid);
	tern__queue_entry__init(&q->qe);
	for (size_t i = 0; i < n; i++) {
		const dlv_local *l = &p->local[held[i]];
		const deliver_rcpt_req *req = &j->rcpts[l->rcpt];
		tern__queue_rcpt__init(&q->rcpts[i]);
		q->rcpts[i].address = (char *)l->address;
		q->rcpts[i].state = TERN__QUEUE_RCPT__STATE__PENDING;
		q->rcpts[i].notify = req->notify;
		q->rcpts[i].orcpt = req->orcpt ? (char *)req->orcpt : "";
		q->ptrs[i] = &q->rcpts[i];
	}
	q->qe.id.data = q->id;
	q->qe.id.len = 16;
	q->qe.sender = (char *)j->m.sender;
	q->qe.n_rcpts = n;
	q->qe.rcpts = q->ptrs;
	q->qe.header_prefix.data = (uint8_t *)j->qprefix.data;
	q->qe.header_prefix.len = j->qprefix.len;
	q->qe.created = (uint64_t)j->now;
	q->qe.next_try = (uint64_t)j->now;
	q->qe.envid = j->m.envid ? (char *)j->m.envid : "";
	q->qe.ret = j->m.ret;
	q->qe.helo = j->m.helo ? (char *)j->m.helo : "";
	q->qe.client_ip = (char *)j->m.client_ip;
	q->qe.auth_user = j->m.auth_user ? (char *)j->m.auth_user : "";
	atomic_fetch_add(&j->pending, 1);
	store_submit(j->d->st, NULL, 0, &q->qe, j->apps[held[0]].body, j->apps[held[0]].body_len,
		     (store_cb){ job_requeue_done, q, j->io }, NULL);
}

/* The store's answer for the batch (on the caller's I/O thread). */
static void job_committed(const store_result *res, void *arg)
{
	dlv_job *j = arg;
	deliverer *d = j->d;
	dlv_plan *p = &j->plan;

	if (res->rc != STORE_OK) {
		if (res->rc == STORE_EREFUSED)   /* a mailbox froze for a migration meanwhile */
			job_refuse(j, res->rc, "450 4.2.1 <%s>: mailbox is being moved to another server, "
				   "try again later", p->nlocal ? p->local[0].address : "");
		else if (res->rc == STORE_EDISK)
			job_refuse(j, res->rc, "452 4.3.1 Insufficient system storage, try again later");
		else if (res->rc == STORE_EQUOTA)
			job_refuse(j, res->rc, "552 5.2.2 <%s>: Mailbox full",
				   p->nlocal ? p->local[0].address : "");
		else
			job_refuse(j, res->rc, "451 4.3.0 Local error in processing, try again later");
		tlog(TLOG_ERROR, "Queue-ID: %s: message not stored: %s", j->queue_id,
		     res->error ? res->error : store_strerror(res->rc));
		job_release(j);
		return;
	}
	size_t *held = calloc(p->nlocal ? p->nlocal : 1, sizeof(*held)), nheld = 0;
	if (held == NULL)
		abort();
	for (size_t i = 0; i < p->nlocal; i++)
		if (res->rcpt_rc && res->rcpt_rc[i] == STORE_EREFUSED)
			held[nheld++] = i;
	if (nheld > 0 && nheld == p->nlocal && p->nremote == 0 && p->nresource == 0 &&
	    (job_plan_flags(j) & DLV_PLAN_HANDBACK)) {
		/* the queue's hand-back of one recipient: it stays queued (4xx) */
		job_refuse(j, STORE_EREFUSED, "450 4.2.1 <%s>: mailbox is being moved to another server, "
			   "try again later", p->local[0].address);
		free(held);
		job_release(j);
		return;
	}
	job_log_recv(j);
	atomic_fetch_add(&d->received, 1);
	for (size_t i = 0; i < p->nlocal; i++) {
		int rc = res->rcpt_rc ? res->rcpt_rc[i] : STORE_OK;
		j->delivered[i] = rc;
		if (rc == STORE_EREFUSED) {
			continue;               /* held by a migration: queued below */
		} else if (rc == STORE_OK) {
			j->res.delivered_local++;
			tlog(TLOG_MAIL, "Sent: Queue-ID: %s, Recipient: <%s>, Result: delivered, Status: 2.0.0",
			     j->queue_id, p->local[i].address);
		} else if (rc == STORE_EQUOTA) {
			j->res.over_quota++;
			dlv_plan_fail(p, p->local[i].address, p->local[i].rcpt, "5.2.2",
				      "552 5.2.2 <%s>: Mailbox full", p->local[i].address);
		} else {
			dlv_plan_fail(p, p->local[i].address, p->local[i].rcpt, "5.1.1",
				      "550 5.1.1 <%s>: mailbox unavailable (%s)", p->local[i].address,
				      store_strerror(rc));
		}
	}
	for (size_t i = 0; i < p->nfailed; i++)
		tlog(TLOG_MAIL, "Sent: Queue-ID: %s, Recipient: <%s>, Result: failed, Status: %s", j->queue_id,
		     p->failed[i].address, p->failed[i].status);
	j->res.queued_remote = (unsigned)(p->nremote - p->nnode);
	j->res.queued_node = (unsigned)p->nnode;
	atomic_fetch_add(&d->delivered_local, j->res.delivered_local);
	atomic_fetch_add(&d->over_quota, j->res.over_quota);
	atomic_fetch_add(&d->failed_local, p->nfailed - j->res.over_quota);
	atomic_fetch_add(&d->queued_remote, p->nremote - p->nnode);
	atomic_fetch_add(&d->queued_node, p->nnode);
	j->res.rc = STORE_OK;
	j->res.delivered_local += (unsigned)p->nresource;
	if (nheld > 0)
		job_requeue(j, held, nheld);
	free(held);
	job_imip(j);
	if (j->m.sender[0])
		job_report(j);
	job_quota_warnings(j);
	job_release(j);
}

/* tern_io_post adapter: refusals reach the caller on its I/O thread, never re-entrantly. */
static void job_post_finish(void *arg)
{
	job_finish(arg);
}

/* Mail for resources only: nothing to store, straight to the follow-ups. */
static void job_post_resources(void *arg)
{
	store_result res = { 0 };
	job_committed(&res, arg);
}

/* After prepare: refuse at once, or hand the batch to the store. */
static void job_prepared(void *arg)
{
	dlv_job *j = arg;

	if (!j->prepared) {
		if (j->io)
			tern_io_post(j->io, job_post_finish, j);
		else
			job_finish(j);
		return;
	}
	if (j->plan.nlocal == 0 && j->plan.nremote == 0) {
		if (j->io)
			tern_io_post(j->io, job_post_resources, j);
		else
			job_post_resources(j);
		return;
	}
	store_submit(j->d->st, j->apps, j->plan.nlocal, j->plan.nremote ? &j->qe : NULL, j->qbody, j->qlen,
		     (store_cb){ job_committed, j, j->io }, NULL);
}

/* Large messages are prepared on the cpu pool when there is one (and room in it). */
void deliver_submit(deliverer *d, const deliver_message *m, tern_io *io,
		    void (*cb)(const deliver_result *r, void *arg), void *arg)
{
	dlv_job *j = job_new(d, m, io, cb, arg);

	if (d->cpu_pool && m->len > DLV_INLINE_MAX &&
	    tern_pool_submit(d->cpu_pool, job_prepare, job_prepared, j, io) == 0)
		return;
	job_prepare(j);
	job_prepared(j);
}
