/*
 * Unit tests of the sync engine's pure parts: modified UTF-7 both ways
 * (valid round trips and every kind of invalid input), folder patterns and
 * roles, flag mapping, and the per-flag three-way merge.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/imap/flags.h"
#include "daemon/imap/folders.h"
#include "daemon/mime/envelope.h"
#include "daemon/imap/mutf7.h"
#include "store/message.h"

static int failures, checks;

#define check(cond)                                                                              \
        do {                                                                                     \
                checks++;                                                                        \
                if (!(cond)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
                        failures++;                                                              \
                }                                                                                \
        } while (0)

static bool streq_null(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void test_mutf7(void) {
        static const struct {
                const char *utf8, *mutf7;
        } ok[] = {
                {"", ""},
                {"INBOX", "INBOX"},
                {"a&b", "a&-b"},
                {"&", "&-"},
                {"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
                {"Entwürfe", "Entw&APw-rfe"},
                {"Gesendete Objekte", "Gesendete Objekte"},
                {"😀", "&2D3eAA-"},
                {"é&é", "&AOk-&-&AOk-"},
                {"Ünïcödé", "&ANw-n&AO8-c&APY-d&AOk-"},
        };
        static const char *const bad[] = {
                "&",           /* unterminated */
                "&AOk",        /* unterminated */
                "&-&",         /* unterminated after a literal & */
                "&AOk-&AOk-",  /* two adjacent shifts */
                "&AGE-",       /* shifted printable ASCII "a" */
                "&2D0-",       /* lone high surrogate */
                "&3gA-",       /* lone low surrogate */
                "&AOl-",       /* non-zero padding bits */
                "&AOkA-",      /* a spare sextet */
                "&AO!-",       /* not base64 */
                "&AO/-",       /* "/" instead of "," */
                "a\tb",        /* control byte */
                "caf\xc3\xa9", /* 8-bit */
                "&AAA-",       /* NUL */
        };

        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                char *d = NULL, *e = NULL;

                check(imap_mutf7_decode(ok[i].mutf7, strlen(ok[i].mutf7), &d) == 0);
                check(d && strcmp(d, ok[i].utf8) == 0);
                check(imap_mutf7_encode(ok[i].utf8, &e) == 0);
                check(e && strcmp(e, ok[i].mutf7) == 0);
                if (e && strcmp(e, ok[i].mutf7) != 0)
                        fprintf(stderr, "  encode(%s) = %s, want %s\n", ok[i].utf8, e, ok[i].mutf7);
                free(d);
                free(e);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char *d = NULL;
                int r = imap_mutf7_decode(bad[i], strlen(bad[i]), &d);

                check(r == -EINVAL);
                if (r != -EINVAL)
                        fprintf(stderr, "  decode(%s) accepted as %s\n", bad[i], d ? d : "(null)");
                free(d);
        }
        /* Invalid UTF-8 is refused by the encoder. */
        static const char *const bad_utf8[] = {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                               "\xe6\x97", "a\x01",        "\xff"};
        for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
                char *e = NULL;
                check(imap_mutf7_encode(bad_utf8[i], &e) == -EINVAL);
                free(e);
        }
        /* A name with an embedded NUL is not a name. */
        {
                char *d = NULL;
                check(imap_mutf7_decode("a\0b", 3, &d) == -EINVAL);
                free(d);
        }
}

