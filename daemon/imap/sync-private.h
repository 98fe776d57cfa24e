/*
 * What the sync engine's files share (sync.c: session, folders and the state
 * machine; sync-fetch.c: downloads; sync-push.c: local changes and the flag
 * merge). Nothing outside daemon/imap/sync*.c includes this.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/imap/client.h"
#include "daemon/mime/envelope.h"
#include "daemon/imap/sync.h"
#include "store/body.h"
#include "store/imap.h"
#include "store/pending.h"

#define LARGE_DEFAULT    (1024 * 1024)
#define CHUNK_DEFAULT    250
#define WINDOW_BYTES     (2 * 1024 * 1024) /* body bytes requested and not yet received */
#define BATCH_BYTES      (1024 * 1024)     /* body bytes asked for by one FETCH, at most (one message may exceed) */
#define MAX_FETCH_FLIGHT 4

typedef enum SyncState {
        SYNC_CONNECT,
        SYNC_ACCOUNT, /* the store's account row */
        SYNC_LIST,    /* LIST "" "*" */
        SYNC_FOLDERS, /* upsert wanted folders, delete vanished ones */
        SYNC_SELECT,  /* next folder: SELECT */
        SYNC_CHANGES, /* flags changed and UIDs gone on the server */
        SYNC_APPLY,   /* ... written to the store */
        SYNC_PUSH,    /* local pending changes to the server */
        SYNC_META,    /* UID, FLAGS, sizes of new messages (and Message-IDs when recovering) */
        SYNC_RECOVER, /* UIDVALIDITY changed: renumber matched messages */
        SYNC_BODIES,  /* download */
        SYNC_SAVE,    /* the folder's state, after its messages committed */
        SYNC_LOGOUT,
        SYNC_DONE,
        _SYNC_STATE_MAX,
} SyncState;

static const char *const state_names[_SYNC_STATE_MAX] = {
        [SYNC_CONNECT] = "connect", [SYNC_ACCOUNT] = "account", [SYNC_LIST] = "list",     [SYNC_FOLDERS] = "folders",
        [SYNC_SELECT] = "select",   [SYNC_CHANGES] = "changes", [SYNC_APPLY] = "apply",   [SYNC_PUSH] = "push",
        [SYNC_META] = "meta",       [SYNC_RECOVER] = "recover", [SYNC_BODIES] = "bodies", [SYNC_SAVE] = "save",
        [SYNC_LOGOUT] = "logout",   [SYNC_DONE] = "done",
};

/* A wanted mailbox of this run. */

typedef struct SyncFolder {
        ImapSync *s;
        char *wire; /* as on the wire (modified UTF-7) */
        char *name; /* decoded */
        char delim;
        StoreFolderRole role;
        int64_t id;
        uint32_t uidvalidity, uidnext; /* stored state at the start */
        uint64_t highestmodseq;
        bool existed;
        bool st_have; /* LIST-STATUS told st_*: the folder's state on the server now */
        uint32_t st_uidvalidity, st_uidnext;
        uint64_t st_hms;
        int64_t *new_ids; /* store ids of the messages this run stored here */
        size_t n_new_ids, cap_new_ids;
} SyncFolder;

/* A message as the server reported it. */
typedef struct SrvMsg {
        uint32_t uid;
        uint32_t flags;
        bool has_flags;
        char *keywords;
        uint64_t modseq;
        uint64_t size;
        int64_t internal_date;
        char *message_id; /* recovery only */
} SrvMsg;

typedef struct SrvMsgVec {
        SrvMsg *v;
        size_t n, cap;
} SrvMsgVec;

typedef struct UidVec {
        uint32_t *v;
        size_t n, cap;
} UidVec;

/* One message body being downloaded. */
typedef struct Item {
        ImapSync *s;
        size_t meta_i; /* its SrvMsg in s->meta */
        uint32_t uid;
        StoreBodyWriter *w;
        MimeHeaders h;
        StoreEnvelope env; /* decoded as soon as the header block is in; h is then freed */
        bool have_env;
        uint64_t off; /* large: bytes received so far */
        bool headers_only, failed, backlogged, finished;
} Item;

