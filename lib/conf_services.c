/* conf_services.c - the [smtp], [imap], ... sections: enabled, listen,
 * max_connections, allow_ipgroup. */
#include "conf_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	uint16_t port;
	tern_tls_mode tls;
} conf_services[TERN_SVC_COUNT] = {
#define CONF_SVC_ROW(n, p, t) { #n, p, t },
	TERN_SERVICES(CONF_SVC_ROW)
#undef CONF_SVC_ROW
};

int conf_service_index(const char *name)
{
	for (int i = 0; i < TERN_SVC_COUNT; i++)
		if (strcmp(conf_services[i].name, name) == 0)
			return i;
	return -1;
}

const char *conf_service_name(int svc)
{
	return svc >= 0 && svc < TERN_SVC_COUNT ? conf_services[svc].name : "?";
}

void conf_services_defaults(tern_conf *conf)
{
	char err[128];
	for (int i = 0; i < TERN_SVC_COUNT; i++) {
		tern_service_conf *s = &conf->services[i];
		memset(s, 0, sizeof(*s));
		s->name = conf_services[i].name;
		s->default_port = conf_services[i].port;
		s->tls = conf_services[i].tls;
		s->enabled = 1;
		/* A base that pushes a port past 65535 leaves the service without addresses;
		 * conf_services_finish() reports it. */
		conf_parse_listen("*", s->default_port, conf->port_base, s, err, sizeof(err));
	}
}

/* Parse one port text and add the base; 0 ok. */
static int listen_port(const char *p, unsigned base, uint16_t *out, char *err, size_t err_n)
{
	int64_t v;
	if (conf_parse_int(p, 1, 65535, &v) < 0) {
		snprintf(err, err_n, "bad port '%s'", p);
		return -1;
	}
	if ((uint64_t)v + base > 65535) {
		snprintf(err, err_n, "port %lld + port base %u is above 65535", (long long)v, base);
		return -1;
	}
	*out = (uint16_t)(v + base);
	return 0;
}

/* One element: "*", "*:PORT", "ADDR", "ADDR:PORT", "V6ADDR", "[V6ADDR]", "[V6ADDR]:PORT". */
static int listen_one(char *item, uint16_t def_port, unsigned base, tern_listen_addr *out,
		      char *err, size_t err_n)
{
	char *host = item, *port = NULL;
	unsigned char tmp[16];

	if (item[0] == '[') {
		char *close = strchr(item, ']');
		if (!close || (close[1] && close[1] != ':') || (close[1] == ':' && !close[2])) {
			snprintf(err, err_n, "bad address '%s'", item);
			return -1;
		}
		*close = '\0';
		host = item + 1;
		port = close[1] ? close + 2 : NULL;
		if (inet_pton(AF_INET6, host, tmp) != 1) {
			snprintf(err, err_n, "bad IPv6 address '%s'", host);
			return -1;
		}
	} else {
		char *colon = strchr(item, ':');
		if (colon && strchr(colon + 1, ':')) {
			/* bare IPv6 address without a port */
			if (inet_pton(AF_INET6, item, tmp) != 1) {
				snprintf(err, err_n, "bad IPv6 address '%s' (use [ADDR]:PORT)", item);
				return -1;
			}
		} else if (colon) {
			*colon = '\0';
			port = colon + 1;
		}
		if (strcmp(host, "*") == 0)
			host = "";
		else if (!strchr(host, ':') && inet_pton(AF_INET, host, tmp) != 1) {
			snprintf(err, err_n, "bad address '%s' (a numeric IP address is needed)", host);
			return -1;
		}
	}
	if (strlen(host) >= sizeof(out->host)) {
		snprintf(err, err_n, "address too long");
		return -1;
	}
	snprintf(out->host, sizeof(out->host), "%s", host);
	if (port)
		return listen_port(port, base, &out->port, err, err_n);
	if ((unsigned)def_port + base > 65535) {
		snprintf(err, err_n, "port %u + port base %u is above 65535", def_port, base);
		return -1;
	}
	out->port = (uint16_t)(def_port + base);
	return 0;
}

