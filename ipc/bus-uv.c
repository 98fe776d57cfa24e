/*
 * libdbus on libuv. libdbus asks its main loop for three things, and each maps
 * onto libuv handles owned by the BusUv:
 *
 *   watches   libdbus keeps a read and a write watch per socket and enables
 *             them independently. libuv allows one uv_poll per descriptor, so
 *             a BusUvPoll gathers every watch on one fd and polls for the union
 *             of the enabled ones; it closes when its last watch goes.
 *   timeouts  each DBusTimeout gets a BusUvTimer, a repeating uv_timer. Its
 *             interval may change while it is disabled, so a toggle restarts it
 *             with the current interval.
 *   dispatch  incoming messages are dispatched from a uv_idle that runs while
 *             the dispatch status is DATA_REMAINS (a bounded batch per loop
 *             turn, so one busy peer cannot starve the loop); a uv_async is the
 *             wake-up libdbus may trigger from another thread.
 *
 * Everything runs on the loop thread except bus_uv_wakeup_cb(), which only
 * calls uv_async_send(). Handles close asynchronously: every one of them is
 * counted in n_handles, and the BusUv (and its reference on the connection) is
 * freed in exactly one place, when the count drops to zero after
 * bus_uv_close().
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "ipc/bus-uv.h"
#include "util/macro.h"

/* Messages dispatched per loop turn before yielding to other handles. */
#define BUS_UV_DISPATCH_BATCH 64
/* libdbus puts at most a read and a write watch on one socket; leave headroom. */
#define BUS_UV_WATCHES_PER_FD 4

typedef struct BusUvPoll {
        uv_poll_t poll;
        BusUv *bus;
        struct BusUvPoll *next;
        int fd;
        int events; /* UV_READABLE | UV_WRITABLE currently polled for */
        DBusWatch *watches[BUS_UV_WATCHES_PER_FD];
        size_t n_watches;
} BusUvPoll;

typedef struct BusUvTimer {
        uv_timer_t timer;
        BusUv *bus;
        DBusTimeout *timeout; /* NULL once libdbus removed it */
} BusUvTimer;

struct BusUv {
        uv_loop_t *loop;
        DBusConnection *conn; /* one reference, dropped in bus_uv_free() */
        uv_idle_t idle;
        uv_async_t async;
        BusUvPoll *polls;     /* open (not closing) polls, one per fd */
        unsigned n_handles;   /* initialised handles whose close_cb has not run */
        bool closing;
        BusUvCloseCb close_cb;
        void *close_userdata;
};

static void bus_uv_free(BusUv *b) {
        BusUvCloseCb cb = b->close_cb;
        void *userdata = b->close_userdata;

        if (b->conn)
                dbus_connection_unref(b->conn);
        if (cb)
                cb(b, userdata);
        free(b);
}

/* Every handle's close callback: the last one frees the BusUv. */
static void bus_uv_handle_closed(BusUv *b) {
        assert(b->n_handles > 0);
        if (--b->n_handles == 0 && b->closing)
                bus_uv_free(b);
}

static void bus_uv_self_close_cb(uv_handle_t *h) {
        bus_uv_handle_closed(h->data);
}

/* ---- dispatch ---- */

static void bus_uv_idle_cb(uv_idle_t *h);

static void bus_uv_schedule_dispatch(BusUv *b) {
        if (b->closing)
                return;
        if (dbus_connection_get_dispatch_status(b->conn) == DBUS_DISPATCH_COMPLETE)
                return;
        (void)uv_idle_start(&b->idle, bus_uv_idle_cb); /* cannot fail on an initialised handle */
}

