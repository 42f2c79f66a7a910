/* store_gal.c - the Global Address List of a domain, read from its users and groups: what
 * the guide publishes (users with a full name and "Publish in GAL", groups with the flag
 * and an address). A read-only view; nothing is stored for it. */
#include "store_private.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *join_address(const char *local, const char *domain)
{
	size_t n = strlen(local) + strlen(domain) + 2;
	char *s = malloc(n);

	if (s == NULL)
		abort();
	if (snprintf(s, n, "%s@%s", local, domain) >= (int)n)
		abort();
	return s;
}

static char *dup_or_abort(const char *s)
{
	char *d = strdup(s != NULL ? s : "");

	if (d == NULL)
		abort();
	return d;
}

static int cmp_entry(const void *a, const void *b)
{
	const store_gal_entry *x = a, *y = b;

	return strcasecmp(x->address, y->address);
}

/* Append one entry to the growing array (*list, *n, *cap). */
static void add_entry(store_gal_entry **list, size_t *n, size_t *cap, const char *name,
		      char *address, const char *full_name, int is_group)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*list = realloc(*list, *cap * sizeof(**list));
		if (*list == NULL)
			abort();
	}
	store_gal_entry *e = &(*list)[(*n)++];
	e->name = dup_or_abort(name);
	e->address = address;
	e->full_name = dup_or_abort(full_name);
	e->is_group = is_group;
}

int store_gal_list(store *st, const char *domain, store_gal_entry **list_r, size_t *n_r)
{
	Tern__User **users = NULL;
	Tern__Group **groups = NULL;
	size_t nu = 0, ng = 0, n = 0, cap = 0;
	store_gal_entry *list = NULL;
	int rc;

	*list_r = NULL;
	*n_r = 0;
	if ((rc = store_user_list(st, domain, &users, &nu)) != STORE_OK)
		return rc;
	if ((rc = store_group_list(st, domain, &groups, &ng)) != STORE_OK) {
		store_free_list((void **)users, nu);
		return rc;
	}
	for (size_t i = 0; i < nu; i++) {
		const Tern__User *u = users[i];
		if (!u->publish_in_gal || u->full_name == NULL || u->full_name[0] == '\0')
			continue;
		add_entry(&list, &n, &cap, u->name, join_address(u->name, u->domain), u->full_name, 0);
	}
	for (size_t i = 0; i < ng; i++) {
		const Tern__Group *g = groups[i];
		if (!g->publish_in_gal || g->n_addresses == 0)
			continue;
		add_entry(&list, &n, &cap, g->name, join_address(g->addresses[0], g->domain), g->name, 1);
	}
	store_free_list((void **)users, nu);
	store_free_list((void **)groups, ng);
	if (n > 1)
		qsort(list, n, sizeof(*list), cmp_entry);
	*list_r = list;
	*n_r = n;
	return STORE_OK;
}

void store_gal_free(store_gal_entry **list, size_t n)
{
	if (*list == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free((*list)[i].name);
		free((*list)[i].address);
		free((*list)[i].full_name);
	}
	free(*list);
	*list = NULL;
}
