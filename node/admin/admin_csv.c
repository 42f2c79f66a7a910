/* admin_csv.c - user import from and export to CSV (guide ch. 8.9, 8.10).
 * Import: a header row naming the columns (Name required; Password, FullName,
 * MailAddress, Groups, Description; any order), ';' or ',' between fields (taken from
 * the header), multi-value cells separated by ',' and quoted with "..." or '...'.
 * A user imported without a password gets none and cannot log in until one is set.
 * The import runs on the auth pool (hashing is slow) with the store's blocking form,
 * which worker threads may use; each line is applied whole or reported as an error. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "admin_private.h"

static const char *const col_names[ADMIN_CSV_NCOLS] = {
	"Name", "Password", "FullName", "MailAddress", "Groups", "Description",
};

#define CSV_MAX_FIELDS 32

/* Split one line into fields (malloc'd, trimmed, quotes removed). Returns the count,
 * or -1 on an unterminated quote. */
static int csv_split(const char *line, char sep, char **out, int max)
{
	int n = 0;
	const char *p = line;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		tbuf f = TBUF_INIT;
		if (*p == '"' || *p == '\'') {
			char q = *p++;
			while (*p && !(*p == q && (p[1] != q))) {
				if (*p == q)     /* doubled quote */
					p++;
				tbuf_append_char(&f, *p++);
			}
			if (*p != q) {
				tbuf_free(&f);
				for (int i = 0; i < n; i++)
					free(out[i]);
				return -1;
			}
			p++;
			while (*p && *p != sep)
				p++;
		} else {
			while (*p && *p != sep)
				tbuf_append_char(&f, *p++);
			while (f.len > 0 && (f.data[f.len - 1] == ' ' || f.data[f.len - 1] == '\t'))
				tbuf_truncate(&f, f.len - 1);
		}
		if (n < max)
			out[n++] = tbuf_steal(&f);
		else
			tbuf_free(&f);
		if (*p != sep)
			break;
		p++;
	}
	return n;
}

static void free_fields(char **f, int n)
{
	for (int i = 0; i < n; i++)
		free(f[i]);
}

/* Split a multi-value cell on ',' into trimmed, non-empty, lower-case items. */
size_t admin_csv_split_multi(const char *cell, char ***items_r)
{
	char *tmp[CSV_MAX_FIELDS];
	int n = csv_split(cell, ',', tmp, CSV_MAX_FIELDS);
	size_t k = 0;
	*items_r = NULL;
	if (n <= 0)
		return 0;
	*items_r = calloc((size_t)n, sizeof(char *));
	if (*items_r == NULL)
		abort();
	for (int i = 0; i < n; i++) {
		if (tmp[i][0] == '\0') {
			free(tmp[i]);
			continue;
		}
		tern_lower(tmp[i]);
		(*items_r)[k++] = tmp[i];
	}
	return k;
}

/* Add user address to group `name` in domain, creating the group when missing. */
static int import_group(store *st, const char *domain, const char *name, const char *addr,
			const char **err_r, store_sync_result *res)
{
	Tern__Group *g = NULL;
	int rc = store_group_get(st, domain, name, &g);
	if (rc == STORE_ENOTFOUND) {
		Tern__Group ng = TERN__GROUP__INIT;
		char *members[1] = { (char *)addr };
		ng.name = (char *)name;
		ng.domain = (char *)domain;
		ng.members = members;
		ng.n_members = 1;
		rc = store_group_add(st, &ng, STORE_SYNC, res);
	} else if (rc == STORE_OK) {
		for (size_t i = 0; i < g->n_members; i++)
			if (strcasecmp(g->members[i], addr) == 0) {
				store_free_record(g);
				return 0;
			}
		g->members = realloc(g->members, (g->n_members + 1) * sizeof(char *));
		if (g->members == NULL || (g->members[g->n_members] = strdup(addr)) == NULL)
			abort();
		g->n_members++;
		rc = store_group_update(st, g, STORE_SYNC, res);
		store_free_record(g);
	}
	*err_r = rc == STORE_OK ? NULL : (res->res.error ? res->res.error : store_strerror(rc));
	return rc;
}

