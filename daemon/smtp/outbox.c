/*
 * The outbox sending engine, on the libuv loop thread. It owns one timer (the
 * next due item), at most one SmtpClient and the item and message that
 * client sends; the store owns the items themselves and every state change
 * is a barrier commit there (store/outbox.c).
 *
 * One message at a time: claim (queued → sending) → read the body back and
 * prepare it again with the stored envelope (which recomputes what it needs:
 * 8BITMIME, SMTPUTF8; the bytes do not change, they were prepared when
 * queued) → send → the verdict into the store → claim the next. With nothing
 * due, the timer is set for the earliest next_attempt.
 *
 * The "unknown" window: an item is SENDING in the store from its claim; once
 * the body is on its way (DATA without the final dot, or a BDAT chunk that is
 * not LAST), the client waits at a gate while the item becomes COMMITTING (a
 * barrier commit), and only then sends the final dot (BDAT 0 LAST). A
 * crash before the gate leaves it SENDING, and smtp_outbox_start() queues it
 * again (the server never had all of it); a crash after leaves it COMMITTING,
 * and it becomes UNKNOWN: never sent twice, and only the true window between
 * the final dot and the server's reply is ever in doubt.
 */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/smtp/outbox.h"
#include "daemon/smtp/reply.h"
#include "store/body.h"
#include "util/log.h"

typedef struct OutboxAccount {
        int64_t id;
        const Account *acct;
        bool held; /* credentials, certificate or downgrade trouble: wait for smtp_outbox_kick() */
} OutboxAccount;

struct SmtpOutbox {
        uv_loop_t *loop;
        Store *store;
        uv_timer_t timer;
        OutboxAccount *accounts;
        size_t n_accounts;
        size_t cursor, n_tried; /* accounts take turns; how many were asked this round */
        SmtpSendOptions send_opts;
        SmtpOutboxEventFn event_cb;
        void *event_userdata;
        SmtpOutboxSentFn sent_cb;
        void *sent_userdata;

        bool started, running, closing, again, kick_pending;
        unsigned n_ops; /* queue operations and verdict commits in flight */
        SmtpClient *client;
        StoreOutboxItem *item; /* claimed, being sent */
        SmtpMessage *msg;
        const Account *acct;
        SmtpOutboxClosedFn closed_cb;
        void *closed_userdata;
};

/* One smtp_outbox_queue() call: the envelope copied, the body being written. */
typedef struct QueueOp {
        SmtpOutbox *o;
        int64_t account_id;
        char *mail_from;
        char **rcpts;
        size_t n_rcpts;
        SmtpOutboxQueuedFn cb;
        void *userdata;
} QueueOp;

/* One verdict on its way into the store. */
typedef struct VerdictOp {
        SmtpOutbox *o;
        int64_t id;
        StoreOutboxState state;
        int64_t next_attempt;
        char *reply;
        bool has_cid; /* SENT: the body and account, for the sent callback */
        StoreCid cid;
        int64_t account_id;
} VerdictOp;

static void run_next(SmtpOutbox *o);

static int64_t now_s(void) {
        return (int64_t)time(NULL);
}

uint64_t smtp_outbox_retry_delay(unsigned n_attempts, uint32_t rnd) {
        uint64_t d = SMTP_OUTBOX_RETRY_MIN_S;

        for (unsigned i = 1; i < n_attempts && d < SMTP_OUTBOX_RETRY_MAX_S; i++)
                d *= 2;
        if (d > SMTP_OUTBOX_RETRY_MAX_S)
                d = SMTP_OUTBOX_RETRY_MAX_S;
        /* The random half spreads retries of many messages after one outage. */
        return d / 2 + rnd % (d / 2 + 1);
}

int smtp_outbox_new(uv_loop_t *loop, Store *store, SmtpOutbox **retp) {
        SmtpOutbox *o = calloc(1, sizeof *o);

        if (!o)
                return -ENOMEM;
        o->loop = loop;
        o->store = store;
        uv_timer_init(loop, &o->timer);
        *retp = o;
        return 0;
}

int smtp_outbox_add_account(SmtpOutbox *o, int64_t account_id, const Account *a) {
        OutboxAccount *v = reallocarray(o->accounts, o->n_accounts + 1, sizeof *v);

        if (!v)
                return -ENOMEM;
        o->accounts = v;
        o->accounts[o->n_accounts++] = (OutboxAccount){.id = account_id, .acct = a};
        return 0;
}

