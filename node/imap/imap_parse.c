/* imap_parse.c - the IMAP command parser (RFC 3501 §2.2, §9; RFC 7888 LITERAL+; RFC 3516
 * literal8): a byte-at-a-time state machine that turns "tag NAME args CRLF" - literals
 * included - into an imap_cmd whose arguments are an imap_arg tree. It stops wherever the
 * input stops and resumes with the next bytes. Every size is bounded before anything is
 * allocated: the line, each literal, the literals of one command together, the nesting
 * depth and the number of arguments. A malformed command is skipped to its end of line
 * and reported once, so that the session stays in step with the client. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "imap_int.h"

enum {
	S_START,        /* before the tag (empty lines are skipped) */
	S_TAG,
	S_NAME,
	S_ARG,          /* between arguments */
	S_ATOM,
	S_QUOTED,
	S_QUOTED_ESC,
	S_LIT8,         /* after '~': '{' must follow */
	S_LITSPEC,      /* inside {...} */
	S_LITSPEC_END,  /* after '}': CR LF */
	S_LITSPEC_LF,
	S_LITERAL,      /* literal bytes */
	S_EOL_LF,       /* a CR ended the line: LF must follow */
	S_SKIP,         /* a bad command: skip to the end of its line */
	S_DONE,         /* a command or an error was returned */
};

/* ---- the per-command arena: every string and list of the tree lives here ---- */

struct imap_chunk {
	struct imap_chunk *next;
	size_t used, cap;
	max_align_t data[];
};

static void *arena_alloc(imap_parser *p, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct imap_chunk *c = p->chunks;
	if (c == NULL || c->cap - c->used < n) {
		size_t cap = n > 4000 ? n : 4000;
		c = malloc(sizeof(*c) + cap);
		if (c == NULL)
			abort();
		c->used = 0;
		c->cap = cap;
		c->next = p->chunks;
		p->chunks = c;
	}
	void *r = (char *)c->data + c->used;
	c->used += n;
	return r;
}

static void arena_free(imap_parser *p)
{
	while (p->chunks) {
		struct imap_chunk *c = p->chunks;
		p->chunks = c->next;
		free(c);
	}
}

static char *arena_strdup(imap_parser *p, const char *s, size_t n)
{
	char *r = arena_alloc(p, n + 1);
	memcpy(r, s, n);
	r[n] = '\0';
	return r;
}

/* ---- set-up ---- */

void imap_parser_init(imap_parser *p, const imap_limits *lim)
{
	memset(p, 0, sizeof(*p));
	p->lim = *lim;
	if (p->lim.depth_max > IMAP_DEPTH_HARD_MAX)
		p->lim.depth_max = IMAP_DEPTH_HARD_MAX;
	tbuf_init(&p->tok);
	tbuf_init(&p->tag);
	p->state = S_START;
}

void imap_parser_set_limits(imap_parser *p, const imap_limits *lim)
{
	p->lim = *lim;
	if (p->lim.depth_max > IMAP_DEPTH_HARD_MAX)
		p->lim.depth_max = IMAP_DEPTH_HARD_MAX;
}

/* Forget the current command and release its memory (the session calls this when a
 * command is finished; feeding after DONE does it too). */
void imap_parser_reset(imap_parser *p)
{
	arena_free(p);
	for (unsigned i = 0; i <= IMAP_DEPTH_HARD_MAX; i++) {
		free(p->lv[i].v);
		p->lv[i].v = NULL;
		p->lv[i].n = p->lv[i].cap = 0;
	}
	tbuf_free(&p->tok);
	tbuf_free(&p->tag);
	p->name[0] = '\0';
	p->depth = 0;
	p->nargs = 0;
	p->line_len = 0;
	p->lit_total = 0;
	p->lit_left = 0;
	p->lit_buf = NULL;
	p->bracket = 0;
	p->need_sep = 0;
	p->error = NULL;
	p->toobig = 0;
	p->is_append = 0;
	memset(&p->cmd, 0, sizeof(p->cmd));
	p->state = S_START;
}

void imap_parser_free(imap_parser *p)
{
	imap_parser_reset(p);
}

/* ---- building the tree ---- */

static int bad(imap_parser *p, const char *why)
{
	if (p->error == NULL)
		p->error = why;
	p->state = S_SKIP;
	return 0;
}

