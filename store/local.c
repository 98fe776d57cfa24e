/*
 * Local changes (see store/local.h). Each call is one writer job: the run
 * function reads the rows it changes inside the job's savepoint, so a sync
 * engine writing between the caller's checks and the job cannot make the view
 * and the pending queue disagree. The loop thread only copies the request in
 * and hears the result.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/local.h"
#include "store/message.h"
#include "store/outbox.h"
#include "store/pending.h"
#include "store/store-private.h"

typedef struct LocalJob {
        StoreLocalChange c; /* keyword strings owned */
        int64_t now;
        StoreDoneFn cb;
        void *userdata;
        size_t n_ids;
        int64_t ids[];
} LocalJob;

static void local_job_free(LocalJob *j) {
        free((char *)j->c.keywords_add);
        free((char *)j->c.keywords_remove);
        free(j);
}

/* True when the space-separated list has the word w (length n). */
static bool words_have(const char *list, const char *w, size_t n) {
        for (const char *p = list; p && *p;) {
                size_t k = strcspn(p, " ");

                if (k == n && strncmp(p, w, n) == 0)
                        return true;
                p += k;
                p += strspn(p, " ");
        }
        return false;
}

/* old's keywords without those of remove, plus those of add: a new string, or
 * NULL when empty; *okp false on OOM. */
static char *keywords_merge(const char *old, const char *add, const char *remove, bool *okp) {
        size_t cap = (old ? strlen(old) : 0) + (add ? strlen(add) : 0) + 2, n = 0;
        char *out = malloc(cap);

        if (!out) {
                *okp = false;
                return NULL;
        }
        out[0] = '\0';
        for (int pass = 0; pass < 2; pass++)
                for (const char *p = pass ? add : old; p && *p;) {
                        size_t k = strcspn(p, " ");

                        if (k && !words_have(remove, p, k) && !words_have(out, p, k)) {
                                if (n)
                                        out[n++] = ' ';
                                memcpy(out + n, p, k);
                                n += k;
                                out[n] = '\0';
                        }
                        p += k;
                        p += strspn(p, " ");
                }
        if (n == 0) {
                free(out);
                return NULL;
        }
        return out;
}

static int pending_insert(sqlite3 *db, const StorePendingChange *c) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(db,
                          "INSERT INTO pending_changes (account_id, kind, folder_id, uid, target_folder_id,"
                          " flags_add, flags_remove, keywords_add, keywords_remove, cid, created)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, c->account_id);
        sqlite3_bind_int(st, 2, c->kind);
        sqlite3_bind_int64(st, 3, c->folder_id);
        sqlite3_bind_int64(st, 4, c->uid);
        sqlite3_bind_int64(st, 5, c->target_folder_id);
        sqlite3_bind_int64(st, 6, c->flags_add);
        sqlite3_bind_int64(st, 7, c->flags_remove);
        sqlite3_bind_text(st, 8, c->keywords_add, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, c->keywords_remove, -1, SQLITE_STATIC);
        store_bind_cid(st, 10, c->has_cid ? &c->cid : NULL);
        sqlite3_bind_int64(st, 11, c->created);
        return store_step_done(st);
}

static int folder_account(sqlite3 *db, int64_t folder_id, int64_t *accountp) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r, rc;

        r = store_prepare(db, "SELECT account_id FROM folders WHERE id = ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, folder_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_db_errno(rc);
        *accountp = sqlite3_column_int64(st, 0);
        return 0;
}

