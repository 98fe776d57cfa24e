/*
 * Streaming, content-addressed bodies.
 *
 * Writing. A StoreBodyWriter lives on the loop thread and fills a 64 KB
 * buffer; each full buffer becomes one writer job that inserts one
 * body_chunks row of a "staged" bodies row (cid still NULL). The content id is
 * a keyed BLAKE2b over the bytes, updated by the chunk jobs on the writer
 * thread, so the hashing costs the loop nothing; jobs run in submission order,
 * so the hash state needs no lock. The finish job hashes the last bytes and
 * either names the staged row with its cid or, when that content is already
 * stored, deletes the staged row (dedup). Staged rows left by a crash are
 * deleted at the next open.
 *
 * Most mail fits one buffer: then nothing is staged. The staged row is only
 * begun with the first full chunk, so a body that never filled one reaches
 * the writer whole, in its finish job, which hashes it, looks the cid up, and
 * inserts the named row and its one chunk (or nothing at all when the content
 * is stored already). That is one job and three statements instead of a
 * staged row that is inserted, verified and renamed: cheaper for the writer,
 * and it leaves no NULL cid to insert into and delete from the cid index.
 *
 * Memory stays bounded: the caller's bytes are copied only into chunk buffers
 * that wait for the writer, and append() says STORE_BODY_BACKLOG once more than
 * STORE_BODY_BACKLOG_MAX bytes wait, so a network reader can pause (like
 * uv_stream's write queue) until the drain callback.
 *
 * Reading. A StoreBodyReader fetches one chunk per read on the loop thread's
 * read connection, each in its own short read transaction, so a slow consumer
 * never pins a WAL snapshot. Bodies never change once named, so reading chunk by
 * chunk is consistent.
 */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "store/body.h"
#include "store/store-private.h"
#include "util/log.h"

typedef enum BodyJobKind {
        BODY_JOB_BEGIN,
        BODY_JOB_CHUNK,
        BODY_JOB_FINISH,
        BODY_JOB_FINISH_WHOLE, /* the whole body, no BEGIN before it */
        BODY_JOB_ABORT,
} BodyJobKind;

struct StoreBodyWriter {
        /* crypto_generichash_state wants 64-byte alignment; see body_writer_alloc(). */
        crypto_generichash_state hash; /* writer thread only */
        Store *store;

        /* Loop thread only. */
        uint8_t *buf;
        size_t n_buf, cap_buf;
        size_t queued;       /* bytes in jobs not yet completed */
        unsigned n_inflight; /* jobs not yet completed */
        bool begun;          /* the BEGIN job (a staged row) was submitted */
        bool backlogged, finishing;
        int error;
        StoreBodyDrainFn drain_cb;
        void *drain_userdata;
        StoreBodyFinishFn finish_cb;
        void *finish_userdata;

        /* Writer thread only (set by jobs, read by later jobs). */
        int64_t body_id;
        uint64_t n_chunks, size;
        StoreCid cid; /* result of the finish job, read by its done callback */
};

/* The first buffer of a body: small messages (most mail) never need a whole chunk. */
#define BODY_BUF_MIN 4096

typedef struct BodyJob {
        StoreBodyWriter *w;
        BodyJobKind kind;
        uint8_t *data; /* CHUNK, FINISH: the buffer handed over */
        size_t n;
} BodyJob;

uint64_t store_body_backlog(Store *s) {
        return s->body_queued;
}

int store_body_wait_drain(Store *s, StoreDrainFn cb, void *userdata) {
        StoreDrainWaiter *d;

        for (d = s->drain_waiters; d; d = d->next)
                if (d->cb == cb && d->userdata == userdata)
                        return 0;
        d = malloc(sizeof *d);
        if (!d)
                return -ENOMEM;
        *d = (StoreDrainWaiter){.next = s->drain_waiters, .cb = cb, .userdata = userdata};
        s->drain_waiters = d;
        return 0;
}

void store_body_cancel_drain(Store *s, StoreDrainFn cb, void *userdata) {
        for (StoreDrainWaiter **p = &s->drain_waiters; *p; p = &(*p)->next)
                if ((*p)->cb == cb && (*p)->userdata == userdata) {
                        StoreDrainWaiter *d = *p;

                        *p = d->next;
                        free(d);
                        return;
                }
}

