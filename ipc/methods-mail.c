/*
 * The mail and outbox methods of org.tegami.Mail1: ListFolders,
 * ListMessages, GetMessage, GetMessageSummary, SetFlags, Move, Delete, ListOutbox, RetryOutbox
 * and CancelOutbox. As in ipc/methods.c, ipc/server.c has matched the
 * signature; these validate the values, call the service API
 * (daemon/service.h) and build the reply. Changes answer later, when the
 * store has committed them (PendingReply). Loop thread only.
 *
 * Strings from the store may be header text in any charset: each goes out as
 * valid UTF-8 (bytes that are not are replaced by '?'), since libdbus refuses
 * anything else.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc/props.h"
#include "ipc/server-private.h"
#include "store/message.h"

#define IPC_MAIL_STRING_MAX 4096 /* bytes of one summary string */
#define IPC_MAIL_ADDRS_MAX  1000 /* addresses of one "to" or "cc" */

/* The error reply for a service call's result r (a ServiceError or a negative errno). */
static DBusMessage *reply_service_error(DBusMessage *m, int r, const char *err) {
        if (r == -ENOMEM)
                return NULL;
        if (r < 0)
                return ipc_reply_error(m, DBUS_ERROR_FAILED, "%s: %s", dbus_message_get_member(m),
                                       err ? err : strerror(-r));
        return ipc_reply_error(m, ipc_error_name((ServiceError)r) ?: DBUS_ERROR_FAILED, "%s: %s",
                               dbus_message_get_member(m), err ? err : "failed");
}

/* s as valid UTF-8 without control characters: s itself, or a copy in *copyp. */
static const char *clean_utf8(const char *s, char **copyp) {
        size_t n;

        *copyp = NULL;
        if (!s)
                return "";
        n = strnlen(s, IPC_MAIL_STRING_MAX);
        if (s[n] == '\0' && dbus_validate_utf8(s, NULL))
                return s;
        *copyp = strndup(s, n);
        if (!*copyp)
                return NULL;
        for (char *p = *copyp; *p; p++)
                if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
                        *p = '?';
        return *copyp;
}

static bool dict_string(DBusMessageIter *dict, const char *key, const char *value) {
        _cleanup_free_ char *copy = NULL;
        const char *v = clean_utf8(value, &copy);

        return v && ipc_dict_append(dict, key, DBUS_TYPE_STRING, &v);
}

/* Appends {key: as} from an open a{sv}: the strings of v. */
static bool dict_strv(DBusMessageIter *dict, const char *key, const char *const *v, size_t n) {
        DBusMessageIter entry, var, arr;
        bool ok = true;

        if (!dbus_message_iter_open_container(dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry))
                return false;
        if (!dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key) ||
            !dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, "as", &var)) {
                dbus_message_iter_abandon_container(dict, &entry);
                return false;
        }
        if (!dbus_message_iter_open_container(&var, DBUS_TYPE_ARRAY, "s", &arr)) {
                dbus_message_iter_abandon_container(&entry, &var);
                dbus_message_iter_abandon_container(dict, &entry);
                return false;
        }
        for (size_t i = 0; ok && i < n; i++) {
                _cleanup_free_ char *copy = NULL;
                const char *s = clean_utf8(v[i], &copy);

                ok = s && dbus_message_iter_append_basic(&arr, DBUS_TYPE_STRING, &s);
        }
        if (!ok) {
                dbus_message_iter_abandon_container(&var, &arr);
                dbus_message_iter_abandon_container(&entry, &var);
                dbus_message_iter_abandon_container(dict, &entry);
                return false;
        }
        return dbus_message_iter_close_container(&var, &arr) && dbus_message_iter_close_container(&entry, &var) &&
               dbus_message_iter_close_container(dict, &entry);
}

/* Splits an address header at the commas that separate addresses (not those
 * inside quotes, comments or angle brackets); trims each. */
