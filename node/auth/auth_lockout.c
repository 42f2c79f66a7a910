/* auth_lockout.c - account lockout after repeated bad passwords (guide ch. 12.8).
 *
 * Failures are counted per (account, client IP), as the guide counts "failed logins
 * from one IP address". Once an IP reaches the threshold within one window of
 * lock_seconds, the account is locked for that IP for lock_seconds; the same account
 * from another address is not locked, so that an attacker cannot shut a user out of
 * their own mailbox. A success from an address forgets its failures. Entries live in a
 * chained hash table under one mutex; expired entries are swept when the table has
 * grown, so its size follows the recent failures, not every address ever seen. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "auth.h"
#include "tern.h"

#define LOCKOUT_MIN_BUCKETS 64
#define LOCKOUT_MIN_SWEEP 1024

typedef struct lockout_entry {
	struct lockout_entry *next;
	uint64_t hash;
	int64_t window_start;    /* first failure of the current window */
	int64_t locked_until;    /* 0 = not locked */
	unsigned failures;
	char *ip;                /* points into key, after the account's NUL */
	char key[];              /* "account\0ip\0" */
} lockout_entry;

struct auth_lockout {
	pthread_mutex_t lock;
	unsigned threshold;      /* 0 = lockout disabled */
	int64_t lock_seconds;
	uint64_t seed;           /* keeps bucket choice unpredictable to clients */
	lockout_entry **buckets;
	size_t nbuckets;         /* power of two */
	size_t n;
	size_t sweep_at;
};

