/* admin_node.c - the node as a whole: status, node, stats, logs (the cluster: admin_cluster.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "admin_private.h"

static json_t *service_listen(const tern_service_conf *sc)
{
	json_t *a = json_array();
	for (unsigned i = 0; i < sc->nlisten; i++) {
		const char *h = sc->listen[i].host[0] ? sc->listen[i].host : "0.0.0.0";
		char buf[96];
		if (strchr(h, ':') != NULL)
			snprintf(buf, sizeof(buf), "[%s]:%u", h, (unsigned)sc->listen[i].port);
		else
			snprintf(buf, sizeof(buf), "%s:%u", h, (unsigned)sc->listen[i].port);
		json_array_append_new(a, json_string(buf));
	}
	return a;
}

void adm_status(admin_req *r)
{
	const admin_env *env = &r->a->env;
	json_t *svcs = json_array();
	for (int i = 0; i < TERN_SVC_COUNT; i++) {
		const tern_service_conf *sc = &env->conf->services[i];
		json_array_append_new(svcs, json_pack("{s:s, s:b, s:b, s:o, s:I}", "name", sc->name,
						      "enabled", sc->enabled, "served", env->served[i],
						      "listen", service_listen(sc), "connections",
						      (json_int_t)tern_server_connections(env->srv, (tern_service_id)i)));
	}
	/* Every served listener is bound before the admin socket opens. */
	json_t *j = json_pack("{s:b, s:s, s:s, s:I, s:o}", "ready", 1, "node", env->node_name,
			      "version", TERN_VERSION, "uptime", (json_int_t)(tern_now() - env->started),
			      "services", svcs);
	admin_reply_json(r, 200, j);
}

void adm_node(admin_req *r)
{
	const admin_env *env = &r->a->env;
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "name", env->node_name,
			      "fingerprint", tern_server_fingerprint(env->srv),
			      "hostname", tern_conf_hostname(env->conf), "version", TERN_VERSION,
			      "data_dir", env->data_dir,
			      "role", env->cl ? cluster_role_name(cluster_get_role(env->cl)) : "standalone",
			      "uptime", (json_int_t)(tern_now() - env->started));
	admin_reply_json(r, 200, j);
}

void adm_stats(admin_req *r)
{
	const admin_env *env = &r->a->env;
	store_stats s;
	memset(&s, 0, sizeof(s));
	store_get_stats(r->st, &s);
	json_t *conns = json_object();
	for (int i = 0; i < TERN_SVC_COUNT; i++)
		json_object_set_new(conns, env->conf->services[i].name,
				    json_integer((json_int_t)tern_server_connections(env->srv, (tern_service_id)i)));
	Tern__Domain **list = NULL;
	size_t nd = 0;
	json_int_t users = 0;
	if (store_domain_list(r->st, &list, &nd) == STORE_OK) {
		for (size_t i = 0; i < nd; i++)
			users += store_domain_user_count(r->st, list[i]->name);
		store_free_list((void **)list, nd);
	}
	json_t *j = json_pack("{s:I, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:o, s:I, s:I, s:o}",
			      "uptime", (json_int_t)(tern_now() - env->started), "store",
			      "wal_synced", (json_int_t)s.wal_synced, "wal_bytes", (json_int_t)s.wal_bytes,
			      "commits", (json_int_t)s.commits, "commit_groups", (json_int_t)s.commit_groups,
			      "live_data_bytes", (json_int_t)s.live_data_bytes,
			      "blobs_swept", (json_int_t)s.blobs_swept,
			      "free_disk_bytes", (json_int_t)s.free_disk_bytes,
			      "connections", conns, "domains", (json_int_t)nd, "users", users,
			      "mail", admin_mail_stats(env));
	admin_reply_json(r, 200, j);
}

/* The last `lines` lines of path into out (at most 8 MiB of the file's end are read). */
static int tail_file(const char *path, long lines, tbuf *out)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return -1;
	long max = 8L << 20;
	if (fseek(f, 0, SEEK_END) == 0) {
		long size = ftell(f);
		if (size > max)
			fseek(f, size - max, SEEK_SET);
		else
			fseek(f, 0, SEEK_SET);
	}
	char buf[65536];
	size_t n;
	tbuf all = TBUF_INIT;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		tbuf_append(&all, buf, n);
	fclose(f);
	size_t start = all.len;
	long seen = 0;
	if (start > 0 && all.data[start - 1] == '\n')
		start--;
	while (start > 0) {
		if (all.data[start - 1] == '\n' && ++seen == lines)
			break;
		start--;
	}
	if (all.len > 0)
		tbuf_append(out, all.data + start, all.len - start);
	tbuf_free(&all);
	return 0;
}

void adm_logs(admin_req *r)
{
	int known = 0;
	for (int c = 0; c < TLOG_COUNT; c++)
		if (strcmp(tlog_category_name((tlog_category)c), r->arg) == 0)
			known = 1;
	if (!known) {
		admin_error(r, 404, "no such log: %s (config, mail, security, warning, error, operations, "
			    "spam, debug)", r->arg);
		return;
	}
	long lines = 100;
	char *q = http_query_param(r->req, "lines");
	if (q != NULL) {
		char *end;
		lines = strtol(q, &end, 10);
		int bad = *q == '\0' || *end != '\0' || lines < 1 || lines > 100000;
		free(q);
		if (bad) {
			admin_error(r, 400, "lines must be 1..100000");
			return;
		}
	}
	char path[4096];
	int w = snprintf(path, sizeof(path), "%s/logs/%s.log", r->a->env.data_dir, r->arg);
	if (w < 0 || (size_t)w >= sizeof(path)) {
		admin_error(r, 500, "log path too long");
		return;
	}
	tbuf out = TBUF_INIT;
	if (tail_file(path, lines, &out) < 0) {
		tbuf_free(&out);
		admin_reply_text(r, 200, "text/plain; charset=utf-8", "", 0);
		return;
	}
	admin_reply_text(r, 200, "text/plain; charset=utf-8", tbuf_cstr(&out), out.len);
	tbuf_free(&out);
}
