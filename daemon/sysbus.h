/*
 * What tegamid hears on the D-Bus system bus: logind's PrepareForSleep
 * (suspend and resume) and NetworkManager's connectivity and metered state.
 * Both services are optional, and so is the system bus itself: without them
 * nothing is ever reported and the daemon runs on its timers. Loop thread only.
 */
#pragma once

#include <stdbool.h>
#include <uv.h>

typedef struct Sysbus Sysbus;

typedef struct SysbusOps {
        /*
         * logind: the machine is about to sleep (true) or has woken up (false). While a
         * sleep is prepared the system waits (up to logind's InhibitDelayMaxSec) for
         * sysbus_sleep_ready(), which the owner calls once its connections are closed.
         */
        void (*sleep)(bool sleeping, void *userdata);
        /*
         * NetworkManager: online is false while its State is below CONNECTED_SITE (no
         * network beyond the link); metered when Metered is YES or GUESS_YES. Reported at
         * start when NetworkManager answers and at every change; online and unmetered
         * again when it leaves the bus.
         */
        void (*network)(bool online, bool metered, void *userdata);
} SysbusOps;

/*
 * Connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS, or the default socket)
 * and starts watching. Returns 0, or a negative errno when there is no system
 * bus (logged at info level once; the caller goes on without it). ops and
 * userdata must outlive the Sysbus.
 */
int sysbus_new(uv_loop_t *loop, const SysbusOps *ops, void *userdata, Sysbus **retp);

/* The owner has closed its connections after sleep(true): logind may suspend now. Safe anytime. */
void sysbus_sleep_ready(Sysbus *b);

/* Stops watching and frees b once its handles have closed. NULL is accepted. */
void sysbus_close(Sysbus *b);
