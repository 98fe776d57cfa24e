/*
 * Bodies fetched on demand: the daemon's registry of the IMAP body fetches a
 * front end is waiting for (a message stored headers only on a metered
 * network, or over max_message_size). Several callers of one message share
 * one fetch; each fetch holds the store open and the configuration its
 * account lives in. Loop thread only.
 */
#pragma once

#include <stdint.h>

#include "daemon/daemon.h"
#include "daemon/net/backoff.h"

/* Fetches of one account running at once, at most: more callers get -EBUSY. */
#define ONDEMAND_MAX_PER_ACCOUNT 4

/* Which stored message, and where it lives on the server. */
typedef struct OnDemandRequest {
        const char *account; /* configured name */
        int64_t message_id, folder_id;
        const char *folder; /* decoded name */
        uint32_t uidvalidity, uid;
} OnDemandRequest;

/*
 * Called once when the fetch is over: r is 0 (the body is stored and recorded
 * on the message), an IMAP_FETCH_BODY_E_* code, or a negative errno
 * (-ECANCELED when tegamid stops or rekeys first); failure is the session's
 * kind of failure (NONE when the server was not at fault); error names the
 * account, the server and the reason ("" on success), valid during the call.
 */
typedef void (*OnDemandFn)(int r, NetFailure failure, const char *error, void *userdata);

/*
 * Fetches req's body from its server, or joins the fetch of that message
 * already running. Returns 0 (cb follows once, never from inside this call),
 * -ENOENT (no such IMAP account configured), -EBUSY (too many fetches of the
 * account run), -ESHUTDOWN (no store, stopping or rekeying), or a negative errno.
 */
int ondemand_fetch(Daemon *d, const OnDemandRequest *req, OnDemandFn cb, void *userdata);

/* Cancels every fetch (daemon_stop, rekey): their callers hear -ECANCELED soon after. */
void ondemand_cancel_all(Daemon *d);
