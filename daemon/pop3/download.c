/*
 * The download phase of a POP3 fetch. A Pop3Download owns its list of message
 * numbers and one Retr per RETR in flight (each with its body writer until
 * finish hands it to the store). It frees itself in one place,
 * download_maybe_done(), after the last RETR and the last store write it
 * started have called back, and after calling its owner. Loop thread only;
 * the store calls back from its writer thread through the loop.
 *
 * Memory stays bounded even though NetStream cannot pause reading: RETRs go
 * out only while the bytes in flight (by LIST size) are under a window, and
 * none goes out while a body writer reports STORE_BODY_BACKLOG.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/mime/envelope.h"
#include "daemon/pop3/download.h"
#include "store/body.h"
#include "store/message.h"
#include "store/pop3.h"
#include "util/log.h"

struct Pop3Download {
        Pop3DownloadParams p;
        Pop3DownloadFn cb;
        void *userdata;
        uint32_t *msgs;
        size_t n_msgs, i_next; /* i_next: the next to send */
        size_t n_flight;       /* RETRs sent and not completed */
        uint64_t flight_bytes; /* their LIST sizes */
        size_t n_backlogged;   /* RETRs whose body writer is over the store's backlog */
        size_t n_store;        /* bodies being finished or recorded */
        bool stopped;          /* no more RETRs: the session is gone, or the store failed */
        bool pumping;          /* inside download_pump(): completion waits for it to return */
        int error;
        const char *error_what;
        size_t n_stored;
        int64_t *ids; /* of the messages stored, n_stored of them */
        uint64_t bytes;
};

/* One RETR: its message and the body writer its reply streams into. */
typedef struct Retr {
        Pop3Download *d;
        uint32_t msg; /* 1-based */
        StoreBodyWriter *w;
        MimeHeaders hdr; /* the header block, for the envelope the store indexes */
        bool failed, backlogged;
} Retr;

static void download_pump(Pop3Download *d);

/* The store's writer caught up with every body together: RETRs may go again. */
static void store_drained_cb(void *userdata) {
        download_pump(userdata);
}

/* Reports once nothing is outstanding, then frees d. */
static void download_maybe_done(Pop3Download *d) {
        if (d->pumping || d->n_flight > 0 || d->n_store > 0 || (!d->stopped && d->i_next < d->n_msgs))
                return;
        store_body_cancel_drain(d->p.store, store_drained_cb, d);
        d->cb(d->error, d->error_what ? d->error_what : "", d->n_stored, d->ids, d->bytes, d->userdata);
        free(d->ids);
        free(d->msgs);
        free(d);
}

/* The first store error stops the download; the owner hears it in the callback. */
static void download_store_error(Pop3Download *d, int r, const char *what) {
        if (!d->error) {
                d->error = r;
                d->error_what = what;
        }
        d->stopped = true;
}

static Retr *retr_free(Retr *rt) {
        store_body_writer_abort(rt->w);
        mime_headers_clear(&rt->hdr);
        free(rt);
        return NULL;
}

/* This RETR no longer holds back new ones (drained or finished). */
static void retr_unbacklog(Retr *rt) {
        if (rt->backlogged) {
                rt->backlogged = false;
                rt->d->n_backlogged--;
        }
}

/* The store caught up with this body: more RETRs may go. */
static void drain_cb(StoreBodyWriter *w, void *userdata) {
        Retr *rt = userdata;

        retr_unbacklog(rt);
        download_pump(rt->d);
}

/*
 * Body bytes of one RETR, already dot-unstuffed, straight into the store's
 * body writer: no message is ever whole in memory here.
 */
static void retr_event_cb(const Pop3Event *ev, void *userdata) {
        Retr *rt = userdata;
        int r;

        if (ev->kind != POP3_EVENT_BODY || rt->failed)
                return;
        if (!rt->w && store_body_writer_new(rt->d->p.store, &rt->w) < 0) {
                rt->failed = true;
                return;
        }
        if (mime_headers_feed(&rt->hdr, ev->chunk.data, ev->chunk.size) < 0) {
                rt->failed = true;
                return;
        }
        r = store_body_writer_append(rt->w, ev->chunk.data, ev->chunk.size);
        if (r < 0)
                rt->failed = true;
        else if (r == STORE_BODY_BACKLOG && !rt->backlogged) {
                rt->backlogged = true;
                if (rt->d->n_backlogged++ == 0)
                        log_acct_debug(rt->d->p.account, "pop3: store backlog: no new RETR until it drains");
                store_body_writer_set_drain(rt->w, drain_cb, rt);
        }
}

/* The message row and its POP3 record are committed: it is stored, and will never be fetched again. */
static void marked_cb(int r, int64_t id, void *userdata) {
        Retr *rt = userdata;
        Pop3Download *d = rt->d;
        Pop3ServerMsg *m = &d->p.md->msgs[rt->msg - 1];

        d->n_store--;
        if (r < 0)
                download_store_error(d, r, "recording a download");
        else {
                m->local = POP3_LOCAL_DOWNLOADED;
                m->first_seen = d->p.now;
                d->ids[d->n_stored] = id; /* sized for every message of the download */
                d->n_stored++;
                d->bytes += m->size;
        }
        retr_free(rt);
        download_pump(d);
}

