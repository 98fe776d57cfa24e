/*
 * One IMAP sync of one account: folder list (patterns, SPECIAL-USE roles,
 * folders gone on the server removed here), then folder by folder: SELECT
 * (QRESYNC or CONDSTORE when enabled), UIDVALIDITY recovery without
 * re-downloading (Message-ID + size), server-side flag changes and expunges
 * applied here, local pending changes pushed (flags with UNCHANGEDSINCE and a
 * per-flag three-way merge, moves, deletions, appends), new messages fetched
 * in pipelined chunks streamed into the store, large ones in partial pieces
 * with back-pressure. A folder's state (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ)
 * is saved only after its messages are committed, so a crash at any moment
 * makes the next sync redo what was not committed, never duplicate it.
 *
 * Local flags: the store's message flags are the local view (store/local.h
 * applies a person's edit to them and records a pending change). For the
 * merge, the base of a flag a pending change touched is the opposite of the
 * value asked for, and of any other flag the local value; see
 * imap_flags_merge() for the rule (server wins only without a base).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/net/backoff.h"
#include "store/store.h"

/* New messages of one folder: their store ids. */
typedef struct ImapSyncNewMail {
        const char *folder; /* decoded name */
        const int64_t *ids;
        size_t n_ids;
} ImapSyncNewMail;

typedef struct ImapSyncResult {
        int r;              /* 0, or a negative errno: error says why */
        NetFailure failure; /* retry or stop (backoff.h); NONE on success */
        const char *error;  /* "account NAME: HOST:PORT: reason", "" on success */
        size_t n_folders;   /* folders synced */
        size_t n_folders_created, n_folders_deleted;
        size_t n_new;           /* messages stored (downloaded or headers only) */
        uint64_t body_bytes;    /* bytes of message bodies and headers fetched */
        size_t n_flags_updated; /* messages whose flags the server changed */
        size_t n_expunged;      /* removed on the server by another device, removed here */
        size_t n_pushed;        /* local changes the server took */
        size_t n_uidvalidity;   /* folders recovered from a UIDVALIDITY change */
        size_t n_recovered;     /* messages kept across it without a download */
        const ImapSyncNewMail *new_mail; /* folders that got new messages (NULL if memory ran out) */
        size_t n_new_mail;
        /* The server's STORAGE quota (QUOTA capability: GETQUOTAROOT INBOX once per run), in bytes;
         * the fullest root's when INBOX has several. have_quota false: not offered or not told. */
        bool have_quota;
        uint64_t quota_used, quota_limit;
} ImapSyncResult;

/* Called once with the outcome; res is valid during the call only. */
typedef void (*ImapSyncFn)(const ImapSyncResult *res, void *userdata);

/* Where a sync stands, for progress displays. */
typedef struct ImapSyncProgress {
        const char *folder;          /* the folder being synced (decoded name) */
        size_t folders_done, folders_total;
        size_t msgs_done, msgs_total; /* new messages of this folder stored / to fetch */
        uint64_t bytes;              /* body bytes fetched so far in this sync */
} ImapSyncProgress;

typedef void (*ImapSyncProgressFn)(const ImapSyncProgress *p, void *userdata);

/*
 * A logged-in session kept between the syncs of one account, so a sync
 * started by push skips connecting, TLS and authentication (sync-keep.c).
 * The owner (the scheduler, one per account) creates it and frees it; a
 * sync given one in its options leaves its session there when it ends well
 * and takes one that is there when it starts (after a NOOP proves it alive).
 */
typedef struct ImapSyncKeep ImapSyncKeep;

int imap_sync_keep_new(uv_loop_t *loop, ImapSyncKeep **kp);
/* Logs out a kept session now (the network changed, or before suspend). Safe anytime. */
void imap_sync_keep_drop(ImapSyncKeep *k);
typedef void (*ImapSyncKeepClosedFn)(void *userdata);
/* Drops the session and frees k once no sync uses it; cb (may be NULL) follows once, never from inside. */
void imap_sync_keep_free(ImapSyncKeep *k, ImapSyncKeepClosedFn cb, void *userdata);

typedef struct ImapSyncOptions {
        uint64_t read_timeout_ms; /* 0 = the client's default */
        uint64_t large_threshold; /* bodies above are fetched in pieces of this size; 0 = 1 MiB */
        unsigned chunk_uids;      /* UIDs per FETCH; 0 = 250 */
        bool no_qresync;          /* do not ENABLE QRESYNC (tests of the fallbacks) */
        bool no_condstore;        /* nor CONDSTORE */
        ImapSyncKeep *keep;       /* NULL: connect and LOG OUT each time */
        bool headers_only;        /* store new messages from their headers only (metered network) */
        bool fetch_missing_bodies; /* also fetch the bodies stored messages lack (left by headers_only;
                                    * not those above max_message_size), in every folder, changed or not */
        ImapSyncProgressFn progress_fn; /* at each folder's start and end, and every few hundred messages */
        void *progress_userdata;
} ImapSyncOptions;

/*
 * Starts one sync of account a (which must outlive it; opts may be NULL)
 * into store; cb runs once when it is over and everything it wrote has been
 * committed. Returns 0, or a negative errno (cb will not run).
 */
int imap_sync_start(uv_loop_t *loop, Store *store, const Account *a, const ImapSyncOptions *opts, ImapSyncFn cb,
                    void *userdata);

typedef struct ImapSync ImapSync;

/* The same, handing out the running sync in *sp (may be NULL) for imap_sync_cancel(); valid until cb runs. */
int imap_sync_begin(uv_loop_t *loop, Store *store, const Account *a, const ImapSyncOptions *opts, ImapSyncFn cb,
                    void *userdata, ImapSync **sp);

/*
 * Stops a running sync as if the session broke: the connection closes at
 * once; what was committed stays (a folder's state only moves after its
 * messages), the next sync redoes the rest. cb still runs once, with
 * -ECANCELED.
 */
void imap_sync_cancel(ImapSync *s);

/* Called once when imap_sync_all_start() is over. */
typedef void (*ImapSyncAllFn)(size_t n_synced, size_t n_failed, void *userdata);

/*
 * Syncs every IMAP account of c (or only the one called only), one after the
 * other; each outcome is logged under its account with its counts. c and
 * store must outlive it. Returns 0 (cb follows, never from inside this
 * call), -ENOENT when no IMAP account matches (cb will not run), or a
 * negative errno.
 */
int imap_sync_all_start(uv_loop_t *loop, Store *store, const Config *c, const char *only, ImapSyncAllFn cb,
                        void *userdata);

/* One line of counts for logs: "3 folders, 12 new (1.2 MB), ..."; writes into buf. */
const char *imap_sync_result_summary(const ImapSyncResult *res, char *buf, size_t size);
