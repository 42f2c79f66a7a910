/* cmd_folder.c - folder commands: CREATE, DELETE, RENAME (INBOX moves its messages,
 * RFC 3501 §6.3.5), SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB (wildcards, CHILDREN and
 * SPECIAL-USE attributes, "/" hierarchy), STATUS; and the standard folders made at first
 * login. Folder deletes and moves are written to operations.log in the guide's format.
 * Subscriptions are the folder record's `subscribed` (folders are created subscribed);
 * LIST also takes the RFC 5258 forms LIST (SUBSCRIBED) ... and RETURN (SUBSCRIBED). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "imap_int.h"

static const struct {
	const char *name, *special_use;
} standard_folders[] = {
	{ "Sent Items", "\\Sent" },
	{ "Drafts", "\\Drafts" },
	{ "Deleted Items", "\\Trash" },
	{ "Junk E-mail", "\\Junk" },
};

/* ---- the standard folders ---- */

struct prepare_op {
	void (*done)(imap_session *s);
	size_t next;
};

static void prepare_next(imap_session *s);

static void prepare_created(imap_session *s, const store_result *res)
{
	(void)res;      /* EEXISTS from a concurrent login is fine; errors do not stop the login */
	prepare_next(s);
}

static void prepare_next(imap_session *s)
{
	struct prepare_op *op = s->op;
	Tern__Folder *f = NULL;

	while (op->next < sizeof(standard_folders) / sizeof(standard_folders[0])) {
		size_t i = op->next++;
		if (store_folder_find(s->srv->env.st, s->user_id, standard_folders[i].name, &f) == STORE_OK) {
			store_free_record(f);
			continue;
		}
		store_folder_create(s->srv->env.st, s->user_id, standard_folders[i].name,
				    standard_folders[i].special_use, imap_store_cb(s, prepare_created), NULL);
		return;
	}
	void (*done)(imap_session *s) = op->done;
	done(s);
}

void imap_folders_prepare(imap_session *s, void (*done)(imap_session *s))
{
	struct prepare_op *op = calloc(1, sizeof(*op));

	if (op == NULL)
		abort();
	if (s->op != NULL && s->op_free != NULL)
		s->op_free(s->op);
	op->done = done;
	s->op = op;
	s->op_free = free;
	if (!s->busy)
		imap_async_begin(s);
	prepare_next(s);
}

/* ---- helpers ---- */

static int find_folder(imap_session *s, const char *name, Tern__Folder **f_r)
{
	return store_folder_find(s->srv->env.st, s->user_id, name, f_r);
}

static void reply_store_error(imap_session *s, int rc, const char *what)
{
	switch (rc) {
	case STORE_ENOTFOUND:
		imap_reply(s, "NO", "[NONEXISTENT] %s: no such mailbox", what);
		break;
	case STORE_EEXISTS:
		imap_reply(s, "NO", "[ALREADYEXISTS] %s: mailbox already exists", what);
		break;
	case STORE_EINVAL:
		imap_reply(s, "NO", "[CANNOT] %s: invalid mailbox name", what);
		break;
	case STORE_EQUOTA:
		imap_reply(s, "NO", "[OVERQUOTA] %s: quota exceeded", what);
		break;
	default:
		imap_reply(s, "NO", "[SERVERBUG] %s: %s", what, store_strerror(rc));
		break;
	}
}

static void simple_done(imap_session *s, const store_result *res)
{
	if (res->rc != STORE_OK)
		reply_store_error(s, res->rc, s->cur ? s->cur->name : "command");
	else
		imap_reply(s, "OK", "%s completed", s->cur ? s->cur->name : "command");
	imap_async_done(s);
}

/* ---- CREATE / DELETE / RENAME ---- */

int imap_cmd_create(imap_session *s, const imap_cmd *c)
{
	char name[IMAP_NAME_MAX + 2];
	const char *err;
	imap_arg a;

	if (c->nargs < 1) {
		imap_reply(s, "BAD", "Syntax: CREATE mailbox");
		return IMAP_DONE;
	}
	a = c->args[0];
	if (a.type != IMAP_ARG_NIL && a.len > 1 && a.str[a.len - 1] == '/')
		a.len--;          /* "CREATE a/" names the hierarchy "a" (RFC 3501 §6.3.3) */
	if (imap_arg_mailbox(&a, name, &err) < 0) {
		imap_reply(s, "BAD", "%s", err);
		return IMAP_DONE;
	}
	if (imap_is_inbox(name)) {
		imap_reply(s, "NO", "[ALREADYEXISTS] INBOX always exists");
		return IMAP_DONE;
	}
	store_folder_create(s->srv->env.st, s->user_id, name, NULL, imap_store_cb(s, simple_done), NULL);
	return IMAP_ASYNC;
}

