/* dir_config.c - a domain's stored mapping: the bind password sealed with AES-256-GCM
 * under the node secret DATA/ssl/secret.key (32 random bytes, 0600, made at first use),
 * the enum names of the API, and the lm_config the ldapmap calls take.
 * Sealed form: version byte 1, 12-byte nonce, ciphertext, 16-byte tag; the domain name
 * is the associated data, so a sealed password cannot be moved to another domain. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "directory.h"

#define SECRET_LEN 32
#define SEAL_VERSION 1
#define SEAL_NONCE 12
#define SEAL_TAG 16

/* Serialises reading and making the node secret. */
static pthread_mutex_t key_mu = PTHREAD_MUTEX_INITIALIZER;

/* Read exactly SECRET_LEN bytes from path: 0 ok, 1 absent, -1 bad. */
static int key_read(const char *path, unsigned char key[SECRET_LEN])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	unsigned char extra;

	if (fd < 0)
		return errno == ENOENT ? 1 : -1;
	ssize_t n = read(fd, key, SECRET_LEN);
	ssize_t more = read(fd, &extra, 1);

	close(fd);
	return n == SECRET_LEN && more == 0 ? 0 : -1;
}

/* Make the key file atomically: write a private temporary file, then link() it to the
 * final name, which fails when another thread or process made one first. */
static int key_create(const char *dir, const char *path)
{
	unsigned char key[SECRET_LEN];
	char tmp[4200];
	int rc = -1;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -1;
	int w = snprintf(tmp, sizeof(tmp), "%s.%ld.%lx", path, (long)getpid(), (unsigned long)pthread_self());
	if (w < 0 || (size_t)w >= sizeof(tmp) || RAND_bytes(key, sizeof(key)) != 1)
		return -1;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (write(fd, key, sizeof(key)) == (ssize_t)sizeof(key) && fsync(fd) == 0)
		rc = 0;
	close(fd);
	if (rc == 0 && link(tmp, path) < 0 && errno != EEXIST)
		rc = -1;
	unlink(tmp);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

/* The node secret of data_dir, made at first use. 0 ok, -1 with *error_r. */
static int secret_key(const char *data_dir, unsigned char key[SECRET_LEN], const char **error_r)
{
	char dir[4200], path[4200];
	int rc;

	/* Read at every use, never cached: joining a distributed domain replaces the file
	 * with the domain's shared secret while the node runs (cluster_join). */
	pthread_mutex_lock(&key_mu);
	int w1 = snprintf(dir, sizeof(dir), "%s/ssl", data_dir);
	int w2 = snprintf(path, sizeof(path), "%s/%s", data_dir, DIR_SECRET_KEY_FILE);
	if (w1 < 0 || (size_t)w1 >= sizeof(dir) || w2 < 0 || (size_t)w2 >= sizeof(path) ||
	    strlen(data_dir) >= 4096) {
		pthread_mutex_unlock(&key_mu);
		*error_r = "data directory path too long";
		return -1;
	}
	rc = key_read(path, key);
	if (rc == 1)
		rc = key_create(dir, path) == 0 ? key_read(path, key) : -1;
	if (rc != 0) {
		pthread_mutex_unlock(&key_mu);
		*error_r = "the node secret DATA/" DIR_SECRET_KEY_FILE " cannot be read or made";
		return -1;
	}
	pthread_mutex_unlock(&key_mu);
	return 0;
}

int dir_secret_encrypt(const char *data_dir, const char *domain, const char *password,
		       ProtobufCBinaryData *out, const char **error_r)
{
	unsigned char key[SECRET_LEN];
	size_t plen = strlen(password);
	int len = 0, fin = 0, ok = 0;

	out->data = NULL;
	out->len = 0;
	if (plen > DIR_PASSWORD_MAX) {
		*error_r = "bind password too long";
		return -1;
	}
	if (secret_key(data_dir, key, error_r) < 0)
		return -1;
	uint8_t *p = malloc(1 + SEAL_NONCE + plen + SEAL_TAG);
	EVP_CIPHER_CTX *cx = EVP_CIPHER_CTX_new();
	if (p == NULL || cx == NULL)
		abort();
	p[0] = SEAL_VERSION;
	if (RAND_bytes(p + 1, SEAL_NONCE) == 1 &&
	    EVP_EncryptInit_ex(cx, EVP_aes_256_gcm(), NULL, key, p + 1) == 1 &&
	    EVP_EncryptUpdate(cx, NULL, &len, (const unsigned char *)domain, (int)strlen(domain)) == 1 &&
	    EVP_EncryptUpdate(cx, p + 1 + SEAL_NONCE, &len, (const unsigned char *)password, (int)plen) == 1 &&
	    EVP_EncryptFinal_ex(cx, p + 1 + SEAL_NONCE + len, &fin) == 1 &&
	    EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG, p + 1 + SEAL_NONCE + plen) == 1)
		ok = (size_t)(len + fin) == plen;
	EVP_CIPHER_CTX_free(cx);
	OPENSSL_cleanse(key, sizeof(key));
	if (!ok) {
		free(p);
		*error_r = "encryption failed";
		return -1;
	}
	out->data = p;
	out->len = 1 + SEAL_NONCE + plen + SEAL_TAG;
	return 0;
}

