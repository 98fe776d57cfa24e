/*
 * Internals shared by ipc/server.c (connection, dispatch, introspection,
 * change signals) and ipc/methods.c (the method implementations). Nothing
 * outside ipc/ includes this.
 */
#pragma once

#include <dbus/dbus.h>
#include <stdbool.h>

#include "daemon/service.h"
#include "ipc/bus-uv.h"
#include "ipc/server.h"
#include "util/macro.h"

#define IPC_ERROR_INVALID_ARGS "org.tegami.Mail1.Error.InvalidArgs"
#define IPC_ERROR_NOT_FOUND "org.tegami.Mail1.Error.NotFound"
#define IPC_ERROR_NOT_SUPPORTED "org.tegami.Mail1.Error.NotSupported"
#define IPC_ERROR_INVALID_CONFIG "org.tegami.Mail1.Error.InvalidConfig"

/* What a client was last told about one account, to compute change signals. */
typedef struct IpcAccountSnap {
        ServiceAccount a; /* a.name and a.address point at the copies below */
        char *name, *address;
        char *last_error_message;
} IpcAccountSnap;

struct IpcServer {
        Daemon *daemon;
        DBusConnection *conn; /* private connection, one reference */
        BusUv *bus;
        bool exported; /* objects registered and name owned */
        bool closing;
        IpcAccountSnap *snaps;
        size_t n_snaps;
};

/* The kinds of object tegamid serves. */
typedef enum IpcObjectKind {
        IPC_OBJECT_PARENT = 1 << 0,      /* "/", "/org", "/org/tegami": children only */
        IPC_OBJECT_MANAGER = 1 << 1,     /* /org/tegami/Mail1 */
        IPC_OBJECT_ACCOUNT_DIR = 1 << 2, /* /org/tegami/Mail1/account */
        IPC_OBJECT_ACCOUNT = 1 << 3,     /* /org/tegami/Mail1/account/NAME */
} IpcObjectKind;

typedef struct IpcObject {
        IpcObjectKind kind;
        const char *path;
        const char *child;      /* IPC_OBJECT_PARENT: its one child element */
        ServiceAccount account; /* IPC_OBJECT_ACCOUNT */
} IpcObject;

/* Returns the reply (method return or error), or NULL when out of memory. */
typedef DBusMessage *(*IpcMethodFn)(IpcServer *s, DBusMessage *m, const IpcObject *o);

typedef struct IpcMethod {
        unsigned kinds; /* IpcObjectKind bits of the objects that have it */
        const char *interface;
        const char *member;
        const char *signature;
        IpcMethodFn fn;
} IpcMethod;

extern const IpcMethod ipc_methods[];
extern const size_t ipc_n_methods;

/* What a method returns when it will answer later itself (see PendingReply in methods.c). */
#define IPC_REPLY_DEFERRED ((DBusMessage *)&ipc_reply_deferred_tag)
extern const int ipc_reply_deferred_tag;

/* An error reply; the message is made valid UTF-8. NULL on OOM. */
DBusMessage *ipc_reply_error(DBusMessage *m, const char *name, const char *fmt, ...) _printf_(3, 4);

/* Builds the reply to the method call m: finds the object, the method and
 * checks the exact signature, then runs the method. Returns the reply, or
 * IPC_REPLY_DEFERRED, or NULL on OOM. server.c's message callback sends what
 * it returns; the fuzz target (ipc/fuzz-dbus-args.c) calls it directly. */
DBusMessage *ipc_server_call(IpcServer *s, DBusMessage *m);

/* Introspection XML for o (malloc'd); NULL on OOM. */
char *ipc_server_introspect(IpcServer *s, const IpcObject *o);

/* Appends the a{sa{sv}} interfaces-and-properties dictionary of an account. */
bool ipc_append_account_interfaces(DBusMessageIter *it, const ServiceAccount *a);

/* ---- helpers of ipc/methods.c that ipc/methods-mail.c uses too ---- */

/* An InvalidArgs error: "MEMBER: what". */
DBusMessage *ipc_reply_invalid(DBusMessage *m, const char *what);

/* s, or its first 64 bytes and "..." in buf: for quoting a caller's string. */
const char *ipc_shorten(const char *s, char buf[static 72]);

/* True when name is a configured account (or "" and allow_all); else *replyp
 * is the error (NULL on OOM). */
bool ipc_check_account(IpcServer *s, DBusMessage *m, const char *name, bool allow_all, DBusMessage **replyp);

/* True when folder is 1 to 1024 bytes; else *replyp is the error. */
bool ipc_check_folder(DBusMessage *m, const char *folder, DBusMessage **replyp);

/* True when the "at" at it holds 1 to 10000 non-zero ids; else *replyp is the error. */
bool ipc_check_ids(DBusMessage *m, DBusMessageIter *it, DBusMessage **replyp);

/* True when the "as" at it holds at most 64 well-formed flags; else *replyp is the error. */
bool ipc_check_flags(DBusMessage *m, DBusMessageIter *it, DBusMessage **replyp);

/* Appends {key: variant of type} to an open a{sv}. */
bool ipc_dict_append(DBusMessageIter *dict, const char *key, int type, const void *value);

/* A method call answered later: the connection and the call are referenced so
 * the reply can go out even after the IpcServer that took the call is gone
 * (sending on a closed connection does nothing). */
typedef struct PendingReply {
        DBusConnection *conn;
        DBusMessage *call;
} PendingReply;

/* References s's connection and m; NULL on OOM. */
PendingReply *ipc_pending_reply_new(IpcServer *s, DBusMessage *m);
void ipc_pending_reply_free(PendingReply *p);
/* Sends reply (consumed; NULL on OOM sends nothing) and frees p. */
void ipc_pending_reply_send(PendingReply *p, DBusMessage *reply);

/* ---- ipc/methods-mail.c: the mail view and the outbox ---- */

DBusMessage *ipc_method_list_folders(IpcServer *s, DBusMessage *m, const IpcObject *o);
DBusMessage *ipc_method_list_messages(IpcServer *s, DBusMessage *m, const IpcObject *o);
DBusMessage *ipc_method_get_message(IpcServer *s, DBusMessage *m, const IpcObject *o);
DBusMessage *ipc_method_get_message_summary(IpcServer *s, DBusMessage *m, const IpcObject *o);
DBusMessage *ipc_method_set_flags(IpcServer *s, DBusMessage *m, const IpcObject *o);
DBusMessage *ipc_method_move(IpcServer *s, DBusMessage *m, const IpcObject *o);
DBusMessage *ipc_method_delete(IpcServer *s, DBusMessage *m, const IpcObject *o);
/* Appends one envelope summary (ListMessages' keys; full adds GetMessage's) to an open aa{sv}. */
bool ipc_append_message_summary(DBusMessageIter *it, const ServiceMessage *msg, bool full);

/* ---- ipc/methods-search.c ---- */

DBusMessage *ipc_method_search(IpcServer *s, DBusMessage *m, const IpcObject *o);
DBusMessage *ipc_method_list_outbox(IpcServer *s, DBusMessage *m, const IpcObject *o);
/* RetryOutbox and CancelOutbox. */
DBusMessage *ipc_method_outbox_edit(IpcServer *s, DBusMessage *m, const IpcObject *o);

/* ---- ipc/methods-sync.c: Sync and FetchNow ---- */

DBusMessage *ipc_method_sync(IpcServer *s, DBusMessage *m, const IpcObject *o);
DBusMessage *ipc_method_fetch_now(IpcServer *s, DBusMessage *m, const IpcObject *o);
