/* dir_principal.c - Kerberos principals to mail accounts (directory_map_principal):
 * the realm of a principal names the domain whose directory mapping has that realm,
 * since only the directory settings say which mail domain a Kerberos realm serves. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "directory.h"

/* auth_gssapi_map_fn of ternd's GSSAPI and Negotiate acceptors (directory.h). */
int directory_map_principal(void *arg, const char *principal, char *login_r, size_t n)
{
	store *st = arg;
	const char *at = strrchr(principal, '@');
	Tern__DirectoryConfig **list = NULL;
	size_t count = 0;
	int rc = -1;

	if (at == NULL || at == principal || at[1] == '\0' || memchr(principal, '/', (size_t)(at - principal)))
		return -1;
	if (store_directory_list(st, &list, &count) != STORE_OK)
		return -1;
	for (size_t i = 0; i < count; i++) {
		const Tern__DirectoryConfig *c = list[i];
		if (!c->enabled || c->realm == NULL || strcasecmp(c->realm, at + 1) != 0 || c->domain == NULL)
			continue;
		char address[512];
		int w = snprintf(address, sizeof(address), "%.*s@%s", (int)(at - principal), principal, c->domain);
		if (w < 0 || (size_t)w >= sizeof(address) || (size_t)w >= n)
			continue;
		tern_lower(address);
		Tern__User *u = NULL;
		int known = store_user_find(st, address, &u) == STORE_OK;
		store_free_record(u);
		if (rc < 0 || known)
			memcpy(login_r, address, (size_t)w + 1);
		rc = 0;
		if (known)
			break;
	}
	store_free_list((void **)list, count);
	return rc;
}
