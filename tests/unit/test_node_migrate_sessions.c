/* test_node_migrate_sessions.c - what the node does with a mailbox that a migration
 * holds (DESIGN.md §6): the deliverer queues mail for a FROZEN mailbox for this node
 * instead of storing it, and the queue's hand-back of such mail fails temporarily (4xx,
 * never a bounce) until the mailbox is released; IMAP sessions of the user (selected or
 * idle) get "* BYE Mailbox is being moved to another server" when the mailbox freezes,
 * and a login meanwhile is refused with NO [UNAVAILABLE]; POP3 likewise with -ERR
 * [SYS/TEMP]. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <cmocka.h>
#include "imap.h"
#include "pop3.h"
#include "mime.h"
#include "store_test_util.h"
#include "net_test_util.h"
#include "mail_test_util.h"
#include "imap_test_util.h"

#define MSG "From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: hi\r\n\r\nHello Bob.\r\n"

static struct {
	test_store *ts;
	tern_conf conf;
	nt_server net;
	it_server srv;
	pop3_server *pop3;
	deliverer *dlv;
	unsigned port;               /* imap; pop3 is port + 1 */
	uint8_t bob_id[16];
} T;

static int group_setup(void **state)
{
	char *err = NULL;

	(void)state;
	mime_init();
	T.ts = ts_new();
	store_set_node_name(T.ts->st, "n1");
	ts_add_domain(T.ts->st);
	nt_add_user(T.ts->st, "bob", "pencil", T.bob_id);
	if (tern_conf_load_string(&T.conf, "[server]\nio_threads = 1\nhostname = mx.example.test\n"
				  "[security]\nauth_policy = none\n", 0, &err) < 0)
		fail_msg("conf: %s", err);
	it_server_new(&T.srv, T.ts->st, &T.conf, "mx.example.test", 50);
	pop3_env pe = { .st = T.ts->st, .conf = &T.conf, .hostname = "mx.example.test",
			.auth_pool = T.srv.auth_pool, .lockout = T.srv.lockout };
	T.pop3 = pop3_server_new(&pe);
	assert_non_null(T.pop3);
	T.dlv = mt_deliverer_new(T.ts->st, &T.conf, "mx.example.test");
	const tern_service_id svc[2] = { TERN_SVC_imap, TERN_SVC_pop3 };
	const tern_service_handler *h[2] = { imap_server_handler(T.srv.imap, svc[0]),
					     pop3_server_handler(T.pop3, svc[1]) };
	return nt_start(&T.net, &T.conf, T.ts->dir, "", svc, h, 2, &T.port);
}

static int group_teardown(void **state)
{
	(void)state;
	nt_stop(&T.net);
	pop3_server_free(&T.pop3);
	deliverer_free(&T.dlv);
	it_server_free(&T.srv);
	tern_conf_free(&T.conf);
	ts_free(&T.ts);
	mime_shutdown();
	return 0;
}

/* Put bob's mailbox in state s (FROZEN: peer n2, as a source at the cut-over). */
static void set_state(store_mbox_state s)
{
	uint8_t mig[16];
	store_sync_result r;
	tern_uuid_new(mig);
	assert_int_equal(store_mbox_state_set(T.ts->st, T.bob_id, s, s == STORE_MBOX_ACTIVE ? NULL : "n2",
					      s == STORE_MBOX_ACTIVE ? NULL : mig, STORE_SYNC, &r), STORE_OK);
	store_mbox_state got;
	assert_int_equal(store_mbox_state_get(T.ts->st, T.bob_id, &got, NULL), STORE_OK);
	assert_int_equal(got, s);
}

/* Queue entries holding bob as a pending recipient. */
static size_t queued_for_bob(void)
{
	Tern__QueueEntry **list = NULL;
	size_t n = 0, hits = 0;
	assert_int_equal(store_queue_list(T.ts->st, &list, &n), STORE_OK);
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < list[i]->n_rcpts; k++)
			if (strcmp(list[i]->rcpts[k]->address, "bob@example.test") == 0 &&
			    list[i]->rcpts[k]->state == TERN__QUEUE_RCPT__STATE__PENDING)
				hits++;
	store_free_list((void **)list, n);
	return hits;
}

static uint64_t bob_items(void)
{
	Tern__Mailbox *m = NULL;
	uint64_t items = 0;
	if (store_mailbox_get(T.ts->st, T.bob_id, &m) == STORE_OK) {
		items = m->items;
		store_free_record(m);
	}
	return items;
}

static deliver_result submit(const char *relayed_from)
{
	static const char *const rcpts[] = { "bob@example.test", NULL };
	deliver_message m;
	memset(&m, 0, sizeof(m));
	m.sender = "alice@example.test";
	m.data = MSG;
	m.len = strlen(MSG);
	m.helo = "client.remote.test";
	m.client_ip = relayed_from ? "" : "192.0.2.1";
	m.protocol = "ESMTP";
	m.service = relayed_from ? "Queue" : "SMTP";
	m.relayed_from = relayed_from;
	return mt_deliver(T.dlv, &m, rcpts);
}

/* A frozen mailbox takes no delivery: SMTP gets 250 and the message waits in the queue
 * for this node; the queue's hand-back (relayed from this node) is a 4xx while frozen,
 * and delivers once the mailbox is active again. */
