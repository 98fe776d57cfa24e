/*
 * Runs a libdbus connection on a libuv loop: libdbus' watches become one
 * uv_poll per file descriptor, its timeouts repeating uv_timers, dispatching
 * happens from a uv_idle and cross-thread wake-ups arrive through a uv_async.
 * This is the only place where libdbus meets libuv.
 *
 * Use the connection from the loop thread only: libdbus calls the watch and
 * timeout functions from whichever thread sends, and libuv handles are not
 * thread-safe. Only the wake-up function is safe from any thread.
 */
#pragma once

#include <dbus/dbus.h>
#include <uv.h>

typedef struct BusUv BusUv;

/* Called once, after every handle of b has closed and just before b is freed. */
typedef void (*BusUvCloseCb)(BusUv *b, void *userdata);

/*
 * Attaches conn to loop: installs watch, timeout, wake-up and dispatch-status
 * functions and turns exit-on-disconnect off. b takes its own reference on
 * conn, which it drops when freed. On success returns 0 and *retp; on failure
 * a negative errno (UV_E* passed through) and nothing is left attached.
 */
int bus_uv_new(uv_loop_t *loop, DBusConnection *conn, BusUv **retp);

/*
 * Detaches the connection from the loop and closes every handle; close_cb
 * (may be NULL) runs once they have all closed, then b is freed. A private
 * connection should be dbus_connection_close()d by its owner first. Calling
 * it again before the loop runs does nothing; once the loop has run, b may be
 * gone and must not be touched.
 */
void bus_uv_close(BusUv *b, BusUvCloseCb close_cb, void *userdata);

/* The connection b runs (borrowed). */
DBusConnection *bus_uv_get_connection(BusUv *b);
