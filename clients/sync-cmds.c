/*
 * The `tegami` commands that follow the daemon's signals: `sync [--wait]`,
 * `fetch [--dry-run]` and `watch`. Signals are read from the private
 * connection without an event loop: match rules first, then the call, then
 * dbus_connection_read_write() and pop_message() until the outcome is known.
 * Single-threaded.
 */
#include <dbus/dbus.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clients/cli.h"
#include "util/macro.h"

#define MATCH_MAIL1 "type='signal',sender='" BUS_NAME "',interface='" BUS_IFACE "'"
#define MATCH_PROPS "type='signal',sender='" BUS_NAME "',interface='org.freedesktop.DBus.Properties'"
#define MATCH_OWNER                                                                                               \
        "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged'," \
        "arg0='" BUS_NAME "'"

/* A dry run may wait for the account's running session, then lists the server. */
#define FETCH_TIMEOUT_MS (10 * 60 * 1000)

static bool add_match(DBusConnection *conn, const char *rule) {
        DBusError e;

        dbus_error_init(&e);
        dbus_bus_add_match(conn, rule, &e);
        if (dbus_error_is_set(&e)) {
                fprintf(stderr, "tegami: cannot listen for signals: %s\n", e.message);
                dbus_error_free(&e);
                return false;
        }
        return true;
}

/* True when m says tegamid left the bus (its name lost its owner). */
static bool daemon_gone(DBusMessage *m) {
        const char *name, *old, *new;

        if (!dbus_message_is_signal(m, DBUS_INTERFACE_DBUS, "NameOwnerChanged") ||
            !dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &name, DBUS_TYPE_STRING, &old, DBUS_TYPE_STRING, &new,
                                   DBUS_TYPE_INVALID))
                return false;
        return strcmp(name, BUS_NAME) == 0 && !*new;
}

/* ---- sync ---- */

typedef struct SyncWait {
        char *name;
        bool started, finished, success;
        char *error, *message;
} SyncWait;

static SyncWait *sync_find(SyncWait *v, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i].name, name) == 0)
                        return &v[i];
        return NULL;
}

/* The accounts of a Sync reply (as), copied into *vp. */
static int sync_read_reply(DBusMessage *reply, SyncWait **vp, size_t *np) {
        DBusMessageIter it, arr;
        SyncWait *w;
        size_t n = 0;

        if (!dbus_message_has_signature(reply, "as")) {
                fprintf(stderr, "tegami sync: tegamid sent a malformed reply (%s)\n",
                        dbus_message_get_signature(reply));
                return EXIT_DAEMON;
        }
        dbus_message_iter_init(reply, &it);
        w = calloc((size_t)dbus_message_iter_get_element_count(&it) + 1, sizeof *w);
        if (!w)
                return EXIT_FAILURE;
        for (dbus_message_iter_recurse(&it, &arr); dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_STRING;
             dbus_message_iter_next(&arr)) {
                const char *name;

                dbus_message_iter_get_basic(&arr, &name);
                w[n].name = strdup(name);
                if (!w[n++].name) {
                        *vp = w;
                        *np = n;
                        return EXIT_FAILURE;
                }
        }
        *vp = w;
        *np = n;
        return 0;
}

static char *dup_or_empty(const char *s) {
        return strdup(s ? s : "");
}

