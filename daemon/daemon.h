/*
 * The daemon object: the libuv loop, signal handling (SIGTERM/SIGINT stop,
 * SIGHUP reloads the config) and the accounts' lifetime. Main thread only.
 */
#pragma once

#include <stdbool.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/scheduler.h"
#include "daemon/sending.h"
#include "store/store.h"

/* Hears about the daemon's changes (ipc/ registers one through the service
 * API). Called on the loop thread; either callback may be NULL. */
typedef struct DaemonListener {
        void (*config_changed)(void *userdata); /* after a good reload */
        void (*stopping)(void *userdata);       /* from daemon_stop(): close your handles */
        void (*sync_started)(const char *account, void *userdata);
        void (*sync_finished)(const char *account, const SchedRun *run, void *userdata);
        void (*sync_progress)(const char *account, const char *folder, unsigned done, unsigned total,
                              void *userdata);
        /* an outbox entry changed state: "queued", "sending", "retrying", "failed", "sent", "unknown"
         * or "cancelled" */
        void (*outbox_changed)(int64_t id, const char *state, void *userdata);
        /* messages changed here (flags, moves, deletions): counts may differ */
        void (*mail_changed)(void *userdata);
} DaemonListener;

typedef struct DaemonUnlock DaemonUnlock;
typedef struct DaemonRekey DaemonRekey;

/* Called once when an unlock started by daemon_unlock() ends: 0, or a KEYS_E_*
 * code / negative errno with message saying why. */
typedef void (*DaemonUnlockFn)(int r, const char *message, void *userdata);

typedef struct Daemon {
        uv_loop_t *loop;
        uv_signal_t sig_term, sig_int, sig_hup;
        Config *config;     /* owned; replaced whole on a good reload */
        char *config_path;
        char *data_dir;
        unsigned n_reloads; /* successful reloads, for tests and status */
        int exit_code;
        bool stopping;
        const DaemonListener *listener; /* borrowed; see service_set_listener() */
        void *listener_userdata;
        char *store_path;   /* DATA_DIR/mail.db */
        Store *store;       /* NULL while locked (passphrase kind) or closed */
        bool locked;        /* waiting for the passphrase */
        DaemonUnlock *unlock; /* in flight, at most one */
        DaemonRekey *rekey;   /* in flight, at most one: the store is closed meanwhile */
        Sending *sending;   /* the outbox engine, while the store is open */
        unsigned n_sendings_closing; /* replaced by a reload or stopping; the store closes after them */
        unsigned n_store_holds;      /* engines still using the store (daemon_store_hold) */
        Scheduler *scheduler;        /* syncs the accounts, while the store is open (not with once) */
        bool once;                   /* tegamid --once: main.c runs the accounts itself, no scheduler */
        struct Netmon *netmon;       /* connectivity changes kick the outbox and the backoffs */
        struct Sysbus *sysbus;       /* logind and NetworkManager on the system bus, when there is one */
        bool asleep;                 /* logind: preparing for sleep until resumed; syncs paused */
        bool offline, metered;       /* NetworkManager: no network (syncs paused); metered (headers only) */
        struct ServiceCounts *counts; /* the service API's cached per-account counts (daemon/service-sync.c) */
        struct OnDemandFetch *ondemand; /* body fetches a front end waits for (daemon/ondemand.c) */
} Daemon;

/* Sets up d on loop with an already-loaded config (ownership passes to d). */
int daemon_init(Daemon *d, uv_loop_t *loop, Config *config, const char *config_path, const char *data_dir);

/*
 * Starts the signal handlers, opens the store (or leaves it locked when its key
 * needs a passphrase) and starts the accounts. A store that cannot be opened
 * is a start-up failure: returns a negative errno or KEYS_E_* code and, when
 * errp is not NULL, *errp (malloc'd) names the file and the reason.
 */
int daemon_start(Daemon *d, char **errp);

/*
 * Unlocks a passphrase store: the key is derived on the thread pool (Argon2id
 * takes a while), then the store opens on the loop. Returns 0 (cb follows once),
 * -EALREADY when the store is not locked, -EBUSY while another unlock runs.
 */
int daemon_unlock(Daemon *d, const char *passphrase, DaemonUnlockFn cb, void *userdata);

/*
 * Reloads the config file: a bad file is rejected, logged and the running
 * config kept; then, when errp is not NULL, *errp (malloc'd) says why.
 */
int daemon_reload(Daemon *d, char **errp);

/* Begins an orderly shutdown: handles close (the listener's too), the loop
 * then runs dry. The first call's exit_code wins. */
void daemon_stop(Daemon *d, int exit_code);

/* An engine (a POP3 fetch, say) uses the store: stopping waits for its release
 * before closing the store. */
void daemon_store_hold(Daemon *d);
void daemon_store_release(Daemon *d);

/* Called once when a rekey ends: 0 (the store is open again under a new data key), or a KEYS_E_*
 * code / negative errno with message saying why (the store is then reopened as it was when it can be). */
typedef void (*DaemonRekeyFn)(int r, const char *message, void *userdata);

/*
 * Re-encrypts the whole store under a new random data key: the engines stop,
 * the store closes, keys_rekey() runs on the thread pool, the store reopens
 * and the engines start again. passphrase: the store's, for a passphrase
 * store (NULL otherwise). Returns 0 (cb follows once), -EAGAIN while locked,
 * -EBUSY while an unlock or another rekey runs.
 */
int daemon_rekey(Daemon *d, const char *passphrase, DaemonRekeyFn cb, void *userdata);

/* Syncs account (NULL: all) now: 0, -ENOENT for no such account, -EAGAIN while the store is locked. */
int daemon_sync_now(Daemon *d, const char *account);

/* Frees what daemon_init allocated; call after the loop has run dry. */
void daemon_deinit(Daemon *d);
