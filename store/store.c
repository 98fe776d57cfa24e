/*
 * The Store object: opening (migrations, the content-id key, clean-up of
 * bodies a crash left half-written), closing, accounts and folders, and the
 * plumbing every write operation shares.
 *
 * A Store owns two connections: the write connection, handed to the writer
 * thread at open and closed by it, and a read connection used synchronously on
 * the loop thread (WAL lets it read beside the writer without waiting). Writes
 * are StoreOps: a heap struct holding copies of the caller's arguments, run on
 * the writer thread and completed on the loop.
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "store/schema.h"
#include "store/store-private.h"
#include "util/log.h"
#include "util/macro.h"

/* Distinct SQL strings the store uses per thread stay well below this. */
#define STMT_CACHE_SIZE 128

typedef struct StmtCacheEntry {
        sqlite3 *db;
        const char *sql;
        sqlite3_stmt *st;
} StmtCacheEntry;

static _Thread_local StmtCacheEntry stmt_cache[STMT_CACHE_SIZE];
static _Thread_local unsigned stmt_cache_next;

int store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **stp) {
        StmtCacheEntry *e = NULL;
        int rc;

        for (size_t i = 0; i < STMT_CACHE_SIZE; i++) {
                if (stmt_cache[i].db == db && stmt_cache[i].sql == sql) {
                        *stp = stmt_cache[i].st;
                        return 0;
                }
                if (!e && !stmt_cache[i].db)
                        e = &stmt_cache[i];
        }
        if (!e) {
                /* Full: recycle round-robin. Never reached with today's SQL. */
                e = &stmt_cache[stmt_cache_next++ % STMT_CACHE_SIZE];
                sqlite3_finalize(e->st);
                *e = (StmtCacheEntry){};
        }
        rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &e->st, NULL);
        if (rc != SQLITE_OK) {
                log_error("store: cannot prepare \"%s\": %s", sql, sqlite3_errmsg(db));
                e->st = NULL;
                return store_db_errno(rc);
        }
        e->db = db;
        e->sql = sql;
        *stp = e->st;
        return 0;
}

void store_stmt_cache_drop(sqlite3 *db) {
        for (size_t i = 0; i < STMT_CACHE_SIZE; i++)
                if (stmt_cache[i].db == db) {
                        sqlite3_finalize(stmt_cache[i].st);
                        stmt_cache[i] = (StmtCacheEntry){};
                }
}

int store_step_done(sqlite3_stmt *st) {
        int rc;

        do
                rc = sqlite3_step(st);
        while (rc == SQLITE_ROW);
        if (rc != SQLITE_DONE) {
                sqlite3 *db = sqlite3_db_handle(st);
                log_debug("store: \"%s\": %s", sqlite3_sql(st), sqlite3_errmsg(db));
                return store_db_errno(rc);
        }
        return 0;
}

char *store_strdup(const char *s, bool *okp) {
        char *c;

        if (!s)
                return NULL;
        c = strdup(s);
        if (!c)
                *okp = false;
        return c;
}

char *store_column_strdup(sqlite3_stmt *st, int col, bool *okp) {
        return store_strdup((const char *)sqlite3_column_text(st, col), okp);
}

int store_bind_cid(sqlite3_stmt *st, int col, const StoreCid *cid) {
        if (!cid)
                return sqlite3_bind_null(st, col);
        return sqlite3_bind_blob(st, col, cid->bytes, sizeof(cid->bytes), SQLITE_STATIC);
}

bool store_column_cid(sqlite3_stmt *st, int col, StoreCid *cid) {
        const void *p = sqlite3_column_blob(st, col);

        if (!p || sqlite3_column_bytes(st, col) != (int)sizeof(cid->bytes))
                return false;
        memcpy(cid->bytes, p, sizeof(cid->bytes));
        return true;
}

void store_op_free(StoreOp *op) {
        if (!op)
                return;
        if (op->free_fn)
                op->free_fn(op);
        else
                free(op);
}

