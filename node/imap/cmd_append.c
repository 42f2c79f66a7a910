/* cmd_append.c - APPEND (RFC 3501 §6.3.11, UIDPLUS APPENDUID, BINARY literal8): flags,
 * date-time and the message literal; the MIME structure is analysed once here and kept
 * in the message record (on the cpu pool above IMAP_APPEND_INLINE_MAX); the quota is
 * enforced by the store (NO [OVERQUOTA]). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "imap_int.h"
#include "mime.h"

/* RFC 3501 date-time "dd-Mon-yyyy hh:mm:ss +zzzz" (day may be " d") -> unix time. */
static int parse_date_time(const char *s, size_t n, int64_t *t_r)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char mon[4];
	int d, y, hh, mm, ss, zone, used = 0;
	char sign;

	if (n < 26 || n > 27)
		return -1;
	if (sscanf(s, "%2d-%3c-%4d %2d:%2d:%2d %c%4d%n", &d, mon, &y, &hh, &mm, &ss, &sign, &zone, &used) != 8 ||
	    (size_t)used != n || (sign != '+' && sign != '-'))
		return -1;
	mon[3] = '\0';
	const char *m = strstr(months, mon);
	if (m == NULL || (m - months) % 3 != 0 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60 || y < 1970)
		return -1;
	struct tm tm = { 0 };
	tm.tm_mday = d;
	tm.tm_mon = (int)(m - months) / 3;
	tm.tm_year = y - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	int64_t t = (int64_t)timegm(&tm);
	int64_t off = (zone / 100) * 3600 + (zone % 100) * 60;
	*t_r = sign == '+' ? t - off : t + off;
	return 0;
}

struct append_op {
	Tern__MimeInfo *mime;
	uint8_t folder[16];
	const char **keywords;     /* into the command's arguments (kept until its end) */
	size_t nkeywords;
	uint32_t flags;
	int64_t date;
	const char *body;          /* the literal, in the parser's arena */
	size_t body_len;
};

static void append_op_free(void *p)
{
	struct append_op *op = p;
	mime_info_free(&op->mime);
	free(op->keywords);
	free(op);
}

static void append_done(imap_session *s, const store_result *res)
{
	struct append_op *op = s->op;

	if (res->rc == STORE_EQUOTA) {
		imap_reply(s, "NO", "[OVERQUOTA] Quota exceeded");
	} else if (res->rc == STORE_EDISK) {
		imap_reply(s, "NO", "[LIMIT] Server out of disk space, try again later");
	} else if (res->rc != STORE_OK) {
		imap_reply(s, "NO", "[SERVERBUG] APPEND failed: %s", store_strerror(res->rc));
	} else {
		imap_server_count(s->srv, &s->srv->stats.appended);
		if (s->sel != NULL && memcmp(s->sel->folder, op->folder, 16) == 0)
			s->sel->dirty = 1;
		imap_reply(s, "OK", "[APPENDUID %u %u] APPEND completed", res->uidvalidity, res->uid);
	}
	imap_async_done(s);
}

/* The MIME structure of the literal (on the cpu pool for large messages). */
static void append_analyze(void *arg)
{
	struct append_op *op = arg;
	op->mime = mime_analyze(op->body, op->body_len);
}

/* Analysed: store the message; the quota is enforced by the store. */
static void append_store(imap_session *s)
{
	struct append_op *op = s->op;
	store_append a = { 0 };

	a.user = s->user_id;
	a.folder = op->folder;
	a.body = op->body;
	a.body_len = op->body_len;
	a.flags = op->flags;
	a.keywords = op->keywords;
	a.nkeywords = op->nkeywords;
	a.internaldate = op->date;
	a.enforce_quota = 1;
	a.mime = op->mime;
	store_msg_append(s->srv->env.st, &a, imap_store_cb(s, append_done), NULL);
}

int imap_cmd_append(imap_session *s, const imap_cmd *c)
{
	char name[IMAP_NAME_MAX + 1];
	const char *err = NULL;
	Tern__Folder *f = NULL;
	uint32_t flags = 0;
	const char **keywords = NULL;
	size_t nkeywords = 0, i = 1;
	int64_t date = 0;

	if (c->nargs < 2 || imap_arg_mailbox(&c->args[0], name, &err) < 0) {
		imap_reply(s, "BAD", "%s", err ? err : "Syntax: APPEND mailbox [(flags)] [date-time] message");
		return IMAP_DONE;
	}
	if (c->args[i].type == IMAP_ARG_LIST) {
		if (imap_flags_parse(&c->args[i], &flags, &keywords, &nkeywords, &err) < 0) {
			imap_reply(s, "BAD", "%s", err ? err : "Invalid flags");
			return IMAP_DONE;
		}
		i++;
	}
	if (i + 1 < c->nargs && c->args[i].type == IMAP_ARG_STRING && !c->args[i].literal8) {
		if (parse_date_time(c->args[i].str, c->args[i].len, &date) < 0) {
			free(keywords);
			imap_reply(s, "BAD", "Invalid date-time");
			return IMAP_DONE;
		}
		i++;
	}
	if (i + 1 != c->nargs || c->args[i].type != IMAP_ARG_STRING) {
		free(keywords);
		imap_reply(s, "BAD", "Syntax: APPEND mailbox [(flags)] [date-time] message");
		return IMAP_DONE;
	}
	const imap_arg *msg = &c->args[i];
	if (store_folder_find(s->srv->env.st, s->user_id, name, &f) != STORE_OK) {
		free(keywords);
		imap_reply(s, "NO", "[TRYCREATE] Mailbox does not exist");
		return IMAP_DONE;
	}
	struct append_op *op = calloc(1, sizeof(*op));
	if (op == NULL)
		abort();
	memcpy(op->folder, f->id.data, 16);
	store_free_record(f);
	op->keywords = keywords;
	op->nkeywords = nkeywords;
	op->flags = flags;
	op->date = date;
	op->body = msg->str;
	op->body_len = msg->len;
	s->op = op;
	s->op_free = append_op_free;
	return imap_offload(s, append_analyze, append_store, op->body_len > IMAP_APPEND_INLINE_MAX);
}
