/* log.h - the server logs of the guide (ch. 24) under DATA/logs/.
 * One file per category, one line per event, "[DD/Mon/YYYY HH:MM:SS] text".
 * Thread-safe. Files rotate by size (name.log -> name.log.1 ... name.log.N) and are
 * reopened on tlog_reopen() (SIGHUP). Before tlog_open() lines go to stderr. */
#ifndef TERN_LOG_H
#define TERN_LOG_H
#include <stddef.h>

typedef enum {
	TLOG_CONFIG, TLOG_MAIL, TLOG_SECURITY, TLOG_WARNING, TLOG_ERROR,
	TLOG_OPERATIONS, TLOG_SPAM, TLOG_DEBUG,
	TLOG_COUNT
} tlog_category;

typedef struct tlog_options {
	size_t rotate_bytes;   /* rotate when a file would exceed this; 0 = never */
	unsigned keep_files;   /* rotated files kept per log */
	int echo_stderr;       /* also write warning/error lines to stderr (foreground) */
} tlog_options;

/* Open (creating) every log file under dir. 0 ok, -1 with *error_r (static string). */
int tlog_open(const char *dir, const tlog_options *opt, const char **error_r);
/* Close and open every file again (after logrotate, on SIGHUP). Safe from any thread,
 * not from a signal handler. */
void tlog_reopen(void);
void tlog_close(void);
const char *tlog_category_name(tlog_category c);   /* "config", "mail", ... */
/* Write one line. A trailing newline in fmt is not needed. */
void tlog(tlog_category c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Format "[DD/Mon/YYYY HH:MM:SS]" for time t into out (at least 23 bytes). */
void tlog_stamp(long t, char out[32]);

#endif
