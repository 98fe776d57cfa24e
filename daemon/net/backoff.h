/*
 * The reconnect policy every protocol client shares: what a failure means for
 * the account (retry later, or stop and raise an account error) and how long
 * to wait before the next attempt.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Why a session ended; set by the transport, SASL exchange or protocol client. */
typedef enum NetFailure {
        NET_FAILURE_NONE,
        NET_FAILURE_NETWORK,     /* resolve, connect, reset, EOF, timeout: retry */
        NET_FAILURE_PROTOCOL,    /* TLS handshake failure, overlong line, bad reply: retry */
        NET_FAILURE_CERTIFICATE, /* certificate or pin rejected: stop */
        NET_FAILURE_DOWNGRADE,   /* STARTTLS/STLS not offered where required: stop */
        NET_FAILURE_AUTH,        /* the server refused our credentials: stop */
        NET_FAILURE_CREDENTIALS, /* no secret (command failed, keyring empty): stop */
        _NET_FAILURE_MAX,
} NetFailure;

/* Positive result of backoff_next(). */
enum {
        BACKOFF_STOP = 1, /* do not retry: raise an account error and wait for the user */
};

typedef struct Backoff {
        uint64_t base_ms;  /* first delay (before jitter) */
        uint64_t cap_ms;   /* no delay exceeds this */
        unsigned n_failures;
} Backoff;

/* Sets b up; base_ms > 0, cap_ms >= base_ms. Never fails. */
void backoff_init(Backoff *b, uint64_t base_ms, uint64_t cap_ms);

/* After a session that worked: the next failure starts from base_ms again. */
void backoff_reset(Backoff *b);

/*
 * Records a failure. For a failure worth retrying returns 0 and *delay_msp:
 * d/2 <= delay <= d with d = min(cap, base * 2^(n-1)) for the n-th failure in
 * a row (the random half spreads reconnects of many clients). Certificate,
 * downgrade, authentication and credential failures return BACKOFF_STOP.
 */
int backoff_next(Backoff *b, NetFailure failure, uint64_t *delay_msp);

/* True for failures that stop the account rather than retry. */
bool net_failure_is_permanent(NetFailure failure);

/* "network", "certificate", ... for messages. */
const char *net_failure_to_string(NetFailure failure);
