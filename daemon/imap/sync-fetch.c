/*
 * Downloads of new messages for the sync engine (sync.c runs the phases).
 * Each body streams from the FETCH's BODY_* events into an Item's store body
 * writer and is recorded with store_message_insert() once committed; the
 * Item is freed there. Small bodies go in pipelined UID FETCHes of up to
 * chunk_uids UIDs and BATCH_BYTES, several in flight while the bytes asked
 * for stay under WINDOW_BYTES and no writer reports STORE_BODY_BACKLOG.
 * Bodies above the large threshold come in partial FETCHes, one piece at a
 * time, each sent after the store drained the last: the stream cannot pause
 * reading, so this is what bounds memory for a 100 MB message. Bodies above
 * max_message_size are recorded from their headers only. Loop thread only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/imap/sync-private.h"
#include "store/message.h"
#include "util/log.h"

static void send_piece(ImapSync *s);

/* Whether m is stored from its headers only: too big for the account, or a metered network. */
static bool want_headers_only(const ImapSync *s, const SrvMsg *m) {
        return s->opts.headers_only || (s->a->max_message_size && m->size > s->a->max_message_size);
}

static SrvMsg *meta_find(ImapSync *s, uint32_t uid) {
        SrvMsg key = {.uid = uid};
        return s->meta.n > 0 ? bsearch(&key, s->meta.v, s->meta.n, sizeof(SrvMsg), imap_sync_srv_cmp) : NULL;
}

static void item_unbacklog(Item *it) {
        if (it->backlogged) {
                it->backlogged = false;
                it->s->n_backlogged--;
        }
}

static void item_drain_cb(StoreBodyWriter *w, void *userdata) {
        Item *it = userdata;
        ImapSync *s = it->s;

        item_unbacklog(it);
        if (it == s->large) {
                if (s->n_cmds == 0 && !s->stopping)
                        send_piece(s);
                return;
        }
        imap_sync_fetch_pump(s);
}

/* A body fetched for a message stored without one: not new mail. */
static void refilled_cb(int r, int64_t id, void *userdata) {
        ImapSync *s = userdata;

        s->n_store--;
        if (r < 0)
                imap_sync_store_failed(s, r, "storing a message body");
        imap_sync_step(s);
}

static void inserted_cb(int r, int64_t id, void *userdata) {
        ImapSync *s = userdata;

        s->n_store--;
        if (r < 0)
                imap_sync_store_failed(s, r, "storing a message");
        else {
                s->res.n_new++;
                imap_sync_note_new(s, id);
        }
        imap_sync_step(s);
}

/* Records the message of a finished item (body committed, or headers only) and frees the item. */
static void item_insert(Item *it, const StoreCid *cid, uint64_t size) {
        ImapSync *s = it->s;
        SrvMsg *m = meta_find(s, it->uid);
        /* Already stored (without a body): keep the local flags, which may hold a pending edit. */
        const StoreImapMsg *lm = store_imap_msg_find(s->local, s->n_local, it->uid);
        StoreMessage msg = {};
        int r;

        if (!m) {
                log_acct_warning(s->a->name, "imap: %s: FETCH of UID %" PRIu32 " not asked for; dropped", s->f->name,
                                 it->uid);
                imap_sync_item_free(it);
                return;
        }
        msg = (StoreMessage){.folder_id = s->f->id,
                             .uid = m->uid,
                             .modseq = m->modseq,
                             .flags = lm ? lm->flags : m->flags,
                             .keywords = lm ? lm->keywords : m->keywords,
                             .internal_date = m->internal_date,
                             .size = m->size ? m->size : size,
                             .has_body = cid != NULL};
        if (cid)
                msg.cid = *cid;
        if (it->have_env) {
                msg.env = it->env; /* handed over: msg's clear frees it */
                it->env = (StoreEnvelope){};
                it->have_env = false;
                r = 0;
        } else
                r = mime_headers_envelope(&it->h, &msg.env);
        if (r >= 0)
                r = store_message_insert(s->store, &msg, STORE_BULK, lm ? refilled_cb : inserted_cb, s);
        msg.keywords = NULL; /* borrowed */
        store_message_clear(&msg);
        if (r < 0)
                imap_sync_store_failed(s, r, "storing a message");
        else
                s->n_store++;
        imap_sync_item_free(it);
}

