/* dir_auth.c - the password check of mapped users, behind auth_check_password (auth.h:
 * the lockout check has run already). On the auth pool: the directory entry is read
 * (so a user disabled there is refused, and a user unknown here - not synced yet - is
 * written to the store and can log in at once), then the password is checked by
 * Kerberos or LDAP bind (lm_check_password) on this thread's connection. The entry
 * read is cached for [directory] cache_ttl seconds (dir_auth_entry); the password is
 * always checked. With both directory servers down mapped users are refused
 * ("directory unavailable", a warning.log line); local users never come here. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "auth.h"
#include "dir_private.h"

#define REASON_BAD "bad credentials"
#define REASON_DISABLED "bad credentials (account disabled)"
#define REASON_EXPIRED "bad credentials (password expired)"
#define REASON_ACCOUNT_EXPIRED "bad credentials (account expired)"
#define REASON_DOWN "directory unavailable"
#define REASON_OFF "bad credentials (directory mapping is off)"

#define CACHE_BUCKETS 1024
#define CACHE_MAX 50000           /* entries; beyond, answers are not cached */

/* ldapmap's reason (free text) -> one of the static reasons of the security log. */
static const char *static_reason(const char *why)
{
	if (why != NULL && strcasestr(why, "disabled") != NULL)
		return REASON_DISABLED;
	if (why != NULL && strcasestr(why, "account expired") != NULL)
		return REASON_ACCOUNT_EXPIRED;   /* Kerberos: the principal's entry expired */
	if (why != NULL && strcasestr(why, "expired") != NULL)
		return REASON_EXPIRED;
	return REASON_BAD;
}

/* ---- the lookup cache ---- */

typedef struct cache_entry {
	struct cache_entry *next;
	char *domain, *login;        /* lower case */
	uint64_t hash, mapping;
	int64_t asked;               /* when the directory was asked */
	lm_user u;                   /* dn, login, principal, enabled, has_mailbox */
} cache_entry;

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static cache_entry *cache_tab[CACHE_BUCKETS];
static size_t cache_n;

/* FNV-1a, 64 bits. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 1099511628211ULL;
	}
	return h;
}

#define FNV_INIT 14695981039346656037ULL

static uint64_t key_hash(const char *domain, const char *login)
{
	uint64_t h = FNV_INIT;

	for (const char *s = domain; *s; s++) {
		char ch = (char)tolower((unsigned char)*s);
		h = fnv(h, &ch, 1);
	}
	h = fnv(h, "@", 1);
	for (const char *s = login; *s; s++) {
		char ch = (char)tolower((unsigned char)*s);
		h = fnv(h, &ch, 1);
	}
	return h;
}

static void entry_free(cache_entry *e)
{
	free(e->domain);
	free(e->login);
	free(e->u.dn);
	free(e->u.login);
	free(e->u.principal);
	free(e);
}

static char *dup_or_null(const char *s)
{
	char *d = s ? strdup(s) : NULL;

	if (s != NULL && d == NULL)
		abort();
	return d;
}

/* The fields of u the password check needs, as a new lm_user (lm_user_free). */
static lm_user *user_copy(const lm_user *u)
{
	lm_user *c = calloc(1, sizeof(*c));

	if (c == NULL)
		abort();
	c->dn = dup_or_null(u->dn);
	c->login = dup_or_null(u->login);
	c->principal = dup_or_null(u->principal);
	c->enabled = u->enabled;
	c->has_mailbox = u->has_mailbox;
	return c;
}

/* The slot holding login@domain's entry (cache_mu held). */
static cache_entry **cache_slot(const char *domain, const char *login, uint64_t h)
{
	cache_entry **pp = &cache_tab[h % CACHE_BUCKETS];

	for (; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->hash == h && strcasecmp((*pp)->domain, domain) == 0 &&
		    strcasecmp((*pp)->login, login) == 0)
			break;
	return pp;
}