void smtp_outbox_set_send_options(SmtpOutbox *o, const SmtpSendOptions *opts) {
        o->send_opts = *opts;
}

void smtp_outbox_set_event_cb(SmtpOutbox *o, SmtpOutboxEventFn cb, void *userdata) {
        o->event_cb = cb;
        o->event_userdata = userdata;
}

void smtp_outbox_set_sent_cb(SmtpOutbox *o, SmtpOutboxSentFn cb, void *userdata) {
        o->sent_cb = cb;
        o->sent_userdata = userdata;
}

bool smtp_outbox_busy(const SmtpOutbox *o) {
        return o->running || o->n_ops > 0;
}

static OutboxAccount *find_account(const SmtpOutbox *o, int64_t id) {
        for (size_t i = 0; i < o->n_accounts; i++)
                if (o->accounts[i].id == id)
                        return &o->accounts[i];
        return NULL;
}

/* The last step of closing: nothing in flight any more. */
static void timer_closed_cb(uv_handle_t *h) {
        SmtpOutbox *o = container_of((uv_timer_t *)h, SmtpOutbox, timer);

        if (o->closed_cb)
                o->closed_cb(o->closed_userdata);
        free(o->accounts);
        free(o);
}

static void maybe_closed(SmtpOutbox *o) {
        if (o->closing && !o->running && o->n_ops == 0 && !uv_is_closing((uv_handle_t *)&o->timer))
                uv_close((uv_handle_t *)&o->timer, timer_closed_cb);
}

/* ------------------------------------------------------------------ queueing */

static QueueOp *queue_op_free(QueueOp *q) {
        if (q) {
                free(q->mail_from);
                smtp_address_list_free(q->rcpts, q->n_rcpts);
                free(q);
        }
        return NULL;
}

static void queue_end(QueueOp *q, int status, int64_t id) {
        SmtpOutbox *o = q->o;

        q->cb(status, id, q->userdata);
        queue_op_free(q);
        o->n_ops--;
        if (status == 0)
                run_next(o); /* it may be due now */
        maybe_closed(o);
}

static void accepted_cb(int r, int64_t id, void *userdata) {
        queue_end(userdata, r, id);
}

static void body_done_cb(int r, const StoreCid *cid, uint64_t size, void *userdata) {
        QueueOp *q = userdata;

        if (r == 0)
                r = store_outbox_accept(q->o->store, q->account_id, q->mail_from, (const char *const *)q->rcpts,
                                        q->n_rcpts, cid, now_s(), accepted_cb, q);
        if (r < 0)
                queue_end(q, r, 0);
}

int smtp_outbox_queue(SmtpOutbox *o, int64_t account_id, const SmtpMessage *m, SmtpOutboxQueuedFn cb, void *userdata) {
        StoreBodyWriter *w = NULL;
        QueueOp *q;
        int r;

        if (o->closing)
                return -ESHUTDOWN;
        q = calloc(1, sizeof *q);
        if (!q)
                return -ENOMEM;
        *q = (QueueOp){.o = o, .account_id = account_id, .cb = cb, .userdata = userdata};
        q->mail_from = strdup(m->mail_from);
        q->rcpts = calloc(m->n_rcpts, sizeof *q->rcpts);
        if (!q->mail_from || !q->rcpts) {
                queue_op_free(q);
                return -ENOMEM;
        }
        for (; q->n_rcpts < m->n_rcpts; q->n_rcpts++) {
                q->rcpts[q->n_rcpts] = strdup(m->rcpts[q->n_rcpts]);
                if (!q->rcpts[q->n_rcpts]) {
                        queue_op_free(q);
                        return -ENOMEM;
                }
        }
        r = store_body_writer_new(o->store, &w);
        if (r < 0) {
                queue_op_free(q);
                return r;
        }
        /* The message is in memory already: a backlog only means the writer thread lags behind. */
        r = store_body_writer_append(w, m->data, m->size);
        if (r < 0) {
                store_body_writer_abort(w);
                queue_op_free(q);
                return r;
        }
        r = store_body_writer_finish(w, body_done_cb, q);
        if (r < 0) {
                queue_op_free(q);
                return r;
        }
        o->n_ops++;
        return 0;
}

