/* test_node_smtp_parse.c - SMTP framing, command parsing and the DATA reader, table
 * driven, every input fed one byte at a time (and whole, which must agree). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "smtp_int.h"

/* Feed `in` to a line reader in pieces of `step` bytes; collect "OK:<line>" / "LONG"
 * events separated by '|'. */
static void frame(const char *in, size_t len, size_t max, size_t step, tbuf *events)
{
	tern_line_reader r;
	size_t off = 0;

	tern_line_init(&r, max);
	while (off < len) {
		size_t n = len - off < step ? len - off : step, used = 0;
		int rc = tern_line_feed(&r, in + off, n, &used);
		assert_true(used > 0 && used <= n);
		off += used;
		if (rc == TERN_LINE_OK) {
			tbuf_append_str(events, "OK:");
			tbuf_append(events, r.line.data, r.line.len);
			tbuf_append_char(events, '|');
			tbuf_reset(&r.line);
		} else if (rc == TERN_LINE_TOOLONG) {
			tbuf_append_str(events, "LONG|");
		}
	}
	tern_line_clear(&r);
}

static void test_framing(void **state)
{
	static const struct {
		const char *in;
		size_t max;
		const char *events;
	} cases[] = {
		{ "EHLO a\r\nNOOP\r\n", 100, "OK:EHLO a|OK:NOOP|" },
		{ "EHLO a\nNOOP\r\n", 100, "OK:EHLO a|OK:NOOP|" },           /* bare LF ends a command */
		{ "NOOP\r", 100, "" },                                    /* incomplete */
		{ "\r\n", 100, "OK:|" },
		{ "0123456789\r\nab\r\n", 10, "OK:0123456789|OK:ab|" },     /* exactly max */
		{ "0123456789X\r\nab\r\n", 10, "LONG|OK:ab|" },
		{ "0123456789XYZXYZXYZXYZ\nQUIT\r\n", 10, "LONG|OK:QUIT|" },
		{ "A\rB\r\n", 100, "OK:A\rB|" },                             /* inner CR kept for the parser */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t step = 1; step <= 64; step += 63) {
			tbuf ev = TBUF_INIT;
			frame(cases[i].in, strlen(cases[i].in), cases[i].max, step, &ev);
			assert_string_equal(tbuf_cstr(&ev), cases[i].events);
			tbuf_free(&ev);
		}
	}
}

static void test_framing_nul(void **state)
{
	static const char in[] = "NO\0OP\r\nQUIT\r\n";
	tbuf ev = TBUF_INIT;
	smtp_cmd cmd;
	const char *reply = NULL;

	(void)state;
	frame(in, sizeof(in) - 1, 100, 1, &ev);
	static const char want[] = "OK:NO\0OP|OK:QUIT|";
	assert_int_equal(ev.len, sizeof(want) - 1);
	assert_memory_equal(ev.data, want, ev.len);
	/* the parser refuses the line with the NUL */
	assert_int_equal(smtp_parse_command("NO\0OP", 5, &cmd, &reply), -1);
	assert_string_equal(reply, "500 5.5.2 Line contains a NUL character");
	tbuf_free(&ev);
}

/* One parser case: the line, whether it parses, the reply prefix on error, and for
 * MAIL/RCPT the fields we expect. */
typedef struct parse_case {
	const char *line;
	int ok;
	const char *reply;      /* expected reply prefix when !ok */
	smtp_verb verb;
	const char *addr;       /* path.addr */
	const char *local, *domain;
	int null, route, relay, postmaster;
	uint64_t size;
	int body, ret;
	uint32_t notify;
	const char *envid, *orcpt;
} parse_case;

