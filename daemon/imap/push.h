/*
 * IMAP push for one account: one long-lived connection of its own that only
 * watches for changes and says which folder changed; it never syncs. The
 * owner (the daemon) answers changed() by queueing a sync of the account.
 *
 * With NOTIFY (RFC 5465) the connection covers every mailbox; without it (or
 * with use_notify false) it IDLEs on INBOX and polls the other wanted folders
 * with STATUS every status_interval_ms. A silent connection is probed, a dead
 * one reconnected with backoff; permanent failures (authentication,
 * certificate, credentials, downgrade) stop the module.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/net/backoff.h"

typedef struct ImapPush ImapPush;

typedef enum ImapPushMode {
        IMAP_PUSH_MODE_NONE,   /* not connected yet */
        IMAP_PUSH_MODE_NOTIFY, /* NOTIFY SET ... then IDLE with nothing selected */
        IMAP_PUSH_MODE_IDLE,   /* EXAMINE INBOX + IDLE, STATUS rounds of the others */
} ImapPushMode;

typedef enum ImapPushState {
        IMAP_PUSH_CONNECTED,    /* the session is watching (imap_push_get_mode() says how) */
        IMAP_PUSH_RECONNECTING, /* the session failed; reason says why, retry after imap_push_get_retry_ms() */
        IMAP_PUSH_STOPPED,      /* a permanent failure (imap_push_get_failure()); no retry until imap_push_start() */
} ImapPushState;

typedef struct ImapPushOptions {
        bool use_notify;             /* NOTIFY when offered (true by default) */
        uint64_t status_interval_ms; /* IDLE mode: STATUS round of the other folders; 0 = 60 s */
        uint64_t idle_renew_ms;      /* IDLE re-issued after this long; 0 = 25 min (RFC 2177: < 29 min) */
        uint64_t noop_after_ms;      /* no byte from the server that long: probe; 0 = 5 min */
        uint64_t noop_timeout_ms;    /* no byte within this after the probe: reconnect; 0 = 20 s */
        uint64_t coalesce_ms;        /* one folder's events within this: one more call at most; 0 = 50 ms */
        uint64_t backoff_base_ms, backoff_cap_ms; /* reconnect delays; 0 = 1 s and 5 min */
} ImapPushOptions;

/* ImapPushOptions as documented (use_notify true, every other field 0 = its default). */
#define IMAP_PUSH_OPTIONS_DEFAULT ((ImapPushOptions){.use_notify = true})

typedef struct ImapPushOps {
        /*
         * Something changed in folder (decoded UTF-8 name, valid during the call), or folder is NULL
         * when the folder list changed. Called at once for the first event, then at most once more per
         * coalesce_ms for the same folder. Not called after imap_push_close().
         */
        void (*changed)(ImapPush *p, const char *account, const char *folder, void *userdata);
        /* The module's state moved; reason (valid during the call) is NULL for CONNECTED. May be NULL. */
        void (*state)(ImapPush *p, ImapPushState state, const char *reason, void *userdata);
} ImapPushOps;

/* Called once after imap_push_close(); p is freed when this returns. */
typedef void (*ImapPushClosedFn)(ImapPush *p, void *userdata);

/* Creates the module for the IMAP account a (which must outlive it); opts NULL = defaults. 0 or -errno. */
int imap_push_new(uv_loop_t *loop, const Account *a, const ImapPushOptions *opts, const ImapPushOps *ops,
                  void *userdata, ImapPush **pp);

/*
 * Connects: at first, after IMAP_PUSH_STOPPED, or after imap_push_stop().
 * Returns 0, -EBUSY when running or waiting to retry, or a negative errno (no callback).
 */
int imap_push_start(ImapPush *p);

/* When waiting to reconnect (RECONNECTING): try now and restart the backoff; the network came back. */
void imap_push_retry_now(ImapPush *p);

/*
 * Drops the connection (or a pending retry) without a state report, e.g. for
 * suspend or when the network is gone; imap_push_start() resumes, and then
 * reports what changed meanwhile (the last STATUS values are kept). Safe
 * anytime, also twice.
 */
void imap_push_stop(ImapPush *p);

/* Drops the connection and the timers; closed_cb (may be NULL) follows once, asynchronously. Safe twice. */
void imap_push_close(ImapPush *p, ImapPushClosedFn closed_cb);

ImapPushMode imap_push_get_mode(const ImapPush *p);

/* The failure that caused the last RECONNECTING or STOPPED, NET_FAILURE_NONE if none. */
NetFailure imap_push_get_failure(const ImapPush *p);

/* The delay before the reconnect announced by the last RECONNECTING. */
uint64_t imap_push_get_retry_ms(const ImapPush *p);

/* "notify", "idle", "none". */
const char *imap_push_mode_to_string(ImapPushMode mode);

/* "connected", "reconnecting", "stopped". */
const char *imap_push_state_to_string(ImapPushState state);