/* A seeded 64-bit FNV-1a over the lower-cased account and the IP, with a final mix. */
static uint64_t lockout_hash(const auth_lockout *l, const char *account, const char *ip)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ l->seed;

	for (const char *p = account; *p; p++) {
		unsigned char c = (unsigned char)*p;
		h = (h ^ (c >= 'A' && c <= 'Z' ? c + 32 : c)) * 0x100000001b3ULL;
	}
	h = (h ^ 0xff) * 0x100000001b3ULL;
	for (const char *p = ip; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

auth_lockout *auth_lockout_new(unsigned threshold, int64_t lock_seconds)
{
	auth_lockout *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->buckets = calloc(LOCKOUT_MIN_BUCKETS, sizeof(*l->buckets));
	if (l->buckets == NULL) {
		free(l);
		return NULL;
	}
	pthread_mutex_init(&l->lock, NULL);
	l->threshold = lock_seconds > 0 ? threshold : 0;
	l->lock_seconds = lock_seconds;
	tern_random(&l->seed, sizeof(l->seed));
	l->nbuckets = LOCKOUT_MIN_BUCKETS;
	l->sweep_at = LOCKOUT_MIN_SWEEP;
	return l;
}

void auth_lockout_free(auth_lockout **lp)
{
	auth_lockout *l = lp ? *lp : NULL;

	if (l == NULL)
		return;
	for (size_t i = 0; i < l->nbuckets; i++) {
		lockout_entry *e = l->buckets[i], *next;
		for (; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(l->buckets);
	pthread_mutex_destroy(&l->lock);
	free(l);
	*lp = NULL;
}

static int lockout_is_locked_at(const lockout_entry *e, int64_t now)
{
	return e->locked_until > now;
}

/* An entry is useless once its lock has ended and its counting window has passed. */
static int lockout_expired(const auth_lockout *l, const lockout_entry *e, int64_t now)
{
	return !lockout_is_locked_at(e, now) && now - e->window_start >= l->lock_seconds;
}

/* Unlink *pp (caller holds the lock). */
static void lockout_remove(auth_lockout *l, lockout_entry **pp)
{
	lockout_entry *e = *pp;

	*pp = e->next;
	free(e);
	l->n--;
}

/* Find the entry for (account, ip); with pp_r, also where it is linked. */
static lockout_entry *lockout_find(auth_lockout *l, const char *account, const char *ip,
				   lockout_entry ***pp_r)
{
	uint64_t h = lockout_hash(l, account, ip);
	lockout_entry **pp = &l->buckets[h & (l->nbuckets - 1)];

	for (; *pp != NULL; pp = &(*pp)->next) {
		lockout_entry *e = *pp;
		if (e->hash == h && strcasecmp(e->key, account) == 0 && strcmp(e->ip, ip) == 0) {
			if (pp_r)
				*pp_r = pp;
			return e;
		}
	}
	return NULL;
}

/* Drop every expired entry (caller holds the lock). */
static void lockout_sweep(auth_lockout *l, int64_t now)
{
	for (size_t i = 0; i < l->nbuckets; i++) {
		lockout_entry **pp = &l->buckets[i];
		while (*pp != NULL) {
			if (lockout_expired(l, *pp, now))
				lockout_remove(l, pp);
			else
				pp = &(*pp)->next;
		}
	}
	l->sweep_at = l->n * 2 > LOCKOUT_MIN_SWEEP ? l->n * 2 : LOCKOUT_MIN_SWEEP;
}

/* Double the bucket array when the chains get long; on allocation failure the table
 * keeps working with longer chains. */
static void lockout_grow(auth_lockout *l)
{
	size_t nb = l->nbuckets * 2;
	lockout_entry **b = calloc(nb, sizeof(*b));

	if (b == NULL)
		return;
	for (size_t i = 0; i < l->nbuckets; i++) {
		lockout_entry *e = l->buckets[i], *next;
		for (; e != NULL; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(l->buckets);
	l->buckets = b;
	l->nbuckets = nb;
}

static lockout_entry *lockout_add(auth_lockout *l, const char *account, const char *ip, int64_t now)
{
	size_t alen = strlen(account), ilen = strlen(ip);
	lockout_entry *e;

	if (l->n >= l->sweep_at)
		lockout_sweep(l, now);
	if (l->n >= l->nbuckets)
		lockout_grow(l);
	e = calloc(1, sizeof(*e) + alen + ilen + 2);
	if (e == NULL)
		return NULL;
	memcpy(e->key, account, alen);
	e->ip = e->key + alen + 1;
	memcpy(e->ip, ip, ilen);
	e->hash = lockout_hash(l, account, ip);
	e->window_start = now;
	e->next = l->buckets[e->hash & (l->nbuckets - 1)];
	l->buckets[e->hash & (l->nbuckets - 1)] = e;
	l->n++;
	return e;
}

int auth_lockout_is_locked(auth_lockout *l, const char *account, const char *ip)
{
	lockout_entry *e, **pp;
	int64_t now = tern_now();
	int locked = 0;

	if (l == NULL || l->threshold == 0 || account == NULL)
		return 0;
	pthread_mutex_lock(&l->lock);
	e = lockout_find(l, account, ip ? ip : "", &pp);
	if (e != NULL) {
		locked = lockout_is_locked_at(e, now);
		if (lockout_expired(l, e, now))
			lockout_remove(l, pp);
	}
	pthread_mutex_unlock(&l->lock);
	return locked;
}

/* Entries are hashed by (account, IP), so finding the account's locks from any address
 * walks the whole table; this is for status queries, not for every login. */
int auth_lockout_is_locked_any(auth_lockout *l, const char *account)
{
	int64_t now = tern_now();
	int locked = 0;

	if (l == NULL || l->threshold == 0 || account == NULL)
		return 0;
	pthread_mutex_lock(&l->lock);
	for (size_t i = 0; i < l->nbuckets && !locked; i++) {
		for (const lockout_entry *e = l->buckets[i]; e != NULL; e = e->next) {
			if (lockout_is_locked_at(e, now) && strcasecmp(e->key, account) == 0) {
				locked = 1;
				break;
			}
		}
	}
	pthread_mutex_unlock(&l->lock);
	return locked;
}

/* Count one failure; a new window starts when the last one has passed, and reaching
 * the threshold locks for lock_seconds from now. Failures while locked do not extend
 * the lock, so a locked user is free again lock_seconds after the lock began. */
void auth_lockout_failed(auth_lockout *l, const char *account, const char *ip)
{
	lockout_entry *e;
	int64_t now = tern_now();

	if (l == NULL || l->threshold == 0 || account == NULL)
		return;
	if (ip == NULL)
		ip = "";
	pthread_mutex_lock(&l->lock);
	e = lockout_find(l, account, ip, NULL);
	if (e != NULL && lockout_expired(l, e, now)) {
		e->failures = 0;
		e->locked_until = 0;
		e->window_start = now;
	}
	if (e == NULL)
		e = lockout_add(l, account, ip, now);
	if (e != NULL && !lockout_is_locked_at(e, now)) {
		e->failures++;
		if (e->failures >= l->threshold) {
			e->locked_until = now + l->lock_seconds;
			e->failures = 0;
			e->window_start = now;
		}
	}
	pthread_mutex_unlock(&l->lock);
}

/* A good login forgets the failures from that address (a lock, if any, stays: the
 * caller checks auth_lockout_is_locked before trying the password). */
void auth_lockout_succeeded(auth_lockout *l, const char *account, const char *ip)
{
	lockout_entry *e, **pp;

	if (l == NULL || account == NULL)
		return;
	pthread_mutex_lock(&l->lock);
	e = lockout_find(l, account, ip ? ip : "", &pp);
	if (e != NULL && !lockout_is_locked_at(e, tern_now()))
		lockout_remove(l, pp);
	pthread_mutex_unlock(&l->lock);
}

/* "Unlock all accounts now" (account NULL) or one account: its locks from every
 * address end and its failure counts are forgotten. Returns the locks ended. */
unsigned auth_lockout_unlock(auth_lockout *l, const char *account)
{
	int64_t now = tern_now();
	unsigned unlocked = 0;

	if (l == NULL)
		return 0;
	pthread_mutex_lock(&l->lock);
	for (size_t i = 0; i < l->nbuckets; i++) {
		lockout_entry **pp = &l->buckets[i];
		while (*pp != NULL) {
			if (account == NULL || strcasecmp((*pp)->key, account) == 0) {
				if (lockout_is_locked_at(*pp, now))
					unlocked++;
				lockout_remove(l, pp);
			} else {
				pp = &(*pp)->next;
			}
		}
	}
	pthread_mutex_unlock(&l->lock);
	return unlocked;
}
