/*
 * An IMAP session on a NetStream: credentials, connect (implicit TLS, or a
 * STARTTLS upgrade that is then required), greeting, CAPABILITY, authentication
 * (AUTHENTICATE with SASL-IR when offered, else LOGIN only over TLS and unless
 * LOGINDISABLED), capabilities again, ENABLE (CONDSTORE, QRESYNC, UTF8=ACCEPT
 * when offered and asked for), ID; then the authenticated state in which the
 * owner sends tagged commands, pipelined up to a bounded depth.
 *
 * Responses: the parser (parser.h) turns the server's bytes into events. A
 * tagged status completes its command (done). Every untagged event, FETCH body
 * chunks included, goes to the event callback of the oldest command in flight
 * (servers answer pipelined commands in order); when that command has none, or
 * its callback returns IMAP_CMD_EVENT_PASS, the event goes to ops->untagged.
 *
 * Errors name the account, the server and the reason:
 * "account home: imap.example.net:993: authentication failed: ...".
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/imap/parser.h"
#include "daemon/net/backoff.h"
#include "util/macro.h"

typedef struct ImapClient ImapClient;

typedef struct ImapClientOps {
        /* Once per imap_client_connect(): 0 when authenticated (and ENABLE/ID done), else a negative
         * errno and imap_client_get_error() says why (-ECANCELED from inside imap_client_close()). */
        void (*ready)(ImapClient *c, int r, void *userdata);
        /* At most once, after a successful ready: the session broke or the server said BYE (commands in
         * flight were completed with r first). May be NULL. */
        void (*failed)(ImapClient *c, int r, void *userdata);
        /* Once, after imap_client_close(); c is freed when this returns. */
        void (*closed)(ImapClient *c, void *userdata);
        /* Untagged events no command took: EXISTS, EXPUNGE, VANISHED, FETCH of flags changed by
         * others, untagged OK [ALERT] ... May be NULL. */
        void (*untagged)(ImapClient *c, const ImapEvent *ev, void *userdata);
} ImapClientOps;

typedef struct ImapClientOptions {
        unsigned max_flight;       /* commands in flight at most; 0 = IMAP_CLIENT_PIPELINE_DEFAULT */
        bool enable_condstore;     /* ENABLE CONDSTORE when offered */
        bool enable_qresync;       /* ENABLE QRESYNC when offered (implies CONDSTORE) */
        bool enable_utf8;          /* ENABLE UTF8=ACCEPT when offered */
        bool send_id;              /* ID ("name" "tegami" "version" ...) when offered */
        uint64_t connect_timeout_ms, read_timeout_ms; /* 0 = the stream's defaults */
        const ImapParserLimits *limits; /* NULL = the parser's defaults */
} ImapClientOptions;

#define IMAP_CLIENT_PIPELINE_DEFAULT 32

/* Positive results of a command: the server answered NO or BAD (st says why). */
enum {
        IMAP_CLIENT_E_NO = 1,
        IMAP_CLIENT_E_BAD,
};

/* What a command's event callback returns besides 0 (taken) and a negative errno (fails the session). */
#define IMAP_CMD_EVENT_PASS 1

/* Untagged events while the command is the oldest in flight; ev is valid during the call only. */
typedef int (*ImapCmdEventFn)(ImapClient *c, const ImapEvent *ev, void *userdata);

/*
 * Exactly once per command: r is 0 for OK, IMAP_CLIENT_E_NO / _BAD (st then
 * holds the status, code and text; valid during the call only), or a
 * negative errno when the session failed or closed first (st NULL).
 */
typedef void (*ImapCmdDoneFn)(ImapClient *c, int r, const ImapStatusResp *st, void *userdata);

/* Flags of imap_client_send(). */
enum {
        IMAP_CMD_ALONE = 1u << 0,  /* sent only when nothing is in flight, nothing after it until answered */
        IMAP_CMD_SECRET = 1u << 1, /* the line holds a secret: secret memory, never logged */
};

