/* dir_sync.c - the directory service: a timer thread that, for each mapped domain, hands
 * a sync job to the auth pool every [directory] poll_interval seconds (users and groups
 * changed since the last stamp) and every reconcile_interval a full one (the whole list:
 * users gone from the directory are disabled, never deleted - polling never sees
 * deletions). A domain has at most one job at a time; the job owns the domain's map of
 * user DNs (for AD group members and memberOf) while it runs. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dir_private.h"

typedef struct dir_uent {
	char *dn;                 /* lower case */
	char *login;
	char **groups;            /* memberOf DNs, lower case */
	size_t ngroups;
} dir_uent;

typedef struct dir_umap {
	dir_uent *v;              /* sorted by dn */
	size_t n, cap;
} dir_umap;

struct dir_domain {
	dir_domain *next;
	directory *dir;
	char name[256];
	int busy, present, force_full, have_map, down, replica;
	int64_t next_poll;
	dir_umap map;
};

static char *lower_dup(const char *s)
{
	char *d = strdup(s ? s : "");

	if (d == NULL)
		abort();
	tern_lower(d);
	return d;
}

/* ---- the DN map ---- */

static void uent_clear(dir_uent *e)
{
	free(e->dn);
	free(e->login);
	for (size_t i = 0; i < e->ngroups; i++)
		free(e->groups[i]);
	free(e->groups);
}

static void umap_free(dir_umap *m)
{
	for (size_t i = 0; i < m->n; i++)
		uent_clear(&m->v[i]);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

/* Index of dn, or of where it would go (*found_r 0). */
static size_t umap_pos(const dir_umap *m, const char *dn, int *found_r)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(m->v[mid].dn, dn);

		if (c == 0) {
			*found_r = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found_r = 0;
	return lo;
}

static void umap_put(dir_umap *m, const lm_user *u)
{
	char *dn = lower_dup(u->dn);
	int found;
	size_t i = umap_pos(m, dn, &found);

	if (found) {
		uent_clear(&m->v[i]);
	} else {
		if (m->n == m->cap) {
			m->cap = m->cap ? m->cap * 2 : 64;
			if ((m->v = realloc(m->v, m->cap * sizeof(*m->v))) == NULL)
				abort();
		}
		memmove(&m->v[i + 1], &m->v[i], (m->n - i) * sizeof(*m->v));
		m->n++;
	}
	dir_uent *e = &m->v[i];
	e->dn = dn;
	e->login = lower_dup(u->login);
	e->ngroups = u->ngroups;
	if ((e->groups = calloc(u->ngroups + 1, sizeof(char *))) == NULL)
		abort();
	for (size_t k = 0; k < u->ngroups; k++)
		e->groups[k] = lower_dup(u->groups[k]);
}

static const char *umap_login(const dir_umap *m, const char *dn)
{
	char *key = lower_dup(dn);
	int found;
	size_t i = umap_pos(m, key, &found);

	free(key);
	return found ? m->v[i].login : NULL;
}

/* ---- one sync ---- */

typedef struct sync_run {
	directory *d;
	dir_domain *dd;
	const char *domain;
	dir_umap *map;            /* users seen (the new map of a full sync) */
	char **seen;              /* names seen (sorted before lookups) */
	size_t nseen, seen_cap;
	unsigned changed;
} sync_run;

static int stopping(directory *d)
{
	return __atomic_load_n(&d->stop, __ATOMIC_RELAXED);
}

static void seen_add(sync_run *x, const char *name)
{
	if (x->nseen == x->seen_cap) {
		x->seen_cap = x->seen_cap ? x->seen_cap * 2 : 64;
		if ((x->seen = realloc(x->seen, x->seen_cap * sizeof(char *))) == NULL)
			abort();
	}
	x->seen[x->nseen++] = lower_dup(name);
}

static void seen_clear(sync_run *x)
{
	for (size_t i = 0; i < x->nseen; i++)
		free(x->seen[i]);
	free(x->seen);
	x->seen = NULL;
	x->nseen = x->seen_cap = 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int seen_has(const char *name, void *arg)
{
	sync_run *x = arg;
	char *key = lower_dup(name);
	int found = x->nseen > 0 && bsearch(&key, x->seen, x->nseen, sizeof(char *), cmp_str) != NULL;

	free(key);
	return found;
}

static int on_user(const lm_user *u, void *arg)
{
	sync_run *x = arg;

	if (u->dn != NULL && u->login != NULL)
		umap_put(x->map, u);
	if (u->login != NULL && u->enabled && u->has_mailbox)
		seen_add(x, u->login);
	dir_user_store(x->d->env.st, x->domain, u);
	x->changed++;
	return stopping(x->d);
}

/* (member DN of memberOf, login) pairs sorted by DN: who names a group in memberOf. */
typedef struct member_of {
	const char *group_dn;
	const char *login;
} member_of;

typedef struct group_run {
	sync_run *x;
	member_of *mo;
	size_t nmo;
} group_run;

static int cmp_mo(const void *a, const void *b)
{
	return strcmp(((const member_of *)a)->group_dn, ((const member_of *)b)->group_dn);
}

static void add_member(char ***v, size_t *n, size_t *cap, const char *login, const char *domain)
{
	tbuf b = TBUF_INIT;

	tbuf_appendf(&b, "%s@%s", login, domain);
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i], b.data) == 0) {
			tbuf_free(&b);
			return;
		}
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		if ((*v = realloc(*v, *cap * sizeof(char *))) == NULL)
			abort();
	}
	(*v)[(*n)++] = tbuf_steal(&b);
}

