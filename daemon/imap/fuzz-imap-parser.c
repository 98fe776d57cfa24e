/*
 * libFuzzer target for the IMAP response parser. The input is what a server
 * sends. It is parsed whole; split in two at a point derived from the data
 * (FNV-1a hash) with a callback that pauses after every event; and in small
 * pieces whose size is derived from the same hash. The three traces (events in
 * text form, body chunks merged, then the error code, offset and reason) must
 * be identical, and body events must follow START, DATA..., END with exactly
 * the announced size. Every other hash picks small limits so the limit paths
 * get exercised too. Any difference aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/imap/parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct Trace {
        char *buf;
        size_t len, cap;
        bool pause;
        bool in_body; /* between BODY_START and BODY_END */
        uint64_t body_size, body_seen;
        ImapEvent data_ev;
        uint8_t *data;
        size_t n_data;
        char *section;
} Trace;

static void put(Trace *t, const char *s, size_t n) {
        if (t->len + n + 1 > t->cap) {
                size_t cap = (t->len + n + 1) * 2;
                char *b = realloc(t->buf, cap);

                if (!b)
                        abort();
                t->buf = b;
                t->cap = cap;
        }
        memcpy(t->buf + t->len, s, n);
        t->len += n;
        t->buf[t->len++] = '\n';
}

static void put_event(Trace *t, const ImapEvent *ev) {
        char *s = imap_event_to_string(ev);

        if (!s)
                abort();
        put(t, s, strlen(s));
        free(s);
}

static void flush_data(Trace *t) {
        if (!t->n_data)
                return;
        t->data_ev.body.data = t->data;
        t->data_ev.body.len = t->n_data;
        t->data_ev.body.section.s = t->section;
        put_event(t, &t->data_ev);
        free(t->data);
        free(t->section);
        t->data = NULL;
        t->section = NULL;
        t->n_data = 0;
}

static int on_event(const ImapEvent *ev, void *userdata) {
        Trace *t = userdata;

        switch (ev->kind) {
        case IMAP_EVENT_BODY_START:
                if (t->in_body)
                        abort();
                t->in_body = true;
                t->body_size = ev->body.size;
                t->body_seen = 0;
                break;
        case IMAP_EVENT_BODY_DATA:
                if (!t->in_body || ev->body.len == 0 || !ev->body.data || ev->body.size != t->body_size)
                        abort();
                t->body_seen += ev->body.len;
                if (t->body_seen > t->body_size)
                        abort();
                if (!t->n_data) {
                        t->data_ev = *ev;
                        t->section = strndup(ev->body.section.s, ev->body.section.len);
                        if (!t->section)
                                abort();
                }
                t->data = realloc(t->data, t->n_data + ev->body.len);
                if (!t->data)
                        abort();
                memcpy(t->data + t->n_data, ev->body.data, ev->body.len);
                t->n_data += ev->body.len;
                return t->pause ? IMAP_PARSER_PAUSED : 0;
        case IMAP_EVENT_BODY_END:
                if (!t->in_body || t->body_seen != t->body_size)
                        abort();
                t->in_body = false;
                break;
        default:
                if (t->in_body)
                        abort();
                break;
        }
        flush_data(t);
        put_event(t, ev);
        return t->pause ? IMAP_PARSER_PAUSED : 0;
}

/* Parses data in pieces of at most step bytes, the first one cut at split; returns the trace. */
static char *run(const uint8_t *data, size_t size, size_t split, size_t step, bool pause, const ImapParserLimits *lim,
                 size_t *lenp) {
        Trace t = {.pause = pause};
        ImapParser *p = imap_parser_new(lim, on_event, &t);
        size_t off = 0;
        int r = 0;

        if (!p)
                abort();
        while (off < size && r == 0) {
                size_t end = off < split ? split : off + step, n;

                if (end > size)
                        end = size;
                do {
                        n = 0;
                        r = imap_parser_feed(p, data + off, end - off, &n);
                        if (n > end - off || (r == IMAP_PARSER_PAUSED && !pause))
                                abort();
                        off += n;
                } while (r == IMAP_PARSER_PAUSED);
                if (r == 0 && off != end)
                        abort();
        }
        if (r == 0)
                r = imap_parser_finish(p);
        flush_data(&t);
        if (r != 0) {
                uint64_t at = 0;
                const char *reason = NULL;
                char line[256];
                int n;

                if (imap_parser_get_error(p, &at, &reason) != r || !reason || at > size)
                        abort();
                if (imap_parser_feed(p, "* OK\r\n", 6, NULL) != r)
                        abort();
                n = snprintf(line, sizeof line, "ERROR %d at %llu: %s", r, (unsigned long long)at, reason);
                put(&t, line, (size_t)n);
        }
        imap_parser_free(p);
        *lenp = t.len;
        return t.buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const ImapParserLimits small = {
                .max_response = 4096,
                .max_literal = 1024,
                .max_body = 1u << 20,
                .max_arena = 64u << 10,
                .max_depth = 8,
                .max_items = 64,
        };
        uint64_t h = 0xcbf29ce484222325u;
        const ImapParserLimits *lim;
        size_t la, lb, lc, split, step;
        char *a, *b, *c;

        for (size_t i = 0; i < size; i++)
                h = (h ^ data[i]) * 0x100000001b3u;
        split = size ? (size_t)(h % (size + 1)) : 0;
        step = 1 + (size_t)((h >> 32) % 7);
        lim = (h >> 40) & 1 ? &small : NULL;

        a = run(data, size, size, size, false, lim, &la);
        b = run(data, size, split, size, true, lim, &lb);
        c = run(data, size, step, step, false, lim, &lc);
        if (la != lb || la != lc || (la && (memcmp(a, b, la) != 0 || memcmp(a, c, la) != 0))) {
                fprintf(stderr, "traces differ (split %zu, step %zu)\n--- whole\n%.*s--- split\n%.*s--- pieces\n%.*s",
                        split, step, (int)la, a ? a : "", (int)lb, b ? b : "", (int)lc, c ? c : "");
                abort();
        }
        free(a);
        free(b);
        free(c);
        return 0;
}
