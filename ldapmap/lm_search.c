/* lm_search.c - bounded searches: paged results (RFC 2696) so no server size limit cuts a
 * listing short, `attr;range=` retrieval for AD's large groups, values checked into
 * lm_entry, and the public listing and lookup calls built on them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "lm_int.h"

/* Result of one search attempt: 0 ok, -1 failed (error_r), -2 the server or connection
 * failed (worth a reconnect). */
#define LM_DOWN (-2)

static int search_error(lm_conn *c, int rc, const char *what, char **error_r)
{
	char *diag = NULL;
	if (c->ld)
		ldap_get_option(c->ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
	*error_r = lm_errorf("%s: %s: %s%s%s", c->server, what, ldap_err2string(rc),
			     diag && *diag ? ": " : "", diag ? diag : "");
	ldap_memfree(diag);
	return lm_rc_is_down(rc) ? LM_DOWN : -1;
}

/* Wait for the next message of msgid within the timeout. */
static int next_message(lm_conn *c, int msgid, LDAPMessage **res_r, char **error_r)
{
	struct timeval tv = { .tv_sec = c->cfg.timeout > 0 ? c->cfg.timeout : 5, .tv_usec = 0 };
	int rc = ldap_result(c->ld, msgid, LDAP_MSG_ONE, &tv, res_r);

	if (rc == 0) {
		ldap_abandon_ext(c->ld, msgid, NULL, NULL);
		return search_error(c, LDAP_TIMEOUT, "search", error_r);
	}
	if (rc < 0) {
		ldap_get_option(c->ld, LDAP_OPT_RESULT_CODE, &rc);
		return search_error(c, rc, "search", error_r);
	}
	return 0;
}

/* Read one base-scope entry synchronously (range steps, rootDSE, schema). */
static int read_base(lm_conn *c, const char *dn, char **attrs, LDAPMessage **res_r, char **error_r)
{
	struct timeval tv = { .tv_sec = c->cfg.timeout > 0 ? c->cfg.timeout : 5, .tv_usec = 0 };
	int rc = ldap_search_ext_s(c->ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL,
				   NULL, &tv, 1, res_r);
	if (rc != LDAP_SUCCESS) {
		ldap_msgfree(*res_r);
		*res_r = NULL;
		return search_error(c, rc, dn, error_r);
	}
	return 0;
}

static void add_values(LDAP *ld, LDAPMessage *msg, const char *attr, const char *name, lm_entry *e)
{
	struct berval **vals = ldap_get_values_len(ld, msg, attr);
	for (size_t i = 0; vals && vals[i]; i++)
		lm_entry_add(e, name, vals[i]->bv_val, vals[i]->bv_len);
	ldap_value_free_len(vals);
}

/* AD sends at most MaxValRange values of a big attribute, named "member;range=0-1499";
 * ask for the next ranges until one ends in "*" (or LM_MAX_VALUES is reached). */
static int fetch_range(lm_conn *c, lm_entry *e, const char *base, long next, char **error_r)
{
	for (int steps = 0; steps <= LM_MAX_VALUES; steps++) {
		const lm_attr *have = lm_entry_get(e, base);
		if (have && have->nvals >= LM_MAX_VALUES)
			return 0;
		char want[128];
		int w = snprintf(want, sizeof(want), "%s;range=%ld-*", base, next);
		if (w < 0 || (size_t)w >= sizeof(want))
			return 0;
		char *attrs[] = { want, NULL };
		LDAPMessage *res = NULL;
		int rc = read_base(c, e->dn, attrs, &res, error_r);
		if (rc < 0)
			return rc;
		LDAPMessage *msg = ldap_first_entry(c->ld, res);
		BerElement *ber = NULL;
		long lo = 0, hi = -1;
		int found = 0;
		for (char *a = msg ? ldap_first_attribute(c->ld, msg, &ber) : NULL; a;
		     a = ldap_next_attribute(c->ld, msg, ber)) {
			char name[64];
			if (lm_parse_range(a, name, sizeof(name), &lo, &hi) == 1 &&
			    strcasecmp(name, base) == 0 && lo == next) {
				add_values(c->ld, msg, a, base, e);
				found = 1;
			}
			ldap_memfree(a);
		}
		ber_free(ber, 0);
		ldap_msgfree(res);
		if (!found || hi < 0)
			return 0;
		next = hi + 1;
	}
	return 0;
}

/* Turn one LDAP entry into an lm_entry, fetching the rest of ranged attributes. */
static int build_entry(lm_conn *c, LDAPMessage *msg, lm_entry *e, char **error_r)
{
	char *dn = ldap_get_dn(c->ld, msg);
	BerElement *ber = NULL;
	struct { char base[64]; long next; } ranges[8];
	size_t nranges = 0;

	lm_entry_init(e, dn);
	ldap_memfree(dn);
	for (char *a = ldap_first_attribute(c->ld, msg, &ber); a; a = ldap_next_attribute(c->ld, msg, ber)) {
		char base[64];
		long lo, hi;
		int r = lm_parse_range(a, base, sizeof(base), &lo, &hi);
		if (r == 0) {
			add_values(c->ld, msg, a, a, e);
		} else if (r == 1) {
			add_values(c->ld, msg, a, base, e);
			if (hi >= 0 && nranges < sizeof(ranges) / sizeof(ranges[0])) {
				memcpy(ranges[nranges].base, base, sizeof(base));
				ranges[nranges++].next = hi + 1;
			}
		}
		ldap_memfree(a);
	}
	ber_free(ber, 0);
	for (size_t i = 0; i < nranges; i++) {
		int rc = fetch_range(c, e, ranges[i].base, ranges[i].next, error_r);
		if (rc < 0) {
			lm_entry_clear(e);
			return rc;
		}
	}
	return 0;
}

/* The end of one page: the result code and the cookie for the next page (empty or
 * absent when this was the last). */
static int page_done(lm_conn *c, LDAPMessage *res, struct berval **cookie, char **error_r)
{
	LDAPControl **ctrls = NULL;
	int err = LDAP_SUCCESS;
	char *diag = NULL;
	int rc = ldap_parse_result(c->ld, res, &err, NULL, &diag, NULL, &ctrls, 0);

	if (rc != LDAP_SUCCESS)
		return search_error(c, rc, "search result", error_r);
	if (err != LDAP_SUCCESS) {
		*error_r = lm_errorf("%s: search: %s%s%s", c->server, ldap_err2string(err),
				     diag && *diag ? ": " : "", diag ? diag : "");
		ldap_memfree(diag);
		ldap_controls_free(ctrls);
		return lm_rc_is_down(err) ? LM_DOWN : -1;
	}
	ldap_memfree(diag);
	ber_bvfree(*cookie);
	*cookie = NULL;
	LDAPControl *pc = ctrls ? ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, ctrls, NULL) : NULL;
	if (pc) {
		ber_int_t estimate;
		struct berval next = { 0, NULL };
		if (ldap_parse_pageresponse_control(c->ld, pc, &estimate, &next) == LDAP_SUCCESS &&
		    next.bv_len > 0) {
			*cookie = ber_bvdup(&next);
		}
		ber_memfree(next.bv_val);
	}
	ldap_controls_free(ctrls);
	return 0;
}

