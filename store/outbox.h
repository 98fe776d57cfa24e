/*
 * The durable outbox: a message accepted here is on disk before the caller
 * hears "queued", and its state says whether it may be sent (again).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef enum StoreOutboxState {
        STORE_OUTBOX_QUEUED = 1,  /* waiting for next_attempt */
        STORE_OUTBOX_SENDING = 2, /* claimed by a sender */
        STORE_OUTBOX_SENT = 3,
        STORE_OUTBOX_FAILED = 4,  /* permanent failure; last_reply says why */
        STORE_OUTBOX_UNKNOWN = 5, /* the sender died mid-transaction: never resent on its own */
        STORE_OUTBOX_COMMITTING = 6, /* the final dot may be on its way: a crash now makes it UNKNOWN */
} StoreOutboxState;

typedef struct StoreOutboxItem {
        int64_t id;
        int64_t account_id;
        char *mail_from;
        char **rcpts; /* n_rcpts addresses */
        size_t n_rcpts;
        StoreCid cid; /* the message, in store/body.h */
        StoreOutboxState state;
        unsigned attempts;
        int64_t next_attempt; /* Unix time */
        char *last_reply;     /* the server's last words, or NULL */
        int64_t created;
} StoreOutboxItem;

/* Queues a message whose body is already stored (cid) for rcpts, with a
 * barrier commit: when cb reports 0 the item survives power loss. cb gets the
 * item id. Recipients must not contain '\n'. */
int store_outbox_accept(Store *s, int64_t account_id, const char *mail_from, const char *const *rcpts, size_t n_rcpts,
                        const StoreCid *cid, int64_t now, StoreIdFn cb, void *userdata);

/* cb of store_outbox_claim(): item is NULL (r == 0) when nothing is due; else
 * the caller owns it (store_outbox_item_free()). */
typedef void (*StoreOutboxClaimFn)(int r, StoreOutboxItem *item, void *userdata);

/* Takes the oldest queued item due at now (of account_id, or of any account
 * when account_id is 0), marks it SENDING with one more attempt, barrier commit. */
int store_outbox_claim(Store *s, int64_t account_id, int64_t now, StoreOutboxClaimFn cb, void *userdata);

/* Moves an item to state, with when to retry (QUEUED) and the server's reply
 * (may be NULL: kept as it was). Barrier commit. -ENOENT when absent. */
int store_outbox_set_state(Store *s, int64_t id, StoreOutboxState state, int64_t next_attempt, const char *last_reply,
                           StoreDoneFn cb, void *userdata);

/* At start-up: items left COMMITTING by a previous run become UNKNOWN (they
 * may have been delivered); items left SENDING (claimed, final dot never
 * reached) are queued again. cb's id is how many became UNKNOWN. */
int store_outbox_recover(Store *s, StoreIdFn cb, void *userdata);

/* Lists every item by id. Free with store_outbox_list_free(). */
int store_outbox_list(Store *s, StoreOutboxItem **itemsp, size_t *n_itemsp);
void store_outbox_list_free(StoreOutboxItem *items, size_t n_items);

/* Frees an item from store_outbox_claim(); accepts NULL; returns NULL. */
StoreOutboxItem *store_outbox_item_free(StoreOutboxItem *item);
