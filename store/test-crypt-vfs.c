/*
 * Encrypting VFS tests: markers never reach the disk in plaintext (main file,
 * WAL, journal, wal-index; before and after checkpoints; after a kill -9 in
 * the middle of a transaction), crash recovery still works through the shim,
 * a flipped byte or a wrong key gives the "damaged or wrong key" error, and
 * rekey leaves a store only the new key opens. The same scan run on a plain
 * store must find the markers, so the scanner itself is tested too. Pages
 * sealed through OpenSSL and through libsodium are the same cipher: a child
 * with TEGAMI_CRYPT_NO_OPENSSL reads and extends a store the parent keeps open.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/crypt-vfs.h"
#include "util/macro.h"

static const char marker_ascii[] = "MARKER-ZEBRA-7731";
static const char marker_utf8[] = "秘密の手紙テスト";
static int failures;
static uint8_t key[32], other_key[32];

#define CHECK(cond, ...)                                                     \
        do {                                                                 \
                if (!(cond)) {                                               \
                        fprintf(stderr, "FAIL %s:%d: ", __func__, __LINE__); \
                        fprintf(stderr, __VA_ARGS__);                        \
                        fputc('\n', stderr);                                 \
                        failures++;                                          \
                }                                                            \
        } while (0)

static char *make_dir(const char *name) {
        char *d;

        if (asprintf(&d, "/tmp/tegami-test-crypt-%s-XXXXXX", name) < 0 || !mkdtemp(d))
                abort();
        return d;
}

static char *path_in(const char *dir, const char *name) {
        char *p;

        if (asprintf(&p, "%s/%s", dir, name) < 0)
                abort();
        return p;
}

static void remove_dir(char *dir) {
        DIR *d = opendir(dir);
        struct dirent *e;

        while (d && (e = readdir(d)))
                if (e->d_name[0] != '.') {
                        _cleanup_free_ char *p = path_in(dir, e->d_name);
                        unlink(p);
                }
        if (d)
                closedir(d);
        rmdir(dir);
        free(dir);
}

static bool contains(const uint8_t *hay, size_t n, const void *needle, size_t m) {
        return m <= n && memmem(hay, n, needle, m) != NULL;
}

/* Counts marker hits (ASCII, UTF-8, UTF-16LE ASCII) in every file of dir; *n_filesp counts non-empty files. */
static int scan_dir(const char *dir, int *n_filesp, const char *must_exist) {
        uint8_t u16[2 * sizeof marker_ascii];
        size_t n16 = 0;
        DIR *d = opendir(dir);
        struct dirent *e;
        int hits = 0, n_files = 0;
        bool seen_must = must_exist == NULL;

        for (const char *c = marker_ascii; *c; c++) {
                u16[n16++] = (uint8_t)*c;
                u16[n16++] = 0;
        }
        while (d && (e = readdir(d))) {
                _cleanup_free_ char *p = NULL;
                _cleanup_free_ uint8_t *data = NULL;
                _cleanup_fclose_ FILE *f = NULL;
                struct stat st;

                if (e->d_name[0] == '.')
                        continue;
                p = path_in(dir, e->d_name);
                if (stat(p, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
                        continue;
                if (must_exist && strstr(e->d_name, must_exist))
                        seen_must = true;
                n_files++;
                data = malloc((size_t)st.st_size);
                f = fopen(p, "rb");
                if (!data || !f || fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
                        abort();
                if (contains(data, (size_t)st.st_size, marker_ascii, strlen(marker_ascii)) ||
                    contains(data, (size_t)st.st_size, marker_utf8, strlen(marker_utf8)) ||
                    contains(data, (size_t)st.st_size, u16, n16)) {
                        printf("  marker found in %s\n", e->d_name);
                        hits++;
                }
        }
        if (d)
                closedir(d);
        CHECK(seen_must, "no non-empty file named *%s in %s", must_exist, dir);
        if (n_filesp)
                *n_filesp = n_files;
        return hits;
}

static int exec(sqlite3 *db, const char *sql) {
        char *err = NULL;
        int rc = sqlite3_exec(db, sql, NULL, NULL, &err);

        if (rc != SQLITE_OK)
                fprintf(stderr, "  sql \"%.60s\": %s\n", sql, err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
        return rc;
}

static long long query_int(sqlite3 *db, const char *sql, int *rcp) {
        sqlite3_stmt *st = NULL;
        long long v = -1;
        int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                v = sqlite3_column_int64(st, 0);
                rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
        if (rcp)
                *rcp = rc;
        return v;
}

static const char schema[] = "CREATE TABLE IF NOT EXISTS msg(id INTEGER PRIMARY KEY, batch INT, body TEXT);"
                             "CREATE INDEX IF NOT EXISTS msg_body ON msg(body);"
                             "CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(body, tokenize='trigram');";

/* Inserts n rows of batch carrying both markers (about 600 bytes each) into msg and fts, in one transaction
 * unless one is open already (one sync per batch keeps the test fast on slow disks). */
static int insert_rows(sqlite3 *db, int batch, int n) {
        sqlite3_stmt *a = NULL, *b = NULL;
        bool own = sqlite3_get_autocommit(db);
        char body[700];
        int rc = own ? sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) : SQLITE_OK;

        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(db, "INSERT INTO msg(batch, body) VALUES (?1, ?2)", -1, &a, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(db, "INSERT INTO fts(body) VALUES (?1)", -1, &b, NULL);
        for (int i = 0; rc == SQLITE_OK && i < n; i++) {
                int len = snprintf(body, sizeof body, "Subject: %s %d/%d\nFrom: %s <zebra@example.org>\n\n",
                                   marker_ascii, batch, i, marker_utf8);

                while (len < 600)
                        len += snprintf(body + len, sizeof body - (size_t)len, "%s %s ", marker_utf8, marker_ascii);
                sqlite3_bind_int(a, 1, batch);
                sqlite3_bind_text(a, 2, body, len, SQLITE_STATIC);
                sqlite3_bind_text(b, 1, body, len, SQLITE_STATIC);
                rc = sqlite3_step(a);
                if (rc == SQLITE_DONE)
                        rc = sqlite3_step(b);
                if (rc == SQLITE_DONE)
                        rc = SQLITE_OK;
                sqlite3_reset(a);
                sqlite3_reset(b);
        }
        sqlite3_finalize(a);
        sqlite3_finalize(b);
        if (own)
                sqlite3_exec(db, rc == SQLITE_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
        return rc;
}

static sqlite3 *open_or_die(const char *path, const uint8_t *k) {
        sqlite3 *db = NULL;
        int r = k ? crypt_vfs_open(path, k, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db)
                  : crypt_vfs_open_plain(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db);

        if (r != 0) {
                fprintf(stderr, "FAIL cannot open %s: %d\n", path, r);
                exit(1);
        }
        return db;
}

/* Both kinds of connection get the same pragmas and page layout; a keyless open of the VFS is refused. */
static void test_open_pragmas(void) {
        for (int plain = 0; plain < 2; plain++) {
                char *dir = make_dir("pragmas");
                _cleanup_free_ char *path = path_in(dir, "mail.db");
                sqlite3 *db = open_or_die(path, plain ? NULL : key);
                uint8_t hdr[100] = {0};
                FILE *f;

                CHECK(query_int(db, "PRAGMA page_size", NULL) == 4096, "page_size");
                CHECK(query_int(db, "PRAGMA temp_store", NULL) == 2, "temp_store");
                CHECK(query_int(db, "PRAGMA mmap_size", NULL) == 0, "mmap_size");
                CHECK(exec(db, schema) == SQLITE_OK, "schema");
                sqlite3_close(db);
                f = fopen(path, "rb");
                CHECK(f && fread(hdr, 1, sizeof hdr, f) == sizeof hdr, "header");
                if (f)
                        fclose(f);
                if (plain)
                        CHECK(hdr[16] == 0x10 && hdr[17] == 0 && hdr[20] == 40, "plain layout differs");
                else
                        CHECK(memcmp(hdr, "SQLite format 3", 15) != 0, "encrypted header in plaintext");

                /* A plain open of this VFS (no key) must not create or read anything. */
                db = NULL;
                CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, CRYPT_VFS_NAME) == SQLITE_CANTOPEN,
                      "keyless open accepted");
                sqlite3_close(db);
                remove_dir(dir);
        }
        printf("ok open: same pragmas and layout plain and encrypted, keyless open refused\n");
}

/* Rows in both modes, un-checkpointed WAL, checkpoint, journal mid-transaction: no marker on disk. */
static void test_no_plaintext(const uint8_t *k, bool expect_hits) {
        char *dir = make_dir(k ? "noplain" : "plain");
        _cleanup_free_ char *path = path_in(dir, "mail.db");
        sqlite3 *db = open_or_die(path, k);
        int hits = 0, n_files, rc;

        CHECK(exec(db, "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0") == SQLITE_OK, "wal");
        CHECK(exec(db, schema) == SQLITE_OK, "schema");
        CHECK(insert_rows(db, 1, 200) == SQLITE_OK, "insert");
        hits += scan_dir(dir, &n_files, "-wal");
        printf("  un-checkpointed WAL: %d hits in %d files\n", hits, n_files);

        CHECK(exec(db, "PRAGMA wal_checkpoint(PASSIVE)") == SQLITE_OK, "checkpoint");
        CHECK(insert_rows(db, 2, 50) == SQLITE_OK, "insert");
        hits += scan_dir(dir, &n_files, "-shm");
        CHECK(exec(db, "PRAGMA wal_checkpoint(TRUNCATE)") == SQLITE_OK, "checkpoint");
        hits += scan_dir(dir, &n_files, NULL);
        printf("  after checkpoints: %d hits\n", hits);

        CHECK(exec(db, "PRAGMA journal_mode=DELETE; PRAGMA cache_size=8") == SQLITE_OK, "delete mode");
        CHECK(exec(db, "BEGIN; UPDATE msg SET body = body || ' edited' WHERE batch = 1") == SQLITE_OK, "update");
        CHECK(insert_rows(db, 3, 100) == SQLITE_OK, "insert");
        hits += scan_dir(dir, &n_files, "-journal");
        CHECK(exec(db, "COMMIT") == SQLITE_OK, "commit");
        hits += scan_dir(dir, &n_files, NULL);
        printf("  rollback journal: %d hits\n", hits);

        CHECK(query_int(db, "SELECT count(*) FROM fts WHERE fts MATCH '\"秘密の手紙\"'", &rc) == 350 && rc == SQLITE_OK,
              "fts search through the VFS");
        CHECK(query_int(db, "PRAGMA integrity_check", &rc) == -1 || rc == SQLITE_OK, "integrity");
        sqlite3_close(db);
        if (expect_hits)
                CHECK(hits > 0, "the scanner found nothing in a plain store");
        else
                CHECK(hits == 0, "%d plaintext hits", hits);
        printf("ok %s: %d marker hits\n", k ? "no plaintext (WAL, checkpoint, journal)" : "scanner sees plain store",
               hits);
        remove_dir(dir);
}

/* Every journal mode: rollbacks and savepoint rollbacks of spilled transactions replay our journal and WAL
 * records; VACUUM rewrites every page; a larger page size is refused instead of breaking the layout. */
static void test_journal_modes(void) {
        static const char *const modes[] = {"DELETE", "TRUNCATE", "PERSIST", "MEMORY", "WAL"};

        for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
                char *dir = make_dir("modes");
                _cleanup_free_ char *path = path_in(dir, "mail.db");
                sqlite3 *db = open_or_die(path, key);
                char sql[96];
                int rc;

                snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s; PRAGMA cache_size=8", modes[i]);
                CHECK(exec(db, sql) == SQLITE_OK && exec(db, schema) == SQLITE_OK, "%s", modes[i]);
                CHECK(insert_rows(db, 1, 100) == SQLITE_OK, "batch 1");
                CHECK(exec(db, "BEGIN") == SQLITE_OK && insert_rows(db, 2, 150) == SQLITE_OK &&
                              exec(db, "UPDATE msg SET body = 'gone' WHERE batch = 1; ROLLBACK") == SQLITE_OK,
                      "rollback (%s)", modes[i]);
                CHECK(exec(db, "BEGIN; SAVEPOINT a") == SQLITE_OK && insert_rows(db, 3, 150) == SQLITE_OK &&
                              exec(db, "DELETE FROM msg WHERE batch = 1; ROLLBACK TO a; RELEASE a") == SQLITE_OK &&
                              insert_rows(db, 4, 10) == SQLITE_OK && exec(db, "COMMIT") == SQLITE_OK,
                      "savepoint (%s)", modes[i]);
                CHECK(exec(db, "VACUUM") == SQLITE_OK, "vacuum (%s)", modes[i]);
                CHECK(query_int(db, "SELECT count(*) FROM msg WHERE batch = 1 AND body != 'gone'", &rc) == 100 &&
                              query_int(db, "SELECT count(*) FROM msg", &rc) == 110,
                      "rows after rollbacks (%s)", modes[i]);
                CHECK(query_int(db, "SELECT count(*) FROM fts WHERE fts MATCH 'ZEBRA'", &rc) == 110, "fts (%s)",
                      modes[i]);
                sqlite3_close(db);

                db = open_or_die(path, key);
                CHECK(query_int(db, "SELECT count(*) FROM msg", &rc) == 110, "reopen (%s)", modes[i]);
                CHECK(exec(db, "PRAGMA journal_mode=DELETE; PRAGMA page_size=8192") == SQLITE_OK, "page size");
                rc = sqlite3_exec(db, "VACUUM", NULL, NULL, NULL);
                CHECK(rc != SQLITE_OK, "8192-byte pages accepted");
                CHECK(query_int(db, "SELECT count(*) FROM msg", &rc) == 110 && rc == SQLITE_OK, "after refusal");
                sqlite3_close(db);
                CHECK(scan_dir(dir, NULL, NULL) == 0, "plaintext (%s)", modes[i]);
                printf("ok journal mode %s: rollback, savepoint, vacuum; bigger pages refused\n", modes[i]);
                remove_dir(dir);
        }
}

/* Opens (each reading page 1 without a lock first) while another process writes and checkpoints:
 * racing a checkpoint that rewrites page 1 must never look like damage. */
static void test_concurrent_open(void) {
        char *dir = make_dir("concurrent");
        _cleanup_free_ char *path = path_in(dir, "mail.db");
        sqlite3 *db = open_or_die(path, key);
        int bad = 0, rc, r;
        pid_t pid;

        CHECK(exec(db, "PRAGMA journal_mode=WAL") == SQLITE_OK && exec(db, schema) == SQLITE_OK, "setup");
        sqlite3_close(db);
        pid = fork();
        if (pid == 0) {
                db = open_or_die(path, key);
                exec(db, "PRAGMA wal_autocheckpoint=4");
                for (int i = 0;; i++) {
                        if (insert_rows(db, 1, 1) != SQLITE_OK ||
                            sqlite3_exec(db, "PRAGMA wal_checkpoint(PASSIVE)", NULL, NULL, NULL) != SQLITE_OK)
                                _exit(2);
                        if (i % 50 == 49)
                                exec(db, "DELETE FROM msg WHERE id % 2 = 0"); /* keep it small, change page 1 */
                        usleep(500);
                }
        }
        for (int i = 0; i < 300; i++) {
                db = NULL;
                r = crypt_vfs_open(path, key, SQLITE_OPEN_READWRITE, &db);
                if (r == 0)
                        query_int(db, "SELECT count(*) FROM msg", &rc);
                if (r != 0 || rc != SQLITE_OK) {
                        fprintf(stderr, "  open %d: %d / %s\n", i, r, db ? sqlite3_errmsg(db) : "");
                        bad++;
                }
                sqlite3_close(db);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        CHECK(bad == 0, "%d of 300 opens failed next to a writer", bad);
        printf("ok 300 opens beside a writing, checkpointing process\n");
        remove_dir(dir);
}

/* Child: commits batch 1, then fills a spilling batch 2 and waits to be killed. */
_Noreturn static void crash_child(const char *path, const char *mode, int fd) {
        sqlite3 *db = open_or_die(path, key);
        char sql[128];

        snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s; PRAGMA wal_autocheckpoint=0; PRAGMA cache_size=8", mode);
        if (exec(db, sql) != SQLITE_OK || exec(db, schema) != SQLITE_OK || exec(db, "BEGIN") != SQLITE_OK ||
            insert_rows(db, 1, 100) != SQLITE_OK || exec(db, "COMMIT; BEGIN") != SQLITE_OK ||
            insert_rows(db, 2, 300) != SQLITE_OK)
                _exit(2);
        if (write(fd, "x", 1) != 1)
                _exit(3);
        for (;;)
                pause();
}

static void flip_byte(const char *path, off_t off) {
        int fd = open(path, O_RDWR);
        uint8_t b;

        if (fd < 0 || pread(fd, &b, 1, off) != 1)
                abort();
        b ^= 0x01;
        if (pwrite(fd, &b, 1, off) != 1)
                abort();
        close(fd);
}

static void test_kill9(const char *mode, const char *side_file) {
        char *dir = make_dir("kill9");
        _cleanup_free_ char *path = path_in(dir, "mail.db");
        int p[2], hits, rc;
        char c;
        pid_t pid;
        sqlite3 *db;

        if (pipe(p) < 0)
                abort();
        pid = fork();
        if (pid == 0) {
                close(p[0]);
                crash_child(path, mode, p[1]);
        }
        close(p[1]);
        CHECK(read(p[0], &c, 1) == 1, "child died before the transaction was under way");
        close(p[0]);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);

        hits = scan_dir(dir, NULL, side_file);
        CHECK(hits == 0, "%d plaintext hits after kill -9 (%s)", hits, mode);

        db = open_or_die(path, key);
        CHECK(query_int(db, "SELECT count(*) FROM msg WHERE batch = 1", &rc) == 100 && rc == SQLITE_OK,
              "committed batch lost (%s): %s", mode, sqlite3_errmsg(db));
        CHECK(query_int(db, "SELECT count(*) FROM msg WHERE batch = 2", &rc) == 0, "uncommitted batch visible");
        CHECK(query_int(db, "SELECT count(*) FROM fts", &rc) == 100, "fts rows");
        {
                sqlite3_stmt *st = NULL;
                const char *res = NULL;

                if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
                    sqlite3_step(st) == SQLITE_ROW)
                        res = (const char *)sqlite3_column_text(st, 0);
                CHECK(res && strcmp(res, "ok") == 0, "integrity_check after kill -9 (%s): %s", mode,
                      res ? res : sqlite3_errmsg(db));
                sqlite3_finalize(st);
        }
        sqlite3_close(db);
        hits = scan_dir(dir, NULL, NULL);
        CHECK(hits == 0, "%d plaintext hits after recovery", hits);
        printf("ok kill -9 in %s mode: no plaintext, committed kept, uncommitted gone\n", mode);
        remove_dir(dir);
}

static char *make_store(const char *name, const uint8_t *k, int n_rows) {
        char *dir = make_dir(name), *path = path_in(dir, "mail.db");
        sqlite3 *db = open_or_die(path, k);

        CHECK(exec(db, schema) == SQLITE_OK && insert_rows(db, 1, n_rows) == SQLITE_OK, "fill");
        sqlite3_close(db);
        free(dir);
        return path;
}

static void remove_store(char *path) {
        char *dir = strdup(path);

        *strrchr(dir, '/') = '\0';
        remove_dir(dir);
        free(path);
}

/* Reads every row and returns the first failure code (SQLITE_OK if none). */
static int read_all(const char *path, const uint8_t *k, int *openp) {
        sqlite3 *db = NULL;
        int rc = SQLITE_OK;

        *openp = crypt_vfs_open(path, k, SQLITE_OPEN_READWRITE, &db);
        if (*openp != 0)
                return SQLITE_OK;
        query_int(db, "SELECT sum(length(body)) FROM msg", &rc);
        if (rc == SQLITE_OK) {
                /* Reads every page; reports a page it cannot read as a row, not as an error. */
                sqlite3_stmt *st = NULL;

                rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL);
                if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                        const char *res = (const char *)sqlite3_column_text(st, 0);

                        rc = res && strcmp(res, "ok") == 0 ? SQLITE_OK : SQLITE_IOERR_DATA;
                        if (rc != SQLITE_OK)
                                printf("  integrity_check: %s\n", res ? res : "(null)");
                }
                sqlite3_finalize(st);
        }
        if (rc != SQLITE_OK)
                printf("  read error: %s (sqlite: %s)\n", crypt_vfs_errmsg(db, rc), sqlite3_errmsg(db));
        sqlite3_close(db);
        return rc;
}

