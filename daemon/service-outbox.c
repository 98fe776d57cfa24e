/*
 * The service API's outbox: what waits to be sent, retry now, cancel. Lists
 * read the store on the loop thread; retry and cancel are one barrier job
 * each (store/local.h) that checks the entry's state inside the job, so an
 * entry the engine has just claimed is never cancelled under it. A retry
 * then wakes the outbox engine (daemon/sending.h). Loop thread only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/mime/envelope.h"
#include "daemon/service-private.h"
#include "store/body.h"
#include "store/local.h"
#include "store/outbox.h"

static const char *outbox_state_name(const StoreOutboxItem *it) {
        switch (it->state) {
        case STORE_OUTBOX_QUEUED:
                return it->attempts > 0 ? "retrying" : "queued";
        case STORE_OUTBOX_SENDING:
        case STORE_OUTBOX_COMMITTING:
                return "sending";
        case STORE_OUTBOX_FAILED:
                return "failed";
        case STORE_OUTBOX_UNKNOWN:
                return "unknown";
        case STORE_OUTBOX_SENT:
                return "sent";
        }
        return "unknown";
}

void service_outbox_list_free(ServiceOutboxEntry *entries, size_t n_entries) {
        for (size_t i = 0; i < n_entries; i++) {
                free(entries[i].account);
                free(entries[i].last_error);
                for (size_t j = 0; j < entries[i].n_rcpts; j++)
                        free(entries[i].rcpts[j]);
                free(entries[i].rcpts);
                free(entries[i].subject);
        }
        free(entries);
}

/* The Subject of a stored message (decoded), from its first chunk; NULL when none. */
static char *body_subject(Store *store, const StoreCid *cid) {
        _cleanup_(store_body_reader_freep) StoreBodyReader *rd = NULL;
        StoreEnvelope env = {};
        const void *data;
        size_t n = 0;
        char *subject = NULL;

        if (store_body_reader_new(store, cid, &rd) == 0 && store_body_reader_read(rd, &data, &n) == 0 &&
            mime_envelope_parse(data, n, &env) == 0) {
                subject = env.subject;
                env.subject = NULL;
        }
        mime_envelope_clear(&env);
        return subject;
}

/* Fills *e from it (strings copied). */
static int entry_fill(Store *store, const StoreAccount *accounts, size_t n_accounts, const StoreOutboxItem *it,
                      ServiceOutboxEntry *e) {
        const char *account = "";

        for (size_t i = 0; i < n_accounts; i++)
                if (accounts[i].id == it->account_id)
                        account = accounts[i].name;
        *e = (ServiceOutboxEntry){
                .id = it->id,
                .account = strdup(account),
                .state = outbox_state_name(it),
                .attempts = it->attempts,
                .next_attempt = it->next_attempt,
                .created = it->created,
                .last_error = strdup(it->last_reply ? it->last_reply : ""),
                .rcpts = calloc(it->n_rcpts ? it->n_rcpts : 1, sizeof(char *)),
                .subject = body_subject(store, &it->cid),
        };
        if (!e->account || !e->last_error || !e->rcpts)
                return -ENOMEM;
        for (; e->n_rcpts < it->n_rcpts; e->n_rcpts++) {
                e->rcpts[e->n_rcpts] = strdup(it->rcpts[e->n_rcpts]);
                if (!e->rcpts[e->n_rcpts])
                        return -ENOMEM;
        }
        return 0;
}

