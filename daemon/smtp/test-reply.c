/*
 * SMTP reply parser tests: tables of server bytes → expected events (real
 * Postfix 3.7 sessions, Gmail-style multi-line rejections, legacy AUTH=,
 * hostile inputs), each replayed whole, split at every byte position, and one
 * byte at a time; all must give the same events.
 */
/* The checks below call the code under test: keep them in release builds too. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/smtp/reply.h"

static int failures;

static const char *error_name(int r) {
        static const char *const names[] = {
                [SMTP_REPLY_E_LINE_TOO_LONG] = "LINE_TOO_LONG",
                [SMTP_REPLY_E_TOO_MANY_LINES] = "TOO_MANY_LINES",
                [SMTP_REPLY_E_NUL] = "NUL",
                [SMTP_REPLY_E_BARE_LF] = "BARE_LF",
                [SMTP_REPLY_E_BAD_CODE] = "BAD_CODE",
                [SMTP_REPLY_E_CODE_MISMATCH] = "CODE_MISMATCH",
                [SMTP_REPLY_E_TRUNCATED] = "TRUNCATED",
        };

        assert(r > 0 && (size_t)r < sizeof names / sizeof names[0] && names[r]);
        return names[r];
}

static void put_quoted(FILE *f, const char *s) {
        fputc('"', f);
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                if (c == '\n')
                        fputs("\\n", f);
                else if (c == '"' || c == '\\')
                        fprintf(f, "\\%c", c);
                else if (c < 0x20 || c >= 0x7f)
                        fprintf(f, "\\x%02x", c);
                else
                        fputc(c, f);
        }
        fputc('"', f);
}

static void put_enhanced(FILE *f, const SmtpEnhancedCode *e) {
        if (e->cls)
                fprintf(f, " [%u.%u.%u]", e->cls, e->subject, e->detail);
}

static void put_caps(FILE *f, const SmtpCaps *c) {
        fprintf(f, "caps domain=%s", c->domain);
        if (c->pipelining)
                fputs(" pipelining", f);
        if (c->size)
                fprintf(f, " size=%llu", (unsigned long long)c->size_max);
        if (c->eightbitmime)
                fputs(" 8bitmime", f);
        if (c->smtputf8)
                fputs(" smtputf8", f);
        if (c->chunking)
                fputs(" chunking", f);
        if (c->binarymime)
                fputs(" binarymime", f);
        if (c->dsn)
                fputs(" dsn", f);
        if (c->starttls)
                fputs(" starttls", f);
        if (c->enhancedstatuscodes)
                fputs(" enhancedstatuscodes", f);
        if (c->auth)
                fputs(" auth=", f);
        for (size_t i = 0; i < c->n_auth; i++)
                fprintf(f, "%s%s", i ? "," : "", c->auth_mechs[i]);
        fputc('\n', f);
}

/* One replay: a parser, which replies are EHLO answers, the rendered events. */
typedef struct Run {
        SmtpReplyParser p;
        const char *ehlo; /* one letter per reply: 'E' EHLO answer, anything else not */
        FILE *out;
        char *buf;
        size_t len;
        bool stopped;
} Run;

static void run_next_reply(Run *r) {
        if (*r->ehlo && *r->ehlo++ == 'E')
                assert(smtp_reply_parser_expect_ehlo(&r->p) == 0);
}

static void run_start(Run *r, const char *ehlo) {
        memset(r, 0, sizeof *r);
        smtp_reply_parser_init(&r->p);
        r->ehlo = ehlo;
        r->out = open_memstream(&r->buf, &r->len);
        assert(r->out);
        run_next_reply(r);
}

static void render(Run *r, const SmtpEvent *ev) {
        FILE *f = r->out;

        switch (ev->kind) {
        case SMTP_EVENT_LINE:
                fprintf(f, "%u%c", ev->line.code, ev->line.last ? ' ' : '-');
                put_enhanced(f, &ev->line.enhanced);
                fputc(' ', f);
                put_quoted(f, ev->line.message);
                fputc('\n', f);
                /* text is the message with the enhanced code in front, if any. */
                assert(strlen(ev->line.text) >= strlen(ev->line.message));
                assert(strcmp(ev->line.text + strlen(ev->line.text) - strlen(ev->line.message), ev->line.message) == 0);
                assert(ev->line.enhanced.cls || ev->line.text == ev->line.message);
                break;
        case SMTP_EVENT_REPLY:
                fprintf(f, "reply %u %s", ev->reply.code, smtp_reply_class_to_string(ev->reply.cls));
                put_enhanced(f, &ev->reply.enhanced);
                fprintf(f, " lines=%u ", ev->reply.n_lines);
                put_quoted(f, ev->reply.text);
                fputs(ev->reply.text_truncated ? " truncated\n" : "\n", f);
                if (ev->reply.caps)
                        put_caps(f, ev->reply.caps);
                assert(!smtp_reply_parser_busy(&r->p));
                run_next_reply(r);
                break;
        default:
                assert(!"unexpected event kind");
        }
}