/* Append one argument to the list at the current depth; 0 ok, -1 over a limit. */
static int push_arg(imap_parser *p, const imap_arg *a)
{
	if (++p->nargs > p->lim.args_max) {
		bad(p, "Too many arguments");
		return -1;
	}
	struct imap_level *l = &p->lv[p->depth];
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		imap_arg *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL)
			abort();
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *a;
	p->need_sep = 1;
	return 0;
}

/* Move the elements of the current level into the arena; returns them. */
static const imap_arg *seal_level(imap_parser *p, size_t *n_r)
{
	struct imap_level *l = &p->lv[p->depth];
	imap_arg *v = NULL;

	if (l->n > 0) {
		v = arena_alloc(p, l->n * sizeof(*v));
		memcpy(v, l->v, l->n * sizeof(*v));
	}
	*n_r = l->n;
	l->n = 0;
	return v;
}

static void open_list(imap_parser *p)
{
	if (p->need_sep) {
		bad(p, "Missing space before '('");
		return;
	}
	if (p->depth >= p->lim.depth_max) {
		bad(p, "Too deeply nested");
		return;
	}
	p->depth++;
	p->lv[p->depth].n = 0;
	p->need_sep = 0;
}

static void close_list(imap_parser *p)
{
	if (p->depth == 0) {
		bad(p, "Unexpected ')'");
		return;
	}
	imap_arg a = { .type = IMAP_ARG_LIST };
	a.list = seal_level(p, &a.nlist);
	p->depth--;
	push_arg(p, &a);
}

/* An atom ends: NIL becomes NIL, anything else an ATOM. */
static void end_atom(imap_parser *p)
{
	imap_arg a = { .type = IMAP_ARG_ATOM };

	if (p->tok.len == 3 && strncasecmp(p->tok.data, "NIL", 3) == 0) {
		a.type = IMAP_ARG_NIL;
	} else {
		a.str = arena_strdup(p, p->tok.data, p->tok.len);
		a.len = p->tok.len;
	}
	tbuf_reset(&p->tok);
	p->bracket = 0;
	push_arg(p, &a);
}

static void end_string(imap_parser *p, const char *s, size_t n, int lit8)
{
	imap_arg a = { .type = IMAP_ARG_STRING, .len = n, .literal8 = lit8 };
	a.str = s;
	push_arg(p, &a);
}

/* The whole line is in: hand out the command. */
static int finish(imap_parser *p)
{
	if (p->depth != 0)
		return bad(p, "Unbalanced parentheses"), 0;
	p->cmd.tag = arena_strdup(p, tbuf_cstr(&p->tag), p->tag.len);
	p->cmd.name = p->name;
	p->cmd.args = seal_level(p, &p->cmd.nargs);
	p->state = S_DONE;
	return 1;
}

/* Atom characters of RFC 3501 plus the list wildcards and ']' (resp-specials are fine
 * in an astring); '[' opens a FETCH/BODY section whose text runs to ']'. */
static int atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != '{' && c != '"';
}

static int tag_char(unsigned char c)
{
	return atom_char(c) && c != '+' && c != '%' && c != '*' && c != ']' && c != '\\';
}

/* The literal size in the {...} spec ends: check it against every bound before anything
 * is allocated. Returns IMAP_PARSE_MORE to go on, or an error result. */
static void literal_spec_end(imap_parser *p)
{
	uint64_t budget = p->is_append ? p->lim.append_max : p->lim.literal_max;
	const char *s = tbuf_cstr(&p->tok);
	size_t n = p->tok.len;
	uint64_t v = 0;

	p->lit_sync = 1;
	if (n > 0 && s[n - 1] == '+') {
		p->lit_sync = 0;
		n--;
	}
	if (n == 0 || n > 20) {
		bad(p, "Invalid literal size");
		tbuf_reset(&p->tok);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (d > 9) {
			bad(p, "Invalid literal size");
			tbuf_reset(&p->tok);
			return;
		}
		if (v > (UINT64_MAX - d) / 10) {
			v = UINT64_MAX;
			break;
		}
		v = v * 10 + d;
	}
	tbuf_reset(&p->tok);
	if (v > budget || p->lit_total + v > budget) {
		p->toobig = 1;
		p->fatal = !p->lit_sync;      /* the client sends the bytes anyway */
		bad(p, p->is_append ? "[TOOBIG] Message too large" : "Literal too large");
		p->state = S_LITSPEC_END;     /* still read its CRLF, then report */
		return;
	}
	p->lit_left = v;
	p->lit_total += v;
	p->lit_buf = arena_alloc(p, (size_t)v + 1);
	p->lit_len = 0;
	p->state = S_LITSPEC_END;
}

