/*
 * The freedesktop Secret Service, spoken over a private libdbus connection to
 * the session bus with blocking calls. Callers are the store (its key, fetched
 * once at open, before the loop needs the store) and the credentials module
 * (account passwords, from a worker thread), so blocking is harmless and
 * libdbus stays out of the libuv glue (which lives only in ipc/).
 *
 * The session uses the "plain" algorithm: the bus is a local socket of this
 * user and the provider hands the secret over in the clear either way. The
 * secret passes through libdbus's message buffers, which we cannot wipe; our
 * own copy lives in sodium_malloc'd memory. Items locked behind a prompt are
 * not unlocked here (there may be no one to answer): the caller hears -EACCES.
 *
 * Each call opens its own connection and closes it; any thread may call.
 */
#include <dbus/dbus.h>
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/secret-service.h"
#include "util/macro.h"

#define SS_NAME    "org.freedesktop.secrets"
#define SS_PATH    "/org/freedesktop/secrets"
#define SS_SERVICE "org.freedesktop.Secret.Service"
#define SS_ITEM    "org.freedesktop.Secret.Item"
#define SS_SESSION "org.freedesktop.Secret.Session"
#define SS_COLL    "org.freedesktop.Secret.Collection"

typedef struct SecretSession {
        DBusConnection *bus;
        char *path; /* the Secret Service session object */
        char **errp;
} SecretSession;

_printf_(2, 3) static void ss_error(char **errp, const char *fmt, ...) {
        va_list ap;

        if (!errp || *errp)
                return; /* the first reason is the useful one */
        va_start(ap, fmt);
        if (vasprintf(errp, fmt, ap) < 0)
                *errp = NULL;
        va_end(ap);
}

static void message_unrefp(DBusMessage **m) {
        if (*m)
                dbus_message_unref(*m);
}
#define _cleanup_message_ _cleanup_(message_unrefp)

static bool ss_bus_reachable(void) {
        const char *addr = getenv("DBUS_SESSION_BUS_ADDRESS"), *run = getenv("XDG_RUNTIME_DIR");
        _cleanup_free_ char *sock = NULL;
        struct stat st;

        if (addr && *addr)
                return true;
        /* libdbus's fallback; anything further (autolaunch) would start a bus, which we never want. */
        return run && asprintf(&sock, "%s/bus", run) > 0 && stat(sock, &st) == 0 && S_ISSOCK(st.st_mode);
}

static DBusConnection *ss_connect(char **errp) {
        DBusError e = DBUS_ERROR_INIT;
        DBusConnection *bus;

        if (!ss_bus_reachable()) {
                ss_error(errp, "Secret Service: no session bus (DBUS_SESSION_BUS_ADDRESS is not set)");
                return NULL;
        }
        bus = dbus_bus_get_private(DBUS_BUS_SESSION, &e);
        if (!bus) {
                ss_error(errp, "Secret Service: cannot connect to the session bus: %s", e.message);
                dbus_error_free(&e);
                return NULL;
        }
        dbus_connection_set_exit_on_disconnect(bus, FALSE);
        return bus;
}

static void ss_disconnect(DBusConnection *bus) {
        if (bus) {
                dbus_connection_close(bus);
                dbus_connection_unref(bus);
        }
}

/* Sends m and waits; NULL on error (reported through errp, naming what). */
static int ss_timeout_ms = SECRET_SERVICE_TIMEOUT_MS;

static DBusMessage *ss_call(DBusConnection *bus, DBusMessage *m, const char *what, char **errp) {
        DBusError e = DBUS_ERROR_INIT;
        DBusMessage *reply;

        if (!m) {
                ss_error(errp, "Secret Service: %s: out of memory", what);
                return NULL;
        }
        reply = dbus_connection_send_with_reply_and_block(bus, m, ss_timeout_ms, &e);
        if (!reply) {
                ss_error(errp, "Secret Service: %s failed: %s: %s", what, e.name, e.message);
                dbus_error_free(&e);
        }
        return reply;
}

static bool ss_name_is(DBusConnection *bus, const char *method, bool list, char **errp) {
        _cleanup_message_ DBusMessage *m =
                dbus_message_new_method_call(DBUS_SERVICE_DBUS, DBUS_PATH_DBUS, DBUS_INTERFACE_DBUS, method);
        _cleanup_message_ DBusMessage *reply = NULL;
        DBusMessageIter it, arr;
        const char *name = SS_NAME;
        dbus_bool_t owned = FALSE;

        if (!list && m)
                dbus_message_append_args(m, DBUS_TYPE_STRING, &name, DBUS_TYPE_INVALID);
        reply = ss_call(bus, m, method, errp);
        if (!reply || !dbus_message_iter_init(reply, &it))
                return false;
        if (!list) {
                if (dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_BOOLEAN)
                        dbus_message_iter_get_basic(&it, &owned);
                return owned;
        }
        if (dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_ARRAY)
                return false;
        for (dbus_message_iter_recurse(&it, &arr); dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_STRING;
             dbus_message_iter_next(&arr)) {
                dbus_message_iter_get_basic(&arr, &name);
                if (strcmp(name, SS_NAME) == 0)
                        return true;
        }
        return false;
}

