/* ternctl.c - the admin CLI of Tern: global options, the command table and dispatch.
 *   ternctl [--data DIR | --node HOST:PORT --user ADMIN --password-file F
 *            [--fingerprint SHA256]] [--json] COMMAND ...
 * Exit codes: 0 ok, 1 error (one line on stderr), 2 usage, 3 node not running. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "ternctl.h"

#define DEFAULT_DATA_DIR "./tern-data"

static const ctl_optspec no_opts[] = { { NULL, 0 } };
static const ctl_optspec status_opts[] = { { "wait", 1 }, { NULL, 0 } };
static const ctl_optspec logs_opts[] = { { "lines", 1 }, { NULL, 0 } };
static const ctl_optspec domain_opts[] = {
	{ "description", 1 }, { "alias", 1 }, { "user-limit", 1 }, { "size-limit-mb", 1 },
	{ "footer", 1 }, { "footer-skip-internal", 0 }, { "retention-days", 1 }, { NULL, 0 }
};
static const ctl_optspec user_opts[] = {
	{ "password-file", 1 }, { "full-name", 1 }, { "description", 1 }, { "quota-mb", 1 },
	{ "quota-items", 1 }, { "forward", 1 }, { "keep-copy", 0 }, { "no-keep-copy", 0 },
	{ "home", 1 }, { "address", 1 }, { "rights", 1 }, { "enabled", 0 }, { "disabled", 0 },
	{ "size-limit-mb", 1 }, { "publish-in-gal", 0 }, { "no-publish-in-gal", 0 }, { NULL, 0 }
};
static const ctl_optspec group_opts[] = {
	{ "description", 1 }, { "address", 1 }, { "member", 1 }, { "rights", 1 },
	{ "publish-in-gal", 0 }, { "local-only", 0 }, { NULL, 0 }
};
static const ctl_optspec resource_opts[] = {
	{ "type", 1 }, { "manager", 1 }, { "no-manager", 0 }, { "bookable-by", 1 }, { "unavailable", 0 },
	{ "available", 0 }, { "description", 1 }, { "show-details", 0 }, { "hide-details", 0 }, { NULL, 0 }
};
static const ctl_optspec user_list_opts[] = { { "this-node", 0 }, { "node", 1 }, { NULL, 0 } };
static const ctl_optspec join_opts[] = {
	{ "master", 1 }, { "admin", 1 }, { "password-file", 1 }, { "master-fingerprint", 1 }, { NULL, 0 }
};
static const ctl_optspec members_opts[] = { { "add", 1 }, { "remove", 1 }, { NULL, 0 } };
static const ctl_optspec describe_opts[] = { { "description", 1 }, { NULL, 0 } };
static const ctl_optspec queue_opts[] = { { "all", 0 }, { NULL, 0 } };
static const ctl_optspec migrate_here_opts[] = { { "wait", 0 }, { "admin", 1 }, { NULL, 0 } };
static const ctl_optspec migrate_status_opts[] = { { "wait", 0 }, { NULL, 0 } };
static const ctl_optspec directory_opts[] = {
	{ "type", 1 }, { "server", 1 }, { "backup-server", 1 }, { "ldaps", 0 }, { "starttls", 0 },
	{ "ca-file", 1 }, { "bind-dn", 1 }, { "bind-password-file", 1 }, { "base", 1 },
	{ "realm", 1 }, { "auth", 1 }, { "directory-domain", 1 }, { "off", 0 }, { NULL, 0 }
};

/* The command table: words, handler, options, positional count, usage. */
static const ctl_cmd commands[] = {
	{ "status", NULL, ctl_cmd_status, status_opts, 0, 0, "status [--wait SECONDS]" },
	{ "node", "show", ctl_cmd_node_show, no_opts, 0, 0, "node show" },
	{ "stats", NULL, ctl_cmd_stats, no_opts, 0, 0, "stats" },
	{ "logs", NULL, ctl_cmd_logs, logs_opts, 1, 1, "logs NAME [--lines N]" },
	{ "cluster", "status", ctl_cmd_cluster_status, no_opts, 0, 0, "cluster status" },
	{ "cluster", "join", ctl_cmd_cluster_join, join_opts, 0, 0,
	  "cluster join --master HOST:ADMINPORT --admin USER@DOMAIN --password-file F "
	  "--master-fingerprint SHA256" },
	{ "cluster", "leave", ctl_cmd_cluster_leave, no_opts, 0, 0, "cluster leave" },
	{ "cluster", "remove", ctl_cmd_cluster_remove, no_opts, 1, 1, "cluster remove NODE" },
	{ "queue", "list", ctl_cmd_queue_list, no_opts, 0, 0, "queue list" },
	{ "queue", "retry", ctl_cmd_queue_retry, queue_opts, 0, 1, "queue retry QUEUE-ID|--all" },
	{ "queue", "remove", ctl_cmd_queue_remove, queue_opts, 0, 1, "queue remove QUEUE-ID|--all" },
	{ "queue", "run", ctl_cmd_queue_run, no_opts, 0, 0, "queue run" },
	{ "migrate", "here", ctl_cmd_migrate_here, migrate_here_opts, 1, CTL_MAX_ARGS,
	  "migrate here USER@DOMAIN... [--wait] [--admin ADDRESS]" },
	{ "migrate", "status", ctl_cmd_migrate_status, migrate_status_opts, 0, 0, "migrate status [--wait]" },
	{ "migrate", "cancel", ctl_cmd_migrate_cancel, no_opts, 1, 1, "migrate cancel USER@DOMAIN" },
	{ "domain", "add", ctl_cmd_domain_add, domain_opts, 1, 1,
	  "domain add NAME [--description S] [--alias D]... [--user-limit N] [--size-limit-mb N] "
	  "[--footer S] [--retention-days N]" },
	{ "domain", "list", ctl_cmd_domain_list, no_opts, 0, 0, "domain list" },
	{ "domain", "show", ctl_cmd_domain_show, no_opts, 1, 1, "domain show NAME" },
	{ "domain", "set", ctl_cmd_domain_set, domain_opts, 1, 1, "domain set NAME [options of domain add]" },
	{ "domain", "remove", ctl_cmd_domain_remove, no_opts, 1, 1, "domain remove NAME" },
	{ "domain", "rename", ctl_cmd_domain_rename, no_opts, 2, 2, "domain rename NAME NEWNAME" },
	{ "domain", "primary", ctl_cmd_domain_primary, no_opts, 1, 1, "domain primary NAME" },
	{ "user", "add", ctl_cmd_user_add, user_opts, 1, 1,
	  "user add USER@DOMAIN --password-file FILE [--full-name S] [--description S] "
	  "[--quota-mb N] [--quota-items N] [--forward ADDR]... [--keep-copy] [--home NODE] "
	  "[--address LOCAL]... [--rights none|domain|read-only|read-write] [--disabled] "
	  "[--publish-in-gal|--no-publish-in-gal]" },
	{ "user", "list", ctl_cmd_user_list, user_list_opts, 0, 1,
	  "user list [DOMAIN] [--this-node | --node NODE]" },
	{ "user", "show", ctl_cmd_user_show, no_opts, 1, 1, "user show USER@DOMAIN" },
	{ "user", "set", ctl_cmd_user_set, user_opts, 1, 1,
	  "user set USER@DOMAIN [options of user add] [--enabled|--disabled]" },
	{ "user", "remove", ctl_cmd_user_remove, no_opts, 1, 1, "user remove USER@DOMAIN" },
	{ "user", "stats", ctl_cmd_user_stats, no_opts, 1, 1, "user stats USER@DOMAIN" },
	{ "user", "unlock", ctl_cmd_user_unlock, no_opts, 1, 1, "user unlock USER@DOMAIN|'*'" },
	{ "user", "import", ctl_cmd_user_import, no_opts, 2, 2, "user import DOMAIN FILE.csv" },
	{ "user", "export", ctl_cmd_user_export, no_opts, 1, 2, "user export DOMAIN [FILE|-]" },
	{ "group", "add", ctl_cmd_group_add, group_opts, 1, 1,
	  "group add NAME@DOMAIN [--description S] [--address LOCAL]... [--member ADDR]... "
	  "[--rights R] [--publish-in-gal] [--local-only]" },
	{ "group", "list", ctl_cmd_group_list, no_opts, 0, 1, "group list [DOMAIN]" },
	{ "group", "show", ctl_cmd_group_show, no_opts, 1, 1, "group show NAME@DOMAIN" },
	{ "group", "set", ctl_cmd_group_set, group_opts, 1, 1, "group set NAME@DOMAIN [options of group add]" },
	{ "group", "remove", ctl_cmd_group_remove, no_opts, 1, 1, "group remove NAME@DOMAIN" },
	{ "group", "members", ctl_cmd_group_members, members_opts, 1, 1,
	  "group members NAME@DOMAIN [--add ADDR]... [--remove ADDR]..." },
	{ "resource", "add", ctl_cmd_resource_add, resource_opts, 1, 1,
	  "resource add NAME@DOMAIN --type room|equipment [--manager USER@DOMAIN] "
	  "[--bookable-by anyone|server|domain|group:NAME|user:ADDRESS]... [--unavailable] "
	  "[--description S] [--show-details]" },
	{ "resource", "list", ctl_cmd_resource_list, no_opts, 0, 1, "resource list [DOMAIN]" },
	{ "resource", "show", ctl_cmd_resource_show, no_opts, 1, 1, "resource show NAME@DOMAIN" },
	{ "resource", "set", ctl_cmd_resource_set, resource_opts, 1, 1,
	  "resource set NAME@DOMAIN [options of resource add] [--available] [--no-manager] [--hide-details]" },
	{ "resource", "remove", ctl_cmd_resource_remove, no_opts, 1, 1, "resource remove NAME@DOMAIN" },
	{ "alias", "add", ctl_cmd_alias_add, describe_opts, 2, 2,
	  "alias add ALIAS@DOMAIN TARGET [--description S]" },
	{ "alias", "list", ctl_cmd_alias_list, no_opts, 0, 1, "alias list [DOMAIN]" },
	{ "alias", "remove", ctl_cmd_alias_remove, no_opts, 1, 2, "alias remove ALIAS@DOMAIN [TARGET]" },
	{ "alias", "check", ctl_cmd_alias_check, no_opts, 1, 1, "alias check ADDRESS" },
	{ "gal", "list", ctl_cmd_gal_list, no_opts, 0, 1, "gal list [DOMAIN]" },
	{ "ipgroup", "add", ctl_cmd_ipgroup_add, describe_opts, 2, 2,
	  "ipgroup add NAME ITEM [--description S]" },
	{ "ipgroup", "list", ctl_cmd_ipgroup_list, no_opts, 0, 0, "ipgroup list" },
	{ "ipgroup", "remove", ctl_cmd_ipgroup_remove, no_opts, 1, 2, "ipgroup remove NAME [ITEM]" },
	{ "directory", "set", ctl_cmd_directory_set, directory_opts, 1, 1,
	  "directory set DOMAIN --type ad|od|ldap --server HOST[:PORT] [--backup-server HOST[:PORT]] "
	  "[--ldaps | --starttls] [--ca-file FILE] --bind-dn DN --bind-password-file FILE --base DN "
	  "[--realm REALM] [--auth kerberos|bind] [--directory-domain NAME] | --off" },
	{ "directory", "show", ctl_cmd_directory_show, no_opts, 1, 1, "directory show DOMAIN" },
	{ "directory", "test", ctl_cmd_directory_test, no_opts, 1, 1, "directory test DOMAIN" },
	{ NULL, NULL, NULL, NULL, 0, 0, NULL }
};

