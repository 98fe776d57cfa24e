/*
 * The store's writer thread: the only thread that writes to the database.
 * The libuv loop hands it jobs; it runs them in order, groups the jobs that
 * queued up meanwhile into one transaction (group commit), and reports each
 * job back on the loop through a uv_async_t.
 */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <uv.h>

typedef struct StoreWriter StoreWriter;

/* How durable a job's commit must be before its callback runs. */
typedef enum StoreDurability {
        /* Committed to the WAL with synchronous=NORMAL: survives a crash of
         * the process, may be lost with the last few commits on power loss. */
        STORE_BULK,
        /* The WAL is fsynced (synchronous=FULL) before the callback: survives
         * power loss, and so does every job committed before it. */
        STORE_BARRIER,
} StoreDurability;

/* Runs on the writer thread inside the group's transaction (each job in its own
 * savepoint). Returns 0 or a negative errno; on failure the job's changes are
 * rolled back and the other jobs of the group still commit. */
typedef int (*StoreJobRunFn)(sqlite3 *db, void *userdata);

/* Runs on the loop thread, exactly once per accepted job, after the commit (or
 * its failure): r is the run function's result, or the commit's error. */
typedef void (*StoreJobDoneFn)(int r, void *userdata);

/* Runs on the loop thread once the writer has drained and let go of its loop handle. */
typedef void (*StoreWriterClosedFn)(void *userdata);

/* Starts the writer thread, which takes ownership of db (a connection in WAL
 * mode) and closes it at the end. checkpoint_db, a second connection to the
 * same file or NULL, is always taken over: it goes to a checkpointer thread
 * (NULL: SQLite's automatic checkpoints on the writer thread). On failure db
 * is left to the caller and checkpoint_db is closed. */
int store_writer_new(uv_loop_t *loop, sqlite3 *db, sqlite3 *checkpoint_db, StoreWriter **wp);

/* Queues a job. Returns 0, or -ESHUTDOWN once store_writer_close() was called;
 * when it fails, done is never called. */
int store_writer_submit(StoreWriter *w, StoreDurability durability, StoreJobRunFn run, StoreJobDoneFn done,
                        void *userdata);

/* Finishes every queued job (their callbacks still run), stops the thread,
 * closes the connection and frees w; closed_cb (may be NULL) runs after. */
void store_writer_close(StoreWriter *w, StoreWriterClosedFn closed_cb, void *userdata);

/* Counts for tests and benchmarks: transactions committed, jobs run and
 * background checkpoints so far. Any pointer may be NULL. */
void store_writer_get_stats(StoreWriter *w, uint64_t *n_commitsp, uint64_t *n_jobsp, uint64_t *n_checkpointsp);
