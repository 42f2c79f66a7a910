/* test_node_imap_parse.c - the IMAP command parser, table driven: every input is fed one
 * byte at a time and in one piece, and both must give the same events: commands rendered
 * as text, "+" for a literal continuation request, BAD/FATAL with the error and tag. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "imap_int.h"

static const imap_limits LIM = { 200, 100, 1000, 4, 50 };

static void render_arg(const imap_arg *a, tbuf *out)
{
	switch (a->type) {
	case IMAP_ARG_ATOM:
		tbuf_appendf(out, "A:%s", a->str);
		break;
	case IMAP_ARG_STRING:
		tbuf_append_str(out, a->literal8 ? "L8:<" : "S:<");
		tbuf_append(out, a->str, a->len);
		tbuf_append_char(out, '>');
		assert_int_equal(a->str[a->len], '\0');
		break;
	case IMAP_ARG_NIL:
		tbuf_append_str(out, "NIL");
		break;
	case IMAP_ARG_LIST:
		tbuf_append_char(out, '(');
		for (size_t i = 0; i < a->nlist; i++) {
			if (i)
				tbuf_append_char(out, ' ');
			render_arg(&a->list[i], out);
		}
		tbuf_append_char(out, ')');
		break;
	}
}

/* Feed in pieces of `step`; events separated by '|'. */
static void run(const char *in, size_t len, size_t step, const imap_limits *lim, tbuf *ev)
{
	imap_parser p;
	size_t off = 0;

	imap_parser_init(&p, lim);
	while (off < len) {
		size_t n = len - off < step ? len - off : step, used = 0;
		int rc = imap_parser_feed(&p, in + off, n, &used);
		assert_true(used <= n);
		assert_true(used > 0 || rc != IMAP_PARSE_MORE);
		off += used;
		switch (rc) {
		case IMAP_PARSE_DONE:
			tbuf_appendf(ev, "%s %s", p.cmd.tag, p.cmd.name);
			for (size_t i = 0; i < p.cmd.nargs; i++) {
				tbuf_append_char(ev, ' ');
				render_arg(&p.cmd.args[i], ev);
			}
			tbuf_append_char(ev, '|');
			imap_parser_reset(&p);
			break;
		case IMAP_PARSE_LITERAL:
			tbuf_append_str(ev, "+|");
			break;
		case IMAP_PARSE_BAD:
		case IMAP_PARSE_FATAL:
			tbuf_appendf(ev, "%s[%s]%s%s|", rc == IMAP_PARSE_BAD ? "BAD" : "FATAL",
				     p.tag.len ? tbuf_cstr(&p.tag) : "*", p.error, p.toobig ? " TOOBIG" : "");
			imap_parser_reset(&p);
			break;
		}
	}
	imap_parser_free(&p);
}

