/*
 * POP3 state. One row per (account, UIDL). Writes are StoreOps on the writer
 * thread; listing is a synchronous read on the loop thread (an account's UIDL
 * list is small enough: tens of thousands of short rows at most).
 *
 * The download record and the message it describes are written by one job,
 * so after a crash either both exist or neither does: the message is fetched
 * again, or it is known and never fetched again — never stored twice.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/pop3.h"
#include "store/store-private.h"

void store_pop3_list_free(StorePop3Entry *entries, size_t n_entries) {
        for (size_t i = 0; i < n_entries; i++)
                free(entries[i].uidl);
        free(entries);
}

int store_pop3_list(Store *s, int64_t account_id, StorePop3State state, StorePop3Entry **entriesp, size_t *n_entriesp) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        StorePop3Entry *v = NULL;
        size_t n = 0;
        bool ok = true;
        int r, rc;

        r = store_prepare(s->read_db,
                          "SELECT id, account_id, uidl, first_seen, size, state, cid FROM pop3_messages"
                          " WHERE account_id = ?1 AND (?2 = 0 OR state = ?2) ORDER BY first_seen, id",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, account_id);
        sqlite3_bind_int(st, 2, (int)state);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                StorePop3Entry *nv = reallocarray(v, n + 1, sizeof(*v));
                if (!nv) {
                        store_pop3_list_free(v, n);
                        return -ENOMEM;
                }
                v = nv;
                v[n] = (StorePop3Entry){
                        .id = sqlite3_column_int64(st, 0),
                        .account_id = sqlite3_column_int64(st, 1),
                        .uidl = store_column_strdup(st, 2, &ok),
                        .first_seen = sqlite3_column_int64(st, 3),
                        .size = (uint64_t)sqlite3_column_int64(st, 4),
                        .state = (StorePop3State)sqlite3_column_int(st, 5),
                };
                v[n].has_cid = store_column_cid(st, 6, &v[n].cid);
                n++;
        }
        if (rc != SQLITE_DONE || !ok) {
                store_pop3_list_free(v, n);
                return ok ? store_db_errno(rc) : -ENOMEM;
        }
        *entriesp = v;
        *n_entriesp = n;
        return 0;
}

typedef struct Pop3Op {
        StoreOp op;
        int64_t account_id;
        uint64_t size;
        int64_t first_seen;
        StorePop3State state;
        bool has_cid, has_msg;
        StoreCid cid;
        StoreMessage msg;
        size_t n_uidls;
        char *uidls[]; /* one for mark_downloaded */
} Pop3Op;

static void pop3_op_free(StoreOp *op) {
        Pop3Op *p = (Pop3Op *)op;

        for (size_t i = 0; i < p->n_uidls; i++)
                free(p->uidls[i]);
        if (p->has_msg)
                store_message_clear(&p->msg);
        free(p);
}

static Pop3Op *pop3_op_new(int64_t account_id, const char *const *uidls, size_t n_uidls) {
        Pop3Op *p;

        if (n_uidls > (SIZE_MAX - sizeof(*p)) / sizeof(char *))
                return NULL;
        p = calloc(1, sizeof(*p) + n_uidls * sizeof(char *));
        if (!p)
                return NULL;
        p->op.free_fn = pop3_op_free;
        p->account_id = account_id;
        for (; p->n_uidls < n_uidls; p->n_uidls++) {
                p->uidls[p->n_uidls] = strdup(uidls[p->n_uidls]);
                if (!p->uidls[p->n_uidls]) {
                        pop3_op_free(&p->op);
                        return NULL;
                }
        }
        return p;
}

static int pop3_mark_downloaded_run(sqlite3 *db, void *userdata) {
        Pop3Op *p = userdata;
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int64_t message_id;
        int r, rc;

        if (p->has_msg) {
                r = store_message_insert_run(db, &p->msg, &message_id);
                if (r < 0)
                        return r;
        }
        r = store_prepare(db,
                          "INSERT INTO pop3_messages (account_id, uidl, first_seen, size, state, cid)"
                          " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, uidl) DO UPDATE SET"
                          " size = excluded.size, state = excluded.state, cid = coalesce(excluded.cid, cid)"
                          " RETURNING id",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, p->account_id);
        sqlite3_bind_text(st, 2, p->uidls[0], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, p->first_seen);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)p->size);
        sqlite3_bind_int(st, 5, STORE_POP3_DOWNLOADED);
        store_bind_cid(st, 6, p->has_cid ? &p->cid : NULL);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return store_db_errno(rc) ?: -EIO;
        p->op.id = p->has_msg ? message_id : sqlite3_column_int64(st, 0);
        return store_step_done(st);
}