/* One message: applies the change and records it. */
static int local_apply_one(sqlite3 *db, const LocalJob *j, int64_t id) {
        _cleanup_reset_ sqlite3_stmt *st = NULL, *up = NULL;
        _cleanup_free_ char *keywords = NULL;
        StorePendingChange pc = {.created = j->now};
        const char *old_keywords;
        uint32_t flags;
        bool ok = true;
        int r, rc;

        r = store_prepare(db,
                          "SELECT m.folder_id, m.uid, m.flags, m.keywords, m.cid, f.account_id"
                          " FROM messages m JOIN folders f ON f.id = m.folder_id WHERE m.id = ?",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_db_errno(rc);
        pc.folder_id = sqlite3_column_int64(st, 0);
        pc.uid = (uint32_t)sqlite3_column_int64(st, 1);
        flags = (uint32_t)sqlite3_column_int64(st, 2);
        old_keywords = (const char *)sqlite3_column_text(st, 3);
        pc.has_cid = store_column_cid(st, 4, &pc.cid);
        pc.account_id = sqlite3_column_int64(st, 5);

        switch (j->c.kind) {
        case STORE_LOCAL_FLAGS:
                keywords = keywords_merge(old_keywords, j->c.keywords_add, j->c.keywords_remove, &ok);
                if (!ok)
                        return -ENOMEM;
                r = store_prepare(db, "UPDATE messages SET flags = ?, keywords = ? WHERE id = ?", &up);
                if (r < 0)
                        return r;
                sqlite3_bind_int64(up, 1, (flags | j->c.flags_add) & ~j->c.flags_remove);
                sqlite3_bind_text(up, 2, keywords, -1, SQLITE_STATIC);
                sqlite3_bind_int64(up, 3, id);
                pc.kind = STORE_PENDING_FLAGS;
                pc.flags_add = j->c.flags_add;
                pc.flags_remove = j->c.flags_remove;
                pc.keywords_add = (char *)j->c.keywords_add;
                pc.keywords_remove = (char *)j->c.keywords_remove;
                pc.has_cid = false;
                break;
        case STORE_LOCAL_MOVE: {
                int64_t target_account = 0;

                if (j->c.target_folder_id == pc.folder_id)
                        return 0; /* already there */
                r = folder_account(db, j->c.target_folder_id, &target_account);
                if (r < 0)
                        return r;
                if (target_account != pc.account_id)
                        return -EXDEV;
                pc.kind = STORE_PENDING_MOVE;
                pc.target_folder_id = j->c.target_folder_id;
                r = store_prepare(db, "DELETE FROM messages WHERE id = ?", &up);
                if (r < 0)
                        return r;
                sqlite3_bind_int64(up, 1, id);
                break;
        }
        case STORE_LOCAL_DELETE:
                pc.kind = STORE_PENDING_DELETE;
                r = store_prepare(db, "DELETE FROM messages WHERE id = ?", &up);
                if (r < 0)
                        return r;
                sqlite3_bind_int64(up, 1, id);
                break;
        default:
                return -EINVAL;
        }
        sqlite3_reset(st); /* old_keywords is not used past here */
        r = store_step_done(up);
        if (r < 0)
                return r;
        return j->c.record ? pending_insert(db, &pc) : 0;
}

static int local_apply_run(sqlite3 *db, void *userdata) {
        LocalJob *j = userdata;

        for (size_t i = 0; i < j->n_ids; i++) {
                int r = local_apply_one(db, j, j->ids[i]);

                if (r < 0)
                        return r;
        }
        return 0;
}

static void local_apply_done(int r, void *userdata) {
        LocalJob *j = userdata;

        if (j->cb)
                j->cb(r, j->userdata);
        local_job_free(j);
}

int store_local_apply(Store *s, const int64_t *ids, size_t n_ids, const StoreLocalChange *c, int64_t now,
                      StoreDoneFn cb, void *userdata) {
        LocalJob *j;
        bool ok = true;
        int r;

        if (n_ids == 0 || n_ids > (SIZE_MAX - sizeof(*j)) / sizeof(int64_t))
                return -EINVAL;
        j = calloc(1, sizeof(*j) + n_ids * sizeof(int64_t));
        if (!j)
                return -ENOMEM;
        j->c = *c;
        j->c.keywords_add = store_strdup(c->keywords_add, &ok);
        j->c.keywords_remove = store_strdup(c->keywords_remove, &ok);
        j->now = now;
        j->cb = cb;
        j->userdata = userdata;
        j->n_ids = n_ids;
        memcpy(j->ids, ids, n_ids * sizeof(int64_t));
        if (!ok) {
                local_job_free(j);
                return -ENOMEM;
        }
        r = store_submit(s, STORE_BULK, local_apply_run, local_apply_done, j);
        if (r < 0)
                local_job_free(j);
        return r;
}

/* ---- the outbox, as a person edits it ---- */

typedef struct OutboxEdit {
        int64_t id, now;
        bool cancel;
        StoreDoneFn cb;
        void *userdata;
} OutboxEdit;

static int outbox_edit_run(sqlite3 *db, void *userdata) {
        OutboxEdit *e = userdata;
        _cleanup_reset_ sqlite3_stmt *st = NULL, *up = NULL;
        int r, rc, state;

        r = store_prepare(db, "SELECT state FROM outbox WHERE id = ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, e->id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_db_errno(rc);
        state = sqlite3_column_int(st, 0);
        if (state == STORE_OUTBOX_SENDING || state == STORE_OUTBOX_COMMITTING)
                return -EBUSY;
        if (state == STORE_OUTBOX_SENT)
                return -EALREADY;
        r = store_prepare(db,
                          e->cancel ? "DELETE FROM outbox WHERE id = ?1"
                                    : "UPDATE outbox SET state = ?2, next_attempt = ?3 WHERE id = ?1",
                          &up);
        if (r < 0)
                return r;
        sqlite3_bind_int64(up, 1, e->id);
        if (!e->cancel) {
                sqlite3_bind_int(up, 2, STORE_OUTBOX_QUEUED);
                sqlite3_bind_int64(up, 3, e->now);
        }
        return store_step_done(up);
}

static void outbox_edit_done(int r, void *userdata) {
        OutboxEdit *e = userdata;

        if (e->cb)
                e->cb(r, e->userdata);
        free(e);
}

static int outbox_edit(Store *s, int64_t id, int64_t now, bool cancel, StoreDoneFn cb, void *userdata) {
        OutboxEdit *e = malloc(sizeof *e);
        int r;

        if (!e)
                return -ENOMEM;
        *e = (OutboxEdit){.id = id, .now = now, .cancel = cancel, .cb = cb, .userdata = userdata};
        r = store_submit(s, STORE_BARRIER, outbox_edit_run, outbox_edit_done, e);
        if (r < 0)
                free(e);
        return r;
}

int store_outbox_retry(Store *s, int64_t id, int64_t now, StoreDoneFn cb, void *userdata) {
        return outbox_edit(s, id, now, false, cb, userdata);
}

int store_outbox_cancel(Store *s, int64_t id, StoreDoneFn cb, void *userdata) {
        return outbox_edit(s, id, 0, true, cb, userdata);
}
