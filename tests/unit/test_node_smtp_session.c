/* test_node_smtp_session.c - the SMTP server over real sockets against a temporary
 * store and the real deliverer: greeting and EHLO, a pipelined transaction that ends in
 * "250 ... queued as", unknown recipients, relay refusal from an Internet address
 * (127.0.0.2) and relay after AUTH PLAIN, submission's 530, SIZE refusal, over-long
 * lines and the failed-command limit; a cluster peer (node login) relaying mail of the
 * domain: final recipients homed here or elsewhere, no relay for others, wrong node
 * credentials refused. */
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
#include <openssl/sha.h>
#include "auth_sasl.h"
#include "smtp.h"
#include "store_test_util.h"
#include "net_test_util.h"

static struct {
	nt_fixture f;
	nt_server net;
	deliverer *dlv;
	smtp_server *smtp;
	unsigned port_smtp, port_submission;
} T;

/* Node "c" of the domain (credential 32 x 0x22) and dora, a user homed on c. */
static void add_peer_node(store *st)
{
	Tern__Node n = TERN__NODE__INIT;
	Tern__User u = TERN__USER__INIT;
	uint8_t key[32] = { 5 }, cred[32], hash[SHA256_DIGEST_LENGTH];

	memset(cred, 0x22, sizeof(cred));
	SHA256(cred, sizeof(cred), hash);
	n.name = (char *)"c";
	n.curve_public.data = key;
	n.curve_public.len = sizeof(key);
	n.address = (char *)"127.0.0.1";
	n.credential_hash.data = hash;
	n.credential_hash.len = sizeof(hash);
	assert_int_equal(store_node_put(st, &n, STORE_SYNC, NULL), STORE_OK);
	u.name = (char *)"dora";
	u.domain = (char *)"example.test";
	u.enabled = 1;
	u.home = (char *)"c";
	assert_int_equal(store_user_add(st, &u, STORE_SYNC, NULL), STORE_OK);
}

static int group_setup(void **state)
{
	(void)state;
	nt_fixture_init(&T.f, "[server]\nio_threads = 1\nhostname = mx.example.test\n"
			"[smtpd]\nmax_message_kb = 64\n");
	store_set_node_name(T.f.ts->st, "a");
	ts_add_domain(T.f.ts->st);
	nt_add_user(T.f.ts->st, "bob", "pencil", NULL);
	add_peer_node(T.f.ts->st);
	deliver_env denv = { T.f.ts->st, &T.f.conf, "mx.example.test", NULL };
	T.dlv = deliverer_new(&denv);
	smtp_env env = { .st = T.f.ts->st, .conf = &T.f.conf, .hostname = "mx.example.test",
			 .auth_pool = T.f.auth_pool, .lockout = T.f.lockout, .deliverer = T.dlv };
	T.smtp = smtp_server_new(&env);
	assert_non_null(T.smtp);
	const tern_service_id svcs[2] = { TERN_SVC_smtp, TERN_SVC_submission };
	const tern_service_handler *h[2] = { smtp_server_handler(T.smtp, svcs[0]),
					     smtp_server_handler(T.smtp, svcs[1]) };
	int rc = nt_start(&T.net, &T.f.conf, T.f.ts->dir, "", svcs, h, 2, &T.port_smtp);
	T.port_submission = T.port_smtp + 1;
	return rc;
}

static int group_teardown(void **state)
{
	(void)state;
	nt_stop(&T.net);
	smtp_server_free(&T.smtp);
	tern_pool_free(&T.f.auth_pool);
	deliverer_free(&T.dlv);
	nt_fixture_free(&T.f);
	return 0;
}

/* Connect from `from` (127.0.0.1 is a "Local client", 127.0.0.2 plays the Internet). */
static int dial(const char *from, unsigned port)
{
	return nt_dial(from, port, 10, 0);
}

/* Expect a reply line starting with want. */
static void expect(int fd, const char *want)
{
	char line[1024];
	nt_hear(fd, line, sizeof(line));
	if (strncmp(line, want, strlen(want)) != 0)
		fail_msg("got \"%s\", want \"%s...\"", line, want);
}

/* Read an EHLO reply; returns its lines joined with '\n'. */
static void ehlo(int fd, tbuf *out)
{
	char line[1024];
	nt_say(fd, "EHLO client.example\r\n");
	do {
		nt_hear(fd, line, sizeof(line));
		tbuf_appendf(out, "%s\n", line);
	} while (strncmp(line, "250-", 4) == 0);
	assert_memory_equal(line, "250 ", 4);
}

