/*
 * The methods of tegami's D-Bus objects. ipc/server.c has already matched the
 * object, the member and the exact signature; each function here validates
 * the values (lengths, ranges, names), asks the daemon's service API and
 * builds the reply. Search, whose index has not landed, validates its
 * arguments and then fails with org.tegami.Mail1.Error.NotSupported: it never
 * fakes a result. The mail view and the outbox methods are in
 * ipc/methods-mail.c, Sync and FetchNow in ipc/methods-sync.c. Loop thread
 * only.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipc/path.h"
#include "ipc/props.h"
#include "ipc/server-private.h"
#include "util/secret.h"

#define IPC_NAME_MAX 255        /* account names (config allows fewer) */
#define IPC_FOLDER_MAX 1024     /* bytes of a folder name */
#define IPC_QUERY_MAX 4096      /* bytes of a search query */
#define IPC_FLAG_MAX 128        /* bytes of one flag or keyword */
#define IPC_IDS_MAX 10000       /* ids in one call */
#define IPC_PAGE_MAX 1000       /* ListMessages limit */
#define IPC_SEND_BYTES_MAX (1u << 20)
#define IPC_PASSPHRASE_MAX 4096

DBusMessage *ipc_reply_error(DBusMessage *m, const char *name, const char *fmt, ...) {
        char buf[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        /* Truncation (here or of a quoted argument) may split a character;
         * libdbus refuses invalid UTF-8, so fall back to ASCII. */
        if (!dbus_validate_utf8(buf, NULL))
                for (char *p = buf; *p; p++)
                        if ((unsigned char)*p >= 0x80)
                                *p = '?';
        return dbus_message_new_error(m, name, buf);
}

/* Copies at most 64 bytes of a caller's string for an error message. */
const char *ipc_shorten(const char *s, char buf[static 72]) {
        size_t n = strlen(s);

        if (n <= 64)
                return s;
        memcpy(buf, s, 64);
        memcpy(buf + 64, "...", 4);
        return buf;
}

DBusMessage *ipc_reply_invalid(DBusMessage *m, const char *what) {
        return ipc_reply_error(m, IPC_ERROR_INVALID_ARGS, "%s: %s", dbus_message_get_member(m), what);
}

/* True when name is a configured account (or "" and allow_all); else *replyp
 * is the error (NULL on OOM). */
bool ipc_check_account(IpcServer *s, DBusMessage *m, const char *name, bool allow_all, DBusMessage **replyp) {
        ServiceAccount a;
        char buf[72];

        if (!*name && allow_all)
                return true;
        if (!*name) {
                *replyp = ipc_reply_invalid(m, "an account name is required");
                return false;
        }
        if (strlen(name) > IPC_NAME_MAX) {
                *replyp = ipc_reply_invalid(m, "account name too long");
                return false;
        }
        if (service_find_account(s->daemon, name, &a) < 0) {
                *replyp = ipc_reply_error(m, IPC_ERROR_NOT_FOUND, "no account \"%s\"", ipc_shorten(name, buf));
                return false;
        }
        return true;
}

bool ipc_check_folder(DBusMessage *m, const char *folder, DBusMessage **replyp) {
        if (!*folder || strlen(folder) > IPC_FOLDER_MAX) {
                *replyp = ipc_reply_invalid(m, "folder name must be 1 to 1024 bytes");
                return false;
        }
        return true;
}

/* Reads an "at" at it: 1..IPC_IDS_MAX non-zero ids. */
bool ipc_check_ids(DBusMessage *m, DBusMessageIter *it, DBusMessage **replyp) {
        DBusMessageIter a;
        const dbus_uint64_t *ids;
        int n = 0;

        dbus_message_iter_recurse(it, &a);
        dbus_message_iter_get_fixed_array(&a, &ids, &n);
        if (n < 1 || n > IPC_IDS_MAX) {
                *replyp = ipc_reply_invalid(m, "between 1 and 10000 message ids are required");
                return false;
        }
        for (int i = 0; i < n; i++)
                if (ids[i] == 0) {
                        *replyp = ipc_reply_invalid(m, "message id 0 does not exist");
                        return false;
                }
        return true;
}

/* A flag: "\Word" or an IMAP keyword atom, at most IPC_FLAG_MAX bytes. */
static bool valid_flag(const char *f) {
        size_t n = strlen(f);

        if (n == 0 || n > IPC_FLAG_MAX)
                return false;
        if (*f == '\\')
                f++;
        if (!*f)
                return false;
        for (; *f; f++)
                if ((unsigned char)*f <= ' ' || (unsigned char)*f >= 0x7f || strchr("(){%*\"\\]", *f))
                        return false;
        return true;
}

/* Reads an "as" of flags at it. */
bool ipc_check_flags(DBusMessage *m, DBusMessageIter *it, DBusMessage **replyp) {
        DBusMessageIter a;
        unsigned n = 0;

        for (dbus_message_iter_recurse(it, &a); dbus_message_iter_get_arg_type(&a) == DBUS_TYPE_STRING;
             dbus_message_iter_next(&a)) {
                const char *f;

                dbus_message_iter_get_basic(&a, &f);
                if (++n > 64 || !valid_flag(f)) {
                        *replyp = ipc_reply_invalid(m, n > 64 ? "too many flags" : "malformed flag");
                        return false;
                }
        }
        return true;
}

static DBusMessage *reply_empty(DBusMessage *m) {
        return dbus_message_new_method_return(m);
}

/* ---- org.freedesktop.DBus.Introspectable ---- */

static DBusMessage *method_introspect(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        _cleanup_free_ char *xml = ipc_server_introspect(s, o);
        DBusMessage *reply;

        if (!xml)
                return NULL;
        reply = dbus_message_new_method_return(m);
        if (reply && !dbus_message_append_args(reply, DBUS_TYPE_STRING, &xml, DBUS_TYPE_INVALID)) {
                dbus_message_unref(reply);
                return NULL;
        }
        return reply;
}

/* ---- org.freedesktop.DBus.Properties ---- */

/* The property table and object of o; false when o has no properties. */
static bool object_props(IpcServer *s, const IpcObject *o, ServiceStatus *st, const IpcPropertyTable **tp,
                         const void **objp) {
        if (o->kind == IPC_OBJECT_MANAGER) {
                service_get_status(s->daemon, st);
                *tp = &ipc_props_manager;
                *objp = st;
                return true;
        }
        if (o->kind == IPC_OBJECT_ACCOUNT) {
                *tp = &ipc_props_account;
                *objp = &o->account;
                return true;
        }
        return false;
}

static bool is_standard_interface(const char *iface) {
        return strcmp(iface, DBUS_INTERFACE_PROPERTIES) == 0 || strcmp(iface, DBUS_INTERFACE_INTROSPECTABLE) == 0 ||
               strcmp(iface, DBUS_INTERFACE_PEER) == 0 || strcmp(iface, "org.freedesktop.DBus.ObjectManager") == 0;
}

static DBusMessage *method_props_get(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        const IpcPropertyTable *t = NULL;
        const IpcProperty *p;
        const char *iface, *name;
        const void *obj = NULL;
        ServiceStatus st;
        DBusMessage *reply;
        DBusMessageIter it;
        char buf[72];

        if (!dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &iface, DBUS_TYPE_STRING, &name, DBUS_TYPE_INVALID))
                return ipc_reply_error(m, DBUS_ERROR_INVALID_ARGS, "Get takes (ss)");
        if (!object_props(s, o, &st, &t, &obj) || (*iface && strcmp(iface, t->interface) != 0))
                return ipc_reply_error(m, DBUS_ERROR_UNKNOWN_INTERFACE, "%s has no properties on interface \"%s\"",
                                       o->path, ipc_shorten(iface, buf));
        p = ipc_props_find(t, name);
        if (!p)
                return ipc_reply_error(m, DBUS_ERROR_UNKNOWN_PROPERTY, "%s has no property \"%s\"", t->interface,
                                       ipc_shorten(name, buf));
        reply = dbus_message_new_method_return(m);
        if (!reply)
                return NULL;
        dbus_message_iter_init_append(reply, &it);
        if (!ipc_props_append_variant(&it, p, obj)) {
                dbus_message_unref(reply);
                return NULL;
        }
        return reply;
}

