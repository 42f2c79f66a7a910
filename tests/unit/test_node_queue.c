/* test_node_queue.c - the queue runner against a scripted SMTP server on 127.0.0.1
 * (queue.static_mx points remote.test at it), with a temporary store and a real
 * deliverer for the reports: delivery on the first try (dot-stuffing, SIZE), a temporary
 * failure then success on retry, a permanent failure with a report in the sender's
 * mailbox, no report for the null sender, expiry after bounce_after, one delay warning,
 * and an entry that survives closing and reopening the store. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>
#include "store_test_util.h"
#include "mail_test_util.h"
#include "queue_int.h"

enum { MODE_ACCEPT, MODE_TEMP_ONCE, MODE_PERM, MODE_TEMP_ALWAYS };

/* ---- the scripted SMTP server ---- */

static struct {
	int lfd;
	unsigned port;
	pthread_t thread;
	pthread_mutex_t lock;
	int stop;
	int mode;
	int connections, messages;
	tbuf data;       /* the last message, unstuffed */
	tbuf mail;       /* the last MAIL command */
	tbuf auth;       /* the last AUTH command */
} F = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* One CRLF line from fd into buf (without CRLF); -1 on EOF or error. */
static int srv_line(int fd, char *buf, size_t n)
{
	size_t len = 0;

	for (;;) {
		char ch;
		ssize_t r = recv(fd, &ch, 1, 0);
		if (r <= 0)
			return -1;
		if (ch == '\n') {
			if (len > 0 && buf[len - 1] == '\r')
				len--;
			buf[len] = '\0';
			return (int)len;
		}
		if (len + 1 < n)
			buf[len++] = ch;
	}
}

static void srv_say(int fd, const char *s)
{
	ssize_t r = send(fd, s, strlen(s), MSG_NOSIGNAL);
	(void)r;
}

static void srv_session(int fd)
{
	char line[4096];
	int conn;

	pthread_mutex_lock(&F.lock);
	conn = ++F.connections;
	int mode = F.mode;
	pthread_mutex_unlock(&F.lock);
	srv_say(fd, "220 fake.test ESMTP\r\n");
	while (srv_line(fd, line, sizeof(line)) >= 0) {
		if (strncasecmp(line, "EHLO", 4) == 0) {
			srv_say(fd, "250-fake.test\r\n250-SIZE 10000000\r\n250-DSN\r\n250-AUTH LOGIN PLAIN\r\n"
				    "250 ENHANCEDSTATUSCODES\r\n");
		} else if (strncasecmp(line, "AUTH ", 5) == 0) {
			pthread_mutex_lock(&F.lock);
			tbuf_reset(&F.auth);
			tbuf_append_str(&F.auth, line);
			pthread_mutex_unlock(&F.lock);
			srv_say(fd, "235 2.7.0 Authentication successful\r\n");
		} else if (strncasecmp(line, "MAIL", 4) == 0) {
			pthread_mutex_lock(&F.lock);
			tbuf_reset(&F.mail);
			tbuf_append_str(&F.mail, line);
			pthread_mutex_unlock(&F.lock);
			srv_say(fd, "250 2.1.0 Ok\r\n");
		} else if (strncasecmp(line, "RCPT", 4) == 0) {
			if (mode == MODE_PERM)
				srv_say(fd, "550 5.1.1 <bob@remote.test>: no such user\r\n");
			else if (mode == MODE_TEMP_ALWAYS || (mode == MODE_TEMP_ONCE && conn == 1))
				srv_say(fd, "451 4.3.0 try again later\r\n");
			else
				srv_say(fd, "250 2.1.5 Ok\r\n");
		} else if (strncasecmp(line, "DATA", 4) == 0) {
			tbuf body = TBUF_INIT;
			srv_say(fd, "354 go ahead\r\n");
			int len;
			while ((len = srv_line(fd, line, sizeof(line))) >= 0 && strcmp(line, ".") != 0) {
				tbuf_append_str(&body, line[0] == '.' ? line + 1 : line);
				tbuf_append_str(&body, "\r\n");
			}
			pthread_mutex_lock(&F.lock);
			tbuf_reset(&F.data);
			tbuf_append(&F.data, body.data, body.len);
			F.messages++;
			pthread_mutex_unlock(&F.lock);
			tbuf_free(&body);
			srv_say(fd, "250 2.0.0 Ok: queued as 42\r\n");
		} else if (strncasecmp(line, "QUIT", 4) == 0) {
			srv_say(fd, "221 2.0.0 Bye\r\n");
			break;
		} else {
			srv_say(fd, "502 5.5.2 unknown\r\n");
		}
	}
	close(fd);
}