/* A byte of a line (not a literal's): bound the line. */
static int count_line_byte(imap_parser *p)
{
	if (++p->line_len > p->lim.line_max && p->state != S_SKIP) {
		bad(p, "Line too long");
		return -1;
	}
	return 0;
}

/* The end of line in S_SKIP or after a refused literal: the error result. */
static int end_error(imap_parser *p)
{
	p->state = S_DONE;
	return p->fatal ? IMAP_PARSE_FATAL : IMAP_PARSE_BAD;
}

/* The line ended at LF in a normal state. */
static int end_of_line(imap_parser *p)
{
	if (p->state == S_SKIP)
		return end_error(p);
	if (finish(p))
		return IMAP_PARSE_DONE;
	return end_error(p);
}

/* Handle one byte c in the argument states; returns a result or -1 to go on. */
static int arg_byte(imap_parser *p, unsigned char c)
{
	switch (p->state) {
	case S_ARG:
		if (c == ' ') {
			p->need_sep = 0;
		} else if (c == '\r') {
			p->state = S_EOL_LF;
		} else if (c == '\n') {
			return end_of_line(p);
		} else if (c == '(') {
			open_list(p);
		} else if (c == ')') {
			close_list(p);
		} else if (p->need_sep) {
			bad(p, "Missing space between arguments");
		} else if (c == '"') {
			tbuf_reset(&p->tok);
			p->state = S_QUOTED;
		} else if (c == '{') {
			p->lit8 = 0;
			tbuf_reset(&p->tok);
			p->state = S_LITSPEC;
		} else if (c == '~') {
			p->state = S_LIT8;
		} else if (atom_char(c)) {
			tbuf_reset(&p->tok);
			tbuf_append_char(&p->tok, (char)c);
			p->bracket = c == '[';
			p->state = S_ATOM;
		} else {
			bad(p, "Invalid character");
		}
		return -1;
	case S_ATOM:
		if (p->bracket && c != '\r' && c != '\n') {
			/* inside BODY[...]: spaces and parentheses belong to the atom */
			tbuf_append_char(&p->tok, (char)c);
			if (c == ']')
				p->bracket = 0;
			else if (c < 0x20 || c >= 0x7f)
				bad(p, "Invalid character in section");
			return -1;
		}
		if (atom_char(c)) {
			tbuf_append_char(&p->tok, (char)c);
			if (c == '[')
				p->bracket = 1;
			return -1;
		}
		if (c == '"' || c == '{')
			return bad(p, "Invalid character in atom"), -1;
		p->state = S_ARG;
		end_atom(p);
		if (p->state == S_SKIP)
			return c == '\n' ? end_error(p) : -1;
		return arg_byte(p, c);
	case S_QUOTED:
		if (c == '"') {
			end_string(p, arena_strdup(p, tbuf_cstr(&p->tok), p->tok.len), p->tok.len, 0);
			tbuf_reset(&p->tok);
			if (p->state != S_SKIP)
				p->state = S_ARG;
		} else if (c == '\\') {
			p->state = S_QUOTED_ESC;
		} else if (c == '\r' || c == '\n' || c == '\0') {
			bad(p, "Invalid character in quoted string");
			if (c == '\n')
				return end_error(p);
			if (c == '\r')
				p->state = S_SKIP;
		} else {
			tbuf_append_char(&p->tok, (char)c);
		}
		return -1;
	case S_QUOTED_ESC:
		if (c != '"' && c != '\\') {
			bad(p, "Invalid escape in quoted string");
			return c == '\n' ? end_error(p) : -1;
		}
		tbuf_append_char(&p->tok, (char)c);
		p->state = S_QUOTED;
		return -1;
	case S_LIT8:
		if (c != '{') {
			bad(p, "Invalid character");
			return c == '\n' ? end_error(p) : -1;
		}
		p->lit8 = 1;
		tbuf_reset(&p->tok);
		p->state = S_LITSPEC;
		return -1;
	case S_LITSPEC:
		if (c == '}') {
			literal_spec_end(p);
		} else if ((c >= '0' && c <= '9') || c == '+') {
			if (p->tok.len < 24)
				tbuf_append_char(&p->tok, (char)c);
			else
				bad(p, "Invalid literal size");
		} else {
			bad(p, "Invalid literal size");
			if (c == '\n')
				return end_error(p);
		}
		return -1;
	}
	return -1;
}

