/* test_node_pop3.c - the POP3 server over real sockets against a temporary store:
 * greeting and CAPA, USER/PASS good and bad, STAT, LIST, UIDL, TOP, RETR byte-exact
 * with dot-stuffing, a large message streamed in chunks, DELE+RSET, DELE+QUIT seen by
 * the next session, AUTH PLAIN (initial response and continuation), the in-use lock,
 * a message expunged meanwhile by another client, bad input, the failed-command limit,
 * the lockout, the POP3-before-SMTP hook - plus the framer, parser and dot-stuffer. */
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
#include <openssl/ssl.h>
#include "pop3_int.h"
#include "store_test_util.h"
#include "net_test_util.h"

#define MSG1_PREFIX "Return-Path: <ann@example.test>\r\n"
#define MSG1_BODY "Subject: one\r\nFrom: ann@example.test\r\n\r\nHello\r\n.hidden dot\r\n..two\r\nend\r\n"
#define MSG2_BODY "Subject: two\r\n\r\nline 1\r\nline 2\r\nline 3\r\n"
#define MSG3_BODY "Subject: three\r\n\r\nno final newline"

static struct {
	nt_fixture f;
	nt_server net;
	pop3_server *pop3;
	unsigned port;
	uint8_t bob[16], ann[16], big[16];
	uint32_t uidvalidity, bob_uv, uids[3], ann_uids[2];
	tbuf big_body;
	int hook_calls;
	char hook_ip[64];
} T;

static void hook(const struct sockaddr *addr, void *ctx)
{
	(void)ctx;
	const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
	inet_ntop(AF_INET, &in->sin_addr, T.hook_ip, sizeof(T.hook_ip));
	__atomic_add_fetch(&T.hook_calls, 1, __ATOMIC_SEQ_CST);
}

static uint32_t append(const uint8_t user[16], const char *prefix, const void *body, size_t len)
{
	store_append a = { .user = user, .header_prefix = prefix,
			   .header_prefix_len = prefix ? strlen(prefix) : 0, .body = body, .body_len = len };
	store_sync_result r;

	assert_int_equal(store_msg_append(T.f.ts->st, &a, STORE_SYNC, &r), STORE_OK);
	T.uidvalidity = r.res.uidvalidity;
	return r.res.uid;
}

