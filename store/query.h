/*
 * Read-only views of the store for front ends (the service API behind D-Bus):
 * one folder by id, a folder's counts, and a folder's messages newest first
 * by offset. Synchronous on the loop thread's read connection, like the other
 * store reads; store/message.h keeps the UID-keyed paging the sync engines use.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "store/message.h"
#include "store/store.h"

/* Reads the folder with id folder_id into *f; -ENOENT when absent. Free f's
 * strings with store_query_folder_clear(). */
int store_query_folder_get(Store *s, int64_t folder_id, StoreFolder *f);
void store_query_folder_clear(StoreFolder *f);

/* Counts a folder's messages, and those without \Seen. */
int store_query_folder_counts(Store *s, int64_t folder_id, uint64_t *totalp, uint64_t *unreadp);

/* Counts the messages in every folder of the account called account, and those without \Seen;
 * 0 and 0 for an account the store does not know. One aggregate query over the (folder_id, uid) index. */
int store_query_account_counts(Store *s, const char *account, uint64_t *totalp, uint64_t *unreadp);

/* Counts the account's outbox entries waiting to be sent (queued, including retrying, or sending). */
int store_query_outbox_waiting(Store *s, const char *account, uint64_t *np);

/* Lists up to limit messages of a folder, newest (highest UID) first,
 * skipping the first offset. Free with store_message_list_free(). */
int store_query_messages_newest(Store *s, int64_t folder_id, uint64_t offset, size_t limit, StoreMessage **msgsp,
                                size_t *n_msgsp);
