/* store_db.c - opening the RocksDB database (column families, options, on-disk format),
 * closing it, point reads and scans, and the figures of store_get_stats(). */
#include "store_private.h"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const cf_names[CF_COUNT] = {
	"default", "config", "folder", "msg", "changes", "blob", "blobref",
	"queue", "dav", "changelog",
};

const char *store_strerror(int rc)
{
	switch (rc) {
	case STORE_OK: return "ok";
	case STORE_ENOTFOUND: return "not found";
	case STORE_EEXISTS: return "already exists";
	case STORE_EINVAL: return "invalid value";
	case STORE_EREFUSED: return "refused";
	case STORE_EQUOTA: return "over quota";
	case STORE_EDISK: return "disk space low";
	case STORE_EIO: return "storage error";
	case STORE_ECONFLICT: return "precondition failed";
	}
	return "unknown error";
}

void store_options_default(store_options *o)
{
	memset(o, 0, sizeof(*o));
	o->path = "tern-data/db";
	o->wal_max_bytes = 256ull << 20;
	o->cache_bytes = 64ull << 20;
	o->commit_threads = 2;
	o->blob_grace = 3600;
	o->sweep_interval = 600;
	o->disk_soft_limit = 1ull << 30;   /* guide ch. 12.8: 1 GB */
	o->disk_hard_limit = 64ull << 20;  /* 64 MB */
	o->disk_check_interval = 10;
}

int store_is_new(const store *st)
{
	return st->is_new;
}

static char *dup_printf(const char *fmt, const char *a, const char *b)
{
	tbuf t = TBUF_INIT;

	tbuf_appendf(&t, fmt, a, b);
	return tbuf_steal(&t);
}

/* Options shared by the DB and every column family. */
static void make_options(store *st)
{
	st->dbopt = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(st->dbopt, 1);
	rocksdb_options_set_create_missing_column_families(st->dbopt, 1);
	if (st->opt.wal_max_bytes)
		rocksdb_options_set_max_total_wal_size(st->dbopt, st->opt.wal_max_bytes);
	rocksdb_options_enable_statistics(st->dbopt);
	rocksdb_options_increase_parallelism(st->dbopt, 2);
	st->bbto = rocksdb_block_based_options_create();
	st->cache = rocksdb_cache_create_lru(st->opt.cache_bytes ? st->opt.cache_bytes : 8u << 20);
	rocksdb_block_based_options_set_block_cache(st->bbto, st->cache);
	rocksdb_options_set_block_based_table_factory(st->dbopt, st->bbto);
	st->wopt = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(st->wopt, 1);
	st->ropt = rocksdb_readoptions_create();
}

/* Check the "format" record, or write it on a new store together with the defaults. */
static int check_format(store *st, char **error_r)
{
	Tern__Format *f = NULL;
	int rc = store_db_get_record(st, CF_CONFIG, SK_FORMAT, strlen(SK_FORMAT),
				     &tern__format__descriptor, (ProtobufCMessage **)&f);
	char *err = NULL;

	if (rc == STORE_OK) {
		uint32_t v = f->version;

		tern__format__free_unpacked(f, NULL);
		if (v > STORE_FORMAT_VERSION) {
			tbuf t = TBUF_INIT;

			tbuf_appendf(&t, "store %s has format version %" PRIu32 ", newer than "
				     "this build supports (%d)", st->path, v, STORE_FORMAT_VERSION);
			*error_r = tbuf_steal(&t);
			return -1;
		}
		return 0;
	}
	if (rc != STORE_ENOTFOUND) {
		*error_r = dup_printf("cannot read the format of store %s%s", st->path, "");
		return -1;
	}
	Tern__Format nf = TERN__FORMAT__INIT;
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();

	nf.version = STORE_FORMAT_VERSION;
	nf.created_by = (char *)"tern " TERN_VERSION;
	store_wb_put_record(wb, st, CF_CONFIG, SK_FORMAT, strlen(SK_FORMAT), &nf.base);
	if (st->is_new)
		store_config_defaults(st, wb);
	rocksdb_write(st->db, st->wopt, wb, &err);
	rocksdb_writebatch_destroy(wb);
	if (err) {
		*error_r = dup_printf("cannot initialise store %s: %s", st->path, err);
		free(err);
		return -1;
	}
	return 0;
}