static void run_error(Run *r, int e) {
        fprintf(r->out, "error %s\n", error_name(e));
        r->stopped = true;
}

static void run_feed(Run *r, const char *data, size_t size) {
        while (!r->stopped) {
                SmtpEvent ev;
                size_t used;
                int e = smtp_reply_parser_feed(&r->p, data, size, &used, &ev);

                if (e) {
                        assert(e > 0);
                        run_error(r, e);
                        assert(smtp_reply_parser_feed(&r->p, data, size, &used, &ev) == e && used == 0);
                        return;
                }
                assert(used <= size);
                data += used;
                size -= used;
                if (ev.kind == SMTP_EVENT_NONE) {
                        assert(size == 0);
                        return;
                }
                render(r, &ev);
        }
}

static char *run_end(Run *r) {
        if (!r->stopped) {
                int e = smtp_reply_parser_finish(&r->p);

                if (e)
                        run_error(r, e);
        }
        fclose(r->out);
        return r->buf;
}

/* Feeds each piece from its own allocation, so a read past a piece is caught by ASan. */
static void run_feed_copy(Run *r, const char *data, size_t size) {
        char *copy = malloc(size ? size : 1);

        assert(copy);
        memcpy(copy, data, size);
        run_feed(r, copy, size);
        free(copy);
}

static void report(const char *name, const char *how, const char *got, const char *want) {
        failures++;
        fprintf(stderr, "FAIL %s (%s)\n--- want\n%s--- got\n%s---\n", name, how, want, got);
}

static void check(const char *name, const char *ehlo, const char *input, size_t size, const char *want) {
        Run r;
        char *got, how[64];
        int before = failures;

        run_start(&r, ehlo);
        run_feed_copy(&r, input, size);
        got = run_end(&r);
        if (strcmp(got, want) != 0)
                report(name, "whole", got, want);
        free(got);

        for (size_t k = 0; k <= size && failures == before; k++) {
                run_start(&r, ehlo);
                run_feed_copy(&r, input, k);
                run_feed_copy(&r, input + k, size - k);
                got = run_end(&r);
                snprintf(how, sizeof how, "split at %zu", k);
                if (strcmp(got, want) != 0)
                        report(name, how, got, want);
                free(got);
        }

        run_start(&r, ehlo);
        for (size_t k = 0; k < size; k++)
                run_feed_copy(&r, input + k, 1);
        got = run_end(&r);
        if (strcmp(got, want) != 0)
                report(name, "byte by byte", got, want);
        free(got);

        printf("%s %s\n", failures == before ? "ok" : "FAIL", name);
}

typedef struct Case {
        const char *name;
        const char *ehlo; /* 'E' for each reply that answers EHLO, '-' for others */
        const char *input;
        size_t size; /* 0: strlen(input) */
        const char *want;
} Case;

#define BIN(s) s, sizeof(s) - 1

#define POSTFIX_EHLO                                                                                               \
        "250-localhost\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-AUTH PLAIN LOGIN\r\n" \
        "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
#define POSTFIX_EHLO_LINES                                                                                \
        "250- \"localhost\"\n250- \"PIPELINING\"\n250- \"SIZE 10240000\"\n250- \"VRFY\"\n250- \"ETRN\"\n" \
        "250- \"AUTH PLAIN LOGIN\"\n250- \"ENHANCEDSTATUSCODES\"\n250- \"8BITMIME\"\n250- \"DSN\"\n"      \
        "250- \"SMTPUTF8\"\n250  \"CHUNKING\"\n"
#define POSTFIX_EHLO_REPLY                                                                                         \
        "reply 250 positive lines=11 \"localhost\\nPIPELINING\\nSIZE 10240000\\nVRFY\\nETRN\\nAUTH PLAIN LOGIN\\n" \
        "ENHANCEDSTATUSCODES\\n8BITMIME\\nDSN\\nSMTPUTF8\\nCHUNKING\"\n"

