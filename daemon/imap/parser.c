/*
 * IMAP response parser, the streaming half: a byte-driven scanner that cuts the
 * server's stream into responses and hands each complete one to the grammar
 * (parse-response.c, parse-fetch.c), which turns it into an ImapEvent.
 *
 * A response is one or more lines joined by literals. The scanner copies line
 * bytes (without CRLF) and small literals into one buffer, noting each literal
 * in a table, so the grammar later walks a contiguous response. A literal that
 * is a FETCH message body (its name, e.g. BODY[], is the token before it at the
 * top level of "* n FETCH (") is never buffered: its bytes go to the callback
 * as BODY_DATA events pointing into the caller's input, between BODY_START and
 * BODY_END. To recognise that name the scanner tracks quotes, parentheses,
 * brackets and the last top-level token as bytes pass, in constant space.
 *
 * The caller owns the parser; the buffer, the literal table and the arena of
 * parsed structures belong to it and are reset after each response, so memory
 * is bounded by the limits, never by the input. No I/O, no logging, no global
 * state: a parser may run on any thread, one thread at a time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/imap/parser-internal.h"
#include "daemon/imap/parser.h"

const ImapParserLimits imap_parser_default_limits = {
        .max_response = 2u << 20,
        .max_literal = 1u << 20,
        .max_body = UINT32_MAX,
        .max_arena = 8u << 20,
        .max_depth = 32,
        .max_items = 500000,
        .max_literals = 10000,
};

typedef enum ScanState {
        SCAN_LINE,       /* bytes of a line go to buf */
        SCAN_LITERAL,    /* bytes of a small literal go to buf */
        SCAN_BODY_START, /* BODY_START is due */
        SCAN_BODY,       /* bytes of a body literal go to the callback; BODY_END when none remain */
        SCAN_EMIT,       /* a parsed response's events are due */
        SCAN_ERROR,
} ScanState;

struct ImapParser {
        ImapParserLimits lim;
        ImapEventFn cb;
        void *userdata;
        ScanState state;

        char *buf; /* the response so far, CRLFs dropped */
        size_t len, cap;
        size_t line_start; /* where the current line begins in buf */
        ImapLiteral *lits;
        size_t n_lits, cap_lits;
        Arena arena;

        uint64_t offset;      /* stream offset of the next byte */
        uint64_t resp_offset; /* stream offset of the response's first byte */
        uint64_t remaining;   /* bytes left of the current literal */
        bool cr;              /* the previous line byte was CR */
        bool text_resp;       /* status or continuation: lines hold text, no literals */
        bool head_known;

        /* Tracker over line bytes, for recognising body literals. */
        bool in_quote, quote_escape;
        unsigned depth, bracket;
        size_t tok_start, prev_start, prev_end;
        bool uid_key; /* the previous top-level token was "UID" */
        uint32_t uid;

        ImapEvent chunk;    /* the body literal being streamed */
        ImapEvent ev;       /* the parsed response */
        size_t emit_body;   /* SCAN_EMIT: the next inline body to replay */
        unsigned emit_step; /* and which of its three events */

        int err;
        uint64_t err_offset;
        const char *reason;
};

/* Enters the error state; the first error sticks. */
static int parser_fail(ImapParser *p, int code, uint64_t offset, const char *reason) {
        if (p->state != SCAN_ERROR) {
                p->state = SCAN_ERROR;
                p->err = code;
                p->err_offset = offset;
                p->reason = reason;
        }
        return p->err;
}

#define KEEP_BUF (64u << 10)
#define KEEP_LITS 256u

