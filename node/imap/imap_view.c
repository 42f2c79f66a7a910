/* imap_view.c - the selected-folder state, shared. Every open folder has ONE imap_mbox
 * (refcounted, its own lock) holding an immutable snapshot of its UID list; every session
 * that has the folder selected points at the snapshot it has been told about, so idle
 * sessions of one folder share one message-number map. The store's change notifier
 * marks a session dirty; at the next allowed point the folder's `changes` rows since the
 * shared modseq are applied once (a new snapshot), and the session compares its snapshot
 * with the current one to send EXPUNGE / EXISTS / RECENT, then reports other sessions'
 * flag changes as FETCH. Applying changes is idempotent (a UID is added only above the
 * highest one, removed only if present), so a scan that overlaps the initial load is safe.
 * \Recent goes to the first session that sees a message: the folder keeps the highest UID
 * handed out (and the registry remembers it after the last session closes). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "imap_int.h"

static void flags_lines(imap_session *s);

int imap_registry_init(imap_registry *r)
{
	memset(r, 0, sizeof(*r));
	return pthread_mutex_init(&r->lock, NULL) == 0 ? 0 : -1;
}

void imap_registry_free(imap_registry *r)
{
	while (r->open) {          /* none should be left; free them anyway */
		imap_mbox *mb = r->open;
		r->open = mb->next;
		free(mb->snap);
		for (size_t i = 0; i < mb->nkw; i++)
			free(mb->kw[i]);
		free(mb->kw);
		pthread_mutex_destroy(&mb->lock);
		free(mb);
	}
	free(r->floors);
	pthread_mutex_destroy(&r->lock);
}

static struct imap_floor *floor_find(imap_registry *r, const uint8_t key[32], int create)
{
	for (size_t i = 0; i < r->nfloors; i++)
		if (memcmp(r->floors[i].key, key, 32) == 0)
			return &r->floors[i];
	if (!create)
		return NULL;
	if (r->nfloors == r->floors_cap) {
		size_t cap = r->floors_cap ? r->floors_cap * 2 : 16;
		struct imap_floor *v = realloc(r->floors, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		r->floors = v;
		r->floors_cap = cap;
	}
	struct imap_floor *f = &r->floors[r->nfloors++];
	memcpy(f->key, key, 32);
	f->floor = 0;
	return f;
}

/* ---- snapshots ---- */

static imap_snap *snap_new(uint32_t n)
{
	imap_snap *sn = malloc(sizeof(*sn) + (size_t)n * sizeof(uint32_t));
	if (sn == NULL)
		abort();
	sn->refs = 1;
	sn->n = n;
	return sn;
}

/* Under mb->lock. */
static void snap_unref(imap_snap **snp)
{
	if (*snp != NULL && --(*snp)->refs == 0)
		free(*snp);
	*snp = NULL;
}

typedef struct uidvec {
	uint32_t *v;
	size_t n, cap;
} uidvec;

static void uidvec_push(uidvec *u, uint32_t x)
{
	if (u->n == u->cap) {
		u->cap = u->cap ? u->cap * 2 : 64;
		u->v = realloc(u->v, u->cap * sizeof(uint32_t));
		if (u->v == NULL)
			abort();
	}
	u->v[u->n++] = x;
}

/* Remember keywords of the folder for FLAGS (case-insensitive, bounded). Under mb->lock
 * or before mb is shared. */
static void mbox_add_keywords(imap_mbox *mb, char **kw, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		while (k < mb->nkw && strcasecmp(mb->kw[k], kw[i]) != 0)
			k++;
		if (k < mb->nkw || mb->nkw >= IMAP_KEYWORDS_MAX)
			continue;
		if (mb->nkw == mb->kw_cap) {
			mb->kw_cap = mb->kw_cap ? mb->kw_cap * 2 : 8;
			mb->kw = realloc(mb->kw, mb->kw_cap * sizeof(char *));
			if (mb->kw == NULL)
				abort();
		}
		if ((mb->kw[mb->nkw] = strdup(kw[i])) == NULL)
			abort();
		mb->nkw++;
	}
}

struct load_ctx {
	uidvec u;
	imap_mbox *mb;
};

static int load_msg(const Tern__MessageMeta *m, void *arg)
{
	struct load_ctx *lc = arg;

	uidvec_push(&lc->u, m->uid);
	mbox_add_keywords(lc->mb, m->keywords, m->n_keywords);
	return 0;
}

