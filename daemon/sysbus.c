/*
 * The system bus watcher. One private libdbus connection, run on the loop by
 * ipc/bus-uv (the only libdbus/libuv glue), with match rules for:
 *
 *   logind          PrepareForSleep(b) on org.freedesktop.login1.Manager. While
 *                   logind is present we hold a "delay" sleep inhibitor (an fd
 *                   from Inhibit()); on PrepareForSleep(true) the owner closes its
 *                   connections and calls sysbus_sleep_ready(), which closes the
 *                   fd so the system may suspend; on (false) a new lock is taken.
 *   NetworkManager  its State (StateChanged, or PropertiesChanged on the manager's
 *                   own interface or on org.freedesktop.DBus.Properties) and Metered.
 *   the bus         NameOwnerChanged of both names: a service restarting is picked
 *                   up, one leaving stops counting (online, unmetered, awake).
 *
 * Signals are believed only from the unique name that owns the service (learnt
 * from GetNameOwner and NameOwnerChanged), so another system-bus client cannot
 * pause tegamid with a unicast look-alike. Every call is asynchronous and never
 * auto-starts a service. The Sysbus owns the connection, the pending calls and
 * the inhibitor fd; it is freed in one place, after bus-uv's handles closed.
 * Loop thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/sysbus.h"
#include "ipc/bus-uv.h"
#include "util/log.h"
#include "util/macro.h"

#define DBUS_NAME   "org.freedesktop.DBus"
#define PROPS_IFACE "org.freedesktop.DBus.Properties"

#define LOGIND_NAME  "org.freedesktop.login1"
#define LOGIND_PATH  "/org/freedesktop/login1"
#define LOGIND_IFACE "org.freedesktop.login1.Manager"

#define NM_NAME  "org.freedesktop.NetworkManager"
#define NM_PATH  "/org/freedesktop/NetworkManager"
#define NM_IFACE "org.freedesktop.NetworkManager"

/* NMState and NMMetered values (NetworkManager's nm-dbus-interface.h). */
enum {
        NM_STATE_UNKNOWN = 0,
        NM_STATE_CONNECTED_SITE = 60,
        NM_METERED_YES = 1,
        NM_METERED_GUESS_YES = 3,
};

typedef enum SysbusService { SVC_LOGIND, SVC_NM, _SVC_MAX } SysbusService;

static const char *const svc_names[_SVC_MAX] = {[SVC_LOGIND] = LOGIND_NAME, [SVC_NM] = NM_NAME};

struct Sysbus {
        DBusConnection *conn; /* private; our reference, dropped in sysbus_free() */
        BusUv *uv;
        const SysbusOps *ops;
        void *userdata;
        char *owner[_SVC_MAX];                 /* unique names, NULL while absent */
        DBusPendingCall *call_owner[_SVC_MAX]; /* GetNameOwner at start */
        DBusPendingCall *call_inhibit, *call_nm;
        int inhibit_fd; /* the delay lock, -1 when not held */
        bool sleeping;
        uint32_t nm_state, nm_metered;
        bool online, metered; /* as last reported */
        bool closing;
};

static void sysbus_take_inhibitor(Sysbus *b);
static void sysbus_nm_get_all(Sysbus *b);

static void pending_drop(DBusPendingCall **pp) {
        if (!*pp)
                return;
        dbus_pending_call_cancel(*pp);
        dbus_pending_call_unref(*pp);
        *pp = NULL;
}

/* Sends a method call that never auto-starts its service; reply goes to notify. */
static int sysbus_call(Sysbus *b, DBusMessage *m, DBusPendingCallNotifyFunction notify, DBusPendingCall **pp) {
        DBusPendingCall *pc = NULL;

        if (!m)
                return -ENOMEM;
        dbus_message_set_auto_start(m, FALSE);
        if (!dbus_connection_send_with_reply(b->conn, m, &pc, DBUS_TIMEOUT_USE_DEFAULT) || !pc) {
                dbus_message_unref(m);
                return -ENOTCONN;
        }
        dbus_message_unref(m);
        if (!dbus_pending_call_set_notify(pc, notify, b, NULL)) {
                dbus_pending_call_cancel(pc);
                dbus_pending_call_unref(pc);
                return -ENOMEM;
        }
        *pp = pc;
        return 0;
}

