/* store_bench - durable append throughput of the store (not a test: prints figures).
 *
 *   store_bench --dir DIR [--seconds S] [--sizes 1024,10240,102400] [--threads 1,8]
 *
 * For each size x thread count, every thread appends distinct bodies to its own user's
 * INBOX with the blocking store_msg_append (one durable batch each) for S seconds, and
 * one line is printed:
 *   store append size=1024 threads=1: N msgs/s, M MB/s, commits/group=X */
#include <stdatomic.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "store.h"

#define MAX_LIST 16
#define MAX_THREADS 64

typedef struct bench_thread {
	store *st;
	uint8_t user[16];
	size_t size;
	unsigned id;
	int64_t deadline_ms;
	uint64_t msgs;
	int failed;
} bench_thread;

static int parse_list(const char *s, unsigned long *out, int max)
{
	int n = 0;

	while (*s && n < max) {
		char *end;
		unsigned long v = strtoul(s, &end, 10);

		if (end == s || v == 0)
			return -1;
		out[n++] = v;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	return n;
}

static void *bench_main(void *arg)
{
	bench_thread *b = arg;
	char *body = malloc(b->size);
	store_sync_result r;

	if (!body)
		abort();
	for (size_t i = 0; i < b->size; i++)
		body[i] = (char)('a' + (i * 7 + b->id) % 26);
	while (tern_mono_ms() < b->deadline_ms) {
		store_append a = { 0 };
		/* distinct content: a counter at the start of each body */
		int n = snprintf(body, b->size < 32 ? b->size : 32, "%u-%llu ", b->id,
				 (unsigned long long)b->msgs);

		(void)n;
		a.user = b->user;
		a.body = body;
		a.body_len = b->size;
		if (store_msg_append(b->st, &a, STORE_SYNC, &r) != STORE_OK) {
			fprintf(stderr, "store_bench: append failed: %s\n", r.error);
			b->failed = 1;
			break;
		}
		b->msgs++;
	}
	free(body);
	return NULL;
}

static int make_user(store *st, const char *name, uint8_t id[16])
{
	Tern__User u = TERN__USER__INIT;
	store_sync_result r;
	int rc;

	u.name = (char *)name;
	u.domain = (char *)"bench.test";
	rc = store_user_add(st, &u, STORE_SYNC, &r);
	if (rc == STORE_EEXISTS) {
		Tern__User *old = NULL;

		if (store_user_get(st, "bench.test", name, &old) != STORE_OK)
			return -1;
		memcpy(id, old->id.data, 16);
		store_free_record(old);
		return 0;
	}
	if (rc != STORE_OK) {
		fprintf(stderr, "store_bench: user %s: %s\n", name, r.error);
		return -1;
	}
	memcpy(id, r.res.id, 16);
	return 0;
}

static int run_one(store *st, size_t size, unsigned threads, int seconds)
{
	bench_thread b[MAX_THREADS];
	pthread_t th[MAX_THREADS];
	store_stats s0, s1;
	uint64_t total = 0;
	int failed = 0;

	for (unsigned i = 0; i < threads; i++) {
		char name[32];

		snprintf(name, sizeof(name), "bench%u", i);
		memset(&b[i], 0, sizeof(b[i]));
		if (make_user(st, name, b[i].user) != 0)
			return -1;
		b[i].st = st;
		b[i].size = size;
		b[i].id = i;
	}
	store_get_stats(st, &s0);
	int64_t start = tern_mono_ms();

	for (unsigned i = 0; i < threads; i++) {
		b[i].deadline_ms = start + seconds * 1000;
		pthread_create(&th[i], NULL, bench_main, &b[i]);
	}
	for (unsigned i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		total += b[i].msgs;
		failed |= b[i].failed;
	}
	double secs = (double)(tern_mono_ms() - start) / 1000.0;

	store_get_stats(st, &s1);
	uint64_t commits = s1.commits - s0.commits, groups = s1.commit_groups - s0.commit_groups;

	printf("store append size=%zu threads=%u: %.0f msgs/s, %.2f MB/s, commits/group=%.2f\n",
	       size, threads, total / secs, total * (double)size / secs / 1e6,
	       groups ? (double)commits / groups : 0.0);
	fflush(stdout);
	return failed ? -1 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: store_bench --dir DIR [--seconds S] [--sizes 1024,10240,102400] "
		"[--threads 1,8]\n");
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *sizes_s = "1024,10240,102400", *threads_s = "1,8";
	unsigned long sizes[MAX_LIST], threads[MAX_LIST];
	int seconds = 5, nsizes, nthreads, rc = 0;

	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc) {
			usage();
			return 2;
		}
		if (strcmp(argv[i], "--dir") == 0)
			dir = argv[++i];
		else if (strcmp(argv[i], "--seconds") == 0)
			seconds = atoi(argv[++i]);
		else if (strcmp(argv[i], "--sizes") == 0)
			sizes_s = argv[++i];
		else if (strcmp(argv[i], "--threads") == 0)
			threads_s = argv[++i];
		else {
			usage();
			return 2;
		}
	}
	nsizes = parse_list(sizes_s, sizes, MAX_LIST);
	nthreads = parse_list(threads_s, threads, MAX_LIST);
	if (!dir || seconds <= 0 || nsizes <= 0 || nthreads <= 0) {
		usage();
		return 2;
	}
	for (int i = 0; i < nthreads; i++)
		if (threads[i] > MAX_THREADS) {
			fprintf(stderr, "store_bench: at most %d threads\n", MAX_THREADS);
			return 2;
		}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "store_bench: cannot create %s: %s\n", dir, strerror(errno));
		return 1;
	}

	store_options o;
	store *st = NULL;
	char *err = NULL, path[4096];
	Tern__Domain d = TERN__DOMAIN__INIT;
	store_sync_result r;

	if ((size_t)snprintf(path, sizeof(path), "%s/db", dir) >= sizeof(path)) {
		fprintf(stderr, "store_bench: directory name too long\n");
		return 2;
	}
	store_options_default(&o);
	o.path = path;
	o.sweep_interval = 0;
	o.disk_check_interval = 0;
	if (store_open(&o, &st, &err) != 0) {
		fprintf(stderr, "store_bench: %s\n", err);
		free(err);
		return 1;
	}
	d.name = (char *)"bench.test";
	if (store_domain_add(st, &d, STORE_SYNC, &r) != STORE_OK && r.res.rc != STORE_EEXISTS) {
		fprintf(stderr, "store_bench: %s\n", r.error);
		store_close(&st);
		return 1;
	}
	for (int i = 0; i < nsizes && rc == 0; i++)
		for (int j = 0; j < nthreads && rc == 0; j++)
			rc = run_one(st, sizes[i], (unsigned)threads[j], seconds);
	store_close(&st);
	return rc ? 1 : 0;
}
