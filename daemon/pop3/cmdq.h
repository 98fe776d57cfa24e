/*
 * The POP3 command queue: commands waiting to be sent and commands sent and
 * not yet answered, in order (POP3 has no tags: replies come back in the order
 * the commands went), the pipelining limit, commands that must go alone, and
 * cancellation that completes every callback. It owns the response parser and
 * tells it, before each reply, what the command at the head will get back.
 * No I/O: bytes go out through a write function, come in through
 * pop3_cmdq_feed().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "daemon/pop3/parser.h"
#include "util/macro.h"

/* Positive result of a command: the server answered -ERR (status says why). */
#define POP3_CMDQ_E_ERR 1

/* Every event of the reply but the status line and END: STAT, LISTING, LINE, BODY, CAPA, CONTINUE. */
typedef void (*Pop3CmdEventFn)(const Pop3Event *ev, void *userdata);

/*
 * Exactly once per queued command: r is 0 for +OK, POP3_CMDQ_E_ERR for -ERR
 * (status then says why; it is valid during the call only), or a negative
 * errno when the command was cancelled (status NULL).
 */
typedef void (*Pop3CmdDoneFn)(int r, const Pop3Status *status, void *userdata);

/* Sends n bytes; returns 0 or a negative errno. */
typedef int (*Pop3CmdqWriteFn)(const char *data, size_t n, void *userdata);

/* Flags of pop3_cmdq_push(). */
enum {
        POP3_CMD_ALONE = 1u << 0,  /* sent only when nothing is in flight, and nothing after it until answered */
        POP3_CMD_SECRET = 1u << 1, /* the line holds a secret: kept in secret memory, never logged */
};

typedef struct Pop3Cmd Pop3Cmd;

typedef struct Pop3Cmdq {
        Pop3Parser parser;
        Pop3Cmd *waiting, *waiting_tail; /* not sent yet */
        Pop3Cmd *flight, *flight_tail;   /* sent, oldest first: the head gets the next reply */
        unsigned n_flight, max_flight;
        Pop3Status status; /* of the reply being read; strings point below */
        char status_text[512], status_code[64];
        Pop3CmdqWriteFn write;
        void *userdata;
        int error; /* sticky: a parser error or cancellation */
} Pop3Cmdq;

/* Sets q up in lockstep (one command in flight). */
void pop3_cmdq_init(Pop3Cmdq *q, Pop3CmdqWriteFn write, void *userdata);

/* Cancels every command with -ECANCELED; safe twice. */
void pop3_cmdq_deinit(Pop3Cmdq *q);

/* At most max_flight commands in flight (1 = lockstep; PIPELINING allows more). */
void pop3_cmdq_set_max_flight(Pop3Cmdq *q, unsigned max_flight);

/*
 * Queues a command: line without CRLF (NULL for the greeting, which is read
 * but not sent), what its reply looks like, POP3_CMD_* flags and callbacks
 * (event_fn may be NULL). Sends at once when the limits allow. Returns 0, or
 * a negative errno (the queue failed or -ENOMEM; no callback will run).
 */
int pop3_cmdq_push(Pop3Cmdq *q, const char *line, Pop3Expect expect, unsigned flags, Pop3CmdEventFn event_fn,
                   Pop3CmdDoneFn done_fn, void *userdata);

/*
 * Feeds bytes from the server. Callbacks run from here and may push or
 * cancel. Returns 0, a POP3_PARSER_E_* code when the server broke the protocol
 * (the queue is then failed: cancel it), or a negative errno.
 */
int pop3_cmdq_feed(Pop3Cmdq *q, const char *data, size_t n);

/* Fails the queue: every command, sent or not, completes with r (< 0). */
void pop3_cmdq_cancel(Pop3Cmdq *q, int r);

/* Commands queued or in flight. */
unsigned pop3_cmdq_get_n_flight(const Pop3Cmdq *q);
bool pop3_cmdq_is_idle(const Pop3Cmdq *q);
