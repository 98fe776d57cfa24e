/*
 * A small streaming header reader for the sync engine: message bytes go in
 * chunk by chunk as they arrive from the server, the header block (up to the
 * first empty line, capped) is kept, and the envelope fields the store
 * indexes come out. Values are unfolded but not RFC 2047-decoded (no MIME
 * library is a dependency yet); the store keeps them as sent.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "store/message.h"

/* Header bytes kept at most; fields beyond are not seen. */
#define IMAP_HEADERS_MAX (64 * 1024)

typedef struct ImapHeaders {
        char *buf;
        size_t len;
        bool done; /* the empty line was seen, or the cap reached */
} ImapHeaders;

/* Feeds the next bytes of a message. Returns 0 or -ENOMEM. */
int imap_headers_feed(ImapHeaders *h, const void *data, size_t n);

/* Fills env (malloc()ed strings; free with store_message_clear() or by hand) from what was fed. 0 or -ENOMEM. */
int imap_headers_envelope(const ImapHeaders *h, StoreEnvelope *env);

/* The unfolded value of the first field called name (any case), malloc()ed; NULL when absent (errno 0) or ENOMEM. */
char *imap_headers_get(const ImapHeaders *h, const char *name);

/* Frees what h holds; safe twice. */
void imap_headers_clear(ImapHeaders *h);

/* RFC 5322 date-time to Unix time; 0 when it cannot be read. */
int64_t imap_headers_parse_date(const char *s);