static DBusMessage *method_props_get_all(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        const IpcPropertyTable *t = NULL;
        const char *iface;
        const void *obj = NULL;
        ServiceStatus st;
        DBusMessage *reply;
        DBusMessageIter it, empty;
        bool mine;
        char buf[72];

        if (!dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &iface, DBUS_TYPE_INVALID))
                return ipc_reply_error(m, DBUS_ERROR_INVALID_ARGS, "GetAll takes (s)");
        mine = object_props(s, o, &st, &t, &obj) && (!*iface || strcmp(iface, t->interface) == 0);
        if (!mine && !is_standard_interface(iface))
                return ipc_reply_error(m, DBUS_ERROR_UNKNOWN_INTERFACE, "%s has no interface \"%s\"", o->path,
                                       ipc_shorten(iface, buf));
        reply = dbus_message_new_method_return(m);
        if (!reply)
                return NULL;
        dbus_message_iter_init_append(reply, &it);
        if (mine ? !ipc_props_append_all(&it, t, obj, NULL)
                 : (!dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &empty) ||
                    !dbus_message_iter_close_container(&it, &empty))) {
                dbus_message_unref(reply);
                return NULL;
        }
        return reply;
}

static DBusMessage *method_props_set(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        const IpcPropertyTable *t = NULL;
        const char *iface, *name;
        const void *obj = NULL;
        ServiceStatus st;
        DBusMessageIter it;
        char buf[72];

        dbus_message_iter_init(m, &it);
        dbus_message_iter_get_basic(&it, &iface);
        dbus_message_iter_next(&it);
        dbus_message_iter_get_basic(&it, &name);
        if (!object_props(s, o, &st, &t, &obj) || (*iface && strcmp(iface, t->interface) != 0))
                return ipc_reply_error(m, DBUS_ERROR_UNKNOWN_INTERFACE, "%s has no properties on interface \"%s\"",
                                       o->path, ipc_shorten(iface, buf));
        if (!ipc_props_find(t, name))
                return ipc_reply_error(m, DBUS_ERROR_UNKNOWN_PROPERTY, "%s has no property \"%s\"", t->interface,
                                       ipc_shorten(name, buf));
        return ipc_reply_error(m, DBUS_ERROR_PROPERTY_READ_ONLY, "%s.%s is read-only", t->interface, name);
}

