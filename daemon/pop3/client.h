/*
 * A POP3 session on a NetStream: credentials, connect (implicit TLS, or STLS
 * which is then required), greeting, CAPA, authentication (SASL AUTH, or
 * USER/PASS only over TLS), CAPA again, and then the TRANSACTION state in
 * which the owner sends commands (STAT, UIDL, LIST, RETR, TOP, DELE, QUIT),
 * pipelined when the server advertises PIPELINING, lockstep otherwise.
 *
 * Errors name the account, the server and the reason:
 * "account home: pop.example.net:995: authentication failed: ...".
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/net/backoff.h"
#include "daemon/pop3/cmdq.h"
#include "daemon/pop3/parser.h"

typedef struct Pop3Client Pop3Client;

typedef struct Pop3ClientOps {
        /* Once per pop3_client_connect(): 0 when logged in (TRANSACTION state), else a negative errno
         * and pop3_client_error() says why. */
        void (*ready)(Pop3Client *c, int r, void *userdata);
        /* At most once, after a successful ready: the session broke (commands in flight were
         * completed with r first). May be NULL. */
        void (*failed)(Pop3Client *c, int r, void *userdata);
        /* Once, after pop3_client_close(); c is freed when this returns. */
        void (*closed)(Pop3Client *c, void *userdata);
} Pop3ClientOps;

/* Commands in flight at most with PIPELINING (the fetch engine bounds RETRs by bytes itself). */
#define POP3_CLIENT_PIPELINE_MAX 64

/* Creates a client for a's pop3 URL; a must outlive it. Returns 0 or -ENOMEM / -EINVAL. */
int pop3_client_new(uv_loop_t *loop, const Account *a, const Pop3ClientOps *ops, void *userdata, Pop3Client **cp);

/* Starts the session; ops->ready follows once. Returns 0, or a negative errno (no callback). */
int pop3_client_connect(Pop3Client *c);

/* Timeouts in ms (see net_stream_set_timeouts); call before connect. */
void pop3_client_set_timeouts(Pop3Client *c, uint64_t connect_ms, uint64_t read_ms);

/*
 * Sends a command in the TRANSACTION state: the line (without CRLF, printf
 * format), what its reply looks like, and the callbacks (cmdq.h): done runs
 * exactly once. Returns 0, or a negative errno (no callback): -ENOTCONN when
 * the session is not (or no longer) in the TRANSACTION state.
 */
int pop3_client_send(Pop3Client *c, Pop3Expect expect, Pop3CmdEventFn event_fn, Pop3CmdDoneFn done_fn, void *userdata,
                     const char *fmt, ...) _printf_(6, 7);

/* Sends QUIT: the server applies the DELEs only when it answers +OK. done as for send. */
int pop3_client_quit(Pop3Client *c, Pop3CmdDoneFn done_fn, void *userdata);

/* Closes the session (without QUIT: pending DELEs are dropped by the server); ops->closed follows. Safe twice. */
void pop3_client_close(Pop3Client *c);

/* The capabilities after login (or the last CAPA). */
const Pop3Caps *pop3_client_get_caps(const Pop3Client *c);

/* True when the server advertised PIPELINING (commands are then pipelined). */
bool pop3_client_is_pipelining(const Pop3Client *c);

/* "SCRAM-SHA-256", "USER" ... once logged in. */
const char *pop3_client_get_auth_name(const Pop3Client *c);

/* "account NAME: HOST:PORT: reason" of the failure, "" if none. */
const char *pop3_client_get_error(const Pop3Client *c);

/* Why the session failed (retry or stop, backoff.h); NET_FAILURE_NONE if it did not. */
NetFailure pop3_client_get_failure(const Pop3Client *c);

/* Records a failure found by the owner (a command's reply it cannot accept) and fails the session. */
void pop3_client_fail(Pop3Client *c, NetFailure failure, const char *fmt, ...) _printf_(3, 4);
