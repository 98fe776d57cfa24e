/*
 * Pipelined RETR of chosen messages in a POP3 session: each body streamed
 * into a store body writer, then recorded with its message row and its UIDL by
 * store_pop3_mark_downloaded() in one job. RETRs in flight are bounded by
 * their LIST sizes, and none is sent while the store's backlog drains.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "daemon/pop3/client.h"
#include "daemon/pop3/maildrop.h"
#include "store/store.h"

/* RETRs in flight are bounded by their LIST sizes (one is always allowed) and by count. */
#define POP3_DOWNLOAD_WINDOW_BYTES (4 * 1024 * 1024)
#define POP3_DOWNLOAD_WINDOW_MSGS  32

typedef struct Pop3Download Pop3Download;

typedef struct Pop3DownloadParams {
        Store *store;
        Pop3Client *client; /* in the TRANSACTION state */
        /* False once the client is freed (a broken session frees it while bodies are still being
         * stored): from then on the download never touches client. */
        const bool *client_open;
        Pop3Maildrop *md;    /* sizes and UIDLs in; local state set to DOWNLOADED for each message stored */
        const char *account; /* for logs */
        int64_t account_id;
        int64_t folder_id; /* the messages' folder; UIDs come from md->next_uid */
        int64_t now;       /* first_seen and internal date of what is stored */
} Pop3DownloadParams;

/*
 * Called once, when every RETR sent has been answered (or cancelled with the
 * session) and every body stored has been recorded: r is 0, or the first
 * store error (a negative errno; what names the step); ids are the store ids
 * of the n_stored messages, valid during the call. The download is freed
 * after this returns. A session that breaks is not an error here: the client
 * reports it; what was stored until then stays stored.
 */
typedef void (*Pop3DownloadFn)(int r, const char *what, size_t n_stored, const int64_t *ids, uint64_t bytes,
                               void *userdata);

/*
 * Starts downloading msgs[0..n) (message numbers, n > 0; copied). p is copied;
 * what it points to must outlive the download, except the client (see client_open). Returns 0 (cb follows, never
 * from inside this call), or a negative errno (-ENOTCONN when the session
 * cannot take a command) and cb will not run.
 */
int pop3_download_start(const Pop3DownloadParams *p, const uint32_t *msgs, size_t n, Pop3DownloadFn cb, void *userdata);
