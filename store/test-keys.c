/*
 * Data key tests: the key file is created 0600 and refused when looser, a
 * passphrase store stays locked until the right passphrase, a passphrase
 * change rewraps (the old one stops working, the data stays), `auto` falls
 * back to the key file without a session bus, and rekey (including one cut
 * short on either side of the store's replacement) leaves the store opening
 * with the new key only. The Secret Service kind is covered by
 * tests/integration/test_store_keys.py against gnome-keyring-daemon.
 */
#include <dirent.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/crypt-vfs.h"
#include "store/keys.h"
#include "util/macro.h"

static int failures;

#define CHECK(cond, ...)                                                     \
        do {                                                                 \
                if (!(cond)) {                                               \
                        fprintf(stderr, "FAIL %s:%d: ", __func__, __LINE__); \
                        fprintf(stderr, __VA_ARGS__);                        \
                        fputc('\n', stderr);                                 \
                        failures++;                                          \
                }                                                            \
        } while (0)

static char *new_store(const char *name) {
        char *d, *p;

        if (asprintf(&d, "/tmp/tegami-test-keys-%s-XXXXXX", name) < 0 || !mkdtemp(d) ||
            asprintf(&p, "%s/mail.db", d) < 0)
                abort();
        free(d);
        return p;
}

static void remove_store(char *path) {
        char *dir = strdup(path);
        DIR *d;
        struct dirent *e;

        *strrchr(dir, '/') = '\0';
        d = opendir(dir);
        while (d && (e = readdir(d)))
                if (e->d_name[0] != '.') {
                        _cleanup_free_ char *p = NULL;

                        if (asprintf(&p, "%s/%s", dir, e->d_name) > 0)
                                unlink(p);
                }
        if (d)
                closedir(d);
        rmdir(dir);
        free(dir);
        free(path);
}

static char *side(const char *store, const char *suffix) {
        char *p;

        if (asprintf(&p, "%s%s", store, suffix) < 0)
                abort();
        return p;
}

static void copy_file(const char *from, const char *to) {
        _cleanup_fclose_ FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
        char buf[8192];
        size_t n;

        if (!a || !b)
                abort();
        while ((n = fread(buf, 1, sizeof buf, a)) > 0)
                if (fwrite(buf, 1, n, b) != n)
                        abort();
}

/* Opens with key, creates or checks a table of n rows; returns the crypt_vfs_open result. */
static int store_use(const char *path, const uint8_t *key, int n, bool fill) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        int r = crypt_vfs_open(path, key, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db);

        if (r != 0)
                return r;
        if (fill) {
                CHECK(sqlite3_exec(db,
                                   "CREATE TABLE t(x); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
                                   "FROM c WHERE i < 500) INSERT INTO t SELECT printf('secret row %d', i) FROM c",
                                   NULL, NULL, NULL) == SQLITE_OK,
                      "fill: %s", sqlite3_errmsg(db));
        } else {
                CHECK(sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL) == SQLITE_OK &&
                              sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == n,
                      "rows: %s", sqlite3_errmsg(db));
                sqlite3_finalize(st);
        }
        sqlite3_close(db);
        return 0;
}

static void expect(int r, int want, char *err, const char *what, const char *needle) {
        CHECK(r == want, "%s: got %d, want %d (%s)", what, r, want, err ? err : "");
        if (needle)
                CHECK(err && strstr(err, needle), "%s: message \"%s\" lacks \"%s\"", what, err ? err : "", needle);
        printf("%s %s: %s\n", r == want ? "ok" : "??", what, err ? err : "(no message)");
        free(err);
}