void ctl_err(const char *fmt, ...)
{
	va_list ap;
	fputs("ternctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

const char *ctl_arg(const ctl_args *a, const char *name)
{
	const char *v = NULL;
	for (int i = 0; i < a->nopt; i++)
		if (strcmp(a->opt[i].name, name) == 0)
			v = a->opt[i].value;
	return v;
}

int ctl_flag(const ctl_args *a, const char *name)
{
	for (int i = 0; i < a->nopt; i++)
		if (strcmp(a->opt[i].name, name) == 0)
			return 1;
	return 0;
}

static void usage(FILE *f)
{
	fputs("usage: ternctl [--data DIR | --node HOST:PORT --user ADMIN --password-file F "
	      "[--fingerprint SHA256]] [--json] COMMAND ...\ncommands:\n", f);
	for (const ctl_cmd *c = commands; c->group; c++)
		fprintf(f, "  %s\n", c->usage);
}

/* Split argv into positionals and options of spec; "--name=value" and "--name value"
 * both work, "--" ends the options. A "--json" among them sets *json. 0 ok, -1 usage. */
static int parse_args(int argc, char **argv, const ctl_optspec *spec, ctl_args *a, int *json)
{
	memset(a, 0, sizeof *a);
	int only_pos = 0;
	for (int i = 0; i < argc; i++) {
		const char *s = argv[i];
		if (only_pos || s[0] != '-' || s[1] == '\0') {
			if (a->npos >= CTL_MAX_ARGS) {
				ctl_err("too many arguments");
				return -1;
			}
			a->pos[a->npos++] = s;
			continue;
		}
		if (strcmp(s, "--") == 0) {
			only_pos = 1;
			continue;
		}
		if (strcmp(s, "--json") == 0) {
			*json = 1;
			continue;
		}
		if (s[1] != '-') {
			ctl_err("unknown option %s", s);
			return -1;
		}
		const char *name = s + 2, *eq = strchr(name, '=');
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		const ctl_optspec *o = spec;
		while (o->name && (strlen(o->name) != nlen || strncmp(o->name, name, nlen) != 0))
			o++;
		if (!o->name) {
			ctl_err("unknown option %s", s);
			return -1;
		}
		if (a->nopt >= CTL_MAX_ARGS) {
			ctl_err("too many options");
			return -1;
		}
		const char *value = NULL;
		if (o->has_arg) {
			if (eq)
				value = eq + 1;
			else if (i + 1 < argc)
				value = argv[++i];
			else {
				ctl_err("option --%s needs a value", o->name);
				return -1;
			}
		} else if (eq) {
			ctl_err("option --%s takes no value", o->name);
			return -1;
		}
		a->opt[a->nopt].name = o->name;
		a->opt[a->nopt].value = value;
		a->nopt++;
	}
	return 0;
}

/* The global options, before the command. */
typedef struct globals {
	const char *data, *node, *user, *password_file, *fingerprint;
	int json;
} globals;

/* Build the connection target. Returns an exit code (0 ok). */
static int make_target(const globals *g, ctl_target *t)
{
	memset(t, 0, sizeof *t);
	if (!g->node) {
		if (g->user || g->password_file || g->fingerprint) {
			ctl_err("--user, --password-file and --fingerprint need --node HOST:PORT");
			return CTL_EXIT_USAGE;
		}
		const char *dir = g->data ? g->data : DEFAULT_DATA_DIR;
		int n = snprintf(t->sock_path, sizeof t->sock_path, "%s/admin.sock", dir);
		if (n < 0 || (size_t)n >= sizeof t->sock_path) {
			ctl_err("the data directory path is too long: %s/admin.sock must be at most %zu bytes "
				"for a Unix socket", dir, sizeof t->sock_path - 1);
			return CTL_EXIT_ERROR;
		}
		snprintf(t->where, sizeof t->where, "the node at %s", dir);
		return 0;
	}
	if (g->data) {
		ctl_err("--data and --node exclude each other");
		return CTL_EXIT_USAGE;
	}
	if (!g->user || !g->password_file) {
		ctl_err("--node needs --user ADMIN and --password-file FILE");
		return CTL_EXIT_USAGE;
	}
	return ctl_target_remote(t, "--node", g->node, g->user, g->password_file, "--fingerprint",
				 g->fingerprint);
}

int ctl_target_remote(ctl_target *t, const char *opt, const char *hostport, const char *user,
		      const char *password_file, const char *fp_opt, const char *fingerprint)
{
	memset(t, 0, sizeof *t);
	const char *colon = strrchr(hostport, ':');
	const char *host = hostport, *hend = colon;
	if (hostport[0] == '[') {
		const char *rb = strchr(hostport, ']');
		if (!rb || rb[1] != ':') {
			ctl_err("%s wants HOST:PORT, got %s", opt, hostport);
			return CTL_EXIT_USAGE;
		}
		host = hostport + 1;
		hend = rb;
		colon = rb + 1;
	}
	char *pend = NULL;
	long port = colon ? strtol(colon + 1, &pend, 10) : 0;
	if (!colon || hend == host || !pend || *pend || port < 1 || port > 65535) {
		ctl_err("%s wants HOST:PORT, got %s", opt, hostport);
		return CTL_EXIT_USAGE;
	}
	t->remote = 1;
	t->host = strndup(host, (size_t)(hend - host));
	if (!t->host)
		abort();
	snprintf(t->port, sizeof t->port, "%ld", port);
	snprintf(t->where, sizeof t->where, "the node at %s", hostport);
	if (fingerprint) {
		if (ctl_parse_fingerprint(fingerprint, t->pin) < 0) {
			ctl_err("%s wants the SHA-256 of the certificate in hex (64 digits, "
				"colons allowed)", fp_opt);
			return CTL_EXIT_USAGE;
		}
		t->has_pin = 1;
	}
	char *pw = tern_read_first_line(password_file);
	if (!pw) {
		ctl_err("cannot read the password file %s: %s", password_file, strerror(errno));
		return CTL_EXIT_ERROR;
	}
	tbuf cred = TBUF_INIT;
	tbuf_appendf(&cred, "%s:%s", user, pw);
	OPENSSL_cleanse(pw, strlen(pw));
	free(pw);
	size_t cap = 4 * ((cred.len + 2) / 3) + 1;
	unsigned char *b64 = malloc(cap);
	if (!b64)
		abort();
	EVP_EncodeBlock(b64, (const unsigned char *)cred.data, (int)cred.len);
	OPENSSL_cleanse(cred.data, cred.len);
	tbuf_free(&cred);
	tbuf auth = TBUF_INIT;
	tbuf_appendf(&auth, "Basic %s", (const char *)b64);
	OPENSSL_cleanse(b64, cap);
	free(b64);
	t->authorization = tbuf_steal(&auth);
	return 0;
}

/* Global options come before the command; a value is the next word. */
static int parse_globals(int argc, char **argv, globals *g, int *next_r)
{
	struct { const char *name; const char **dst; } valued[] = {
		{ "--data", &g->data }, { "--node", &g->node }, { "--user", &g->user },
		{ "--password-file", &g->password_file }, { "--fingerprint", &g->fingerprint },
	};
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			g->json = 1;
			continue;
		}
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			exit(CTL_EXIT_OK);
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("ternctl %s\n", TERN_VERSION);
			exit(CTL_EXIT_OK);
		}
		size_t k = 0;
		for (; k < sizeof valued / sizeof valued[0]; k++) {
			size_t n = strlen(valued[k].name);
			if (strncmp(argv[i], valued[k].name, n) != 0)
				continue;
			if (argv[i][n] == '=') {
				*valued[k].dst = argv[i] + n + 1;
				break;
			}
			if (argv[i][n] == '\0') {
				if (i + 1 >= argc) {
					ctl_err("option %s needs a value", argv[i]);
					return -1;
				}
				*valued[k].dst = argv[++i];
				break;
			}
		}
		if (k == sizeof valued / sizeof valued[0]) {
			ctl_err("unknown option %s", argv[i]);
			return -1;
		}
	}
	*next_r = i;
	return 0;
}