static void *srv_main(void *arg)
{
	struct pollfd p = { .fd = F.lfd, .events = POLLIN };

	for (;;) {
		pthread_mutex_lock(&F.lock);
		int stop = F.stop;
		pthread_mutex_unlock(&F.lock);
		if (stop)
			break;
		if (poll(&p, 1, 100) <= 0)
			continue;
		int fd = accept(F.lfd, NULL, NULL);
		if (fd < 0)
			continue;
		struct timeval tv = { 5, 0 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		srv_session(fd);
	}
	return NULL;
}

static void srv_start(int mode)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);

	F.mode = mode;
	F.stop = 0;
	F.connections = F.messages = 0;
	F.lfd = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	assert_int_equal(bind(F.lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(F.lfd, 16), 0);
	assert_int_equal(getsockname(F.lfd, (struct sockaddr *)&sin, &len), 0);
	F.port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&F.thread, NULL, srv_main, NULL), 0);
}

static void srv_stop(void)
{
	pthread_mutex_lock(&F.lock);
	F.stop = 1;
	pthread_mutex_unlock(&F.lock);
	pthread_join(F.thread, NULL);
	close(F.lfd);
	tbuf_free(&F.data);
	tbuf_free(&F.mail);
	tbuf_free(&F.auth);
}

/* ---- the node side ---- */

typedef struct node {
	test_store *t;
	tern_conf conf;
	mt_runner run;
	uint8_t alice[16];
} node;

static void node_conf(node *n, const char *extra)
{
	char text[1024];
	char *err = NULL;

	snprintf(text, sizeof(text),
		 "[server]\nhostname = mx.example.test\nio_threads = 1\ndrain_timeout = 1\n"
		 "[queue]\nstatic_mx = remote.test=127.0.0.1:%u\ncheck_interval = 1\n"
		 "retry_interval = 1\nconnect_timeout = 5\ncommand_timeout = 5\n%s",
		 F.port, extra);
	if (tern_conf_load_string(&n->conf, text, 0, &err) < 0)
		fail_msg("conf: %s", err);
}

/* Server (no listeners), resolver, deliverer and runner on the one I/O thread. */
static void node_start(node *n)
{
	mt_runner_start(&n->run, n->t, &n->conf, "mx.example.test");
}

static node *node_new(const char *extra)
{
	node *n = calloc(1, sizeof(*n));

	n->t = ts_new();
	ts_add_domain(n->t->st);
	ts_add_user_homed(n->t->st, "alice", "", n->alice);
	node_conf(n, extra);
	return n;
}

static void node_free(node *n)
{
	mt_runner_stop(&n->run);
	tern_conf_free(&n->conf);
	ts_free(&n->t);
	free(n);
}

#define PREFIX "Received: from client.test by mx.example.test; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
#define BODY "Subject: hello\r\nFrom: alice@example.test\r\n\r\n.leading dot\r\n..two dots\r\nend\r\n"

/* Queue one message from sender to bob@remote.test; fills id. */
static void submit(node *n, const char *sender, uint32_t notify, int64_t created, uint8_t id[16])
{
	mt_queue_submit(n->t->st, sender, "bob@remote.test", notify, created, PREFIX, BODY, id);
}

/* ---- tests ---- */

/* Start the fake server in mode and a node with extra configuration, queue one message
 * from sender (created now), and wait until the queue is empty again. */
static node *run_queued(int mode, const char *extra, const char *sender, uint8_t id[16])
{
	node *n;

	srv_start(mode);
	n = node_new(extra);
	submit(n, sender, 0, tern_now(), id);
	node_start(n);
	mt_wait_empty(n->t->st);
	return n;
}

/* Stop the node of a test and the fake server. */
static void node_done(node *n)
{
	node_free(n);
	srv_stop();
}