static int on_group(const lm_group *g, void *arg)
{
	group_run *gr = arg;
	sync_run *x = gr->x;
	char **members = NULL;
	size_t n = 0, cap = 0;

	for (size_t i = 0; i < g->nmembers; i++) {
		const char *login = g->members_are_dns ? umap_login(x->map, g->members[i]) : g->members[i];
		if (login != NULL && tern_valid_localpart(login)) {
			char *l = lower_dup(login);
			add_member(&members, &n, &cap, l, x->domain);
			free(l);
		}
	}
	if (g->dn != NULL && gr->nmo > 0) {
		char *dn = lower_dup(g->dn);
		member_of key = { dn, NULL };
		member_of *hit = gr->nmo > 0 ? bsearch(&key, gr->mo, gr->nmo, sizeof(*gr->mo), cmp_mo) : NULL;
		while (hit != NULL && hit > gr->mo && strcmp(hit[-1].group_dn, dn) == 0)
			hit--;
		for (; hit != NULL && hit < gr->mo + gr->nmo && strcmp(hit->group_dn, dn) == 0; hit++)
			add_member(&members, &n, &cap, hit->login, x->domain);
		free(dn);
	}
	if (g->name != NULL)
		seen_add(x, g->name);
	dir_group_store(x->d->env.st, x->domain, g, members, n);
	for (size_t i = 0; i < n; i++)
		free(members[i]);
	free(members);
	return stopping(x->d);
}

/* Every group of the directory, with members from member/memberUid and memberOf;
 * the sync's groups that are gone are removed. */
static int sync_groups(sync_run *x, lm_conn *c, uint64_t *stamp_r, char **error_r)
{
	group_run gr = { x, NULL, 0 };
	size_t cap = 0;
	int rc;

	for (size_t i = 0; i < x->map->n; i++)
		for (size_t k = 0; k < x->map->v[i].ngroups; k++) {
			if (gr.nmo == cap) {
				cap = cap ? cap * 2 : 64;
				if ((gr.mo = realloc(gr.mo, cap * sizeof(*gr.mo))) == NULL)
					abort();
			}
			gr.mo[gr.nmo++] = (member_of){ x->map->v[i].groups[k], x->map->v[i].login };
		}
	if (gr.nmo > 0)
		qsort(gr.mo, gr.nmo, sizeof(*gr.mo), cmp_mo);
	seen_clear(x);
	rc = lm_groups(c, 0, on_group, &gr, stamp_r, error_r);
	if (rc == 0 && !stopping(x->d)) {
		if (x->nseen > 0)
			qsort(x->seen, x->nseen, sizeof(char *), cmp_str);
		dir_group_remove_unseen(x->d->env.st, x->domain, seen_has, x);
	}
	free(gr.mo);
	seen_clear(x);
	return rc;
}

