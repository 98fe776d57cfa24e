/*
 * Submission client tests against a scripted SMTP server on loopback (plain
 * TCP through `tls = none`, which daemon/net allows for loopback peers only):
 * each case gives the server's replies by command prefix and checks the
 * verdict, what the server received (commands and body bytes) and what it did
 * not. The real-server cases (TLS, SASL, Postfix) are in
 * tests/integration/test_smtp.py. Also a table for the pure capability check.
 */
/* The checks below call the code under test: keep them in release builds too. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/smtp/client.h"
#include "daemon/smtp/reply.h"
#include "util/secret.h"

static int failures;

#define check(expr)                                                                              \
        do {                                                                                     \
                if (!(expr)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); \
                        failures++;                                                              \
                }                                                                                \
        } while (0)

#define EHLO_FULL                                                                   \
        "250-fake.example\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250-8BITMIME\r\n" \
        "250-SMTPUTF8\r\n250-CHUNKING\r\n250-DSN\r\n250 AUTH PLAIN LOGIN\r\n"
#define EHLO_PLAIN "250-fake.example\r\n250-SIZE 100\r\n250 AUTH PLAIN\r\n"
#define EHLO_DATA  "250-fake.example\r\n250-SIZE 1000\r\n250 AUTH PLAIN\r\n"

typedef struct Rule {
        const char *prefix; /* of the command line; "." is the end of DATA, "BDAT" its chunks */
        const char *reply;  /* CRLF-terminated reply lines, "DROP" to hang up, "" to stay silent */
} Rule;

typedef struct Case {
        const char *name;
        const char *greeting;
        Rule rules[10];
        const char *message;
        SmtpSendOptions opts;
        SmtpOutcome want_outcome;
        unsigned want_code;
        size_t want_accepted;
        bool want_in_doubt;
        const char *want_seen[6];   /* substrings of the command transcript */
        const char *want_unseen[3]; /* must not be in the transcript */
        const char *want_body;      /* bytes after DATA (dot-stuffed, with the final dot) or in BDAT */
        const char *want_error;     /* substring of result.error */
        uint64_t cancel_after_ms;   /* smtp_client_cancel() then, 0: never */
        bool tls_required;          /* no `tls = none`: the URL asks for STARTTLS */
        NetFailure want_failure;
} Case;

typedef struct Fake {
        uv_loop_t *loop;
        const Case *c;
        uv_tcp_t server, conn;
        uv_timer_t cancel_timer;
        SmtpClient *client;
        bool conn_open;
        char line[4096];
        size_t n_line;
        bool in_data;
        size_t bdat_left;
        char transcript[8192];
        char body[8192];
        size_t n_body;
        bool have_result;
        SmtpSendResult result;
        char error[1200];
        unsigned rcpt_codes[4];
} Fake;

static void conn_closed_cb(uv_handle_t *h) {
}

static void say(Fake *f, const char *text) {
        uv_buf_t b = uv_buf_init((char *)text, (unsigned)strlen(text));

        if (text[0] == '\0')
                return; /* silence */
        if (strcmp(text, "DROP") == 0) {
                if (f->conn_open)
                        uv_close((uv_handle_t *)&f->conn, conn_closed_cb);
                f->conn_open = false;
                return;
        }
        uv_try_write((uv_stream_t *)&f->conn, &b, 1); /* small replies fit the socket buffer */
}

static void answer(Fake *f, const char *cmd) {
        for (const Rule *r = f->c->rules; r->prefix; r++)
                if (strncmp(cmd, r->prefix, strlen(r->prefix)) == 0)
                        return say(f, r->reply);
        say(f, "500 5.5.2 what?\r\n");
}