static const parse_case parse_cases[] = {
	{ .line = "EHLO client.example", .ok = 1, .verb = SMTP_VERB_EHLO },
	{ .line = "ehlo x", .ok = 1, .verb = SMTP_VERB_EHLO },
	{ .line = "QUIT", .ok = 1, .verb = SMTP_VERB_QUIT },
	{ .line = "STARTTLS", .ok = 1, .verb = SMTP_VERB_STARTTLS },
	{ .line = "XYZZY foo", .ok = 0, .reply = "500 5.5.1" },
	{ .line = "", .ok = 0, .reply = "500 5.5.1" },
	{ .line = "MAILFROM:<a@b.c>", .ok = 0, .reply = "500 5.5.1" },
	{ .line = "MAIL FROM:<bob@Example.TEST>", .ok = 1, .verb = SMTP_VERB_MAIL,
	  .addr = "bob@example.test", .local = "bob", .domain = "example.test" },
	{ .line = "mail from: <bob@example.test>", .ok = 1, .verb = SMTP_VERB_MAIL,
	  .addr = "bob@example.test", .local = "bob", .domain = "example.test" },
	{ .line = "MAIL FROM:bob@example.test", .ok = 1, .verb = SMTP_VERB_MAIL,
	  .addr = "bob@example.test", .local = "bob", .domain = "example.test" },
	{ .line = "MAIL FROM:<>", .ok = 1, .verb = SMTP_VERB_MAIL, .addr = "", .null = 1 },
	{ .line = "MAIL FROM:<> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=QQ314159", .ok = 1,
	  .verb = SMTP_VERB_MAIL, .addr = "", .null = 1, .size = 1000, .body = SMTP_BODY_8BITMIME,
	  .ret = 2, .envid = "QQ314159" },
	{ .line = "MAIL FROM:<a@b.example> body=7bit ret=full AUTH=<>", .ok = 1, .verb = SMTP_VERB_MAIL,
	  .addr = "a@b.example", .local = "a", .domain = "b.example", .body = SMTP_BODY_7BIT, .ret = 1 },
	{ .line = "MAIL FROM:<\"john smith\"@example.test>", .ok = 1, .verb = SMTP_VERB_MAIL,
	  .addr = "\"john smith\"@example.test", .local = "john smith", .domain = "example.test" },
	{ .line = "MAIL FROM:<\"a\\\"b\"@example.test>", .ok = 1, .verb = SMTP_VERB_MAIL,
	  .addr = "\"a\\\"b\"@example.test", .local = "a\"b", .domain = "example.test" },
	{ .line = "MAIL FROM:<@relay.example:bob@example.test>", .ok = 1, .verb = SMTP_VERB_MAIL,
	  .addr = "bob@example.test", .local = "bob", .domain = "example.test", .route = 1 },
	{ .line = "MAIL FROM:<a@[192.0.2.1]>", .ok = 1, .verb = SMTP_VERB_MAIL,
	  .addr = "a@[192.0.2.1]", .local = "a", .domain = "[192.0.2.1]" },
	{ .line = "MAIL FROM:<a@b.example> SIZE=99999999999999999999999", .ok = 0, .reply = "501 5.5.4" },
	{ .line = "MAIL FROM:<a@b.example> SIZE=12x", .ok = 0, .reply = "501 5.5.4" },
	{ .line = "MAIL FROM:<a@b.example> SIZE=1 SIZE=2", .ok = 0, .reply = "501 5.5.4" },
	{ .line = "MAIL FROM:<a@b.example> BODY=BINARYMIME", .ok = 0, .reply = "555 5.5.4" },
	{ .line = "MAIL FROM:<a@b.example> SMTPUTF8", .ok = 0, .reply = "555 5.5.4" },
	{ .line = "MAIL FROM:<a@b.example> NOTIFY=NEVER", .ok = 0, .reply = "555 5.5.4" },
	{ .line = "MAIL FROM:<a@b.example> RET=ALL", .ok = 0, .reply = "501 5.5.4" },
	{ .line = "MAIL FROM:<a@b.example> ENVID=a=b", .ok = 0, .reply = "501 5.5.4" },
	{ .line = "MAIL FROM:<a@b.example> ENVID=+zz", .ok = 0, .reply = "501 5.5.4" },
	{ .line = "MAIL FROM:<a@b.example> =x", .ok = 0, .reply = "501 5.5.4" },
	{ .line = "MAIL FROM:<a@b.example>x", .ok = 0, .reply = "501 5.1.7" },
	{ .line = "MAIL FROM:<a@b.example", .ok = 0, .reply = "501 5.1.7" },
	{ .line = "MAIL FROM:<a@@b.example>", .ok = 0, .reply = "501 5.1.7" },
	{ .line = "MAIL FROM:<a..b@b.example>", .ok = 0, .reply = "501 5.1.7" },
	{ .line = "MAIL FROM:<.a@b.example>", .ok = 0, .reply = "501 5.1.7" },
	{ .line = "MAIL FROM:<a@b..example>", .ok = 0, .reply = "501 5.1.7" },
	{ .line = "MAIL FROM:<a@-b.example>", .ok = 1, .verb = SMTP_VERB_MAIL, .addr = "a@-b.example",
	  .local = "a", .domain = "-b.example" },
	{ .line = "MAIL FROM:<a b@b.example>", .ok = 0, .reply = "501 5.1.7" },
	{ .line = "MAIL FROM:<postmaster>", .ok = 0, .reply = "501 5.1.7" },
	{ .line = "MAIL TO:<a@b.example>", .ok = 0, .reply = "501 5.5.4" },
	{ .line = "RCPT TO:<alice@example.test>", .ok = 1, .verb = SMTP_VERB_RCPT,
	  .addr = "alice@example.test", .local = "alice", .domain = "example.test" },
	{ .line = "RCPT TO:<Postmaster>", .ok = 1, .verb = SMTP_VERB_RCPT, .addr = "Postmaster",
	  .local = "Postmaster", .domain = "", .postmaster = 1 },
	{ .line = "RCPT TO:<>", .ok = 0, .reply = "501 5.1.3" },
	{ .line = "RCPT TO:<alice>", .ok = 0, .reply = "501 5.1.3" },
	{ .line = "RCPT TO:<a@b.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+40b.example", .ok = 1,
	  .verb = SMTP_VERB_RCPT, .addr = "a@b.example", .local = "a", .domain = "b.example",
	  .notify = DELIVER_NOTIFY_SUCCESS | DELIVER_NOTIFY_FAILURE, .orcpt = "rfc822;a+40b.example" },
	{ .line = "RCPT TO:<a@b.example> NOTIFY=never", .ok = 1, .verb = SMTP_VERB_RCPT,
	  .addr = "a@b.example", .local = "a", .domain = "b.example", .notify = DELIVER_NOTIFY_NEVER },
	{ .line = "RCPT TO:<a@b.example> NOTIFY=NEVER,DELAY", .ok = 0, .reply = "501 5.5.4" },
	{ .line = "RCPT TO:<a@b.example> NOTIFY=SOMETIMES", .ok = 0, .reply = "501 5.5.4" },
	{ .line = "RCPT TO:<a@b.example> ORCPT=rfc822", .ok = 0, .reply = "501 5.5.4" },
	{ .line = "RCPT TO:<a@b.example> SIZE=10", .ok = 0, .reply = "555 5.5.4" },
	/* relay probes parse, flagged; the session refuses them */
	{ .line = "RCPT TO:<user%other.example@example.test>", .ok = 1, .verb = SMTP_VERB_RCPT,
	  .addr = "user%other.example@example.test", .local = "user%other.example",
	  .domain = "example.test", .relay = 1 },
	{ .line = "RCPT TO:<other.example!user@example.test>", .ok = 1, .verb = SMTP_VERB_RCPT,
	  .addr = "other.example!user@example.test", .local = "other.example!user",
	  .domain = "example.test", .relay = 1 },
	{ .line = "RCPT TO:<\"user@other.example\"@example.test>", .ok = 1, .verb = SMTP_VERB_RCPT,
	  .addr = "\"user@other.example\"@example.test", .local = "user@other.example",
	  .domain = "example.test", .relay = 1 },
	{ .line = "RCPT TO:<@example.test,@b.example:user@other.example>", .ok = 1,
	  .verb = SMTP_VERB_RCPT, .addr = "user@other.example", .local = "user",
	  .domain = "other.example", .route = 1 },
	{ .line = "RCPT TO:<@example.test user@other.example>", .ok = 0, .reply = "501 5.1.3" },
	{ .line = "RCPT TO:<user@other.example@example.test>", .ok = 0, .reply = "501 5.1.3" },
	{ .line = "RCPT TO:<\"unterminated@example.test>", .ok = 0, .reply = "501 5.1.3" },
};

