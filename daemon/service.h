/*
 * The daemon's service API: what front ends may ask of tegamid, as plain C
 * calls on the loop thread. ipc/ maps D-Bus onto it and `tegamid --once` will
 * call it directly; it knows nothing of D-Bus. Values it hands out are
 * snapshots: strings borrowed from the running configuration stay valid only
 * until the next reload, so callers copy what they keep.
 */
#pragma once

#include <stdbool.h>
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
        SERVICE_ACCOUNT_PAUSED, /* the system sleeps or the network is down (logind, NetworkManager) */
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

/*
 * Re-encrypts the store under a new data key (daemon_rekey): cb follows once,
 * like unlock's (a wrong passphrase is AUTH_FAILED). At once: LOCKED, BUSY
 * (an unlock or rekey runs), INVALID_ARGS (a passphrase store needs its
 * passphrase), with *messagep (static text).
 */
int service_rekey(Daemon *d, const char *passphrase, ServiceUnlockFn cb, void *userdata, const char **messagep);

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

/*
 * Syncs and fetches (daemon/service-sync.c).
 */

/* True when account has a sync engine in this tegamid: it is scheduled, and service_sync() runs it. */
bool service_account_syncable(Daemon *d, const char *account);

/* One server message of a POP3 dry run, as the retention rules decide it. */
typedef struct ServicePlanItem {
        const char *uidl;
        uint64_t size;
        bool download, delete;
        const char *action;          /* "delete", "fetch", "skip" or "keep", in that order of precedence */
        const char *reason;          /* why that action (pop3_why_to_string) */
        const char *download_reason; /* why it is (not) downloaded */
        const char *delete_reason;   /* why it is deleted or kept on the server */
} ServicePlanItem;

/* Called once with a dry run's plan (valid during the call), or why there is none. */
typedef void (*ServicePlanFn)(ServiceError e, const char *message, const ServicePlanItem *items, size_t n,
                              void *userdata);

/*
 * A dry run of POP3 account's retention: the server is listed and the rules
 * decide, nothing is downloaded or deleted. It runs as the account's next
 * session (after the running one). Returns 0 (cb follows once) or a
 * ServiceError with *errp: NOT_FOUND, NOT_SUPPORTED (not POP3), LOCKED, BUSY
 * (a dry run of it is already waiting).
 */
int service_fetch_plan(Daemon *d, const char *account, ServicePlanFn cb, void *userdata, char **errp);

/* Forgets the cached Unread, Total and OutboxSize of account (NULL: every account): the next
 * service_get_account() counts them again in the store. Call after a sync and an outbox change. */
void service_counts_invalidate(Daemon *d, const char *account);

/* Fills retp's unread, total and outbox_size for a, the index-th account (service.c's fill_account). */
void service_counts_fill(Daemon *d, size_t index, ServiceAccount *retp);

/*
 * The mail view (daemon/service-mail.c) and the outbox (daemon/service-outbox.c).
 * Calls that fail return a ServiceError (positive) with *errp (malloc'd) naming
 * what was not found or why, or a negative errno; LOCKED while the store waits
 * for its passphrase. Lists are snapshots the caller frees.
 */

/* One folder of an account, as stored here. */
typedef struct ServiceFolder {
        char *name;
        const char *role; /* "inbox", "sent", "drafts", "trash", "junk", "archive", "all", "flagged" or "" (static) */
        uint64_t total, unread;
} ServiceFolder;

/* An envelope summary. */
typedef struct ServiceMessage {
        int64_t id;            /* store id */
        char *account, *folder;
        int64_t date;          /* Date: as Unix time, else the time it arrived here */
        char *from, *to, *cc, *subject, *message_id; /* decoded UTF-8, NULL when absent */
        uint32_t flags;        /* STORE_FLAG_* */
        char *keywords;        /* space-separated, NULL for none */
        uint64_t size;
} ServiceMessage;

/* The folders of account, by name. */
int service_list_folders(Daemon *d, const char *account, ServiceFolder **foldersp, size_t *n_foldersp, char **errp);
void service_folder_list_free(ServiceFolder *folders, size_t n_folders);

/* Up to limit messages of folder, newest first, after skipping offset; *totalp is the folder's count. */
int service_list_messages(Daemon *d, const char *account, const char *folder, uint64_t offset, size_t limit,
                          ServiceMessage **msgsp, size_t *n_msgsp, uint64_t *totalp, char **errp);
