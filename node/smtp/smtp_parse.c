/* smtp_parse.c - SMTP command lines (framed by lib/line.c) parsed into typed structs
 * (RFC 5321 4.1, ESMTP parameters of RFC 1870, 6152, 3461 and 4954). Handlers never see
 * raw bytes: they get a verb, a path and checked parameters, or the reply for a syntax
 * error. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "smtp_int.h"

static const char *const verb_names[SMTP_VERB_COUNT] = {
	[SMTP_VERB_UNKNOWN] = "", [SMTP_VERB_HELO] = "HELO", [SMTP_VERB_EHLO] = "EHLO",
	[SMTP_VERB_MAIL] = "MAIL", [SMTP_VERB_RCPT] = "RCPT", [SMTP_VERB_DATA] = "DATA",
	[SMTP_VERB_RSET] = "RSET", [SMTP_VERB_NOOP] = "NOOP", [SMTP_VERB_QUIT] = "QUIT",
	[SMTP_VERB_VRFY] = "VRFY", [SMTP_VERB_EXPN] = "EXPN", [SMTP_VERB_HELP] = "HELP",
	[SMTP_VERB_ETRN] = "ETRN", [SMTP_VERB_AUTH] = "AUTH", [SMTP_VERB_STARTTLS] = "STARTTLS",
	[SMTP_VERB_BDAT] = "BDAT",
};

const char *smtp_verb_name(smtp_verb v)
{
	return (unsigned)v < SMTP_VERB_COUNT ? verb_names[v] : "";
}

/* Verbs are case-insensitive and end at a space or the end of the line. */
smtp_verb smtp_parse_verb(const char *line, const char **arg_r)
{
	size_t n = strcspn(line, " ");

	*arg_r = line[n] == ' ' ? line + n + 1 : line + n;
	for (int v = 1; v < SMTP_VERB_COUNT; v++)
		if (strlen(verb_names[v]) == n && strncasecmp(line, verb_names[v], n) == 0)
			return (smtp_verb)v;
	return SMTP_VERB_UNKNOWN;
}

/* atext of RFC 5322 3.2.3. */
static int is_atext(int c)
{
	return isalnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Domain = sub-domain *("." sub-domain), or an address literal "[...]". Copies the
 * lower-cased domain to out; returns its length, 0 when there is none. */
static size_t parse_domain(const char *s, char *out, size_t outn)
{
	size_t n = 0;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL)
			return 0;
		n = (size_t)(close - s) + 1;
		for (size_t i = 1; i + 1 < n; i++)
			if (!(isalnum((unsigned char)s[i]) || strchr(".:-", s[i]) != NULL))
				return 0;
		if (n < 3)
			return 0;
	} else {
		size_t label = 0;
		for (; s[n] != '\0'; n++) {
			unsigned char c = (unsigned char)s[n];
			if (isalnum(c) || c == '-') {
				if (++label > 63)
					return 0;
			} else if (c == '.' && label > 0) {
				label = 0;
			} else {
				break;
			}
		}
		if (n == 0 || label == 0)
			return 0;
	}
	if (n >= outn)
		return 0;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[n] = '\0';
	return n;
}

/* Local-part = Dot-string / Quoted-string. Writes the unquoted form to out and returns
 * the number of input characters used, 0 on a syntax error. */
static size_t parse_local(const char *s, smtp_path *p)
{
	size_t i = 0, o = 0;

	if (s[0] == '"') {
		p->quoted = 1;
		for (i = 1; s[i] != '"'; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '\\') {
				c = (unsigned char)s[++i];
				if (c < 32 || c > 126)
					return 0;
			} else if (c < 32 || c > 126) {
				return 0;
			}
			if (o >= SMTP_LOCAL_MAX)
				return 0;
			p->local[o++] = (char)c;
		}
		i++;
	} else {
		int prev_dot = 1;
		for (; s[i] != '\0'; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '.') {
				if (prev_dot)
					return 0;
				prev_dot = 1;
			} else if (is_atext(c)) {
				prev_dot = 0;
			} else {
				break;
			}
			if (o >= SMTP_LOCAL_MAX)
				return 0;
			p->local[o++] = (char)c;
		}
		if (o == 0 || prev_dot)
			return 0;
	}
	p->local[o] = '\0';
	if (o == 0)
		return 0;
	if (strpbrk(p->local, "%!@") != NULL)
		p->relay_form = 1;
	return i;
}

/* A-d-l = At-domain *( "," At-domain ) ":" ; only checked, then skipped. */
static size_t parse_route(const char *s)
{
	char dom[SMTP_DOMAIN_MAX + 1];
	size_t i = 0;

	for (;;) {
		if (s[i] != '@')
			return 0;
		size_t n = parse_domain(s + i + 1, dom, sizeof(dom));
		if (n == 0)
			return 0;
		i += 1 + n;
		if (s[i] == ':')
			return i + 1;
		if (s[i] != ',')
			return 0;
		i++;
	}
}

/* Path = "<" [ A-d-l ":" ] Mailbox ">" (RFC 5321 4.1.2); "<>" when allow_null; a bare
 * Mailbox without brackets is taken too, as most servers do. */