static void body_finished_cb(int r, const StoreCid *cid, uint64_t size, void *userdata) {
        Item *it = userdata;
        ImapSync *s = it->s;

        it->w = NULL;
        s->n_store--;
        if (r < 0) {
                imap_sync_store_failed(s, r, "writing a message body");
                imap_sync_item_free(it);
        } else if (it->failed || !it->uid) {
                s->folder_failed = true;
                imap_sync_item_free(it);
        } else
                item_insert(it, cid, size);
        imap_sync_step(s);
}

/* The body is complete: commit it (or, headers only, record the message). */
static void item_finish(Item *it) {
        ImapSync *s = it->s;
        int r;

        item_unbacklog(it);
        it->finished = true;
        if (it->failed) {
                s->folder_failed = true;
                imap_sync_item_free(it);
                return;
        }
        if (it->headers_only) {
                item_insert(it, NULL, 0);
                return;
        }
        store_body_writer_set_drain(it->w, NULL, NULL);
        r = store_body_writer_finish(it->w, body_finished_cb, it);
        it->w = NULL;
        if (r < 0) {
                imap_sync_store_failed(s, r, "writing a message body");
                imap_sync_item_free(it);
                return;
        }
        s->n_store++;
}

static int item_data(Item *it, const void *data, size_t n) {
        int r;

        it->s->res.body_bytes += n;
        if (!it->have_env) {
                r = mime_headers_feed(&it->h, data, n);
                if (r < 0)
                        return r;
                if (it->h.done) {
                        /* Decode now and drop the raw block: hundreds of bodies may wait for the store. */
                        r = mime_headers_envelope(&it->h, &it->env);
                        if (r < 0)
                                return r;
                        it->have_env = true;
                        mime_headers_clear(&it->h);
                }
        }
        if (it->headers_only || it->failed)
                return 0;
        r = store_body_writer_append(it->w, data, n);
        if (r < 0) {
                it->failed = true;
                return 0;
        }
        if (r == STORE_BODY_BACKLOG && !it->backlogged) {
                it->backlogged = true;
                it->s->n_backlogged++;
                store_body_writer_set_drain(it->w, item_drain_cb, it);
        }
        return 0;
}

static Item *item_new(ImapSync *s, uint32_t uid, bool headers_only) {
        Item *it = calloc(1, sizeof(*it));

        if (!it)
                return NULL;
        *it = (Item){.s = s, .uid = uid, .headers_only = headers_only};
        if (!headers_only && store_body_writer_new(s->store, &it->w) < 0) {
                free(it);
                return NULL;
        }
        return it;
}

int imap_sync_fetch_event(Cmd *c, const ImapEvent *ev) {
        ImapSync *s = c->s;
        int r;

        switch (ev->kind) {
        case IMAP_EVENT_BODY_START:
                if (c->cur) { /* the previous body's UID never came */
                        c->cur->failed = true;
                        if (c->cur->finished)
                                imap_sync_item_free(c->cur);
                        c->cur = NULL;
                }
                if (ev->body.item != IMAP_BODY_SECTION)
                        return 0;
                c->cur = item_new(s, ev->body.uid, strcmp(ev->body.section.s ? ev->body.section.s : "", "") != 0);
                return c->cur ? 0 : -ENOMEM;
        case IMAP_EVENT_BODY_DATA:
                if (!c->cur || c->cur->finished)
                        return 0;
                return item_data(c->cur, ev->body.data, ev->body.len);
        case IMAP_EVENT_BODY_END: {
                Item *it = c->cur;

                if (!it || it->finished)
                        return 0;
                if (it->uid) {
                        c->cur = NULL;
                        item_finish(it);
                } else {
                        /* Wait for the UID; finish now so the body commits meanwhile. */
                        it->finished = true;
                        if (it->headers_only)
                                return 0;
                        r = store_body_writer_finish(it->w, body_finished_cb, it);
                        it->w = NULL;
                        if (r < 0)
                                return r;
                        s->n_store++;
                        c->cur = NULL; /* body_finished_cb drops it: UID unknown */
                }
                return 0;
        }
        case IMAP_EVENT_FETCH:
                return 0;
        default:
                return 0;
        }
}

