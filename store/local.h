/*
 * Changes a person makes here (through the service API): the local view is
 * updated and, when asked, the change is recorded in pending_changes for the
 * sync engine to push (store/pending.h) — both in one writer job, so the view
 * and the queue never disagree. Also the outbox edits a person may make:
 * retry now and cancel.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef enum StoreLocalKind {
        STORE_LOCAL_FLAGS = 1,  /* flags and keywords added and removed */
        STORE_LOCAL_MOVE = 2,   /* to target_folder_id, of the same account */
        STORE_LOCAL_DELETE = 3, /* gone here; deleted on the server when recorded */
} StoreLocalKind;

typedef struct StoreLocalChange {
        StoreLocalKind kind;
        uint32_t flags_add, flags_remove; /* STORE_FLAG_* */
        const char *keywords_add;         /* space-separated, or NULL */
        const char *keywords_remove;      /* space-separated, or NULL */
        int64_t target_folder_id;         /* STORE_LOCAL_MOVE */
        bool record;                      /* also queue a pending change per message */
} StoreLocalChange;

/*
 * Applies c to the messages ids, all or none, in one job:
 * FLAGS updates each message's flags and keywords; MOVE and DELETE remove the
 * message from its folder here (a moved message appears in its target when
 * the engine has moved it on the server and synced). Recorded MOVE and DELETE
 * changes keep the message's body cid so the body outlives the row until the
 * engine is done. cb gets 0, -ENOENT when an id (or the target folder) is
 * gone, or -EXDEV when a move would cross accounts.
 */
int store_local_apply(Store *s, const int64_t *ids, size_t n_ids, const StoreLocalChange *c, int64_t now,
                      StoreDoneFn cb, void *userdata);

/* Makes an outbox item due now (QUEUED, next_attempt = now); barrier commit.
 * cb gets 0, -ENOENT, -EBUSY while it is being sent, or -EALREADY once sent. */
int store_outbox_retry(Store *s, int64_t id, int64_t now, StoreDoneFn cb, void *userdata);

/* Removes an outbox item that is not being sent; barrier commit. Its body
 * stays until store_body_gc(). cb gets 0, -ENOENT, -EBUSY or -EALREADY as
 * store_outbox_retry(). */
int store_outbox_cancel(Store *s, int64_t id, StoreDoneFn cb, void *userdata);