static void on_line(Fake *f, const char *line) {
        if (f->in_data) {
                snprintf(f->body + f->n_body, sizeof f->body - f->n_body, "%s\r\n", line);
                f->n_body += strlen(f->body + f->n_body);
                if (strcmp(line, ".") == 0) {
                        f->in_data = false;
                        answer(f, ".");
                }
                return;
        }
        snprintf(f->transcript + strlen(f->transcript), sizeof f->transcript - strlen(f->transcript), "%s\n", line);
        if (strncmp(line, "BDAT ", 5) == 0) {
                f->bdat_left = strtoul(line + 5, NULL, 10);
                if (f->bdat_left == 0)
                        answer(f, "BDAT"); /* BDAT 0 LAST: no bytes follow */
                return;
        }
        answer(f, line);
        if (strcmp(line, "DATA") == 0 && f->c->rules[0].prefix) {
                for (const Rule *r = f->c->rules; r->prefix; r++)
                        if (strcmp(r->prefix, "DATA") == 0 && strncmp(r->reply, "354", 3) == 0)
                                f->in_data = true;
        }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
        static char mem[65536];

        *buf = uv_buf_init(mem, sizeof mem);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
        Fake *f = container_of((uv_tcp_t *)s, Fake, conn);

        if (nread < 0) {
                if (f->conn_open)
                        uv_close((uv_handle_t *)&f->conn, conn_closed_cb);
                f->conn_open = false;
                return;
        }
        for (ssize_t i = 0; i < nread && f->conn_open; i++) {
                char ch = buf->base[i];

                if (f->bdat_left > 0) {
                        if (f->n_body < sizeof f->body - 1)
                                f->body[f->n_body++] = ch;
                        if (--f->bdat_left == 0)
                                answer(f, "BDAT");
                        continue;
                }
                if (ch == '\n' && f->n_line > 0 && f->line[f->n_line - 1] == '\r') {
                        f->line[f->n_line - 1] = '\0';
                        f->n_line = 0;
                        on_line(f, f->line);
                } else if (f->n_line < sizeof f->line - 1) {
                        f->line[f->n_line++] = ch;
                }
        }
}

static void connection_cb(uv_stream_t *server, int status) {
        Fake *f = container_of((uv_tcp_t *)server, Fake, server);

        assert(status == 0 && !f->conn_open);
        uv_tcp_init(f->loop, &f->conn);
        assert(uv_accept(server, (uv_stream_t *)&f->conn) == 0);
        f->conn_open = true;
        uv_read_start((uv_stream_t *)&f->conn, alloc_cb, read_cb);
        say(f, f->c->greeting ? f->c->greeting : "220 fake.example ESMTP\r\n");
}

static void sent_cb(SmtpClient *client, const SmtpSendResult *res, void *userdata) {
        Fake *f = userdata;

        f->have_result = true;
        f->client = NULL;
        f->result = *res;
        snprintf(f->error, sizeof f->error, "%s", res->error);
        for (size_t i = 0; i < res->n_rcpts && i < 4; i++)
                f->rcpt_codes[i] = res->rcpts[i].code;
        if (f->conn_open)
                uv_close((uv_handle_t *)&f->conn, conn_closed_cb);
        f->conn_open = false;
        uv_close((uv_handle_t *)&f->server, NULL);
        uv_close((uv_handle_t *)&f->cancel_timer, NULL);
}

static void cancel_cb(uv_timer_t *t) {
        Fake *f = container_of(t, Fake, cancel_timer);

        if (f->client)
                smtp_client_cancel(f->client);
}