void secret_service_set_timeout(int timeout_ms) {
        ss_timeout_ms = timeout_ms > 0 ? timeout_ms : SECRET_SERVICE_TIMEOUT_MS;
}

bool secret_service_available(void) {
        DBusConnection *bus = ss_connect(NULL);
        bool r;

        if (!bus)
                return false;
        /* Running only: an activatable provider on a headless session (cron, a
         * server) would start with no unlocked keyring and fail, while the key
         * file works there. */
        r = ss_name_is(bus, "NameHasOwner", false, NULL);
        ss_disconnect(bus);
        return r;
}

static void ss_close(SecretSession *s) {
        if (s->path) {
                _cleanup_message_ DBusMessage *m = dbus_message_new_method_call(SS_NAME, s->path, SS_SESSION, "Close");
                DBusMessage *reply = m ? ss_call(s->bus, m, "Session.Close", NULL) : NULL;

                if (reply) /* nothing to read: the session is gone either way */
                        dbus_message_unref(reply);
        }
        free(s->path);
        s->path = NULL;
        ss_disconnect(s->bus);
        s->bus = NULL;
}

/* Connects and opens a "plain" session. */
static int ss_open(SecretSession *s, char **errp) {
        _cleanup_message_ DBusMessage *m = NULL, *reply = NULL;
        DBusMessageIter it, var;
        const char *alg = "plain", *empty = "", *path;

        *s = (SecretSession){.errp = errp};
        s->bus = ss_connect(errp);
        if (!s->bus)
                return -ENOTCONN;
        m = dbus_message_new_method_call(SS_NAME, SS_PATH, SS_SERVICE, "OpenSession");
        if (m) {
                dbus_message_iter_init_append(m, &it);
                if (!dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &alg) ||
                    !dbus_message_iter_open_container(&it, DBUS_TYPE_VARIANT, "s", &var) ||
                    !dbus_message_iter_append_basic(&var, DBUS_TYPE_STRING, &empty) ||
                    !dbus_message_iter_close_container(&it, &var)) {
                        ss_close(s);
                        return -ENOMEM;
                }
        }
        reply = ss_call(s->bus, m, "OpenSession", errp);
        if (!reply || !dbus_message_iter_init(reply, &it) || !dbus_message_iter_next(&it) ||
            dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_OBJECT_PATH) {
                ss_error(errp, "Secret Service: no provider answers on the session bus");
                ss_close(s);
                return -ENOTCONN;
        }
        dbus_message_iter_get_basic(&it, &path);
        s->path = strdup(path);
        if (!s->path) {
                ss_close(s);
                return -ENOMEM;
        }
        return 0;
}

static bool ss_append_attributes(DBusMessageIter *it, const SecretAttr *attrs, size_t n_attrs) {
        DBusMessageIter arr, entry;

        if (!dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "{ss}", &arr))
                return false;
        for (size_t i = 0; i < n_attrs; i++)
                if (!dbus_message_iter_open_container(&arr, DBUS_TYPE_DICT_ENTRY, NULL, &entry) ||
                    !dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &attrs[i].key) ||
                    !dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &attrs[i].value) ||
                    !dbus_message_iter_close_container(&arr, &entry))
                        return false;
        return dbus_message_iter_close_container(it, &arr);
}

/* Copies the first object path of the array at it into *pathp ("/" and empty arrays give NULL). */
static int ss_first_path(DBusMessageIter *it, char **pathp) {
        DBusMessageIter arr;
        const char *p;

        *pathp = NULL;
        if (dbus_message_iter_get_arg_type(it) != DBUS_TYPE_ARRAY)
                return -EPROTO;
        dbus_message_iter_recurse(it, &arr);
        if (dbus_message_iter_get_arg_type(&arr) != DBUS_TYPE_OBJECT_PATH)
                return 0;
        dbus_message_iter_get_basic(&arr, &p);
        *pathp = strdup(p);
        return *pathp ? 0 : -ENOMEM;
}

