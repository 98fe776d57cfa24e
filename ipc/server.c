/*
 * tegamid's side of D-Bus. ipc_server_new() connects a private libdbus
 * connection to the session bus (blocking, once, at start-up), hands it to a
 * BusUv so that the libuv loop runs it, registers one fallback handler on "/"
 * and takes the bus name with DO_NOT_QUEUE. Every method call then comes
 * through server_message_cb(), which finds the object, the method in
 * ipc_methods[] (ipc/methods.c) and checks the exact signature before the
 * method sees any argument; everything else is answered with a D-Bus error.
 *
 * The server is the daemon's listener: after a reload it diffs the accounts
 * against what clients were last told (snaps) and emits InterfacesAdded,
 * InterfacesRemoved and PropertiesChanged; daemon_stop() closes it. It owns
 * the connection and the BusUv and is freed in one place, server_closed_cb(),
 * after the BusUv's last handle closed. Loop thread only.
 */
#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ipc/path.h"
#include "ipc/props.h"
#include "ipc/server-private.h"
#include "ipc/xml-data.h"
#include "util/log.h"

#define IFACE_OBJECT_MANAGER "org.freedesktop.DBus.ObjectManager"

/* Buffers from this size on are mmapped (see ipc_server_new()). */
#define IPC_MMAP_THRESHOLD (256 << 10)

static void server_config_changed(void *userdata);
static void server_stopping(void *userdata);
static void server_sync_started(const char *account, void *userdata);
static void server_sync_finished(const char *account, const SchedRun *run, void *userdata);
static void server_sync_progress(const char *account, const char *folder, unsigned done, unsigned total,
                                 void *userdata);
static void server_outbox_changed(int64_t id, const char *state, void *userdata);
static void server_reloaded(void *userdata);
static void server_mail_changed(void *userdata);

static const ServiceListener server_listener = {
        .config_changed = server_reloaded,
        .stopping = server_stopping,
        .sync_started = server_sync_started,
        .sync_finished = server_sync_finished,
        .sync_progress = server_sync_progress,
        .outbox_changed = server_outbox_changed,
        .mail_changed = server_mail_changed,
};

/* ---- snapshots of what clients were told ---- */

static void snaps_free(IpcAccountSnap *snaps, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(snaps[i].name);
                free(snaps[i].address);
                free(snaps[i].last_error_message);
        }
        free(snaps);
}

/* Copies the daemon's current accounts; false on OOM (*snapsp untouched). */
static bool snaps_take(IpcServer *s, IpcAccountSnap **snapsp, size_t *np) {
        ServiceStatus st;
        IpcAccountSnap *v;
        size_t n = 0;

        service_get_status(s->daemon, &st);
        v = calloc(st.n_accounts ? st.n_accounts : 1, sizeof *v);
        if (!v)
                return false;
        for (; n < st.n_accounts && service_get_account(s->daemon, n, &v[n].a) == 0; n++) {
                v[n].name = strdup(v[n].a.name);
                v[n].address = strdup(v[n].a.address);
                v[n].last_error_message = strdup(v[n].a.last_error_message);
                if (!v[n].name || !v[n].address || !v[n].last_error_message) {
                        snaps_free(v, n + 1);
                        return false;
                }
                v[n].a.name = v[n].name;
                v[n].a.address = v[n].address;
                v[n].a.last_error_message = v[n].last_error_message;
        }
        *snapsp = v;
        *np = n;
        return true;
}

static const IpcAccountSnap *snaps_find(const IpcAccountSnap *v, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i].name, name) == 0)
                        return &v[i];
        return NULL;
}

/* ---- change signals ---- */

static void send_and_unref(IpcServer *s, DBusMessage *m) {
        if (!m)
                return;
        if (!s->closing)
                dbus_connection_send(s->conn, m, NULL);
        dbus_message_unref(m);
}