/* ------------------------------------------------------------------ sending */

static void verdict_done_cb(int r, void *userdata) {
        VerdictOp *v = userdata;
        SmtpOutbox *o = v->o;

        if (r < 0)
                log_error("outbox: item %" PRId64 ": cannot record its state: %s", v->id, strerror(-r));
        else {
                if (o->event_cb)
                        o->event_cb(o, v->id, v->state, v->next_attempt, v->reply ? v->reply : "", o->event_userdata);
                if (v->has_cid && o->sent_cb)
                        o->sent_cb(o, v->id, v->account_id, &v->cid, o->sent_userdata);
        }
        free(v->reply);
        free(v);
        o->n_ops--;
        run_next(o);
        maybe_closed(o);
}

/* Commits an item's new state; the engine goes on when it is durable. sent: the item, when it went out. */
static void set_verdict_full(SmtpOutbox *o, int64_t id, StoreOutboxState state, int64_t next_attempt,
                             const char *reply, const StoreOutboxItem *sent) {
        VerdictOp *v = calloc(1, sizeof *v);
        int r;

        if (v) {
                *v = (VerdictOp){.o = o, .id = id, .state = state, .next_attempt = next_attempt};
                v->reply = reply ? strdup(reply) : NULL;
                if (sent) {
                        v->has_cid = true;
                        v->cid = sent->cid;
                        v->account_id = sent->account_id;
                }
        }
        r = v ? store_outbox_set_state(o->store, id, state, next_attempt, reply, verdict_done_cb, v) : -ENOMEM;
        if (r < 0) {
                /* The item stays SENDING: at the next start it becomes UNKNOWN, never sent twice. */
                log_error("outbox: item %" PRId64 ": cannot record its state: %s", id, strerror(-r));
                if (v)
                        free(v->reply);
                free(v);
                return;
        }
        o->n_ops++;
}

static void set_verdict(SmtpOutbox *o, int64_t id, StoreOutboxState state, int64_t next_attempt, const char *reply) {
        set_verdict_full(o, id, state, next_attempt, reply, NULL);
}

static void requeue_done_cb(int r, int64_t id, void *userdata) {
        SmtpOutbox *o = userdata;

        if (r < 0)
                log_error("outbox: cannot queue the deferred recipients again: %s", strerror(-r));
        else
                log_info("outbox: deferred recipients queued again as item %" PRId64, id);
        o->n_ops--;
        maybe_closed(o);
}

/* Sent, but some recipients got 4xx: they get a new item with the same body. */
static void requeue_deferred(SmtpOutbox *o, const SmtpSendResult *res, int64_t now) {
        const char **v = calloc(res->n_rcpts, sizeof *v);
        size_t n = 0;

        if (!v)
                return;
        for (size_t i = 0; i < res->n_rcpts; i++)
                if (!smtp_reply_is_positive(res->rcpts[i].code) && !smtp_reply_is_permanent(res->rcpts[i].code))
                        v[n++] = res->rcpts[i].address;
        if (n > 0 && store_outbox_accept(o->store, o->item->account_id, o->item->mail_from, v, n, &o->item->cid,
                                         now + (int64_t)smtp_outbox_retry_delay(1, randombytes_random()),
                                         requeue_done_cb, o) == 0)
                o->n_ops++;
        free(v);
}

/* "250 2.0.0 Ok: queued as X; refused a@b: 550 5.1.1 ...; deferred c@d: 450 4.2.0 ..." */
static char *sent_reply(const SmtpSendResult *res) {
        size_t size = strlen(res->reply) + 1;
        char *s, *p;

        for (size_t i = 0; i < res->n_rcpts; i++)
                if (!smtp_reply_is_positive(res->rcpts[i].code))
                        size += strlen(res->rcpts[i].address) + (res->rcpts[i].text ? strlen(res->rcpts[i].text) : 0) +
                                32;
        s = p = malloc(size);
        if (!s)
                return NULL;
        p += sprintf(p, "%s", res->reply);
        for (size_t i = 0; i < res->n_rcpts; i++)
                if (!smtp_reply_is_positive(res->rcpts[i].code))
                        p += sprintf(p, "; %s %s: %s",
                                     smtp_reply_is_permanent(res->rcpts[i].code) ? "refused" : "deferred",
                                     res->rcpts[i].address, res->rcpts[i].text ? res->rcpts[i].text : "no reply");
        return s;
}

