/*
 * The daemon's sending side. A Sending holds a reference to the Config it was
 * built from (the outbox engine borrows its Account structs), registers every
 * account in the store, and then runs one SmtpOutbox over the store. Requests
 * that arrive while the accounts are still being registered (a D-Bus
 * activation delivers the first call right away) wait, prepared, in a short
 * list and are queued as soon as the engine runs.
 *
 * A reload builds a new Sending and closes the old one; closing waits for the
 * engine (a session in flight is cancelled and its item settled in the store)
 * and for the registrations still in flight, then drops the Config. Loop
 * thread only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "daemon/mime/envelope.h"
#include "daemon/sending.h"
#include "daemon/smtp/outbox.h"
#include "daemon/smtp/prepare.h"
#include "store/body.h"
#include "store/message.h"
#include "store/pending.h"
#include "util/log.h"

typedef struct UpsertOp {
        struct Sending *sending;
        size_t index;
} UpsertOp;

typedef struct Waiting {
        struct Waiting *next;
        size_t account; /* index in the config */
        SmtpMessage *msg;
        SendingQueuedFn cb;
        void *userdata;
} Waiting;

struct Sending {
        uv_loop_t *loop;
        Store *store;
        Config *config;       /* referenced */
        int64_t *account_ids; /* store ids, by config index; 0 until registered */
        UpsertOp *upserts;    /* one per account: the registrations' userdata */
        unsigned n_upserts;   /* registrations in flight */
        SmtpOutbox *outbox;   /* NULL until every account is registered */
        Waiting *waiting, **waiting_tail;
        bool closing;
        SendingClosedFn closed_cb;
        void *closed_userdata;
        SendingEventFn event_cb;
        void *event_userdata;
        SendingCopyFn copy_cb;
        void *copy_userdata;
        unsigned n_copies; /* copies to Sent being recorded: closing waits for them */
        struct CopyOp *copies_waiting; /* IMAP copies whose Sent folder is not known before a sync */
        bool outbox_closed;
};

/* A copy of a sent message on its way to Sent. */
typedef struct CopyOp {
        struct CopyOp *next; /* in copies_waiting */
        Sending *s;
        size_t account; /* config index */
        int64_t folder_id;
        int64_t outbox_id;
        StoreCid cid;
} CopyOp;

static void sending_free(Sending *s) {
        for (struct CopyOp *c = s->copies_waiting, *next; c; c = next) {
                next = c->next;
                free(c);
        }
        for (Waiting *w = s->waiting, *next; w; w = next) {
                next = w->next;
                w->cb(-ECANCELED, 0, w->userdata);
                smtp_message_free(w->msg);
                free(w);
        }
        config_free(s->config);
        free(s->account_ids);
        free(s->upserts);
        free(s);
}

/* The end of a close: the engine is gone and every copy to Sent recorded. */
static void copy_maybe_closed(Sending *s) {
        SendingClosedFn cb = s->closed_cb;
        void *ud = s->closed_userdata;

        if (!s->closing || !s->outbox_closed || s->n_copies > 0)
                return;
        sending_free(s);
        if (cb)
                cb(ud);
}

static void outbox_closed_cb(void *userdata) {
        Sending *s = userdata;

        s->outbox_closed = true;
        copy_maybe_closed(s);
}

/* The engine logs every transition with its account; front ends hear the state by name. */
static void event_cb(SmtpOutbox *o, int64_t id, StoreOutboxState state, int64_t next_attempt, const char *reply,
                     void *userdata) {
        Sending *s = userdata;
        const char *name;

        switch (state) {
        case STORE_OUTBOX_QUEUED:
                name = reply && *reply ? "retrying" : "queued";
                break;
        case STORE_OUTBOX_SENDING:
        case STORE_OUTBOX_COMMITTING:
                name = "sending";
                break;
        case STORE_OUTBOX_SENT:
                name = "sent";
                break;
        case STORE_OUTBOX_FAILED:
                name = "failed";
                break;
        default:
                name = "unknown";
                break;
        }
        if (s->event_cb && !s->closing)
                s->event_cb(id, name, s->event_userdata);
}

