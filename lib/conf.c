/* conf.c - tern.conf: embedded defaults from the TERN_SETTINGS table, read over them
 * with inih; service sections in conf_services.c. */
#include "conf.h"
#include "conf_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <ini.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef enum { CONF_STR, CONF_INT, CONF_BOOL } conf_type;

/* One row per setting, generated from TERN_SETTINGS. */
typedef struct conf_setting {
	const char *section, *key;
	conf_type type;
	const char *sdef;       /* STR default */
	int64_t idef, min, max; /* INT/BOOL default and range */
	const char *help;
	size_t offset;          /* of the field in tern_conf */
} conf_setting;

#define CONF_DEF_STR(def) .sdef = def, .idef = 0
#define CONF_DEF_INT(def) .sdef = NULL, .idef = def
#define CONF_DEF_BOOL(def) .sdef = NULL, .idef = def
#define CONF_ROW(s, k, ty, def, mn, mx, hlp) \
	{ .section = #s, .key = #k, .type = CONF_##ty, CONF_DEF_##ty(def), .min = mn, \
	  .max = mx, .help = hlp, .offset = offsetof(tern_conf, s##_##k) },
static const conf_setting conf_settings[] = { TERN_SETTINGS(CONF_ROW) };
#undef CONF_ROW
#define CONF_NSETTINGS (sizeof(conf_settings) / sizeof(conf_settings[0]))

char *conf_strdup(const char *s)
{
	char *p = strdup(s);
	if (!p) {
		fprintf(stderr, "tern: out of memory\n");
		abort();
	}
	return p;
}

void conf_error(conf_parse *cp, const char *fmt, ...)
{
	if (cp->error)
		return;
	tbuf msg = TBUF_INIT;
	va_list ap;
	tbuf_appendf(&msg, "%s line %d: ", cp->name, cp->line);
	va_start(ap, fmt);
	tbuf_vappendf(&msg, fmt, ap);
	va_end(ap);
	cp->error = tbuf_steal(&msg);
}

void conf_warning(conf_parse *cp, const char *fmt, ...)
{
	tern_conf *conf = cp->conf;
	va_list ap;
	tbuf_appendf(&conf->warnings, "%s line %d: ", cp->name, cp->line);
	va_start(ap, fmt);
	tbuf_vappendf(&conf->warnings, fmt, ap);
	va_end(ap);
	tbuf_append_char(&conf->warnings, '\n');
}

int conf_parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "1", "yes", "true", "on" };
	static const char *const no[] = { "0", "no", "false", "off" };
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

/* A whole decimal number within [min, max]. */
int conf_parse_int(const char *v, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || end == v || *end)
		return -1;
	if (n < min || n > max)
		return -2;
	*out = n;
	return 0;
}

static void conf_set_defaults(tern_conf *conf, unsigned port_base)
{
	memset(conf, 0, sizeof(*conf));
	for (size_t i = 0; i < CONF_NSETTINGS; i++) {
		const conf_setting *s = &conf_settings[i];
		char *field = (char *)conf + s->offset;
		if (s->type == CONF_STR)
			*(char **)field = conf_strdup(s->sdef);
		else if (s->type == CONF_INT)
			*(int64_t *)field = s->idef;
		else
			*(int *)field = (int)s->idef;
	}
	conf->port_base = port_base;
	conf_services_defaults(conf);
}

static int conf_set_value(conf_parse *cp, const conf_setting *s, const char *value)
{
	char *field = (char *)cp->conf + s->offset;
	int64_t n;
	int b, r;

	switch (s->type) {
	case CONF_STR:
		free(*(char **)field);
		*(char **)field = conf_strdup(value);
		return 0;
	case CONF_INT:
		r = conf_parse_int(value, s->min, s->max, &n);
		if (r == -1) {
			conf_error(cp, "[%s] %s: '%s' is not a number", s->section, s->key, value);
			return -1;
		}
		if (r == -2) {
			conf_error(cp, "[%s] %s: %s is out of range %lld..%lld", s->section, s->key,
				   value, (long long)s->min, (long long)s->max);
			return -1;
		}
		*(int64_t *)field = n;
		return 0;
	case CONF_BOOL:
		if (conf_parse_bool(value, &b) < 0) {
			conf_error(cp, "[%s] %s: '%s' is not a boolean (yes/no)", s->section, s->key,
				   value);
			return -1;
		}
		*(int *)field = b;
		return 0;
	}
	return -1;
}

