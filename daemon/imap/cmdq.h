/*
 * The IMAP command queue: tags ("A1", "A2", ...), commands waiting to be sent
 * and commands sent and not yet answered (oldest first), the pipelining limit,
 * commands that must go alone, routing of parsed responses, and cancellation
 * that completes every callback. No I/O and no parser: lines go out through a
 * write function, events come in through imap_cmdq_event().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/imap/client.h"
#include "daemon/imap/parser.h"

/* Result of imap_cmdq_event() besides 0 and a negative errno. */
enum {
        IMAP_CMDQ_UNTAKEN = 1, /* an untagged event no command took: the owner's */
        IMAP_CMDQ_E_UNKNOWN_TAG, /* a tagged status for no command in flight */
        IMAP_CMDQ_E_UNEXPECTED_CONTINUATION, /* "+" while no command waits for one */
};

/* Called right after a command's line went out (APPEND starts its literal from here). */
typedef int (*ImapCmdSentFn)(ImapClient *c, void *userdata);

/* Writes n bytes (the stream copies them); secret tells the writer to wipe its copies. */
typedef int (*ImapCmdqWriteFn)(const char *data, size_t n, bool secret, void *userdata);

typedef struct ImapCmd ImapCmd;

typedef struct ImapCmdq {
        ImapClient *client; /* handed to the command callbacks */
        ImapCmd *waiting, *waiting_tail; /* not sent yet */
        ImapCmd *flight, *flight_tail;   /* sent, oldest first */
        unsigned n_waiting, n_flight, max_flight;
        uint64_t next_tag;
        ImapCmdqWriteFn write;
        void *userdata;
        int error; /* sticky once the queue failed or was cancelled */
} ImapCmdq;

/* Sets q up in lockstep (one command in flight); client is what the callbacks get. */
void imap_cmdq_init(ImapCmdq *q, ImapClient *client, ImapCmdqWriteFn write, void *userdata);

/* At most max_flight commands in flight (0 = 1). Sends what the new limit allows. */
void imap_cmdq_set_max_flight(ImapCmdq *q, unsigned max_flight);

/*
 * Queues a command: line is what follows the tag, without CRLF; it is taken
 * over (malloc()ed, or secret_strdup()ed with IMAP_CMD_SECRET), also on
 * failure. flags are IMAP_CMD_*; event_fn and sent_fn may be NULL. Sends at
 * once when the limits allow. Returns 0, or a negative errno (the queue
 * failed: no callback will run).
 */
int imap_cmdq_push(ImapCmdq *q, char *line, unsigned flags, ImapCmdEventFn event_fn, ImapCmdSentFn sent_fn,
                   ImapCmdDoneFn done_fn, void *userdata);

/*
 * Routes one parsed response: a tagged status completes its command (any
 * order), a continuation goes to the newest command in flight, every other
 * event to the oldest command's event callback. Returns 0 when taken,
 * IMAP_CMDQ_UNTAKEN for an untagged event nobody took, IMAP_CMDQ_E_* for a
 * response that fits no command, or a command callback's negative errno.
 */
int imap_cmdq_event(ImapCmdq *q, const ImapEvent *ev);

/* Fails the queue: every command, sent or not, completes with r (< 0); later pushes fail with r. */
void imap_cmdq_cancel(ImapCmdq *q, int r);

/* The tag of the newest command in flight ("" when none): for logs. */
const char *imap_cmdq_last_tag(const ImapCmdq *q);

/* Commands queued or in flight. */
unsigned imap_cmdq_get_n_pending(const ImapCmdq *q);
