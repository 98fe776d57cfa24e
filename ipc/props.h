/*
 * The read-only properties of org.tegami.Mail1 (from a ServiceStatus) and of
 * org.tegami.Mail1.Account (from a ServiceAccount), as tables that write
 * D-Bus values, and the mapping of service codes to D-Bus names.
 */
#pragma once

#include <dbus/dbus.h>
#include <stdbool.h>
#include <stddef.h>

#include "daemon/service.h"

#define IPC_IFACE_MANAGER "org.tegami.Mail1"
#define IPC_IFACE_ACCOUNT "org.tegami.Mail1.Account"

typedef struct IpcProperty {
        const char *name;
        const char *signature;
        /* Appends the value (of signature) to it; false on OOM. */
        bool (*append)(DBusMessageIter *it, const void *object);
} IpcProperty;

typedef struct IpcPropertyTable {
        const char *interface;
        const IpcProperty *props;
        size_t n_props;
} IpcPropertyTable;

/* Object is a const ServiceStatus *. */
extern const IpcPropertyTable ipc_props_manager;
/* Object is a const ServiceAccount *. */
extern const IpcPropertyTable ipc_props_account;

/* The property called name in t, or NULL. */
const IpcProperty *ipc_props_find(const IpcPropertyTable *t, const char *name);

/* Appends p's value wrapped in a variant; false on OOM. */
bool ipc_props_append_variant(DBusMessageIter *it, const IpcProperty *p, const void *object);

/* Appends a{sv} with every property of t (or only those with changed[i] set
 * when changed is not NULL); false on OOM. */
bool ipc_props_append_all(DBusMessageIter *it, const IpcPropertyTable *t, const void *object, const bool *changed);

/* "org.tegami.Mail1.Error.NotFound", ...; NULL for SERVICE_ERROR_NONE. */
const char *ipc_error_name(ServiceError e);

/* "idle", "syncing", ... as the Account State property says. */
const char *ipc_account_state_name(ServiceAccountState s);
