/*
 * Line reader tests: a table of inputs and the events they must produce,
 * each replayed whole, split at every byte, and fed one byte at a time. A line
 * ending in "{N}" asks for an N-byte raw run, as an IMAP literal would.
 */
#undef NDEBUG /* the checks are assert()s: they must run in every build type */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/net/line-reader.h"

static int failures;

typedef struct Record {
        char out[4096];
        size_t n;
        LineReader *r;
        bool in_raw;
} Record;

static void put(Record *rec, const char *s, size_t n) {
        assert(rec->n + n < sizeof rec->out);
        memcpy(rec->out + rec->n, s, n);
        rec->n += n;
        rec->out[rec->n] = '\0';
}

static int on_line(void *userdata, const char *line, size_t n) {
        Record *rec = userdata;
        const char *brace;

        assert(line[n] == '\0');
        put(rec, "L:", 2);
        put(rec, line, n);
        put(rec, "|", 1);
        /* "{N}" at the end: a literal of N bytes follows. */
        if (n >= 3 && line[n - 1] == '}' && (brace = strrchr(line, '{'))) {
                unsigned long len = strtoul(brace + 1, NULL, 10);
                assert(line_reader_expect_raw(rec->r, len) == 0);
        }
        return 0;
}

static int on_raw(void *userdata, const char *data, size_t n, bool done) {
        Record *rec = userdata;

        if (!rec->in_raw)
                put(rec, "R:", 2);
        rec->in_raw = !done;
        put(rec, data, n);
        if (done)
                put(rec, "|", 1);
        return 0;
}

/* Feeds input in pieces cut at the given points; returns the first non-zero feed result. */
static int run(const char *input, size_t n, const size_t *cuts, size_t n_cuts, size_t max_line, Record *rec) {
        LineReader r;
        size_t start = 0;
        int ret = 0;

        memset(rec, 0, sizeof *rec);
        rec->r = &r;
        line_reader_init(&r, max_line, on_line, on_raw, rec);
        for (size_t i = 0; i <= n_cuts && ret == 0; i++) {
                size_t end = i < n_cuts ? cuts[i] : n, used;
                ret = line_reader_feed(&r, input + start, end - start, &used);
                if (ret == 0)
                        assert(used == end - start);
                start = end;
        }
        line_reader_deinit(&r);
        line_reader_deinit(&r); /* safe twice */
        return ret;
}

static void check(const char *name, const char *input, size_t max_line, int want_ret, const char *want) {
        size_t n = strlen(input);
        Record rec;
        int ret;

        ret = run(input, n, NULL, 0, max_line, &rec);
        if (ret != want_ret || strcmp(rec.out, want) != 0) {
                fprintf(stderr, "FAIL %s (whole): ret %d, got \"%s\", want \"%s\"\n", name, ret, rec.out, want);
                failures++;
        }
        for (size_t cut = 0; cut <= n; cut++) {
                ret = run(input, n, &cut, 1, max_line, &rec);
                if (ret != want_ret || (want_ret == 0 && strcmp(rec.out, want) != 0)) {
                        fprintf(stderr, "FAIL %s (cut at %zu): ret %d, got \"%s\"\n", name, cut, ret, rec.out);
                        failures++;
                }
        }
        size_t *cuts = malloc((n + 1) * sizeof *cuts);
        for (size_t i = 0; i < n; i++)
                cuts[i] = i + 1;
        ret = run(input, n, cuts, n ? n - 1 : 0, max_line, &rec);
        if (ret != want_ret || (want_ret == 0 && strcmp(rec.out, want) != 0)) {
                fprintf(stderr, "FAIL %s (bytewise): ret %d, got \"%s\"\n", name, ret, rec.out);
                failures++;
        }
        free(cuts);
        printf("ok %s\n", name);
}

int main(void) {
        check("crlf", "* OK hello\r\nA1 OK done\r\n", 100, 0, "L:* OK hello|L:A1 OK done|");
        check("bare lf", "one\ntwo\n", 100, 0, "L:one|L:two|");
        check("empty lines", "\r\n\n", 100, 0, "L:|L:|");
        check("partial tail kept", "abc\r\ndef", 100, 0, "L:abc|");
        check("literal", "* 1 FETCH (BODY[] {5}\r\nhello)\r\n", 100, 0, "L:* 1 FETCH (BODY[] {5}|R:hello|L:)|");
        check("literal with crlf inside", "X {4}\r\na\r\nb\r\n", 100, 0, "L:X {4}|R:a\r\nb|L:|");
        check("empty literal", "X {0}\r\nY\r\n", 100, 0, "L:X {0}|L:Y|");
        check("two literals", "A {2}\r\nxyB {1}\r\nzC\r\n", 100, 0, "L:A {2}|R:xy|L:B {1}|R:z|L:C|");
        check("exactly max", "12345\r\n", 5, 0, "L:12345|");
        check("one over max", "123456\r\n", 5, LINE_READER_E_TOO_LONG, "");
        check("over max without newline", "1234567890", 5, LINE_READER_E_TOO_LONG, "");
        check("cr within line", "a\rb\r\n", 100, 0, "L:a\rb|");

        /* Raw mode refused while a line is half buffered. */
        {
                LineReader r;
                Record rec = { 0 };
                line_reader_init(&r, 100, on_line, on_raw, &rec);
                assert(line_reader_feed(&r, "abc", 3, NULL) == 0);
                assert(!line_reader_is_idle(&r));
                assert(line_reader_expect_raw(&r, 3) == -EBUSY);
                line_reader_deinit(&r);
                line_reader_init(&r, 100, on_line, NULL, &rec);
                assert(line_reader_expect_raw(&r, 3) == -EINVAL);
                line_reader_deinit(&r);
        }
        if (failures)
                fprintf(stderr, "%d failures\n", failures);
        return failures ? 1 : 0;
}
