/*
 * Unit tests of the IMAP command queue (tags, pipelining limit, IMAP_CMD_ALONE,
 * routing of responses, cancellation) and of imap_quote(). The queue writes
 * into a buffer here; responses are ImapEvents built by hand.
 */
#undef NDEBUG /* the checks are assert()s: they must run in every build type */
#include <assert.h>
#include <sodium.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/imap/cmdq.h"
#include "util/secret.h"

static char wire[4096];

static int write_fn(const char *data, size_t n, bool secret, void *userdata) {
        strncat(wire, data, n);
        return 0;
}

typedef struct Rec {
        int n_done, r, n_events, n_sent;
        bool pass; /* the event callback passes everything on */
} Rec;

static int event_fn(ImapClient *c, const ImapEvent *ev, void *userdata) {
        Rec *rec = userdata;

        if (rec->pass)
                return IMAP_CMD_EVENT_PASS;
        rec->n_events++;
        return 0;
}

static void done_fn(ImapClient *c, int r, const ImapStatusResp *st, void *userdata) {
        Rec *rec = userdata;

        rec->n_done++;
        rec->r = r;
        assert((r < 0) == (st == NULL));
}

static int sent_fn(ImapClient *c, void *userdata) {
        ((Rec *)userdata)->n_sent++;
        return 0;
}

static int tagged(ImapCmdq *q, const char *tag, ImapStatusKind status) {
        ImapEvent ev = {.kind = IMAP_EVENT_STATUS, .tag = {.s = tag, .len = strlen(tag)}};

        ev.status.status = status;
        return imap_cmdq_event(q, &ev);
}

static int untagged(ImapCmdq *q, ImapEventKind kind) {
        ImapEvent ev = {.kind = kind};

        return imap_cmdq_event(q, &ev);
}

static void test_lockstep_and_pipelining(void) {
        ImapCmdq q;
        Rec a = {0}, b = {0}, c = {0};

        wire[0] = '\0';
        imap_cmdq_init(&q, NULL, write_fn, NULL);
        assert(imap_cmdq_push(&q, strdup("NOOP"), 0, event_fn, sent_fn, done_fn, &a) == 0);
        assert(imap_cmdq_push(&q, strdup("SELECT INBOX"), 0, event_fn, NULL, done_fn, &b) == 0);
        /* Lockstep until the limit is raised. */
        assert(strcmp(wire, "A1 NOOP\r\n") == 0 && a.n_sent == 1);
        assert(imap_cmdq_get_n_pending(&q) == 2);
        imap_cmdq_set_max_flight(&q, 8);
        assert(strcmp(wire, "A1 NOOP\r\nA2 SELECT INBOX\r\n") == 0);
        /* Untagged data goes to the oldest command in flight. */
        assert(untagged(&q, IMAP_EVENT_EXISTS) == 0 && a.n_events == 1 && b.n_events == 0);
        /* Out-of-order completion by tag. */
        assert(tagged(&q, "A2", IMAP_STATUS_NO) == 0 && b.n_done == 1 && b.r == IMAP_CLIENT_E_NO);
        assert(tagged(&q, "A2", IMAP_STATUS_OK) == IMAP_CMDQ_E_UNKNOWN_TAG);
        assert(tagged(&q, "A1", IMAP_STATUS_OK) == 0 && a.n_done == 1 && a.r == 0);
        /* Nothing in flight: untagged data is the owner's. */
        assert(untagged(&q, IMAP_EVENT_EXPUNGE) == IMAP_CMDQ_UNTAKEN);
        c.pass = true;
        assert(imap_cmdq_push(&q, strdup("IDLE"), 0, event_fn, NULL, done_fn, &c) == 0);
        assert(untagged(&q, IMAP_EVENT_EXISTS) == IMAP_CMDQ_UNTAKEN);
        assert(tagged(&q, "A3", IMAP_STATUS_BAD) == 0 && c.r == IMAP_CLIENT_E_BAD);
        assert(imap_cmdq_get_n_pending(&q) == 0);
        imap_cmdq_cancel(&q, -ECANCELED);
}