static int count_group(const lm_group *g, void *arg)
{
	(void)g;
	(*(unsigned *)arg)++;
	return 0;
}

/* Full: every user (a fresh DN map), disable the mapped users not seen, every group.
 * Poll: users changed since the stamp into the map; groups again when anything changed. */
static int sync_domain(sync_run *x, lm_conn *c, int full, uint64_t since, uint64_t *stamp_r,
		       char **error_r)
{
	uint64_t su = 0, sg = 0;
	dir_umap fresh = { NULL, 0, 0 };
	unsigned gchanged = 0;
	int rc;

	x->map = full ? &fresh : &x->dd->map;
	rc = lm_users(c, full ? 0 : since, on_user, x, &su, error_r);
	if (rc == 0 && full && !stopping(x->d)) {
		if (x->nseen > 0)
			qsort(x->seen, x->nseen, sizeof(char *), cmp_str);
		dir_user_disable_unseen(x->d->env.st, x->domain, seen_has, x);
		umap_free(&x->dd->map);
		x->dd->map = fresh;
		x->dd->have_map = 1;
		memset(&fresh, 0, sizeof(fresh));
	}
	umap_free(&fresh);
	x->map = &x->dd->map;
	seen_clear(x);
	if (rc == 0 && !full)
		rc = lm_groups(c, since, count_group, &gchanged, &sg, error_r);
	if (rc == 0 && (full || x->changed > 0 || gchanged > 0))
		rc = sync_groups(x, c, &sg, error_r);
	*stamp_r = su > sg ? su : sg;
	return rc;
}

static void sync_job(void *arg)
{
	dir_domain *dd = arg;
	directory *d = dd->dir;
	Tern__DirectoryConfig *c = NULL;
	char *error = NULL;
	int64_t now = tern_now();

	if (stopping(d) || store_directory_get(d->env.st, dd->name, &c) != STORE_OK)
		goto done;
	/* a slave of a distributed domain: the master maps, the accounts replicate */
	if (dir_replica(d->env.st)) {
		if (!dd->replica)
			tlog(TLOG_DEBUG, "Directory sync of %s skipped: this node is a slave, the master "
			     "maps the directory", dd->name);
		dd->replica = 1;
		dd->have_map = 0;     /* a full sync when it becomes master */
		goto done;
	}
	dd->replica = 0;
	int full = dd->force_full || !dd->have_map || c->last_reconcile == 0 ||
		   now - (int64_t)c->last_reconcile >= d->env.conf->directory_reconcile_interval;
	lm_conn *conn = dir_conn_get(d, c, &error);
	uint64_t stamp = 0;
	sync_run x = { d, dd, dd->name, NULL, NULL, 0, 0, 0 };
	int rc = -1;
	if (conn != NULL) {
		rc = sync_domain(&x, conn, full, c->last_poll_stamp, &stamp, &error);
		if (rc < 0)
			dir_conn_drop(dd->name);
	}
	if (rc < 0) {
		if (!dd->down)
			tlog(TLOG_WARNING, "Directory service of %s unavailable: %s", dd->name,
			     error ? error : "unknown error");
		dd->down = 1;
		goto done;
	}
	if (dd->down)
		tlog(TLOG_WARNING, "Directory service of %s available again (%s)", dd->name, lm_server(conn));
	dd->down = 0;
	if (full)
		dd->force_full = 0;
	if (!stopping(d)) {
		uint64_t poll = stamp > c->last_poll_stamp ? stamp : c->last_poll_stamp;
		store_directory_stamp(d->env.st, dd->name, poll, full ? (uint64_t)now : c->last_reconcile,
				      STORE_SYNC, NULL);
	}
done:
	free(error);
	store_free_record(c);
	pthread_mutex_lock(&d->mu);
	dd->busy = 0;
	dd->next_poll = tern_now() + d->env.conf->directory_poll_interval;
	d->running--;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->mu);
}

/* ---- the timer ---- */

static dir_domain *domain_find(directory *d, const char *name)
{
	for (dir_domain *dd = d->domains; dd != NULL; dd = dd->next)
		if (strcasecmp(dd->name, name) == 0)
			return dd;
	return NULL;
}

