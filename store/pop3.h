/*
 * POP3 state per account: every UIDL this machine has seen, when it first saw
 * it, and where it stands — so a fetch never downloads a message twice and
 * never deletes on the server what is not durably stored here.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/message.h"
#include "store/store.h"

typedef enum StorePop3State {
        STORE_POP3_DOWNLOADED = 1,     /* stored here; still on the server */
        STORE_POP3_DELETE_PENDING = 2, /* DELE sent, QUIT not yet acknowledged */
        STORE_POP3_DELETED = 3,        /* gone from the server */
        STORE_POP3_SKIPPED = 4,        /* not downloaded on purpose (size rule) */
} StorePop3State;

typedef struct StorePop3Entry {
        int64_t id;
        int64_t account_id;
        char *uidl;
        int64_t first_seen; /* Unix time this machine first saw it */
        uint64_t size;
        StorePop3State state;
        bool has_cid;
        StoreCid cid;
} StorePop3Entry;

/* Lists an account's entries, all of them (state 0) or those in one state,
 * oldest first. Free with store_pop3_list_free(). */
int store_pop3_list(Store *s, int64_t account_id, StorePop3State state, StorePop3Entry **entriesp, size_t *n_entriesp);
void store_pop3_list_free(StorePop3Entry *entries, size_t n_entries);

/* Records uidl as downloaded (cid may be NULL for SKIPPED-like bookkeeping)
 * and, when msg is not NULL, inserts msg in the same job, so the message and
 * the record that it was fetched commit together or not at all. An existing
 * entry keeps its first_seen. cb gets the message's id when msg is given,
 * else the entry's. Use STORE_BARRIER on the
 * last download before sending DELE. */
int store_pop3_mark_downloaded(Store *s, int64_t account_id, const char *uidl, uint64_t size, int64_t first_seen,
                               const StoreCid *cid, const StoreMessage *msg, StoreDurability durability, StoreIdFn cb,
                               void *userdata);

/* Sets the state of the listed UIDLs (unknown ones are added with first_seen
 * now). cb's id is how many entries changed. */
int store_pop3_set_state(Store *s, int64_t account_id, const char *const *uidls, size_t n_uidls, StorePop3State state,
                         int64_t now, StoreDurability durability, StoreIdFn cb, void *userdata);

/* Forgets the listed entries of the account that are in state DELETED (the
 * caller passes those the server no longer lists, so their UIDLs cannot come
 * back), keeping the table from growing forever. Entries in any other state
 * stay. cb's id is how many went. */
int store_pop3_forget_deleted(Store *s, int64_t account_id, const char *const *uidls, size_t n_uidls, StoreIdFn cb,
                              void *userdata);