static int conf_section_known(const char *section)
{
	for (size_t i = 0; i < CONF_NSETTINGS; i++)
		if (strcmp(conf_settings[i].section, section) == 0)
			return 1;
	return 0;
}

/* inih callback: returns 1 to go on (also after an error, which is kept in cp). */
static int conf_handler(void *user, const char *section, const char *name, const char *value)
{
	conf_parse *cp = user;
	if (cp->error)
		return 1;
	for (size_t i = 0; i < CONF_NSETTINGS; i++) {
		const conf_setting *s = &conf_settings[i];
		if (strcmp(s->section, section) == 0 && strcmp(s->key, name) == 0) {
			conf_set_value(cp, s, value);
			return 1;
		}
	}
	int r = conf_service_set(cp, section, name, value);
	if (r != CONF_SVC_NO_SECTION)
		return 1;
	if (conf_section_known(section))
		conf_warning(cp, "unknown key '%s' in [%s]", name, section);
	else if (section[0] == '\0')
		conf_warning(cp, "key '%s' outside any section", name);
	else
		conf_warning(cp, "unknown section [%s] (key '%s')", section, name);
	return 1;
}

/* fgets-like reader over a string; a line longer than inih's buffer is an error rather
 * than being split into two bogus lines. */
static char *conf_reader(char *str, int num, void *stream)
{
	conf_parse *cp = stream;
	if (!*cp->pos)
		return NULL;
	const char *nl = strchr(cp->pos, '\n');
	size_t len = nl ? (size_t)(nl - cp->pos) + 1 : strlen(cp->pos);
	cp->line++;
	if (len > (size_t)num - 1) {
		conf_error(cp, "line too long (at most %d characters)", num - 3);
		len = 0;
		str[0] = '\0';
		cp->pos += nl ? (size_t)(nl - cp->pos) + 1 : strlen(cp->pos);
		return str;
	}
	memcpy(str, cp->pos, len);
	str[len] = '\0';
	cp->pos += len;
	return str;
}

static int conf_parse_text(tern_conf *conf, const char *name, const char *text,
			   unsigned port_base, char **error_r)
{
	conf_parse cp = { .conf = conf, .name = name, .text = text, .pos = text };
	conf_set_defaults(conf, port_base);
	int r = ini_parse_stream(conf_reader, &cp, conf_handler, &cp);
	if (!cp.error && r > 0) {
		cp.line = r;
		conf_error(&cp, "syntax error (expected [section] or key = value)");
	} else if (!cp.error && r < 0) {
		cp.line = 0;
		conf_error(&cp, "cannot parse (out of memory)");
	}
	if (!cp.error)
		cp.error = conf_services_finish(conf);
	if (cp.error) {
		tern_conf_free(conf);
		*error_r = cp.error;
		return -1;
	}
	return 0;
}

int tern_conf_load_string(tern_conf *conf, const char *text, unsigned port_base, char **error_r)
{
	return conf_parse_text(conf, "tern.conf", text, port_base, error_r);
}

