/* ternctl_http.c - a small HTTP/1.1 client for the admin API: one request per connection,
 * over the node's Unix socket or over HTTPS pinned to the certificate's SHA-256.
 * Responses are framed by Content-Length, chunked encoding or the close, and bounded. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "ternctl.h"

/* A connection: a plain socket, with TLS on top for remote nodes. */
typedef struct ctl_io {
	int fd;
	SSL_CTX *ssl_ctx;
	SSL *ssl;
} ctl_io;

static char *error_dup(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A malloc'd message for *error_r. */
static char *error_dup(const char *fmt, ...)
{
	tbuf b = TBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	tbuf_vappendf(&b, fmt, ap);
	va_end(ap);
	return tbuf_steal(&b);
}

/* The last OpenSSL error as text, for messages. */
static const char *ssl_error_text(void)
{
	static char text[256];
	unsigned long e = ERR_get_error();
	if (!e)
		return "connection closed during the TLS handshake";
	ERR_error_string_n(e, text, sizeof text);
	return text;
}

int ctl_parse_fingerprint(const char *text, unsigned char out[32])
{
	char hex[65];
	size_t n = 0;
	for (const char *p = text; *p; p++) {
		if (*p == ':' || *p == ' ')
			continue;
		if (!isxdigit((unsigned char)*p) || n >= 64)
			return -1;
		hex[n++] = (char)tolower((unsigned char)*p);
	}
	if (n != 64)
		return -1;
	hex[n] = '\0';
	return tern_unhex(hex, out, 32);
}

void ctl_target_free(ctl_target *t)
{
	free(t->host);
	t->host = NULL;
	if (t->authorization) {
		OPENSSL_cleanse(t->authorization, strlen(t->authorization));
		free(t->authorization);
		t->authorization = NULL;
	}
}

void ctl_response_free(ctl_response *resp)
{
	tbuf_free(&resp->body);
}

/* Send and receive time limits so a stuck node cannot hang a script forever. */
static void set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = CTL_IO_TIMEOUT_S };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* Connect to DATA/admin.sock. A missing socket or a refused connection means the node is
 * not running. */
static int connect_unix(const ctl_target *t, int *fd_r, char **error_r)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = strlen(t->sock_path);
	if (n >= sizeof sa.sun_path) {
		*error_r = error_dup("the socket path %s is too long", t->sock_path);
		return CTL_HTTP_ERROR;
	}
	memcpy(sa.sun_path, t->sock_path, n + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = error_dup("socket: %s", strerror(errno));
		return CTL_HTTP_ERROR;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		close(fd);
		if (e == ENOENT || e == ECONNREFUSED || e == ENOTDIR)
			return CTL_HTTP_DOWN;
		*error_r = error_dup("cannot connect to %s: %s", t->sock_path, strerror(e));
		return CTL_HTTP_ERROR;
	}
	set_timeouts(fd);
	*fd_r = fd;
	return 0;
}

/* Non-blocking connect bounded by CTL_CONNECT_TIMEOUT_S. 0 ok, else the errno. */
static int connect_timed(int fd, const struct sockaddr *sa, socklen_t len)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return errno;
	if (connect(fd, sa, len) < 0) {
		if (errno != EINPROGRESS)
			return errno;
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int r = poll(&p, 1, CTL_CONNECT_TIMEOUT_S * 1000);
		if (r == 0)
			return ETIMEDOUT;
		if (r < 0)
			return errno;
		int err = 0;
		socklen_t el = sizeof err;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			return errno;
		if (err)
			return err;
	}
	if (fcntl(fd, F_SETFL, fl) < 0)
		return errno;
	return 0;
}

/* Connect TCP to host:port, trying every address. */
static int connect_tcp(const ctl_target *t, int *fd_r, char **error_r)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(t->host, t->port, &hints, &res);
	if (gai) {
		*error_r = error_dup("cannot resolve %s: %s", t->host, gai_strerror(gai));
		return CTL_HTTP_ERROR;
	}
	int last = ECONNREFUSED;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			last = errno;
			continue;
		}
		last = connect_timed(fd, ai->ai_addr, ai->ai_addrlen);
		if (last == 0) {
			freeaddrinfo(res);
			set_timeouts(fd);
			*fd_r = fd;
			return 0;
		}
		close(fd);
	}
	freeaddrinfo(res);
	if (last == ECONNREFUSED)
		return CTL_HTTP_DOWN;
	*error_r = error_dup("cannot connect to %s: %s", t->where, strerror(last));
	return CTL_HTTP_ERROR;
}