void sending_set_copy_cb(Sending *s, SendingCopyFn cb, void *userdata) {
        s->copy_cb = cb;
        s->copy_userdata = userdata;
}

/* ---- the copy to Sent --------------------------------------------------------------------- */


static void copy_done_cb(int r, int64_t id, void *userdata) {
        CopyOp *c = userdata;
        Sending *s = c->s;
        const Account *a = &s->config->accounts[c->account];

        s->n_copies--;
        if (r < 0)
                log_acct_warning(a->name, "outbox: item %" PRId64 ": the copy to Sent was not recorded: %s",
                                 c->outbox_id, strerror(-r));
        else if (a->imap.proto) {
                log_acct_info(a->name, "outbox: item %" PRId64 ": a copy goes to Sent at the next sync", c->outbox_id);
                if (s->copy_cb && !s->closing)
                        s->copy_cb(a->name, s->copy_userdata);
        } else
                log_acct_info(a->name, "outbox: item %" PRId64 ": a copy is in the local Sent folder", c->outbox_id);
        free(c);
        copy_maybe_closed(s);
}

/* POP3 accounts keep their copy here: in a local folder called Sent, the outbox id as its UID. */
static int copy_local(CopyOp *c) {
        Sending *s = c->s;
        _cleanup_(store_body_reader_freep) StoreBodyReader *rd = NULL;
        MimeHeaders h = {};
        StoreMessage m = {.folder_id = c->folder_id,
                          .uid = (uint32_t)c->outbox_id,
                          .flags = STORE_FLAG_SEEN,
                          .internal_date = (int64_t)time(NULL),
                          .has_body = true,
                          .cid = c->cid};
        int r;

        r = store_body_reader_new(s->store, &c->cid, &rd);
        if (r < 0)
                return r;
        m.size = store_body_reader_get_size(rd);
        while (!h.done) {
                const void *data;
                size_t n;

                r = store_body_reader_read(rd, &data, &n);
                if (r < 0 || n == 0)
                        break;
                r = mime_headers_feed(&h, data, n);
                if (r < 0)
                        break;
        }
        if (r >= 0)
                r = mime_headers_envelope(&h, &m.env);
        mime_headers_clear(&h);
        if (r >= 0)
                r = store_message_insert(s->store, &m, STORE_BULK, copy_done_cb, c);
        mime_envelope_clear(&m.env);
        return r;
}

static void local_folder_cb(int r, int64_t id, void *userdata) {
        CopyOp *c = userdata;

        if (r >= 0) {
                c->folder_id = id;
                r = copy_local(c);
        }
        if (r < 0)
                copy_done_cb(r, 0, c);
}

/* The store id of the account's Sent folder (the one `sent_folder` names, else the \Sent role); 0 if none
 * is known, a negative errno if the store cannot say. */
static int64_t find_sent_folder(Sending *s, size_t account) {
        const Account *a = &s->config->accounts[account];
        StoreFolder *folders = NULL;
        int64_t id = 0;
        size_t n = 0;
        int r;

        r = store_folder_list(s->store, s->account_ids[account], &folders, &n);
        if (r < 0)
                return r;
        for (size_t k = 0; k < n && !id; k++)
                if (a->sent_folder ? strcmp(folders[k].name, a->sent_folder) == 0 : folders[k].role == STORE_ROLE_SENT)
                        id = folders[k].id;
        store_folder_list_free(folders, n);
        return id;
}

/* Records c as a pending APPEND (\Seen) to its Sent folder, for the IMAP engine to push. */
static void copy_to_server(CopyOp *c) {
        Sending *s = c->s;
        StorePendingChange p = {.account_id = s->account_ids[c->account],
                                .kind = STORE_PENDING_APPEND,
                                .folder_id = c->folder_id,
                                .flags_add = STORE_FLAG_SEEN,
                                .has_cid = true,
                                .cid = c->cid};
        int r;

        s->n_copies++;
        r = store_pending_add(s->store, &p, copy_done_cb, c);
        if (r < 0)
                copy_done_cb(r, 0, c);
}

