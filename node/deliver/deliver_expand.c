/* deliver_expand.c - from one envelope address to its final recipients, using the store:
 * domain aliases, the alias rules of deliver_alias.c, groups (their members) and user
 * forwarding. Also the engine of the admin "Alias Check" (ternctl alias check), which
 * prints the trace.
 *
 * Steps, for an address local@domain:
 *   - "#public/Folder" is a public folder;
 *   - a domain that is not local (nor an alias of a local domain) makes it remote;
 *   - otherwise the domain's aliases are applied (deliver_alias.c); each result that is
 *     a full address is expanded again (it may be in another local domain), each local
 *     name is final for aliases and is looked up:
 *       user  -> its mailbox; with forwarding, the forward targets (expanded again) and,
 *                with keep-copy, the mailbox too;
 *       group -> each member (user addresses, with their forwarding, not aliased again);
 *       none  -> unknown recipient.
 * The addresses on the current chain are flagged as in the alias rules: a forward or
 * alias that comes back to a flagged address leaves the mail with the account that
 * forwarded it. Depth (DELIVER_DEPTH_MAX) and fan-out (DELIVER_FANOUT_MAX recipients)
 * are bounded; a cut is written to the trace. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "deliver_int.h"

#define LOCAL_MAX 65       /* 64 + NUL */
#define DOMAIN_MAX 254     /* 253 + NUL */
#define ADDR_MAX 320
/* Lookups per expansion: forwards and groups that fan out at every level cannot make
 * one address cost more than this. */
#define EXPAND_STEPS_MAX 10000

typedef struct expand_ctx {
	store *st;
	deliver_expansion *out;
	size_t cap;
	char path[DELIVER_DEPTH_MAX + 2][ADDR_MAX];   /* flagged addresses of the chain */
	size_t depth;
	unsigned steps;
	int rc;             /* first store error */
	int truncated;      /* a bound was reached (reported once) */
} expand_ctx;

/* A lookup that finds nothing: an address that cannot be an account is not one. */
static int expand_none(int rc)
{
	return rc == STORE_ENOTFOUND || rc == STORE_EINVAL;
}

typedef struct name_ctx {
	store *st;
	const char *domain;
	int rc;
} name_ctx;

static void expand_address(expand_ctx *c, const char *addr);

/* "local@domain" (or local alone when domain is NULL) into out; -1 when too long. */
static int expand_join(char out[ADDR_MAX], const char *local, const char *domain)
{
	int n = domain ? snprintf(out, ADDR_MAX, "%s@%s", local, domain)
		       : snprintf(out, ADDR_MAX, "%s", local);

	return n >= 0 && n < ADDR_MAX ? 0 : -1;
}