static void test_tamper(void) {
        static const off_t where[] = {0, 5, 100, 3000, 4056, 4090, 2 * 4096 + 77, 5 * 4096 + 4060};

        for (size_t i = 0; i < ARRAY_SIZE(where); i++) {
                char *path = make_store("tamper", key, 60);
                int r, rc;

                flip_byte(path, where[i]);
                rc = read_all(path, key, &r);
                CHECK(r == CRYPT_VFS_E_DAMAGED || (r == 0 && crypt_vfs_is_damage(rc)), "flip at %lld: open %d, read %d",
                      (long long)where[i], r, rc);
                printf("ok flipped byte at %lld: open %d, read %s\n", (long long)where[i], r,
                       rc == SQLITE_OK ? "ok" : CRYPT_VFS_DAMAGED_MSG);
                remove_store(path);
        }
}

/* Runs crash_child on a new store in mode and kills it mid-transaction; returns the store path. */
static char *crashed_store(const char *mode) {
        char *dir = make_dir("crashed"), *path = path_in(dir, "mail.db");
        int p[2];
        char c;
        pid_t pid;

        if (pipe(p) < 0)
                abort();
        pid = fork();
        if (pid == 0) {
                close(p[0]);
                crash_child(path, mode, p[1]);
        }
        close(p[1]);
        CHECK(read(p[0], &c, 1) == 1, "child died early");
        close(p[0]);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        free(dir);
        return path;
}

