/* log.c - the category logs of the guide (ch. 24): one file per category under
 * DATA/logs, one line per event, size-based rotation, reopen on SIGHUP. */
#include "log.h"
#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct tlog_file {
	pthread_mutex_t mu;
	int fd;           /* -1: not open, lines go to stderr */
	size_t size;      /* bytes in the current file, for rotation */
} tlog_file;

static const char *const tlog_names[TLOG_COUNT] = {
	"config", "mail", "security", "warning", "error", "operations", "spam", "debug",
};

#define TLOG_FILE_INIT { PTHREAD_MUTEX_INITIALIZER, -1, 0 }
static tlog_file tlog_files[TLOG_COUNT] = {
	TLOG_FILE_INIT, TLOG_FILE_INIT, TLOG_FILE_INIT, TLOG_FILE_INIT,
	TLOG_FILE_INIT, TLOG_FILE_INIT, TLOG_FILE_INIT, TLOG_FILE_INIT,
};
/* Set by tlog_open before other threads log; read under a file's mutex afterwards. */
static char tlog_dir[PATH_MAX];
static tlog_options tlog_opt;

const char *tlog_category_name(tlog_category c)
{
	return (unsigned)c < TLOG_COUNT ? tlog_names[c] : "unknown";
}

/* English month names whatever the locale: the guide's format is fixed. */
void tlog_stamp(long t, char out[32])
{
	static const char *const mon[12] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;
	if (!localtime_r(&tt, &tm)) {
		snprintf(out, 32, "[00/---/0000 00:00:00]");
		return;
	}
	int n = snprintf(out, 32, "[%02d/%s/%04d %02d:%02d:%02d]", tm.tm_mday,
			 mon[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (n < 0 || n >= 32)
		snprintf(out, 32, "[00/---/0000 00:00:00]");
}

static int tlog_path(tlog_category c, unsigned gen, char *out, size_t n)
{
	int r = gen ? snprintf(out, n, "%s/%s.log.%u", tlog_dir, tlog_names[c], gen)
		    : snprintf(out, n, "%s/%s.log", tlog_dir, tlog_names[c]);
	return r < 0 || (size_t)r >= n ? -1 : 0;
}

/* Open (create) the file of c; the caller holds its mutex. */
static int tlog_open_file(tlog_category c)
{
	char path[PATH_MAX];
	tlog_file *f = &tlog_files[c];
	if (tlog_path(c, 0, path, sizeof(path)) < 0)
		return -1;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	struct stat st;
	f->size = fstat(fd, &st) == 0 ? (size_t)st.st_size : 0;
	f->fd = fd;
	return 0;
}

/* name.log -> name.log.1 -> ... -> name.log.keep; the oldest is dropped. With keep 0
 * the file simply starts again. The caller holds the mutex. */
static void tlog_rotate(tlog_category c)
{
	char from[PATH_MAX], to[PATH_MAX];
	tlog_file *f = &tlog_files[c];
	unsigned keep = tlog_opt.keep_files;

	close(f->fd);
	f->fd = -1;
	if (keep == 0) {
		if (tlog_path(c, 0, from, sizeof(from)) == 0)
			unlink(from);
	} else {
		if (tlog_path(c, keep, to, sizeof(to)) == 0)
			unlink(to);
		for (unsigned g = keep; g > 0; g--) {
			if (tlog_path(c, g - 1, from, sizeof(from)) < 0 ||
			    tlog_path(c, g, to, sizeof(to)) < 0)
				continue;
			if (rename(from, to) < 0 && errno != ENOENT)
				break;
		}
	}
	tlog_open_file(c);
}

int tlog_open(const char *dir, const tlog_options *opt, const char **error_r)
{
	int n = snprintf(tlog_dir, sizeof(tlog_dir), "%s", dir);
	if (n < 0 || (size_t)n >= sizeof(tlog_dir)) {
		*error_r = "log directory path too long";
		return -1;
	}
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		*error_r = "cannot create the log directory";
		return -1;
	}
	tlog_opt = *opt;
	for (int c = 0; c < TLOG_COUNT; c++) {
		tlog_file *f = &tlog_files[c];
		pthread_mutex_lock(&f->mu);
		if (f->fd >= 0)
			close(f->fd);
		f->fd = -1;
		int r = tlog_open_file((tlog_category)c);
		pthread_mutex_unlock(&f->mu);
		if (r < 0) {
			*error_r = "cannot open a log file";
			tlog_close();
			return -1;
		}
	}
	return 0;
}

void tlog_reopen(void)
{
	for (int c = 0; c < TLOG_COUNT; c++) {
		tlog_file *f = &tlog_files[c];
		pthread_mutex_lock(&f->mu);
		if (f->fd >= 0) {
			close(f->fd);
			f->fd = -1;
			tlog_open_file((tlog_category)c);
		}
		pthread_mutex_unlock(&f->mu);
	}
}

void tlog_close(void)
{
	for (int c = 0; c < TLOG_COUNT; c++) {
		tlog_file *f = &tlog_files[c];
		pthread_mutex_lock(&f->mu);
		if (f->fd >= 0)
			close(f->fd);
		f->fd = -1;
		f->size = 0;
		pthread_mutex_unlock(&f->mu);
	}
}

/* Write all of p; short writes only happen on a full disk or a signal. */
static void tlog_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* One event, one line: control characters (CR, LF, ...) become spaces so that a
 * message cannot forge further lines. */
void tlog(tlog_category c, const char *fmt, ...)
{
	char stamp[32];
	tbuf line = TBUF_INIT;
	va_list ap;

	if ((unsigned)c >= TLOG_COUNT)
		c = TLOG_ERROR;
	tlog_stamp((long)time(NULL), stamp);
	tbuf_append_str(&line, stamp);
	tbuf_append_char(&line, ' ');
	size_t start = line.len;
	va_start(ap, fmt);
	tbuf_vappendf(&line, fmt, ap);
	va_end(ap);
	while (line.len > start && (line.data[line.len - 1] == '\n' || line.data[line.len - 1] == '\r'))
		tbuf_truncate(&line, line.len - 1);
	for (size_t i = start; i < line.len; i++)
		if ((unsigned char)line.data[i] < 0x20 && line.data[i] != '\t')
			line.data[i] = ' ';
	tbuf_append_char(&line, '\n');

	tlog_file *f = &tlog_files[c];
	int to_stderr;
	pthread_mutex_lock(&f->mu);
	if (f->fd >= 0 && tlog_opt.rotate_bytes && f->size > 0 &&
	    f->size + line.len > tlog_opt.rotate_bytes)
		tlog_rotate(c);
	to_stderr = f->fd < 0;
	if (!to_stderr) {
		tlog_write_all(f->fd, line.data, line.len);
		f->size += line.len;
	}
	pthread_mutex_unlock(&f->mu);
	if (to_stderr || (tlog_opt.echo_stderr && (c == TLOG_WARNING || c == TLOG_ERROR)))
		tlog_write_all(STDERR_FILENO, line.data, line.len);
	tbuf_free(&line);
}