static void emit_interfaces_removed(IpcServer *s, const char *name) {
        _cleanup_free_ char *path = ipc_path_from_account(name);
        const char *iface = IPC_IFACE_ACCOUNT;
        const char **ifaces = &iface;
        DBusMessage *m;

        if (!path)
                return;
        m = dbus_message_new_signal(IPC_PATH_MANAGER, IFACE_OBJECT_MANAGER, "InterfacesRemoved");
        if (m && !dbus_message_append_args(m, DBUS_TYPE_OBJECT_PATH, &path, DBUS_TYPE_ARRAY, DBUS_TYPE_STRING, &ifaces,
                                           1, DBUS_TYPE_INVALID)) {
                dbus_message_unref(m);
                m = NULL;
        }
        send_and_unref(s, m);
}

static void emit_interfaces_added(IpcServer *s, const ServiceAccount *a) {
        _cleanup_free_ char *path = ipc_path_from_account(a->name);
        DBusMessageIter it;
        DBusMessage *m;

        if (!path)
                return;
        m = dbus_message_new_signal(IPC_PATH_MANAGER, IFACE_OBJECT_MANAGER, "InterfacesAdded");
        if (!m)
                return;
        dbus_message_iter_init_append(m, &it);
        if (!dbus_message_iter_append_basic(&it, DBUS_TYPE_OBJECT_PATH, &path) ||
            !ipc_append_account_interfaces(&it, a)) {
                dbus_message_unref(m);
                return;
        }
        send_and_unref(s, m);
}

static void emit_properties_changed(IpcServer *s, const ServiceAccount *a, const bool *changed) {
        _cleanup_free_ char *path = ipc_path_from_account(a->name);
        const char *iface = IPC_IFACE_ACCOUNT;
        DBusMessageIter it, inval;
        DBusMessage *m;

        if (!path)
                return;
        m = dbus_message_new_signal(path, DBUS_INTERFACE_PROPERTIES, "PropertiesChanged");
        if (!m)
                return;
        dbus_message_iter_init_append(m, &it);
        if (!dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &iface) ||
            !ipc_props_append_all(&it, &ipc_props_account, a, changed) ||
            !dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "s", &inval) ||
            !dbus_message_iter_close_container(&it, &inval)) {
                dbus_message_unref(m);
                return;
        }
        send_and_unref(s, m);
}

/* Marks in changed[] (indexed like ipc_props_account) what differs. */
static bool account_diff(const ServiceAccount *o, const ServiceAccount *n, bool *changed) {
        const struct {
                const char *prop;
                bool differs;
        } fields[] = {
                { "Address", strcmp(o->address, n->address) != 0 },
                { "Protocol", strcmp(o->protocol, n->protocol) != 0 },
                { "Server", strcmp(o->server, n->server) != 0 },
                { "SendServer", strcmp(o->send_server, n->send_server) != 0 },
                { "State", o->state != n->state },
                { "LastSync", o->last_sync != n->last_sync },
                { "Unread", o->unread != n->unread },
                { "Total", o->total != n->total },
                { "Quota", o->quota_used != n->quota_used || o->quota_limit != n->quota_limit },
                { "OutboxSize", o->outbox_size != n->outbox_size },
                { "LastError", o->last_error != n->last_error ||
                                       strcmp(o->last_error_message, n->last_error_message) != 0 },
        };
        bool any = false;

        for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
                const IpcProperty *p = ipc_props_find(&ipc_props_account, fields[i].prop);

                assert(p);
                changed[p - ipc_props_account.props] = fields[i].differs;
                any |= fields[i].differs;
        }
        return any;
}

static void server_config_changed(void *userdata) {
        IpcServer *s = userdata;
        IpcAccountSnap *now = NULL;
        size_t n_now = 0;

        if (s->closing || !s->exported || !snaps_take(s, &now, &n_now))
                return;
        for (size_t i = 0; i < s->n_snaps; i++)
                if (!snaps_find(now, n_now, s->snaps[i].name))
                        emit_interfaces_removed(s, s->snaps[i].name);
        for (size_t i = 0; i < n_now; i++) {
                const IpcAccountSnap *old = snaps_find(s->snaps, s->n_snaps, now[i].name);
                bool changed[16] = { false };

                static_assert(ARRAY_SIZE(changed) >= 12, "one flag per account property");
                if (!old)
                        emit_interfaces_added(s, &now[i].a);
                else if (account_diff(&old->a, &now[i].a, changed))
                        emit_properties_changed(s, &now[i].a, changed);
        }
        snaps_free(s->snaps, s->n_snaps);
        s->snaps = now;
        s->n_snaps = n_now;
}