/* Compare the peer certificate's SHA-256 with the pin. */
static int check_pin(const ctl_target *t, SSL *ssl, char **error_r)
{
	X509 *cert = SSL_get1_peer_certificate(ssl);
	if (!cert) {
		*error_r = error_dup("%s sent no certificate", t->where);
		return CTL_HTTP_ERROR;
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int ok = X509_digest(cert, EVP_sha256(), md, &mdlen);
	X509_free(cert);
	if (!ok || mdlen != 32) {
		*error_r = error_dup("cannot hash the certificate of %s", t->where);
		return CTL_HTTP_ERROR;
	}
	if (CRYPTO_memcmp(md, t->pin, 32) != 0) {
		char got[65], want[65];
		tern_hex(md, 32, got);
		tern_hex(t->pin, 32, want);
		*error_r = error_dup("certificate fingerprint mismatch for %s: the server presented %s, "
				     "expected %s", t->where, got, want);
		return CTL_HTTP_ERROR;
	}
	return 0;
}

/* TLS handshake; verification by pin when one is given, else by the system CAs and the
 * host name (or IP address). */
static int start_tls(const ctl_target *t, ctl_io *io, char **error_r)
{
	io->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (!io->ssl_ctx) {
		*error_r = error_dup("TLS: %s", ssl_error_text());
		return CTL_HTTP_ERROR;
	}
	SSL_CTX_set_min_proto_version(io->ssl_ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(io->ssl_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(io->ssl_ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_AUTO_RETRY);
	if (t->has_pin) {
		SSL_CTX_set_verify(io->ssl_ctx, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_CTX_set_default_verify_paths(io->ssl_ctx);
		SSL_CTX_set_verify(io->ssl_ctx, SSL_VERIFY_PEER, NULL);
	}
	io->ssl = SSL_new(io->ssl_ctx);
	if (!io->ssl || !SSL_set_fd(io->ssl, io->fd)) {
		*error_r = error_dup("TLS: %s", ssl_error_text());
		return CTL_HTTP_ERROR;
	}
	unsigned char addr[16];
	int is_ip = inet_pton(AF_INET, t->host, addr) == 1 || inet_pton(AF_INET6, t->host, addr) == 1;
	if (!is_ip)
		SSL_set_tlsext_host_name(io->ssl, t->host);
	if (!t->has_pin) {
		int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(io->ssl), t->host)
			       : SSL_set1_host(io->ssl, t->host);
		if (!ok) {
			*error_r = error_dup("TLS: cannot set the expected name %s", t->host);
			return CTL_HTTP_ERROR;
		}
	}
	if (SSL_connect(io->ssl) != 1) {
		long vr = SSL_get_verify_result(io->ssl);
		if (!t->has_pin && vr != X509_V_OK)
			*error_r = error_dup("the certificate of %s is not trusted: %s "
					     "(self-signed? pass --fingerprint SHA256)", t->where,
					     X509_verify_cert_error_string(vr));
		else
			*error_r = error_dup("TLS handshake with %s failed: %s", t->where,
					     ssl_error_text());
		return CTL_HTTP_ERROR;
	}
	return t->has_pin ? check_pin(t, io->ssl, error_r) : 0;
}

static void io_close(ctl_io *io)
{
	if (io->ssl) {
		SSL_shutdown(io->ssl);
		SSL_free(io->ssl);
		io->ssl = NULL;
	}
	if (io->ssl_ctx) {
		SSL_CTX_free(io->ssl_ctx);
		io->ssl_ctx = NULL;
	}
	if (io->fd >= 0) {
		close(io->fd);
		io->fd = -1;
	}
}

/* Write everything. 0 ok, -1 on error. */
static int io_write_all(ctl_io *io, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w;
		if (io->ssl) {
			size_t done = 0;
			w = SSL_write_ex(io->ssl, p, n, &done) == 1 ? (ssize_t)done : -1;
		} else {
			w = send(io->fd, p, n, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
		}
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read some bytes: >0 count, 0 at the end of the stream, -1 on error. */
static ssize_t io_read(ctl_io *io, char *p, size_t n)
{
	if (io->ssl) {
		size_t got = 0;
		if (SSL_read_ex(io->ssl, p, n, &got) == 1)
			return (ssize_t)got;
		int e = SSL_get_error(io->ssl, 0);
		return e == SSL_ERROR_ZERO_RETURN ? 0 : (e == SSL_ERROR_SYSCALL && errno == 0 ? 0 : -1);
	}
	for (;;) {
		ssize_t r = recv(io->fd, p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		return r;
	}
}

/* Incremental decoder for Transfer-Encoding: chunked. */
typedef struct chunk_state {
	enum { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER, CH_DONE } st;
	uint64_t left;
} chunk_state;

/* The offset of the first CRLF in b, or -1. */
static ssize_t find_crlf(const tbuf *b)
{
	const char *p = b->len ? memmem(b->data, b->len, "\r\n", 2) : NULL;
	return p ? p - b->data : -1;
}

/* Decode what in holds (consuming it) into out: 1 complete, 0 need more, -1 malformed. */
static int chunk_step(chunk_state *cs, tbuf *in, tbuf *out)
{
	for (;;) {
		ssize_t eol;
		switch (cs->st) {
		case CH_SIZE:
			if ((eol = find_crlf(in)) < 0)
				return in->len > 1024 ? -1 : 0;
			{
				char *end = NULL;
				errno = 0;
				unsigned long long v = strtoull(in->data, &end, 16);
				if (end == in->data || errno || (*end != ';' && *end != '\r' && *end != ' '))
					return -1;
				if (v > CTL_MAX_RESPONSE)
					return -1;
				cs->left = v;
			}
			tbuf_consume(in, (size_t)eol + 2);
			cs->st = cs->left ? CH_DATA : CH_TRAILER;
			break;
		case CH_DATA: {
			size_t n = in->len < cs->left ? in->len : (size_t)cs->left;
			if (out->len + n > CTL_MAX_RESPONSE)
				return -1;
			tbuf_append(out, in->data, n);
			tbuf_consume(in, n);
			cs->left -= n;
			if (cs->left)
				return 0;
			cs->st = CH_DATA_END;
			break;
		}
		case CH_DATA_END:
			if (in->len < 2)
				return 0;
			if (memcmp(in->data, "\r\n", 2) != 0)
				return -1;
			tbuf_consume(in, 2);
			cs->st = CH_SIZE;
			break;
		case CH_TRAILER:
			if ((eol = find_crlf(in)) < 0)
				return in->len > 8192 ? -1 : 0;
			tbuf_consume(in, (size_t)eol + 2);
			if (eol == 0) {
				cs->st = CH_DONE;
				return 1;
			}
			break;
		case CH_DONE:
			return 1;
		}
	}
}

/* Framing found in the response head. */
typedef struct head_info {
	int chunked;
	int has_length;
	uint64_t length;
} head_info;

/* Parse the status line and the headers we need. 0 ok, -1 malformed. */
static int parse_head(const char *head, size_t len, ctl_response *resp, head_info *hi)
{
	if (len < 12 || strncmp(head, "HTTP/1.", 7) != 0 || head[8] != ' ')
		return -1;
	if (!isdigit((unsigned char)head[9]) || !isdigit((unsigned char)head[10]) ||
	    !isdigit((unsigned char)head[11]))
		return -1;
	resp->status = (head[9] - '0') * 100 + (head[10] - '0') * 10 + (head[11] - '0');
	const char *p = memmem(head, len, "\r\n", 2);
	const char *end = head + len;
	while (p && p + 2 < end) {
		const char *line = p + 2;
		const char *eol = memmem(line, (size_t)(end - line), "\r\n", 2);
		if (!eol)
			eol = end;
		const char *colon = memchr(line, ':', (size_t)(eol - line));
		if (colon) {
			size_t nlen = (size_t)(colon - line);
			const char *v = colon + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			size_t vlen = (size_t)(eol - v);
			if (nlen == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
				char num[32];
				if (vlen == 0 || vlen >= sizeof num)
					return -1;
				memcpy(num, v, vlen);
				num[vlen] = '\0';
				char *e = NULL;
				errno = 0;
				unsigned long long n = strtoull(num, &e, 10);
				if (errno || (*e && *e != ' '))
					return -1;
				hi->has_length = 1;
				hi->length = n;
			} else if (nlen == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
				if (vlen >= 7 && strncasecmp(v + vlen - 7, "chunked", 7) == 0)
					hi->chunked = 1;
			} else if (nlen == 12 && strncasecmp(line, "Content-Type", 12) == 0) {
				size_t n = vlen < sizeof resp->content_type - 1 ? vlen
									 : sizeof resp->content_type - 1;
				memcpy(resp->content_type, v, n);
				resp->content_type[n] = '\0';
			}
		}
		p = eol < end ? eol : NULL;
	}
	if (hi->chunked && hi->has_length)
		return -1;
	if (hi->has_length && hi->length > CTL_MAX_RESPONSE)
		return -1;
	return 0;
}

/* Read the response: head, then the body by its framing. */
static int read_response(ctl_io *io, const ctl_target *t, ctl_response *resp, char **error_r)
{
	tbuf in = TBUF_INIT;
	char chunk[16384];
	ssize_t n;
	const char *hend = NULL;
	while (!(hend = in.len ? memmem(in.data, in.len, "\r\n\r\n", 4) : NULL)) {
		if (in.len > CTL_MAX_HEAD)
			goto bad;
		if ((n = io_read(io, chunk, sizeof chunk)) <= 0) {
			tbuf_free(&in);
			*error_r = error_dup(n == 0 ? "%s closed the connection without an answer"
						    : "reading the answer of %s failed", t->where);
			return CTL_HTTP_ERROR;
		}
		tbuf_append(&in, chunk, (size_t)n);
	}
	head_info hi = { 0 };
	size_t hlen = (size_t)(hend - in.data) + 4;
	if (parse_head(in.data, hlen - 2, resp, &hi) < 0)
		goto bad;
	tbuf_consume(&in, hlen);

	chunk_state cs = { .st = CH_SIZE };
	for (;;) {
		if (hi.chunked) {
			int r = chunk_step(&cs, &in, &resp->body);
			if (r < 0)
				goto bad;
			if (r == 1)
				break;
		} else {
			if (in.len) {
				if (resp->body.len + in.len > CTL_MAX_RESPONSE)
					goto bad;
				tbuf_append(&resp->body, in.data, in.len);
				tbuf_reset(&in);
			}
			if (hi.has_length && resp->body.len >= hi.length) {
				tbuf_truncate(&resp->body, (size_t)hi.length);
				break;
			}
		}
		if ((n = io_read(io, chunk, sizeof chunk)) < 0) {
			tbuf_free(&in);
			*error_r = error_dup("reading the answer of %s failed", t->where);
			return CTL_HTTP_ERROR;
		}
		if (n == 0) {
			if (hi.chunked || hi.has_length) {
				tbuf_free(&in);
				*error_r = error_dup("the answer of %s was cut short", t->where);
				return CTL_HTTP_ERROR;
			}
			break;
		}
		tbuf_append(&in, chunk, (size_t)n);
	}
	tbuf_free(&in);
	return 0;
bad:
	tbuf_free(&in);
	*error_r = error_dup("%s sent a malformed or too large HTTP answer", t->where);
	return CTL_HTTP_ERROR;
}

int ctl_http(const ctl_target *t, const char *method, const char *path,
	     const char *content_type, const void *body, size_t body_len,
	     ctl_response *resp, char **error_r)
{
	ctl_io io = { .fd = -1 };
	memset(resp, 0, sizeof *resp);
	int r = t->remote ? connect_tcp(t, &io.fd, error_r) : connect_unix(t, &io.fd, error_r);
	if (r < 0)
		return r;
	if (t->remote && (r = start_tls(t, &io, error_r)) < 0) {
		io_close(&io);
		return r;
	}
	tbuf req = TBUF_INIT;
	tbuf_appendf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ternctl/%s\r\n"
		     "Accept: application/json\r\nConnection: close\r\n",
		     method, path, t->remote ? t->host : "localhost", TERN_VERSION);
	if (t->authorization)
		tbuf_appendf(&req, "Authorization: %s\r\n", t->authorization);
	if (body || strcmp(method, "GET") != 0) {
		tbuf_appendf(&req, "Content-Length: %zu\r\n", body_len);
		if (content_type)
			tbuf_appendf(&req, "Content-Type: %s\r\n", content_type);
	}
	tbuf_append_str(&req, "\r\n");
	if (body_len)
		tbuf_append(&req, body, body_len);
	r = io_write_all(&io, req.data, req.len);
	OPENSSL_cleanse(req.data, req.len);
	tbuf_free(&req);
	if (r < 0) {
		io_close(&io);
		*error_r = error_dup("sending the request to %s failed", t->where);
		return CTL_HTTP_ERROR;
	}
	r = read_response(&io, t, resp, error_r);
	io_close(&io);
	if (r < 0)
		tbuf_free(&resp->body);
	return r;
}
