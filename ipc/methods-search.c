/*
 * Search(s query, a{sv} options) → aa{sv} of org.tegami.Mail1. ipc/methods.c
 * has matched the signature and validated the query's length and the options'
 * names, types and account/folder values; this reads them, calls the service
 * API (daemon/service-search.h) and builds the summaries as ListMessages does
 * (ipc/methods-mail.c), plus "account" and "folder" so a front end can tell
 * where each match lives. Loop thread only.
 */
#include <errno.h>
#include <string.h>

#include "daemon/service-search.h"
#include "ipc/props.h"
#include "ipc/server-private.h"

#define IPC_SEARCH_LIMIT_DEFAULT 50
#define IPC_SEARCH_LIMIT_MAX     1000

typedef struct SearchOptions {
        const char *account, *folder; /* NULL for any */
        dbus_uint32_t limit;
        dbus_uint64_t offset;
} SearchOptions;

/* Reads the options methods.c validated; "offset" (t) is read too. */
static void read_options(DBusMessageIter *it, SearchOptions *o) {
        DBusMessageIter dict, entry, v;

        for (dbus_message_iter_recurse(it, &dict); dbus_message_iter_get_arg_type(&dict) == DBUS_TYPE_DICT_ENTRY;
             dbus_message_iter_next(&dict)) {
                const char *key;
                int type;

                dbus_message_iter_recurse(&dict, &entry);
                dbus_message_iter_get_basic(&entry, &key);
                dbus_message_iter_next(&entry);
                dbus_message_iter_recurse(&entry, &v);
                type = dbus_message_iter_get_arg_type(&v);
                if (!strcmp(key, "account") && type == DBUS_TYPE_STRING)
                        dbus_message_iter_get_basic(&v, &o->account);
                else if (!strcmp(key, "folder") && type == DBUS_TYPE_STRING)
                        dbus_message_iter_get_basic(&v, &o->folder);
                else if (!strcmp(key, "limit") && type == DBUS_TYPE_UINT32)
                        dbus_message_iter_get_basic(&v, &o->limit);
                else if (!strcmp(key, "offset") && type == DBUS_TYPE_UINT64)
                        dbus_message_iter_get_basic(&v, &o->offset);
        }
}

DBusMessage *ipc_method_search(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        _cleanup_free_ char *err = NULL;
        SearchOptions opt = {.limit = IPC_SEARCH_LIMIT_DEFAULT};
        ServiceMessage *msgs = NULL;
        DBusMessage *reply = NULL;
        DBusMessageIter it, arr;
        const char *query;
        size_t n = 0;
        int r;

        dbus_message_iter_init(m, &it);
        dbus_message_iter_get_basic(&it, &query);
        dbus_message_iter_next(&it);
        read_options(&it, &opt);
        if (opt.limit < 1 || opt.limit > IPC_SEARCH_LIMIT_MAX)
                return ipc_reply_invalid(m, "limit must be 1 to 1000");
        r = service_search(s->daemon, query, opt.account && *opt.account ? opt.account : NULL,
                           opt.folder && *opt.folder ? opt.folder : NULL, opt.offset, opt.limit, &msgs, &n, &err);
        if (r == -ENOMEM)
                return NULL;
        if (r < 0)
                return ipc_reply_error(m, DBUS_ERROR_FAILED, "Search: %s", err ? err : strerror(-r));
        if (r > 0)
                return ipc_reply_error(m, ipc_error_name((ServiceError)r) ?: DBUS_ERROR_FAILED, "Search: %s",
                                       err ? err : "failed");
        reply = dbus_message_new_method_return(m);
        if (!reply)
                goto oom;
        dbus_message_iter_init_append(reply, &it);
        if (!dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "a{sv}", &arr))
                goto oom;
        for (size_t i = 0; i < n; i++)
                if (!ipc_append_message_summary(&arr, &msgs[i], true)) {
                        dbus_message_iter_abandon_container(&it, &arr);
                        goto oom;
                }
        if (!dbus_message_iter_close_container(&it, &arr))
                goto oom;
        service_message_list_free(msgs, n);
        return reply;
oom:
        if (reply)
                dbus_message_unref(reply);
        service_message_list_free(msgs, n);
        return NULL;
}
