/* test_lib_buf.c - tbuf: appends, growth, formatting, consume, NULs inside, helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

static void test_empty(void **state)
{
	tbuf b = TBUF_INIT;
	assert_string_equal(tbuf_cstr(&b), "");
	assert_int_equal(b.len, 0);
	char *s = tbuf_steal(&b);
	assert_string_equal(s, "");
	free(s);
	tbuf_free(&b);
}

static void test_append_growth(void **state)
{
	tbuf b = TBUF_INIT;
	for (int i = 0; i < 1000; i++)
		tbuf_append_str(&b, "abc");
	assert_int_equal(b.len, 3000);
	assert_true(b.cap > b.len);
	assert_int_equal(b.data[b.len], '\0');
	assert_memory_equal(b.data + 2997, "abc", 3);
	/* doubling: capacity is a power of two times the first size */
	assert_int_equal(b.cap & (b.cap - 1), 0);
	tbuf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(tbuf_cstr(&b), "");
	tbuf_free(&b);
	assert_null(b.data);
}

static void test_appendf(void **state)
{
	static const struct { int n; const char *s; const char *want; } cases[] = {
		{ 1, "x", "1:x" },
		{ -42, "", "-42:" },
		{ 1234567, "hello world", "1234567:hello world" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tbuf b = TBUF_INIT;
		tbuf_appendf(&b, "%d:%s", cases[i].n, cases[i].s);
		assert_string_equal(tbuf_cstr(&b), cases[i].want);
		assert_int_equal(b.len, strlen(cases[i].want));
		tbuf_free(&b);
	}
	/* formatting past the current capacity grows the buffer exactly once */
	tbuf b = TBUF_INIT;
	tbuf_append_str(&b, "head-");
	char big[5000];
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	tbuf_appendf(&b, "%s|%s", big, "tail");
	assert_int_equal(b.len, 5 + 4999 + 5);
	assert_memory_equal(b.data, "head-zzz", 8);
	assert_string_equal(b.data + b.len - 5, "|tail");
	tbuf_free(&b);
}

static void test_consume_truncate(void **state)
{
	tbuf b = TBUF_INIT;
	tbuf_append_str(&b, "line one\r\nline two\r\n");
	tbuf_consume(&b, 10);
	assert_string_equal(tbuf_cstr(&b), "line two\r\n");
	tbuf_truncate(&b, 4);
	assert_string_equal(tbuf_cstr(&b), "line");
	tbuf_consume(&b, 4);
	assert_int_equal(b.len, 0);
	assert_string_equal(tbuf_cstr(&b), "");
	tbuf_free(&b);
}

static void test_nul_inside(void **state)
{
	tbuf b = TBUF_INIT;
	tbuf_append(&b, "a\0b", 3);
	tbuf_append_char(&b, '\0');
	tbuf_append_char(&b, 'c');
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "a\0b\0c", 5);
	assert_int_equal(b.data[5], '\0');
	tbuf_consume(&b, 2);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "b\0c", 3);
	char *s = tbuf_steal(&b);
	assert_memory_equal(s, "b\0c", 4);
	assert_null(b.data);
	free(s);
}

static void test_binary_helpers(void **state)
{
	tbuf b = TBUF_INIT;
	tbuf_append_be32(&b, 0x01020304u);
	tbuf_append_be64(&b, 0x1122334455667788ull);
	assert_int_equal(b.len, 12);
	assert_memory_equal(b.data, "\x01\x02\x03\x04\x11\x22\x33\x44\x55\x66\x77\x88", 12);
	assert_int_equal(tern_be32_get(b.data), 0x01020304u);
	assert_true(tern_be64_get(b.data + 4) == 0x1122334455667788ull);
	tbuf_reset(&b);
	tbuf_append_hex(&b, "\x00\xff\x10", 3);
	assert_string_equal(tbuf_cstr(&b), "00ff10");
	tbuf_free(&b);

	char hex[7];
	uint8_t raw[3];
	tern_hex("\xde\xad\x01", 3, hex);
	assert_string_equal(hex, "dead01");
	assert_int_equal(tern_unhex("DEad01", raw, 3), 0);
	assert_memory_equal(raw, "\xde\xad\x01", 3);
	assert_int_equal(tern_unhex("dead0", raw, 3), -1);
	assert_int_equal(tern_unhex("dead0g", raw, 3), -1);
	assert_int_equal(tern_unhex("dead0100", raw, 3), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_append_growth),
		cmocka_unit_test(test_appendf),
		cmocka_unit_test(test_consume_truncate),
		cmocka_unit_test(test_nul_inside),
		cmocka_unit_test(test_binary_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
