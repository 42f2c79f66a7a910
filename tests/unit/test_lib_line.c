/* test_lib_line.c - the line framer shared by SMTP, POP3 and IMAP: IMAP's raw lines
 * (AUTHENTICATE responses, IDLE's DONE) under the IMAP line bound, and reading lines out
 * of an evbuffer made of several chunks, with lines and over-long lines that cross them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <event2/buffer.h>
#include "tern.h"

/* Raw lines for AUTHENTICATE and IDLE, bounded as an IMAP command line of 200 bytes. */
static void test_raw_lines(void **state)
{
	tern_line_reader r;
	size_t used;
	(void)state;
	tern_line_init(&r, 200);
	assert_int_equal(tern_line_feed(&r, "DO", 2, &used), TERN_LINE_MORE);
	assert_int_equal(tern_line_feed(&r, "NE\r\nx", 5, &used), TERN_LINE_OK);
	assert_int_equal(used, 4);
	assert_string_equal(tbuf_cstr(&r.line), "DONE");
	tbuf_reset(&r.line);
	char big[300];
	memset(big, 'q', sizeof(big));
	assert_int_equal(tern_line_feed(&r, big, sizeof(big), &used), TERN_LINE_MORE);
	assert_int_equal(tern_line_feed(&r, "\n", 1, &used), TERN_LINE_TOOLONG);
	assert_int_equal(tern_line_feed(&r, "*\r\n", 3, &used), TERN_LINE_OK);
	assert_string_equal(tbuf_cstr(&r.line), "*");
	tern_line_clear(&r);
}

/* Lines come out one per call, whatever the chunks; MORE once the input is used up. */
static void test_read_evbuffer(void **state)
{
	static const char *const chunks[] = { "EHLO a", "\r\nNOO", "P\r\n0123456789", "ABC\r\nQU", "IT\n" };
	struct evbuffer *in = evbuffer_new();
	tern_line_reader r;
	(void)state;
	tern_line_init(&r, 10);
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++)
		evbuffer_add_reference(in, chunks[i], strlen(chunks[i]), NULL, NULL);
	assert_int_equal(tern_line_read(&r, in), TERN_LINE_OK);
	assert_string_equal(tbuf_cstr(&r.line), "EHLO a");
	tbuf_reset(&r.line);
	assert_int_equal(tern_line_read(&r, in), TERN_LINE_OK);
	assert_string_equal(tbuf_cstr(&r.line), "NOOP");
	tbuf_reset(&r.line);
	assert_int_equal(tern_line_read(&r, in), TERN_LINE_TOOLONG);
	assert_int_equal(r.line.len, 0);
	assert_int_equal(tern_line_read(&r, in), TERN_LINE_OK);
	assert_string_equal(tbuf_cstr(&r.line), "QUIT");
	tbuf_reset(&r.line);
	assert_int_equal(evbuffer_get_length(in), 0);
	assert_int_equal(tern_line_read(&r, in), TERN_LINE_MORE);
	/* a partial line is kept in the reader, the input is drained */
	evbuffer_add(in, "RS", 2);
	assert_int_equal(tern_line_read(&r, in), TERN_LINE_MORE);
	assert_int_equal(evbuffer_get_length(in), 0);
	evbuffer_add(in, "ET\r\nNOOP\r\n", 10);
	assert_int_equal(tern_line_read(&r, in), TERN_LINE_OK);
	assert_string_equal(tbuf_cstr(&r.line), "RSET");
	assert_int_equal(evbuffer_get_length(in), 6);
	tern_line_clear(&r);
	evbuffer_free(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raw_lines),
		cmocka_unit_test(test_read_evbuffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
