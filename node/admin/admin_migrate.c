/* admin_migrate.c - /api/v1/migrations: "migrate here" of users of the distributed
 * domain to this node (DESIGN.md §6), their progress, and cancel. Starting and cancelling
 * need whole-server read/write rights (the route table), read-only admins may watch.
 * The migrate calls touch the store and the control plane: they run on the auth pool. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "admin_private.h"

#define MIG_USERS_MAX 1000

/* One asynchronous migrations request, kept in r->rec. */
typedef struct mig_job {
	char **users;                 /* POST: the addresses, lower case */
	size_t n;
	char admin[330];              /* POST: who gets the reports ("" = nobody) */
	migrate_status *list;         /* GET (and POST's answer): every job */
	size_t nlist;
	int found;                    /* DELETE: the user has a migration here */
	tbuf err;
	int rc;
} mig_job;

/* rec_free of a mig_job. */
static void mig_job_free(void *p)
{
	mig_job *j = p;
	for (size_t i = 0; i < j->n; i++)
		free(j->users[i]);
	free(j->users);
	free(j->list);
	tbuf_free(&j->err);
	free(j);
}

/* A new job attached to r (freed with the request). */
static mig_job *mig_job_new(admin_req *r)
{
	mig_job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		abort();
	tbuf_init(&j->err);
	r->rec = j;
	r->rec_free = mig_job_free;
	return j;
}

/* 0 when this node runs the migrate module; else replies 503 and returns -1. */
static int need_migrate(admin_req *r)
{
	if (r->a->env.mig != NULL)
		return 0;
	admin_error(r, 503, "migration is not running on this node (not in a distributed domain)");
	return -1;
}

/* MIGRATION of API.md for one job. */
static json_t *status_json(const migrate_status *s)
{
	json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:f, s:I, s:s, s:I, s:I, s:I, s:I, s:I}",
			      "user", s->user, "state", s->state, "bytes", (json_int_t)s->bytes,
			      "messages", (json_int_t)s->messages, "rate", s->rate,
			      "eta", (json_int_t)s->eta, "source", s->source,
			      "bytes_total", (json_int_t)s->bytes_total,
			      "messages_total", (json_int_t)s->messages_total,
			      "queued", (json_int_t)s->queued, "started", (json_int_t)s->started,
			      "finished", (json_int_t)s->finished);
	if (o == NULL)
		abort();
	json_object_set_new(o, "cutover_ms", s->cutover_ms > 0 ? json_integer(s->cutover_ms) : json_null());
	json_object_set_new(o, "error", s->error[0] ? json_string(s->error) : json_null());
	return o;
}

/* The jobs of j->list as a JSON array; only the users of j->users when only is set. */
static json_t *list_json(const mig_job *j, int only)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < j->nlist; i++) {
		int keep = !only;
		for (size_t k = 0; only && k < j->n && !keep; k++)
			keep = strcasecmp(j->list[i].user, j->users[k]) == 0;
		if (keep)
			json_array_append_new(arr, status_json(&j->list[i]));
	}
	return arr;
}

/* ---- GET ---- */

/* Auth pool: every job of this node. */
static void list_job(void *arg)
{
	admin_req *r = arg;
	mig_job *j = r->rec;
	j->rc = migrate_list(r->a->env.mig, &j->list, &j->nlist);
}

/* I/O thread: the array. */
static void list_done(admin_req *r)
{
	mig_job *j = r->rec;
	if (j->rc < 0) {
		admin_error(r, 500, "cannot read the migrations");
		return;
	}
	admin_reply_json(r, 200, list_json(j, 0));
}

/* GET /api/v1/migrations: every migration to this node, in queue order. */
void adm_migration_list(admin_req *r)
{
	if (need_migrate(r) < 0)
		return;
	mig_job_new(r);
	admin_pool(r, list_job, list_done);
}

/* ---- POST ---- */

static const aj_field migrate_fields[] = {
	{ "users", AJ_STRLIST }, { "admin", AJ_STR }, { NULL, AJ_STR },
};

/* The local administrator's report address: the first user of the primary domain with
 * whole-server read/write rights ("" when there is none). */
static void local_admin(store *st, char *out, size_t n)
{
	char dom[256];
	Tern__User **list = NULL;
	size_t cnt = 0;
	out[0] = '\0';
	if (admin_primary_domain(st, dom, sizeof(dom)) < 0 || store_user_list(st, dom, &list, &cnt) != STORE_OK)
		return;
	for (size_t i = 0; i < cnt; i++) {
		if (list[i]->rights == TERN__RIGHTS__RIGHTS_READ_WRITE && list[i]->enabled) {
			snprintf(out, n, "%s@%s", list[i]->name, list[i]->domain);
			tern_lower(out);
			break;
		}
	}
	store_free_list((void **)list, cnt);
}

