/* net_tls.c - the server certificate and SSL_CTX.
 *
 * DATA/ssl/server.key and server.crt are used when both exist. When neither exists (first
 * start) a self-signed pair is made: RSA 2048, X509v3, CN and SAN = the Internet hostname,
 * plus DNS:localhost and IP:127.0.0.1, valid ten years, SHA-256. An existing but unreadable
 * pair is an error: we never overwrite an administrator's certificate. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include "net_int.h"

#define CERT_DAYS 3653

/* The first OpenSSL error as text, for messages. */
static const char *tls_errstr(void)
{
	static __thread char buf[256];
	unsigned long e = ERR_get_error();

	if (e == 0)
		return "unknown OpenSSL error";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

/* Add one v3 extension from its text form; issuer = subject (self-signed). */
static int cert_add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return -1;
	int ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* Build and sign the self-signed certificate for key. */
static X509 *cert_make(EVP_PKEY *key, const char *hostname)
{
	X509 *x = X509_new();
	X509_NAME *name;
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	char san[600];

	if (x == NULL)
		return NULL;
	tern_random(serial, sizeof(serial));
	serial[0] &= 0x7f;    /* positive */
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (bn == NULL || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		goto fail;
	if (!X509_set_version(x, X509_VERSION_3) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), CERT_DAYS, 0, NULL) == NULL ||
	    !X509_set_pubkey(x, key))
		goto fail;
	name = X509_get_subject_name(x);
	/* A CN holds at most 64 characters; a longer name is still in the SAN. */
	const char *cn = strlen(hostname) <= 64 ? hostname : "localhost";
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
					(const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_issuer_name(x, name))
		goto fail;
	int n = snprintf(san, sizeof(san), "DNS:%s,DNS:localhost,IP:127.0.0.1", hostname);
	if (n < 0 || (size_t)n >= sizeof(san))
		goto fail;
	if (cert_add_ext(x, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
	    cert_add_ext(x, NID_key_usage, "critical,digitalSignature,keyEncipherment,keyCertSign") < 0 ||
	    cert_add_ext(x, NID_ext_key_usage, "serverAuth") < 0 ||
	    cert_add_ext(x, NID_subject_key_identifier, "hash") < 0 ||
	    cert_add_ext(x, NID_authority_key_identifier, "keyid:always") < 0 ||
	    cert_add_ext(x, NID_subject_alt_name, san) < 0)
		goto fail;
	if (X509_sign(x, key, EVP_sha256()) == 0)
		goto fail;
	BN_free(bn);
	return x;
fail:
	BN_free(bn);
	X509_free(x);
	return NULL;
}

/* Write a PEM file through a temporary name and rename it into place, so a crash never
 * leaves half a key. mode applies from creation on. */
static int pem_write(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert, char **error_r)
{
	char tmp[4096];
	int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		net_error(error_r, "path too long: %s", path);
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		net_error(error_r, "cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	FILE *f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		net_error(error_r, "cannot write %s: %s", tmp, strerror(errno));
		return -1;
	}
	errno = 0;
	int ok = key != NULL ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
			     : PEM_write_X509(f, cert);
	ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
	if (fclose(f) != 0)
		ok = 0;
	if (!ok || rename(tmp, path) < 0) {
		net_error(error_r, "cannot write %s: %s", path, errno ? strerror(errno) : tls_errstr());
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Make a new key and self-signed certificate and store them. */
static int tls_generate(const char *key_path, const char *crt_path, const char *hostname,
			char **error_r)
{
	EVP_PKEY *key = EVP_RSA_gen(2048);
	X509 *cert = NULL;
	int rc = -1;

	if (key == NULL) {
		net_error(error_r, "cannot generate the TLS key: %s", tls_errstr());
		goto out;
	}
	cert = cert_make(key, hostname);
	if (cert == NULL) {
		net_error(error_r, "cannot make the TLS certificate: %s", tls_errstr());
		goto out;
	}
	if (pem_write(key_path, 0600, key, NULL, error_r) < 0 ||
	    pem_write(crt_path, 0644, NULL, cert, error_r) < 0)
		goto out;
	tlog(TLOG_CONFIG, "Made a self-signed certificate for %s in %s", hostname, crt_path);
	rc = 0;
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

/* Create dir with mode when it does not exist yet. */
static int make_dir(const char *dir, mode_t mode, char **error_r)
{
	if (mkdir(dir, mode) == 0 || errno == EEXIST)
		return 0;
	net_error(error_r, "cannot create %s: %s", dir, strerror(errno));
	return -1;
}

/* The server SSL_CTX from the PEM files, and the certificate fingerprint into srv. */
static int tls_load(tern_server *srv, const char *key_path, const char *crt_path, char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	static const unsigned char sid_ctx[] = "tern";

	if (ctx == NULL) {
		net_error(error_r, "cannot make the TLS context: %s", tls_errstr());
		return -1;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* IGNORE_UNEXPECTED_EOF: a client that hangs up without close_notify is an ordinary
	 * EOF for our framed protocols, not an error (OpenSSL 3 reports it as one). */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
				 SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	if (SSL_CTX_use_certificate_chain_file(ctx, crt_path) != 1) {
		net_error(error_r, "cannot load %s: %s", crt_path, tls_errstr());
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1) {
		net_error(error_r, "cannot load %s: %s", key_path, tls_errstr());
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		net_error(error_r, "%s does not match %s", key_path, crt_path);
		goto fail;
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	X509 *cert = SSL_CTX_get0_certificate(ctx);
	if (cert == NULL || X509_digest(cert, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32) {
		net_error(error_r, "cannot hash %s", crt_path);
		goto fail;
	}
	tern_hex(md, mdlen, srv->fingerprint);
	srv->ssl_ctx = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return -1;
}

int net_tls_setup(tern_server *srv, const char *data_dir, char **error_r)
{
	char dir[4096], key_path[4096], crt_path[4096];
	int n1 = snprintf(dir, sizeof(dir), "%s/ssl", data_dir);
	int n2 = snprintf(key_path, sizeof(key_path), "%s/server.key", dir);
	int n3 = snprintf(crt_path, sizeof(crt_path), "%s/server.crt", dir);

	if (n1 < 0 || n2 < 0 || n3 < 0 || (size_t)n2 >= sizeof(key_path) ||
	    (size_t)n3 >= sizeof(crt_path)) {
		net_error(error_r, "data directory path too long: %s", data_dir);
		return -1;
	}
	if (make_dir(data_dir, 0700, error_r) < 0 || make_dir(dir, 0700, error_r) < 0)
		return -1;
	int have_key = access(key_path, F_OK) == 0;
	int have_crt = access(crt_path, F_OK) == 0;
	if (have_key != have_crt) {
		net_error(error_r, "%s exists without %s", have_key ? key_path : crt_path,
			  have_key ? crt_path : key_path);
		return -1;
	}
	if (!have_key && tls_generate(key_path, crt_path, srv->hostname, error_r) < 0)
		return -1;
	return tls_load(srv, key_path, crt_path, error_r);
}
