/* dir_private.h - shared by the files of node/directory/: the service object, the
 * per-thread directory connections and the account writers. */
#ifndef TERN_DIR_PRIVATE_H
#define TERN_DIR_PRIVATE_H
#include <pthread.h>
#include "dir_map.h"

typedef struct dir_domain dir_domain;

struct directory {
	directory_env env;
	pthread_mutex_t mu;
	pthread_cond_t cond;          /* stop asked, or a job finished */
	int stop;
	unsigned running;             /* sync jobs queued or running */
	pthread_t thr;
	int thr_started;
	dir_domain *domains;          /* sync state of each mapped domain (mu) */
};

/* ---- dir_conn.c: one lm_conn per worker thread and domain ---- */
/* The calling thread's connection for the domain's current mapping (connecting when
 * there is none or the mapping changed). NULL with *error_r (malloc'd). */
lm_conn *dir_conn_get(directory *d, const Tern__DirectoryConfig *c, char **error_r);
/* Close the calling thread's connection of domain after an error (next get reconnects). */
void dir_conn_drop(const char *domain);

/* ---- dir_auth.c ---- */
/* Register dir_check with auth_set_directory; both empty the lookup cache. */
void dir_auth_register(directory *d);
void dir_auth_unregister(void);

/* The lookup cache of the password check ([directory] cache_ttl): what lm_find_user said
 * of a login (dn, login, principal, enabled, has_mailbox - never a password), keyed by
 * domain and login, with the time it was asked. One per process, thread-safe. */
typedef int (*dir_find_fn)(void *arg, const char *login, lm_user **u_r, char **error_r);

typedef struct dir_lookup {
	const char *domain;          /* canonical mail domain */
	const char *login;           /* the directory's login name */
	uint64_t mapping;            /* fingerprint of the mapping: a change is a miss */
	int ttl;                     /* seconds an answer is trusted; 0 = always ask */
	int64_t now;                 /* unix seconds (tern_now(); tests pass their own) */
	int replica;                 /* 1: a slave node (dir_replica): never write the store */
} dir_lookup;

/* 1 when this node is a slave of a distributed domain (store_repl_get_mode): the master
 * maps directory users and groups and the accounts replicate, so the sync and the
 * login-miss lookup write nothing here; logins are still checked against the directory.
 * (dir_map.c) */
int dir_replica(store *st);

/* Fingerprint of a domain's mapping without its sync stamps (dir_conn.c): what a
 * connection (dir_conn_get) and a cached lookup (dir_lookup.mapping) depend on. */
uint64_t dir_mapping_fp(const Tern__DirectoryConfig *c);
/* The directory entry of q->login for a password check. Asks find (lm_find_user's
 * contract) unless the cache holds an answer younger than q->ttl for the same mapping
 * that still agrees with the stored account known (NULL: none; a sync that disables
 * or removes the account, or enables it again, makes the entry stale). A fresh answer
 * is written to the store (dir_user_store: a new user appears, a changed one is
 * updated; one gone from the directory is disabled) and cached; "not found" drops the
 * entry. On a replica (q->replica) nothing is written, and a login unknown here is
 * AUTH_DIR_NOT_MAPPED without asking (the master has not mapped it yet). Returns AUTH_DIR_OK with *u_r (lm_user_free it; the password is still to be
 * checked), AUTH_DIR_REFUSED (disabled or gone: *reason_r), AUTH_DIR_NOT_MAPPED
 * (unknown here and there) or AUTH_DIR_UNAVAILABLE (*error_r malloc'd). *asked_r is 1
 * when find was called. */
int dir_auth_entry(store *st, const Tern__User *known, const dir_lookup *q, dir_find_fn find,
		   void *arg, lm_user **u_r, const char **reason_r, int *asked_r, char **error_r);
/* Forget the entry of login@domain / every entry (frees the cache). */
void dir_cache_drop(const char *domain, const char *login);
void dir_cache_clear(void);

#endif
