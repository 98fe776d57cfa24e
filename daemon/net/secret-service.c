/*
 * Secret Service client (org.freedesktop.Secret.*, the freedesktop spec) on a
 * private libdbus connection: OpenSession("plain") -> SearchItems(attributes)
 * (a locked item is reported, not unlocked: a daemon cannot answer a prompt) ->
 * Item.GetSecret(session) -> Session.Close. "plain" transfers the value
 * unencrypted, which is fine on the user's own session bus; the copy inside
 * the reply message is wiped before the message is released.
 *
 * Blocking calls only; the caller runs this on a worker thread.
 */
#include <dbus/dbus.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "daemon/net/secret-service.h"
#include "util/macro.h"
#include "util/secret.h"

#define SS_BUS "org.freedesktop.secrets"
#define SS_PATH "/org/freedesktop/secrets"
#define SS_SERVICE "org.freedesktop.Secret.Service"
#define SS_ITEM "org.freedesktop.Secret.Item"
#define SS_SESSION "org.freedesktop.Secret.Session"

static inline void message_unrefp(DBusMessage **m) {
        if (*m)
                dbus_message_unref(*m);
}

/* Sends m and waits; on error fills err and returns NULL. Consumes nothing. */
static DBusMessage *call(DBusConnection *c, DBusMessage *m, int timeout_ms, const char *what, char *err,
                         size_t errsize) {
        DBusError e;
        DBusMessage *reply;

        dbus_error_init(&e);
        reply = dbus_connection_send_with_reply_and_block(c, m, timeout_ms, &e);
        if (!reply) {
                snprintf(err, errsize, "Secret Service %s failed: %s", what, e.message ? e.message : "no reply");
                dbus_error_free(&e);
        }
        return reply;
}

/* Reads an "ao" argument; returns the first path (copied into buf) and the count. */
static int first_path(DBusMessageIter *it, char *buf, size_t size) {
        DBusMessageIter arr;
        int n = 0;

        if (dbus_message_iter_get_arg_type(it) != DBUS_TYPE_ARRAY ||
            dbus_message_iter_get_element_type(it) != DBUS_TYPE_OBJECT_PATH)
                return -1;
        dbus_message_iter_recurse(it, &arr);
        while (dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_OBJECT_PATH) {
                const char *p;

                dbus_message_iter_get_basic(&arr, &p);
                if (n++ == 0)
                        snprintf(buf, size, "%s", p);
                dbus_message_iter_next(&arr);
        }
        return n;
}

static int open_session(DBusConnection *c, int timeout_ms, char *session, size_t size, char *err, size_t errsize) {
        _cleanup_(message_unrefp) DBusMessage *m = NULL, *reply = NULL;
        DBusMessageIter it, var;
        const char *algo = "plain", *empty = "", *path;

        m = dbus_message_new_method_call(SS_BUS, SS_PATH, SS_SERVICE, "OpenSession");
        if (!m)
                return -ENOMEM;
        dbus_message_iter_init_append(m, &it);
        if (!dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &algo) ||
            !dbus_message_iter_open_container(&it, DBUS_TYPE_VARIANT, "s", &var) ||
            !dbus_message_iter_append_basic(&var, DBUS_TYPE_STRING, &empty) ||
            !dbus_message_iter_close_container(&it, &var))
                return -ENOMEM;
        reply = call(c, m, timeout_ms, "OpenSession", err, errsize);
        if (!reply)
                return -EIO;
        if (!dbus_message_iter_init(reply, &it) || !dbus_message_iter_next(&it) ||
            dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_OBJECT_PATH) {
                snprintf(err, errsize, "Secret Service OpenSession: unexpected reply");
                return -EIO;
        }
        dbus_message_iter_get_basic(&it, &path);
        snprintf(session, size, "%s", path);
        return 0;
}

