/* admin_private.h - shared by the files of node/admin/: the per-request state, the
 * reply helpers and the handlers of each resource family. */
#ifndef TERN_ADMIN_PRIVATE_H
#define TERN_ADMIN_PRIVATE_H
#include <jansson.h>
#include <pthread.h>
#include "admin.h"

#define ADMIN_SESSIONS_MAX 64

typedef struct admin_session {
	char user[330];
	char ip[64];
	int64_t last;
} admin_session;

struct admin {
	admin_env env;
	pthread_mutex_t lock;
	admin_session sessions[ADMIN_SESSIONS_MAX];
};

typedef struct admin_req admin_req;
typedef void (*admin_fn)(admin_req *r);

struct admin_req {
	admin *a;
	store *st;
	http_request *req;
	tern_io *io;
	int local;                 /* over the Unix socket */
	char ip[64];
	char actor[330];           /* "local" or the admin's address (config.log) */
	Tern__Rights rights;
	char admin_domain[256];    /* for RIGHTS_DOMAIN */
	char arg[512];             /* the path segment matched by the first '*' */
	char arg2[64];             /* ... and by a second '*' */
	int route_flags;
	json_t *body;              /* parsed request body (handlers that take one) */
	/* remote login, done on the auth pool */
	char *login_user, *login_pass;
	int login_ok;
	char *negotiate;           /* the token of "Authorization: Negotiate" (base64) */
	tbuf neg_out;              /* SPNEGO's mutual-authentication token (base64) */
	const char *neg_reason;    /* why SPNEGO refused (static) */
	/* an async step: on success of the store write run on_ok; log `log` first */
	admin_fn on_ok;
	tbuf log;
	/* handler scratch */
	char *password;
	char *hash;
	Tern__ScramKeys scram;
	int hash_rc;
	void *rec;                 /* a record being written (freed with the request) */
	void (*rec_free)(void *rec);
	char name[256], domain[256];
	int count;
	json_t *extra;
	char *param;               /* a query value the async store call reads */
};

/* route flags */
#define ADM_WRITE 1            /* needs read-write (or domain rights for its domain) */
#define ADM_DOMAIN_OK 2        /* open to "domain" admins, checked by the handler */
#define ADM_AUDIT 4            /* a refusal for lack of rights goes to security.log */

