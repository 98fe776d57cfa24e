/*
 * Driven by tests/integration/test_store_keys.py inside a private session bus
 * with gnome-keyring-daemon: "create STORE" makes the store with `auto`
 * (which must pick the Secret Service) and fills it; "reopen STORE" finds the
 * key again through `secret-service` and reads the rows back. Prints one line
 * per step; exits non-zero on the first failure.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "store/crypt-vfs.h"
#include "store/keys.h"

static int fail(const char *what, int r, char *err) {
        fprintf(stderr, "FAIL %s: %d %s\n", what, r, err ? err : "");
        return 1;
}

int main(int argc, char **argv) {
        uint8_t *key = NULL;
        char *err = NULL;
        KeysKind kind;
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        bool create;
        int r, rows = -1;

        if (argc != 3 || sodium_init() < 0)
                return 2;
        create = strcmp(argv[1], "create") == 0;
        if (create && keys_kind_resolve(KEYS_KIND_AUTO) != KEYS_KIND_SECRET_SERVICE)
                return fail("auto does not pick the Secret Service", 0, NULL);
        r = keys_open(argv[2], create ? KEYS_KIND_AUTO : KEYS_KIND_SECRET_SERVICE, NULL, &key, &err);
        if (r != 0)
                return fail("keys_open", r, err);
        if (keys_stored_kind(argv[2], &kind) != 0 || kind != KEYS_KIND_SECRET_SERVICE)
                return fail("stored kind", (int)kind, NULL);
        r = crypt_vfs_open(argv[2], key, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db);
        key = keys_free(key);
        if (r != 0)
                return fail("crypt_vfs_open", r, NULL);
        if (create && sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES ('MARKER-ZEBRA-7731'), ('b')", NULL,
                                   NULL, NULL) != SQLITE_OK)
                return fail("fill", 0, (char *)sqlite3_errmsg(db));
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
                rows = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        if (rows != 2)
                return fail("rows", rows, NULL);
        printf("ok %s: key kept by the Secret Service, %d rows\n", argv[1], rows);
        return 0;
}