static void test_greeting_and_ehlo(void **state)
{
	tbuf caps = TBUF_INIT;
	(void)state;
	int fd = dial("127.0.0.1", T.port_smtp);
	expect(fd, "220 mx.example.test ESMTP");
	ehlo(fd, &caps);
	const char *c = tbuf_cstr(&caps);
	assert_non_null(strstr(c, "250-mx.example.test\n"));
	assert_non_null(strstr(c, "250-PIPELINING\n"));
	assert_non_null(strstr(c, "250-SIZE 65536\n"));
	assert_non_null(strstr(c, "250-8BITMIME\n"));
	assert_non_null(strstr(c, "250-ENHANCEDSTATUSCODES\n"));
	assert_non_null(strstr(c, "250-DSN\n"));
	assert_non_null(strstr(c, "250-STARTTLS\n"));
	assert_non_null(strstr(c, "250-AUTH PLAIN LOGIN SCRAM-SHA-256\n"));
	nt_say(fd, "VRFY bob@example.test\r\nNOOP\r\nHELP\r\n");
	expect(fd, "252 2.5.0");
	expect(fd, "250 2.0.0 Ok");
	expect(fd, "214-");
	expect(fd, "214 ");
	nt_say(fd, "QUIT\r\n");
	expect(fd, "221 2.0.0");
	close(fd);
	tbuf_free(&caps);
}

static void test_pipelined_delivery(void **state)
{
	tbuf caps = TBUF_INIT;
	(void)state;
	int fd = dial("127.0.0.1", T.port_smtp);
	expect(fd, "220 ");
	ehlo(fd, &caps);
	nt_say(fd, "MAIL FROM:<alice@remote.example> BODY=8BITMIME\r\nRCPT TO:<bob@example.test> NOTIFY=FAILURE\r\n"
		"RCPT TO:<nobody@example.test>\r\nRCPT TO:<@a.example:bob@example.test>\r\nDATA\r\n");
	expect(fd, "250 2.1.0");
	expect(fd, "250 2.1.5");
	expect(fd, "550 5.1.1");
	expect(fd, "550 5.7.1");
	expect(fd, "354 ");
	nt_say(fd, "Subject: test\r\n\r\nHello\r\n..dot\r\n.\r\nNOOP\r\n");
	expect(fd, "250 2.0.0 Ok: queued as ");
	expect(fd, "250 2.0.0 Ok");
	/* the message is in bob's INBOX, dot-unstuffed */
	Tern__User *u = NULL;
	assert_int_equal(store_user_find(T.f.ts->st, "bob@example.test", &u), STORE_OK);
	Tern__Folder *f = NULL;
	assert_int_equal(store_folder_find(T.f.ts->st, u->id.data, "INBOX", &f), STORE_OK);
	assert_int_equal(f->messages, 1);
	store_free_record(f);
	store_free_record(u);
	/* SIZE over the limit, and a DATA over the limit */
	nt_say(fd, "MAIL FROM:<a@remote.example> SIZE=100000\r\n");
	expect(fd, "552 5.3.4");
	nt_say(fd, "RSET\r\n");
	expect(fd, "250 ");
	nt_say(fd, "QUIT\r\n");
	expect(fd, "221 ");
	close(fd);
	tbuf_free(&caps);
}

static void test_relay_control(void **state)
{
	tbuf caps = TBUF_INIT;
	(void)state;
	int fd = dial("127.0.0.2", T.port_smtp);
	expect(fd, "220 ");
	ehlo(fd, &caps);
	nt_say(fd, "MAIL FROM:<spam@remote.example>\r\nRCPT TO:<victim@elsewhere.example>\r\n");
	expect(fd, "250 2.1.0");
	expect(fd, "554 5.7.1");
	nt_say(fd, "RCPT TO:<victim%elsewhere.example@example.test>\r\n");
	expect(fd, "550 5.7.1");
	nt_say(fd, "RSET\r\n");
	expect(fd, "250 ");
	/* AUTH PLAIN with an initial response: "\0bob\0pencil" */
	nt_say(fd, "AUTH PLAIN AGJvYgBwZW5jaWw=\r\n");
	expect(fd, "235 2.7.0");
	nt_say(fd, "MAIL FROM:<bob@example.test>\r\nRCPT TO:<friend@elsewhere.example>\r\n");
	expect(fd, "250 2.1.0");
	expect(fd, "250 2.1.5");
	nt_say(fd, "QUIT\r\n");
	expect(fd, "221 ");
	close(fd);
	tbuf_free(&caps);
}

static void test_submission_and_auth_failures(void **state)
{
	tbuf caps = TBUF_INIT;
	(void)state;
	int fd = dial("127.0.0.2", T.port_submission);
	expect(fd, "220 ");
	ehlo(fd, &caps);
	nt_say(fd, "MAIL FROM:<bob@example.test>\r\n");
	expect(fd, "530 5.7.0 Authentication required");
	nt_say(fd, "AUTH LOGIN\r\n");
	expect(fd, "334 VXNlcm5hbWU6");
	nt_say(fd, "Ym9i\r\n");
	expect(fd, "334 UGFzc3dvcmQ6");
	nt_say(fd, "d3Jvbmc=\r\n");          /* "wrong" */
	expect(fd, "535 5.7.8");
	close(fd);
	tbuf_free(&caps);
}