/* The backlog went down: wake every waiter once it is at half the limit. */
static void store_drain_notify(Store *s) {
        StoreDrainWaiter *list;

        if (s->body_queued > STORE_BODY_BACKLOG_MAX / 2 || !s->drain_waiters)
                return;
        list = s->drain_waiters;
        s->drain_waiters = NULL; /* callbacks may wait again */
        while (list) {
                StoreDrainWaiter *d = list;

                list = d->next;
                d->cb(d->userdata);
                free(d);
        }
}

static void body_writer_free(StoreBodyWriter *w) {
        free(w->buf);
        sodium_memzero(&w->hash, sizeof(w->hash));
        free(w);
}

static int body_put_chunk(sqlite3 *db, int64_t body_id, uint64_t seq, const uint8_t *data, size_t n) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(db, "INSERT INTO body_chunks (body_id, seq, data) VALUES (?, ?, ?)", &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, body_id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
        sqlite3_bind_blob(st, 3, data, (int)n, SQLITE_STATIC);
        return store_step_done(st);
}

static int body_insert_chunk(sqlite3 *db, StoreBodyWriter *w, const uint8_t *data, size_t n) {
        int r;

        if (w->body_id <= 0)
                return -EIO; /* the begin job failed */
        crypto_generichash_update(&w->hash, data, n);
        r = body_put_chunk(db, w->body_id, w->n_chunks, data, n);
        if (r < 0)
                return r;
        w->n_chunks++;
        w->size += n;
        return 0;
}

/* Looks the cid up: 1 when stored already, 0 when not. */
static int body_find(sqlite3 *db, const StoreCid *cid) {
        _cleanup_reset_ sqlite3_stmt *find = NULL;
        int r, rc;

        r = store_prepare(db, "SELECT id FROM bodies WHERE cid = ?", &find);
        if (r < 0)
                return r;
        store_bind_cid(find, 1, cid);
        rc = sqlite3_step(find);
        if (rc == SQLITE_ROW)
                return 1;
        return rc == SQLITE_DONE ? 0 : store_db_errno(rc);
}

/* A body that came whole in its finish job: named row and chunk in one go, or nothing when stored already. */
static int body_finish_whole_run(sqlite3 *db, StoreBodyWriter *w, BodyJob *j) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r;

        crypto_generichash_update(&w->hash, j->data, j->n);
        crypto_generichash_final(&w->hash, w->cid.bytes, sizeof(w->cid.bytes));
        w->size = j->n;
        r = body_find(db, &w->cid);
        if (r != 0)
                return r < 0 ? r : 0;
        r = store_prepare(db, "INSERT INTO bodies (cid, size, n_chunks) VALUES (?, ?, ?)", &st);
        if (r < 0)
                return r;
        store_bind_cid(st, 1, &w->cid);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)j->n);
        sqlite3_bind_int64(st, 3, j->n > 0);
        r = store_step_done(st);
        if (r < 0)
                return r;
        return j->n > 0 ? body_put_chunk(db, sqlite3_last_insert_rowid(db), 0, j->data, j->n) : 0;
}

/* Checks that every chunk this writer inserted is still there: a group whose
 * commit failed after its jobs ran would otherwise leave a silent hole. */
static int body_verify(sqlite3 *db, StoreBodyWriter *w) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(db, "SELECT count(*), coalesce(sum(length(data)), 0) FROM body_chunks WHERE body_id = ?",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, w->body_id);
        if (sqlite3_step(st) != SQLITE_ROW)
                return -EIO;
        if ((uint64_t)sqlite3_column_int64(st, 0) != w->n_chunks || (uint64_t)sqlite3_column_int64(st, 1) != w->size) {
                log_error("store: body %" PRId64 " lost chunks while being written", w->body_id);
                return -EIO;
        }
        return 0;
}

