/* test_node_route_queue.c - the queue's routing in a distributed domain (DESIGN.md §5):
 * node "a" relays a queued recipient homed on node "c" to c's submission port, where a
 * scripted server with its own TLS certificate stands in for c. Checked: STARTTLS before
 * anything else, the certificate pinned to Node.fingerprint (a mismatch defers the
 * recipient for [cluster] relay_retry and keeps the entry, nothing is sent), AUTH PLAIN
 * with a's node login only over TLS, the message as queued; a recipient whose home is
 * this node by now is delivered here; a user unknown everywhere fails with a report. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include "store_test_util.h"
#include "net_test_util.h"
#include "auth_sasl.h"
#include "mail_test_util.h"

#define PREFIX "Received: from client.test by a.example.test; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
#define BODY "Subject: cross-node\r\nFrom: rob@remote.test\r\n\r\n.leading dot\r\nend\r\n"

/* ---- node c: a scripted submission server with TLS ---- */

static struct {
	pthread_mutex_t lock;
	int connections, messages;
	int auth_over_tls;           /* the AUTH command came after STARTTLS */
	int mail_before_auth;
	tbuf auth, rcpt, data;
} F = { .lock = PTHREAD_MUTEX_INITIALIZER };

typedef struct fc_session {
	int tls, authed, in_data;
	tbuf body;
} fc_session;

static void *fc_open(tern_conn *c, void *ctx)
{
	fc_session *s = calloc(1, sizeof(*s));

	pthread_mutex_lock(&F.lock);
	F.connections++;
	pthread_mutex_unlock(&F.lock);
	tern_conn_printf(c, "220 c.example.test ESMTP\r\n");
	return s;
}

static void fc_line(tern_conn *c, fc_session *s, const char *line)
{
	if (s->in_data) {
		if (strcmp(line, ".") != 0) {
			tbuf_append_str(&s->body, line[0] == '.' ? line + 1 : line);
			tbuf_append_str(&s->body, "\r\n");
			return;
		}
		s->in_data = 0;
		pthread_mutex_lock(&F.lock);
		tbuf_reset(&F.data);
		tbuf_append(&F.data, s->body.data, s->body.len);
		F.messages++;
		pthread_mutex_unlock(&F.lock);
		tbuf_reset(&s->body);
		tern_conn_printf(c, "250 2.0.0 Ok: queued as C1\r\n");
		return;
	}
	pthread_mutex_lock(&F.lock);
	if (strncasecmp(line, "EHLO", 4) == 0) {
		tern_conn_printf(c, "250-c.example.test\r\n250-SIZE 10000000\r\n%s250 ENHANCEDSTATUSCODES\r\n",
				 s->tls ? "250-AUTH PLAIN LOGIN\r\n" : "250-STARTTLS\r\n");
	} else if (strcasecmp(line, "STARTTLS") == 0) {
		tern_conn_printf(c, "220 2.0.0 Ready to start TLS\r\n");
		s->tls = 1;
		if (tern_conn_starttls(c) < 0)
			tern_conn_close(c);
	} else if (strncasecmp(line, "AUTH ", 5) == 0) {
		tbuf_reset(&F.auth);
		tbuf_append_str(&F.auth, line);
		F.auth_over_tls = s->tls;
		s->authed = 1;
		tern_conn_printf(c, "235 2.7.0 Authentication successful\r\n");
	} else if (strncasecmp(line, "MAIL", 4) == 0) {
		F.mail_before_auth |= !s->authed;
		tern_conn_printf(c, "250 2.1.0 Ok\r\n");
	} else if (strncasecmp(line, "RCPT", 4) == 0) {
		tbuf_reset(&F.rcpt);
		tbuf_append_str(&F.rcpt, line);
		tern_conn_printf(c, "250 2.1.5 Ok\r\n");
	} else if (strcasecmp(line, "DATA") == 0) {
		s->in_data = 1;
		tern_conn_printf(c, "354 go ahead\r\n");
	} else if (strcasecmp(line, "QUIT") == 0) {
		tern_conn_printf(c, "221 2.0.0 Bye\r\n");
		tern_conn_close(c);
	} else {
		tern_conn_printf(c, "502 5.5.2 unknown\r\n");
	}
	pthread_mutex_unlock(&F.lock);
}

static void fc_read(tern_conn *c, void *session)
{
	fc_session *s = session;
	size_t n;
	char *line;

	while ((line = evbuffer_readln(tern_conn_input(c), &n, EVBUFFER_EOL_CRLF)) != NULL) {
		int was_tls = s->tls;
		fc_line(c, s, line);
		free(line);
		if (s->tls != was_tls)
			return;   /* the rest arrives over TLS */
	}
}

static void fc_close(tern_conn *c, void *session)
{
	fc_session *s = session;

	(void)c;
	tbuf_free(&s->body);
	free(s);
}

