/*
 * Property tables for tegami's D-Bus objects. Each property is one small
 * append function over a snapshot the service API filled, so Get, GetAll,
 * Status, GetManagedObjects and the change signals all write the same values
 * from the same code. Loop thread only; no state.
 */
#include <stdint.h>
#include <string.h>

#include "ipc/props.h"
#include "util/macro.h"

const char *ipc_error_name(ServiceError e) {
        static const char *const names[] = {
                [SERVICE_ERROR_NONE] = NULL,
                [SERVICE_ERROR_NOT_FOUND] = "org.tegami.Mail1.Error.NotFound",
                [SERVICE_ERROR_LOCKED] = "org.tegami.Mail1.Error.Locked",
                [SERVICE_ERROR_AUTH_FAILED] = "org.tegami.Mail1.Error.AuthFailed",
                [SERVICE_ERROR_NETWORK] = "org.tegami.Mail1.Error.Network",
                [SERVICE_ERROR_TLS] = "org.tegami.Mail1.Error.Tls",
                [SERVICE_ERROR_BUSY] = "org.tegami.Mail1.Error.Busy",
                [SERVICE_ERROR_INVALID_ARGS] = "org.tegami.Mail1.Error.InvalidArgs",
                [SERVICE_ERROR_INVALID_CONFIG] = "org.tegami.Mail1.Error.InvalidConfig",
                [SERVICE_ERROR_NOT_SUPPORTED] = "org.tegami.Mail1.Error.NotSupported",
                [SERVICE_ERROR_FAILED] = "org.freedesktop.DBus.Error.Failed",
        };

        return (size_t)e < ARRAY_SIZE(names) ? names[e] : NULL;
}

const char *ipc_account_state_name(ServiceAccountState s) {
        static const char *const names[] = {
                [SERVICE_ACCOUNT_IDLE] = "idle",       [SERVICE_ACCOUNT_CONNECTING] = "connecting",
                [SERVICE_ACCOUNT_SYNCING] = "syncing", [SERVICE_ACCOUNT_SENDING] = "sending",
                [SERVICE_ACCOUNT_ERROR] = "error",     [SERVICE_ACCOUNT_LOCKED] = "locked",
                [SERVICE_ACCOUNT_PAUSED] = "paused",
        };

        return (size_t)s < ARRAY_SIZE(names) && names[s] ? names[s] : "error";
}

static bool append_string(DBusMessageIter *it, const char *s) {
        return dbus_message_iter_append_basic(it, DBUS_TYPE_STRING, &s);
}

/* ---- org.tegami.Mail1 ---- */

static bool manager_version(DBusMessageIter *it, const void *o) {
        return append_string(it, ((const ServiceStatus *)o)->version);
}

static bool manager_state(DBusMessageIter *it, const void *o) {
        return append_string(it, ((const ServiceStatus *)o)->state == SERVICE_LOCKED ? "locked" : "running");
}

static const IpcProperty manager_props[] = {
        { "Version", "s", manager_version },
        { "State", "s", manager_state },
};

const IpcPropertyTable ipc_props_manager = { IPC_IFACE_MANAGER, manager_props, ARRAY_SIZE(manager_props) };

/* ---- org.tegami.Mail1.Account ---- */

#define ACCOUNT(o) ((const ServiceAccount *)(o))

static bool account_name(DBusMessageIter *it, const void *o) {
        return append_string(it, ACCOUNT(o)->name);
}

static bool account_address(DBusMessageIter *it, const void *o) {
        return append_string(it, ACCOUNT(o)->address);
}

static bool account_protocol(DBusMessageIter *it, const void *o) {
        return append_string(it, ACCOUNT(o)->protocol);
}

static bool account_server(DBusMessageIter *it, const void *o) {
        return append_string(it, ACCOUNT(o)->server);
}

static bool account_send_server(DBusMessageIter *it, const void *o) {
        return append_string(it, ACCOUNT(o)->send_server);
}

static bool account_state(DBusMessageIter *it, const void *o) {
        return append_string(it, ipc_account_state_name(ACCOUNT(o)->state));
}

