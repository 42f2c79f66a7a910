/* auth_sasl.c - server-side SASL: PLAIN, LOGIN, SCRAM-SHA-256, GSSAPI (auth_gssapi.c
 * does the Kerberos part) and the password check.
 * SCRAM runs on the stored keys of the account (Tern__User.scram), so the server never
 * needs the password; an unknown account gets a made-up but stable salt, so the
 * exchange does not tell who exists. Proofs are compared in constant time.
 * PLAIN with authcid "node/<name>" is a node-to-node login (cluster.h): checked against
 * the Node record, outside the lockout. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include "auth_sasl.h"
#include "cluster.h"

#define SCRAM_KEY 32
#define SCRAM_FIELD_MAX 512

static const char *const mech_names[AUTH_SASL_MECH_COUNT] = { "PLAIN", "LOGIN", "SCRAM-SHA-256", "GSSAPI" };

int auth_sasl_mech_parse(const char *name, auth_sasl_mech *mech_r)
{
	for (int m = 0; m < AUTH_SASL_MECH_COUNT; m++)
		if (strcasecmp(name, mech_names[m]) == 0) {
			*mech_r = (auth_sasl_mech)m;
			return 0;
		}
	return -1;
}

const char *auth_sasl_mech_name(auth_sasl_mech mech)
{
	return (unsigned)mech < AUTH_SASL_MECH_COUNT ? mech_names[mech] : "";
}

int auth_sasl_mech_plaintext(auth_sasl_mech mech)
{
	return mech == AUTH_SASL_PLAIN || mech == AUTH_SASL_LOGIN;
}

int auth_sasl_mech_available(const auth_sasl_env *env, auth_sasl_mech mech)
{
	if ((unsigned)mech >= AUTH_SASL_MECH_COUNT)
		return 0;
	return mech != AUTH_SASL_GSSAPI || env->gssapi != NULL;
}

/* ---- base64 ---- */

int auth_b64_decode(const char *s, size_t n, tbuf *out)
{
	tbuf_reset(out);
	if (n % 4 != 0 || n > (size_t)INT32_MAX / 2)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			 c == '+' || c == '/' || (c == '=' && i >= n - 2 && (i == n - 1 || s[n - 1] == '='));
		if (!ok)
			return -1;
	}
	tbuf_reserve(out, n / 4 * 3 + 1);
	if (n == 0) {
		out->data[0] = '\0';
		return 0;
	}
	int len = EVP_DecodeBlock((unsigned char *)out->data, (const unsigned char *)s, (int)n);
	if (len < 0)
		return -1;
	if (s[n - 1] == '=')
		len--;
	if (s[n - 2] == '=')
		len--;
	out->len = (size_t)len;
	out->data[out->len] = '\0';
	return 0;
}

int auth_basic_parse(const char *hdr, char **user_r, char **pass_r)
{
	*user_r = *pass_r = NULL;
	if (hdr == NULL || strncasecmp(hdr, "Basic ", 6) != 0)
		return -1;
	const char *b64 = hdr + 6;
	while (*b64 == ' ')
		b64++;
	size_t n = strlen(b64);
	if (n == 0 || n > 2048)
		return -1;
	tbuf out = TBUF_INIT;
	int rc = -1;
	if (auth_b64_decode(b64, n, &out) == 0 && out.len > 0 && memchr(out.data, '\0', out.len) == NULL) {
		char *colon = memchr(out.data, ':', out.len);
		if (colon != NULL && colon != out.data) {
			*user_r = strndup(out.data, (size_t)(colon - out.data));
			*pass_r = strdup(colon + 1);
			if (*user_r == NULL || *pass_r == NULL)
				abort();
			tern_lower(*user_r);
			rc = 0;
		}
	}
	if (out.data != NULL)
		explicit_bzero(out.data, out.len);
	tbuf_free(&out);
	return rc;
}

void auth_b64_encode(const void *p, size_t n, tbuf *out)
{
	tbuf_reset(out);
	tbuf_reserve(out, (n + 2) / 3 * 4 + 1);
	int len = EVP_EncodeBlock((unsigned char *)out->data, p, (int)n);
	out->len = (size_t)len;
	out->data[out->len] = '\0';
}

