/* mail_test_util.h - the mail path in the node unit tests (node/deliver, node/queue): a
 * message put through the deliverer and its result waited for, a queue entry put straight
 * into the store, the queue runner (with its resolver and a deliverer for the reports) on
 * a tern_server thread, and a user's INBOX read back. Include after store_test_util.h
 * (cmocka, the store and test_store). */
#ifndef TERN_MAIL_TEST_UTIL_H
#define TERN_MAIL_TEST_UTIL_H
#include <pthread.h>
#include <unistd.h>
#include "deliver.h"
#include "dns.h"
#include "queue.h"
#include "tern.h"

/* ---- the deliverer ---- */

/* A deliverer on st with conf (which must outlive it), hostname in Received and reports,
 * no CPU pool. */
static inline deliverer *mt_deliverer_new(store *st, const tern_conf *conf, const char *hostname)
{
	deliver_env env = { st, conf, hostname, NULL };
	deliverer *d = deliverer_new(&env);

	assert_non_null(d);
	return d;
}

typedef struct mt_waiter {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int done;
	deliver_result res;
} mt_waiter;

static inline void mt_on_done(const deliver_result *r, void *arg)
{
	mt_waiter *w = arg;

	pthread_mutex_lock(&w->mu);
	w->res = *r;
	w->done = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->mu);
}

/* deliver_submit m to the NULL-terminated rcpts (at most 8, default NOTIFY, no ORCPT; they
 * replace m->rcpts) and wait for the callback, which runs on a commit thread (io NULL). */
static inline deliver_result mt_deliver(deliverer *d, deliver_message *m, const char *const *rcpts)
{
	deliver_rcpt_req r[8];
	mt_waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, { 0 } };
	size_t n = 0;

	for (; rcpts[n]; n++) {
		assert_true(n < 8);
		r[n] = (deliver_rcpt_req){ rcpts[n], 0, NULL };
	}
	m->rcpts = r;
	m->nrcpts = n;
	deliver_submit(d, m, NULL, mt_on_done, &w);
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.mu);
	pthread_mutex_unlock(&w.mu);
	m->rcpts = NULL;
	m->nrcpts = 0;
	return w.res;
}

/* ---- the queue ---- */

/* Queue prefix + body from sender to the one recipient rcpt (notify: its DELIVER_NOTIFY_*
 * bits), created at `created` and due now; its id into id. */
static inline void mt_queue_submit(store *st, const char *sender, const char *rcpt, uint32_t notify,
				   int64_t created, const char *prefix, const char *body, uint8_t id[16])
{
	Tern__QueueEntry e = TERN__QUEUE_ENTRY__INIT;
	Tern__QueueRcpt rc = TERN__QUEUE_RCPT__INIT;
	Tern__QueueRcpt *rcpts[1] = { &rc };
	store_sync_result r;

	rc.address = (char *)rcpt;
	rc.notify = notify;
	e.sender = (char *)sender;
	e.rcpts = rcpts;
	e.n_rcpts = 1;
	e.header_prefix.data = (uint8_t *)prefix;
	e.header_prefix.len = strlen(prefix);
	e.created = (uint64_t)created;
	e.next_try = (uint64_t)tern_now();
	assert_int_equal(store_submit(st, NULL, 0, &e, body, strlen(body), STORE_SYNC, &r), STORE_OK);
	memcpy(id, r.res.id, 16);
}

/* The number of entries in the queue. */
static inline size_t mt_queued(store *st)
{
	Tern__QueueEntry **list = NULL;
	size_t count = 0;

	assert_int_equal(store_queue_list(st, &list, &count), STORE_OK);
	store_free_list((void **)list, count);
	return count;
}

/* Wait up to 20 s for the queue to be empty. */
static inline void mt_wait_empty(store *st)
{
	for (int i = 0; i < 200 && mt_queued(st) > 0; i++)
		usleep(100000);
	assert_int_equal(mt_queued(st), 0);
}

/* ---- the queue runner ---- */

typedef struct mt_runner {
	tern_server *srv;             /* NULL: not running */
	pthread_t thread;
	tern_dns *dns;
	deliverer *dlv;
	queue_runner *qr;
} mt_runner;

static inline void *mt_run_thread(void *arg)
{
	tern_server_run(arg);
	return NULL;
}

/* A server without listeners (data in t's directory), a resolver that never answers, a
 * deliverer and a queue runner on its one I/O thread, all started; hostname is the EHLO
 * and report name. conf must outlive the runner. */
static inline void mt_runner_start(mt_runner *r, test_store *t, tern_conf *conf, const char *hostname)
{
	char *err = NULL;
	char dir[128];

	snprintf(dir, sizeof(dir), "%s/data", t->dir);
	r->srv = tern_server_new(conf, dir, &err);
	if (r->srv == NULL)
		fail_msg("server: %s", err);
	tern_io *io = tern_server_io(r->srv, 0);
	r->dns = tern_dns_new(tern_io_base(io), "127.0.0.1:9", 1, &err);
	assert_non_null(r->dns);
	r->dlv = mt_deliverer_new(t->st, conf, hostname);
	queue_env env = { t->st, conf, hostname, io, r->dns, r->dlv };
	r->qr = queue_runner_new(&env, &err);
	if (r->qr == NULL)
		fail_msg("runner: %s", err);
	queue_runner_start(r->qr);
	assert_int_equal(pthread_create(&r->thread, NULL, mt_run_thread, r->srv), 0);
}

/* Stop the server, wait for its thread and free it all; nothing when it was not started. */
static inline void mt_runner_stop(mt_runner *r)
{
	if (r->srv == NULL)
		return;
	tern_server_stop(r->srv);
	pthread_join(r->thread, NULL);
	queue_runner_free(&r->qr);
	deliverer_free(&r->dlv);
	tern_dns_free(&r->dns);
	tern_server_free(&r->srv);
}

/* ---- a user's INBOX ---- */

typedef struct mt_inbox {
	store *st;
	int count;
	tbuf last;                    /* the last message's body; tbuf_free it */
} mt_inbox;

static inline int mt_inbox_msg(const Tern__MessageMeta *m, void *arg)
{
	mt_inbox *b = arg;

	b->count++;
	tbuf_reset(&b->last);
	store_blob_read(b->st, m->blob.data, 0, 0, &b->last);
	return 0;
}

/* Messages in user's INBOX (-1: the user has no mailbox in st); the last one's body in
 * b->last. */
static inline int mt_inbox_count(store *st, const uint8_t user[16], mt_inbox *b)
{
	Tern__Folder *f = NULL;

	b->st = st;
	b->count = 0;
	if (store_folder_find(st, user, "INBOX", &f) != STORE_OK)
		return -1;
	store_msg_scan(st, user, f->id.data, 1, mt_inbox_msg, b);
	store_free_record(f);
	return b->count;
}

/* Wait up to 20 s for count messages in user's INBOX. */
static inline void mt_wait_inbox(store *st, const uint8_t user[16], mt_inbox *b, int count)
{
	for (int i = 0; i < 200 && mt_inbox_count(st, user, b) < count; i++)
		usleep(100000);
	assert_int_equal(mt_inbox_count(st, user, b), count);
}

#endif
