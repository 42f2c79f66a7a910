/* admin_gal.c - GET /api/v1/gal?domain=D: the domain's Global Address List (users with a
 * full name that are published, published groups with an address), for `ternctl gal`. */
#include "admin_private.h"

void adm_gal_list(admin_req *r)
{
	char dom[256];
	if (admin_query_domain(r, dom, sizeof(dom)) < 0)
		return;
	store_gal_entry *list = NULL;
	size_t n = 0;
	int rc = store_gal_list(r->st, dom, &list, &n);
	if (rc != STORE_OK) {
		admin_store_error(r, rc, NULL);
		return;
	}
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s}", "name", list[i].name,
						   "address", list[i].address, "kind",
						   list[i].is_group ? "group" : "user", "full_name",
						   list[i].full_name));
	store_gal_free(&list, n);
	admin_reply_json(r, 200, a);
}
