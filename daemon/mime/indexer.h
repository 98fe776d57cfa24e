/*
 * The search indexer: takes the messages the store lists as not yet indexed
 * (store_search_pending()), a batch at a time, reads each body from the store,
 * extracts its text and whether it has attachments (daemon/mime/text.h), and
 * hands the documents to the store's writer (store_search_put()). The next
 * batch starts from the writer's completion callback, so the loop is never
 * held for more than one batch, and indexing never sits in a sync's path.
 * What survives a crash is the per-message "indexed" mark: a restarted
 * indexer simply continues. Loop thread only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Messages per writer job at most. FTS5 writes what a job adds as one index segment (more
 * when it passes FTS5's hash size) and merges segments later: bigger jobs, fewer merges. */
#define MIME_INDEXER_BATCH 512

/* Text per writer job at most: a batch ends early once its documents hold this much. */
#define MIME_INDEXER_BATCH_BYTES (16 * 1024 * 1024)

/* Writer jobs a run keeps submitted at once (parsing the next batch while the writer writes). */
#define MIME_INDEXER_IN_FLIGHT 2

/* Body bytes parsed at most per message: text past this is not indexed. */
#define MIME_INDEXER_BODY_MAX (4 * 1024 * 1024)

typedef struct MimeIndexer MimeIndexer;

/* Called once when a run ends (nothing left, stopped, or failed): r is 0 or a negative errno,
 * n the messages indexed in the run. The store may be closed from here. */
typedef void (*MimeIndexerIdleFn)(int r, uint64_t n, void *userdata);

/* A new, idle indexer for store s (borrowed: it must outlive every run). */
int mime_indexer_new(Store *s, MimeIndexerIdleFn idle_cb, void *userdata, MimeIndexer **ixp);

/* Starts a run unless one is going (a running one lists what is pending before each batch, so
 * it sees new messages anyway). Returns true when a run started now: idle_cb follows once,
 * possibly before this returns (nothing pending). */
bool mime_indexer_kick(MimeIndexer *ix);

/* Asks a run to end after the batch in flight (idle_cb still follows). */
void mime_indexer_stop(MimeIndexer *ix);

/* A flag the run reads between batches: when true, the run ends (idle_cb follows). NULL for none. */
void mime_indexer_set_stop_flag(MimeIndexer *ix, const bool *flag);

/* Whether a run is going. */
bool mime_indexer_running(const MimeIndexer *ix);

/* Frees an idle indexer; accepts NULL, returns NULL. */
MimeIndexer *mime_indexer_free(MimeIndexer *ix);

/* Text extraction for one message's raw bytes (what a batch does per message): the
 * StoreSearchDoc body (malloc()ed, NULL when none) and whether it has attachments. */
int mime_indexer_extract(const void *raw, size_t n, char **bodyp, bool *has_attachmentp);