int dir_secret_decrypt(const char *data_dir, const Tern__DirectoryConfig *c, char **password_r,
		       const char **error_r)
{
	unsigned char key[SECRET_LEN];
	const uint8_t *p = c->bind_password.data;
	size_t n = c->bind_password.len;
	int len = 0, fin = 0, ok = 0;

	*password_r = NULL;
	if (n == 0) {
		*password_r = strdup("");
		return *password_r ? 0 : -1;
	}
	if (n < 1 + SEAL_NONCE + SEAL_TAG || p[0] != SEAL_VERSION) {
		*error_r = "stored bind password is malformed";
		return -1;
	}
	if (secret_key(data_dir, key, error_r) < 0)
		return -1;
	size_t clen = n - 1 - SEAL_NONCE - SEAL_TAG;
	char *out = malloc(clen + 1);
	EVP_CIPHER_CTX *cx = EVP_CIPHER_CTX_new();
	if (out == NULL || cx == NULL)
		abort();
	const char *domain = c->domain ? c->domain : "";
	if (EVP_DecryptInit_ex(cx, EVP_aes_256_gcm(), NULL, key, p + 1) == 1 &&
	    EVP_DecryptUpdate(cx, NULL, &len, (const unsigned char *)domain, (int)strlen(domain)) == 1 &&
	    EVP_DecryptUpdate(cx, (unsigned char *)out, &len, p + 1 + SEAL_NONCE, (int)clen) == 1 &&
	    EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG, (void *)(p + n - SEAL_TAG)) == 1 &&
	    EVP_DecryptFinal_ex(cx, (unsigned char *)out + len, &fin) == 1)
		ok = (size_t)(len + fin) == clen;
	EVP_CIPHER_CTX_free(cx);
	OPENSSL_cleanse(key, sizeof(key));
	if (!ok || memchr(out, '\0', clen) != NULL) {
		OPENSSL_cleanse(out, clen + 1);
		free(out);
		*error_r = "stored bind password cannot be decrypted with this node's secret";
		return -1;
	}
	out[clen] = '\0';
	*password_r = out;
	return 0;
}

void dir_password_free(char **password)
{
	if (*password == NULL)
		return;
	OPENSSL_cleanse(*password, strlen(*password));
	free(*password);
	*password = NULL;
}

/* ---- names ---- */

static const char *const type_names[] = { "ldap", "ad", "od" };
static const char *const tls_names[] = { "plain", "ldaps", "starttls" };
static const char *const auth_names[] = { "kerberos", "bind" };

