/* test_node_imap_seqset.c - sequence sets of node/imap (imap_args.h): parsing of valid
 * and invalid sets, resolution of '*', membership. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "imap_args.h"

#define STAR UINT32_MAX

static const struct {
	const char *text;
	size_t n;
	imap_seqrange r[3];
} valid_sets[] = {
	{ "1", 1, { { 1, 1 } } },
	{ "*", 1, { { STAR, STAR } } },
	{ "1:5", 1, { { 1, 5 } } },
	{ "*:1", 1, { { STAR, 1 } } },
	{ "5:3,7,9:*", 3, { { 5, 3 }, { 7, 7 }, { 9, STAR } } },
	{ "4294967295", 1, { { 4294967295u, 4294967295u } } },
	{ "2,2:4", 2, { { 2, 2 }, { 2, 4 } } },
};

static const char *const invalid_sets[] = {
	"", "0", "4294967296", "1:*:*", ",", "1,", ",1", "1::2", "01", "1:0", "-1", "a", "1 2", "1:", ":1", "**",
	"99999999999999999999", "$",
};

static void test_parse_valid(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(valid_sets) / sizeof(valid_sets[0]); i++) {
		imap_seqset set;
		const char *err = NULL;

		assert_int_equal(imap_seqset_parse(valid_sets[i].text, &set, &err), 0);
		assert_int_equal(set.n, valid_sets[i].n);
		for (size_t k = 0; k < set.n; k++) {
			assert_int_equal(set.r[k].lo, valid_sets[i].r[k].lo);
			assert_int_equal(set.r[k].hi, valid_sets[i].r[k].hi);
		}
		imap_seqset_free(&set);
		assert_null(set.r);
	}
}

static void test_parse_invalid(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(invalid_sets) / sizeof(invalid_sets[0]); i++) {
		imap_seqset set;
		const char *err = NULL;

		if (imap_seqset_parse(invalid_sets[i], &set, &err) != -1)
			fail_msg("accepted invalid set \"%s\"", invalid_sets[i]);
		assert_non_null(err);
		assert_null(set.r);
		assert_int_equal(set.n, 0);
	}
}

/* Resolution orders, merges and replaces '*' by the highest number. */
static void test_resolve(void **state)
{
	imap_seqset set;
	const char *err;

	(void)state;
	assert_int_equal(imap_seqset_parse("9:*,5:3,2,4,20", &set, &err), 0);
	imap_seqset_resolve(&set, 12);
	assert_int_equal(set.n, 3);
	assert_int_equal(set.r[0].lo, 2);
	assert_int_equal(set.r[0].hi, 5);
	assert_int_equal(set.r[1].lo, 9);
	assert_int_equal(set.r[1].hi, 12);
	assert_int_equal(set.r[2].lo, 20);
	assert_int_equal(set.r[2].hi, 20);
	for (uint32_t v = 0; v <= 22; v++)
		assert_int_equal(imap_seqset_contains(&set, v), (v >= 2 && v <= 5) || (v >= 9 && v <= 12) || v == 20);
	imap_seqset_free(&set);

	/* "100:*" with 3 as the highest UID still names UID 3 (RFC 3501 §6.4.8). */
	assert_int_equal(imap_seqset_parse("100:*", &set, &err), 0);
	imap_seqset_resolve(&set, 3);
	assert_int_equal(imap_seqset_contains(&set, 3), 1);
	assert_int_equal(imap_seqset_contains(&set, 2), 0);
	assert_int_equal(imap_seqset_contains(&set, 100), 1);
	imap_seqset_free(&set);

	/* An empty mailbox: ranges with '*' vanish, plain ranges stay. */
	assert_int_equal(imap_seqset_parse("1:*,7", &set, &err), 0);
	imap_seqset_resolve(&set, 0);
	assert_int_equal(set.n, 1);
	assert_int_equal(imap_seqset_contains(&set, 7), 1);
	assert_int_equal(imap_seqset_contains(&set, 1), 0);
	imap_seqset_free(&set);

	/* Adjacent and overlapping ranges near the top of the number space merge. */
	assert_int_equal(imap_seqset_parse("4294967290:4294967294,4294967292,1", &set, &err), 0);
	imap_seqset_resolve(&set, 5);
	assert_int_equal(set.n, 2);
	assert_int_equal(imap_seqset_contains(&set, 4294967294u), 1);
	assert_int_equal(imap_seqset_contains(&set, 4294967289u), 0);
	imap_seqset_free(&set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_invalid),
		cmocka_unit_test(test_resolve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