/* Forgets the response: the next byte starts a new one. A rare big buffer is given back rather than kept. */
static void parser_reset_response(ImapParser *p) {
        if (p->cap > KEEP_BUF) {
                free(p->buf);
                p->buf = NULL;
                p->cap = 0;
        }
        if (p->cap_lits > KEEP_LITS) {
                free(p->lits);
                p->lits = NULL;
                p->cap_lits = 0;
        }
        p->len = p->line_start = 0;
        p->n_lits = 0;
        arena_reset(&p->arena);
        p->text_resp = p->head_known = false;
        p->in_quote = p->quote_escape = false;
        p->depth = p->bracket = 0;
        p->tok_start = p->prev_start = p->prev_end = 0;
        p->uid_key = false;
        p->uid = 0;
        p->resp_offset = p->offset;
}

/* Calls the callback; a negative return breaks the parser, IMAP_PARSER_PAUSED passes up. */
static int parser_emit(ImapParser *p, const ImapEvent *ev) {
        int r = p->cb(ev, p->userdata);

        if (r < 0)
                return parser_fail(p, r, p->offset, "the event callback failed");
        return r > 0 ? IMAP_PARSER_PAUSED : 0;
}

static bool ascii_ieq(const char *a, size_t n, const char *b) {
        return strlen(b) == n && strncasecmp(a, b, n) == 0;
}

/* Remembers a complete top-level token of the response so far: [s, e). */
static void track_token(ImapParser *p, size_t s, size_t e) {
        bool was_uid_key = p->uid_key;
        uint64_t v = 0;

        p->prev_start = s;
        p->prev_end = e;
        p->uid_key = ascii_ieq(p->buf + s, e - s, "UID");
        if (!was_uid_key || e == s || e - s > 10)
                return;
        for (size_t i = s; i < e; i++) {
                if (p->buf[i] < '0' || p->buf[i] > '9')
                        return;
                v = v * 10 + (unsigned)(p->buf[i] - '0');
        }
        if (v <= UINT32_MAX)
                p->uid = (uint32_t)v;
}

/* Follows quotes, parentheses and brackets over the line byte just appended at buf[len - 1]. */
static void track_byte(ImapParser *p, char b) {
        if (p->in_quote) {
                if (p->quote_escape)
                        p->quote_escape = false;
                else if (b == '\\')
                        p->quote_escape = true;
                else if (b == '"')
                        p->in_quote = false;
                return;
        }
        switch (b) {
        case '"':
                p->in_quote = true;
                break;
        case '(':
                if (++p->depth == 1 && p->bracket == 0)
                        p->tok_start = p->len;
                break;
        case ')':
                if (p->depth > 0)
                        p->depth--;
                break;
        case '[':
                p->bracket++;
                break;
        case ']':
                if (p->bracket > 0)
                        p->bracket--;
                break;
        case ' ':
                if (p->depth == 1 && p->bracket == 0) {
                        track_token(p, p->tok_start, p->len - 1);
                        p->tok_start = p->len;
                }
                break;
        }
}

/* Sets text_resp from the first line: "+ ...", "tag OK|NO|BAD ...", "* OK|NO|BAD|BYE|PREAUTH ...". */
static void classify_head(ImapParser *p) {
        const char *b = p->buf, *sp, *w;
        size_t n = p->len, wn;

        p->head_known = true;
        if (n == 0)
                return;
        if (b[0] == '+') {
                p->text_resp = true;
                return;
        }
        sp = memchr(b, ' ', n);
        if (!sp)
                return;
        w = sp + 1;
        wn = (size_t)(b + n - w);
        sp = memchr(w, ' ', wn);
        if (sp)
                wn = (size_t)(sp - w);
        p->text_resp = ascii_ieq(w, wn, "OK") || ascii_ieq(w, wn, "NO") || ascii_ieq(w, wn, "BAD") ||
                       ascii_ieq(w, wn, "BYE") || ascii_ieq(w, wn, "PREAUTH");
}

/* Whether the response so far begins "* <number> FETCH (". */
static bool head_is_fetch(const ImapParser *p) {
        size_t i = 2;

        if (p->len < 4 || p->buf[0] != '*' || p->buf[1] != ' ')
                return false;
        while (i < p->len && p->buf[i] >= '0' && p->buf[i] <= '9')
                i++;
        return i > 2 && p->len - i >= 8 && strncasecmp(p->buf + i, " FETCH (", 8) == 0;
}