int imap_sync_piece_event(Cmd *c, const ImapEvent *ev) {
        Item *it = c->piece;

        if (ev->kind == IMAP_EVENT_BODY_DATA && it) {
                c->bytes += ev->body.len;
                it->off += ev->body.len;
                return item_data(it, ev->body.data, ev->body.len);
        }
        return 0;
}

/* Sends the next piece of the large body, or finishes it. */
static void send_piece(ImapSync *s) {
        Item *it = s->large;
        uint64_t piece = s->opts.large_threshold;
        Cmd *c;
        int r;

        if (!it || it->backlogged)
                return;
        c = imap_sync_cmd_new(s, CMD_PIECE);
        if (c)
                c->piece = it;
        r = imap_sync_cmd_send(s, c, "UID FETCH %" PRIu32 " (UID BODY.PEEK[]<%" PRIu64 ".%" PRIu64 ">)", it->uid,
                               it->off, piece);
        if (r < 0)
                imap_sync_cmd_send_failed(s, r);
}

void imap_sync_piece_done(ImapSync *s, Cmd *c, int r) {
        Item *it = c->piece;

        if (r != 0 || it->failed || s->stopping) {
                s->large = NULL;
                if (r > 0)
                        log_acct_warning(s->a->name, "imap: %s: UID %" PRIu32 " not downloaded", s->f->name, it->uid);
                s->folder_failed = true;
                imap_sync_item_free(it);
                return;
        }
        if (c->bytes < s->opts.large_threshold) {
                s->large = NULL;
                item_finish(it);
                return;
        }
        if (!it->backlogged)
                send_piece(s);
        /* else item_drain_cb sends it */
}

/* Sends FETCHes of small bodies while the window allows; large ones go one by one after. */
/* The store's writer caught up with every body together: more may be asked for. */
void imap_sync_store_drained_cb(void *userdata) {
        imap_sync_step(userdata);
}

