/*
 * Message preparation for SMTP submission, pure: a message as a mail user
 * agent wrote it in, the envelope and the bytes to send out. No I/O, no
 * logging; the only impure inputs (clock, randomness) can be fixed by the
 * caller.
 *
 * - The envelope sender is -f (opts->from) or the first address of From:.
 * - The recipients are opts->rcpts, or the addresses of To, Cc and Bcc
 *   (duplicates dropped, first spelling kept).
 * - Every line end (CRLF, bare LF, lone CR) becomes CRLF; a line longer than
 *   998 octets or a NUL byte refuses the message (RFC 5322 §2.1.1).
 * - Bcc: lines are dropped; Date: and Message-ID: are added when missing
 *   (the Message-ID's domain is the sender's); From: is added from -f when missing.
 * - needs_8bitmime: some byte is >= 0x80 (BODY=8BITMIME);
 *   needs_smtputf8: an envelope address, or one in From/To/Cc/Bcc, is not
 *   ASCII (RFC 6531, RFC 6532).
 * - With the envelope given (-f, recipients), the header fields it replaces
 *   are not checked.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/macro.h"

/* RFC 5322 §2.1.1: at most 998 octets per line, CRLF excluded. */
#define SMTP_PREPARE_LINE_MAX 998

/* Positive results of smtp_message_prepare(): the message cannot be sent as is. */
enum {
        SMTP_PREPARE_E_NO_SENDER = 1, /* no -f and no usable From: */
        SMTP_PREPARE_E_NO_RECIPIENTS, /* none given and none in To/Cc/Bcc */
        SMTP_PREPARE_E_BAD_ADDRESS,   /* an address without local part or domain, or with control bytes */
        SMTP_PREPARE_E_LINE_TOO_LONG, /* a line of more than SMTP_PREPARE_LINE_MAX octets */
        SMTP_PREPARE_E_NUL,           /* a NUL byte */
        SMTP_PREPARE_E_BAD_HEADER,    /* a header line without a colon, or an empty message */
};

typedef struct SmtpPrepareOptions {
        const char *from;         /* envelope sender (-f), NULL: From: */
        const char *const *rcpts; /* envelope recipients, NULL/n_rcpts 0: To/Cc/Bcc */
        size_t n_rcpts;
        int64_t now;        /* Unix time for a missing Date:, 0: time(NULL) */
        const char *unique; /* left part of a missing Message-ID, NULL: random */
        bool utc;           /* Date: in UTC rather than local time (tests) */
} SmtpPrepareOptions;

/* A prepared message; free with smtp_message_free(). */
typedef struct SmtpMessage {
        char *mail_from; /* envelope sender, addr-spec */
        char **rcpts;    /* n_rcpts envelope recipients, addr-spec */
        size_t n_rcpts;
        char *data; /* the message to send: CRLF lines, headers fixed, not dot-stuffed */
        size_t size;
        bool needs_8bitmime;
        bool needs_smtputf8;
        bool added_date, added_message_id, removed_bcc;
} SmtpMessage;

/*
 * Prepares raw[0..n). Returns 0 and *retp, a positive SMTP_PREPARE_E_* with a
 * malloc'd reason in *errp (e.g. "line 12 is 1204 octets long, more than
 * 998"), or -ENOMEM. opts may be NULL.
 */
int smtp_message_prepare(const char *raw, size_t n, const SmtpPrepareOptions *opts, SmtpMessage **retp, char **errp);

/* Frees m; accepts NULL; returns NULL. */
SmtpMessage *smtp_message_free(SmtpMessage *m);
DEFINE_CLEANUP_FUNC(SmtpMessage *, smtp_message_free);

/*
 * Parses an RFC 5322 address-list header value (folded or not): display
 * names, quoted strings, comments, angle addresses with obsolete routes,
 * groups (their members count, the group name does not). Appends each
 * addr-spec (malloc'd) to *addrsp / *n_addrsp, which the caller frees with
 * smtp_address_list_free(). Returns 0, SMTP_PREPARE_E_BAD_ADDRESS (the bad
 * mailbox's text in *errp when errp is not NULL) or -ENOMEM.
 */
int smtp_address_list_parse(const char *value, char ***addrsp, size_t *n_addrsp, char **errp);

/* Frees an array from smtp_address_list_parse(); returns NULL. */
char **smtp_address_list_free(char **addrs, size_t n_addrs);

/* True when addr has a byte >= 0x80 (so MAIL/RCPT need SMTPUTF8). */
bool smtp_address_is_utf8(const char *addr);

/* The domain part of an addr-spec (after the last '@'), or NULL. */
const char *smtp_address_domain(const char *addr);

/* Static text for an SMTP_PREPARE_E_* code. */
const char *smtp_prepare_strerror(int code);
