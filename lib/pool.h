/* pool.h - worker pools, each with its own bounded queue so one slow kind of work
 * (LDAP, Kerberos, password hashing, MIME parsing, bulk copies) cannot starve another. */
#ifndef TERN_POOL_H
#define TERN_POOL_H
#include "net.h"

typedef struct tern_pool tern_pool;

tern_pool *tern_pool_new(const char *name, unsigned threads, unsigned queue_max);
/* Queue job(arg) for a pool thread; when it returns, done(arg) runs on I/O thread io
 * (or on the pool thread when io is NULL; done may be NULL). 0 ok; -1 when the queue is
 * full (the caller answers "try again later"). */
int tern_pool_submit(tern_pool *p, void (*job)(void *arg), void (*done)(void *arg), void *arg,
		     tern_io *io);
/* Jobs queued and not yet started. */
unsigned tern_pool_pending(tern_pool *p);
/* Finish the queued jobs, join the threads, free. */
void tern_pool_free(tern_pool **p);

#endif
