/*
 * On-demand body fetch (fetch-body.h): one ImapClient of its own, one folder,
 * one UID. The states run in order: CONNECT (the client logs in), EXAMINE
 * (read-only, so nothing on the server changes; its UIDVALIDITY must be the
 * stored one), FETCH (UID FETCH uid (UID BODY.PEEK[]<off.PIECE>) until a piece
 * comes back short; the next piece is asked for only once the store's writer
 * has drained the last, which bounds memory as sync-fetch.c does for large
 * bodies), then COMMIT (the writer finishes; the message row, read again at
 * that moment so flags changed meanwhile stay, gets the content id) while the
 * session logs out, and DONE.
 *
 * The fetch owns the client and the writer. It is freed in one place,
 * maybe_finish(), once the client has closed and no store write is out; the
 * callback runs there, exactly once. Loop thread only.
 *
 * Why a session of its own rather than the account's kept one (sync-keep.c):
 * the kept session belongs to the sync engine's state machine and may be in
 * use; a person asking for one body waits for one connect and login (tens of
 * ms locally), and nothing else of the account is disturbed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/imap/client.h"
#include "daemon/imap/fetch-body.h"
#include "daemon/imap/mutf7.h"
#include "store/body.h"
#include "store/message.h"
#include "util/log.h"

#define PIECE_BYTES (1024 * 1024) /* bytes asked for by one FETCH */

typedef enum FetchState {
        FB_CONNECT,
        FB_EXAMINE,
        FB_FETCH,
        FB_COMMIT,
        FB_DONE,
        _FB_STATE_MAX,
} FetchState;

static const char *const state_names[_FB_STATE_MAX] = {
        [FB_CONNECT] = "connect", [FB_EXAMINE] = "examine", [FB_FETCH] = "fetch",
        [FB_COMMIT] = "commit",   [FB_DONE] = "done",
};

struct ImapBodyFetch {
        Store *store;
        const Account *a;
        ImapBodyFetchRequest req; /* req.folder points at folder */
        char *folder;
        ImapBodyFetchFn cb;
        void *userdata;
        ImapClient *client; /* NULL once closed */
        FetchState state;
        StoreBodyWriter *w; /* while receiving */
        bool backlogged;    /* the next piece waits for the writer's drain */
        bool piece_done;    /* the FETCH of the current piece is answered */
        bool got_body;      /* the current piece's FETCH carried the body */
        bool in_body;       /* inside our body literal */
        uint64_t off;       /* body bytes received */
        uint64_t piece_bytes;
        bool have_uidvalidity;
        uint32_t uidvalidity; /* EXAMINE's */
        unsigned n_store;     /* store jobs out */
        bool failed, reported;
        int r;
        NetFailure failure;
        char error[512];
        uint64_t size;
};

static void maybe_finish(ImapBodyFetch *f);
static void send_piece(ImapBodyFetch *f);

static void enter_state(ImapBodyFetch *f, FetchState state) {
        log_acct_debug(f->a->name, "imap: body of UID %" PRIu32 " in %s: %s -> %s", f->req.uid, f->folder,
                       state_names[f->state], state_names[state]);
        f->state = state;
}

/* Records the first failure (r, error text from fmt) and winds down: the writer is dropped, the session
 * closed. f may be freed before this returns: callers return right after. */
_printf_(4, 5) static void fb_fail(ImapBodyFetch *f, int r, NetFailure failure, const char *fmt, ...) {
        va_list ap;

        if (!f->failed) {
                f->failed = true;
                f->r = r;
                f->failure = failure;
                va_start(ap, fmt);
                vsnprintf(f->error, sizeof f->error, fmt, ap);
                va_end(ap);
        }
        if (f->w) {
                store_body_writer_abort(f->w); /* no callback */
                f->w = NULL;
        }
        if (f->client) {
                /* client_closed finishes (maybe from inside this call: f may be gone after it). */
                imap_client_close(f->client);
                return;
        }
        maybe_finish(f);
}

/* The session failed: its own error names account, server and reason. */
static void fb_fail_client(ImapBodyFetch *f, int r) {
        const char *e = f->client ? imap_client_get_error(f->client) : "";
        NetFailure failure = f->client ? imap_client_get_failure(f->client) : NET_FAILURE_NONE;

        fb_fail(f, r < 0 ? r : -EIO, failure == NET_FAILURE_NONE ? NET_FAILURE_NETWORK : failure, "%s",
                e && *e ? e : "the IMAP session failed");
}

