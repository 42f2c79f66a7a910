/* ternctl_resources.c - the resource commands (rooms and equipment, guide ch. 22):
 * add, list, show, set, remove over /api/v1/resources. */
#include <string.h>
#include "ternctl.h"

/* The JSON body of resource add/set from the options. */
static int resource_body(const ctl_args *a, json_t *o)
{
	const char *type = ctl_arg(a, "type");
	if (type != NULL) {
		if (strcmp(type, "room") != 0 && strcmp(type, "equipment") != 0) {
			ctl_err("--type must be room or equipment");
			return CTL_EXIT_USAGE;
		}
		json_object_set_new(o, "type", json_string(type));
	}
	if (ctl_flag(a, "unavailable") && ctl_flag(a, "available")) {
		ctl_err("--available and --unavailable exclude each other");
		return CTL_EXIT_USAGE;
	}
	if (ctl_flag(a, "unavailable"))
		json_object_set_new(o, "available", json_false());
	if (ctl_flag(a, "available"))
		json_object_set_new(o, "available", json_true());
	if (ctl_flag(a, "show-details"))
		json_object_set_new(o, "show_details", json_true());
	if (ctl_flag(a, "hide-details"))
		json_object_set_new(o, "show_details", json_false());
	if (ctl_flag(a, "no-manager"))
		json_object_set_new(o, "manager", json_null());
	ctl_opt_str(a, "manager", o, "manager");
	ctl_opt_str(a, "description", o, "description");
	ctl_opt_list(a, "bookable-by", o, "bookable_by");
	return 0;
}

int ctl_cmd_resource_add(ctl_ctx *ctx, const ctl_args *a)
{
	if (ctl_arg(a, "type") == NULL) {
		ctl_err("resource add needs --type room|equipment");
		return CTL_EXIT_USAGE;
	}
	json_t *o = json_pack("{s:s}", "address", a->pos[0]);
	int rc = resource_body(a, o);
	if (rc) {
		json_decref(o);
		return rc;
	}
	json_t *res;
	if ((rc = ctl_call(ctx, "POST", "/api/v1/resources", o, &res)))
		return rc;
	return ctl_done(ctx, res, "resource %s added", a->pos[0]);
}

int ctl_cmd_resource_list(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_column cols[] = {
		{ "ADDRESS", "address" }, { "TYPE", "type" }, { "AVAILABLE", "available" },
		{ "BOOKABLE BY", "bookable_by" }, { "MANAGER", "manager" }, { "DESCRIPTION", "description" },
		{ NULL, NULL }
	};
	return ctl_list_call(ctx, "resources", a->npos ? a->pos[0] : NULL, cols);
}

int ctl_cmd_resource_show(ctl_ctx *ctx, const ctl_args *a)
{
	return ctl_item_call(ctx, "GET", "resources", a->pos[0], NULL, NULL, NULL);
}

int ctl_cmd_resource_set(ctl_ctx *ctx, const ctl_args *a)
{
	return ctl_item_set(ctx, a, "resource", "resources", resource_body);
}

int ctl_cmd_resource_remove(ctl_ctx *ctx, const ctl_args *a)
{
	return ctl_item_remove(ctx, a, "resource", "resources");
}
