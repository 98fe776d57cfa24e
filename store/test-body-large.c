/*
 * A 100 MB body written and read back through the streaming API with peak RSS
 * (VmHWM) under 32 MB. The producer honours STORE_BODY_BACKLOG the way a
 * network reader would: it stops on backlog and resumes from the drain
 * callback. Bytes are checked by hashing what went in and what came out.
 * Under AddressSanitizer the shadow memory and quarantine inflate RSS, so
 * there the figure is printed but not asserted.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/body.h"
#include "store/db.h"
#include "store/test-util.h"

#define TOTAL        (100u * 1024 * 1024)
#define PIECE        16384 /* what one socket read might hand over */
#define RSS_LIMIT_KB (32 * 1024)

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static uv_loop_t loop;
static StoreBodyWriter *bw;
static size_t produced;
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static crypto_generichash_state in_hash;
static Wait finished;
static StoreCid cid;
static unsigned n_backlogs;

static long vm_hwm_kb(void) {
        char line[256];
        long kb = -1;
        FILE *f = fopen("/proc/self/status", "re");

        check(f);
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
                        break;
        fclose(f);
        return kb;
}

static void finish_cb(int r, const StoreCid *c, uint64_t size, void *userdata) {
        check(r == 0 && size == TOTAL);
        cid = *c;
        finished = (Wait){.done = true};
}

/* Feeds pieces until the writer says backlog or the body is complete. */
static void pump(void) {
        uint64_t piece[PIECE / 8];

        while (produced < TOTAL) {
                int r;

                for (size_t i = 0; i < ARRAY_SIZE(piece); i++) {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        piece[i] = rng;
                }
                crypto_generichash_update(&in_hash, (const uint8_t *)piece, sizeof(piece));
                produced += sizeof(piece);
                r = store_body_writer_append(bw, piece, sizeof(piece));
                check(r >= 0);
                if (r == STORE_BODY_BACKLOG) {
                        n_backlogs++;
                        return; /* drain_cb calls us again */
                }
        }
        check(store_body_writer_finish(bw, finish_cb, NULL) == 0);
        bw = NULL;
}

static void drain_cb(StoreBodyWriter *w, void *userdata) {
        pump();
}

static void closed_cb(void *userdata) {
        *(bool *)userdata = true;
}

int main(void) {
        char dir[] = "/tmp/tegami-test-body-XXXXXX", path[256], cmd[300];
        uint8_t key[32], in_sum[32], out_sum[32];
        crypto_generichash_state out_hash;
        StoreBodyReader *rd;
        Store *s;
        uint64_t n_read = 0;
        bool closed = false;
        long before, after;

        check(sodium_init() >= 0);
        check(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/big.db", dir);
        check(uv_loop_init(&loop) == 0);
        randombytes_buf(key, sizeof(key));
        check(store_open(&loop, path, store_db_have_encryption() ? key : NULL, &s) == 0);
        before = vm_hwm_kb();

        crypto_generichash_init(&in_hash, NULL, 0, sizeof(in_sum));
        check(store_body_writer_new(s, &bw) == 0);
        store_body_writer_set_drain(bw, drain_cb, NULL);
        pump();
        wait_for(&loop, &finished);
        crypto_generichash_final(&in_hash, in_sum, sizeof(in_sum));

        crypto_generichash_init(&out_hash, NULL, 0, sizeof(out_sum));
        check(store_body_reader_new(s, &cid, &rd) == 0);
        check(store_body_reader_get_size(rd) == TOTAL);
        for (;;) {
                const void *p;
                size_t n;

                check(store_body_reader_read(rd, &p, &n) == 0);
                if (n == 0)
                        break;
                crypto_generichash_update(&out_hash, p, n);
                n_read += n;
        }
        store_body_reader_free(rd);
        crypto_generichash_final(&out_hash, out_sum, sizeof(out_sum));
        check(n_read == TOTAL);
        check(memcmp(in_sum, out_sum, sizeof(in_sum)) == 0);

        after = vm_hwm_kb();
        store_close(s, closed_cb, &closed);
        while (!closed)
                uv_run(&loop, UV_RUN_ONCE);
        check(uv_loop_close(&loop) == 0);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        check(system(cmd) == 0);

        printf("100 MB body (%s): stored and read back, %u backlog pauses, VmHWM %ld kB after open, %ld kB at end "
               "(limit %d kB)\n",
               store_db_have_encryption() ? "encrypted" : "plain", n_backlogs, before, after, RSS_LIMIT_KB);
#if defined(UNDER_ASAN)
        printf("AddressSanitizer build: RSS limit not asserted\n");
#else
        check(after < RSS_LIMIT_KB);
#endif
        return 0;
}
