/*
 * Full-text search over the store (schema versions 3 and 4): an FTS5 table
 * with the trigram tokenizer over subject, from, to, cc and body text, keyed
 * by message id, inside the encrypted file, its index without positions
 * (detail=none: a fifteenth of the size, several times faster to fill); a query language parsed here into SQL; and
 * the indexer's two store halves — which messages still wait for indexing
 * (read connection, loop thread) and writing their documents (writer thread).
 * The text itself comes from daemon/mime: the store knows no MIME.
 *
 * Query language (terms are ANDed; case-insensitive; "…" quotes a phrase):
 *   word, "a phrase"        in subject, from, to, cc or body (substring; 3+
 *                           characters use the index — every trigram of the
 *                           term, then a LIKE on the stored text — shorter ones
 *                           scan; case folds for ASCII letters only)
 *   from:X to:X cc:X subject:X body:X   the same in one field
 *   folder:NAME account:NAME            exact folder / account name
 *   is:unread is:read is:flagged is:answered
 *   has:attachment
 *   before:YYYY-MM-DD after:YYYY-MM-DD  Date: header, UTC; before is
 *                           exclusive, after inclusive of that day
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/message.h"
#include "store/store.h"

/* A query that does not parse (an unknown operator, a bad date, an unclosed quote). */
#define STORE_SEARCH_E_QUERY 1

/* A parsed query: a WHERE clause over messages m, folders f, accounts a, and its parameters. */
typedef struct StoreSearchQuery {
        char *where;   /* malloc()ed SQL, "1" for the empty query */
        char **params; /* malloc()ed texts bound in order; integers are written in the SQL */
        size_t n_params;
        char *error; /* on STORE_SEARCH_E_QUERY: what is wrong, malloc()ed */
} StoreSearchQuery;

/* Parses query into q. Returns 0, STORE_SEARCH_E_QUERY (q->error says why) or -ENOMEM. Pure. */
int store_search_parse(const char *query, StoreSearchQuery *q);

/* Frees what q holds; safe twice. */
void store_search_query_clear(StoreSearchQuery *q);

/*
 * Runs query (the language above) on the read connection: matching messages,
 * newest first (Date:, then id), skipping offset and returning at most limit
 * in *msgsp (store_message_list_free()). Loop thread. Returns 0,
 * STORE_SEARCH_E_QUERY with *errorp set (malloc()ed; may be NULL), or a
 * negative errno.
 */
int store_search(Store *s, const char *query, uint64_t offset, size_t limit, StoreMessage **msgsp, size_t *n_msgsp,
                 char **errorp);

/* A message waiting to be indexed (store_search_pending()). */
typedef struct StoreSearchPending {
        int64_t id;
        StoreCid cid;
} StoreSearchPending;

/* Up to max messages with a body, no index entry yet and an id above after_id, oldest id first
 * (after_id lets an indexer skip what it has submitted but the writer not yet committed). Loop thread. */
int store_search_pending(Store *s, int64_t after_id, size_t max, StoreSearchPending **pendingp, size_t *n_pendingp);

/* What the indexer writes for one message; the envelope fields come from the messages row. */
typedef struct StoreSearchDoc {
        int64_t id;
        char *body; /* UTF-8 text, NULL for none; malloc()ed, freed by the store */
        bool has_attachment;
} StoreSearchDoc;

/*
 * Writes docs (n of them; the array and its bodies become the store's, even
 * on failure) in one writer job, marking each message indexed; a message
 * deleted meanwhile is skipped. cb runs once with 0 or a negative errno.
 */
int store_search_put(Store *s, StoreSearchDoc *docs, size_t n, StoreDoneFn cb, void *userdata);

/* How many messages with a body wait for indexing. Loop thread. */
int store_search_count_pending(Store *s, uint64_t *np);
