/*
 * IMAP response parser tests: tables of server bytes and the events they must
 * give, one line per event in imap_event_to_string() form (consecutive
 * BODY_DATA merged, an error as a last "ERROR" line). Every case is replayed
 * whole, split in two at every byte, one byte at a time, and with a callback
 * that pauses after every event; all must give the expected lines. Then the
 * hostile inputs, error offsets, and the sequence-set helpers.
 *
 * TEGAMI_TEST_DUMP=1 prints what each case gives, to write a new expectation.
 */
#undef NDEBUG /* the checks are assert()s: they must run in every build type */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/imap/parser-internal.h"
#include "daemon/imap/parser.h"

typedef struct Case {
        const char *name;
        const char *input;
        size_t len; /* 0: strlen(input) */
        const char *expect;
        const ImapParserLimits *limits;
} Case;

typedef struct Trace {
        char *buf;
        size_t len, cap;
        ImapEvent data_ev; /* merged BODY_DATA so far */
        char *data, *section;
        size_t n_data;
        bool in_data, pause;
        unsigned n_events;
} Trace;

static int failures, checks;

static void trace_put(Trace *t, const char *s) {
        size_t n = strlen(s);

        if (t->len + n + 2 > t->cap) {
                t->cap = (t->len + n + 2) * 2;
                t->buf = realloc(t->buf, t->cap);
                assert(t->buf);
        }
        memcpy(t->buf + t->len, s, n);
        t->len += n;
        t->buf[t->len++] = '\n';
        t->buf[t->len] = 0;
}

static void trace_flush_data(Trace *t) {
        char *s;

        if (!t->in_data)
                return;
        t->data_ev.body.data = (const uint8_t *)t->data;
        t->data_ev.body.len = t->n_data;
        t->data_ev.body.section.s = t->section;
        s = imap_event_to_string(&t->data_ev);
        assert(s);
        trace_put(t, s);
        free(s);
        free(t->data);
        free(t->section);
        t->data = t->section = NULL;
        t->n_data = 0;
        t->in_data = false;
}

static int on_event(const ImapEvent *ev, void *userdata) {
        Trace *t = userdata;
        char *s;

        t->n_events++;
        if (ev->kind == IMAP_EVENT_BODY_DATA) {
                assert(ev->body.len > 0);
                if (!t->in_data) {
                        t->data_ev = *ev;
                        t->section = strndup(ev->body.section.s, ev->body.section.len);
                        t->in_data = true;
                }
                t->data = realloc(t->data, t->n_data + ev->body.len);
                assert(t->data);
                memcpy(t->data + t->n_data, ev->body.data, ev->body.len);
                t->n_data += ev->body.len;
        } else {
                trace_flush_data(t);
                s = imap_event_to_string(ev);
                assert(s);
                trace_put(t, s);
                free(s);
        }
        return t->pause ? IMAP_PARSER_PAUSED : 0;
}

/* Feeds input cut at the n cuts (increasing offsets); returns the trace. */
static char *run(const Case *c, const size_t *cuts, size_t n_cuts, bool pause) {
        Trace t = {.pause = pause};
        _cleanup_(imap_parser_freep) ImapParser *p = imap_parser_new(c->limits, on_event, &t);
        size_t len = c->len ? c->len : strlen(c->input), start = 0;
        int r = 0;
        char line[160];

        assert(p);
        for (size_t i = 0; i <= n_cuts && r == 0; i++) {
                size_t end = i < n_cuts ? cuts[i] : len, off = start, n;

                do {
                        n = 0;
                        r = imap_parser_feed(p, c->input + off, end - off, &n);
                        assert(n <= end - off);
                        off += n;
                } while (r == IMAP_PARSER_PAUSED);
                if (r == 0)
                        assert(off == end);
                start = end;
        }
        if (r == 0)
                r = imap_parser_finish(p);
        trace_flush_data(&t);
        if (r != 0) {
                const char *reason = NULL;

                snprintf(line, sizeof line, "ERROR %s", imap_parser_code_to_string(r));
                trace_put(&t, line);
                /* The error sticks. */
                assert(imap_parser_get_error(p, NULL, &reason) == r && reason);
                assert(imap_parser_feed(p, "* OK\r\n", 6, NULL) == r);
        }
        if (!t.buf)
                trace_put(&t, "");
        return t.buf;
}

static void check_trace(const Case *c, const char *how, const char *got) {
        checks++;
        if (strcmp(got, c->expect) == 0)
                return;
        failures++;
        fprintf(stderr, "FAIL %s (%s)\n--- expected\n%s--- got\n%s", c->name, how, c->expect, got);
}

