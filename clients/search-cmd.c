/*
 * `tegami search` (see clients/search-cmd.h). One Search call; the reply's
 * summaries are printed as a table (id, date, flags, account/folder, from,
 * subject) or, with --json, as {"offset":N,"messages":[…]} where each message
 * is its a{sv} written out key by key, whatever keys tegamid sends.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/search-cmd.h"

/* The string, integer or string-array value of one variant, as JSON. */
static void json_variant(DBusMessageIter *v) {
        DBusMessageIter arr;
        const char *s;
        dbus_uint64_t u;
        dbus_int64_t i;
        bool first = true;

        switch (dbus_message_iter_get_arg_type(v)) {
        case DBUS_TYPE_STRING:
                dbus_message_iter_get_basic(v, &s);
                json_string(s);
                break;
        case DBUS_TYPE_UINT64:
                dbus_message_iter_get_basic(v, &u);
                printf("%" PRIu64, (uint64_t)u);
                break;
        case DBUS_TYPE_INT64:
                dbus_message_iter_get_basic(v, &i);
                printf("%" PRId64, (int64_t)i);
                break;
        case DBUS_TYPE_ARRAY:
                putchar('[');
                for (dbus_message_iter_recurse(v, &arr); dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_STRING;
                     dbus_message_iter_next(&arr)) {
                        dbus_message_iter_get_basic(&arr, &s);
                        if (!first)
                                putchar(',');
                        json_string(s);
                        first = false;
                }
                putchar(']');
                break;
        default:
                fputs("null", stdout);
        }
}

/* One match: JSON, or a table row from the keys the table shows. */
static void print_match(DBusMessageIter *dict, bool json) {
        const char *from = "", *subject = "", *account = "", *folder = "";
        dbus_uint64_t id = 0;
        dbus_int64_t date = 0;
        bool first = true, seen = false, flagged = false;
        DBusMessageIter e, v, arr;
        char when[32];

        if (json)
                putchar('{');
        for (dbus_message_iter_recurse(dict, &e); dbus_message_iter_get_arg_type(&e) == DBUS_TYPE_DICT_ENTRY;
             dbus_message_iter_next(&e)) {
                DBusMessageIter kv;
                const char *key;

                dbus_message_iter_recurse(&e, &kv);
                dbus_message_iter_get_basic(&kv, &key);
                dbus_message_iter_next(&kv);
                dbus_message_iter_recurse(&kv, &v);
                if (json) {
                        json_key(key, &first);
                        json_variant(&v);
                        continue;
                }
                if (!strcmp(key, "id"))
                        dbus_message_iter_get_basic(&v, &id);
                else if (!strcmp(key, "date"))
                        dbus_message_iter_get_basic(&v, &date);
                else if (!strcmp(key, "from"))
                        dbus_message_iter_get_basic(&v, &from);
                else if (!strcmp(key, "subject"))
                        dbus_message_iter_get_basic(&v, &subject);
                else if (!strcmp(key, "account"))
                        dbus_message_iter_get_basic(&v, &account);
                else if (!strcmp(key, "folder"))
                        dbus_message_iter_get_basic(&v, &folder);
                else if (!strcmp(key, "flags"))
                        for (dbus_message_iter_recurse(&v, &arr);
                             dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_STRING; dbus_message_iter_next(&arr)) {
                                const char *f;

                                dbus_message_iter_get_basic(&arr, &f);
                                seen |= !strcmp(f, "\\Seen");
                                flagged |= !strcmp(f, "\\Flagged");
                        }
        }
        if (json) {
                putchar('}');
                return;
        }
        printf("%-8" PRIu64 " %-16s %c%c %-24.24s %-24.24s %s\n", (uint64_t)id, cli_when(date, when, sizeof when),
               seen ? ' ' : 'N', flagged ? 'F' : ' ', folder, from, subject);
        (void)account;
}

/* Appends {key: variant of one basic type} to an open a{sv}. */
static bool append_option(DBusMessageIter *dict, const char *key, int type, const void *value) {
        DBusMessageIter e, v;
        const char sig[2] = {(char)type, '\0'};

        return dbus_message_iter_open_container(dict, DBUS_TYPE_DICT_ENTRY, NULL, &e) &&
               dbus_message_iter_append_basic(&e, DBUS_TYPE_STRING, &key) &&
               dbus_message_iter_open_container(&e, DBUS_TYPE_VARIANT, sig, &v) &&
               dbus_message_iter_append_basic(&v, type, value) && dbus_message_iter_close_container(&e, &v) &&
               dbus_message_iter_close_container(dict, &e);
}

int cmd_search(DBusConnection *conn, const CliArgs *a) {
        DBusMessageIter it, opts, arr;
        DBusMessage *m, *reply = NULL;
        dbus_uint32_t limit = a->limit ? a->limit : 50;
        dbus_uint64_t offset = a->offset;
        char *query = NULL;
        size_t len = 0;
        bool first = true;
        int r;

        if (a->n_args == 0) {
                fputs("tegami search: usage: tegami search QUERY... [--json] [--account A] [--limit N] [--offset N]\n",
                      stderr);
                return EXIT_USAGE;
        }
        for (size_t i = 0; i < a->n_args; i++) {
                size_t n = strlen(a->args[i]);
                char *q = realloc(query, len + n + 2);

                if (!q) {
                        free(query);
                        return EXIT_FAILURE;
                }
                query = q;
                if (len)
                        query[len++] = ' ';
                memcpy(query + len, a->args[i], n + 1);
                len += n;
        }
        m = cli_method("Search");
        if (!m) {
                free(query);
                return EXIT_FAILURE;
        }
        dbus_message_iter_init_append(m, &it);
        if (!dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &query) ||
            !dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &opts) ||
            (a->account && !append_option(&opts, "account", DBUS_TYPE_STRING, &a->account)) ||
            !append_option(&opts, "limit", DBUS_TYPE_UINT32, &limit) ||
            !append_option(&opts, "offset", DBUS_TYPE_UINT64, &offset) ||
            !dbus_message_iter_close_container(&it, &opts)) {
                free(query);
                dbus_message_unref(m);
                return EXIT_FAILURE;
        }
        free(query);
        r = cli_call(conn, m, a->name, DBUS_TIMEOUT_USE_DEFAULT, &reply);
        if (r != 0)
                return r;
        if (!dbus_message_has_signature(reply, "aa{sv}")) {
                dbus_message_unref(reply);
                fputs("tegami search: malformed reply\n", stderr);
                return EXIT_DAEMON;
        }
        dbus_message_iter_init(reply, &it);
        dbus_message_iter_recurse(&it, &arr);
        if (a->json)
                printf("{\"offset\":%" PRIu64 ",\"messages\":[", (uint64_t)offset);
        for (; dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_ARRAY; dbus_message_iter_next(&arr)) {
                if (a->json && !first)
                        putchar(',');
                print_match(&arr, a->json);
                first = false;
        }
        if (a->json)
                puts("]}");
        else if (first)
                puts("no messages match");
        dbus_message_unref(reply);
        return 0;
}
