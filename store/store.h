/*
 * The mail store: one SQLite file (encrypted when opened with a key) holding
 * accounts, folders, messages, bodies, POP3 state, the outbox and pending local
 * changes. Protocol code sees only these C types and calls; no SQL.
 *
 * Threads: every function here is called on the libuv loop thread. Writes are
 * asynchronous (they run on the store's writer thread and call back on the
 * loop); small reads are synchronous on a read connection. A write's callback
 * runs exactly once, and never when the call that starts it fails.
 *
 * The rest of the API: store/body.h (streaming bodies), store/message.h,
 * store/pop3.h, store/outbox.h, store/pending.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "store/writer.h"

typedef struct Store Store;

/* A body's content id: keyed BLAKE2b-256 of its bytes (key kept in the store). */
typedef struct StoreCid {
        uint8_t bytes[32];
} StoreCid;

/* Write callbacks. r is 0 or a negative errno; id is the row written, where
 * the call says so (0 otherwise). */
typedef void (*StoreDoneFn)(int r, void *userdata);
typedef void (*StoreIdFn)(int r, int64_t id, void *userdata);
typedef void (*StoreClosedFn)(void *userdata);

/* Opens (creating if needed) the store at path, runs the migrations and starts
 * the writer thread. key: 32 bytes for the encrypted store, NULL for plain
 * SQLite (tests, benchmarks). Blocking: call at start-up. -EBADMSG when the
 * file is damaged or the key is wrong. */
int store_open(uv_loop_t *loop, const char *path, const uint8_t *key, Store **sp);

/* Lets every queued write finish (their callbacks run), then closes and frees
 * s and calls cb (may be NULL). The loop must keep running until then. Free
 * every StoreBodyReader first: they use the read connection. */
void store_close(Store *s, StoreClosedFn cb, void *userdata);

/* Accounts. */
typedef struct StoreAccount {
        int64_t id;
        char *name;
} StoreAccount;

/* Adds the account called name unless it exists; cb gets its id either way. */
int store_account_upsert(Store *s, const char *name, StoreIdFn cb, void *userdata);

/* Lists accounts by id into a new array; free with store_account_list_free(). */
int store_account_list(Store *s, StoreAccount **accountsp, size_t *n_accountsp);
void store_account_list_free(StoreAccount *accounts, size_t n_accounts);

/* Folders. */
typedef enum StoreFolderRole {
        STORE_ROLE_NONE,
        STORE_ROLE_INBOX,
        STORE_ROLE_SENT,
        STORE_ROLE_DRAFTS,
        STORE_ROLE_TRASH,
        STORE_ROLE_JUNK,
        STORE_ROLE_ARCHIVE,
        STORE_ROLE_ALL,
        STORE_ROLE_FLAGGED,
} StoreFolderRole;

typedef struct StoreFolder {
        int64_t id; /* ignored by upsert */
        int64_t account_id;
        char *name;     /* UTF-8, as the server names it (after modified UTF-7 decoding) */
        char delimiter; /* '\0' for a flat namespace (NIL) */
        StoreFolderRole role;
        uint32_t uidvalidity;
        uint32_t uidnext;
        uint64_t highestmodseq;
        bool subscribed;
} StoreFolder;

/* Creates the folder (account_id, name) or updates every other field of it;
 * cb gets its id. */
int store_folder_upsert(Store *s, const StoreFolder *folder, StoreIdFn cb, void *userdata);

/* Deletes a folder with its messages (their bodies stay until store_body_gc()). */
int store_folder_delete(Store *s, int64_t folder_id, StoreDoneFn cb, void *userdata);

/* Lists an account's folders by name; free with store_folder_list_free(). */
int store_folder_list(Store *s, int64_t account_id, StoreFolder **foldersp, size_t *n_foldersp);
void store_folder_list_free(StoreFolder *folders, size_t n_folders);

/* Queues a job of the caller's own on the store's writer (tools and tests that
 * need raw SQL; protocol code uses the typed calls). See store/writer.h. */
int store_submit(Store *s, StoreDurability durability, StoreJobRunFn run, StoreJobDoneFn done, void *userdata);

/* Counts transactions and jobs the writer has committed and background
 * checkpoints run (tests, benchmarks). Any pointer may be NULL. */
void store_get_stats(Store *s, uint64_t *n_commitsp, uint64_t *n_jobsp, uint64_t *n_checkpointsp);
