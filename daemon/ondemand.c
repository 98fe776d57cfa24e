/*
 * The on-demand body fetches of ondemand.h. Each running fetch is an
 * OnDemandFetch in the Daemon's list, keyed by message id, with the callers
 * waiting for it. It holds a reference on the Config its Account lives in (a
 * reload may replace d->config meanwhile) and a store hold (daemon_store_hold)
 * so the store outlives it; both go after the waiters heard the outcome, so a
 * waiter may read the new body from the store in its callback. The fetch is
 * freed in fetch_done_cb only. Loop thread only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/imap/fetch-body.h"
#include "daemon/ondemand.h"
#include "util/log.h"

typedef struct OnDemandWaiter {
        OnDemandFn cb;
        void *userdata;
        struct OnDemandWaiter *next;
} OnDemandWaiter;

struct OnDemandFetch {
        Daemon *d;
        int64_t message_id;
        const Account *a; /* in config */
        Config *config;   /* referenced */
        ImapBodyFetch *f;
        OnDemandWaiter *waiters;
        struct OnDemandFetch *next;
};

typedef struct OnDemandFetch OnDemandFetch;

static OnDemandWaiter *waiter_new(OnDemandFn cb, void *userdata, OnDemandWaiter *next) {
        OnDemandWaiter *w = calloc(1, sizeof *w);

        if (w)
                *w = (OnDemandWaiter){.cb = cb, .userdata = userdata, .next = next};
        return w;
}

static void fetch_done_cb(const ImapBodyFetchResult *res, void *userdata) {
        OnDemandFetch *o = userdata;
        Daemon *d = o->d;
        OnDemandWaiter *w;

        /* Out of the list first: a waiter may ask for the message again from its callback. */
        for (OnDemandFetch **pp = &d->ondemand; *pp; pp = &(*pp)->next)
                if (*pp == o) {
                        *pp = o->next;
                        break;
                }
        if (res->r == 0)
                log_acct_info(o->a->name, "imap: fetched the body of message %" PRId64 " on demand (%" PRIu64 " bytes)",
                              o->message_id, res->size);
        else if (res->r != -ECANCELED)
                log_acct_warning(o->a->name, "imap: on-demand body fetch failed: %s", res->error);
        while ((w = o->waiters)) {
                o->waiters = w->next;
                w->cb(res->r, res->failure, res->error, w->userdata);
                free(w);
        }
        config_free(o->config);
        free(o);
        daemon_store_release(d); /* last: it may close the store */
}

int ondemand_fetch(Daemon *d, const OnDemandRequest *req, OnDemandFn cb, void *userdata) {
        ImapBodyFetchRequest fr = {
                .message_id = req->message_id,
                .folder_id = req->folder_id,
                .folder = req->folder,
                .uidvalidity = req->uidvalidity,
                .uid = req->uid,
        };
        const Account *a;
        OnDemandFetch *o;
        unsigned n = 0;
        int r;

        if (!d->store || d->stopping || d->rekey) /* a rekey closes the store soon */
                return -ESHUTDOWN;
        for (o = d->ondemand; o; o = o->next) {
                if (o->message_id == req->message_id) {
                        OnDemandWaiter *w = waiter_new(cb, userdata, o->waiters);

                        if (!w)
                                return -ENOMEM;
                        o->waiters = w;
                        return 0;
                }
                if (strcmp(o->a->name, req->account) == 0)
                        n++;
        }
        a = d->config ? config_find_account(d->config, req->account) : NULL;
        if (!a || a->imap.proto != SERVER_IMAP)
                return -ENOENT;
        if (n >= ONDEMAND_MAX_PER_ACCOUNT)
                return -EBUSY;
        o = calloc(1, sizeof *o);
        if (!o)
                return -ENOMEM;
        *o = (OnDemandFetch){.d = d, .message_id = req->message_id, .a = a};
        o->waiters = waiter_new(cb, userdata, NULL);
        if (!o->waiters) {
                free(o);
                return -ENOMEM;
        }
        o->config = config_ref(d->config);
        r = imap_body_fetch_start(d->loop, d->store, a, &fr, 0, fetch_done_cb, o, &o->f);
        if (r < 0) {
                config_free(o->config);
                free(o->waiters);
                free(o);
                return r;
        }
        daemon_store_hold(d);
        o->next = d->ondemand;
        d->ondemand = o;
        return 0;
}

void ondemand_cancel_all(Daemon *d) {
        /* A cancelled fetch reports later (its session closes first), so the list stays intact here. */
        for (OnDemandFetch *o = d->ondemand, *next; o; o = next) {
                next = o->next; /* o may report (and go) at once when it had no connection yet */
                imap_body_fetch_cancel(o->f);
        }
}
