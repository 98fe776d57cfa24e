/*
 * The outbox. Every state change is a barrier commit: these rows decide
 * whether a message may be sent, and a lost transition could mean a message
 * sent twice or never. There are few of them, so the fsyncs cost little.
 * Recipients are kept as one text column, one address per line.
 *
 * Writes run on the writer thread as StoreOps; listing reads on the loop
 * thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/outbox.h"
#include "store/store-private.h"

#define OUTBOX_COLUMNS "id, account_id, mail_from, rcpts, cid, state, attempts, next_attempt, last_reply, created"

static void outbox_item_clear(StoreOutboxItem *item) {
        free(item->mail_from);
        for (size_t i = 0; i < item->n_rcpts; i++)
                free(item->rcpts[i]);
        free(item->rcpts);
        free(item->last_reply);
        *item = (StoreOutboxItem){};
}

StoreOutboxItem *store_outbox_item_free(StoreOutboxItem *item) {
        if (item) {
                outbox_item_clear(item);
                free(item);
        }
        return NULL;
}

void store_outbox_list_free(StoreOutboxItem *items, size_t n_items) {
        for (size_t i = 0; i < n_items; i++)
                outbox_item_clear(&items[i]);
        free(items);
}

/* Splits the newline-separated recipients column. */
static int outbox_split_rcpts(const char *text, char ***rcptsp, size_t *np) {
        char **v = NULL;
        size_t n = 0;

        while (text && *text) {
                const char *end = strchrnul(text, '\n');
                char **nv = reallocarray(v, n + 1, sizeof(*v));
                if (!nv)
                        goto oom;
                v = nv;
                v[n] = strndup(text, (size_t)(end - text));
                if (!v[n])
                        goto oom;
                n++;
                text = *end ? end + 1 : end;
        }
        *rcptsp = v;
        *np = n;
        return 0;
oom:
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
        return -ENOMEM;
}

static int outbox_from_row(sqlite3_stmt *st, StoreOutboxItem *item) {
        bool ok = true;
        int r;

        *item = (StoreOutboxItem){
                .id = sqlite3_column_int64(st, 0),
                .account_id = sqlite3_column_int64(st, 1),
                .mail_from = store_column_strdup(st, 2, &ok),
                .state = (StoreOutboxState)sqlite3_column_int(st, 5),
                .attempts = (unsigned)sqlite3_column_int(st, 6),
                .next_attempt = sqlite3_column_int64(st, 7),
                .last_reply = store_column_strdup(st, 8, &ok),
                .created = sqlite3_column_int64(st, 9),
        };
        (void)store_column_cid(st, 4, &item->cid);
        r = outbox_split_rcpts((const char *)sqlite3_column_text(st, 3), &item->rcpts, &item->n_rcpts);
        if (r < 0 || !ok) {
                outbox_item_clear(item);
                return -ENOMEM;
        }
        return 0;
}

typedef struct OutboxOp {
        StoreOp op;
        int64_t account_id, now, next_attempt;
        StoreOutboxState state;
        char *mail_from, *rcpts, *last_reply;
        StoreCid cid;
        StoreOutboxClaimFn claim_cb;
        StoreOutboxItem *claimed;
} OutboxOp;

static void outbox_op_free(StoreOp *op) {
        OutboxOp *o = (OutboxOp *)op;

        free(o->mail_from);
        free(o->rcpts);
        free(o->last_reply);
        store_outbox_item_free(o->claimed);
        free(o);
}

static OutboxOp *outbox_op_new(void) {
        OutboxOp *o = calloc(1, sizeof(*o));

        if (o)
                o->op.free_fn = outbox_op_free;
        return o;
}

static int outbox_accept_run(sqlite3 *db, void *userdata) {
        OutboxOp *o = userdata;
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(db,
                          "INSERT INTO outbox (account_id, mail_from, rcpts, cid, state, next_attempt, created)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?)",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, o->account_id);
        sqlite3_bind_text(st, 2, o->mail_from, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, o->rcpts, -1, SQLITE_STATIC);
        store_bind_cid(st, 4, &o->cid);
        sqlite3_bind_int(st, 5, STORE_OUTBOX_QUEUED);
        sqlite3_bind_int64(st, 6, o->now);
        sqlite3_bind_int64(st, 7, o->now);
        r = store_step_done(st);
        if (r < 0)
                return r;
        o->op.id = sqlite3_last_insert_rowid(db);
        return 0;
}

int store_outbox_accept(Store *s, int64_t account_id, const char *mail_from, const char *const *rcpts, size_t n_rcpts,
                        const StoreCid *cid, int64_t now, StoreIdFn cb, void *userdata) {
        OutboxOp *o;
        size_t len = 1;
        char *p;

        if (!mail_from || n_rcpts == 0 || !cid)
                return -EINVAL;
        for (size_t i = 0; i < n_rcpts; i++) {
                if (!rcpts[i][0] || strchr(rcpts[i], '\n'))
                        return -EINVAL;
                len += strlen(rcpts[i]) + 1;
        }
        o = outbox_op_new();
        if (!o)
                return -ENOMEM;
        o->mail_from = strdup(mail_from);
        o->rcpts = p = malloc(len);
        if (!o->mail_from || !p) {
                store_op_free(&o->op);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n_rcpts; i++)
                p = stpcpy(stpcpy(p, rcpts[i]), i + 1 < n_rcpts ? "\n" : "");
        o->account_id = account_id;
        o->cid = *cid;
        o->now = now;
        o->op.id_cb = cb;
        o->op.userdata = userdata;
        return store_op_submit(s, STORE_BARRIER, &o->op, outbox_accept_run);
}