/* After a reload: counts are taken again for the new accounts. */
static void server_reloaded(void *userdata) {
        IpcServer *s = userdata;

        service_counts_invalidate(s->daemon, NULL);
        server_config_changed(s);
}

/* Flags, moves or deletions here: Unread and Total (the service API counted them again). */
static void server_mail_changed(void *userdata) {
        server_config_changed(userdata);
}

/* ---- sync signals ---- */

/* A signal on the manager object; args as for dbus_message_append_args, DBUS_TYPE_INVALID-terminated. */
static void emit_signal(IpcServer *s, const char *member, int first_type, ...) {
        DBusMessage *m;
        va_list ap;
        bool ok;

        if (s->closing || !s->exported)
                return;
        m = dbus_message_new_signal(IPC_PATH_MANAGER, IPC_IFACE_MANAGER, member);
        if (!m)
                return;
        va_start(ap, first_type);
        ok = dbus_message_append_args_valist(m, first_type, ap);
        va_end(ap);
        if (!ok) {
                dbus_message_unref(m);
                return;
        }
        send_and_unref(s, m);
}

static void server_sync_started(const char *account, void *userdata) {
        IpcServer *s = userdata;

        emit_signal(s, "SyncStarted", DBUS_TYPE_STRING, &account, DBUS_TYPE_INVALID);
        server_config_changed(s); /* State: syncing */
}

/*
 * A run ended: NewMail per folder (store ids only: content goes to those who
 * ask with GetMessage), QuotaWarning, SyncFinished, and for a failure
 * AccountError, which front ends like tegami-notify show.
 */
static void server_sync_progress(const char *account, const char *folder, unsigned done, unsigned total,
                                 void *userdata) {
        dbus_uint32_t d = done, t = total;

        emit_signal(userdata, "SyncProgress", DBUS_TYPE_STRING, &account, DBUS_TYPE_STRING, &folder, DBUS_TYPE_UINT32,
                    &d, DBUS_TYPE_UINT32, &t, DBUS_TYPE_INVALID);
}

static void server_sync_finished(const char *account, const SchedRun *run, void *userdata) {
        IpcServer *s = userdata;
        dbus_bool_t success = run->r >= 0;
        const char *error = "", *message = success ? "" : (run->error ? run->error : "");

        for (size_t i = 0; i < run->n_new_mail; i++) {
                const SchedNewMail *nm = &run->new_mail[i];
                const dbus_uint64_t *ids = (const dbus_uint64_t *)nm->ids;

                if (nm->n_ids == 0)
                        continue;
                emit_signal(s, "NewMail", DBUS_TYPE_STRING, &account, DBUS_TYPE_STRING, &nm->folder, DBUS_TYPE_ARRAY,
                            DBUS_TYPE_UINT64, &ids, (int)nm->n_ids, DBUS_TYPE_INVALID);
        }
        if (run->quota_warning) {
                dbus_uint64_t used = run->quota_used, limit = run->quota_limit;

                emit_signal(s, "QuotaWarning", DBUS_TYPE_STRING, &account, DBUS_TYPE_UINT64, &used, DBUS_TYPE_UINT64,
                            &limit, DBUS_TYPE_INVALID);
        }
        if (!success && run->r != -ECANCELED) {
                error = ipc_error_name(service_error_from_failure(run->failure));
                if (!error)
                        error = ipc_error_name(SERVICE_ERROR_FAILED);
        }
        emit_signal(s, "SyncFinished", DBUS_TYPE_STRING, &account, DBUS_TYPE_BOOLEAN, &success, DBUS_TYPE_STRING,
                    &error, DBUS_TYPE_STRING, &message, DBUS_TYPE_INVALID);
        if (!success && run->r != -ECANCELED)
                emit_signal(s, "AccountError", DBUS_TYPE_STRING, &account, DBUS_TYPE_STRING, &error, DBUS_TYPE_STRING,
                            &message, DBUS_TYPE_INVALID);
        service_counts_invalidate(s->daemon, account);
        server_config_changed(s); /* State, LastSync, LastError, Quota, Unread, Total */
}