static void test_folders(void) {
        char *star_not_junk[] = {"*", "!Junk", NULL};
        char *only_excl[] = {"!Junk", "!Trash/*", NULL};
        char *work[] = {"INBOX", "Work/%", NULL};
        char *order[] = {"!Archive/*", "Archive/*", NULL};
        char *lower_inbox[] = {"inbox/*", NULL};

        check(imap_folder_wanted(NULL, "anything", '/'));
        check(imap_folder_wanted(star_not_junk, "INBOX", '/'));
        check(imap_folder_wanted(star_not_junk, "Junk/old", '/'));
        check(!imap_folder_wanted(star_not_junk, "Junk", '/'));
        check(imap_folder_wanted(star_not_junk, "日本語", '/'));
        check(imap_folder_wanted(only_excl, "Sent", '/'));
        check(!imap_folder_wanted(only_excl, "Junk", '/'));
        check(!imap_folder_wanted(only_excl, "Trash/x/y", '/'));
        check(imap_folder_wanted(only_excl, "Trash", '/'));
        check(imap_folder_wanted(work, "INBOX", '/'));
        check(imap_folder_wanted(work, "Work/a", '/'));
        check(!imap_folder_wanted(work, "Work/a/b", '/'));
        check(imap_folder_wanted(work, "Work/a.b", '.') == false); /* "%" stops at the delimiter "." */
        check(!imap_folder_wanted(work, "Work", '/'));
        check(!imap_folder_wanted(work, "Sent", '/'));
        check(imap_folder_wanted(order, "Archive/2020", '/')); /* the last match decides */
        check(imap_folder_wanted(lower_inbox, "INBOX/x", '/'));
        check(!imap_folder_wanted(lower_inbox, "INBOX", '/'));

        check(imap_folder_role("INBOX", 0) == STORE_ROLE_INBOX);
        check(imap_folder_role("inbox", IMAP_LIST_SENT) == STORE_ROLE_INBOX);
        check(imap_folder_role("Sent Items", IMAP_LIST_SENT | IMAP_LIST_HASNOCHILDREN) == STORE_ROLE_SENT);
        check(imap_folder_role("x", IMAP_LIST_DRAFTS) == STORE_ROLE_DRAFTS);
        check(imap_folder_role("x", IMAP_LIST_TRASH) == STORE_ROLE_TRASH);
        check(imap_folder_role("x", IMAP_LIST_JUNK) == STORE_ROLE_JUNK);
        check(imap_folder_role("x", IMAP_LIST_ARCHIVE) == STORE_ROLE_ARCHIVE);
        check(imap_folder_role("x", IMAP_LIST_ALL | IMAP_LIST_FLAGGED) == STORE_ROLE_ALL);
        check(imap_folder_role("x", IMAP_LIST_FLAGGED) == STORE_ROLE_FLAGGED);
        check(imap_folder_role("x", IMAP_LIST_IMPORTANT | IMAP_LIST_MARKED) == STORE_ROLE_NONE);
        check(strcmp(imap_folder_role_to_string(STORE_ROLE_JUNK), "junk") == 0);
}

static void test_flags(void) {
        ImapStr v[] = {
                {"\\Seen", 5},    {"\\RECENT", 7}, {"$forwarded", 10}, {"work", 4},      {"Work", 4},
                {"\\flagged", 8}, {"$Label1", 7},  {"\\*", 2},         {"\\Unknown", 8},
        };
        ImapStrList l = {v, sizeof(v) / sizeof(v[0])};
        ImapStrList empty = {NULL, 0};
        uint32_t mask = 99;
        char *kw = NULL, *s = NULL, *add = NULL, *rm = NULL;

        check(imap_flags_parse(&l, &mask, &kw) == 0);
        check(mask == (STORE_FLAG_SEEN | STORE_FLAG_FORWARDED | STORE_FLAG_FLAGGED));
        check(streq_null(kw, "$Label1 work"));
        free(kw);
        check(imap_flags_parse(&empty, &mask, &kw) == 0);
        check(mask == 0 && kw == NULL);

        check(imap_flags_format(STORE_FLAG_SEEN | STORE_FLAG_DRAFT | STORE_FLAG_FORWARDED, "b a", &s) == 0);
        check(streq_null(s, "\\Seen \\Draft $Forwarded a b"));
        free(s);
        check(imap_flags_format(0, NULL, &s) == 0);
        check(streq_null(s, ""));
        free(s);
        check(imap_flags_format(0, "ok bad(kw", &s) == -EINVAL);
        check(imap_flags_format(0, "\\Seen", &s) == -EINVAL);
        check(imap_flags_format(0, "caf\xc3\xa9", &s) == -EINVAL);

        check(imap_keywords_normalize("  b  A a   c ", &s) == 0);
        check(streq_null(s, "A b c"));
        free(s);
        check(imap_keywords_normalize("   ", &s) == 0 && s == NULL);

        check(imap_keywords_apply("a b", "c B", "a c", &s) == 0);
        check(streq_null(s, "b")); /* remove wins over add; b already there */
        free(s);
        check(imap_keywords_diff("a b c", "b D", &add, &rm) == 0);
        check(streq_null(add, "D") && streq_null(rm, "a c"));
        free(add);
        free(rm);
        check(imap_keywords_diff(NULL, NULL, &add, &rm) == 0 && !add && !rm);

        /* Three-way merge of system flags, per flag. */
        const uint32_t S = STORE_FLAG_SEEN, F = STORE_FLAG_FLAGGED, A = STORE_FLAG_ANSWERED;
        check(imap_flags_merge(true, 0, S, 0) == S);       /* local only */
        check(imap_flags_merge(true, 0, 0, F) == F);       /* server only */
        check(imap_flags_merge(true, 0, S, F) == (S | F)); /* both, different flags */
        check(imap_flags_merge(true, S | F, F, S) == 0);   /* each removed a different one */
        check(imap_flags_merge(true, S, 0, 0) == 0);       /* both removed the same */
        check(imap_flags_merge(true, S, S | A, S | F) == (S | A | F));
        check(imap_flags_merge(true, S, S, S) == S);      /* nothing changed */
        check(imap_flags_merge(false, 0, S | A, F) == F); /* no base: the server wins */

        check(imap_keywords_merge(true, "a b", "a b c", "b", &s) == 0);
        check(streq_null(s, "b c")); /* local added c, server removed a */
        free(s);
        check(imap_keywords_merge(true, NULL, "X", "x y", &s) == 0);
        check(streq_null(s, "X y")); /* both added x (any case): kept once */
        free(s);
        check(imap_keywords_merge(true, "a", NULL, NULL, &s) == 0 && s == NULL);
        check(imap_keywords_merge(false, "a", "a b", "c", &s) == 0);
        check(streq_null(s, "c"));
        free(s);
}

