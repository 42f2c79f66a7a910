/* dav_fb_push.c - node/dav's part of the distributed domain's free/busy and bookings
 * (DESIGN.md §5, cluster/cluster.h).
 *
 * On a slave, every change of a local user's calendars (dav_fb_changed, called after a
 * PUT or DELETE succeeded) marks the user; a worker thread waits DAV_FB_DEBOUNCE_MS for
 * more changes, then computes each marked user's busy time over [now - 1 day, now +
 * [dav] freebusy_max_days] and hands it to cluster_freebusy_push, which delivers it to the
 * master. The worker also pushes every local user once when the node becomes a slave (and
 * after a restart as one) and every DAV_FB_SWEEP_S seconds, so that the master's copy
 * survives lost pushes and follows the sliding horizon.
 *
 * On every node the control plane gets two handlers: the busy time of a user or resource
 * homed here (the master answers slaves' queries with it) and the booking decision for a
 * resource (the master decides what slaves forward, with dav_book). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "cluster.h"
#include "dav_private.h"
#include "dav_sched_int.h"

#define DAV_FB_DEBOUNCE_MS 500
#define DAV_FB_SWEEP_S (6 * 3600)
#define DAV_FB_PENDING_MAX 100000

struct dav_fb {
	dav_env env;
	pthread_mutex_t mu;
	pthread_cond_t cv;            /* CLOCK_MONOTONIC */
	pthread_t thread;
	int quit;
	uint8_t (*pending)[16];       /* owners whose calendars changed */
	size_t npending, cap;
	int64_t due_ms;               /* when the pending owners are pushed */
};

/* The window a push covers. */
static void fb_window(const dav_env *env, int64_t *from, int64_t *to)
{
	int64_t days = env->conf ? env->conf->dav_freebusy_max_days : 366;

	*from = tern_now() - 86400;
	*to = tern_now() + days * 86400;
}

/* dav_busy -> cluster_busy, dropping empty periods. */
static cluster_busy *to_cluster(const dav_busy *list, size_t n, size_t *k_r)
{
	cluster_busy *c = n ? malloc(n * sizeof(*c)) : NULL;
	size_t k = 0;

	if (n && c == NULL)
		abort();
	for (size_t i = 0; i < n; i++)
		if (list[i].start < list[i].end)
			c[k++] = (cluster_busy){ list[i].start, list[i].end, list[i].type };
	*k_r = k;
	return c;
}

/* Push the busy time of user u (homed here) to the master. */
static void push_user(const dav_env *env, const Tern__User *u)
{
	char addr[400];
	int64_t from, to;
	dav_busy *list = NULL;
	size_t n = 0, k = 0;

	if (u->id.len != 16)
		return;
	snprintf(addr, sizeof(addr), "%s@%s", u->name, u->domain);
	tern_lower(addr);
	fb_window(env, &from, &to);
	if (dav_freebusy_collect(env->st, u->id.data, from, to, &list, &n) < 0) {
		tlog(TLOG_WARNING, "DAV: cannot read the calendars of %s for free/busy", addr);
		free(list);
		return;
	}
	cluster_busy *c = to_cluster(list, n, &k);
	if (cluster_freebusy_push(env->cl, addr, c, k, from, to) < 0)
		tlog(TLOG_WARNING, "DAV: the free/busy of %s was not queued for the master", addr);
	free(c);
	free(list);
}

/* 1 when u lives on this node. */
static int homed_here(const dav_env *env, const Tern__User *u)
{
	char addr[400], home[128];

	snprintf(addr, sizeof(addr), "%s@%s", u->name, u->domain);
	return cluster_user_home(env->st, addr, home, sizeof(home)) == 0;
}

/* Every user homed here. */
static void sweep(const dav_env *env)
{
	Tern__Domain **doms = NULL;
	size_t nd = 0;

	if (store_domain_list(env->st, &doms, &nd) != STORE_OK)
		return;
	for (size_t i = 0; i < nd; i++) {
		Tern__User **users = NULL;
		size_t nu = 0;

		if (store_user_list(env->st, doms[i]->name, &users, &nu) != STORE_OK)
			continue;
		for (size_t j = 0; j < nu; j++)
			if (homed_here(env, users[j]))
				push_user(env, users[j]);
		store_free_list((void **)users, nu);
	}
	store_free_list((void **)doms, nd);
}