static bool account_last_sync(DBusMessageIter *it, const void *o) {
        dbus_int64_t v = ACCOUNT(o)->last_sync;

        return dbus_message_iter_append_basic(it, DBUS_TYPE_INT64, &v);
}

static bool append_u32(DBusMessageIter *it, uint32_t u) {
        dbus_uint32_t v = u;

        return dbus_message_iter_append_basic(it, DBUS_TYPE_UINT32, &v);
}

static bool account_unread(DBusMessageIter *it, const void *o) {
        return append_u32(it, ACCOUNT(o)->unread);
}

static bool account_total(DBusMessageIter *it, const void *o) {
        return append_u32(it, ACCOUNT(o)->total);
}

static bool account_outbox_size(DBusMessageIter *it, const void *o) {
        return append_u32(it, ACCOUNT(o)->outbox_size);
}

static bool account_quota(DBusMessageIter *it, const void *o) {
        dbus_uint64_t used = ACCOUNT(o)->quota_used, limit = ACCOUNT(o)->quota_limit;
        DBusMessageIter st;

        if (!dbus_message_iter_open_container(it, DBUS_TYPE_STRUCT, NULL, &st))
                return false;
        if (!dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT64, &used) ||
            !dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT64, &limit)) {
                dbus_message_iter_abandon_container(it, &st);
                return false;
        }
        return dbus_message_iter_close_container(it, &st);
}

static bool account_last_error(DBusMessageIter *it, const void *o) {
        const char *name = ipc_error_name(ACCOUNT(o)->last_error);
        DBusMessageIter st;

        if (!dbus_message_iter_open_container(it, DBUS_TYPE_STRUCT, NULL, &st))
                return false;
        if (!append_string(&st, name ? name : "") ||
            !append_string(&st, name && ACCOUNT(o)->last_error_message ? ACCOUNT(o)->last_error_message : "")) {
                dbus_message_iter_abandon_container(it, &st);
                return false;
        }
        return dbus_message_iter_close_container(it, &st);
}

static const IpcProperty account_props[] = {
        { "Name", "s", account_name },
        { "Address", "s", account_address },
        { "Protocol", "s", account_protocol },
        { "Server", "s", account_server },
        { "SendServer", "s", account_send_server },
        { "State", "s", account_state },
        { "LastSync", "x", account_last_sync },
        { "Unread", "u", account_unread },
        { "Total", "u", account_total },
        { "Quota", "(tt)", account_quota },
        { "OutboxSize", "u", account_outbox_size },
        { "LastError", "(ss)", account_last_error },
};

const IpcPropertyTable ipc_props_account = { IPC_IFACE_ACCOUNT, account_props, ARRAY_SIZE(account_props) };

/* ---- generic ---- */

const IpcProperty *ipc_props_find(const IpcPropertyTable *t, const char *name) {
        for (size_t i = 0; i < t->n_props; i++)
                if (strcmp(t->props[i].name, name) == 0)
                        return &t->props[i];
        return NULL;
}

bool ipc_props_append_variant(DBusMessageIter *it, const IpcProperty *p, const void *object) {
        DBusMessageIter v;

        if (!dbus_message_iter_open_container(it, DBUS_TYPE_VARIANT, p->signature, &v))
                return false;
        if (!p->append(&v, object)) {
                dbus_message_iter_abandon_container(it, &v);
                return false;
        }
        return dbus_message_iter_close_container(it, &v);
}

bool ipc_props_append_all(DBusMessageIter *it, const IpcPropertyTable *t, const void *object, const bool *changed) {
        DBusMessageIter dict, entry;

        if (!dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "{sv}", &dict))
                return false;
        for (size_t i = 0; i < t->n_props; i++) {
                const IpcProperty *p = &t->props[i];

                if (changed && !changed[i])
                        continue;
                if (!dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry))
                        goto fail;
                if (!append_string(&entry, p->name) || !ipc_props_append_variant(&entry, p, object)) {
                        dbus_message_iter_abandon_container(&dict, &entry);
                        goto fail;
                }
                if (!dbus_message_iter_close_container(&dict, &entry))
                        goto fail;
        }
        return dbus_message_iter_close_container(it, &dict);
fail:
        dbus_message_iter_abandon_container(it, &dict);
        return false;
}