/* "account NAME: HOST:PORT: " for the errors this module words itself. */
#define FB_WHERE         "account %s: %s:%u: "
#define FB_WHERE_ARGS(f) (f)->a->name, (f)->a->imap.host, (unsigned)(f)->a->imap.port

static void maybe_finish(ImapBodyFetch *f) {
        ImapBodyFetchResult res;

        if (f->client || f->n_store > 0 || (!f->failed && f->state != FB_DONE))
                return;
        if (!f->reported) { /* reported already: the start failed, and said so itself */
                f->reported = true;
                res = (ImapBodyFetchResult){
                        .r = f->failed ? f->r : 0,
                        .failure = f->failed ? f->failure : NET_FAILURE_NONE,
                        .error = f->failed ? f->error : "",
                        .size = f->size,
                };
                f->cb(&res, f->userdata);
        }
        free(f->folder);
        free(f);
}

/* ---- COMMIT: the body, then the message row ---- */

static void recorded_cb(int r, int64_t id, void *userdata) {
        ImapBodyFetch *f = userdata;

        f->n_store--;
        if (r < 0)
                return fb_fail(f, r, NET_FAILURE_NONE, "store: recording message %" PRId64 "'s body: %s",
                               f->req.message_id, strerror(-r));
        enter_state(f, FB_DONE);
        maybe_finish(f);
}

static void body_finished_cb(int r, const StoreCid *cid, uint64_t size, void *userdata) {
        ImapBodyFetch *f = userdata;
        StoreMessage m = {};

        f->n_store--;
        if (f->failed)
                return maybe_finish(f);
        if (r < 0)
                return fb_fail(f, r, NET_FAILURE_NONE, "store: writing message %" PRId64 "'s body: %s",
                               f->req.message_id, strerror(-r));
        f->size = size;
        /* Read the row now, not at the start: flags a person or a sync changed meanwhile are kept. A flag
         * write queued on the writer but not committed yet would still be undone by this upsert, as the
         * sync engine's refill (sync-fetch.c) would; a store call setting only the cid would close that. */
        r = store_message_get(f->store, f->req.message_id, &m);
        if (r < 0 && r != -ENOENT)
                return fb_fail(f, r, NET_FAILURE_NONE, "store: reading message %" PRId64 ": %s", f->req.message_id,
                               strerror(-r));
        if (r == -ENOENT || m.folder_id != f->req.folder_id || m.uid != f->req.uid) {
                store_message_clear(&m);
                return fb_fail(f, IMAP_BODY_FETCH_E_MOVED, NET_FAILURE_NONE,
                               "message %" PRId64 " was moved or deleted here meanwhile", f->req.message_id);
        }
        if (m.has_body) { /* a sync brought it meanwhile: the same content, stored once */
                store_message_clear(&m);
                enter_state(f, FB_DONE);
                return maybe_finish(f);
        }
        m.has_body = true;
        m.cid = *cid;
        r = store_message_insert(f->store, &m, STORE_BULK, recorded_cb, f);
        store_message_clear(&m);
        if (r < 0)
                return fb_fail(f, r, NET_FAILURE_NONE, "store: recording message %" PRId64 "'s body: %s",
                               f->req.message_id, strerror(-r));
        f->n_store++;
}

/* The last piece is in: commit the body while the session logs out. */
static void enter_commit(ImapBodyFetch *f) {
        StoreBodyWriter *w = TAKE_PTR(f->w);
        int r;

        enter_state(f, FB_COMMIT);
        imap_client_logout(f->client);
        store_body_writer_set_drain(w, NULL, NULL);
        r = store_body_writer_finish(w, body_finished_cb, f);
        if (r < 0)
                return fb_fail(f, r, NET_FAILURE_NONE, "store: writing message %" PRId64 "'s body: %s",
                               f->req.message_id, strerror(-r));
        f->n_store++;
}

/* ---- FETCH ---- */

/* The piece is answered and (when it backlogged) drained: the next one, or the commit. */
static void piece_next(ImapBodyFetch *f) {
        if (!f->piece_done || f->backlogged || f->failed)
                return;
        if (f->piece_bytes < PIECE_BYTES)
                return enter_commit(f);
        send_piece(f);
}

static void drain_cb(StoreBodyWriter *w, void *userdata) {
        ImapBodyFetch *f = userdata;

        f->backlogged = false;
        store_body_writer_set_drain(w, NULL, NULL);
        piece_next(f);
}