static void run_case(const Case *c) {
        static Fake f;
        uv_loop_t loop;
        struct sockaddr_in addr;
        struct sockaddr_storage bound;
        int len = sizeof bound;
        Account a = {.name = "test", .address = "a@example.org", .username = "a@example.org", .tls_none = true};
        SmtpMessage *m = NULL;
        SmtpClient *client;
        char *err = NULL;

        memset(&f, 0, sizeof f);
        f.c = c;
        uv_loop_init(&loop);
        f.loop = &loop;
        uv_tcp_init(&loop, &f.server);
        uv_ip4_addr("127.0.0.1", 0, &addr);
        assert(uv_tcp_bind(&f.server, (struct sockaddr *)&addr, 0) == 0);
        assert(uv_listen((uv_stream_t *)&f.server, 4, connection_cb) == 0);
        uv_tcp_getsockname(&f.server, (struct sockaddr *)&bound, &len);
        a.password = secret_strdup("secret");
        a.tls_none = !c->tls_required;
        a.smtp = (ServerUrl){.proto = SERVER_SMTP,
                             .tls = SERVER_TLS_STARTTLS,
                             .host = "127.0.0.1",
                             .port = ntohs(((struct sockaddr_in *)&bound)->sin_port)};
        assert(smtp_message_prepare(c->message, strlen(c->message),
                                    &(SmtpPrepareOptions){.now = 1795710000, .unique = "u", .utc = true}, &m,
                                    &err) == 0);
        uv_timer_init(&loop, &f.cancel_timer);
        assert(smtp_client_send(&loop, &a, m, &c->opts, sent_cb, &f, &client) == 0);
        f.client = client;
        if (c->cancel_after_ms)
                uv_timer_start(&f.cancel_timer, cancel_cb, c->cancel_after_ms, 0);
        uv_run(&loop, UV_RUN_DEFAULT);
        assert(uv_loop_close(&loop) == 0);

        if (!f.have_result) {
                fprintf(stderr, "%s: no result\n", c->name);
                failures++;
        } else if (f.result.outcome != c->want_outcome || f.result.code != c->want_code ||
                   f.result.n_accepted != c->want_accepted || f.result.in_doubt != c->want_in_doubt ||
                   f.result.failure != c->want_failure || (c->want_error && !strstr(f.error, c->want_error))) {
                fprintf(stderr, "%s: outcome %s code %u accepted %zu in_doubt %d error [%s]\n", c->name,
                        smtp_outcome_to_string(f.result.outcome), f.result.code, f.result.n_accepted, f.result.in_doubt,
                        f.error);
                failures++;
        }
        for (size_t i = 0; i < ARRAY_SIZE(c->want_seen) && c->want_seen[i]; i++)
                if (!strstr(f.transcript, c->want_seen[i])) {
                        fprintf(stderr, "%s: server did not see [%s]:\n%s", c->name, c->want_seen[i], f.transcript);
                        failures++;
                }
        for (size_t i = 0; i < ARRAY_SIZE(c->want_unseen) && c->want_unseen[i]; i++)
                if (strstr(f.transcript, c->want_unseen[i])) {
                        fprintf(stderr, "%s: server saw [%s]:\n%s", c->name, c->want_unseen[i], f.transcript);
                        failures++;
                }
        if (c->want_body && (f.n_body != strlen(c->want_body) || memcmp(f.body, c->want_body, f.n_body) != 0)) {
                fprintf(stderr, "%s: body [%.*s] want [%s]\n", c->name, (int)f.n_body, f.body, c->want_body);
                failures++;
        }
        smtp_message_free(m);
        secret_free(a.password);
        free(err);
}

#define MSG "From: a@example.org\nTo: b@example.org, c@example.org\nSubject: t\n\n.x\nhi\n..\n"
#define PREPARED                                                                              \
        "Date: Thu, 26 Nov 2026 16:20:00 +0000\r\nMessage-ID: <u.1795710000@example.org>\r\n" \
        "From: a@example.org\r\nTo: b@example.org, c@example.org\r\nSubject: t\r\n\r\n.x\r\nhi\r\n..\r\n"
#define STUFFED                                                                               \
        "Date: Thu, 26 Nov 2026 16:20:00 +0000\r\nMessage-ID: <u.1795710000@example.org>\r\n" \
        "From: a@example.org\r\nTo: b@example.org, c@example.org\r\nSubject: t\r\n\r\n..x\r\nhi\r\n...\r\n.\r\n"
#define OK_RULES(ehlo)                                        \
        {"EHLO", ehlo}, {"AUTH PLAIN", "235 2.7.0 ok\r\n"}, { \
                "MAIL", "250 2.1.0 ok\r\n"                    \
        }

