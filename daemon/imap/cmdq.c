/*
 * The IMAP command queue. Commands are malloc'd nodes on two singly linked
 * lists, waiting and in flight; the queue owns them and frees each right after
 * its done callback, which runs exactly once (answered, or cancelled). Tags are
 * "A" + a counter, so a tagged status finds its command by name even when a
 * server answers out of order. Lines holding secrets (LOGIN) live in secret
 * memory and every copy is wiped. Loop thread only; no I/O.
 *
 * Why untagged events go to the oldest command in flight: servers answer
 * pipelined commands in order, so the data before the first tagged status
 * belongs to the first command; a continuation ("+") on the other hand can only
 * be asked for by the newest command, since a command that waits for one is
 * the last thing the server has read.
 */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/imap/cmdq.h"
#include "util/secret.h"

struct ImapCmd {
        ImapCmd *next;
        char tag[24];
        char *line; /* secret memory with IMAP_CMD_SECRET */
        unsigned flags;
        ImapCmdEventFn event_fn;
        ImapCmdSentFn sent_fn;
        ImapCmdDoneFn done_fn;
        void *userdata;
};

static void line_free(char *line, unsigned flags) {
        if (flags & IMAP_CMD_SECRET)
                secret_free(line);
        else
                free(line);
}

static void cmd_free(ImapCmd *cmd) {
        line_free(cmd->line, cmd->flags);
        free(cmd);
}

void imap_cmdq_init(ImapCmdq *q, ImapClient *client, ImapCmdqWriteFn write, void *userdata) {
        *q = (ImapCmdq){.client = client, .max_flight = 1, .next_tag = 1, .write = write, .userdata = userdata};
}

unsigned imap_cmdq_get_n_pending(const ImapCmdq *q) {
        return q->n_waiting + q->n_flight;
}

const char *imap_cmdq_last_tag(const ImapCmdq *q) {
        return q->flight_tail ? q->flight_tail->tag : "";
}

/*
 * Takes the line out of cmd as "TAG line\r\n" (the line is freed: a secret
 * should not linger until the reply); *np gets its length. NULL on ENOMEM.
 */
static char *cmd_take_wire(ImapCmd *cmd, size_t *np) {
        size_t nt = strlen(cmd->tag), nl = strlen(cmd->line), n = nt + 1 + nl + 2;
        char *buf = malloc(n);

        if (buf) {
                memcpy(buf, cmd->tag, nt);
                buf[nt] = ' ';
                memcpy(buf + nt + 1, cmd->line, nl);
                memcpy(buf + nt + 1 + nl, "\r\n", 2);
        }
        line_free(cmd->line, cmd->flags);
        cmd->line = NULL;
        *np = n;
        return buf;
}

/* Moves waiting commands into flight as far as the limits allow. */
static int cmdq_pump(ImapCmdq *q) {
        while (q->waiting && !q->error) {
                ImapCmd *cmd = q->waiting;
                bool secret = cmd->flags & IMAP_CMD_SECRET;
                ImapCmdSentFn sent_fn = cmd->sent_fn;
                void *userdata = cmd->userdata;
                char *buf;
                size_t n;
                int r;

                if (q->n_flight >= q->max_flight)
                        return 0;
                if (q->flight && ((cmd->flags & IMAP_CMD_ALONE) || (q->flight_tail->flags & IMAP_CMD_ALONE)))
                        return 0;
                q->waiting = cmd->next;
                if (!q->waiting)
                        q->waiting_tail = NULL;
                q->n_waiting--;
                cmd->next = NULL;
                if (q->flight_tail)
                        q->flight_tail->next = cmd;
                else
                        q->flight = cmd;
                q->flight_tail = cmd;
                q->n_flight++;
                buf = cmd_take_wire(cmd, &n);
                r = buf ? q->write(buf, n, secret, q->userdata) : -ENOMEM;
                if (buf && secret)
                        sodium_memzero(buf, n);
                free(buf);
                /* The transport may have failed inside the write and the owner cancelled us: cmd is gone. */
                if (q->error)
                        return q->error;
                if (r == 0 && sent_fn)
                        r = sent_fn(q->client, userdata);
                if (r < 0) {
                        /* The transport reports its own failure; the owner then cancels. */
                        if (!q->error)
                                q->error = r;
                        return r;
                }
        }
        return 0;
}