/* Unlocks object (an item or a collection) when that needs no prompt: 0, or -EACCES naming what. */
static int ss_unlock(SecretSession *s, const char *object, const char *what) {
        _cleanup_message_ DBusMessage *m = dbus_message_new_method_call(SS_NAME, SS_PATH, SS_SERVICE, "Unlock");
        _cleanup_message_ DBusMessage *reply = NULL;
        _cleanup_free_ char *unlocked = NULL;
        DBusMessageIter it, arr;
        const char *prompt = "/";
        int r;

        if (!m)
                return -ENOMEM;
        dbus_message_iter_init_append(m, &it);
        if (!dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "o", &arr) ||
            !dbus_message_iter_append_basic(&arr, DBUS_TYPE_OBJECT_PATH, &object) ||
            !dbus_message_iter_close_container(&it, &arr))
                return -ENOMEM;
        reply = ss_call(s->bus, m, "Unlock", s->errp);
        if (!reply || !dbus_message_iter_init(reply, &it))
                return -EIO;
        r = ss_first_path(&it, &unlocked);
        if (r < 0 || unlocked)
                return r;
        if (dbus_message_iter_next(&it) && dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_OBJECT_PATH)
                dbus_message_iter_get_basic(&it, &prompt);
        ss_error(s->errp, "Secret Service: %s is locked%s; unlock it and retry", what,
                 strcmp(prompt, "/") != 0 ? " and needs a prompt" : "");
        return -EACCES;
}

/* Finds the first item with attrs, unlocking it when that needs no prompt. */
static int ss_find(SecretSession *s, const SecretAttr *attrs, size_t n_attrs, char **itemp) {
        _cleanup_message_ DBusMessage *m = dbus_message_new_method_call(SS_NAME, SS_PATH, SS_SERVICE, "SearchItems");
        _cleanup_message_ DBusMessage *reply = NULL;
        _cleanup_free_ char *locked = NULL;
        DBusMessageIter it;
        int r;

        *itemp = NULL;
        if (!m)
                return -ENOMEM;
        dbus_message_iter_init_append(m, &it);
        if (!ss_append_attributes(&it, attrs, n_attrs))
                return -ENOMEM;
        reply = ss_call(s->bus, m, "SearchItems", s->errp);
        if (!reply || !dbus_message_iter_init(reply, &it))
                return -EIO;
        r = ss_first_path(&it, itemp);
        if (r < 0 || *itemp)
                return r;
        if (!dbus_message_iter_next(&it) || (r = ss_first_path(&it, &locked)) < 0)
                return r < 0 ? r : -EPROTO;
        if (!locked)
                return SECRET_SERVICE_E_NOT_FOUND;
        r = ss_unlock(s, locked, "the keyring holding the item");
        if (r == 0)
                *itemp = TAKE_PTR(locked);
        return r;
}

int secret_service_lookup(const SecretAttr *attrs, size_t n_attrs, uint8_t **secretp, size_t *np, char **errp) {
        _cleanup_message_ DBusMessage *m = NULL, *reply = NULL;
        _cleanup_free_ char *item = NULL;
        SecretSession s;
        DBusMessageIter it, st, bytes;
        const uint8_t *v;
        int r, n = 0;

        *secretp = NULL;
        *np = 0;
        r = ss_open(&s, errp);
        if (r < 0)
                return r;
        r = ss_find(&s, attrs, n_attrs, &item);
        if (r != 0)
                goto out;
        m = dbus_message_new_method_call(SS_NAME, item, SS_ITEM, "GetSecret");
        if (!m || !dbus_message_append_args(m, DBUS_TYPE_OBJECT_PATH, &s.path, DBUS_TYPE_INVALID)) {
                r = -ENOMEM;
                goto out;
        }
        reply = ss_call(s.bus, m, "GetSecret", errp);
        r = -EPROTO;
        if (!reply || !dbus_message_iter_init(reply, &it) || dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_STRUCT)
                goto out;
        /* (o session, ay parameters, ay value, s content_type) */
        dbus_message_iter_recurse(&it, &st);
        if (!dbus_message_iter_next(&st) || !dbus_message_iter_next(&st) ||
            dbus_message_iter_get_arg_type(&st) != DBUS_TYPE_ARRAY)
                goto out;
        dbus_message_iter_recurse(&st, &bytes);
        dbus_message_iter_get_fixed_array(&bytes, &v, &n);
        *secretp = sodium_malloc(n > 0 ? (size_t)n : 1);
        r = -ENOMEM;
        if (!*secretp)
                goto out;
        memcpy(*secretp, v, (size_t)n);
        sodium_memzero((void *)v, (size_t)n); /* points into the reply's buffer */
        *np = (size_t)n;
        r = 0;
out:
        if (r == -EPROTO)
                ss_error(errp, "Secret Service: unexpected reply to GetSecret");
        ss_close(&s);
        return r;
}