/* Create the user of one CSV line. 0 ok, else an error text in err. */
static int import_line(admin_req *r, const admin_csv_row *row, tbuf *err)
{
	const char *name = row->cell[ADMIN_CSV_NAME];
	if (!tern_valid_localpart(name)) {
		tbuf_appendf(err, "invalid user name '%s'", name);
		return -1;
	}
	Tern__User u = TERN__USER__INIT;
	Tern__ScramKeys scram = TERN__SCRAM_KEYS__INIT;
	char *hash = NULL;
	const char *pw = row->cell[ADMIN_CSV_PASSWORD];
	if (pw[0] != '\0') {
		const char *why = NULL;
		if (!auth_password_acceptable(pw, &why)) {
			tbuf_appendf(err, "user %s: unacceptable password: %s", name, why ? why : "");
			return -1;
		}
		if (auth_password_hash(pw, &hash, &scram) != 0) {
			tbuf_appendf(err, "user %s: cannot hash the password", name);
			return -1;
		}
		u.password_hash = hash;
		u.scram = &scram;
	}
	u.name = (char *)name;
	u.domain = r->domain;
	u.enabled = 1;
	u.created = (uint64_t)tern_now();
	u.full_name = (char *)row->cell[ADMIN_CSV_FULLNAME];
	u.description = (char *)row->cell[ADMIN_CSV_DESCRIPTION];
	char **addrs = NULL;
	size_t naddrs = admin_csv_split_multi(row->cell[ADMIN_CSV_MAILADDRESS], &addrs);
	char **extra = calloc(naddrs + 1, sizeof(char *));
	if (extra == NULL)
		abort();
	for (size_t i = 0; i < naddrs; i++)      /* the name itself is the user's address already */
		if (strcasecmp(addrs[i], name) != 0)
			extra[u.n_addresses++] = addrs[i];
	u.addresses = extra;
	store_sync_result res;
	int rc = store_user_add(r->st, &u, STORE_SYNC, &res);
	free(extra);
	free(hash);
	auth_scram_clear(&scram);
	if (rc != STORE_OK) {
		tbuf_appendf(err, "user %s: %s", name, res.res.error ? res.res.error : store_strerror(rc));
		aj_free_strlist(&addrs, &naddrs);
		return -1;
	}
	tbuf log = TBUF_INIT;
	admin_log_kv(&log, "Name", name);
	admin_log_kv(&log, "Domain", r->domain);
	tbuf_appendf(&log, ", Account_enabled='1'%s", pw[0] ? ", Password=********" : "");
	tlog(TLOG_CONFIG, "%s - insert User set %s", r->actor, tbuf_cstr(&log));
	tbuf_free(&log);
	aj_free_strlist(&addrs, &naddrs);
	char addr[520];
	snprintf(addr, sizeof(addr), "%s@%s", name, r->domain);
	tern_lower(addr);
	char **groups = NULL;
	size_t ngroups = admin_csv_split_multi(row->cell[ADMIN_CSV_GROUPS], &groups);
	for (size_t i = 0; i < ngroups; i++) {
		const char *gerr = NULL;
		if (import_group(r->st, r->domain, groups[i], addr, &gerr, &res) != STORE_OK) {
			tbuf_appendf(err, "user %s created, but not added to group %s: %s", name, groups[i], gerr);
			aj_free_strlist(&groups, &ngroups);
			return 1;
		}
	}
	aj_free_strlist(&groups, &ngroups);
	return 0;
}

/* Append "line N: text" to errors; bytes that are not printable ASCII become '?', so
 * that the message is always a valid JSON string whatever the file held. */
static void csv_error(json_t *errors, int lineno, const char *fmt, ...)
{
	tbuf t = TBUF_INIT;
	va_list ap;
	tbuf_appendf(&t, "line %d: ", lineno);
	va_start(ap, fmt);
	tbuf_vappendf(&t, fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < t.len; i++)
		if ((unsigned char)t.data[i] < 0x20 || (unsigned char)t.data[i] >= 0x7f)
			t.data[i] = '?';
	json_array_append_new(errors, json_stringn(t.data, t.len));
	tbuf_free(&t);
}

