/*
 * Envelope decoding: encoded words in several charsets (Japanese included),
 * folding, raw UTF-8, address lists, dates, missing fields, and the header
 * collector fed one byte at a time across CRLF seams.
 */
#undef NDEBUG /* the checks are assert()s: they must run in every build type */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "daemon/mime/envelope.h"

static void parse(const char *text, StoreEnvelope *env) {
        assert(mime_envelope_parse(text, strlen(text), env) == 0);
}

static void test_plain(void) {
        StoreEnvelope e;

        parse("From: Alice Example <alice@example.org>\r\n"
              "To: bob@example.org, \"Carol C.\" <carol@example.org>\r\n"
              "Cc: dave@example.org\r\n"
              "Subject: Hello there\r\n"
              "Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
              "Message-ID: <abc.123@example.org>\r\n"
              "In-Reply-To: <parent@example.org>\r\n"
              "References: <root@example.org>\r\n <parent@example.org>\r\n"
              "\r\n"
              "body\r\n",
              &e);
        assert(strcmp(e.subject, "Hello there") == 0);
        assert(strstr(e.from, "Alice Example") && strstr(e.from, "alice@example.org"));
        assert(strstr(e.to, "bob@example.org") && strstr(e.to, "Carol C.") && strstr(e.to, "carol@example.org"));
        assert(strstr(e.cc, "dave@example.org"));
        assert(e.date == 1057049557);
        assert(strcmp(e.message_id, "abc.123@example.org") == 0);
        assert(strstr(e.in_reply_to, "parent@example.org"));
        assert(strstr(e.references, "root@example.org") && strstr(e.references, "parent@example.org"));
        assert(!strchr(e.references, '\n'));
        mime_envelope_clear(&e);
}

static void test_encoded_words(void) {
        StoreEnvelope e;

        /* ISO-2022-JP (B), UTF-8 (B) display name, ISO-8859-1 (Q) with underscores. */
        parse("From: =?UTF-8?B?5bGx55SwIOWkqumDjg==?= <taro@example.jp>\n"
              "Subject: =?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=\n"
              "To: =?ISO-8859-1?Q?J=F6rg_M=FCller?= <joerg@example.de>\n"
              "\n",
              &e);
        assert(strcmp(e.subject, "テスト") == 0);
        assert(strstr(e.from, "山田 太郎") && strstr(e.from, "taro@example.jp"));
        assert(strstr(e.to, "Jörg Müller"));
        assert(e.date == 0 && !e.cc && !e.message_id);
        mime_envelope_clear(&e);

        /* Two adjacent encoded words across a fold join without the whitespace between them. */
        parse("Subject: =?UTF-8?Q?caf=C3=A9?=\r\n =?UTF-8?Q?_au_lait?=\r\n\r\n", &e);
        assert(strcmp(e.subject, "café au lait") == 0);
        mime_envelope_clear(&e);
}

static void test_raw_utf8_and_folding(void) {
        StoreEnvelope e;

        parse("Subject: 日本語の件名\r\n and a folded\r\n\ttail\r\n\r\n", &e);
        assert(strncmp(e.subject, "日本語の件名", strlen("日本語の件名")) == 0);
        assert(strstr(e.subject, "folded") && strstr(e.subject, "tail"));
        assert(!strchr(e.subject, '\n') && !strchr(e.subject, '\r'));
        mime_envelope_clear(&e);
}

static void test_garbage(void) {
        StoreEnvelope e;
        const char junk[] = "\x01\x02 not a header at all\n\xff\xfe:::\n\n";

        assert(mime_envelope_parse(junk, sizeof junk - 1, &e) == 0);
        mime_envelope_clear(&e);
        assert(mime_envelope_parse("", 0, &e) == 0 && !e.subject && !e.from);
        parse("Date: not a date\nSubject:\n\n", &e);
        assert(e.date == 0);
        mime_envelope_clear(&e);
}

static void test_collector(void) {
        const char *msgs[] = {
                "Subject: one\r\nFrom: a@b\r\n\r\nbody\r\n\r\nmore",
                "Subject: two\nFrom: a@b\n\nbody\n\nmore",
        };

        for (size_t k = 0; k < 2; k++) {
                MimeHeaders h = {};
                StoreEnvelope e;
                const char *m = msgs[k];

                for (size_t i = 0; m[i]; i++)
                        assert(mime_headers_feed(&h, &m[i], 1) == 0);
                assert(h.done);
                assert(h.len == (size_t)(strstr(m, k == 0 ? "\r\n\r\n" : "\n\n") - m) + (k == 0 ? 4 : 2));
                assert(mime_headers_envelope(&h, &e) == 0);
                assert(strcmp(e.subject, k == 0 ? "one" : "two") == 0);
                mime_envelope_clear(&e);
                mime_headers_clear(&h);
        }
}

static void test_collector_cap(void) {
        static char big[MIME_HEADERS_MAX + 1000];
        MimeHeaders h = {};

        memset(big, 'x', sizeof big);
        memcpy(big, "X-Long: ", 8);
        assert(mime_headers_feed(&h, big, 1000) == 0);
        assert(!h.done);
        assert(mime_headers_feed(&h, big + 1000, sizeof big - 1000) == 0);
        assert(h.done && h.len == MIME_HEADERS_MAX);
        assert(mime_headers_feed(&h, "more", 4) == 0 && h.len == MIME_HEADERS_MAX);
        mime_headers_clear(&h);
        mime_headers_clear(&h);
}

int main(void) {
        test_plain();
        test_encoded_words();
        test_raw_utf8_and_folding();
        test_garbage();
        test_collector();
        test_collector_cap();
        printf("mime-envelope: ok\n");
        return 0;
}
