/* deliver_alias.c - the guide's alias rules (ch. 12.3) for one local part, without a store.
 *
 * Which aliases apply to a name, most specific first; the first class that has a match
 * is used, all of its matching aliases deliver (one name with several targets delivers
 * to every target):
 *   1. aliases whose pattern is exactly the name (no '*' or '?') - they apply even when
 *      the name is a user or group ("jwayne -> info" takes jwayne's mail away unless
 *      "jwayne -> jwayne" is added too);
 *   2. otherwise, an existing user or group (is_name) is final: wildcards never capture
 *      a real mailbox;
 *   3. otherwise, wildcard patterns with at least one literal character ("*sms*",
 *      "a*00*", "?ime");
 *   4. otherwise, catch-all patterns made of '*' and '?' only ("* -> Admin"), which
 *      therefore get exactly the addresses that match no user, group nor other alias.
 * A name that no alias applies to is a result itself (the caller then finds a user, a
 * group, or nothing).
 *
 * Chains: a target without '@' is a name of the same domain and is resolved again. The
 * names on the current chain are flagged; a target that is already flagged is not
 * followed, and the name that led to it (the last unflagged one) is delivered instead:
 * jwayne -> wayne -> john.wayne -> wayne delivers to john.wayne. Targets with '@' (full
 * addresses, possibly of other domains) and "#public/Folder" are results as they are. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "deliver_int.h"
#include "tern.h"

/* Bound on alias visits per resolution, so that a lattice of aliases (a -> b1, b2;
 * b1 -> c1, c2; ...) cannot make the walk exponential. */
#define ALIAS_STEPS_MAX 4096

enum { TIER_NONE = 0, TIER_EXACT = 1, TIER_WILDCARD = 3, TIER_CATCHALL = 4 };

typedef struct alias_walk {
	const deliver_alias_entry *aliases;
	size_t naliases;
	int (*is_name)(const char *local, void *ctx);
	void *ctx;
	char **out;
	size_t max, n;
	const char *path[DELIVER_DEPTH_MAX + 1];  /* flagged names of the current chain */
	size_t depth;
	unsigned steps;
	const char *domain;
	tbuf *trace;
	int truncated;
} alias_walk;

int deliver_alias_match(const char *pattern, const char *local)
{
	if (pattern == NULL || local == NULL)
		return 0;
	return tern_glob_match(pattern, local);
}

/* The class of a pattern: exact, wildcard with literals, or catch-all. */
static int alias_tier(const char *pattern)
{
	int wild = 0, literal = 0;

	for (const char *p = pattern; *p; p++) {
		if (*p == '*' || *p == '?')
			wild = 1;
		else
			literal = 1;
	}
	if (!wild)
		return TIER_EXACT;
	return literal ? TIER_WILDCARD : TIER_CATCHALL;
}

/* The most specific class of aliases that applies to name, or TIER_NONE. */
static int alias_best_tier(const alias_walk *w, const char *name)
{
	int best = TIER_NONE;

	for (size_t i = 0; i < w->naliases; i++) {
		const char *pat = w->aliases[i].pattern;
		int tier;
		if (pat == NULL || w->aliases[i].target == NULL)
			continue;
		tier = alias_tier(pat);
		if (tier == TIER_EXACT ? strcasecmp(pat, name) != 0 : !deliver_alias_match(pat, name))
			continue;
		if (best == TIER_NONE || tier < best)
			best = tier;
	}
	if (best != TIER_EXACT && w->is_name != NULL && w->is_name(name, w->ctx))
		return TIER_NONE;
	return best;
}

/* Add a result once (addresses compared without case, public folders exactly).
 * Addresses are lower-cased; a public folder keeps its spelling. */
static void alias_emit(alias_walk *w, const char *s)
{
	int public = s[0] == '#';
	char *copy;

	for (size_t i = 0; i < w->n; i++)
		if (public ? strcmp(w->out[i], s) == 0 : strcasecmp(w->out[i], s) == 0)
			return;
	if (w->n >= w->max) {
		w->truncated = 1;
		return;
	}
	copy = strdup(s);
	if (copy == NULL) {
		w->truncated = 1;
		return;
	}
	if (!public)
		tern_lower(copy);
	w->out[w->n++] = copy;
}

/* Write "name@domain" (or the target as it is when it already is an address). */
static void alias_trace_name(alias_walk *w, const char *name)
{
	if (name[0] == '#' || strchr(name, '@') != NULL || w->domain == NULL)
		tbuf_append_str(w->trace, name);
	else
		tbuf_appendf(w->trace, "%s@%s", name, w->domain);
}

static void alias_trace_step(alias_walk *w, const char *from, const char *what, const char *to)
{
	if (w->trace == NULL)
		return;
	alias_trace_name(w, from);
	tbuf_appendf(w->trace, " -> %s -> ", what);
	alias_trace_name(w, to);
	tbuf_append_char(w->trace, '\n');
}

static int alias_flagged(const alias_walk *w, const char *name)
{
	for (size_t i = 0; i < w->depth; i++)
		if (strcasecmp(w->path[i], name) == 0)
			return 1;
	return 0;
}

/* Resolve name (already flagged, on the path) and emit its final results. */
static void alias_walk_name(alias_walk *w, const char *name)
{
	int tier;

	if (++w->steps > ALIAS_STEPS_MAX) {
		w->truncated = 1;
		alias_emit(w, name);
		return;
	}
	tier = alias_best_tier(w, name);
	if (tier == TIER_NONE) {
		alias_emit(w, name);
		return;
	}
	for (size_t i = 0; i < w->naliases; i++) {
		const char *pat = w->aliases[i].pattern, *t = w->aliases[i].target;
		if (pat == NULL || t == NULL || t[0] == '\0' || alias_tier(pat) != tier)
			continue;
		if (tier == TIER_EXACT ? strcasecmp(pat, name) != 0 : !deliver_alias_match(pat, name))
			continue;
		alias_trace_step(w, name, "alias", t);
		if (t[0] == '#' || strchr(t, '@') != NULL) {
			alias_emit(w, t);
		} else if (alias_flagged(w, t)) {
			/* A loop: the mail stays with the last unflagged name. */
			if (strcasecmp(t, name) != 0)
				alias_trace_step(w, t, "already visited, delivered to", name);
			alias_emit(w, name);
		} else if (w->depth >= DELIVER_DEPTH_MAX) {
			w->truncated = 1;
			alias_emit(w, t);
		} else {
			w->path[w->depth++] = t;
			alias_walk_name(w, t);
			w->depth--;
		}
	}
}

size_t deliver_alias_resolve_traced(const deliver_alias_entry *aliases, size_t naliases,
				    const char *local, int (*is_name)(const char *local, void *ctx),
				    void *ctx, char **out, size_t max, const char *domain,
				    tbuf *trace, int *truncated_r)
{
	alias_walk w = {
		.aliases = aliases, .naliases = naliases, .is_name = is_name, .ctx = ctx,
		.out = out, .max = max, .domain = domain, .trace = trace,
	};

	if (local != NULL && local[0] != '\0') {
		w.path[w.depth++] = local;
		alias_walk_name(&w, local);
	}
	if (truncated_r)
		*truncated_r = w.truncated;
	return w.n;
}

size_t deliver_alias_resolve(const deliver_alias_entry *aliases, size_t naliases, const char *local,
			     int (*is_name)(const char *local, void *ctx), void *ctx,
			     char **out, size_t max)
{
	return deliver_alias_resolve_traced(aliases, naliases, local, is_name, ctx, out, max,
					    NULL, NULL, NULL);
}
