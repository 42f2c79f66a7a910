/* pop3_parse.c - POP3 parsing (RFC 1939 3, RFC 2449 4): command lines (framed by
 * lib/line.c) into typed structs, and the dot-stuffing of multi-line responses. Handlers
 * never see raw bytes: they get a verb with checked message numbers, or the reply. */
#include <string.h>
#include <strings.h>
#include "pop3_int.h"

enum { ARGS_NONE, ARGS_NUM, ARGS_TEXT };

/* The form of each verb's arguments: numbers (min..max of them) or free text. */
static const struct {
	const char *name;
	int kind;
	unsigned min, max;
	const char *syntax;
} verbs[POP3_VERB_COUNT] = {
	[POP3_VERB_UNKNOWN] = { "", ARGS_NONE, 0, 0, "" },
	[POP3_VERB_USER] = { "USER", ARGS_TEXT, 1, 1, "-ERR Syntax: USER name" },
	[POP3_VERB_PASS] = { "PASS", ARGS_TEXT, 1, 1, "-ERR Syntax: PASS password" },
	[POP3_VERB_APOP] = { "APOP", ARGS_TEXT, 0, 1, "-ERR Syntax: APOP name digest" },
	[POP3_VERB_AUTH] = { "AUTH", ARGS_TEXT, 0, 1, "-ERR Syntax: AUTH mechanism [initial-response]" },
	[POP3_VERB_STLS] = { "STLS", ARGS_NONE, 0, 0, "-ERR Syntax: STLS" },
	[POP3_VERB_CAPA] = { "CAPA", ARGS_NONE, 0, 0, "-ERR Syntax: CAPA" },
	[POP3_VERB_QUIT] = { "QUIT", ARGS_NONE, 0, 0, "-ERR Syntax: QUIT" },
	[POP3_VERB_STAT] = { "STAT", ARGS_NONE, 0, 0, "-ERR Syntax: STAT" },
	[POP3_VERB_LIST] = { "LIST", ARGS_NUM, 0, 1, "-ERR Syntax: LIST [msg]" },
	[POP3_VERB_RETR] = { "RETR", ARGS_NUM, 1, 1, "-ERR Syntax: RETR msg" },
	[POP3_VERB_DELE] = { "DELE", ARGS_NUM, 1, 1, "-ERR Syntax: DELE msg" },
	[POP3_VERB_NOOP] = { "NOOP", ARGS_NONE, 0, 0, "-ERR Syntax: NOOP" },
	[POP3_VERB_RSET] = { "RSET", ARGS_NONE, 0, 0, "-ERR Syntax: RSET" },
	[POP3_VERB_TOP] = { "TOP", ARGS_NUM, 2, 2, "-ERR Syntax: TOP msg lines" },
	[POP3_VERB_UIDL] = { "UIDL", ARGS_NUM, 0, 1, "-ERR Syntax: UIDL [msg]" },
};

/* For logs: the verb's keyword, "" when unknown. */
const char *pop3_verb_name(pop3_verb v)
{
	return (unsigned)v < POP3_VERB_COUNT ? verbs[v].name : "";
}

/* A decimal number of at most 10 digits that fits 32 bits; 0 ok. */
static int parse_u32(const char *s, size_t n, uint32_t *v_r)
{
	uint64_t v = 0;

	if (n == 0 || n > 10)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return -1;
	*v_r = (uint32_t)v;
	return 0;
}

/* Space-separated numeric arguments. Message numbers start at 1; TOP's line count
 * may be 0. */
static int parse_numbers(pop3_verb v, const char *arg, pop3_cmd *cmd, const char **reply_r)
{
	const char *p = arg;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		size_t n = strcspn(p, " ");
		if (cmd->nargs >= verbs[v].max || n > POP3_ARG_MAX) {
			*reply_r = verbs[v].syntax;
			return -1;
		}
		if (parse_u32(p, n, &cmd->num[cmd->nargs]) < 0 ||
		    (cmd->nargs == 0 && cmd->num[0] == 0)) {
			*reply_r = cmd->nargs == 0 ? "-ERR Invalid message number" : "-ERR Invalid line count";
			return -1;
		}
		cmd->nargs++;
		p += n;
	}
	if (cmd->nargs < verbs[v].min) {
		*reply_r = verbs[v].syntax;
		return -1;
	}
	return 0;
}