/* ---- accounts ---- */

/* "name" -> "name@<primary domain>"; "name@domain" kept; lower case. */
static int account_address(store *st, const char *login, char *out, size_t n)
{
	int w;

	if (login[0] == '\0' || strlen(login) > 320)
		return -1;
	if (strchr(login, '@') != NULL) {
		w = snprintf(out, n, "%s", login);
	} else {
		Tern__Domain **list = NULL;
		size_t nd = 0;
		const char *primary = NULL;
		if (store_domain_list(st, &list, &nd) != STORE_OK)
			return -1;
		for (size_t i = 0; i < nd && primary == NULL; i++)
			if (list[i]->primary)
				primary = list[i]->name;
		w = primary ? snprintf(out, n, "%s@%s", login, primary) : -1;
		store_free_list((void **)list, nd);
	}
	if (w < 0 || (size_t)w >= n)
		return -1;
	tern_lower(out);
	return 0;
}

/* Look the login up: 0 with the user record, -1 when unknown or disabled. */
static int account_find(store *st, const char *login, char *address, size_t n, Tern__User **u_r)
{
	*u_r = NULL;
	if (account_address(st, login, address, n) < 0)
		return -1;
	if (store_user_find(st, address, u_r) != STORE_OK)
		return -1;
	if (!(*u_r)->enabled) {
		store_free_record(*u_r);
		*u_r = NULL;
		return -1;
	}
	/* the canonical account is name@domain, whichever address was used */
	int w = snprintf(address, n, "%s@%s", (*u_r)->name, (*u_r)->domain);
	if (w < 0 || (size_t)w >= n) {
		store_free_record(*u_r);
		*u_r = NULL;
		return -1;
	}
	tern_lower(address);
	return 0;
}

/* The directory check of node/directory (auth.h); set before serving. */
static _Atomic(auth_directory_fn) dir_fn;
static void *_Atomic dir_ctx;

void auth_set_directory(auth_directory_fn fn, void *ctx)
{
	dir_ctx = ctx;
	dir_fn = fn;
}

/* A mapped user, or a login unknown here: lockout first, then the directory. */
static int check_mapped(const auth_sasl_env *env, const char *login, const char *password,
			const char *client_ip, char *account_r, size_t account_n, const char **reason_r)
{
	char address[400];
	auth_directory_fn fn = dir_fn;

	if (account_address(env->st, login, address, sizeof(address)) < 0)
		return -1;
	if (fn != NULL && env->lockout && auth_lockout_is_locked(env->lockout, address, client_ip)) {
		*reason_r = "bad credentials (account locked)";
		return -1;
	}
	int rc = fn ? fn(dir_ctx, address, password ? password : "", account_r, account_n, reason_r)
		    : AUTH_DIR_NOT_MAPPED;
	if (rc == AUTH_DIR_OK) {
		if (env->lockout)
			auth_lockout_succeeded(env->lockout, address, client_ip);
		return 0;
	}
	account_r[0] = '\0';
	if (rc == AUTH_DIR_NOT_MAPPED)
		*reason_r = "bad credentials";
	/* count toward lockout of the name as given, so guessing costs the same */
	if (rc != AUTH_DIR_UNAVAILABLE && env->lockout)
		auth_lockout_failed(env->lockout, address, client_ip);
	return -1;
}

int auth_check_password(const auth_sasl_env *env, const char *login, const char *password,
			const char *client_ip, char *account_r, size_t account_n, const char **reason_r)
{
	char address[400];
	Tern__User *u = NULL;
	int ok = 0;

	account_r[0] = '\0';
	*reason_r = "bad credentials";
	if (account_find(env->st, login, address, sizeof(address), &u) < 0 || u->ldap) {
		store_free_record(u);
		return check_mapped(env, login, password, client_ip, account_r, account_n, reason_r);
	}
	if (env->lockout && auth_lockout_is_locked(env->lockout, address, client_ip)) {
		*reason_r = "bad credentials (account locked)";
		store_free_record(u);
		return -1;
	}
	if (u->password_hash && u->password_hash[0] && password && password[0] &&
	    strlen(password) <= AUTH_PASSWORD_MAX)
		ok = auth_password_verify(password, u->password_hash) == 1;
	store_free_record(u);
	if (!ok) {
		if (env->lockout)
			auth_lockout_failed(env->lockout, address, client_ip);
		return -1;
	}
	if (env->lockout)
		auth_lockout_succeeded(env->lockout, address, client_ip);
	int w = snprintf(account_r, account_n, "%s", address);
	return w < 0 || (size_t)w >= account_n ? -1 : 0;
}