static void expand_trace(expand_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void expand_trace(expand_ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tbuf_vappendf(&c->out->trace, fmt, ap);
	va_end(ap);
	tbuf_append_char(&c->out->trace, '\n');
}

static void expand_cut(expand_ctx *c, const char *why)
{
	if (!c->truncated)
		expand_trace(c, "expansion cut: %s", why);
	c->truncated = 1;
}

/* Record a final recipient once. */
static void expand_add(expand_ctx *c, deliver_kind kind, const char *address)
{
	static const char *const kind_name[] = {
		[DELIVER_LOCAL_USER] = "local mailbox", [DELIVER_REMOTE] = "remote",
		[DELIVER_PUBLIC] = "public folder", [DELIVER_UNKNOWN] = "unknown recipient",
		[DELIVER_RESOURCE] = "resource",
	};
	deliver_rcpt *r;

	for (size_t i = 0; i < c->out->n; i++)
		if (c->out->rcpts[i].kind == kind && strcmp(c->out->rcpts[i].address, address) == 0)
			return;
	if (c->out->n >= DELIVER_FANOUT_MAX) {
		expand_cut(c, "too many recipients");
		return;
	}
	if (c->out->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;
		deliver_rcpt *p = realloc(c->out->rcpts, cap * sizeof(*p));
		if (p == NULL) {
			expand_cut(c, "out of memory");
			return;
		}
		c->out->rcpts = p;
		c->cap = cap;
	}
	r = &c->out->rcpts[c->out->n];
	r->kind = kind;
	if (expand_join(r->address, address, NULL) < 0) {
		expand_trace(c, "%s -> name too long, dropped", address);
		return;
	}
	c->out->n++;
	expand_trace(c, "%s -> %s", address, kind_name[kind]);
}

static int expand_flagged(const expand_ctx *c, const char *addr)
{
	for (size_t i = 0; i < c->depth; i++)
		if (strcasecmp(c->path[i], addr) == 0)
			return 1;
	return 0;
}

/* Flag addr on the chain; 0 when the depth bound stops it. */
static int expand_push(expand_ctx *c, const char *addr)
{
	if (c->depth > DELIVER_DEPTH_MAX) {
		expand_cut(c, "chain too deep");
		return 0;
	}
	if (expand_join(c->path[c->depth], addr, NULL) < 0) {
		expand_trace(c, "%s -> name too long, dropped", addr);
		return 0;
	}
	c->depth++;
	return 1;
}

/* Split and lower-case an address and find the local domain serving it (canon).
 * 1 local, 0 not local, -1 not an address; store errors go to c->rc. */
static int expand_locate(expand_ctx *c, const char *addr, char local[LOCAL_MAX], char domain[DOMAIN_MAX],
			 char canon[DOMAIN_MAX])
{
	int rc;

	if (tern_split_address(addr, local, LOCAL_MAX, domain, DOMAIN_MAX) < 0)
		return -1;
	rc = store_domain_resolve(c->st, domain, canon, DOMAIN_MAX);
	if (expand_none(rc))
		return 0;
	if (rc < 0) {
		c->rc = rc;
		return 0;
	}
	tern_lower(canon);
	return 1;
}

/* The user's mailbox, or its forward targets (plus the mailbox with keep-copy). */
static void expand_user(expand_ctx *c, const char *addr, const Tern__User *u)
{
	char canon[ADDR_MAX];
	int pushed;

	if (expand_join(canon, u->name, u->domain) < 0) {
		c->rc = STORE_EIO;
		return;
	}
	tern_lower(canon);
	if (strcmp(canon, addr) != 0)
		expand_trace(c, "%s -> address of -> %s", addr, canon);
	if (u->n_forward == 0 || u->forward_keep_copy)
		expand_add(c, DELIVER_LOCAL_USER, canon);
	if (u->n_forward == 0)
		return;
	pushed = !expand_flagged(c, canon);
	if (pushed && !expand_push(c, canon))
		return;
	for (size_t i = 0; i < u->n_forward && c->rc == 0; i++) {
		const char *f = u->forward[i];
		expand_trace(c, "%s -> forward -> %s", canon, f);
		if (expand_flagged(c, f)) {
			expand_trace(c, "%s -> already visited, delivered to -> %s", f, canon);
			expand_add(c, DELIVER_LOCAL_USER, canon);
		} else {
			expand_address(c, f);
		}
	}
	if (pushed)
		c->depth--;
}

/* A local address that is neither user nor group: a resource, or unknown. */
static void expand_resource(expand_ctx *c, const char *full)
{
	Tern__Resource *r = NULL;
	int rc = store_resource_find(c->st, full, &r);

	if (rc == STORE_OK) {
		expand_add(c, DELIVER_RESOURCE, full);
		store_free_record(r);
	} else if (expand_none(rc)) {
		expand_add(c, DELIVER_UNKNOWN, full);
	} else {
		c->rc = rc;
	}
}

/* A name that aliases have finished with: a user, a group, a resource or nothing. */
static void expand_final(expand_ctx *c, const char *addr)
{
	char local[LOCAL_MAX], domain[DOMAIN_MAX], canon[DOMAIN_MAX], full[ADDR_MAX];
	Tern__User *u = NULL;
	Tern__Group *g = NULL;
	int rc, where;

	if (++c->steps > EXPAND_STEPS_MAX) {
		expand_cut(c, "too many steps");
		return;
	}
	where = expand_locate(c, addr, local, domain, canon);
	if (c->rc != 0)
		return;
	if (where < 0) {
		expand_add(c, DELIVER_UNKNOWN, addr);
		return;
	}
	if (where == 0) {
		if (expand_join(full, local, domain) == 0)
			expand_add(c, DELIVER_REMOTE, full);
		return;
	}
	if (expand_join(full, local, canon) < 0) {
		expand_add(c, DELIVER_UNKNOWN, addr);
		return;
	}
	rc = store_user_find(c->st, full, &u);
	if (rc == STORE_OK) {
		expand_user(c, full, u);
		store_free_record(u);
		return;
	}
	if (!expand_none(rc)) {
		c->rc = rc;
		return;
	}
	rc = store_group_find(c->st, full, &g);
	if (rc != STORE_OK) {
		if (expand_none(rc))
			expand_resource(c, full);
		else
			c->rc = rc;
		return;
	}
	if (g->n_members == 0)
		expand_trace(c, "%s -> group %s has no members", full, g->name);
	for (size_t i = 0; i < g->n_members && c->rc == 0 && c->out->n < DELIVER_FANOUT_MAX; i++) {
		char m[ADDR_MAX];
		if (expand_join(m, g->members[i], NULL) < 0)
			continue;
		tern_lower(m);
		expand_trace(c, "%s -> group member -> %s", full, m);
		if (expand_flagged(c, m))
			continue;
		if (expand_push(c, m)) {
			expand_final(c, m);
			c->depth--;
		}
	}
	store_free_record(g);
}

/* is_name for the alias walk: a user (by any of its addresses), group or resource address. */
static int expand_is_name(const char *local, void *arg)
{
	name_ctx *n = arg;
	char full[ADDR_MAX];
	Tern__User *u = NULL;
	Tern__Group *g = NULL;
	int rc;

	if (expand_join(full, local, n->domain) < 0)
		return 0;
	rc = store_user_find(n->st, full, &u);
	if (rc == STORE_OK) {
		store_free_record(u);
		return 1;
	}
	if (expand_none(rc))
		rc = store_group_find(n->st, full, &g);
	if (rc == STORE_OK) {
		store_free_record(g);
		return 1;
	}
	if (expand_none(rc)) {
		Tern__Resource *res = NULL;
		rc = store_resource_find(n->st, full, &res);
		if (rc == STORE_OK) {
			store_free_record(res);
			return 1;
		}
	}
	if (!expand_none(rc) && n->rc == 0)
		n->rc = rc;
	return 0;
}

/* The domain's aliases as (pattern, target) pairs; targets written as an address of
 * this same domain (or one of its aliases) become plain names so that chains through
 * them are followed and flagged. `owned` collects the strings made here. */
static int expand_load_aliases(expand_ctx *c, const char *canon, Tern__Alias ***list_r, size_t *nlist_r,
			       deliver_alias_entry **entries_r, size_t *n_r, char ***owned_r)
{
	Tern__Alias **list = NULL;
	size_t nlist = 0, total = 0, k = 0;
	deliver_alias_entry *e;
	char **owned;
	int rc = store_alias_list(c->st, canon, &list, &nlist);

	if (rc == STORE_ENOTFOUND)
		nlist = 0, list = NULL;
	else if (rc < 0)
		return rc;
	for (size_t i = 0; i < nlist; i++)
		total += list[i]->n_targets;
	e = calloc(total ? total : 1, sizeof(*e));
	owned = calloc(total ? total : 1, sizeof(*owned));
	if (e == NULL || owned == NULL) {
		free(e);
		free(owned);
		store_free_list((void **)list, nlist);
		return STORE_EIO;
	}
	for (size_t i = 0; i < nlist; i++) {
		for (size_t j = 0; j < list[i]->n_targets; j++, k++) {
			const char *t = list[i]->targets[j];
			char local[LOCAL_MAX], dom[DOMAIN_MAX];
			e[k].pattern = list[i]->pattern;
			e[k].target = t;
			if (t[0] == '#' || tern_split_address(t, local, sizeof(local), dom, sizeof(dom)) < 0)
				continue;
			if (strcasecmp(dom, canon) != 0) {
				char served[DOMAIN_MAX];
				if (store_domain_resolve(c->st, dom, served, sizeof(served)) != STORE_OK ||
				    strcasecmp(served, canon) != 0)
					continue;
			}
			owned[k] = strdup(local);
			if (owned[k] != NULL)
				e[k].target = owned[k];
		}
	}
	*list_r = list;
	*nlist_r = nlist;
	*entries_r = e;
	*n_r = total;
	*owned_r = owned;
	return 0;
}

/* Apply the aliases of a local address's domain, then expand what they give. */
static void expand_local(expand_ctx *c, const char *addr, const char *local, const char *canon)
{
	Tern__Alias **list = NULL;
	size_t nlist = 0, nentries = 0, nres;
	deliver_alias_entry *entries = NULL;
	char **owned = NULL, **res;
	name_ctx nc = { c->st, canon, 0 };
	int cut = 0, rc;

	rc = expand_load_aliases(c, canon, &list, &nlist, &entries, &nentries, &owned);
	if (rc < 0) {
		c->rc = rc;
		return;
	}
	res = calloc(DELIVER_FANOUT_MAX, sizeof(*res));
	if (res == NULL) {
		c->rc = STORE_EIO;
		goto out;
	}
	nres = deliver_alias_resolve_traced(entries, nentries, local, expand_is_name, &nc, res,
					    DELIVER_FANOUT_MAX, canon, &c->out->trace, &cut);
	if (nc.rc < 0)
		c->rc = nc.rc;
	if (cut)
		expand_cut(c, "alias chain too long or too many targets");
	for (size_t i = 0; i < nres && c->rc == 0; i++) {
		const char *r = res[i];
		if (r[0] == '#') {
			expand_add(c, DELIVER_PUBLIC, r);
		} else if (strchr(r, '@') == NULL) {
			char full[ADDR_MAX];
			if (expand_join(full, r, canon) == 0)
				expand_final(c, full);
			else
				expand_add(c, DELIVER_UNKNOWN, r);
		} else if (expand_flagged(c, r)) {
			/* Back to an address of this chain: the mail stays here. */
			expand_trace(c, "%s -> already visited, delivered to -> %s", r, addr);
			expand_final(c, addr);
		} else {
			expand_address(c, r);
		}
	}
	for (size_t i = 0; i < nres; i++)
		free(res[i]);
	free(res);
out:
	for (size_t i = 0; i < nentries; i++)
		free(owned[i]);
	free(owned);
	free(entries);
	store_free_list((void **)list, nlist);
}

/* One address of any kind, flagged on the chain while it is being expanded. */
static void expand_address(expand_ctx *c, const char *addr)
{
	char local[LOCAL_MAX], domain[DOMAIN_MAX], canon[DOMAIN_MAX], full[ADDR_MAX];
	int where;

	if (c->rc != 0)
		return;
	if (++c->steps > EXPAND_STEPS_MAX) {
		expand_cut(c, "too many steps");
		return;
	}
	if (addr[0] == '#') {
		expand_add(c, DELIVER_PUBLIC, addr);
		return;
	}
	where = expand_locate(c, addr, local, domain, canon);
	if (c->rc != 0)
		return;
	if (where < 0) {
		expand_trace(c, "%s -> not an address", addr);
		expand_add(c, DELIVER_UNKNOWN, addr);
		return;
	}
	if (where == 0) {
		if (expand_join(full, local, domain) < 0)
			return;
		expand_add(c, DELIVER_REMOTE, full);
		return;
	}
	if (expand_join(full, local, canon) < 0 || !expand_push(c, full))
		return;
	expand_local(c, full, local, canon);
	c->depth--;
}

int deliver_expand(store *st, const char *address, deliver_expansion *out)
{
	expand_ctx *c;
	int rc;

	out->rcpts = NULL;
	out->n = 0;
	tbuf_init(&out->trace);
	if (address == NULL || address[0] == '\0')
		return STORE_EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return STORE_EIO;
	c->st = st;
	c->out = out;
	expand_address(c, address);
	rc = c->rc;
	free(c);
	return rc;
}

void deliver_expansion_free(deliver_expansion *e)
{
	if (e == NULL)
		return;
	free(e->rcpts);
	e->rcpts = NULL;
	e->n = 0;
	tbuf_free(&e->trace);
}