/* Handles one signal while waiting; returns false when tegamid went away. */
static bool sync_signal(DBusMessage *m, SyncWait *v, size_t n, bool tty) {
        const char *account, *folder, *error, *message;
        dbus_uint32_t done, total;
        dbus_bool_t success;
        SyncWait *w;

        if (daemon_gone(m))
                return false;
        if (dbus_message_is_signal(m, BUS_IFACE, "SyncStarted") &&
            dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &account, DBUS_TYPE_INVALID)) {
                w = sync_find(v, n, account);
                if (w && !w->finished)
                        w->started = true;
        } else if (dbus_message_is_signal(m, BUS_IFACE, "SyncProgress") &&
                   dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &account, DBUS_TYPE_STRING, &folder,
                                         DBUS_TYPE_UINT32, &done, DBUS_TYPE_UINT32, &total, DBUS_TYPE_INVALID)) {
                w = sync_find(v, n, account);
                if (tty && w && w->started && !w->finished) {
                        unsigned width = 30, filled = total ? (unsigned)((uint64_t)done * width / total) : 0;

                        if (filled > width)
                                filled = width;
                        fprintf(stderr, "\r\033[K%s %s [", account, folder);
                        for (unsigned i = 0; i < width; i++)
                                fputc(i < filled ? '#' : '.', stderr);
                        fprintf(stderr, "] %" PRIu32 "/%" PRIu32, done, total);
                        fflush(stderr);
                }
        } else if (dbus_message_is_signal(m, BUS_IFACE, "SyncFinished") &&
                   dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &account, DBUS_TYPE_BOOLEAN, &success,
                                         DBUS_TYPE_STRING, &error, DBUS_TYPE_STRING, &message, DBUS_TYPE_INVALID)) {
                w = sync_find(v, n, account);
                /* Only the run this call started: a run already going when
                 * we asked finishes first, and ours follows it. */
                if (w && w->started && !w->finished) {
                        w->finished = true;
                        w->success = success;
                        w->error = dup_or_empty(error);
                        w->message = dup_or_empty(message);
                        if (tty)
                                fputs("\r\033[K", stderr);
                }
        }
        return true;
}

static int sync_wait(DBusConnection *conn, SyncWait *v, size_t n, bool json) {
        bool tty = !json && isatty(STDERR_FILENO);
        size_t n_done = 0;
        int r = 0;

        while (n_done < n) {
                DBusMessage *m;

                if (!dbus_connection_read_write(conn, 1000)) {
                        fputs("tegami sync: lost the session bus\n", stderr);
                        return EXIT_UNAVAILABLE;
                }
                while ((m = dbus_connection_pop_message(conn))) {
                        bool alive = sync_signal(m, v, n, tty);

                        dbus_message_unref(m);
                        if (!alive) {
                                fputs("tegami sync: tegamid left the bus before the sync ended\n", stderr);
                                return EXIT_UNAVAILABLE;
                        }
                }
                n_done = 0;
                for (size_t i = 0; i < n; i++)
                        n_done += v[i].finished;
        }
        if (json)
                putchar('[');
        for (size_t i = 0; i < n; i++) {
                const SyncWait *w = &v[i];

                if (!w->success)
                        r = EXIT_DAEMON;
                if (json) {
                        bool first = true;

                        printf("%s{", i ? "," : "");
                        json_key("account", &first), json_string(w->name);
                        json_key("success", &first), fputs(w->success ? "true" : "false", stdout);
                        json_key("error", &first), json_string(w->error);
                        json_key("message", &first), json_string(w->message);
                        putchar('}');
                } else if (w->success) {
                        printf("%s: synced\n", w->name);
                } else {
                        printf("%s: failed: %s\n", w->name, *w->message ? w->message : "no reason given");
                        fprintf(stderr, "tegami sync: %s failed: %s: %s\n", w->name,
                                *w->error ? w->error : "org.tegami.Mail1.Error", w->message);
                }
        }
        if (json)
                puts("]");
        return r;
}

int cmd_sync(DBusConnection *conn, const CliArgs *a) {
        const char *account = a->n_args ? a->args[0] : "";
        DBusMessage *m = cli_method("Sync"), *reply = NULL;
        SyncWait *v = NULL;
        size_t n = 0;
        int r;

        if (!m || !dbus_message_append_args(m, DBUS_TYPE_STRING, &account, DBUS_TYPE_INVALID)) {
                if (m)
                        dbus_message_unref(m);
                fputs("tegami: out of memory\n", stderr);
                return EXIT_FAILURE;
        }
        /* Listen before asking, so that no signal of this sync is missed. */
        if (a->wait && (!add_match(conn, MATCH_MAIL1) || !add_match(conn, MATCH_OWNER))) {
                dbus_message_unref(m);
                return EXIT_UNAVAILABLE;
        }
        r = cli_call(conn, m, "sync", DBUS_TIMEOUT_USE_DEFAULT, &reply);
        if (r == 0) {
                r = sync_read_reply(reply, &v, &n);
                dbus_message_unref(reply);
        }
        if (r == 0 && a->wait) {
                r = sync_wait(conn, v, n, a->json);
        } else if (r == 0 && a->json) {
                fputs("{\"started\":[", stdout);
                for (size_t i = 0; i < n; i++) {
                        if (i)
                                putchar(',');
                        json_string(v[i].name);
                }
                puts("]}");
        } else if (r == 0) {
                for (size_t i = 0; i < n; i++)
                        printf("sync of %s started\n", v[i].name);
        }
        for (size_t i = 0; i < n; i++) {
                free(v[i].name);
                free(v[i].error);
                free(v[i].message);
        }
        free(v);
        return r;
}

