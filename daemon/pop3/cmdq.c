/*
 * The POP3 command queue. Commands are malloc'd nodes on two singly linked
 * lists, waiting and in flight; the queue owns them and frees each right after
 * its done callback. Lines holding secrets (PASS, SASL responses) live in
 * secret memory and are wiped. The parser is told what the head of the flight
 * list expects whenever the head changes, which is what lets one stream of
 * pipelined replies be cut into responses. Loop thread only; no I/O.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/pop3/cmdq.h"
#include "util/secret.h"

struct Pop3Cmd {
        Pop3Cmd *next;
        char *line; /* NULL for the greeting; secret memory with POP3_CMD_SECRET */
        Pop3Expect expect;
        unsigned flags;
        Pop3CmdEventFn event_fn;
        Pop3CmdDoneFn done_fn;
        void *userdata;
};

/* Frees a command; a secret line is wiped by secret_free(). */
static void cmd_free(Pop3Cmd *c) {
        if (c->flags & POP3_CMD_SECRET)
                secret_free(c->line);
        else
                free(c->line);
        free(c);
}

void pop3_cmdq_init(Pop3Cmdq *q, Pop3CmdqWriteFn write, void *userdata) {
        *q = (Pop3Cmdq){.max_flight = 1, .write = write, .userdata = userdata};
        pop3_parser_init(&q->parser);
}

void pop3_cmdq_set_max_flight(Pop3Cmdq *q, unsigned max_flight) {
        q->max_flight = max_flight ? max_flight : 1;
}

unsigned pop3_cmdq_get_n_flight(const Pop3Cmdq *q) {
        return q->n_flight;
}

bool pop3_cmdq_is_idle(const Pop3Cmdq *q) {
        return !q->flight && !q->waiting;
}

/* Sends one command's line with CRLF; the buffer is wiped when it held a secret. */
static int cmd_send(Pop3Cmdq *q, const Pop3Cmd *c) {
        size_t n;
        char *buf;
        int r;

        if (!c->line)
                return 0;
        n = strlen(c->line);
        buf = malloc(n + 2);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, c->line, n);
        memcpy(buf + n, "\r\n", 2);
        r = q->write(buf, n + 2, q->userdata);
        if (c->flags & POP3_CMD_SECRET)
                sodium_memzero(buf, n + 2);
        free(buf);
        return r;
}

/* Moves waiting commands into flight as far as the limits allow. */
static int cmdq_pump(Pop3Cmdq *q) {
        int r;

        while (q->waiting && !q->error) {
                Pop3Cmd *c = q->waiting;

                if (q->n_flight >= q->max_flight)
                        return 0;
                if (q->flight && ((c->flags & POP3_CMD_ALONE) || (q->flight_tail->flags & POP3_CMD_ALONE)))
                        return 0;
                q->waiting = c->next;
                if (!q->waiting)
                        q->waiting_tail = NULL;
                c->next = NULL;
                if (q->flight_tail)
                        q->flight_tail->next = c;
                else {
                        q->flight = c;
                        /* A new head: the parser is idle, so this cannot fail. */
                        pop3_parser_expect(&q->parser, c->expect);
                }
                q->flight_tail = c;
                q->n_flight++;
                r = cmd_send(q, c);
                if (r < 0) {
                        /* The transport reports its own failure; the owner then cancels. */
                        q->error = r;
                        return r;
                }
        }
        return 0;
}

int pop3_cmdq_push(Pop3Cmdq *q, const char *line, Pop3Expect expect, unsigned flags, Pop3CmdEventFn event_fn,
                   Pop3CmdDoneFn done_fn, void *userdata) {
        Pop3Cmd *c;

        if (q->error)
                return q->error < 0 ? q->error : -EPROTO;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        *c = (Pop3Cmd){
                .expect = expect, .flags = flags, .event_fn = event_fn, .done_fn = done_fn, .userdata = userdata};
        if (line) {
                c->line = flags & POP3_CMD_SECRET ? secret_strdup(line) : strdup(line);
                if (!c->line) {
                        free(c);
                        return -ENOMEM;
                }
        }
        if (q->waiting_tail)
                q->waiting_tail->next = c;
        else
                q->waiting = c;
        q->waiting_tail = c;
        /* Queued: a send failure completes it when the owner cancels the failed queue. */
        (void)cmdq_pump(q);
        return 0;
}

/* Copies the status out of the parser: its strings do not outlive the feed call. */
static void keep_status(Pop3Cmdq *q, const Pop3Status *st) {
        snprintf(q->status_text, sizeof q->status_text, "%s", st->text ? st->text : "");
        snprintf(q->status_code, sizeof q->status_code, "%s", st->code_text ? st->code_text : "");
        q->status = (Pop3Status){.ok = st->ok, .code = st->code, .code_text = q->status_code, .text = q->status_text};
}

/* The head's reply is complete: take it off, tell its owner, send what may go now. */
static void head_done(Pop3Cmdq *q) {
        Pop3Cmd *c = q->flight;
        Pop3Status st = q->status;

        q->flight = c->next;
        if (!q->flight)
                q->flight_tail = NULL;
        q->n_flight--;
        if (q->flight)
                pop3_parser_expect(&q->parser, q->flight->expect);
        if (c->done_fn)
                c->done_fn(st.ok ? 0 : POP3_CMDQ_E_ERR, &st, c->userdata);
        cmd_free(c);
        (void)cmdq_pump(q);
}

int pop3_cmdq_feed(Pop3Cmdq *q, const char *data, size_t n) {
        for (;;) {
                Pop3Event ev;
                size_t used = 0;
                int r;

                if (q->error)
                        return q->error;
                r = pop3_parser_feed(&q->parser, data, n, &used, &ev);
                if (r > 0) {
                        q->error = r;
                        return r;
                }
                data += used;
                n -= used;
                if (ev.kind == POP3_EVENT_NONE)
                        return 0;
                if (!q->flight) {
                        q->error = POP3_PARSER_E_UNEXPECTED;
                        return q->error;
                }
                switch (ev.kind) {
                case POP3_EVENT_STATUS:
                        keep_status(q, &ev.status);
                        break;
                case POP3_EVENT_END:
                        head_done(q);
                        break;
                default:
                        if (q->flight->event_fn)
                                q->flight->event_fn(&ev, q->flight->userdata);
                        break;
                }
        }
}

/* Completes and frees every command of one list. */
static void cancel_list(Pop3Cmd *c, int r) {
        while (c) {
                Pop3Cmd *next = c->next;

                if (c->done_fn)
                        c->done_fn(r, NULL, c->userdata);
                cmd_free(c);
                c = next;
        }
}

void pop3_cmdq_cancel(Pop3Cmdq *q, int r) {
        Pop3Cmd *flight = q->flight, *waiting = q->waiting;

        if (!q->error)
                q->error = r < 0 ? r : -ECANCELED;
        /* Detach first: a callback may push (refused now) or cancel again. */
        q->flight = q->flight_tail = q->waiting = q->waiting_tail = NULL;
        q->n_flight = 0;
        cancel_list(flight, r < 0 ? r : -ECANCELED);
        cancel_list(waiting, r < 0 ? r : -ECANCELED);
}

void pop3_cmdq_deinit(Pop3Cmdq *q) {
        pop3_cmdq_cancel(q, -ECANCELED);
}
