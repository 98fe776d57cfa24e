/*
 * Outbox engine tests that need no server: the retry schedule (about 1 min
 * doubling to 6 h, jittered by at most half, never below 30 s). The engine
 * itself runs against Postfix in tests/integration/test_smtp.py (sent,
 * failed, deferred then kicked, kill -9 while sending).
 */
/* The checks below call the code under test: keep them in release builds too. */
#undef NDEBUG
#include <stdint.h>
#include <stdio.h>

#include "daemon/smtp/outbox.h"

static int failures;

#define check(expr)                                                                              \
        do {                                                                                     \
                if (!(expr)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); \
                        failures++;                                                              \
                }                                                                                \
        } while (0)

int main(void) {
        static const struct {
                unsigned attempts;
                uint64_t full; /* the delay before jitter */
        } table[] = {
                {0, 60},     {1, 60},     {2, 120},    {3, 240},      {4, 480},
                {5, 960},    {6, 1920},   {7, 3840},   {8, 7680},     {9, 15360},
                {10, 21600}, {11, 21600}, {50, 21600}, {1000, 21600}, {UINT32_MAX, 21600},
        };

        for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
                uint64_t lo = smtp_outbox_retry_delay(table[i].attempts, 0);
                uint64_t hi = smtp_outbox_retry_delay(table[i].attempts, UINT32_MAX);

                check(lo == table[i].full / 2);
                check(hi >= lo && hi <= table[i].full);
                check(smtp_outbox_retry_delay(table[i].attempts, (uint32_t)(table[i].full / 2)) == table[i].full);
                for (uint32_t r = 0; r < 5000; r += 7) {
                        uint64_t d = smtp_outbox_retry_delay(table[i].attempts, r * 2654435761u);

                        check(d >= table[i].full / 2 && d <= table[i].full && d >= 30 && d <= 6 * 3600);
                }
        }
        if (failures) {
                fprintf(stderr, "%d failure(s)\n", failures);
                return 1;
        }
        printf("ok\n");
        return 0;
}