/* A WAL frame: 24-byte header, then the page. */
#define WAL_FRAME (24 + 4096)

static off_t file_size(const char *path) {
        struct stat st;

        return stat(path, &st) == 0 ? st.st_size : -1;
}

/* A flipped byte in the WAL's last frame (the commit frame of the last transaction): recovery ends the log
 * before it, as SQLite does for a torn frame. That transaction is gone, older ones stay, nothing altered is
 * read. (Telling this from the loss of an unsynced tail at power failure is impossible by design.) */
static void test_tamper_wal(void) {
        char *path = crashed_store("WAL");
        _cleanup_free_ char *wal = NULL;
        sqlite3 *db = open_or_die(path, key);
        long long batch1;
        off_t size;
        int r, rc = SQLITE_OK;

        /* Recovered store; checkpoint it, then commit batch 2 into a WAL that close leaves behind. */
        CHECK(exec(db, "PRAGMA wal_autocheckpoint=0; PRAGMA wal_checkpoint(TRUNCATE)") == SQLITE_OK, "checkpoint");
        CHECK(sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL) == SQLITE_OK, "no checkpoint");
        CHECK(insert_rows(db, 2, 5) == SQLITE_OK, "batch 2");
        CHECK(exec(db, "INSERT INTO msg(batch, body) VALUES (3, 'last')") == SQLITE_OK, "batch 3");
        sqlite3_close(db);
        if (asprintf(&wal, "%s-wal", path) < 0)
                abort();
        size = file_size(wal);
        CHECK(size > 32 && (size - 32) % WAL_FRAME == 0, "WAL size %lld", (long long)size);
        flip_byte(wal, size - WAL_FRAME + 24 + 1000);

        r = crypt_vfs_open(path, key, SQLITE_OPEN_READWRITE, &db);
        CHECK(r == 0, "open after WAL tamper: %d", r);
        if (r == 0) {
                batch1 = query_int(db, "SELECT count(*) FROM msg WHERE batch = 1", &rc);
                CHECK(batch1 == 100 && rc == SQLITE_OK, "batch 1: %lld (%s)", batch1, sqlite3_errmsg(db));
                CHECK(query_int(db, "SELECT count(*) FROM msg WHERE batch = 2", &rc) == 5, "batch 2 lost");
                CHECK(query_int(db, "SELECT count(*) FROM msg WHERE batch = 3", &rc) == 0, "tampered commit kept");
                CHECK(query_int(db, "SELECT count(*) FROM fts", &rc) == 105, "fts rows");
                sqlite3_close(db);
        }
        printf("ok flipped byte in the last WAL frame: log ends before it, older data intact\n");
        remove_store(path);
}