/* ---- the exchange ---- */

enum { ST_START, ST_LOGIN_USER, ST_LOGIN_PASS, ST_SCRAM_FINAL, ST_SCRAM_DONE, ST_OVER };

struct auth_sasl {
	auth_sasl_env env;
	auth_sasl_mech mech;
	int state;
	char ip[64];
	char login[400];
	char account[400];
	char node[64];                       /* the peer node of a node login, "" = none */
	char nonce_override[128];
	/* SCRAM */
	char gs2[SCRAM_FIELD_MAX];           /* "n,," or "y,,"/"n,a=x," as sent */
	tbuf auth_msg;                       /* client-first-bare "," server-first */
	char nonce[2 * SCRAM_FIELD_MAX];     /* client + server nonce */
	int known;                           /* the account exists and has SCRAM keys */
	uint8_t stored_key[SCRAM_KEY], server_key[SCRAM_KEY];
	auth_gssapi *gss;                    /* GSSAPI */
};

auth_sasl *auth_sasl_new(const auth_sasl_env *env, auth_sasl_mech mech, const char *client_ip)
{
	auth_sasl *s;

	if (!auth_sasl_mech_available(env, mech) || (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if (mech == AUTH_SASL_GSSAPI) {
		char *why = NULL;
		s->gss = auth_gssapi_new(env->gssapi, &why);
		if (s->gss == NULL) {
			tlog(TLOG_WARNING, "GSSAPI unavailable: %s", why ? why : "out of memory");
			free(why);
			free(s);
			return NULL;
		}
	}
	s->env = *env;
	s->mech = mech;
	snprintf(s->ip, sizeof(s->ip), "%s", client_ip ? client_ip : "");
	tbuf_init(&s->auth_msg);
	return s;
}

void auth_sasl_free(auth_sasl **sp)
{
	auth_sasl *s = *sp;

	if (s == NULL)
		return;
	tbuf_free(&s->auth_msg);
	auth_gssapi_free(&s->gss);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
	*sp = NULL;
}

const char *auth_sasl_account(const auth_sasl *s)
{
	return s->account;
}

const char *auth_sasl_node(const auth_sasl *s)
{
	return s->node[0] != '\0' ? s->node : NULL;
}

const char *auth_sasl_login(const auth_sasl *s)
{
	return s->login;
}

void auth_sasl_set_server_nonce(auth_sasl *s, const char *nonce)
{
	snprintf(s->nonce_override, sizeof(s->nonce_override), "%s", nonce);
}

/* Run the password check and finish the exchange. */
static int finish_password(auth_sasl *s, const char *password, const char **reason_r)
{
	s->state = ST_OVER;
	if (auth_check_password(&s->env, s->login, password, s->ip, s->account, sizeof(s->account),
				reason_r) < 0)
		return AUTH_SASL_FAIL;
	return AUTH_SASL_OK;
}

/* A node-to-node login (cluster.h): the node credential decides, the lockout does not
 * count (a node is no guesser and must not lock its users out); the session is the node
 * itself, or the account named by authzid when it exists and is enabled here. */
static int node_login(auth_sasl *s, const char *authzid, const char *password, const char **reason_r)
{
	char address[400];
	Tern__User *u = NULL;
	const char *name = s->login + strlen(CLUSTER_NODE_AUTHCID_PREFIX);

	s->state = ST_OVER;
	if (name[0] == '\0' || strlen(name) >= sizeof(s->node) ||
	    !cluster_check_node_login(s->env.st, s->login, password)) {
		*reason_r = "bad node credentials";
		return AUTH_SASL_FAIL;
	}
	if (authzid == NULL) {
		snprintf(s->account, sizeof(s->account), "%s", s->login);
		snprintf(s->node, sizeof(s->node), "%s", name);
		return AUTH_SASL_OK;
	}
	if (account_find(s->env.st, authzid, address, sizeof(address), &u) < 0) {
		*reason_r = "authorization identity not allowed (unknown or disabled account)";
		return AUTH_SASL_FAIL;
	}
	store_free_record(u);
	snprintf(s->account, sizeof(s->account), "%s", address);
	snprintf(s->node, sizeof(s->node), "%s", name);
	return AUTH_SASL_OK;
}

/* RFC 4616: [authzid] NUL authcid NUL passwd; authzid must be the authcid's own account,
 * except for node logins (node_login). */
static int step_plain(auth_sasl *s, const char *in, size_t n, const char **reason_r)
{
	const char *nul1 = memchr(in, '\0', n);
	const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', n - (size_t)(nul1 + 1 - in)) : NULL;

	if (nul2 == NULL || memchr(nul2 + 1, '\0', n - (size_t)(nul2 + 1 - in)) != NULL ||
	    nul2 == nul1 + 1 || nul2 + 1 == in + n) {
		*reason_r = "malformed PLAIN message";
		return AUTH_SASL_MALFORMED;
	}
	int w = snprintf(s->login, sizeof(s->login), "%s", nul1 + 1);
	if (w < 0 || (size_t)w >= sizeof(s->login)) {
		*reason_r = "malformed PLAIN message";
		return AUTH_SASL_MALFORMED;
	}
	if (strncmp(s->login, CLUSTER_NODE_AUTHCID_PREFIX, strlen(CLUSTER_NODE_AUTHCID_PREFIX)) == 0)
		return node_login(s, nul1 == in ? NULL : in, nul2 + 1, reason_r);
	int rc = finish_password(s, nul2 + 1, reason_r);
	if (rc == AUTH_SASL_OK && nul1 != in) {
		char authz[400];
		if (account_address(s->env.st, in, authz, sizeof(authz)) < 0 ||
		    strcmp(authz, s->account) != 0) {
			s->account[0] = '\0';
			*reason_r = "authorization identity not allowed";
			return AUTH_SASL_FAIL;
		}
	}
	return rc;
}

static int step_login(auth_sasl *s, const char *in, size_t n, int has_input, tbuf *out,
		      const char **reason_r)
{
	if (s->state == ST_START && !has_input) {
		s->state = ST_LOGIN_USER;
		tbuf_append_str(out, "Username:");
		return AUTH_SASL_CONTINUE;
	}
	if (s->state == ST_START || s->state == ST_LOGIN_USER) {
		if (n == 0 || memchr(in, '\0', n) != NULL || n >= sizeof(s->login)) {
			*reason_r = "malformed LOGIN user name";
			return AUTH_SASL_MALFORMED;
		}
		memcpy(s->login, in, n);
		s->login[n] = '\0';
		s->state = ST_LOGIN_PASS;
		tbuf_append_str(out, "Password:");
		return AUTH_SASL_CONTINUE;
	}
	if (memchr(in, '\0', n) != NULL) {
		*reason_r = "malformed LOGIN password";
		return AUTH_SASL_MALFORMED;
	}
	return finish_password(s, in, reason_r);
}

/* GSSAPI: the Kerberos exchange, then the principal's login must be an enabled account
 * here, and an authzid must name that same account. */
static int step_gssapi(auth_sasl *s, const char *in, size_t n, tbuf *out, const char **reason_r)
{
	int rc = auth_gssapi_step(s->gss, in, n, out, reason_r);
	char address[400];
	Tern__User *u = NULL;

	snprintf(s->login, sizeof(s->login), "%s", auth_gssapi_principal(s->gss));
	if (rc == AUTH_GSSAPI_CONTINUE)
		return AUTH_SASL_CONTINUE;
	if (rc == AUTH_GSSAPI_MALFORMED)
		return AUTH_SASL_MALFORMED;
	if (rc != AUTH_GSSAPI_OK)
		return AUTH_SASL_FAIL;
	*reason_r = "bad credentials";
	if (account_find(s->env.st, auth_gssapi_login(s->gss), address, sizeof(address), &u) < 0)
		return AUTH_SASL_FAIL;
	store_free_record(u);
	const char *authzid = auth_gssapi_authzid(s->gss);
	if (authzid[0] != '\0') {
		char authz[400];
		if (account_address(s->env.st, authzid, authz, sizeof(authz)) < 0 || strcmp(authz, address) != 0) {
			*reason_r = "authorization identity not allowed";
			return AUTH_SASL_FAIL;
		}
	}
	snprintf(s->account, sizeof(s->account), "%s", address);
	*reason_r = NULL;
	return AUTH_SASL_OK;
}

/* A made-up salt for unknown accounts: HMAC(process secret, name), stable per run. */
static uint8_t fake_secret[32];
static pthread_once_t fake_once = PTHREAD_ONCE_INIT;
static void fake_init(void)
{
	tern_random(fake_secret, sizeof(fake_secret));
}

/* saslname: "=2C" is ',' and "=3D" is '='; any other '=' or a ',' is an error. */
static int scram_unescape(const char *s, size_t n, char *out, size_t outn)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == ',' || c == '\0')
			return -1;
		if (c == '=') {
			if (n - i < 3)
				return -1;
			if (strncmp(s + i, "=2C", 3) == 0)
				c = ',';
			else if (strncmp(s + i, "=3D", 3) == 0)
				c = '=';
			else
				return -1;
			i += 2;
		}
		if (o + 1 >= outn)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return o > 0 ? 0 : -1;
}

