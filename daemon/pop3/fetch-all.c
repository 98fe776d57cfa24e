/*
 * Fetches of several POP3 accounts, one after the other (tegamid --once). The
 * FetchAll owns nothing but its counters; each fetch (fetch.c) reports back
 * here and the next starts from that callback, so at most one session runs.
 * Loop thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/pop3/fetch.h"
#include "util/log.h"

typedef struct FetchAll {
        uv_loop_t *loop;
        Store *store;
        const Config *config;
        const char *only;
        int64_t now;
        size_t next; /* index of the next account to look at */
        size_t n_fetched, n_failed;
        Pop3FetchAllFn cb;
        void *userdata;
} FetchAll;

/* True for the accounts this run fetches. */
static bool wanted(const FetchAll *fa, const Account *a) {
        return a->pop3.proto == SERVER_POP3 && (!fa->only || strcmp(a->name, fa->only) == 0);
}

static void fetch_cb(const Pop3FetchResult *res, void *userdata);

/* Starts the next wanted account's fetch; returns false when none is left (or none could start). */
static bool start_next(FetchAll *fa) {
        while (fa->next < fa->config->n_accounts) {
                const Account *a = &fa->config->accounts[fa->next++];
                int r;

                if (!wanted(fa, a))
                        continue;
                r = pop3_fetch_start(fa->loop, fa->store, a, fa->now, fetch_cb, fa);
                if (r == 0)
                        return true;
                log_acct_error(a->name, "pop3: cannot start a fetch: %s", strerror(-r));
                fa->n_fetched++;
                fa->n_failed++;
        }
        return false;
}

/* One account is done (its errors were logged by fetch.c): sum up, then the next. */
static void fetch_cb(const Pop3FetchResult *res, void *userdata) {
        FetchAll *fa = userdata;

        fa->n_fetched++;
        if (res->r < 0)
                fa->n_failed++;
        if (start_next(fa))
                return;
        fa->cb(fa->n_fetched, fa->n_failed, fa->userdata);
        free(fa);
}

int pop3_fetch_all_start(uv_loop_t *loop, Store *store, const Config *c, const char *only, int64_t now,
                         Pop3FetchAllFn cb, void *userdata) {
        FetchAll *fa;
        size_t n = 0;

        for (size_t i = 0; i < c->n_accounts; i++)
                n += c->accounts[i].pop3.proto == SERVER_POP3 && (!only || strcmp(c->accounts[i].name, only) == 0);
        if (n == 0)
                return -ENOENT;
        fa = calloc(1, sizeof *fa);
        if (!fa)
                return -ENOMEM;
        *fa = (FetchAll){
                .loop = loop, .store = store, .config = c, .only = only, .now = now, .cb = cb, .userdata = userdata};
        if (!start_next(fa)) {
                /* Not one fetch could start (each logged why): nothing follows. */
                free(fa);
                return -EIO;
        }
        return 0;
}
