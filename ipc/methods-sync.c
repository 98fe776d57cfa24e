/*
 * Sync and FetchNow: starting syncs through the daemon's scheduler, and the
 * POP3 dry run, answered later (PendingReply) with the retention rules' plan
 * once the account's session has listed the server. ipc/server.c has checked
 * the object, member and signature; the values are checked here. Loop thread
 * only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/props.h"
#include "ipc/server-private.h"

/* A ServiceError from the service API as a D-Bus error reply, "MEMBER: message". */
static DBusMessage *reply_service_error(DBusMessage *m, int r, const char *message) {
        if (r == -ENOMEM)
                return NULL;
        if (r < 0)
                return ipc_reply_error(m, DBUS_ERROR_FAILED, "%s: %s", dbus_message_get_member(m), strerror(-r));
        return ipc_reply_error(m, ipc_error_name((ServiceError)r), "%s: %s", dbus_message_get_member(m),
                               message ? message : "refused");
}

/* Sync(s account) -> (as accounts): "" for every account; returns once the runs are scheduled,
 * with the accounts whose SyncFinished the caller may wait for. */
DBusMessage *ipc_method_sync(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        DBusMessage *reply = NULL;
        DBusMessageIter it, arr;
        ServiceAccount a;
        const char *account;
        char buf[72];
        int r;

        dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &account, DBUS_TYPE_INVALID);
        if (!ipc_check_account(s, m, account, true, &reply))
                return reply;
        r = service_sync(s->daemon, *account ? account : NULL);
        if (r == SERVICE_ERROR_LOCKED)
                return ipc_reply_error(m, ipc_error_name(SERVICE_ERROR_LOCKED),
                                       "Sync: the store is locked: run `tegami unlock` first");
        if (r != 0)
                return ipc_reply_error(m, ipc_error_name(SERVICE_ERROR_NOT_FOUND),
                                       *account ? "Sync: account \"%s\" is not synced by this tegamid"
                                                : "Sync: no account is synced by this tegamid%s",
                                       ipc_shorten(account, buf));
        reply = dbus_message_new_method_return(m);
        if (!reply)
                return NULL;
        dbus_message_iter_init_append(reply, &it);
        if (!dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "s", &arr))
                goto oom;
        for (size_t i = 0; service_get_account(s->daemon, i, &a) == 0; i++) {
                if (*account ? strcmp(a.name, account) != 0 : !service_account_syncable(s->daemon, a.name))
                        continue;
                if (!dbus_message_iter_append_basic(&arr, DBUS_TYPE_STRING, &a.name)) {
                        dbus_message_iter_abandon_container(&it, &arr);
                        goto oom;
                }
        }
        if (!dbus_message_iter_close_container(&it, &arr))
                goto oom;
        return reply;
oom:
        dbus_message_unref(reply);
        return NULL;
}

/* Appends one plan entry as an a{sv}. */
static bool append_plan_item(DBusMessageIter *arr, const ServicePlanItem *it) {
        DBusMessageIter dict;
        dbus_uint64_t size = it->size;
        dbus_bool_t download = it->download, del = it->delete;

        if (!dbus_message_iter_open_container(arr, DBUS_TYPE_ARRAY, "{sv}", &dict))
                return false;
        if (!ipc_dict_append(&dict, "uidl", DBUS_TYPE_STRING, &it->uidl) ||
            !ipc_dict_append(&dict, "size", DBUS_TYPE_UINT64, &size) ||
            !ipc_dict_append(&dict, "action", DBUS_TYPE_STRING, &it->action) ||
            !ipc_dict_append(&dict, "reason", DBUS_TYPE_STRING, &it->reason) ||
            !ipc_dict_append(&dict, "download", DBUS_TYPE_BOOLEAN, &download) ||
            !ipc_dict_append(&dict, "delete", DBUS_TYPE_BOOLEAN, &del) ||
            !ipc_dict_append(&dict, "download_reason", DBUS_TYPE_STRING, &it->download_reason) ||
            !ipc_dict_append(&dict, "delete_reason", DBUS_TYPE_STRING, &it->delete_reason)) {
                dbus_message_iter_abandon_container(arr, &dict);
                return false;
        }
        return dbus_message_iter_close_container(arr, &dict);
}