/* Copies n bytes of path at from over the bytes at to (both inside the file). */
static void copy_range(const char *path, off_t from, off_t to, size_t n) {
        int fd = open(path, O_RDWR);
        uint8_t buf[WAL_FRAME];

        if (fd < 0 || n > sizeof buf || pread(fd, buf, n, from) != (ssize_t)n || pwrite(fd, buf, n, to) != (ssize_t)n)
                abort();
        close(fd);
}

static uint8_t *slurp(const char *path, off_t *sizep) {
        int fd = open(path, O_RDONLY);
        off_t size = file_size(path);
        uint8_t *p = size > 0 ? malloc((size_t)size) : NULL;

        if (fd < 0 || !p || pread(fd, p, (size_t)size, 0) != size)
                abort();
        close(fd);
        *sizep = size;
        return p;
}

static void spill(const char *path, const uint8_t *p, off_t size) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        if (fd < 0 || write(fd, p, (size_t)size) != size)
                abort();
        close(fd);
}

/* Two transactions each change pages 2 and 3 (tables a and b): WAL frames 0-3 hold pages 2, 3, 2, 3. A page
 * part in a WAL frame is encrypted exactly as the database will hold it (so a checkpoint copies the
 * ciphertext), but only the frame's own tag vouches for it. An older frame's page replayed over a newer frame
 * of the same page, two frames' pages swapped, or a whole frame moved, must never be read: recovery ends the
 * log before the altered frame (the second transaction is gone as a whole, never half-applied as a1/b2), and
 * a reader of a live WAL gets the damage error. Nor is a WAL page a database page: put into the database
 * file at its own place (with the WAL deleted) it fails, or it would apply half of the second transaction. */