static void store_op_done(int r, void *userdata) {
        StoreOp *op = userdata;

        if (op->id_cb)
                op->id_cb(r, r < 0 ? 0 : op->id, op->userdata);
        else if (op->done_cb)
                op->done_cb(r, op->userdata);
        store_op_free(op);
}

int store_op_submit(Store *s, StoreDurability durability, StoreOp *op, StoreJobRunFn run) {
        int r;

        op->store = s;
        r = store_writer_submit(s->writer, durability, run, store_op_done, op);
        if (r < 0)
                store_op_free(op);
        return r;
}

int store_submit(Store *s, StoreDurability durability, StoreJobRunFn run, StoreJobDoneFn done, void *userdata) {
        return store_writer_submit(s->writer, durability, run, done, userdata);
}

void store_get_stats(Store *s, uint64_t *n_commitsp, uint64_t *n_jobsp, uint64_t *n_checkpointsp) {
        store_writer_get_stats(s->writer, n_commitsp, n_jobsp, n_checkpointsp);
}

/* Loads the content-id key from meta, creating it on first open. */
static int store_load_cid_key(sqlite3 *db, uint8_t key[32]) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int rc;

        rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE name = 'cid_key'", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_db_errno(rc);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                if (sqlite3_column_bytes(st, 0) != 32)
                        return -EBADMSG;
                memcpy(key, sqlite3_column_blob(st, 0), 32);
                return 0;
        }
        if (rc != SQLITE_DONE)
                return store_db_errno(rc);
        sqlite3_finalize(TAKE_PTR(st));

        randombytes_buf(key, 32);
        rc = sqlite3_prepare_v2(db, "INSERT INTO meta (name, value) VALUES ('cid_key', ?)", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_db_errno(rc);
        sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
        return store_step_done(st);
}

static void store_free(Store *s) {
        if (!s)
                return;
        if (s->read_db) {
                store_stmt_cache_drop(s->read_db);
                sqlite3_close(s->read_db);
        }
        while (s->drain_waiters) {
                struct StoreDrainWaiter *d = s->drain_waiters;

                s->drain_waiters = d->next;
                free(d);
        }
        sodium_free(s->cid_key);
        free(s);
}

int store_open(uv_loop_t *loop, const char *path, const uint8_t *key, Store **sp) {
        _cleanup_db_ sqlite3 *wdb = NULL;
        sqlite3 *cdb = NULL;
        Store *s;
        int r;

        /* Idempotent and thread-safe; sodium_malloc() and the hashes need it. */
        if (sodium_init() < 0)
                return -EIO;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->loop = loop;
        s->cid_key = sodium_malloc(32);
        if (!s->cid_key) {
                r = -ENOMEM;
                goto fail;
        }

        r = store_db_open(path, key, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, &wdb);
        if (r < 0)
                goto fail;
        r = store_schema_migrate(wdb);
        if (r < 0)
                goto fail;
        r = store_load_cid_key(wdb, s->cid_key);
        if (r < 0)
                goto fail;
        /* Bodies still without a cid were being streamed in when the last run
         * ended; their chunks go with them (ON DELETE CASCADE). */
        r = store_db_errno(sqlite3_exec(wdb, "DELETE FROM bodies WHERE cid IS NULL", NULL, NULL, NULL));
        if (r < 0)
                goto fail;

        r = store_db_open(path, key, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, &s->read_db);
        if (r < 0)
                goto fail;
        /* Reads are point lookups and short pages of lists: a small cache will do (memory target). */
        r = store_db_errno(sqlite3_exec(s->read_db, "PRAGMA query_only=ON; PRAGMA cache_size=-512", NULL, NULL, NULL));
        if (r < 0)
                goto fail;

        /* The checkpointer's own connection (see store/writer.c); without one
         * SQLite checkpoints on the writer thread, which still works. */
        r = store_db_open(path, key, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, &cdb);
        if (r < 0)
                log_warning("store: no checkpoint connection (%s): checkpoints run on the writer", strerror(-r));
        else /* it copies pages from the WAL into the database: it reuses almost nothing */
                (void)sqlite3_exec(cdb, "PRAGMA cache_size=-128", NULL, NULL, NULL);
        r = store_writer_new(loop, wdb, cdb, &s->writer);
        if (r < 0)
                goto fail;
        wdb = NULL; /* the writer thread owns it now */

        *sp = s;
        return 0;

fail:
        log_error("store: cannot open %s: %s", path, strerror(-r));
        store_free(s);
        return r;
}