void service_message_clear(ServiceMessage *m);
void service_message_list_free(ServiceMessage *msgs, size_t n_msgs);

/*
 * One message: its summary in *msgp and, in *fdp, a sealed read-only memfd at
 * offset 0 holding the raw RFC 5322 bytes, filled chunk by chunk from the
 * store so the body is never whole in the daemon's memory (the memfd's pages
 * are not mapped into tegamid). NOT_FOUND for an unknown id; SERVICE_NO_BODY
 * for a message stored without its body (see service_fetch_body()).
 */
int service_get_message(Daemon *d, int64_t id, ServiceMessage *msgp, int *fdp, char **errp);

/* Message id's summary alone, as service_get_message() gives it: never fetches a body (notifiers). */
int service_get_summary(Daemon *d, int64_t id, ServiceMessage *msgp, char **errp);

/* service_get_message()'s answer for a message stored from its headers only (a
 * metered network, or over max_message_size): the caller fetches the body with
 * service_fetch_body() and asks again. Not a ServiceError: never passed on. */
#define SERVICE_NO_BODY 100

/* Called once when a change ends: SERVICE_ERROR_NONE, or why not. */
typedef void (*ServiceDoneFn)(ServiceError e, const char *message, void *userdata);

/*
 * Fetches the body of message id (stored without one) from its IMAP server
 * now, in a short session of its own, and records it on the message (flags
 * untouched, no new-mail event); callers asking for the same message meanwhile
 * share the fetch. Returns 0 and cb follows once (never from inside): NONE
 * when the body is stored (service_get_message() hands it out), NOT_FOUND when
 * the server no longer has the message, NETWORK / AUTH_FAILED / TLS when the
 * session failed, BUSY when tegamid stops first; the message names the
 * account, the server and the reason. At once, with *errp: NOT_FOUND (no such
 * message, or not an IMAP account's), INVALID_ARGS (it has its body),
 * NETWORK (the network is paused: offline or asleep), BUSY, LOCKED.
 */
int service_fetch_body(Daemon *d, int64_t id, ServiceDoneFn cb, void *userdata, char **errp);

/*
 * Flags: add and remove hold "\Seen", "\Answered", "\Flagged", "\Deleted",
 * "\Draft" or keywords ("$Forwarded" is a flag here). Applied here at once and
 * queued for the server (IMAP accounts); every id is checked first, then the
 * change is one store job for the messages of IMAP accounts and one for the
 * others, each all or none. Returns 0 and cb follows once, or a ServiceError
 * with *errp.
 */
int service_set_flags(Daemon *d, const int64_t *ids, size_t n_ids, const char *const *add, size_t n_add,
                      const char *const *remove, size_t n_remove, ServiceDoneFn cb, void *userdata, char **errp);

/* Moves messages to folder of account (the same account as the messages); as service_set_flags(). */
int service_move(Daemon *d, const int64_t *ids, size_t n_ids, const char *account, const char *folder,
                 ServiceDoneFn cb, void *userdata, char **errp);

/* Deletes messages here and, queued, on the server; as service_set_flags(). */
int service_delete(Daemon *d, const int64_t *ids, size_t n_ids, ServiceDoneFn cb, void *userdata, char **errp);

/* One outbox entry not yet sent. */
typedef struct ServiceOutboxEntry {
        int64_t id;
        char *account;
        const char *state; /* "queued", "retrying", "sending", "failed" or "unknown" (static) */
        uint32_t attempts;
        int64_t next_attempt, created;
        char *last_error; /* "" when none */
        char **rcpts;
        size_t n_rcpts;
        char *subject;    /* NULL when the message has none */
} ServiceOutboxEntry;

/* The outbox entries not sent yet, oldest first. */
int service_list_outbox(Daemon *d, ServiceOutboxEntry **entriesp, size_t *n_entriesp, char **errp);
void service_outbox_list_free(ServiceOutboxEntry *entries, size_t n_entries);

/* Makes entry id due now and wakes the outbox engine; as service_set_flags()
 * (BUSY while it is being sent, INVALID_ARGS once sent). */
int service_retry_outbox(Daemon *d, int64_t id, ServiceDoneFn cb, void *userdata, char **errp);

/* Removes entry id unless it is being sent; as service_retry_outbox(). */
int service_cancel_outbox(Daemon *d, int64_t id, ServiceDoneFn cb, void *userdata, char **errp);