/*
 * A message went out: file a copy in the account's Sent folder. IMAP: a
 * pending APPEND (\Seen) that the next sync sends to the folder with the
 * \Sent role, or the one `sent_folder` names; `sent_folder = none` for
 * servers that file it themselves. POP3: a local Sent folder.
 */
static void sent_cb(SmtpOutbox *o, int64_t id, int64_t account_id, const StoreCid *cid, void *userdata) {
        Sending *s = userdata;
        const Account *a;
        int64_t folder;
        CopyOp *c;
        size_t i;
        int r;

        for (i = 0; i < s->config->n_accounts && s->account_ids[i] != account_id; i++)
                ;
        if (i == s->config->n_accounts || s->closing)
                return;
        a = &s->config->accounts[i];
        if (a->sent_folder && strcasecmp(a->sent_folder, "none") == 0)
                return;
        c = calloc(1, sizeof *c);
        if (!c)
                return;
        *c = (CopyOp){.s = s, .account = i, .outbox_id = id, .cid = *cid};
        folder = find_sent_folder(s, i);
        if (folder < 0) {
                free(c);
                return;
        }
        c->folder_id = folder;
        if (a->imap.proto) {
                if (c->folder_id)
                        return copy_to_server(c);
                /* The account has not been synced yet: its folders come with the sync asked for here. */
                c->next = s->copies_waiting;
                s->copies_waiting = c;
                if (s->copy_cb)
                        s->copy_cb(a->name, s->copy_userdata);
                return;
        }
        s->n_copies++;
        if (c->folder_id)
                r = copy_local(c);
        else {
                StoreFolder f = {.account_id = account_id,
                                 .name = (char *)(a->sent_folder ? a->sent_folder : "Sent"),
                                 .role = STORE_ROLE_SENT};

                r = store_folder_upsert(s->store, &f, local_folder_cb, c);
        }
        if (r < 0)
                copy_done_cb(r, 0, c);
}

void sending_account_synced(Sending *s, const char *account) {
        for (CopyOp **cp = &s->copies_waiting; *cp;) {
                CopyOp *c = *cp;
                const Account *a = &s->config->accounts[c->account];
                int64_t folder;

                if (strcmp(a->name, account) != 0) {
                        cp = &c->next;
                        continue;
                }
                *cp = c->next;
                c->next = NULL;
                folder = find_sent_folder(s, c->account);
                if (folder <= 0) {
                        log_acct_warning(a->name, "outbox: item %" PRId64 ": the server has no %s folder: no copy filed",
                                         c->outbox_id, a->sent_folder ? a->sent_folder : "Sent (\\Sent)");
                        free(c);
                        continue;
                }
                c->folder_id = folder;
                copy_to_server(c);
        }
}

void sending_set_event_cb(Sending *s, SendingEventFn cb, void *userdata) {
        s->event_cb = cb;
        s->event_userdata = userdata;
}

static void queued_cb(int status, int64_t id, void *userdata) {
        Waiting *w = userdata;

        w->cb(status, id, w->userdata);
        free(w);
}

/* Hands w (prepared) to the running engine; w is consumed either way. */
static void enqueue(Sending *s, Waiting *w) {
        int r = smtp_outbox_queue(s->outbox, s->account_ids[w->account], w->msg, queued_cb, w);

        w->msg = smtp_message_free(w->msg); /* the engine copied what it keeps */
        if (r < 0) {
                w->cb(r, 0, w->userdata);
                free(w);
        }
}

static void engine_start(Sending *s) {
        int r;

        r = smtp_outbox_new(s->loop, s->store, &s->outbox);
        if (r < 0) {
                log_error("outbox: cannot start: %s", strerror(-r));
                return;
        }
        smtp_outbox_set_event_cb(s->outbox, event_cb, s);
        smtp_outbox_set_sent_cb(s->outbox, sent_cb, s);
        for (size_t i = 0; i < s->config->n_accounts; i++) {
                const Account *a = &s->config->accounts[i];

                if (a->smtp.proto && s->account_ids[i] > 0 && smtp_outbox_add_account(s->outbox, s->account_ids[i], a) < 0)
                        log_acct_error(a->name, "outbox: out of memory");
        }
        r = smtp_outbox_start(s->outbox);
        if (r < 0)
                log_error("outbox: cannot start: %s", strerror(-r));
        while (s->waiting) {
                Waiting *w = s->waiting;

                s->waiting = w->next;
                enqueue(s, w);
        }
        s->waiting_tail = &s->waiting;
}