static int body_finish_run(sqlite3 *db, StoreBodyWriter *w, BodyJob *j) {
        _cleanup_reset_ sqlite3_stmt *name = NULL, *drop = NULL;
        int r;

        if (j->n > 0) {
                r = body_insert_chunk(db, w, j->data, j->n);
                if (r < 0)
                        return r;
        }
        if (w->body_id <= 0)
                return -EIO;
        r = body_verify(db, w);
        if (r < 0)
                return r;
        crypto_generichash_final(&w->hash, w->cid.bytes, sizeof(w->cid.bytes));

        r = body_find(db, &w->cid);
        if (r < 0)
                return r;
        if (r > 0) {
                /* Stored already: the staged copy goes, chunks with it. */
                r = store_prepare(db, "DELETE FROM bodies WHERE id = ?", &drop);
                if (r < 0)
                        return r;
                sqlite3_bind_int64(drop, 1, w->body_id);
                return store_step_done(drop);
        }

        r = store_prepare(db, "UPDATE bodies SET cid = ?, size = ?, n_chunks = ? WHERE id = ?", &name);
        if (r < 0)
                return r;
        store_bind_cid(name, 1, &w->cid);
        sqlite3_bind_int64(name, 2, (sqlite3_int64)w->size);
        sqlite3_bind_int64(name, 3, (sqlite3_int64)w->n_chunks);
        sqlite3_bind_int64(name, 4, w->body_id);
        return store_step_done(name);
}

static int body_job_run(sqlite3 *db, void *userdata) {
        BodyJob *j = userdata;
        StoreBodyWriter *w = j->w;
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r;

        switch (j->kind) {
        case BODY_JOB_BEGIN:
                r = store_prepare(db, "INSERT INTO bodies (cid) VALUES (NULL)", &st);
                if (r < 0)
                        return r;
                r = store_step_done(st);
                if (r < 0)
                        return r;
                w->body_id = sqlite3_last_insert_rowid(db);
                return 0;
        case BODY_JOB_CHUNK:
                return body_insert_chunk(db, w, j->data, j->n);
        case BODY_JOB_FINISH:
                return body_finish_run(db, w, j);
        case BODY_JOB_FINISH_WHOLE:
                return body_finish_whole_run(db, w, j);
        case BODY_JOB_ABORT:
                if (w->body_id <= 0)
                        return 0;
                r = store_prepare(db, "DELETE FROM bodies WHERE id = ?", &st);
                if (r < 0)
                        return r;
                sqlite3_bind_int64(st, 1, w->body_id);
                return store_step_done(st);
        }
        return -EINVAL;
}

static void body_job_done(int r, void *userdata) {
        BodyJob *j = userdata;
        StoreBodyWriter *w = j->w;
        BodyJobKind kind = j->kind;

        w->queued -= j->n;
        w->store->body_queued -= j->n;
        w->n_inflight--;
        free(j->data);
        free(j);
        store_drain_notify(w->store);

        if (r < 0 && !w->error)
                w->error = r;

        switch (kind) {
        case BODY_JOB_BEGIN:
        case BODY_JOB_CHUNK:
                if (w->backlogged && !w->finishing && w->queued <= STORE_BODY_BACKLOG_MAX / 2) {
                        w->backlogged = false;
                        if (w->drain_cb)
                                w->drain_cb(w, w->drain_userdata);
                }
                return;
        case BODY_JOB_FINISH:
        case BODY_JOB_FINISH_WHOLE:
                /* The last job of this writer: jobs complete in order. */
                if (w->finish_cb)
                        w->finish_cb(w->error, w->error ? NULL : &w->cid, w->error ? 0 : w->size, w->finish_userdata);
                body_writer_free(w);
                return;
        case BODY_JOB_ABORT:
                body_writer_free(w);
                return;
        }
}

static int body_submit(StoreBodyWriter *w, BodyJobKind kind, uint8_t *data, size_t n) {
        BodyJob *j;
        int r;

        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        *j = (BodyJob){.w = w, .kind = kind, .data = data, .n = n};
        r = store_writer_submit(w->store->writer, STORE_BULK, body_job_run, body_job_done, j);
        if (r < 0) {
                free(j);
                return r;
        }
        w->queued += n;
        w->store->body_queued += n;
        w->n_inflight++;
        return 0;
}