static const Case cases[] = {
        /* Postfix 3.7 (Debian 12). */
        {"postfix ehlo", "E", POSTFIX_EHLO, 0,
         POSTFIX_EHLO_LINES POSTFIX_EHLO_REPLY "caps domain=localhost pipelining size=10240000 8bitmime smtputf8 "
                                               "chunking dsn enhancedstatuscodes auth=PLAIN,LOGIN\n"},
        {"postfix ehlo read as a plain reply", "-", POSTFIX_EHLO, 0, POSTFIX_EHLO_LINES POSTFIX_EHLO_REPLY},
        {"postfix submission before STARTTLS", "-E--",
         "220 localhost ESMTP tegami-sandbox\r\n250-localhost\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n"
         "250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n"
         "250-SMTPUTF8\r\n250 CHUNKING\r\n530 5.7.0 Must issue a STARTTLS command first\r\n221 2.0.0 Bye\r\n",
         0,
         "220  \"localhost ESMTP tegami-sandbox\"\nreply 220 positive lines=1 \"localhost ESMTP tegami-sandbox\"\n"
         "250- \"localhost\"\n250- \"PIPELINING\"\n250- \"SIZE 52428800\"\n250- \"VRFY\"\n250- \"ETRN\"\n"
         "250- \"STARTTLS\"\n250- \"ENHANCEDSTATUSCODES\"\n250- \"8BITMIME\"\n250- \"DSN\"\n250- \"SMTPUTF8\"\n"
         "250  \"CHUNKING\"\nreply 250 positive lines=11 \"localhost\\nPIPELINING\\nSIZE 52428800\\nVRFY\\nETRN\\n"
         "STARTTLS\\nENHANCEDSTATUSCODES\\n8BITMIME\\nDSN\\nSMTPUTF8\\nCHUNKING\"\n"
         "caps domain=localhost pipelining size=52428800 8bitmime smtputf8 chunking dsn starttls "
         "enhancedstatuscodes\n"
         "530  [5.7.0] \"Must issue a STARTTLS command first\"\n"
         "reply 530 permanent [5.7.0] lines=1 \"Must issue a STARTTLS command first\"\n"
         "221  [2.0.0] \"Bye\"\nreply 221 positive [2.0.0] lines=1 \"Bye\"\n"},
        {"relay access denied", "-", "554 5.7.1 <x@y>: Relay access denied\r\n", 0,
         "554  [5.7.1] \"<x@y>: Relay access denied\"\n"
         "reply 554 permanent [5.7.1] lines=1 \"<x@y>: Relay access denied\"\n"},
        {"deferred", "-", "450 4.7.1 <x@y>: Recipient address rejected: Try again later\r\n", 0,
         "450  [4.7.1] \"<x@y>: Recipient address rejected: Try again later\"\n"
         "reply 450 transient [4.7.1] lines=1 \"<x@y>: Recipient address rejected: Try again later\"\n"},
        {"pipelined mail, rcpt, data, dot", "----",
         "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
         "250 2.0.0 Ok: queued as 4Q1x2y\r\n",
         0,
         "250  [2.1.0] \"Ok\"\nreply 250 positive [2.1.0] lines=1 \"Ok\"\n"
         "250  [2.1.5] \"Ok\"\nreply 250 positive [2.1.5] lines=1 \"Ok\"\n"
         "354  \"End data with <CR><LF>.<CR><LF>\"\nreply 354 intermediate lines=1 \"End data with "
         "<CR><LF>.<CR><LF>\"\n250  [2.0.0] \"Ok: queued as 4Q1x2y\"\n"
         "reply 250 positive [2.0.0] lines=1 \"Ok: queued as 4Q1x2y\"\n"},
        {"gmail-style multi-line rejection", "-",
         "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
         "550 5.1.1 https://support.google.com/mail/?p=NoSuchUser\r\n",
         0,
         "550- [5.1.1] \"The email account that you tried to reach does not exist.\"\n"
         "550  [5.1.1] \"https://support.google.com/mail/?p=NoSuchUser\"\n"
         "reply 550 permanent [5.1.1] lines=2 \"The email account that you tried to reach does not exist.\\n"
         "https://support.google.com/mail/?p=NoSuchUser\"\n"},
        {"legacy AUTH= and odd keywords", "E",
         "250-mx.example.com at your service\r\n250-AUTH LOGIN PLAIN XOAUTH2\r\n250-AUTH=LOGIN PLAIN CRAM-MD5\r\n"
         "250-binarymime\r\n250-size\r\n250-X-EXPS GSSAPI\r\n250-XCLIENT NAME\r\n250-STARTTLS=x\r\n"
         "250 Pipelining\r\n",
         0,
         "250- \"mx.example.com at your service\"\n250- \"AUTH LOGIN PLAIN XOAUTH2\"\n"
         "250- \"AUTH=LOGIN PLAIN CRAM-MD5\"\n250- \"binarymime\"\n250- \"size\"\n250- \"X-EXPS GSSAPI\"\n"
         "250- \"XCLIENT NAME\"\n250- \"STARTTLS=x\"\n250  \"Pipelining\"\n"
         "reply 250 positive lines=9 \"mx.example.com at your service\\nAUTH LOGIN PLAIN XOAUTH2\\n"
         "AUTH=LOGIN PLAIN CRAM-MD5\\nbinarymime\\nsize\\nX-EXPS GSSAPI\\nXCLIENT NAME\\nSTARTTLS=x\\nPipelining\"\n"
         "caps domain=mx.example.com pipelining size=0 binarymime auth=LOGIN,PLAIN,XOAUTH2,CRAM-MD5\n"},
        {"ehlo keyword parameters", "E",
         "250-h\r\n250-SIZE 0\r\n250-AUTH plain bad/mech THISNAMEISMUCHTOOLONG1 \r\n250-SIZE 99x\r\n250 DSN\r\n", 0,
         "250- \"h\"\n250- \"SIZE 0\"\n250- \"AUTH plain bad/mech THISNAMEISMUCHTOOLONG1 \"\n250- \"SIZE 99x\"\n"
         "250  \"DSN\"\nreply 250 positive lines=5 \"h\\nSIZE 0\\nAUTH plain bad/mech THISNAMEISMUCHTOOLONG1 "
         "\\nSIZE 99x\\nDSN\"\ncaps domain=h size=0 dsn auth=PLAIN\n"},
        {"single-line ehlo", "E", "250 mail.example.org\r\n", 0,
         "250  \"mail.example.org\"\nreply 250 positive lines=1 \"mail.example.org\"\ncaps domain=mail.example.org\n"},
        {"ehlo refused, then helo", "E-", "502 5.5.2 Error: command not recognized\r\n250 mail.example.org\r\n", 0,
         "502  [5.5.2] \"Error: command not recognized\"\n"
         "reply 502 permanent [5.5.2] lines=1 \"Error: command not recognized\"\n"
         "250  \"mail.example.org\"\nreply 250 positive lines=1 \"mail.example.org\"\n"},
        {"empty texts", "---", "250\r\n250-\r\n250 \r\n334 \r\n", 0,
         "250  \"\"\nreply 250 positive lines=1 \"\"\n250- \"\"\n250  \"\"\nreply 250 positive lines=2 \"\\n\"\n"
         "334  \"\"\nreply 334 intermediate lines=1 \"\"\n"},
        {"auth challenge", "-", "334 VXNlcm5hbWU6\r\n", 0,
         "334  \"VXNlcm5hbWU6\"\nreply 334 intermediate lines=1 \"VXNlcm5hbWU6\"\n"},
        {"enhanced code shapes", "--------",
         "250 2.0.0\r\n250 2.0.0Ok\r\n550 5.1.1234 x\r\n550 5..1 x\r\n250 1.2.3 x\r\n451 4.3.0 Error\r\n"
         "552 5.3.4 Message size exceeds fixed limit\r\n421 4.4.2 mx Error: timeout exceeded\r\n",
         0,
         "250  [2.0.0] \"\"\nreply 250 positive [2.0.0] lines=1 \"\"\n"
         "250  \"2.0.0Ok\"\nreply 250 positive lines=1 \"2.0.0Ok\"\n"
         "550  \"5.1.1234 x\"\nreply 550 permanent lines=1 \"5.1.1234 x\"\n"
         "550  \"5..1 x\"\nreply 550 permanent lines=1 \"5..1 x\"\n"
         "250  \"1.2.3 x\"\nreply 250 positive lines=1 \"1.2.3 x\"\n"
         "451  [4.3.0] \"Error\"\nreply 451 transient [4.3.0] lines=1 \"Error\"\n"
         "552  [5.3.4] \"Message size exceeds fixed limit\"\n"
         "reply 552 permanent [5.3.4] lines=1 \"Message size exceeds fixed limit\"\n"
         "421  [4.4.2] \"mx Error: timeout exceeded\"\n"
         "reply 421 transient [4.4.2] lines=1 \"mx Error: timeout exceeded\"\n"},
        {"8-bit text", "-", "550 5.1.1 \xe5\xae\x9b\xe5\x85\x88\xe4\xb8\x8d\xe6\x98\x8e\r\n", 0,
         "550  [5.1.1] \"\\xe5\\xae\\x9b\\xe5\\x85\\x88\\xe4\\xb8\\x8d\\xe6\\x98\\x8e\"\n"
         "reply 550 permanent [5.1.1] lines=1 \"\\xe5\\xae\\x9b\\xe5\\x85\\x88\\xe4\\xb8\\x8d\\xe6\\x98\\x8e\"\n"},

        /* Hostile or broken servers. */
        {"mixed codes", "-", "250-first\r\n251 second\r\n", 0, "250- \"first\"\nerror CODE_MISMATCH\n"},
        {"mixed classes", "E", "250-a\r\n550 b\r\n", 0, "250- \"a\"\nerror CODE_MISMATCH\n"},
        {"short code", "-", "25\r\n", 0, "error BAD_CODE\n"},
        {"four digits", "-", "2500 x\r\n", 0, "error BAD_CODE\n"},
        {"code 600", "-", "600 x\r\n", 0, "error BAD_CODE\n"},
        {"code 199", "-", "199 x\r\n", 0, "error BAD_CODE\n"},
        {"code 260", "-", "260 x\r\n", 0, "error BAD_CODE\n"},
        {"bad separator", "-", "250x\r\n", 0, "error BAD_CODE\n"},
        {"tab separator", "-", "250\tok\r\n", 0, "error BAD_CODE\n"},
        {"not a reply", "-", "* OK IMAP4rev1\r\n", 0, "error BAD_CODE\n"},
        {"empty line", "-", "\r\n", 0, "error BAD_CODE\n"},
        {"NUL in text", "-", BIN("250 a\0b\r\n"), "error NUL\n"},
        {"NUL in code", "-", BIN("2\0 ok\r\n"), "error NUL\n"},
        {"bare LF", "-", "250 ok\n", 0, "error BARE_LF\n"},
        {"bare LF in continuation", "-", "250-a\r\n250 b\n", 0, "250- \"a\"\nerror BARE_LF\n"},
        {"missing CRLF", "-", "250 ok", 0, "error TRUNCATED\n"},
        {"continuation never finished", "E", "250-a\r\n250-b\r\n", 0, "250- \"a\"\n250- \"b\"\nerror TRUNCATED\n"},
        {"nothing", "-", "", 0, ""},
        {"bad line after a good reply", "--", "221 Bye\r\nxyz\r\n", 0,
         "221  \"Bye\"\nreply 221 positive lines=1 \"Bye\"\nerror BAD_CODE\n"},
};

