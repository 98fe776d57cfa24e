/*
 * The search indexer (see indexer.h). A run is a chain of batches: list up to
 * MIME_INDEXER_BATCH pending messages on the read connection (fewer once their
 * text reaches MIME_INDEXER_BATCH_BYTES), read and parse each body here on the
 * loop thread (at most MIME_INDEXER_BODY_MAX bytes of it,
 * so memory stays bounded whatever the message size), submit one writer job,
 * and in its completion either start the next batch or end the run. A message
 * whose body cannot be read or parsed is still written (envelope only), so a
 * broken message never stalls the queue. The indexer owns its state; the
 * store is borrowed.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/mime/indexer.h"
#include "daemon/mime/text.h"
#include "store/body.h"
#include "store/search.h"
#include "util/log.h"

struct MimeIndexer {
        Store *store;
        MimeIndexerIdleFn idle_cb;
        void *userdata;
        bool running, stopping;
        unsigned n_in_flight;  /* writer jobs submitted, not completed */
        int64_t last_id;       /* highest id submitted in this run */
        int error;             /* the first failure of this run */
        const bool *stop_flag; /* the owner's "stopping", read between batches; may be NULL */
        uint64_t n_done;       /* this run */
};

int mime_indexer_new(Store *s, MimeIndexerIdleFn idle_cb, void *userdata, MimeIndexer **ixp) {
        MimeIndexer *ix = calloc(1, sizeof(*ix));

        if (!ix)
                return -ENOMEM;
        *ix = (MimeIndexer){.store = s, .idle_cb = idle_cb, .userdata = userdata};
        *ixp = ix;
        return 0;
}

MimeIndexer *mime_indexer_free(MimeIndexer *ix) {
        if (ix) {
                assert(!ix->running);
                free(ix);
        }
        return NULL;
}

void mime_indexer_set_stop_flag(MimeIndexer *ix, const bool *flag) {
        ix->stop_flag = flag;
}

bool mime_indexer_running(const MimeIndexer *ix) {
        return ix->running;
}

void mime_indexer_stop(MimeIndexer *ix) {
        ix->stopping = true;
}

int mime_indexer_extract(const void *raw, size_t n, char **bodyp, bool *has_attachmentp) {
        MimeMessage *msg = NULL;
        size_t len;
        int r;

        *bodyp = NULL;
        *has_attachmentp = false;
        r = mime_message_new_data(raw, n, &msg);
        if (r != 0)
                return r < 0 ? r : 0; /* not a message: envelope only */
        r = mime_message_text(msg, MIME_TEXT_MAX, bodyp, &len);
        *has_attachmentp = mime_message_has_attachment(msg); /* not listed: that would decode them */
        mime_message_free(msg);
        return r;
}

/* Reads at most MIME_INDEXER_BODY_MAX bytes of the body cid into a malloc()ed buffer. */
static int read_body(Store *s, const StoreCid *cid, char **bufp, size_t *lenp) {
        StoreBodyReader *rd = NULL;
        size_t len = 0, cap;
        char *buf;
        int r;

        *bufp = NULL;
        *lenp = 0;
        r = store_body_reader_new(s, cid, &rd);
        if (r < 0)
                return r;
        cap = store_body_reader_get_size(rd);
        cap = cap < MIME_INDEXER_BODY_MAX ? cap : MIME_INDEXER_BODY_MAX;
        buf = malloc(cap + 1);
        if (!buf) {
                store_body_reader_free(rd);
                return -ENOMEM;
        }
        while (len < cap) {
                const void *data;
                size_t n;

                r = store_body_reader_read(rd, &data, &n);
                if (r < 0 || n == 0)
                        break;
                n = n < cap - len ? n : cap - len;
                memcpy(buf + len, data, n);
                len += n;
        }
        store_body_reader_free(rd);
        if (r < 0) {
                free(buf);
                return r;
        }
        *bufp = buf;
        *lenp = len;
        return 0;
}

static void run_end(MimeIndexer *ix, int r) {
        uint64_t n = ix->n_done;

        ix->running = false;
        ix->stopping = false;
        ix->n_done = 0;
        if (r < 0)
                log_error("search: indexing stopped: %s", strerror(-r));
        else
                log_debug("search: %llu messages indexed", (unsigned long long)n);
        ix->idle_cb(r, n, ix->userdata); /* may free ix or close the store: nothing after this */
}

static void batch(MimeIndexer *ix);
/* Lists, parses and submits one batch; false when nothing is pending or it failed (ix->error). */
static bool batch_one(MimeIndexer *ix);

static void put_done_cb(int r, void *userdata) {
        MimeIndexer *ix = userdata;

        ix->n_in_flight--;
        if (r < 0 && ix->error == 0)
                ix->error = r;
        if (ix->error < 0 || ix->stopping || (ix->stop_flag && *ix->stop_flag)) {
                if (ix->n_in_flight == 0)
                        run_end(ix, ix->error);
                return;
        }
        batch(ix);
}

/* Keeps up to MIME_INDEXER_IN_FLIGHT batches at the writer, so parsing here overlaps
 * writing there (and the writer's group commit joins them); ends the run when
 * nothing is pending and nothing is in flight. */
static void batch(MimeIndexer *ix) {
        while (ix->n_in_flight < MIME_INDEXER_IN_FLIGHT && batch_one(ix))
                ;
        if (ix->n_in_flight == 0)
                run_end(ix, ix->error);
}

static bool batch_one(MimeIndexer *ix) {
        StoreSearchPending *pending = NULL;
        StoreSearchDoc *docs;
        size_t n = 0, text_bytes = 0;
        int r;

        r = store_search_pending(ix->store, ix->last_id, MIME_INDEXER_BATCH, &pending, &n);
        if (r < 0 || n == 0) {
                free(pending);
                if (r < 0 && ix->error == 0)
                        ix->error = r;
                return false;
        }
        docs = calloc(n, sizeof(*docs));
        if (!docs) {
                free(pending);
                ix->error = ix->error ?: -ENOMEM;
                return false;
        }
        for (size_t i = 0; i < n; i++) {
                char *raw = NULL;
                size_t len = 0;

                if (text_bytes >= MIME_INDEXER_BATCH_BYTES) { /* the rest waits for the next batch */
                        n = i;
                        break;
                }
                docs[i].id = pending[i].id;
                r = read_body(ix->store, &pending[i].cid, &raw, &len);
                if (r == 0)
                        r = mime_indexer_extract(raw, len, &docs[i].body, &docs[i].has_attachment);
                free(raw);
                if (r == -ENOMEM) {
                        free(pending);
                        for (size_t j = 0; j <= i; j++)
                                free(docs[j].body);
                        free(docs);
                        ix->error = ix->error ?: r;
                        return false;
                }
                if (r < 0)
                        log_warning("search: message %lld: body unreadable (%s), indexing its envelope only",
                                    (long long)pending[i].id, strerror(-r));
                text_bytes += docs[i].body ? strlen(docs[i].body) : 0;
        }
        ix->last_id = pending[n - 1].id;
        free(pending);
        ix->n_done += n;
        r = store_search_put(ix->store, docs, n, put_done_cb, ix);
        if (r < 0) {
                ix->error = ix->error ?: r;
                return false;
        }
        ix->n_in_flight++;
        return true;
}

bool mime_indexer_kick(MimeIndexer *ix) {
        if (ix->running)
                return false; /* each batch lists what is pending anew: the run will see the new messages */
        ix->running = true;
        ix->stopping = false;
        ix->n_done = 0;
        ix->last_id = 0;
        ix->error = 0;
        batch(ix);
        return true;
}