/* ---- fetch ---- */

typedef struct PlanRow {
        const char *uidl, *action, *reason, *download_reason, *delete_reason;
        uint64_t size;
        dbus_bool_t download, delete;
} PlanRow;

static void plan_row_read(DBusMessageIter *dict, PlanRow *p) {
        DBusMessageIter entry, v;

        *p = (PlanRow){.uidl = "", .action = "", .reason = "", .download_reason = "", .delete_reason = ""};
        for (; dbus_message_iter_get_arg_type(dict) == DBUS_TYPE_DICT_ENTRY; dbus_message_iter_next(dict)) {
                const char *key;
                int t;

                dbus_message_iter_recurse(dict, &entry);
                dbus_message_iter_get_basic(&entry, &key);
                dbus_message_iter_next(&entry);
                dbus_message_iter_recurse(&entry, &v);
                t = dbus_message_iter_get_arg_type(&v);
                if (t == DBUS_TYPE_STRING) {
                        const char **dst = strcmp(key, "uidl") == 0              ? &p->uidl
                                           : strcmp(key, "action") == 0          ? &p->action
                                           : strcmp(key, "reason") == 0          ? &p->reason
                                           : strcmp(key, "download_reason") == 0 ? &p->download_reason
                                           : strcmp(key, "delete_reason") == 0   ? &p->delete_reason
                                                                                 : NULL;
                        if (dst)
                                dbus_message_iter_get_basic(&v, dst);
                } else if (t == DBUS_TYPE_UINT64 && strcmp(key, "size") == 0) {
                        dbus_message_iter_get_basic(&v, &p->size);
                } else if (t == DBUS_TYPE_BOOLEAN && strcmp(key, "download") == 0) {
                        dbus_message_iter_get_basic(&v, &p->download);
                } else if (t == DBUS_TYPE_BOOLEAN && strcmp(key, "delete") == 0) {
                        dbus_message_iter_get_basic(&v, &p->delete);
                }
        }
}

static void plan_print(DBusMessage *reply, const char *account, bool json) {
        DBusMessageIter it, arr, dict;
        size_t n = 0, n_fetch = 0, n_delete = 0;
        PlanRow p;

        dbus_message_iter_init(reply, &it);
        if (json)
                putchar('[');
        else
                printf("%-40s %10s  %-6s  %s\n", "UIDL", "SIZE", "ACTION", "REASON");
        for (dbus_message_iter_recurse(&it, &arr); dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_ARRAY;
             dbus_message_iter_next(&arr), n++) {
                dbus_message_iter_recurse(&arr, &dict);
                plan_row_read(&dict, &p);
                n_fetch += p.download;
                n_delete += p.delete;
                if (json) {
                        bool first = true;

                        printf("%s{", n ? "," : "");
                        json_key("uidl", &first), json_string(p.uidl);
                        json_key("size", &first), printf("%" PRIu64, p.size);
                        json_key("action", &first), json_string(p.action);
                        json_key("reason", &first), json_string(p.reason);
                        json_key("download", &first), fputs(p.download ? "true" : "false", stdout);
                        json_key("delete", &first), fputs(p.delete ? "true" : "false", stdout);
                        json_key("download_reason", &first), json_string(p.download_reason);
                        json_key("delete_reason", &first), json_string(p.delete_reason);
                        putchar('}');
                } else {
                        printf("%-40s %10" PRIu64 "  %-6s  %s\n", p.uidl, p.size, p.action, p.reason);
                }
        }
        if (json)
                puts("]");
        else
                printf("%s: %zu message%s on the server; a fetch would download %zu and delete %zu "
                       "(dry run: nothing was changed)\n",
                       account, n, n == 1 ? "" : "s", n_fetch, n_delete);
}