static void test_file(void) {
        char *store = new_store("file");
        _cleanup_free_ char *keyfile = side(store, ".key"), *wrap = side(store, ".keywrap");
        uint8_t *k1 = NULL, *k2 = NULL;
        char *err = NULL;
        struct stat st;
        int r;

        r = keys_open(store, KEYS_KIND_FILE, NULL, &k1, &err);
        expect(r, 0, err, "file: first open creates the key", NULL);
        CHECK(stat(keyfile, &st) == 0 && (st.st_mode & 0777) == 0600, "key file mode %o", st.st_mode & 0777);
        CHECK(stat(wrap, &st) == 0 && st.st_size == 120, "wrap file");
        CHECK(k1 && store_use(store, k1, 0, true) == 0, "new store with the key");

        r = keys_open(store, KEYS_KIND_FILE, NULL, &k2, &err);
        expect(r, 0, err, "file: second open finds it", NULL);
        CHECK(k1 && k2 && sodium_memcmp(k1, k2, 32) == 0, "same key");
        CHECK(k2 && store_use(store, k2, 500, false) == 0, "store opens with it");
        k2 = keys_free(k2);

        chmod(keyfile, 0644);
        r = keys_open(store, KEYS_KIND_FILE, NULL, &k2, &err);
        CHECK(!k2, "key returned for an insecure file");
        {
                _cleanup_free_ char *msg = err ? strdup(err) : NULL;

                expect(r, KEYS_E_INSECURE, err, "file: mode 0644 refused", "0644");
                CHECK(msg && strstr(msg, keyfile), "message names the file");
        }
        chmod(keyfile, 0600);

        r = keys_open(store, KEYS_KIND_PASSPHRASE, "x", &k2, &err);
        expect(r, KEYS_E_KIND, err, "file store opened as passphrase", "kept by file");
        r = keys_open(store, KEYS_KIND_AUTO, NULL, &k2, &err);
        expect(r, 0, err, "auto follows the stored kind", NULL);
        k2 = keys_free(k2);

        rename(wrap, keyfile); /* now the wrap is gone and the key file is 120 bytes */
        r = keys_open(store, KEYS_KIND_FILE, NULL, &k2, &err);
        expect(r, KEYS_E_MISSING, err, "existing store without its wrap", "missing");
        k1 = keys_free(k1);
        remove_store(store);
}

static void test_passphrase(void) {
        char *store = new_store("pass");
        uint8_t *k1 = NULL, *k2 = NULL;
        KeysKind kind = KEYS_KIND_AUTO;
        char *err = NULL;
        int r;

        r = keys_open(store, KEYS_KIND_PASSPHRASE, NULL, &k1, &err);
        expect(r, KEYS_E_LOCKED, err, "passphrase: new store needs one", "passphrase");
        r = keys_open(store, KEYS_KIND_PASSPHRASE, "correct horse", &k1, &err);
        expect(r, 0, err, "passphrase: set", NULL);
        CHECK(k1 && store_use(store, k1, 0, true) == 0, "fill");
        CHECK(keys_stored_kind(store, &kind) == 0 && kind == KEYS_KIND_PASSPHRASE, "stored kind %d", kind);

        r = keys_open(store, KEYS_KIND_AUTO, NULL, &k2, &err);
        expect(r, KEYS_E_LOCKED, err, "passphrase: locked without it", "locked");
        r = keys_open(store, KEYS_KIND_PASSPHRASE, "battery staple", &k2, &err);
        expect(r, KEYS_E_BAD_PASSPHRASE, err, "passphrase: wrong one refused", "wrong passphrase");
        r = keys_open(store, KEYS_KIND_PASSPHRASE, "correct horse", &k2, &err);
        expect(r, 0, err, "passphrase: unlock", NULL);
        CHECK(k1 && k2 && sodium_memcmp(k1, k2, 32) == 0, "same key after unlock");
        k2 = keys_free(k2);

        r = keys_passphrase_change(store, "wrong", "new one", &err);
        expect(r, KEYS_E_BAD_PASSPHRASE, err, "passphrase change with a wrong old one", NULL);
        r = keys_passphrase_change(store, "correct horse", "new one", &err);
        expect(r, 0, err, "passphrase change", NULL);
        r = keys_open(store, KEYS_KIND_PASSPHRASE, "correct horse", &k2, &err);
        expect(r, KEYS_E_BAD_PASSPHRASE, err, "old passphrase refused after change", NULL);
        r = keys_open(store, KEYS_KIND_PASSPHRASE, "new one", &k2, &err);
        expect(r, 0, err, "new passphrase unlocks", NULL);
        CHECK(k1 && k2 && sodium_memcmp(k1, k2, 32) == 0, "data key unchanged by rewrap");
        CHECK(k2 && store_use(store, k2, 500, false) == 0, "store data after rewrap");
        k1 = keys_free(k1);
        k2 = keys_free(k2);
        remove_store(store);
}

