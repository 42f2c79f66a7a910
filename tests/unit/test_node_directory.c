/* test_node_directory.c - node/directory without a directory server: the sealed bind
 * password and the node secret, the stored mapping (store_directory_*), the writers that
 * turn directory entries into mapped accounts, and the auth hook that sends mapped and
 * unknown logins - and only those - to the directory check, the lookup cache of that
 * check (cache_ttl) in front of a fake directory, the same check on a slave node (no
 * store writes), groups mapped before the mapped flag, and Kerberos principals mapped to
 * accounts (directory_map_principal). */
#include <sys/stat.h>
#include "store_test_util.h"
#include "auth_sasl.h"
#include "dir_private.h"

/* ---- the sealed password ---- */

static void test_secret(void **state)
{
	test_store *t = *state;
	Tern__DirectoryConfig c = TERN__DIRECTORY_CONFIG__INIT;
	char *clear = NULL, key[200];
	const char *why = NULL;
	struct stat sb;

	c.domain = (char *)"example.test";
	assert_int_equal(dir_secret_encrypt(t->dir, c.domain, "s3cret pass", &c.bind_password, &why), 0);
	/* the key file: 32 bytes, owner only */
	snprintf(key, sizeof(key), "%s/%s", t->dir, DIR_SECRET_KEY_FILE);
	assert_int_equal(stat(key, &sb), 0);
	assert_int_equal(sb.st_size, 32);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* never stored in clear */
	assert_null(memmem(c.bind_password.data, c.bind_password.len, "s3cret", 6));
	assert_int_equal(dir_secret_decrypt(t->dir, &c, &clear, &why), 0);
	assert_string_equal(clear, "s3cret pass");
	dir_password_free(&clear);
	assert_null(clear);
	/* bound to the domain: moved to another one it does not open */
	c.domain = (char *)"other.test";
	assert_int_equal(dir_secret_decrypt(t->dir, &c, &clear, &why), -1);
	assert_null(clear);
	/* tampered */
	c.domain = (char *)"example.test";
	c.bind_password.data[c.bind_password.len / 2] ^= 1;
	assert_int_equal(dir_secret_decrypt(t->dir, &c, &clear, &why), -1);
	free(c.bind_password.data);
	/* an empty field is an empty password */
	c.bind_password.data = NULL;
	c.bind_password.len = 0;
	assert_int_equal(dir_secret_decrypt(t->dir, &c, &clear, &why), 0);
	assert_string_equal(clear, "");
	dir_password_free(&clear);
}

static void test_names(void **state)
{
	Tern__DirectoryConfig__Type ty;
	Tern__DirectoryConfig__Tls tl;
	Tern__DirectoryConfig__Auth au;

	(void)state;
	assert_int_equal(dir_type_parse("AD", &ty), 0);
	assert_int_equal(ty, TERN__DIRECTORY_CONFIG__TYPE__AD);
	assert_string_equal(dir_type_name(TERN__DIRECTORY_CONFIG__TYPE__OD), "od");
	assert_int_equal(dir_tls_parse("starttls", &tl), 0);
	assert_int_equal(tl, TERN__DIRECTORY_CONFIG__TLS__STARTTLS);
	assert_int_equal(dir_auth_parse("bind", &au), 0);
	assert_int_equal(au, TERN__DIRECTORY_CONFIG__AUTH__BIND);
	assert_int_equal(dir_type_parse("nis", &ty), -1);
	assert_int_equal(dir_auth_parse(NULL, &au), -1);
}

/* ---- the stored mapping ---- */