static void wait_ms(dav_fb *fb, int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&fb->cv, &fb->mu, &ts);
}

static void *fb_main(void *arg)
{
	dav_fb *fb = arg;
	int was_slave = 0;
	int64_t next_sweep = 0;

	pthread_mutex_lock(&fb->mu);
	while (!fb->quit) {
		int64_t now = tern_mono_ms();
		int slave = cluster_get_role(fb->env.cl) == CLUSTER_SLAVE;

		if (!slave)
			fb->npending = 0;       /* the master reads its own calendars */
		if (slave && (!was_slave || now >= next_sweep)) {
			pthread_mutex_unlock(&fb->mu);
			sweep(&fb->env);
			pthread_mutex_lock(&fb->mu);
			next_sweep = now + DAV_FB_SWEEP_S * 1000;
		}
		was_slave = slave;
		if (fb->npending > 0 && now >= fb->due_ms) {
			size_t n = fb->npending;
			uint8_t (*ids)[16] = malloc(n * 16);

			if (ids == NULL)
				abort();
			memcpy(ids, fb->pending, n * 16);
			fb->npending = 0;
			pthread_mutex_unlock(&fb->mu);
			for (size_t i = 0; i < n; i++) {
				Tern__User *u = NULL;

				if (store_user_get_by_id(fb->env.st, ids[i], &u) == STORE_OK && homed_here(&fb->env, u))
					push_user(&fb->env, u);
				store_free_record(u);
			}
			free(ids);
			pthread_mutex_lock(&fb->mu);
			continue;
		}
		int64_t wait = fb->npending > 0 ? fb->due_ms - now : 2000;
		wait_ms(fb, wait > 0 ? wait : 1);
	}
	pthread_mutex_unlock(&fb->mu);
	return NULL;
}

/* The node's push worker, for calendar changes made outside a DAV request (scheduling
 * of delivered iMIP, invitations written into attendees' calendars): a node runs one DAV
 * service, so one worker at most. */
static pthread_mutex_t running_mu = PTHREAD_MUTEX_INITIALIZER;
static dav_fb *running;

void dav_fb_calendar_changed(const uint8_t owner[16])
{
	pthread_mutex_lock(&running_mu);
	if (running != NULL)
		dav_fb_changed(running, owner);
	pthread_mutex_unlock(&running_mu);
}

void dav_fb_changed(dav_fb *fb, const uint8_t owner[16])
{
	if (fb == NULL || cluster_get_role(fb->env.cl) != CLUSTER_SLAVE)
		return;
	pthread_mutex_lock(&fb->mu);
	size_t i = 0;
	while (i < fb->npending && memcmp(fb->pending[i], owner, 16) != 0)
		i++;
	if (i == fb->npending && fb->npending < DAV_FB_PENDING_MAX) {
		if (fb->npending == fb->cap) {
			size_t cap = fb->cap ? fb->cap * 2 : 16;
			uint8_t (*np)[16] = realloc(fb->pending, cap * 16);
			if (np == NULL)
				abort();
			fb->pending = np;
			fb->cap = cap;
		}
		memcpy(fb->pending[fb->npending++], owner, 16);
		if (fb->npending == 1)
			fb->due_ms = tern_mono_ms() + DAV_FB_DEBOUNCE_MS;
	}
	pthread_cond_signal(&fb->cv);
	pthread_mutex_unlock(&fb->mu);
}

/* ---- handlers for the control plane ---- */