static size_t split_addresses(const char *text, char **out, size_t max) {
        size_t n = 0;
        const char *start = text;
        int depth = 0;
        bool quoted = false;

        if (!text)
                return 0;
        for (const char *p = text;; p++) {
                if (*p == '\\' && quoted && p[1]) {
                        p++;
                        continue;
                }
                if (*p == '"')
                        quoted = !quoted;
                else if (!quoted && (*p == '(' || *p == '<'))
                        depth++;
                else if (!quoted && (*p == ')' || *p == '>') && depth > 0)
                        depth--;
                if (*p == '\0' || (*p == ',' && !quoted && depth == 0)) {
                        const char *a = start, *b = p;

                        while (a < b && (*a == ' ' || *a == '\t'))
                                a++;
                        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
                                b--;
                        if (b > a && n < max) {
                                out[n] = strndup(a, (size_t)(b - a));
                                if (out[n])
                                        n++;
                        }
                        if (*p == '\0')
                                break;
                        start = p + 1;
                }
        }
        return n;
}

static bool dict_addresses(DBusMessageIter *dict, const char *key, const char *text) {
        char **v = calloc(IPC_MAIL_ADDRS_MAX, sizeof *v);
        size_t n;
        bool ok;

        if (!v)
                return false;
        n = split_addresses(text, v, IPC_MAIL_ADDRS_MAX);
        ok = dict_strv(dict, key, (const char *const *)v, n);
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
        return ok;
}

/* Appends "flags" (as): the system flags by name, then the keywords. */
static bool dict_flags(DBusMessageIter *dict, uint32_t flags, const char *keywords) {
        static const struct {
                uint32_t bit;
                const char *name;
        } table[] = {
                {STORE_FLAG_SEEN, "\\Seen"},       {STORE_FLAG_ANSWERED, "\\Answered"},
                {STORE_FLAG_FLAGGED, "\\Flagged"}, {STORE_FLAG_DELETED, "\\Deleted"},
                {STORE_FLAG_DRAFT, "\\Draft"},     {STORE_FLAG_FORWARDED, "$Forwarded"},
        };
        _cleanup_free_ char *kw = keywords ? strdup(keywords) : NULL;
        const char *v[ARRAY_SIZE(table) + 64];
        size_t n = 0;
        char *save = NULL;

        if (keywords && !kw)
                return false;
        for (size_t i = 0; i < ARRAY_SIZE(table); i++)
                if (flags & table[i].bit)
                        v[n++] = table[i].name;
        for (char *w = kw ? strtok_r(kw, " ", &save) : NULL; w && n < ARRAY_SIZE(v); w = strtok_r(NULL, " ", &save))
                v[n++] = w;
        return dict_strv(dict, "flags", v, n);
}

/* Appends the a{sv} envelope summary of msg; full adds GetMessage's fields. */
static bool append_summary(DBusMessageIter *it, const ServiceMessage *msg, bool full) {
        dbus_uint64_t id = (dbus_uint64_t)msg->id, size = msg->size;
        dbus_int64_t date = msg->date;
        DBusMessageIter dict;

        if (!dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "{sv}", &dict))
                return false;
        if (!ipc_dict_append(&dict, "id", DBUS_TYPE_UINT64, &id) ||
            !ipc_dict_append(&dict, "date", DBUS_TYPE_INT64, &date) || !dict_string(&dict, "from", msg->from) ||
            !dict_string(&dict, "subject", msg->subject) || !dict_flags(&dict, msg->flags, msg->keywords) ||
            !ipc_dict_append(&dict, "size", DBUS_TYPE_UINT64, &size) ||
            (full && (!dict_string(&dict, "account", msg->account) || !dict_string(&dict, "folder", msg->folder) ||
                      !dict_addresses(&dict, "to", msg->to) || !dict_addresses(&dict, "cc", msg->cc) ||
                      !dict_string(&dict, "message_id", msg->message_id)))) {
                dbus_message_iter_abandon_container(it, &dict);
                return false;
        }
        return dbus_message_iter_close_container(it, &dict);
}

bool ipc_append_message_summary(DBusMessageIter *it, const ServiceMessage *msg, bool full) {
        return append_summary(it, msg, full);
}

/* ---- ListFolders(s account) → aa{sv} ---- */