static void sent_cb(SmtpClient *c, const SmtpSendResult *res, void *userdata) {
        SmtpOutbox *o = userdata;
        StoreOutboxItem *item = o->item;
        unsigned expire_days = o->acct->outbox_expire_days ? o->acct->outbox_expire_days : 5;
        int64_t now = now_s(), next = 0;
        StoreOutboxState state;
        char *reply = NULL;

        o->client = NULL;
        if (res->failure != NET_FAILURE_NONE && net_failure_is_permanent(res->failure)) {
                /* Every message of the account would fail the same way: none is tried until the user acts. */
                OutboxAccount *oa = find_account(o, item->account_id);

                if (oa)
                        oa->held = true;
                log_acct_error(o->acct->name, "outbox: sending stopped (%s failure) until the account is fixed",
                               net_failure_to_string(res->failure));
        }
        switch (res->outcome) {
        case SMTP_OUTCOME_SENT:
                state = STORE_OUTBOX_SENT;
                reply = sent_reply(res);
                requeue_deferred(o, res, now);
                log_acct_info(o->acct->name, "outbox: item %" PRId64 " sent to %zu of %zu recipients: %s", item->id,
                              res->n_accepted, res->n_rcpts, reply ? reply : res->reply);
                break;
        case SMTP_OUTCOME_PERMANENT:
                state = STORE_OUTBOX_FAILED;
                log_acct_error(o->acct->name, "outbox: item %" PRId64 " failed: %s", item->id, res->error);
                break;
        case SMTP_OUTCOME_CANCELED:
                state = STORE_OUTBOX_QUEUED; /* nothing committed: try again at the next start */
                next = now;
                break;
        default:
                if (res->in_doubt) {
                        state = STORE_OUTBOX_UNKNOWN;
                        log_acct_warning(o->acct->name, "outbox: item %" PRId64 " in doubt: %s", item->id, res->error);
                } else if (now >= item->created + (int64_t)expire_days * 86400) {
                        state = STORE_OUTBOX_FAILED;
                        if (asprintf(&reply, "gave up after %u days: %s", expire_days, res->error) < 0)
                                reply = NULL;
                        log_acct_error(o->acct->name, "outbox: item %" PRId64 " %s", item->id, reply ? reply : "");
                } else {
                        state = STORE_OUTBOX_QUEUED;
                        next = now + (int64_t)smtp_outbox_retry_delay(item->attempts, randombytes_random());
                        log_acct_warning(o->acct->name,
                                         "outbox: item %" PRId64 " deferred (attempt %u, next in %" PRId64 " s): %s",
                                         item->id, item->attempts, next - now, res->error);
                }
                break;
        }
        set_verdict_full(o, item->id, state, next, reply ? reply : res->error, state == STORE_OUTBOX_SENT ? item : NULL);
        free(reply);
        o->item = store_outbox_item_free(o->item);
        o->msg = smtp_message_free(o->msg);
        o->acct = NULL;
        o->running = false;
        /* verdict_done_cb goes on with the next item once the verdict is durable. */
        if (o->n_ops == 0) {
                run_next(o);
                maybe_closed(o);
        }
}

typedef struct CommitOp {
        SmtpOutbox *o;
        int64_t id; /* the item whose client waits at the gate */
} CommitOp;

static void commit_done_cb(int r, void *userdata) {
        CommitOp *op = userdata;
        SmtpOutbox *o = op->o;

        o->n_ops--;
        /* Only the client still sending that item may go on. */
        if (o->client && o->item && o->item->id == op->id)
                smtp_client_commit_ready(o->client, r);
        free(op);
        maybe_closed(o);
}