/* Takes the reply of *pp (NULL if none) and forgets the call. */
static DBusMessage *pending_steal_reply(DBusPendingCall **pp) {
        DBusMessage *reply = dbus_pending_call_steal_reply(*pp);

        dbus_pending_call_unref(*pp);
        *pp = NULL;
        return reply;
}

/* ---- reporting ---- */

static void sysbus_report_network(Sysbus *b) {
        bool present = b->owner[SVC_NM] != NULL;
        bool online = !present || b->nm_state == NM_STATE_UNKNOWN || b->nm_state >= NM_STATE_CONNECTED_SITE;
        bool metered = present && (b->nm_metered == NM_METERED_YES || b->nm_metered == NM_METERED_GUESS_YES);

        if (online == b->online && metered == b->metered)
                return;
        b->online = online;
        b->metered = metered;
        log_info("network (NetworkManager): %s%s", online ? "connected" : "disconnected: syncs paused",
                 online && metered ? ", metered: headers only" : "");
        if (b->ops->network)
                b->ops->network(online, metered, b->userdata);
}

static void sysbus_set_sleeping(Sysbus *b, bool sleeping) {
        if (sleeping == b->sleeping)
                return;
        b->sleeping = sleeping;
        log_info("logind: %s", sleeping ? "preparing for sleep: closing connections" : "resumed: catching up");
        if (!sleeping && b->owner[SVC_LOGIND])
                sysbus_take_inhibitor(b);
        if (b->ops->sleep)
                b->ops->sleep(sleeping, b->userdata);
}

/* ---- logind ---- */

static void inhibit_reply_cb(DBusPendingCall *pc, void *userdata) {
        Sysbus *b = userdata;
        DBusMessage *reply = pending_steal_reply(&b->call_inhibit);
        DBusError err = DBUS_ERROR_INIT;
        int fd = -1;

        if (!reply)
                return;
        if (dbus_set_error_from_message(&err, reply) ||
            !dbus_message_get_args(reply, &err, DBUS_TYPE_UNIX_FD, &fd, DBUS_TYPE_INVALID)) {
                log_debug("logind: no sleep delay lock (%s): connections close when the system sleeps",
                          err.message ? err.message : "no reply");
                dbus_error_free(&err);
        } else if (b->inhibit_fd >= 0 || b->sleeping) {
                close(fd); /* raced with another take, or sleep began meanwhile */
        } else
                b->inhibit_fd = fd;
        dbus_message_unref(reply);
}

static void sysbus_take_inhibitor(Sysbus *b) {
        const char *what = "sleep", *who = "tegamid", *why = "closing mail connections", *mode = "delay";
        DBusMessage *m;

        if (b->inhibit_fd >= 0 || b->call_inhibit || b->closing)
                return;
        m = dbus_message_new_method_call(LOGIND_NAME, LOGIND_PATH, LOGIND_IFACE, "Inhibit");
        if (m && !dbus_message_append_args(m, DBUS_TYPE_STRING, &what, DBUS_TYPE_STRING, &who, DBUS_TYPE_STRING, &why,
                                           DBUS_TYPE_STRING, &mode, DBUS_TYPE_INVALID)) {
                dbus_message_unref(m);
                m = NULL;
        }
        (void)sysbus_call(b, m, inhibit_reply_cb, &b->call_inhibit); /* without it, we only lose the delay */
}

void sysbus_sleep_ready(Sysbus *b) {
        if (!b || b->inhibit_fd < 0)
                return;
        log_debug("logind: connections closed: releasing the sleep delay lock");
        close(b->inhibit_fd);
        b->inhibit_fd = -1;
}

/* ---- NetworkManager ---- */

