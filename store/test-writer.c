/*
 * Tests the writer thread on its own: group commit, one failing job not
 * undoing its neighbours, barrier jobs committing with synchronous=FULL, every callback exactly once in
 * submission order, draining on close, and refusal after close.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/db.h"
#include "store/test-util.h"
#include "store/writer.h"

#define N_JOBS 2000

typedef struct Job {
        int n;     /* the row it inserts */
        bool fail; /* insert, then fail: the insert must vanish */
        int calls; /* callbacks seen */
        int r;
} Job;

static Job jobs[N_JOBS];
static int next_done;
static bool closed;

static int job_run(sqlite3 *db, void *userdata) {
        Job *j = userdata;
        char sql[128];

        snprintf(sql, sizeof(sql), "INSERT INTO t (n) VALUES (%d)", j->n);
        if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
                return -EIO;
        return j->fail ? -EPERM : 0;
}

static void job_done(int r, void *userdata) {
        Job *j = userdata;

        /* In submission order, each once. */
        check(j == &jobs[next_done]);
        next_done++;
        j->calls++;
        j->r = r;
}

/* Reads the synchronous level the job's commit will use. */
typedef struct SyncProbe {
        bool done;
        int level;
} SyncProbe;

static int sync_probe_run(sqlite3 *db, void *userdata) {
        SyncProbe *p = userdata;
        sqlite3_stmt *st = NULL;

        check(sqlite3_prepare_v2(db, "PRAGMA synchronous", -1, &st, NULL) == SQLITE_OK);
        check(sqlite3_step(st) == SQLITE_ROW);
        p->level = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        return 0;
}

static void sync_probe_done(int r, void *userdata) {
        SyncProbe *p = userdata;

        check(r == 0 && !p->done);
        p->done = true;
}

/* A barrier group commits with synchronous=FULL (2), a bulk one with NORMAL (1). */
static void test_durability(uv_loop_t *loop, StoreWriter *w) {
        SyncProbe bulk = {}, barrier = {}, after = {};

        check(store_writer_submit(w, STORE_BULK, sync_probe_run, sync_probe_done, &bulk) == 0);
        while (!bulk.done)
                uv_run(loop, UV_RUN_ONCE);
        check(store_writer_submit(w, STORE_BARRIER, sync_probe_run, sync_probe_done, &barrier) == 0);
        while (!barrier.done)
                uv_run(loop, UV_RUN_ONCE);
        check(store_writer_submit(w, STORE_BULK, sync_probe_run, sync_probe_done, &after) == 0);
        while (!after.done)
                uv_run(loop, UV_RUN_ONCE);
        check(bulk.level == 1 && barrier.level == 2 && after.level == 1);
}

static void closed_cb(void *userdata) {
        closed = true;
}

static int count_rows(const char *path, const char *where) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        char sql[128];
        int n;

        check(store_db_open(path, NULL, SQLITE_OPEN_READONLY, &db) == 0);
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM t WHERE %s", where);
        check(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK);
        check(sqlite3_step(st) == SQLITE_ROW);
        n = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return n;
}

int main(void) {
        char dir[] = "/tmp/tegami-test-writer-XXXXXX", path[256];
        uv_loop_t loop;
        StoreWriter *w;
        sqlite3 *db;
        uint64_t n_commits, n_jobs;
        int n_failed = 0;

        check(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/w.db", dir);
        check(uv_loop_init(&loop) == 0);

        check(store_db_open(path, NULL, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db) == 0);
        check(sqlite3_exec(db, "CREATE TABLE t (n INTEGER)", NULL, NULL, NULL) == SQLITE_OK);
        check(store_writer_new(&loop, db, NULL, &w) == 0);
        test_durability(&loop, w);

        for (int i = 0; i < N_JOBS; i++) {
                jobs[i] = (Job){.n = i, .fail = i % 7 == 3};
                n_failed += jobs[i].fail;
                check(store_writer_submit(w, i % 100 == 99 ? STORE_BARRIER : STORE_BULK, job_run, job_done, &jobs[i]) ==
                      0);
        }
        /* Let some complete, then close with the rest still queued: they drain. */
        uv_run(&loop, UV_RUN_ONCE);
        store_writer_get_stats(w, &n_commits, &n_jobs, NULL);
        store_writer_close(w, closed_cb, NULL);
        check(store_writer_submit(w, STORE_BULK, job_run, job_done, &jobs[0]) == -ESHUTDOWN);
        uv_run(&loop, UV_RUN_DEFAULT);

        check(closed);
        check(next_done == N_JOBS);
        for (int i = 0; i < N_JOBS; i++) {
                check(jobs[i].calls == 1);
                check(jobs[i].r == (jobs[i].fail ? -EPERM : 0));
        }
        /* Failed jobs left nothing; their neighbours all committed. */
        check(count_rows(path, "1") == N_JOBS - n_failed);
        check(count_rows(path, "n % 7 = 3") == 0);
        printf("%d jobs, %d failed on purpose; stats before close: %llu commits for %llu jobs\n", N_JOBS, n_failed,
               (unsigned long long)n_commits, (unsigned long long)n_jobs);

        check(uv_loop_close(&loop) == 0);
        unlink(path);
        rmdir(dir);
        return 0;
}
