/* conf_internal.h - shared between conf.c and conf_services.c; not a public header. */
#ifndef TERN_CONF_INTERNAL_H
#define TERN_CONF_INTERNAL_H
#include <stdint.h>
#include "conf.h"

/* Line-counting reader state: inih asks for one line per call, so the number of calls
 * is the line the handler is looking at. */
typedef struct conf_parse {
	tern_conf *conf;
	const char *name;       /* file name for messages */
	const char *text, *pos;
	int line;
	char *error;            /* first error, malloc'd */
} conf_parse;

#define CONF_SVC_NO_SECTION 1   /* conf_service_set: the section is not a service */

char *conf_strdup(const char *s);
/* Record the first error of a parse, prefixed with "FILE line N: ". */
void conf_error(conf_parse *cp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Add a line to conf->warnings, prefixed with "FILE line N: ". */
void conf_warning(conf_parse *cp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int conf_parse_bool(const char *v, int *out);
/* 0 ok, -1 not a number, -2 out of [min, max]. */
int conf_parse_int(const char *v, int64_t min, int64_t max, int64_t *out);

/* Every service enabled on "*" at its port + port_base. */
void conf_services_defaults(tern_conf *conf);
/* Apply one key of a service section: 0 handled (errors and warnings recorded in cp),
 * CONF_SVC_NO_SECTION when section names no service. */
int conf_service_set(conf_parse *cp, const char *section, const char *key, const char *value);
/* After the parse: resolve listen texts into addresses. NULL ok, or a malloc'd error. */
char *conf_services_finish(tern_conf *conf);
/* Index of the service named name, or -1; and back. */
int conf_service_index(const char *name);
const char *conf_service_name(int svc);
/* The commented-out keys of one service, without its [section] line. */
void conf_service_write_keys(tbuf *out, int svc);

/* Parse a listen list ("*", "ADDR", "ADDR:PORT", "[V6]:PORT", comma-separated) for a
 * service with default port def_port. 0 ok; -1 with a message in err. */
int conf_parse_listen(const char *text, uint16_t def_port, unsigned port_base,
		      tern_service_conf *svc, char *err, size_t err_n);

#endif