/* "250 " then n bytes of 'a' then tail. */
static char *line_of(size_t n, const char *tail, size_t *sizep) {
        size_t t = strlen(tail);
        char *in = malloc(4 + n + t);

        assert(in);
        memcpy(in, "250 ", 4);
        memset(in + 4, 'a', n);
        memcpy(in + 4 + n, tail, t);
        *sizep = 4 + n + t;
        return in;
}

static void test_caps(void) {
        size_t n = SMTP_REPLY_LINE_MAX - 4, size, want_size = 2 * SMTP_REPLY_TEXT_MAX + 4096;
        char *in, *want = malloc(want_size);
        FILE *f;

        assert(want);
        in = line_of(n, "\r\n", &size);
        snprintf(want, want_size, "250  \"%.*s\"\nreply 250 positive lines=1 \"%.*s\" truncated\n", (int)n, in + 4,
                 SMTP_REPLY_TEXT_MAX, in + 4);
        check("line at the cap", "-", in, size, want);
        free(in);
        in = line_of(n + 1, "\r\n", &size);
        check("line over the cap", "-", in, size, "error LINE_TOO_LONG\n");
        free(in);
        in = line_of(n + 2, "", &size);
        check("line over the cap, no CRLF", "-", in, size, "error LINE_TOO_LONG\n");
        free(in);
        in = line_of(n + 50, "\r\n", &size);
        in[SMTP_REPLY_LINE_MAX + 20] = '\0';
        check("NUL past the cap", "-", in, size, "error LINE_TOO_LONG\n");
        free(in);

        /* SMTP_REPLY_LINES_MAX lines pass; one more is an error. */
        for (int extra = 0; extra <= 1; extra++) {
                char *buf = NULL, *wbuf = NULL;
                size_t len = 0, wlen = 0;
                unsigned lines = SMTP_REPLY_LINES_MAX + (unsigned)extra;
                FILE *w = open_memstream(&wbuf, &wlen);

                f = open_memstream(&buf, &len);
                assert(f && w);
                for (unsigned i = 1; i <= lines; i++) {
                        fprintf(f, "250%c%u\r\n", i == lines ? ' ' : '-', i);
                        if (i <= SMTP_REPLY_LINES_MAX)
                                fprintf(w, "250%c \"%u\"\n", i == lines ? ' ' : '-', i);
                }
                if (extra)
                        fputs("error TOO_MANY_LINES\n", w);
                else {
                        fprintf(w, "reply 250 positive lines=%u \"", lines);
                        for (unsigned i = 1; i <= lines; i++)
                                fprintf(w, "%s%u", i > 1 ? "\\n" : "", i);
                        fputs("\"\n", w);
                }
                fclose(f);
                fclose(w);
                check(extra ? "too many lines" : "lines at the cap", "-", buf, len, wbuf);
                free(buf);
                free(wbuf);
        }
        free(want);
}

