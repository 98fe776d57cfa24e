/*
 * Message preparation tests: a table of address-list header values (as real
 * mail user agents write them) → the addr-specs found, and a table of whole
 * messages → envelope, bytes sent, flags or the refusal.
 */
/* The checks below call the code under test: keep them in release builds too. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/smtp/prepare.h"

static int failures;

#define check(expr)                                                                              \
        do {                                                                                     \
                if (!(expr)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); \
                        failures++;                                                              \
                }                                                                                \
        } while (0)

typedef struct ListCase {
        const char *value;
        const char *want; /* addresses joined by '|', or NULL when BAD_ADDRESS is expected */
} ListCase;

static const ListCase list_cases[] = {
        {"alice@example.org", "alice@example.org"},
        {"  alice@example.org  ", "alice@example.org"},
        {"Alice <alice@example.org>", "alice@example.org"},
        {"\"Smith, John\" <john@example.org>, bob@example.org", "john@example.org|bob@example.org"},
        {"\"Dr. \\\"Who\\\"\" <who@example.org>", "who@example.org"},
        {"alice@example.org (Alice Liddell), bob@example.org (Bob (the builder))", "alice@example.org|bob@example.org"},
        {"Alice (comment, with comma) <alice@example.org>", "alice@example.org"},
        {"Friends: a@example.org, B <b@example.org>;, c@example.org", "a@example.org|b@example.org|c@example.org"},
        {"undisclosed-recipients:;", ""},
        {"", ""},
        {"a@example.org, , b@example.org,", "a@example.org|b@example.org"},
        {"Alice\r\n <alice@example.org>,\r\n\tBob <bob@example.org>", "alice@example.org|bob@example.org"},
        {"<@relay.example.net,@r2.example.net:alice@example.org>", "alice@example.org"},
        {"\"john doe\"@example.org", "\"john doe\"@example.org"},
        {"=?UTF-8?B?5aSq6YOO?= <taro@example.jp>", "taro@example.jp"},
        {"太郎 <太郎@例え.jp>", "太郎@例え.jp"},
        {"alice @ example.org", "alice@example.org"},
        {"Alice Liddell", NULL},
        {"alice", NULL},
        {"<alice@example.org", NULL},
        {"@example.org", NULL},
        {"alice@", NULL},
        {"Alice <>", NULL},
};

static void test_lists(void) {
        for (size_t i = 0; i < sizeof list_cases / sizeof list_cases[0]; i++) {
                const ListCase *c = &list_cases[i];
                char **addrs = NULL, *err = NULL, got[1024] = "";
                size_t n = 0;
                int r = smtp_address_list_parse(c->value, &addrs, &n, &err);

                for (size_t j = 0; j < n; j++)
                        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", j ? "|" : "", addrs[j]);
                if (c->want ? (r != 0 || strcmp(got, c->want) != 0) : r != SMTP_PREPARE_E_BAD_ADDRESS) {
                        fprintf(stderr, "list %zu [%s]: r=%d got [%s] want [%s] err=%s\n", i, c->value, r, got,
                                c->want ? c->want : "(BAD_ADDRESS)", err ? err : "");
                        failures++;
                }
                if (!c->want)
                        check(err && strstr(err, "bad address"));
                smtp_address_list_free(addrs, n);
                free(err);
        }
}

typedef struct MsgCase {
        const char *name;
        const char *in;
        const char *from;     /* -f */
        const char *rcpts[4]; /* given recipients, NULL-terminated */
        int want_r;
        const char *want_from;
        const char *want_rcpts; /* '|'-joined */
        const char *want_data;
        bool want_8bit, want_utf8;
        const char *want_err; /* substring of the reason, for refusals */
} MsgCase;

#define DATE   "Date: Thu, 26 Nov 2026 16:20:00 +0000\r\n"
#define MID(d) "Message-ID: <u1.1795710000@" d ">\r\n"