static void bus_uv_idle_cb(uv_idle_t *h) {
        BusUv *b = container_of(h, BusUv, idle);
        DBusDispatchStatus s = DBUS_DISPATCH_DATA_REMAINS;

        /* Handlers may call bus_uv_close(): b stays allocated until the next
         * loop turn at least (closing is asynchronous), and the connection is
         * referenced across the call. */
        dbus_connection_ref(b->conn);
        for (unsigned i = 0; i < BUS_UV_DISPATCH_BATCH && !b->closing; i++) {
                s = dbus_connection_dispatch(b->conn);
                if (s != DBUS_DISPATCH_DATA_REMAINS)
                        break;
        }
        /* NEED_MEMORY: keep the idle running and try again next turn. */
        if (s == DBUS_DISPATCH_COMPLETE || b->closing)
                uv_idle_stop(&b->idle);
        dbus_connection_unref(b->conn);
}

static void bus_uv_dispatch_status_cb(DBusConnection *conn, DBusDispatchStatus status, void *data) {
        BusUv *b = data;

        if (status != DBUS_DISPATCH_COMPLETE && !b->closing)
                (void)uv_idle_start(&b->idle, bus_uv_idle_cb);
}

/* libdbus may call this from any thread: only uv_async_send() is thread-safe. */
static void bus_uv_wakeup_cb(void *data) {
        BusUv *b = data;

        uv_async_send(&b->async);
}

static void bus_uv_async_cb(uv_async_t *h) {
        bus_uv_schedule_dispatch(container_of(h, BusUv, async));
}

/* ---- watches ---- */

static void bus_uv_poll_close_cb(uv_handle_t *h) {
        BusUvPoll *p = container_of((uv_poll_t *)h, BusUvPoll, poll);
        BusUv *b = p->bus;

        free(p);
        bus_uv_handle_closed(b);
}

static void bus_uv_poll_cb(uv_poll_t *h, int status, int events);

/* Polls for the union of the enabled watches (or stops polling). */
static void bus_uv_poll_update(BusUvPoll *p) {
        int want = 0, r;

        for (size_t i = 0; i < p->n_watches; i++) {
                DBusWatch *w = p->watches[i];
                unsigned flags = dbus_watch_get_flags(w);

                if (!dbus_watch_get_enabled(w))
                        continue;
                if (flags & DBUS_WATCH_READABLE)
                        want |= UV_READABLE;
                if (flags & DBUS_WATCH_WRITABLE)
                        want |= UV_WRITABLE;
        }
        p->events = want;
        if (want == 0) {
                uv_poll_stop(&p->poll);
                return;
        }
        r = uv_poll_start(&p->poll, want, bus_uv_poll_cb);
        /* Only fails for a descriptor epoll refuses; libdbus then sees the
         * error on its next read or write and disconnects. */
        (void)r;
}

static bool bus_uv_poll_has_watch(const BusUvPoll *p, const DBusWatch *w) {
        for (size_t i = 0; i < p->n_watches; i++)
                if (p->watches[i] == w)
                        return true;
        return false;
}

static void bus_uv_poll_cb(uv_poll_t *h, int status, int events) {
        BusUvPoll *p = container_of(h, BusUvPoll, poll);
        BusUv *b = p->bus;
        DBusWatch *todo[BUS_UV_WATCHES_PER_FD];
        size_t n = p->n_watches;

        /* dbus_watch_handle() may remove (and free) any watch of this fd, so
         * work on a copy and skip the ones that left the poll meanwhile. The
         * BusUvPoll itself lives until its close callback, on a later turn. */
        for (size_t i = 0; i < n; i++)
                todo[i] = p->watches[i];
        for (size_t i = 0; i < n; i++) {
                DBusWatch *w = todo[i];
                unsigned want, flags = 0;

                if (!bus_uv_poll_has_watch(p, w) || !dbus_watch_get_enabled(w))
                        continue;
                want = dbus_watch_get_flags(w);
                if (status < 0)
                        flags |= DBUS_WATCH_ERROR;
                if ((events & UV_READABLE) && (want & DBUS_WATCH_READABLE))
                        flags |= DBUS_WATCH_READABLE;
                if ((events & UV_WRITABLE) && (want & DBUS_WATCH_WRITABLE))
                        flags |= DBUS_WATCH_WRITABLE;
                if (events & UV_DISCONNECT)
                        flags |= DBUS_WATCH_HANGUP;
                if (flags)
                        dbus_watch_handle(w, flags);
        }
        bus_uv_schedule_dispatch(b);
}