static const Case cases[] = {
        {"chunking and pipelining: one BDAT chunk with the bytes as prepared, then BDAT 0 LAST; DSN parameters",
         .rules = {OK_RULES(EHLO_FULL),
                   {"RCPT", "250 2.1.5 ok\r\n"},
                   {"BDAT", "250 2.0.0 queued as A\r\n"},
                   {"QUIT", "221 bye\r\n"}},
         .message = MSG, .opts = {.dsn_notify = "FAILURE,DELAY", .dsn_ret = "HDRS", .dsn_envid = "id+1"},
         .want_outcome = SMTP_OUTCOME_SENT, .want_code = 250, .want_accepted = 2,
         .want_seen = {"AUTH PLAIN ", "MAIL FROM:<a@example.org> SIZE=160 RET=HDRS ENVID=id+2B1",
                       "RCPT TO:<b@example.org> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b@example.org",
                       "BDAT 160\n", "BDAT 0 LAST\n", "QUIT"},
         .want_body = PREPARED},
        {"no chunking: DATA with dot-stuffing, no DSN when not offered",
         .rules = {OK_RULES(EHLO_DATA),
                   {"RCPT", "250 ok\r\n"},
                   {"DATA", "354 go\r\n"},
                   {".", "250 2.0.0 queued\r\n"},
                   {"QUIT", "221 bye\r\n"}},
         .message = MSG, .opts = {.dsn_notify = "NEVER"}, .want_outcome = SMTP_OUTCOME_SENT, .want_code = 250,
         .want_accepted = 2,
         .want_seen = {"MAIL FROM:<a@example.org> SIZE=160\n", "RCPT TO:<b@example.org>\n", "DATA\n"},
         .want_unseen = {"NOTIFY", "BDAT"}, .want_body = STUFFED},
        {"one recipient refused (5xx), one deferred (4xx), one taken: sent, per-recipient codes",
         .rules = {OK_RULES(EHLO_FULL),
                   {"RCPT TO:<b@", "550 5.1.1 no such user\r\n"},
                   {"RCPT TO:<c@", "452 4.2.2 mailbox full\r\n"},
                   {"RCPT", "250 ok\r\n"},
                   {"BDAT", "250 2.0.0 queued\r\n"},
                   {"QUIT", "221 bye\r\n"}},
         .message = "From: a@example.org\nTo: b@example.org, c@example.org, d@example.org\n\nx\n",
         .want_outcome = SMTP_OUTCOME_SENT, .want_code = 250, .want_accepted = 1},
        {"every recipient refused: permanent with the server's words, no body",
         .rules = {OK_RULES(EHLO_FULL),
                   {"RCPT", "550 5.1.1 <b@example.org>: User unknown\r\n"},
                   {"QUIT", "221 bye\r\n"}},
         .message = MSG, .want_outcome = SMTP_OUTCOME_PERMANENT, .want_code = 550, .want_unseen = {"BDAT", "DATA"},
         .want_error = "every recipient was refused: 550 5.1.1 <b@example.org>: User unknown"},
        {"some refused for now: transient",
         .rules = {OK_RULES(EHLO_FULL),
                   {"RCPT TO:<b@", "550 5.1.1 no\r\n"},
                   {"RCPT", "451 4.3.0 later\r\n"},
                   {"QUIT", "221 bye\r\n"}},
         .message = MSG, .want_outcome = SMTP_OUTCOME_TRANSIENT, .want_code = 550, .want_unseen = {"BDAT"}},
        {"too big for SIZE: permanent, nothing sent", .rules = {OK_RULES(EHLO_PLAIN), {"QUIT", "221 bye\r\n"}},
         .message = MSG, .want_outcome = SMTP_OUTCOME_PERMANENT, .want_unseen = {"MAIL"},
         .want_error = "the server takes at most 100; nothing sent"},
        {"needs SMTPUTF8, not offered: permanent, nothing sent",
         .rules = {OK_RULES("250-fake\r\n250-8BITMIME\r\n250 AUTH PLAIN\r\n"), {"QUIT", "221 bye\r\n"}},
         .message = "From: a@example.org\nTo: 太郎@example.org\n\nx\n", .want_outcome = SMTP_OUTCOME_PERMANENT,
         .want_unseen = {"MAIL"}, .want_error = "SMTPUTF8"},
        {"needs SMTPUTF8, offered: MAIL says so",
         .rules = {OK_RULES(EHLO_FULL), {"RCPT", "250 ok\r\n"}, {"BDAT", "250 ok\r\n"}, {"QUIT", "221 bye\r\n"}},
         .message = "From: a@example.org\nTo: 太郎@example.org\n\nx\n", .want_outcome = SMTP_OUTCOME_SENT,
         .want_code = 250, .want_accepted = 1, .want_seen = {"BODY=8BITMIME SMTPUTF8", "RCPT TO:<太郎@example.org>"}},
        {"connection lost after the final dot: in doubt",
         .rules = {OK_RULES(EHLO_DATA), {"RCPT", "250 ok\r\n"}, {"DATA", "354 go\r\n"}, {".", "DROP"}}, .message = MSG,
         .want_outcome = SMTP_OUTCOME_TRANSIENT, .want_in_doubt = true, .want_body = STUFFED, .want_accepted = 2,
         .want_failure = NET_FAILURE_NETWORK, .want_error = "it may have been delivered"},
        {"connection lost before the body: transient, not in doubt", .rules = {OK_RULES(EHLO_FULL), {"RCPT", "DROP"}},
         .message = MSG, .want_outcome = SMTP_OUTCOME_TRANSIENT, .want_failure = NET_FAILURE_NETWORK},
        {"message refused after the body: permanent with the reply",
         .rules =
                 {OK_RULES(EHLO_FULL), {"RCPT", "250 ok\r\n"}, {"BDAT", "554 5.7.1 spam\r\n"}, {"QUIT", "221 bye\r\n"}},
         .message = MSG, .want_outcome = SMTP_OUTCOME_PERMANENT, .want_code = 554, .want_accepted = 2,
         .want_error = "message refused: 554 5.7.1 spam"},
        {"greeting 421: transient", .greeting = "421 4.3.2 busy\r\n", .rules = {{"QUIT", "221 bye\r\n"}},
         .message = MSG, .want_outcome = SMTP_OUTCOME_TRANSIENT, .want_code = 421, .want_error = "busy"},
        {"STARTTLS required and not offered: downgrade refused before any credentials",
         .rules = {{"EHLO", EHLO_FULL}, {"QUIT", "221 bye\r\n"}}, .message = MSG, .tls_required = true,
         .want_outcome = SMTP_OUTCOME_TRANSIENT, .want_failure = NET_FAILURE_DOWNGRADE, .want_unseen = {"AUTH", "MAIL"},
         .want_error = "STARTTLS was not offered"},
        {"authentication refused: account failure naming the account",
         .rules = {{"EHLO", EHLO_FULL}, {"AUTH", "535 5.7.8 bad credentials\r\n"}, {"QUIT", "221 bye\r\n"}},
         .message = MSG, .want_outcome = SMTP_OUTCOME_TRANSIENT, .want_code = 535, .want_failure = NET_FAILURE_AUTH,
         .want_error = "account test: 127.0.0.1:"},
        {"no reply: the timeout ends the session, transient", .rules = {OK_RULES(EHLO_FULL), {"RCPT", ""}},
         .message = MSG, .opts = {.timeout_ms = 300}, .want_outcome = SMTP_OUTCOME_TRANSIENT,
         .want_failure = NET_FAILURE_NETWORK, .want_error = "no reply"},
        {"canceled while waiting: canceled, not in doubt", .rules = {OK_RULES(EHLO_FULL), {"RCPT", ""}}, .message = MSG,
         .cancel_after_ms = 200, .want_outcome = SMTP_OUTCOME_CANCELED},
        {"canceled after the final dot: in doubt",
         .rules = {OK_RULES(EHLO_DATA), {"RCPT", "250 ok\r\n"}, {"DATA", "354 go\r\n"}, {".", ""}}, .message = MSG,
         .cancel_after_ms = 300, .want_outcome = SMTP_OUTCOME_TRANSIENT, .want_accepted = 2, .want_in_doubt = true,
         .want_body = STUFFED, .want_error = "may have been delivered"},
        {"lock-step without pipelining: MAIL waits for its reply",
         .rules = {OK_RULES(EHLO_FULL), {"RCPT", "250 ok\r\n"}, {"BDAT", "250 ok\r\n"}, {"QUIT", "221 bye\r\n"}},
         .message = MSG, .opts = {.no_pipelining = true}, .want_outcome = SMTP_OUTCOME_SENT, .want_code = 250,
         .want_accepted = 2},
};