/* ---- org.freedesktop.DBus.ObjectManager ---- */

bool ipc_append_account_interfaces(DBusMessageIter *it, const ServiceAccount *a) {
        DBusMessageIter ifaces, entry;
        const char *name = IPC_IFACE_ACCOUNT;

        if (!dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "{sa{sv}}", &ifaces))
                return false;
        if (!dbus_message_iter_open_container(&ifaces, DBUS_TYPE_DICT_ENTRY, NULL, &entry) ||
            !dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &name) ||
            !ipc_props_append_all(&entry, &ipc_props_account, a, NULL) ||
            !dbus_message_iter_close_container(&ifaces, &entry)) {
                dbus_message_iter_abandon_container_if_open(&ifaces, &entry);
                dbus_message_iter_abandon_container(it, &ifaces);
                return false;
        }
        return dbus_message_iter_close_container(it, &ifaces);
}

static DBusMessage *method_get_managed_objects(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        DBusMessage *reply = dbus_message_new_method_return(m);
        DBusMessageIter it, dict, entry;
        ServiceAccount a;

        if (!reply)
                return NULL;
        dbus_message_iter_init_append(reply, &it);
        if (!dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{oa{sa{sv}}}", &dict))
                goto oom;
        for (size_t i = 0; service_get_account(s->daemon, i, &a) == 0; i++) {
                _cleanup_free_ char *path = ipc_path_from_account(a.name);

                if (!path || !dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry))
                        goto oom_dict;
                if (!dbus_message_iter_append_basic(&entry, DBUS_TYPE_OBJECT_PATH, &path) ||
                    !ipc_append_account_interfaces(&entry, &a) || !dbus_message_iter_close_container(&dict, &entry)) {
                        dbus_message_iter_abandon_container_if_open(&dict, &entry);
                        goto oom_dict;
                }
        }
        if (!dbus_message_iter_close_container(&it, &dict))
                goto oom;
        return reply;
oom_dict:
        dbus_message_iter_abandon_container(&it, &dict);
oom:
        dbus_message_unref(reply);
        return NULL;
}

