/* test_node_password.c - password rules, yescrypt hashes, SCRAM-SHA-256 keys (RFC 7677). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include "auth.h"
#include "tern.h"

/* Decode base64 text into out; returns the decoded length (padding accounted for). */
static size_t b64dec(const char *text, uint8_t *out, size_t max)
{
	size_t len = strlen(text), n;
	int r;

	assert_true(len % 4 == 0 && len / 4 * 3 <= max);
	r = EVP_DecodeBlock(out, (const unsigned char *)text, (int)len);
	assert_true(r >= 0);
	n = (size_t)r;
	if (len >= 1 && text[len - 1] == '=')
		n--;
	if (len >= 2 && text[len - 2] == '=')
		n--;
	return n;
}

static void test_acceptable(void **state)
{
	char long_ok[AUTH_PASSWORD_MAX + 1], too_long[AUTH_PASSWORD_MAX + 2];
	const char *why = NULL;

	memset(long_ok, 'x', AUTH_PASSWORD_MAX);
	long_ok[AUTH_PASSWORD_MAX] = '\0';
	memset(too_long, 'x', AUTH_PASSWORD_MAX + 1);
	too_long[AUTH_PASSWORD_MAX + 1] = '\0';

	assert_int_equal(auth_password_acceptable("pencil", &why), 1);
	assert_null(why);
	assert_int_equal(auth_password_acceptable(" ~Aa0!", &why), 1);
	assert_int_equal(auth_password_acceptable(long_ok, &why), 1);

	assert_int_equal(auth_password_acceptable("", &why), 0);
	assert_non_null(why);
	assert_int_equal(auth_password_acceptable(NULL, &why), 0);
	assert_int_equal(auth_password_acceptable(too_long, &why), 0);
	assert_int_equal(auth_password_acceptable("tab\there", &why), 0);
	assert_int_equal(auth_password_acceptable("del\x7f", &why), 0);
	assert_int_equal(auth_password_acceptable("caf\xc3\xa9", &why), 0);
	assert_int_equal(auth_password_acceptable("line\n", NULL), 0);
}

static void test_hash_verify(void **state)
{
	Tern__ScramKeys s1 = TERN__SCRAM_KEYS__INIT, s2 = TERN__SCRAM_KEYS__INIT;
	uint8_t stored[32], server[32];
	char *h1 = NULL, *h2 = NULL;

	assert_int_equal(auth_password_hash("Secret pass 1", &h1, &s1), 0);
	assert_non_null(h1);
	assert_memory_equal(h1, "$y$", 3);
	assert_int_equal(auth_password_verify("Secret pass 1", h1), 1);
	assert_int_equal(auth_password_verify("secret pass 1", h1), 0);   /* case-sensitive */
	assert_int_equal(auth_password_verify("Secret pass 11", h1), 0);
	assert_int_equal(auth_password_verify("", h1), 0);

	/* Same password, new salt: different hash and SCRAM keys; both still verify. */
	assert_int_equal(auth_password_hash("Secret pass 1", &h2, &s2), 0);
	assert_string_not_equal(h1, h2);
	assert_int_equal(auth_password_verify("Secret pass 1", h2), 1);

	assert_int_equal(s1.iterations, AUTH_SCRAM_ITERATIONS);
	assert_int_equal(s1.salt.len, 16);
	assert_int_equal(s1.stored_key.len, 32);
	assert_int_equal(s1.server_key.len, 32);
	assert_memory_not_equal(s1.salt.data, s2.salt.data, 16);
	assert_memory_not_equal(s1.stored_key.data, s2.stored_key.data, 32);

	/* The stored keys are those of the password with the stored salt. */
	assert_int_equal(auth_scram_keys("Secret pass 1", s1.salt.data, s1.salt.len, s1.iterations,
					 stored, server), 0);
	assert_memory_equal(stored, s1.stored_key.data, 32);
	assert_memory_equal(server, s1.server_key.data, 32);

	auth_scram_clear(&s1);
	assert_null(s1.salt.data);
	assert_int_equal(s1.stored_key.len, 0);
	auth_scram_clear(&s2);
	free(h1);
	free(h2);
}