static void upsert_cb(int r, int64_t id, void *userdata) {
        UpsertOp *op = userdata;
        Sending *s = op->sending;

        if (r < 0)
                log_acct_error(s->config->accounts[op->index].name, "store: cannot register the account: %s",
                               strerror(-r));
        else
                s->account_ids[op->index] = id;
        if (--s->n_upserts > 0)
                return;
        if (s->closing)
                return outbox_closed_cb(s);
        engine_start(s);
}

int sending_new(uv_loop_t *loop, Store *store, Config *config, Sending **retp) {
        Sending *s = calloc(1, sizeof *s);
        int r;

        if (!s)
                return -ENOMEM;
        *s = (Sending){ .loop = loop, .store = store, .config = config_ref(config) };
        s->waiting_tail = &s->waiting;
        s->account_ids = calloc(config->n_accounts + 1, sizeof *s->account_ids);
        s->upserts = calloc(config->n_accounts + 1, sizeof *s->upserts);
        if (!s->account_ids || !s->upserts) {
                sending_free(s);
                return -ENOMEM;
        }
        for (size_t i = 0; i < config->n_accounts; i++) {
                s->upserts[i] = (UpsertOp){ .sending = s, .index = i };
                r = store_account_upsert(store, config->accounts[i].name, upsert_cb, &s->upserts[i]);
                if (r < 0) {
                        log_acct_error(config->accounts[i].name, "store: cannot register the account: %s",
                                       strerror(-r));
                        continue;
                }
                s->n_upserts++;
        }
        if (s->n_upserts == 0)
                engine_start(s);
        *retp = s;
        return 0;
}

/* True when the message's header section has a From: field. */
static bool has_from(const char *raw, size_t n) {
        const char *p = raw, *end = raw + n;

        while (p < end && *p != '\r' && *p != '\n') {
                const char *eol = memchr(p, '\n', (size_t)(end - p));

                if ((size_t)(end - p) > 5 && strncasecmp(p, "From:", 5) == 0)
                        return true;
                if (!eol)
                        break;
                p = eol + 1;
        }
        return false;
}

/* The account to send through: named, else the one whose address sent it, else the first that can send. */
static int pick_account(Sending *s, const char *name, const char *mail_from, size_t *indexp, char **errp) {
        const Config *c = s->config;

        if (name && *name) {
                for (size_t i = 0; i < c->n_accounts; i++)
                        if (strcmp(c->accounts[i].name, name) == 0) {
                                if (!c->accounts[i].smtp.proto)
                                        break;
                                *indexp = i;
                                return 0;
                        }
                if (asprintf(errp, "account %s: %s", name,
                             config_find_account(c, name) ? "has no smtp server configured" : "no such account") < 0)
                        *errp = NULL;
                return SENDING_E_NO_ACCOUNT;
        }
        for (size_t i = 0; mail_from && i < c->n_accounts; i++)
                if (c->accounts[i].smtp.proto && strcasecmp(c->accounts[i].address, mail_from) == 0) {
                        *indexp = i;
                        return 0;
                }
        for (size_t i = 0; i < c->n_accounts; i++)
                if (c->accounts[i].smtp.proto) {
                        *indexp = i;
                        return 0;
                }
        if (asprintf(errp, "no account has an smtp server configured") < 0)
                *errp = NULL;
        return SENDING_E_NO_ACCOUNT;
}