/* Read the header row: the separator and which field holds which column. -1 when it
 * has no Name column (reported). */
static int csv_header(const char *line, int lineno, char *sep_r, int *col, int *ncols_r, json_t *errors)
{
	char *f[CSV_MAX_FIELDS];
	*sep_r = strchr(line, ';') ? ';' : ',';
	/* a UTF-8 byte order mark before the header is not part of it */
	const char *h = strncmp(line, "\xef\xbb\xbf", 3) == 0 ? line + 3 : line;
	int ncols = csv_split(h, *sep_r, f, CSV_MAX_FIELDS);
	for (int i = 0; i < ncols; i++) {
		int k = 0;
		while (k < ADMIN_CSV_NCOLS && strcasecmp(f[i], col_names[k]) != 0)
			k++;
		if (k == ADMIN_CSV_NCOLS)
			csv_error(errors, lineno, "unknown column '%s' ignored", f[i]);
		else
			col[k] = i;
	}
	free_fields(f, ncols);
	*ncols_r = ncols;
	if (col[ADMIN_CSV_NAME] < 0) {
		csv_error(errors, lineno, "the header row has no Name column");
		return -1;
	}
	return 0;
}

int admin_csv_parse(const char *text, size_t len, admin_csv_row_fn fn, void *ctx, json_t *errors)
{
	int col[ADMIN_CSV_NCOLS];
	for (int i = 0; i < ADMIN_CSV_NCOLS; i++)
		col[i] = -1;
	char sep = 0;
	int lineno = 0, ncols = 0, rows = 0;
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		const char *start = p;
		p += n + (nl ? 1 : 0);
		lineno++;
		if (n > 0 && start[n - 1] == '\r')
			n--;
		if (n == 0)
			continue;
		if (memchr(start, '\0', n) != NULL) {
			csv_error(errors, lineno, "NUL byte in the line");
			if (sep == 0)
				return -1;
			continue;
		}
		char *line = strndup(start, n);
		if (line == NULL)
			abort();
		if (sep == 0) {
			int rc = csv_header(line, lineno, &sep, col, &ncols, errors);
			free(line);
			if (rc < 0)
				return -1;
			continue;
		}
		char *f[CSV_MAX_FIELDS];
		int nf = csv_split(line, sep, f, CSV_MAX_FIELDS);
		free(line);
		if (nf < 0) {
			csv_error(errors, lineno, "unterminated quote");
			continue;
		}
		admin_csv_row row = { .lineno = lineno };
		for (int k = 0; k < ADMIN_CSV_NCOLS; k++)
			row.cell[k] = col[k] >= 0 && col[k] < nf ? f[col[k]] : "";
		fn(&row, ctx);
		rows++;
		free_fields(f, nf);
	}
	if (sep == 0) {
		csv_error(errors, 1, "no header row");
		return -1;
	}
	return rows;
}

typedef struct import_ctx {
	admin_req *r;
	json_t *errors;
} import_ctx;

/* One data row: create the user; a failure is reported and the import goes on. */
static void import_row(const admin_csv_row *row, void *arg)
{
	import_ctx *ic = arg;
	tbuf err = TBUF_INIT;
	int rc = import_line(ic->r, row, &err);
	if (rc >= 0)
		ic->r->count++;
	if (rc != 0)
		csv_error(ic->errors, row->lineno, "%s", tbuf_cstr(&err));
	tbuf_free(&err);
}

/* Auth pool: parse the CSV and create the users; results into r->extra. */
static void import_job(void *arg)
{
	admin_req *r = arg;
	json_t *errors = json_array();
	r->extra = json_pack("{s:i, s:o}", "created", 0, "errors", errors);
	import_ctx ic = { r, errors };
	const tbuf *body = &r->req->body;
	admin_csv_parse(body->data ? body->data : "", body->len, import_row, &ic, errors);
}

