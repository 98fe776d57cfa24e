/*
 * What the store's modules share and nothing outside store/ may use: the
 * Store struct, the write-operation plumbing and SQLite helpers.
 */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/db.h"
#include "store/store.h"
#include "store/writer.h"

/* One store_body_wait_drain() waiter. */
typedef struct StoreDrainWaiter {
        struct StoreDrainWaiter *next;
        void (*cb)(void *userdata);
        void *userdata;
} StoreDrainWaiter;

struct Store {
        uv_loop_t *loop;
        StoreWriter *writer;
        sqlite3 *read_db; /* loop thread only */
        uint8_t *cid_key; /* 32 bytes, sodium_malloc'd; read-only after open */
        StoreClosedFn closed_cb;
        void *closed_userdata;
        uint64_t body_queued;            /* body bytes of every writer waiting for the writer thread */
        struct StoreDrainWaiter *drain_waiters; /* store_body_wait_drain() */
};

/* One asynchronous write: embed as the first member of an op-specific struct.
 * The run function fills id; store_op_done() calls the user's callback and
 * then free_fn (or free()). */
typedef struct StoreOp StoreOp;
struct StoreOp {
        Store *store;
        StoreIdFn id_cb;
        StoreDoneFn done_cb;
        void *userdata;
        int64_t id;
        void (*free_fn)(StoreOp *op);
};

/* Submits op with run; on failure frees op (free_fn) and returns the error,
 * and no callback runs. */
int store_op_submit(Store *s, StoreDurability durability, StoreOp *op, StoreJobRunFn run);

/* Frees an op that was never submitted. */
void store_op_free(StoreOp *op);

/* Returns a cached prepared statement for sql on db (sql must be a string
 * literal: it is keyed by address). Reset it after use with _cleanup_reset_. */
int store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **stp);

/* Finalizes the calling thread's cached statements of db; before closing it. */
void store_stmt_cache_drop(sqlite3 *db);

static inline void store_stmt_resetp(sqlite3_stmt **st) {
        if (*st) {
                sqlite3_reset(*st);
                sqlite3_clear_bindings(*st);
        }
}
#define _cleanup_reset_ _cleanup_(store_stmt_resetp)

/* Steps a statement that returns no rows (or whose rows are ignored). */
int store_step_done(sqlite3_stmt *st);

/* strdup() that passes NULL through; *okp set false when allocation failed. */
char *store_strdup(const char *s, bool *okp);

/* Copies a text column (NULL stays NULL); *okp set false when allocation failed. */
char *store_column_strdup(sqlite3_stmt *st, int col, bool *okp);

/* Binds a cid, or NULL when cid is NULL. */
int store_bind_cid(sqlite3_stmt *st, int col, const StoreCid *cid);

/* Reads a 32-byte blob column into *cid; false when NULL or the wrong size. */
bool store_column_cid(sqlite3_stmt *st, int col, StoreCid *cid);

/* The columns of a message row, in the order store_message_from_row() reads them. */
#define STORE_MESSAGE_COLUMNS                                                                                  \
        "id, folder_id, uid, modseq, flags, keywords, internal_date, size, date, from_addr, to_addr, cc_addr," \
        " subject, message_id, in_reply_to, refs, cid"

/* One row of STORE_MESSAGE_COLUMNS into *m; -ENOMEM leaves it cleared. */
struct StoreMessage;
int store_message_from_row(sqlite3_stmt *st, struct StoreMessage *m);

/* Steps st to its end, reading every row with store_message_from_row() into a new array. */
int store_message_rows(sqlite3_stmt *st, struct StoreMessage **msgsp, size_t *n_msgsp);

/* Inserts or updates a message inside the current job (writer thread): what
 * store_message_insert() runs, shared with POP3's atomic download. */
typedef struct StoreMessage StoreMessage;
int store_message_insert_run(sqlite3 *db, const StoreMessage *m, int64_t *idp);