int cmd_fetch(DBusConnection *conn, const CliArgs *a) {
        DBusMessage *m = cli_method("FetchNow"), *reply = NULL;
        DBusMessageIter it, dict, entry, v;
        const char *key = "dry_run";
        dbus_bool_t dry = a->dry_run;
        int r;

        if (a->n_args != 1) {
                fputs("tegami fetch: which account? (tegami fetch ACCOUNT [--dry-run])\n", stderr);
                if (m)
                        dbus_message_unref(m);
                return EXIT_USAGE;
        }
        if (!m)
                goto oom;
        dbus_message_iter_init_append(m, &it);
        if (!dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &a->args[0]) ||
            !dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict))
                goto oom;
        if (dry &&
            (!dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry) ||
             !dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key) ||
             !dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, "b", &v) ||
             !dbus_message_iter_append_basic(&v, DBUS_TYPE_BOOLEAN, &dry) ||
             !dbus_message_iter_close_container(&entry, &v) || !dbus_message_iter_close_container(&dict, &entry)))
                goto oom;
        if (!dbus_message_iter_close_container(&it, &dict))
                goto oom;
        r = cli_call(conn, m, "fetch", FETCH_TIMEOUT_MS, &reply);
        if (r != 0)
                return r;
        if (!dbus_message_has_signature(reply, "aa{sv}")) {
                fputs("tegami fetch: tegamid sent a malformed reply\n", stderr);
                dbus_message_unref(reply);
                return EXIT_DAEMON;
        }
        if (dry)
                plan_print(reply, a->args[0], a->json);
        else if (a->json)
                printf("{\"started\":true,\"account\":"), json_string(a->args[0]), puts("}");
        else
                printf("fetch of %s started\n", a->args[0]);
        dbus_message_unref(reply);
        return 0;
oom:
        if (m)
                dbus_message_unref(m);
        fputs("tegami: out of memory\n", stderr);
        return EXIT_FAILURE;
}

/* ---- watch ---- */

static void print_value(DBusMessageIter *it, bool json);

/* An array: a dictionary as {k: v}, anything else as [a, b]. */
static void print_array(DBusMessageIter *it, bool json) {
        DBusMessageIter a, entry;
        bool dict = dbus_message_iter_get_element_type(it) == DBUS_TYPE_DICT_ENTRY, first = true;

        putchar(dict ? '{' : '[');
        for (dbus_message_iter_recurse(it, &a); dbus_message_iter_get_arg_type(&a) != DBUS_TYPE_INVALID;
             dbus_message_iter_next(&a)) {
                fputs(first ? "" : json ? "," : ", ", stdout);
                first = false;
                if (dict) {
                        dbus_message_iter_recurse(&a, &entry);
                        if (dbus_message_iter_get_arg_type(&entry) == DBUS_TYPE_STRING || !json) {
                                print_value(&entry, json);
                        } else {
                                putchar('"');
                                print_value(&entry, false);
                                putchar('"');
                        }
                        fputs(json ? ":" : ": ", stdout);
                        dbus_message_iter_next(&entry);
                        print_value(&entry, json);
                } else {
                        print_value(&a, json);
                }
        }
        putchar(dict ? '}' : ']');
}