/* Before the final dot: COMMITTING on disk, so a crash from here on is UNKNOWN. */
static void committing_cb(SmtpClient *c, void *userdata) {
        SmtpOutbox *o = userdata;
        CommitOp *op = malloc(sizeof *op);
        int r;

        if (!op)
                return smtp_client_commit_ready(c, -ENOMEM);
        *op = (CommitOp){ .o = o, .id = o->item->id };
        r = store_outbox_set_state(o->store, op->id, STORE_OUTBOX_COMMITTING, 0, NULL, commit_done_cb, op);
        if (r < 0) {
                free(op);
                return smtp_client_commit_ready(c, r);
        }
        o->n_ops++;
        log_acct_debug(o->acct->name, "outbox: item %" PRId64 " reaching the commit point; unknown until its reply",
                       op->id);
}

/* Reads the stored body back and prepares it with the stored envelope. */
static int load_message(SmtpOutbox *o, const StoreOutboxItem *item, SmtpMessage **mp, char **errp) {
        _cleanup_(store_body_reader_freep) StoreBodyReader *r = NULL;
        SmtpPrepareOptions popts = {
                .from = item->mail_from, .rcpts = (const char *const *)item->rcpts, .n_rcpts = item->n_rcpts};
        _cleanup_free_ char *data = NULL;
        size_t size = 0;
        uint64_t total;
        int k;

        k = store_body_reader_new(o->store, &item->cid, &r);
        if (k < 0)
                return k;
        total = store_body_reader_get_size(r);
        data = malloc(total + 1);
        if (!data)
                return -ENOMEM;
        for (;;) {
                const void *chunk;
                size_t n;

                k = store_body_reader_read(r, &chunk, &n);
                if (k < 0)
                        return k;
                if (n == 0)
                        break;
                if (size + n > total)
                        return -EBADMSG;
                memcpy(data + size, chunk, n);
                size += n;
        }
        return smtp_message_prepare(data, size, &popts, mp, errp);
}

static void timer_cb(uv_timer_t *t) {
        run_next(container_of(t, SmtpOutbox, timer));
}

/* Nothing due: sleep until the earliest queued item of an account we may send for (a minute after an error). */
static void go_idle(SmtpOutbox *o, bool error) {
        StoreOutboxItem *items = NULL;
        size_t n = 0;
        int64_t next = INT64_MAX, now = now_s();

        if (error || store_outbox_list(o->store, &items, &n) < 0)
                next = now + SMTP_OUTBOX_RETRY_MIN_S;
        for (size_t i = 0; i < n; i++) {
                const OutboxAccount *oa = find_account(o, items[i].account_id);

                if (items[i].state == STORE_OUTBOX_QUEUED && oa && !oa->held && items[i].next_attempt < next)
                        next = items[i].next_attempt;
        }
        store_outbox_list_free(items, n);
        if (next != INT64_MAX)
                uv_timer_start(&o->timer, timer_cb, next > now ? (uint64_t)(next - now) * 1000 : 0, 0);
        maybe_closed(o);
}

static void claimed_cb(int r, StoreOutboxItem *item, void *userdata);

/* Claims the oldest due item of the next account in turn that is not held; idle when none is left to ask. */
static void claim_next(SmtpOutbox *o) {
        while (o->n_tried < o->n_accounts) {
                OutboxAccount *oa = &o->accounts[o->cursor];
                int r;

                o->cursor = (o->cursor + 1) % o->n_accounts;
                o->n_tried++;
                if (oa->held)
                        continue;
                r = store_outbox_claim(o->store, oa->id, now_s(), claimed_cb, o);
                if (r < 0) {
                        log_error("outbox: cannot claim: %s", strerror(-r));
                        return go_idle(o, true);
                }
                o->running = true;
                return;
        }
        go_idle(o, false);
}

