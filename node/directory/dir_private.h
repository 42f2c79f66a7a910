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
void dir_auth_register(directory *d);
void dir_auth_unregister(void);

#endif