DBusMessage *ipc_method_list_folders(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        _cleanup_free_ char *err = NULL;
        DBusMessage *reply = NULL;
        DBusMessageIter it, arr, dict;
        ServiceFolder *folders = NULL;
        const char *account;
        size_t n = 0;
        int r;

        dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &account, DBUS_TYPE_INVALID);
        if (!ipc_check_account(s, m, account, false, &reply))
                return reply;
        r = service_list_folders(s->daemon, account, &folders, &n, &err);
        if (r != 0)
                return reply_service_error(m, r, err);
        reply = dbus_message_new_method_return(m);
        if (!reply)
                goto oom;
        dbus_message_iter_init_append(reply, &it);
        if (!dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "a{sv}", &arr))
                goto oom;
        for (size_t i = 0; i < n; i++) {
                dbus_uint32_t unread = folders[i].unread > UINT32_MAX ? UINT32_MAX : (dbus_uint32_t)folders[i].unread;
                dbus_uint32_t total = folders[i].total > UINT32_MAX ? UINT32_MAX : (dbus_uint32_t)folders[i].total;

                if (!dbus_message_iter_open_container(&arr, DBUS_TYPE_ARRAY, "{sv}", &dict))
                        goto oom_arr;
                if (!dict_string(&dict, "name", folders[i].name) || !dict_string(&dict, "role", folders[i].role) ||
                    !ipc_dict_append(&dict, "unread", DBUS_TYPE_UINT32, &unread) ||
                    !ipc_dict_append(&dict, "total", DBUS_TYPE_UINT32, &total) ||
                    !dbus_message_iter_close_container(&arr, &dict)) {
                        dbus_message_iter_abandon_container_if_open(&arr, &dict);
                        goto oom_arr;
                }
        }
        if (!dbus_message_iter_close_container(&it, &arr))
                goto oom;
        service_folder_list_free(folders, n);
        return reply;
oom_arr:
        dbus_message_iter_abandon_container(&it, &arr);
oom:
        if (reply)
                dbus_message_unref(reply);
        service_folder_list_free(folders, n);
        return NULL;
}

/* ---- ListMessages(s account, s folder, t offset, u limit) → aa{sv}, t ---- */

DBusMessage *ipc_method_list_messages(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        _cleanup_free_ char *err = NULL;
        DBusMessage *reply = NULL;
        DBusMessageIter it, arr;
        ServiceMessage *msgs = NULL;
        const char *account, *folder;
        dbus_uint64_t offset, total = 0;
        dbus_uint32_t limit;
        uint64_t count = 0;
        size_t n = 0;
        int r;

        dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &account, DBUS_TYPE_STRING, &folder, DBUS_TYPE_UINT64, &offset,
                              DBUS_TYPE_UINT32, &limit, DBUS_TYPE_INVALID);
        if (!ipc_check_account(s, m, account, false, &reply) || !ipc_check_folder(m, folder, &reply))
                return reply;
        if (limit < 1 || limit > 1000)
                return ipc_reply_invalid(m, "limit must be 1 to 1000");
        r = service_list_messages(s->daemon, account, folder, offset, limit, &msgs, &n, &count, &err);
        if (r != 0)
                return reply_service_error(m, r, err);
        total = count;
        reply = dbus_message_new_method_return(m);
        if (!reply)
                goto oom;
        dbus_message_iter_init_append(reply, &it);
        if (!dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "a{sv}", &arr))
                goto oom;
        for (size_t i = 0; i < n; i++)
                if (!append_summary(&arr, &msgs[i], false)) {
                        dbus_message_iter_abandon_container(&it, &arr);
                        goto oom;
                }
        if (!dbus_message_iter_close_container(&it, &arr) ||
            !dbus_message_iter_append_basic(&it, DBUS_TYPE_UINT64, &total))
                goto oom;
        service_message_list_free(msgs, n);
        return reply;
oom:
        if (reply)
                dbus_message_unref(reply);
        service_message_list_free(msgs, n);
        return NULL;
}

/* ---- GetMessage(t id) → h raw, a{sv} summary ---- */

/* Reads a "t" id argument; false (with *replyp NotFound) for 0 or one past INT64_MAX. */
static bool read_id(DBusMessage *m, const char *what, int64_t *idp, DBusMessage **replyp) {
        dbus_uint64_t id = 0;

        dbus_message_get_args(m, NULL, DBUS_TYPE_UINT64, &id, DBUS_TYPE_INVALID);
        if (id == 0 || id > INT64_MAX) {
                *replyp = ipc_reply_error(m, IPC_ERROR_NOT_FOUND, "%s: no %s with id %" PRIu64,
                                          dbus_message_get_member(m), what, (uint64_t)id);
                return false;
        }
        *idp = (int64_t)id;
        return true;
}

/* The reply to GetMessage call m for message id as the store has it now; *no_bodyp true (and NULL
 * returned) when the body is not here yet and must be fetched first. */