/* OutboxChanged, then OutboxSize of whichever account it changed. */
static void server_outbox_changed(int64_t id, const char *state, void *userdata) {
        IpcServer *s = userdata;
        dbus_uint64_t v = (dbus_uint64_t)id;

        emit_signal(s, "OutboxChanged", DBUS_TYPE_UINT64, &v, DBUS_TYPE_STRING, &state, DBUS_TYPE_INVALID);
        service_counts_invalidate(s->daemon, NULL); /* one COUNT per account, on the next look */
        server_config_changed(s);
}

/* ---- introspection ---- */

static const char introspect_standard[] =
        "  <interface name=\"org.freedesktop.DBus.Peer\">\n"
        "    <method name=\"Ping\"/>\n"
        "    <method name=\"GetMachineId\">\n"
        "      <arg name=\"machine_uuid\" type=\"s\" direction=\"out\"/>\n"
        "    </method>\n"
        "  </interface>\n"
        "  <interface name=\"org.freedesktop.DBus.Introspectable\">\n"
        "    <method name=\"Introspect\">\n"
        "      <arg name=\"xml_data\" type=\"s\" direction=\"out\"/>\n"
        "    </method>\n"
        "  </interface>\n";

static const char introspect_properties[] =
        "  <interface name=\"org.freedesktop.DBus.Properties\">\n"
        "    <method name=\"Get\">\n"
        "      <arg name=\"interface_name\" type=\"s\" direction=\"in\"/>\n"
        "      <arg name=\"property_name\" type=\"s\" direction=\"in\"/>\n"
        "      <arg name=\"value\" type=\"v\" direction=\"out\"/>\n"
        "    </method>\n"
        "    <method name=\"GetAll\">\n"
        "      <arg name=\"interface_name\" type=\"s\" direction=\"in\"/>\n"
        "      <arg name=\"props\" type=\"a{sv}\" direction=\"out\"/>\n"
        "    </method>\n"
        "    <method name=\"Set\">\n"
        "      <arg name=\"interface_name\" type=\"s\" direction=\"in\"/>\n"
        "      <arg name=\"property_name\" type=\"s\" direction=\"in\"/>\n"
        "      <arg name=\"value\" type=\"v\" direction=\"in\"/>\n"
        "    </method>\n"
        "    <signal name=\"PropertiesChanged\">\n"
        "      <arg name=\"interface_name\" type=\"s\"/>\n"
        "      <arg name=\"changed_properties\" type=\"a{sv}\"/>\n"
        "      <arg name=\"invalidated_properties\" type=\"as\"/>\n"
        "    </signal>\n"
        "  </interface>\n";

static const char introspect_object_manager[] =
        "  <interface name=\"org.freedesktop.DBus.ObjectManager\">\n"
        "    <method name=\"GetManagedObjects\">\n"
        "      <arg name=\"objects\" type=\"a{oa{sa{sv}}}\" direction=\"out\"/>\n"
        "    </method>\n"
        "    <signal name=\"InterfacesAdded\">\n"
        "      <arg name=\"object\" type=\"o\"/>\n"
        "      <arg name=\"interfaces\" type=\"a{sa{sv}}\"/>\n"
        "    </signal>\n"
        "    <signal name=\"InterfacesRemoved\">\n"
        "      <arg name=\"object\" type=\"o\"/>\n"
        "      <arg name=\"interfaces\" type=\"as\"/>\n"
        "    </signal>\n"
        "  </interface>\n";

static const char *xml_interface(const char *name) {
        for (size_t i = 0; i < ipc_xml_n_interfaces; i++)
                if (strcmp(ipc_xml_interfaces[i].name, name) == 0)
                        return ipc_xml_interfaces[i].xml;
        return "";
}

