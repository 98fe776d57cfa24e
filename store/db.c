/*
 * Store connections. Every connection — the writer thread's and the loop
 * thread's read connection — comes from store_db_open(), so they all agree on
 * journal mode, synchronous level and timeouts.
 *
 * With a key the connection goes through the encrypting VFS
 * (store/crypt-vfs.h), which also fixes page size 4096, temp_store=MEMORY and
 * mmap off; without one it is plain SQLite with the same settings, which is
 * what the benchmark compares against. Called from any thread; the
 * connection returned belongs to the caller.
 */
#include <errno.h>
#include <string.h>

#include "store/db.h"
#include "store/fts-tokenizer.h"
#include "util/log.h"

#if defined(HAVE_CRYPT_VFS)
#include "store/crypt-vfs.h"
#endif

int store_db_errno(int rc) {
        /* A page that fails authentication in the encrypting VFS. */
        if (rc == SQLITE_IOERR_DATA)
                return -EBADMSG;
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                /* Also what a wrong key or a tampered page looks like. */
                return -EBADMSG;
        case SQLITE_TOOBIG:
                return -E2BIG;
        case SQLITE_MISUSE:
        case SQLITE_RANGE:
                return -EINVAL;
        case SQLITE_INTERRUPT:
        case SQLITE_ABORT:
                return -ECANCELED;
        default:
                return -EIO;
        }
}

bool store_db_have_encryption(void) {
#if defined(HAVE_CRYPT_VFS)
        return true;
#else
        return false;
#endif
}

static int db_open_raw(const char *path, const uint8_t *key, int flags, sqlite3 **dbp) {
#if defined(HAVE_CRYPT_VFS)
        return key ? crypt_vfs_open(path, key, flags, dbp) : crypt_vfs_open_plain(path, flags, dbp);
#else
        sqlite3 *db = NULL;
        int rc;

        if (key) {
                log_error("store: this build has no encrypting VFS; cannot open %s with a key", path);
                return -EOPNOTSUPP;
        }
        rc = sqlite3_open_v2(path, &db, flags, NULL);
        if (rc != SQLITE_OK) {
                log_error("store: cannot open %s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
                sqlite3_close(db);
                return store_db_errno(rc);
        }
        /* What crypt_vfs_open_plain() sets, so plain and encrypted compare fairly. */
        rc = sqlite3_exec(db, "PRAGMA page_size=4096; PRAGMA temp_store=MEMORY; PRAGMA mmap_size=0;", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                sqlite3_close(db);
                return store_db_errno(rc);
        }
        *dbp = db;
        return 0;
#endif
}

int store_db_open(const char *path, const uint8_t *key, int flags, sqlite3 **dbp) {
        _cleanup_db_ sqlite3 *db = NULL;
        int r, rc;

        r = db_open_raw(path, key, flags, &db);
        if (r > 0) /* CRYPT_VFS_E_DAMAGED, the VFS's only positive result */
                return -EBADMSG;
        if (r < 0)
                return r;

        /* Extended codes let store_db_errno() see SQLITE_IOERR_* apart. */
        sqlite3_extended_result_codes(db, 1);
        sqlite3_busy_timeout(db, 10000);

        /* The first statement reads the header: a wrong key or a damaged file
         * fails here, before any migration could try to write. */
        rc = sqlite3_exec(db,
                          "PRAGMA journal_mode=WAL;"
                          "PRAGMA synchronous=NORMAL;"
                          "PRAGMA foreign_keys=ON;",
                          NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                log_error("store: %s: %s (the store is damaged or the key is wrong)", path, sqlite3_errmsg(db));
                return store_db_errno(rc);
        }
        /* Before any statement touches the search table (the schema's, its triggers'). */
        rc = store_fts_register(db);
        if (rc != SQLITE_OK) {
                log_error("store: %s: cannot register the search tokenizer: %s", path, sqlite3_errstr(rc));
                return store_db_errno(rc);
        }
        *dbp = TAKE_PTR(db);
        return 0;
}