/* Creates a client for a's imap URL; a must outlive it. Returns 0 or -ENOMEM / -EINVAL. */
int imap_client_new(uv_loop_t *loop, const Account *a, const ImapClientOptions *opts, const ImapClientOps *ops,
                    void *userdata, ImapClient **cp);

/* Starts the session; ops->ready follows once. Returns 0, or a negative errno (no callback). */
int imap_client_connect(ImapClient *c);

/*
 * Sends a command once authenticated: the line after the tag, without CRLF
 * (printf format; quote strings with imap_quote()). Returns 0, or a negative
 * errno (no callback): -ENOTCONN when the session is not (or no longer) ready.
 */
int imap_client_send(ImapClient *c, unsigned flags, ImapCmdEventFn event_fn, ImapCmdDoneFn done_fn, void *userdata,
                     const char *fmt, ...) _printf_(6, 7);

/*
 * Writes line and CRLF without a tag, for the command in flight whose
 * continuation asked for it: IDLE's "DONE" (RFC 2177; send IDLE with
 * IMAP_CMD_ALONE). Returns 0, -ENOTCONN when not ready or nothing is in
 * flight, -EINVAL for a line holding CR or LF.
 */
int imap_client_write_line(ImapClient *c, const char *line);

/*
 * Next chunk of an APPEND body: 0 with *datap and *np (*np == 0 after the last
 * byte; data valid until the next call), or a negative errno to abort.
 */
typedef int (*ImapAppendReadFn)(void *userdata, const void **datap, size_t *np);

/*
 * APPEND of size bytes read through read_fn into mailbox (as it goes on the
 * wire: modified UTF-7 or UTF-8 when enabled) with flags ("(\Seen $Foo)" or
 * NULL) and internal_date (Unix time, 0 = none). Uses LITERAL+ / LITERAL-
 * when offered, else waits for the continuation; the body is written as the
 * socket drains, never held whole. done gets APPENDUID in st->code on OK.
 */
int imap_client_append(ImapClient *c, const char *mailbox, const char *flags, int64_t internal_date, uint64_t size,
                       ImapAppendReadFn read_fn, ImapCmdDoneFn done_fn, void *userdata);

/* Closes the session (no LOGOUT; commands get -ECANCELED); ops->closed follows. Safe twice. */
void imap_client_close(ImapClient *c);

/* Sends LOGOUT, then closes when the server answers (or fails); ops->closed follows. */
void imap_client_logout(ImapClient *c);

/* Capability cap (any case, e.g. "QRESYNC", "AUTH=PLAIN") in the current list. */
bool imap_client_has_cap(const ImapClient *c, const char *cap);

/* The current capabilities, space-separated as the server sent them ("" when unknown): for logs and tests. */
const char *imap_client_get_caps(const ImapClient *c);

/* The server accepted ENABLE of ext ("CONDSTORE", "QRESYNC", "UTF8=ACCEPT"). */
bool imap_client_is_enabled(const ImapClient *c, const char *ext);

/* "SCRAM-SHA-256", "LOGIN", "PREAUTH" ... once authenticated. */
const char *imap_client_get_auth_name(const ImapClient *c);

/* Commands queued or in flight. */
unsigned imap_client_get_n_pending(const ImapClient *c);

/* "account NAME: HOST:PORT: reason" of the failure, "" if none. */
const char *imap_client_get_error(const ImapClient *c);

/* Why the session failed (retry or stop, backoff.h); NET_FAILURE_NONE if it did not. */
NetFailure imap_client_get_failure(const ImapClient *c);

/* Records a failure found by the owner (a reply it cannot accept) and fails the session. */
void imap_client_fail(ImapClient *c, NetFailure failure, const char *fmt, ...) _printf_(3, 4);

/* Bytes received from the server since connect (literals included): for tests and progress. */
uint64_t imap_client_get_bytes_in(const ImapClient *c);

/*
 * s as an IMAP quoted string ("..." with \\ and \" escaped), malloc()ed;
 * NULL with errno EINVAL when s holds CR, LF or NUL (or 8-bit bytes and
 * utf8 is false), ENOMEM otherwise.
 */
char *imap_quote(const char *s, bool utf8);