char *ipc_server_introspect(IpcServer *s, const IpcObject *o) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        ServiceAccount a;

        if (!f)
                return NULL;
        fputs(DBUS_INTROSPECT_1_0_XML_DOCTYPE_DECL_NODE "<node>\n", f);
        fputs(introspect_standard, f);
        switch (o->kind) {
        case IPC_OBJECT_PARENT:
                fprintf(f, "  <node name=\"%s\"/>\n", o->child);
                break;
        case IPC_OBJECT_MANAGER:
                fputs(introspect_properties, f);
                fputs(introspect_object_manager, f);
                fputs(xml_interface(IPC_IFACE_MANAGER), f);
                fputs("  <node name=\"account\"/>\n", f);
                break;
        case IPC_OBJECT_ACCOUNT_DIR:
                for (size_t i = 0; service_get_account(s->daemon, i, &a) == 0; i++) {
                        _cleanup_free_ char *e = ipc_path_escape(a.name);

                        if (e)
                                fprintf(f, "  <node name=\"%s\"/>\n", e);
                }
                break;
        case IPC_OBJECT_ACCOUNT:
                fputs(introspect_properties, f);
                fputs(xml_interface(IPC_IFACE_ACCOUNT), f);
                break;
        }
        fputs("</node>\n", f);
        if (ferror(f)) {
                fclose(f);
                free(buf);
                return NULL;
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

/* ---- dispatch ---- */

/* Finds the object at path; false when tegamid has none there. */
static bool object_find(IpcServer *s, const char *path, IpcObject *o) {
        static const struct {
                const char *path, *child;
        } parents[] = { { "/", "org" }, { "/org", "tegami" }, { "/org/tegami", "Mail1" } };
        _cleanup_free_ char *name = NULL;

        *o = (IpcObject){ .path = path };
        for (size_t i = 0; i < ARRAY_SIZE(parents); i++)
                if (strcmp(path, parents[i].path) == 0) {
                        o->kind = IPC_OBJECT_PARENT;
                        o->child = parents[i].child;
                        return true;
                }
        if (strcmp(path, IPC_PATH_MANAGER) == 0) {
                o->kind = IPC_OBJECT_MANAGER;
                return true;
        }
        if (strcmp(path, IPC_PATH_ACCOUNTS) == 0) {
                o->kind = IPC_OBJECT_ACCOUNT_DIR;
                return true;
        }
        if (ipc_path_to_account(path, &name) == 0 && service_find_account(s->daemon, name, &o->account) == 0) {
                o->kind = IPC_OBJECT_ACCOUNT;
                return true;
        }
        return false;
}

static bool object_has_interface(const IpcObject *o, const char *iface) {
        for (size_t i = 0; i < ipc_n_methods; i++)
                if ((ipc_methods[i].kinds & o->kind) && strcmp(ipc_methods[i].interface, iface) == 0)
                        return true;
        return strcmp(iface, DBUS_INTERFACE_PEER) == 0 ||
               (o->kind == IPC_OBJECT_ACCOUNT && strcmp(iface, IPC_IFACE_ACCOUNT) == 0);
}

DBusMessage *ipc_server_call(IpcServer *s, DBusMessage *m) {
        const char *path = dbus_message_get_path(m), *iface = dbus_message_get_interface(m),
                   *member = dbus_message_get_member(m);
        const IpcMethod *found = NULL;
        IpcObject o;

        if (!path || !member)
                return ipc_reply_error(m, DBUS_ERROR_INVALID_ARGS, "method call without path or member");
        if (!object_find(s, path, &o))
                return ipc_reply_error(m, DBUS_ERROR_UNKNOWN_OBJECT, "no object at %s", path);
        if (iface && !object_has_interface(&o, iface))
                return ipc_reply_error(m, DBUS_ERROR_UNKNOWN_INTERFACE, "%s has no interface %s", path, iface);
        for (size_t i = 0; i < ipc_n_methods && !found; i++) {
                const IpcMethod *mt = &ipc_methods[i];

                if ((mt->kinds & o.kind) && strcmp(mt->member, member) == 0 &&
                    (!iface || strcmp(mt->interface, iface) == 0))
                        found = mt;
        }
        if (!found)
                return ipc_reply_error(m, DBUS_ERROR_UNKNOWN_METHOD, "%s has no method %s%s%s", path,
                                       iface ? iface : "", iface ? "." : "", member);
        if (!dbus_message_has_signature(m, found->signature))
                return ipc_reply_error(m,
                                       strcmp(found->interface, IPC_IFACE_MANAGER) == 0 ? IPC_ERROR_INVALID_ARGS
                                                                                        : DBUS_ERROR_INVALID_ARGS,
                                       "%s takes (%s), not (%s)", member, found->signature,
                                       dbus_message_get_signature(m));
        return found->fn(s, m, &o);
}

const int ipc_reply_deferred_tag;

static DBusHandlerResult server_message_cb(DBusConnection *conn, DBusMessage *m, void *userdata) {
        IpcServer *s = userdata;
        DBusMessage *reply;

        if (dbus_message_is_signal(m, DBUS_INTERFACE_LOCAL, "Disconnected")) {
                log_warning("lost the session bus: shutting down");
                service_quit(s->daemon, 0);
                return DBUS_HANDLER_RESULT_HANDLED;
        }
        if (dbus_message_get_type(m) != DBUS_MESSAGE_TYPE_METHOD_CALL || s->closing)
                return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
        reply = ipc_server_call(s, m);
        if (!reply)
                return DBUS_HANDLER_RESULT_NEED_MEMORY;
        if (reply != IPC_REPLY_DEFERRED) { /* else the method answers later */
                if (!dbus_message_get_no_reply(m))
                        dbus_connection_send(conn, reply, NULL);
                dbus_message_unref(reply);
        }
        return DBUS_HANDLER_RESULT_HANDLED;
}

/* ---- lifetime ---- */

static void server_closed_cb(BusUv *b, void *userdata) {
        IpcServer *s = userdata;

        dbus_connection_unref(s->conn);
        snaps_free(s->snaps, s->n_snaps);
        free(s);
}

void ipc_server_close(IpcServer *s) {
        if (!s || s->closing)
                return;
        s->closing = true;
        service_set_listener(s->daemon, NULL, NULL);
        dbus_connection_close(s->conn);
        bus_uv_close(s->bus, server_closed_cb, s);
}

static void server_stopping(void *userdata) {
        ipc_server_close(userdata);
}

/* The session bus address, or NULL when there is no session bus to try. */
static char *session_bus_address(void) {
        const char *e = getenv("DBUS_SESSION_BUS_ADDRESS"), *run = getenv("XDG_RUNTIME_DIR");
        struct stat st;
        char *r = NULL;

        if (e && *e)
                return strdup(e);
        /* Started by bus activation without the session address in our environment. */
        e = getenv("DBUS_STARTER_ADDRESS");
        if (e && *e)
                return strdup(e);
        if (run && *run == '/' && asprintf(&r, "%s/bus", run) >= 0) {
                bool ok = stat(r, &st) == 0 && S_ISSOCK(st.st_mode);

                free(r);
                r = NULL;
                if (ok && asprintf(&r, "unix:path=%s/bus", run) < 0)
                        r = NULL;
        }
        return r;
}

/* Says who holds the name, for the "already running" message. */
static char *name_owner_description(DBusConnection *conn) {
        DBusMessage *m, *reply = NULL;
        const char *name = IPC_BUS_NAME;
        dbus_uint32_t pid = 0;
        char *r = NULL;

        m = dbus_message_new_method_call(DBUS_SERVICE_DBUS, DBUS_PATH_DBUS, DBUS_INTERFACE_DBUS,
                                         "GetConnectionUnixProcessID");
        if (m && dbus_message_append_args(m, DBUS_TYPE_STRING, &name, DBUS_TYPE_INVALID))
                reply = dbus_connection_send_with_reply_and_block(conn, m, 1000, NULL);
        if (reply && !dbus_message_get_args(reply, NULL, DBUS_TYPE_UINT32, &pid, DBUS_TYPE_INVALID))
                pid = 0;
        if (pid > 0 ? asprintf(&r, "%s is already owned on the session bus by process %u: is another tegamid running?",
                               IPC_BUS_NAME, pid) < 0
                    : asprintf(&r, "%s is already owned on the session bus: is another tegamid running?",
                               IPC_BUS_NAME) < 0)
                r = NULL;
        if (reply)
                dbus_message_unref(reply);
        if (m)
                dbus_message_unref(m);
        return r;
}

static int fail(DBusConnection *conn, int code, char **errp, const char *fmt, ...) _printf_(4, 5);
static int fail(DBusConnection *conn, int code, char **errp, const char *fmt, ...) {
        va_list ap;

        if (conn) {
                dbus_connection_close(conn);
                dbus_connection_unref(conn);
        }
        va_start(ap, fmt);
        if (vasprintf(errp, fmt, ap) < 0)
                *errp = NULL;
        va_end(ap);
        return code;
}

int ipc_server_new(uv_loop_t *loop, Daemon *d, bool own_name, IpcServer **retp, char **errp) {
        static const DBusObjectPathVTable vtable = { .message_function = server_message_cb };
        _cleanup_free_ char *address = session_bus_address();
        DBusConnection *conn;
        IpcServer *s;
        DBusError e;
        int r;

        *errp = NULL;
        if (!address)
                return fail(NULL, IPC_SERVER_E_NO_BUS, errp, "no session bus (DBUS_SESSION_BUS_ADDRESS is not set)");
        dbus_error_init(&e);
        conn = dbus_connection_open_private(address, &e);
        if (!conn) {
                r = fail(NULL, IPC_SERVER_E_NO_BUS, errp, "cannot connect to the session bus: %s", e.message);
                dbus_error_free(&e);
                return r;
        }
        dbus_connection_set_exit_on_disconnect(conn, FALSE);
        if (!dbus_bus_register(conn, &e)) {
                r = fail(conn, IPC_SERVER_E_NO_BUS, errp, "cannot register on the session bus: %s", e.message);
                dbus_error_free(&e);
                return r;
        }

#ifdef __GLIBC__
        /* Calls of any size up to the bus' limit come from strangers: serve their
         * buffers from mmap always, so that freeing one returns it (glibc's
         * adaptive threshold would move later ones into the heap). */
        mallopt(M_MMAP_THRESHOLD, IPC_MMAP_THRESHOLD);
#endif
        s = calloc(1, sizeof *s);
        if (!s)
                return fail(conn, -ENOMEM, errp, "out of memory");
        s->daemon = d;
        s->conn = conn;
        if (own_name) {
                /* Objects first, so that calls queued right after the name is
                 * ours find them. */
                if (!dbus_connection_register_fallback(conn, "/", &vtable, s) || !snaps_take(s, &s->snaps, &s->n_snaps)) {
                        free(s);
                        return fail(conn, -ENOMEM, errp, "out of memory");
                }
                r = dbus_bus_request_name(conn, IPC_BUS_NAME, DBUS_NAME_FLAG_DO_NOT_QUEUE, &e);
                if (r != DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER && r != DBUS_REQUEST_NAME_REPLY_ALREADY_OWNER) {
                        _cleanup_free_ char *who = dbus_error_is_set(&e) ? NULL : name_owner_description(conn);

                        snaps_free(s->snaps, s->n_snaps);
                        free(s);
                        if (dbus_error_is_set(&e)) {
                                r = fail(conn, -EIO, errp, "cannot own %s: %s", IPC_BUS_NAME, e.message);
                                dbus_error_free(&e);
                                return r;
                        }
                        return fail(conn, IPC_SERVER_E_NAME_TAKEN, errp, "%s",
                                    who ? who : IPC_BUS_NAME " is already owned on the session bus");
                }
                s->exported = true;
        }
        r = bus_uv_new(loop, conn, &s->bus);
        if (r < 0) {
                snaps_free(s->snaps, s->n_snaps);
                free(s);
                return fail(conn, r, errp, "cannot run the bus connection: %s", uv_strerror(r));
        }
        service_set_listener(d, &server_listener, s);
        if (own_name)
                log_info("serving %s on the session bus as %s", IPC_BUS_NAME, dbus_bus_get_unique_name(conn));
        *retp = s;
        return 0;
}

void ipc_shutdown(void) {
        dbus_shutdown();
}
