/* test_node_smtp_session.c - the SMTP server over real sockets against a temporary
 * store and the real deliverer: greeting and EHLO, a pipelined transaction that ends in
 * "250 ... queued as", unknown recipients, relay refusal from an Internet address
 * (127.0.0.2) and relay after AUTH PLAIN, submission's 530, SIZE refusal, over-long
 * lines and the failed-command limit. */
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
#include "smtp.h"
#include "store_test_util.h"

static struct {
	test_store *ts;
	tern_conf conf;
	tern_server *srv;
	tern_pool *auth_pool;
	auth_lockout *lockout;
	deliverer *dlv;
	smtp_server *smtp;
	pthread_t thread;
	unsigned port_smtp, port_submission;
} T;

static void *run_thread(void *arg)
{
	(void)arg;
	tern_server_run(T.srv);
	return NULL;
}

static int start_on(unsigned base)
{
	char *err = NULL;

	for (int i = 0; i < TERN_SVC_COUNT; i++)
		T.conf.services[i].enabled = 0;
	tern_service_id svcs[2] = { TERN_SVC_smtp, TERN_SVC_submission };
	T.port_smtp = base;
	T.port_submission = base + 1;
	for (int i = 0; i < 2; i++) {
		tern_service_conf *s = &T.conf.services[svcs[i]];
		s->enabled = 1;
		s->nlisten = 1;
		snprintf(s->listen[0].host, sizeof(s->listen[0].host), "%s", "");
		s->listen[0].port = (uint16_t)(base + (unsigned)i);
	}
	T.srv = tern_server_new(&T.conf, T.ts->dir, &err);
	if (T.srv == NULL)
		fail_msg("tern_server_new: %s", err);
	for (int i = 0; i < 2; i++)
		if (tern_server_listen(T.srv, svcs[i], smtp_server_handler(T.smtp, svcs[i]), &err) < 0) {
			free(err);
			tern_server_free(&T.srv);
			return 1;
		}
	return 0;
}

static int group_setup(void **state)
{
	char *err = NULL, *hash = NULL;
	Tern__User u = TERN__USER__INIT;
	Tern__ScramKeys scram = TERN__SCRAM_KEYS__INIT;
	store_sync_result r;

	(void)state;
	T.ts = ts_new();
	ts_add_domain(T.ts->st);
	assert_int_equal(auth_password_hash("pencil", &hash, &scram), 0);
	u.name = (char *)"bob";
	u.domain = (char *)"example.test";
	u.enabled = 1;
	u.password_hash = hash;
	u.scram = &scram;
	assert_int_equal(store_user_add(T.ts->st, &u, STORE_SYNC, &r), STORE_OK);
	free(hash);
	auth_scram_clear(&scram);
	if (tern_conf_load_string(&T.conf, "[server]\nio_threads = 1\nhostname = mx.example.test\n"
				  "[smtpd]\nmax_message_kb = 64\n", 0, &err) < 0)
		fail_msg("conf: %s", err);
	T.auth_pool = tern_pool_new("auth", 2, 64);
	T.lockout = auth_lockout_new(5, 600);
	deliver_env denv = { T.ts->st, &T.conf, "mx.example.test", NULL };
	T.dlv = deliverer_new(&denv);
	smtp_env env = { .st = T.ts->st, .conf = &T.conf, .hostname = "mx.example.test",
			 .auth_pool = T.auth_pool, .lockout = T.lockout, .deliverer = T.dlv };
	T.smtp = smtp_server_new(&env);
	assert_non_null(T.smtp);
	struct timeval tv;
	gettimeofday(&tv, NULL);
	unsigned base = 30000 + (unsigned)(tv.tv_usec % 20000);
	int rc = 1;
	for (int i = 0; i < 20 && rc == 1; i++)
		rc = start_on(base + 2 * (unsigned)i);
	assert_int_equal(rc, 0);
	return pthread_create(&T.thread, NULL, run_thread, NULL) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	tern_server_stop(T.srv);
	pthread_join(T.thread, NULL);
	tern_server_free(&T.srv);
	smtp_server_free(&T.smtp);
	tern_pool_free(&T.auth_pool);
	deliverer_free(&T.dlv);
	auth_lockout_free(&T.lockout);
	tern_conf_free(&T.conf);
	ts_free(&T.ts);
	return 0;
}

