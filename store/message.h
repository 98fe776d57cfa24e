/*
 * Messages in folders: the IMAP view of a message (UID, MODSEQ, flags,
 * keywords), its envelope, and the content id of its body (store/body.h).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* System flags as a bitmask; other keywords travel as text. */
enum {
        STORE_FLAG_SEEN = 1u << 0,
        STORE_FLAG_ANSWERED = 1u << 1,
        STORE_FLAG_FLAGGED = 1u << 2,
        STORE_FLAG_DELETED = 1u << 3,
        STORE_FLAG_DRAFT = 1u << 4,
        STORE_FLAG_FORWARDED = 1u << 5, /* $Forwarded */
};

/* Decoded header fields, UTF-8. Address fields hold the header's text
 * (decoded display names and addresses, comma-separated). */
typedef struct StoreEnvelope {
        int64_t date; /* Date: as Unix time; 0 when missing */
        char *from;
        char *to;
        char *cc;
        char *subject;
        char *message_id;
        char *in_reply_to;
        char *references;
} StoreEnvelope;

typedef struct StoreMessage {
        int64_t id; /* ignored by insert */
        int64_t folder_id;
        uint32_t uid;
        uint64_t modseq;
        uint32_t flags; /* STORE_FLAG_* */
        char *keywords; /* space-separated, NULL for none */
        int64_t internal_date;
        uint64_t size;
        StoreEnvelope env;
        bool has_body; /* false: headers only, body not fetched yet */
        StoreCid cid;
} StoreMessage;

/* Inserts m, or updates the message already at (folder_id, uid) — so an
 * interrupted fetch can be redone. cb gets the message id. */
int store_message_insert(Store *s, const StoreMessage *m, StoreDurability durability, StoreIdFn cb, void *userdata);

/* Sets the flags, keywords and MODSEQ of (folder_id, uid). -ENOENT when absent. */
int store_message_set_flags(Store *s, int64_t folder_id, uint32_t uid, uint32_t flags, const char *keywords,
                            uint64_t modseq, StoreDoneFn cb, void *userdata);

/* Removes the listed UIDs from a folder (unknown UIDs are ignored); cb's id
 * is how many were removed. Bodies stay until store_body_gc(). */
int store_message_expunge(Store *s, int64_t folder_id, const uint32_t *uids, size_t n_uids, StoreIdFn cb,
                          void *userdata);

/* Lists up to limit messages of a folder with UID greater than after_uid, by
 * UID: page through with after_uid = last UID seen. Free with
 * store_message_list_free(). */
int store_message_list(Store *s, int64_t folder_id, uint32_t after_uid, size_t limit, StoreMessage **msgsp,
                       size_t *n_msgsp);

/* Reads one message by id; -ENOENT when absent. Free with store_message_clear(). */
int store_message_get(Store *s, int64_t id, StoreMessage *m);

/* Frees the strings m holds (not m itself). */
void store_message_clear(StoreMessage *m);
void store_message_list_free(StoreMessage *msgs, size_t n_msgs);

/* Copies src's strings into dst; -ENOMEM leaves dst cleared. */
int store_message_copy(StoreMessage *dst, const StoreMessage *src);