/* One paged subtree search; *delivered counts entries handed to fn. */
static int search_paged(lm_conn *c, const char *filter, const char *const *attrs,
			int (*fn)(const lm_entry *e, void *arg), void *arg, size_t *delivered,
			char **error_r)
{
	struct timeval tv = { .tv_sec = c->cfg.timeout > 0 ? c->cfg.timeout : 5, .tv_usec = 0 };
	struct berval *cookie = NULL;
	int ret = 0;

	do {
		LDAPControl *page = NULL;
		int msgid, rc;

		rc = ldap_create_page_control(c->ld, c->page_size, cookie, 0, &page);
		if (rc != LDAP_SUCCESS) {
			ret = search_error(c, rc, "page control", error_r);
			break;
		}
		LDAPControl *sctrls[] = { page, NULL };
		rc = ldap_search_ext(c->ld, c->cfg.base, LDAP_SCOPE_SUBTREE, filter, (char **)attrs, 0,
				     sctrls, NULL, &tv, 0, &msgid);
		ldap_control_free(page);
		c->pages++;
		if (rc != LDAP_SUCCESS) {
			ret = search_error(c, rc, "search", error_r);
			break;
		}
		for (;;) {
			LDAPMessage *res = NULL;
			if ((ret = next_message(c, msgid, &res, error_r)) < 0)
				break;
			int type = ldap_msgtype(res);
			if (type == LDAP_RES_SEARCH_RESULT) {
				ret = page_done(c, res, &cookie, error_r);
				ldap_msgfree(res);
				break;
			}
			if (type != LDAP_RES_SEARCH_ENTRY) {
				ldap_msgfree(res);  /* references: never chased */
				continue;
			}
			lm_entry e;
			ret = build_entry(c, ldap_first_entry(c->ld, res), &e, error_r);
			ldap_msgfree(res);
			if (ret < 0)
				break;
			if (++*delivered > LM_MAX_ENTRIES) {
				lm_entry_clear(&e);
				*error_r = lm_errorf("%s: more than %d entries", c->server, LM_MAX_ENTRIES);
				ret = -1;
				break;
			}
			int stop = fn(&e, arg);
			lm_entry_clear(&e);
			if (stop) {
				ldap_abandon_ext(c->ld, msgid, NULL, NULL);
				ber_bvfree(cookie);
				return 0;
			}
		}
		if (ret < 0)
			ldap_abandon_ext(c->ld, msgid, NULL, NULL);
	} while (ret == 0 && cookie);
	ber_bvfree(cookie);
	return ret;
}