static void store_writer_closed_cb(void *userdata) {
        Store *s = userdata;
        StoreClosedFn cb = s->closed_cb;
        void *cb_userdata = s->closed_userdata;

        store_free(s);
        if (cb)
                cb(cb_userdata);
}

void store_close(Store *s, StoreClosedFn cb, void *userdata) {
        s->closed_cb = cb;
        s->closed_userdata = userdata;
        store_writer_close(s->writer, store_writer_closed_cb, s);
}

/* Accounts. */

typedef struct AccountOp {
        StoreOp op;
        char name[];
} AccountOp;

static int account_upsert_run(sqlite3 *db, void *userdata) {
        AccountOp *a = userdata;
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r, rc;

        /* DO UPDATE (a no-op) rather than DO NOTHING so RETURNING gives the id
         * of an existing row too. */
        r = store_prepare(db,
                          "INSERT INTO accounts (name) VALUES (?) "
                          "ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return store_db_errno(rc) ?: -EIO;
        a->op.id = sqlite3_column_int64(st, 0);
        return store_step_done(st);
}

int store_account_upsert(Store *s, const char *name, StoreIdFn cb, void *userdata) {
        size_t n = strlen(name);
        AccountOp *a;

        a = calloc(1, sizeof(*a) + n + 1);
        if (!a)
                return -ENOMEM;
        memcpy(a->name, name, n + 1);
        a->op.id_cb = cb;
        a->op.userdata = userdata;
        return store_op_submit(s, STORE_BULK, &a->op, account_upsert_run);
}

void store_account_list_free(StoreAccount *accounts, size_t n_accounts) {
        for (size_t i = 0; i < n_accounts; i++)
                free(accounts[i].name);
        free(accounts);
}

int store_account_list(Store *s, StoreAccount **accountsp, size_t *n_accountsp) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        StoreAccount *v = NULL;
        size_t n = 0;
        bool ok = true;
        int r, rc;

        r = store_prepare(s->read_db, "SELECT id, name FROM accounts ORDER BY id", &st);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                StoreAccount *nv = reallocarray(v, n + 1, sizeof(*v));
                if (!nv) {
                        store_account_list_free(v, n);
                        return -ENOMEM;
                }
                v = nv;
                v[n++] = (StoreAccount){.id = sqlite3_column_int64(st, 0), .name = store_column_strdup(st, 1, &ok)};
        }
        if (rc != SQLITE_DONE || !ok) {
                store_account_list_free(v, n);
                return ok ? store_db_errno(rc) : -ENOMEM;
        }
        *accountsp = v;
        *n_accountsp = n;
        return 0;
}

/* Folders. */

typedef struct FolderOp {
        StoreOp op;
        StoreFolder f;
} FolderOp;

static void folder_op_free(StoreOp *op) {
        FolderOp *f = (FolderOp *)op;
        free(f->f.name);
        free(f);
}

