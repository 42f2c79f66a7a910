/* auth.h - passwords and account lockout (node/auth/).
 * Passwords are kept as a yescrypt hash (libcrypt) plus SCRAM-SHA-256 stored keys
 * (RFC 5802, RFC 7677) - never in clear, never reversibly. Hashing is slow on purpose:
 * call these on the auth worker pool, not on an I/O thread. */
#ifndef TERN_AUTH_H
#define TERN_AUTH_H
#include <stddef.h>
#include <stdint.h>
#include "records.pb-c.h"

#define AUTH_SCRAM_ITERATIONS 4096
#define AUTH_PASSWORD_MAX 256

/* Password rules of the guide (ch. 8): printable ASCII, case-sensitive, not empty.
 * 1 when acceptable; else 0 with *why_r (static). */
int auth_password_acceptable(const char *password, const char **why_r);
/* Make the yescrypt hash (malloc'd "$y$...") and fill scram (salt, iterations, stored
 * and server keys; its byte fields malloc'd - free with auth_scram_clear). 0 ok. */
int auth_password_hash(const char *password, char **hash_r, Tern__ScramKeys *scram);
void auth_scram_clear(Tern__ScramKeys *scram);
/* 1 when password matches the stored hash (constant-time compare), else 0. */
int auth_password_verify(const char *password, const char *hash);
/* SCRAM-SHA-256 proof check helpers for the SASL issue: compute ClientKey/StoredKey. */
int auth_scram_keys(const char *password, const uint8_t *salt, size_t salt_len, uint32_t iterations,
		    uint8_t stored_key[32], uint8_t server_key[32]);

/* Account lockout (guide ch. 12.8): after `threshold` failed logins from one IP the
 * account is locked for `lock_seconds`. Thread-safe, in memory. */
typedef struct auth_lockout auth_lockout;
auth_lockout *auth_lockout_new(unsigned threshold, int64_t lock_seconds);
void auth_lockout_free(auth_lockout **l);
/* 1 when the account (lower-case address) is locked now. */
int auth_lockout_is_locked(auth_lockout *l, const char *account, const char *ip);
/* 1 when the account is locked now for at least one client address (for status output
 * such as the admin API's user stats; logins use auth_lockout_is_locked). */
int auth_lockout_is_locked_any(auth_lockout *l, const char *account);
void auth_lockout_failed(auth_lockout *l, const char *account, const char *ip);
void auth_lockout_succeeded(auth_lockout *l, const char *account, const char *ip);
/* Unlock one account (NULL = every account). Returns the number unlocked. */
unsigned auth_lockout_unlock(auth_lockout *l, const char *account);

/* Directory-mapped accounts (node/directory): auth_check_password hands the password
 * check of a user with Tern__User.ldap set, and of a login unknown here (a directory user
 * not synced yet), to the registered function, after the lockout check. fn gets the
 * address as given (name@domain, lower case) and returns AUTH_DIR_*; on AUTH_DIR_OK it
 * fills account_r with the canonical "name@domain"; otherwise *reason_r is a static text
 * for the security log. Register before serving; fn NULL unregisters. Blocking. */
enum { AUTH_DIR_OK = 0, AUTH_DIR_REFUSED = 1, AUTH_DIR_UNAVAILABLE = 2, AUTH_DIR_NOT_MAPPED = 3 };
typedef int (*auth_directory_fn)(void *ctx, const char *address, const char *password,
				 char *account_r, size_t account_n, const char **reason_r);
void auth_set_directory(auth_directory_fn fn, void *ctx);

#endif