struct folder_op {
	char old_name[IMAP_NAME_MAX + 1];
	char new_name[IMAP_NAME_MAX + 1];
	uint32_t items;
	uint8_t to[16];
	uint32_t *uids;
	size_t nuids;
};

static void folder_op_free(void *p)
{
	struct folder_op *op = p;
	free(op->uids);
	free(op);
}

static void delete_done(imap_session *s, const store_result *res)
{
	struct folder_op *op = s->op;

	if (res->rc == STORE_OK)
		tlog(TLOG_OPERATIONS, "{DELETE_FOLDER} Folder: ~%s/%s deleted", s->account, op->old_name);
	simple_done(s, res);
}

int imap_cmd_delete(imap_session *s, const imap_cmd *c)
{
	char name[IMAP_NAME_MAX + 1];
	const char *err = NULL;
	Tern__Folder *f = NULL;

	if (c->nargs != 1 || imap_arg_mailbox(&c->args[0], name, &err) < 0) {
		imap_reply(s, "BAD", "%s", err ? err : "Syntax: DELETE mailbox");
		return IMAP_DONE;
	}
	if (imap_is_inbox(name)) {
		imap_reply(s, "NO", "[CANNOT] INBOX cannot be deleted");
		return IMAP_DONE;
	}
	int rc = find_folder(s, name, &f);
	if (rc != STORE_OK) {
		reply_store_error(s, rc, "DELETE");
		return IMAP_DONE;
	}
	if (s->sel != NULL && memcmp(s->sel->folder, f->id.data, 16) == 0)
		imap_enter_state(s, IMAP_ST_AUTH);
	struct folder_op *op = calloc(1, sizeof(*op));
	if (op == NULL)
		abort();
	snprintf(op->old_name, sizeof(op->old_name), "%s", f->name);
	s->op = op;
	s->op_free = folder_op_free;
	uint8_t id[16];
	memcpy(id, f->id.data, 16);
	store_free_record(f);
	store_folder_delete(s->srv->env.st, s->user_id, id, imap_store_cb(s, delete_done), NULL);
	return IMAP_ASYNC;
}

static void rename_done(imap_session *s, const store_result *res)
{
	struct folder_op *op = s->op;

	if (res->rc == STORE_OK)
		tlog(TLOG_OPERATIONS,
		     "{MOVE_FOLDER} Protocol: IMAP, User: %s, IP: %s, Old location: ~%s/%s, New location: ~%s/%s, "
		     "Items count: %u",
		     s->account, s->ip, s->account, op->old_name, s->account, op->new_name, op->items);
	simple_done(s, res);
}

static int collect_uid(const Tern__MessageMeta *m, void *arg)
{
	struct folder_op *op = arg;
	uint32_t *v = realloc(op->uids, (op->nuids + 1) * sizeof(uint32_t));

	if (v == NULL)
		abort();
	op->uids = v;
	op->uids[op->nuids++] = m->uid;
	return 0;
}

/* RENAME INBOX: the new folder exists now; move every message into it. */
static void inbox_created(imap_session *s, const store_result *res)
{
	struct folder_op *op = s->op;
	Tern__Folder *inbox = NULL;

	if (res->rc != STORE_OK) {
		simple_done(s, res);
		return;
	}
	memcpy(op->to, res->id, 16);
	if (find_folder(s, "INBOX", &inbox) != STORE_OK) {
		imap_reply(s, "NO", "[SERVERBUG] INBOX missing");
		imap_async_done(s);
		return;
	}
	store_msg_scan(s->srv->env.st, s->user_id, inbox->id.data, 1, collect_uid, op);
	op->items = (uint32_t)op->nuids;
	if (op->nuids == 0) {
		store_free_record(inbox);
		rename_done(s, res);
		return;
	}
	store_msg_copy(s->srv->env.st, s->user_id, inbox->id.data, op->to, op->uids, op->nuids, 1,
		       imap_store_cb(s, rename_done), NULL);
	store_free_record(inbox);
}