static void test_tamper_wal_frames(void) {
        static const struct {
                const char *what;
                int from, to;
                bool swap, whole;
                int flip; /* > 0: flip this byte of frame `to` instead */
        } cases[] = {
                {"older page replayed over a newer frame of it", 0, 2, false, false, 0},
                {"pages of two frames swapped", 2, 3, true, false, 0},
                {"older frame replayed whole", 0, 2, false, true, 0},
                {"frame header byte flipped", 0, 2, false, false, 5},
                {"page byte flipped", 0, 2, false, false, 24 + 2000},
                {"nonce byte flipped", 0, 2, false, false, 24 + 4056 + 3},
                {"tag byte flipped", 0, 2, false, false, 24 + 4080 + 3},
        };
        char *dir = make_dir("walframes"), *path = path_in(dir, "mail.db");
        _cleanup_free_ char *wal = NULL, *shm = NULL;
        sqlite3 *db = open_or_die(path, key), *db2 = NULL;
        _cleanup_free_ uint8_t *db_bytes = NULL, *wal_bytes = NULL;
        off_t db_size, wal_size;
        int r, rc = SQLITE_OK;

        if (asprintf(&wal, "%s-wal", path) < 0 || asprintf(&shm, "%s-shm", path) < 0)
                abort();
        CHECK(exec(db, "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;"
                       "CREATE TABLE a(id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE b(id INTEGER PRIMARY KEY, v TEXT);"
                       "INSERT INTO a VALUES (1, 'a0'); INSERT INTO b VALUES (1, 'b0');"
                       "PRAGMA wal_checkpoint(TRUNCATE)") == SQLITE_OK,
              "setup");
        CHECK(sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL) == SQLITE_OK, "no checkpoint");
        CHECK(exec(db, "BEGIN; UPDATE a SET v = 'a1'; UPDATE b SET v = 'b1'; COMMIT;"
                       "BEGIN; UPDATE a SET v = 'a2'; UPDATE b SET v = 'b2'; COMMIT") == SQLITE_OK,
              "updates");
        sqlite3_close(db);
        CHECK(file_size(wal) == 32 + 4 * WAL_FRAME, "WAL size %lld", (long long)file_size(wal));
        db_bytes = slurp(path, &db_size);
        wal_bytes = slurp(wal, &wal_size);

        for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
                off_t from = 32 + cases[k].from * WAL_FRAME, to = 32 + cases[k].to * WAL_FRAME;
                off_t skip = cases[k].whole ? 0 : 24;
                size_t n = (size_t)(WAL_FRAME - skip);

                spill(path, db_bytes, db_size);
                spill(wal, wal_bytes, wal_size);
                (void)unlink(shm);
                if (cases[k].flip > 0) {
                        flip_byte(wal, to + cases[k].flip);
                } else if (cases[k].swap) {
                        copy_range(wal, to + skip, wal_size, n); /* park it past the end, then truncate */
                        copy_range(wal, from + skip, to + skip, n);
                        copy_range(wal, wal_size, from + skip, n);
                        CHECK(truncate(wal, wal_size) == 0, "truncate");
                } else
                        copy_range(wal, from + skip, to + skip, n);
                r = crypt_vfs_open(path, key, SQLITE_OPEN_READWRITE, &db);
                CHECK(r == 0, "%s: open %d", cases[k].what, r);
                if (r != 0)
                        continue;
                CHECK(query_int(db, "SELECT count(*) FROM a WHERE v = 'a1'", &rc) == 1 && rc == SQLITE_OK &&
                              query_int(db, "SELECT count(*) FROM b WHERE v = 'b1'", &rc) == 1 && rc == SQLITE_OK,
                      "%s: the first transaction must stand alone (%s)", cases[k].what, sqlite3_errmsg(db));
                CHECK(query_int(db, "SELECT count(*) FROM b WHERE v = 'b2'", &rc) == 0, "%s: half a transaction",
                      cases[k].what);
                sqlite3_close(db);
                printf("ok WAL %s: recovery ends the log before it\n", cases[k].what);
        }

        /* A live WAL (its wal-index already built): a reader meets the replayed page and must not use it. */
        spill(path, db_bytes, db_size);
        spill(wal, wal_bytes, wal_size);
        (void)unlink(shm);
        db = open_or_die(path, key);
        CHECK(sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL) == SQLITE_OK, "no checkpoint");
        CHECK(query_int(db, "SELECT count(*) FROM a WHERE v = 'a2'", &rc) == 1 && rc == SQLITE_OK, "live: a2");
        copy_range(wal, 32 + 24, 32 + 2 * WAL_FRAME + 24, 4096);
        r = crypt_vfs_open(path, key, SQLITE_OPEN_READWRITE, &db2);
        CHECK(r == 0, "live: second open %d", r);
        if (r == 0) {
                query_int(db2, "SELECT count(*) FROM a WHERE v = 'a1'", &rc);
                CHECK(crypt_vfs_is_damage(rc), "live: replayed page read: %d", rc);
                printf("ok WAL older page replayed under a live reader: %s\n", crypt_vfs_errmsg(db2, rc));
                sqlite3_close(db2);
        }
        sqlite3_close(db);

        /* Frame 2's page (page 2 of the second transaction) put into the database file, the WAL gone. */
        spill(path, db_bytes, db_size);
        spill(wal, wal_bytes, wal_size);
        (void)unlink(shm);
        {
                int fd_wal = open(wal, O_RDONLY), fd_db = open(path, O_RDWR);
                uint8_t page[4096];

                if (fd_wal < 0 || fd_db < 0 || pread(fd_wal, page, sizeof page, 32 + 2 * WAL_FRAME + 24) != 4096 ||
                    pwrite(fd_db, page, sizeof page, 4096) != 4096)
                        abort();
                close(fd_wal);
                close(fd_db);
        }
        (void)unlink(wal);
        r = crypt_vfs_open(path, key, SQLITE_OPEN_READWRITE, &db);
        CHECK(r == 0, "WAL page in the database: open %d", r);
        if (r == 0) {
                long long n = query_int(db, "SELECT count(*) FROM a WHERE v = 'a2'", &rc);

                CHECK(crypt_vfs_is_damage(rc), "WAL page in the database: read %d, %lld rows of a2", rc, n);
                printf("ok WAL page put into the database file: %s\n", crypt_vfs_errmsg(db, rc));
                sqlite3_close(db);
        }
        free(dir);
        remove_store(path);
}