static void test_refused_input(void **state)
{
	Tern__ScramKeys s = TERN__SCRAM_KEYS__INIT;
	char *h = (char *)"untouched";

	assert_true(auth_password_hash("", &h, &s) < 0);
	assert_null(h);
	assert_true(auth_password_hash("bad\x01", &h, &s) < 0);
	assert_null(h);
	/* Not a yescrypt hash: never matches, even for the "right" text. */
	assert_int_equal(auth_password_verify("x", ""), 0);
	assert_int_equal(auth_password_verify("x", "*"), 0);
	assert_int_equal(auth_password_verify("x", NULL), 0);
	assert_int_equal(auth_password_verify("password", "$1$abcdefgh$0123456789012345678901"), 0);
	assert_int_equal(auth_password_verify("password", "$y$garbage"), 0);
}

/* RFC 7677 section 3: user "user", password "pencil". The server checks the client's
 * proof with StoredKey only (ClientKey = proof XOR HMAC(StoredKey, AuthMessage), then
 * SHA-256(ClientKey) == StoredKey) and signs with ServerKey. */
static void test_scram_rfc7677(void **state)
{
	static const char client_first_bare[] = "n=user,r=rOprNGfwEbeRWgbNEkqO";
	static const char server_first[] =
		"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
	static const char client_final_no_proof[] =
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
	uint8_t salt[32], proof[48], want_sig[48], stored[32], server[32];
	uint8_t client_sig[32], client_key[32], check[32], server_sig[32];
	uint8_t want_stored[32], want_server[32];
	unsigned int n = 0;
	size_t salt_len, proof_len, sig_len;
	tbuf am = TBUF_INIT;

	salt_len = b64dec("W22ZaJ0SNY7soEsUEjb6gQ==", salt, sizeof(salt));
	assert_int_equal(salt_len, 16);
	assert_int_equal(auth_scram_keys("pencil", salt, salt_len, 4096, stored, server), 0);

	/* Values computed independently (Python hashlib/hmac) from the RFC's inputs. */
	assert_int_equal(tern_unhex("586e5df283e6dceb5c3e791d8b8528ec191e664045ce971792e2e6b5bb13e2a6",
				    want_stored, 32), 0);
	assert_int_equal(tern_unhex("c1f3cbc1c13a9d35a14c0990eed97629ea225863e566a4314ab99f3f00e5d9d5",
				    want_server, 32), 0);
	assert_memory_equal(stored, want_stored, 32);
	assert_memory_equal(server, want_server, 32);

	tbuf_appendf(&am, "%s,%s,%s", client_first_bare, server_first, client_final_no_proof);

	proof_len = b64dec("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", proof, sizeof(proof));
	assert_int_equal(proof_len, 32);
	assert_non_null(HMAC(EVP_sha256(), stored, 32, (const unsigned char *)am.data, am.len,
			     client_sig, &n));
	assert_int_equal(n, 32);
	for (size_t i = 0; i < 32; i++)
		client_key[i] = proof[i] ^ client_sig[i];
	SHA256(client_key, 32, check);
	assert_memory_equal(check, stored, 32);

	sig_len = b64dec("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", want_sig, sizeof(want_sig));
	assert_int_equal(sig_len, 32);
	assert_non_null(HMAC(EVP_sha256(), server, 32, (const unsigned char *)am.data, am.len,
			     server_sig, &n));
	assert_memory_equal(server_sig, want_sig, 32);

	/* A wrong password gives keys that reject the RFC's proof. */
	assert_int_equal(auth_scram_keys("pencil2", salt, salt_len, 4096, stored, server), 0);
	assert_memory_not_equal(stored, want_stored, 32);

	assert_true(auth_scram_keys("pencil", salt, 0, 4096, stored, server) < 0);
	assert_true(auth_scram_keys("pencil", salt, salt_len, 0, stored, server) < 0);
	tbuf_free(&am);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_acceptable),
		cmocka_unit_test(test_hash_verify),
		cmocka_unit_test(test_refused_input),
		cmocka_unit_test(test_scram_rfc7677),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