static void test_store_mapping(void **state)
{
	test_store *t = *state;
	Tern__DirectoryConfig c = TERN__DIRECTORY_CONFIG__INIT, *got = NULL, **list = NULL;
	store_sync_result r;
	size_t n = 0;

	c.domain = (char *)"Example.TEST";
	c.server = (char *)"ldap.example.test:389";
	c.type = TERN__DIRECTORY_CONFIG__TYPE__AD;
	/* no such domain yet */
	assert_int_equal(store_directory_put(t->st, &c, STORE_SYNC, &r), STORE_ENOTFOUND);
	ts_add_domain(t->st);
	assert_int_equal(store_directory_put(t->st, &c, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_directory_get(t->st, "example.test", &got), STORE_OK);
	assert_string_equal(got->domain, "example.test");
	assert_string_equal(got->server, "ldap.example.test:389");
	assert_int_equal(got->type, TERN__DIRECTORY_CONFIG__TYPE__AD);
	store_free_record(got);
	/* a server is required */
	c.server = (char *)"";
	assert_int_equal(store_directory_put(t->st, &c, STORE_SYNC, &r), STORE_EINVAL);
	/* stamps change only the stamps */
	assert_int_equal(store_directory_stamp(t->st, "example.test", 20240102030405ull, 1700000000ull,
					       STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_directory_get(t->st, "EXAMPLE.test", &got), STORE_OK);
	assert_int_equal(got->last_poll_stamp, 20240102030405ull);
	assert_int_equal(got->last_reconcile, 1700000000ull);
	assert_string_equal(got->server, "ldap.example.test:389");
	store_free_record(got);
	assert_int_equal(store_directory_list(t->st, &list, &n), STORE_OK);
	assert_int_equal(n, 1);
	store_free_list((void **)list, n);
	assert_int_equal(store_directory_remove(t->st, "example.test", STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_directory_get(t->st, "example.test", &got), STORE_ENOTFOUND);
	assert_int_equal(store_directory_remove(t->st, "example.test", STORE_SYNC, &r), STORE_ENOTFOUND);
	assert_int_equal(store_directory_stamp(t->st, "example.test", 1, 1, STORE_SYNC, &r),
			 STORE_ENOTFOUND);
}

/* ---- directory entries as accounts ---- */

static void test_user_store(void **state)
{
	test_store *t = *state;
	char *addrs[] = { (char *)"john.smith", (char *)"jsmith", (char *)"bad local" };
	char *fwd[] = { (char *)"out@elsewhere.test" };
	lm_user u = { .dn = (char *)"cn=John,dc=example,dc=test", .login = (char *)"jsmith",
		      .full_name = (char *)"John Smith", .addresses = addrs, .naddresses = 3,
		      .enabled = 1, .has_mailbox = 1, .quota_bytes = 1048576, .forward = fwd,
		      .nforward = 1, .rights = TERN__RIGHTS__RIGHTS_READ_ONLY, .publish_gal = 1 };
	Tern__User *got = NULL;
	uint8_t id[16];

	ts_add_domain(t->st);
	assert_int_equal(dir_user_store(t->st, "example.test", &u), 0);
	assert_int_equal(store_user_find(t->st, "john.smith@example.test", &got), STORE_OK);
	assert_string_equal(got->name, "jsmith");
	assert_true(got->ldap);
	assert_true(got->enabled);
	assert_string_equal(got->full_name, "John Smith");
	assert_int_equal(got->n_addresses, 1);       /* itself and the bad one dropped */
	assert_int_equal(got->quota_bytes, 1048576);
	assert_int_equal(got->n_forward, 1);
	assert_int_equal(got->rights, TERN__RIGHTS__RIGHTS_READ_ONLY);
	assert_true(got->publish_in_gal);
	memcpy(id, got->id.data, 16);
	store_free_record(got);
	/* unchanged: nothing written, same account */
	assert_int_equal(dir_user_store(t->st, "example.test", &u), 0);
	/* ternPublishInGAL FALSE takes the user out of the GAL */
	u.publish_gal = 0;
	assert_int_equal(dir_user_store(t->st, "example.test", &u), 0);
	assert_int_equal(store_user_get(t->st, "example.test", "jsmith", &got), STORE_OK);
	assert_false(got->publish_in_gal);
	store_free_record(got);
	/* disabled in the directory (userAccountControl 514): disabled here, never deleted */
	u.enabled = 0;
	assert_int_equal(dir_user_store(t->st, "example.test", &u), 0);
	assert_int_equal(store_user_get(t->st, "example.test", "jsmith", &got), STORE_OK);
	assert_false(got->enabled);
	assert_memory_equal(got->id.data, id, 16);
	store_free_record(got);
	/* a disabled directory user never stored is not created */
	u.login = (char *)"ghost";
	u.naddresses = 0;
	assert_int_equal(dir_user_store(t->st, "example.test", &u), 1);
	assert_int_equal(store_user_get(t->st, "example.test", "ghost", &got), STORE_ENOTFOUND);
	/* a local account of the same name is left alone */
	ts_add_user(t->st, "local", 0, id);
	u.login = (char *)"local";
	u.enabled = 1;
	u.full_name = (char *)"Intruder";
	assert_int_equal(dir_user_store(t->st, "example.test", &u), 1);
	assert_int_equal(store_user_get(t->st, "example.test", "local", &got), STORE_OK);
	assert_false(got->ldap);
	assert_string_equal(got->full_name, "");
	store_free_record(got);
}

static int seen_none_but_ann(const char *name, void *arg)
{
	(void)arg;
	return strcmp(name, "ann") == 0;
}

static void test_reconcile(void **state)
{
	test_store *t = *state;
	lm_user ann = { .login = (char *)"ann", .enabled = 1, .has_mailbox = 1 };
	lm_user bob = { .login = (char *)"bob", .enabled = 1, .has_mailbox = 1 };
	Tern__User *got = NULL;
	uint8_t id[16];

	ts_add_domain(t->st);
	ts_add_user(t->st, "admin", 0, id);          /* local: never disabled */
	assert_int_equal(dir_user_store(t->st, "example.test", &ann), 0);
	assert_int_equal(dir_user_store(t->st, "example.test", &bob), 0);
	assert_int_equal(dir_user_disable_unseen(t->st, "example.test", seen_none_but_ann, NULL), 0);
	assert_int_equal(store_user_get(t->st, "example.test", "bob", &got), STORE_OK);
	assert_false(got->enabled);
	store_free_record(got);
	assert_int_equal(store_user_get(t->st, "example.test", "ann", &got), STORE_OK);
	assert_true(got->enabled);
	store_free_record(got);
	assert_int_equal(store_user_get(t->st, "example.test", "admin", &got), STORE_OK);
	assert_false(got->ldap);
	store_free_record(got);
}

static int seen_nothing(const char *name, void *arg)
{
	(void)name;
	(void)arg;
	return 0;
}

static void test_group_store(void **state)
{
	test_store *t = *state;
	char *gaddrs[] = { (char *)"sales-team" };
	lm_group g = { .dn = (char *)"cn=sales,dc=example,dc=test", .name = (char *)"sales",
		       .addresses = gaddrs, .naddresses = 1 };
	char *m1 = strdup("bob@example.test"), *m2 = strdup("ann@example.test");
	char *members[] = { m1, m2 };
	Tern__Group *got = NULL, local = TERN__GROUP__INIT;
	store_sync_result r;

	ts_add_domain(t->st);
	assert_int_equal(dir_group_store(t->st, "example.test", &g, members, 2), 0);
	assert_int_equal(store_group_find(t->st, "sales-team@example.test", &got), STORE_OK);
	assert_string_equal(got->description, DIR_GROUP_MARK);
	assert_int_equal(got->n_members, 2);
	assert_string_equal(got->members[0], "ann@example.test");   /* sorted */
	assert_true(got->ldap);
	/* an admin's description stays, and the group stays mapped */
	char *mark = got->description;
	got->description = (char *)"Sales people";
	assert_int_equal(store_group_update(t->st, got, STORE_SYNC, &r), STORE_OK);
	got->description = mark;
	store_free_record(got);
	assert_int_equal(dir_group_store(t->st, "example.test", &g, members, 2), 0);
	assert_int_equal(store_group_get(t->st, "example.test", "sales", &got), STORE_OK);
	assert_string_equal(got->description, "Sales people");
	assert_true(got->ldap);
	store_free_record(got);
	/* a local group of the same name is never touched or removed */
	local.name = (char *)"staff";
	local.domain = (char *)"example.test";
	assert_int_equal(store_group_add(t->st, &local, STORE_SYNC, &r), STORE_OK);
	g.name = (char *)"staff";
	g.naddresses = 0;
	assert_int_equal(dir_group_store(t->st, "example.test", &g, members, 2), 1);
	assert_int_equal(dir_group_remove_unseen(t->st, "example.test", seen_nothing, NULL), 0);
	assert_int_equal(store_group_get(t->st, "example.test", "sales", &got), STORE_ENOTFOUND);
	assert_int_equal(store_group_get(t->st, "example.test", "staff", &got), STORE_OK);
	assert_int_equal(got->n_members, 0);
	store_free_record(got);
	free(m1);
	free(m2);
}

/* ---- the auth hook ---- */

static int dir_calls;

static int fake_directory(void *ctx, const char *address, const char *password, char *account_r,
			  size_t account_n, const char **reason_r)
{
	(void)ctx;
	dir_calls++;
	if (strcmp(address, "down@example.test") == 0) {
		*reason_r = "directory unavailable";
		return AUTH_DIR_UNAVAILABLE;
	}
	if (strcmp(address, "jsmith@example.test") != 0 && strcmp(address, "newbie@example.test") != 0)
		return AUTH_DIR_NOT_MAPPED;
	if (strcmp(password, "kerb") != 0) {
		*reason_r = "bad credentials";
		return AUTH_DIR_REFUSED;
	}
	snprintf(account_r, account_n, "%s", address);
	return AUTH_DIR_OK;
}

static void test_auth_hook(void **state)
{
	test_store *t = *state;
	lm_user u = { .login = (char *)"jsmith", .enabled = 1, .has_mailbox = 1 };
	auth_lockout *lo = auth_lockout_new(3, 600);
	auth_sasl_env env = { .st = t->st, .lockout = lo };
	char account[400];
	const char *why = NULL;
	char *hash = NULL;
	Tern__ScramKeys scram = TERN__SCRAM_KEYS__INIT;
	Tern__User local = TERN__USER__INIT;
	store_sync_result r;

	ts_add_domain(t->st);
	assert_int_equal(dir_user_store(t->st, "example.test", &u), 0);
	assert_int_equal(auth_password_hash("localpw", &hash, &scram), 0);
	local.name = (char *)"admin";
	local.domain = (char *)"example.test";
	local.enabled = 1;
	local.password_hash = hash;
	local.scram = &scram;
	assert_int_equal(store_user_add(t->st, &local, STORE_SYNC, &r), STORE_OK);
	free(hash);
	auth_scram_clear(&scram);

	/* without a directory registered a mapped user cannot log in */
	assert_int_equal(auth_check_password(&env, "jsmith@example.test", "kerb", "10.0.0.1", account,
					     sizeof(account), &why), -1);
	auth_set_directory(fake_directory, NULL);
	dir_calls = 0;
	assert_int_equal(auth_check_password(&env, "jsmith@example.test", "kerb", "10.0.0.1", account,
					     sizeof(account), &why), 0);
	assert_string_equal(account, "jsmith@example.test");
	assert_int_equal(auth_check_password(&env, "jsmith", "wrong", "10.0.0.1", account, sizeof(account),
					     &why), -1);
	assert_string_equal(why, "bad credentials");
	/* a login unknown here goes to the directory (login miss) */
	assert_int_equal(auth_check_password(&env, "newbie@example.test", "kerb", "10.0.0.1", account,
					     sizeof(account), &why), 0);
	/* directory down: refused with the reason, and not counted toward the lockout */
	for (int i = 0; i < 5; i++)
		assert_int_equal(auth_check_password(&env, "down@example.test", "x", "10.0.0.1", account,
						     sizeof(account), &why), -1);
	assert_string_equal(why, "directory unavailable");
	assert_false(auth_lockout_is_locked(lo, "down@example.test", "10.0.0.1"));
	/* the local admin never reaches the directory */
	int before = dir_calls;
	assert_int_equal(auth_check_password(&env, "admin@example.test", "localpw", "10.0.0.1", account,
					     sizeof(account), &why), 0);
	assert_int_equal(dir_calls, before);
	/* lockout comes before the directory is asked */
	for (int i = 0; i < 3; i++)
		auth_check_password(&env, "jsmith", "wrong", "10.0.0.2", account, sizeof(account), &why);
	before = dir_calls;
	assert_int_equal(auth_check_password(&env, "jsmith", "kerb", "10.0.0.2", account, sizeof(account),
					     &why), -1);
	assert_string_equal(why, "bad credentials (account locked)");
	assert_int_equal(dir_calls, before);
	auth_set_directory(NULL, NULL);
	auth_lockout_free(&lo);
}

/* ---- the lookup cache of the password check ---- */

typedef struct fake_dir {
	int lookups;
	int enabled;                 /* what the directory says of jdoe */
	int present;
} fake_dir;

static int fake_find(void *arg, const char *login, lm_user **u_r, char **error_r)
{
	fake_dir *f = arg;

	*error_r = NULL;
	f->lookups++;
	if (!f->present || strcmp(login, "jdoe") != 0)
		return 1;
	lm_user *u = calloc(1, sizeof(*u));
	assert_non_null(u);
	u->dn = strdup("uid=jdoe,ou=people,dc=example,dc=test");
	u->login = strdup("jdoe");
	u->principal = strdup("jdoe@EXAMPLE.TEST");
	u->enabled = f->enabled;
	u->has_mailbox = 1;
	*u_r = u;
	return 0;
}

/* entry_at's logins as on a slave node of a distributed domain (dir_lookup.replica). */
static int as_replica;

/* One login as dir_check runs it, up to the password check: the stored account, then
 * dir_auth_entry. Returns the AUTH_DIR_* code; *asked_r 1 when the directory was asked. */
static int entry_at(store *st, fake_dir *f, int ttl, int64_t now, uint64_t mapping, int *asked_r)
{
	Tern__User *known = NULL;
	lm_user *u = NULL;
	const char *why = NULL;
	char *error = NULL;
	dir_lookup q = { .domain = "example.test", .login = "jdoe", .mapping = mapping, .ttl = ttl,
			 .now = now, .replica = as_replica };

	if (store_user_get(st, "example.test", "jdoe", &known) != STORE_OK)
		known = NULL;
	int rc = dir_auth_entry(st, known, &q, fake_find, f, &u, &why, asked_r, &error);
	if (rc == AUTH_DIR_OK) {
		assert_non_null(u);
		assert_string_equal(u->principal, "jdoe@EXAMPLE.TEST");
		assert_string_equal(u->dn, "uid=jdoe,ou=people,dc=example,dc=test");
	} else {
		assert_null(u);
	}
	if (rc == AUTH_DIR_REFUSED)
		assert_string_equal(why, f->present ? "bad credentials (account disabled)" : "bad credentials");
	lm_user_free(&u);
	free(error);
	store_free_record(known);
	return rc;
}

static void test_auth_cache(void **state)
{
	test_store *t = *state;
	fake_dir f = { .enabled = 1, .present = 1 };
	Tern__User *got = NULL;
	int asked;

	ts_add_domain(t->st);
	dir_cache_clear();
	/* two logins within the TTL: one lookup; the first wrote the new user */
	assert_int_equal(entry_at(t->st, &f, 60, 1000, 7, &asked), AUTH_DIR_OK);
	assert_int_equal(asked, 1);
	assert_int_equal(store_user_get(t->st, "example.test", "jdoe", &got), STORE_OK);
	assert_true(got->ldap && got->enabled);
	store_free_record(got);
	assert_int_equal(entry_at(t->st, &f, 60, 1059, 7, &asked), AUTH_DIR_OK);
	assert_int_equal(asked, 0);
	assert_int_equal(f.lookups, 1);
	/* after the TTL: asked again */
	assert_int_equal(entry_at(t->st, &f, 60, 1060, 7, &asked), AUTH_DIR_OK);
	assert_int_equal(f.lookups, 2);
	/* a changed mapping is a miss */
	assert_int_equal(entry_at(t->st, &f, 60, 1061, 8, &asked), AUTH_DIR_OK);
	assert_int_equal(f.lookups, 3);
	/* cache_ttl = 0: every login asks */
	assert_int_equal(entry_at(t->st, &f, 0, 1062, 8, &asked), AUTH_DIR_OK);
	assert_int_equal(entry_at(t->st, &f, 0, 1062, 8, &asked), AUTH_DIR_OK);
	assert_int_equal(f.lookups, 5);

	/* disabled in the directory: still trusted within the TTL, refused after it */
	f.enabled = 0;
	assert_int_equal(entry_at(t->st, &f, 60, 1100, 8, &asked), AUTH_DIR_OK);
	assert_int_equal(asked, 0);
	assert_int_equal(entry_at(t->st, &f, 60, 1121, 8, &asked), AUTH_DIR_REFUSED);
	assert_int_equal(asked, 1);
	assert_int_equal(store_user_get(t->st, "example.test", "jdoe", &got), STORE_OK);
	assert_false(got->enabled);
	store_free_record(got);
	/* the refusal is cached too */
	int before = f.lookups;
	assert_int_equal(entry_at(t->st, &f, 60, 1130, 8, &asked), AUTH_DIR_REFUSED);
	assert_int_equal(f.lookups, before);
	/* enabled again by a sync (the store moved): the stale refusal is not trusted */
	f.enabled = 1;
	lm_user again = { .login = (char *)"jdoe", .enabled = 1, .has_mailbox = 1 };
	assert_int_equal(dir_user_store(t->st, "example.test", &again), 0);
	assert_int_equal(entry_at(t->st, &f, 60, 1131, 8, &asked), AUTH_DIR_OK);
	assert_int_equal(asked, 1);
	/* a sync that disables the account drops the cached answer at once */
	f.enabled = 0;
	again.enabled = 0;
	assert_int_equal(dir_user_store(t->st, "example.test", &again), 0);
	assert_int_equal(entry_at(t->st, &f, 60, 1132, 8, &asked), AUTH_DIR_REFUSED);
	assert_int_equal(asked, 1);
	/* gone from the directory: refused, the entry dropped, asked each time */
	f.enabled = 1;
	f.present = 0;
	assert_int_equal(entry_at(t->st, &f, 60, 1200, 8, &asked), AUTH_DIR_REFUSED);
	before = f.lookups;
	assert_int_equal(entry_at(t->st, &f, 60, 1201, 8, &asked), AUTH_DIR_REFUSED);
	assert_int_equal(f.lookups, before + 1);
	dir_cache_clear();
}

/* A slave node (issue 6: the master maps, the accounts replicate): a login miss is not
 * looked up or written; a replicated mapped user is still checked against the directory,
 * and what the directory says (disabled, gone) refuses the login without a store write. */
static void test_auth_replica(void **state)
{
	test_store *t = *state;
	fake_dir f = { .enabled = 1, .present = 1 };
	Tern__User *got = NULL;
	int asked;

	ts_add_domain(t->st);
	dir_cache_clear();
	as_replica = 1;
	assert_int_equal(entry_at(t->st, &f, 60, 1000, 7, &asked), AUTH_DIR_NOT_MAPPED);
	assert_int_equal(asked, 0);
	assert_int_equal(f.lookups, 0);
	assert_int_equal(store_user_get(t->st, "example.test", "jdoe", &got), STORE_ENOTFOUND);
	/* the master maps jdoe (here: written as a replicated record would be) */
	as_replica = 0;
	assert_int_equal(entry_at(t->st, &f, 60, 1000, 7, &asked), AUTH_DIR_OK);
	assert_int_equal(store_user_get(t->st, "example.test", "jdoe", &got), STORE_OK);
	assert_true(got->enabled);
	store_free_record(got);
	as_replica = 1;
	assert_int_equal(entry_at(t->st, &f, 60, 1001, 7, &asked), AUTH_DIR_OK);
	/* disabled in the directory: refused after the TTL, the account is not written */
	f.enabled = 0;
	assert_int_equal(entry_at(t->st, &f, 60, 1100, 7, &asked), AUTH_DIR_REFUSED);
	assert_int_equal(asked, 1);
	assert_int_equal(store_user_get(t->st, "example.test", "jdoe", &got), STORE_OK);
	assert_true(got->enabled);
	store_free_record(got);
	/* gone from the directory: refused, still not written */
	f.enabled = 1;
	f.present = 0;
	assert_int_equal(entry_at(t->st, &f, 60, 1200, 7, &asked), AUTH_DIR_REFUSED);
	assert_int_equal(store_user_get(t->st, "example.test", "jdoe", &got), STORE_OK);
	assert_true(got->enabled);
	store_free_record(got);
	/* back: logs in */
	f.present = 1;
	assert_int_equal(entry_at(t->st, &f, 60, 1300, 7, &asked), AUTH_DIR_OK);
	as_replica = 0;
	/* this test store is standalone */
	assert_int_equal(dir_replica(t->st), 0);
	dir_cache_clear();
}

static int seen_sales(const char *name, void *arg)
{
	(void)arg;
	return strcmp(name, "sales") == 0;
}

/* Groups mapped before the mapped flag (f2bd54b) carry only the sync's description: the
 * sync takes them as mapped, sets the flag on the next write, and removes them when gone. */
static void test_group_upgrade(void **state)
{
	test_store *t = *state;
	Tern__Group old = TERN__GROUP__INIT, *got = NULL;
	store_sync_result r;
	char *m1 = strdup("bob@example.test");
	char *members[] = { m1 };
	lm_group g = { .dn = (char *)"cn=sales,dc=example,dc=test", .name = (char *)"sales" };

	ts_add_domain(t->st);
	old.domain = (char *)"example.test";
	old.description = (char *)DIR_GROUP_MARK;
	old.name = (char *)"sales";
	assert_int_equal(store_group_add(t->st, &old, STORE_SYNC, &r), STORE_OK);
	old.name = (char *)"retired";
	assert_int_equal(store_group_add(t->st, &old, STORE_SYNC, &r), STORE_OK);
	old.name = (char *)"local";
	old.description = (char *)"Local people";
	assert_int_equal(store_group_add(t->st, &old, STORE_SYNC, &r), STORE_OK);

	assert_int_equal(dir_group_store(t->st, "example.test", &g, members, 1), 0);
	assert_int_equal(store_group_get(t->st, "example.test", "sales", &got), STORE_OK);
	assert_true(got->ldap);
	assert_int_equal(got->n_members, 1);
	assert_string_equal(got->members[0], "bob@example.test");
	store_free_record(got);
	/* a reconcile that no longer sees "retired" removes it; the local group stays */
	assert_int_equal(dir_group_remove_unseen(t->st, "example.test", seen_sales, NULL), 0);
	assert_int_equal(store_group_get(t->st, "example.test", "retired", &got), STORE_ENOTFOUND);
	assert_int_equal(store_group_get(t->st, "example.test", "sales", &got), STORE_OK);
	store_free_record(got);
	assert_int_equal(store_group_get(t->st, "example.test", "local", &got), STORE_OK);
	assert_false(got->ldap);
	store_free_record(got);
	g.name = (char *)"local";
	assert_int_equal(dir_group_store(t->st, "example.test", &g, members, 1), 1);
	free(m1);
}

/* ---- Kerberos principals to accounts ---- */

static void add_mapping(store *st, const char *domain, const char *realm, int enabled)
{
	Tern__DirectoryConfig c = TERN__DIRECTORY_CONFIG__INIT;
	store_sync_result r;

	c.domain = (char *)domain;
	c.server = (char *)"127.0.0.1:389";
	c.realm = (char *)realm;
	c.enabled = enabled;
	assert_int_equal(store_directory_put(st, &c, STORE_SYNC, &r), STORE_OK);
}

static void test_map_principal(void **state)
{
	test_store *t = *state;
	Tern__Domain dom = TERN__DOMAIN__INIT;
	Tern__User u = TERN__USER__INIT;
	store_sync_result r;
	char login[320], small[12];

	ts_add_domain(t->st);
	dom.name = (char *)"second.test";
	assert_int_equal(store_domain_add(t->st, &dom, STORE_SYNC, &r), STORE_OK);
	dom.name = (char *)"off.test";
	assert_int_equal(store_domain_add(t->st, &dom, STORE_SYNC, &r), STORE_OK);
	/* no mapping at all */
	assert_int_equal(directory_map_principal(t->st, "alice@EXAMPLE.TEST", login, sizeof(login)), -1);
	add_mapping(t->st, "example.test", "EXAMPLE.TEST", 1);
	add_mapping(t->st, "second.test", "EXAMPLE.TEST", 1);
	add_mapping(t->st, "off.test", "OFF.TEST", 0);

	/* the realm names the domain; the realm's case does not matter, the login is lower */
	assert_int_equal(directory_map_principal(t->st, "Alice@EXAMPLE.TEST", login, sizeof(login)), 0);
	assert_true(strcmp(login, "alice@example.test") == 0 || strcmp(login, "alice@second.test") == 0);
	assert_int_equal(directory_map_principal(t->st, "alice@example.test", login, sizeof(login)), 0);
	/* two domains with the realm: the one where the account exists */
	u.name = (char *)"carl";
	u.domain = (char *)"second.test";
	u.enabled = 1;
	assert_int_equal(store_user_add(t->st, &u, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(directory_map_principal(t->st, "carl@EXAMPLE.TEST", login, sizeof(login)), 0);
	assert_string_equal(login, "carl@second.test");
	u.name = (char *)"dora";
	u.domain = (char *)"example.test";
	assert_int_equal(store_user_add(t->st, &u, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(directory_map_principal(t->st, "DORA@EXAMPLE.TEST", login, sizeof(login)), 0);
	assert_string_equal(login, "dora@example.test");
	/* a mapping that is off, an unknown realm, an instance, no realm: no account */
	assert_int_equal(directory_map_principal(t->st, "alice@OFF.TEST", login, sizeof(login)), -1);
	assert_int_equal(directory_map_principal(t->st, "alice@OTHER.TEST", login, sizeof(login)), -1);
	assert_int_equal(directory_map_principal(t->st, "alice/admin@EXAMPLE.TEST", login, sizeof(login)), -1);
	assert_int_equal(directory_map_principal(t->st, "alice", login, sizeof(login)), -1);
	assert_int_equal(directory_map_principal(t->st, "alice@", login, sizeof(login)), -1);
	assert_int_equal(directory_map_principal(t->st, "@EXAMPLE.TEST", login, sizeof(login)), -1);
	/* a login that does not fit is refused, never cut */
	assert_int_equal(directory_map_principal(t->st, "dora@EXAMPLE.TEST", small, sizeof(small)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_secret, ts_setup, ts_teardown),
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_store_mapping, ts_setup, ts_teardown),
		cmocka_unit_test_setup_teardown(test_user_store, ts_setup, ts_teardown),
		cmocka_unit_test_setup_teardown(test_reconcile, ts_setup, ts_teardown),
		cmocka_unit_test_setup_teardown(test_group_store, ts_setup, ts_teardown),
		cmocka_unit_test_setup_teardown(test_auth_hook, ts_setup, ts_teardown),
		cmocka_unit_test_setup_teardown(test_auth_cache, ts_setup, ts_teardown),
		cmocka_unit_test_setup_teardown(test_auth_replica, ts_setup, ts_teardown),
		cmocka_unit_test_setup_teardown(test_group_upgrade, ts_setup, ts_teardown),
		cmocka_unit_test_setup_teardown(test_map_principal, ts_setup, ts_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
