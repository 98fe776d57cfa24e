/*
 * The SMTP submission client: one session sends one prepared message through
 * an account's `smtp` URL and reports once how it went.
 *
 *   greeting → EHLO → [STARTTLS → EHLO] → [AUTH] → MAIL FROM + RCPT TO
 *   (pipelined when offered) → BDAT LAST (CHUNKING) or DATA + dot-stuffed
 *   body → QUIT
 *
 * Before anything of the message goes out the session checks what the
 * message needs against what the server offers (SIZE, 8BITMIME, SMTPUTF8):
 * a message the server cannot take fails permanently with nothing sent.
 *
 * Outcomes: SENT when the server took the message for at least one recipient
 * (rejected recipients are listed in the result); PERMANENT for a 5xx about
 * the message (the server's words kept); TRANSIENT for 4xx, network and
 * protocol failures, and for account trouble (credentials, authentication,
 * certificate, downgrade: result.failure says which, and
 * net_failure_is_permanent() whether the account must stop). in_doubt marks a
 * connection lost after the final dot (or BDAT LAST) and before the reply:
 * the message may have been delivered and must not be resent on its own.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/net/backoff.h"
#include "daemon/smtp/prepare.h"
#include "daemon/smtp/reply.h"

typedef struct SmtpClient SmtpClient;

typedef enum SmtpOutcome {
        SMTP_OUTCOME_SENT,      /* accepted for n_accepted recipients */
        SMTP_OUTCOME_TRANSIENT, /* try again later (4xx, network, account trouble) */
        SMTP_OUTCOME_PERMANENT, /* do not retry as is (5xx, message the server cannot take) */
        SMTP_OUTCOME_CANCELED,  /* smtp_client_cancel() */
} SmtpOutcome;

/* The server's answer to one RCPT TO. */
typedef struct SmtpRcptResult {
        const char *address; /* the message's recipient */
        unsigned code;       /* 0 when RCPT TO was never answered */
        char *text;          /* "550 5.1.1 <x@y>: Recipient address rejected: ...", or NULL */
} SmtpRcptResult;

typedef struct SmtpSendResult {
        SmtpOutcome outcome;
        NetFailure failure;         /* NONE unless the session failed below SMTP (or AUTH) */
        unsigned code;              /* the deciding reply code, 0 when none */
        bool in_doubt;              /* lost between the final dot / BDAT LAST and its reply */
        const char *error;          /* "account A: HOST:PORT: what happened", "" when SENT */
        const char *reply;          /* the server's deciding words ("250 2.0.0 Ok: queued as X"), or "" */
        size_t n_rcpts, n_accepted; /* n_accepted: RCPT TO answered 2xx (whatever came after) */
        const SmtpRcptResult *rcpts;
} SmtpSendResult;

/*
 * Runs exactly once, after the connection is closed, unless smtp_client_send()
 * failed. result and everything it points to is valid during the call only.
 * The client is freed right after it returns.
 */
typedef void (*SmtpSendFn)(SmtpClient *c, const SmtpSendResult *result, void *userdata);

/*
 * The point of no return is next: the message body and its final dot / BDAT
 * LAST go out once the owner has recorded that durably and called
 * smtp_client_commit_ready(). Called at most once per send.
 */
typedef void (*SmtpCommitFn)(SmtpClient *c, void *userdata);

typedef struct SmtpSendOptions {
        const char *helo_name;   /* NULL: the host's FQDN, else the sender's domain, else an address literal */
        uint64_t timeout_ms;     /* connect and reply timeout, 0: 30 s / 120 s (10 min for the final reply) */
        const char *dsn_notify;  /* RCPT NOTIFY= ("SUCCESS,FAILURE,DELAY", "NEVER"), NULL: none */
        const char *dsn_ret;     /* MAIL RET= ("FULL", "HDRS"), NULL: none */
        const char *dsn_envid;   /* MAIL ENVID=, NULL: none */
        bool no_chunking;        /* use DATA even when CHUNKING is offered (tests) */
        bool no_pipelining;      /* one command at a time even with PIPELINING (tests) */
        SmtpCommitFn committing; /* may be NULL */
} SmtpSendOptions;

/*
 * Starts sending m (borrowed until cb) through a's smtp URL with a's
 * credentials (a is borrowed until cb too). Returns 0 and *clientp (valid
 * until cb), or a negative errno (-EINVAL: no smtp URL) and cb never runs.
 * opts may be NULL.
 */
int smtp_client_send(uv_loop_t *loop, const Account *a, const SmtpMessage *m, const SmtpSendOptions *opts,
                     SmtpSendFn cb, void *userdata, SmtpClient **clientp);

/* Answers the committing callback: r 0 sends the message; r < 0 (the commit
 * point could not be recorded) ends the session transient, nothing sent.
 * Ignored unless the client is waiting for it. */
void smtp_client_commit_ready(SmtpClient *c, int r);

/* Stops the session; cb follows with SMTP_OUTCOME_CANCELED (or in_doubt if it was too late). */
void smtp_client_cancel(SmtpClient *c);

/* "sent", "transient", "permanent", "canceled". */
const char *smtp_outcome_to_string(SmtpOutcome o);

/* Positive results of smtp_client_check_caps(): the server cannot take the message as it is. */
enum {
        SMTP_CLIENT_E_TOO_BIG = 1, /* larger than the server's SIZE */
        SMTP_CLIENT_E_NO_8BITMIME, /* 8-bit content, no 8BITMIME */
        SMTP_CLIENT_E_NO_SMTPUTF8, /* non-ASCII address, no SMTPUTF8 */
};

/*
 * Pure: whether a server with caps can take m, checked before MAIL FROM so
 * nothing is sent half. Returns 0, or SMTP_CLIENT_E_* with a reason ending in
 * "; nothing sent" in err.
 */
int smtp_client_check_caps(const SmtpCaps *caps, const SmtpMessage *m, char *err, size_t errsize);