/* mu held: submit dd's job. 0 ok, -1 when the pool is full (tried again next tick). */
static int domain_submit(directory *d, dir_domain *dd)
{
	dd->busy = 1;
	d->running++;
	if (tern_pool_submit(d->env.auth_pool, sync_job, NULL, dd, NULL) == 0)
		return 0;
	dd->busy = 0;
	d->running--;
	return -1;
}

/* One tick: learn the mapped domains from the store, start the due syncs, forget the
 * domains no longer mapped. */
static void tick(directory *d)
{
	Tern__DirectoryConfig **list = NULL;
	size_t n = 0;
	int64_t now = tern_now();

	if (store_directory_list(d->env.st, &list, &n) != STORE_OK)
		return;
	pthread_mutex_lock(&d->mu);
	for (dir_domain *dd = d->domains; dd != NULL; dd = dd->next)
		dd->present = 0;
	for (size_t i = 0; i < n; i++) {
		const char *name = list[i]->domain ? list[i]->domain : "";
		dir_domain *dd = domain_find(d, name);

		if (dd == NULL && strlen(name) < sizeof(dd->name) && name[0]) {
			if ((dd = calloc(1, sizeof(*dd))) == NULL)
				abort();
			dd->dir = d;
			memcpy(dd->name, name, strlen(name) + 1);
			dd->next = d->domains;
			d->domains = dd;
		}
		if (dd == NULL)
			continue;
		dd->present = 1;
		if (!dd->busy && !d->stop && now >= dd->next_poll)
			domain_submit(d, dd);
	}
	for (dir_domain **p = &d->domains; *p != NULL;) {
		dir_domain *dd = *p;

		if (!dd->present && !dd->busy) {
			*p = dd->next;
			umap_free(&dd->map);
			free(dd);
		} else {
			p = &dd->next;
		}
	}
	pthread_mutex_unlock(&d->mu);
	store_free_list((void **)list, n);
}

static void *timer_main(void *arg)
{
	directory *d = arg;

	pthread_mutex_lock(&d->mu);
	while (!d->stop) {
		pthread_mutex_unlock(&d->mu);
		tick(d);
		pthread_mutex_lock(&d->mu);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		if (!d->stop)
			pthread_cond_timedwait(&d->cond, &d->mu, &ts);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

int directory_start(const directory_env *env, directory **d_r, char **error_r)
{
	directory *d = calloc(1, sizeof(*d));

	*d_r = NULL;
	if (d == NULL)
		abort();
	d->env = *env;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cond, NULL);
	if (pthread_create(&d->thr, NULL, timer_main, d) != 0) {
		pthread_mutex_destroy(&d->mu);
		pthread_cond_destroy(&d->cond);
		free(d);
		*error_r = strdup("cannot start the directory thread");
		return -1;
	}
	d->thr_started = 1;
	dir_auth_register(d);
	*d_r = d;
	return 0;
}

void directory_stop(directory **dp)
{
	directory *d = *dp;

	if (d == NULL)
		return;
	*dp = NULL;
	dir_auth_unregister();
	pthread_mutex_lock(&d->mu);
	__atomic_store_n(&d->stop, 1, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->mu);
	if (d->thr_started)
		pthread_join(d->thr, NULL);
	pthread_mutex_lock(&d->mu);
	while (d->running > 0)
		pthread_cond_wait(&d->cond, &d->mu);
	pthread_mutex_unlock(&d->mu);
	while (d->domains != NULL) {
		dir_domain *dd = d->domains;

		d->domains = dd->next;
		umap_free(&dd->map);
		free(dd);
	}
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cond);
	free(d);
}

int directory_sync_now(directory *d, const char *domain, int full)
{
	int rc = -1;

	pthread_mutex_lock(&d->mu);
	dir_domain *dd = domain_find(d, domain);
	if (dd != NULL && !dd->busy && !d->stop) {
		if (full)
			dd->force_full = 1;
		rc = domain_submit(d, dd);
	}
	pthread_mutex_unlock(&d->mu);
	return rc;
}
