/*
 * Messages: insert (an upsert on folder + UID), flag updates, expunge, and
 * paged listing. Writes are StoreOps run on the writer thread; listing reads
 * synchronously on the loop thread's read connection, a page at a time, keyed
 * by UID so a page costs the same wherever it starts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/message.h"
#include "store/store-private.h"

void store_message_clear(StoreMessage *m) {
        free(m->keywords);
        free(m->env.from);
        free(m->env.to);
        free(m->env.cc);
        free(m->env.subject);
        free(m->env.message_id);
        free(m->env.in_reply_to);
        free(m->env.references);
        *m = (StoreMessage){};
}

void store_message_list_free(StoreMessage *msgs, size_t n_msgs) {
        for (size_t i = 0; i < n_msgs; i++)
                store_message_clear(&msgs[i]);
        free(msgs);
}

int store_message_copy(StoreMessage *dst, const StoreMessage *src) {
        bool ok = true;

        *dst = *src;
        dst->keywords = store_strdup(src->keywords, &ok);
        dst->env.from = store_strdup(src->env.from, &ok);
        dst->env.to = store_strdup(src->env.to, &ok);
        dst->env.cc = store_strdup(src->env.cc, &ok);
        dst->env.subject = store_strdup(src->env.subject, &ok);
        dst->env.message_id = store_strdup(src->env.message_id, &ok);
        dst->env.in_reply_to = store_strdup(src->env.in_reply_to, &ok);
        dst->env.references = store_strdup(src->env.references, &ok);
        if (!ok) {
                store_message_clear(dst);
                return -ENOMEM;
        }
        return 0;
}

int store_message_insert_run(sqlite3 *db, const StoreMessage *m, int64_t *idp) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r, rc;

        r = store_prepare(db,
                          "INSERT INTO messages (folder_id, uid, modseq, flags, keywords, internal_date, size,"
                          " date, from_addr, to_addr, cc_addr, subject, message_id, in_reply_to, refs, cid)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                          " ON CONFLICT (folder_id, uid) DO UPDATE SET modseq = excluded.modseq,"
                          " flags = excluded.flags, keywords = excluded.keywords,"
                          " internal_date = excluded.internal_date, size = excluded.size, date = excluded.date,"
                          " from_addr = excluded.from_addr, to_addr = excluded.to_addr,"
                          " cc_addr = excluded.cc_addr, subject = excluded.subject,"
                          " message_id = excluded.message_id, in_reply_to = excluded.in_reply_to,"
                          " refs = excluded.refs, cid = coalesce(excluded.cid, cid)"
                          " RETURNING id",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, m->folder_id);
        sqlite3_bind_int64(st, 2, m->uid);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)m->modseq);
        sqlite3_bind_int64(st, 4, m->flags);
        sqlite3_bind_text(st, 5, m->keywords, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, m->internal_date);
        sqlite3_bind_int64(st, 7, (sqlite3_int64)m->size);
        sqlite3_bind_int64(st, 8, m->env.date);
        sqlite3_bind_text(st, 9, m->env.from, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 10, m->env.to, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 11, m->env.cc, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 12, m->env.subject, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 13, m->env.message_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 14, m->env.in_reply_to, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 15, m->env.references, -1, SQLITE_STATIC);
        store_bind_cid(st, 16, m->has_body ? &m->cid : NULL);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return store_db_errno(rc) ?: -EIO;
        *idp = sqlite3_column_int64(st, 0);
        return store_step_done(st);
}

typedef struct MessageOp {
        StoreOp op;
        StoreMessage m;
} MessageOp;

static void message_op_free(StoreOp *op) {
        MessageOp *m = (MessageOp *)op;
        store_message_clear(&m->m);
        free(m);
}

static int message_insert_run(sqlite3 *db, void *userdata) {
        MessageOp *m = userdata;
        return store_message_insert_run(db, &m->m, &m->op.id);
}

int store_message_insert(Store *s, const StoreMessage *m, StoreDurability durability, StoreIdFn cb, void *userdata) {
        MessageOp *op;
        int r;

        op = calloc(1, sizeof(*op));
        if (!op)
                return -ENOMEM;
        r = store_message_copy(&op->m, m);
        if (r < 0) {
                free(op);
                return r;
        }
        op->op.free_fn = message_op_free;
        op->op.id_cb = cb;
        op->op.userdata = userdata;
        return store_op_submit(s, durability, &op->op, message_insert_run);
}

static int message_set_flags_run(sqlite3 *db, void *userdata) {
        MessageOp *m = userdata;
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(db, "UPDATE messages SET flags = ?, keywords = ?, modseq = ? WHERE folder_id = ? AND uid = ?",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, m->m.flags);
        sqlite3_bind_text(st, 2, m->m.keywords, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)m->m.modseq);
        sqlite3_bind_int64(st, 4, m->m.folder_id);
        sqlite3_bind_int64(st, 5, m->m.uid);
        r = store_step_done(st);
        if (r < 0)
                return r;
        return sqlite3_changes(db) > 0 ? 0 : -ENOENT;
}

int store_message_set_flags(Store *s, int64_t folder_id, uint32_t uid, uint32_t flags, const char *keywords,
                            uint64_t modseq, StoreDoneFn cb, void *userdata) {
        MessageOp *op;
        bool ok = true;

        op = calloc(1, sizeof(*op));
        if (!op)
                return -ENOMEM;
        op->op.free_fn = message_op_free;
        op->op.done_cb = cb;
        op->op.userdata = userdata;
        op->m = (StoreMessage){.folder_id = folder_id, .uid = uid, .flags = flags, .modseq = modseq};
        op->m.keywords = store_strdup(keywords, &ok);
        if (!ok) {
                store_op_free(&op->op);
                return -ENOMEM;
        }
        return store_op_submit(s, STORE_BULK, &op->op, message_set_flags_run);
}

typedef struct ExpungeOp {
        StoreOp op;
        int64_t folder_id;
        size_t n_uids;
        uint32_t uids[];
} ExpungeOp;

static int message_expunge_run(sqlite3 *db, void *userdata) {
        ExpungeOp *e = userdata;
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(db, "DELETE FROM messages WHERE folder_id = ? AND uid = ?", &st);
        if (r < 0)
                return r;
        e->op.id = 0;
        for (size_t i = 0; i < e->n_uids; i++) {
                sqlite3_reset(st);
                sqlite3_bind_int64(st, 1, e->folder_id);
                sqlite3_bind_int64(st, 2, e->uids[i]);
                r = store_step_done(st);
                if (r < 0)
                        return r;
                e->op.id += sqlite3_changes(db);
        }
        return 0;
}

int store_message_expunge(Store *s, int64_t folder_id, const uint32_t *uids, size_t n_uids, StoreIdFn cb,
                          void *userdata) {
        ExpungeOp *e;

        if (n_uids > (SIZE_MAX - sizeof(*e)) / sizeof(uint32_t))
                return -E2BIG;
        e = calloc(1, sizeof(*e) + n_uids * sizeof(uint32_t));
        if (!e)
                return -ENOMEM;
        e->op.id_cb = cb;
        e->op.userdata = userdata;
        e->folder_id = folder_id;
        e->n_uids = n_uids;
        if (n_uids)
                memcpy(e->uids, uids, n_uids * sizeof(uint32_t));
        return store_op_submit(s, STORE_BULK, &e->op, message_expunge_run);
}

int store_message_from_row(sqlite3_stmt *st, StoreMessage *m) {
        bool ok = true;

        *m = (StoreMessage){
                .id = sqlite3_column_int64(st, 0),
                .folder_id = sqlite3_column_int64(st, 1),
                .uid = (uint32_t)sqlite3_column_int64(st, 2),
                .modseq = (uint64_t)sqlite3_column_int64(st, 3),
                .flags = (uint32_t)sqlite3_column_int64(st, 4),
                .keywords = store_column_strdup(st, 5, &ok),
                .internal_date = sqlite3_column_int64(st, 6),
                .size = (uint64_t)sqlite3_column_int64(st, 7),
                .env =
                        {
                                .date = sqlite3_column_int64(st, 8),
                                .from = store_column_strdup(st, 9, &ok),
                                .to = store_column_strdup(st, 10, &ok),
                                .cc = store_column_strdup(st, 11, &ok),
                                .subject = store_column_strdup(st, 12, &ok),
                                .message_id = store_column_strdup(st, 13, &ok),
                                .in_reply_to = store_column_strdup(st, 14, &ok),
                                .references = store_column_strdup(st, 15, &ok),
                        },
        };
        m->has_body = store_column_cid(st, 16, &m->cid);
        if (!ok) {
                store_message_clear(m);
                return -ENOMEM;
        }
        return 0;
}

int store_message_rows(sqlite3_stmt *st, StoreMessage **msgsp, size_t *n_msgsp) {
        StoreMessage *v = NULL;
        size_t n = 0;
        int r, rc;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                StoreMessage *nv = reallocarray(v, n + 1, sizeof(*v));

                if (!nv) {
                        store_message_list_free(v, n);
                        return -ENOMEM;
                }
                v = nv;
                r = store_message_from_row(st, &v[n]);
                if (r < 0) {
                        store_message_list_free(v, n);
                        return r;
                }
                n++;
        }
        if (rc != SQLITE_DONE) {
                store_message_list_free(v, n);
                return store_db_errno(rc);
        }
        *msgsp = v;
        *n_msgsp = n;
        return 0;
}

int store_message_list(Store *s, int64_t folder_id, uint32_t after_uid, size_t limit, StoreMessage **msgsp,
                       size_t *n_msgsp) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(s->read_db,
                          "SELECT " STORE_MESSAGE_COLUMNS " FROM messages WHERE folder_id = ? AND uid > ?"
                          " ORDER BY uid LIMIT ?",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, folder_id);
        sqlite3_bind_int64(st, 2, after_uid);
        sqlite3_bind_int64(st, 3, limit > INT64_MAX ? INT64_MAX : (sqlite3_int64)limit);
        return store_message_rows(st, msgsp, n_msgsp);
}

int store_message_get(Store *s, int64_t id, StoreMessage *m) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r, rc;

        r = store_prepare(s->read_db, "SELECT " STORE_MESSAGE_COLUMNS " FROM messages WHERE id = ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_db_errno(rc);
        return store_message_from_row(st, m);
}