static bool ss_append_property(DBusMessageIter *dict, const char *name, const char *sig, const char *label,
                               const SecretAttr *attrs, size_t n_attrs) {
        DBusMessageIter entry, var;

        return dbus_message_iter_open_container(dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry) &&
               dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &name) &&
               dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, sig, &var) &&
               (label ? dbus_message_iter_append_basic(&var, DBUS_TYPE_STRING, &label)
                      : ss_append_attributes(&var, attrs, n_attrs)) &&
               dbus_message_iter_close_container(&entry, &var) && dbus_message_iter_close_container(dict, &entry);
}

/* Builds CreateItem(properties, (session, params, value, type), replace=true). */
static bool ss_append_create(DBusMessageIter *it, const SecretSession *s, const SecretAttr *attrs, size_t n_attrs,
                             const char *label, const uint8_t *secret, size_t n) {
        DBusMessageIter dict, st, arr;
        const char *type = "application/octet-stream";
        dbus_bool_t replace = TRUE;

        return dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "{sv}", &dict) &&
               ss_append_property(&dict, SS_ITEM ".Label", "s", label, NULL, 0) &&
               ss_append_property(&dict, SS_ITEM ".Attributes", "a{ss}", NULL, attrs, n_attrs) &&
               dbus_message_iter_close_container(it, &dict) &&
               dbus_message_iter_open_container(it, DBUS_TYPE_STRUCT, NULL, &st) &&
               dbus_message_iter_append_basic(&st, DBUS_TYPE_OBJECT_PATH, &s->path) &&
               dbus_message_iter_open_container(&st, DBUS_TYPE_ARRAY, "y", &arr) &&
               dbus_message_iter_close_container(&st, &arr) &&
               dbus_message_iter_open_container(&st, DBUS_TYPE_ARRAY, "y", &arr) &&
               dbus_message_iter_append_fixed_array(&arr, DBUS_TYPE_BYTE, &secret, (int)n) &&
               dbus_message_iter_close_container(&st, &arr) &&
               dbus_message_iter_append_basic(&st, DBUS_TYPE_STRING, &type) &&
               dbus_message_iter_close_container(it, &st) &&
               dbus_message_iter_append_basic(it, DBUS_TYPE_BOOLEAN, &replace);
}

int secret_service_store(const SecretAttr *attrs, size_t n_attrs, const char *label, const uint8_t *secret,
                         size_t n, char **errp) {
        _cleanup_message_ DBusMessage *m = NULL, *reply = NULL, *m2 = NULL, *reply2 = NULL;
        SecretSession s;
        DBusMessageIter it;
        const char *alias = "default", *coll = NULL, *item = "/", *prompt = "/";
        int r;

        r = ss_open(&s, errp);
        if (r < 0)
                return r;
        m = dbus_message_new_method_call(SS_NAME, SS_PATH, SS_SERVICE, "ReadAlias");
        if (m && !dbus_message_append_args(m, DBUS_TYPE_STRING, &alias, DBUS_TYPE_INVALID))
                goto oom;
        reply = ss_call(s.bus, m, "ReadAlias", errp);
        r = -EIO;
        if (!reply || !dbus_message_get_args(reply, NULL, DBUS_TYPE_OBJECT_PATH, &coll, DBUS_TYPE_INVALID))
                goto out;
        if (strcmp(coll, "/") == 0) {
                ss_error(errp, "Secret Service: there is no default collection (keyring) to keep \"%s\" in", label);
                r = -ENOENT;
                goto out;
        }
        r = ss_unlock(&s, coll, "the default keyring");
        if (r != 0)
                goto out;
        r = -EIO;
        m2 = dbus_message_new_method_call(SS_NAME, coll, SS_COLL, "CreateItem");
        if (!m2)
                goto oom;
        dbus_message_iter_init_append(m2, &it);
        if (!ss_append_create(&it, &s, attrs, n_attrs, label, secret, n))
                goto oom;
        reply2 = ss_call(s.bus, m2, "CreateItem", errp);
        if (!reply2 || !dbus_message_get_args(reply2, NULL, DBUS_TYPE_OBJECT_PATH, &item, DBUS_TYPE_OBJECT_PATH,
                                              &prompt, DBUS_TYPE_INVALID))
                goto out;
        if (strcmp(item, "/") == 0) {
                ss_error(errp, "Secret Service: the default keyring is locked%s; unlock it and retry",
                         strcmp(prompt, "/") != 0 ? " and needs a prompt" : "");
                r = -EACCES;
                goto out;
        }
        r = 0;
        goto out;
oom:
        r = -ENOMEM;
out:
        ss_close(&s);
        return r;
}
