/*
 * Helpers every `tegami` command uses (see clients/cli.h): JSON strings,
 * blocking calls to tegamid with one error convention, dates.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clients/cli.h"

void json_string(const char *s) {
        putchar('"');
        for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
                if (*p == '"' || *p == '\\')
                        printf("\\%c", *p);
                else if (*p == '\n')
                        fputs("\\n", stdout);
                else if (*p == '\t')
                        fputs("\\t", stdout);
                else if (*p < 0x20 || *p == 0x7f)
                        printf("\\u%04x", *p);
                else
                        putchar(*p);
        }
        putchar('"');
}

void json_key(const char *key, bool *first) {
        if (!*first)
                putchar(',');
        *first = false;
        json_string(key);
        putchar(':');
}

bool cli_error_means_unavailable(const char *name) {
        return strcmp(name, DBUS_ERROR_SERVICE_UNKNOWN) == 0 || strcmp(name, DBUS_ERROR_NAME_HAS_NO_OWNER) == 0 ||
               strcmp(name, DBUS_ERROR_NO_REPLY) == 0 || strcmp(name, DBUS_ERROR_DISCONNECTED) == 0 ||
               strcmp(name, DBUS_ERROR_TIMEOUT) == 0 || strncmp(name, "org.freedesktop.DBus.Error.Spawn.", 33) == 0;
}

DBusMessage *cli_method(const char *method) {
        return dbus_message_new_method_call(BUS_NAME, BUS_PATH, BUS_IFACE, method);
}

int cli_call(DBusConnection *conn, DBusMessage *m, const char *what, int timeout_ms, DBusMessage **replyp) {
        DBusError e;

        *replyp = NULL;
        if (!m) {
                fputs("tegami: out of memory\n", stderr);
                return 1;
        }
        dbus_error_init(&e);
        *replyp = dbus_connection_send_with_reply_and_block(conn, m, timeout_ms, &e);
        dbus_message_unref(m);
        if (*replyp)
                return 0;
        if (cli_error_means_unavailable(e.name)) {
                fprintf(stderr, "tegami: tegamid is not running and could not be started: %s\n", e.message);
                dbus_error_free(&e);
                return EXIT_UNAVAILABLE;
        }
        fprintf(stderr, "tegami %s: %s: %s\n", what, e.name, e.message);
        dbus_error_free(&e);
        return EXIT_DAEMON;
}

const char *cli_when(int64_t t, char *buf, size_t size) {
        time_t tt = (time_t)t;
        struct tm tm;

        if (t <= 0 || !localtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M", &tm) == 0)
                return "never";
        return buf;
}