static void test_delivered_first_try(void **state)
{
	node *n;
	uint8_t id[16];
	queue_stats s;

	n = run_queued(MODE_ACCEPT, "", "alice@example.test", id);
	pthread_mutex_lock(&F.lock);
	assert_int_equal(F.messages, 1);
	assert_int_equal(F.connections, 1);
	assert_string_equal(tbuf_cstr(&F.data), PREFIX BODY);   /* dot-stuffing round trip */
	assert_non_null(strstr(tbuf_cstr(&F.mail), "MAIL FROM:<alice@example.test>"));
	assert_non_null(strstr(tbuf_cstr(&F.mail), " SIZE="));
	pthread_mutex_unlock(&F.lock);
	queue_runner_stats(n->run.qr, &s);
	assert_int_equal(s.delivered, 1);
	assert_int_equal(s.deferred, 0);
	assert_int_equal(s.failed, 0);
	node_done(n);
}

static void test_retry_then_success(void **state)
{
	node *n;
	uint8_t id[16];
	queue_stats s;
	mt_inbox b = { 0 };

	n = run_queued(MODE_TEMP_ONCE, "", "alice@example.test", id);
	pthread_mutex_lock(&F.lock);
	assert_int_equal(F.connections, 2);
	assert_int_equal(F.messages, 1);
	pthread_mutex_unlock(&F.lock);
	queue_runner_stats(n->run.qr, &s);
	assert_int_equal(s.deferred, 1);
	assert_int_equal(s.delivered, 1);
	assert_int_equal(mt_inbox_count(n->t->st, n->alice, &b), 0);   /* no report for a success without NOTIFY */
	tbuf_free(&b.last);
	node_done(n);
}

static void test_permanent_failure_report(void **state)
{
	node *n;
	uint8_t id[16];
	queue_stats s;
	mt_inbox b = { 0 };

	n = run_queued(MODE_PERM, "", "alice@example.test", id);
	mt_wait_inbox(n->t->st, n->alice, &b, 1);
	const char *dsn = tbuf_cstr(&b.last);
	assert_non_null(strstr(dsn, "delivery-status"));
	assert_non_null(strstr(dsn, "bob@remote.test"));
	assert_non_null(strstr(dsn, "5.1.1"));
	assert_non_null(strstr(dsn, "Subject: hello"));   /* the original comes back */
	queue_runner_stats(n->run.qr, &s);
	assert_int_equal(s.failed, 1);
	assert_int_equal(s.bounced, 1);
	pthread_mutex_lock(&F.lock);
	assert_int_equal(F.messages, 0);
	pthread_mutex_unlock(&F.lock);
	tbuf_free(&b.last);
	node_done(n);
}

static void test_null_sender_no_report(void **state)
{
	node *n;
	uint8_t id[16];
	queue_stats s;
	mt_inbox b = { 0 };

	n = run_queued(MODE_PERM, "", "", id);
	usleep(300000);
	queue_runner_stats(n->run.qr, &s);
	assert_int_equal(s.failed, 1);
	assert_int_equal(s.bounced, 0);
	assert_int_equal(mt_inbox_count(n->t->st, n->alice, &b), 0);
	tbuf_free(&b.last);
	node_done(n);
}

static void test_bounce_after(void **state)
{
	node *n;
	uint8_t id[16];
	queue_stats s;
	mt_inbox b = { 0 };

	n = run_queued(MODE_TEMP_ALWAYS, "bounce_after = 2\nwarn_after = 0\n", "alice@example.test",
		       id);
	mt_wait_inbox(n->t->st, n->alice, &b, 1);
	assert_non_null(strstr(tbuf_cstr(&b.last), "4.4.7"));
	queue_runner_stats(n->run.qr, &s);
	assert_int_equal(s.failed, 1);
	assert_int_equal(s.bounced, 1);
	assert_int_equal(s.delayed, 0);
	assert_true(s.deferred >= 1);
	tbuf_free(&b.last);
	node_done(n);
}

static void test_delay_warning_once(void **state)
{
	node *n;
	uint8_t id[16];
	queue_stats s;
	mt_inbox b = { 0 };

	srv_start(MODE_TEMP_ALWAYS);
	n = node_new("bounce_after = 3600\nwarn_after = 1\n");
	/* Arrived two seconds ago: the first attempt is already past warn_after. */
	submit(n, "alice@example.test", 0, tern_now() - 2, id);
	node_start(n);
	for (int i = 0; i < 200; i++) {
		queue_runner_stats(n->run.qr, &s);
		if (s.deferred >= 3)
			break;
		usleep(100000);
	}
	queue_runner_stats(n->run.qr, &s);
	assert_true(s.deferred >= 3);
	assert_int_equal(s.delayed, 1);
	mt_wait_inbox(n->t->st, n->alice, &b, 1);
	assert_non_null(strstr(tbuf_cstr(&b.last), "delayed"));
	Tern__QueueEntry *e = NULL;
	assert_int_equal(store_queue_get(n->t->st, id, &e), STORE_OK);
	assert_true(e->delay_warned);
	assert_int_equal(e->rcpts[0]->state, TERN__QUEUE_RCPT__STATE__PENDING);
	assert_non_null(strstr(e->rcpts[0]->last_reply, "451 4.3.0"));
	store_free_record(e);
	tbuf_free(&b.last);
	node_done(n);
}

