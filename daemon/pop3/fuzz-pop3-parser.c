/*
 * libFuzzer target for the POP3 parser. Input layout: byte 0 picks where the
 * stream is split, bytes 1-8 pick what each response is expected to be
 * (Pop3Expect modulo its count; the ninth reuses the first, and so on), the
 * rest is what the server sends. The
 * stream is parsed whole, split in two at the picked point, and in small
 * pieces; the three event streams (body chunks merged) must be identical, and
 * every event must satisfy the documented invariants. Any difference aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/pop3/parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEADER 9

typedef struct Trace {
        uint8_t *buf;
        size_t len, cap;
        bool in_body;
} Trace;

static void put(Trace *t, const void *p, size_t n) {
        if (t->len + n > t->cap) {
                size_t cap = (t->len + n) * 2 + 256;
                uint8_t *b = realloc(t->buf, cap);

                if (!b)
                        abort();
                t->buf = b;
                t->cap = cap;
        }
        memcpy(t->buf + t->len, p, n);
        t->len += n;
}

static void put_str(Trace *t, const char *s) {
        if (!s)
                abort();
        put(t, s, strlen(s) + 1);
}

static void put_event(Trace *t, const Pop3Parser *p, const Pop3Event *ev) {
        uint8_t kind = (uint8_t)ev->kind;

        if (ev->kind == POP3_EVENT_BODY) {
                if (!ev->chunk.data || ev->chunk.size == 0)
                        abort();
                if (!t->in_body)
                        put(t, &kind, 1);
                t->in_body = true;
                put(t, ev->chunk.data, ev->chunk.size);
                return;
        }
        t->in_body = false;
        put(t, &kind, 1);
        switch (ev->kind) {
        case POP3_EVENT_STATUS:
                put(t, &ev->status.ok, sizeof ev->status.ok);
                put(t, &ev->status.code, sizeof ev->status.code);
                put_str(t, ev->status.code_text);
                put_str(t, ev->status.text);
                if (strlen(ev->status.text) > POP3_PARSER_LINE_MAX ||
                    (ev->status.code == POP3_RESP_NONE) != !*ev->status.code_text)
                        abort();
                if (ev->status.timestamp) {
                        if (ev->status.timestamp[0] != '<' || ev->status.timestamp[ev->status.timestamp_len - 1] != '>')
                                abort();
                        put(t, ev->status.timestamp, ev->status.timestamp_len);
                }
                break;
        case POP3_EVENT_CONTINUE:
        case POP3_EVENT_LINE:
                put_str(t, ev->line);
                break;
        case POP3_EVENT_STAT:
                put(t, &ev->stat.n_messages, sizeof ev->stat.n_messages);
                put(t, &ev->stat.size, sizeof ev->stat.size);
                break;
        case POP3_EVENT_LISTING:
                put(t, &ev->listing.msg, sizeof ev->listing.msg);
                put(t, &ev->listing.size, sizeof ev->listing.size);
                if (ev->listing.msg == 0 || (ev->listing.uid && ev->listing.uid_valid &&
                                             (strlen(ev->listing.uid) < 1 || strlen(ev->listing.uid) > POP3_UID_MAX)))
                        abort();
                if (ev->listing.uid) {
                        put_str(t, ev->listing.uid);
                        put(t, &ev->listing.uid_valid, sizeof ev->listing.uid_valid);
                }
                break;
        case POP3_EVENT_CAPA:
                if (ev->capa != &p->caps || ev->capa->n_sasl > POP3_CAPS_SASL_MAX)
                        abort();
                for (size_t i = 0; i < ev->capa->n_sasl; i++)
                        if (strlen(ev->capa->sasl[i]) < 1 || strlen(ev->capa->sasl[i]) > POP3_CAPS_SASL_NAME_MAX)
                                abort();
                put(t, ev->capa, sizeof *ev->capa);
                break;
        case POP3_EVENT_END:
                if (pop3_parser_busy(p))
                        abort();
                break;
        default:
                abort();
        }
}

typedef struct Run {
        Pop3Parser p;
        const uint8_t *kinds;
        unsigned n_responses;
        int error;
        Trace t;
} Run;

static void next_expect(Run *r) {
        /* POP3_EXPECT_NONE included: whatever follows must then be refused. */
        Pop3Expect e = (Pop3Expect)(r->kinds[r->n_responses++ % (HEADER - 1)] % _POP3_EXPECT_MAX);

        if (pop3_parser_expect(&r->p, e) != 0)
                abort();
}

static void feed(Run *r, const uint8_t *data, size_t size) {
        while (!r->error) {
                Pop3Event ev;
                size_t used;
                int e = pop3_parser_feed(&r->p, data, size, &used, &ev);

                if (e) {
                        if (e < 0 || e == POP3_PARSER_E_TRUNCATED)
                                abort();
                        r->error = e;
                        return;
                }
                if (used > size)
                        abort();
                data += used;
                size -= used;
                if (ev.kind == POP3_EVENT_NONE) {
                        if (size)
                                abort();
                        return;
                }
                put_event(&r->t, &r->p, &ev);
                if (ev.kind == POP3_EVENT_END)
                        next_expect(r);
        }
}

/* Feeds data[0..first) in one piece, then the rest in pieces of step bytes; records the final code. */
static void replay(Run *r, const uint8_t *kinds, const uint8_t *data, size_t size, size_t step, size_t first) {
        uint8_t code;

        memset(r, 0, sizeof *r);
        pop3_parser_init(&r->p);
        r->kinds = kinds;
        next_expect(r);
        if (first > size)
                first = size;
        feed(r, data, first);
        for (size_t i = first, n; i < size; i += n) {
                uint8_t *piece;

                n = size - i < step ? size - i : step;
                /* Own copy, so that reading past a piece is caught by ASan. */
                piece = malloc(n);
                if (!piece)
                        abort();
                memcpy(piece, data + i, n);
                feed(r, piece, n);
                free(piece);
        }
        code = (uint8_t)(r->error ? r->error : pop3_parser_finish(&r->p));
        put(&r->t, &code, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Run whole, split, pieces;
        size_t at;

        if (size < HEADER)
                return 0;
        at = (size - HEADER) * data[0] / 255;

        replay(&whole, data + 1, data + HEADER, size - HEADER, SIZE_MAX, size);
        replay(&split, data + 1, data + HEADER, size - HEADER, SIZE_MAX, at);
        replay(&pieces, data + 1, data + HEADER, size - HEADER, 1 + data[0] % 7, 0);
        if (whole.t.len != split.t.len || memcmp(whole.t.buf, split.t.buf, whole.t.len) != 0)
                abort();
        if (whole.t.len != pieces.t.len || memcmp(whole.t.buf, pieces.t.buf, whole.t.len) != 0)
                abort();
        free(whole.t.buf);
        free(split.t.buf);
        free(pieces.t.buf);
        return 0;
}
