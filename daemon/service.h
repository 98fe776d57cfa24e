/*
 * The daemon's service API: what front ends may ask of tegamid, as plain C
 * calls on the loop thread. ipc/ maps D-Bus onto it and `tegamid --once` will
 * call it directly; it knows nothing of D-Bus. Values it hands out are
 * snapshots: strings borrowed from the running configuration stay valid only
 * until the next reload, so callers copy what they keep.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "daemon/daemon.h"

/* Longest "scheme://host:port" the API returns (host names are <= 253 bytes). */
#define SERVICE_URL_MAX 300

/* Why an operation failed, as front ends are told; ipc/ maps each to an
 * org.tegami.Mail1.Error name. */
typedef enum ServiceError {
        SERVICE_ERROR_NONE,
        SERVICE_ERROR_NOT_FOUND,
        SERVICE_ERROR_LOCKED,
        SERVICE_ERROR_AUTH_FAILED,
        SERVICE_ERROR_NETWORK,
        SERVICE_ERROR_TLS,
        SERVICE_ERROR_BUSY,
        SERVICE_ERROR_INVALID_ARGS,
        SERVICE_ERROR_INVALID_CONFIG,
        SERVICE_ERROR_NOT_SUPPORTED,
        SERVICE_ERROR_FAILED, /* something broke inside tegamid (the store); the message says what */
} ServiceError;

typedef enum ServiceAccountState {
        SERVICE_ACCOUNT_IDLE,
        SERVICE_ACCOUNT_CONNECTING,
        SERVICE_ACCOUNT_SYNCING,
        SERVICE_ACCOUNT_SENDING,
        SERVICE_ACCOUNT_ERROR,
        SERVICE_ACCOUNT_LOCKED,
} ServiceAccountState;

typedef enum ServiceState {
        SERVICE_RUNNING,
        SERVICE_LOCKED,
} ServiceState;

/* The daemon as a whole. */
typedef struct ServiceStatus {
        const char *version;
        ServiceState state;
        const char *config_path; /* borrowed */
        unsigned n_reloads;
        size_t n_accounts;
} ServiceStatus;

/* One account. Counters are 0 until the store and the engines report them. */
typedef struct ServiceAccount {
        const char *name;     /* borrowed from the running config */
        const char *address;  /* borrowed */
        const char *protocol; /* "imap" or "pop3" (static) */
        char server[SERVICE_URL_MAX];
        char send_server[SERVICE_URL_MAX]; /* "" without smtp */
        ServiceAccountState state;
        int64_t last_sync; /* Unix seconds; 0 = never */
        uint32_t unread, total, outbox_size;
        uint64_t quota_used, quota_limit;
        ServiceError last_error;
        const char *last_error_message; /* "" when last_error is NONE */
} ServiceAccount;

/* Told about changes; either callback may be NULL. Same type as the daemon's. */
typedef DaemonListener ServiceListener;

/* Fills *retp with the daemon's status. */
void service_get_status(Daemon *d, ServiceStatus *retp);

/* Fills *retp with the i-th configured account; -ENOENT when i is past the end. */
int service_get_account(Daemon *d, size_t i, ServiceAccount *retp);

/* Fills *retp with the account called name; -ENOENT when there is none. */
int service_find_account(Daemon *d, const char *name, ServiceAccount *retp);

/*
 * Re-reads the configuration file. On success returns 0 and listeners hear
 * config_changed. On a rejected file returns a negative errno, keeps the
 * running configuration and, when errp is not NULL, sets *errp (malloc'd) to
 * "FILE:LINE: reason" or "FILE: strerror".
 */
int service_reload(Daemon *d, char **errp);

/* Called once when service_unlock() ends: SERVICE_ERROR_NONE, or why not. */
typedef void (*ServiceUnlockFn)(ServiceError e, const char *message, void *userdata);

/*
 * Unlocks a passphrase-protected store. Returns 0 and cb follows once (a
 * wrong passphrase is SERVICE_ERROR_AUTH_FAILED), or a ServiceError at once
 * with *messagep (static text) when nothing was started: the store is not
 * locked (INVALID_ARGS) or another unlock runs (BUSY).
 */
int service_unlock(Daemon *d, const char *passphrase, ServiceUnlockFn cb, void *userdata, const char **messagep);

/* Called once when service_send() ends: SERVICE_ERROR_NONE and the outbox id
 * once the message is stored durably, or why not. */
typedef void (*ServiceSendFn)(ServiceError e, const char *message, int64_t id, void *userdata);

/*
 * Queues the message raw (n bytes) in the outbox as req says (see
 * daemon/sending.h). Returns 0 (cb follows once), or a ServiceError with
 * *errp (malloc'd) when nothing was queued: LOCKED, NOT_FOUND (no account can
 * send it), INVALID_ARGS (the message is refused), BUSY (starting or stopping).
 */
int service_send(Daemon *d, const char *raw, size_t n, const SendingRequest *req, ServiceSendFn cb, void *userdata,
                 char **errp);

/* Begins an orderly shutdown with exit_code (see daemon_stop()). */
void service_quit(Daemon *d, int exit_code);

/* Registers the one listener (NULL to remove it); l must outlive it. */
void service_set_listener(Daemon *d, const ServiceListener *l, void *userdata);

/* The error front ends are told for a session that failed this way. */
ServiceError service_error_from_failure(NetFailure failure);

/* Syncs (or fetches) account now, NULL for every account: 0 once started (progress and the
 * outcome come through the listener), SERVICE_ERROR_NOT_FOUND, or SERVICE_ERROR_LOCKED. */
int service_sync(Daemon *d, const char *account);