int smtp_parse_path(const char *s, int allow_null, smtp_path *p, const char **end_r)
{
	int bracket = s[0] == '<';
	size_t i = bracket ? 1 : 0;

	memset(p, 0, sizeof(*p));
	if (bracket && s[1] == '>') {
		if (!allow_null)
			return -1;
		p->null = 1;
		*end_r = s + 2;
		return 0;
	}
	if (bracket && s[i] == '@') {
		size_t n = parse_route(s + i);
		if (n == 0)
			return -1;
		p->source_route = 1;
		i += n;
	}
	size_t start = i;
	size_t n = parse_local(s + i, p);
	if (n == 0)
		return -1;
	i += n;
	size_t local_len = i - start;
	if (s[i] == '@') {
		n = parse_domain(s + i + 1, p->domain, sizeof(p->domain));
		if (n == 0)
			return -1;
		i += 1 + n;
	} else if (strcasecmp(p->local, "postmaster") == 0 && !p->quoted && !p->source_route) {
		p->postmaster = 1;
	} else {
		return -1;
	}
	if (bracket) {
		if (s[i] != '>')
			return -1;
		*end_r = s + i + 1;
	} else {
		*end_r = s + i;
	}
	int w = snprintf(p->addr, sizeof(p->addr), "%.*s%s%s", (int)local_len, s + start,
			 p->postmaster ? "" : "@", p->domain);
	if (w < 0 || (size_t)w >= sizeof(p->addr))
		return -1;
	return 0;
}

/* xtext = *( xchar / hexchar ), xchar = "!".."~" except "+" and "=", hexchar = "+" HEX HEX. */
int smtp_xtext_valid(const char *s, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; s[i] != '\0'; i++, n++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '+') {
			if (!isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2]) ||
			    islower((unsigned char)s[i + 1]) || islower((unsigned char)s[i + 2]))
				return 0;
			i += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			return 0;
		}
	}
	return n > 0 && strlen(s) <= max;
}

/* NOTIFY="NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" ). */
static int parse_notify(const char *v, uint32_t *bits)
{
	char tmp[64];
	int w = snprintf(tmp, sizeof(tmp), "%s", v);

	if (w < 0 || (size_t)w >= sizeof(tmp))
		return -1;
	*bits = 0;
	for (char *save = NULL, *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint32_t b = strcasecmp(tok, "SUCCESS") == 0 ? DELIVER_NOTIFY_SUCCESS :
			     strcasecmp(tok, "FAILURE") == 0 ? DELIVER_NOTIFY_FAILURE :
			     strcasecmp(tok, "DELAY") == 0 ? DELIVER_NOTIFY_DELAY :
			     strcasecmp(tok, "NEVER") == 0 ? DELIVER_NOTIFY_NEVER : 0;
		if (b == 0 || (*bits & b))
			return -1;
		*bits |= b;
	}
	if (*bits == 0 || ((*bits & DELIVER_NOTIFY_NEVER) && *bits != DELIVER_NOTIFY_NEVER))
		return -1;
	return 0;
}

/* ORCPT=addr-type ";" xtext; only rfc822 addresses are meaningful to us but any atom
 * type is kept as sent (RFC 3461 4.2). */
static int parse_orcpt(const char *v, smtp_params *pr)
{
	const char *semi = strchr(v, ';');

	if (semi == NULL || semi == v || !smtp_xtext_valid(semi + 1, SMTP_ORCPT_MAX))
		return -1;
	for (const char *q = v; q < semi; q++)
		if (!is_atext((unsigned char)*q))
			return -1;
	int w = snprintf(pr->orcpt, sizeof(pr->orcpt), "%s", v);
	return w < 0 || (size_t)w >= sizeof(pr->orcpt) ? -1 : 0;
}

enum { PARAM_OK = 0, PARAM_SYNTAX = -1, PARAM_UNKNOWN = -2 };