/* client-first-message = gs2-header client-first-message-bare (RFC 5802 7). */
static int step_scram_first(auth_sasl *s, const char *in, size_t n, tbuf *out, const char **reason_r)
{
	*reason_r = "malformed SCRAM client-first-message";
	if (n == 0 || n >= SCRAM_FIELD_MAX || memchr(in, '\0', n) != NULL)
		return AUTH_SASL_MALFORMED;
	if (strncmp(in, "p=", 2) == 0) {
		*reason_r = "SCRAM channel binding is not supported";
		return AUTH_SASL_FAIL;
	}
	if (!(in[0] == 'n' || in[0] == 'y') || n < 2 || in[1] != ',')
		return AUTH_SASL_MALFORMED;
	const char *authz = in + 2;
	const char *comma = memchr(authz, ',', n - 2);
	if (comma == NULL)
		return AUTH_SASL_MALFORMED;
	char authzid[400] = "";
	if (comma != authz) {
		if (strncmp(authz, "a=", 2) != 0 ||
		    scram_unescape(authz + 2, (size_t)(comma - authz - 2), authzid, sizeof(authzid)) < 0)
			return AUTH_SASL_MALFORMED;
	}
	size_t gs2_len = (size_t)(comma + 1 - in);
	memcpy(s->gs2, in, gs2_len);
	s->gs2[gs2_len] = '\0';
	const char *bare = comma + 1;
	size_t bare_len = n - gs2_len;
	if (bare_len < 2 || strncmp(bare, "n=", 2) != 0)
		return AUTH_SASL_MALFORMED;            /* also refuses "m=" extensions */
	const char *ucomma = memchr(bare + 2, ',', bare_len - 2);
	if (ucomma == NULL || scram_unescape(bare + 2, (size_t)(ucomma - bare - 2), s->login,
					     sizeof(s->login)) < 0)
		return AUTH_SASL_MALFORMED;
	const char *r = ucomma + 1;
	size_t rest = (size_t)(bare + bare_len - r);
	if (rest < 3 || strncmp(r, "r=", 2) != 0)
		return AUTH_SASL_MALFORMED;
	size_t cn = strcspn(r + 2, ",");
	if (cn == 0 || cn > rest - 2)
		return AUTH_SASL_MALFORMED;
	for (size_t i = 0; i < cn; i++)
		if ((unsigned char)r[2 + i] < 0x21 || (unsigned char)r[2 + i] > 0x7e)
			return AUTH_SASL_MALFORMED;

	/* the account and its keys */
	char address[400];
	Tern__User *u = NULL;
	uint8_t salt_buf[SCRAM_KEY];
	const uint8_t *salt = salt_buf;
	size_t salt_len = 16;
	uint32_t iterations = AUTH_SCRAM_ITERATIONS;
	if (account_find(s->env.st, s->login, address, sizeof(address), &u) == 0 &&
	    u->scram && u->scram->stored_key.len == SCRAM_KEY && u->scram->server_key.len == SCRAM_KEY &&
	    u->scram->salt.len > 0 && u->scram->salt.len <= sizeof(salt_buf) && u->scram->iterations > 0) {
		s->known = 1;
		memcpy(s->stored_key, u->scram->stored_key.data, SCRAM_KEY);
		memcpy(s->server_key, u->scram->server_key.data, SCRAM_KEY);
		memcpy(salt_buf, u->scram->salt.data, u->scram->salt.len);
		salt_len = u->scram->salt.len;
		iterations = u->scram->iterations;
		snprintf(s->account, sizeof(s->account), "%s", address);
	} else {
		unsigned int hl = 0;
		pthread_once(&fake_once, fake_init);
		HMAC(EVP_sha256(), fake_secret, sizeof(fake_secret), (const unsigned char *)s->login,
		     strlen(s->login), salt_buf, &hl);
		tern_random(s->stored_key, SCRAM_KEY);
		tern_random(s->server_key, SCRAM_KEY);
	}
	store_free_record(u);
	if (authzid[0] != '\0') {
		char authz[400];
		if (!s->known || account_address(s->env.st, authzid, authz, sizeof(authz)) < 0 ||
		    strcmp(authz, s->account) != 0)
			s->known = 0;          /* fails at the proof, after the full exchange */
	}

	/* server-first-message = "r=" c-nonce s-nonce ",s=" salt ",i=" iteration-count */
	tbuf snonce = TBUF_INIT, salt64 = TBUF_INIT;
	if (s->nonce_override[0]) {
		tbuf_append_str(&snonce, s->nonce_override);
	} else {
		uint8_t rnd[18];
		tern_random(rnd, sizeof(rnd));
		auth_b64_encode(rnd, sizeof(rnd), &snonce);
	}
	snprintf(s->nonce, sizeof(s->nonce), "%.*s%s", (int)cn, r + 2, tbuf_cstr(&snonce));
	auth_b64_encode(salt, salt_len, &salt64);
	tbuf_appendf(out, "r=%s,s=%s,i=%u", s->nonce, tbuf_cstr(&salt64), iterations);
	tbuf_free(&snonce);
	tbuf_free(&salt64);
	tbuf_append(&s->auth_msg, bare, bare_len);
	tbuf_append_char(&s->auth_msg, ',');
	tbuf_append(&s->auth_msg, out->data, out->len);
	s->state = ST_SCRAM_FINAL;
	return AUTH_SASL_CONTINUE;
}