static DBusMessage *get_message_reply(Daemon *d, DBusMessage *m, int64_t id, bool *no_bodyp) {
        _cleanup_free_ char *err = NULL;
        _cleanup_close_ int fd = -1;
        DBusMessage *reply = NULL;
        DBusMessageIter it;
        ServiceMessage msg = {};
        int r;

        *no_bodyp = false;
        r = service_get_message(d, id, &msg, &fd, &err);
        if (r == SERVICE_NO_BODY) {
                *no_bodyp = true;
                return NULL;
        }
        if (r != 0)
                return reply_service_error(m, r, err);
        reply = dbus_message_new_method_return(m);
        if (reply) {
                /* libdbus duplicates fd; ours closes on return. */
                dbus_message_iter_init_append(reply, &it);
                if (!dbus_message_iter_append_basic(&it, DBUS_TYPE_UNIX_FD, &fd) || !append_summary(&it, &msg, true)) {
                        dbus_message_unref(reply);
                        reply = NULL;
                }
        }
        service_message_clear(&msg);
        return reply;
}

/* A GetMessage that waits for its body to be fetched from the server. The
 * PendingReply keeps the call and the connection, so a caller that went away
 * or an IpcServer closed meanwhile costs nothing but the fetch (whose body is
 * then stored for next time); the Daemon outlives every fetch. */
typedef struct GetMessageOp {
        PendingReply *p;
        Daemon *d;
        int64_t id;
} GetMessageOp;

static void get_message_fetched_cb(ServiceError e, const char *message, void *userdata) {
        GetMessageOp *op = userdata;
        DBusMessage *reply;
        bool no_body = false;

        if (e != SERVICE_ERROR_NONE)
                reply = ipc_reply_error(op->p->call, ipc_error_name(e) ?: DBUS_ERROR_FAILED, "%s: %s",
                                        dbus_message_get_member(op->p->call), message);
        else {
                reply = get_message_reply(op->d, op->p->call, op->id, &no_body);
                if (no_body) /* the row was replaced by a headers-only one meanwhile */
                        reply = ipc_reply_error(op->p->call, IPC_ERROR_NOT_FOUND,
                                                "%s: message %" PRId64 " has no body here",
                                                dbus_message_get_member(op->p->call), op->id);
        }
        ipc_pending_reply_send(op->p, reply);
        free(op);
}

DBusMessage *ipc_method_get_message(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        _cleanup_free_ char *err = NULL;
        DBusMessage *reply = NULL;
        GetMessageOp *op;
        bool no_body;
        int64_t id;
        int r;

        if (!read_id(m, "message", &id, &reply))
                return reply;
        reply = get_message_reply(s->daemon, m, id, &no_body);
        if (!no_body)
                return reply;
        /* Stored from its headers only (metered network, or too big): fetch it now, answer when it is in. */
        op = calloc(1, sizeof *op);
        if (!op)
                return NULL;
        *op = (GetMessageOp){.p = ipc_pending_reply_new(s, m), .d = s->daemon, .id = id};
        if (!op->p) {
                free(op);
                return NULL;
        }
        r = service_fetch_body(s->daemon, id, get_message_fetched_cb, op, &err);
        if (r == 0)
                return IPC_REPLY_DEFERRED;
        ipc_pending_reply_free(op->p);
        free(op);
        return reply_service_error(m, r, err);
}

/* ---- GetMessageSummary(t id) → a{sv} summary: GetMessage's, without the body (never fetched) ---- */

DBusMessage *ipc_method_get_message_summary(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        _cleanup_free_ char *err = NULL;
        DBusMessage *reply = NULL;
        DBusMessageIter it;
        ServiceMessage msg = {};
        int64_t id;
        int r;

        if (!read_id(m, "message", &id, &reply))
                return reply;
        r = service_get_summary(s->daemon, id, &msg, &err);
        if (r != 0)
                return reply_service_error(m, r, err);
        reply = dbus_message_new_method_return(m);
        if (reply) {
                dbus_message_iter_init_append(reply, &it);
                if (!append_summary(&it, &msg, true)) {
                        dbus_message_unref(reply);
                        reply = NULL;
                }
        }
        service_message_clear(&msg);
        return reply;
}

/* ---- SetFlags(at ids, as add, as remove), Move(at, s, s), Delete(at) ---- */

