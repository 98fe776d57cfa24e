/*
 * Helper for test-crash.py (not a test by itself).
 *
 *   test-crash-helper run DB    stores batches through the writer thread
 *                               forever, printing each batch id once its
 *                               callback reports it committed;
 *   test-crash-helper check DB  reads the ids printed by killed runs on stdin
 *                               and checks the store: integrity_check ok,
 *                               every reported batch whole, no batch half.
 *
 * A batch is one writer job inserting ROWS rows and one marker row (and
 * deleting an old batch the same way); groups of
 * jobs commit together, so a batch can only be all there or all gone. The
 * store is encrypted when this build has the encrypting VFS (a fixed test key).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"
#include "store/store.h"
#include "store/test-util.h"

#define ROWS 20
/* Batches older than this are deleted by the batch KEEP later, in the same job,
 * so the file stays small; a run reports far fewer than KEEP batches. */
#define KEEP          5000
#define STRINGIFY_(x) #x
#define STRINGIFY(x)  STRINGIFY_(x)
#define IN_FLIGHT     64

static const uint8_t test_key[32] = "tegami crash test key, 32 bytes";
static uv_loop_t loop;
static Store *store;
static int64_t next_batch;
static bool have_key;

typedef struct Batch {
        int64_t id;
} Batch;