static void test_auto_without_bus(void) {
        char *store = new_store("auto");
        _cleanup_free_ char *keyfile = side(store, ".key"), *run = strdup(store);
        uint8_t *k = NULL;
        char *err = NULL;
        KeysKind kind = KEYS_KIND_AUTO;
        int r;

        *strrchr(run, '/') = '\0';
        unsetenv("DBUS_SESSION_BUS_ADDRESS");
        setenv("XDG_RUNTIME_DIR", run, 1); /* no bus socket in there */
        CHECK(keys_kind_resolve(KEYS_KIND_AUTO) == KEYS_KIND_FILE, "auto without a bus");
        r = keys_open(store, KEYS_KIND_AUTO, NULL, &k, &err);
        expect(r, 0, err, "auto without a bus uses a key file", NULL);
        CHECK(access(keyfile, F_OK) == 0 && keys_stored_kind(store, &kind) == 0 && kind == KEYS_KIND_FILE,
              "key file made");
        k = keys_free(k);
        remove_store(store);

        store = new_store("ss-nobus");
        r = keys_open(store, KEYS_KIND_SECRET_SERVICE, NULL, &k, &err);
        CHECK(!k, "a key without a Secret Service");
        expect(r, -ENOTCONN, err, "secret-service without a bus", "no session bus");
        remove_store(store);
}

static void test_rekey(void) {
        char *store = new_store("rekey");
        _cleanup_free_ char *wrap = side(store, ".keywrap"), *next = side(store, ".keywrap.next");
        _cleanup_free_ char *saved_db = side(store, ".saved"), *saved_wrap = side(store, ".keywrap.saved");
        uint8_t *k1 = NULL, *k2 = NULL, *k3 = NULL;
        char *err = NULL;
        int r;

        r = keys_open(store, KEYS_KIND_FILE, NULL, &k1, &err);
        expect(r, 0, err, "rekey: create", NULL);
        CHECK(k1 && store_use(store, k1, 0, true) == 0, "fill");
        copy_file(store, saved_db);
        copy_file(wrap, saved_wrap);

        r = keys_rekey(store, KEYS_KIND_FILE, NULL, &err);
        expect(r, 0, err, "rekey", NULL);
        r = keys_open(store, KEYS_KIND_FILE, NULL, &k2, &err);
        expect(r, 0, err, "open after rekey", NULL);
        CHECK(k1 && k2 && sodium_memcmp(k1, k2, 32) != 0, "rekey kept the data key");
        CHECK(k2 && store_use(store, k2, 500, false) == 0, "new key reads all rows");
        CHECK(k1 && store_use(store, k1, 500, false) == CRYPT_VFS_E_DAMAGED, "old key still opens the store");

        /* Cut short after the store was replaced, before the wrap was: the next open finishes it. */
        rename(wrap, next);
        copy_file(saved_wrap, wrap);
        r = keys_open(store, KEYS_KIND_FILE, NULL, &k3, &err);
        expect(r, 0, err, "rekey finished by the next open", NULL);
        CHECK(k2 && k3 && sodium_memcmp(k2, k3, 32) == 0 && access(next, F_OK) < 0, "finished with the new key");
        k3 = keys_free(k3);

        /* Cut short before the store was replaced: the next open drops the new key. */
        copy_file(wrap, next);
        copy_file(saved_wrap, wrap);
        copy_file(saved_db, store);
        r = keys_open(store, KEYS_KIND_FILE, NULL, &k3, &err);
        expect(r, 0, err, "rekey rolled back by the next open", NULL);
        CHECK(k1 && k3 && sodium_memcmp(k1, k3, 32) == 0 && access(next, F_OK) < 0, "rolled back to the old key");
        CHECK(k3 && store_use(store, k3, 500, false) == 0, "old store readable");

        k1 = keys_free(k1);
        k2 = keys_free(k2);
        k3 = keys_free(k3);
        remove_store(store);
}

int main(void) {
        if (sodium_init() < 0)
                return 1;
        keys_pwhash_limits_set(crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN);
        CHECK(keys_kind_from_string("secret-service") == KEYS_KIND_SECRET_SERVICE, "kind names");
        CHECK(keys_kind_from_string("nope") == -EINVAL, "unknown kind");
        test_file();
        test_passphrase();
        test_rekey();
        test_auto_without_bus();
        if (failures)
                fprintf(stderr, "%d failure(s)\n", failures);
        return failures ? 1 : 0;
}