/* Connect from `from` (127.0.0.1 is a "Local client", 127.0.0.2 plays the Internet). */
static int dial(const char *from, unsigned port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct timeval tv = { 10, 0 };

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	inet_pton(AF_INET, from, &a.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	a.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void say(int fd, const char *s)
{
	size_t n = strlen(s);
	assert_int_equal(send(fd, s, n, 0), (ssize_t)n);
}

/* One reply line (CRLF dropped); "" at EOF. */
static void hear(int fd, char *buf, size_t n)
{
	size_t len = 0;
	while (len + 1 < n) {
		ssize_t r = recv(fd, buf + len, 1, 0);
		if (r <= 0)
			break;
		if (buf[len] == '\n') {
			if (len > 0 && buf[len - 1] == '\r')
				len--;
			break;
		}
		len++;
	}
	buf[len] = '\0';
}

/* Expect a reply line starting with want. */
static void expect(int fd, const char *want)
{
	char line[1024];
	hear(fd, line, sizeof(line));
	if (strncmp(line, want, strlen(want)) != 0)
		fail_msg("got \"%s\", want \"%s...\"", line, want);
}

/* Read an EHLO reply; returns its lines joined with '\n'. */
static void ehlo(int fd, tbuf *out)
{
	char line[1024];
	say(fd, "EHLO client.example\r\n");
	do {
		hear(fd, line, sizeof(line));
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
	say(fd, "VRFY bob@example.test\r\nNOOP\r\nHELP\r\n");
	expect(fd, "252 2.5.0");
	expect(fd, "250 2.0.0 Ok");
	expect(fd, "214-");
	expect(fd, "214 ");
	say(fd, "QUIT\r\n");
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
	say(fd, "MAIL FROM:<alice@remote.example> BODY=8BITMIME\r\nRCPT TO:<bob@example.test> NOTIFY=FAILURE\r\n"
		"RCPT TO:<nobody@example.test>\r\nRCPT TO:<@a.example:bob@example.test>\r\nDATA\r\n");
	expect(fd, "250 2.1.0");
	expect(fd, "250 2.1.5");
	expect(fd, "550 5.1.1");
	expect(fd, "550 5.7.1");
	expect(fd, "354 ");
	say(fd, "Subject: test\r\n\r\nHello\r\n..dot\r\n.\r\nNOOP\r\n");
	expect(fd, "250 2.0.0 Ok: queued as ");
	expect(fd, "250 2.0.0 Ok");
	/* the message is in bob's INBOX, dot-unstuffed */
	Tern__User *u = NULL;
	assert_int_equal(store_user_find(T.ts->st, "bob@example.test", &u), STORE_OK);
	Tern__Folder *f = NULL;
	assert_int_equal(store_folder_find(T.ts->st, u->id.data, "INBOX", &f), STORE_OK);
	assert_int_equal(f->messages, 1);
	store_free_record(f);
	store_free_record(u);
	/* SIZE over the limit, and a DATA over the limit */
	say(fd, "MAIL FROM:<a@remote.example> SIZE=100000\r\n");
	expect(fd, "552 5.3.4");
	say(fd, "RSET\r\n");
	expect(fd, "250 ");
	say(fd, "QUIT\r\n");
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
	say(fd, "MAIL FROM:<spam@remote.example>\r\nRCPT TO:<victim@elsewhere.example>\r\n");
	expect(fd, "250 2.1.0");
	expect(fd, "554 5.7.1");
	say(fd, "RCPT TO:<victim%elsewhere.example@example.test>\r\n");
	expect(fd, "550 5.7.1");
	say(fd, "RSET\r\n");
	expect(fd, "250 ");
	/* AUTH PLAIN with an initial response: "\0bob\0pencil" */
	say(fd, "AUTH PLAIN AGJvYgBwZW5jaWw=\r\n");
	expect(fd, "235 2.7.0");
	say(fd, "MAIL FROM:<bob@example.test>\r\nRCPT TO:<friend@elsewhere.example>\r\n");
	expect(fd, "250 2.1.0");
	expect(fd, "250 2.1.5");
	say(fd, "QUIT\r\n");
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
	say(fd, "MAIL FROM:<bob@example.test>\r\n");
	expect(fd, "530 5.7.0 Authentication required");
	say(fd, "AUTH LOGIN\r\n");
	expect(fd, "334 VXNlcm5hbWU6");
	say(fd, "Ym9i\r\n");
	expect(fd, "334 UGFzc3dvcmQ6");
	say(fd, "d3Jvbmc=\r\n");          /* "wrong" */
	expect(fd, "535 5.7.8");
	close(fd);
	tbuf_free(&caps);
}

static void test_bad_input(void **state)
{
	char big[3000];
	(void)state;
	int fd = dial("127.0.0.2", T.port_smtp);
	expect(fd, "220 ");
	memset(big, 'A', sizeof(big) - 3);
	memcpy(big + sizeof(big) - 3, "\r\n", 3);
	say(fd, big);
	expect(fd, "500 5.5.2 Line too long");
	say(fd, "MAIL FROM:<a@b.example>\r\n");
	expect(fd, "503 5.5.1");
	say(fd, "BOGUS\r\n");
	expect(fd, "500 5.5.1");
	say(fd, "RCPT TO:<x@y.example>\r\n");
	expect(fd, "503 ");
	expect(fd, "421 4.7.0");
	char line[256];
	hear(fd, line, sizeof(line));
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
		cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