int main(int argc, char **argv)
{
	globals g = { 0 };
	int i;
	if (parse_globals(argc, argv, &g, &i) < 0)
		return CTL_EXIT_USAGE;
	if (i >= argc) {
		usage(stderr);
		return CTL_EXIT_USAGE;
	}
	for (int k = i; k < argc; k++) {
		json_t *probe = json_string(argv[k]);
		if (!probe) {
			ctl_err("argument %d is not valid UTF-8", k);
			return CTL_EXIT_USAGE;
		}
		json_decref(probe);
	}
	const char *group = argv[i];
	const char *verb = i + 1 < argc ? argv[i + 1] : NULL;
	const ctl_cmd *cmd = NULL;
	int known_group = 0;
	for (const ctl_cmd *c = commands; c->group; c++) {
		if (strcmp(c->group, group) != 0)
			continue;
		known_group = 1;
		if (!c->verb || (verb && strcmp(c->verb, verb) == 0)) {
			cmd = c;
			break;
		}
	}
	if (!cmd) {
		if (known_group)
			ctl_err("unknown or missing subcommand for %s%s%s", group, verb ? ": " : "",
				verb ? verb : "");
		else
			ctl_err("unknown command %s (ternctl --help lists them)", group);
		return CTL_EXIT_USAGE;
	}
	int first = i + (cmd->verb ? 2 : 1);
	ctl_args a;
	int bad = parse_args(argc - first, argv + first, cmd->opts, &a, &g.json) < 0;
	if (!bad && (a.npos < cmd->min_pos || a.npos > cmd->max_pos)) {
		ctl_err("wrong number of arguments");
		bad = 1;
	}
	if (bad) {
		fprintf(stderr, "usage: ternctl %s\n", cmd->usage);
		return CTL_EXIT_USAGE;
	}
	ctl_ctx ctx = { .json = g.json, .data_dir = g.data ? g.data : DEFAULT_DATA_DIR };
	int rc = make_target(&g, &ctx.target);
	if (rc == 0)
		rc = cmd->fn(&ctx, &a);
	ctl_target_free(&ctx.target);
	if (fflush(stdout) != 0 && rc == 0) {
		ctl_err("writing the output failed: %s", strerror(errno));
		rc = CTL_EXIT_ERROR;
	}
	return rc;
}
