/*
 * Backoff tests: delays stay within [d/2, d] for d = min(cap, base * 2^(n-1)),
 * reach the cap, restart after a reset, and permanent failures never retry.
 */
#undef NDEBUG /* the checks are assert()s: they must run in every build type */
#include <assert.h>
#include <sodium.h>
#include <stdio.h>

#include "daemon/net/backoff.h"

int main(void) {
        Backoff b;
        uint64_t delay = 0;

        assert(sodium_init() >= 0);
        for (int round = 0; round < 200; round++) {
                backoff_init(&b, 1000, 300000);
                uint64_t d = 1000;
                for (int i = 0; i < 40; i++) {
                        assert(backoff_next(&b, NET_FAILURE_NETWORK, &delay) == 0);
                        assert(delay >= d / 2 && delay <= d);
                        assert(delay <= 300000);
                        d = d * 2 > 300000 ? 300000 : d * 2;
                }
                assert(delay >= 150000); /* at the cap */
                backoff_reset(&b);
                assert(backoff_next(&b, NET_FAILURE_PROTOCOL, &delay) == 0);
                assert(delay >= 500 && delay <= 1000);
        }

        /* Many failures in a row: no overflow, still capped. */
        backoff_init(&b, 1, UINT64_MAX);
        for (int i = 0; i < 200; i++)
                assert(backoff_next(&b, NET_FAILURE_NETWORK, &delay) == 0);
        assert(delay >= (UINT64_C(1) << 62)); /* half of the largest step, 2^63 */

        /* Permanent failures stop the account. */
        static const NetFailure stop[] = { NET_FAILURE_CERTIFICATE, NET_FAILURE_DOWNGRADE, NET_FAILURE_AUTH,
                                           NET_FAILURE_CREDENTIALS };
        for (size_t i = 0; i < sizeof stop / sizeof stop[0]; i++) {
                backoff_init(&b, 1000, 60000);
                assert(backoff_next(&b, stop[i], &delay) == BACKOFF_STOP);
                assert(net_failure_is_permanent(stop[i]));
        }
        assert(!net_failure_is_permanent(NET_FAILURE_NETWORK));
        printf("ok backoff\n");
        return 0;
}
