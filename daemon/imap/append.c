/*
 * APPEND (RFC 3501 6.3.11) for the IMAP client: the command line with its
 * literal marker, then the message from the owner's reader, written as the
 * socket drains (NetStream's written callback) so that a big message is never
 * held whole. LITERAL+ (RFC 7888), or LITERAL- for small messages, lets the
 * literal follow the line at once; otherwise it waits for the server's "+".
 * An APPEND goes alone: nothing may be written between its line and the end of
 * its literal. Loop thread only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/imap/client-internal.h"

/* An APPEND literal is written while the socket's queue stays under this (back-pressure). */
#define APPEND_HIGH_WATER (256 * 1024)

/* LITERAL- (RFC 7888) allows non-synchronizing literals up to this size. */
#define LITERAL_MINUS_MAX 4096

/* Writes the literal as the socket drains; ends it with the CRLF that ends the command. */
void imap_client_append_pump(ImapClient *c) {
        ImapAppend *a = c->append;

        while (a->left > 0 && net_stream_write_queue_size(&c->stream) < APPEND_HIGH_WATER) {
                const void *data = NULL;
                size_t n = 0;
                int r;

                r = a->read_fn(a->userdata, &data, &n);
                if (c->append != a)
                        return; /* the owner closed the session from its reader */
                /* Half a literal cannot be taken back: whatever stops it ends the session. */
                if (r < 0)
                        return imap_client_fail(c, NET_FAILURE_PROTOCOL, "APPEND: reading the message failed: %s",
                                                strerror(-r));
                if (n == 0 || n > a->left)
                        return imap_client_fail(c, NET_FAILURE_PROTOCOL, "APPEND: the message is %s than announced",
                                                n == 0 ? "shorter" : "longer");
                r = net_stream_write(&c->stream, data, n);
                if (c->append != a)
                        return; /* the stream failed inside the write */
                if (r < 0)
                        return imap_client_fail(c, NET_FAILURE_NETWORK, "APPEND: write failed: %s", strerror(-r));
                a->left -= n;
        }
        if (a->left > 0)
                return; /* stream_written_cb() calls again */
        c->append = NULL;
        if (net_stream_write(&c->stream, "\r\n", 2) < 0)
                return imap_client_fail(c, NET_FAILURE_NETWORK, "APPEND: write failed");
        net_stream_set_waiting(&c->stream, true);
}

/* The literal starts: from here only the end of it (or of the session) stops the writing. */
static void append_start(ImapClient *c, ImapAppend *a) {
        c->server_waits = false;
        a->writing = true;
        c->append = a;
        imap_client_append_pump(c);
}

/* LITERAL+ / LITERAL-: the literal follows the line at once. */
static int append_sent_cb(ImapClient *c, void *userdata) {
        ImapAppend *a = userdata;

        if (!a->sync)
                append_start(c, a);
        return 0;
}

/* A synchronizing literal: the server's "+" says it will read it. */
static int append_event_cb(ImapClient *c, const ImapEvent *ev, void *userdata) {
        ImapAppend *a = userdata;

        if (ev->kind != IMAP_EVENT_CONTINUATION || !a->sync || a->writing)
                return IMAP_CMD_EVENT_PASS;
        append_start(c, a);
        return 0;
}

/* The tagged reply: the owner's done callback, then the APPEND's memory goes. */
static void append_done_cb(ImapClient *c, int r, const ImapStatusResp *st, void *userdata) {
        ImapAppend *a = userdata;
        bool cut = c->append == a;

        /* Detach first so that nothing writes the rest of this literal from the owner's callback. */
        if (cut)
                c->append = NULL;
        if (a->done_fn)
                a->done_fn(c, r, st, a->userdata);
        free(a);
        /* The server answered while its literal was still going out: the stream is out of step. */
        if (cut && r >= 0)
                imap_client_fail(c, NET_FAILURE_PROTOCOL, "server answered APPEND before its literal was sent");
}

/* internal_date as an IMAP date-time, quoted: "26-Nov-2026 19:40:00 +0000" (date-day-fixed pads with a space). */
static int format_date_time(int64_t t, char *buf, size_t size) {
        static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        time_t tt = (time_t)t;
        struct tm tm;

        if (!gmtime_r(&tt, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0)
                return -EINVAL;
        snprintf(buf, size, "\"%2d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
        return 0;
}

int imap_client_append(ImapClient *c, const char *mailbox, const char *flags, int64_t internal_date, uint64_t size,
                       ImapAppendReadFn read_fn, ImapCmdDoneFn done_fn, void *userdata) {
        _cleanup_free_ char *box = NULL;
        char date[40] = "";
        bool plus;
        ImapAppend *a;
        char *line;
        int r;

        if (c->state != IMAP_CLIENT_READY)
                return -ENOTCONN;
        if (!read_fn || (flags && strpbrk(flags, "\r\n")))
                return -EINVAL;
        box = imap_quote(mailbox, imap_client_is_enabled(c, "UTF8=ACCEPT"));
        if (!box)
                return -errno;
        if (internal_date != 0 && format_date_time(internal_date, date, sizeof date) < 0)
                return -EINVAL;
        plus = imap_client_has_cap(c, "LITERAL+") ||
               (imap_client_has_cap(c, "LITERAL-") && size <= LITERAL_MINUS_MAX);
        a = calloc(1, sizeof *a);
        if (!a)
                return -ENOMEM;
        *a = (ImapAppend){.read_fn = read_fn, .done_fn = done_fn, .userdata = userdata, .left = size, .sync = !plus};
        if (asprintf(&line, "APPEND %s%s%s%s%s {%" PRIu64 "%s}", box, flags ? " " : "", flags ? flags : "",
                     date[0] ? " " : "", date, size, plus ? "+" : "") < 0) {
                free(a);
                return -ENOMEM;
        }
        /* Alone: nothing may be written between the line and the end of its literal. */
        r = imap_cmdq_push(&c->q, line, IMAP_CMD_ALONE, append_event_cb, append_sent_cb, append_done_cb, a);
        if (r < 0)
                free(a); /* no callback will run; the queue freed the line */
        return r;
}