int lm_search(lm_conn *c, const char *filter, const char *const *attrs,
	      int (*fn)(const lm_entry *e, void *arg), void *arg, char **error_r)
{
	for (int attempt = 0;; attempt++) {
		size_t delivered = 0;
		if (lm_ready(c, error_r) < 0)
			return -1;
		int rc = search_paged(c, filter, attrs, fn, arg, &delivered, error_r);
		if (rc != LM_DOWN)
			return rc;
		lm_drop(c);
		/* Starting again would hand out entries twice: only before the first one. */
		if (attempt > 0 || delivered > 0)
			return -1;
		tlog(TLOG_WARNING, "directory %s: %s; reconnecting", c->cfg.domain ? c->cfg.domain : "",
		     *error_r);
		free(*error_r);
		*error_r = NULL;
	}
}

typedef struct map_ctx {
	lm_conn *c;
	int (*user_fn)(const lm_user *u, void *arg);
	int (*group_fn)(const lm_group *g, void *arg);
	void *arg;
	uint64_t max_stamp;
} map_ctx;

static void note_entry(map_ctx *m, const lm_entry *e)
{
	uint64_t s = lm_entry_stamp(m->c->cfg.type, e);
	if (s > m->max_stamp)
		m->max_stamp = s;
	if (e->dropped)
		tlog(TLOG_WARNING, "directory %s: %s: %zu values dropped (over %d bytes, not UTF-8, or over %d values)",
		     m->c->cfg.domain ? m->c->cfg.domain : "", e->dn, e->dropped, LM_MAX_VALUE_LEN,
		     LM_MAX_VALUES);
}

static int user_entry(const lm_entry *e, void *arg)
{
	map_ctx *m = arg;
	lm_user *u;
	const char *why;

	note_entry(m, e);
	if (lm_map_user(&m->c->cfg, e, &u, &why) != 0) {
		tlog(TLOG_DEBUG, "directory %s: %s skipped: %s", m->c->cfg.domain ? m->c->cfg.domain : "",
		     e->dn, why);
		return 0;
	}
	int stop = m->user_fn(u, m->arg);
	lm_user_free(&u);
	return stop;
}