/* A flipped byte in a hot journal's record: rollback cannot trust it, the store reports damage. */
static void test_tamper_journal(void) {
        char *path = crashed_store("DELETE");
        _cleanup_free_ char *jn = NULL;
        uint8_t hdr[28];
        uint32_t sector;
        FILE *f;
        sqlite3 *db = NULL;
        int r;

        if (asprintf(&jn, "%s-journal", path) < 0 || !(f = fopen(jn, "rb")) || fread(hdr, 1, 28, f) != 28)
                abort();
        fclose(f);
        sector = (uint32_t)hdr[20] << 24 | (uint32_t)hdr[21] << 16 | (uint32_t)hdr[22] << 8 | hdr[23];
        CHECK(file_size(jn) > (off_t)sector + 4104, "journal holds a record");
        flip_byte(jn, (off_t)sector + 4 + 1000);
        r = crypt_vfs_open(path, key, SQLITE_OPEN_READWRITE, &db);
        CHECK(r == CRYPT_VFS_E_DAMAGED, "open with a tampered hot journal: %d", r);
        sqlite3_close(db);
        printf("ok flipped byte in a hot journal record: %s\n", CRYPT_VFS_DAMAGED_MSG);
        remove_store(path);
}

static void test_wrong_key(void) {
        char *path = make_store("wrongkey", key, 20);
        sqlite3 *db = NULL;
        int r;

        r = crypt_vfs_open(path, other_key, SQLITE_OPEN_READWRITE, &db);
        CHECK(r == CRYPT_VFS_E_DAMAGED && !db, "wrong key: %d", r);
        r = crypt_vfs_open_plain(path, SQLITE_OPEN_READWRITE, &db);
        CHECK(r == CRYPT_VFS_E_DAMAGED && !db, "plain open of encrypted store: %d", r);
        r = crypt_vfs_open(path, key, SQLITE_OPEN_READWRITE, &db);
        CHECK(r == 0, "right key: %d", r);
        sqlite3_close(db);
        printf("ok wrong key: %s\n", CRYPT_VFS_DAMAGED_MSG);
        remove_store(path);

        path = make_store("plainstore", NULL, 5);
        r = crypt_vfs_open(path, key, SQLITE_OPEN_READWRITE, &db);
        CHECK(r == CRYPT_VFS_E_DAMAGED, "encrypted open of a plain store: %d", r);
        printf("ok plain store refused by the encrypting VFS\n");
        remove_store(path);
}

