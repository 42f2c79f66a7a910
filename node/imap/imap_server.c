/* imap_server.c - the IMAP server object (its environment, the handlers of imap and
 * imaps, the registry of shared folder views, the figures) and the small helpers the
 * command files share: argument access and string quoting. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "imap_int.h"

imap_server *imap_server_new(const imap_env *env)
{
	if (env == NULL || env->st == NULL || env->conf == NULL)
		return NULL;
	imap_server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->env = *env;
	snprintf(s->hostname, sizeof(s->hostname), "%s",
		 env->hostname && env->hostname[0] ? env->hostname : tern_conf_hostname(env->conf));
	s->env.hostname = s->hostname;
	if (imap_registry_init(&s->reg) != 0) {
		free(s);
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	for (int i = 0; i < 2; i++)
		imap_session_handlers(s, &s->handlers[i]);
	return s;
}

const tern_service_handler *imap_server_handler(imap_server *s, tern_service_id svc)
{
	switch (svc) {
	case TERN_SVC_imap:
		return &s->handlers[0];
	case TERN_SVC_imaps:
		return &s->handlers[1];
	default:
		return NULL;
	}
}

void imap_server_free(imap_server **sp)
{
	imap_server *s = *sp;

	if (s == NULL)
		return;
	imap_registry_free(&s->reg);
	pthread_mutex_destroy(&s->lock);
	free(s);
	*sp = NULL;
}

void imap_server_count(imap_server *srv, uint64_t *field)
{
	pthread_mutex_lock(&srv->lock);
	(*field)++;
	pthread_mutex_unlock(&srv->lock);
}

void imap_server_stats(imap_server *s, imap_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->stats;
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_lock(&s->reg.lock);
	out->open_folders = s->reg.nopen;
	pthread_mutex_unlock(&s->reg.lock);
}

/* ---- helpers ---- */

int imap_arg_astring(const imap_arg *a, const char **s_r, size_t *n_r)
{
	if (a == NULL || (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_STRING))
		return -1;
	*s_r = a->str;
	*n_r = a->len;
	return 0;
}

int imap_arg_is_atom(const imap_arg *a, const char *word)
{
	return a != NULL && a->type == IMAP_ARG_ATOM && strcasecmp(a->str, word) == 0;
}

int imap_is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

/* Mailbox names: no NUL, CR, LF, no empty level, no leading or trailing '/', within
 * IMAP_NAME_MAX; "inbox" in any case is INBOX (RFC 3501 §5.1). */
int imap_arg_mailbox(const imap_arg *a, char *name, const char **error_r)
{
	const char *s;
	size_t n;

	if (imap_arg_astring(a, &s, &n) < 0) {
		*error_r = "Missing mailbox name";
		return -1;
	}
	if (n == 0 || n > IMAP_NAME_MAX || memchr(s, '\0', n) || memchr(s, '\r', n) || memchr(s, '\n', n) ||
	    s[0] == '/' || s[n - 1] == '/' || strstr(s, "//") != NULL) {
		*error_r = "Invalid mailbox name";
		return -1;
	}
	if (!imap_mutf7_valid(s, n)) {
		*error_r = "Invalid mailbox name: not modified UTF-7 (RFC 3501 section 5.1.3)";
		return -1;
	}
	memcpy(name, s, n);
	name[n] = '\0';
	if (imap_is_inbox(name))
		memcpy(name, "INBOX", 6);
	else if (n > 6 && strncasecmp(name, "INBOX/", 6) == 0)
		memcpy(name, "INBOX", 5);
	return 0;
}

/* A quoted string when it is short and plain, else a literal. */
void imap_append_string(tbuf *out, const char *s, size_t n)
{
	int quote = n < 1024;

	for (size_t i = 0; quote && i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' || c == '\n' || c == '\0' || c >= 0x80)
			quote = 0;
	}
	if (!quote) {
		tbuf_appendf(out, "{%zu}\r\n", n);
		tbuf_append(out, s, n);
		return;
	}
	tbuf_append_char(out, '"');
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			tbuf_append_char(out, '\\');
		tbuf_append_char(out, s[i]);
	}
	tbuf_append_char(out, '"');
}