typedef enum CmdKind {
        CMD_LIST,
        CMD_SELECT,
        CMD_CHANGES,
        CMD_SEARCH,
        CMD_PUSH,
        CMD_META,
        CMD_SINCE,
        CMD_BODIES,
        CMD_PIECE,
        CMD_QUOTA,    /* GETQUOTAROOT INBOX, sent beside the LIST */
        CMD_UNSELECT, /* at the end, before the session is kept for the next sync */
} CmdKind;

/* What an ImapClient of a sync talks to (sync-keep.c): the sync that owns it now, NULL while kept. */
typedef struct SyncConn {
        ImapSync *s;
        ImapSyncKeep *keep; /* NULL: a session that is never kept */
        ImapClient *client;
        const Account *a;
} SyncConn;

typedef struct Cmd {
        ImapSync *s;
        CmdKind kind;
        Item *cur;            /* the body being received */
        uint64_t bytes;       /* window share */
        int64_t *pending_ids; /* CMD_PUSH: rows the server took when OK */
        size_t n_pending_ids;
        MimeHeaders mid; /* CMD_META in recovery: the Message-ID field */
        char *then;      /* CMD_PUSH: the command to send once this one is OK (it takes the pending ids) */
        Item *piece;     /* CMD_PIECE: the large body */
} Cmd;

struct ImapSync {
        uv_loop_t *loop;
        Store *store;
        const Account *a;
        ImapSyncOptions opts;
        ImapSyncFn cb;
        void *userdata;
        ImapClient *client;
        SyncConn *conn;          /* client's; NULL once kept or closed */
        ImapClientOptions copts; /* for a fresh session */
        bool keep_used;          /* counted as a user of opts.keep */
        SyncState state;
        unsigned n_cmds, n_store; /* outstanding */
        bool stopping, closing, client_closed, stepping;
        StorePendingChange *pend; /* the account's pending changes, listed per folder */
        size_t n_pend;
        int error;
        char *error_text;
        NetFailure failure;
        int64_t account_id;
        bool utf8, qresync, condstore;

        SyncFolder *folders;
        size_t n_folders, i_folder;
        char **server_names; /* every selectable-or-not name LISTed (decoded), to tell vanished folders */
        size_t n_server_names;

        /* The current folder. */
        SyncFolder *f;
        uint32_t sel_uidvalidity, sel_uidnext, sel_exists;
        uint64_t sel_hms;
        bool sel_ok, sel_qresync, sel_nomodseq, recovering, folder_failed;
        StoreImapMsg *local;
        size_t n_local;
        SrvMsgVec changes, meta;
        UidVec all_uids, vanished, since, appended;
        UidVec *search_into; /* where this phase's SEARCH results go */
        bool have_all_uids, have_since;

        /* Downloads. */
        size_t *todo; /* indices into meta */
        size_t n_todo, i_todo;
        uint64_t flight_bytes;
        unsigned n_fetch_flight, n_backlogged;
        Item *large; /* the large body being fetched */

        ImapSyncResult res;
        ImapSyncNewMail *new_mail; /* res.new_mail, built at the end */
        size_t folder_new;         /* messages stored in the current folder */
        size_t progress_at;        /* folder_new at the last report */
};

/* Helpers (sync.c). */
int imap_sync_uid_vec_push(UidVec *u, uint32_t uid);
/* Whether uid is in u, sorted with imap_sync_sort(..., imap_sync_uid_cmp). */
bool imap_sync_uid_vec_has(const UidVec *u, uint32_t uid);
/* qsort() that accepts an empty (NULL) array. */
void imap_sync_sort(void *v, size_t n, size_t size, int (*cmp)(const void *, const void *));
int imap_sync_uid_cmp(const void *a, const void *b);
int imap_sync_srv_cmp(const void *a, const void *b);
/* "a,b:c,..." for sorted uids[0..n), malloc()ed; NULL on ENOMEM. */
char *imap_sync_uid_set_format(const uint32_t *uids, size_t n);