static BusUvPoll *bus_uv_poll_find(BusUv *b, int fd) {
        for (BusUvPoll *p = b->polls; p; p = p->next)
                if (p->fd == fd)
                        return p;
        return NULL;
}

static dbus_bool_t bus_uv_add_watch(DBusWatch *w, void *data) {
        BusUv *b = data;
        int fd = dbus_watch_get_unix_fd(w);
        BusUvPoll *p;

        if (b->closing || fd < 0)
                return FALSE;
        p = bus_uv_poll_find(b, fd);
        if (!p) {
                p = calloc(1, sizeof *p);
                if (!p)
                        return FALSE;
                if (uv_poll_init(b->loop, &p->poll, fd) < 0) {
                        free(p);
                        return FALSE;
                }
                b->n_handles++;
                p->bus = b;
                p->fd = fd;
                p->next = b->polls;
                b->polls = p;
        }
        if (p->n_watches == ARRAY_SIZE(p->watches))
                return FALSE;
        p->watches[p->n_watches++] = w;
        dbus_watch_set_data(w, p, NULL);
        bus_uv_poll_update(p);
        return TRUE;
}

static void bus_uv_remove_watch(DBusWatch *w, void *data) {
        BusUv *b = data;
        BusUvPoll *p = dbus_watch_get_data(w);

        if (!p)
                return;
        dbus_watch_set_data(w, NULL, NULL);
        for (size_t i = 0; i < p->n_watches; i++)
                if (p->watches[i] == w) {
                        p->watches[i] = p->watches[--p->n_watches];
                        break;
                }
        if (p->n_watches > 0) {
                bus_uv_poll_update(p);
                return;
        }
        /* Last watch on this fd: unlink now (a new poll may be created for a
         * reused fd number before this one's close callback runs). */
        for (BusUvPoll **pp = &b->polls; *pp; pp = &(*pp)->next)
                if (*pp == p) {
                        *pp = p->next;
                        break;
                }
        uv_close((uv_handle_t *)&p->poll, bus_uv_poll_close_cb);
}

static void bus_uv_toggle_watch(DBusWatch *w, void *data) {
        BusUvPoll *p = dbus_watch_get_data(w);

        if (p)
                bus_uv_poll_update(p);
}

/* ---- timeouts ---- */

static void bus_uv_timer_close_cb(uv_handle_t *h) {
        BusUvTimer *t = container_of((uv_timer_t *)h, BusUvTimer, timer);
        BusUv *b = t->bus;

        free(t);
        bus_uv_handle_closed(b);
}

static void bus_uv_timer_cb(uv_timer_t *h) {
        BusUvTimer *t = container_of(h, BusUvTimer, timer);

        if (t->timeout)
                dbus_timeout_handle(t->timeout);
        bus_uv_schedule_dispatch(t->bus);
}

/* (Re)starts t with the timeout's current interval, or stops it when disabled. */
static void bus_uv_timer_update(BusUvTimer *t) {
        int ms;

        uv_timer_stop(&t->timer);
        if (!t->timeout || !dbus_timeout_get_enabled(t->timeout))
                return;
        ms = dbus_timeout_get_interval(t->timeout);
        if (ms < 0)
                ms = 0;
        /* Repeating: libdbus expects to be called every interval until it
         * removes or disables the timeout. */
        uv_timer_start(&t->timer, bus_uv_timer_cb, (uint64_t)ms, ms > 0 ? (uint64_t)ms : 1);
}

static dbus_bool_t bus_uv_add_timeout(DBusTimeout *timeout, void *data) {
        BusUv *b = data;
        BusUvTimer *t;

        if (b->closing)
                return FALSE;
        t = calloc(1, sizeof *t);
        if (!t)
                return FALSE;
        if (uv_timer_init(b->loop, &t->timer) < 0) {
                free(t);
                return FALSE;
        }
        b->n_handles++;
        t->bus = b;
        t->timeout = timeout;
        dbus_timeout_set_data(timeout, t, NULL);
        bus_uv_timer_update(t);
        return TRUE;
}