/* ---- org.tegami.Mail1: what the daemon answers today ---- */

bool ipc_dict_append(DBusMessageIter *dict, const char *key, int type, const void *value) {
        char sig[2] = { (char)type, 0 };
        DBusMessageIter entry, v;

        if (!dbus_message_iter_open_container(dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry))
                return false;
        if (!dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key) ||
            !dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, sig, &v)) {
                dbus_message_iter_abandon_container(dict, &entry);
                return false;
        }
        if (!dbus_message_iter_append_basic(&v, type, value)) {
                dbus_message_iter_abandon_container(&entry, &v);
                dbus_message_iter_abandon_container(dict, &entry);
                return false;
        }
        return dbus_message_iter_close_container(&entry, &v) && dbus_message_iter_close_container(dict, &entry);
}

static bool append_daemon_status(DBusMessageIter *it, const ServiceStatus *st) {
        const char *state = st->state == SERVICE_LOCKED ? "locked" : "running";
        dbus_uint32_t reloads = st->n_reloads;
        DBusMessageIter dict;

        if (!dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "{sv}", &dict))
                return false;
        if (!ipc_dict_append(&dict, "version", DBUS_TYPE_STRING, &st->version) ||
            !ipc_dict_append(&dict, "state", DBUS_TYPE_STRING, &state) ||
            !ipc_dict_append(&dict, "config", DBUS_TYPE_STRING, &st->config_path) ||
            !ipc_dict_append(&dict, "reloads", DBUS_TYPE_UINT32, &reloads)) {
                dbus_message_iter_abandon_container(it, &dict);
                return false;
        }
        return dbus_message_iter_close_container(it, &dict);
}