/* Reads State and Metered out of an a{sv} iterator; other properties are skipped. */
static void nm_read_props(Sysbus *b, DBusMessageIter *dict) {
        DBusMessageIter entry, var;
        const char *key;

        for (; dbus_message_iter_get_arg_type(dict) == DBUS_TYPE_DICT_ENTRY; dbus_message_iter_next(dict)) {
                dbus_message_iter_recurse(dict, &entry);
                if (dbus_message_iter_get_arg_type(&entry) != DBUS_TYPE_STRING)
                        continue;
                dbus_message_iter_get_basic(&entry, &key);
                dbus_message_iter_next(&entry);
                if (dbus_message_iter_get_arg_type(&entry) != DBUS_TYPE_VARIANT)
                        continue;
                dbus_message_iter_recurse(&entry, &var);
                if (dbus_message_iter_get_arg_type(&var) != DBUS_TYPE_UINT32)
                        continue;
                if (strcmp(key, "State") == 0)
                        dbus_message_iter_get_basic(&var, &b->nm_state);
                else if (strcmp(key, "Metered") == 0)
                        dbus_message_iter_get_basic(&var, &b->nm_metered);
        }
}

static void nm_get_all_reply_cb(DBusPendingCall *pc, void *userdata) {
        Sysbus *b = userdata;
        DBusMessage *reply = pending_steal_reply(&b->call_nm);
        DBusMessageIter it, dict;

        if (!reply)
                return;
        if (dbus_message_get_type(reply) == DBUS_MESSAGE_TYPE_METHOD_RETURN && dbus_message_iter_init(reply, &it) &&
            dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_ARRAY) {
                dbus_message_iter_recurse(&it, &dict);
                nm_read_props(b, &dict);
                sysbus_report_network(b);
        } else
                log_debug("NetworkManager: its properties could not be read: network state not watched");
        dbus_message_unref(reply);
}

static void sysbus_nm_get_all(Sysbus *b) {
        const char *iface = NM_IFACE;
        DBusMessage *m;

        pending_drop(&b->call_nm);
        m = dbus_message_new_method_call(NM_NAME, NM_PATH, PROPS_IFACE, "GetAll");
        if (m && !dbus_message_append_args(m, DBUS_TYPE_STRING, &iface, DBUS_TYPE_INVALID)) {
                dbus_message_unref(m);
                m = NULL;
        }
        (void)sysbus_call(b, m, nm_get_all_reply_cb, &b->call_nm);
}

/* ---- owners ---- */

/* svc is now owned by unique (NULL or "": gone). */
static void sysbus_set_owner(Sysbus *b, SysbusService svc, const char *unique) {
        bool was = b->owner[svc] != NULL;

        free(b->owner[svc]);
        b->owner[svc] = unique && *unique ? strdup(unique) : NULL;
        if (svc == SVC_LOGIND) {
                if (b->owner[SVC_LOGIND]) {
                        if (!was)
                                log_info("logind is on the system bus: connections close before sleep");
                        sysbus_take_inhibitor(b);
                } else {
                        pending_drop(&b->call_inhibit);
                        sysbus_sleep_ready(b); /* its lock went with it */
                        sysbus_set_sleeping(b, false);
                }
                return;
        }
        if (b->owner[SVC_NM]) {
                if (!was)
                        log_info("NetworkManager is on the system bus: syncs follow its connectivity");
                sysbus_nm_get_all(b);
        } else {
                pending_drop(&b->call_nm);
                b->nm_state = NM_STATE_UNKNOWN;
                b->nm_metered = 0;
                sysbus_report_network(b);
        }
}

static void owner_reply(Sysbus *b, SysbusService svc) {
        DBusMessage *reply = pending_steal_reply(&b->call_owner[svc]);
        const char *unique = NULL;

        if (!reply)
                return;
        if (dbus_message_get_type(reply) != DBUS_MESSAGE_TYPE_METHOD_RETURN ||
            !dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &unique, DBUS_TYPE_INVALID)) {
                log_debug("%s is not on the system bus: %s", svc_names[svc],
                          svc == SVC_LOGIND ? "suspend is not watched" : "connectivity follows the kernel only");
                unique = NULL;
        }
        if (unique)
                sysbus_set_owner(b, svc, unique);
        dbus_message_unref(reply);
}