/* Looks for "{n}", "{n+}" or "~{n}" ending the current line: 1 and sets *markerp, *sizep; 0; -1 on error. */
static int find_literal_marker(ImapParser *p, size_t *markerp, uint64_t *sizep, bool *literal8p) {
        size_t e = p->len, i;
        uint64_t v = 0;

        if (e == p->line_start || p->buf[e - 1] != '}')
                return 0;
        i = e - 1;
        if (i > p->line_start && p->buf[i - 1] == '+')
                i--;
        while (i > p->line_start && p->buf[i - 1] >= '0' && p->buf[i - 1] <= '9')
                i--;
        if (i == p->line_start || p->buf[i - 1] != '{')
                return 0;
        if (p->buf[i] < '0' || p->buf[i] > '9')
                return 0;
        for (size_t j = i; p->buf[j] >= '0' && p->buf[j] <= '9'; j++) {
                unsigned d = (unsigned)(p->buf[j] - '0');

                if (v > (UINT64_MAX - d) / 10) {
                        parser_fail(p, IMAP_PARSER_E_TOO_BIG, p->offset, "literal size overflows");
                        return -1;
                }
                v = v * 10 + d;
        }
        i--;
        *literal8p = i > p->line_start && p->buf[i - 1] == '~';
        *markerp = *literal8p ? i - 1 : i;
        *sizep = v;
        return 1;
}

/* Starts streaming a FETCH body literal if the token before the marker names one. */
static int start_body(ImapParser *p, size_t marker, uint64_t size) {
        BodyItemName b;
        ImapBodyChunk *ch = &p->chunk.body;
        uint64_t seq = 0;
        char *sec;

        /* Only a value at the top level of "* n FETCH (" whose name is a body item streams. */
        if (!head_is_fetch(p) || p->depth != 1 || p->bracket != 0 || p->tok_start != marker ||
            p->prev_end + 1 != marker)
                return 0;
        if (!imap_body_item_name_parse(p->buf + p->prev_start, p->prev_end - p->prev_start, &b) ||
            b.len != p->prev_end - p->prev_start || b.item == IMAP_BODY_BINARY_SIZE)
                return 0;
        if (size > p->lim.max_body)
                return parser_fail(p, IMAP_PARSER_E_TOO_BIG, p->offset, "body literal over the limit");
        /* head_is_fetch() saw digits then a space; the grammar checks the range later. */
        for (size_t i = 2; p->buf[i] >= '0' && p->buf[i] <= '9' && seq <= UINT32_MAX; i++)
                seq = seq * 10 + (uint64_t)(p->buf[i] - '0');
        sec = arena_alloc(&p->arena, b.sec_len + 1);
        if (!sec)
                return parser_fail(p, p->arena.over ? IMAP_PARSER_E_TOO_BIG : -ENOMEM, p->offset,
                                   "out of memory for a body section");
        memcpy(sec, p->buf + p->prev_start + b.sec_off, b.sec_len);
        p->chunk = (ImapEvent){.kind = IMAP_EVENT_BODY_START};
        *ch = (ImapBodyChunk){
                .seq = seq <= UINT32_MAX ? (uint32_t)seq : 0,
                .uid = p->uid,
                .item = b.item,
                .section = {sec, b.sec_len},
                .has_origin = b.has_origin,
                .origin = b.origin,
                .size = size,
        };
        return 1;
}

