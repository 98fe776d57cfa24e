/*
 * POP3 command queue tests: what goes on the wire when (lockstep, pipelined,
 * commands that must go alone), replies matched to commands in order and
 * split at every byte, -ERR reported with its response code, secrets wiped,
 * and cancellation completing every callback exactly once.
 */
/* The checks below call the code under test: keep them in release builds too. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "daemon/pop3/cmdq.h"

static int failures;

#define CHECK(cond)                                                                                            \
        do {                                                                                                   \
                if (!(cond)) {                                                                                 \
                        fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, __func__, #cond); \
                        failures++;                                                                            \
                }                                                                                              \
        } while (0)

typedef struct Wire {
        char sent[4096];
        size_t n_sent;
        int fail_writes;
} Wire;

static int wire_write(const char *data, size_t n, void *userdata) {
        Wire *w = userdata;

        if (w->fail_writes)
                return -EPIPE;
        assert(w->n_sent + n < sizeof w->sent);
        memcpy(w->sent + w->n_sent, data, n);
        w->n_sent += n;
        w->sent[w->n_sent] = '\0';
        return 0;
}

/* What one command saw. */
typedef struct Seen {
        int n_done, r;
        Pop3RespCode code;
        char text[128];
        char events[512]; /* "L1:a L2:b B[...]" */
} Seen;

static void ev_cb(const Pop3Event *ev, void *userdata) {
        Seen *s = userdata;
        size_t len = strlen(s->events);

        switch (ev->kind) {
        case POP3_EVENT_LISTING:
                snprintf(s->events + len, sizeof s->events - len, "L%u:%s ", ev->listing.msg,
                         ev->listing.uid ? ev->listing.uid : "-");
                break;
        case POP3_EVENT_BODY:
                snprintf(s->events + len, sizeof s->events - len, "%.*s", (int)ev->chunk.size, ev->chunk.data);
                break;
        case POP3_EVENT_STAT:
                snprintf(s->events + len, sizeof s->events - len, "S%u/%llu ", ev->stat.n_messages,
                         (unsigned long long)ev->stat.size);
                break;
        default:
                break;
        }
}

static void done_cb(int r, const Pop3Status *st, void *userdata) {
        Seen *s = userdata;

        s->n_done++;
        s->r = r;
        if (st) {
                s->code = st->code;
                snprintf(s->text, sizeof s->text, "%s", st->text);
        }
}

static void feed_all(Pop3Cmdq *q, const char *data, size_t step) {
        size_t n = strlen(data);

        for (size_t i = 0; i < n; i += step) {
                int r = pop3_cmdq_feed(q, data + i, n - i < step ? n - i : step);
                assert(r == 0);
        }
}

static void test_lockstep(void) {
        Wire w = {0};
        Pop3Cmdq q;
        Seen a = {0}, b = {0};

        pop3_cmdq_init(&q, wire_write, &w);
        CHECK(pop3_cmdq_push(&q, "STAT", POP3_EXPECT_STAT, 0, ev_cb, done_cb, &a) == 0);
        CHECK(pop3_cmdq_push(&q, "UIDL", POP3_EXPECT_UIDL, 0, ev_cb, done_cb, &b) == 0);
        CHECK(strcmp(w.sent, "STAT\r\n") == 0); /* lockstep: UIDL waits */
        CHECK(pop3_cmdq_get_n_flight(&q) == 1);
        feed_all(&q, "+OK 2 320\r\n", 1);
        CHECK(a.n_done == 1 && a.r == 0 && strcmp(a.events, "S2/320 ") == 0);
        CHECK(strcmp(w.sent, "STAT\r\nUIDL\r\n") == 0);
        feed_all(&q, "+OK\r\n1 aaa\r\n2 bbb\r\n.\r\n", 1);
        CHECK(b.n_done == 1 && strcmp(b.events, "L1:aaa L2:bbb ") == 0);
        CHECK(pop3_cmdq_is_idle(&q));
        pop3_cmdq_deinit(&q);
        CHECK(a.n_done == 1 && b.n_done == 1);
}