/* admin.c: replies (each releases r) and helpers */
void admin_reply_json(admin_req *r, int status, json_t *j);   /* steals j */
void admin_reply_empty(admin_req *r);   /* 200 with {}: a removal (admin_fn for admin_cb) */
void admin_reply_text(admin_req *r, int status, const char *ctype, const char *text, size_t len);
void admin_error(admin_req *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int admin_store_status(int rc);
void admin_store_error(admin_req *r, int rc, const char *msg);
/* store_cb that replies with the error or logs r->log and runs ok(r). */
store_cb admin_cb(admin_req *r, admin_fn ok);
/* 0 when the admin may change accounts of `domain`; else replies 403 and returns -1. */
int admin_may_domain(admin_req *r, const char *domain);
/* Default domain for ?domain= when absent: the primary. 0 ok (domain_r filled). */
int admin_primary_domain(store *st, char *domain_r, size_t n);
/* Domain from the query (or the primary); replies on error and returns -1. */
int admin_query_domain(admin_req *r, char *domain_r, size_t n);
/* Split a user address of the path into r->name / r->domain (a bare name: the primary
 * domain) and check the admin's domain; replies and returns -1 on error. */
int admin_user_address(admin_req *r, const char *address);
/* Read the user r->name@r->domain into *u_r (store_free_record); on failure replies with
 * the store error and returns -1. */
int admin_user_load(admin_req *r, Tern__User **u_r);
/* Run job on the auth pool, then done on this request's I/O thread; replies 503 if full. */
void admin_pool(admin_req *r, void (*job)(void *), admin_fn done);
void admin_config_log(admin_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* admin_json.c: strict body parsing */
typedef enum {
	AJ_STR, AJ_BOOL, AJ_UINT, AJ_STRLIST, AJ_UINT_OR_NULL, AJ_STR_OR_NULL, AJ_OBJECT
} aj_type;
typedef struct aj_field {
	const char *name;
	aj_type type;
} aj_field;
/* Decode a request body: a JSON object with only `fields` (NULL-name terminated), each
 * of its type, no duplicate keys. An empty body is an empty object when allow_empty.
 * 0 with *obj_r (the caller's), or -1 with the reason appended to why. Pure: no store. */
int admin_json_decode(const char *data, size_t len, const aj_field *fields, int allow_empty,
		      json_t **obj_r, tbuf *why);
/* The same checks on an object already parsed (e.g. a nested one): only `fields`, each of
 * its type. 0, or -1 with the reason appended to why. */
int admin_json_check(const json_t *obj, const aj_field *fields, tbuf *why);
/* admin_json_decode of r->req->body into r->body; on error replies 400, returns -1. */
int admin_parse_body(admin_req *r, const aj_field *fields, int allow_empty);
/* The body fields of POST /api/v1/users; PATCH takes the same but "address" (+1). */
extern const aj_field admin_user_fields[];
/* Helpers on r->body (field known to have the right type). */
const char *aj_str(admin_req *r, const char *name);
int aj_has(admin_req *r, const char *name);
/* Copy a string list field into a protobuf repeated string (malloc'd). */
void aj_strlist(json_t *arr, char ***out, size_t *n);
json_t *aj_from_strlist(char **v, size_t n);
void aj_free_strlist(char ***v, size_t *n);
void aj_set_str(char **field, const char *v);
const char *admin_rights_name(Tern__Rights r);
int admin_rights_parse(const char *s, Tern__Rights *r_out);
/* Append "Key='value'" (quotes in value doubled) to a config.log line. */
void admin_log_kv(tbuf *b, const char *key, const char *value);

/* handlers */
void adm_status(admin_req *r);
void adm_node(admin_req *r);
void adm_stats(admin_req *r);
/* admin_cluster.c */
void adm_cluster(admin_req *r);
void adm_cluster_identity(admin_req *r);
void adm_cluster_admit(admin_req *r);
void adm_cluster_join(admin_req *r);
void adm_cluster_leave(admin_req *r);
void adm_cluster_remove(admin_req *r);
void adm_logs(admin_req *r);
/* admin_migrate.c */
void adm_migration_list(admin_req *r);
void adm_migration_add(admin_req *r);
void adm_migration_cancel(admin_req *r);
void adm_domain_list(admin_req *r);
void adm_domain_add(admin_req *r);
void adm_domain_get(admin_req *r);
void adm_domain_patch(admin_req *r);
void adm_domain_delete(admin_req *r);
void adm_domain_rename(admin_req *r);
void adm_domain_primary(admin_req *r);
void adm_user_list(admin_req *r);
void adm_user_add(admin_req *r);
void adm_user_get(admin_req *r);
void adm_user_patch(admin_req *r);
void adm_user_delete(admin_req *r);
void adm_user_stats(admin_req *r);
void adm_user_unlock(admin_req *r);
void adm_user_messages(admin_req *r);
void adm_queue_list(admin_req *r);
void adm_queue_retry(admin_req *r);
void adm_queue_retry_all(admin_req *r);
void adm_queue_remove(admin_req *r);
void adm_queue_remove_all(admin_req *r);
void adm_queue_run(admin_req *r);
/* The "mail" counters of GET /api/v1/stats (SMTP, deliverer, queue). */
json_t *admin_mail_stats(const admin_env *env);
void adm_user_message(admin_req *r);
void adm_user_import(admin_req *r);
void adm_user_export(admin_req *r);
/* admin_gal.c */
void adm_gal_list(admin_req *r);
void adm_group_list(admin_req *r);
void adm_group_add(admin_req *r);
void adm_group_get(admin_req *r);
void adm_group_patch(admin_req *r);
void adm_group_delete(admin_req *r);
void adm_group_members(admin_req *r);
void adm_alias_list(admin_req *r);
void adm_alias_add(admin_req *r);
void adm_alias_delete(admin_req *r);
void adm_alias_check(admin_req *r);
void adm_ipgroup_list(admin_req *r);
void adm_ipgroup_add(admin_req *r);
void adm_ipgroup_delete(admin_req *r);
/* admin_resources.c */
void adm_resource_list(admin_req *r);
void adm_resource_add(admin_req *r);
void adm_resource_get(admin_req *r);
void adm_resource_patch(admin_req *r);
void adm_resource_delete(admin_req *r);
/* admin_directory.c */
void adm_directory_get(admin_req *r);
void adm_directory_put(admin_req *r);
void adm_directory_delete(admin_req *r);
void adm_directory_test(admin_req *r);

/* admin_csv.c: the import parser, pure (no store, no hashing) so that it can be fuzzed. */
enum {
	ADMIN_CSV_NAME, ADMIN_CSV_PASSWORD, ADMIN_CSV_FULLNAME, ADMIN_CSV_MAILADDRESS,
	ADMIN_CSV_GROUPS, ADMIN_CSV_DESCRIPTION, ADMIN_CSV_NCOLS
};
typedef struct admin_csv_row {
	int lineno;
	const char *cell[ADMIN_CSV_NCOLS];   /* "" for a column the file lacks or a short row */
} admin_csv_row;
typedef void (*admin_csv_row_fn)(const admin_csv_row *row, void *ctx);
/* Parse the CSV text[0..len): fn runs for each data row, in order (the row's strings
 * live during the call). Problems (unknown column, unterminated quote, NUL byte, no
 * header) are appended to the JSON array errors as "line N: ..." strings. Returns the
 * number of rows handed to fn, or -1 when there is no usable header row. */
int admin_csv_parse(const char *text, size_t len, admin_csv_row_fn fn, void *ctx, json_t *errors);
/* Split a multi-value cell on ',' into trimmed, non-empty, lower-case items; free them
 * with aj_free_strlist. Returns the count. */
size_t admin_csv_split_multi(const char *cell, char ***items_r);

/* admin_users.c, used by CSV import */
json_t *admin_user_json(store *st, const Tern__User *u);

#endif