/* Adds a literal to the table. */
static int add_literal(ImapParser *p, size_t marker, uint64_t size, bool streamed, bool literal8) {
        if (p->n_lits >= p->lim.max_literals)
                return parser_fail(p, IMAP_PARSER_E_TOO_BIG, p->offset, "more literals than the limit");
        if (p->n_lits == p->cap_lits) {
                size_t n = p->cap_lits ? p->cap_lits * 2 : 8;
                ImapLiteral *l = realloc(p->lits, n * sizeof *l);

                if (!l)
                        return parser_fail(p, -ENOMEM, p->offset, "out of memory");
                p->lits = l;
                p->cap_lits = n;
        }
        p->lits[p->n_lits++] = (ImapLiteral){
                .marker = marker, .data = p->len, .size = size, .streamed = streamed, .literal8 = literal8};
        return 0;
}

/* Maps a buffer position to the stream offset it came from. */
static uint64_t buf_to_stream(const ImapParser *p, size_t pos) {
        uint64_t off = p->resp_offset + pos;

        for (size_t i = 0; i < p->n_lits && p->lits[i].data <= pos; i++)
                off += 2 + (p->lits[i].streamed ? p->lits[i].size : 0);
        return off;
}

/*
 * Emits the due events of a parsed response, resuming where a pause left off:
 * each inline (quoted) FETCH body as BODY_START, BODY_DATA, BODY_END, then the
 * response itself; then readies for the next response.
 */
static int emit_pending(ImapParser *p) {
        const ImapFetch *f = &p->ev.fetch;
        int r;

        while (p->ev.kind == IMAP_EVENT_FETCH && p->emit_body < f->n_bodies) {
                const ImapFetchBody *fb = &f->bodies[p->emit_body];
                unsigned step;
                ImapEvent ev;

                if (!fb->data.s) {
                        p->emit_body++;
                        continue;
                }
                if (p->emit_step == 1 && fb->data.len == 0)
                        p->emit_step = 2;
                step = p->emit_step;
                if (++p->emit_step == 3) {
                        p->emit_step = 0;
                        p->emit_body++;
                }
                ev = (ImapEvent){.kind = step == 0   ? IMAP_EVENT_BODY_START
                                         : step == 1 ? IMAP_EVENT_BODY_DATA
                                                     : IMAP_EVENT_BODY_END};
                ev.body = (ImapBodyChunk){
                        .seq = f->seq,
                        .uid = f->uid,
                        .item = fb->item,
                        .section = fb->section,
                        .has_origin = fb->has_origin,
                        .origin = fb->origin,
                        .size = fb->data.len,
                };
                if (step == 1) {
                        ev.body.data = (const uint8_t *)fb->data.s;
                        ev.body.len = fb->data.len;
                }
                r = parser_emit(p, &ev);
                if (r != 0)
                        return r;
        }
        /* The last event: ready for the next response even when the callback pauses. */
        r = parser_emit(p, &p->ev);
        if (p->state == SCAN_EMIT) {
                p->state = SCAN_LINE;
                parser_reset_response(p);
        }
        return r;
}

/* A whole response is in buf: parse it and queue its events. */
static int finish_response(ImapParser *p) {
        Cursor c = {
                .buf = p->buf,
                .end = p->len,
                .lits = p->lits,
                .n_lits = p->n_lits,
                .arena = &p->arena,
                .lim = &p->lim,
        };
        int r;

        p->ev = (ImapEvent){0};
        r = imap_response_parse(&c, &p->ev);
        if (r != 0)
                return parser_fail(p, r, buf_to_stream(p, c.err_pos), c.reason);
        p->emit_body = 0;
        p->emit_step = 0;
        p->state = SCAN_EMIT;
        return 0;
}

