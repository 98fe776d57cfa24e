/*
 * One message body fetched on demand: a short IMAP session of its own that
 * EXAMINEs the message's folder, checks the stored UIDVALIDITY, streams
 * UID FETCH uid BODY.PEEK[] into the store's body writer (in pieces, so a
 * large body waits for the store instead of piling up in memory) and records
 * the content id on the stored message, leaving its flags and everything else
 * as they are. No new-mail event: the message was stored before, headers only
 * (a metered network, or over max_message_size).
 */
#pragma once

#include <stdint.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/net/backoff.h"
#include "store/store.h"

typedef struct ImapBodyFetch ImapBodyFetch;

/* Expected outcomes besides 0 (see ImapBodyFetchResult.r). */
enum {
        IMAP_BODY_FETCH_E_GONE = 1,  /* the server no longer has the message (expunged, or the folder renumbered) */
        IMAP_BODY_FETCH_E_NO_FOLDER, /* the folder is gone or cannot be opened */
        IMAP_BODY_FETCH_E_MOVED,     /* fetched, but the message left its folder here meanwhile: not recorded */
};

/* Which stored message to complete. */
typedef struct ImapBodyFetchRequest {
        int64_t message_id; /* its store id */
        int64_t folder_id;
        const char *folder;   /* the folder's decoded name (copied) */
        uint32_t uidvalidity; /* the folder's, as stored: the UID means nothing under another */
        uint32_t uid;
} ImapBodyFetchRequest;

typedef struct ImapBodyFetchResult {
        int r;              /* 0, an IMAP_BODY_FETCH_E_* code, or a negative errno (-ECANCELED when cancelled) */
        NetFailure failure; /* a session failure's kind; NONE otherwise */
        const char *error;  /* "account NAME: HOST:PORT: reason", "" on success */
        uint64_t size;      /* the body's bytes, on success */
} ImapBodyFetchResult;

/* Called once when the fetch is over and what it wrote is committed; res is valid during the call. */
typedef void (*ImapBodyFetchFn)(const ImapBodyFetchResult *res, void *userdata);

/*
 * Starts fetching req's body for account a (which must outlive the fetch) into
 * store. Returns 0 with the fetch in *fp (valid until cb runs), or a negative
 * errno (cb will not run). read_timeout_ms 0 is the client's default.
 */
int imap_body_fetch_start(uv_loop_t *loop, Store *store, const Account *a, const ImapBodyFetchRequest *req,
                          uint64_t read_timeout_ms, ImapBodyFetchFn cb, void *userdata, ImapBodyFetch **fp);

/* Stops a fetch: the session closes at once, a body half written is dropped; cb still runs once, with
 * -ECANCELED (or with the outcome, when everything was already done). */
void imap_body_fetch_cancel(ImapBodyFetch *f);
