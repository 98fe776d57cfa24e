/*
 * The service API's syncing side: POP3 dry runs through the scheduler (so an
 * account never has two sessions at once) and the per-account counts front
 * ends show (Unread, Total, OutboxSize).
 *
 * The counts come from the store's read connection with one aggregate query
 * each and are cached in d->counts, one block indexed like the running
 * configuration: ipc/ invalidates an account when its sync finishes or the
 * outbox changes, and the cache forgets everything when the configuration is
 * replaced. A store that is locked or closed counts nothing. Loop thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/pop3/rules.h"
#include "daemon/service-private.h"
#include "store/query.h"
#include "util/log.h"

typedef struct ServiceCountsEntry {
        bool valid;
        uint32_t unread, total, outbox;
} ServiceCountsEntry;

struct ServiceCounts {
        const Config *config; /* the configuration the entries are indexed by */
        size_t n;
        ServiceCountsEntry v[];
};

bool service_account_syncable(Daemon *d, const char *account) {
        SchedAccountInfo info;

        return d->scheduler && scheduler_get_info(d->scheduler, account, &info) == 0 &&
               info.state != SCHED_STATE_DISABLED;
}

/* ---- counts ---- */

/* The cache for the running configuration, made anew when it changed; NULL on OOM. */
static struct ServiceCounts *counts_get(Daemon *d) {
        size_t n = d->config->n_accounts;
        struct ServiceCounts *c = d->counts;

        if (c && c->config == d->config && c->n == n)
                return c;
        free(c);
        c = calloc(1, sizeof *c + n * sizeof c->v[0]);
        d->counts = c;
        if (!c)
                return NULL;
        c->config = d->config;
        c->n = n;
        return c;
}

static uint32_t clamp32(uint64_t v) {
        return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

void service_counts_fill(Daemon *d, size_t index, ServiceAccount *retp) {
        struct ServiceCounts *c;
        ServiceCountsEntry *e;
        uint64_t total = 0, unread = 0, outbox = 0;
        int r;

        if (!d->store || d->locked || !d->config || index >= d->config->n_accounts)
                return;
        c = counts_get(d);
        if (!c)
                return;
        e = &c->v[index];
        if (!e->valid) {
                const char *name = d->config->accounts[index].name;

                r = store_query_account_counts(d->store, name, &total, &unread);
                if (r == 0)
                        r = store_query_outbox_waiting(d->store, name, &outbox);
                if (r < 0) {
                        /* Shown as 0 and counted again next time; the store logs its own trouble. */
                        log_acct_warning(name, "counting messages: %s", strerror(-r));
                        return;
                }
                *e = (ServiceCountsEntry){
                        .valid = true, .unread = clamp32(unread), .total = clamp32(total), .outbox = clamp32(outbox)};
        }
        retp->unread = e->unread;
        retp->total = e->total;
        retp->outbox_size = e->outbox;
}

void service_counts_invalidate(Daemon *d, const char *account) {
        struct ServiceCounts *c = d->counts;

        if (!c || !d->config || c->config != d->config)
                return;
        for (size_t i = 0; i < c->n && i < d->config->n_accounts; i++)
                if (!account || strcmp(d->config->accounts[i].name, account) == 0)
                        c->v[i].valid = false;
}

/* ---- dry runs ---- */

typedef struct ServicePlan {
        ServicePlanFn cb;
        void *userdata;
} ServicePlan;

static const char *plan_action(const Pop3Decision *dec) {
        if (dec->delete)
                return "delete";
        if (dec->download)
                return "fetch";
        if (dec->download_why == POP3_WHY_SKIP_TOO_BIG)
                return "skip";
        return "keep";
}

static void plan_cb(int r, NetFailure failure, const char *error, const Pop3RuleMsg *msgs,
                    const Pop3Decision *decisions, size_t n, void *userdata) {
        ServicePlan *p = userdata;
        _cleanup_free_ ServicePlanItem *items = NULL;

        if (r < 0) {
                ServiceError e = r == -ECANCELED ? SERVICE_ERROR_BUSY : service_error_from_failure(failure);

                p->cb(e == SERVICE_ERROR_NONE ? SERVICE_ERROR_FAILED : e, error, NULL, 0, p->userdata);
                free(p);
                return;
        }
        items = calloc(n ? n : 1, sizeof *items);
        if (!items) {
                p->cb(SERVICE_ERROR_FAILED, "out of memory", NULL, 0, p->userdata);
                free(p);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                const Pop3Decision *dec = &decisions[i];
                const char *action = plan_action(dec);

                items[i] = (ServicePlanItem){
                        .uidl = msgs[i].uidl ? msgs[i].uidl : "",
                        .size = msgs[i].size,
                        .download = dec->download,
                        .delete = dec->delete,
                        .action = action,
                        .reason = pop3_why_to_string(strcmp(action, "fetch") == 0 || strcmp(action, "skip") == 0
                                                             ? dec->download_why
                                                             : dec->delete_why),
                        .download_reason = pop3_why_to_string(dec->download_why),
                        .delete_reason = pop3_why_to_string(dec->delete_why),
                };
        }
        p->cb(SERVICE_ERROR_NONE, "", items, n, p->userdata);
        free(p);
}

int service_fetch_plan(Daemon *d, const char *account, ServicePlanFn cb, void *userdata, char **errp) {
        const Account *a;
        ServicePlan *p;
        int r;

        *errp = NULL;
        if (d->locked)
                return service_fail(errp, SERVICE_ERROR_LOCKED, "the store is locked: run `tegami unlock` first");
        a = d->config ? config_find_account(d->config, account) : NULL;
        if (!a)
                return service_fail(errp, SERVICE_ERROR_NOT_FOUND, "no account \"%s\"", account);
        if (a->pop3.proto != SERVER_POP3)
                return service_fail(errp, SERVICE_ERROR_NOT_SUPPORTED,
                                    "account %s is not a POP3 account: a dry run shows POP3 retention", account);
        if (!d->scheduler)
                return service_fail(errp, SERVICE_ERROR_BUSY, "tegamid is not syncing accounts right now");
        p = malloc(sizeof *p);
        if (!p)
                return -ENOMEM;
        *p = (ServicePlan){.cb = cb, .userdata = userdata};
        r = scheduler_dry_run(d->scheduler, account, plan_cb, p);
        if (r == 0)
                return 0;
        free(p);
        switch (r) {
        case -ENOENT:
                return service_fail(errp, SERVICE_ERROR_NOT_SUPPORTED, "account %s is not synced by this tegamid",
                                    account);
        case -EBUSY:
                return service_fail(errp, SERVICE_ERROR_BUSY, "another dry run of account %s is already waiting",
                                    account);
        default:
                return service_fail(errp, SERVICE_ERROR_FAILED, "account %s: pop3: cannot start: %s", account,
                                    strerror(-r));
        }
}