static void test_pipelined_split_everywhere(void) {
        static const char replies[] = "+OK 2 10\r\n"
                                      "+OK\r\n1 u1\r\n2 u2\r\n.\r\n"
                                      "+OK\r\nHello\r\n..dot\r\n.\r\n"
                                      "-ERR [SYS/TEMP] try later\r\n"
                                      "+OK bye\r\n";
        size_t len = strlen(replies);

        for (size_t step = 1; step <= len; step++) {
                Wire w = {0};
                Pop3Cmdq q;
                Seen s[5] = {0};

                pop3_cmdq_init(&q, wire_write, &w);
                pop3_cmdq_set_max_flight(&q, 8);
                pop3_cmdq_push(&q, "STAT", POP3_EXPECT_STAT, 0, ev_cb, done_cb, &s[0]);
                pop3_cmdq_push(&q, "UIDL", POP3_EXPECT_UIDL, 0, ev_cb, done_cb, &s[1]);
                pop3_cmdq_push(&q, "RETR 1", POP3_EXPECT_BODY, 0, ev_cb, done_cb, &s[2]);
                pop3_cmdq_push(&q, "DELE 1", POP3_EXPECT_SINGLE, 0, ev_cb, done_cb, &s[3]);
                pop3_cmdq_push(&q, "QUIT", POP3_EXPECT_SINGLE, POP3_CMD_ALONE, ev_cb, done_cb, &s[4]);
                /* Pipelined, except QUIT which waits for everything before it. */
                CHECK(strcmp(w.sent, "STAT\r\nUIDL\r\nRETR 1\r\nDELE 1\r\n") == 0);
                feed_all(&q, replies, step);
                CHECK(strcmp(w.sent, "STAT\r\nUIDL\r\nRETR 1\r\nDELE 1\r\nQUIT\r\n") == 0);
                CHECK(strcmp(s[0].events, "S2/10 ") == 0);
                CHECK(strcmp(s[1].events, "L1:u1 L2:u2 ") == 0);
                CHECK(strcmp(s[2].events, "Hello\r\n.dot\r\n") == 0 && s[2].r == 0);
                CHECK(s[3].r == POP3_CMDQ_E_ERR && s[3].code == POP3_RESP_SYS_TEMP &&
                      strcmp(s[3].text, "try later") == 0);
                CHECK(s[4].r == 0 && strcmp(s[4].text, "bye") == 0);
                for (int i = 0; i < 5; i++)
                        CHECK(s[i].n_done == 1);
                pop3_cmdq_deinit(&q);
                if (failures)
                        return;
        }
}

static void test_alone_waits_for_flight(void) {
        Wire w = {0};
        Pop3Cmdq q;
        Seen a = {0}, b = {0}, c = {0};

        pop3_cmdq_init(&q, wire_write, &w);
        pop3_cmdq_set_max_flight(&q, 8);
        pop3_cmdq_push(&q, "NOOP", POP3_EXPECT_SINGLE, 0, NULL, done_cb, &a);
        pop3_cmdq_push(&q, "STLS", POP3_EXPECT_SINGLE, POP3_CMD_ALONE, NULL, done_cb, &b);
        pop3_cmdq_push(&q, "CAPA", POP3_EXPECT_CAPA, 0, NULL, done_cb, &c);
        CHECK(strcmp(w.sent, "NOOP\r\n") == 0);
        feed_all(&q, "+OK\r\n", 3);
        CHECK(strcmp(w.sent, "NOOP\r\nSTLS\r\n") == 0); /* nothing after an ALONE command until answered */
        feed_all(&q, "+OK go\r\n", 3);
        CHECK(strcmp(w.sent, "NOOP\r\nSTLS\r\nCAPA\r\n") == 0);
        pop3_cmdq_deinit(&q);
        CHECK(c.n_done == 1 && c.r == -ECANCELED);
}

static void test_greeting_is_not_sent(void) {
        Wire w = {0};
        Pop3Cmdq q;
        Seen g = {0};

        pop3_cmdq_init(&q, wire_write, &w);
        pop3_cmdq_push(&q, NULL, POP3_EXPECT_GREETING, POP3_CMD_ALONE, NULL, done_cb, &g);
        CHECK(w.n_sent == 0);
        feed_all(&q, "+OK Dovecot ready.\r\n", 1);
        CHECK(g.n_done == 1 && g.r == 0 && strcmp(g.text, "Dovecot ready.") == 0);
        pop3_cmdq_deinit(&q);
}

static int n_reentrant;