/* Busy time of a user or resource homed on this node. */
static int fb_handler(void *arg, const char *address, int64_t from, int64_t to, cluster_busy **list_r,
		      size_t *n_r, tbuf *why)
{
	dav_fb *fb = arg;
	Tern__User *u = NULL;
	Tern__Resource *res = NULL;
	dav_busy *list = NULL;
	size_t n = 0;
	int rc = 0;

	*list_r = NULL;
	*n_r = 0;
	if (store_user_find(fb->env.st, address, &u) == STORE_OK && u->id.len == 16) {
		if (!homed_here(&fb->env, u)) {
			tbuf_appendf(why, "%s is not homed on node %s", address, fb->env.node_name);
			rc = -1;
		} else if (dav_freebusy_collect(fb->env.st, u->id.data, from, to, &list, &n) < 0) {
			tbuf_appendf(why, "cannot read the calendars of %s", address);
			rc = -1;
		}
	} else if (store_resource_find(fb->env.st, address, &res) == STORE_OK && res->id.len == 16) {
		if (!res->available) {
			list = malloc(sizeof(*list));
			if (list == NULL)
				abort();
			list[0] = (dav_busy){ from, to, TERN__BUSY_PERIOD__TYPE__BUSY };
			n = 1;
		} else if (dav_freebusy_collect(fb->env.st, res->id.data, from, to, &list, &n) < 0) {
			tbuf_appendf(why, "cannot read the calendar of %s", address);
			rc = -1;
		}
	} else {
		tbuf_appendf(why, "no such user or resource: %s", address);
		rc = -1;
	}
	if (rc == 0)
		*list_r = to_cluster(list, n, n_r);
	free(list);
	store_free_record(u);
	store_free_record(res);
	return rc;
}

/* A booking forwarded by a slave: decided here, as for a local organizer. */
static int book_handler(void *arg, const char *resource, const char *organizer, const char *uid, const char *ical,
			size_t len, int cancel, tbuf *why)
{
	dav_fb *fb = arg;
	Tern__Resource *r = NULL;

	if (store_resource_find(fb->env.st, resource, &r) != STORE_OK) {
		tbuf_appendf(why, "no such resource: %s", resource);
		return -1;
	}
	int rc;
	if (cancel) {
		int src = dav_book_cancel(&fb->env, r, uid);
		rc = src == STORE_OK || src == STORE_ENOTFOUND ? 1 : -1;
		if (rc < 0)
			tbuf_appendf(why, "booking not removed: %s", store_strerror(src));
	} else {
		rc = dav_book(&fb->env, r, organizer, uid, ical, len, why);
	}
	store_free_record(r);
	return rc;
}

dav_fb *dav_fb_start(const dav_env *env)
{
	pthread_condattr_t ca;

	if (env->cl == NULL)
		return NULL;
	dav_fb *fb = calloc(1, sizeof(*fb));
	if (fb == NULL)
		abort();
	fb->env = *env;
	pthread_mutex_init(&fb->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fb->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&fb->thread, NULL, fb_main, fb) != 0) {
		tlog(TLOG_ERROR, "DAV: cannot start the free/busy push thread");
		pthread_mutex_destroy(&fb->mu);
		pthread_cond_destroy(&fb->cv);
		free(fb);
		return NULL;
	}
	cluster_handlers h = { fb_handler, book_handler, fb };
	cluster_set_handlers(env->cl, &h);
	pthread_mutex_lock(&running_mu);
	running = fb;
	pthread_mutex_unlock(&running_mu);
	return fb;
}

void dav_fb_stop(dav_fb **fbp)
{
	dav_fb *fb = *fbp;

	if (fb == NULL)
		return;
	pthread_mutex_lock(&running_mu);
	if (running == fb)
		running = NULL;
	pthread_mutex_unlock(&running_mu);
	cluster_set_handlers(fb->env.cl, NULL);
	pthread_mutex_lock(&fb->mu);
	fb->quit = 1;
	pthread_cond_signal(&fb->cv);
	pthread_mutex_unlock(&fb->mu);
	pthread_join(fb->thread, NULL);
	pthread_mutex_destroy(&fb->mu);
	pthread_cond_destroy(&fb->cv);
	free(fb->pending);
	free(fb);
	*fbp = NULL;
}
