/* ternd_init.c - the data directory at start-up: lock, node name, and the first domain
 * and administrator of a new store. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include "ternd_private.h"

int ternd_lock(const char *data, int *fd_r, tbuf *err)
{
	char path[4096];
	int w = snprintf(path, sizeof(path), "%s/ternd.lock", data);
	if (w < 0 || (size_t)w >= sizeof(path)) {
		tbuf_appendf(err, "data directory path too long");
		return -1;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		tbuf_appendf(err, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char buf[32] = "";
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\r\n")] = '\0';
		tbuf_appendf(err, "another ternd is running on %s (pid %s)", data, buf[0] ? buf : "?");
		close(fd);
		return -1;
	}
	*fd_r = fd;
	return 0;
}

void ternd_lock_write_pid(int fd)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (n > 0 && ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) != n)
		tlog(TLOG_WARNING, "cannot write the pid into ternd.lock: %s", strerror(errno));
}

/* The host's domain (FQDN minus its first label) when it is a valid domain. */
static void host_domain(char *out, size_t n)
{
	char host[256] = "";
	snprintf(out, n, "%s", "localhost.localdomain");
	if (gethostname(host, sizeof(host) - 1) != 0)
		return;
	struct addrinfo hints = { .ai_flags = AI_CANONNAME }, *ai = NULL;
	const char *fqdn = host;
	if (strchr(host, '.') == NULL && getaddrinfo(host, NULL, &hints, &ai) == 0 && ai && ai->ai_canonname)
		fqdn = ai->ai_canonname;
	const char *dot = strchr(fqdn, '.');
	if (dot != NULL && tern_valid_domain(dot + 1))
		snprintf(out, n, "%s", dot + 1);
	if (ai != NULL)
		freeaddrinfo(ai);
}

int ternd_node_name(store *st, const char *given, char *out, size_t n, tbuf *err)
{
	char *stored = NULL;
	if (store_setting_get(st, "node_name", &stored) != STORE_OK)
		stored = NULL;
	if (given == NULL && stored != NULL && stored[0] != '\0') {
		snprintf(out, n, "%s", stored);
		free(stored);
		return 0;
	}
	if (given != NULL) {
		snprintf(out, n, "%s", given);
	} else {
		char host[256] = "localhost";
		if (gethostname(host, sizeof(host) - 1) != 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		host[strcspn(host, ".")] = '\0';
		snprintf(out, n, "%s", host);
	}
	int changed = stored == NULL || strcmp(stored, out) != 0;
	free(stored);
	if (!changed)
		return 0;
	store_sync_result res;
	int rc = store_setting_put(st, "node_name", out, STORE_SYNC, &res);
	if (rc != STORE_OK) {
		tbuf_appendf(err, "cannot store the node name: %s", res.res.error ? res.res.error : store_strerror(rc));
		return -1;
	}
	return 0;
}

int ternd_init_store(store *st, const ternd_opts *o, tbuf *err)
{
	char domain[256];
	if (o->init_domain != NULL)
		snprintf(domain, sizeof(domain), "%s", o->init_domain);
	else
		host_domain(domain, sizeof(domain));
	tern_lower(domain);
	if (!tern_valid_domain(domain)) {
		tbuf_appendf(err, "invalid --init-domain %s", domain);
		return -1;
	}
	if (!tern_valid_localpart(o->init_admin)) {
		tbuf_appendf(err, "invalid --init-admin %s", o->init_admin);
		return -1;
	}
	char *password = NULL;
	int generated = 0;
	if (o->init_password_file != NULL) {
		password = tern_read_first_line(o->init_password_file);
		if (password == NULL) {
			tbuf_appendf(err, "cannot read %s: %s", o->init_password_file, strerror(errno));
			return -1;
		}
		const char *why = NULL;
		if (!auth_password_acceptable(password, &why)) {
			tbuf_appendf(err, "the password in %s is not acceptable: %s", o->init_password_file,
				     why ? why : "");
			free(password);
			return -1;
		}
	} else {
		static const char set[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
		unsigned char rnd[16];
		tern_random(rnd, sizeof(rnd));
		password = malloc(17);
		if (password == NULL)
			abort();
		for (int i = 0; i < 16; i++)
			password[i] = set[rnd[i] % (sizeof(set) - 1)];
		password[16] = '\0';
		generated = 1;
	}
	store_sync_result res;
	Tern__Domain d = TERN__DOMAIN__INIT;
	d.name = domain;
	d.primary = 1;
	d.created = (uint64_t)tern_now();
	int rc = store_domain_add(st, &d, STORE_SYNC, &res);
	if (rc != STORE_OK) {
		tbuf_appendf(err, "cannot add domain %s: %s", domain, res.res.error ? res.res.error : store_strerror(rc));
		free(password);
		return -1;
	}
	tlog(TLOG_CONFIG, "local - insert Domain set Name='%s'", domain);
	Tern__User u = TERN__USER__INIT;
	Tern__ScramKeys scram = TERN__SCRAM_KEYS__INIT;
	char *hash = NULL;
	if (auth_password_hash(password, &hash, &scram) != 0) {
		tbuf_appendf(err, "cannot hash the administrator's password");
		free(password);
		return -1;
	}
	u.name = (char *)o->init_admin;
	u.domain = domain;
	u.enabled = 1;
	u.password_hash = hash;
	u.scram = &scram;
	u.rights = TERN__RIGHTS__RIGHTS_READ_WRITE;
	u.created = (uint64_t)tern_now();
	rc = store_user_add(st, &u, STORE_SYNC, &res);
	free(hash);
	auth_scram_clear(&scram);
	if (rc != STORE_OK) {
		tbuf_appendf(err, "cannot add the administrator %s@%s: %s", o->init_admin, domain,
			     res.res.error ? res.res.error : store_strerror(rc));
		free(password);
		return -1;
	}
	tlog(TLOG_CONFIG, "local - insert User set Name='%s', Domain='%s', Account_enabled='1', "
	     "Password=********, Rights='%d'", o->init_admin, domain, (int)TERN__RIGHTS__RIGHTS_READ_WRITE);
	if (generated) {
		printf("ternd: admin password for %s@%s: %s\n", o->init_admin, domain, password);
		fflush(stdout);
	}
	explicit_bzero(password, strlen(password));
	free(password);
	return 0;
}
