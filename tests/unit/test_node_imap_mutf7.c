/* test_node_imap_mutf7.c - the modified UTF-7 check of mailbox names (RFC 3501 §5.1.3),
 * table-driven: valid names, and each way a name can be malformed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "imap_int.h"

static const struct {
	const char *name;
	int valid;
} cases[] = {
	{ "INBOX", 1 },
	{ "Sent Items", 1 },
	{ "Entw&APw-rfe", 1 },                 /* Entwürfe */
	{ "&ZeVnLIqe-", 1 },                   /* 日本語 */
	{ "Tom &- Jerry", 1 },                 /* "&-" is "&" */
	{ "&2D3cAA-", 1 },                     /* U+1F400: a surrogate pair */
	{ "a/&AOQ-/b", 1 },
	{ "bad&name", 0 },                     /* unterminated shift */
	{ "x&", 0 },
	{ "&AGE-", 0 },                        /* "a" must not be encoded */
	{ "&ACA-", 0 },                        /* nor a space */
	{ "&2D0-", 0 },                        /* a lone high surrogate */
	{ "&3AA-", 0 },                        /* a lone low surrogate */
	{ "&AOQ", 0 },
	{ "&AO-", 0 },                         /* not a whole UTF-16 unit */
	{ "&AOR-", 0 },                        /* non-zero padding bits */
	{ "&AOQA-", 0 },                       /* a leftover digit */
	{ "&AO/k-", 0 },                       /* "/" is not a modified BASE64 digit */
	{ "T\xc3\xa4st", 0 },                  /* raw 8-bit */
	{ "tab\there", 0 },
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (imap_mutf7_valid(cases[i].name, strlen(cases[i].name)) != cases[i].valid)
			fail_msg("%s: want %d", cases[i].name, cases[i].valid);
}

/* imap_arg_mailbox refuses what the check refuses, with a clear text. */
static void test_arg_mailbox(void **state)
{
	char name[IMAP_NAME_MAX + 1];
	const char *err = NULL;
	imap_arg good = { .type = IMAP_ARG_STRING, .str = "Entw&APw-rfe", .len = 12 };
	imap_arg bad = { .type = IMAP_ARG_STRING, .str = "a&b", .len = 3 };

	(void)state;
	assert_int_equal(imap_arg_mailbox(&good, name, &err), 0);
	assert_string_equal(name, "Entw&APw-rfe");
	assert_int_equal(imap_arg_mailbox(&bad, name, &err), -1);
	assert_non_null(strstr(err, "modified UTF-7"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_arg_mailbox),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