/* The LF of a line arrived: either a literal follows or the response is complete. */
static int end_line(ImapParser *p) {
        size_t marker;
        uint64_t size;
        bool literal8;
        int r;

        if (!p->head_known)
                classify_head(p);
        /* resp-text may end in "{5}" without it being a literal, so text responses are one line. */
        if (p->text_resp)
                return finish_response(p);
        if (p->in_quote)
                return parser_fail(p, IMAP_PARSER_E_SYNTAX, p->offset, "quoted string runs past the line end");
        r = find_literal_marker(p, &marker, &size, &literal8);
        if (r < 0)
                return p->err;
        if (r == 0)
                return finish_response(p);
        r = start_body(p, marker, size);
        if (p->state == SCAN_ERROR)
                return p->err;
        if (r > 0) {
                if (add_literal(p, marker, size, true, literal8) != 0)
                        return p->err;
                p->remaining = size;
                p->state = SCAN_BODY_START;
                return 0;
        }
        if (size > p->lim.max_literal || size > p->lim.max_response - p->len)
                return parser_fail(p, IMAP_PARSER_E_TOO_BIG, p->offset, "literal over the limit");
        if (add_literal(p, marker, size, false, literal8) != 0)
                return p->err;
        p->remaining = size;
        p->state = size > 0 ? SCAN_LITERAL : SCAN_LINE;
        p->line_start = p->len;
        return 0;
}

/* Makes room for n more bytes of response in buf. */
static int buf_reserve(ImapParser *p, size_t n) {
        size_t cap;
        char *b;

        if (n > p->lim.max_response - p->len)
                return parser_fail(p, IMAP_PARSER_E_TOO_BIG, p->offset, "response longer than the limit");
        if (p->len + n <= p->cap)
                return 0;
        cap = p->cap ? p->cap : 256;
        while (cap < p->len + n)
                cap *= 2;
        if (cap > p->lim.max_response)
                cap = p->lim.max_response;
        b = realloc(p->buf, cap + 1);
        if (!b)
                return parser_fail(p, -ENOMEM, p->offset, "out of memory");
        p->buf = b;
        p->cap = cap;
        return 0;
}

/* Consumes line bytes from d up to and including a line's LF; returns how many, or sets the error state. */
static size_t scan_line(ImapParser *p, const char *d, size_t n) {
        for (size_t i = 0; i < n; i++) {
                char b = d[i];

                if (p->cr) {
                        p->cr = false;
                        if (b != '\n') {
                                parser_fail(p, IMAP_PARSER_E_SYNTAX, p->offset, "CR not followed by LF");
                                return i;
                        }
                        p->offset++;
                        end_line(p);
                        return i + 1;
                }
                if (b == '\r') {
                        p->cr = true;
                        p->offset++;
                        continue;
                }
                /* Strict CRLF: a bare LF or a NUL is never valid and would desynchronise literal counting. */
                if (b == '\n' || b == '\0') {
                        parser_fail(p, IMAP_PARSER_E_SYNTAX, p->offset, b ? "LF without CR" : "NUL byte in a line");
                        return i;
                }
                if (buf_reserve(p, 1) != 0)
                        return i;
                p->buf[p->len++] = b;
                p->offset++;
                track_byte(p, b);
        }
        return n;
}

/* Limits with zeros replaced by the defaults. */
static void limits_fill(ImapParserLimits *l) {
        const ImapParserLimits *d = &imap_parser_default_limits;

        if (!l->max_response)
                l->max_response = d->max_response;
        if (!l->max_literal)
                l->max_literal = d->max_literal;
        if (!l->max_body)
                l->max_body = d->max_body;
        if (!l->max_arena)
                l->max_arena = d->max_arena;
        if (!l->max_depth)
                l->max_depth = d->max_depth;
        if (!l->max_items)
                l->max_items = d->max_items;
        if (!l->max_literals)
                l->max_literals = d->max_literals;
}

/* See parser.h. Zero fields of limits take the default. */
ImapParser *imap_parser_new(const ImapParserLimits *limits, ImapEventFn cb, void *userdata) {
        ImapParser *p = calloc(1, sizeof *p);

        if (!p)
                return NULL;
        p->lim = limits ? *limits : imap_parser_default_limits;
        limits_fill(&p->lim);
        p->cb = cb;
        p->userdata = userdata;
        arena_init(&p->arena, p->lim.max_arena);
        parser_reset_response(p);
        return p;
}