int conf_parse_listen(const char *text, uint16_t def_port, unsigned port_base,
		      tern_service_conf *svc, char *err, size_t err_n)
{
	tern_listen_addr addrs[TERN_LISTEN_MAX];
	unsigned n = 0;
	char *copy = conf_strdup(text), *save = NULL;
	int r = 0;

	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ' || *tok == '\t')
			tok++;
		size_t len = strlen(tok);
		while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
			tok[--len] = '\0';
		if (!len)
			continue;
		if (n == TERN_LISTEN_MAX) {
			snprintf(err, err_n, "more than %d listen addresses", TERN_LISTEN_MAX);
			r = -1;
			break;
		}
		if (listen_one(tok, def_port, port_base, &addrs[n], err, err_n) < 0) {
			r = -1;
			break;
		}
		n++;
	}
	free(copy);
	if (r == 0 && n == 0) {
		snprintf(err, err_n, "empty listen list (disable the service with enabled = no)");
		r = -1;
	}
	if (r < 0) {
		svc->nlisten = 0;
		return -1;
	}
	memcpy(svc->listen, addrs, n * sizeof(addrs[0]));
	svc->nlisten = n;
	return 0;
}

int conf_service_set(conf_parse *cp, const char *section, const char *key, const char *value)
{
	int i = conf_service_index(section);
	if (i < 0)
		return CONF_SVC_NO_SECTION;
	tern_conf *conf = cp->conf;
	tern_service_conf *s = &conf->services[i];
	char err[160];
	int64_t n;

	if (strcmp(key, "enabled") == 0) {
		if (conf_parse_bool(value, &s->enabled) < 0)
			conf_error(cp, "[%s] enabled: '%s' is not a boolean (yes/no)", section, value);
	} else if (strcmp(key, "listen") == 0) {
		if (conf_parse_listen(value, s->default_port, conf->port_base, s, err, sizeof(err)) < 0)
			conf_error(cp, "[%s] listen: %s", section, err);
	} else if (strcmp(key, "max_connections") == 0) {
		int r = conf_parse_int(value, 0, 1000000, &n);
		if (r < 0)
			conf_error(cp, "[%s] max_connections: '%s' %s", section, value,
				   r == -1 ? "is not a number" : "is out of range 0..1000000");
		else
			s->max_connections = (unsigned)n;
	} else if (strcmp(key, "allow_ipgroup") == 0) {
		if (strlen(value) >= sizeof(s->allow_ipgroup))
			conf_error(cp, "[%s] allow_ipgroup: name longer than %zu characters", section,
				   sizeof(s->allow_ipgroup) - 1);
		else
			snprintf(s->allow_ipgroup, sizeof(s->allow_ipgroup), "%s", value);
	} else {
		conf_warning(cp, "unknown key '%s' in [%s]", key, section);
	}
	return 0;
}

/* An enabled service must have somewhere to listen: the default "*" fails only when
 * the port base pushes its port past 65535. */
char *conf_services_finish(tern_conf *conf)
{
	for (int i = 0; i < TERN_SVC_COUNT; i++) {
		tern_service_conf *s = &conf->services[i];
		if (s->enabled && s->nlisten == 0) {
			tbuf msg = TBUF_INIT;
			tbuf_appendf(&msg, "[%s]: port %u + port base %u is above 65535", s->name,
				     s->default_port, conf->port_base);
			return tbuf_steal(&msg);
		}
	}
	return NULL;
}

void conf_service_write_keys(tbuf *out, int svc)
{
	tbuf_appendf(out, "# service %s (port %u, before --port-base): enabled, listen "
		     "(\"*\", ADDR, ADDR:PORT, [V6ADDR]:PORT, comma-separated), "
		     "max_connections (0 = unlimited), allow_ipgroup (empty = anyone)\n",
		     conf_services[svc].name, conf_services[svc].port);
	tbuf_append_str(out, "#enabled = yes\n#listen = *\n#max_connections = 0\n#allow_ipgroup =\n");
}