static void owner_logind_reply_cb(DBusPendingCall *pc, void *userdata) {
        owner_reply(userdata, SVC_LOGIND);
}

static void owner_nm_reply_cb(DBusPendingCall *pc, void *userdata) {
        owner_reply(userdata, SVC_NM);
}

/* ---- signals ---- */

static bool sent_by(DBusMessage *m, const char *unique) {
        const char *sender = dbus_message_get_sender(m);

        return unique && sender && strcmp(sender, unique) == 0;
}

static DBusHandlerResult sysbus_filter_cb(DBusConnection *conn, DBusMessage *m, void *userdata) {
        Sysbus *b = userdata;
        DBusMessageIter it, dict;
        const char *path = dbus_message_get_path(m);

        if (b->closing || dbus_message_get_type(m) != DBUS_MESSAGE_TYPE_SIGNAL)
                return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;

        if (dbus_message_is_signal(m, DBUS_NAME, "NameOwnerChanged") && sent_by(m, DBUS_NAME)) {
                const char *name, *old_owner, *new_owner;

                if (!dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &name, DBUS_TYPE_STRING, &old_owner,
                                           DBUS_TYPE_STRING, &new_owner, DBUS_TYPE_INVALID))
                        return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
                for (SysbusService svc = 0; svc < _SVC_MAX; svc++)
                        if (strcmp(name, svc_names[svc]) == 0) {
                                pending_drop(&b->call_owner[svc]); /* this news is newer */
                                sysbus_set_owner(b, svc, new_owner);
                        }
                return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
        }

        if (dbus_message_is_signal(m, LOGIND_IFACE, "PrepareForSleep") && sent_by(m, b->owner[SVC_LOGIND]) && path &&
            strcmp(path, LOGIND_PATH) == 0) {
                dbus_bool_t start;

                if (dbus_message_get_args(m, NULL, DBUS_TYPE_BOOLEAN, &start, DBUS_TYPE_INVALID))
                        sysbus_set_sleeping(b, start);
                return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
        }

        if (!sent_by(m, b->owner[SVC_NM]) || !path || strcmp(path, NM_PATH) != 0)
                return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
        if (dbus_message_is_signal(m, NM_IFACE, "StateChanged")) {
                uint32_t state;

                if (dbus_message_get_args(m, NULL, DBUS_TYPE_UINT32, &state, DBUS_TYPE_INVALID)) {
                        b->nm_state = state;
                        sysbus_report_network(b);
                }
        } else if (dbus_message_is_signal(m, NM_IFACE, "PropertiesChanged")) {
                /* NetworkManager's own, older form: a{sv}. */
                if (dbus_message_iter_init(m, &it) && dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_ARRAY) {
                        dbus_message_iter_recurse(&it, &dict);
                        nm_read_props(b, &dict);
                        sysbus_report_network(b);
                }
        } else if (dbus_message_is_signal(m, PROPS_IFACE, "PropertiesChanged")) {
                const char *iface;

                /* s a{sv} as: only the manager interface's changes count. */
                if (dbus_message_iter_init(m, &it) && dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_STRING) {
                        dbus_message_iter_get_basic(&it, &iface);
                        if (strcmp(iface, NM_IFACE) == 0 && dbus_message_iter_next(&it) &&
                            dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_ARRAY) {
                                dbus_message_iter_recurse(&it, &dict);
                                nm_read_props(b, &dict);
                                sysbus_report_network(b);
                        }
                }
        }
        return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
}

/* ---- lifetime ---- */