const char *dir_type_name(Tern__DirectoryConfig__Type t)
{
	return (unsigned)t < 3 ? type_names[t] : "ldap";
}

const char *dir_tls_name(Tern__DirectoryConfig__Tls t)
{
	return (unsigned)t < 3 ? tls_names[t] : "plain";
}

const char *dir_auth_name(Tern__DirectoryConfig__Auth a)
{
	return (unsigned)a < 2 ? auth_names[a] : "kerberos";
}

static int name_parse(const char *s, const char *const *names, int n)
{
	for (int i = 0; s != NULL && i < n; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return -1;
}

int dir_type_parse(const char *s, Tern__DirectoryConfig__Type *t_r)
{
	int i = name_parse(s, type_names, 3);

	if (i >= 0)
		*t_r = (Tern__DirectoryConfig__Type)i;
	return i < 0 ? -1 : 0;
}

int dir_tls_parse(const char *s, Tern__DirectoryConfig__Tls *t_r)
{
	int i = name_parse(s, tls_names, 3);

	if (i >= 0)
		*t_r = (Tern__DirectoryConfig__Tls)i;
	return i < 0 ? -1 : 0;
}

int dir_auth_parse(const char *s, Tern__DirectoryConfig__Auth *a_r)
{
	int i = name_parse(s, auth_names, 2);

	if (i >= 0)
		*a_r = (Tern__DirectoryConfig__Auth)i;
	return i < 0 ? -1 : 0;
}

/* ---- ldapmap ---- */

void dir_config_lm(const Tern__DirectoryConfig *c, const tern_conf *conf, const char *password,
		   lm_config *out)
{
	static const lm_type types[] = { LM_TYPE_LDAP, LM_TYPE_AD, LM_TYPE_OD };
	static const lm_tls tlss[] = { LM_TLS_PLAIN, LM_TLS_LDAPS, LM_TLS_STARTTLS };

	memset(out, 0, sizeof(*out));
	out->domain = c->domain ? c->domain : "";
	out->type = (unsigned)c->type < 3 ? types[c->type] : LM_TYPE_LDAP;
	out->server = c->server ? c->server : "";
	out->backup_server = c->backup_server ? c->backup_server : "";
	out->tls = (unsigned)c->tls < 3 ? tlss[c->tls] : LM_TLS_PLAIN;
	out->ca_file = c->ca_file ? c->ca_file : "";
	out->bind_dn = c->bind_dn ? c->bind_dn : "";
	out->bind_password = password;
	out->base = c->search_base ? c->search_base : "";
	out->directory_domain = c->directory_domain ? c->directory_domain : "";
	out->realm = c->realm ? c->realm : "";
	out->auth = c->auth == TERN__DIRECTORY_CONFIG__AUTH__BIND ? LM_AUTH_BIND : LM_AUTH_KERBEROS;
	out->timeout = (int)conf->directory_timeout;
	out->failover_retry = (int)conf->directory_failover_retry;
	out->keytab = conf->directory_keytab ? conf->directory_keytab : "";
}

int dir_config_test(store *st, const tern_conf *conf, const char *data_dir, const char *domain,
		    tbuf *report, int *mapped_r)
{
	Tern__DirectoryConfig *c = NULL;
	char *password = NULL;
	const char *why = NULL;
	lm_config lc;

	*mapped_r = 0;
	if (store_directory_get(st, domain, &c) != STORE_OK)
		return -1;
	*mapped_r = 1;
	if (dir_secret_decrypt(data_dir, c, &password, &why) < 0) {
		tbuf_appendf(report, "configuration: %s\n", why);
		store_free_record(c);
		return -1;
	}
	dir_config_lm(c, conf, password, &lc);
	int rc = lm_test(&lc, report);
	dir_password_free(&password);
	store_free_record(c);
	return rc == 0 ? 0 : -1;
}
