/*
 * Opening store connections and converting SQLite result codes to the
 * negative errno values the rest of tegami speaks.
 */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/macro.h"

/* Opens path with key (32 bytes: the encrypting VFS) or NULL (plain SQLite),
 * in WAL mode with synchronous=NORMAL, foreign keys on and a busy timeout.
 * flags are sqlite3_open_v2() flags. On failure *dbp stays NULL. */
int store_db_open(const char *path, const uint8_t *key, int flags, sqlite3 **dbp);

/* True when this build opens encrypted stores (store/crypt-vfs.c is linked). */
bool store_db_have_encryption(void);

/* Maps an SQLite result code to a negative errno (SQLITE_OK → 0). */
int store_db_errno(int rc);

/* Closes db; accepts NULL. For _cleanup_(). */
static inline void store_db_closep(sqlite3 **db) {
        if (*db)
                sqlite3_close(*db);
}
#define _cleanup_db_ _cleanup_(store_db_closep)

static inline void store_stmt_finalizep(sqlite3_stmt **st) {
        if (*st)
                sqlite3_finalize(*st);
}
#define _cleanup_stmt_ _cleanup_(store_stmt_finalizep)
