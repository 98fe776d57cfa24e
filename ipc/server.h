/*
 * tegamid on the session bus: connects, owns org.tegami.Mail1 exclusively,
 * serves the objects of ipc/org.tegami.Mail1.xml through the daemon's service
 * API and announces account changes. Loop thread only.
 */
#pragma once

#include <stdbool.h>
#include <uv.h>

#include "daemon/service.h"

#define IPC_BUS_NAME "org.tegami.Mail1"

typedef struct IpcServer IpcServer;

/* Expected outcomes of ipc_server_new() that its caller handles. */
enum {
        IPC_SERVER_E_NO_BUS = 1,     /* no session bus to connect to: run without D-Bus */
        IPC_SERVER_E_NAME_TAKEN = 2, /* another process owns org.tegami.Mail1 */
};

/*
 * Connects to the session bus ($DBUS_SESSION_BUS_ADDRESS, else
 * $DBUS_STARTER_ADDRESS, else $XDG_RUNTIME_DIR/bus) and runs the connection on
 * loop. With own_name it exports the objects and takes the bus name with
 * DO_NOT_QUEUE; without it (tegamid --once) it only holds the connection.
 * The start-up calls block (they are local and quick). Returns 0 and *retp,
 * an IPC_SERVER_E_* code, or a negative errno; on anything but 0, *errp
 * (malloc'd, may be NULL on OOM) says why and nothing is left behind.
 *
 * The server registers itself as d's listener: daemon_stop() closes it, and
 * it frees itself once its handles have closed.
 */
int ipc_server_new(uv_loop_t *loop, Daemon *d, bool own_name, IpcServer **retp, char **errp);

/* Closes the connection and every handle; the server is freed after the last
 * close callback. Safe twice; s must not be used after the loop ran. */
void ipc_server_close(IpcServer *s);

/* Frees libdbus' process-wide caches so that leak checkers see a clean exit.
 * Call once, at exit, after the loop has run dry (every server is closed). */
void ipc_shutdown(void);
