/*
 * Syncs of several IMAP accounts, one after the other (tegamid --once),
 * modelled on daemon/pop3/fetch-all.c: the SyncAll owns nothing but its
 * counters; each sync reports back here, its outcome is logged under its
 * account, and the next starts from that callback. Loop thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/imap/sync.h"
#include "util/log.h"

typedef struct SyncAll {
        uv_loop_t *loop;
        Store *store;
        const Config *config;
        const char *only;
        size_t next;
        const Account *current;
        size_t n_synced, n_failed;
        ImapSyncAllFn cb;
        void *userdata;
} SyncAll;

static bool wanted(const SyncAll *sa, const Account *a) {
        return a->imap.proto == SERVER_IMAP && (!sa->only || strcmp(a->name, sa->only) == 0);
}

static void sync_cb(const ImapSyncResult *res, void *userdata);

static bool start_next(SyncAll *sa) {
        while (sa->next < sa->config->n_accounts) {
                const Account *a = &sa->config->accounts[sa->next++];
                int r;

                if (!wanted(sa, a))
                        continue;
                sa->current = a;
                r = imap_sync_start(sa->loop, sa->store, a, NULL, sync_cb, sa);
                if (r == 0)
                        return true;
                log_acct_error(a->name, "imap: cannot start a sync: %s", strerror(-r));
                sa->n_synced++;
                sa->n_failed++;
        }
        return false;
}

static void sync_cb(const ImapSyncResult *res, void *userdata) {
        SyncAll *sa = userdata;
        char summary[512];

        imap_sync_result_summary(res, summary, sizeof(summary));
        sa->n_synced++;
        if (res->r < 0) {
                sa->n_failed++;
                log_acct_error(sa->current->name, "imap: sync failed: %s (%s)", res->error, summary);
        } else
                log_acct_info(sa->current->name, "imap: synced: %s", summary);
        if (start_next(sa))
                return;
        sa->cb(sa->n_synced, sa->n_failed, sa->userdata);
        free(sa);
}

int imap_sync_all_start(uv_loop_t *loop, Store *store, const Config *c, const char *only, ImapSyncAllFn cb,
                        void *userdata) {
        SyncAll *sa;
        size_t n = 0;

        for (size_t i = 0; i < c->n_accounts; i++)
                n += c->accounts[i].imap.proto == SERVER_IMAP && (!only || strcmp(c->accounts[i].name, only) == 0);
        if (n == 0)
                return -ENOENT;
        sa = calloc(1, sizeof(*sa));
        if (!sa)
                return -ENOMEM;
        *sa = (SyncAll){.loop = loop, .store = store, .config = c, .only = only, .cb = cb, .userdata = userdata};
        if (!start_next(sa)) {
                free(sa);
                return -EIO;
        }
        return 0;
}
