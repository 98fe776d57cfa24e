/*
 * Logging to stderr with syslog levels. Under systemd (JOURNAL_STREAM names our
 * stderr) each line carries a "<N>" priority prefix so journald files the level;
 * on a terminal lines read "tegamid: warning: [account] text". Lines about an
 * account name it through the log_acct_*() forms. Never pass secrets.
 */
#pragma once

#include <stdarg.h>
#include <syslog.h>

#include "util/macro.h"

/* Reads JOURNAL_STREAM and TEGAMI_LOG_LEVEL; the program name prefixes terminal lines. */
void log_setup(const char *progname);

/* Drops messages less important than level (a LOG_* value). */
void log_set_max_level(int level);
int log_get_max_level(void);

/* Parses "error", "warning", "notice", "info", "debug"; -1 when unknown. */
int log_level_from_string(const char *s);

/* Writes one line at level (LOG_*), prefixed with the account name when not NULL. */
void log_full(int level, const char *account, const char *fmt, ...) _printf_(3, 4);
void log_fullv(int level, const char *account, const char *fmt, va_list ap) _printf_(3, 0);

#define log_error(...) log_full(LOG_ERR, NULL, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, NULL, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, NULL, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...) log_full(LOG_DEBUG, NULL, __VA_ARGS__)

#define log_acct_error(a, ...) log_full(LOG_ERR, (a), __VA_ARGS__)
#define log_acct_warning(a, ...) log_full(LOG_WARNING, (a), __VA_ARGS__)
#define log_acct_notice(a, ...) log_full(LOG_NOTICE, (a), __VA_ARGS__)
#define log_acct_info(a, ...) log_full(LOG_INFO, (a), __VA_ARGS__)
#define log_acct_debug(a, ...) log_full(LOG_DEBUG, (a), __VA_ARGS__)