static void check_case(const parse_case *c, const char *line, size_t len)
{
	smtp_cmd cmd;
	const char *reply = NULL;
	int rc = smtp_parse_command(line, len, &cmd, &reply);

	if (!c->ok) {
		if (rc == 0)
			fail_msg("parsed but should not: %s", c->line);
		assert_non_null(reply);
		if (strncmp(reply, c->reply, strlen(c->reply)) != 0)
			fail_msg("%s: reply %s, want %s", c->line, reply, c->reply);
		return;
	}
	if (rc != 0)
		fail_msg("%s: %s", c->line, reply);
	assert_int_equal(cmd.verb, c->verb);
	if (c->addr == NULL)
		return;
	assert_string_equal(cmd.path.addr, c->addr);
	assert_int_equal(cmd.path.null, c->null);
	if (!c->null) {
		assert_string_equal(cmd.path.local, c->local);
		assert_string_equal(cmd.path.domain, c->domain);
	}
	assert_int_equal(cmd.path.source_route, c->route);
	assert_int_equal(cmd.path.relay_form, c->relay);
	assert_int_equal(cmd.path.postmaster, c->postmaster);
	assert_int_equal(cmd.params.has_size, c->size != 0);
	assert_int_equal(cmd.params.size, c->size);
	assert_int_equal(cmd.params.body, c->body);
	assert_int_equal(cmd.params.ret, c->ret);
	assert_int_equal(cmd.params.notify, c->notify);
	assert_string_equal(cmd.params.envid, c->envid ? c->envid : "");
	assert_string_equal(cmd.params.orcpt, c->orcpt ? c->orcpt : "");
}