/* See parser.h. */
ImapParser *imap_parser_free(ImapParser *p) {
        if (!p)
                return NULL;
        arena_deinit(&p->arena);
        free(p->buf);
        free(p->lits);
        free(p);
        return NULL;
}

/* See parser.h. */
int imap_parser_feed(ImapParser *p, const void *data, size_t len, size_t *n_consumedp) {
        const char *d = data;
        size_t i = 0, n;
        int r = 0;

        for (;;) {
                switch (p->state) {
                case SCAN_ERROR:
                        r = p->err;
                        goto out;
                case SCAN_EMIT:
                        r = emit_pending(p);
                        break;
                case SCAN_BODY_START:
                        p->state = SCAN_BODY;
                        p->chunk.kind = IMAP_EVENT_BODY_START;
                        r = parser_emit(p, &p->chunk);
                        break;
                case SCAN_BODY:
                        if (p->remaining == 0) {
                                p->state = SCAN_LINE;
                                p->line_start = p->len;
                                p->chunk.kind = IMAP_EVENT_BODY_END;
                                p->chunk.body.data = NULL;
                                p->chunk.body.len = 0;
                                r = parser_emit(p, &p->chunk);
                                break;
                        }
                        if (i == len)
                                goto out;
                        n = len - i < p->remaining ? len - i : (size_t)p->remaining;
                        p->chunk.kind = IMAP_EVENT_BODY_DATA;
                        p->chunk.body.data = (const uint8_t *)d + i;
                        p->chunk.body.len = n;
                        i += n;
                        p->offset += n;
                        p->remaining -= n;
                        r = parser_emit(p, &p->chunk);
                        break;
                case SCAN_LITERAL:
                        if (i == len)
                                goto out;
                        n = len - i < p->remaining ? len - i : (size_t)p->remaining;
                        /* end_line() checked the literal fits in max_response. */
                        if (buf_reserve(p, n) != 0)
                                break;
                        memcpy(p->buf + p->len, d + i, n);
                        p->len += n;
                        i += n;
                        p->offset += n;
                        p->remaining -= n;
                        if (p->remaining == 0) {
                                p->state = SCAN_LINE;
                                p->line_start = p->len;
                        }
                        break;
                case SCAN_LINE:
                        if (i == len)
                                goto out;
                        i += scan_line(p, d + i, len - i);
                        break;
                }
                if (p->state == SCAN_ERROR) {
                        r = p->err;
                        goto out;
                }
                if (r != 0)
                        goto out;
        }
out:
        if (n_consumedp)
                *n_consumedp = i;
        return r;
}

/* See parser.h. */
int imap_parser_finish(ImapParser *p) {
        if (p->state == SCAN_ERROR)
                return p->err;
        if (p->state != SCAN_LINE || p->len > 0 || p->cr || p->n_lits > 0)
                return parser_fail(p, IMAP_PARSER_E_TRUNCATED, p->offset, "stream ends inside a response");
        return 0;
}

/* See parser.h. */
int imap_parser_get_error(const ImapParser *p, uint64_t *offsetp, const char **reasonp) {
        if (offsetp)
                *offsetp = p->state == SCAN_ERROR ? p->err_offset : 0;
        if (reasonp)
                *reasonp = p->state == SCAN_ERROR ? p->reason : NULL;
        return p->state == SCAN_ERROR ? p->err : 0;
}

/* See parser.h. */
const char *imap_parser_code_to_string(int code) {
        switch (code) {
        case 0:
                return "success";
        case IMAP_PARSER_PAUSED:
                return "paused";
        case IMAP_PARSER_E_SYNTAX:
                return "syntax error";
        case IMAP_PARSER_E_TOO_BIG:
                return "over a limit";
        case IMAP_PARSER_E_TRUNCATED:
                return "truncated response";
        default:
                return code < 0 ? strerror(-code) : "unknown code";
        }
}