static DBusMessage *method_status(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        DBusMessage *reply = dbus_message_new_method_return(m);
        DBusMessageIter it, arr, st;
        ServiceStatus status;
        ServiceAccount a;

        if (!reply)
                return NULL;
        service_get_status(s->daemon, &status);
        dbus_message_iter_init_append(reply, &it);
        if (!append_daemon_status(&it, &status) ||
            !dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "(oa{sv})", &arr))
                goto oom;
        for (size_t i = 0; service_get_account(s->daemon, i, &a) == 0; i++) {
                _cleanup_free_ char *path = ipc_path_from_account(a.name);

                if (!path || !dbus_message_iter_open_container(&arr, DBUS_TYPE_STRUCT, NULL, &st))
                        goto oom_arr;
                if (!dbus_message_iter_append_basic(&st, DBUS_TYPE_OBJECT_PATH, &path) ||
                    !ipc_props_append_all(&st, &ipc_props_account, &a, NULL) ||
                    !dbus_message_iter_close_container(&arr, &st)) {
                        dbus_message_iter_abandon_container_if_open(&arr, &st);
                        goto oom_arr;
                }
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

static DBusMessage *method_reload(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        _cleanup_free_ char *err = NULL;
        int r;

        r = service_reload(s->daemon, &err);
        if (r < 0)
                return ipc_reply_error(m, IPC_ERROR_INVALID_CONFIG, "%s", err ? err : "configuration rejected");
        return reply_empty(m);
}

/* ---- org.tegami.Mail1: Search, validated here, run in ipc/methods-search.c ---- */

static DBusMessage *method_search(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        DBusMessage *reply = NULL;
        DBusMessageIter it, dict, entry, v;
        const char *query;

        dbus_message_iter_init(m, &it);
        dbus_message_iter_get_basic(&it, &query);
        if (!*query || strlen(query) > IPC_QUERY_MAX)
                return ipc_reply_invalid(m, "query must be 1 to 4096 bytes");
        dbus_message_iter_next(&it);
        for (dbus_message_iter_recurse(&it, &dict); dbus_message_iter_get_arg_type(&dict) == DBUS_TYPE_DICT_ENTRY;
             dbus_message_iter_next(&dict)) {
                const char *key, *sv;
                int type;

                dbus_message_iter_recurse(&dict, &entry);
                dbus_message_iter_get_basic(&entry, &key);
                dbus_message_iter_next(&entry);
                dbus_message_iter_recurse(&entry, &v);
                type = dbus_message_iter_get_arg_type(&v);
                if (strcmp(key, "account") == 0 && type == DBUS_TYPE_STRING) {
                        dbus_message_iter_get_basic(&v, &sv);
                        if (!ipc_check_account(s, m, sv, false, &reply))
                                return reply;
                } else if (strcmp(key, "folder") == 0 && type == DBUS_TYPE_STRING) {
                        dbus_message_iter_get_basic(&v, &sv);
                        if (!ipc_check_folder(m, sv, &reply))
                                return reply;
                } else if (!(strcmp(key, "limit") == 0 && type == DBUS_TYPE_UINT32) &&
                           !(strcmp(key, "offset") == 0 && type == DBUS_TYPE_UINT64)) {
                        return ipc_reply_invalid(m, "options are \"account\" (s), \"folder\" (s), \"limit\" (u) and \"offset\" (t)");
                }
        }
        return ipc_method_search(s, m, o); /* ipc/methods-search.c */
}

PendingReply *ipc_pending_reply_new(IpcServer *s, DBusMessage *m) {
        PendingReply *p = malloc(sizeof *p);

        if (!p)
                return NULL;
        p->conn = dbus_connection_ref(s->conn);
        p->call = dbus_message_ref(m);
        return p;
}

void ipc_pending_reply_free(PendingReply *p) {
        dbus_message_unref(p->call);
        dbus_connection_unref(p->conn);
        free(p);
}

void ipc_pending_reply_send(PendingReply *p, DBusMessage *reply) {
        if (reply) {
                if (!dbus_message_get_no_reply(p->call) && dbus_connection_get_is_connected(p->conn))
                        dbus_connection_send(p->conn, reply, NULL);
                dbus_message_unref(reply);
        }
        ipc_pending_reply_free(p);
}

/* Largest message Send takes through its fd (the outbox keeps it whole while preparing it). */
#define IPC_SEND_FD_MAX (100u << 20)
#define IPC_SEND_RCPTS_MAX 1000

/* Reads the whole regular file (or memfd) fd into *datap; a pipe could block the loop. */
static int read_message_fd(int fd, char **datap, size_t *np, const char **whyp) {
        struct stat st;
        char *data;
        size_t n = 0;

        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                *whyp = "the message must come as a regular file or memfd";
                return -EINVAL;
        }
        if (st.st_size < 1 || (uint64_t)st.st_size > IPC_SEND_FD_MAX) {
                *whyp = "the message must be 1 byte to 100 MiB";
                return -EINVAL;
        }
        data = malloc((size_t)st.st_size);
        if (!data)
                return -ENOMEM;
        while (n < (size_t)st.st_size) {
                ssize_t k = pread(fd, data + n, (size_t)st.st_size - n, (off_t)n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        free(data);
                        *whyp = "cannot read the message";
                        return k < 0 ? -errno : -EIO;
                }
                n += (size_t)k;
        }
        *datap = data;
        *np = n;
        return 0;
}

