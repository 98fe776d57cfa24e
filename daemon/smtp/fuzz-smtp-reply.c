/*
 * libFuzzer target for the SMTP reply parser. Input layout: byte 0 picks
 * where the stream is split, byte 1 is a mask of which of the replies are
 * EHLO answers (bit i for replies i, i+8, ...), the rest is what the server
 * sends. The stream is parsed whole, split in two at the picked point, and in
 * small pieces; the three event streams must be identical, and every event
 * must satisfy the documented invariants. Any difference aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/smtp/reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEADER 2

typedef struct Trace {
        uint8_t *buf;
        size_t len, cap;
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

static void put_enhanced(Trace *t, const SmtpEnhancedCode *e) {
        if (e->cls != 0 && e->cls != 2 && e->cls != 4 && e->cls != 5)
                abort();
        if (e->subject > 999 || e->detail > 999)
                abort();
        put(t, &e->cls, sizeof e->cls);
        put(t, &e->subject, sizeof e->subject);
        put(t, &e->detail, sizeof e->detail);
}

static void put_caps(Trace *t, const SmtpCaps *c) {
        const bool flags[] = {
                c->pipelining, c->size,     c->eightbitmime,        c->smtputf8, c->chunking, c->binarymime,
                c->dsn,        c->starttls, c->enhancedstatuscodes, c->auth};

        if (c->n_auth > SMTP_CAPS_AUTH_MAX || strlen(c->domain) > SMTP_CAPS_DOMAIN_MAX)
                abort();
        put(t, flags, sizeof flags);
        put(t, &c->size_max, sizeof c->size_max);
        put_str(t, c->domain);
        for (size_t i = 0; i < c->n_auth; i++) {
                if (strlen(c->auth_mechs[i]) < 1 || strlen(c->auth_mechs[i]) > SMTP_CAPS_AUTH_NAME_MAX)
                        abort();
                put_str(t, c->auth_mechs[i]);
        }
}

static void put_event(Trace *t, const SmtpReplyParser *p, const SmtpEvent *ev) {
        uint8_t kind = (uint8_t)ev->kind;

        put(t, &kind, 1);
        switch (ev->kind) {
        case SMTP_EVENT_LINE:
                if (ev->line.code < 200 || ev->line.code > 559 || strlen(ev->line.text) > SMTP_REPLY_LINE_MAX)
                        abort();
                put(t, &ev->line.code, sizeof ev->line.code);
                put(t, &ev->line.last, sizeof ev->line.last);
                put_enhanced(t, &ev->line.enhanced);
                put_str(t, ev->line.text);
                put_str(t, ev->line.message);
                break;
        case SMTP_EVENT_REPLY:
                if (smtp_reply_class(ev->reply.code) != ev->reply.cls || ev->reply.cls == SMTP_REPLY_CLASS_INVALID)
                        abort();
                if (ev->reply.n_lines < 1 || ev->reply.n_lines > SMTP_REPLY_LINES_MAX)
                        abort();
                if (strlen(ev->reply.text) > SMTP_REPLY_TEXT_MAX || smtp_reply_parser_busy(p))
                        abort();
                put(t, &ev->reply.code, sizeof ev->reply.code);
                put(t, &ev->reply.n_lines, sizeof ev->reply.n_lines);
                put(t, &ev->reply.text_truncated, sizeof ev->reply.text_truncated);
                put_enhanced(t, &ev->reply.enhanced);
                put_str(t, ev->reply.text);
                if (ev->reply.caps) {
                        if (ev->reply.code != 250 || ev->reply.caps != &p->caps)
                                abort();
                        put_caps(t, ev->reply.caps);
                }
                break;
        default:
                abort();
        }
}

typedef struct Run {
        SmtpReplyParser p;
        uint8_t ehlo_mask;
        unsigned n_replies;
        int error;
        Trace t;
} Run;

static void next_reply(Run *r) {
        if (r->ehlo_mask & (1u << (r->n_replies++ % 8)))
                if (smtp_reply_parser_expect_ehlo(&r->p) != 0)
                        abort();
}

static void feed(Run *r, const uint8_t *data, size_t size) {
        while (!r->error) {
                SmtpEvent ev;
                size_t used;
                int e = smtp_reply_parser_feed(&r->p, data, size, &used, &ev);

                if (e) {
                        if (e < 0 || e == SMTP_REPLY_E_TRUNCATED)
                                abort();
                        r->error = e;
                        return;
                }
                if (used > size)
                        abort();
                data += used;
                size -= used;
                if (ev.kind == SMTP_EVENT_NONE) {
                        if (size)
                                abort();
                        return;
                }
                put_event(&r->t, &r->p, &ev);
                if (ev.kind == SMTP_EVENT_REPLY)
                        next_reply(r);
        }
}

/* Feeds data[0..first) in one piece, then the rest in pieces of step bytes; records the final code. */
static void replay(Run *r, uint8_t mask, const uint8_t *data, size_t size, size_t step, size_t first) {
        uint8_t code;

        memset(r, 0, sizeof *r);
        smtp_reply_parser_init(&r->p);
        r->ehlo_mask = mask;
        next_reply(r);
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
        code = (uint8_t)(r->error ? r->error : smtp_reply_parser_finish(&r->p));
        put(&r->t, &code, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Run whole, split, pieces;
        size_t at;

        if (size < HEADER)
                return 0;
        at = (size - HEADER) * data[0] / 255;

        replay(&whole, data[1], data + HEADER, size - HEADER, SIZE_MAX, size);
        replay(&split, data[1], data + HEADER, size - HEADER, SIZE_MAX, at);
        replay(&pieces, data[1], data + HEADER, size - HEADER, 1 + data[0] % 7, 0);
        if (whole.t.len != split.t.len || memcmp(whole.t.buf, split.t.buf, whole.t.len) != 0)
                abort();
        if (whole.t.len != pieces.t.len || memcmp(whole.t.buf, pieces.t.buf, whole.t.len) != 0)
                abort();
        free(whole.t.buf);
        free(split.t.buf);
        free(pieces.t.buf);
        return 0;
}