/* Each case is framed byte by byte with CRLF, then parsed. */
static void test_parse_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const parse_case *c = &parse_cases[i];
		tbuf in = TBUF_INIT;
		tern_line_reader r;
		int got = 0;
		tbuf_appendf(&in, "%s\r\n", c->line);
		tern_line_init(&r, 2048);
		for (size_t off = 0; off < in.len; off++) {
			size_t used = 0;
			int rc = tern_line_feed(&r, in.data + off, 1, &used);
			assert_int_equal(used, 1);
			if (rc == TERN_LINE_OK) {
				assert_int_equal(off, in.len - 1);
				check_case(c, r.line.data, r.line.len);
				got = 1;
			}
		}
		assert_true(got);
		tern_line_clear(&r);
		tbuf_free(&in);
	}
}

static void test_long_path(void **state)
{
	tbuf line = TBUF_INIT;
	smtp_cmd cmd;
	const char *reply;

	(void)state;
	tbuf_append_str(&line, "RCPT TO:<");
	for (int i = 0; i < 65; i++)
		tbuf_append_char(&line, 'a');
	tbuf_append_str(&line, "@example.test>");
	assert_int_equal(smtp_parse_command(line.data, line.len, &cmd, &reply), -1);
	assert_string_equal(reply, "501 5.1.3 Bad recipient address syntax");
	tbuf_free(&line);
}

/* ---- DATA ---- */

typedef struct data_case {
	const char *in;            /* bytes after "354" */
	size_t in_len;             /* 0 = strlen(in) */
	size_t used;               /* bytes consumed at DONE (0 = must not finish) */
	const char *msg;           /* stored message when verdict is NULL */
	const char *verdict;       /* reply prefix, NULL = deliverable */
	size_t line_max;
	uint64_t size_max;
} data_case;

