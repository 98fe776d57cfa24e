/*
 * The search index's tokenizer (store/fts-tokenizer.c): SQLite's trigram
 * tokenizer without the trigrams that hold an ASCII blank.
 */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#define STORE_FTS_TOKENIZER "tegami_trigram"

/* Registers STORE_FTS_TOKENIZER on db. An SQLite result code. */
int store_fts_register(sqlite3 *db);

/* Whether the n bytes of token hold a space, tab, CR or LF: such a trigram is not indexed. */
bool store_fts_token_has_blank(const char *token, size_t n);