static void test_survives_reopen(void **state)
{
	node *n;
	uint8_t id[16];
	store_options o;
	char *err = NULL;

	srv_start(MODE_ACCEPT);
	n = node_new("");
	submit(n, "alice@example.test", 0, tern_now(), id);
	store_close(&n->t->st);
	ts_options(n->t, &o);
	assert_int_equal(store_open(&o, &n->t->st, &err), 0);
	assert_int_equal(mt_queued(n->t->st), 1);
	node_start(n);
	mt_wait_empty(n->t->st);
	pthread_mutex_lock(&F.lock);
	assert_int_equal(F.messages, 1);
	pthread_mutex_unlock(&F.lock);
	node_done(n);
}

static void test_relay_auth_plain(void **state)
{
	node *n;
	uint8_t id[16];
	char extra[512], pwfile[160];

	srv_start(MODE_ACCEPT);
	n = node_new("");
	snprintf(pwfile, sizeof(pwfile), "%s/relay.pw", n->t->dir);
	FILE *f = fopen(pwfile, "w");
	assert_non_null(f);
	fputs("s3cret\n", f);
	fclose(f);
	snprintf(extra, sizeof(extra), "static_mx =\nrelay_host = 127.0.0.1\nrelay_port = %u\n"
		 "relay_user = relay@example.test\nrelay_password_file = %s\n", F.port, pwfile);
	tern_conf_free(&n->conf);
	node_conf(n, extra);
	submit(n, "alice@example.test", 0, tern_now(), id);
	node_start(n);
	mt_wait_empty(n->t->st);
	pthread_mutex_lock(&F.lock);
	assert_int_equal(F.messages, 1);
	/* base64("\0relay@example.test\0s3cret") */
	assert_string_equal(tbuf_cstr(&F.auth), "AUTH PLAIN AHJlbGF5QGV4YW1wbGUudGVzdABzM2NyZXQ=");
	pthread_mutex_unlock(&F.lock);
	node_done(n);
}

static void test_operations(void **state)
{
	char text[18];
	uint8_t id[16] = { 0x43, 0x8d, 0xd9, 0xea, 0, 0, 0, 1, 9, 9 };
	q_static_mx *smx = NULL;
	size_t nsmx = 0;
	char *err = NULL;

	queue_id_text(id, 16, text);
	assert_string_equal(text, "438dd9ea-00000001");
	assert_int_equal(queue_route_parse_static("Remote.test=127.0.0.1:2525, b.test=[::1], c.test=mx.c.test",
						  25, &smx, &nsmx, &err), 0);
	assert_int_equal(nsmx, 3);
	assert_string_equal(smx[0].domain, "remote.test");
	assert_string_equal(smx[0].host, "127.0.0.1");
	assert_int_equal(smx[0].port, 2525);
	assert_string_equal(smx[1].host, "::1");
	assert_int_equal(smx[1].port, 25);
	assert_string_equal(smx[2].host, "mx.c.test");
	free(smx);
	assert_int_equal(queue_route_parse_static("nohost", 25, &smx, &nsmx, &err), -1);
	assert_non_null(strstr(err, "static_mx"));
	free(err);
	assert_int_equal(queue_route_parse_static("a.test=h:99999", 25, &smx, &nsmx, NULL), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_operations),
		cmocka_unit_test(test_delivered_first_try),
		cmocka_unit_test(test_retry_then_success),
		cmocka_unit_test(test_permanent_failure_report),
		cmocka_unit_test(test_null_sender_no_report),
		cmocka_unit_test(test_bounce_after),
		cmocka_unit_test(test_delay_warning_once),
		cmocka_unit_test(test_survives_reopen),
		cmocka_unit_test(test_relay_auth_plain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