static void bus_uv_remove_timeout(DBusTimeout *timeout, void *data) {
        BusUvTimer *t = dbus_timeout_get_data(timeout);

        if (!t)
                return;
        dbus_timeout_set_data(timeout, NULL, NULL);
        t->timeout = NULL;
        uv_timer_stop(&t->timer);
        uv_close((uv_handle_t *)&t->timer, bus_uv_timer_close_cb);
}

static void bus_uv_toggle_timeout(DBusTimeout *timeout, void *data) {
        BusUvTimer *t = dbus_timeout_get_data(timeout);

        if (t)
                bus_uv_timer_update(t);
}

/* ---- lifetime ---- */

/* Removes every function from conn; libdbus calls the remove functions for
 * each watch and timeout still present, which closes their handles. */
static void bus_uv_detach(BusUv *b) {
        dbus_connection_set_dispatch_status_function(b->conn, NULL, NULL, NULL);
        dbus_connection_set_wakeup_main_function(b->conn, NULL, NULL, NULL);
        dbus_connection_set_watch_functions(b->conn, NULL, NULL, NULL, NULL, NULL);
        dbus_connection_set_timeout_functions(b->conn, NULL, NULL, NULL, NULL, NULL);
}

int bus_uv_new(uv_loop_t *loop, DBusConnection *conn, BusUv **retp) {
        BusUv *b;
        int r;

        b = calloc(1, sizeof *b);
        if (!b)
                return -ENOMEM;
        b->loop = loop;
        b->conn = dbus_connection_ref(conn);

        r = uv_idle_init(loop, &b->idle);
        if (r < 0) {
                dbus_connection_unref(b->conn);
                free(b);
                return r;
        }
        b->idle.data = b;
        b->n_handles++;
        r = uv_async_init(loop, &b->async, bus_uv_async_cb);
        if (r < 0) {
                bus_uv_close(b, NULL, NULL);
                return r;
        }
        b->async.data = b;
        b->n_handles++;

        dbus_connection_set_exit_on_disconnect(conn, FALSE);
        if (!dbus_connection_set_watch_functions(conn, bus_uv_add_watch, bus_uv_remove_watch, bus_uv_toggle_watch, b,
                                                 NULL) ||
            !dbus_connection_set_timeout_functions(conn, bus_uv_add_timeout, bus_uv_remove_timeout,
                                                   bus_uv_toggle_timeout, b, NULL)) {
                bus_uv_close(b, NULL, NULL);
                return -ENOMEM;
        }
        dbus_connection_set_wakeup_main_function(conn, bus_uv_wakeup_cb, b, NULL);
        dbus_connection_set_dispatch_status_function(conn, bus_uv_dispatch_status_cb, b, NULL);
        /* Messages may already be queued (e.g. NameAcquired after a blocking
         * RequestName during start-up). */
        bus_uv_schedule_dispatch(b);
        *retp = b;
        return 0;
}

void bus_uv_close(BusUv *b, BusUvCloseCb close_cb, void *userdata) {
        if (!b || b->closing)
                return;
        b->close_cb = close_cb;
        b->close_userdata = userdata;
        bus_uv_detach(b);
        /* Set after detaching so the remove functions still run normally;
         * from here on add functions refuse. */
        b->closing = true;
        if (b->idle.loop) {
                uv_idle_stop(&b->idle);
                uv_close((uv_handle_t *)&b->idle, bus_uv_self_close_cb);
        }
        if (b->async.loop)
                uv_close((uv_handle_t *)&b->async, bus_uv_self_close_cb);
        /* Both handles are always initialised when b exists (bus_uv_new frees
         * b itself when the first init fails), so n_handles > 0 here and the
         * last close callback frees b. */
}

DBusConnection *bus_uv_get_connection(BusUv *b) {
        return b->conn;
}