static void dump(const Case *c, const char *got) {
        printf("/* %s */\n", c->name);
        for (const char *l = got; *l;) {
                const char *e = strchr(l, '\n');

                printf("        \"");
                for (const char *q = l; q < e; q++)
                        if (*q == '"' || *q == '\\')
                                printf("\\%c", *q);
                        else
                                putchar(*q);
                printf("\\n\"\n");
                l = e + 1;
        }
}

/* Whole, every two-way split, byte by byte, pausing after every event. */
static void check_case(const Case *c, bool every_split) {
        size_t len = c->len ? c->len : strlen(c->input);
        size_t *cuts = calloc(len + 1, sizeof *cuts);
        char *got, how[64];

        assert(cuts);
        got = run(c, NULL, 0, false);
        if (getenv("TEGAMI_TEST_DUMP")) {
                dump(c, got);
                free(got);
                free(cuts);
                return;
        }
        check_trace(c, "whole", got);
        free(got);
        for (size_t k = 1; every_split && k < len; k++) {
                cuts[0] = k;
                got = run(c, cuts, 1, false);
                snprintf(how, sizeof how, "split at %zu", k);
                check_trace(c, how, got);
                free(got);
                if (failures > 20)
                        abort();
        }
        for (size_t k = 1; k < len; k++)
                cuts[k - 1] = k;
        got = run(c, cuts, len ? len - 1 : 0, false);
        check_trace(c, "byte by byte", got);
        free(got);
        got = run(c, cuts, len ? len - 1 : 0, true);
        check_trace(c, "byte by byte, pausing", got);
        free(got);
        got = run(c, NULL, 0, true);
        check_trace(c, "whole, pausing", got);
        free(got);
        free(cuts);
}

static const ImapParserLimits small_items = {.max_items = 4};
static const ImapParserLimits small_arena = {.max_arena = 4096};
static const ImapParserLimits small_body = {.max_body = 10};
static const ImapParserLimits small_literal = {.max_literal = 10};
static const ImapParserLimits small_response = {.max_response = 64};
static const ImapParserLimits small_depth = {.max_depth = 3};

#define C(n, in, ...) \
        { .name = n, .input = in, .expect = __VA_ARGS__ }
#define CB(n, in, ...) \
        { .name = n, .input = in, .len = sizeof(in) - 1, .expect = __VA_ARGS__ }
#define CLIM(n, lim, in, ...) \
        { .name = n, .input = in, .limits = &lim, .expect = __VA_ARGS__ }

#include "daemon/imap/test-parser-cases.h"

/* Inputs built at run time: too long or too deep to write out. */
static void check_generated(void) {
        size_t n = 3u << 20;
        char *big = malloc(n + 3), *s;
        Case c = {.name = "overlong line"};

        assert(big);
        memset(big, 'A', n);
        memcpy(big, "* OK ", 5);
        memcpy(big + n, "\r\n", 3);
        c.input = big;
        c.expect = "ERROR over a limit\n";
        check_case(&c, false);

        /* A line just under the default cap is fine. */
        memcpy(big + 2000000, "\r\n", 3);
        c.name = "long line under the cap";
        s = malloc(2000000 + 64);
        assert(s);
        snprintf(s, 64, "STATUS * OK \"");
        memset(s + strlen(s), 'A', 2000000 - 5);
        strcpy(s + 13 + 2000000 - 5, "\"\n");
        c.expect = s;
        check_case(&c, false);
        free(s);

        /* 1000 levels of BODYSTRUCTURE nesting. */
        s = big;
        s += sprintf(s, "* 1 FETCH (BODYSTRUCTURE ");
        for (int i = 0; i < 1000; i++)
                *s++ = '(';
        strcpy(s, "\r\n");
        c.name = "deep nesting";
        c.input = big;
        c.expect = "ERROR over a limit\n";
        check_case(&c, false);

        /* 1000 nested unknown FETCH item lists, closed. */
        s = big;
        s += sprintf(s, "* 1 FETCH (X-DEEP ");
        for (int i = 0; i < 1000; i++)
                *s++ = '(';
        for (int i = 0; i < 1000; i++)
                *s++ = ')';
        strcpy(s, ")\r\n");
        c.name = "deep generic nesting";
        check_case(&c, false);
        free(big);
}

static int count_cb(const ImapEvent *ev, void *userdata) {
        (*(size_t *)userdata)++;
        return 0;
}