/* Feed bytes; see imap_int.h for the results. */
int imap_parser_feed(imap_parser *p, const char *data, size_t n, size_t *used_r)
{
	size_t i = 0;
	int rc = IMAP_PARSE_MORE;

	if (p->state == S_DONE)
		imap_parser_reset(p);
	while (i < n && rc == IMAP_PARSE_MORE) {
		if (p->state == S_LITERAL) {
			size_t take = n - i;
			if ((uint64_t)take > p->lit_left)
				take = (size_t)p->lit_left;
			memcpy(p->lit_buf + p->lit_len, data + i, take);
			p->lit_len += take;
			p->lit_left -= take;
			i += take;
			if (p->lit_left == 0) {
				p->lit_buf[p->lit_len] = '\0';
				end_string(p, p->lit_buf, p->lit_len, p->lit8);
				p->need_sep = 1;
				if (p->state != S_SKIP)
					p->state = S_ARG;
			}
			continue;
		}
		unsigned char c = (unsigned char)data[i++];
		if (p->state != S_LITSPEC_LF && p->state != S_START)
			count_line_byte(p);
		switch (p->state) {
		case S_START:
			if (c == '\r' || c == '\n' || c == ' ')
				break;        /* stray line ends between commands */
			p->line_len = 1;
			if (!tag_char(c)) {
				bad(p, "Invalid tag");
				break;
			}
			tbuf_append_char(&p->tag, (char)c);
			p->state = S_TAG;
			break;
		case S_TAG:
			if (c == ' ') {
				p->state = S_NAME;
			} else if (c == '\r' || c == '\n') {
				bad(p, "Missing command");
				if (c == '\n')
					rc = end_error(p);
			} else if (!tag_char(c)) {
				tbuf_reset(&p->tag);
				bad(p, "Invalid tag");
			} else {
				tbuf_append_char(&p->tag, (char)c);
			}
			break;
		case S_NAME: {
			size_t len = strlen(p->name);
			if (c == ' ' || c == '\r' || c == '\n') {
				if (len == 0) {
					bad(p, "Missing command");
					if (c == '\n')
						rc = end_error(p);
					break;
				}
				p->is_append = strcmp(p->name, "APPEND") == 0;
				p->state = S_ARG;
				if (c == '\r')
					p->state = S_EOL_LF;
				else if (c == '\n')
					rc = end_of_line(p);
			} else if (isalpha(c) && len + 1 < sizeof(p->name)) {
				p->name[len] = (char)toupper(c);
				p->name[len + 1] = '\0';
			} else {
				bad(p, "Invalid command name");
			}
			break;
		}
		case S_EOL_LF:
			if (c != '\n') {
				bad(p, "CR without LF");
				break;
			}
			rc = end_of_line(p);
			break;
		case S_LITSPEC_END:
			if (c == '\r') {
				p->state = S_LITSPEC_LF;
				break;
			}
			/* fallthrough */
		case S_LITSPEC_LF:
			if (c != '\n') {
				bad(p, "Literal size must end the line");
				p->fatal = 0;
				break;
			}
			if (p->error != NULL) {
				rc = end_error(p);
			} else {
				p->line_len = 0;    /* the line goes on after the literal */
				p->state = S_LITERAL;
				if (p->lit_left == 0) {
					p->lit_buf[0] = '\0';
					end_string(p, p->lit_buf, 0, p->lit8);
					p->state = S_ARG;
				}
				if (p->lit_sync)
					rc = IMAP_PARSE_LITERAL;
			}
			break;
		case S_SKIP:
			if (c == '\n')
				rc = end_error(p);
			break;
		default: {
			int r = arg_byte(p, c);
			if (r >= 0)
				rc = r;
			break;
		}
		}
	}
	*used_r = i;
	return rc;
}