int store_pop3_mark_downloaded(Store *s, int64_t account_id, const char *uidl, uint64_t size, int64_t first_seen,
                               const StoreCid *cid, const StoreMessage *msg, StoreDurability durability, StoreIdFn cb,
                               void *userdata) {
        Pop3Op *p;

        p = pop3_op_new(account_id, &uidl, 1);
        if (!p)
                return -ENOMEM;
        p->size = size;
        p->first_seen = first_seen;
        if (cid) {
                p->has_cid = true;
                p->cid = *cid;
        }
        if (msg) {
                if (store_message_copy(&p->msg, msg) < 0) {
                        pop3_op_free(&p->op);
                        return -ENOMEM;
                }
                p->has_msg = true;
        }
        p->op.id_cb = cb;
        p->op.userdata = userdata;
        return store_op_submit(s, durability, &p->op, pop3_mark_downloaded_run);
}

static int pop3_set_state_run(sqlite3 *db, void *userdata) {
        Pop3Op *p = userdata;
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(db,
                          "INSERT INTO pop3_messages (account_id, uidl, first_seen, state) VALUES (?, ?, ?, ?)"
                          " ON CONFLICT (account_id, uidl) DO UPDATE SET state = excluded.state"
                          " WHERE state != excluded.state",
                          &st);
        if (r < 0)
                return r;
        p->op.id = 0;
        for (size_t i = 0; i < p->n_uidls; i++) {
                sqlite3_reset(st);
                sqlite3_bind_int64(st, 1, p->account_id);
                sqlite3_bind_text(st, 2, p->uidls[i], -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 3, p->first_seen);
                sqlite3_bind_int(st, 4, p->state);
                r = store_step_done(st);
                if (r < 0)
                        return r;
                p->op.id += sqlite3_changes(db);
        }
        return 0;
}

int store_pop3_set_state(Store *s, int64_t account_id, const char *const *uidls, size_t n_uidls, StorePop3State state,
                         int64_t now, StoreDurability durability, StoreIdFn cb, void *userdata) {
        Pop3Op *p;

        if (state < STORE_POP3_DOWNLOADED || state > STORE_POP3_SKIPPED)
                return -EINVAL;
        p = pop3_op_new(account_id, uidls, n_uidls);
        if (!p)
                return -ENOMEM;
        p->state = state;
        p->first_seen = now;
        p->op.id_cb = cb;
        p->op.userdata = userdata;
        return store_op_submit(s, durability, &p->op, pop3_set_state_run);
}

static int pop3_forget_run(sqlite3 *db, void *userdata) {
        Pop3Op *p = userdata;
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(db, "DELETE FROM pop3_messages WHERE account_id = ? AND uidl = ? AND state = ?", &st);
        if (r < 0)
                return r;
        p->op.id = 0;
        for (size_t i = 0; i < p->n_uidls; i++) {
                sqlite3_reset(st);
                sqlite3_bind_int64(st, 1, p->account_id);
                sqlite3_bind_text(st, 2, p->uidls[i], -1, SQLITE_STATIC);
                sqlite3_bind_int(st, 3, STORE_POP3_DELETED);
                r = store_step_done(st);
                if (r < 0)
                        return r;
                p->op.id += sqlite3_changes(db);
        }
        return 0;
}

int store_pop3_forget_deleted(Store *s, int64_t account_id, const char *const *uidls, size_t n_uidls, StoreIdFn cb,
                              void *userdata) {
        Pop3Op *p = pop3_op_new(account_id, uidls, n_uidls);

        if (!p)
                return -ENOMEM;
        p->op.id_cb = cb;
        p->op.userdata = userdata;
        return store_op_submit(s, STORE_BULK, &p->op, pop3_forget_run);
}