int store_body_writer_new(Store *s, StoreBodyWriter **wp) {
        StoreBodyWriter *w;

        if (posix_memalign((void **)&w, 64, sizeof(*w)) != 0)
                return -ENOMEM;
        memset(w, 0, sizeof(*w));
        w->store = s;
        crypto_generichash_init(&w->hash, s->cid_key, 32, sizeof(w->cid.bytes));
        *wp = w; /* the staged row waits for a first full chunk */
        return 0;
}

void store_body_writer_set_drain(StoreBodyWriter *w, StoreBodyDrainFn cb, void *userdata) {
        w->drain_cb = cb;
        w->drain_userdata = userdata;
}

int store_body_writer_append(StoreBodyWriter *w, const void *data, size_t n) {
        const uint8_t *p = data;
        int r;

        if (w->finishing)
                return -EINVAL;
        if (w->error)
                return w->error;

        while (n > 0) {
                size_t k;

                if (w->n_buf == w->cap_buf) {
                        /* Grow by doubling up to one chunk: a 4 KB message holds 4 KB while it waits. */
                        size_t cap = w->cap_buf ? w->cap_buf * 2 : BODY_BUF_MIN;
                        uint8_t *b;

                        while (cap < STORE_BODY_CHUNK && cap - w->n_buf < n)
                                cap *= 2;
                        cap = cap < STORE_BODY_CHUNK ? cap : STORE_BODY_CHUNK;
                        b = realloc(w->buf, cap);
                        if (!b)
                                return (w->error = -ENOMEM);
                        w->buf = b;
                        w->cap_buf = cap;
                }
                k = w->cap_buf - w->n_buf;
                if (k > n)
                        k = n;
                memcpy(w->buf + w->n_buf, p, k);
                w->n_buf += k;
                p += k;
                n -= k;
                if (w->n_buf == STORE_BODY_CHUNK) {
                        if (!w->begun) {
                                r = body_submit(w, BODY_JOB_BEGIN, NULL, 0);
                                if (r < 0)
                                        return (w->error = r);
                                w->begun = true;
                        }
                        r = body_submit(w, BODY_JOB_CHUNK, w->buf, w->n_buf);
                        if (r < 0)
                                return (w->error = r);
                        w->buf = NULL;
                        w->n_buf = w->cap_buf = 0;
                }
        }
        if (w->queued > STORE_BODY_BACKLOG_MAX) {
                w->backlogged = true;
                return STORE_BODY_BACKLOG;
        }
        return 0;
}

int store_body_writer_finish(StoreBodyWriter *w, StoreBodyFinishFn cb, void *userdata) {
        int r;

        if (w->finishing)
                return -EINVAL;
        w->finishing = true;
        w->finish_cb = cb;
        w->finish_userdata = userdata;
        if (w->buf && w->n_buf < w->cap_buf) {
                /* It may wait a while behind other bodies: hold only what it needs. */
                uint8_t *b = realloc(w->buf, w->n_buf ? w->n_buf : 1);

                if (b) {
                        w->buf = b;
                        w->cap_buf = w->n_buf;
                }
        }
        r = body_submit(w, w->begun ? BODY_JOB_FINISH : BODY_JOB_FINISH_WHOLE, w->buf, w->n_buf);
        if (r < 0) {
                /* Earlier jobs still point at w: let an abort job free it, or
                 * leak the staged row to the next open's clean-up. */
                w->finish_cb = NULL;
                if (body_submit(w, BODY_JOB_ABORT, NULL, 0) < 0 && w->n_inflight == 0)
                        body_writer_free(w);
                return r;
        }
        w->buf = NULL;
        w->n_buf = 0;
        return 0;
}

void store_body_writer_abort(StoreBodyWriter *w) {
        if (!w || w->finishing)
                return;
        w->finishing = true;
        free(TAKE_PTR(w->buf));
        w->n_buf = 0;
        if (!w->begun && w->n_inflight == 0) {
                body_writer_free(w); /* nothing reached the writer */
                return;
        }
        if (body_submit(w, BODY_JOB_ABORT, NULL, 0) < 0 && w->n_inflight == 0)
                body_writer_free(w);
        /* Otherwise, with submission refused and jobs in flight, the store is
         * closing; w leaks rather than be freed under those jobs. */
}

