/* lm_map.c - attribute maps: what Active Directory, Open Directory and generic LDAP
 * (RFC 2307 / inetOrgPerson) call each piece of a user or group, plus Tern's own optional
 * attributes (ops/schema/tern.schema), and the mapping of an lm_entry onto lm_user /
 * lm_group. Works on plain entries: no server needed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "lm_int.h"

/* Tern's schema (ops/schema/tern.schema); names agreed with it, keep in step. */
#define TERN_ATTRS "ternMailboxEnabled", "ternPrimaryAddress", "ternAddress", "ternForward", \
	"ternForwardKeepCopy", "ternQuotaStorage", "ternQuotaMessages", "ternAdminRights", "ternCreateMailbox", \
	"ternPublishInGAL"

static const char *const ad_user_attrs[] = {
	"sAMAccountName", "userPrincipalName", "mail", "proxyAddresses", "memberOf",
	"userAccountControl", "displayName", "cn", "uSNChanged", TERN_ATTRS, NULL
};
static const char *const od_user_attrs[] = {
	"uid", "mail", "cn", "displayName", "memberOf", "krbPrincipalName", "modifyTimestamp",
	TERN_ATTRS, NULL
};
static const char *const ad_group_attrs[] = {
	"cn", "mail", "proxyAddresses", "member", "uSNChanged", "ternPrimaryAddress", "ternAddress",
	"ternAdminRights", NULL
};
static const char *const od_group_attrs[] = {
	"cn", "mail", "memberUid", "member", "uniqueMember", "modifyTimestamp",
	"ternPrimaryAddress", "ternAddress", "ternAdminRights", NULL
};

const char *const *lm_user_attrs(lm_type type)
{
	return type == LM_TYPE_AD ? ad_user_attrs : od_user_attrs;
}

const char *const *lm_group_attrs(lm_type type)
{
	return type == LM_TYPE_AD ? ad_group_attrs : od_group_attrs;
}

/* AD computer accounts are objectClass user too; their sAMAccountName ends in '$', which
 * is not a valid user name, so the mapping skips them (a "!(objectClass=computer)" term
 * would make the filter undefined on servers without that class). */
const char *lm_user_filter(lm_type type)
{
	if (type == LM_TYPE_AD)
		return "(&(objectClass=user)(sAMAccountName=*))";
	return "(&(|(objectClass=inetOrgPerson)(objectClass=posixAccount)(objectClass=apple-user))(uid=*))";
}

const char *lm_group_filter(lm_type type)
{
	if (type == LM_TYPE_AD)
		return "(&(objectClass=group)(cn=*))";
	return "(&(|(objectClass=posixGroup)(objectClass=groupOfNames)"
	       "(objectClass=groupOfUniqueNames)(objectClass=apple-group))(cn=*))";
}

const char *lm_stamp_attr(lm_type type)
{
	return type == LM_TYPE_AD ? "uSNChanged" : "modifyTimestamp";
}

/* uSNChanged only grows, so "after" is >= stamp+1. modifyTimestamp has one-second
 * granularity: >= stamp visits again the entries of the last second, which is harmless,
 * where > would lose changes made in the second of the previous poll. */
void lm_changed_filter(lm_type type, const char *object_filter, uint64_t since_stamp, tbuf *out)
{
	if (since_stamp == 0) {
		tbuf_append_str(out, object_filter);
		return;
	}
	if (type == LM_TYPE_AD)
		tbuf_appendf(out, "(&%s(uSNChanged>=%llu))", object_filter,
			     (unsigned long long)since_stamp + 1);
	else
		tbuf_appendf(out, "(&%s(modifyTimestamp>=%014lluZ))", object_filter,
			     (unsigned long long)since_stamp);
}

/* Parse a whole unsigned decimal; -1 on anything else. */
static int parse_u64(const char *s, uint64_t *v_r)
{
	char *end;
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*v_r = v;
	return 0;
}