/* Verbs are case-insensitive keywords of 3 or 4 letters followed by a space or the
 * end of the line. */
int pop3_parse_command(const char *line, size_t len, pop3_cmd *cmd, const char **reply_r)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->text = "";
	if (memchr(line, '\0', len) != NULL) {
		*reply_r = "-ERR Invalid command";
		return -1;
	}
	size_t n = strcspn(line, " ");
	pop3_verb v = POP3_VERB_UNKNOWN;
	for (int i = 1; i < POP3_VERB_COUNT; i++)
		if (strlen(verbs[i].name) == n && strncasecmp(line, verbs[i].name, n) == 0)
			v = (pop3_verb)i;
	if (v == POP3_VERB_UNKNOWN) {
		*reply_r = "-ERR Unknown command";
		return -1;
	}
	if (v != POP3_VERB_AUTH && len > POP3_CMD_LINE_MAX) {
		*reply_r = "-ERR Line too long";
		return -1;
	}
	cmd->verb = v;
	const char *arg = line[n] == ' ' ? line + n + 1 : line + n;
	switch (verbs[v].kind) {
	case ARGS_NONE:
		while (*arg == ' ')
			arg++;
		if (*arg != '\0') {
			*reply_r = verbs[v].syntax;
			return -1;
		}
		return 0;
	case ARGS_TEXT:
		if (verbs[v].min > 0 && (line[n] != ' ' || *arg == '\0')) {
			*reply_r = verbs[v].syntax;
			return -1;
		}
		cmd->text = arg;
		cmd->nargs = *arg != '\0';
		return 0;
	default:
		return parse_numbers(v, arg, cmd, reply_r);
	}
}

/* A new message starts at the beginning of a line, in its header section. */
void pop3_stuff_init(pop3_stuffer *f, int top, uint64_t lines)
{
	memset(f, 0, sizeof(*f));
	f->line_empty = 1;
	f->in_header = 1;
	f->top = top;
	f->lines_left = lines;
}

/* A line ended: the blank line ends the header section; TOP counts body lines. */
static void stuff_eol(pop3_stuffer *f)
{
	if (f->in_header) {
		if (f->line_empty) {
			f->in_header = 0;
			if (f->top && f->lines_left == 0)
				f->done = 1;
		}
	} else if (f->top) {
		if (f->lines_left > 0)
			f->lines_left--;
		if (f->lines_left == 0)
			f->done = 1;
	}
	f->col = 0;
	f->line_empty = 1;
}

/* Whole spans up to each LF are copied at once; only a '.' at the start of a line adds
 * a byte. A line is blank when it holds nothing but one CR before its LF. */
size_t pop3_stuff(pop3_stuffer *f, const char *p, size_t n, tbuf *out)
{
	size_t i = 0;

	while (i < n && !f->done) {
		if (f->col == 0 && p[i] == '.')
			tbuf_append_char(out, '.');
		const char *lf = memchr(p + i, '\n', n - i);
		size_t span = lf ? (size_t)(lf - (p + i)) : n - i;
		for (size_t k = 0; k < span && f->line_empty; k++)
			if (f->col + k > 0 || p[i + k] != '\r')
				f->line_empty = 0;
		tbuf_append(out, p + i, span + (lf != NULL));
		f->col += span;
		i += span;
		if (lf == NULL)
			break;
		i++;
		stuff_eol(f);
	}
	return i;
}

/* RFC 1939 3: a multi-line response ends with CRLF "." CRLF. */
void pop3_stuff_end(pop3_stuffer *f, tbuf *out)
{
	if (f->col > 0)
		tbuf_append(out, "\r\n", 2);
	tbuf_append(out, ".\r\n", 3);
	f->col = 0;
}