static void test_rekey(void) {
        char *path = make_store("rekey", key, 150);
        sqlite3 *db = open_or_die(path, key);
        long long before, after = -2;
        int r, rc;

        exec(db, "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0");
        insert_rows(db, 2, 30); /* some rows only in the WAL */
        before = query_int(db, "SELECT sum(length(body)) + count(*) FROM msg", NULL);
        sqlite3_close(db);

        r = crypt_vfs_rekey(path, other_key, key);
        CHECK(r == CRYPT_VFS_E_DAMAGED, "rekey with the wrong old key: %d", r);
        r = crypt_vfs_rekey(path, key, other_key);
        CHECK(r == 0, "rekey: %d", r);
        r = crypt_vfs_open(path, key, SQLITE_OPEN_READWRITE, &db);
        CHECK(r == CRYPT_VFS_E_DAMAGED, "old key still opens: %d", r);
        r = crypt_vfs_open(path, other_key, SQLITE_OPEN_READWRITE, &db);
        CHECK(r == 0, "new key: %d", r);
        if (r == 0) {
                after = query_int(db, "SELECT sum(length(body)) + count(*) FROM msg", &rc);
                CHECK(after == before, "rows differ after rekey: %lld vs %lld", after, before);
                CHECK(query_int(db, "SELECT count(*) FROM fts WHERE fts MATCH '手紙テ'", &rc) == 180, "fts");
                sqlite3_close(db);
        }
        {
                char *dir = strdup(path);

                *strrchr(dir, '/') = '\0';
                CHECK(scan_dir(dir, NULL, NULL) == 0, "plaintext after rekey");
                free(dir);
        }
        printf("ok rekey: data intact under the new key, old key refused\n");
        remove_store(path);
}

