/*
 * Pending local changes: an append-only queue per account in one table,
 * ordered by id. Writes are StoreOps on the writer thread; listing is a
 * synchronous read on the loop thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/pending.h"
#include "store/store-private.h"

static void pending_change_clear(StorePendingChange *c) {
        free(c->keywords_add);
        free(c->keywords_remove);
        *c = (StorePendingChange){};
}

void store_pending_list_free(StorePendingChange *changes, size_t n_changes) {
        for (size_t i = 0; i < n_changes; i++)
                pending_change_clear(&changes[i]);
        free(changes);
}

typedef struct PendingOp {
        StoreOp op;
        StorePendingChange c;
        size_t n_ids;
        int64_t ids[];
} PendingOp;

static void pending_op_free(StoreOp *op) {
        PendingOp *p = (PendingOp *)op;

        pending_change_clear(&p->c);
        free(p);
}

static int pending_add_run(sqlite3 *db, void *userdata) {
        PendingOp *p = userdata;
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(db,
                          "INSERT INTO pending_changes (account_id, kind, folder_id, uid, target_folder_id,"
                          " flags_add, flags_remove, keywords_add, keywords_remove, cid, created)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, p->c.account_id);
        sqlite3_bind_int(st, 2, p->c.kind);
        sqlite3_bind_int64(st, 3, p->c.folder_id);
        sqlite3_bind_int64(st, 4, p->c.uid);
        sqlite3_bind_int64(st, 5, p->c.target_folder_id);
        sqlite3_bind_int64(st, 6, p->c.flags_add);
        sqlite3_bind_int64(st, 7, p->c.flags_remove);
        sqlite3_bind_text(st, 8, p->c.keywords_add, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, p->c.keywords_remove, -1, SQLITE_STATIC);
        store_bind_cid(st, 10, p->c.has_cid ? &p->c.cid : NULL);
        sqlite3_bind_int64(st, 11, p->c.created);
        r = store_step_done(st);
        if (r < 0)
                return r;
        p->op.id = sqlite3_last_insert_rowid(db);
        return 0;
}

int store_pending_add(Store *s, const StorePendingChange *change, StoreIdFn cb, void *userdata) {
        PendingOp *p;
        bool ok = true;

        if (change->kind < STORE_PENDING_FLAGS || change->kind > STORE_PENDING_APPEND)
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->op.free_fn = pending_op_free;
        p->c = *change;
        p->c.keywords_add = store_strdup(change->keywords_add, &ok);
        p->c.keywords_remove = store_strdup(change->keywords_remove, &ok);
        if (!ok) {
                store_op_free(&p->op);
                return -ENOMEM;
        }
        p->op.id_cb = cb;
        p->op.userdata = userdata;
        return store_op_submit(s, STORE_BULK, &p->op, pending_add_run);
}

static int pending_remove_run(sqlite3 *db, void *userdata) {
        PendingOp *p = userdata;
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(db, "DELETE FROM pending_changes WHERE id = ?", &st);
        if (r < 0)
                return r;
        p->op.id = 0;
        for (size_t i = 0; i < p->n_ids; i++) {
                sqlite3_reset(st);
                sqlite3_bind_int64(st, 1, p->ids[i]);
                r = store_step_done(st);
                if (r < 0)
                        return r;
                p->op.id += sqlite3_changes(db);
        }
        return 0;
}

int store_pending_remove(Store *s, const int64_t *ids, size_t n_ids, StoreIdFn cb, void *userdata) {
        PendingOp *p;

        if (n_ids > (SIZE_MAX - sizeof(*p)) / sizeof(int64_t))
                return -E2BIG;
        p = calloc(1, sizeof(*p) + n_ids * sizeof(int64_t));
        if (!p)
                return -ENOMEM;
        p->op.free_fn = pending_op_free;
        p->n_ids = n_ids;
        if (n_ids)
                memcpy(p->ids, ids, n_ids * sizeof(int64_t));
        p->op.id_cb = cb;
        p->op.userdata = userdata;
        return store_op_submit(s, STORE_BULK, &p->op, pending_remove_run);
}

int store_pending_list(Store *s, int64_t account_id, StorePendingChange **changesp, size_t *n_changesp) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        StorePendingChange *v = NULL;
        size_t n = 0;
        bool ok = true;
        int r, rc;

        r = store_prepare(s->read_db,
                          "SELECT id, account_id, kind, folder_id, uid, target_folder_id, flags_add, flags_remove,"
                          " keywords_add, keywords_remove, cid, created FROM pending_changes"
                          " WHERE account_id = ? ORDER BY id",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, account_id);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                StorePendingChange *nv = reallocarray(v, n + 1, sizeof(*v));
                if (!nv) {
                        store_pending_list_free(v, n);
                        return -ENOMEM;
                }
                v = nv;
                v[n] = (StorePendingChange){
                        .id = sqlite3_column_int64(st, 0),
                        .account_id = sqlite3_column_int64(st, 1),
                        .kind = (StorePendingKind)sqlite3_column_int(st, 2),
                        .folder_id = sqlite3_column_int64(st, 3),
                        .uid = (uint32_t)sqlite3_column_int64(st, 4),
                        .target_folder_id = sqlite3_column_int64(st, 5),
                        .flags_add = (uint32_t)sqlite3_column_int64(st, 6),
                        .flags_remove = (uint32_t)sqlite3_column_int64(st, 7),
                        .keywords_add = store_column_strdup(st, 8, &ok),
                        .keywords_remove = store_column_strdup(st, 9, &ok),
                        .created = sqlite3_column_int64(st, 11),
                };
                v[n].has_cid = store_column_cid(st, 10, &v[n].cid);
                n++;
        }
        if (rc != SQLITE_DONE || !ok) {
                store_pending_list_free(v, n);
                return ok ? store_db_errno(rc) : -ENOMEM;
        }
        *changesp = v;
        *n_changesp = n;
        return 0;
}