/* Parses Send's a{sv} options into req (strings borrowed from m; rcpts malloc'd). */
static bool parse_send_options(DBusMessage *m, DBusMessageIter *it, SendingRequest *req, DBusMessage **replyp) {
        DBusMessageIter dict, entry, v, arr;
        const char *key;

        dbus_message_iter_recurse(it, &dict);
        for (; dbus_message_iter_get_arg_type(&dict) == DBUS_TYPE_DICT_ENTRY; dbus_message_iter_next(&dict)) {
                int t;

                dbus_message_iter_recurse(&dict, &entry);
                dbus_message_iter_get_basic(&entry, &key);
                dbus_message_iter_next(&entry);
                dbus_message_iter_recurse(&entry, &v);
                t = dbus_message_iter_get_arg_type(&v);
                if ((strcmp(key, "from") == 0 || strcmp(key, "from_name") == 0) && t == DBUS_TYPE_STRING) {
                        const char *val;

                        dbus_message_iter_get_basic(&v, &val);
                        if (strlen(val) > 998 || strpbrk(val, "\r\n")) {
                                *replyp = ipc_reply_invalid(m, "from and from_name must be one short line");
                                return false;
                        }
                        *(strcmp(key, "from") == 0 ? &req->from : &req->from_name) = *val ? val : NULL;
                } else if (strcmp(key, "extract_recipients") == 0 && t == DBUS_TYPE_BOOLEAN) {
                        dbus_bool_t b;

                        dbus_message_iter_get_basic(&v, &b);
                        req->extract_rcpts = b;
                } else if (strcmp(key, "recipients") == 0 && t == DBUS_TYPE_ARRAY &&
                           dbus_message_iter_get_element_type(&v) == DBUS_TYPE_STRING) {
                        int n = dbus_message_iter_get_element_count(&v);
                        const char **r;

                        if (n > IPC_SEND_RCPTS_MAX || req->rcpts) {
                                *replyp = ipc_reply_invalid(m, "at most 1000 recipients, given once");
                                return false;
                        }
                        r = calloc((size_t)n + 1, sizeof *r);
                        if (!r) {
                                *replyp = NULL;
                                return false;
                        }
                        dbus_message_iter_recurse(&v, &arr);
                        for (; dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_STRING; dbus_message_iter_next(&arr))
                                dbus_message_iter_get_basic(&arr, &r[req->n_rcpts++]);
                        req->rcpts = r;
                } else {
                        char buf[72];

                        *replyp = ipc_reply_error(m, IPC_ERROR_INVALID_ARGS,
                                                  "%s: unknown option \"%s\" or wrong type (from s, from_name s, "
                                                  "recipients as, extract_recipients b)",
                                                  dbus_message_get_member(m), ipc_shorten(key, buf));
                        return false;
                }
        }
        return true;
}

static void send_done_cb(ServiceError e, const char *message, int64_t id, void *userdata) {
        PendingReply *p = userdata;
        dbus_uint64_t v = (dbus_uint64_t)id;
        DBusMessage *reply;

        if (e != SERVICE_ERROR_NONE) {
                ipc_pending_reply_send(p, ipc_reply_error(p->call, ipc_error_name(e), "%s: %s",
                                                      dbus_message_get_member(p->call), message));
                return;
        }
        reply = dbus_message_new_method_return(p->call);
        if (reply && !dbus_message_append_args(reply, DBUS_TYPE_UINT64, &v, DBUS_TYPE_INVALID)) {
                dbus_message_unref(reply);
                reply = NULL;
        }
        ipc_pending_reply_send(p, reply);
}

