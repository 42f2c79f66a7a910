/* Key encoding of the store: round trips, and big-endian keys sort numerically. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "store_keys.h"

static const uint8_t U[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static const uint8_t F[16] = { 0xf0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff };

static void test_msg_round_trip(void **state)
{
	uint8_t k[SK_MSG_LEN], u[16], f[16];
	uint32_t uid;

	sk_msg(k, U, F, 0x01020304);
	assert_int_equal(sk_msg_parse(k, sizeof(k), u, f, &uid), 0);
	assert_memory_equal(u, U, 16);
	assert_memory_equal(f, F, 16);
	assert_int_equal(uid, 0x01020304);
	assert_int_equal(k[32], 1);
	assert_int_equal(k[35], 4);
	assert_int_equal(sk_msg_parse(k, sizeof(k) - 1, u, f, &uid), -1);
}

static void test_change_and_blob_round_trip(void **state)
{
	uint8_t k[SK_CHANGE_LEN], u[16], f[16], sha[32], sha2[32], b[SK_BLOB_LEN], r[SK_BLOBREF_LEN];
	uint64_t modseq;
	uint32_t chunk, uid;

	sk_change(k, U, F, 0x0102030405060708ull);
	assert_int_equal(sk_change_parse(k, sizeof(k), u, f, &modseq), 0);
	assert_true(modseq == 0x0102030405060708ull);
	for (int i = 0; i < 32; i++)
		sha[i] = (uint8_t)(i * 7);
	sk_blob(b, sha, 9);
	assert_int_equal(sk_blob_parse(b, sizeof(b), sha2, &chunk), 0);
	assert_memory_equal(sha, sha2, 32);
	assert_int_equal(chunk, 9);
	sk_blobref(r, sha, U, F, 77);
	assert_int_equal(sk_blobref_parse(r, sizeof(r), sha2, u, f, &uid), 0);
	assert_memory_equal(sha2, sha, 32);
	assert_memory_equal(u, U, 16);
	assert_memory_equal(f, F, 16);
	assert_int_equal(uid, 77);
}

/* memcmp order of keys must be numeric order of UIDs and modseqs. */
static void test_big_endian_order(void **state)
{
	const uint32_t uids[] = { 1, 2, 255, 256, 65535, 65536, 0x7fffffff, 0xfffffffe };
	uint8_t a[SK_MSG_LEN], b[SK_MSG_LEN];

	for (size_t i = 0; i + 1 < sizeof(uids) / sizeof(uids[0]); i++) {
		sk_msg(a, U, F, uids[i]);
		sk_msg(b, U, F, uids[i + 1]);
		assert_true(memcmp(a, b, sizeof(a)) < 0);
	}
	uint8_t c1[SK_CHANGE_LEN], c2[SK_CHANGE_LEN];

	sk_change(c1, U, F, 255);
	sk_change(c2, U, F, 256);
	assert_true(memcmp(c1, c2, sizeof(c1)) < 0);
	sk_change(c1, U, F, 0xffffffffull);
	sk_change(c2, U, F, 0x100000000ull);
	assert_true(memcmp(c1, c2, sizeof(c1)) < 0);
}

static void test_prefix_end(void **state)
{
	uint8_t p[3] = { 1, 0xff, 0xff }, out[3], m[SK_MSG_LEN], end[16];

	assert_int_equal(sk_prefix_end(p, 3, out), 0);
	assert_int_equal(out[0], 2);
	assert_int_equal(out[1], 0);
	assert_int_equal(out[2], 0);
	memset(p, 0xff, 3);
	assert_int_equal(sk_prefix_end(p, 3, out), -1);
	/* every key of the user sorts below user+1 */
	sk_msg(m, U, F, 0xffffffff);
	assert_int_equal(sk_prefix_end(U, 16, end), 0);
	assert_true(memcmp(m, end, 16) < 0);
}

static void test_text_keys(void **state)
{
	tbuf k = TBUF_INIT;
	uint8_t sha[32], back[32];

	sk_user(&k, "Example.TEST", "Bob");
	assert_string_equal(tbuf_cstr(&k), "user/example.test/bob");
	sk_addr(&k, "example.test", "Sales");
	assert_string_equal(tbuf_cstr(&k), "addr/example.test/sales");
	sk_domain(&k, "EXAMPLE.test");
	assert_string_equal(tbuf_cstr(&k), "domain/example.test");
	sk_ipgroup(&k, "Local clients");
	assert_string_equal(tbuf_cstr(&k), "ipgroup/local clients");
	sk_user_prefix(&k, "example.test");
	assert_string_equal(tbuf_cstr(&k), "user/example.test/");
	sk_userid(&k, U);
	assert_int_equal(k.len, 7 + 16);
	assert_memory_equal(k.data + 7, U, 16);
	memset(sha, 0xab, 32);
	sk_blobgc(&k, sha);
	assert_int_equal(sk_blobgc_parse(k.data, k.len, back), 0);
	assert_memory_equal(back, sha, 32);
	assert_int_equal(sk_blobgc_parse(k.data, k.len - 1, back), -1);
	tbuf_free(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_msg_round_trip),
		cmocka_unit_test(test_change_and_blob_round_trip),
		cmocka_unit_test(test_big_endian_order),
		cmocka_unit_test(test_prefix_end),
		cmocka_unit_test(test_text_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