/* client-final-message = "c=" base64(gs2-header) ",r=" nonce *("," ext) ",p=" proof. */
static int step_scram_final(auth_sasl *s, const char *in, size_t n, tbuf *out, const char **reason_r)
{
	tbuf tmp = TBUF_INIT;
	int rc = AUTH_SASL_MALFORMED;

	*reason_r = "malformed SCRAM client-final-message";
	if (n == 0 || n >= SCRAM_FIELD_MAX || memchr(in, '\0', n) != NULL)
		return AUTH_SASL_MALFORMED;
	const char *p = NULL;
	for (const char *q = in; (q = memchr(q, ',', n - (size_t)(q - in))) != NULL; q++)
		if ((size_t)(in + n - q) > 3 && strncmp(q, ",p=", 3) == 0)
			p = q;
	if (p == NULL || strncmp(in, "c=", 2) != 0 || memchr(p + 3, ',', (size_t)(in + n - p - 3)))
		return AUTH_SASL_MALFORMED;
	size_t without_proof = (size_t)(p - in);
	const char *cend = memchr(in, ',', without_proof);
	if (cend == NULL || auth_b64_decode(in + 2, (size_t)(cend - in - 2), &tmp) < 0)
		goto out;
	if (tmp.len != strlen(s->gs2) || memcmp(tmp.data, s->gs2, tmp.len) != 0) {
		*reason_r = "SCRAM channel binding mismatch";
		rc = AUTH_SASL_FAIL;
		goto out;
	}
	size_t nl = strlen(s->nonce);
	if ((size_t)(in + without_proof - (cend + 1)) < 2 + nl || strncmp(cend + 1, "r=", 2) != 0 ||
	    memcmp(cend + 3, s->nonce, nl) != 0 || (cend + 3 + nl != p && cend[3 + nl] != ',')) {
		*reason_r = "SCRAM nonce mismatch";
		rc = AUTH_SASL_FAIL;
		goto out;
	}
	if (auth_b64_decode(p + 3, (size_t)(in + n - p - 3), &tmp) < 0 || tmp.len != SCRAM_KEY)
		goto out;

	/* ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) == StoredKey */
	uint8_t sig[SCRAM_KEY], key[SCRAM_KEY], check[SCRAM_KEY];
	unsigned int hl = 0;
	tbuf_append_char(&s->auth_msg, ',');
	tbuf_append(&s->auth_msg, in, without_proof);
	HMAC(EVP_sha256(), s->stored_key, SCRAM_KEY, (const unsigned char *)s->auth_msg.data,
	     s->auth_msg.len, sig, &hl);
	for (int i = 0; i < SCRAM_KEY; i++)
		key[i] = (uint8_t)tmp.data[i] ^ sig[i];
	SHA256(key, SCRAM_KEY, check);
	int good = CRYPTO_memcmp(check, s->stored_key, SCRAM_KEY) == 0 && s->known;
	OPENSSL_cleanse(key, sizeof(key));
	rc = AUTH_SASL_FAIL;
	*reason_r = "bad credentials";
	if (s->known && s->env.lockout && auth_lockout_is_locked(s->env.lockout, s->account, s->ip)) {
		*reason_r = "bad credentials (account locked)";
		goto out;
	}
	if (!good) {
		char address[400];
		if (s->env.lockout && (s->known || account_address(s->env.st, s->login, address,
								   sizeof(address)) == 0))
			auth_lockout_failed(s->env.lockout, s->known ? s->account : address, s->ip);
		goto out;
	}
	if (s->env.lockout)
		auth_lockout_succeeded(s->env.lockout, s->account, s->ip);
	HMAC(EVP_sha256(), s->server_key, SCRAM_KEY, (const unsigned char *)s->auth_msg.data,
	     s->auth_msg.len, sig, &hl);
	auth_b64_encode(sig, SCRAM_KEY, &tmp);
	tbuf_appendf(out, "v=%s", tbuf_cstr(&tmp));
	s->state = ST_SCRAM_DONE;
	rc = AUTH_SASL_CONTINUE;
out:
	tbuf_free(&tmp);
	return rc;
}

