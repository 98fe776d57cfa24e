/*
 * The IMAP engine's store calls: a compact listing read synchronously on the
 * loop thread's read connection (a few dozen bytes per message, so a folder
 * of tens of thousands costs a few MB at most), and writes as StoreOps on the
 * writer thread like the rest of the store.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/imap.h"
#include "store/store-private.h"

void store_imap_msg_list_free(StoreImapMsg *msgs, size_t n_msgs) {
        for (size_t i = 0; i < n_msgs; i++) {
                free(msgs[i].keywords);
                free(msgs[i].message_id);
        }
        free(msgs);
}

int store_imap_msg_list(Store *s, int64_t folder_id, unsigned flags, StoreImapMsg **msgsp, size_t *n_msgsp) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        StoreImapMsg *v = NULL;
        size_t n = 0, cap = 0;
        bool ok = true;
        int r, rc;

        r = store_prepare(s->read_db,
                          "SELECT uid, flags, modseq, size, cid IS NOT NULL, keywords, message_id FROM messages"
                          " WHERE folder_id = ? ORDER BY uid",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, folder_id);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (n == cap) {
                        StoreImapMsg *nv = reallocarray(v, cap ? cap * 2 : 64, sizeof(*v));
                        if (!nv) {
                                store_imap_msg_list_free(v, n);
                                return -ENOMEM;
                        }
                        v = nv;
                        cap = cap ? cap * 2 : 64;
                }
                v[n++] = (StoreImapMsg){
                        .uid = (uint32_t)sqlite3_column_int64(st, 0),
                        .flags = (uint32_t)sqlite3_column_int64(st, 1),
                        .modseq = (uint64_t)sqlite3_column_int64(st, 2),
                        .size = (uint64_t)sqlite3_column_int64(st, 3),
                        .has_body = sqlite3_column_int(st, 4) != 0,
                        .keywords = store_column_strdup(st, 5, &ok),
                        .message_id = (flags & STORE_IMAP_LIST_IDS) ? store_column_strdup(st, 6, &ok) : NULL,
                };
        }
        if (rc != SQLITE_DONE || !ok) {
                store_imap_msg_list_free(v, n);
                return ok ? store_db_errno(rc) : -ENOMEM;
        }
        *msgsp = v;
        *n_msgsp = n;
        return 0;
}

StoreImapMsg *store_imap_msg_find(StoreImapMsg *msgs, size_t n_msgs, uint32_t uid) {
        size_t lo = 0, hi = n_msgs;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (msgs[mid].uid == uid)
                        return &msgs[mid];
                if (msgs[mid].uid < uid)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

typedef struct RenumberOp {
        StoreOp op;
        int64_t folder_id;
        uint32_t uidvalidity, uidnext;
        uint64_t highestmodseq;
        size_t n;
        uint32_t uids[]; /* old[0..n), then new[0..n) */
} RenumberOp;

static int exec_folder(sqlite3 *db, const char *sql, int64_t folder_id) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r = store_prepare(db, sql, &st);

        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, folder_id);
        return store_step_done(st);
}