static int fetch_event_cb(ImapClient *c, const ImapEvent *ev, void *userdata) {
        ImapBodyFetch *f = userdata;
        const ImapBodyChunk *b = &ev->body;
        int r;

        switch (ev->kind) {
        case IMAP_EVENT_BODY_START:
                /* Ours: BODY[]<off> of our UID (the UID may follow the body; the FETCH event checks it). */
                f->in_body = b->item == IMAP_BODY_SECTION && (!b->section.s || !*b->section.s) &&
                             (b->uid == 0 || b->uid == f->req.uid) && !f->got_body;
                if (f->in_body)
                        f->got_body = true;
                return 0;
        case IMAP_EVENT_BODY_DATA:
                if (!f->in_body || !f->w)
                        return 0;
                f->piece_bytes += b->len;
                f->off += b->len;
                r = store_body_writer_append(f->w, b->data, b->len);
                if (r < 0)
                        return r; /* the session fails; done reports it */
                if (r == STORE_BODY_BACKLOG && !f->backlogged) {
                        f->backlogged = true;
                        store_body_writer_set_drain(f->w, drain_cb, f);
                }
                return 0;
        case IMAP_EVENT_BODY_END:
                f->in_body = false;
                return 0;
        case IMAP_EVENT_FETCH:
                if (f->got_body && (ev->fetch.have & IMAP_FETCH_UID) && ev->fetch.uid != f->req.uid &&
                    ev->fetch.n_bodies > 0)
                        return -EPROTO; /* a body of another message: the server is confused */
                return 0;
        default:
                return 0; /* EXPUNGE, flag changes of others...: nothing for us */
        }
}

static void fetch_done_cb(ImapClient *c, int r, const ImapStatusResp *st, void *userdata) {
        ImapBodyFetch *f = userdata;

        if (f->failed)
                return;
        if (r < 0)
                return fb_fail_client(f, r);
        if (r > 0)
                return fb_fail(f, IMAP_BODY_FETCH_E_GONE, NET_FAILURE_NONE,
                               FB_WHERE "message %" PRId64 " cannot be fetched (UID %" PRIu32 " in %s): %s",
                               FB_WHERE_ARGS(f), f->req.message_id, f->req.uid, f->folder,
                               st->text.s ? st->text.s : "refused");
        if (!f->got_body)
                return fb_fail(f, IMAP_BODY_FETCH_E_GONE, NET_FAILURE_NONE,
                               FB_WHERE "message %" PRId64 " is no longer on the server (UID %" PRIu32 " in %s)",
                               FB_WHERE_ARGS(f), f->req.message_id, f->req.uid, f->folder);
        f->piece_done = true;
        piece_next(f);
}

static void send_piece(ImapBodyFetch *f) {
        int r;

        f->piece_done = false;
        f->got_body = false;
        f->in_body = false;
        f->piece_bytes = 0;
        r = imap_client_send(f->client, 0, fetch_event_cb, fetch_done_cb, f,
                             "UID FETCH %" PRIu32 " (UID BODY.PEEK[]<%" PRIu64 ".%u>)", f->req.uid, f->off,
                             (unsigned)PIECE_BYTES);
        if (r < 0)
                fb_fail_client(f, r);
}

/* ---- EXAMINE ---- */

static int examine_event_cb(ImapClient *c, const ImapEvent *ev, void *userdata) {
        ImapBodyFetch *f = userdata;

        if (ev->kind == IMAP_EVENT_STATUS && ev->status.code.kind == IMAP_CODE_UIDVALIDITY) {
                f->have_uidvalidity = true;
                f->uidvalidity = (uint32_t)ev->status.code.number;
        }
        return 0;
}

static void examine_done_cb(ImapClient *c, int r, const ImapStatusResp *st, void *userdata) {
        ImapBodyFetch *f = userdata;

        if (f->failed)
                return;
        if (r < 0)
                return fb_fail_client(f, r);
        if (r > 0)
                return fb_fail(f, IMAP_BODY_FETCH_E_NO_FOLDER, NET_FAILURE_NONE,
                               FB_WHERE "message %" PRId64 ": folder %s cannot be opened: %s", FB_WHERE_ARGS(f),
                               f->req.message_id, f->folder, st->text.s ? st->text.s : "refused");
        if (!f->have_uidvalidity || f->uidvalidity != f->req.uidvalidity)
                return fb_fail(f, IMAP_BODY_FETCH_E_GONE, NET_FAILURE_NONE,
                               FB_WHERE "message %" PRId64 " is no longer on the server (UID %" PRIu32
                                        " in %s: the folder was renumbered; the next sync sorts it out)",
                               FB_WHERE_ARGS(f), f->req.message_id, f->req.uid, f->folder);
        r = store_body_writer_new(f->store, &f->w);
        if (r < 0)
                return fb_fail(f, r, NET_FAILURE_NONE, "store: %s", strerror(-r));
        enter_state(f, FB_FETCH);
        send_piece(f);
}