/* 20000 quoted bodies in one FETCH: each replayed as three events, in linear time. */
static void check_many_inline_bodies(void) {
        size_t n = 20000, len = 0, events = 0;
        char *in = malloc(n * 12 + 32);
        ImapParser *p = imap_parser_new(NULL, count_cb, &events);

        assert(in && p);
        len += (size_t)sprintf(in, "* 1 FETCH (UID 1");
        for (size_t i = 0; i < n; i++)
                len += (size_t)sprintf(in + len, " BODY[1] \"x\"");
        len += (size_t)sprintf(in + len, ")\r\n");
        int r = imap_parser_feed(p, in, len, NULL);

        checks++;
        if (r != 0 || events != 3 * n + 1) {
                failures++;
                fprintf(stderr, "FAIL many inline bodies: %s, %zu events\n", imap_parser_code_to_string(r), events);
        }
        imap_parser_free(p);
        free(in);
}

/* The offset an error reports is the offending byte's. */
static void check_offsets(void) {
        static const struct {
                const char *input;
                const char *at; /* the first occurrence of this marks the expected offset */
                int code;
        } t[] = {
                {"* OK hi\r\n* 1 FETCH (UID x)\r\n", "x)", IMAP_PARSER_E_SYNTAX},
                {"* OK hi\r\n* LIST () \"/\" {3}\r\nabc junk\r\n", "junk", IMAP_PARSER_E_SYNTAX},
                {"* 1 FETCH (BODY[] {3}\r\nabc UID 0)\r\n", "0)", IMAP_PARSER_E_SYNTAX},
                {"* OK a\nb", "\nb", IMAP_PARSER_E_SYNTAX},
                {"* OK a\rb", "b", IMAP_PARSER_E_SYNTAX},
        };

        for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
                Trace tr = {0};
                ImapParser *p = imap_parser_new(NULL, on_event, &tr);
                uint64_t off = 0;
                const char *reason = NULL;
                int r = imap_parser_feed(p, t[i].input, strlen(t[i].input), NULL);

                checks++;
                if (r != t[i].code || imap_parser_get_error(p, &off, &reason) != r ||
                    off != (uint64_t)(strstr(t[i].input, t[i].at) - t[i].input)) {
                        failures++;
                        fprintf(stderr, "FAIL offset %zu: r=%d off=%llu reason=%s\n", i, r, (unsigned long long)off,
                                reason);
                }
                imap_parser_free(p);
                free(tr.buf);
        }
}

/* Pausing: feed() stops right after the event and says how much it took. */
static void check_pause(void) {
        static const char in[] = "* 1 EXISTS\r\n* 1 FETCH (BODY[] {3}\r\nabc)\r\n";
        Trace t = {.pause = true};
        ImapParser *p = imap_parser_new(NULL, on_event, &t);
        size_t n = 0;

        checks++;
        assert(imap_parser_feed(p, in, sizeof in - 1, &n) == IMAP_PARSER_PAUSED && n == 12);
        assert(imap_parser_finish(p) == 0);
        assert(imap_parser_feed(p, in + 12, sizeof in - 1 - 12, &n) == IMAP_PARSER_PAUSED && n == 23);
        assert(t.n_events == 2 && imap_parser_finish(p) == IMAP_PARSER_E_TRUNCATED);
        imap_parser_free(p);
        free(t.buf);

        t = (Trace){.pause = true};
        p = imap_parser_new(NULL, on_event, &t);
        assert(imap_parser_feed(p, in, sizeof in - 1, &n) == IMAP_PARSER_PAUSED && n == 12);
        assert(imap_parser_feed(p, in + 12, sizeof in - 1 - 12, &n) == IMAP_PARSER_PAUSED && n == 23);
        assert(imap_parser_feed(p, in + 35, sizeof in - 1 - 35, &n) == IMAP_PARSER_PAUSED && n == 3);
        assert(imap_parser_feed(p, in + 38, 0, &n) == IMAP_PARSER_PAUSED && n == 0);
        assert(t.n_events == 4);
        assert(imap_parser_feed(p, in + 38, sizeof in - 1 - 38, &n) == IMAP_PARSER_PAUSED && n == 3);
        assert(t.n_events == 5 && imap_parser_finish(p) == 0);
        imap_parser_free(p);
        free(t.buf);
}

static int fail_cb(const ImapEvent *ev, void *userdata) {
        return -ECANCELED;
}

/* A callback's negative errno comes back from feed() and sticks. */
static void check_callback_error(void) {
        ImapParser *p = imap_parser_new(NULL, fail_cb, NULL);

        checks++;
        assert(imap_parser_feed(p, "* 1 EXISTS\r\n", 12, NULL) == -ECANCELED);
        assert(imap_parser_feed(p, "* 1 EXISTS\r\n", 12, NULL) == -ECANCELED);
        assert(imap_parser_finish(p) == -ECANCELED);
        assert(!imap_parser_free(p));
        assert(!imap_parser_free(NULL));
}