int service_list_outbox(Daemon *d, ServiceOutboxEntry **entriesp, size_t *n_entriesp, char **errp) {
        StoreOutboxItem *items = NULL;
        StoreAccount *accounts = NULL;
        ServiceOutboxEntry *out = NULL;
        size_t n_items = 0, n_accounts = 0, n = 0;
        Store *store;
        int r;

        *entriesp = NULL;
        *n_entriesp = 0;
        r = service_store(d, &store, errp);
        if (r != 0)
                return r;
        r = store_outbox_list(store, &items, &n_items);
        if (r < 0)
                return service_store_error(r, "listing the outbox", errp);
        r = store_account_list(store, &accounts, &n_accounts);
        if (r < 0) {
                store_outbox_list_free(items, n_items);
                return service_store_error(r, "listing accounts", errp);
        }
        out = calloc(n_items ? n_items : 1, sizeof *out);
        if (!out)
                r = -ENOMEM;
        /* Sent entries stay in the store (they decide "never twice") but are not the outbox any more. */
        for (size_t i = 0; r == 0 && i < n_items; i++)
                if (items[i].state != STORE_OUTBOX_SENT) {
                        r = entry_fill(store, accounts, n_accounts, &items[i], &out[n]);
                        n++;
                }
        store_outbox_list_free(items, n_items);
        store_account_list_free(accounts, n_accounts);
        if (r < 0) {
                if (out)
                        service_outbox_list_free(out, n);
                return r;
        }
        *entriesp = out;
        *n_entriesp = n;
        return 0;
}

typedef struct OutboxOp {
        Daemon *d;
        int64_t id;
        bool retry;
        ServiceDoneFn cb;
        void *userdata;
} OutboxOp;

static void outbox_edit_cb(int r, void *userdata) {
        OutboxOp *op = userdata;
        char buf[160];

        switch (r) {
        case 0: {
                Daemon *d = op->d;

                /* The engine does not see these edits: announce them here. */
                if (d->listener && d->listener->outbox_changed)
                        d->listener->outbox_changed(op->id, op->retry ? "queued" : "cancelled", d->listener_userdata);
                /* The engine may be waiting on a timer or holding the account: wake it. */
                if (op->retry && op->d->sending && !op->d->stopping)
                        sending_kick(op->d->sending);
                op->cb(SERVICE_ERROR_NONE, "", op->userdata);
                break;
        }
        case -ENOENT:
                snprintf(buf, sizeof buf, "no outbox entry with id %" PRId64, op->id);
                op->cb(SERVICE_ERROR_NOT_FOUND, buf, op->userdata);
                break;
        case -EBUSY:
                snprintf(buf, sizeof buf, "outbox entry %" PRId64 " is being sent right now", op->id);
                op->cb(SERVICE_ERROR_BUSY, buf, op->userdata);
                break;
        case -EALREADY:
                snprintf(buf, sizeof buf, "outbox entry %" PRId64 " was sent already", op->id);
                op->cb(SERVICE_ERROR_INVALID_ARGS, buf, op->userdata);
                break;
        default:
                snprintf(buf, sizeof buf, "store: %s", strerror(-r));
                op->cb(SERVICE_ERROR_FAILED, buf, op->userdata);
                break;
        }
        free(op);
}

static int outbox_edit(Daemon *d, int64_t id, bool retry, ServiceDoneFn cb, void *userdata, char **errp) {
        OutboxOp *op;
        Store *store;
        int r;

        r = service_store(d, &store, errp);
        if (r != 0)
                return r;
        if (id <= 0)
                return service_fail(errp, SERVICE_ERROR_NOT_FOUND, "no outbox entry with id %" PRId64, id);
        op = malloc(sizeof *op);
        if (!op)
                return -ENOMEM;
        *op = (OutboxOp){.d = d, .id = id, .retry = retry, .cb = cb, .userdata = userdata};
        r = retry ? store_outbox_retry(store, id, (int64_t)time(NULL), outbox_edit_cb, op)
                  : store_outbox_cancel(store, id, outbox_edit_cb, op);
        if (r < 0) {
                free(op);
                return service_store_error(r, "queueing the change", errp);
        }
        return 0;
}

int service_retry_outbox(Daemon *d, int64_t id, ServiceDoneFn cb, void *userdata, char **errp) {
        return outbox_edit(d, id, true, cb, userdata, errp);
}

int service_cancel_outbox(Daemon *d, int64_t id, ServiceDoneFn cb, void *userdata, char **errp) {
        return outbox_edit(d, id, false, cb, userdata, errp);
}