static int folder_upsert_run(sqlite3 *db, void *userdata) {
        FolderOp *f = userdata;
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        char delim[2] = {f->f.delimiter, 0};
        int r, rc;

        r = store_prepare(db,
                          "INSERT INTO folders (account_id, name, delimiter, role, uidvalidity, uidnext,"
                          " highestmodseq, subscribed) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                          "ON CONFLICT (account_id, name) DO UPDATE SET delimiter = excluded.delimiter,"
                          " role = excluded.role, uidvalidity = excluded.uidvalidity,"
                          " uidnext = excluded.uidnext, highestmodseq = excluded.highestmodseq,"
                          " subscribed = excluded.subscribed RETURNING id",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, f->f.account_id);
        sqlite3_bind_text(st, 2, f->f.name, -1, SQLITE_STATIC);
        if (f->f.delimiter)
                sqlite3_bind_text(st, 3, delim, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 4, f->f.role);
        sqlite3_bind_int64(st, 5, f->f.uidvalidity);
        sqlite3_bind_int64(st, 6, f->f.uidnext);
        sqlite3_bind_int64(st, 7, (sqlite3_int64)f->f.highestmodseq);
        sqlite3_bind_int(st, 8, f->f.subscribed);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return store_db_errno(rc) ?: -EIO;
        f->op.id = sqlite3_column_int64(st, 0);
        return store_step_done(st);
}

int store_folder_upsert(Store *s, const StoreFolder *folder, StoreIdFn cb, void *userdata) {
        FolderOp *f;
        bool ok = true;

        if (!folder->name)
                return -EINVAL;
        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->op.free_fn = folder_op_free;
        f->op.id_cb = cb;
        f->op.userdata = userdata;
        f->f = *folder;
        f->f.name = store_strdup(folder->name, &ok);
        if (!ok) {
                store_op_free(&f->op);
                return -ENOMEM;
        }
        return store_op_submit(s, STORE_BULK, &f->op, folder_upsert_run);
}

static int folder_delete_run(sqlite3 *db, void *userdata) {
        StoreOp *op = userdata;
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(db, "DELETE FROM folders WHERE id = ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, op->id);
        r = store_step_done(st);
        if (r < 0)
                return r;
        return sqlite3_changes(db) > 0 ? 0 : -ENOENT;
}

int store_folder_delete(Store *s, int64_t folder_id, StoreDoneFn cb, void *userdata) {
        StoreOp *op = calloc(1, sizeof(*op));

        if (!op)
                return -ENOMEM;
        op->id = folder_id;
        op->done_cb = cb;
        op->userdata = userdata;
        return store_op_submit(s, STORE_BULK, op, folder_delete_run);
}

void store_folder_list_free(StoreFolder *folders, size_t n_folders) {
        for (size_t i = 0; i < n_folders; i++)
                free(folders[i].name);
        free(folders);
}

int store_folder_list(Store *s, int64_t account_id, StoreFolder **foldersp, size_t *n_foldersp) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        StoreFolder *v = NULL;
        size_t n = 0;
        bool ok = true;
        int r, rc;

        r = store_prepare(s->read_db,
                          "SELECT id, account_id, name, delimiter, role, uidvalidity, uidnext, highestmodseq,"
                          " subscribed FROM folders WHERE account_id = ? ORDER BY name",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, account_id);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *delim = (const char *)sqlite3_column_text(st, 3);
                StoreFolder *nv = reallocarray(v, n + 1, sizeof(*v));
                if (!nv) {
                        store_folder_list_free(v, n);
                        return -ENOMEM;
                }
                v = nv;
                v[n++] = (StoreFolder){
                        .id = sqlite3_column_int64(st, 0),
                        .account_id = sqlite3_column_int64(st, 1),
                        .name = store_column_strdup(st, 2, &ok),
                        .delimiter = delim ? delim[0] : '\0',
                        .role = (StoreFolderRole)sqlite3_column_int(st, 4),
                        .uidvalidity = (uint32_t)sqlite3_column_int64(st, 5),
                        .uidnext = (uint32_t)sqlite3_column_int64(st, 6),
                        .highestmodseq = (uint64_t)sqlite3_column_int64(st, 7),
                        .subscribed = sqlite3_column_int(st, 8) != 0,
                };
        }
        if (rc != SQLITE_DONE || !ok) {
                store_folder_list_free(v, n);
                return ok ? store_db_errno(rc) : -ENOMEM;
        }
        *foldersp = v;
        *n_foldersp = n;
        return 0;
}
