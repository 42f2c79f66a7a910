/* proxy_login.c - the client side of a proxied login at the home node, one line of the
 * home node's answers at a time: greeting, STARTTLS / STLS, then (over TLS only) IMAP
 * ID with the client's address and AUTHENTICATE PLAIN, or POP3 AUTH PLAIN, both with
 * an initial response (the home node is a Tern node: SASL-IR is there). The node
 * credential is sent only after TLS is up with the pinned certificate, and is never
 * written into a reply text. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include "auth_sasl.h"
#include "proxy.h"

enum { L_GREETING, L_STARTTLS, L_TLS, L_AUTH, L_OVER };

/* Keep a short, printable copy of the home node's text for the caller's reply/log. */
static int finish(proxy_login *l, int rc, const char *prefix, const char *line, const char **reply_r)
{
	int w = snprintf(l->reply, sizeof(l->reply), "%s%.300s", prefix, line ? line : "");

	if (w < 0)
		l->reply[0] = '\0';
	for (char *c = l->reply; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7f)
			*c = '?';
	l->state = L_OVER;
	*reply_r = l->reply;
	proxy_login_clear(l);
	return rc;
}

/* base64(authzid NUL authcid NUL password), the PLAIN initial response. */
static void plain_response(proxy_login *l, tbuf *out)
{
	tbuf msg = TBUF_INIT, b64 = TBUF_INIT;

	tbuf_append_str(&msg, l->account);
	tbuf_append_char(&msg, '\0');
	tbuf_append_str(&msg, l->authcid);
	tbuf_append_char(&msg, '\0');
	tbuf_append_str(&msg, l->password);
	auth_b64_encode(msg.data, msg.len, &b64);
	tbuf_append(out, b64.data, b64.len);
	OPENSSL_cleanse(msg.data, msg.len);
	OPENSSL_cleanse(b64.data, b64.len);
	tbuf_free(&msg);
	tbuf_free(&b64);
	proxy_login_clear(l);
}

/* "TAG rest": 1 when line carries tag, with *rest_r after "TAG ". */
static int tagged(const char *line, const char *tag, const char **rest_r)
{
	size_t n = strlen(tag);

	if (strncmp(line, tag, n) != 0 || line[n] != ' ')
		return 0;
	*rest_r = line + n + 1;
	return 1;
}

static int imap_step(proxy_login *l, const char *line, tbuf *out, const char **reply_r)
{
	const char *rest;

	switch (l->state) {
	case L_GREETING:
		if (strncasecmp(line, "* OK", 4) != 0)
			return finish(l, PROXY_STEP_FAIL, "unexpected greeting: ", line, reply_r);
		tbuf_append_str(out, "P1 STARTTLS\r\n");
		l->state = L_STARTTLS;
		return PROXY_STEP_MORE;
	case L_STARTTLS:
		if (line[0] == '*')
			return PROXY_STEP_MORE;
		if (!tagged(line, "P1", &rest))
			return finish(l, PROXY_STEP_FAIL, "unexpected answer to STARTTLS: ", line, reply_r);
		if (strncasecmp(rest, "OK", 2) != 0)
			return finish(l, PROXY_STEP_FAIL, "STARTTLS refused: ", rest, reply_r);
		l->state = L_TLS;
		return PROXY_STEP_TLS;
	case L_TLS:
		if (line != NULL)
			return finish(l, PROXY_STEP_FAIL, "data before the TLS handshake: ", line, reply_r);
		tbuf_appendf(out, "P2 ID (\"x-originating-ip\" \"%s\" \"x-originating-port\" \"%u\")\r\n",
			     l->client_ip, l->client_port);
		tbuf_append_str(out, "P3 AUTHENTICATE PLAIN ");
		plain_response(l, out);
		tbuf_append_str(out, "\r\n");
		l->state = L_AUTH;
		return PROXY_STEP_MORE;
	case L_AUTH:
		if (line[0] == '*' || tagged(line, "P2", &rest))
			return PROXY_STEP_MORE;        /* ID's answer, whatever it is */
		if (!tagged(line, "P3", &rest))
			return finish(l, PROXY_STEP_FAIL, "unexpected answer to AUTHENTICATE: ", line, reply_r);
		if (strncasecmp(rest, "OK", 2) != 0)
			return finish(l, PROXY_STEP_FAIL, "node login refused: ", rest, reply_r);
		return finish(l, PROXY_STEP_DONE, "", rest, reply_r);
	default:
		return finish(l, PROXY_STEP_FAIL, "login already over", NULL, reply_r);
	}
}

static int pop3_step(proxy_login *l, const char *line, tbuf *out, const char **reply_r)
{
	switch (l->state) {
	case L_GREETING:
		if (strncmp(line, "+OK", 3) != 0)
			return finish(l, PROXY_STEP_FAIL, "unexpected greeting: ", line, reply_r);
		tbuf_append_str(out, "STLS\r\n");
		l->state = L_STARTTLS;
		return PROXY_STEP_MORE;
	case L_STARTTLS:
		if (strncmp(line, "+OK", 3) != 0)
			return finish(l, PROXY_STEP_FAIL, "STLS refused: ", line, reply_r);
		l->state = L_TLS;
		return PROXY_STEP_TLS;
	case L_TLS:
		if (line != NULL)
			return finish(l, PROXY_STEP_FAIL, "data before the TLS handshake: ", line, reply_r);
		tbuf_append_str(out, "AUTH PLAIN ");
		plain_response(l, out);
		tbuf_append_str(out, "\r\n");
		l->state = L_AUTH;
		return PROXY_STEP_MORE;
	case L_AUTH:
		if (strncmp(line, "+OK", 3) == 0)
			return finish(l, PROXY_STEP_DONE, "", line, reply_r);
		return finish(l, PROXY_STEP_FAIL, "node login refused: ", line, reply_r);
	default:
		return finish(l, PROXY_STEP_FAIL, "login already over", NULL, reply_r);
	}
}

int proxy_login_step(proxy_login *l, const char *line, tbuf *out, const char **reply_r)
{
	*reply_r = NULL;
	if (line == NULL && l->state != L_TLS)
		return finish(l, PROXY_STEP_FAIL, "TLS started out of turn", NULL, reply_r);
	return l->proto == PROXY_IMAP ? imap_step(l, line, out, reply_r) : pop3_step(l, line, out, reply_r);
}

void proxy_login_clear(proxy_login *l)
{
	OPENSSL_cleanse(l->password, sizeof(l->password));
}
