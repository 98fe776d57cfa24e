/*
 * What the `tegami` commands share (clients/tegami.c, mail-cmds.c, sync-cmds.c):
 * exit codes, JSON output, synchronous calls to tegamid and the parsed
 * command line. Single-threaded.
 */
#pragma once

#include <dbus/dbus.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUS_NAME  "org.tegami.Mail1"
#define BUS_PATH  "/org/tegami/Mail1"
#define BUS_IFACE "org.tegami.Mail1"

enum { EXIT_DAEMON = 1, EXIT_USAGE = 2, EXIT_UNAVAILABLE = 69 };

/* The command line after the global options: args are the command's words. */
typedef struct CliArgs {
        const char *name; /* the command */
        char **args;      /* its arguments, n_args of them */
        size_t n_args;
        bool json, raw;
        bool wait, dry_run; /* sync --wait, fetch --dry-run */
        const char *account;
        uint32_t limit;      /* --limit, 0 when not given */
        uint64_t offset;     /* --offset */
        uint64_t attachment; /* show --attachment N (from 1), 0 when not given */
        const char *output;  /* show -o FILE, NULL when not given */
} CliArgs;

/* Writes s as a JSON string to stdout. */
void json_string(const char *s);

/* Writes "key": with a comma before all but the first. */
void json_key(const char *key, bool *first);

/* True for the D-Bus errors that mean tegamid is not there. */
bool cli_error_means_unavailable(const char *name);

/* Sends m (consumed) and waits for the reply; on failure prints why, prefixed
 * with "tegami WHAT: ", and returns the exit code. timeout_ms -1: default. */
int cli_call(DBusConnection *conn, DBusMessage *m, const char *what, int timeout_ms, DBusMessage **replyp);

/* A new call to method on tegamid's main object; NULL on OOM. */
DBusMessage *cli_method(const char *method);

/* t as local "YYYY-MM-DD HH:MM", or "never" for 0. */
const char *cli_when(int64_t t, char *buf, size_t size);

/* The mail and outbox commands (clients/mail-cmds.c). */
int cmd_folders(DBusConnection *conn, const CliArgs *a);
int cmd_list(DBusConnection *conn, const CliArgs *a);
int cmd_show(DBusConnection *conn, const CliArgs *a);
int cmd_flag(DBusConnection *conn, const CliArgs *a);
int cmd_move(DBusConnection *conn, const CliArgs *a);
int cmd_delete(DBusConnection *conn, const CliArgs *a);
int cmd_outbox(DBusConnection *conn, const CliArgs *a);

/* The commands that follow signals (clients/sync-cmds.c). */
int cmd_sync(DBusConnection *conn, const CliArgs *a);
int cmd_fetch(DBusConnection *conn, const CliArgs *a);
int cmd_watch(DBusConnection *conn, const CliArgs *a);