/* The child of test_cipher_interop(), on libsodium: reads path (expecting n rows), then adds 50 in the WAL. */
static int interop_child(const char *path, const char *hex, long long n) {
        sqlite3 *db = NULL;
        uint8_t k[32];
        int rc = SQLITE_OK;

        CHECK(!crypt_vfs_uses_openssl(), "the child seals with libsodium");
        if (sodium_hex2bin(k, sizeof k, hex, strlen(hex), NULL, NULL, NULL) != 0 ||
            crypt_vfs_open(path, k, SQLITE_OPEN_READWRITE, &db) != 0)
                return 1;
        CHECK(query_int(db, "SELECT count(*) FROM msg", &rc) == n && rc == SQLITE_OK, "child reads %lld rows", n);
        CHECK(query_int(db, "SELECT count(*) FROM fts WHERE fts MATCH 'ZEBRA'", &rc) == n && rc == SQLITE_OK,
              "child searches");
        CHECK(exec(db, "PRAGMA wal_autocheckpoint=0") == SQLITE_OK && insert_rows(db, 3, 50) == SQLITE_OK,
              "child writes");
        sqlite3_close(db);
        return failures ? 1 : 0;
}

/* A store sealed by one implementation is read and written by the other, main file and WAL both. */
static void test_cipher_interop(void) {
        char *path = make_store("interop", key, 200), hex[65], n[16];
        sqlite3 *db = open_or_die(path, key);
        int rc = SQLITE_OK, status = -1;
        pid_t pid;

        if (!crypt_vfs_uses_openssl()) {
                printf("ok cipher interop: skipped, this process seals with libsodium already\n");
                sqlite3_close(db);
                remove_store(path);
                return;
        }
        /* Rows in the WAL too: the parent keeps the store open, so nobody checkpoints them. */
        CHECK(exec(db, "PRAGMA wal_autocheckpoint=0") == SQLITE_OK && insert_rows(db, 2, 100) == SQLITE_OK, "WAL rows");
        sodium_bin2hex(hex, sizeof hex, key, sizeof key);
        snprintf(n, sizeof n, "%d", 300);
        pid = fork();
        if (pid == 0) {
                setenv("TEGAMI_CRYPT_NO_OPENSSL", "1", 1);
                execl("/proc/self/exe", "test-crypt-vfs", "--interop-child", path, hex, n, (char *)NULL);
                _exit(127);
        }
        CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the libsodium child read and wrote the store (status %d)", status);
        CHECK(query_int(db, "SELECT count(*) FROM msg", &rc) == 350 && rc == SQLITE_OK,
              "parent reads the child's rows");
        CHECK(exec(db, "PRAGMA wal_checkpoint(TRUNCATE)") == SQLITE_OK, "checkpoint");
        sqlite3_close(db);
        CHECK(read_all(path, key, &rc) == SQLITE_OK && rc == 0, "integrity after the checkpoint");
        printf("ok cipher interop: OpenSSL and libsodium pages are the same cipher\n");
        remove_store(path);
}

static void sqlite_log_cb(void *userdata, int code, const char *msg) {
        fprintf(stderr, "  sqlite log %d: %s\n", code, msg);
}

int main(int argc, char **argv) {
        setvbuf(stdout, NULL, _IOLBF, 0); /* keep "ok" lines in order with FAIL lines on stderr */
        if (getenv("TEGAMI_TEST_SQLITE_LOG"))
                sqlite3_config(SQLITE_CONFIG_LOG, sqlite_log_cb, NULL);
        if (sodium_init() < 0 || crypt_vfs_register() < 0)
                return 1;
        if (argc == 5 && strcmp(argv[1], "--interop-child") == 0)
                return interop_child(argv[2], argv[3], atoll(argv[4]));
        CHECK(crypt_vfs_register() == 0, "register twice");
        randombytes_buf(key, sizeof key);
        randombytes_buf(other_key, sizeof other_key);

        test_open_pragmas();
        test_no_plaintext(NULL, true);
        test_no_plaintext(key, false);
        test_journal_modes();
        test_concurrent_open();
        test_kill9("WAL", "-wal");
        test_kill9("DELETE", "-journal");
        test_tamper();
        test_tamper_wal();
        test_tamper_wal_frames();
        test_tamper_journal();
        test_wrong_key();
        test_rekey();
        test_cipher_interop();

        if (failures)
                fprintf(stderr, "%d failure(s)\n", failures);
        return failures ? 1 : 0;
}