/* Remove the entries asked before cutoff (cache_mu held). */
static void cache_purge(int64_t cutoff)
{
	for (size_t b = 0; b < CACHE_BUCKETS; b++)
		for (cache_entry **pp = &cache_tab[b]; *pp != NULL;) {
			cache_entry *e = *pp;
			if (e->asked < cutoff) {
				*pp = e->next;
				entry_free(e);
				cache_n--;
			} else {
				pp = &e->next;
			}
		}
}

/* 1 when the account may log in as far as the directory said / the store says. */
static int entry_enabled(const lm_user *u)
{
	return u->enabled && u->has_mailbox;
}

/* A copy of the usable entry of q (young, same mapping, agreeing with known), or NULL. */
static lm_user *cache_get(const dir_lookup *q, const Tern__User *known)
{
	uint64_t h = key_hash(q->domain, q->login);
	lm_user *u = NULL;

	pthread_mutex_lock(&cache_mu);
	cache_entry *e = *cache_slot(q->domain, q->login, h);
	if (e != NULL && q->now >= e->asked && q->now - e->asked < q->ttl && e->mapping == q->mapping) {
		int stored_enabled = known != NULL && known->enabled;
		/* the store moved since (a sync disabled, removed or enabled it): ask again */
		if (entry_enabled(&e->u) == stored_enabled)
			u = user_copy(&e->u);
	}
	pthread_mutex_unlock(&cache_mu);
	return u;
}

static void cache_put(const dir_lookup *q, const lm_user *u)
{
	uint64_t h = key_hash(q->domain, q->login);

	pthread_mutex_lock(&cache_mu);
	cache_entry **pp = cache_slot(q->domain, q->login, h);
	if (*pp == NULL && cache_n >= CACHE_MAX)
		cache_purge(q->now - q->ttl);
	pp = cache_slot(q->domain, q->login, h);
	if (*pp != NULL) {
		cache_entry *old = *pp;
		*pp = old->next;
		entry_free(old);
		cache_n--;
	}
	if (cache_n < CACHE_MAX) {
		cache_entry *e = calloc(1, sizeof(*e));
		if (e == NULL)
			abort();
		e->domain = dup_or_null(q->domain);
		e->login = dup_or_null(q->login);
		e->hash = h;
		e->mapping = q->mapping;
		e->asked = q->now;
		e->u = (lm_user){ .dn = dup_or_null(u->dn), .login = dup_or_null(u->login),
				  .principal = dup_or_null(u->principal), .enabled = u->enabled,
				  .has_mailbox = u->has_mailbox };
		e->next = cache_tab[h % CACHE_BUCKETS];
		cache_tab[h % CACHE_BUCKETS] = e;
		cache_n++;
	}
	pthread_mutex_unlock(&cache_mu);
}

void dir_cache_drop(const char *domain, const char *login)
{
	uint64_t h = key_hash(domain, login);

	pthread_mutex_lock(&cache_mu);
	cache_entry **pp = cache_slot(domain, login, h);
	if (*pp != NULL) {
		cache_entry *e = *pp;
		*pp = e->next;
		entry_free(e);
		cache_n--;
	}
	pthread_mutex_unlock(&cache_mu);
}

void dir_cache_clear(void)
{
	pthread_mutex_lock(&cache_mu);
	cache_purge(INT64_MAX);
	pthread_mutex_unlock(&cache_mu);
}