int imap_cmd_rename(imap_session *s, const imap_cmd *c)
{
	char from[IMAP_NAME_MAX + 1], to[IMAP_NAME_MAX + 1];
	const char *err = NULL;
	Tern__Folder *f = NULL;

	if (c->nargs != 2 || imap_arg_mailbox(&c->args[0], from, &err) < 0 ||
	    imap_arg_mailbox(&c->args[1], to, &err) < 0) {
		imap_reply(s, "BAD", "%s", err ? err : "Syntax: RENAME mailbox new-name");
		return IMAP_DONE;
	}
	if (imap_is_inbox(to)) {
		imap_reply(s, "NO", "[ALREADYEXISTS] INBOX always exists");
		return IMAP_DONE;
	}
	int rc = find_folder(s, from, &f);
	if (rc != STORE_OK) {
		reply_store_error(s, rc, "RENAME");
		return IMAP_DONE;
	}
	struct folder_op *op = calloc(1, sizeof(*op));
	if (op == NULL)
		abort();
	snprintf(op->old_name, sizeof(op->old_name), "%s", f->name);
	snprintf(op->new_name, sizeof(op->new_name), "%s", to);
	op->items = f->messages;
	s->op = op;
	s->op_free = folder_op_free;
	if (imap_is_inbox(from)) {
		store_free_record(f);
		store_folder_create(s->srv->env.st, s->user_id, to, NULL, imap_store_cb(s, inbox_created), NULL);
		return IMAP_ASYNC;
	}
	uint8_t id[16];
	memcpy(id, f->id.data, 16);
	store_free_record(f);
	store_folder_rename(s->srv->env.st, s->user_id, id, to, imap_store_cb(s, rename_done), NULL);
	return IMAP_ASYNC;
}

/* ---- subscriptions ---- */

/* SUBSCRIBE / UNSUBSCRIBE write Folder.subscribed. A name with no folder is refused with
 * NO [NONEXISTENT] (RFC 3501 §6.3.6 allows it but does not require it). */
static int subscribe(imap_session *s, const imap_cmd *c, int on)
{
	char name[IMAP_NAME_MAX + 1];
	const char *err = NULL;
	Tern__Folder *f = NULL;

	if (c->nargs != 1 || imap_arg_mailbox(&c->args[0], name, &err) < 0) {
		imap_reply(s, "BAD", "%s", err ? err : on ? "Syntax: SUBSCRIBE mailbox" : "Syntax: UNSUBSCRIBE mailbox");
		return IMAP_DONE;
	}
	int rc = find_folder(s, name, &f);
	if (rc != STORE_OK) {
		reply_store_error(s, rc, on ? "SUBSCRIBE" : "UNSUBSCRIBE");
		return IMAP_DONE;
	}
	if ((f->subscribed != 0) == (on != 0)) {
		store_free_record(f);
		imap_reply(s, "OK", "%s completed", on ? "SUBSCRIBE" : "UNSUBSCRIBE");
		return IMAP_DONE;
	}
	uint8_t id[16];
	memcpy(id, f->id.data, 16);
	store_free_record(f);
	store_folder_subscribe(s->srv->env.st, s->user_id, id, on, imap_store_cb(s, simple_done), NULL);
	return IMAP_ASYNC;
}

int imap_cmd_subscribe(imap_session *s, const imap_cmd *c)
{
	return subscribe(s, c, 1);
}

int imap_cmd_unsubscribe(imap_session *s, const imap_cmd *c)
{
	return subscribe(s, c, 0);
}

/* ---- LIST / LSUB ---- */

/* IMAP wildcards: '*' matches anything, '%' anything but the delimiter. */
static int match(const char *pat, const char *name)
{
	for (; *pat; pat++, name++) {
		if (*pat == '*' || *pat == '%') {
			for (const char *p = name;; p++) {
				if (match(pat + 1, p))
					return 1;
				if (*p == '\0' || (*pat == '%' && *p == '/'))
					return 0;
			}
		}
		if (*name == '\0')
			return 0;
		if (*pat != *name)
			return 0;
	}
	return *name == '\0';
}

static int match_name(const char *pat, const char *name)
{
	if (strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == '/') &&
	    strncasecmp(pat, "INBOX", 5) == 0) {
		char p2[IMAP_NAME_MAX * 2 + 2];
		snprintf(p2, sizeof(p2), "INBOX%s", pat + 5);
		return match(p2, name);
	}
	return match(pat, name);
}

static void list_line(imap_session *s, const char *cmd, const char *attrs, const char *name)
{
	tbuf b = TBUF_INIT;
	tbuf_appendf(&b, "* %s (%s) \"/\" ", cmd, attrs);
	imap_append_string(&b, name, strlen(name));
	tbuf_append_str(&b, "\r\n");
	imap_write(s, b.data, b.len);
	tbuf_free(&b);
}