uint64_t lm_entry_stamp(lm_type type, const lm_entry *e)
{
	const char *s = lm_entry_first(e, lm_stamp_attr(type));
	uint64_t v = 0;

	if (!s)
		return 0;
	if (type == LM_TYPE_AD)
		return parse_u64(s, &v) == 0 ? v : 0;
	for (int i = 0; i < 14; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	return v;
}

/* LDAP Boolean is "TRUE"/"FALSE"; accept the usual spellings of hand-written LDIF. */
static int parse_bool(const char *s, int dflt)
{
	if (!s)
		return dflt;
	if (!strcasecmp(s, "TRUE") || !strcasecmp(s, "yes") || !strcmp(s, "1"))
		return 1;
	if (!strcasecmp(s, "FALSE") || !strcasecmp(s, "no") || !strcmp(s, "0"))
		return 0;
	return dflt;
}

/* ternAdminRights (tern.schema): 0 no access, 1 read only, 2 read/write (the guide's
 * three choices), or those names; returned as the Tern__Rights value (0, 2, 3).
 * Anything else is "no access", the safe default. */
static int parse_rights(const char *s)
{
	static const struct { const char *name; int v; } names[] = {
		{ "0", 0 }, { "1", 2 }, { "2", 3 }, { "none", 0 }, { "no-access", 0 },
		{ "read-only", 2 }, { "readonly", 2 }, { "read_only", 2 },
		{ "read-write", 3 }, { "readwrite", 3 }, { "read_write", 3 },
	};

	for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcasecmp(s, names[i].name))
			return names[i].v;
	return 0;
}

/* A growing list of distinct strings. */
typedef struct strv {
	char **v;
	size_t n;
} strv;

static void strv_add(strv *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], s))
			return;
	char **v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v)
		abort();
	l->v = v;
	l->v[l->n] = strdup(s);
	if (!l->v[l->n])
		abort();
	l->n++;
}

static void strv_free(char ***v, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free((*v)[i]);
	free(*v);
	*v = NULL;
	*n = 0;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");
	if (!d)
		abort();
	return d;
}

/* 1 and the lower-case local part in out when addr is an address of the mail domain
 * or of the directory's own DNS domain (AD mail often carries that one). */
static int local_in_domain(const lm_config *cfg, const char *addr, char *out, size_t n)
{
	char dom[256];

	if (tern_split_address(addr, out, n, dom, sizeof(dom)) < 0 || !tern_valid_localpart(out))
		return 0;
	if (cfg->domain && !strcasecmp(dom, cfg->domain))
		return 1;
	if (cfg->directory_domain && cfg->directory_domain[0] && !strcasecmp(dom, cfg->directory_domain))
		return 1;
	return 0;
}

/* A Tern address value: a full address of our domains or a bare local part. */
static void add_tern_address(const lm_config *cfg, const char *v, strv *out)
{
	char local[256];
	size_t len = strlen(v);

	if (strchr(v, '@')) {
		if (local_in_domain(cfg, v, local, sizeof(local)))
			strv_add(out, local);
	} else if (len < sizeof(local) && tern_valid_localpart(v)) {
		memcpy(local, v, len + 1);
		tern_lower(local);
		strv_add(out, local);
	}
}

/* The local parts an entry gives, primary first: ternPrimaryAddress, the "SMTP:"
 * proxyAddress (AD's primary), mail, the "smtp:" proxyAddresses (X400:, SIP: ... are
 * not mail), ternAddress. Addresses of other domains are not ours. */
static void collect_addresses(const lm_config *cfg, const lm_entry *e, strv *out)
{
	char local[256];
	const lm_attr *a;
	const lm_attr *proxy = lm_entry_get(e, "proxyAddresses");
	const char *primary = lm_entry_first(e, "ternPrimaryAddress");

	if (primary)
		add_tern_address(cfg, primary, out);
	for (size_t i = 0; proxy && i < proxy->nvals; i++)
		if (!strncmp(proxy->vals[i], "SMTP:", 5) &&
		    local_in_domain(cfg, proxy->vals[i] + 5, local, sizeof(local)))
			strv_add(out, local);
	if ((a = lm_entry_get(e, "mail")))
		for (size_t i = 0; i < a->nvals; i++)
			if (local_in_domain(cfg, a->vals[i], local, sizeof(local)))
				strv_add(out, local);
	for (size_t i = 0; proxy && i < proxy->nvals; i++)
		if (!strncasecmp(proxy->vals[i], "smtp:", 5) &&
		    local_in_domain(cfg, proxy->vals[i] + 5, local, sizeof(local)))
			strv_add(out, local);
	if ((a = lm_entry_get(e, "ternAddress")))
		for (size_t i = 0; i < a->nvals; i++)
			add_tern_address(cfg, a->vals[i], out);
}