/* Prepares raw per req: the envelope from the headers, the given recipients, or both (-t with arguments). */
static int prepare(const char *raw, size_t n, const SendingRequest *req, SmtpMessage **msgp, char **errp) {
        _cleanup_(smtp_message_freep) SmtpMessage *first = NULL;
        SmtpPrepareOptions o = { .from = req->from };
        char **all = NULL;
        size_t n_all = 0;
        int r;

        if (req->n_rcpts > 0 && !req->extract_rcpts) {
                o.rcpts = req->rcpts;
                o.n_rcpts = req->n_rcpts;
        }
        r = smtp_message_prepare(raw, n, &o, &first, errp);
        if (r != 0 || !req->extract_rcpts || req->n_rcpts == 0) {
                *msgp = TAKE_PTR(first);
                return r;
        }
        /* -t with recipients given too: both sets, once each. */
        all = calloc(first->n_rcpts + req->n_rcpts, sizeof *all);
        if (!all)
                return -ENOMEM;
        for (size_t i = 0; i < first->n_rcpts; i++)
                all[n_all++] = first->rcpts[i];
        for (size_t i = 0; i < req->n_rcpts; i++) {
                bool dup = false;

                for (size_t j = 0; j < n_all && !dup; j++)
                        dup = strcasecmp(all[j], req->rcpts[i]) == 0;
                if (!dup)
                        all[n_all++] = (char *)req->rcpts[i];
        }
        o.rcpts = (const char *const *)all;
        o.n_rcpts = n_all;
        r = smtp_message_prepare(raw, n, &o, msgp, errp);
        free(all);
        return r;
}

int sending_queue(Sending *s, const char *raw, size_t n, const SendingRequest *req, SendingQueuedFn cb,
                  void *userdata, char **errp) {
        _cleanup_(smtp_message_freep) SmtpMessage *msg = NULL;
        _cleanup_free_ char *with_from = NULL;
        Waiting *w;
        size_t index = 0;
        int r;

        *errp = NULL;
        if (s->closing)
                return SENDING_E_NOT_READY;
        if (req->from_name && *req->from_name && !has_from(raw, n)) {
                const char *addr = req->from;
                size_t i;

                if (!addr && pick_account(s, req->account, NULL, &i, errp) == 0)
                        addr = s->config->accounts[i].address;
                free(*errp);
                *errp = NULL;
                if (addr) {
                        /* -F: the display name for the From: the message lacks. */
                        int len = asprintf(&with_from, "From: \"%s\" <%s>\r\n%.*s", req->from_name, addr, (int)n, raw);

                        if (len < 0) {
                                with_from = NULL;
                                return -ENOMEM;
                        }
                        raw = with_from;
                        n = (size_t)len;
                }
        }
        r = prepare(raw, n, req, &msg, errp);
        if (r < 0)
                return r;
        if (r > 0) {
                if (!*errp && asprintf(errp, "%s", smtp_prepare_strerror(r)) < 0)
                        *errp = NULL;
                return SENDING_E_REFUSED;
        }
        r = pick_account(s, req->account, msg->mail_from, &index, errp);
        if (r != 0)
                return r;
        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        *w = (Waiting){ .account = index, .msg = TAKE_PTR(msg), .cb = cb, .userdata = userdata };
        log_acct_info(s->config->accounts[index].name, "outbox: queueing a message from %s to %zu recipient(s)",
                      w->msg->mail_from, w->msg->n_rcpts);
        if (!s->outbox) {
                /* The accounts are still being registered: queue it when they are. */
                *s->waiting_tail = w;
                s->waiting_tail = &w->next;
                return 0;
        }
        enqueue(s, w);
        return 0;
}

void sending_kick(Sending *s) {
        if (s->outbox)
                smtp_outbox_kick(s->outbox);
}

void sending_close(Sending *s, SendingClosedFn cb, void *userdata) {
        if (s->closing)
                return;
        s->closing = true;
        s->closed_cb = cb;
        s->closed_userdata = userdata;
        if (s->outbox) {
                SmtpOutbox *o = TAKE_PTR(s->outbox);

                smtp_outbox_close(o, outbox_closed_cb, s);
        } else if (s->n_upserts == 0)
                outbox_closed_cb(s);
        /* else: the last upsert_cb finishes the close */
}