static void cancel_pushes_cb(int r, const Pop3Status *st, void *userdata) {
        Pop3Cmdq *q = userdata;

        n_reentrant++;
        /* Refused: the queue is failing. */
        CHECK(pop3_cmdq_push(q, "NOOP", POP3_EXPECT_SINGLE, 0, NULL, NULL, NULL) < 0);
}

static void test_cancel_completes_everything(void) {
        Wire w = {0};
        Pop3Cmdq q;
        Seen s[4] = {0};

        pop3_cmdq_init(&q, wire_write, &w);
        pop3_cmdq_set_max_flight(&q, 2);
        for (int i = 0; i < 4; i++)
                pop3_cmdq_push(&q, "NOOP", POP3_EXPECT_SINGLE, 0, NULL, done_cb, &s[i]);
        pop3_cmdq_push(&q, "NOOP", POP3_EXPECT_SINGLE, 0, NULL, cancel_pushes_cb, &q);
        CHECK(pop3_cmdq_get_n_flight(&q) == 2);
        pop3_cmdq_cancel(&q, -ECONNRESET);
        for (int i = 0; i < 4; i++)
                CHECK(s[i].n_done == 1 && s[i].r == -ECONNRESET);
        CHECK(n_reentrant == 1);
        pop3_cmdq_deinit(&q); /* safe after cancel: nothing runs twice */
        for (int i = 0; i < 4; i++)
                CHECK(s[i].n_done == 1);
        CHECK(n_reentrant == 1);
}

static void test_protocol_errors(void) {
        Wire w = {0};
        Pop3Cmdq q;
        Seen s = {0};

        /* Bytes nobody asked for. */
        pop3_cmdq_init(&q, wire_write, &w);
        CHECK(pop3_cmdq_feed(&q, "+OK\r\n", 5) == POP3_PARSER_E_UNEXPECTED);
        pop3_cmdq_deinit(&q);

        /* A garbage status line fails the queue; the owner cancels. */
        pop3_cmdq_init(&q, wire_write, &w);
        pop3_cmdq_push(&q, "NOOP", POP3_EXPECT_SINGLE, 0, NULL, done_cb, &s);
        CHECK(pop3_cmdq_feed(&q, "* OK imap\r\n", 11) == POP3_PARSER_E_BAD_STATUS);
        CHECK(pop3_cmdq_push(&q, "NOOP", POP3_EXPECT_SINGLE, 0, NULL, NULL, NULL) < 0);
        pop3_cmdq_cancel(&q, -EPROTO);
        CHECK(s.n_done == 1 && s.r == -EPROTO);
        pop3_cmdq_deinit(&q);

        /* A failing write stops sending; the owner cancels on the transport's failure. */
        w = (Wire){.fail_writes = 1};
        s = (Seen){0};
        pop3_cmdq_init(&q, wire_write, &w);
        CHECK(pop3_cmdq_push(&q, "NOOP", POP3_EXPECT_SINGLE, 0, NULL, done_cb, &s) == 0);
        CHECK(s.n_done == 0);
        CHECK(pop3_cmdq_push(&q, "NOOP", POP3_EXPECT_SINGLE, 0, NULL, NULL, NULL) == -EPIPE);
        pop3_cmdq_deinit(&q);
        CHECK(s.n_done == 1 && s.r == -ECANCELED);
}

static void test_secret_line(void) {
        Wire w = {0};
        Pop3Cmdq q;
        Seen s = {0};

        pop3_cmdq_init(&q, wire_write, &w);
        pop3_cmdq_push(&q, "PASS hunter2", POP3_EXPECT_SINGLE, POP3_CMD_SECRET | POP3_CMD_ALONE, NULL, done_cb, &s);
        CHECK(strcmp(w.sent, "PASS hunter2\r\n") == 0);
        feed_all(&q, "-ERR [AUTH] Authentication failed.\r\n", 7);
        CHECK(s.r == POP3_CMDQ_E_ERR && s.code == POP3_RESP_AUTH);
        pop3_cmdq_deinit(&q);
}

int main(void) {
        if (sodium_init() < 0) /* secret lines live in sodium_malloc'd memory */
                return 1;
        test_lockstep();
        test_pipelined_split_everywhere();
        test_alone_waits_for_flight();
        test_greeting_is_not_sent();
        test_cancel_completes_everything();
        test_protocol_errors();
        test_secret_line();
        if (failures)
                fprintf(stderr, "%d failures\n", failures);
        return failures ? 1 : 0;
}