static int outbox_claim_run(sqlite3 *db, void *userdata) {
        OutboxOp *o = userdata;
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r, rc;

        /* One statement picks and marks the item, so two claims can never
         * take the same one. */
        r = store_prepare(db,
                          "UPDATE outbox SET state = ?1, attempts = attempts + 1 WHERE id = ("
                          " SELECT id FROM outbox WHERE state = ?2 AND next_attempt <= ?3"
                          " AND (?4 = 0 OR account_id = ?4) ORDER BY next_attempt, id LIMIT 1)"
                          " RETURNING " OUTBOX_COLUMNS,
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_int(st, 1, STORE_OUTBOX_SENDING);
        sqlite3_bind_int(st, 2, STORE_OUTBOX_QUEUED);
        sqlite3_bind_int64(st, 3, o->now);
        sqlite3_bind_int64(st, 4, o->account_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return 0;
        if (rc != SQLITE_ROW)
                return store_db_errno(rc);
        o->claimed = calloc(1, sizeof(*o->claimed));
        if (!o->claimed)
                return -ENOMEM;
        r = outbox_from_row(st, o->claimed);
        if (r < 0) {
                o->claimed = store_outbox_item_free(o->claimed);
                return r;
        }
        return store_step_done(st);
}

static void outbox_claim_done(int r, void *userdata) {
        OutboxOp *o = userdata;
        StoreOutboxItem *item = r < 0 ? NULL : TAKE_PTR(o->claimed);

        o->claim_cb(r, item, o->op.userdata);
        store_op_free(&o->op);
}

int store_outbox_claim(Store *s, int64_t account_id, int64_t now, StoreOutboxClaimFn cb, void *userdata) {
        OutboxOp *o;
        int r;

        o = outbox_op_new();
        if (!o)
                return -ENOMEM;
        o->account_id = account_id;
        o->now = now;
        o->claim_cb = cb;
        o->op.userdata = userdata;
        /* Not store_op_submit(): the callback has its own shape. */
        r = store_writer_submit(s->writer, STORE_BARRIER, outbox_claim_run, outbox_claim_done, o);
        if (r < 0)
                store_op_free(&o->op);
        return r;
}

static int outbox_set_state_run(sqlite3 *db, void *userdata) {
        OutboxOp *o = userdata;
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(db,
                          "UPDATE outbox SET state = ?, next_attempt = ?, last_reply = coalesce(?, last_reply)"
                          " WHERE id = ?",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_int(st, 1, o->state);
        sqlite3_bind_int64(st, 2, o->next_attempt);
        sqlite3_bind_text(st, 3, o->last_reply, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, o->op.id);
        r = store_step_done(st);
        if (r < 0)
                return r;
        return sqlite3_changes(db) > 0 ? 0 : -ENOENT;
}

int store_outbox_set_state(Store *s, int64_t id, StoreOutboxState state, int64_t next_attempt, const char *last_reply,
                           StoreDoneFn cb, void *userdata) {
        OutboxOp *o;
        bool ok = true;

        if (state < STORE_OUTBOX_QUEUED || state > STORE_OUTBOX_COMMITTING)
                return -EINVAL;
        o = outbox_op_new();
        if (!o)
                return -ENOMEM;
        o->op.id = id;
        o->state = state;
        o->next_attempt = next_attempt;
        o->last_reply = store_strdup(last_reply, &ok);
        if (!ok) {
                store_op_free(&o->op);
                return -ENOMEM;
        }
        o->op.done_cb = cb;
        o->op.userdata = userdata;
        return store_op_submit(s, STORE_BARRIER, &o->op, outbox_set_state_run);
}

static int outbox_recover_run(sqlite3 *db, void *userdata) {
        OutboxOp *o = userdata;
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(db, "UPDATE outbox SET state = ? WHERE state = ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_int(st, 1, STORE_OUTBOX_UNKNOWN);
        sqlite3_bind_int(st, 2, STORE_OUTBOX_COMMITTING);
        r = store_step_done(st);
        if (r < 0)
                return r;
        o->op.id = sqlite3_changes(db);
        /* Claimed but never past the commit point: nothing reached the server's queue. */
        sqlite3_reset(st);
        sqlite3_bind_int(st, 1, STORE_OUTBOX_QUEUED);
        sqlite3_bind_int(st, 2, STORE_OUTBOX_SENDING);
        return store_step_done(st);
}

int store_outbox_recover(Store *s, StoreIdFn cb, void *userdata) {
        OutboxOp *o = outbox_op_new();

        if (!o)
                return -ENOMEM;
        o->op.id_cb = cb;
        o->op.userdata = userdata;
        return store_op_submit(s, STORE_BARRIER, &o->op, outbox_recover_run);
}

int store_outbox_list(Store *s, StoreOutboxItem **itemsp, size_t *n_itemsp) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        StoreOutboxItem *v = NULL;
        size_t n = 0;
        int r, rc;

        r = store_prepare(s->read_db, "SELECT " OUTBOX_COLUMNS " FROM outbox ORDER BY id", &st);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                StoreOutboxItem *nv = reallocarray(v, n + 1, sizeof(*v));
                if (!nv) {
                        store_outbox_list_free(v, n);
                        return -ENOMEM;
                }
                v = nv;
                r = outbox_from_row(st, &v[n]);
                if (r < 0) {
                        store_outbox_list_free(v, n);
                        return r;
                }
                n++;
        }
        if (rc != SQLITE_DONE) {
                store_outbox_list_free(v, n);
                return store_db_errno(rc);
        }
        *itemsp = v;
        *n_itemsp = n;
        return 0;
}
