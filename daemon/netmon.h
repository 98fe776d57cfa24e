/*
 * Connectivity changes, from the kernel's rtnetlink multicast groups: an
 * interface coming up, an address or a default route appearing. tegamid uses
 * them to retry at once what waits for the network (the outbox, accounts
 * backing off) instead of sleeping out a backoff that may last hours.
 * Bursts (a DHCP lease adds an address, a route, a link state...) are
 * coalesced into one report. Loop thread only.
 */
#pragma once

#include <uv.h>

typedef struct Netmon Netmon;

/* The network may have come back: retry what waits for it. */
typedef void (*NetmonFn)(void *userdata);
typedef void (*NetmonClosedFn)(void *userdata);

/* Quiet time after the last change before cb runs. */
#define NETMON_SETTLE_MS 1000

/*
 * Starts watching. Returns 0, or a negative errno when rtnetlink is not
 * available (a sandbox without it): the daemon then relies on its timers.
 */
int netmon_new(uv_loop_t *loop, NetmonFn cb, void *userdata, Netmon **retp);

/* Stops watching; frees m once its handles are closed, then closed_cb (may be NULL). */
void netmon_close(Netmon *m, NetmonClosedFn closed_cb, void *userdata);