/* A body of about 1.5 MB whose lines often start with '.', crossing chunk boundaries. */
static void make_big(tbuf *b)
{
	tbuf_append_str(b, "Subject: big\r\n\r\n");
	for (unsigned i = 0; b->len < 1500000; i++)
		tbuf_appendf(b, "%s%u %.*s\r\n", i % 3 == 0 ? "." : "", i, (int)(i % 97), 
			     "................................................................"
			     "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
}

static int group_setup(void **state)
{
	(void)state;
	nt_fixture_init(&T.f, "[server]\nio_threads = 1\nhostname = pop.example.test\n");
	ts_add_domain(T.f.ts->st);
	nt_add_user(T.f.ts->st, "bob", "pencil", T.bob);
	nt_add_user(T.f.ts->st, "ann", "pencil", T.ann);
	nt_add_user(T.f.ts->st, "big", "pencil", T.big);
	nt_add_user(T.f.ts->st, "eve", "pencil", (uint8_t[16]){ 0 });
	T.uids[0] = append(T.bob, MSG1_PREFIX, MSG1_BODY, strlen(MSG1_BODY));
	T.uids[1] = append(T.bob, NULL, MSG2_BODY, strlen(MSG2_BODY));
	T.uids[2] = append(T.bob, NULL, MSG3_BODY, strlen(MSG3_BODY));
	T.bob_uv = T.uidvalidity;
	T.ann_uids[0] = append(T.ann, NULL, MSG2_BODY, strlen(MSG2_BODY));
	T.ann_uids[1] = append(T.ann, NULL, MSG3_BODY, strlen(MSG3_BODY));
	make_big(&T.big_body);
	append(T.big, NULL, T.big_body.data, T.big_body.len);
	pop3_env env = { .st = T.f.ts->st, .conf = &T.f.conf, .hostname = "pop.example.test",
			 .auth_pool = T.f.auth_pool, .lockout = T.f.lockout, .pop3_login = hook };
	T.pop3 = pop3_server_new(&env);
	assert_non_null(T.pop3);
	const tern_service_id svc = TERN_SVC_pop3;
	const tern_service_handler *h = pop3_server_handler(T.pop3, svc);
	return nt_start(&T.net, &T.f.conf, T.f.ts->dir, "127.0.0.1", &svc, &h, 1, &T.port);
}

static int group_teardown(void **state)
{
	(void)state;
	nt_stop(&T.net);
	pop3_server_free(&T.pop3);
	tbuf_free(&T.big_body);
	nt_fixture_free(&T.f);
	return 0;
}

/* ---- a small buffered client ---- */

typedef struct client {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;                      /* after STLS */
	char buf[65536];
	size_t off, len;
} client;

/* rcvbuf != 0: a small receive buffer, so that a client that does not read pushes
 * back on the server at once. */
static client *dial_rcvbuf(int rcvbuf)
{
	client *c = calloc(1, sizeof(*c));

	c->fd = nt_dial(NULL, T.port, 20, rcvbuf);
	return c;
}

static client *dial(void)
{
	return dial_rcvbuf(0);
}

static void hangup(client **cp)
{
	if ((*cp)->ssl != NULL)
		SSL_free((*cp)->ssl);
	if ((*cp)->ctx != NULL)
		SSL_CTX_free((*cp)->ctx);
	close((*cp)->fd);
	free(*cp);
	*cp = NULL;
}

static void say(client *c, const char *s)
{
	size_t n = strlen(s);
	if (c->ssl != NULL)
		assert_int_equal(SSL_write(c->ssl, s, (int)n), (int)n);
	else
		assert_int_equal(send(c->fd, s, n, 0), (ssize_t)n);
}

/* TLS as a client on the connection (the server's certificate is self-signed). */
static void start_tls(client *c)
{
	assert_int_equal(c->off, c->len);       /* nothing plaintext left unread */
	c->ctx = SSL_CTX_new(TLS_client_method());
	c->ssl = SSL_new(c->ctx);
	SSL_set_fd(c->ssl, c->fd);
	assert_int_equal(SSL_connect(c->ssl), 1);
}

/* One byte, -1 at EOF or timeout. */
static int getbyte(client *c)
{
	if (c->off == c->len) {
		ssize_t r = c->ssl != NULL ? SSL_read(c->ssl, c->buf, (int)sizeof(c->buf))
					   : recv(c->fd, c->buf, sizeof(c->buf), 0);
		if (r <= 0)
			return -1;
		c->off = 0;
		c->len = (size_t)r;
	}
	return (unsigned char)c->buf[c->off++];
}

/* One reply line with its CRLF, appended to out; 0 at EOF. */
static int line_raw(client *c, tbuf *out)
{
	int ch, any = 0;
	while ((ch = getbyte(c)) >= 0) {
		any = 1;
		tbuf_append_char(out, (char)ch);
		if (ch == '\n')
			break;
	}
	return any;
}

/* One reply line without CRLF; "" at EOF. */
static void hear(client *c, char *buf, size_t n)
{
	tbuf b = TBUF_INIT;
	line_raw(c, &b);
	size_t len = b.len;
	while (len > 0 && (b.data[len - 1] == '\n' || b.data[len - 1] == '\r'))
		len--;
	snprintf(buf, n, "%.*s", (int)len, tbuf_cstr(&b));
	tbuf_free(&b);
}

static void expect(client *c, const char *want)
{
	char line[1024];
	hear(c, line, sizeof(line));
	if (strncmp(line, want, strlen(want)) != 0)
		fail_msg("got \"%s\", want \"%s...\"", line, want);
}

/* The data lines of a multi-line response, as sent (dot-stuffed), up to and without
 * the final ".\r\n". */
static void multiline(client *c, tbuf *out)
{
	for (;;) {
		size_t at = out->len;
		if (!line_raw(c, out))
			fail_msg("EOF inside a multi-line response");
		if (out->len - at == 3 && memcmp(out->data + at, ".\r\n", 3) == 0) {
			tbuf_truncate(out, at);
			return;
		}
	}
}

static client *login_rcvbuf(const char *user, int rcvbuf)
{
	char cmd[128];
	client *c = dial_rcvbuf(rcvbuf);
	expect(c, "+OK pop.example.test POP3 server ready");
	snprintf(cmd, sizeof(cmd), "USER %s\r\nPASS pencil\r\n", user);
	say(c, cmd);
	expect(c, "+OK");
	expect(c, "+OK Logged in");
	return c;
}

static client *login(const char *user)
{
	return login_rcvbuf(user, 0);
}

static void quit(client **cp, const char *want)
{
	say(*cp, "QUIT\r\n");
	expect(*cp, want);
	char line[64];
	hear(*cp, line, sizeof(line));
	assert_string_equal(line, "");     /* closed */
	hangup(cp);
}

/* ---- sessions ---- */

static void test_greeting_and_capa(void **state)
{
	tbuf caps = TBUF_INIT;
	(void)state;
	client *c = dial();
	expect(c, "+OK pop.example.test POP3 server ready");
	say(c, "CAPA\r\n");
	expect(c, "+OK");
	multiline(c, &caps);
	const char *s = tbuf_cstr(&caps);
	const char *want[] = { "TOP\r\n", "UIDL\r\n", "USER\r\n", "RESP-CODES\r\n", "AUTH-RESP-CODE\r\n",
			       "PIPELINING\r\n", "STLS\r\n", "SASL PLAIN LOGIN SCRAM-SHA-256\r\n",
			       "IMPLEMENTATION Tern\r\n" };
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (strstr(s, want[i]) == NULL)
			fail_msg("CAPA lacks %s: %s", want[i], s);
	assert_null(strstr(s, "APOP"));
	tbuf_free(&caps);
	/* wrong state, unknown verb, syntax */
	say(c, "STAT\r\nFROB\r\nPASS x\r\nUSER\r\n");
	expect(c, "-ERR Command not valid in this state");
	expect(c, "-ERR Unknown command");
	expect(c, "-ERR Send USER first");
	expect(c, "-ERR Syntax: USER name");
	quit(&c, "+OK pop.example.test POP3 server signing off");
}

static void test_user_pass(void **state)
{
	(void)state;
	int calls = __atomic_load_n(&T.hook_calls, __ATOMIC_SEQ_CST);
	client *c = dial();
	expect(c, "+OK");
	say(c, "USER bob\r\nPASS wrong\r\n");
	expect(c, "+OK");
	expect(c, "-ERR [AUTH] Invalid login or password");
	say(c, "PASS pencil\r\n");
	expect(c, "-ERR Send USER first");
	say(c, "USER bob@example.test\r\nPASS pencil\r\n");
	expect(c, "+OK");
	char line[256], want[256];
	size_t total = strlen(MSG1_PREFIX) + strlen(MSG1_BODY) + strlen(MSG2_BODY) + strlen(MSG3_BODY);
	snprintf(want, sizeof(want), "+OK Logged in, 3 messages (%zu octets)", total);
	hear(c, line, sizeof(line));
	assert_string_equal(line, want);
	assert_int_equal(__atomic_load_n(&T.hook_calls, __ATOMIC_SEQ_CST), calls + 1);
	assert_string_equal(T.hook_ip, "127.0.0.1");
	say(c, "USER bob\r\n");
	expect(c, "-ERR Command not valid in this state");
	quit(&c, "+OK pop.example.test POP3 server signing off (0 messages deleted)");
}

static void test_stat_list_uidl(void **state)
{
	char want[256], line[256];
	tbuf b = TBUF_INIT, exp = TBUF_INIT;
	size_t s1 = strlen(MSG1_PREFIX) + strlen(MSG1_BODY), s2 = strlen(MSG2_BODY), s3 = strlen(MSG3_BODY);

	(void)state;
	client *c = login("bob");
	say(c, "STAT\r\n");
	snprintf(want, sizeof(want), "+OK 3 %zu", s1 + s2 + s3);
	hear(c, line, sizeof(line));
	assert_string_equal(line, want);
	/* pipelined */
	say(c, "LIST\r\nLIST 2\r\nUIDL\r\nUIDL 3\r\nLIST 4\r\nNOOP\r\n");
	expect(c, "+OK 3 messages");
	multiline(c, &b);
	tbuf_appendf(&exp, "1 %zu\r\n2 %zu\r\n3 %zu\r\n", s1, s2, s3);
	assert_string_equal(tbuf_cstr(&b), tbuf_cstr(&exp));
	snprintf(want, sizeof(want), "+OK 2 %zu", s2);
	hear(c, line, sizeof(line));
	assert_string_equal(line, want);
	expect(c, "+OK");
	tbuf_reset(&b);
	tbuf_reset(&exp);
	multiline(c, &b);
	for (int i = 0; i < 3; i++)
		tbuf_appendf(&exp, "%d %08x%08x\r\n", i + 1, T.bob_uv, T.uids[i]);
	assert_string_equal(tbuf_cstr(&b), tbuf_cstr(&exp));
	snprintf(want, sizeof(want), "+OK 3 %08x%08x", T.bob_uv, T.uids[2]);
	hear(c, line, sizeof(line));
	assert_string_equal(line, want);
	expect(c, "-ERR No such message");
	expect(c, "+OK");
	tbuf_free(&b);
	tbuf_free(&exp);
	quit(&c, "+OK");
}

static void test_retr_top(void **state)
{
	tbuf b = TBUF_INIT;
	char want[64], line[256];

	(void)state;
	client *c = login("bob");
	say(c, "RETR 1\r\n");
	snprintf(want, sizeof(want), "+OK %zu octets", strlen(MSG1_PREFIX) + strlen(MSG1_BODY));
	hear(c, line, sizeof(line));
	assert_string_equal(line, want);
	multiline(c, &b);
	assert_string_equal(tbuf_cstr(&b), MSG1_PREFIX "Subject: one\r\nFrom: ann@example.test\r\n\r\n"
					   "Hello\r\n..hidden dot\r\n...two\r\nend\r\n");
	/* the last line gets its CRLF before the terminator */
	say(c, "RETR 3\r\n");
	expect(c, "+OK");
	tbuf_reset(&b);
	multiline(c, &b);
	assert_string_equal(tbuf_cstr(&b), MSG3_BODY "\r\n");
	/* TOP: the header, the blank line and n body lines */
	say(c, "TOP 2 2\r\nTOP 2 0\r\nTOP 1 2\r\nTOP 2 99\r\n");
	expect(c, "+OK");
	tbuf_reset(&b);
	multiline(c, &b);
	assert_string_equal(tbuf_cstr(&b), "Subject: two\r\n\r\nline 1\r\nline 2\r\n");
	expect(c, "+OK");
	tbuf_reset(&b);
	multiline(c, &b);
	assert_string_equal(tbuf_cstr(&b), "Subject: two\r\n\r\n");
	expect(c, "+OK");
	tbuf_reset(&b);
	multiline(c, &b);
	assert_string_equal(tbuf_cstr(&b), MSG1_PREFIX "Subject: one\r\nFrom: ann@example.test\r\n\r\n"
					   "Hello\r\n..hidden dot\r\n");
	expect(c, "+OK");
	tbuf_reset(&b);
	multiline(c, &b);
	assert_string_equal(tbuf_cstr(&b), MSG2_BODY);
	/* bad numbers */
	say(c, "RETR 0\r\nRETR 4\r\nRETR abc\r\nRETR\r\nTOP 1\r\nRETR 4294967296\r\n");
	expect(c, "-ERR Invalid message number");
	expect(c, "-ERR No such message");
	expect(c, "-ERR Invalid message number");
	expect(c, "-ERR Syntax: RETR msg");
	expect(c, "-ERR Syntax: TOP msg lines");
	expect(c, "-ERR Invalid message number");
	tbuf_free(&b);
	quit(&c, "+OK");
}

/* Undo the dot-stuffing of a received multi-line body. */
static void unstuff(const tbuf *in, tbuf *out)
{
	int bol = 1;
	for (size_t i = 0; i < in->len; i++) {
		if (bol && in->data[i] == '.') {
			bol = 0;
			continue;
		}
		tbuf_append_char(out, in->data[i]);
		bol = in->data[i] == '\n';
	}
}

static void test_retr_big(void **state)
{
	tbuf b = TBUF_INIT, plain = TBUF_INIT;
	char want[64], line[128];

	(void)state;
	client *c = login_rcvbuf("big", 16384);
	say(c, "RETR 1\r\nNOOP\r\n");
	/* while this client reads nothing, the I/O thread serves others */
	usleep(200000);
	client *other = login("bob");
	say(other, "STAT\r\n");
	expect(other, "+OK 3 ");
	quit(&other, "+OK");
	snprintf(want, sizeof(want), "+OK %zu octets", T.big_body.len);
	hear(c, line, sizeof(line));
	assert_string_equal(line, want);
	multiline(c, &b);
	assert_true(b.len > T.big_body.len);
	unstuff(&b, &plain);
	assert_int_equal(plain.len, T.big_body.len);
	assert_memory_equal(plain.data, T.big_body.data, plain.len);
	expect(c, "+OK");
	tbuf_free(&b);
	tbuf_free(&plain);
	quit(&c, "+OK");
	pop3_stats st;
	pop3_server_stats(T.pop3, &st);
	assert_true(st.retrieved >= 1);
}

static void test_dele_rset(void **state)
{
	char line[256];
	(void)state;
	client *c = login("bob");
	say(c, "DELE 1\r\nDELE 1\r\nRETR 1\r\nLIST 1\r\nSTAT\r\n");
	expect(c, "+OK Message 1 deleted");
	expect(c, "-ERR Message 1 already deleted");
	expect(c, "-ERR Message 1 already deleted");
	expect(c, "-ERR Message 1 already deleted");
	hear(c, line, sizeof(line));
	assert_memory_equal(line, "+OK 2 ", 6);
	say(c, "RSET\r\nSTAT\r\n");
	expect(c, "+OK Maildrop has 3 messages");
	expect(c, "+OK 3 ");
	quit(&c, "+OK pop.example.test POP3 server signing off (0 messages deleted)");
	c = login("bob");
	say(c, "STAT\r\n");
	expect(c, "+OK 3 ");
	quit(&c, "+OK");
}

static void test_in_use(void **state)
{
	(void)state;
	client *a = login("bob");
	client *b = dial();
	expect(b, "+OK");
	say(b, "USER bob\r\nPASS pencil\r\n");
	expect(b, "+OK");
	expect(b, "-ERR [IN-USE]");
	quit(&a, "+OK");
	say(b, "USER bob\r\nPASS pencil\r\n");
	expect(b, "+OK");
	expect(b, "+OK Logged in, 3 messages");
	quit(&b, "+OK");
}

static void test_auth_plain(void **state)
{
	tbuf b64 = TBUF_INIT;
	char cmd[256];
	(void)state;
	client *c = dial();
	expect(c, "+OK");
	auth_b64_encode("\0bob\0pencil", 11, &b64);
	snprintf(cmd, sizeof(cmd), "AUTH PLAIN %s\r\n", tbuf_cstr(&b64));
	say(c, cmd);
	expect(c, "+OK Logged in, 3 messages");
	quit(&c, "+OK");
	/* without an initial response, then a wrong password, then a cancel */
	c = dial();
	expect(c, "+OK");
	say(c, "AUTH PLAIN\r\n");
	expect(c, "+ ");
	tbuf_reset(&b64);
	auth_b64_encode("\0bob\0nope", 9, &b64);
	snprintf(cmd, sizeof(cmd), "%s\r\n", tbuf_cstr(&b64));
	say(c, cmd);
	expect(c, "-ERR [AUTH] Authentication failed");
	say(c, "AUTH LOGIN\r\n");
	expect(c, "+ ");
	say(c, "*\r\n");
	expect(c, "-ERR Authentication cancelled");
	say(c, "AUTH X-UNKNOWN\r\nAUTH PLAIN !!!\r\nAUTH\r\n");
	expect(c, "-ERR Unrecognized authentication type");
	expect(c, "-ERR Cannot decode response");
	expect(c, "+OK");
	tbuf m = TBUF_INIT;
	multiline(c, &m);
	assert_string_equal(tbuf_cstr(&m), "PLAIN\r\nLOGIN\r\nSCRAM-SHA-256\r\n");
	tbuf_free(&m);
	tbuf_free(&b64);
	quit(&c, "+OK");
}

/* A message expunged by another client after the snapshot: RETR says so. */
static void test_expunged_meanwhile(void **state)
{
	store_sync_result r;
	Tern__Folder *f = NULL;
	(void)state;
	client *c = login("ann");
	assert_int_equal(store_folder_find(T.f.ts->st, T.ann, "INBOX", &f), STORE_OK);
	assert_int_equal(store_msg_expunge(T.f.ts->st, T.ann, f->id.data, &T.ann_uids[0], 1, STORE_SYNC, &r),
			 STORE_OK);
	store_free_record(f);
	say(c, "RETR 1\r\nSTAT\r\nRETR 2\r\n");
	expect(c, "-ERR Message 1 no longer exists");
	expect(c, "+OK 2 ");
	expect(c, "+OK");
	tbuf b = TBUF_INIT;
	multiline(c, &b);
	assert_string_equal(tbuf_cstr(&b), MSG3_BODY "\r\n");
	tbuf_free(&b);
	quit(&c, "+OK");
}

static void test_bad_input(void **state)
{
	char big[2000];
	(void)state;
	client *c = dial();
	expect(c, "+OK");
	memset(big, 'A', sizeof(big));
	memcpy(big, "NOOP ", 5);
	big[sizeof(big) - 3] = '\r';
	big[sizeof(big) - 2] = '\n';
	big[sizeof(big) - 1] = '\0';
	say(c, big);
	expect(c, "-ERR Line too long");
	say(c, "CAPA\r\n");
	expect(c, "+OK Capability list follows");
	tbuf caps = TBUF_INIT;
	multiline(c, &caps);
	tbuf_free(&caps);
	/* a line past the framer's limit is skipped whole, then the session goes on */
	tbuf huge = TBUF_INIT;
	for (int i = 0; i < POP3_SASL_LINE_MAX * 2; i++)
		tbuf_append_char(&huge, 'x');
	tbuf_append_str(&huge, "\r\nQUIT\r\n");
	say(c, tbuf_cstr(&huge));
	tbuf_free(&huge);
	expect(c, "-ERR Line too long");
	expect(c, "+OK pop.example.test POP3 server signing off");
	hangup(&c);
	/* too many failed commands close the connection */
	c = dial();
	expect(c, "+OK");
	for (int i = 0; i < POP3_MAX_FAILED_CMDS; i++)
		say(c, "BOGUS\r\n");
	for (int i = 0; i < POP3_MAX_FAILED_CMDS; i++)
		expect(c, "-ERR Unknown command");
	expect(c, "-ERR Too many errors");
	char line[64];
	hear(c, line, sizeof(line));
	assert_string_equal(line, "");
	hangup(&c);
}

/* Five failures lock eve for this address; the right password then fails too. */
static void test_lockout(void **state)
{
	(void)state;
	client *c = dial();
	expect(c, "+OK");
	for (int i = 0; i < 5; i++) {
		say(c, "USER eve\r\nPASS bad\r\n");
		expect(c, "+OK");
		expect(c, "-ERR [AUTH] Invalid login or password");
	}
	say(c, "USER eve\r\nPASS pencil\r\n");
	expect(c, "+OK");
	expect(c, "-ERR [AUTH] Invalid login or password");
	quit(&c, "+OK");
	assert_true(auth_lockout_is_locked(T.f.lockout, "eve@example.test", "127.0.0.1"));
	assert_int_equal(auth_lockout_unlock(T.f.lockout, "eve@example.test"), 1);
	c = login("eve");
	quit(&c, "+OK");
}

/* DELE then QUIT: the next session sees two messages, renumbered. */
static void test_dele_quit(void **state)
{
	char want[64];
	tbuf b = TBUF_INIT, exp = TBUF_INIT;
	(void)state;
	client *c = login("bob");
	say(c, "DELE 2\r\n");
	expect(c, "+OK Message 2 deleted");
	quit(&c, "+OK pop.example.test POP3 server signing off (1 messages deleted)");
	c = login("bob");
	say(c, "STAT\r\nUIDL\r\n");
	snprintf(want, sizeof(want), "+OK 2 %zu",
		 strlen(MSG1_PREFIX) + strlen(MSG1_BODY) + strlen(MSG3_BODY));
	expect(c, want);
	expect(c, "+OK");
	multiline(c, &b);
	tbuf_appendf(&exp, "1 %08x%08x\r\n2 %08x%08x\r\n", T.bob_uv, T.uids[0], T.bob_uv,
		     T.uids[2]);
	assert_string_equal(tbuf_cstr(&b), tbuf_cstr(&exp));
	tbuf_free(&b);
	tbuf_free(&exp);
	/* a session that ends without QUIT deletes nothing */
	say(c, "DELE 1\r\n");
	expect(c, "+OK");
	hangup(&c);
	usleep(100000);
	c = login("bob");
	say(c, "STAT\r\n");
	expect(c, "+OK 2 ");
	quit(&c, "+OK");
	pop3_stats st;
	pop3_server_stats(T.pop3, &st);
	assert_int_equal(st.deleted, 1);
}

/* STLS: pipelined plaintext is dropped, the session starts over under TLS and CAPA no
 * longer offers STLS. */
static void test_stls(void **state)
{
	tbuf caps = TBUF_INIT;
	(void)state;
	client *c = dial();
	expect(c, "+OK");
	say(c, "USER bob\r\nSTLS\r\nCAPA\r\n");
	expect(c, "+OK Send your password");
	expect(c, "+OK Begin TLS negotiation");
	start_tls(c);
	say(c, "PASS pencil\r\nCAPA\r\n");
	expect(c, "-ERR Send USER first");
	expect(c, "+OK Capability list follows");
	multiline(c, &caps);
	assert_null(strstr(tbuf_cstr(&caps), "STLS"));
	assert_non_null(strstr(tbuf_cstr(&caps), "USER\r\n"));
	say(c, "STLS\r\nUSER bob\r\nPASS pencil\r\n");
	expect(c, "-ERR TLS already active");
	expect(c, "+OK");
	expect(c, "+OK Logged in, ");
	tbuf_free(&caps);
	quit(&c, "+OK");
}

/* auth_policy "encrypted": no password in clear, no SASL before TLS; "secure-auth"
 * still offers SCRAM-SHA-256. */
static void test_policy(void **state)
{
	tbuf caps = TBUF_INIT;
	char *saved = T.f.conf.security_auth_policy;
	(void)state;
	T.f.conf.security_auth_policy = (char *)"encrypted";
	client *c = dial();
	expect(c, "+OK");
	say(c, "CAPA\r\n");
	expect(c, "+OK");
	multiline(c, &caps);
	assert_null(strstr(tbuf_cstr(&caps), "USER\r\n"));
	assert_null(strstr(tbuf_cstr(&caps), "SASL"));
	assert_non_null(strstr(tbuf_cstr(&caps), "STLS\r\n"));
	say(c, "USER bob\r\nAUTH PLAIN AGJvYgBwZW5jaWw=\r\n");
	expect(c, "-ERR [AUTH] Plaintext authentication disallowed");
	expect(c, "-ERR [AUTH] Encryption required");
	hangup(&c);
	T.f.conf.security_auth_policy = (char *)"secure-auth";
	c = dial();
	expect(c, "+OK");
	say(c, "CAPA\r\nAUTH PLAIN AGJvYgBwZW5jaWw=\r\n");
	expect(c, "+OK");
	tbuf_reset(&caps);
	multiline(c, &caps);
	assert_null(strstr(tbuf_cstr(&caps), "USER\r\n"));
	assert_non_null(strstr(tbuf_cstr(&caps), "SASL SCRAM-SHA-256\r\n"));
	expect(c, "-ERR [AUTH] Encryption required");
	/* after STLS everything is allowed again */
	say(c, "STLS\r\n");
	expect(c, "+OK");
	start_tls(c);
	say(c, "AUTH PLAIN AGJvYgBwZW5jaWw=\r\n");
	expect(c, "+OK Logged in");
	quit(&c, "+OK");
	T.f.conf.security_auth_policy = saved;
	tbuf_free(&caps);
}

/* The autologout timer (RFC 1939 3) closes without entering UPDATE: DELE is undone. */
static void test_autologout(void **state)
{
	char line[64];
	int64_t saved = T.f.conf.pop3_timeout;
	(void)state;
	T.f.conf.pop3_timeout = 1;
	client *c = login("ann");
	say(c, "DELE 1\r\n");
	expect(c, "+OK Message 1 deleted");
	expect(c, "-ERR Autologout");
	hear(c, line, sizeof(line));
	assert_string_equal(line, "");
	hangup(&c);
	T.f.conf.pop3_timeout = saved;
	c = login("ann");
	say(c, "STAT\r\n");
	expect(c, "+OK 1 ");
	quit(&c, "+OK");
}

/* ---- the layers below the session ---- */

static void test_line_reader(void **state)
{
	tern_line_reader r;
	size_t used;
	const char *in = "NOOP\r\nLIST 1";

	(void)state;
	tern_line_init(&r, 10);
	/* byte by byte */
	int rc = TERN_LINE_MORE;
	size_t off = 0;
	while (rc == TERN_LINE_MORE) {
		rc = tern_line_feed(&r, in + off, 1, &used);
		off += used;
	}
	assert_int_equal(rc, TERN_LINE_OK);
	assert_string_equal(r.line.data, "NOOP");
	tbuf_reset(&r.line);
	assert_int_equal(tern_line_feed(&r, in + off, strlen(in + off), &used), TERN_LINE_MORE);
	assert_int_equal(tern_line_feed(&r, "23456789\n", 9, &used), TERN_LINE_TOOLONG);
	assert_int_equal(r.line.len, 0);
	assert_int_equal(tern_line_feed(&r, "STAT\n", 5, &used), TERN_LINE_OK);
	assert_string_equal(r.line.data, "STAT");
	tern_line_clear(&r);
}

static void test_parse(void **state)
{
	static const struct {
		const char *line;
		int ok;
		pop3_verb verb;
		unsigned nargs;
		uint32_t a, b;
		const char *text;
	} cases[] = {
		{ "stat", 1, POP3_VERB_STAT, 0, 0, 0, "" },
		{ "LIST", 1, POP3_VERB_LIST, 0, 0, 0, "" },
		{ "LIST 7", 1, POP3_VERB_LIST, 1, 7, 0, "" },
		{ "TOP 1 0", 1, POP3_VERB_TOP, 2, 1, 0, "" },
		{ "top 12 4294967295", 1, POP3_VERB_TOP, 2, 12, 4294967295u, "" },
		{ "USER bob@example.test", 1, POP3_VERB_USER, 1, 0, 0, "bob@example.test" },
		{ "PASS pass with spaces", 1, POP3_VERB_PASS, 1, 0, 0, "pass with spaces" },
		{ "AUTH PLAIN AGJvYgBwZW5jaWw=", 1, POP3_VERB_AUTH, 1, 0, 0, "PLAIN AGJvYgBwZW5jaWw=" },
		{ "AUTH", 1, POP3_VERB_AUTH, 0, 0, 0, "" },
		{ "STAT 1", 0, 0, 0, 0, 0, NULL },
		{ "LIST 1 2", 0, 0, 0, 0, 0, NULL },
		{ "LIST 0", 0, 0, 0, 0, 0, NULL },
		{ "LIST -1", 0, 0, 0, 0, 0, NULL },
		{ "LIST +1", 0, 0, 0, 0, 0, NULL },
		{ "RETR 99999999999", 0, 0, 0, 0, 0, NULL },
		{ "TOP 1 x", 0, 0, 0, 0, 0, NULL },
		{ "USER", 0, 0, 0, 0, 0, NULL },
		{ "STATS", 0, 0, 0, 0, 0, NULL },
		{ "", 0, 0, 0, 0, 0, NULL },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pop3_cmd cmd;
		const char *err = NULL;
		int rc = pop3_parse_command(cases[i].line, strlen(cases[i].line), &cmd, &err);
		if ((rc == 0) != cases[i].ok)
			fail_msg("\"%s\": rc %d (%s)", cases[i].line, rc, err ? err : "");
		if (rc != 0) {
			assert_memory_equal(err, "-ERR ", 5);
			continue;
		}
		assert_int_equal(cmd.verb, cases[i].verb);
		assert_int_equal(cmd.nargs, cases[i].nargs);
		if (cases[i].text[0] != '\0')
			assert_string_equal(cmd.text, cases[i].text);
		else if (cmd.nargs > 0) {
			assert_int_equal(cmd.num[0], cases[i].a);
			if (cmd.nargs > 1)
				assert_int_equal(cmd.num[1], cases[i].b);
		}
	}
	/* 255 is the command limit, except for AUTH's initial response */
	char line[400];
	memset(line, 'A', sizeof(line));
	memcpy(line, "USER ", 5);
	const char *err = NULL;
	pop3_cmd cmd;
	assert_int_equal(pop3_parse_command(line, POP3_CMD_LINE_MAX, &cmd, &err), 0);
	line[300] = '\0';
	assert_int_equal(pop3_parse_command(line, 300, &cmd, &err), -1);
	assert_string_equal(err, "-ERR Line too long");
	memcpy(line, "AUTH ", 5);
	assert_int_equal(pop3_parse_command(line, 300, &cmd, &err), 0);
	assert_int_equal(pop3_parse_command("NOOP\0x", 6, &cmd, &err), -1);
}

/* The same message fed in pieces of every size gives the same stuffed output. */
static void test_stuff(void **state)
{
	const char *msg = "A: b\r\n.x: y\r\n\r\n.\r\nline\r\n..\r\n.end";
	const char *want = "A: b\r\n..x: y\r\n\r\n..\r\nline\r\n...\r\n..end\r\n.\r\n";
	(void)state;
	for (size_t piece = 1; piece <= strlen(msg); piece++) {
		pop3_stuffer f;
		tbuf out = TBUF_INIT;
		pop3_stuff_init(&f, 0, 0);
		for (size_t off = 0; off < strlen(msg); off += piece) {
			size_t n = strlen(msg) - off < piece ? strlen(msg) - off : piece;
			assert_int_equal(pop3_stuff(&f, msg + off, n, &out), n);
		}
		pop3_stuff_end(&f, &out);
		assert_string_equal(tbuf_cstr(&out), want);
		tbuf_free(&out);
	}
	/* TOP 0 and TOP 2, header-only messages, a CR split from its LF */
	static const struct { const char *in; uint64_t lines; const char *out; } tops[] = {
		{ "A: b\r\n\r\nl1\r\nl2\r\nl3\r\n", 0, "A: b\r\n\r\n.\r\n" },
		{ "A: b\r\n\r\nl1\r\n.l2\r\nl3\r\n", 2, "A: b\r\n\r\nl1\r\n..l2\r\n.\r\n" },
		{ "A: b\r\nC: d\r\n", 5, "A: b\r\nC: d\r\n.\r\n" },
		{ "A: b\n\nl1\nl2\n", 1, "A: b\n\nl1\n.\r\n" },
	};
	for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]); i++) {
		for (size_t piece = 1; piece <= strlen(tops[i].in); piece++) {
			pop3_stuffer f;
			tbuf out = TBUF_INIT;
			pop3_stuff_init(&f, 1, tops[i].lines);
			for (size_t off = 0; off < strlen(tops[i].in) && !f.done; off += piece) {
				size_t n = strlen(tops[i].in) - off < piece ? strlen(tops[i].in) - off : piece;
				pop3_stuff(&f, tops[i].in + off, n, &out);
			}
			pop3_stuff_end(&f, &out);
			assert_string_equal(tbuf_cstr(&out), tops[i].out);
			tbuf_free(&out);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_reader),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_stuff),
		cmocka_unit_test(test_greeting_and_capa),
		cmocka_unit_test(test_user_pass),
		cmocka_unit_test(test_stat_list_uidl),
		cmocka_unit_test(test_retr_top),
		cmocka_unit_test(test_retr_big),
		cmocka_unit_test(test_dele_rset),
		cmocka_unit_test(test_in_use),
		cmocka_unit_test(test_auth_plain),
		cmocka_unit_test(test_expunged_meanwhile),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_lockout),
		cmocka_unit_test(test_stls),
		cmocka_unit_test(test_autologout),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_dele_quit),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
