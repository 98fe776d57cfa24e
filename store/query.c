/*
 * Read-only views for front ends (see store/query.h). Every function runs on
 * the loop thread and reads through the store's read connection with cached
 * statements; nothing here writes. Pages by offset are what a person scrolling
 * a folder asks for; the engines page by UID (store/message.c) instead.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/outbox.h"
#include "store/query.h"
#include "store/store-private.h"

void store_query_folder_clear(StoreFolder *f) {
        free(f->name);
        f->name = NULL;
}

int store_query_folder_get(Store *s, int64_t folder_id, StoreFolder *f) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        const char *delim;
        bool ok = true;
        int r, rc;

        r = store_prepare(s->read_db,
                          "SELECT id, account_id, name, delimiter, role, uidvalidity, uidnext, highestmodseq,"
                          " subscribed FROM folders WHERE id = ?",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, folder_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_db_errno(rc);
        delim = (const char *)sqlite3_column_text(st, 3);
        *f = (StoreFolder){
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
        if (!ok || !f->name) {
                store_query_folder_clear(f);
                return -ENOMEM;
        }
        return 0;
}

int store_query_folder_counts(Store *s, int64_t folder_id, uint64_t *totalp, uint64_t *unreadp) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r, rc;

        r = store_prepare(s->read_db,
                          "SELECT count(*), coalesce(sum((flags & ?) = 0), 0) FROM messages WHERE folder_id = ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, STORE_FLAG_SEEN);
        sqlite3_bind_int64(st, 2, folder_id);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return store_db_errno(rc) ?: -EIO;
        *totalp = (uint64_t)sqlite3_column_int64(st, 0);
        *unreadp = (uint64_t)sqlite3_column_int64(st, 1);
        return 0;
}

int store_query_account_counts(Store *s, const char *account, uint64_t *totalp, uint64_t *unreadp) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r, rc;

        r = store_prepare(s->read_db,
                          "SELECT count(*), coalesce(sum((m.flags & ?) = 0), 0) FROM messages m"
                          " JOIN folders f ON f.id = m.folder_id JOIN accounts a ON a.id = f.account_id"
                          " WHERE a.name = ?",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, STORE_FLAG_SEEN);
        sqlite3_bind_text(st, 2, account, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return store_db_errno(rc) ?: -EIO;
        *totalp = (uint64_t)sqlite3_column_int64(st, 0);
        *unreadp = (uint64_t)sqlite3_column_int64(st, 1);
        return 0;
}

int store_query_outbox_waiting(Store *s, const char *account, uint64_t *np) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r, rc;

        r = store_prepare(s->read_db,
                          "SELECT count(*) FROM outbox o JOIN accounts a ON a.id = o.account_id"
                          " WHERE a.name = ? AND o.state IN (?, ?, ?)",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, STORE_OUTBOX_QUEUED);
        sqlite3_bind_int(st, 3, STORE_OUTBOX_SENDING);
        sqlite3_bind_int(st, 4, STORE_OUTBOX_COMMITTING);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return store_db_errno(rc) ?: -EIO;
        *np = (uint64_t)sqlite3_column_int64(st, 0);
        return 0;
}

int store_query_messages_newest(Store *s, int64_t folder_id, uint64_t offset, size_t limit, StoreMessage **msgsp,
                                size_t *n_msgsp) {
        _cleanup_reset_ sqlite3_stmt *st = NULL;
        int r;

        *msgsp = NULL;
        *n_msgsp = 0;
        r = store_prepare(s->read_db,
                          "SELECT " STORE_MESSAGE_COLUMNS " FROM messages WHERE folder_id = ?"
                          " ORDER BY uid DESC LIMIT ? OFFSET ?",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, folder_id);
        sqlite3_bind_int64(st, 2, limit > INT64_MAX ? INT64_MAX : (sqlite3_int64)limit);
        sqlite3_bind_int64(st, 3, offset > INT64_MAX ? INT64_MAX : (sqlite3_int64)offset);
        return store_message_rows(st, msgsp, n_msgsp);
}