static void claimed_cb(int r, StoreOutboxItem *item, void *userdata) {
        SmtpOutbox *o = userdata;
        SmtpSendOptions sopts = o->send_opts;
        _cleanup_free_ char *err = NULL;
        char why[600];

        if (r < 0 || !item || o->closing) {
                if (r < 0)
                        log_error("outbox: cannot claim the next item: %s", strerror(-r));
                o->running = false;
                if (item) /* closing: it goes back as it was */
                        set_verdict(o, item->id, STORE_OUTBOX_QUEUED, item->next_attempt, NULL);
                store_outbox_item_free(item);
                if (o->closing)
                        return maybe_closed(o);
                if (o->again) {
                        o->again = false;
                        return run_next(o);
                }
                if (r == 0 && o->n_tried < o->n_accounts)
                        return claim_next(o); /* nothing due for this account: ask the next */
                return go_idle(o, r < 0);
        }
        o->item = item;
        o->acct = find_account(o, item->account_id) ? find_account(o, item->account_id)->acct : NULL;
        if (!o->acct) {
                snprintf(why, sizeof why, "no account with store id %" PRId64 " in the configuration",
                         item->account_id);
                o->running = false;
                set_verdict(o, item->id, STORE_OUTBOX_QUEUED, now_s() + SMTP_OUTBOX_RETRY_MAX_S, why);
                o->item = store_outbox_item_free(o->item);
                return;
        }
        r = load_message(o, item, &o->msg, &err);
        if (r != 0) {
                snprintf(why, sizeof why, "account %s: the stored message cannot be sent: %s", o->acct->name,
                         r > 0 ? (err ? err : smtp_prepare_strerror(r)) : strerror(-r));
                o->running = false;
                set_verdict(o, item->id, STORE_OUTBOX_FAILED, 0, why);
                o->item = store_outbox_item_free(o->item);
                return;
        }
        log_acct_info(o->acct->name, "outbox: sending item %" PRId64 " (attempt %u, %zu bytes, %zu recipients)",
                      item->id, item->attempts, o->msg->size, o->msg->n_rcpts);
        sopts.committing = committing_cb;
        r = smtp_client_send(o->loop, o->acct, o->msg, &sopts, sent_cb, o, &o->client);
        if (r < 0) {
                SmtpSendResult res = {.outcome = SMTP_OUTCOME_TRANSIENT, .error = why, .reply = ""};

                snprintf(why, sizeof why, "account %s: cannot start sending: %s", o->acct->name, strerror(-r));
                sent_cb(NULL, &res, o);
        }
}

static void run_next(SmtpOutbox *o) {
        if (!o->started || o->closing)
                return;
        if (o->running) {
                o->again = true; /* something changed while claiming: look again afterwards */
                return;
        }
        uv_timer_stop(&o->timer);
        o->again = false;
        o->n_tried = 0;
        claim_next(o);
}

/* ------------------------------------------------------------------ life cycle */

static void recovered_cb(int r, int64_t n, void *userdata) {
        SmtpOutbox *o = userdata;

        o->n_ops--;
        if (r < 0)
                log_error("outbox: cannot recover after the last run: %s", strerror(-r));
        else if (n > 0)
                log_warning("outbox: %" PRId64 " message(s) were being sent when tegami stopped: marked unknown, "
                            "not sent again",
                            n);
        o->started = r == 0;
        if (o->kick_pending) {
                o->kick_pending = false;
                smtp_outbox_kick(o);
        }
        run_next(o);
        maybe_closed(o);
}

int smtp_outbox_start(SmtpOutbox *o) {
        int r;

        if (o->started || o->closing)
                return -EALREADY;
        r = store_outbox_recover(o->store, recovered_cb, o);
        if (r < 0)
                return r;
        o->n_ops++;
        return 0;
}

void smtp_outbox_kick(SmtpOutbox *o) {
        StoreOutboxItem *items = NULL;
        size_t n = 0;
        int64_t now = now_s();

        if (o->closing)
                return;
        if (!o->started) {
                o->kick_pending = true; /* once recovered */
                return;
        }
        for (size_t i = 0; i < o->n_accounts; i++)
                o->accounts[i].held = false;
        if (store_outbox_list(o->store, &items, &n) == 0) {
                for (size_t i = 0; i < n; i++)
                        if (items[i].state == STORE_OUTBOX_QUEUED && items[i].next_attempt > now)
                                set_verdict(o, items[i].id, STORE_OUTBOX_QUEUED, now, NULL);
                store_outbox_list_free(items, n);
        }
        run_next(o);
}

void smtp_outbox_close(SmtpOutbox *o, SmtpOutboxClosedFn cb, void *userdata) {
        if (o->closing)
                return;
        o->closing = true;
        o->closed_cb = cb;
        o->closed_userdata = userdata;
        uv_timer_stop(&o->timer);
        if (o->client)
                smtp_client_cancel(o->client); /* sent_cb records the verdict; then we are idle */
        maybe_closed(o);
}
