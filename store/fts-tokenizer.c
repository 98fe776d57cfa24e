/*
 * The search index's tokenizer, "tegami_trigram": SQLite's own trigram
 * tokenizer with every trigram that holds an ASCII blank (space, tab, CR, LF)
 * left out. Such a trigram only says that a word ends or starts with some
 * letters, which the trigrams inside the words and the LIKE check of
 * store/search.c already decide; leaving them out takes a third of the tokens
 * of Western text away from FTS5's term hash, where indexing spends most of
 * its time. Japanese text has no blanks and keeps every trigram. The query
 * side (store/search.c) leaves the same trigrams out of its MATCH.
 *
 * FTS5 keeps tokenizers per connection, so store_db_open() registers this one
 * on every connection before any statement can touch the search table.
 */
#include <errno.h>
#include <string.h>

#include "store/fts-tokenizer.h"

typedef struct Tokenizer {
        fts5_tokenizer inner; /* SQLite's trigram tokenizer */
        Fts5Tokenizer *inner_tok;
} Tokenizer;

typedef int (*TokenFn)(void *ctx, int flags, const char *token, int n, int start, int end);

typedef struct Filter {
        void *ctx;
        TokenFn fn;
} Filter;

bool store_fts_token_has_blank(const char *token, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (token[i] == ' ' || token[i] == '\t' || token[i] == '\r' || token[i] == '\n')
                        return true;
        return false;
}

static int tok_create(void *userdata, const char **argv, int argc, Fts5Tokenizer **out) {
        fts5_api *api = userdata;
        Tokenizer *t = sqlite3_malloc(sizeof(*t));
        void *inner_data = NULL;
        int rc;

        if (!t)
                return SQLITE_NOMEM;
        memset(t, 0, sizeof(*t));
        rc = api->xFindTokenizer(api, "trigram", &inner_data, &t->inner);
        if (rc == SQLITE_OK)
                rc = t->inner.xCreate(inner_data, argv, argc, &t->inner_tok);
        if (rc != SQLITE_OK) {
                sqlite3_free(t);
                return rc;
        }
        *out = (Fts5Tokenizer *)t;
        return SQLITE_OK;
}

static void tok_delete(Fts5Tokenizer *p) {
        Tokenizer *t = (Tokenizer *)p;

        t->inner.xDelete(t->inner_tok);
        sqlite3_free(t);
}

static int filter_token(void *ctx, int flags, const char *token, int n, int start, int end) {
        Filter *f = ctx;

        if (n > 0 && store_fts_token_has_blank(token, (size_t)n))
                return SQLITE_OK;
        return f->fn(f->ctx, flags, token, n, start, end);
}

static int tok_tokenize(Fts5Tokenizer *p, void *ctx, int flags, const char *text, int n, TokenFn fn) {
        Tokenizer *t = (Tokenizer *)p;
        Filter f = {.ctx = ctx, .fn = fn};

        return t->inner.xTokenize(t->inner_tok, &f, flags, text, n, filter_token);
}

int store_fts_register(sqlite3 *db) {
        static fts5_tokenizer tokenizer = {
                .xCreate = tok_create,
                .xDelete = tok_delete,
                .xTokenize = tok_tokenize,
        };
        fts5_api *api = NULL;
        sqlite3_stmt *st = NULL;
        int rc;

        /* The documented way to reach the FTS5 API of a connection. */
        rc = sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return rc;
        sqlite3_bind_pointer(st, 1, &api, "fts5_api_ptr", NULL);
        (void)sqlite3_step(st);
        rc = sqlite3_finalize(st);
        if (rc != SQLITE_OK)
                return rc;
        if (!api || api->iVersion < 2)
                return SQLITE_ERROR;
        return api->xCreateTokenizer(api, STORE_FTS_TOKENIZER, api, &tokenizer, NULL);
}