void imap_sync_fetch_pump(ImapSync *s) {
        unsigned chunk = s->opts.chunk_uids;

        /* Many small bodies each stay under their writer's backlog; together they are held here. */
        if (store_body_backlog(s->store) > STORE_BODY_BACKLOG_MAX) {
                if (store_body_wait_drain(s->store, imap_sync_store_drained_cb, s) == 0)
                        return;
        }

        while (!s->stopping && s->i_todo < s->n_todo && s->n_backlogged == 0 && s->n_fetch_flight < MAX_FETCH_FLIGHT &&
               s->flight_bytes < WINDOW_BYTES) {
                _cleanup_free_ uint32_t *uids = calloc(chunk, sizeof(uint32_t));
                _cleanup_free_ char *set = NULL;
                bool headers_only = false;
                uint64_t bytes = 0;
                size_t n = 0;
                Cmd *c;
                int r;

                if (!uids)
                        return imap_sync_fail(s, -ENOMEM, "out of memory");
                while (s->i_todo < s->n_todo && n < chunk) {
                        SrvMsg *m = &s->meta.v[s->todo[s->i_todo]];
                        bool ho = want_headers_only(s, m);

                        if (!ho && m->size > s->opts.large_threshold)
                                break; /* large: later, alone */
                        if (n > 0 && (ho != headers_only || bytes + m->size > BATCH_BYTES))
                                break;
                        headers_only = ho;
                        bytes += ho ? 0 : m->size;
                        uids[n++] = m->uid;
                        s->i_todo++;
                }
                if (n == 0)
                        break;
                set = imap_sync_uid_set_format(uids, n);
                c = imap_sync_cmd_new(s, CMD_BODIES);
                if (!set || !c) {
                        free(c);
                        return imap_sync_fail(s, -ENOMEM, "out of memory");
                }
                c->bytes = bytes;
                r = imap_sync_cmd_send(s, c, "UID FETCH %s (UID BODY.PEEK[%s])", set, headers_only ? "HEADER" : "");
                if (r < 0)
                        return imap_sync_cmd_send_failed(s, r);
                s->n_fetch_flight++;
                s->flight_bytes += bytes;
        }
        /* Small ones are all out and answered: the large ones, one at a time. */
        if (!s->stopping && s->n_fetch_flight == 0 && !s->large && s->i_todo < s->n_todo) {
                SrvMsg *m = &s->meta.v[s->todo[s->i_todo]];

                if (m->size > s->opts.large_threshold && !want_headers_only(s, m)) {
                        s->i_todo++;
                        s->large = item_new(s, m->uid, false);
                        if (!s->large)
                                return imap_sync_fail(s, -ENOMEM, "out of memory");
                        send_piece(s);
                }
        }
}

void imap_sync_fetch_start(ImapSync *s) {
        size_t n = 0;

        imap_sync_sort(s->since.v, s->since.n, sizeof(uint32_t), imap_sync_uid_cmp);
        imap_sync_sort(s->appended.v, s->appended.n, sizeof(uint32_t), imap_sync_uid_cmp);
        s->todo = calloc(s->meta.n + 1, sizeof(size_t));
        if (!s->todo)
                return imap_sync_fail(s, -ENOMEM, "out of memory");
        /* Small ones (and headers only) first, then the large ones. */
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < s->meta.n; i++) {
                        SrvMsg *m = &s->meta.v[i];
                        bool ho = want_headers_only(s, m);
                        bool large = !ho && m->size > s->opts.large_threshold;
                        const StoreImapMsg *lm = store_imap_msg_find(s->local, s->n_local, m->uid);

                        if ((pass == 0) == large)
                                continue;
                        if (i > 0 && s->meta.v[i - 1].uid == m->uid)
                                continue;
                        if (lm && !lm->has_body && !s->recovering && !ho) {
                                s->todo[n++] = i; /* stored without its body (metered network) */
                                continue;
                        }
                        if ((!s->recovering && s->f->uidvalidity && m->uid < s->f->uidnext) || lm ||
                            imap_sync_uid_vec_has(&s->appended, m->uid) ||
                            (s->have_since && !imap_sync_uid_vec_has(&s->since, m->uid)))
                                continue;
                        s->todo[n++] = i;
                }
        s->n_todo = n;
        s->i_todo = 0;
        if (n > 0) {
                log_acct_debug(s->a->name, "imap: %s: %zu new message(s) to fetch", s->f->name, n);
                imap_sync_progress(s, true);
        }
        imap_sync_fetch_pump(s);
}

/* A FETCH of bodies is answered: its window share is free again. */
void imap_sync_fetch_done(ImapSync *s, Cmd *c, int r, const ImapStatusResp *st) {
        s->n_fetch_flight--;
        s->flight_bytes -= c->bytes;
        if (c->cur) {
                c->cur->failed = true;
                if (!c->cur->finished)
                        item_finish(c->cur);
        }
        if (r > 0) {
                log_acct_warning(s->a->name, "imap: %s: FETCH failed: %s", s->f->name, st->text.s ? st->text.s : "");
                s->folder_failed = true;
        }
}