void imap_cmdq_set_max_flight(ImapCmdq *q, unsigned max_flight) {
        q->max_flight = max_flight ? max_flight : 1;
        (void)cmdq_pump(q);
}

int imap_cmdq_push(ImapCmdq *q, char *line, unsigned flags, ImapCmdEventFn event_fn, ImapCmdSentFn sent_fn,
                   ImapCmdDoneFn done_fn, void *userdata) {
        ImapCmd *cmd;

        if (!line)
                return -ENOMEM;
        if (q->error) {
                line_free(line, flags);
                return q->error < 0 ? q->error : -EPROTO;
        }
        cmd = calloc(1, sizeof *cmd);
        if (!cmd) {
                line_free(line, flags);
                return -ENOMEM;
        }
        *cmd = (ImapCmd){.line = line,
                         .flags = flags,
                         .event_fn = event_fn,
                         .sent_fn = sent_fn,
                         .done_fn = done_fn,
                         .userdata = userdata};
        snprintf(cmd->tag, sizeof cmd->tag, "A%" PRIu64, q->next_tag++);
        if (q->waiting_tail)
                q->waiting_tail->next = cmd;
        else
                q->waiting = cmd;
        q->waiting_tail = cmd;
        q->n_waiting++;
        /* Queued: a send failure completes it when the owner cancels the failed queue. */
        (void)cmdq_pump(q);
        return 0;
}

/* Takes the command tagged tag off the flight list; NULL when there is none. */
static ImapCmd *flight_take(ImapCmdq *q, const char *tag) {
        for (ImapCmd **pp = &q->flight, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
                ImapCmd *cmd = *pp;

                if (strcmp(cmd->tag, tag) != 0)
                        continue;
                *pp = cmd->next;
                if (q->flight_tail == cmd)
                        q->flight_tail = prev;
                q->n_flight--;
                cmd->next = NULL;
                return cmd;
        }
        return NULL;
}

int imap_cmdq_event(ImapCmdq *q, const ImapEvent *ev) {
        ImapCmd *cmd;
        int r;

        if (ev->kind == IMAP_EVENT_STATUS && ev->tag.s) {
                cmd = flight_take(q, ev->tag.s);
                if (!cmd)
                        return IMAP_CMDQ_E_UNKNOWN_TAG;
                r = ev->status.status == IMAP_STATUS_OK ? 0
                    : ev->status.status == IMAP_STATUS_NO ? IMAP_CLIENT_E_NO
                                                          : IMAP_CLIENT_E_BAD;
                if (cmd->done_fn)
                        cmd->done_fn(q->client, r, &ev->status, cmd->userdata);
                cmd_free(cmd);
                (void)cmdq_pump(q);
                return 0;
        }
        if (ev->kind == IMAP_EVENT_CONTINUATION) {
                cmd = q->flight_tail;
                if (!cmd || !cmd->event_fn)
                        return IMAP_CMDQ_E_UNEXPECTED_CONTINUATION;
                r = cmd->event_fn(q->client, ev, cmd->userdata);
                return r == IMAP_CMD_EVENT_PASS ? IMAP_CMDQ_E_UNEXPECTED_CONTINUATION : r;
        }
        cmd = q->flight;
        if (!cmd || !cmd->event_fn)
                return IMAP_CMDQ_UNTAKEN;
        r = cmd->event_fn(q->client, ev, cmd->userdata);
        return r == IMAP_CMD_EVENT_PASS ? IMAP_CMDQ_UNTAKEN : r;
}

/* Completes and frees every command of one list. */
static void cancel_list(ImapClient *client, ImapCmd *cmd, int r) {
        while (cmd) {
                ImapCmd *next = cmd->next;

                if (cmd->done_fn)
                        cmd->done_fn(client, r, NULL, cmd->userdata);
                cmd_free(cmd);
                cmd = next;
        }
}

void imap_cmdq_cancel(ImapCmdq *q, int r) {
        ImapCmd *flight = q->flight, *waiting = q->waiting;

        r = r < 0 ? r : -ECANCELED;
        if (!q->error || q->error > 0)
                q->error = r;
        /* Detach first: a callback may push (refused now) or cancel again. */
        q->flight = q->flight_tail = q->waiting = q->waiting_tail = NULL;
        q->n_flight = q->n_waiting = 0;
        cancel_list(q->client, flight, r);
        cancel_list(q->client, waiting, r);
}
