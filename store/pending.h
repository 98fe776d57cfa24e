/*
 * Local changes waiting to be pushed to the server (flags, moves, deletions,
 * appends), in the order they were made. The IMAP engine lists them, pushes
 * them, and removes those the server took.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef enum StorePendingKind {
        STORE_PENDING_FLAGS = 1,  /* flags_add/remove, keywords_add/remove on (folder_id, uid) */
        STORE_PENDING_MOVE = 2,   /* (folder_id, uid) to target_folder_id */
        STORE_PENDING_DELETE = 3, /* (folder_id, uid) */
        STORE_PENDING_APPEND = 4, /* body cid to folder_id with flags_add */
} StorePendingKind;

typedef struct StorePendingChange {
        int64_t id; /* ignored by add */
        int64_t account_id;
        StorePendingKind kind;
        int64_t folder_id;
        uint32_t uid;
        int64_t target_folder_id;
        uint32_t flags_add, flags_remove;     /* STORE_FLAG_* */
        char *keywords_add, *keywords_remove; /* space-separated, or NULL */
        bool has_cid;
        StoreCid cid;
        int64_t created;
} StorePendingChange;

/* Records a change; cb gets its id. */
int store_pending_add(Store *s, const StorePendingChange *change, StoreIdFn cb, void *userdata);

/* Lists an account's changes oldest first. Free with store_pending_list_free(). */
int store_pending_list(Store *s, int64_t account_id, StorePendingChange **changesp, size_t *n_changesp);
void store_pending_list_free(StorePendingChange *changes, size_t n_changes);

/* Removes changes by id (unknown ids are ignored); cb's id is how many went. */
int store_pending_remove(Store *s, const int64_t *ids, size_t n_ids, StoreIdFn cb, void *userdata);