static int has_child(Tern__Folder **list, size_t n, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < n; i++)
		if (strncasecmp(list[i]->name, name, len) == 0 && list[i]->name[len] == '/')
			return 1;
	return 0;
}

/* LIST-EXTENDED options (RFC 5258) that this server honours: selection SUBSCRIBED (and
 * REMOTE, RECURSIVEMATCH, which change nothing here), return SUBSCRIBED, CHILDREN,
 * SPECIAL-USE (the last two are always sent). -1 on an unknown option. */
static int list_options(const imap_arg *opts, int selection, int *subscribed_r)
{
	for (size_t i = 0; i < opts->nlist; i++) {
		const imap_arg *o = &opts->list[i];
		if (imap_arg_is_atom(o, "SUBSCRIBED"))
			*subscribed_r = 1;
		else if (!(selection && (imap_arg_is_atom(o, "REMOTE") || imap_arg_is_atom(o, "RECURSIVEMATCH"))) &&
			 !(!selection && (imap_arg_is_atom(o, "CHILDREN") || imap_arg_is_atom(o, "SPECIAL-USE"))))
			return -1;
	}
	return 0;
}

static int list_common(imap_session *s, const imap_cmd *c, int lsub)
{
	const char *ref, *pat;
	size_t rl, pl, a = 0;
	char pattern[IMAP_NAME_MAX * 2 + 2];
	Tern__Folder **list = NULL;
	size_t n = 0;
	const char *cmd = lsub ? "LSUB" : "LIST";
	int only_subscribed = lsub, show_subscribed = 0;

	if (!lsub && c->nargs >= 1 && c->args[0].type == IMAP_ARG_LIST) {
		if (list_options(&c->args[0], 1, &only_subscribed) < 0) {
			imap_reply(s, "BAD", "Unsupported LIST selection option");
			return IMAP_DONE;
		}
		show_subscribed = only_subscribed;
		a = 1;
	}
	if (c->nargs < a + 2 || imap_arg_astring(&c->args[a], &ref, &rl) < 0 ||
	    imap_arg_astring(&c->args[a + 1], &pat, &pl) < 0 || rl + pl > IMAP_NAME_MAX * 2) {
		imap_reply(s, "BAD", "Syntax: %s reference pattern", cmd);
		return IMAP_DONE;
	}
	if (c->nargs != a + 2) {
		if (lsub || c->nargs != a + 4 || !imap_arg_is_atom(&c->args[a + 2], "RETURN") ||
		    c->args[a + 3].type != IMAP_ARG_LIST || list_options(&c->args[a + 3], 0, &show_subscribed) < 0) {
			imap_reply(s, "BAD", "Syntax: %s reference pattern", cmd);
			return IMAP_DONE;
		}
	}
	if (pl == 0 && !lsub) {
		list_line(s, cmd, "\\Noselect", "");
		imap_reply(s, "OK", "LIST completed");
		return IMAP_DONE;
	}
	snprintf(pattern, sizeof(pattern), "%.*s%.*s", (int)rl, ref, (int)pl, pat);
	if (store_folder_list(s->srv->env.st, s->user_id, &list, &n) != STORE_OK) {
		imap_reply(s, "NO", "[SERVERBUG] Cannot list folders");
		return IMAP_DONE;
	}
	for (size_t i = 0; i < n; i++) {
		const char *name = imap_is_inbox(list[i]->name) ? "INBOX" : list[i]->name;
		if (!match_name(pattern, name) || (only_subscribed && !list[i]->subscribed))
			continue;
		char attrs[160];
		snprintf(attrs, sizeof(attrs), "%s%s%s%s", has_child(list, n, name) ? "\\HasChildren" : "\\HasNoChildren",
			 list[i]->special_use && list[i]->special_use[0] ? " " : "",
			 list[i]->special_use ? list[i]->special_use : "",
			 show_subscribed && list[i]->subscribed ? " \\Subscribed" : "");
		list_line(s, cmd, attrs, name);
	}
	/* parents that are not folders themselves but hold matching levels (for '%') */
	for (size_t i = 0; !only_subscribed && i < n; i++) {
		char parent[IMAP_NAME_MAX + 1];
		snprintf(parent, sizeof(parent), "%s", list[i]->name);
		char *slash;
		while ((slash = strrchr(parent, '/')) != NULL) {
			*slash = '\0';
			int exists = 0;
			for (size_t k = 0; k < n && !exists; k++)
				exists = strcasecmp(list[k]->name, parent) == 0;
			if (exists || !match_name(pattern, parent))
				continue;
			int dup = 0;
			for (size_t k = 0; k < i && !dup; k++)
				dup = strncasecmp(list[k]->name, parent, strlen(parent)) == 0 &&
				      list[k]->name[strlen(parent)] == '/';
			if (!dup)
				list_line(s, cmd, "\\Noselect \\HasChildren", parent);
		}
	}
	store_free_list((void **)list, n);
	imap_reply(s, "OK", "%s completed", cmd);
	return IMAP_DONE;
}