/* The Kerberos principal: a userPrincipalName in the realm is rewritten with the realm's
 * exact (upper) case; one with another UPN suffix is kept as the directory has it;
 * otherwise login@REALM (realm, else the directory or mail domain upper-cased). */
static char *make_principal(const lm_config *cfg, const char *login, const char *upn)
{
	const char *realm = cfg->realm && cfg->realm[0] ? cfg->realm
			  : cfg->directory_domain && cfg->directory_domain[0] ? cfg->directory_domain
			  : cfg->domain ? cfg->domain : "";
	tbuf b = TBUF_INIT;
	const char *at = upn ? strrchr(upn, '@') : NULL;

	if (at && at != upn && at[1]) {
		if (strcasecmp(at + 1, realm) != 0)
			return xstrdup(upn);
		tbuf_append(&b, upn, (size_t)(at - upn));
	} else {
		tbuf_append_str(&b, login);
	}
	tbuf_append_char(&b, '@');
	size_t off = b.len;
	tbuf_append_str(&b, realm);
	for (size_t i = off; i < b.len; i++)
		if (b.data[i] >= 'a' && b.data[i] <= 'z')
			b.data[i] = (char)(b.data[i] - 'a' + 'A');
	return tbuf_steal(&b);
}

/* Tern's per-user mailbox settings; absent attributes mean the defaults. */
static void map_tern_user(const lm_entry *e, lm_user *u)
{
	const lm_attr *a;
	uint64_t v;

	if (!parse_bool(lm_entry_first(e, "ternMailboxEnabled"), 1))
		u->enabled = 0;
	u->has_mailbox = parse_bool(lm_entry_first(e, "ternCreateMailbox"), 1);
	u->forward_keep_copy = parse_bool(lm_entry_first(e, "ternForwardKeepCopy"), 0);
	/* The guide publishes every user with a full name unless told otherwise. */
	u->publish_gal = parse_bool(lm_entry_first(e, "ternPublishInGAL"),
				    u->full_name != NULL && u->full_name[0] != '\0');
	u->rights = parse_rights(lm_entry_first(e, "ternAdminRights"));
	if (parse_u64(lm_entry_first(e, "ternQuotaStorage"), &v) == 0)
		u->quota_bytes = v > UINT64_MAX / (1024 * 1024) ? UINT64_MAX : v * 1024 * 1024;
	if (parse_u64(lm_entry_first(e, "ternQuotaMessages"), &v) == 0)
		u->quota_items = v;
	if ((a = lm_entry_get(e, "ternForward"))) {
		strv fw = { NULL, 0 };
		for (size_t i = 0; i < a->nvals; i++)
			if (tern_valid_address(a->vals[i]))
				strv_add(&fw, a->vals[i]);
		u->forward = fw.v;
		u->nforward = fw.n;
	}
}

