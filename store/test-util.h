/*
 * What the store's tests share: a check() that stays on under NDEBUG and
 * names the failing line, and waiting on the loop for a store callback.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#define check(expr)                                                                              \
        do {                                                                                     \
                if (!(expr)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); \
                        abort();                                                                 \
                }                                                                                \
        } while (0)

/* One outstanding callback's result. */
typedef struct Wait {
        bool done;
        int r;
        int64_t id;
} Wait;

static inline void wait_id_cb(int r, int64_t id, void *userdata) {
        Wait *w = userdata;
        check(!w->done); /* exactly once */
        *w = (Wait){.done = true, .r = r, .id = id};
}

static inline void wait_done_cb(int r, void *userdata) {
        wait_id_cb(r, 0, userdata);
}

/* Runs the loop until w's callback ran; returns its r. */
static inline int wait_for(uv_loop_t *loop, Wait *w) {
        while (!w->done)
                uv_run(loop, UV_RUN_ONCE);
        return w->r;
}