static int open_db(store *st, char **error_r)
{
	const char *names[CF_COUNT];
	const rocksdb_options_t *opts[CF_COUNT];
	char *err = NULL;
	struct stat sb;
	tbuf cur = TBUF_INIT;

	tbuf_appendf(&cur, "%s/CURRENT", st->path);
	st->is_new = stat(tbuf_cstr(&cur), &sb) != 0;
	tbuf_free(&cur);
	for (int i = 0; i < CF_COUNT; i++) {
		names[i] = cf_names[i];
		opts[i] = st->dbopt;
	}
	st->db = rocksdb_open_column_families(st->dbopt, st->path, CF_COUNT, names, opts,
					      st->cf, &err);
	if (!st->db) {
		*error_r = dup_printf("cannot open store %s: %s", st->path, err ? err : "unknown error");
		free(err);
		return -1;
	}
	return 0;
}

static void init_locks(store *st)
{
	pthread_mutex_init(&st->cmu, NULL);
	pthread_cond_init(&st->ccond, NULL);
	pthread_cond_init(&st->turn_cond, NULL);
	pthread_cond_init(&st->done_cond, NULL);
	pthread_mutex_init(&st->cfg_mu, NULL);
	pthread_cond_init(&st->cfg_cond, NULL);
	pthread_mutex_init(&st->mbx_mu, NULL);
	pthread_mutex_init(&st->uv_mu, NULL);
	pthread_mutex_init(&st->blob_mu, NULL);
	pthread_mutex_init(&st->w_mu, NULL);
	pthread_mutex_init(&st->hk_mu, NULL);
	pthread_cond_init(&st->hk_cond, NULL);
	pthread_mutex_init(&st->sweep_mu, NULL);
	pthread_mutex_init(&st->q_mu, NULL);
	pthread_mutex_init(&st->qw_mu, NULL);
	pthread_mutex_init(&st->repl_mu, NULL);
	pthread_mutex_init(&st->dav_mu, NULL);
	pthread_mutex_init(&st->mbs_mu, NULL);
}

int store_open(const store_options *opt, store **st_r, char **error_r)
{
	store *st = calloc(1, sizeof(*st));

	*st_r = NULL;
	if (!st) {
		*error_r = strdup("out of memory");
		return -1;
	}
	st->opt = *opt;
	if (st->opt.commit_threads < 1)
		st->opt.commit_threads = 1;
	if (st->opt.commit_threads > 4)
		st->opt.commit_threads = 4;
	st->path = strdup(opt->path);
	st->opt.path = st->path;
	init_locks(st);
	store_mailbox_init(st);
	make_options(st);
	if (mkdir(st->path, 0700) != 0 && errno != EEXIST) {
		*error_r = dup_printf("cannot create %s: %s", st->path, strerror(errno));
		store_close(&st);
		return -1;
	}
	if (open_db(st, error_r) != 0 || check_format(st, error_r) != 0 ||
	    store_uidvalidity_load(st, error_r) != 0 || store_repl_load(st, error_r) != 0 ||
	    store_mbs_load(st, error_r) != 0 ||
	    store_commit_start(st, error_r) != 0 || store_config_start(st, error_r) != 0 ||
	    store_sweep_start(st, error_r) != 0) {
		store_close(&st);
		return -1;
	}
	*st_r = st;
	return 0;
}

void store_close(store **stp)
{
	store *st = *stp;

	if (!st)
		return;
	*stp = NULL;
	store_sweep_stop(st);
	store_config_stop(st);
	store_commit_stop(st);
	store_notify_free_all(st);
	store_mailbox_free_all(st);
	store_dav_free_all(st);
	store_blob_free_all(st);
	store_queue_free_all(st);
	store_repl_free(st);
	store_mbs_free_all(st);
	if (st->db) {
		for (int i = 0; i < CF_COUNT; i++)
			if (st->cf[i])
				rocksdb_column_family_handle_destroy(st->cf[i]);
		rocksdb_close(st->db);
	}
	if (st->wopt)
		rocksdb_writeoptions_destroy(st->wopt);
	if (st->ropt)
		rocksdb_readoptions_destroy(st->ropt);
	if (st->dbopt)
		rocksdb_options_destroy(st->dbopt);
	if (st->bbto)
		rocksdb_block_based_options_destroy(st->bbto);
	if (st->cache)
		rocksdb_cache_destroy(st->cache);
	free(st->path);
	free(st);
}