static const data_case data_cases[] = {
	{ "Subject: x\r\n\r\nhello\r\n.\r\n", 0, 24, "Subject: x\r\n\r\nhello\r\n", NULL, 1000, 0 },
	{ ".\r\n", 0, 3, "", NULL, 1000, 0 },
	{ "..leading dot\r\n...\r\n.\r\nQUIT\r\n", 0, 23, ".leading dot\r\n..\r\n", NULL, 1000, 0 },
	{ "bare\nlf\r\n.\r\n", 0, 12, "bare\r\nlf\r\n", NULL, 1000, 0 },
	/* ".\n" and "\n.\r\n" do not end the message (no smuggling) */
	{ "a\r\n.\nb\r\n.\r\n", 0, 11, "a\r\n.\r\nb\r\n", NULL, 1000, 0 },
	{ "a\n.\r\nb\r\n.\r\n", 0, 11, "a\r\n.\r\nb\r\n", NULL, 1000, 0 },
	{ "a\r\n.\r", 0, 0, NULL, NULL, 1000, 0 },
	{ "bare\rcr\r\n.\r\n", 0, 12, NULL, "554 5.6.0", 1000, 0 },
	{ "nul\0here\r\n.\r\n", 13, 13, NULL, "554 5.6.0", 1000, 0 },
	{ "0123456789\r\n.\r\n", 0, 15, "0123456789\r\n", NULL, 10, 0 },
	{ "0123456789A\r\nok\r\n.\r\n", 0, 20, NULL, "500 5.5.2", 10, 0 },
	{ "12345678\r\n.\r\n", 0, 13, "12345678\r\n", NULL, 1000, 10 },
	{ "123456789\r\n.\r\n", 0, 14, NULL, "552 5.3.4", 1000, 10 },
	{ "Received: a\r\nreceived: b\r\nReceived: c\r\n\r\nReceived: body\r\n.\r\n", 0, 60, NULL,
	  "554 5.4.6", 1000, 0 },
	{ "Received: a\r\nReceived: b\r\n\r\nReceived: body\r\nReceived: x\r\n.\r\n", 0, 60,
	  "Received: a\r\nReceived: b\r\n\r\nReceived: body\r\nReceived: x\r\n", NULL, 1000, 0 },
};

/* Feed in `step`-byte pieces; returns the bytes used at DONE or 0. */
static size_t run_data(const data_case *c, size_t len, size_t step, smtp_data_reader *r)
{
	size_t off = 0;

	smtp_data_init(r, c->line_max, c->size_max, 2);
	while (off < len) {
		size_t n = len - off < step ? len - off : step, used = 0;
		int rc = smtp_data_feed(r, c->in + off, n, &used);
		off += used;
		if (rc == SMTP_DATA_DONE)
			return off;
		assert_int_equal(used, n);
	}
	return 0;
}

static void test_data_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
		const data_case *c = &data_cases[i];
		size_t len = c->in_len ? c->in_len : strlen(c->in);
		for (size_t step = 1; step <= 4096; step *= 64) {
			smtp_data_reader r;
			size_t used = run_data(c, len, step, &r);
			if (used != c->used)
				fail_msg("case %zu step %zu: used %zu want %zu", i, step, used, c->used);
			if (c->used) {
				const char *v = smtp_data_verdict(&r);
				if (c->verdict == NULL) {
					if (v != NULL)
						fail_msg("case %zu: verdict %s", i, v);
					assert_int_equal(r.msg.len, strlen(c->msg));
					assert_memory_equal(r.msg.len ? r.msg.data : "", c->msg, r.msg.len);
				} else {
					assert_non_null(v);
					assert_memory_equal(v, c->verdict, strlen(c->verdict));
				}
			}
			smtp_data_clear(&r);
		}
	}
}

/* Past the size limit nothing more is stored: memory stays bounded. */
static void test_data_bounded(void **state)
{
	smtp_data_reader r;
	char chunk[4096];
	size_t used;

	(void)state;
	memset(chunk, 'x', sizeof(chunk));
	for (size_t i = 63; i < sizeof(chunk); i += 64) {
		chunk[i - 1] = '\r';
		chunk[i] = '\n';
	}
	smtp_data_init(&r, 1000, 100000, 100);
	for (int i = 0; i < 100; i++)
		assert_int_equal(smtp_data_feed(&r, chunk, sizeof(chunk), &used), SMTP_DATA_MORE);
	assert_true(r.too_big);
	assert_int_equal(r.msg.len, 0);
	assert_int_equal(smtp_data_feed(&r, ".\r\n", 3, &used), SMTP_DATA_DONE);
	assert_string_equal(smtp_data_verdict(&r), "552 5.3.4 Message size exceeds fixed maximum message size");
	smtp_data_clear(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_framing_nul),
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_long_path),
		cmocka_unit_test(test_data_table),
		cmocka_unit_test(test_data_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
