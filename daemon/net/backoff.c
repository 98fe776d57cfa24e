/*
 * Exponential backoff with jitter, capped, and the retry/stop decision. A
 * permanent failure (certificate, downgrade, credentials) never retries on its
 * own: hammering a server with a wrong password risks a lock-out and changes
 * nothing. Pure: the caller owns the timer; randomness comes from libsodium.
 */
#include <sodium.h>

#include "daemon/net/backoff.h"
#include "util/macro.h"

void backoff_init(Backoff *b, uint64_t base_ms, uint64_t cap_ms) {
        *b = (Backoff){ .base_ms = base_ms ? base_ms : 1, .cap_ms = cap_ms < base_ms ? base_ms : cap_ms };
}

void backoff_reset(Backoff *b) {
        b->n_failures = 0;
}

bool net_failure_is_permanent(NetFailure failure) {
        switch (failure) {
        case NET_FAILURE_CERTIFICATE:
        case NET_FAILURE_DOWNGRADE:
        case NET_FAILURE_AUTH:
        case NET_FAILURE_CREDENTIALS:
                return true;
        default:
                return false;
        }
}

const char *net_failure_to_string(NetFailure failure) {
        static const char *const names[_NET_FAILURE_MAX] = {
                [NET_FAILURE_NONE] = "none",
                [NET_FAILURE_NETWORK] = "network",
                [NET_FAILURE_PROTOCOL] = "protocol",
                [NET_FAILURE_CERTIFICATE] = "certificate",
                [NET_FAILURE_DOWNGRADE] = "downgrade",
                [NET_FAILURE_AUTH] = "authentication",
                [NET_FAILURE_CREDENTIALS] = "credentials",
        };
        return (unsigned)failure < ARRAY_SIZE(names) ? names[failure] : "?";
}

int backoff_next(Backoff *b, NetFailure failure, uint64_t *delay_msp) {
        uint64_t d = b->base_ms;

        if (net_failure_is_permanent(failure))
                return BACKOFF_STOP;
        if (b->n_failures < 64)
                b->n_failures++;
        for (unsigned i = 1; i < b->n_failures && d < b->cap_ms; i++)
                d = d > UINT64_MAX / 2 ? UINT64_MAX : d * 2;
        if (d > b->cap_ms)
                d = b->cap_ms;
        /* "Equal jitter": half fixed, half random, so the delay still grows. */
        uint64_t half = d / 2, span = d - half;
        uint64_t rnd = span >= UINT32_MAX ? randombytes_random() : randombytes_uniform((uint32_t)span + 1);
        *delay_msp = half + (rnd > span ? span : rnd);
        return 0;
}
