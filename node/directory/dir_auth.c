/* dir_auth.c - the password check of mapped users, behind auth_check_password (auth.h:
 * the lockout check has run already). On the auth pool: the directory entry is read
 * again (so a user disabled there is refused at once, and a user unknown here - not
 * synced yet - is written to the store and can log in at once), then the password is
 * checked by Kerberos or LDAP bind (lm_check_password) on this thread's connection.
 * With both directory servers down mapped users are refused ("directory unavailable",
 * a warning.log line); local users never come here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "auth.h"
#include "dir_private.h"

#define REASON_BAD "bad credentials"
#define REASON_DISABLED "bad credentials (account disabled)"
#define REASON_EXPIRED "bad credentials (password expired)"
#define REASON_DOWN "directory unavailable"
#define REASON_OFF "bad credentials (directory mapping is off)"

/* ldapmap's reason (free text) -> one of the static reasons of the security log. */
static const char *static_reason(const char *why)
{
	if (why != NULL && strcasestr(why, "disabled") != NULL)
		return REASON_DISABLED;
	if (why != NULL && strcasestr(why, "expired") != NULL)
		return REASON_EXPIRED;
	return REASON_BAD;
}

/* The directory entry of login; reconnects once after an error. 0 found, 1 not found,
 * -1 the directory cannot be asked (*error_r malloc'd). */
static int find_user(directory *d, const Tern__DirectoryConfig *c, const char *login, lm_user **u_r,
		     lm_conn **conn_r, char **error_r)
{
	int rc = -1;

	for (int attempt = 0; attempt < 2 && rc < 0; attempt++) {
		free(*error_r);
		*error_r = NULL;
		if (attempt > 0)
			dir_conn_drop(c->domain);
		*conn_r = dir_conn_get(d, c, error_r);
		if (*conn_r == NULL)
			return -1;
		rc = lm_find_user(*conn_r, login, u_r, error_r);
	}
	return rc;
}

static void log_down(const char *domain, const char *address, const char *error)
{
	tlog(TLOG_WARNING, "Directory service of %s unavailable, login of %s refused: %s", domain,
	     address, error ? error : "unknown error");
}

/* auth_directory_fn (auth.h). */
static int dir_check(void *ctx, const char *address, const char *password, char *account_r,
		     size_t account_n, const char **reason_r)
{
	directory *d = ctx;
	char local[256], domain[256], canon[256];
	Tern__DirectoryConfig *c = NULL;
	Tern__User *known = NULL;
	lm_user *u = NULL;
	lm_conn *conn = NULL;
	char *error = NULL;
	int rc = AUTH_DIR_NOT_MAPPED;

	*reason_r = REASON_BAD;
	if (tern_split_address(address, local, sizeof(local), domain, sizeof(domain)) < 0 ||
	    store_domain_resolve(d->env.st, domain, canon, sizeof(canon)) != STORE_OK)
		return AUTH_DIR_NOT_MAPPED;
	if (store_user_find(d->env.st, address, &known) == STORE_OK && !known->ldap) {
		store_free_record(known);
		return AUTH_DIR_NOT_MAPPED;              /* a local account (disabled) */
	}
	if (store_directory_get(d->env.st, canon, &c) != STORE_OK) {
		if (known != NULL) {
			*reason_r = REASON_OFF;
			rc = AUTH_DIR_REFUSED;
		}
		store_free_record(known);
		return rc;
	}
	/* the directory knows its users by login: a mapped user's name, else the local part */
	const char *login = known ? known->name : local;
	int found = find_user(d, c, login, &u, &conn, &error);
	if (found < 0) {
		log_down(canon, address, error);
		*reason_r = REASON_DOWN;
		rc = AUTH_DIR_UNAVAILABLE;
		goto out;
	}
	if (found == 1) {
		if (known != NULL && known->enabled) {
			/* gone from the directory: the next reconcile would disable it anyway */
			lm_user gone = { .login = known->name, .enabled = 0, .has_mailbox = 1 };
			dir_user_store(d->env.st, canon, &gone);
		}
		rc = known ? AUTH_DIR_REFUSED : AUTH_DIR_NOT_MAPPED;
		goto out;
	}
	/* write what the directory says now: a new user appears, a changed one is updated */
	dir_user_store(d->env.st, canon, u);
	if (!u->enabled || !u->has_mailbox) {
		*reason_r = REASON_DISABLED;
		rc = AUTH_DIR_REFUSED;
		goto out;
	}
	if (password[0] == '\0' || strlen(password) > AUTH_PASSWORD_MAX) {
		rc = AUTH_DIR_REFUSED;                   /* never an unauthenticated bind */
		goto out;
	}
	char *why = NULL;
	int pc = lm_check_password(conn, u, password, &why);
	if (pc < 0) {
		dir_conn_drop(canon);
		log_down(canon, address, why);
		*reason_r = REASON_DOWN;
		rc = AUTH_DIR_UNAVAILABLE;
	} else if (pc > 0) {
		*reason_r = static_reason(why);
		tlog(TLOG_DEBUG, "Directory login of %s refused: %s", address, why ? why : "");
		rc = AUTH_DIR_REFUSED;
	} else {
		int w = snprintf(account_r, account_n, "%s@%s", u->login, canon);
		rc = w < 0 || (size_t)w >= account_n ? AUTH_DIR_REFUSED : AUTH_DIR_OK;
		tern_lower(account_r);
	}
	free(why);
out:
	free(error);
	lm_user_free(&u);
	store_free_record(known);
	store_free_record(c);
	return rc;
}

void dir_auth_register(directory *d)
{
	auth_set_directory(dir_check, d);
}

void dir_auth_unregister(void)
{
	auth_set_directory(NULL, NULL);
}
