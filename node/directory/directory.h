/* directory.h - the node side of directory mapping (DESIGN.md §7, guide ch. 10): each
 * domain's DirectoryConfig (bind password encrypted under the node secret), the sync
 * loop that turns directory users and groups into accounts (Tern__User.ldap = 1), and
 * the password check of mapped users behind auth_check_password. ldapmap/ talks to the
 * directory; this module is the only one that joins it to the store.
 *
 * Every directory call blocks: they run on the auth worker pool, never on an I/O
 * thread. The bind password is never logged and never returned by the admin API. */
#ifndef TERN_DIRECTORY_H
#define TERN_DIRECTORY_H
#include <stddef.h>
#include "ldapmap.h"
#include "store.h"
#include "tern.h"

#define DIR_SECRET_KEY_FILE "ssl/secret.key"    /* under the data dir, 0600, 32 bytes */
#define DIR_PASSWORD_MAX 1024

/* What the directory service runs on; every pointer outlives it. */
typedef struct directory_env {
	store *st;
	const tern_conf *conf;       /* [directory] settings */
	tern_pool *auth_pool;        /* sync jobs and password checks */
	const char *data_dir;        /* DATA: the node secret lives in DATA/ssl/secret.key */
} directory_env;

typedef struct directory directory;

/* Start the sync loop (a timer thread that hands one job per due domain to the auth
 * pool) and register the mapped-user password check with auth_set_directory().
 * Call after the auth pool exists and before the listeners serve. 0 ok; -1 with
 * *error_r (malloc'd). */
int directory_start(const directory_env *env, directory **d_r, char **error_r);
/* Unregister the password check, stop the timer and wait for running sync jobs.
 * Call before the auth pool is freed. */
void directory_stop(directory **d);
/* Run a sync of domain now (full = 1: the whole list) on the auth pool (tests, admin
 * changes). 0 queued, -1 when unknown or busy. */
int directory_sync_now(directory *d, const char *domain, int full);

/* auth_gssapi_map_fn (auth_gssapi.h) of Kerberos logins; arg is the store. The realm of
 * principal "name@REALM" picks the domain whose enabled mapping has that realm
 * (case-insensitive; with several, the one where name@domain is an account, else the
 * first); login_r gets "name@domain" in lower case. Principals with an instance
 * ("name/admin@REALM") have no account. 0 ok, -1 no domain has that realm. Blocking. */
int directory_map_principal(void *st, const char *principal, char *login_r, size_t n);

/* ---- dir_config.c: the stored mapping of a domain ---- */

/* Encrypt password for domain (AES-256-GCM under DATA/ssl/secret.key, made at first
 * use; the domain is the associated data) into *out (malloc'd; free out->data).
 * 0 ok, -1 with *error_r (static). */
int dir_secret_encrypt(const char *data_dir, const char *domain, const char *password,
		       ProtobufCBinaryData *out, const char **error_r);
/* The clear bind password of a stored record (malloc'd, wipe and free it). An empty
 * record field gives "". 0 ok, -1 with *error_r (static): no key, tampered data. */
int dir_secret_decrypt(const char *data_dir, const Tern__DirectoryConfig *c, char **password_r,
		       const char **error_r);
/* Overwrite and free a clear password; NULLs it. */
void dir_password_free(char **password);

/* Text names of the record's enums, as in the API and ternctl ("ad", "ldaps", ...). */
const char *dir_type_name(Tern__DirectoryConfig__Type t);
const char *dir_tls_name(Tern__DirectoryConfig__Tls t);
const char *dir_auth_name(Tern__DirectoryConfig__Auth a);
int dir_type_parse(const char *s, Tern__DirectoryConfig__Type *t_r);
int dir_tls_parse(const char *s, Tern__DirectoryConfig__Tls *t_r);
int dir_auth_parse(const char *s, Tern__DirectoryConfig__Auth *a_r);

/* Fill an lm_config from the record, the [directory] settings and the clear password;
 * its strings point into c, conf and password, which must outlive it. */
void dir_config_lm(const Tern__DirectoryConfig *c, const tern_conf *conf, const char *password,
		   lm_config *out);
/* `ternctl directory test`: read the domain's mapping, decrypt, lm_test into report.
 * Blocking (auth pool). 0 all good; -1 a step failed (report says which). *mapped_r is
 * 0 (and -1 returned) when the domain has no mapping. */
int dir_config_test(store *st, const tern_conf *conf, const char *data_dir, const char *domain,
		    tbuf *report, int *mapped_r);

#endif