static void change_done_cb(ServiceError e, const char *message, void *userdata) {
        PendingReply *p = userdata;

        if (e == SERVICE_ERROR_NONE)
                ipc_pending_reply_send(p, dbus_message_new_method_return(p->call));
        else
                ipc_pending_reply_send(p, ipc_reply_error(p->call, ipc_error_name(e) ?: DBUS_ERROR_FAILED, "%s: %s",
                                                          dbus_message_get_member(p->call), message));
}

/* Copies the "at" at it (already checked) into a new int64_t array; NotFound for ids past INT64_MAX. */
static int64_t *read_ids(DBusMessage *m, DBusMessageIter *it, size_t *np, DBusMessage **replyp) {
        const dbus_uint64_t *ids;
        DBusMessageIter a;
        int64_t *v;
        int n = 0;

        *replyp = NULL;
        dbus_message_iter_recurse(it, &a);
        dbus_message_iter_get_fixed_array(&a, &ids, &n);
        v = calloc(n > 0 ? (size_t)n : 1, sizeof *v);
        if (!v)
                return NULL;
        for (int i = 0; i < n; i++) {
                if (ids[i] > INT64_MAX) {
                        *replyp = ipc_reply_error(m, IPC_ERROR_NOT_FOUND, "%s: no message with id %" PRIu64,
                                                  dbus_message_get_member(m), (uint64_t)ids[i]);
                        free(v);
                        return NULL;
                }
                v[i] = (int64_t)ids[i];
        }
        *np = (size_t)n;
        return v;
}

/* Copies the (checked) "as" at it into a new array of borrowed strings. */
static const char **read_strv(DBusMessageIter *it, size_t *np) {
        DBusMessageIter a;
        int n = dbus_message_iter_get_element_count(it);
        const char **v = calloc((size_t)n + 1, sizeof *v);
        size_t k = 0;

        if (!v)
                return NULL;
        for (dbus_message_iter_recurse(it, &a); dbus_message_iter_get_arg_type(&a) == DBUS_TYPE_STRING && k < (size_t)n;
             dbus_message_iter_next(&a))
                dbus_message_iter_get_basic(&a, &v[k++]);
        *np = k;
        return v;
}

/* Starts a change with a PendingReply: the service call is fn's business. */
static DBusMessage *deferred(IpcServer *s, DBusMessage *m, PendingReply **pp) {
        *pp = ipc_pending_reply_new(s, m);
        return NULL;
}

static DBusMessage *finish_change(DBusMessage *m, PendingReply *p, int r, const char *err) {
        if (r == 0)
                return IPC_REPLY_DEFERRED;
        ipc_pending_reply_free(p);
        return reply_service_error(m, r, err);
}

DBusMessage *ipc_method_set_flags(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        _cleanup_free_ int64_t *ids = NULL;
        _cleanup_free_ const char **add = NULL, **remove = NULL;
        _cleanup_free_ char *err = NULL;
        DBusMessage *reply = NULL;
        DBusMessageIter it;
        PendingReply *p;
        size_t n_ids = 0, n_add = 0, n_remove = 0;
        int r;

        dbus_message_iter_init(m, &it);
        if (!ipc_check_ids(m, &it, &reply))
                return reply;
        ids = read_ids(m, &it, &n_ids, &reply);
        if (!ids)
                return reply;
        dbus_message_iter_next(&it);
        if (!ipc_check_flags(m, &it, &reply))
                return reply;
        add = read_strv(&it, &n_add);
        dbus_message_iter_next(&it);
        if (!ipc_check_flags(m, &it, &reply))
                return reply;
        remove = read_strv(&it, &n_remove);
        if (!add || !remove)
                return NULL;
        if (n_add + n_remove == 0)
                return ipc_reply_invalid(m, "no flags to add or remove");
        deferred(s, m, &p);
        if (!p)
                return NULL;
        r = service_set_flags(s->daemon, ids, n_ids, add, n_add, remove, n_remove, change_done_cb, p, &err);
        return finish_change(m, p, r, err);
}

DBusMessage *ipc_method_move(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        _cleanup_free_ int64_t *ids = NULL;
        _cleanup_free_ char *err = NULL;
        DBusMessage *reply = NULL;
        DBusMessageIter it;
        const char *account, *folder;
        PendingReply *p;
        size_t n_ids = 0;
        int r;

        dbus_message_iter_init(m, &it);
        if (!ipc_check_ids(m, &it, &reply))
                return reply;
        ids = read_ids(m, &it, &n_ids, &reply);
        if (!ids)
                return reply;
        dbus_message_iter_next(&it);
        dbus_message_iter_get_basic(&it, &account);
        dbus_message_iter_next(&it);
        dbus_message_iter_get_basic(&it, &folder);
        if (!ipc_check_account(s, m, account, false, &reply) || !ipc_check_folder(m, folder, &reply))
                return reply;
        deferred(s, m, &p);
        if (!p)
                return NULL;
        r = service_move(s->daemon, ids, n_ids, account, folder, change_done_cb, p, &err);
        return finish_change(m, p, r, err);
}

