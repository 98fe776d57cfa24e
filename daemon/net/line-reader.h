/*
 * A pure line splitter for text protocols (IMAP, POP3, SMTP): bytes in, whole
 * lines and raw chunks out. No I/O, no logging, no allocation beyond its own
 * bounded buffer, so it can be fuzzed and tested with inputs split anywhere.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Positive result codes of line_reader_feed(). */
enum {
        LINE_READER_E_TOO_LONG = 1, /* a line exceeded max_line bytes */
};

/*
 * Called with one line, without its LF or CRLF, NUL-terminated (the line may
 * itself contain NULs; trust n). Return 0 to go on, anything else to stop
 * line_reader_feed() at once, which then returns that value.
 */
typedef int (*LineReaderLineFn)(void *userdata, const char *line, size_t n);

/* Called with the next chunk of a raw run; done is true on its last byte. Same return rule. */
typedef int (*LineReaderRawFn)(void *userdata, const char *data, size_t n, bool done);

typedef struct LineReader {
        char *buf;          /* an incomplete line carried between feeds */
        size_t n_buf;
        size_t cap;
        size_t max_line;    /* longest accepted line, terminator excluded */
        uint64_t raw_left;  /* bytes still to hand to raw_fn before lines resume */
        LineReaderLineFn line_fn;
        LineReaderRawFn raw_fn;
        void *userdata;
} LineReader;

/* Sets up r; lines longer than max_line bytes are an error. Never fails. */
void line_reader_init(LineReader *r, size_t max_line, LineReaderLineFn line_fn, LineReaderRawFn raw_fn,
                      void *userdata);

/* Frees the buffer; safe twice. */
void line_reader_deinit(LineReader *r);

/*
 * Splits data into lines (or raw chunks). Stops early when a callback returns
 * non-zero and returns that value; *consumedp (may be NULL) then says how many
 * bytes were used, the rest is not buffered. Returns 0 when all was used,
 * LINE_READER_E_TOO_LONG for an overlong line, -ENOMEM.
 */
int line_reader_feed(LineReader *r, const char *data, size_t n, size_t *consumedp);

/*
 * Hands the next n bytes to raw_fn instead of splitting them (an IMAP literal,
 * a message body). Call it from the line callback (or when nothing is buffered).
 * Returns -EBUSY when part of a line is buffered, -EINVAL without a raw_fn.
 */
int line_reader_expect_raw(LineReader *r, uint64_t n);

/* True when nothing is buffered and no raw run is pending. */
bool line_reader_is_idle(const LineReader *r);