/* Reports progress to opts.progress_fn: force, or when enough messages were stored since the last report. */
void imap_sync_progress(ImapSync *s, bool force);

/* A message the current folder got (store id), for the new-mail report; memory shortage only loses the id. */
void imap_sync_note_new(ImapSync *s, int64_t id);

/* Failures: the first is recorded and the sync winds down (sync.c). */
void imap_sync_fail(ImapSync *s, int r, const char *fmt, ...) _printf_(3, 4);
void imap_sync_fail_client(ImapSync *s, int r);
void imap_sync_store_failed(ImapSync *s, int r, const char *what);

/* Commands (sync.c): c is owned by the command once sent, freed here when sending fails. */
Cmd *imap_sync_cmd_new(ImapSync *s, CmdKind kind);
void imap_sync_cmd_free(Cmd *c);
int imap_sync_cmd_send(ImapSync *s, Cmd *c, const char *fmt, ...) _printf_(3, 4);
void imap_sync_cmd_send_failed(ImapSync *s, int r);
char *imap_sync_quote_mailbox(ImapSync *s, const char *wire);

/* Moves on once nothing is outstanding (sync.c); call after every completion. */
void imap_sync_step(ImapSync *s);
/* A StoreDoneFn that counts the write done (n_store) and steps. */
void imap_sync_store_done_cb(int r, void *userdata);

/* The session's events, from SyncConn (sync.c). */
void imap_sync_client_ready(ImapSync *s, int r);
void imap_sync_client_failed(ImapSync *s, int r);
void imap_sync_client_closed(ImapSync *s);
void imap_sync_client_untagged(ImapSync *s, const ImapEvent *ev);

/* Sessions (sync-keep.c). */
/* s->client for s: the kept session when there is one (probed with NOOP first), else a fresh one, connecting. */
int imap_sync_conn_open(ImapSync *s, const ImapClientOptions *copts);
/* Whether s may end by keeping its session for the next sync instead of LOGOUT. */
bool imap_sync_keep_can_park(const ImapSync *s);
/* Hands s's session (after UNSELECT) to its keep; for s, the session is then closed. */
void imap_sync_keep_park(ImapSync *s);
/* s is being freed: it no longer uses its keep. */
void imap_sync_keep_release(ImapSync *s);

/* Downloads (sync-fetch.c). */
void imap_sync_item_free(Item *it);
/* Picks the new messages of s->meta to fetch and starts fetching them. */
void imap_sync_fetch_start(ImapSync *s);
/* Sends more FETCHes while the window and the store's backlog allow. */
void imap_sync_fetch_pump(ImapSync *s);
void imap_sync_store_drained_cb(void *userdata);
int imap_sync_fetch_event(Cmd *c, const ImapEvent *ev);
void imap_sync_fetch_done(ImapSync *s, Cmd *c, int r, const ImapStatusResp *st);
int imap_sync_piece_event(Cmd *c, const ImapEvent *ev);
void imap_sync_piece_done(ImapSync *s, Cmd *c, int r);

/* Local changes (sync-push.c). */
/* A server flag report c of message m: merged with m's pending local edits, stored when it differs. */
int imap_sync_apply_change(ImapSync *s, StoreImapMsg *m, const SrvMsg *c);
/* Pushes the current folder's pending changes (flags, deletions, moves, appends). */
void imap_sync_push_start(ImapSync *s);
/* A COPYUID of a MOVE or COPY (wherever it came): the moved messages are recorded in their target. */
void imap_sync_record_moved(ImapSync *s, const ImapRespCode *code);
void imap_sync_push_done(ImapSync *s, Cmd *c, int r, const ImapStatusResp *st);
