/* pool.c - worker pools: N threads serving one bounded FIFO of jobs. */
#include "pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pool_job {
	void (*job)(void *arg);
	void (*done)(void *arg);
	void *arg;
	tern_io *io;
} pool_job;

struct tern_pool {
	char name[16];
	pthread_mutex_t mu;
	pthread_cond_t cond;
	pool_job *ring;        /* queue_max slots */
	unsigned queue_max, head, count;
	int stopping;
	unsigned nthreads;
	pthread_t *threads;
};

/* Take jobs until the pool stops and the queue is empty: queued work is never lost. */
static void *pool_thread(void *arg)
{
	tern_pool *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (p->count == 0 && !p->stopping)
			pthread_cond_wait(&p->cond, &p->mu);
		if (p->count == 0) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		pool_job j = p->ring[p->head];
		p->head = (p->head + 1) % p->queue_max;
		p->count--;
		pthread_mutex_unlock(&p->mu);

		j.job(j.arg);
		if (j.done) {
			if (j.io)
				tern_io_post(j.io, j.done, j.arg);
			else
				j.done(j.arg);
		}
	}
}

tern_pool *tern_pool_new(const char *name, unsigned threads, unsigned queue_max)
{
	tern_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	snprintf(p->name, sizeof(p->name), "%s", name ? name : "pool");
	p->queue_max = queue_max ? queue_max : 1;
	p->nthreads = threads ? threads : 1;
	p->ring = calloc(p->queue_max, sizeof(*p->ring));
	p->threads = calloc(p->nthreads, sizeof(*p->threads));
	if (!p->ring || !p->threads) {
		free(p->ring);
		free(p->threads);
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cond, NULL);
	for (unsigned i = 0; i < p->nthreads; i++) {
		if (pthread_create(&p->threads[i], NULL, pool_thread, p) != 0) {
			p->nthreads = i;
			tern_pool_free(&p);
			return NULL;
		}
		char tname[32];
		int n = snprintf(tname, sizeof(tname), "%s-%u", p->name, i);
		if (n > 0) {
			tname[15] = '\0';    /* the kernel keeps 15 characters */
			pthread_setname_np(p->threads[i], tname);
		}
	}
	return p;
}

int tern_pool_submit(tern_pool *p, void (*job)(void *arg), void (*done)(void *arg), void *arg,
		     tern_io *io)
{
	pthread_mutex_lock(&p->mu);
	if (p->stopping || p->count >= p->queue_max) {
		pthread_mutex_unlock(&p->mu);
		return -1;
	}
	p->ring[(p->head + p->count) % p->queue_max] = (pool_job){ job, done, arg, io };
	p->count++;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

unsigned tern_pool_pending(tern_pool *p)
{
	pthread_mutex_lock(&p->mu);
	unsigned n = p->count;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void tern_pool_free(tern_pool **pp)
{
	tern_pool *p = *pp;
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->mu);
	free(p->ring);
	free(p->threads);
	free(p);
	*pp = NULL;
}