static void test_alone_and_continuation(void) {
        ImapCmdq q;
        Rec a = {0}, b = {0}, c = {0};

        wire[0] = '\0';
        imap_cmdq_init(&q, NULL, write_fn, NULL);
        imap_cmdq_set_max_flight(&q, 8);
        assert(imap_cmdq_push(&q, strdup("NOOP"), 0, NULL, NULL, done_fn, &a) == 0);
        assert(imap_cmdq_push(&q, strdup("APPEND x {3}"), IMAP_CMD_ALONE, event_fn, NULL, done_fn, &b) == 0);
        assert(imap_cmdq_push(&q, strdup("NOOP"), 0, NULL, NULL, done_fn, &c) == 0);
        /* The ALONE command waits for A1, and A3 waits for it. */
        assert(strcmp(wire, "A1 NOOP\r\n") == 0);
        assert(untagged(&q, IMAP_EVENT_CONTINUATION) == IMAP_CMDQ_E_UNEXPECTED_CONTINUATION);
        assert(tagged(&q, "A1", IMAP_STATUS_OK) == 0);
        assert(strcmp(wire, "A1 NOOP\r\nA2 APPEND x {3}\r\n") == 0);
        assert(untagged(&q, IMAP_EVENT_CONTINUATION) == 0 && b.n_events == 1);
        assert(tagged(&q, "A2", IMAP_STATUS_OK) == 0);
        assert(strstr(wire, "A3 NOOP\r\n"));
        assert(tagged(&q, "A3", IMAP_STATUS_OK) == 0 && a.n_done == 1 && b.n_done == 1 && c.n_done == 1);
        imap_cmdq_cancel(&q, -ECANCELED);
}

static void test_cancel(void) {
        ImapCmdq q;
        Rec a = {0}, b = {0}, d = {0};

        wire[0] = '\0';
        imap_cmdq_init(&q, NULL, write_fn, NULL);
        assert(imap_cmdq_push(&q, secret_strdup("LOGIN a b"), IMAP_CMD_SECRET, NULL, NULL, done_fn, &a) == 0);
        assert(imap_cmdq_push(&q, strdup("NOOP"), 0, NULL, NULL, done_fn, &b) == 0);
        imap_cmdq_cancel(&q, -ECONNRESET);
        /* Sent and waiting commands complete once, with the reason. */
        assert(a.n_done == 1 && a.r == -ECONNRESET && b.n_done == 1 && b.r == -ECONNRESET);
        assert(imap_cmdq_push(&q, strdup("NOOP"), 0, NULL, NULL, done_fn, &d) == -ECONNRESET && d.n_done == 0);
        imap_cmdq_cancel(&q, -ECANCELED);
        assert(a.n_done == 1 && imap_cmdq_get_n_pending(&q) == 0);
}

static void test_quote(void) {
        char *s;

        s = imap_quote("a \"b\" \\c", false);
        assert(s && strcmp(s, "\"a \\\"b\\\" \\\\c\"") == 0);
        free(s);
        s = imap_quote("", false);
        assert(s && strcmp(s, "\"\"") == 0);
        free(s);
        errno = 0;
        assert(!imap_quote("a\r\nb", true) && errno == EINVAL);
        assert(!imap_quote("caf\xc3\xa9", false) && errno == EINVAL);
        s = imap_quote("caf\xc3\xa9", true);
        assert(s && strcmp(s, "\"caf\xc3\xa9\"") == 0);
        free(s);
}

int main(void) {
        assert(sodium_init() >= 0);
        test_lockstep_and_pipelining();
        test_alone_and_continuation();
        test_cancel();
        test_quote();
        printf("imap cmdq: ok\n");
        return 0;
}