static const struct {
	const char *in;
	const char *events;
} cases[] = {
	{ "a1 NOOP\r\n", "a1 NOOP|" },
	{ "a1 noop\n", "a1 NOOP|" },
	{ "\r\n\r\na2 CAPABILITY\r\n", "a2 CAPABILITY|" },
	{ "a LOGIN bob \"pen cil\"\r\n", "a LOGIN A:bob S:<pen cil>|" },
	{ "a LOGIN \"a\\\"b\\\\c\" x\r\n", "a LOGIN S:<a\"b\\c> A:x|" },
	{ "a LOGIN {3}\r\nbob {6}\r\npencil\r\n", "+|+|a LOGIN S:<bob> S:<pencil>|" },
	{ "a LOGIN {3+}\r\nbob {0+}\r\n\r\n", "a LOGIN S:<bob> S:<>|" },
	{ "a APPEND INBOX (\\Seen) {5}\r\nhello\r\n", "+|a APPEND A:INBOX (A:\\Seen) S:<hello>|" },
	{ "a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.10>)\r\n",
	  "a FETCH A:1:* (A:FLAGS A:BODY.PEEK[HEADER.FIELDS (From To)]<0.10>)|" },
	{ "a FETCH 1 BODY[]\r\n", "a FETCH A:1 A:BODY[]|" },
	{ "a UID STORE 1 +FLAGS.SILENT (\\Deleted NIL)\r\n",
	  "a UID A:STORE A:1 A:+FLAGS.SILENT (A:\\Deleted NIL)|" },
	{ "a LIST \"\" %/*\r\n", "a LIST S:<> A:%/*|" },
	{ "a X (() ())\r\n", "a X (() ())|" },
	{ "a X (()())\r\nb NOOP\r\n", "BAD[a]Missing space before '('|b NOOP|" },
	/* errors, each followed by a good command: the parser stays in step */
	{ "a X ((((((x)))))) \r\nb NOOP\r\n", "BAD[a]Too deeply nested|b NOOP|" },
	{ "a X (x\r\nb NOOP\r\n", "BAD[a]Unbalanced parentheses|b NOOP|" },
	{ "a X x)\r\nb NOOP\r\n", "BAD[a]Unexpected ')'|b NOOP|" },
	{ "a X \"ab\r\nb NOOP\r\n", "BAD[a]Invalid character in quoted string|b NOOP|" },
	{ "a X \"a\"b\r\nb NOOP\r\n", "BAD[a]Missing space between arguments|b NOOP|" },
	{ "a\r\nb NOOP\r\n", "BAD[a]Missing command|b NOOP|" },
	{ "a \r\nb NOOP\r\n", "BAD[a]Missing command|b NOOP|" },
	{ "a+ NOOP\r\nb NOOP\r\n", "BAD[*]Invalid tag|b NOOP|" },
	{ "a NO-OP\r\nb NOOP\r\n", "BAD[a]Invalid command name|b NOOP|" },
	{ "a X \x80\r\nb NOOP\r\n", "BAD[a]Invalid character|b NOOP|" },
	{ "a X {18446744073709551615}\r\nb NOOP\r\n", "BAD[a]Literal too large TOOBIG|b NOOP|" },
	{ "a X {99999999999999999999999}\r\nb NOOP\r\n", "BAD[a]Invalid literal size|b NOOP|" },
	{ "a X {101}\r\nb NOOP\r\n", "BAD[a]Literal too large TOOBIG|b NOOP|" },
	{ "a X {60}\r\n", "+|" },
	{ "a X {60}\r\n123456789012345678901234567890123456789012345678901234567890 {41}\r\nb NOOP\r\n",
	  "+|BAD[a]Literal too large TOOBIG|b NOOP|" },
	{ "a APPEND x {1001}\r\nb NOOP\r\n", "BAD[a][TOOBIG] Message too large TOOBIG|b NOOP|" },
	{ "a APPEND x {1001+}\r\n", "FATAL[a][TOOBIG] Message too large TOOBIG|" },
	{ "a X {1x}\r\nb NOOP\r\n", "BAD[a]Invalid literal size|b NOOP|" },
	{ "a X {}\r\nb NOOP\r\n", "BAD[a]Invalid literal size|b NOOP|" },
	{ "a X {3} x\r\nb NOOP\r\n", "BAD[a]Literal size must end the line|b NOOP|" },
	{ "a X ~x\r\nb NOOP\r\n", "BAD[a]Invalid character|b NOOP|" },
	{ "a X a\rb\r\nb NOOP\r\n", "BAD[a]CR without LF|b NOOP|" },
	{ "a X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 "
	  "31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51\r\nb NOOP\r\n",
	  "BAD[a]Too many arguments|b NOOP|" },
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].in);
		for (size_t step = 1; step <= 4096; step *= 4096) {
			tbuf ev = TBUF_INIT;
			run(cases[i].in, len, step, &LIM, &ev);
			if (strcmp(tbuf_cstr(&ev), cases[i].events) != 0)
				fail_msg("case %zu step %zu: got \"%s\" want \"%s\"", i, step, tbuf_cstr(&ev),
					 cases[i].events);
			tbuf_free(&ev);
		}
	}
}

/* literal8 (BINARY APPEND) may hold NULs. */
static void test_binary_literal(void **state)
{
	static const char in[] = "a APPEND INBOX ~{3}\r\na\0b\r\n";
	static const char want[] = "+|a APPEND A:INBOX L8:<a\0b>|";
	(void)state;
	for (size_t step = 1; step <= 64; step += 63) {
		tbuf ev = TBUF_INIT;
		run(in, sizeof(in) - 1, step, &LIM, &ev);
		assert_int_equal(ev.len, sizeof(want) - 1);
		assert_memory_equal(ev.data, want, sizeof(want) - 1);
		tbuf_free(&ev);
	}
}

/* A 1 MB line: one BAD at its end, nothing kept, the next command parsed. */
static void test_long_line(void **state)
{
	size_t n = 1 << 20;
	char *in = malloc(n + 32);
	(void)state;
	memcpy(in, "a X ", 4);
	memset(in + 4, 'x', n);
	memcpy(in + 4 + n, "\r\nb NOOP\r\n", 10);
	for (size_t step = 7; step <= 70000; step *= 10000) {
		tbuf ev = TBUF_INIT;
		run(in, n + 14, step, &LIM, &ev);
		assert_string_equal(tbuf_cstr(&ev), "BAD[a]Line too long|b NOOP|");
		tbuf_free(&ev);
	}
	free(in);
}

/* The line bound counts the line, not its literals. */
static void test_line_excludes_literal(void **state)
{
	imap_limits lim = { 20, 1000, 1000, 4, 50 };
	char in[400];
	(void)state;
	int k = snprintf(in, sizeof(in), "a X {300+}\r\n");
	memset(in + k, 'z', 300);
	memcpy(in + k + 300, " y\r\n", 4);
	tbuf ev = TBUF_INIT;
	run(in, (size_t)k + 304, 1, &lim, &ev);
	assert_true(strncmp(tbuf_cstr(&ev), "a X S:<zzz", 10) == 0);
	assert_true(strstr(tbuf_cstr(&ev), "> A:y|") != NULL);
	tbuf_free(&ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_binary_literal),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_line_excludes_literal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