static const MsgCase msg_cases[] = {
        {"plain LF message, Date and Message-ID added, Bcc removed",
         "From: Alice <alice@example.org>\nTo: bob@example.org\nBcc: carol@example.org\nSubject: hi\n\nbody\n",
         .want_from = "alice@example.org", .want_rcpts = "bob@example.org|carol@example.org",
         .want_data = DATE MID("example.org") "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\n"
                                              "Subject: hi\r\n\r\nbody\r\n"},
        {"CRLF kept, existing Date/Message-ID kept, folded Bcc removed whole, Cc and dedup",
         "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <x@y>\r\nFrom: a@example.org\r\n"
         "To: b@example.org,\r\n  c@example.org\r\nCc: B@example.org, d@example.org\r\n"
         "BCC: e@example.org,\r\n\tf@example.org\r\n\r\nline\r\n.\r\n",
         .want_from = "a@example.org",
         .want_rcpts = "b@example.org|c@example.org|d@example.org|e@example.org|f@example.org",
         .want_data = "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <x@y>\r\nFrom: a@example.org\r\n"
                      "To: b@example.org,\r\n  c@example.org\r\nCc: B@example.org, d@example.org\r\n\r\nline\r\n.\r\n"},
        {"-f and given recipients override the headers; From: added from -f", "To: b@example.org\nSubject: x\n\nhello",
         .from = "bounce@lists.example.net", .rcpts = {"z@example.org", "Z@example.org", NULL},
         .want_from = "bounce@lists.example.net", .want_rcpts = "z@example.org",
         .want_data = "From: bounce@lists.example.net\r\n" DATE MID(
                 "lists.example.net") "To: b@example.org\r\nSubject: x\r\n\r\nhello\r\n"},
        {"lone CR and a missing final line end", "From: a@example.org\rTo: b@example.org\r\rx\ry",
         .want_from = "a@example.org", .want_rcpts = "b@example.org",
         .want_data = DATE MID("example.org") "From: a@example.org\r\nTo: b@example.org\r\n\r\nx\r\ny\r\n"},
        {"headers only", "From: a@example.org\nTo: b@example.org\n", .want_from = "a@example.org",
         .want_rcpts = "b@example.org",
         .want_data = DATE MID("example.org") "From: a@example.org\r\nTo: b@example.org\r\n\r\n"},
        {"8-bit body needs 8BITMIME, ASCII addresses no SMTPUTF8",
         "From: a@example.org\nTo: b@example.org\nContent-Type: text/plain; charset=utf-8\n\nこんにちは\n",
         .want_from = "a@example.org", .want_rcpts = "b@example.org", .want_8bit = true},
        {"UTF-8 address needs SMTPUTF8", "From: 太郎 <太郎@例え.jp>\nTo: b@example.org\n\nx\n",
         .want_from = "太郎@例え.jp", .want_rcpts = "b@example.org", .want_8bit = true, .want_utf8 = true},
        {"UTF-8 address in To: needs SMTPUTF8 even with ASCII envelope",
         "From: a@example.org\nTo: 太郎@example.org\n\nx\n", .rcpts = {"b@example.org", NULL},
         .want_from = "a@example.org", .want_rcpts = "b@example.org", .want_8bit = true, .want_utf8 = true},
        {"bad To: ignored when the recipients are given", "From: a@example.org\nTo: Bob Smith\n\nx\n",
         .rcpts = {"b@example.org", NULL}, .want_from = "a@example.org", .want_rcpts = "b@example.org"},
        {"8-bit only in a dropped Bcc: and not in the envelope: nothing needed",
         "From: a@example.org\nTo: b@example.org\nBcc: ä@example.org\n\nx\n", .rcpts = {"b@example.org", NULL},
         .want_from = "a@example.org", .want_rcpts = "b@example.org"},
        {"non-ASCII Bcc recipient: SMTPUTF8 for the envelope, no 8-bit byte sent",
         "From: a@example.org\nTo: b@example.org\nBcc: ä@example.org\n\nx\n", .want_from = "a@example.org",
         .want_rcpts = "b@example.org|ä@example.org", .want_utf8 = true},
        {"obsolete blank before the colon", "From : a@example.org\nTo: b@example.org\n\nx\n",
         .want_from = "a@example.org", .want_rcpts = "b@example.org"},
        {"no sender", "To: b@example.org\n\nx\n", .want_r = SMTP_PREPARE_E_NO_SENDER, .want_err = "no sender"},
        {"no recipients", "From: a@example.org\nBcc:\n\nx\n", .want_r = SMTP_PREPARE_E_NO_RECIPIENTS,
         .want_err = "no recipients"},
        {"bad To address named with its field", "From: a@example.org\nTo: Bob Smith\n\nx\n",
         .want_r = SMTP_PREPARE_E_BAD_ADDRESS, .want_err = "To: bad address \"Bob Smith\""},
        {"bad -f", "From: a@example.org\nTo: b@example.org\n\nx\n", .from = "nobody",
         .want_r = SMTP_PREPARE_E_BAD_ADDRESS, .want_err = "bad sender address"},
        {"mbox From_ line is not a header", "From alice@example.org Thu Nov 26 12:00:00 2026\nFrom: a@x.org\n\n",
         .want_r = SMTP_PREPARE_E_BAD_HEADER, .want_err = "has no field name"},
        {"empty message", "", .want_r = SMTP_PREPARE_E_BAD_HEADER, .want_err = "no header"},
        {"body first", "\nx\n", .want_r = SMTP_PREPARE_E_BAD_HEADER, .want_err = "no header"},
};