int lm_map_user(const lm_config *cfg, const lm_entry *e, lm_user **u_r, const char **why_r)
{
	const char *login = lm_entry_first(e, cfg->type == LM_TYPE_AD ? "sAMAccountName" : "uid");
	char lower[65];

	if (!login) {
		*why_r = "no login attribute";
		return 1;
	}
	size_t len = strlen(login);
	if (len >= sizeof(lower) || !tern_valid_localpart(login)) {
		*why_r = "login is not a valid user name";
		return 1;
	}
	memcpy(lower, login, len + 1);
	tern_lower(lower);

	lm_user *u = calloc(1, sizeof(*u));
	if (!u)
		abort();
	u->dn = xstrdup(e->dn);
	u->login = xstrdup(lower);
	if (cfg->type == LM_TYPE_AD)
		u->principal = make_principal(cfg, lower, lm_entry_first(e, "userPrincipalName"));
	else if (lm_entry_first(e, "krbPrincipalName"))
		u->principal = xstrdup(lm_entry_first(e, "krbPrincipalName"));
	else
		u->principal = make_principal(cfg, lower, NULL);
	const char *name = lm_entry_first(e, "displayName");
	u->full_name = xstrdup(name ? name : lm_entry_first(e, "cn"));

	u->enabled = 1;
	if (cfg->type == LM_TYPE_AD) {
		const char *uac = lm_entry_first(e, "userAccountControl");
		/* ACCOUNTDISABLE is 0x2; the value is a signed 32-bit number. */
		if (uac && (strtoll(uac, NULL, 10) & 0x2))
			u->enabled = 0;
	}

	strv addrs = { NULL, 0 };
	collect_addresses(cfg, e, &addrs);
	u->addresses = addrs.v;
	u->naddresses = addrs.n;

	const lm_attr *a = lm_entry_get(e, "memberOf");
	if (a) {
		strv groups = { NULL, 0 };
		for (size_t i = 0; i < a->nvals; i++)
			strv_add(&groups, a->vals[i]);
		u->groups = groups.v;
		u->ngroups = groups.n;
	}
	map_tern_user(e, u);
	*u_r = u;
	return 0;
}

void lm_user_free(lm_user **up)
{
	lm_user *u = *up;
	if (!u)
		return;
	free(u->dn);
	free(u->login);
	free(u->principal);
	free(u->full_name);
	strv_free(&u->addresses, &u->naddresses);
	strv_free(&u->groups, &u->ngroups);
	strv_free(&u->forward, &u->nforward);
	free(u);
	*up = NULL;
}

int lm_map_group(const lm_config *cfg, const lm_entry *e, lm_group **g_r, const char **why_r)
{
	const char *cn = lm_entry_first(e, "cn");
	char lower[65];

	if (!cn) {
		*why_r = "no cn";
		return 1;
	}
	size_t len = strlen(cn);
	if (len >= sizeof(lower) || !tern_valid_localpart(cn)) {
		*why_r = "cn is not a valid group name";
		return 1;
	}
	memcpy(lower, cn, len + 1);
	tern_lower(lower);

	lm_group *g = calloc(1, sizeof(*g));
	if (!g)
		abort();
	g->dn = xstrdup(e->dn);
	g->name = xstrdup(lower);
	strv addrs = { NULL, 0 };
	collect_addresses(cfg, e, &addrs);
	g->addresses = addrs.v;
	g->naddresses = addrs.n;
	g->rights = parse_rights(lm_entry_first(e, "ternAdminRights"));

	/* RFC 2307 posixGroup lists uids; groupOfNames / AD list DNs. */
	const lm_attr *a = lm_entry_get(e, "memberUid");
	g->members_are_dns = 0;
	if (!a) {
		g->members_are_dns = 1;
		if (!(a = lm_entry_get(e, "member")))
			a = lm_entry_get(e, "uniqueMember");
	}
	if (a) {
		strv m = { NULL, 0 };
		for (size_t i = 0; i < a->nvals; i++) {
			if (g->members_are_dns) {
				strv_add(&m, a->vals[i]);
			} else if (strlen(a->vals[i]) < sizeof(lower) && tern_valid_localpart(a->vals[i])) {
				memcpy(lower, a->vals[i], strlen(a->vals[i]) + 1);
				tern_lower(lower);
				strv_add(&m, lower);
			}
		}
		g->members = m.v;
		g->nmembers = m.n;
	}
	*g_r = g;
	return 0;
}

void lm_group_free(lm_group **gp)
{
	lm_group *g = *gp;
	if (!g)
		return;
	free(g->dn);
	free(g->name);
	strv_free(&g->addresses, &g->naddresses);
	strv_free(&g->members, &g->nmembers);
	free(g);
	*gp = NULL;
}