/* One "KEYWORD[=value]" of MAIL (is_mail) or RCPT; a repeated keyword is a syntax error. */
static int parse_param(char *kw, char *val, int is_mail, smtp_params *pr, unsigned *seen)
{
	static const char *const mail_kw[] = { "SIZE", "BODY", "RET", "ENVID", "AUTH" };
	static const char *const rcpt_kw[] = { "NOTIFY", "ORCPT" };
	const char *const *kws = is_mail ? mail_kw : rcpt_kw;
	unsigned nkw = is_mail ? 5 : 2, k;

	for (k = 0; k < nkw; k++)
		if (strcasecmp(kw, kws[k]) == 0)
			break;
	if (k == nkw)
		return PARAM_UNKNOWN;
	if (*seen & (1u << k) || val == NULL || *val == '\0')
		return PARAM_SYNTAX;
	*seen |= 1u << k;
	if (!is_mail)
		return k == 0 ? (parse_notify(val, &pr->notify) == 0 ? PARAM_OK : PARAM_SYNTAX)
			      : (parse_orcpt(val, pr) == 0 ? PARAM_OK : PARAM_SYNTAX);
	switch (k) {
	case 0: {
		if (strlen(val) > 20 || strspn(val, "0123456789") != strlen(val))
			return PARAM_SYNTAX;
		errno = 0;
		unsigned long long v = strtoull(val, NULL, 10);
		if (errno != 0)
			return PARAM_SYNTAX;
		pr->has_size = 1;
		pr->size = v;
		return PARAM_OK;
	}
	case 1:
		if (strcasecmp(val, "7BIT") == 0)
			pr->body = SMTP_BODY_7BIT;
		else if (strcasecmp(val, "8BITMIME") == 0)
			pr->body = SMTP_BODY_8BITMIME;
		else
			return PARAM_UNKNOWN;
		return PARAM_OK;
	case 2:
		if (strcasecmp(val, "FULL") == 0)
			pr->ret = 1;
		else if (strcasecmp(val, "HDRS") == 0)
			pr->ret = 2;
		else
			return PARAM_SYNTAX;
		return PARAM_OK;
	case 3:
		if (!smtp_xtext_valid(val, SMTP_XTEXT_MAX))
			return PARAM_SYNTAX;
		snprintf(pr->envid, sizeof(pr->envid), "%s", val);
		return PARAM_OK;
	default:
		if (strcmp(val, "<>") != 0 && !smtp_xtext_valid(val, SMTP_ADDR_MAX))
			return PARAM_SYNTAX;
		pr->has_auth = 1;
		snprintf(pr->auth, sizeof(pr->auth), "%s", val);
		return PARAM_OK;
	}
}

/* Mail-parameters = esmtp-param *(SP esmtp-param), esmtp-keyword = (ALPHA / DIGIT)
 * *(ALPHA / DIGIT / "-"), esmtp-value = 1*(%d33-60 / %d62-126). */
static int parse_params(const char *s, int is_mail, smtp_params *pr, const char **reply_r)
{
	char buf[1024];
	unsigned seen = 0;
	const char *bad = is_mail ? "501 5.5.4 Syntax error in MAIL parameters"
				  : "501 5.5.4 Syntax error in RCPT parameters";

	while (*s == ' ')
		s++;
	int w = snprintf(buf, sizeof(buf), "%s", s);
	if (w < 0 || (size_t)w >= sizeof(buf)) {
		*reply_r = bad;
		return -1;
	}
	for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');
		char *val = NULL;
		if (eq != NULL) {
			*eq = '\0';
			val = eq + 1;
		}
		if (!isalnum((unsigned char)tok[0]) || strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(tok)) {
			*reply_r = bad;
			return -1;
		}
		for (char *q = val; q && *q; q++)
			if ((unsigned char)*q < 33 || (unsigned char)*q > 126 || *q == '=') {
				*reply_r = bad;
				return -1;
			}
		int rc = parse_param(tok, val, is_mail, pr, &seen);
		if (rc == PARAM_UNKNOWN) {
			*reply_r = "555 5.5.4 Unsupported parameter";
			return -1;
		}
		if (rc != PARAM_OK) {
			*reply_r = bad;
			return -1;
		}
	}
	return 0;
}

/* "FROM:" / "TO:" then optional spaces, the path, then parameters after a space. */
static int parse_mail_rcpt(smtp_cmd *cmd, const char **reply_r)
{
	int is_mail = cmd->verb == SMTP_VERB_MAIL;
	const char *kw = is_mail ? "FROM:" : "TO:";
	size_t kwlen = strlen(kw);
	const char *s = cmd->arg, *end = NULL;

	if (strncasecmp(s, kw, kwlen) != 0) {
		*reply_r = is_mail ? "501 5.5.4 Syntax: MAIL FROM:<address>"
				   : "501 5.5.4 Syntax: RCPT TO:<address>";
		return -1;
	}
	s += kwlen;
	while (*s == ' ')
		s++;
	if (smtp_parse_path(s, is_mail, &cmd->path, &end) < 0 ||
	    (*end != '\0' && *end != ' ') || (!is_mail && cmd->path.postmaster == 0 &&
					       cmd->path.domain[0] == '\0')) {
		*reply_r = is_mail ? "501 5.1.7 Bad sender address syntax"
				   : "501 5.1.3 Bad recipient address syntax";
		return -1;
	}
	if (is_mail && cmd->path.postmaster) {
		*reply_r = "501 5.1.7 Bad sender address syntax";
		return -1;
	}
	return parse_params(end, is_mail, &cmd->params, reply_r);
}

int smtp_parse_command(const char *line, size_t len, smtp_cmd *cmd, const char **reply_r)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->arg = "";
	*reply_r = NULL;
	if (memchr(line, '\0', len) != NULL) {
		*reply_r = "500 5.5.2 Line contains a NUL character";
		return -1;
	}
	cmd->verb = smtp_parse_verb(line, &cmd->arg);
	if (cmd->verb == SMTP_VERB_UNKNOWN) {
		*reply_r = "500 5.5.1 Command unrecognized";
		return -1;
	}
	if (cmd->verb == SMTP_VERB_MAIL || cmd->verb == SMTP_VERB_RCPT)
		return parse_mail_rcpt(cmd, reply_r);
	return 0;
}