int store_body_lookup(Store *s, const StoreCid *cid, uint64_t *sizep) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r, rc;

        r = store_prepare(s->read_db, "SELECT size FROM bodies WHERE cid = ?", &st);
        if (r < 0)
                return r;
        store_bind_cid(st, 1, cid);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_db_errno(rc);
        if (sizep)
                *sizep = (uint64_t)sqlite3_column_int64(st, 0);
        return 0;
}

struct StoreBodyReader {
        sqlite3_stmt *st; /* own statement: several readers may be open at once */
        int64_t body_id;
        uint64_t size, n_chunks, next, n_read;
};

int store_body_reader_new(Store *s, const StoreCid *cid, StoreBodyReader **rp) {
        _cleanup_reset_ sqlite3_stmt *find = NULL;
        StoreBodyReader *rd;
        int r, rc;

        r = store_prepare(s->read_db, "SELECT id, size, n_chunks FROM bodies WHERE cid = ?", &find);
        if (r < 0)
                return r;
        store_bind_cid(find, 1, cid);
        rc = sqlite3_step(find);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_db_errno(rc);

        rd = calloc(1, sizeof(*rd));
        if (!rd)
                return -ENOMEM;
        rd->body_id = sqlite3_column_int64(find, 0);
        rd->size = (uint64_t)sqlite3_column_int64(find, 1);
        rd->n_chunks = (uint64_t)sqlite3_column_int64(find, 2);
        rc = sqlite3_prepare_v2(s->read_db, "SELECT data FROM body_chunks WHERE body_id = ? AND seq = ?", -1, &rd->st,
                                NULL);
        if (rc != SQLITE_OK) {
                free(rd);
                return store_db_errno(rc);
        }
        *rp = rd;
        return 0;
}

uint64_t store_body_reader_get_size(StoreBodyReader *r) {
        return r->size;
}

int store_body_reader_read(StoreBodyReader *r, const void **datap, size_t *np) {
        int rc, n;

        sqlite3_reset(r->st);
        if (r->next >= r->n_chunks) {
                *datap = NULL;
                *np = 0;
                return r->n_read == r->size ? 0 : -EBADMSG;
        }
        sqlite3_bind_int64(r->st, 1, r->body_id);
        sqlite3_bind_int64(r->st, 2, (sqlite3_int64)r->next);
        rc = sqlite3_step(r->st);
        if (rc == SQLITE_DONE)
                return -EBADMSG;
        if (rc != SQLITE_ROW)
                return store_db_errno(rc);
        n = sqlite3_column_bytes(r->st, 0);
        *datap = sqlite3_column_blob(r->st, 0);
        if (n <= 0 || (uint64_t)n > r->size - r->n_read || !*datap)
                return -EBADMSG;
        *np = (size_t)n;
        r->n_read += (uint64_t)n;
        r->next++;
        return 0;
}

StoreBodyReader *store_body_reader_free(StoreBodyReader *r) {
        if (r) {
                sqlite3_finalize(r->st);
                free(r);
        }
        return NULL;
}

static int body_gc_run(sqlite3 *db, void *userdata) {
        StoreOp *op = userdata;
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(db,
                          "DELETE FROM bodies WHERE cid IS NOT NULL"
                          " AND cid NOT IN (SELECT cid FROM messages WHERE cid IS NOT NULL)"
                          " AND cid NOT IN (SELECT cid FROM pop3_messages WHERE cid IS NOT NULL)"
                          " AND cid NOT IN (SELECT cid FROM outbox)"
                          " AND cid NOT IN (SELECT cid FROM pending_changes WHERE cid IS NOT NULL)",
                          &st);
        if (r < 0)
                return r;
        r = store_step_done(st);
        if (r < 0)
                return r;
        op->id = sqlite3_changes(db);
        return 0;
}

int store_body_gc(Store *s, StoreIdFn cb, void *userdata) {
        StoreOp *op = calloc(1, sizeof(*op));

        if (!op)
                return -ENOMEM;
        op->id_cb = cb;
        op->userdata = userdata;
        return store_op_submit(s, STORE_BULK, op, body_gc_run);
}