static struct {
	char dir[64];
	tern_conf conf;
	nt_server ns;
	unsigned port;
	tern_service_handler h;
} C;

static void c_start(void)
{
	char *err = NULL;
	tern_service_id svc = TERN_SVC_submission;
	const tern_service_handler *hs[1] = { &C.h };

	snprintf(C.dir, sizeof(C.dir), "/tmp/tern-nodec-XXXXXX");
	assert_non_null(mkdtemp(C.dir));
	if (tern_conf_load_string(&C.conf, "[server]\nhostname = c.example.test\nio_threads = 1\n"
				  "drain_timeout = 1\n", 0, &err) < 0)
		fail_msg("conf: %s", err);
	C.h = (tern_service_handler){ .on_open = fc_open, .on_read = fc_read, .on_close = fc_close,
				      .idle_timeout = 10 };
	assert_int_equal(nt_start(&C.ns, &C.conf, C.dir, "127.0.0.1", &svc, hs, 1, &C.port), 0);
	pthread_mutex_lock(&F.lock);
	F.connections = F.messages = F.auth_over_tls = F.mail_before_auth = 0;
	tbuf_reset(&F.auth);
	tbuf_reset(&F.rcpt);
	tbuf_reset(&F.data);
	pthread_mutex_unlock(&F.lock);
}