static int setup_run(sqlite3 *db, void *userdata) {
        sqlite3_stmt *st = NULL;
        int rc;

        rc = sqlite3_exec(db,
                          "CREATE TABLE IF NOT EXISTS crash_rows (batch INTEGER NOT NULL, n INTEGER NOT NULL,"
                          " pad BLOB NOT NULL);"
                          "CREATE INDEX IF NOT EXISTS crash_rows_batch ON crash_rows(batch);"
                          "CREATE TABLE IF NOT EXISTS crash_markers (batch INTEGER PRIMARY KEY);",
                          NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                return store_db_errno(rc);
        /* Start above every id any earlier run may have committed. */
        rc = sqlite3_prepare_v2(db,
                                "SELECT max(coalesce((SELECT max(batch) FROM crash_rows), 0),"
                                " coalesce((SELECT max(batch) FROM crash_markers), 0))",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_db_errno(rc);
        if (sqlite3_step(st) == SQLITE_ROW)
                next_batch = sqlite3_column_int64(st, 0) + 1;
        sqlite3_finalize(st);
        return 0;
}

static int batch_run(sqlite3 *db, void *userdata) {
        Batch *b = userdata;
        sqlite3_stmt *st = NULL;
        uint8_t pad[200];
        int rc = SQLITE_OK;

        memset(pad, (int)(b->id & 0xff), sizeof(pad));
        if (sqlite3_prepare_v2(db, "INSERT INTO crash_rows (batch, n, pad) VALUES (?, ?, ?)", -1, &st, NULL) !=
            SQLITE_OK)
                return -EIO;
        for (int i = 0; i < ROWS && rc == SQLITE_OK; i++) {
                sqlite3_bind_int64(st, 1, b->id);
                sqlite3_bind_int(st, 2, i);
                sqlite3_bind_blob(st, 3, pad, sizeof(pad), SQLITE_STATIC);
                rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
                sqlite3_reset(st);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_OK)
                return -EIO;
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "INSERT INTO crash_markers (batch) VALUES (%lld);"
                 "DELETE FROM crash_rows WHERE batch = %lld;"
                 "DELETE FROM crash_markers WHERE batch = %lld;",
                 (long long)b->id, (long long)(b->id - KEEP), (long long)(b->id - KEEP));
        return store_db_errno(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

static void submit_batch(void);

static void batch_done(int r, void *userdata) {
        Batch *b = userdata;

        check(r == 0);
        printf("%lld\n", (long long)b->id);
        fflush(stdout);
        free(b);
        submit_batch();
}

static void submit_batch(void) {
        Batch *b = malloc(sizeof(*b));

        check(b);
        b->id = next_batch++;
        check(store_submit(store, b->id % 10 == 0 ? STORE_BARRIER : STORE_BULK, batch_run, batch_done, b) == 0);
}

static int run(const char *path) {
        Wait w = {};

        check(store_open(&loop, path, have_key ? test_key : NULL, &store) == 0);
        check(store_submit(store, STORE_BARRIER, setup_run, wait_done_cb, &w) == 0);
        check(wait_for(&loop, &w) == 0);
        for (int i = 0; i < IN_FLIGHT; i++)
                submit_batch();
        uv_run(&loop, UV_RUN_DEFAULT); /* until killed */
        return 1;
}

static int64_t query_int(sqlite3 *db, const char *sql, int64_t arg) {
        sqlite3_stmt *st = NULL;
        int64_t v;

        check(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK);
        if (sqlite3_bind_parameter_count(st) > 0)
                sqlite3_bind_int64(st, 1, arg);
        check(sqlite3_step(st) == SQLITE_ROW);
        v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return v;
}

static int check_store(const char *path) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        long long id;
        int64_t n_reported = 0, n_markers, n_bad;
        const unsigned char *ic;

        check(store_db_open(path, have_key ? test_key : NULL, SQLITE_OPEN_READWRITE, &db) == 0);
        check(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK);
        check(sqlite3_step(st) == SQLITE_ROW);
        ic = sqlite3_column_text(st, 0);
        if (!ic || strcmp((const char *)ic, "ok") != 0) {
                fprintf(stderr, "integrity_check: %s\n", ic ? (const char *)ic : "(null)");
                return 1;
        }
        sqlite3_finalize(st);

        /* Tables may not exist if every run was killed before setup committed. */
        if (query_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'crash_markers'", 0) == 0) {
                while (scanf("%lld", &id) == 1)
                        n_reported++;
                sqlite3_close(db);
                if (n_reported) {
                        fprintf(stderr, "%lld batches reported but no table\n", (long long)n_reported);
                        return 1;
                }
                printf("ok: nothing committed yet\n");
                return 0;
        }

        while (scanf("%lld", &id) == 1) {
                n_reported++;
                if (query_int(db, "SELECT count(*) FROM crash_markers WHERE batch = ?", id) != 1 ||
                    query_int(db, "SELECT count(*) FROM crash_rows WHERE batch = ?", id) != ROWS) {
                        fprintf(stderr, "batch %lld was reported committed but is not whole\n", id);
                        return 1;
                }
        }
        /* All-or-nothing: every batch with any row has all rows and its marker. */
        n_bad = query_int(db,
                          "SELECT count(*) FROM (SELECT batch, count(*) AS n FROM crash_rows GROUP BY batch)"
                          " AS r LEFT JOIN crash_markers AS m USING (batch)"
                          " WHERE r.n != " STRINGIFY(ROWS) " OR m.batch IS NULL",
                          0);
        n_bad += query_int(db,
                           "SELECT count(*) FROM crash_markers AS m WHERE"
                           " (SELECT count(*) FROM crash_rows AS r WHERE r.batch = m.batch) != " STRINGIFY(ROWS),
                           0);
        n_markers = query_int(db, "SELECT count(*) FROM crash_markers", 0);
        sqlite3_close(db);
        if (n_bad) {
                fprintf(stderr, "%lld half-present batches\n", (long long)n_bad);
                return 1;
        }
        printf("ok: %lld reported batches whole; %lld batches stored, none half\n", (long long)n_reported,
               (long long)n_markers);
        return 0;
}

int main(int argc, char **argv) {
        if (argc != 3) {
                fprintf(stderr, "usage: %s run|check DB\n", argv[0]);
                return 2;
        }
        have_key = store_db_have_encryption();
        check(uv_loop_init(&loop) == 0);
        if (strcmp(argv[1], "run") == 0)
                return run(argv[2]);
        if (strcmp(argv[1], "check") == 0)
                return check_store(argv[2]);
        return 2;
}