static void test_headers(void) {
        static const char msg[] = "Received: from x\r\n\tby y\r\n"
                                  "From: =?UTF-8?Q?J=C3=B6rg?= <j@example.net>\r\n"
                                  "To: a@example.org,\r\n  b@example.org\r\n"
                                  "subject: Hello\r\n"
                                  "Date: Thu, 26 Nov 2026 10:00:00 +0100\r\n"
                                  "Message-ID: <m1@example.net>\r\n"
                                  "\r\n"
                                  "Subject: not a header\r\n";
        size_t len = strlen(msg);

        /* Split at every byte: the empty line is found across chunks, the body never read; fields
         * come out decoded (daemon/mime/envelope.c, the decoder every engine uses). */
        for (size_t cut = 0; cut <= len; cut++) {
                MimeHeaders h = {};
                StoreEnvelope env = {};

                check(mime_headers_feed(&h, msg, cut) == 0);
                check(mime_headers_feed(&h, msg + cut, len - cut) == 0);
                check(h.done);
                check(mime_headers_envelope(&h, &env) == 0);
                check(streq_null(env.subject, "Hello"));
                check(env.to && strstr(env.to, "a@example.org") && strstr(env.to, "b@example.org"));
                check(env.from && strstr(env.from, "Jörg") && strstr(env.from, "<j@example.net>"));
                check(streq_null(env.message_id, "m1@example.net"));
                check(env.cc == NULL && env.references == NULL);
                check(env.date == 1795683600); /* 09:00:00 UTC */
                mime_envelope_clear(&env);
                mime_headers_clear(&h);
                mime_headers_clear(&h); /* safe twice */
        }

        /* No empty line: capped at MIME_HEADERS_MAX, never more. */
        {
                MimeHeaders h = {};
                char *big = malloc(MIME_HEADERS_MAX * 2);

                memset(big, 'x', MIME_HEADERS_MAX * 2);
                check(mime_headers_feed(&h, big, MIME_HEADERS_MAX * 2) == 0);
                check(h.done && h.len == MIME_HEADERS_MAX);
                mime_headers_clear(&h);
                free(big);
        }
}

int main(void) {
        test_mutf7();
        test_headers();
        test_folders();
        test_flags();
        printf("%d checks, %d failures\n", checks, failures);
        return failures ? 1 : 0;
}