/* The reply to FetchNow: the plan, or an empty one; NULL on OOM. UIDLs are
 * the server's bytes: anything that is not UTF-8 is shown as "?". */
static DBusMessage *plan_reply(DBusMessage *call, const ServicePlanItem *items, size_t n) {
        DBusMessage *reply = dbus_message_new_method_return(call);
        DBusMessageIter it, arr;

        if (!reply)
                return NULL;
        dbus_message_iter_init_append(reply, &it);
        if (!dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "a{sv}", &arr))
                goto oom;
        for (size_t i = 0; i < n; i++) {
                ServicePlanItem item = items[i];
                _cleanup_free_ char *clean = NULL;

                if (!dbus_validate_utf8(item.uidl, NULL)) {
                        clean = strdup(item.uidl);
                        if (!clean)
                                goto oom_arr;
                        for (char *p = clean; *p; p++)
                                if ((unsigned char)*p >= 0x80)
                                        *p = '?';
                        item.uidl = clean;
                }
                if (!append_plan_item(&arr, &item))
                        goto oom_arr;
        }
        if (!dbus_message_iter_close_container(&it, &arr))
                goto oom;
        return reply;
oom_arr:
        dbus_message_iter_abandon_container(&it, &arr);
oom:
        dbus_message_unref(reply);
        return NULL;
}

static void fetch_plan_cb(ServiceError e, const char *message, const ServicePlanItem *items, size_t n, void *userdata) {
        PendingReply *p = userdata;

        if (e != SERVICE_ERROR_NONE)
                ipc_pending_reply_send(p, ipc_reply_error(p->call, ipc_error_name(e), "FetchNow: %s", message));
        else
                ipc_pending_reply_send(p, plan_reply(p->call, items, n));
}

/* FetchNow(s account, a{sv} options): "dry_run" (b) plans without touching the server's mail. */
DBusMessage *ipc_method_fetch_now(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        _cleanup_free_ char *err = NULL;
        DBusMessage *reply = NULL;
        DBusMessageIter it, dict, entry, v;
        const char *account;
        dbus_bool_t dry_run = FALSE;
        ServiceAccount a;
        PendingReply *p;
        int r;

        dbus_message_iter_init(m, &it);
        dbus_message_iter_get_basic(&it, &account);
        if (!ipc_check_account(s, m, account, false, &reply))
                return reply;
        dbus_message_iter_next(&it);
        for (dbus_message_iter_recurse(&it, &dict); dbus_message_iter_get_arg_type(&dict) == DBUS_TYPE_DICT_ENTRY;
             dbus_message_iter_next(&dict)) {
                const char *key;
                char buf[72];

                dbus_message_iter_recurse(&dict, &entry);
                dbus_message_iter_get_basic(&entry, &key);
                dbus_message_iter_next(&entry);
                dbus_message_iter_recurse(&entry, &v);
                if (strcmp(key, "dry_run") != 0 || dbus_message_iter_get_arg_type(&v) != DBUS_TYPE_BOOLEAN)
                        return ipc_reply_error(m, IPC_ERROR_INVALID_ARGS,
                                               "FetchNow: unknown option \"%s\" or wrong type (dry_run b)",
                                               ipc_shorten(key, buf));
                dbus_message_iter_get_basic(&v, &dry_run);
        }
        if (service_find_account(s->daemon, account, &a) == 0 && strcmp(a.protocol, "pop3") != 0)
                return ipc_reply_error(m, IPC_ERROR_NOT_SUPPORTED, "FetchNow: account %s is an IMAP account: use Sync",
                                       a.name);
        if (!dry_run) {
                r = service_sync(s->daemon, account);
                if (r != 0)
                        return ipc_reply_error(m, ipc_error_name((ServiceError)r), "FetchNow: account %s %s", account,
                                               r == SERVICE_ERROR_LOCKED ? "waits for the store to be unlocked"
                                                                         : "is not synced by this tegamid");
                return plan_reply(m, NULL, 0);
        }
        p = ipc_pending_reply_new(s, m);
        if (!p)
                return NULL;
        r = service_fetch_plan(s->daemon, account, fetch_plan_cb, p, &err);
        if (r == 0)
                return IPC_REPLY_DEFERRED;
        ipc_pending_reply_free(p);
        return reply_service_error(m, r, err);
}