static void check_seqsets(void) {
        static const struct {
                const char *in;
                int r;
                const char *out; /* as parsed, then compacted with * = 20 */
                const char *compact;
        } t[] = {
                {"1:3,5,7:*", 0, "1:3 5 7:* ", "1:3 5 7:20 "},
                {"*:4", 0, "*:4 ", "4:20 "},
                {"9:2,3,1", 0, "2:9 3 1 ", "1:9 "},
                {"5,1:3,4,10:12,13", 0, "5 1:3 4 10:12 13 ", "1:5 10:13 "},
                {"4294967295,4294967294", 0, "4294967295 4294967294 ", "4294967294:4294967295 "},
                {"*", 0, "* ", "20 "},
                {"", IMAP_PARSER_E_SYNTAX, NULL, NULL},
                {"0", IMAP_PARSER_E_SYNTAX, NULL, NULL},
                {"1:", IMAP_PARSER_E_SYNTAX, NULL, NULL},
                {"1,,2", IMAP_PARSER_E_SYNTAX, NULL, NULL},
                {"1,", IMAP_PARSER_E_SYNTAX, NULL, NULL},
                {"1x", IMAP_PARSER_E_SYNTAX, NULL, NULL},
                {"4294967296", IMAP_PARSER_E_SYNTAX, NULL, NULL},
                {"99999999999999999999999", IMAP_PARSER_E_SYNTAX, NULL, NULL},
        };

        for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
                ImapRange *r = NULL;
                size_t n = 0;
                char buf[256], *b;
                int rc = imap_seqset_parse(t[i].in, strlen(t[i].in), &r, &n);

                checks++;
                if (rc != t[i].r) {
                        failures++;
                        fprintf(stderr, "FAIL seqset %s: %d\n", t[i].in, rc);
                        continue;
                }
                if (rc != 0)
                        continue;
                for (int pass = 0; pass < 2; pass++) {
                        b = buf;
                        if (pass == 1)
                                n = imap_seqset_compact(r, n, 20);
                        for (size_t k = 0; k < n; k++) {
                                b += r[k].first ? sprintf(b, "%u", r[k].first) : sprintf(b, "*");
                                if (r[k].last != r[k].first)
                                        b += r[k].last ? sprintf(b, ":%u", r[k].last) : sprintf(b, ":*");
                                *b++ = ' ';
                        }
                        *b = 0;
                        if (strcmp(buf, pass ? t[i].compact : t[i].out) != 0) {
                                failures++;
                                fprintf(stderr, "FAIL seqset %s pass %d: %s\n", t[i].in, pass, buf);
                        }
                }
                free(r);
        }
        {
                ImapRange r[] = {{1, 3}, {7, IMAP_SEQ_STAR}};

                checks++;
                assert(imap_seqset_contains(r, 2, 2, 9) && imap_seqset_contains(r, 2, 9, 9));
                assert(!imap_seqset_contains(r, 2, 5, 9) && !imap_seqset_contains(r, 2, 10, 9));
                assert(imap_seqset_compact(r, 0, 1) == 0);
        }
}

static void check_dates(void) {
        static const struct {
                const char *s;
                bool ok;
                int64_t t;
        } t[] = {
                {"26-Nov-2026 10:00:00 +0000", true, 1795687200}, {" 6-Nov-2026 09:05:07 -0730", true, 1793982907},
                {"29-Feb-2024 23:59:59 +0900", true, 1709218799}, {"31-Dec-1969 23:59:59 +0000", true, -1},
                {"29-Feb-2023 00:00:00 +0000", false, 0},         {"26-Nov-2026 24:00:00 +0000", false, 0},
                {"26-Foo-2026 10:00:00 +0000", false, 0},         {"26-Nov-2026 10:00:00 0000", false, 0},
                {"26-Nov-2026 10:00:00 *0000", false, 0},         {"2a-Nov-2026 10:00:00 +0000", false, 0},
                {"26-Nov-202a 10:00:00 +0000", false, 0},
        };

        for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
                int64_t v = 0;
                bool ok = imap_date_time_parse(t[i].s, strlen(t[i].s), &v);

                checks++;
                if (ok != t[i].ok || (ok && v != t[i].t)) {
                        failures++;
                        fprintf(stderr, "FAIL date %s: %d %lld\n", t[i].s, ok, (long long)v);
                }
        }
}

int main(void) {
        size_t n_cases = ARRAY_SIZE(cases);

        for (size_t i = 0; i < n_cases; i++)
                check_case(&cases[i], true);
        check_generated();
        check_many_inline_bodies();
        check_offsets();
        check_pause();
        check_callback_error();
        check_seqsets();
        check_dates();
        printf("%zu tables cases, %d checks, %d failures\n", n_cases, checks, failures);
        return failures ? 1 : 0;
}