int imap_cmd_list(imap_session *s, const imap_cmd *c)
{
	return list_common(s, c, 0);
}

int imap_cmd_lsub(imap_session *s, const imap_cmd *c)
{
	return list_common(s, c, 1);
}

/* ---- STATUS ---- */

struct count_ctx {
	uint32_t floor, n;
};

static int count_above(const Tern__MessageMeta *m, void *arg)
{
	struct count_ctx *cc = arg;
	if (m->uid > cc->floor)
		cc->n++;
	return 0;
}

int imap_cmd_status(imap_session *s, const imap_cmd *c)
{
	char name[IMAP_NAME_MAX + 1];
	const char *err = NULL;
	Tern__Folder *f = NULL;

	if (c->nargs != 2 || imap_arg_mailbox(&c->args[0], name, &err) < 0 || c->args[1].type != IMAP_ARG_LIST) {
		imap_reply(s, "BAD", "%s", err ? err : "Syntax: STATUS mailbox (items)");
		return IMAP_DONE;
	}
	int rc = find_folder(s, name, &f);
	if (rc != STORE_OK) {
		reply_store_error(s, rc, "STATUS");
		return IMAP_DONE;
	}
	tbuf b = TBUF_INIT;
	tbuf_append_str(&b, "* STATUS ");
	imap_append_string(&b, name, strlen(name));
	tbuf_append_str(&b, " (");
	const imap_arg *items = c->args[1].list;
	for (size_t i = 0; i < c->args[1].nlist; i++) {
		const imap_arg *it = &items[i];
		if (i)
			tbuf_append_char(&b, ' ');
		if (imap_arg_is_atom(it, "MESSAGES")) {
			tbuf_appendf(&b, "MESSAGES %u", f->messages);
		} else if (imap_arg_is_atom(it, "RECENT")) {
			uint8_t key[32];
			struct count_ctx cc = { 0, 0 };
			memcpy(key, s->user_id, 16);
			memcpy(key + 16, f->id.data, 16);
			pthread_mutex_lock(&s->srv->reg.lock);
			for (imap_mbox *mb = s->srv->reg.open; mb; mb = mb->next)
				if (memcmp(mb->user, key, 16) == 0 && memcmp(mb->folder, key + 16, 16) == 0)
					cc.floor = mb->recent_floor;
			for (size_t k = 0; k < s->srv->reg.nfloors; k++)
				if (memcmp(s->srv->reg.floors[k].key, key, 32) == 0 && cc.floor == 0)
					cc.floor = s->srv->reg.floors[k].floor;
			pthread_mutex_unlock(&s->srv->reg.lock);
			store_msg_scan(s->srv->env.st, s->user_id, f->id.data, cc.floor + 1, count_above, &cc);
			tbuf_appendf(&b, "RECENT %u", cc.n);
		} else if (imap_arg_is_atom(it, "UIDNEXT")) {
			tbuf_appendf(&b, "UIDNEXT %u", f->uidnext);
		} else if (imap_arg_is_atom(it, "UIDVALIDITY")) {
			tbuf_appendf(&b, "UIDVALIDITY %u", f->uidvalidity);
		} else if (imap_arg_is_atom(it, "UNSEEN")) {
			tbuf_appendf(&b, "UNSEEN %u", f->unseen);
		} else if (imap_arg_is_atom(it, "HIGHESTMODSEQ")) {
			tbuf_appendf(&b, "HIGHESTMODSEQ %llu", (unsigned long long)f->highestmodseq);
		} else {
			tbuf_free(&b);
			store_free_record(f);
			imap_reply(s, "BAD", "Unknown STATUS item");
			return IMAP_DONE;
		}
	}
	tbuf_append_str(&b, ")\r\n");
	imap_write(s, b.data, b.len);
	tbuf_free(&b);
	store_free_record(f);
	imap_reply(s, "OK", "STATUS completed");
	return IMAP_DONE;
}
