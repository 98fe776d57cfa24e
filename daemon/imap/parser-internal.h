/*
 * Shared between the IMAP parser's files, not part of its API: the per-response
 * arena, the literal table the scanner builds, and the cursor the
 * recursive-descent grammar (parse-token.c, parse-response.c, parse-fetch.c) walks over one
 * complete, buffered response.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/imap/parser.h"

/* Bump allocator freed once per response. */
typedef struct ArenaChunk ArenaChunk;
typedef struct Arena {
        ArenaChunk *chunks;
        size_t used; /* bytes of chunks held since the last reset */
        size_t max;
        bool over; /* the last failure was the cap, not ENOMEM */
} Arena;

void arena_init(Arena *a, size_t max);
void arena_reset(Arena *a);
void arena_deinit(Arena *a);
/* Zeroed memory, or NULL when out of memory or over a->max. */
void *arena_alloc(Arena *a, size_t size);

/*
 * A literal of the buffered response: its "{n}" starts at buf[marker], its
 * bytes sit at buf[data] (none when streamed to the callback instead).
 */
typedef struct ImapLiteral {
        size_t marker;
        size_t data;
        uint64_t size;
        bool streamed;
        bool literal8;
} ImapLiteral;

typedef struct Cursor {
        const char *buf;
        size_t pos, end;
        const ImapLiteral *lits;
        size_t n_lits, next_lit;
        Arena *arena;
        const ImapParserLimits *lim;
        unsigned depth;
        int err; /* sticky: once set every primitive does nothing */
        size_t err_pos;
        const char *reason;
} Cursor;

/* Parses the whole buffered response into *ev. Returns 0, IMAP_PARSER_E_*, or -ENOMEM. */
int imap_response_parse(Cursor *c, ImapEvent *ev);

/* Primitives shared by the grammar files; all are no-ops once c->err is set. */
void cur_fail(Cursor *c, int code, const char *reason);
int cur_peek(const Cursor *c);
bool cur_eat(Cursor *c, char ch);
void cur_expect(Cursor *c, char ch);
void cur_sp(Cursor *c);
bool cur_at_end(const Cursor *c);
bool cur_is_nil(Cursor *c);
void *cur_alloc(Cursor *c, size_t size);
/* Grows *vp (holding *np items of size) by one item and returns it. */
void *cur_push(Cursor *c, void *vp, size_t *np, size_t *capp, size_t size);
ImapStr cur_strdup(Cursor *c, const char *s, size_t len);
ImapStr cur_atom(Cursor *c);
/* 1*ATOM-CHAR, "]" too when astring (tags, astring atoms). */
ImapStr cur_atom_full(Cursor *c, bool astring);
uint64_t cur_number64(Cursor *c);
uint32_t cur_number(Cursor *c);
uint32_t cur_nz_number(Cursor *c);
ImapStr cur_string(Cursor *c, bool nil_ok);
ImapStr cur_astring(Cursor *c);
ImapStr cur_mailbox(Cursor *c);
ImapStrList cur_flag_list(Cursor *c);
ImapSeqSet cur_seqset(Cursor *c);
void cur_skip_value(Cursor *c);
ImapParams cur_params(Cursor *c, bool nil_ok, bool *nilp);
bool cur_depth_push(Cursor *c);
void cur_depth_pop(Cursor *c);
bool cur_ieq(ImapStr a, const char *b);

/* FETCH's parenthesised item list, after "* n FETCH ". */
void imap_fetch_parse(Cursor *c, ImapFetch *f);

/* A FETCH body item's name, "BODY[1.2]<0>", "BINARY[]", "RFC822.TEXT"... */
typedef struct BodyItemName {
        ImapBodyItem item;
        size_t sec_off, sec_len; /* the section, relative to the name's start */
        bool has_origin;
        uint32_t origin;
        size_t len; /* of the whole name */
} BodyItemName;

/* Parses a body item name at the start of the n bytes at s; false when there is none. */
bool imap_body_item_name_parse(const char *s, size_t n, BodyItemName *b);

/* "26-Nov-2026 10:00:00 +0000" to seconds since the epoch; false when malformed. */
bool imap_date_time_parse(const char *s, size_t len, int64_t *tp);
