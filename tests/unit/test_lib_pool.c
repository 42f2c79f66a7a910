/* test_lib_pool.c - worker pools: every job runs once with its done, FIFO bound,
 * free finishes the queue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "pool.h"

typedef struct job_state {
	atomic_int ran, done;
	int done_after_job;       /* set by done when it saw the job's result */
	int result;
} job_state;

static void job_square(void *arg)
{
	job_state *s = arg;
	s->result = 7 * 7;
	atomic_fetch_add(&s->ran, 1);
}

static void job_done(void *arg)
{
	job_state *s = arg;
	s->done_after_job = s->result == 49 && atomic_load(&s->ran) == 1;
	atomic_fetch_add(&s->done, 1);
}

static void test_jobs_run(void **state)
{
	enum { NJOBS = 200 };
	static job_state js[NJOBS];
	tern_pool *p = tern_pool_new("test", 4, NJOBS);
	assert_non_null(p);
	for (int i = 0; i < NJOBS; i++)
		assert_int_equal(tern_pool_submit(p, job_square, i % 2 ? job_done : NULL, &js[i], NULL), 0);
	tern_pool_free(&p);          /* finishes the queued jobs, then joins */
	assert_null(p);
	for (int i = 0; i < NJOBS; i++) {
		assert_int_equal(atomic_load(&js[i].ran), 1);
		assert_int_equal(atomic_load(&js[i].done), i % 2);
		if (i % 2)
			assert_int_equal(js[i].done_after_job, 1);
	}
}

/* A job that holds the only pool thread until released. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open, gate_entered;

static void job_gate(void *arg)
{
	pthread_mutex_lock(&gate_mu);
	gate_entered = 1;
	pthread_cond_broadcast(&gate_cv);
	while (!gate_open)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
}

static int order[8], norder;
static void job_record(void *arg)
{
	order[norder++] = (int)(intptr_t)arg;    /* one thread: no race */
}

static void test_queue_full(void **state)
{
	tern_pool *p = tern_pool_new("full", 1, 3);
	assert_non_null(p);
	assert_int_equal(tern_pool_submit(p, job_gate, NULL, NULL, NULL), 0);
	pthread_mutex_lock(&gate_mu);
	while (!gate_entered)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
	/* the thread is busy: three fit in the queue, the fourth is refused */
	for (int i = 0; i < 3; i++)
		assert_int_equal(tern_pool_submit(p, job_record, NULL, (void *)(intptr_t)i, NULL), 0);
	assert_int_equal(tern_pool_pending(p), 3);
	assert_int_equal(tern_pool_submit(p, job_record, NULL, (void *)(intptr_t)9, NULL), -1);
	assert_int_equal(tern_pool_pending(p), 3);
	pthread_mutex_lock(&gate_mu);
	gate_open = 1;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
	tern_pool_free(&p);
	assert_int_equal(norder, 3);           /* FIFO, and the refused job never ran */
	assert_int_equal(order[0], 0);
	assert_int_equal(order[1], 1);
	assert_int_equal(order[2], 2);
	tern_pool_free(&p);                    /* NULL is fine */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jobs_run),
		cmocka_unit_test(test_queue_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
