/*
 * The scheduler's poll delay: jitter within +-10% of poll_interval, never
 * below the server's LOGIN-DELAY. (Runs against real servers are in
 * tests/integration/test_pop3.py.)
 */
#undef NDEBUG /* the checks are assert()s: they must run in every build type */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>

#include "daemon/scheduler.h"

static void test_jitter_bounds(void) {
        uint64_t lo = UINT64_MAX, hi = 0;

        for (uint64_t k = 0; k <= 1000; k++) {
                uint32_t rnd = (uint32_t)(UINT32_MAX / 1000 * k);
                uint64_t d = sched_poll_delay_ms(300, 0, rnd);

                lo = d < lo ? d : lo;
                hi = d > hi ? d : hi;
        }
        assert(lo == 270000);
        assert(hi >= 329000 && hi <= 330000);
        assert(sched_poll_delay_ms(300, 0, UINT32_MAX) == 330000);
        assert(sched_poll_delay_ms(300, 0, 0) == 270000);
}

static void test_login_delay(void) {
        /* LOGIN-DELAY 900 s beats a 300 s poll however the jitter falls; a short one changes nothing. */
        assert(sched_poll_delay_ms(300, 900, UINT32_MAX) == 900000);
        assert(sched_poll_delay_ms(300, 900, 0) == 900000);
        assert(sched_poll_delay_ms(300, 60, 0) == 270000);
}

static void test_names(void) {
        assert(sched_state_to_string(SCHED_STATE_IDLE)[0] == 'i');
        assert(sched_state_to_string(SCHED_STATE_ERROR)[0] == 'e');
        assert(sched_state_to_string((SchedState)99)[0] == 'u');
}

int main(void) {
        test_jitter_bounds();
        test_login_delay();
        test_names();
        printf("scheduler: ok\n");
        return 0;
}
