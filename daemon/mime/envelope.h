/*
 * The envelope fields the store indexes and front ends show (From, To, Cc,
 * Subject, Date, Message-ID, In-Reply-To, References), taken from a message's
 * header block while its bytes stream past, and decoded with GMime: RFC 2047
 * encoded words in any charset, raw 8-bit headers (UTF-8, else the fallback
 * charsets), folded lines, address lists with display names. Everything comes
 * out as UTF-8. Loop thread only (GMime is initialised once, lazily).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "store/message.h"

/* Header bytes kept at most: fields beyond the cap are not seen. */
#define MIME_HEADERS_MAX (64 * 1024)

/* Collects the header block of a message fed in chunks of any size. */
typedef struct MimeHeaders {
        char *buf;
        size_t len, cap;
        bool done; /* the empty line that ends the header block was seen, or the cap reached */
} MimeHeaders;

/* Feeds the next bytes of the message; cheap once done. Returns 0 or -ENOMEM. */
int mime_headers_feed(MimeHeaders *h, const void *data, size_t n);

/* Frees what h holds; safe twice. */
void mime_headers_clear(MimeHeaders *h);

/*
 * Decodes the header block in data (n bytes, with or without the empty line
 * that ends it) into env, whose strings are malloc()ed (store_message_clear()
 * frees them); fields the message lacks stay NULL, date 0. Returns 0 or
 * -ENOMEM. Malformed headers never fail: what can be read is kept.
 */
int mime_envelope_parse(const char *data, size_t n, StoreEnvelope *env);

/* The same from what h collected. */
int mime_headers_envelope(const MimeHeaders *h, StoreEnvelope *env);

/* Frees env's strings and clears it. */
void mime_envelope_clear(StoreEnvelope *env);