static void test_deliver_frozen_queues(void **state)
{
	(void)state;
	uint64_t before = bob_items();
	size_t queued = queued_for_bob();

	set_state(STORE_MBOX_FROZEN);
	deliver_result r = submit(NULL);
	assert_int_equal(r.rc, STORE_OK);
	assert_true(strncmp(r.reply, "250 ", 4) == 0);
	assert_int_equal(r.delivered_local, 0);
	assert_int_equal(r.queued_node, 1);
	assert_int_equal(queued_for_bob(), queued + 1);
	assert_int_equal(bob_items(), before);

	/* the queue hands it back while still frozen: temporary, never 5xx */
	r = submit("n1");
	assert_int_not_equal(r.rc, STORE_OK);
	if (strncmp(r.reply, "450 4.2.1 ", 10) != 0)
		fail_msg("hand-back while frozen: %s", r.reply);
	assert_int_equal(bob_items(), before);

	/* a peer relaying to us while frozen: queued here as well */
	r = submit("n2");
	assert_int_equal(r.rc, STORE_OK);
	assert_int_equal(r.queued_node, 1);
	assert_int_equal(queued_for_bob(), queued + 2);

	/* released: the hand-back delivers */
	set_state(STORE_MBOX_ACTIVE);
	r = submit("n1");
	assert_int_equal(r.rc, STORE_OK);
	assert_int_equal(r.delivered_local, 1);
	assert_int_equal(bob_items(), before + 1);
}

static int dial(int which)
{
	return nt_dial(NULL, T.port + (unsigned)which, 10, 0);
}

static int imap_open(void)
{
	char line[1024];
	int fd = dial(0);
	nt_hear(fd, line, sizeof(line));
	assert_true(strncmp(line, "* OK ", 5) == 0);
	return fd;
}

/* Lines until one starting with want (returned 1) or the end of the connection (0). */
static int hear_until(int fd, const char *want)
{
	char line[1024];
	for (int i = 0; i < 100; i++) {
		nt_hear(fd, line, sizeof(line));
		if (line[0] == '\0')
			return 0;
		if (strncmp(line, want, strlen(want)) == 0)
			return 1;
	}
	return 0;
}

/* 1 when the peer closed the connection (EOF within the read timeout). */
static int closed_by_peer(int fd)
{
	char c;
	return recv(fd, &c, 1, 0) == 0;
}

/* The freeze reaches a selected session and an IDLE one (BYE, then the close); a login
 * while frozen is refused; after the release the user logs in again. */
static void test_imap_bye_on_moved(void **state)
{
	(void)state;
	set_state(STORE_MBOX_ACTIVE);
	int sel = imap_open(), idle = imap_open(), auth = imap_open();
	nt_imap_cmd(sel, "a1", "LOGIN bob pencil", "OK", NULL);
	nt_imap_cmd(sel, "a2", "SELECT INBOX", "OK", NULL);
	nt_imap_cmd(auth, "c1", "LOGIN bob pencil", "OK", NULL);
	nt_imap_cmd(idle, "b1", "LOGIN bob pencil", "OK", NULL);
	nt_imap_cmd(idle, "b2", "SELECT INBOX", "OK", NULL);
	nt_say(idle, "b3 IDLE\r\n");
	assert_true(hear_until(idle, "+ "));

	set_state(STORE_MBOX_FROZEN);
	assert_true(hear_until(sel, "* BYE Mailbox is being moved to another server"));
	assert_true(closed_by_peer(sel));
	assert_true(hear_until(idle, "* BYE Mailbox is being moved to another server"));
	assert_true(closed_by_peer(idle));
	assert_true(hear_until(auth, "* BYE Mailbox is being moved to another server"));
	assert_true(closed_by_peer(auth));
	close(sel);
	close(idle);
	close(auth);

	int fd = imap_open();
	tbuf out = TBUF_INIT;
	nt_imap_cmd(fd, "d1", "LOGIN bob pencil", "NO", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "d1 NO [UNAVAILABLE] Mailbox is being moved to another server"));
	/* the session is still usable (not authenticated) */
	set_state(STORE_MBOX_ACTIVE);
	nt_imap_cmd(fd, "d2", "LOGIN bob pencil", "OK", NULL);
	nt_imap_cmd(fd, "d3", "SELECT INBOX", "OK", NULL);
	nt_imap_cmd(fd, "d4", "LOGOUT", "OK", NULL);
	close(fd);
	tbuf_free(&out);
}

/* A POP3 connection (its greeting +OK) that sent USER bob and PASS pencil; the answer to
 * PASS into line. */
static int pop3_login(char *line, size_t n)
{
	int fd = dial(1);
	nt_hear(fd, line, n);
	assert_true(strncmp(line, "+OK", 3) == 0);
	nt_say(fd, "USER bob\r\n");
	nt_hear(fd, line, n);
	nt_say(fd, "PASS pencil\r\n");
	nt_hear(fd, line, n);
	return fd;
}

/* POP3: a frozen maildrop refuses the login; a session in TRANSACTION is closed. */
static void test_pop3_moved(void **state)
{
	char line[1024];
	(void)state;
	set_state(STORE_MBOX_ACTIVE);
	int fd = pop3_login(line, sizeof(line));
	if (strncmp(line, "+OK", 3) != 0)
		fail_msg("POP3 login: %s", line);
	set_state(STORE_MBOX_FROZEN);
	assert_true(hear_until(fd, "-ERR [SYS/TEMP] Mailbox is being moved to another server"));
	assert_true(closed_by_peer(fd));
	close(fd);

	fd = pop3_login(line, sizeof(line));
	if (strncmp(line, "-ERR [SYS/TEMP] Mailbox is being moved", 38) != 0)
		fail_msg("POP3 login while frozen: %s", line);
	set_state(STORE_MBOX_ACTIVE);
	nt_say(fd, "QUIT\r\n");
	nt_hear(fd, line, sizeof(line));
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deliver_frozen_queues),
		cmocka_unit_test(test_imap_bye_on_moved),
		cmocka_unit_test(test_pop3_moved),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