/* ---- the session ---- */

static void client_ready(ImapClient *c, int r, void *userdata) {
        ImapBodyFetch *f = userdata;
        _cleanup_free_ char *wire = NULL, *q = NULL;
        bool utf8;

        if (f->failed)
                return;
        if (r < 0)
                return fb_fail_client(f, r);
        utf8 = imap_client_is_enabled(c, "UTF8=ACCEPT");
        r = utf8 ? ((wire = strdup(f->folder)) ? 0 : -ENOMEM) : imap_mutf7_encode(f->folder, &wire);
        if (r == 0 && !(q = imap_quote(wire, utf8)))
                r = -errno;
        if (r < 0)
                return fb_fail(f, r, NET_FAILURE_NONE, FB_WHERE "folder %s: %s", FB_WHERE_ARGS(f), f->folder,
                               strerror(-r));
        enter_state(f, FB_EXAMINE);
        r = imap_client_send(c, 0, examine_event_cb, examine_done_cb, f, "EXAMINE %s", q);
        if (r < 0)
                fb_fail_client(f, r);
}

static void client_failed(ImapClient *c, int r, void *userdata) {
        ImapBodyFetch *f = userdata;

        if (f->state == FB_COMMIT || f->state == FB_DONE)
                imap_client_close(c); /* everything is in: a LOGOUT that fails changes nothing */
        else
                fb_fail_client(f, r);
}

static void client_closed(ImapClient *c, void *userdata) {
        ImapBodyFetch *f = userdata;

        f->client = NULL;
        if (!f->failed && f->state < FB_COMMIT)
                fb_fail(f, -ECONNRESET, NET_FAILURE_NETWORK, FB_WHERE "the connection closed", FB_WHERE_ARGS(f));
        else
                maybe_finish(f);
}

static const ImapClientOps client_ops = {
        .ready = client_ready,
        .failed = client_failed,
        .closed = client_closed,
};

int imap_body_fetch_start(uv_loop_t *loop, Store *store, const Account *a, const ImapBodyFetchRequest *req,
                          uint64_t read_timeout_ms, ImapBodyFetchFn cb, void *userdata, ImapBodyFetch **fp) {
        ImapClientOptions copts = {.send_id = true, .read_timeout_ms = read_timeout_ms};
        ImapBodyFetch *f;
        int r;

        if (!cb || a->imap.proto != SERVER_IMAP || !req->folder || !req->uid)
                return -EINVAL;
        f = calloc(1, sizeof *f);
        if (!f)
                return -ENOMEM;
        *f = (ImapBodyFetch){.store = store, .a = a, .req = *req, .cb = cb, .userdata = userdata};
        f->folder = strdup(req->folder);
        if (!f->folder) {
                free(f);
                return -ENOMEM;
        }
        f->req.folder = f->folder;
        r = imap_client_new(loop, a, &copts, &client_ops, f, &f->client);
        if (r < 0) {
                free(f->folder);
                free(f);
                return r;
        }
        r = imap_client_connect(f->client);
        if (r < 0) {
                /* No callback for the caller: the client's close still reports here, so wait for it silently. */
                f->failed = f->reported = true;
                imap_client_close(f->client);
                return r;
        }
        log_acct_debug(a->name, "imap: fetching the body of message %" PRId64 " (UID %" PRIu32 " in %s)",
                       req->message_id, req->uid, req->folder);
        if (fp)
                *fp = f;
        return 0;
}

void imap_body_fetch_cancel(ImapBodyFetch *f) {
        if (!f || f->failed || f->reported)
                return;
        if (f->state == FB_COMMIT || f->state == FB_DONE) {
                /* The body is in and the session logging out: let the store finish rather than lose it. */
                if (f->client)
                        imap_client_close(f->client);
                return;
        }
        fb_fail(f, -ECANCELED, NET_FAILURE_NONE, FB_WHERE "fetching message %" PRId64 " was cancelled",
                FB_WHERE_ARGS(f), f->req.message_id);
}