static void import_done(admin_req *r)
{
	json_t *j = r->extra;
	r->extra = NULL;
	json_object_set_new(j, "created", json_integer(r->count));
	admin_reply_json(r, r->count == 0 && json_array_size(json_object_get(j, "errors")) > 0 ? 400 : 200, j);
}

void adm_user_import(admin_req *r)
{
	if (admin_query_domain(r, r->domain, sizeof(r->domain)) < 0)
		return;
	Tern__Domain *d = NULL;
	int rc = store_domain_get(r->st, r->domain, &d);
	if (rc != STORE_OK) {
		admin_store_error(r, rc, NULL);
		return;
	}
	store_free_record(d);
	admin_pool(r, import_job, import_done);
}

/* One export cell: multi-values joined with ','; quoted when it holds ';' or a quote. */
static void csv_cell(tbuf *out, char **v, size_t n, int first)
{
	tbuf cell = TBUF_INIT;
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			tbuf_append_char(&cell, ',');
		tbuf_append_str(&cell, v[i]);
	}
	if (!first)
		tbuf_append_char(out, ';');
	if (strpbrk(tbuf_cstr(&cell), ";\"\n") != NULL) {
		tbuf_append_char(out, '"');
		for (const char *p = tbuf_cstr(&cell); *p; p++) {
			if (*p == '"')
				tbuf_append_char(out, '"');
			tbuf_append_char(out, *p == '\n' ? ' ' : *p);
		}
		tbuf_append_char(out, '"');
	} else {
		tbuf_append(out, cell.data ? cell.data : "", cell.len);
	}
	tbuf_free(&cell);
}

void adm_user_export(admin_req *r)
{
	char dom[256];
	if (admin_query_domain(r, dom, sizeof(dom)) < 0)
		return;
	Tern__User **users = NULL;
	Tern__Group **groups = NULL;
	size_t nu = 0, ng = 0;
	int rc = store_user_list(r->st, dom, &users, &nu);
	if (rc != STORE_OK) {
		admin_store_error(r, rc, NULL);
		return;
	}
	if (store_group_list(r->st, dom, &groups, &ng) != STORE_OK)
		ng = 0;
	tbuf out = TBUF_INIT;
	tbuf_append_str(&out, "Name;FullName;Description;MailAddress;Groups\r\n");
	for (size_t i = 0; i < nu; i++) {
		Tern__User *u = users[i];
		char addr[520];
		snprintf(addr, sizeof(addr), "%s@%s", u->name, u->domain);
		char *gl[256];
		size_t ngl = 0;
		for (size_t g = 0; g < ng && ngl < 256; g++)
			for (size_t m = 0; m < groups[g]->n_members; m++)
				if (strcasecmp(groups[g]->members[m], addr) == 0) {
					gl[ngl++] = groups[g]->name;
					break;
				}
		char **mail = calloc(u->n_addresses + 1, sizeof(char *));
		if (mail == NULL)
			abort();
		mail[0] = u->name;
		for (size_t k = 0; k < u->n_addresses; k++)
			mail[k + 1] = u->addresses[k];
		csv_cell(&out, &u->name, 1, 1);
		csv_cell(&out, &u->full_name, 1, 0);
		csv_cell(&out, &u->description, 1, 0);
		csv_cell(&out, mail, u->n_addresses + 1, 0);
		csv_cell(&out, gl, ngl, 0);
		tbuf_append_str(&out, "\r\n");
		free(mail);
	}
	store_free_list((void **)users, nu);
	store_free_list((void **)groups, ng);
	char date[16], disp[400];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	if (strftime(date, sizeof(date), "%Y-%m-%d", &tm) == 0)
		date[0] = '\0';
	snprintf(disp, sizeof(disp), "attachment; filename=\"users_%s_%s.csv\"", dom, date);
	http_add_header(r->req, "Content-Disposition", disp);
	admin_reply_text(r, 200, "text/csv; charset=utf-8", tbuf_cstr(&out), out.len);
	tbuf_free(&out);
}