int store_db_get(store *st, enum store_cf cf, const void *k, size_t kn, char **v_r, size_t *vn_r)
{
	char *err = NULL;
	size_t vn = 0;
	char *v = rocksdb_get_cf(st->db, st->ropt, st->cf[cf], k, kn, &vn, &err);

	if (err) {
		tlog(TLOG_ERROR, "store: read failed: %s", err);
		free(err);
		return STORE_EIO;
	}
	if (!v)
		return STORE_ENOTFOUND;
	*v_r = v;
	if (vn_r)
		*vn_r = vn;
	return STORE_OK;
}

int store_db_exists(store *st, enum store_cf cf, const void *k, size_t kn)
{
	char *v = NULL;
	int rc = store_db_get(st, cf, k, kn, &v, NULL);

	free(v);
	return rc == STORE_OK ? 1 : rc == STORE_ENOTFOUND ? 0 : rc;
}

int store_db_get_record(store *st, enum store_cf cf, const void *k, size_t kn,
			const ProtobufCMessageDescriptor *desc, ProtobufCMessage **m_r)
{
	char *v = NULL;
	size_t vn = 0;
	int rc = store_db_get(st, cf, k, kn, &v, &vn);

	if (rc != STORE_OK)
		return rc;
	*m_r = protobuf_c_message_unpack(desc, NULL, vn, (const uint8_t *)v);
	free(v);
	if (!*m_r) {
		tlog(TLOG_ERROR, "store: corrupt %s record", desc->short_name);
		return STORE_EIO;
	}
	return STORE_OK;
}

int store_db_scan(store *st, enum store_cf cf, const void *prefix, size_t pn,
		  const void *from, size_t fn_len,
		  int (*fn)(const char *k, size_t kn, const char *v, size_t vn, void *arg), void *arg)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(st->db, st->ropt, st->cf[cf]);
	char *err = NULL;
	int rc = 0;

	if (from)
		rocksdb_iter_seek(it, from, fn_len);
	else
		rocksdb_iter_seek(it, prefix, pn);
	for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t kn, vn;
		const char *k = rocksdb_iter_key(it, &kn);
		const char *v = rocksdb_iter_value(it, &vn);

		if (kn < pn || memcmp(k, prefix, pn) != 0)
			break;
		rc = fn(k, kn, v, vn, arg);
		if (rc != 0)
			break;
	}
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	if (err) {
		tlog(TLOG_ERROR, "store: scan failed: %s", err);
		free(err);
		return STORE_EIO;
	}
	return rc;
}

void store_wb_put_record(rocksdb_writebatch_t *wb, store *st, enum store_cf cf, const void *k,
			 size_t kn, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t stackbuf[512];
	uint8_t *p = n <= sizeof(stackbuf) ? stackbuf : malloc(n);

	if (!p)
		abort();
	protobuf_c_message_pack(m, p);
	rocksdb_writebatch_put_cf(wb, st->cf[cf], k, kn, (const char *)p, n);
	if (p != stackbuf)
		free(p);
}

void store_free_record(void *m)
{
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}

void store_free_list(void **list, size_t n)
{
	if (!list)
		return;
	for (size_t i = 0; i < n; i++)
		store_free_record(list[i]);
	free(list);
}

/* One ticker from the statistics dump: "rocksdb.wal.synced COUNT : 12". */
static uint64_t stats_ticker(const char *dump, const char *name)
{
	size_t nl = strlen(name);

	for (const char *p = dump; p && *p;) {
		if (strncmp(p, name, nl) == 0 && p[nl] == ' ') {
			const char *c = strstr(p + nl, "COUNT : ");

			if (c)
				return strtoull(c + 8, NULL, 10);
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return 0;
}

void store_get_stats(store *st, store_stats *s)
{
	char *dump = rocksdb_options_statistics_get_string(st->dbopt);

	memset(s, 0, sizeof(*s));
	if (dump) {
		s->wal_synced = stats_ticker(dump, "rocksdb.wal.synced");
		s->wal_bytes = stats_ticker(dump, "rocksdb.wal.bytes");
		rocksdb_free(dump);
	}
	for (int i = 0; i < CF_COUNT; i++) {
		char *live = rocksdb_property_value_cf(st->db, st->cf[i],
						       "rocksdb.estimate-live-data-size");

		if (live) {
			s->live_data_bytes += strtoull(live, NULL, 10);
			rocksdb_free(live);
		}
	}
	s->commits = atomic_load(&st->commits);
	s->commit_groups = atomic_load(&st->groups);
	s->blobs_swept = atomic_load(&st->blobs_swept);
	s->free_disk_bytes = atomic_load(&st->free_disk);
}