/* Send(s account, h message, a{sv} options) and SendBytes(s, ay, a{sv}): into the outbox. */
static DBusMessage *method_send(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        _cleanup_free_ char *data = NULL, *err = NULL;
        _cleanup_free_ const char **rcpts = NULL;
        _cleanup_close_ int fd = -1;
        DBusMessage *reply = NULL;
        DBusMessageIter it;
        SendingRequest req = {};
        const char *account, *bytes = NULL, *why = NULL;
        size_t n = 0;
        PendingReply *p;
        int r;

        dbus_message_iter_init(m, &it);
        dbus_message_iter_get_basic(&it, &account);
        if (!ipc_check_account(s, m, account, true, &reply))
                return reply;
        req.account = account;
        dbus_message_iter_next(&it);
        if (dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_ARRAY) {
                DBusMessageIter a;
                int k = 0;

                dbus_message_iter_recurse(&it, &a);
                dbus_message_iter_get_fixed_array(&a, &bytes, &k);
                if (k < 1 || (unsigned)k > IPC_SEND_BYTES_MAX)
                        return ipc_reply_invalid(m, "the message must be 1 byte to 1 MiB; pass larger ones to Send");
                n = (size_t)k;
        } else {
                dbus_message_iter_get_basic(&it, &fd); /* libdbus hands us our own duplicate */
                r = read_message_fd(fd, &data, &n, &why);
                if (r == -ENOMEM)
                        return NULL;
                if (r < 0)
                        return ipc_reply_invalid(m, why ? why : strerror(-r));
                bytes = data;
        }
        dbus_message_iter_next(&it);
        if (!parse_send_options(m, &it, &req, &reply)) {
                free((void *)req.rcpts);
                return reply;
        }
        rcpts = (const char **)req.rcpts;
        p = ipc_pending_reply_new(s, m);
        if (!p)
                return NULL;
        r = service_send(s->daemon, bytes, n, &req, send_done_cb, p, &err);
        if (r == 0)
                return IPC_REPLY_DEFERRED;
        ipc_pending_reply_free(p);
        if (r < 0)
                return r == -ENOMEM ? NULL : ipc_reply_error(m, DBUS_ERROR_FAILED, "%s: %s", dbus_message_get_member(m),
                                                              strerror(-r));
        return ipc_reply_error(m, ipc_error_name((ServiceError)r), "%s: %s", dbus_message_get_member(m),
                               err ? err : "refused");
}

static void unlock_done_cb(ServiceError e, const char *message, void *userdata) {
        PendingReply *p = userdata;

        if (e == SERVICE_ERROR_NONE)
                ipc_pending_reply_send(p, dbus_message_new_method_return(p->call));
        else
                ipc_pending_reply_send(p, ipc_reply_error(p->call, ipc_error_name(e), "Unlock: %s", message));
}

static DBusMessage *method_unlock(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        DBusMessageIter it, a;
        const char *bytes;
        int n = 0;

        dbus_message_iter_init(m, &it);
        dbus_message_iter_recurse(&it, &a);
        dbus_message_iter_get_fixed_array(&a, &bytes, &n);
        if (n < 1 || n > IPC_PASSPHRASE_MAX)
                return ipc_reply_invalid(m, "the passphrase must be 1 to 4096 bytes");
        if (memchr(bytes, '\0', (size_t)n))
                return ipc_reply_invalid(m, "the passphrase must not contain NUL bytes");

        _cleanup_secret_ char *passphrase = secret_strndup(bytes, (size_t)n);
        PendingReply *p;
        const char *why;
        int r;

        if (!passphrase)
                return NULL;
        p = ipc_pending_reply_new(s, m);
        if (!p)
                return NULL;
        r = service_unlock(s->daemon, passphrase, unlock_done_cb, p, &why);
        if (r == 0)
                return IPC_REPLY_DEFERRED;
        ipc_pending_reply_free(p);
        if (r < 0)
                return ipc_reply_error(m, DBUS_ERROR_FAILED, "Unlock: %s", strerror(-r));
        return ipc_reply_error(m, ipc_error_name((ServiceError)r), "Unlock: %s", why);
}

static void rekey_done_cb(ServiceError e, const char *message, void *userdata) {
        PendingReply *p = userdata;

        if (e == SERVICE_ERROR_NONE)
                ipc_pending_reply_send(p, dbus_message_new_method_return(p->call));
        else
                ipc_pending_reply_send(p, ipc_reply_error(p->call, ipc_error_name(e), "Rekey: %s", message));
}