/* The body is committed (deduplicated by content): record the message and its UIDL in one job. */
static void body_done_cb(int r, const StoreCid *cid, uint64_t size, void *userdata) {
        Retr *rt = userdata;
        Pop3Download *d = rt->d;
        Pop3ServerMsg *sm = &d->p.md->msgs[rt->msg - 1];
        StoreMessage msg = {.folder_id = d->p.folder_id,
                            .uid = d->p.md->next_uid,
                            .internal_date = d->p.now,
                            .size = size,
                            .has_body = true};

        rt->w = NULL; /* the writer is gone */
        if (r >= 0)
                r = mime_headers_envelope(&rt->hdr, &msg.env);
        if (r >= 0) {
                msg.cid = *cid;
                /* The message row and the record that it was fetched commit together, or neither. */
                r = store_pop3_mark_downloaded(d->p.store, d->p.account_id, sm->uidl, sm->size, d->p.now, cid, &msg,
                                               STORE_BULK, marked_cb, rt);
                mime_envelope_clear(&msg.env); /* the store copied what it needs */
                if (r >= 0) {
                        d->p.md->next_uid++;
                        return; /* n_store stays counted until marked_cb */
                }
        }
        d->n_store--;
        download_store_error(d, r, "storing a message");
        retr_free(rt);
        download_pump(d);
}

/* A RETR's reply is complete: finish its body, or drop it (-ERR, store error, cancelled). */
static void retr_done_cb(int r, const Pop3Status *st, void *userdata) {
        Retr *rt = userdata;
        Pop3Download *d = rt->d;

        d->n_flight--;
        d->flight_bytes -= d->p.md->msgs[rt->msg - 1].size;
        retr_unbacklog(rt);
        if (rt->w)
                store_body_writer_set_drain(rt->w, NULL, NULL);
        if (r < 0)
                d->stopped = true; /* cancelled: the session is gone */
        else if (r == POP3_CMDQ_E_ERR || rt->failed)
                log_acct_warning(d->p.account, "pop3: message %u not downloaded: %s", rt->msg,
                                 r == POP3_CMDQ_E_ERR ? st->text : "store error");
        else if (!rt->w && store_body_writer_new(d->p.store, &rt->w) < 0) /* an empty message */
                download_store_error(d, -ENOMEM, "starting a message body");
        else {
                r = store_body_writer_finish(rt->w, body_done_cb, rt);
                rt->w = NULL; /* taken over even on failure */
                if (r >= 0) {
                        d->n_store++;
                        return download_pump(d);
                }
                download_store_error(d, r, "writing a message body");
        }
        retr_free(rt);
        download_pump(d);
}

/* Sends the next RETR. Returns 0, -ENOMEM, or the client's refusal (the session is gone). */
static int send_next(Pop3Download *d) {
        uint32_t msg = d->msgs[d->i_next];
        Retr *rt = calloc(1, sizeof *rt);
        int r;

        if (!rt)
                return -ENOMEM;
        *rt = (Retr){.d = d, .msg = msg};
        r = pop3_client_send(d->p.client, POP3_EXPECT_BODY, retr_event_cb, retr_done_cb, rt, "RETR %u", msg);
        if (r < 0) {
                free(rt);
                return r;
        }
        d->i_next++;
        d->n_flight++;
        d->flight_bytes += d->p.md->msgs[msg - 1].size;
        return 0;
}

/* Sends RETRs while the window allows, then reports if everything is over. */
static void download_pump(Pop3Download *d) {
        int r;

        if (!*d->p.client_open)
                d->stopped = true; /* the session is gone, and so is the client */
        d->pumping = true;
        /* Many small bodies each stay under their writer's backlog; together they are held here. */
        if (!d->stopped && d->i_next < d->n_msgs && store_body_backlog(d->p.store) > STORE_BODY_BACKLOG_MAX &&
            store_body_wait_drain(d->p.store, store_drained_cb, d) == 0) {
                d->pumping = false;
                download_maybe_done(d);
                return;
        }
        while (!d->stopped && d->i_next < d->n_msgs && d->n_backlogged == 0 &&
               (d->n_flight == 0 ||
                (pop3_client_is_pipelining(d->p.client) && d->n_flight < POP3_DOWNLOAD_WINDOW_MSGS &&
                 d->flight_bytes < POP3_DOWNLOAD_WINDOW_BYTES))) {
                r = send_next(d);
                if (r == -ENOMEM)
                        download_store_error(d, r, "out of memory");
                else if (r < 0)
                        d->stopped = true; /* the session is gone; the client reports why */
        }
        d->pumping = false;
        download_maybe_done(d);
}

int pop3_download_start(const Pop3DownloadParams *p, const uint32_t *msgs, size_t n, Pop3DownloadFn cb,
                        void *userdata) {
        Pop3Download *d;
        int r;

        if (n == 0 || !cb)
                return -EINVAL;
        d = calloc(1, sizeof *d);
        if (!d)
                return -ENOMEM;
        d->msgs = malloc(n * sizeof *msgs);
        d->ids = malloc(n * sizeof *d->ids);
        if (!d->msgs || !d->ids) {
                free(d->msgs);
                free(d->ids);
                free(d);
                return -ENOMEM;
        }
        memcpy(d->msgs, msgs, n * sizeof *msgs);
        d->p = *p;
        d->cb = cb;
        d->userdata = userdata;
        d->n_msgs = n;
        /* The first RETR goes now: when it cannot, the caller hears it here and cb never runs. */
        r = send_next(d);
        if (r < 0) {
                free(d->msgs);
                free(d->ids);
                free(d);
                return r;
        }
        download_pump(d); /* cannot complete here: the first RETR is in flight */
        return 0;
}