int dir_auth_entry(store *st, const Tern__User *known, const dir_lookup *q, dir_find_fn find,
		   void *arg, lm_user **u_r, const char **reason_r, int *asked_r, char **error_r)
{
	lm_user *u = q->ttl > 0 ? cache_get(q, known) : NULL;

	*u_r = NULL;
	*asked_r = 0;
	*error_r = NULL;
	*reason_r = REASON_BAD;
	if (u == NULL && q->replica && known == NULL) {
		tlog(TLOG_DEBUG, "Directory login of %s@%s not looked up: this node is a slave, "
		     "the master maps new users", q->login, q->domain);
		return AUTH_DIR_NOT_MAPPED;
	}
	if (u == NULL) {
		*asked_r = 1;
		int found = find(arg, q->login, &u, error_r);
		if (found < 0)
			return AUTH_DIR_UNAVAILABLE;
		if (found == 1) {
			dir_cache_drop(q->domain, q->login);
			if (known != NULL && known->enabled && !q->replica) {
				/* gone from the directory: the next reconcile would disable it anyway */
				lm_user gone = { .login = known->name, .enabled = 0, .has_mailbox = 1 };
				dir_user_store(st, q->domain, &gone);
			}
			return known ? AUTH_DIR_REFUSED : AUTH_DIR_NOT_MAPPED;
		}
		/* write what the directory says now: a new user appears, a changed one is updated
		 * (on a slave the master does, and the change replicates) */
		if (q->replica)
			tlog(TLOG_DEBUG, "Directory user %s@%s not written: this node is a slave",
			     q->login, q->domain);
		else
			dir_user_store(st, q->domain, u);
		if (q->ttl > 0)
			cache_put(q, u);
	}
	if (!entry_enabled(u)) {
		lm_user_free(&u);
		*reason_r = REASON_DISABLED;
		return AUTH_DIR_REFUSED;
	}
	*u_r = u;
	return AUTH_DIR_OK;
}

/* ---- the check ---- */

typedef struct find_arg {
	directory *d;
	const Tern__DirectoryConfig *c;
	lm_conn *conn;               /* the connection the lookup used */
} find_arg;

/* dir_find_fn: the directory entry of login; reconnects once after an error. */
static int find_user(void *arg, const char *login, lm_user **u_r, char **error_r)
{
	find_arg *fa = arg;
	int rc = -1;

	for (int attempt = 0; attempt < 2 && rc < 0; attempt++) {
		free(*error_r);
		*error_r = NULL;
		if (attempt > 0)
			dir_conn_drop(fa->c->domain);
		fa->conn = dir_conn_get(fa->d, fa->c, error_r);
		if (fa->conn == NULL)
			return -1;
		rc = lm_find_user(fa->conn, login, u_r, error_r);
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
	char *error = NULL;
	int rc = AUTH_DIR_NOT_MAPPED, asked = 0;

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
	find_arg fa = { d, c, NULL };
	dir_lookup q = { .domain = canon, .login = known ? known->name : local,
			 .mapping = dir_mapping_fp(c), .ttl = d->env.conf->directory_cache_ttl,
			 .now = tern_now(), .replica = dir_replica(d->env.st) };
	rc = dir_auth_entry(d->env.st, known, &q, find_user, &fa, &u, reason_r, &asked, &error);
	if (rc == AUTH_DIR_UNAVAILABLE) {
		log_down(canon, address, error);
		*reason_r = REASON_DOWN;
	}
	if (rc != AUTH_DIR_OK)
		goto out;
	rc = AUTH_DIR_REFUSED;
	if (password[0] == '\0' || strlen(password) > AUTH_PASSWORD_MAX)
		goto out;                                /* never an unauthenticated bind */
	if (fa.conn == NULL && (fa.conn = dir_conn_get(d, c, &error)) == NULL) {
		log_down(canon, address, error);         /* a cached entry: connect for the check */
		*reason_r = REASON_DOWN;
		rc = AUTH_DIR_UNAVAILABLE;
		goto out;
	}
	char *why = NULL;
	int pc = lm_check_password(fa.conn, u, password, &why);
	if (pc < 0) {
		dir_conn_drop(canon);
		log_down(canon, address, why);
		*reason_r = REASON_DOWN;
		rc = AUTH_DIR_UNAVAILABLE;
	} else if (pc > 0) {
		*reason_r = static_reason(why);
		tlog(TLOG_DEBUG, "Directory login of %s refused: %s", address, why ? why : "");
		/* a password refused as disabled or expired: the entry may be stale */
		if (strcmp(*reason_r, REASON_BAD) != 0)
			dir_cache_drop(canon, q.login);
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
	dir_cache_clear();
	auth_set_directory(dir_check, d);
}

void dir_auth_unregister(void)
{
	auth_set_directory(NULL, NULL);
	dir_cache_clear();
}