DBusMessage *ipc_method_delete(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        _cleanup_free_ int64_t *ids = NULL;
        _cleanup_free_ char *err = NULL;
        DBusMessage *reply = NULL;
        DBusMessageIter it;
        PendingReply *p;
        size_t n_ids = 0;
        int r;

        dbus_message_iter_init(m, &it);
        if (!ipc_check_ids(m, &it, &reply))
                return reply;
        ids = read_ids(m, &it, &n_ids, &reply);
        if (!ids)
                return reply;
        deferred(s, m, &p);
        if (!p)
                return NULL;
        r = service_delete(s->daemon, ids, n_ids, change_done_cb, p, &err);
        return finish_change(m, p, r, err);
}

/* ---- ListOutbox() → aa{sv}; RetryOutbox(t), CancelOutbox(t) ---- */

DBusMessage *ipc_method_list_outbox(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        _cleanup_free_ char *err = NULL;
        ServiceOutboxEntry *entries = NULL;
        DBusMessage *reply = NULL;
        DBusMessageIter it, arr, dict;
        size_t n = 0;
        int r;

        r = service_list_outbox(s->daemon, &entries, &n, &err);
        if (r != 0)
                return reply_service_error(m, r, err);
        reply = dbus_message_new_method_return(m);
        if (!reply)
                goto oom;
        dbus_message_iter_init_append(reply, &it);
        if (!dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "a{sv}", &arr))
                goto oom;
        for (size_t i = 0; i < n; i++) {
                const ServiceOutboxEntry *e = &entries[i];
                dbus_uint64_t id = (dbus_uint64_t)e->id;
                dbus_uint32_t attempts = e->attempts;
                dbus_int64_t next = e->next_attempt, created = e->created;

                if (!dbus_message_iter_open_container(&arr, DBUS_TYPE_ARRAY, "{sv}", &dict))
                        goto oom_arr;
                if (!ipc_dict_append(&dict, "id", DBUS_TYPE_UINT64, &id) ||
                    !dict_string(&dict, "account", e->account) || !dict_string(&dict, "state", e->state) ||
                    !ipc_dict_append(&dict, "attempts", DBUS_TYPE_UINT32, &attempts) ||
                    !ipc_dict_append(&dict, "next_attempt", DBUS_TYPE_INT64, &next) ||
                    !ipc_dict_append(&dict, "created", DBUS_TYPE_INT64, &created) ||
                    !dict_string(&dict, "last_error", e->last_error) ||
                    !dict_strv(&dict, "recipients", (const char *const *)e->rcpts, e->n_rcpts) ||
                    !dict_string(&dict, "subject", e->subject) || !dbus_message_iter_close_container(&arr, &dict)) {
                        dbus_message_iter_abandon_container_if_open(&arr, &dict);
                        goto oom_arr;
                }
        }
        if (!dbus_message_iter_close_container(&it, &arr))
                goto oom;
        service_outbox_list_free(entries, n);
        return reply;
oom_arr:
        dbus_message_iter_abandon_container(&it, &arr);
oom:
        if (reply)
                dbus_message_unref(reply);
        service_outbox_list_free(entries, n);
        return NULL;
}

DBusMessage *ipc_method_outbox_edit(IpcServer *s, DBusMessage *m, const IpcObject *o) {
        _cleanup_free_ char *err = NULL;
        DBusMessage *reply = NULL;
        bool retry = strcmp(dbus_message_get_member(m), "RetryOutbox") == 0;
        PendingReply *p;
        int64_t id;
        int r;

        if (!read_id(m, "outbox entry", &id, &reply))
                return reply;
        deferred(s, m, &p);
        if (!p)
                return NULL;
        r = retry ? service_retry_outbox(s->daemon, id, change_done_cb, p, &err)
                  : service_cancel_outbox(s->daemon, id, change_done_cb, p, &err);
        return finish_change(m, p, r, err);
}