static int renumber_run(sqlite3 *db, void *userdata) {
        RenumberOp *o = userdata;
        _cleanup_reset_ sqlite3_stmt *st = NULL, *fst = NULL, *pst = NULL;
        int r;

        /* Park every UID at its negative so old and new numbers never collide
         * on UNIQUE (folder_id, uid); renumber the matched; drop the rest. */
        r = exec_folder(db, "UPDATE messages SET uid = -uid WHERE folder_id = ? AND uid > 0", o->folder_id);
        if (r < 0)
                return r;
        r = store_prepare(db, "UPDATE messages SET uid = ? WHERE folder_id = ? AND uid = ?", &st);
        if (r < 0)
                return r;
        for (size_t i = 0; i < o->n; i++) {
                sqlite3_reset(st);
                sqlite3_bind_int64(st, 1, o->uids[o->n + i]);
                sqlite3_bind_int64(st, 2, o->folder_id);
                sqlite3_bind_int64(st, 3, -(int64_t)o->uids[i]);
                r = store_step_done(st);
                if (r < 0)
                        return r;
        }
        r = exec_folder(db, "DELETE FROM messages WHERE folder_id = ? AND uid <= 0", o->folder_id);
        if (r < 0)
                return r;
        o->op.id = sqlite3_changes(db);

        /* Local changes waiting for the old UIDs follow their messages; those of messages gone, go. */
        r = exec_folder(db, "UPDATE pending_changes SET uid = -uid WHERE folder_id = ? AND uid > 0", o->folder_id);
        if (r < 0)
                return r;
        r = store_prepare(db, "UPDATE pending_changes SET uid = ? WHERE folder_id = ? AND uid = ?", &pst);
        if (r < 0)
                return r;
        for (size_t i = 0; i < o->n; i++) {
                sqlite3_reset(pst);
                sqlite3_bind_int64(pst, 1, o->uids[o->n + i]);
                sqlite3_bind_int64(pst, 2, o->folder_id);
                sqlite3_bind_int64(pst, 3, -(int64_t)o->uids[i]);
                r = store_step_done(pst);
                if (r < 0)
                        return r;
        }
        r = exec_folder(db, "DELETE FROM pending_changes WHERE folder_id = ? AND uid < 0", o->folder_id);
        if (r < 0)
                return r;
        r = store_prepare(db, "UPDATE folders SET uidvalidity = ?, uidnext = 0, highestmodseq = 0 WHERE id = ?", &fst);
        if (r < 0)
                return r;
        sqlite3_bind_int64(fst, 1, o->uidvalidity);
        sqlite3_bind_int64(fst, 2, o->folder_id);
        r = store_step_done(fst);
        if (r < 0)
                return r;
        return sqlite3_changes(db) > 0 ? 0 : -ENOENT;
}

int store_imap_renumber(Store *s, int64_t folder_id, const uint32_t *old_uids, const uint32_t *new_uids, size_t n,
                        uint32_t uidvalidity, StoreIdFn cb, void *userdata) {
        RenumberOp *o;

        if (n > (SIZE_MAX - sizeof(*o)) / (2 * sizeof(uint32_t)))
                return -E2BIG;
        o = calloc(1, sizeof(*o) + 2 * n * sizeof(uint32_t));
        if (!o)
                return -ENOMEM;
        o->op.id_cb = cb;
        o->op.userdata = userdata;
        o->folder_id = folder_id;
        o->uidvalidity = uidvalidity;
        o->n = n;
        if (n) {
                memcpy(o->uids, old_uids, n * sizeof(uint32_t));
                memcpy(o->uids + n, new_uids, n * sizeof(uint32_t));
        }
        return store_op_submit(s, STORE_BULK, &o->op, renumber_run);
}

static int set_state_run(sqlite3 *db, void *userdata) {
        RenumberOp *o = userdata;
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(db, "UPDATE folders SET uidvalidity = ?, uidnext = ?, highestmodseq = ? WHERE id = ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, o->uidvalidity);
        sqlite3_bind_int64(st, 2, o->uidnext);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)o->highestmodseq);
        sqlite3_bind_int64(st, 4, o->folder_id);
        r = store_step_done(st);
        if (r < 0)
                return r;
        return sqlite3_changes(db) > 0 ? 0 : -ENOENT;
}

int store_imap_folder_set_state(Store *s, int64_t folder_id, uint32_t uidvalidity, uint32_t uidnext,
                                uint64_t highestmodseq, StoreDoneFn cb, void *userdata) {
        RenumberOp *o = calloc(1, sizeof(*o));

        if (!o)
                return -ENOMEM;
        o->op.done_cb = cb;
        o->op.userdata = userdata;
        o->folder_id = folder_id;
        o->uidvalidity = uidvalidity;
        o->uidnext = uidnext;
        o->highestmodseq = highestmodseq;
        return store_op_submit(s, STORE_BULK, &o->op, set_state_run);
}
