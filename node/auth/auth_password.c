/* auth_password.c - password rules, yescrypt hashes and SCRAM-SHA-256 stored keys.
 * The yescrypt hash (libcrypt, reentrant crypt_ra) checks plain logins; the SCRAM keys
 * (RFC 5802 section 3, RFC 7677) let SASL SCRAM-SHA-256 run without the password.
 * Neither form can be turned back into the password. */
#include <crypt.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include "auth.h"
#include "tern.h"

#define AUTH_SCRAM_SALT_LEN 16
#define AUTH_SCRAM_KEY_LEN 32   /* SHA-256 output */

/* The guide (ch. 8) wants case-sensitive printable ASCII; a bound keeps the slow hash
 * from being fed megabytes by a client. */
int auth_password_acceptable(const char *password, const char **why_r)
{
	const char *why = NULL;
	size_t len = password ? strlen(password) : 0;

	if (len == 0)
		why = "the password is empty";
	else if (len > AUTH_PASSWORD_MAX)
		why = "the password is longer than 256 characters";
	for (size_t i = 0; why == NULL && i < len; i++) {
		unsigned char c = (unsigned char)password[i];
		if (c < 0x20 || c > 0x7e)
			why = "the password may hold printable ASCII characters only";
	}
	if (why_r)
		*why_r = why;
	return why == NULL;
}

/* Run yescrypt with `setting` (a fresh salt or a stored hash) into a malloc'd string.
 * NULL when libcrypt refuses (it then returns a "*"-string or NULL). */
static char *auth_crypt(const char *password, const char *setting)
{
	void *data = NULL;
	int size = 0;
	char *out = NULL;
	const char *h = crypt_ra(password, setting, &data, &size);

	if (h != NULL && h[0] != '*')
		out = strdup(h);
	if (data != NULL) {
		OPENSSL_cleanse(data, (size_t)size);
		free(data);
	}
	return out;
}

/* PBKDF2 then the two HMACs of RFC 5802; the salted password and the client key are
 * wiped before returning. */
int auth_scram_keys(const char *password, const uint8_t *salt, size_t salt_len, uint32_t iterations,
		    uint8_t stored_key[32], uint8_t server_key[32])
{
	uint8_t salted[AUTH_SCRAM_KEY_LEN], client_key[AUTH_SCRAM_KEY_LEN];
	unsigned int n1 = 0, n2 = 0;
	int rc = -1;

	if (password == NULL || salt == NULL || salt_len == 0 || iterations == 0 ||
	    iterations > (uint32_t)INT32_MAX || salt_len > (size_t)INT32_MAX)
		return -1;
	if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, (int)iterations,
			      EVP_sha256(), sizeof(salted), salted) != 1)
		goto out;
	if (HMAC(EVP_sha256(), salted, sizeof(salted), (const unsigned char *)"Client Key", 10,
		 client_key, &n1) == NULL || n1 != AUTH_SCRAM_KEY_LEN)
		goto out;
	if (HMAC(EVP_sha256(), salted, sizeof(salted), (const unsigned char *)"Server Key", 10,
		 server_key, &n2) == NULL || n2 != AUTH_SCRAM_KEY_LEN)
		goto out;
	SHA256(client_key, sizeof(client_key), stored_key);
	rc = 0;
out:
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	return rc;
}

/* Copy n bytes into a protobuf bytes field (malloc'd). */
static int auth_bytes_set(ProtobufCBinaryData *f, const uint8_t *p, size_t n)
{
	f->data = malloc(n);
	if (f->data == NULL) {
		f->len = 0;
		return -1;
	}
	memcpy(f->data, p, n);
	f->len = n;
	return 0;
}

void auth_scram_clear(Tern__ScramKeys *scram)
{
	if (scram == NULL)
		return;
	free(scram->salt.data);
	free(scram->stored_key.data);
	free(scram->server_key.data);
	scram->salt.data = scram->stored_key.data = scram->server_key.data = NULL;
	scram->salt.len = scram->stored_key.len = scram->server_key.len = 0;
	scram->iterations = 0;
}

/* Both forms are made from one password at once, so that SCRAM and plain logins always
 * agree. The caller has checked auth_password_acceptable(); this refuses bad input too. */
int auth_password_hash(const char *password, char **hash_r, Tern__ScramKeys *scram)
{
	uint8_t salt[AUTH_SCRAM_SALT_LEN];
	uint8_t stored[AUTH_SCRAM_KEY_LEN], server[AUTH_SCRAM_KEY_LEN];
	char *setting, *hash;

	*hash_r = NULL;
	if (!auth_password_acceptable(password, NULL))
		return -1;
	/* Cost 0 is libcrypt's default for yescrypt; NULL rbytes = its own secure random. */
	setting = crypt_gensalt_ra("$y$", 0, NULL, 0);
	if (setting == NULL)
		return -1;
	hash = auth_crypt(password, setting);
	free(setting);
	if (hash == NULL)
		return -1;

	tern_random(salt, sizeof(salt));
	if (auth_scram_keys(password, salt, sizeof(salt), AUTH_SCRAM_ITERATIONS, stored, server) < 0) {
		free(hash);
		return -1;
	}
	tern__scram_keys__init(scram);
	scram->iterations = AUTH_SCRAM_ITERATIONS;
	if (auth_bytes_set(&scram->salt, salt, sizeof(salt)) < 0 ||
	    auth_bytes_set(&scram->stored_key, stored, sizeof(stored)) < 0 ||
	    auth_bytes_set(&scram->server_key, server, sizeof(server)) < 0) {
		auth_scram_clear(scram);
		free(hash);
		return -1;
	}
	OPENSSL_cleanse(stored, sizeof(stored));
	OPENSSL_cleanse(server, sizeof(server));
	*hash_r = hash;
	return 0;
}

/* Hash the candidate with the stored setting and compare in constant time. Only
 * yescrypt hashes are accepted: an empty or foreign hash never matches. */
int auth_password_verify(const char *password, const char *hash)
{
	char *cand;
	size_t n;
	int ok;

	if (password == NULL || hash == NULL || strncmp(hash, "$y$", 3) != 0)
		return 0;
	if (strlen(password) > AUTH_PASSWORD_MAX)
		return 0;
	cand = auth_crypt(password, hash);
	if (cand == NULL)
		return 0;
	n = strlen(hash);
	ok = strlen(cand) == n && CRYPTO_memcmp(cand, hash, n) == 0;
	OPENSSL_cleanse(cand, strlen(cand));
	free(cand);
	return ok;
}
