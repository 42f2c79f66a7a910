/* ternctl.h - private header of the admin CLI: the connection to a node (Unix socket or
 * pinned HTTPS), the argument parser, the command table and the printers.
 * ternctl is a thin client of node/admin/API.md: every command is one or two API calls. */
#ifndef TERNCTL_H
#define TERNCTL_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "tern.h"

/* Exit codes, a contract for scripts (DESIGN.md §8). */
#define CTL_EXIT_OK 0
#define CTL_EXIT_ERROR 1
#define CTL_EXIT_USAGE 2
#define CTL_EXIT_DOWN 3

/* ctl_http() results besides 0. */
#define CTL_HTTP_ERROR (-1)
#define CTL_HTTP_DOWN (-3)      /* nothing listens: socket missing or connection refused */

#define CTL_MAX_RESPONSE (64u * 1024 * 1024)
#define CTL_MAX_HEAD (64u * 1024)
#define CTL_IO_TIMEOUT_S 300
#define CTL_CONNECT_TIMEOUT_S 10

/* Where the node is and how to authenticate; filled from the global options. */
typedef struct ctl_target {
	int remote;                 /* 0: Unix socket, 1: HTTPS */
	char sock_path[108];        /* DATA/admin.sock */
	char *host;                 /* remote: host name or address, no brackets */
	char port[8];
	char *authorization;        /* remote: "Basic ..." */
	int has_pin;
	unsigned char pin[32];      /* remote: SHA-256 of the peer certificate (DER) */
	char where[512];            /* "the node at DIR" / "HOST:PORT" for messages */
} ctl_target;

typedef struct ctl_response {
	int status;
	char content_type[128];
	tbuf body;
} ctl_response;

/* ternctl_http.c */
/* Send one request (Connection: close) and read the whole answer into resp.
 * 0 when an HTTP answer arrived (any status); CTL_HTTP_DOWN when the node is not
 * running; CTL_HTTP_ERROR with *error_r (malloc'd) otherwise. */
int ctl_http(const ctl_target *t, const char *method, const char *path,
	     const char *content_type, const void *body, size_t body_len,
	     ctl_response *resp, char **error_r);
void ctl_response_free(ctl_response *resp);
/* Parse a fingerprint (hex, any case, colons allowed) into 32 bytes. 0 ok, -1 bad. */
int ctl_parse_fingerprint(const char *text, unsigned char out[32]);
void ctl_target_free(ctl_target *t);

/* Parsed command arguments: positionals and "--name [value]" options in order. */
typedef struct ctl_optspec {
	const char *name;           /* without the dashes */
	int has_arg;
} ctl_optspec;

typedef struct ctl_opt {
	const char *name;
	const char *value;          /* NULL for a flag */
} ctl_opt;

#define CTL_MAX_ARGS 64
typedef struct ctl_args {
	int npos;
	const char *pos[CTL_MAX_ARGS];
	int nopt;
	ctl_opt opt[CTL_MAX_ARGS];
} ctl_args;

typedef struct ctl_ctx {
	ctl_target target;
	int json;
	const char *data_dir;
} ctl_ctx;

typedef struct ctl_column {
	const char *header;
	const char *key;            /* a member of each row; "a.b" reaches into an object */
} ctl_column;

typedef int ctl_cmd_fn(ctl_ctx *ctx, const ctl_args *a);

/* One row of the command table: "GROUP VERB" (verb NULL for a one-word command). */
typedef struct ctl_cmd {
	const char *group;
	const char *verb;
	ctl_cmd_fn *fn;
	const ctl_optspec *opts;
	int min_pos, max_pos;       /* positional arguments after the command words */
	const char *usage;
} ctl_cmd;

/* ternctl.c */
/* Fill t for a node's admin HTTPS: hostport "HOST:PORT" (of option opt, for messages),
 * Basic credentials of user with the first line of password_file, the certificate pinned
 * to fingerprint (option fp_opt) when not NULL. Returns an exit code (0 ok); free t with
 * ctl_target_free. */
int ctl_target_remote(ctl_target *t, const char *opt, const char *hostport, const char *user,
		      const char *password_file, const char *fp_opt, const char *fingerprint);
const char *ctl_arg(const ctl_args *a, const char *name);   /* the last value, or NULL */
int ctl_flag(const ctl_args *a, const char *name);          /* 1 when given */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ternctl_cmds.c, ternctl_users.c, ternctl_queue.c, ternctl_resources.c - one function per command; each
 * returns an exit code. */