static int group_entry(const lm_entry *e, void *arg)
{
	map_ctx *m = arg;
	lm_group *g;
	const char *why;

	note_entry(m, e);
	if (lm_map_group(&m->c->cfg, e, &g, &why) != 0) {
		tlog(TLOG_DEBUG, "directory %s: %s skipped: %s", m->c->cfg.domain ? m->c->cfg.domain : "",
		     e->dn, why);
		return 0;
	}
	int stop = m->group_fn(g, m->arg);
	lm_group_free(&g);
	return stop;
}

/* *max_stamp_r is the highest stamp seen, never below since_stamp, so it can be passed
 * back as the next since_stamp unchanged. */
int lm_users(lm_conn *c, uint64_t since_stamp, int (*fn)(const lm_user *u, void *arg), void *arg,
	     uint64_t *max_stamp_r, char **error_r)
{
	map_ctx m = { .c = c, .user_fn = fn, .arg = arg, .max_stamp = since_stamp };
	tbuf filter = TBUF_INIT;

	lm_changed_filter(c->cfg.type, lm_user_filter(c->cfg.type), since_stamp, &filter);
	int rc = lm_search(c, tbuf_cstr(&filter), lm_user_attrs(c->cfg.type), user_entry, &m, error_r);
	tbuf_free(&filter);
	if (rc == 0 && max_stamp_r)
		*max_stamp_r = m.max_stamp;
	return rc;
}

int lm_groups(lm_conn *c, uint64_t since_stamp, int (*fn)(const lm_group *g, void *arg), void *arg,
	      uint64_t *max_stamp_r, char **error_r)
{
	map_ctx m = { .c = c, .group_fn = fn, .arg = arg, .max_stamp = since_stamp };
	tbuf filter = TBUF_INIT;

	lm_changed_filter(c->cfg.type, lm_group_filter(c->cfg.type), since_stamp, &filter);
	int rc = lm_search(c, tbuf_cstr(&filter), lm_group_attrs(c->cfg.type), group_entry, &m, error_r);
	tbuf_free(&filter);
	if (rc == 0 && max_stamp_r)
		*max_stamp_r = m.max_stamp;
	return rc;
}

typedef struct find_ctx {
	const lm_config *cfg;
	lm_user *u;
} find_ctx;

static int find_entry(const lm_entry *e, void *arg)
{
	find_ctx *f = arg;
	const char *why;
	return lm_map_user(f->cfg, e, &f->u, &why) == 0;
}

int lm_find_user(lm_conn *c, const char *login, lm_user **u_r, char **error_r)
{
	find_ctx f = { .cfg = &c->cfg, .u = NULL };
	tbuf filter = TBUF_INIT;

	*u_r = NULL;
	if (!login || !*login || strlen(login) > 256)
		return 1;
	tbuf_appendf(&filter, "(&%s(%s=", lm_user_filter(c->cfg.type),
		     c->cfg.type == LM_TYPE_AD ? "sAMAccountName" : "uid");
	lm_filter_escape(login, &filter);
	tbuf_append_str(&filter, "))");
	int rc = lm_search(c, tbuf_cstr(&filter), lm_user_attrs(c->cfg.type), find_entry, &f, error_r);
	tbuf_free(&filter);
	if (rc < 0) {
		lm_user_free(&f.u);
		return -1;
	}
	if (!f.u)
		return 1;
	*u_r = f.u;
	return 0;
}

/* lm_test needs to read the rootDSE and the subschema entry. */
int lm_read_entry(lm_conn *c, const char *dn, const char *const *attrs, lm_entry *e, char **error_r)
{
	LDAPMessage *res = NULL;
	char *err = NULL;

	if (lm_ready(c, error_r) < 0)
		return -1;
	int rc = read_base(c, dn, (char **)attrs, &res, &err);
	if (rc < 0) {
		if (rc == LM_DOWN)
			lm_drop(c);
		*error_r = err;
		return -1;
	}
	LDAPMessage *msg = ldap_first_entry(c->ld, res);
	if (!msg) {
		ldap_msgfree(res);
		*error_r = lm_errorf("%s: %s: no such entry", c->server, dn);
		return -1;
	}
	rc = build_entry(c, msg, e, error_r);
	ldap_msgfree(res);
	return rc < 0 ? -1 : 0;
}