/* One value: JSON, or text where strings are bare unless they need quotes. */
static void print_value(DBusMessageIter *it, bool json) {
        DBusMessageIter sub;
        DBusBasicValue v;
        int t = dbus_message_iter_get_arg_type(it);

        switch (t) {
        case DBUS_TYPE_STRING:
        case DBUS_TYPE_OBJECT_PATH:
        case DBUS_TYPE_SIGNATURE:
                dbus_message_iter_get_basic(it, &v);
                if (json || !*v.str || strpbrk(v.str, " \t\n\"\\,:[]{}"))
                        json_string(v.str);
                else
                        fputs(v.str, stdout);
                break;
        case DBUS_TYPE_BOOLEAN:
                dbus_message_iter_get_basic(it, &v);
                fputs(v.bool_val ? "true" : "false", stdout);
                break;
        case DBUS_TYPE_BYTE:
                dbus_message_iter_get_basic(it, &v);
                printf("%u", v.byt);
                break;
        case DBUS_TYPE_INT16:
                dbus_message_iter_get_basic(it, &v);
                printf("%d", v.i16);
                break;
        case DBUS_TYPE_UINT16:
                dbus_message_iter_get_basic(it, &v);
                printf("%u", v.u16);
                break;
        case DBUS_TYPE_INT32:
                dbus_message_iter_get_basic(it, &v);
                printf("%" PRId32, v.i32);
                break;
        case DBUS_TYPE_UINT32:
        case DBUS_TYPE_UNIX_FD:
                dbus_message_iter_get_basic(it, &v);
                printf("%" PRIu32, v.u32);
                break;
        case DBUS_TYPE_INT64:
                dbus_message_iter_get_basic(it, &v);
                printf("%" PRId64, v.i64);
                break;
        case DBUS_TYPE_UINT64:
                dbus_message_iter_get_basic(it, &v);
                printf("%" PRIu64, v.u64);
                break;
        case DBUS_TYPE_DOUBLE:
                dbus_message_iter_get_basic(it, &v);
                printf("%g", v.dbl);
                break;
        case DBUS_TYPE_VARIANT:
                dbus_message_iter_recurse(it, &sub);
                print_value(&sub, json);
                break;
        case DBUS_TYPE_ARRAY:
                print_array(it, json);
                break;
        case DBUS_TYPE_STRUCT: {
                bool first = true;

                putchar(json ? '[' : '(');
                for (dbus_message_iter_recurse(it, &sub); dbus_message_iter_get_arg_type(&sub) != DBUS_TYPE_INVALID;
                     dbus_message_iter_next(&sub)) {
                        fputs(first ? "" : json ? "," : ", ", stdout);
                        first = false;
                        print_value(&sub, json);
                }
                putchar(json ? ']' : ')');
                break;
        }
        default:
                fputs("null", stdout);
                break;
        }
}

/* One signal as one line. */
static void watch_print(DBusMessage *m, bool json) {
        DBusMessageIter it;
        bool first = true;
        const char *path = dbus_message_get_path(m);
        const char *member = dbus_message_get_member(m);

        if (json) {
                putchar('{');
                json_key("time", &first), printf("%lld", (long long)time(NULL));
                json_key("signal", &first), json_string(member);
                json_key("path", &first), json_string(path);
                json_key("args", &first), putchar('[');
        } else {
                fputs(member, stdout);
                if (strcmp(path, BUS_PATH) != 0)
                        printf(" %s", path);
        }
        first = true;
        if (dbus_message_iter_init(m, &it))
                do {
                        fputs(json ? (first ? "" : ",") : " ", stdout);
                        first = false;
                        print_value(&it, json);
                } while (dbus_message_iter_next(&it));
        puts(json ? "]}" : "");
        fflush(stdout);
}

int cmd_watch(DBusConnection *conn, const CliArgs *a) {
        if (!add_match(conn, MATCH_MAIL1) || !add_match(conn, MATCH_PROPS) || !add_match(conn, MATCH_OWNER))
                return EXIT_UNAVAILABLE;
        if (!a->json)
                fputs("watching org.tegami.Mail1 (interrupt to stop)\n", stderr);
        for (;;) {
                DBusMessage *m;

                if (!dbus_connection_read_write(conn, -1)) {
                        fputs("tegami watch: lost the session bus\n", stderr);
                        return EXIT_UNAVAILABLE;
                }
                while ((m = dbus_connection_pop_message(conn))) {
                        if (dbus_message_get_type(m) == DBUS_MESSAGE_TYPE_SIGNAL) {
                                const char *iface = dbus_message_get_interface(m);

                                if (daemon_gone(m)) {
                                        if (!a->json)
                                                fputs("tegami watch: tegamid left the bus; waiting for it\n", stderr);
                                } else if (iface && (strcmp(iface, BUS_IFACE) == 0 ||
                                                     strcmp(iface, DBUS_INTERFACE_PROPERTIES) == 0)) {
                                        watch_print(m, a->json);
                                }
                        }
                        dbus_message_unref(m);
                }
        }
}
