/* cluster_cred.c - node-to-node logins and home lookups: what routing (SMTP relay between
 * nodes) and proxying (IMAP/POP3 logins at a node that is not the user's home) ask of the
 * distributed domain. Reads the store only; safe from any thread. */
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "buf.h"
#include "cluster.h"

#define CRED_LEN 32

int cluster_node_login(store *st, const char *node_name, char *authcid, size_t an,
		       char *password, size_t pn)
{
	Tern__ClusterSelf *self = NULL;
	int rc = -1;

	if (store_cluster_self_get(st, &self) != STORE_OK)
		return -1;
	if (self->role != TERN__CLUSTER_SELF__ROLE__STANDALONE && self->credential.len == CRED_LEN &&
	    pn > 2 * CRED_LEN) {
		int w = snprintf(authcid, an, "%s%s", CLUSTER_NODE_AUTHCID_PREFIX, node_name);

		if (w > 0 && (size_t)w < an) {
			tern_hex(self->credential.data, CRED_LEN, password);
			rc = 0;
		}
	}
	store_free_record(self);
	return rc;
}

int cluster_check_node_login(store *st, const char *authcid, const char *password)
{
	size_t plen = strlen(CLUSTER_NODE_AUTHCID_PREFIX);
	uint8_t cred[CRED_LEN], hash[SHA256_DIGEST_LENGTH];
	Tern__Node *n = NULL;
	int ok = 0;

	if (authcid == NULL || password == NULL || strncmp(authcid, CLUSTER_NODE_AUTHCID_PREFIX, plen) != 0)
		return 0;
	if (tern_unhex(password, cred, sizeof(cred)) < 0)
		return 0;
	if (store_node_get(st, authcid + plen, &n) != STORE_OK)
		return 0;
	SHA256(cred, sizeof(cred), hash);
	ok = n->credential_hash.len == sizeof(hash) &&
	     CRYPTO_memcmp(n->credential_hash.data, hash, sizeof(hash)) == 0;
	OPENSSL_cleanse(cred, sizeof(cred));
	store_free_record(n);
	return ok;
}

int cluster_node_find(store *st, const char *name, Tern__Node **n_r)
{
	return store_node_get(st, name, n_r);
}

int cluster_user_home(store *st, const char *address, char *home_r, size_t n)
{
	Tern__User *u = NULL;
	const char *self = store_node_name(st);
	int rc = store_user_find(st, address, &u);

	if (rc == STORE_ENOTFOUND)
		return 0;
	if (rc != STORE_OK)
		return rc;
	char home[128];

	/* A home of "" is the master's (store_home_node). */
	store_home_node(st, u->home, home, sizeof(home));
	rc = 0;
	if (home[0] != '\0' && (self == NULL || strcasecmp(home, self) != 0)) {
		int w = snprintf(home_r, n, "%s", home);

		rc = w > 0 && (size_t)w < n ? 1 : STORE_EINVAL;
	}
	store_free_record(u);
	return rc;
}