static void run_msg(const MsgCase *c, const char *in, size_t n) {
        SmtpPrepareOptions o = {.from = c->from, .rcpts = c->rcpts, .now = 1795710000, .unique = "u1", .utc = true};
        SmtpMessage *m = NULL;
        char *err = NULL, got[512] = "";
        int r;

        for (o.n_rcpts = 0; c->rcpts[o.n_rcpts]; o.n_rcpts++)
                ;
        r = smtp_message_prepare(in, n, &o, &m, &err);
        if (r != c->want_r) {
                fprintf(stderr, "msg \"%s\": r=%d want %d (%s)\n", c->name, r, c->want_r, err ? err : "");
                failures++;
        } else if (r != 0) {
                check(m == NULL && err);
                if (c->want_err && (!err || !strstr(err, c->want_err))) {
                        fprintf(stderr, "msg \"%s\": err [%s] lacks [%s]\n", c->name, err ? err : "", c->want_err);
                        failures++;
                }
        } else {
                for (size_t j = 0; j < m->n_rcpts; j++)
                        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", j ? "|" : "", m->rcpts[j]);
                if (strcmp(m->mail_from, c->want_from) != 0 || strcmp(got, c->want_rcpts) != 0 ||
                    m->needs_8bitmime != c->want_8bit || m->needs_smtputf8 != c->want_utf8 ||
                    (c->want_data && (m->size != strlen(c->want_data) || memcmp(m->data, c->want_data, m->size)))) {
                        fprintf(stderr, "msg \"%s\": from=%s rcpts=%s 8bit=%d utf8=%d data=[%.*s]\n", c->name,
                                m->mail_from, got, m->needs_8bitmime, m->needs_smtputf8, (int)m->size, m->data);
                        failures++;
                }
                check(strlen(m->data) == m->size);
        }
        smtp_message_free(m);
        free(err);
}

static void test_messages(void) {
        for (size_t i = 0; i < sizeof msg_cases / sizeof msg_cases[0]; i++)
                run_msg(&msg_cases[i], msg_cases[i].in, strlen(msg_cases[i].in));
}

/* 998 octets pass, 999 do not; a NUL refuses the message. */
static void test_limits(void) {
        static const MsgCase ok = {"998", .want_from = "a@example.org", .want_rcpts = "b@example.org"};
        static const MsgCase too_long = {"999", .want_r = SMTP_PREPARE_E_LINE_TOO_LONG,
                                         .want_err = "line 4 is 999 octets long, more than 998"};
        static const MsgCase nul = {"NUL", .want_r = SMTP_PREPARE_E_NUL, .want_err = "line 4 has a NUL byte"};
        const char *head = "From: a@example.org\nTo: b@example.org\n\n";
        char buf[2048];
        size_t h = strlen(head);

        memcpy(buf, head, h);
        memset(buf + h, 'x', 999);
        buf[h + 998] = '\n';
        run_msg(&ok, buf, h + 999);
        buf[h + 998] = 'x';
        buf[h + 999] = '\n';
        run_msg(&too_long, buf, h + 1000);
        buf[h + 3] = '\0';
        run_msg(&nul, buf, h + 10);
}

/* Default Date and Message-ID: well formed, unique per call. */
static void test_defaults(void) {
        const char *in = "From: a@example.org\nTo: b@example.org\n\nx\n";
        SmtpMessage *m1 = NULL, *m2 = NULL;
        char *id1, *id2;

        check(smtp_message_prepare(in, strlen(in), NULL, &m1, NULL) == 0);
        check(smtp_message_prepare(in, strlen(in), NULL, &m2, NULL) == 0);
        check(m1 && m2 && m1->added_date && m1->added_message_id);
        if (!m1 || !m2)
                return;
        check(strncmp(m1->data, "Date: ", 6) == 0);
        id1 = strstr(m1->data, "Message-ID: <");
        id2 = strstr(m2->data, "Message-ID: <");
        check(id1 && id2 && strstr(id1, "@example.org>\r\n"));
        check(id1 && id2 && strncmp(id1, id2, 40) != 0);
        smtp_message_free(m1);
        smtp_message_free(m2);
        check(smtp_address_domain("a@b.example") && strcmp(smtp_address_domain("a@b.example"), "b.example") == 0);
        check(!smtp_address_is_utf8("a@b") && smtp_address_is_utf8("ä@b"));
}

int main(void) {
        test_lists();
        test_messages();
        test_limits();
        test_defaults();
        if (failures) {
                fprintf(stderr, "%d failure(s)\n", failures);
                return 1;
        }
        printf("ok\n");
        return 0;
}
