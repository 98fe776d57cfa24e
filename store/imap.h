/*
 * What the IMAP sync engine reads and writes beyond plain messages: a compact
 * per-folder listing of the state a sync compares (UID, flags, keywords,
 * MODSEQ, and for UIDVALIDITY recovery size and Message-ID), and the
 * renumbering of a folder whose UIDVALIDITY changed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* One message of a folder as the sync engine compares it. */
typedef struct StoreImapMsg {
        uint32_t uid;
        uint32_t flags;  /* STORE_FLAG_*: the local view */
        uint64_t modseq; /* the server's, at the last sync */
        uint64_t size;
        bool has_body;
        char *keywords;   /* canonical or NULL */
        char *message_id; /* only with STORE_IMAP_LIST_IDS; NULL otherwise or when absent */
} StoreImapMsg;

enum {
        STORE_IMAP_LIST_IDS = 1u << 0, /* also read Message-IDs (UIDVALIDITY recovery) */
};

/* Lists every message of a folder by UID (synchronous read). Free with store_imap_msg_list_free(). */
int store_imap_msg_list(Store *s, int64_t folder_id, unsigned flags, StoreImapMsg **msgsp, size_t *n_msgsp);
void store_imap_msg_list_free(StoreImapMsg *msgs, size_t n_msgs);

/* Binary search of a list from store_imap_msg_list(); NULL when uid is not in it. */
StoreImapMsg *store_imap_msg_find(StoreImapMsg *msgs, size_t n_msgs, uint32_t uid);

/*
 * After the server's UIDVALIDITY of a folder changed: in one job, the
 * messages at old_uids[i] take new_uids[i], every other message of the folder
 * is removed, pending changes (store/pending.h) of the folder follow their
 * message's new UID or go with it, and the folder's uidvalidity becomes uidvalidity with uidnext
 * and highestmodseq reset to 0 (so a crash before the folder is synced again
 * only makes that sync compare every UID). cb's id is how many were removed.
 */
int store_imap_renumber(Store *s, int64_t folder_id, const uint32_t *old_uids, const uint32_t *new_uids, size_t n,
                        uint32_t uidvalidity, StoreIdFn cb, void *userdata);

/* Sets a folder's sync state (uidvalidity, uidnext, highestmodseq) only; -ENOENT when the folder is gone. */
int store_imap_folder_set_state(Store *s, int64_t folder_id, uint32_t uidvalidity, uint32_t uidnext,
                                uint64_t highestmodseq, StoreDoneFn cb, void *userdata);