static void c_stop(void)
{
	nt_stop(&C.ns);
	tern_conf_free(&C.conf);
	nftw(C.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	pthread_mutex_lock(&F.lock);
	tbuf_free(&F.auth);
	tbuf_free(&F.rcpt);
	tbuf_free(&F.data);
	pthread_mutex_unlock(&F.lock);
}

/* ---- node a: store, deliverer and queue runner ---- */

typedef struct node {
	test_store *t;
	tern_conf conf;
	mt_runner run;
	uint8_t alice[16], dan[16];
	uint8_t cred[32];
} node;

/* Node a, a slave with its node credential; node c's record with the fake's address and
 * `fingerprint`; alice and dan homed on a, carol on c. */
static node *node_new(const char *fingerprint)
{
	node *n = calloc(1, sizeof(*n));
	Tern__ClusterSelf self = TERN__CLUSTER_SELF__INIT;
	Tern__Node c = TERN__NODE__INIT;
	uint8_t key[32] = { 3 };
	char text[512], *err = NULL;

	n->t = ts_new();
	store *st = n->t->st;
	store_set_node_name(st, "a");
	memset(n->cred, 0x11, sizeof(n->cred));
	self.role = TERN__CLUSTER_SELF__ROLE__SLAVE;
	self.master_name = (char *)"m";
	self.credential.data = n->cred;
	self.credential.len = sizeof(n->cred);
	assert_int_equal(store_cluster_self_put(st, &self, STORE_SYNC, NULL), STORE_OK);
	ts_add_domain(st);
	c.name = (char *)"c";
	c.curve_public.data = key;
	c.curve_public.len = sizeof(key);
	c.address = (char *)"127.0.0.1";
	c.submission_port = C.port;
	c.fingerprint = (char *)fingerprint;
	assert_int_equal(store_node_put(st, &c, STORE_SYNC, NULL), STORE_OK);
	ts_add_user_homed(st, "alice", "", n->alice);
	ts_add_user_homed(st, "dan", "a", n->dan);
	ts_add_user_homed(st, "carol", "c", NULL);
	snprintf(text, sizeof(text),
		 "[server]\nhostname = a.example.test\nio_threads = 1\ndrain_timeout = 1\n"
		 "[queue]\ncheck_interval = 1\nretry_interval = 1800\nconnect_timeout = 5\n"
		 "command_timeout = 5\n[cluster]\nrelay_retry = 60\n");
	if (tern_conf_load_string(&n->conf, text, 0, &err) < 0)
		fail_msg("conf: %s", err);
	return n;
}

/* Stop and free node a, then node c. */
static void node_done(node *n)
{
	mt_runner_stop(&n->run);
	tern_conf_free(&n->conf);
	ts_free(&n->t);
	free(n);
	c_stop();
}

/* Start node c and a node a that pins c's certificate, queue one message from alice to
 * rcpt (as the deliverer does for a user of another node), and wait until a's queue is
 * empty again. */
static node *run_queued(const char *rcpt)
{
	uint8_t id[16];

	c_start();
	node *n = node_new(tern_server_fingerprint(C.ns.srv));
	mt_queue_submit(n->t->st, "alice@example.test", rcpt, 0, tern_now(), PREFIX, BODY, id);
	mt_runner_start(&n->run, n->t, &n->conf, "a.example.test");
	mt_wait_empty(n->t->st);
	return n;
}

/* ---- tests ---- */

static void test_relay_to_home_node(void **state)
{
	tbuf raw = TBUF_INIT, b64 = TBUF_INIT;
	char hex[65];
	queue_stats s;

	(void)state;
	node *n = run_queued("carol@example.test");
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", n->cred[i]);
	tbuf_append_char(&raw, '\0');
	tbuf_append_str(&raw, "node/a");
	tbuf_append_char(&raw, '\0');
	tbuf_append_str(&raw, hex);
	auth_b64_encode(raw.data, raw.len, &b64);
	pthread_mutex_lock(&F.lock);
	assert_int_equal(F.messages, 1);
	assert_true(F.auth_over_tls);
	assert_false(F.mail_before_auth);
	assert_string_equal(tbuf_cstr(&F.auth) + strlen("AUTH PLAIN "), tbuf_cstr(&b64));
	assert_int_equal(strncmp(tbuf_cstr(&F.auth), "AUTH PLAIN ", 11), 0);
	assert_string_equal(tbuf_cstr(&F.rcpt), "RCPT TO:<carol@example.test>");
	assert_string_equal(tbuf_cstr(&F.data), PREFIX BODY);
	pthread_mutex_unlock(&F.lock);
	queue_runner_stats(n->run.qr, &s);
	assert_int_equal(s.delivered, 1);
	assert_int_equal(s.deferred, 0);
	tbuf_free(&raw);
	tbuf_free(&b64);
	node_done(n);
}

static void test_pin_mismatch_defers(void **state)
{
	uint8_t id[16];
	char wrong[65];
	queue_stats s;
	Tern__QueueEntry *e = NULL;

	(void)state;
	c_start();
	snprintf(wrong, sizeof(wrong), "%s", tern_server_fingerprint(C.ns.srv));
	wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
	node *n = node_new(wrong);
	mt_queue_submit(n->t->st, "alice@example.test", "carol@example.test", 0, tern_now(), PREFIX,
			BODY, id);
	int64_t start = tern_now();
	mt_runner_start(&n->run, n->t, &n->conf, "a.example.test");
	for (int i = 0; i < 200; i++) {
		queue_runner_stats(n->run.qr, &s);
		if (s.deferred >= 1 && s.in_flight == 0)
			break;
		usleep(100000);
	}
	queue_runner_stats(n->run.qr, &s);
	assert_int_equal(s.deferred, 1);
	assert_int_equal(s.delivered, 0);
	assert_int_equal(mt_queued(n->t->st), 1);
	assert_int_equal(store_queue_get(n->t->st, id, &e), STORE_OK);
	assert_int_equal(e->rcpts[0]->state, TERN__QUEUE_RCPT__STATE__PENDING);
	assert_non_null(strstr(e->rcpts[0]->last_reply, "4.7.0"));
	assert_non_null(strstr(e->rcpts[0]->last_reply, "pinned"));
	/* [cluster] relay_retry (60), not queue.retry_interval (1800) */
	assert_true((int64_t)e->next_try >= start + 60 && (int64_t)e->next_try <= tern_now() + 60);
	store_free_record(e);
	pthread_mutex_lock(&F.lock);
	assert_int_equal(F.messages, 0);
	assert_int_equal(F.auth.len, 0);     /* the credential never left over a bad TLS */
	pthread_mutex_unlock(&F.lock);
	node_done(n);
}

static void test_home_is_here_now(void **state)
{
	mt_inbox b = { 0 };

	(void)state;
	node *n = run_queued("dan@example.test");   /* queued while dan lived elsewhere */
	mt_wait_inbox(n->t->st, n->dan, &b, 1);
	assert_non_null(strstr(tbuf_cstr(&b.last), "Subject: cross-node"));
	assert_non_null(strstr(tbuf_cstr(&b.last), "Received: from client.test"));
	pthread_mutex_lock(&F.lock);
	assert_int_equal(F.connections, 0);
	pthread_mutex_unlock(&F.lock);
	tbuf_free(&b.last);
	node_done(n);
}

static void test_unknown_everywhere_fails(void **state)
{
	mt_inbox b = { 0 };
	queue_stats s;

	(void)state;
	node *n = run_queued("zed@example.test");
	mt_wait_inbox(n->t->st, n->alice, &b, 1);
	assert_non_null(strstr(tbuf_cstr(&b.last), "zed@example.test"));
	assert_non_null(strstr(tbuf_cstr(&b.last), "5.1.1"));
	queue_runner_stats(n->run.qr, &s);
	assert_int_equal(s.failed, 1);
	assert_int_equal(s.bounced, 1);
	pthread_mutex_lock(&F.lock);
	assert_int_equal(F.connections, 0);
	pthread_mutex_unlock(&F.lock);
	tbuf_free(&b.last);
	node_done(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relay_to_home_node),
		cmocka_unit_test(test_pin_mismatch_defers),
		cmocka_unit_test(test_home_is_here_now),
		cmocka_unit_test(test_unknown_everywhere_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