int auth_sasl_step(auth_sasl *s, const void *in_v, size_t n, int has_input, tbuf *out,
		   const char **reason_r)
{
	const char *in = in_v ? in_v : "";
	int rc;

	tbuf_reset(out);
	*reason_r = NULL;
	if (s->state == ST_OVER) {
		*reason_r = "exchange already finished";
		return AUTH_SASL_MALFORMED;
	}
	switch (s->mech) {
	case AUTH_SASL_PLAIN:
		if (!has_input) {
			s->state = ST_LOGIN_PASS;      /* empty challenge, then the message */
			return AUTH_SASL_CONTINUE;
		}
		rc = step_plain(s, in, n, reason_r);
		break;
	case AUTH_SASL_LOGIN:
		rc = step_login(s, in, n, has_input, out, reason_r);
		break;
	case AUTH_SASL_GSSAPI:
		rc = step_gssapi(s, in, n, out, reason_r);
		break;
	default:
		if (s->state == ST_START && !has_input)
			return AUTH_SASL_CONTINUE;
		if (s->state == ST_START)
			rc = step_scram_first(s, in, n, out, reason_r);
		else if (s->state == ST_SCRAM_FINAL)
			rc = step_scram_final(s, in, n, out, reason_r);
		else if (n == 0)
			rc = AUTH_SASL_OK;             /* the client's empty answer to v= */
		else {
			*reason_r = "malformed SCRAM final response";
			rc = AUTH_SASL_MALFORMED;
		}
		break;
	}
	if (rc != AUTH_SASL_CONTINUE) {
		s->state = ST_OVER;
		if (rc != AUTH_SASL_OK) {
			s->account[0] = '\0';
			s->node[0] = '\0';
		}
	}
	return rc;
}
