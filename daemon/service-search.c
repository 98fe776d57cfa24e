/*
 * Search through the service API (see daemon/service-search.h). Searching is
 * a synchronous read on the loop thread (store/search.c); indexing is one
 * MimeIndexer (daemon/mime/indexer.h) per process, since a process runs one
 * daemon: it is bound to the store that is open when a run starts, and the
 * run holds that store open until it ends, so a closing daemon waits for the
 * batch in flight and no longer (the indexer checks d->stopping between
 * batches).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/mime/indexer.h"
#include "daemon/service-private.h"
#include "daemon/service-search.h"
#include "store/query.h"
#include "store/search.h"
#include "util/log.h"

static struct {
        MimeIndexer *ix;
        Store *store; /* what ix was made for */
        Daemon *d;
} search;

static void indexer_idle_cb(int r, uint64_t n, void *userdata) {
        Daemon *d = userdata;

        if (n > 0 || r < 0)
                log_info("search: %llu messages indexed%s", (unsigned long long)n, r < 0 ? " before a failure" : "");
        daemon_store_release(d); /* may close the store */
}

void service_search_kick(Daemon *d) {
        /* --once only syncs: search is served by a running tegamid, which catches up when it starts. */
        if (!d->store || d->stopping || d->locked || d->once)
                return;
        if (search.ix && search.store != d->store) {
                if (mime_indexer_running(search.ix))
                        return; /* still on the old store, which its hold keeps open: cannot be */
                search.ix = mime_indexer_free(search.ix);
        }
        if (!search.ix) {
                if (mime_indexer_new(d->store, indexer_idle_cb, d, &search.ix) < 0) {
                        log_error("search: cannot start the indexer: out of memory");
                        return;
                }
                search.store = d->store;
                search.d = d;
        }
        mime_indexer_set_stop_flag(search.ix, &d->stopping);
        daemon_store_hold(d); /* released by indexer_idle_cb */
        if (!mime_indexer_kick(search.ix))
                daemon_store_release(d); /* a run is going: it holds the store already */
}

uint64_t service_search_pending(Daemon *d) {
        uint64_t n = 0;

        if (d->store && !d->stopping)
                (void)store_search_count_pending(d->store, &n);
        return n;
}

/* Appends ` op:"value"` to *q; INVALID_ARGS for a value the query language cannot quote. */
static int narrow(char **q, const char *op, const char *value, char **errp) {
        char *n;

        if (!value || !*value)
                return 0;
        if (strchr(value, '"'))
                return service_fail(errp, SERVICE_ERROR_INVALID_ARGS, "%s name with a double quote", op);
        if (asprintf(&n, "%s %s:\"%s\"", *q, op, value) < 0)
                return -ENOMEM;
        free(*q);
        *q = n;
        return 0;
}

/* Fills *out from m (strings taken from m), with its account and folder names. */
static int summarize(Store *store, StoreMessage *m, ServiceMessage *out) {
        StoreFolder f = {};
        int r;

        r = store_query_folder_get(store, m->folder_id, &f);
        if (r < 0)
                return r;
        *out = (ServiceMessage){
                .id = m->id,
                .account = service_account_name(store, f.account_id),
                .folder = f.name,
                .date = m->env.date ? m->env.date : m->internal_date,
                .from = TAKE_PTR(m->env.from),
                .to = TAKE_PTR(m->env.to),
                .cc = TAKE_PTR(m->env.cc),
                .subject = TAKE_PTR(m->env.subject),
                .message_id = TAKE_PTR(m->env.message_id),
                .flags = m->flags,
                .keywords = TAKE_PTR(m->keywords),
                .size = m->size,
        };
        if (!out->account) {
                service_message_clear(out);
                return -ENOMEM;
        }
        return 0;
}

int service_search(Daemon *d, const char *query, const char *account, const char *folder, uint64_t offset, size_t limit,
                   ServiceMessage **msgsp, size_t *n_msgsp, char **errp) {
        _cleanup_free_ char *q = NULL, *qerr = NULL;
        StoreMessage *msgs = NULL;
        ServiceMessage *out;
        Store *store;
        size_t n = 0;
        int r;

        *msgsp = NULL;
        *n_msgsp = 0;
        r = service_store(d, &store, errp);
        if (r != 0)
                return r;
        q = strdup(query);
        if (!q)
                return -ENOMEM;
        r = narrow(&q, "account", account, errp);
        if (r == 0)
                r = narrow(&q, "folder", folder, errp);
        if (r != 0)
                return r;
        r = store_search(store, q, offset, limit, &msgs, &n, &qerr);
        if (r == STORE_SEARCH_E_QUERY)
                return service_fail(errp, SERVICE_ERROR_INVALID_ARGS, "query: %s", qerr ? qerr : "does not parse");
        if (r < 0)
                return service_store_error(r, "searching", errp);
        out = calloc(n ? n : 1, sizeof *out);
        for (size_t i = 0; out && i < n; i++)
                if ((r = summarize(store, &msgs[i], &out[i])) < 0) {
                        service_message_list_free(out, i);
                        out = NULL;
                }
        store_message_list_free(msgs, n);
        if (!out)
                return service_store_error(r < 0 ? r : -ENOMEM, "searching", errp);
        *msgsp = out;
        *n_msgsp = n;
        return 0;
}