/* Auth pool: queue the users (all or nothing), then read the jobs for the answer. */
static void here_job(void *arg)
{
	admin_req *r = arg;
	mig_job *j = r->rec;
	if (j->admin[0] == '\0')
		local_admin(r->st, j->admin, sizeof(j->admin));
	j->rc = migrate_here(r->a->env.mig, (const char *const *)j->users, j->n, j->admin, &j->err);
	if (j->rc == 0 && migrate_list(r->a->env.mig, &j->list, &j->nlist) < 0)
		j->nlist = 0;
}

/* I/O thread: 201 with the queued users' migrations, or 409 with why. */
static void here_done(admin_req *r)
{
	mig_job *j = r->rec;
	if (j->rc < 0) {
		const char *why = j->err.len ? tbuf_cstr(&j->err) : "refused";
		tlog(TLOG_WARNING, "%s - migrate here refused: %s", r->actor, why);
		admin_error(r, 409, "%s", why);
		return;
	}
	tbuf users = TBUF_INIT;
	for (size_t i = 0; i < j->n; i++)
		tbuf_appendf(&users, "%s%s", i ? ", " : "", j->users[i]);
	tlog(TLOG_OPERATIONS, "Migration to this node queued by %s: %s", r->actor, tbuf_cstr(&users));
	tbuf_free(&users);
	admin_reply_json(r, 201, list_json(j, 1));
}

/* Whether s looks like one address (local@domain, no spaces or control characters). */
static int address_ok(const char *s)
{
	const char *at = strchr(s, '@');
	if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@') != NULL || strlen(s) >= 320)
		return 0;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '/' || *p == 0x7f)
			return 0;
	return 1;
}

/* POST /api/v1/migrations {"users": [ADDRESS...], "admin": report address}: queue them. */
void adm_migration_add(admin_req *r)
{
	if (need_migrate(r) < 0 || admin_parse_body(r, migrate_fields, 0) < 0)
		return;
	json_t *users = json_object_get(r->body, "users");
	size_t n = json_array_size(users);
	if (n == 0 || n > MIG_USERS_MAX) {
		admin_error(r, 400, "field \"users\" must name 1 to %d users", MIG_USERS_MAX);
		return;
	}
	mig_job *j = mig_job_new(r);
	j->users = calloc(n, sizeof(*j->users));
	if (j->users == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		const char *u = json_string_value(json_array_get(users, i));
		if (!address_ok(u)) {
			admin_error(r, 400, "not a user address: %s", u);
			return;
		}
		for (size_t k = 0; k < j->n; k++) {
			if (strcasecmp(j->users[k], u) == 0) {
				admin_error(r, 400, "user %s is named twice", u);
				return;
			}
		}
		j->users[j->n] = strdup(u);
		if (j->users[j->n] == NULL)
			abort();
		tern_lower(j->users[j->n++]);
	}
	const char *admin = aj_str(r, "admin");
	if (admin != NULL && admin[0] != '\0') {
		if (!address_ok(admin)) {
			admin_error(r, 400, "field \"admin\" must be an address");
			return;
		}
		snprintf(j->admin, sizeof(j->admin), "%s", admin);
	} else if (!r->local) {
		snprintf(j->admin, sizeof(j->admin), "%s", r->actor);   /* the authenticated admin */
	}
	tern_lower(j->admin);
	admin_pool(r, here_job, here_done);
}

/* ---- DELETE ---- */

/* Auth pool: cancel when the user has a migration here. */
static void cancel_job(void *arg)
{
	admin_req *r = arg;
	mig_job *j = r->rec;
	j->rc = migrate_list(r->a->env.mig, &j->list, &j->nlist);
	for (size_t i = 0; j->rc == 0 && i < j->nlist; i++)
		if (strcasecmp(j->list[i].user, r->arg) == 0)
			j->found = 1;
	if (j->rc == 0 && j->found)
		j->rc = migrate_cancel(r->a->env.mig, r->arg, &j->err);
}

/* I/O thread: {} or why not. */
static void cancel_done(admin_req *r)
{
	mig_job *j = r->rec;
	if (j->rc == 0 && !j->found) {
		admin_error(r, 404, "no migration of %s on this node", r->arg);
		return;
	}
	if (j->rc < 0) {
		admin_error(r, 409, "%s", j->err.len ? tbuf_cstr(&j->err) : "cannot cancel");
		return;
	}
	tlog(TLOG_OPERATIONS, "Migration of %s cancelled by %s", r->arg, r->actor);
	admin_reply_empty(r);
}

/* DELETE /api/v1/migrations/ADDRESS: cancel a queued or running migration. */
void adm_migration_cancel(admin_req *r)
{
	if (need_migrate(r) < 0)
		return;
	if (!address_ok(r->arg)) {
		admin_error(r, 400, "not a user address: %s", r->arg);
		return;
	}
	tern_lower(r->arg);
	mig_job_new(r);
	admin_pool(r, cancel_job, cancel_done);
}