static DBusMessage *method_rekey(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        DBusMessageIter it, a;
        const char *bytes;
        int n = 0;

        dbus_message_iter_init(m, &it);
        dbus_message_iter_recurse(&it, &a);
        dbus_message_iter_get_fixed_array(&a, &bytes, &n);
        if (n > IPC_PASSPHRASE_MAX)
                return ipc_reply_invalid(m, "the passphrase must be at most 4096 bytes");
        if (n > 0 && memchr(bytes, '\0', (size_t)n))
                return ipc_reply_invalid(m, "the passphrase must not contain NUL bytes");

        _cleanup_secret_ char *passphrase = secret_strndup(n > 0 ? bytes : "", (size_t)n);
        PendingReply *p;
        const char *why;
        int r;

        if (!passphrase)
                return NULL;
        p = ipc_pending_reply_new(s, m);
        if (!p)
                return NULL;
        r = service_rekey(s->daemon, n > 0 ? passphrase : NULL, rekey_done_cb, p, &why);
        if (r == 0)
                return IPC_REPLY_DEFERRED;
        ipc_pending_reply_free(p);
        if (r < 0)
                return ipc_reply_error(m, DBUS_ERROR_FAILED, "Rekey: %s", strerror(-r));
        return ipc_reply_error(m, ipc_error_name((ServiceError)r), "Rekey: %s", why);
}

#define ALL (IPC_OBJECT_PARENT | IPC_OBJECT_MANAGER | IPC_OBJECT_ACCOUNT_DIR | IPC_OBJECT_ACCOUNT)
#define WITH_PROPS (IPC_OBJECT_MANAGER | IPC_OBJECT_ACCOUNT)
#define MGR IPC_OBJECT_MANAGER
#define M1 IPC_IFACE_MANAGER

const IpcMethod ipc_methods[] = {
        { ALL, DBUS_INTERFACE_INTROSPECTABLE, "Introspect", "", method_introspect },
        { WITH_PROPS, DBUS_INTERFACE_PROPERTIES, "Get", "ss", method_props_get },
        { WITH_PROPS, DBUS_INTERFACE_PROPERTIES, "GetAll", "s", method_props_get_all },
        { WITH_PROPS, DBUS_INTERFACE_PROPERTIES, "Set", "ssv", method_props_set },
        { MGR, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", "", method_get_managed_objects },
        { MGR, M1, "Status", "", method_status },
        { MGR, M1, "Sync", "s", ipc_method_sync },
        { MGR, M1, "FetchNow", "sa{sv}", ipc_method_fetch_now },
        { MGR, M1, "ListFolders", "s", ipc_method_list_folders },
        { MGR, M1, "ListMessages", "sstu", ipc_method_list_messages },
        { MGR, M1, "GetMessage", "t", ipc_method_get_message },
        { MGR, M1, "GetMessageSummary", "t", ipc_method_get_message_summary },
        { MGR, M1, "Search", "sa{sv}", method_search },
        { MGR, M1, "SetFlags", "atasas", ipc_method_set_flags },
        { MGR, M1, "Move", "atss", ipc_method_move },
        { MGR, M1, "Delete", "at", ipc_method_delete },
        { MGR, M1, "Send", "sha{sv}", method_send },
        { MGR, M1, "SendBytes", "saya{sv}", method_send },
        { MGR, M1, "ListOutbox", "", ipc_method_list_outbox },
        { MGR, M1, "RetryOutbox", "t", ipc_method_outbox_edit },
        { MGR, M1, "CancelOutbox", "t", ipc_method_outbox_edit },
        { MGR, M1, "Unlock", "ay", method_unlock },
        { MGR, M1, "Rekey", "ay", method_rekey },
        { MGR, M1, "Reload", "", method_reload },
};

const size_t ipc_n_methods = ARRAY_SIZE(ipc_methods);