static void test_api(void) {
        SmtpReplyParser p;
        SmtpEvent ev;
        size_t used;

        assert(smtp_reply_class(199) == SMTP_REPLY_CLASS_INVALID);
        assert(smtp_reply_class(200) == SMTP_REPLY_POSITIVE);
        assert(smtp_reply_class(354) == SMTP_REPLY_INTERMEDIATE);
        assert(smtp_reply_class(421) == SMTP_REPLY_TRANSIENT);
        assert(smtp_reply_class(599) == SMTP_REPLY_PERMANENT);
        assert(smtp_reply_class(600) == SMTP_REPLY_CLASS_INVALID);
        assert(smtp_reply_is_positive(250) && !smtp_reply_is_positive(354));
        assert(smtp_reply_is_intermediate(334) && smtp_reply_is_transient(450) && smtp_reply_is_permanent(554));
        assert(!smtp_reply_is_permanent(450) && !smtp_reply_is_transient(0));
        assert(strcmp(smtp_reply_class_to_string(SMTP_REPLY_TRANSIENT), "transient") == 0);
        assert(strcmp(smtp_reply_class_to_string((SmtpReplyClass)9), "invalid") == 0);
        assert(strcmp(smtp_reply_strerror(SMTP_REPLY_E_CODE_MISMATCH), "reply lines with different codes") == 0);
        assert(strcmp(smtp_reply_strerror(-5), "unknown") == 0 && strcmp(smtp_reply_strerror(50), "unknown") == 0);

        smtp_reply_parser_init(&p);
        assert(!smtp_reply_parser_busy(&p) && smtp_reply_parser_finish(&p) == 0);
        assert(smtp_reply_parser_feed(&p, "250-a\r\n25", 9, &used, &ev) == 0 && ev.kind == SMTP_EVENT_LINE);
        assert(used == 7 && !ev.line.last);
        assert(smtp_reply_parser_busy(&p) && smtp_reply_parser_expect_ehlo(&p) == -EBUSY);
        assert(smtp_reply_parser_feed(&p, "25", 2, &used, &ev) == 0 && ev.kind == SMTP_EVENT_NONE && used == 2);
        assert(smtp_reply_parser_finish(&p) == SMTP_REPLY_E_TRUNCATED);
        assert(smtp_reply_parser_feed(&p, "0 b\r\n", 5, &used, &ev) == 0 && ev.kind == SMTP_EVENT_LINE);
        assert(ev.line.last && strcmp(ev.line.text, "b") == 0);
        /* REPLY comes without consuming anything; the bytes after it stay with the caller (STARTTLS). */
        assert(smtp_reply_parser_feed(&p, "\x16\x03", 2, &used, &ev) == 0 && ev.kind == SMTP_EVENT_REPLY);
        assert(used == 0 && ev.reply.n_lines == 2 && !ev.reply.caps);
        assert(!smtp_reply_parser_busy(&p) && smtp_reply_parser_expect_ehlo(&p) == 0);
        printf("ok api\n");
}

int main(void) {
        test_api();
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
                check(cases[i].name, cases[i].ehlo, cases[i].input,
                      cases[i].size ? cases[i].size : strlen(cases[i].input), cases[i].want);
        test_caps();
        if (failures)
                fprintf(stderr, "%d failures\n", failures);
        return failures ? 1 : 0;
}