static const char *const match_rules[] = {
        "type='signal',sender='" DBUS_NAME "',interface='" DBUS_NAME "',member='NameOwnerChanged',arg0='" LOGIND_NAME
        "'",
        "type='signal',sender='" DBUS_NAME "',interface='" DBUS_NAME "',member='NameOwnerChanged',arg0='" NM_NAME "'",
        "type='signal',sender='" LOGIND_NAME "',path='" LOGIND_PATH "',interface='" LOGIND_IFACE
        "',member='PrepareForSleep'",
        "type='signal',sender='" NM_NAME "',path='" NM_PATH "',interface='" NM_IFACE "'",
        "type='signal',sender='" NM_NAME "',path='" NM_PATH "',interface='" PROPS_IFACE
        "',member='PropertiesChanged',arg0='" NM_IFACE "'",
};

static void sysbus_free(Sysbus *b) {
        for (SysbusService svc = 0; svc < _SVC_MAX; svc++) {
                pending_drop(&b->call_owner[svc]);
                free(b->owner[svc]);
        }
        pending_drop(&b->call_inhibit);
        pending_drop(&b->call_nm);
        if (b->inhibit_fd >= 0)
                close(b->inhibit_fd);
        if (b->conn)
                dbus_connection_unref(b->conn);
        free(b);
}

static void sysbus_uv_closed_cb(BusUv *uv, void *userdata) {
        sysbus_free(userdata);
}

/* Installs the filter and the match rules and asks who owns each service. */
static int sysbus_watch(Sysbus *b) {
        if (!dbus_connection_add_filter(b->conn, sysbus_filter_cb, b, NULL))
                return -ENOMEM;
        /* Without an error argument these do not wait for the bus' answer. */
        for (size_t i = 0; i < ARRAY_SIZE(match_rules); i++)
                dbus_bus_add_match(b->conn, match_rules[i], NULL);
        for (SysbusService svc = 0; svc < _SVC_MAX; svc++) {
                DBusMessage *m =
                        dbus_message_new_method_call(DBUS_NAME, "/org/freedesktop/DBus", DBUS_NAME, "GetNameOwner");
                const char *name = svc_names[svc];
                int r;

                if (m && !dbus_message_append_args(m, DBUS_TYPE_STRING, &name, DBUS_TYPE_INVALID)) {
                        dbus_message_unref(m);
                        m = NULL;
                }
                r = sysbus_call(b, m, svc == SVC_LOGIND ? owner_logind_reply_cb : owner_nm_reply_cb,
                                &b->call_owner[svc]);
                if (r < 0)
                        return r;
        }
        return 0;
}

int sysbus_new(uv_loop_t *loop, const SysbusOps *ops, void *userdata, Sysbus **retp) {
        DBusError err = DBUS_ERROR_INIT;
        Sysbus *b;
        int r;

        b = calloc(1, sizeof *b);
        if (!b)
                return -ENOMEM;
        *b = (Sysbus){.ops = ops, .userdata = userdata, .inhibit_fd = -1, .online = true};
        b->conn = dbus_bus_get_private(DBUS_BUS_SYSTEM, &err);
        if (!b->conn) {
                log_info("no system bus (%s): suspend and network state are not watched",
                         err.message ? err.message : "cannot connect");
                dbus_error_free(&err);
                free(b);
                return -ENOTCONN;
        }
        dbus_connection_set_exit_on_disconnect(b->conn, FALSE);
        r = bus_uv_new(loop, b->conn, &b->uv);
        if (r < 0) {
                dbus_connection_close(b->conn);
                sysbus_free(b);
                return r;
        }
        r = sysbus_watch(b);
        if (r < 0) {
                sysbus_close(b); /* frees b once bus-uv's handles have closed */
                return r;
        }
        *retp = b;
        return 0;
}

void sysbus_close(Sysbus *b) {
        if (!b || b->closing)
                return;
        b->closing = true;
        for (SysbusService svc = 0; svc < _SVC_MAX; svc++)
                pending_drop(&b->call_owner[svc]);
        pending_drop(&b->call_inhibit);
        pending_drop(&b->call_nm);
        dbus_connection_remove_filter(b->conn, sysbus_filter_cb, b);
        dbus_connection_close(b->conn);
        bus_uv_close(b->uv, sysbus_uv_closed_cb, b);
}