/* Messages in bob's INBOX. */
static uint32_t bob_messages(void)
{
	Tern__User *u = NULL;
	Tern__Folder *f = NULL;
	uint32_t n;

	assert_int_equal(store_user_find(T.f.ts->st, "bob@example.test", &u), STORE_OK);
	assert_int_equal(store_folder_find(T.f.ts->st, u->id.data, "INBOX", &f), STORE_OK);
	n = f->messages;
	store_free_record(f);
	store_free_record(u);
	return n;
}

/* Node c relays mail of the domain: "\0node/c\0" + hex(32 x 0x22) as AUTH PLAIN. */
static void test_cluster_peer(void **state)
{
	tbuf caps = TBUF_INIT, raw = TBUF_INIT, b64 = TBUF_INIT;
	uint32_t before = bob_messages();
	Tern__QueueEntry **list = NULL;
	size_t nq = 0;

	(void)state;
	tbuf_append_str(&raw, "Xnode/cX");
	raw.data[0] = raw.data[7] = '\0';
	for (int i = 0; i < 32; i++)
		tbuf_append_str(&raw, "22");
	auth_b64_encode(raw.data, raw.len, &b64);
	int fd = dial("127.0.0.2", T.port_submission);
	expect(fd, "220 ");
	ehlo(fd, &caps);
	/* a wrong credential is refused */
	nt_say(fd, "AUTH PLAIN AG5vZGUvYwAwMDAw\r\n");     /* "\0node/c\00000" */
	expect(fd, "535 5.7.8");
	nt_say(fd, "AUTH PLAIN ");
	nt_say(fd, tbuf_cstr(&b64));
	nt_say(fd, "\r\n");
	expect(fd, "235 2.7.0");
	nt_say(fd, "MAIL FROM:<rob@remote.example>\r\n");
	expect(fd, "250 2.1.0");
	nt_say(fd, "RCPT TO:<bob@example.test>\r\n");
	expect(fd, "250 2.1.5");
	nt_say(fd, "RCPT TO:<dora@example.test>\r\n");      /* homed on c: queued for c again */
	expect(fd, "250 2.1.5");
	nt_say(fd, "RCPT TO:<friend@elsewhere.example>\r\n");
	expect(fd, "550 5.7.1");
	nt_say(fd, "RCPT TO:<nobody@example.test>\r\n");
	expect(fd, "550 5.1.1");
	nt_say(fd, "DATA\r\n");
	expect(fd, "354 ");
	nt_say(fd, "Subject: relayed\r\n\r\nHello from c\r\n.\r\n");
	expect(fd, "250 2.0.0 Ok: queued as ");
	nt_say(fd, "QUIT\r\n");
	expect(fd, "221 ");
	close(fd);
	assert_int_equal(bob_messages(), before + 1);
	assert_int_equal(store_queue_list(T.f.ts->st, &list, &nq), STORE_OK);
	int found = 0;
	for (size_t i = 0; i < nq; i++)
		for (size_t j = 0; j < list[i]->n_rcpts; j++)
			found |= strcmp(list[i]->rcpts[j]->address, "dora@example.test") == 0;
	assert_true(found);
	store_free_list((void **)list, nq);
	tbuf_free(&caps);
	tbuf_free(&raw);
	tbuf_free(&b64);
}

static void test_bad_input(void **state)
{
	char big[3000];
	(void)state;
	int fd = dial("127.0.0.2", T.port_smtp);
	expect(fd, "220 ");
	memset(big, 'A', sizeof(big) - 3);
	memcpy(big + sizeof(big) - 3, "\r\n", 3);
	nt_say(fd, big);
	expect(fd, "500 5.5.2 Line too long");
	nt_say(fd, "MAIL FROM:<a@b.example>\r\n");
	expect(fd, "503 5.5.1");
	nt_say(fd, "BOGUS\r\n");
	expect(fd, "500 5.5.1");
	nt_say(fd, "RCPT TO:<x@y.example>\r\n");
	expect(fd, "503 ");
	expect(fd, "421 4.7.0");
	char line[256];
	nt_hear(fd, line, sizeof(line));
	assert_string_equal(line, "");            /* closed */
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting_and_ehlo),
		cmocka_unit_test(test_pipelined_delivery),
		cmocka_unit_test(test_relay_control),
		cmocka_unit_test(test_submission_and_auth_failures),
		cmocka_unit_test(test_cluster_peer),
		cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