int tern_conf_load(tern_conf *conf, const char *path, unsigned port_base, char **error_r)
{
	if (!path)
		return conf_parse_text(conf, "tern.conf", "", port_base, error_r);
	FILE *f = fopen(path, "re");
	if (!f) {
		tbuf msg = TBUF_INIT;
		tbuf_appendf(&msg, "cannot read %s: %s", path, strerror(errno));
		memset(conf, 0, sizeof(*conf));
		*error_r = tbuf_steal(&msg);
		return -1;
	}
	tbuf text = TBUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		tbuf_append(&text, chunk, n);
	int err = ferror(f);
	fclose(f);
	if (err || memchr(tbuf_cstr(&text), '\0', text.len)) {
		tbuf msg = TBUF_INIT;
		tbuf_appendf(&msg, "cannot read %s: %s", path, err ? "read error" : "binary file");
		tbuf_free(&text);
		memset(conf, 0, sizeof(*conf));
		*error_r = tbuf_steal(&msg);
		return -1;
	}
	const char *base = strrchr(path, '/');
	int r = conf_parse_text(conf, base ? base + 1 : path, tbuf_cstr(&text), port_base, error_r);
	tbuf_free(&text);
	return r;
}

void tern_conf_free(tern_conf *conf)
{
	for (size_t i = 0; i < CONF_NSETTINGS; i++) {
		const conf_setting *s = &conf_settings[i];
		if (s->type == CONF_STR) {
			char **field = (char **)((char *)conf + s->offset);
			free(*field);
			*field = NULL;
		}
	}
	tbuf_free(&conf->warnings);
}

static char conf_host_buf[256];
static pthread_once_t conf_host_once = PTHREAD_ONCE_INIT;

/* The FQDN from the resolver (canonical name of gethostname), else the plain name. */
static void conf_host_lookup(void)
{
	char name[256];
	if (gethostname(name, sizeof(name)) < 0 || !name[0]) {
		snprintf(conf_host_buf, sizeof(conf_host_buf), "localhost");
		return;
	}
	name[sizeof(name) - 1] = '\0';
	struct addrinfo hints = { .ai_flags = AI_CANONNAME, .ai_family = AF_UNSPEC };
	struct addrinfo *res = NULL;
	if (getaddrinfo(name, NULL, &hints, &res) == 0 && res && res->ai_canonname &&
	    res->ai_canonname[0])
		snprintf(conf_host_buf, sizeof(conf_host_buf), "%s", res->ai_canonname);
	else
		snprintf(conf_host_buf, sizeof(conf_host_buf), "%s", name);
	if (res)
		freeaddrinfo(res);
}

const char *tern_conf_hostname(const tern_conf *conf)
{
	if (conf && conf->server_hostname && conf->server_hostname[0])
		return conf->server_hostname;
	pthread_once(&conf_host_once, conf_host_lookup);
	return conf_host_buf;
}

/* Settings sections first; a service sharing a section's name ([http], [admin]) gets its
 * keys in that section, the others get a section of their own. */
void tern_conf_write_defaults(tbuf *out)
{
	const char *section = NULL;
	int done[TERN_SVC_COUNT] = { 0 };
	tbuf_append_str(out, "# tern.conf - every setting shows its default; uncomment to change.\n");
	for (size_t i = 0; i < CONF_NSETTINGS; i++) {
		const conf_setting *s = &conf_settings[i];
		if (!section || strcmp(section, s->section) != 0) {
			section = s->section;
			tbuf_appendf(out, "\n[%s]\n", section);
			int svc = conf_service_index(section);
			if (svc >= 0) {
				conf_service_write_keys(out, svc);
				done[svc] = 1;
			}
		}
		tbuf_appendf(out, "# %s", s->help);
		if (s->type == CONF_INT)
			tbuf_appendf(out, " (%lld..%lld)", (long long)s->min, (long long)s->max);
		else if (s->type == CONF_BOOL)
			tbuf_append_str(out, " (yes/no)");
		tbuf_append_char(out, '\n');
		if (s->type == CONF_STR)
			tbuf_appendf(out, "#%s = %s\n", s->key, s->sdef);
		else if (s->type == CONF_INT)
			tbuf_appendf(out, "#%s = %lld\n", s->key, (long long)s->idef);
		else
			tbuf_appendf(out, "#%s = %s\n", s->key, s->idef ? "yes" : "no");
	}
	for (int svc = 0; svc < TERN_SVC_COUNT; svc++) {
		if (done[svc])
			continue;
		tbuf_appendf(out, "\n[%s]\n", conf_service_name(svc));
		conf_service_write_keys(out, svc);
	}
}