static void test_check_caps(void) {
        SmtpCaps caps = {.size = true, .size_max = 10, .eightbitmime = true};
        SmtpMessage m = {.size = 10, .needs_8bitmime = true};
        char err[200];

        check(smtp_client_check_caps(&caps, &m, err, sizeof err) == 0);
        m.size = 11;
        check(smtp_client_check_caps(&caps, &m, err, sizeof err) == SMTP_CLIENT_E_TOO_BIG);
        caps.size_max = 0; /* SIZE without a number: no limit stated */
        check(smtp_client_check_caps(&caps, &m, err, sizeof err) == 0);
        caps.eightbitmime = false;
        check(smtp_client_check_caps(&caps, &m, err, sizeof err) == SMTP_CLIENT_E_NO_8BITMIME);
        m.needs_smtputf8 = true;
        check(smtp_client_check_caps(&caps, &m, err, sizeof err) == SMTP_CLIENT_E_NO_SMTPUTF8);
        check(strstr(err, "nothing sent") != NULL);
}

int main(void) {
        if (sodium_init() < 0)
                return 77;
        test_check_caps();
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
                run_case(&cases[i]);
        if (failures) {
                fprintf(stderr, "%d failure(s)\n", failures);
                return 1;
        }
        printf("ok\n");
        return 0;
}