struct delta {
	uidvec add, del;
	uint64_t modseq;
	imap_mbox *mb;
};

static int collect_change(uint64_t modseq, const Tern__Change *c, void *arg)
{
	struct delta *d = arg;

	if (c->kind == TERN__CHANGE__KIND__APPEND || c->kind == TERN__CHANGE__KIND__FLAGS)
		mbox_add_keywords(d->mb, c->keywords, c->n_keywords);
	if (c->kind == TERN__CHANGE__KIND__APPEND)
		uidvec_push(&d->add, c->uid);
	else if (c->kind == TERN__CHANGE__KIND__EXPUNGE)
		uidvec_push(&d->del, c->uid);
	d->modseq = modseq;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int in_sorted(const uidvec *u, uint32_t x)
{
	return u->n > 0 && bsearch(&x, u->v, u->n, sizeof(uint32_t), cmp_u32) != NULL;
}

/* Apply the changes committed since mb->modseq: one new snapshot. Under mb->lock. */
static void mbox_refresh(store *st, imap_mbox *mb)
{
	struct delta d = { { NULL, 0, 0 }, { NULL, 0, 0 }, mb->modseq, mb };

	if (store_changes_scan(st, mb->user, mb->folder, mb->modseq, collect_change, &d) != STORE_OK ||
	    d.modseq == mb->modseq)
		goto out;
	if (d.add.n > 0 || d.del.n > 0) {
		if (d.del.n > 1)
			qsort(d.del.v, d.del.n, sizeof(uint32_t), cmp_u32);
		imap_snap *old = mb->snap;
		uint32_t top = old->n ? old->uids[old->n - 1] : 0;
		imap_snap *sn = snap_new(old->n + (uint32_t)d.add.n);
		uint32_t k = 0;
		for (uint32_t i = 0; i < old->n; i++)
			if (!in_sorted(&d.del, old->uids[i]))
				sn->uids[k++] = old->uids[i];
		for (size_t i = 0; i < d.add.n; i++)
			if (d.add.v[i] > top && !in_sorted(&d.del, d.add.v[i])) {
				sn->uids[k++] = d.add.v[i];
				top = d.add.v[i];
			}
		sn->n = k;
		snap_unref(&mb->snap);
		mb->snap = sn;
	}
	mb->modseq = d.modseq;
out:
	free(d.add.v);
	free(d.del.v);
}

/* Find or load the shared object of a folder; refs + 1. */
static imap_mbox *mbox_get(imap_server *srv, const uint8_t user[16], const Tern__Folder *f)
{
	imap_registry *r = &srv->reg;
	imap_mbox *mb;

	pthread_mutex_lock(&r->lock);
	for (mb = r->open; mb; mb = mb->next)
		if (memcmp(mb->user, user, 16) == 0 && memcmp(mb->folder, f->id.data, 16) == 0)
			break;
	if (mb != NULL) {
		mb->refs++;
		pthread_mutex_unlock(&r->lock);
		pthread_mutex_lock(&mb->lock);
		mbox_refresh(srv->env.st, mb);    /* catch up with changes no session saw yet */
		pthread_mutex_unlock(&mb->lock);
		return mb;
	}
	mb = calloc(1, sizeof(*mb));
	if (mb == NULL) {
		pthread_mutex_unlock(&r->lock);
		return NULL;
	}
	memcpy(mb->user, user, 16);
	memcpy(mb->folder, f->id.data, 16);
	mb->refs = 1;
	pthread_mutex_init(&mb->lock, NULL);
	mb->modseq = f->highestmodseq;
	struct load_ctx lc = { { NULL, 0, 0 }, mb };
	store_msg_scan(srv->env.st, user, f->id.data, 1, load_msg, &lc);
	mb->snap = snap_new((uint32_t)lc.u.n);
	if (lc.u.n)
		memcpy(mb->snap->uids, lc.u.v, lc.u.n * sizeof(uint32_t));
	free(lc.u.v);
	mbox_refresh(srv->env.st, mb);
	uint8_t key[32];
	memcpy(key, user, 16);
	memcpy(key + 16, f->id.data, 16);
	struct imap_floor *fl = floor_find(r, key, 0);
	mb->recent_floor = fl ? fl->floor : 0;
	mb->next = r->open;
	r->open = mb;
	r->nopen++;
	pthread_mutex_unlock(&r->lock);
	return mb;
}

static void mbox_put(imap_server *srv, imap_mbox **mbp)
{
	imap_registry *r = &srv->reg;
	imap_mbox *mb = *mbp;

	*mbp = NULL;
	pthread_mutex_lock(&r->lock);
	if (--mb->refs > 0) {
		pthread_mutex_unlock(&r->lock);
		return;
	}
	for (imap_mbox **pp = &r->open; *pp; pp = &(*pp)->next)
		if (*pp == mb) {
			*pp = mb->next;
			break;
		}
	r->nopen--;
	uint8_t key[32];
	memcpy(key, mb->user, 16);
	memcpy(key + 16, mb->folder, 16);
	struct imap_floor *fl = floor_find(r, key, 1);
	if (fl != NULL)
		fl->floor = mb->recent_floor;
	pthread_mutex_unlock(&r->lock);
	snap_unref(&mb->snap);
	for (size_t i = 0; i < mb->nkw; i++)
		free(mb->kw[i]);
	free(mb->kw);
	pthread_mutex_destroy(&mb->lock);
	free(mb);
}

/* ---- a session's view ---- */

static void on_event(const store_event *ev, void *arg)
{
	imap_session *s = arg;

	if (s->sel == NULL || ev->kind == TERN__CHANGE__KIND__MOVED)
		return;                 /* MOVED: the login watch closes the session */
	s->sel->dirty = 1;
	if (s->input == IMAP_IN_IDLE)
		imap_idle_wake(s);
}

/* Mark UIDs above the folder's floor \Recent for this session (claimed unless read-only). */
static void claim_recent(imap_sel *sel, const imap_snap *sn, uint32_t from)
{
	imap_mbox *mb = sel->mb;
	uint32_t top = mb->recent_floor;

	for (uint32_t i = from; i < sn->n; i++) {
		if (sn->uids[i] <= mb->recent_floor)
			continue;
		if (sel->nrecent == sel->recent_cap) {
			sel->recent_cap = sel->recent_cap ? sel->recent_cap * 2 : 16;
			sel->recent = realloc(sel->recent, sel->recent_cap * sizeof(uint32_t));
			if (sel->recent == NULL)
				abort();
		}
		sel->recent[sel->nrecent++] = sn->uids[i];
		top = sn->uids[i];
	}
	if (!sel->readonly)
		mb->recent_floor = top;
}

int imap_view_open(imap_session *s, const Tern__Folder *f, int readonly)
{
	imap_sel *sel = calloc(1, sizeof(*sel));

	if (sel == NULL)
		return STORE_EIO;
	memcpy(sel->folder, f->id.data, 16);
	snprintf(sel->name, sizeof(sel->name), "%s", f->name);
	sel->readonly = readonly;
	sel->uidvalidity = f->uidvalidity;
	s->sel = sel;
	/* watch first: any change after this point is either loaded or notified */
	sel->watch = store_watch_add(s->srv->env.st, s->user_id, f->id.data, s->io, on_event, s);
	sel->mb = mbox_get(s->srv, s->user_id, f);
	if (sel->watch == NULL || sel->mb == NULL) {
		imap_view_close(s);
		return STORE_EIO;
	}
	pthread_mutex_lock(&sel->mb->lock);
	sel->snap = sel->mb->snap;
	sel->snap->refs++;
	sel->flags_modseq = sel->mb->modseq;
	claim_recent(sel, sel->snap, 0);
	pthread_mutex_unlock(&sel->mb->lock);
	return 0;
}

void imap_view_close(imap_session *s)
{
	imap_sel *sel = s->sel;

	if (sel == NULL)
		return;
	store_watch_remove(s->srv->env.st, &sel->watch);
	if (sel->mb != NULL) {
		pthread_mutex_lock(&sel->mb->lock);
		snap_unref(&sel->snap);
		pthread_mutex_unlock(&sel->mb->lock);
		mbox_put(s->srv, &sel->mb);
	}
	free(sel->recent);
	free(sel);
	s->sel = NULL;
}

static void drop_recent(imap_sel *sel, uint32_t uid)
{
	for (size_t i = 0; i < sel->nrecent; i++)
		if (sel->recent[i] == uid) {
			memmove(sel->recent + i, sel->recent + i + 1, (sel->nrecent - i - 1) * sizeof(uint32_t));
			sel->nrecent--;
			return;
		}
}

/* Compare the session's snapshot with the folder's; send the differences. Under lock. */
static void sync_snapshot(imap_session *s, int allow_expunge)
{
	imap_sel *sel = s->sel;
	imap_snap *old = sel->snap, *cur = sel->mb->snap;
	uint32_t i = 0, j = 0, gone = 0;

	if (old == cur)
		return;
	/* a UID of old missing from cur was expunged; both lists ascend */
	for (i = 0, j = 0; i < old->n; i++) {
		while (j < cur->n && cur->uids[j] < old->uids[i])
			j++;
		if (j >= cur->n || cur->uids[j] != old->uids[i])
			gone++;
	}
	if (gone > 0 && !allow_expunge)
		return;
	for (i = 0, j = 0, gone = 0; i < old->n; i++) {
		while (j < cur->n && cur->uids[j] < old->uids[i])
			j++;
		if (j >= cur->n || cur->uids[j] != old->uids[i]) {
			imap_untagged(s, "%u EXPUNGE", i + 1 - gone);
			drop_recent(sel, old->uids[i]);
			gone++;
		}
	}
	uint32_t top = old->n ? old->uids[old->n - 1] : 0, first_new = cur->n;
	for (j = 0; j < cur->n; j++)
		if (cur->uids[j] > top) {
			first_new = j;
			break;
		}
	size_t before = sel->nrecent;
	if (first_new < cur->n)
		claim_recent(sel, cur, first_new);
	if (first_new < cur->n || gone > 0)
		imap_untagged(s, "%u EXISTS", cur->n);
	if (sel->nrecent != before)
		imap_untagged(s, "%zu RECENT", sel->nrecent);
	snap_unref(&sel->snap);
	sel->snap = cur;
	cur->refs++;
}

/* "* FLAGS (...)" and PERMANENTFLAGS with the folder's keywords; \* since any client
 * may create keywords (read-only: none permanent). Under mb->lock. */
static void flags_lines(imap_session *s)
{
	imap_sel *sel = s->sel;
	imap_mbox *mb = sel->mb;
	tbuf kw = TBUF_INIT;

	for (size_t i = 0; i < mb->nkw; i++)
		tbuf_appendf(&kw, " %s", mb->kw[i]);
	imap_untagged(s, "FLAGS (" IMAP_SYSTEM_FLAGS "%s)", tbuf_cstr(&kw));
	if (sel->readonly)
		imap_untagged(s, "OK [PERMANENTFLAGS ()] Read-only mailbox");
	else
		imap_untagged(s, "OK [PERMANENTFLAGS (" IMAP_SYSTEM_FLAGS "%s \\*)] Flags permitted", tbuf_cstr(&kw));
	sel->nkw_told = mb->nkw;
	tbuf_free(&kw);
}

struct flag_ctx {
	imap_session *s;
	uint64_t last;
};

static int report_flags(uint64_t modseq, const Tern__Change *c, void *arg)
{
	struct flag_ctx *fc = arg;
	imap_session *s = fc->s;
	imap_sel *sel = s->sel;

	fc->last = modseq;
	if (c->kind != TERN__CHANGE__KIND__FLAGS)
		return 0;
	for (size_t i = 0; i < sel->nown; i++)
		if (modseq >= sel->own[i].lo && modseq <= sel->own[i].hi)
			return 0;
	uint32_t msn = imap_view_msn(s, c->uid);
	if (msn == 0)
		return 0;
	tbuf b = TBUF_INIT;
	tbuf_appendf(&b, "* %u FETCH (FLAGS ", msn);
	imap_flags_render(c->flags, c->keywords, c->n_keywords, imap_view_is_recent(s, c->uid), &b);
	if (s->uid)
		tbuf_appendf(&b, " UID %u", c->uid);
	if (s->condstore)
		tbuf_appendf(&b, " MODSEQ (%llu)", (unsigned long long)modseq);
	tbuf_append_str(&b, ")\r\n");
	imap_write(s, b.data, b.len);
	tbuf_free(&b);
	return 0;
}

void imap_view_sync(imap_session *s, int allow_expunge)
{
	imap_sel *sel = s->sel;
	store *st = s->srv->env.st;

	if (sel == NULL)
		return;
	pthread_mutex_lock(&sel->mb->lock);
	if (sel->dirty) {
		sel->dirty = 0;
		mbox_refresh(st, sel->mb);
	}
	if (sel->mb->nkw > sel->nkw_told)
		flags_lines(s);
	sync_snapshot(s, allow_expunge);
	uint64_t top = sel->mb->modseq;
	pthread_mutex_unlock(&sel->mb->lock);
	if (top > sel->flags_modseq) {
		struct flag_ctx fc = { s, sel->flags_modseq };
		store_changes_scan(st, s->user_id, sel->folder, sel->flags_modseq, report_flags, &fc);
		sel->flags_modseq = fc.last > top ? fc.last : top;
		size_t k = 0;
		for (size_t i = 0; i < sel->nown; i++)
			if (sel->own[i].hi > sel->flags_modseq)
				sel->own[k++] = sel->own[i];
		sel->nown = k;
	}
}

void imap_view_send_flags(imap_session *s)
{
	if (s->sel == NULL)
		return;
	pthread_mutex_lock(&s->sel->mb->lock);
	flags_lines(s);
	pthread_mutex_unlock(&s->sel->mb->lock);
}

void imap_view_announce_keywords(imap_session *s)
{
	imap_sel *sel = s->sel;

	if (sel == NULL)
		return;
	pthread_mutex_lock(&sel->mb->lock);
	mbox_refresh(s->srv->env.st, sel->mb);
	if (sel->mb->nkw > sel->nkw_told)
		flags_lines(s);
	pthread_mutex_unlock(&sel->mb->lock);
}

void imap_view_own_change(imap_session *s, uint64_t lo, uint64_t hi)
{
	imap_sel *sel = s->sel;

	if (sel == NULL || hi <= sel->flags_modseq)
		return;
	if (sel->nown == sizeof(sel->own) / sizeof(sel->own[0])) {
		memmove(sel->own, sel->own + 1, sizeof(sel->own[0]) * (sel->nown - 1));
		sel->nown--;
	}
	sel->own[sel->nown].lo = lo;
	sel->own[sel->nown].hi = hi;
	sel->nown++;
}

uint32_t imap_view_count(const imap_session *s)
{
	return s->sel ? s->sel->snap->n : 0;
}

uint32_t imap_view_uid(const imap_session *s, uint32_t msn)
{
	if (s->sel == NULL || msn == 0 || msn > s->sel->snap->n)
		return 0;
	return s->sel->snap->uids[msn - 1];
}

uint32_t imap_view_msn(const imap_session *s, uint32_t uid)
{
	if (s->sel == NULL)
		return 0;
	const imap_snap *sn = s->sel->snap;
	const uint32_t *p = bsearch(&uid, sn->uids, sn->n, sizeof(uint32_t), cmp_u32);
	return p ? (uint32_t)(p - sn->uids) + 1 : 0;
}

int imap_view_is_recent(const imap_session *s, uint32_t uid)
{
	const imap_sel *sel = s->sel;

	/* sel->recent ascends: UIDs are claimed in order and only removed */
	return sel != NULL && sel->nrecent > 0 &&
	       bsearch(&uid, sel->recent, sel->nrecent, sizeof(uint32_t), cmp_u32) != NULL;
}

uint32_t imap_view_recent_count(const imap_session *s)
{
	return s->sel ? (uint32_t)s->sel->nrecent : 0;
}

int imap_view_resolve(const imap_session *s, const imap_arg *set, int uid, uint32_t **uids_r, size_t *n_r,
		      const char **error_r)
{
	const imap_snap *sn = s->sel->snap;
	imap_seqset ss = { NULL, 0 };
	uidvec out = { NULL, 0, 0 };

	*uids_r = NULL;
	*n_r = 0;
	if (set == NULL || set->type != IMAP_ARG_ATOM) {
		*error_r = "Invalid sequence set";
		return -1;
	}
	if (imap_seqset_parse(set->str, &ss, error_r) < 0)
		return -1;
	if (!uid) {
		for (size_t i = 0; i < ss.n; i++)
			if ((ss.r[i].lo != UINT32_MAX && ss.r[i].lo > sn->n) ||
			    (ss.r[i].hi != UINT32_MAX && ss.r[i].hi > sn->n)) {
				imap_seqset_free(&ss);
				*error_r = "Invalid message sequence number";
				return -1;
			}
	}
	imap_seqset_resolve(&ss, uid ? (sn->n ? sn->uids[sn->n - 1] : 0) : sn->n);
	for (uint32_t i = 0; i < sn->n; i++)
		if (imap_seqset_contains(&ss, uid ? sn->uids[i] : i + 1))
			uidvec_push(&out, sn->uids[i]);
	imap_seqset_free(&ss);
	*uids_r = out.v;
	*n_r = out.n;
	return 0;
}
