/*
 * Line-oriented logging to stderr. One process-wide state, set once at start-up
 * by log_setup() on the main thread; log_full() may be called from any thread
 * (one fprintf per line, which stdio locks).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/log.h"

static const char *log_progname = "tegami";
static int log_max_level = LOG_INFO;
static bool log_journal;

static const char *const level_names[] = {
        [LOG_EMERG] = "emergency", [LOG_ALERT] = "alert",   [LOG_CRIT] = "critical",
        [LOG_ERR] = "error",       [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",       [LOG_DEBUG] = "debug",
};

/* JOURNAL_STREAM is "DEV:INO" of the stream journald connected; only trust it
 * when it still is our stderr (a child with redirected stderr must not use it). */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(const char *progname) {
        const char *lvl = getenv("TEGAMI_LOG_LEVEL");

        if (progname) {
                const char *slash = strrchr(progname, '/');
                log_progname = slash ? slash + 1 : progname;
        }
        log_journal = stderr_is_journal();
        if (lvl && log_level_from_string(lvl) >= 0)
                log_max_level = log_level_from_string(lvl);
}

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_get_max_level(void) {
        return log_max_level;
}

int log_level_from_string(const char *s) {
        for (size_t i = 0; i < ARRAY_SIZE(level_names); i++)
                if (level_names[i] && strcmp(level_names[i], s) == 0)
                        return (int)i;
        if (strcmp(s, "err") == 0)
                return LOG_ERR;
        if (strcmp(s, "warn") == 0)
                return LOG_WARNING;
        return -1;
}

void log_fullv(int level, const char *account, const char *fmt, va_list ap) {
        char msg[2048], acct[160] = "";

        if (level > log_max_level)
                return;
        vsnprintf(msg, sizeof msg, fmt, ap);
        /* One line per call: a newline inside a message would forge a new entry. */
        for (char *p = msg; *p; p++)
                if (*p == '\n' || *p == '\r')
                        *p = ' ';
        if (account)
                snprintf(acct, sizeof acct, "account %s: ", account);

        if (log_journal)
                fprintf(stderr, "<%d>%s%s\n", level, acct, msg);
        else if (level <= LOG_WARNING)
                fprintf(stderr, "%s: %s: %s%s\n", log_progname, level_names[level], acct, msg);
        else
                fprintf(stderr, "%s: %s%s\n", log_progname, acct, msg);
}

void log_full(int level, const char *account, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        log_fullv(level, account, fmt, ap);
        va_end(ap);
}