ctl_cmd_fn ctl_cmd_status, ctl_cmd_node_show, ctl_cmd_stats, ctl_cmd_logs,
	ctl_cmd_cluster_status, ctl_cmd_cluster_join, ctl_cmd_cluster_leave, ctl_cmd_cluster_remove,
	ctl_cmd_queue_list, ctl_cmd_queue_retry, ctl_cmd_queue_remove, ctl_cmd_queue_run,
	ctl_cmd_migrate_here, ctl_cmd_migrate_status, ctl_cmd_migrate_cancel,
	ctl_cmd_domain_add, ctl_cmd_domain_list, ctl_cmd_domain_show, ctl_cmd_domain_set,
	ctl_cmd_domain_remove, ctl_cmd_domain_rename, ctl_cmd_domain_primary,
	ctl_cmd_user_add, ctl_cmd_user_list, ctl_cmd_user_show, ctl_cmd_user_set,
	ctl_cmd_user_remove, ctl_cmd_user_stats, ctl_cmd_user_unlock, ctl_cmd_user_import,
	ctl_cmd_user_export,
	ctl_cmd_group_add, ctl_cmd_group_list, ctl_cmd_group_show, ctl_cmd_group_set,
	ctl_cmd_group_remove, ctl_cmd_group_members,
	ctl_cmd_resource_add, ctl_cmd_resource_list, ctl_cmd_resource_show, ctl_cmd_resource_set,
	ctl_cmd_resource_remove,
	ctl_cmd_alias_add, ctl_cmd_alias_list, ctl_cmd_alias_remove, ctl_cmd_alias_check,
	ctl_cmd_ipgroup_add, ctl_cmd_ipgroup_list, ctl_cmd_ipgroup_remove,
	ctl_cmd_gal_list,
	ctl_cmd_directory_set, ctl_cmd_directory_show, ctl_cmd_directory_test;

/* ternctl_cmds.c - helpers shared by the command files. */
/* Call the API with a JSON body (stolen; NULL for none). On success *result_r is the
 * answer (an empty object when the body was empty). Returns an exit code; on failure the
 * one-line message is already on stderr. */
int ctl_call(ctl_ctx *ctx, const char *method, const char *path, json_t *body,
	     json_t **result_r);
/* The same with a raw body and answer (CSV, logs); resp is filled only on success. */
int ctl_call_raw(ctl_ctx *ctx, const char *method, const char *path, const char *content_type,
		 const void *body, size_t len, ctl_response *resp);
/* Append s percent-encoded for a path segment or query value. */
void ctl_url_append(tbuf *b, const char *s);
/* Print the answer as JSON (--json) or the line "what" (human); frees result. */
int ctl_done(ctl_ctx *ctx, json_t *result, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Parse an unsigned option into obj[key] times mult. 0 ok or absent, CTL_EXIT_USAGE. */
int ctl_opt_uint(const ctl_args *a, const char *name, uint64_t max, uint64_t mult,
		 json_t *obj, const char *key);
/* Every value of a repeatable option as a JSON array into obj[key] (when given). */
void ctl_opt_list(const ctl_args *a, const char *name, json_t *obj, const char *key);
/* A string option into obj[key] (when given). */
void ctl_opt_str(const ctl_args *a, const char *name, json_t *obj, const char *key);

/* A list GET (?domain= when domain is not NULL) printed as JSON or as a table. */
int ctl_list_call(ctl_ctx *ctx, const char *kind, const char *domain, const ctl_column *cols);
/* A request on /api/v1/KIND/NAME[SUFFIX] (body stolen); the answer is printed as JSON,
 * else msg, else (msg NULL) as "key: value" lines. */
int ctl_item_call(ctl_ctx *ctx, const char *method, const char *kind, const char *name,
		  const char *suffix, json_t *body, const char *msg);
/* "KIND set NAME --options": PATCH /api/v1/KINDs/NAME with the body made by body_fn;
 * a usage error when no option was given. noun is "user", "group", ... */
int ctl_item_set(ctl_ctx *ctx, const ctl_args *a, const char *noun, const char *kind,
		 int (*body_fn)(const ctl_args *a, json_t *o));
/* "KIND remove NAME": DELETE /api/v1/KINDs/NAME. */
int ctl_item_remove(ctl_ctx *ctx, const ctl_args *a, const char *noun, const char *kind);

/* ternctl_print.c - human output (without --json) and --json output. */
void ctl_print_json(const json_t *v);
void ctl_print_table(const json_t *rows, const ctl_column *cols);
void ctl_print_object(const json_t *obj);
/* The value of "a.b" in obj as display text into out ("" when absent). */
void ctl_value_text(const json_t *obj, const char *key, tbuf *out);
void ctl_print_status(const json_t *status);
void ctl_print_stats(const json_t *stats);
void ctl_print_alias_check(const json_t *check);
void ctl_print_ipgroups(const json_t *groups);

#endif