static int search(DBusConnection *c, int timeout_ms, const char *service, const char *account, char *item,
                  size_t size, char *err, size_t errsize) {
        _cleanup_(message_unrefp) DBusMessage *m = NULL, *reply = NULL;
        const char *keys[] = { "service", "account" }, *values[] = { service, account };
        DBusMessageIter it, dict, entry;
        char locked[256];
        int n_unlocked, n_locked;

        m = dbus_message_new_method_call(SS_BUS, SS_PATH, SS_SERVICE, "SearchItems");
        if (!m)
                return -ENOMEM;
        dbus_message_iter_init_append(m, &it);
        if (!dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{ss}", &dict))
                return -ENOMEM;
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
                if (!dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry) ||
                    !dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &keys[i]) ||
                    !dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &values[i]) ||
                    !dbus_message_iter_close_container(&dict, &entry))
                        return -ENOMEM;
        if (!dbus_message_iter_close_container(&it, &dict))
                return -ENOMEM;
        reply = call(c, m, timeout_ms, "SearchItems", err, errsize);
        if (!reply)
                return -EIO;
        if (!dbus_message_iter_init(reply, &it))
                goto bad;
        n_unlocked = first_path(&it, item, size);
        if (n_unlocked < 0 || !dbus_message_iter_next(&it))
                goto bad;
        n_locked = first_path(&it, locked, sizeof locked);
        if (n_locked < 0)
                goto bad;
        if (n_unlocked > 0)
                return 0;
        if (n_locked > 0) {
                snprintf(err, errsize, "the Secret Service item for account %s is locked (unlock the keyring)",
                         account);
                return -EACCES;
        }
        snprintf(err, errsize,
                 "no password found in the Secret Service; store one with: "
                 "secret-tool store --label='tegami %s' service %s account %s",
                 account, service, account);
        return -ENOENT;
bad:
        snprintf(err, errsize, "Secret Service SearchItems: unexpected reply");
        return -EIO;
}

static int get_secret(DBusConnection *c, int timeout_ms, const char *item, const char *session, char **secretp,
                      char *err, size_t errsize) {
        _cleanup_(message_unrefp) DBusMessage *m = NULL, *reply = NULL;
        DBusMessageIter it, st, arr;
        unsigned char *value;
        int n;

        m = dbus_message_new_method_call(SS_BUS, item, SS_ITEM, "GetSecret");
        if (!m || !dbus_message_append_args(m, DBUS_TYPE_OBJECT_PATH, &session, DBUS_TYPE_INVALID))
                return -ENOMEM;
        reply = call(c, m, timeout_ms, "GetSecret", err, errsize);
        if (!reply)
                return -EIO;
        /* (oayays): session, parameters, value, content type */
        if (!dbus_message_iter_init(reply, &it) || dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_STRUCT)
                goto bad;
        dbus_message_iter_recurse(&it, &st);
        if (!dbus_message_iter_next(&st) || !dbus_message_iter_next(&st) ||
            dbus_message_iter_get_arg_type(&st) != DBUS_TYPE_ARRAY ||
            dbus_message_iter_get_element_type(&st) != DBUS_TYPE_BYTE)
                goto bad;
        dbus_message_iter_recurse(&st, &arr);
        dbus_message_iter_get_fixed_array(&arr, &value, &n);
        if (n <= 0 || memchr(value, '\0', (size_t)n)) {
                snprintf(err, errsize, "the Secret Service item is empty or not text");
                return -ENOENT;
        }
        *secretp = secret_strndup((const char *)value, (size_t)n);
        sodium_memzero(value, (size_t)n); /* points into the reply's buffer */
        return *secretp ? 0 : -ENOMEM;
bad:
        snprintf(err, errsize, "Secret Service GetSecret: unexpected reply");
        return -EIO;
}

static void close_session(DBusConnection *c, int timeout_ms, const char *session) {
        _cleanup_(message_unrefp) DBusMessage *m = NULL, *reply = NULL;
        char ignored[64];

        m = dbus_message_new_method_call(SS_BUS, session, SS_SESSION, "Close");
        if (m)
                reply = call(c, m, timeout_ms, "Close", ignored, sizeof ignored);
}

int secret_service_lookup(const char *service, const char *account, int timeout_ms, char **secretp, char *err,
                          size_t errsize) {
        char session[256], item[256];
        DBusConnection *c;
        DBusError e;
        int r;

        dbus_error_init(&e);
        c = dbus_bus_get_private(DBUS_BUS_SESSION, &e);
        if (!c) {
                snprintf(err, errsize, "no password configured and no session bus for the Secret Service: %s",
                         e.message ? e.message : "unknown error");
                dbus_error_free(&e);
                return -EIO;
        }
        dbus_connection_set_exit_on_disconnect(c, FALSE);
        r = open_session(c, timeout_ms, session, sizeof session, err, errsize);
        if (r == 0) {
                r = search(c, timeout_ms, service, account, item, sizeof item, err, errsize);
                if (r == 0)
                        r = get_secret(c, timeout_ms, item, session, secretp, err, errsize);
                close_session(c, timeout_ms, session);
        }
        dbus_connection_close(c);
        dbus_connection_unref(c);
        return r;
}
