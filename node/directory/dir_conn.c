/* dir_conn.c - one lm_conn per auth worker thread and mapped domain (ldapmap.h: a handle
 * serves one thread). A connection is tied to a fingerprint of the mapping it was made
 * for, so an admin's change reconnects on the next use; errors drop it. The list is
 * freed by a thread-specific destructor when the pool's thread ends. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/sha.h>
#include "dir_private.h"

typedef struct dir_tconn {
	struct dir_tconn *next;
	char domain[256];
	uint64_t fp;              /* dir_mapping_fp of the mapping c was made for */
	lm_conn *c;
} dir_tconn;

static pthread_key_t conn_key;
static pthread_once_t conn_once = PTHREAD_ONCE_INIT;

static void conns_free(void *p)
{
	dir_tconn *t = p;

	while (t != NULL) {
		dir_tconn *next = t->next;

		lm_close(&t->c);
		free(t);
		t = next;
	}
}

static void conn_key_make(void)
{
	if (pthread_key_create(&conn_key, conns_free) != 0)
		abort();
}

/* The one fingerprint of a mapping (dir_private.h): the first 64 bits of the SHA-256 of
 * the record packed without its sync stamps, so a poll (new stamps) is no change while
 * any setting an admin changes is. */
uint64_t dir_mapping_fp(const Tern__DirectoryConfig *c)
{
	Tern__DirectoryConfig copy = *c;
	unsigned char md[SHA256_DIGEST_LENGTH];
	uint64_t fp = 0;

	copy.last_poll_stamp = 0;
	copy.last_reconcile = 0;
	size_t n = protobuf_c_message_get_packed_size(&copy.base);
	uint8_t *p = malloc(n ? n : 1);
	if (p == NULL)
		abort();
	protobuf_c_message_pack(&copy.base, p);
	SHA256(p, n, md);
	free(p);
	for (size_t i = 0; i < sizeof(fp); i++)
		fp = fp << 8 | md[i];
	return fp;
}

static dir_tconn *conn_find(const char *domain)
{
	pthread_once(&conn_once, conn_key_make);
	for (dir_tconn *t = pthread_getspecific(conn_key); t != NULL; t = t->next)
		if (strcasecmp(t->domain, domain) == 0)
			return t;
	return NULL;
}

lm_conn *dir_conn_get(directory *d, const Tern__DirectoryConfig *c, char **error_r)
{
	const char *domain = c->domain ? c->domain : "";
	dir_tconn *t = conn_find(domain);
	uint64_t fp = dir_mapping_fp(c);

	*error_r = NULL;
	if (t != NULL && t->c != NULL && t->fp == fp)
		return t->c;
	if (t == NULL) {
		if (strlen(domain) >= sizeof(t->domain) || (t = calloc(1, sizeof(*t))) == NULL) {
			*error_r = strdup("bad domain");
			return NULL;
		}
		memcpy(t->domain, domain, strlen(domain) + 1);
		t->next = pthread_getspecific(conn_key);
		pthread_setspecific(conn_key, t);
	}
	lm_close(&t->c);
	char *password = NULL;
	const char *why = NULL;
	if (dir_secret_decrypt(d->env.data_dir, c, &password, &why) < 0) {
		*error_r = strdup(why);
		return NULL;
	}
	lm_config lc;
	dir_config_lm(c, d->env.conf, password, &lc);
	t->c = lm_connect(&lc, error_r);
	dir_password_free(&password);
	if (t->c != NULL)
		t->fp = fp;
	else if (*error_r == NULL)
		*error_r = strdup("cannot connect");
	return t->c;
}

void dir_conn_drop(const char *domain)
{
	dir_tconn *t = conn_find(domain);

	if (t != NULL)
		lm_close(&t->c);
}
