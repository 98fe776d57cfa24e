/*
 * Search index benchmark (not a test): fills an encrypted store with the
 * first N messages of a corpus mbox (tests/bench/corpus.py) — bodies through
 * the streaming writer, envelopes decoded by daemon/mime — then times the
 * search indexer (daemon/mime/indexer.h) over all of them: body read from the
 * store, MIME parse, text extraction, FTS5 trigram insert, commit. The clock
 * stops once the store is closed (WAL checkpointed), so the index's bytes
 * reached the file. Prints messages/s, MB of raw mail/s, and the store size
 * before and after (growth), and the CPU time the indexing took: all threads
 * (on a busy machine the wall clock also counts waiting for the cores) and
 * the busiest one until the close, which bounds the wall time from below.
 * Loop thread + the store's writer thread.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/mime/envelope.h"
#include "daemon/mime/indexer.h"
#include "store/body.h"
#include "store/message.h"
#include "store/search.h"
#include "store/store.h"

static uv_loop_t loop;

typedef struct Wait {
        bool done;
        int r;
        int64_t id;
        StoreCid cid;
        uint64_t size;
} Wait;

static void die(const char *what, int r) {
        fprintf(stderr, "bench-search: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(1);
}

static void id_cb(int r, int64_t id, void *userdata) {
        Wait *w = userdata;
        *w = (Wait){.done = true, .r = r, .id = id};
}

static void body_cb(int r, const StoreCid *cid, uint64_t size, void *userdata) {
        Wait *w = userdata;
        *w = (Wait){.done = true, .r = r, .cid = cid ? *cid : (StoreCid){}, .size = size};
}

static void wait_for(Wait *w, const char *what) {
        while (!w->done)
                uv_run(&loop, UV_RUN_ONCE);
        if (w->r < 0)
                die(what, w->r);
}

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU seconds this process has used, every thread, user and system. */
static double cpu_s(void) {
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* CPU seconds of each thread of this process, by thread id, in ts[]/tids[] (at most max). */
static size_t thread_cpu(int *tids, double *ts, size_t max) {
        DIR *d = opendir("/proc/self/task");
        struct dirent *e;
        size_t n = 0;

        while (d && (e = readdir(d)) && n < max) {
                char path[300], buf[1024], *p;
                unsigned long ut, st;
                FILE *f;

                if (e->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
                f = fopen(path, "r");
                if (!f)
                        continue;
                p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL; /* the name may hold spaces */
                fclose(f);
                if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2) {
                        tids[n] = atoi(e->d_name);
                        ts[n++] = (double)(ut + st) / sysconf(_SC_CLK_TCK);
                }
        }
        if (d)
                closedir(d);
        return n;
}

static uint64_t store_bytes(const char *db) {
        char wal[4200];
        struct stat st;
        uint64_t n = 0;

        if (stat(db, &st) == 0)
                n += st.st_size;
        snprintf(wal, sizeof(wal), "%s-wal", db);
        if (stat(wal, &st) == 0)
                n += st.st_size;
        return n;
}

static void closed_cb(void *userdata) {
        *(bool *)userdata = true;
}

static void close_store(Store *s) {
        bool closed = false;
        store_close(s, closed_cb, &closed);
        while (!closed)
                uv_run(&loop, UV_RUN_ONCE);
}

/* Stores one message raw[0..n) in folder. */
static void store_message(Store *s, int64_t folder, uint32_t uid, const char *raw, size_t n) {
        StoreBodyWriter *bw;
        StoreMessage m = {.folder_id = folder, .uid = uid, .size = n, .has_body = true};
        Wait w = {};
        int r;

        r = store_body_writer_new(s, &bw);
        if (r < 0)
                die("body writer", r);
        r = store_body_writer_append(bw, raw, n);
        if (r < 0)
                die("body append", r);
        r = store_body_writer_finish(bw, body_cb, &w);
        if (r < 0)
                die("body finish", r);
        wait_for(&w, "body");
        m.cid = w.cid;
        r = mime_envelope_parse(raw, n, &m.env);
        if (r < 0)
                die("envelope", r);
        w = (Wait){};
        r = store_message_insert(s, &m, STORE_BULK, id_cb, &w);
        mime_envelope_clear(&m.env);
        if (r < 0)
                die("insert", r);
        wait_for(&w, "insert");
}

static bool idle;
static uint64_t n_indexed;

static void idle_cb(int r, uint64_t n, void *userdata) {
        if (r < 0)
                die("indexer", r);
        n_indexed = n;
        idle = true;
}

int main(int argc, char **argv) {
        const char *dir = ".";
        uint64_t limit = 26000, count = 0, raw_bytes = 0, before, after;
        char db[4096], *buf = NULL;
        size_t cap = 0;
        ssize_t len;
        uint8_t key[32];
        double t0, t1, c0, c1, ts0[16], ts1[16], busiest = 0, loop_s = 0;
        int tids0[16], tids1[16];
        size_t n0, n1;
        MimeIndexer *ix;
        int64_t folder;
        Store *s;
        FILE *f;
        Wait w = {};
        int c, r;
        char *msg = NULL;
        size_t msg_len = 0, msg_cap = 0;

        static const struct option opts[] = {
                {"count", required_argument, NULL, 'n'},
                {"dir", required_argument, NULL, 'd'},
                {},
        };
        while ((c = getopt_long(argc, argv, "n:d:", opts, NULL)) >= 0) {
                if (c == 'n')
                        limit = strtoull(optarg, NULL, 10);
                else if (c == 'd')
                        dir = optarg;
                else
                        return 2;
        }
        if (optind + 1 != argc) {
                fprintf(stderr, "usage: %s [--count N] [--dir DIR] CORPUS.mbox\n", argv[0]);
                return 2;
        }
        if (sodium_init() < 0 || uv_loop_init(&loop) < 0)
                die("init", -EIO);
        randombytes_buf(key, sizeof(key));
        snprintf(db, sizeof(db), "%s/bench-search.db", dir);
        unlink(db);
        r = store_open(&loop, db, key, &s);
        if (r < 0)
                die("store_open", r);
        r = store_account_upsert(s, "bench", id_cb, &w);
        if (r < 0)
                die("account", r);
        wait_for(&w, "account");
        {
                StoreFolder fo = {.account_id = w.id, .name = "INBOX"};
                w = (Wait){};
                if ((r = store_folder_upsert(s, &fo, id_cb, &w)) < 0)
                        die("folder", r);
                wait_for(&w, "folder");
                folder = w.id;
        }

        /* Fill: an mbox is "From " lines between messages. */
        f = fopen(argv[optind], "r");
        if (!f)
                die(argv[optind], -errno);
        for (;;) {
                len = getline(&buf, &cap, f);
                if (len < 0 || (len >= 5 && !strncmp(buf, "From ", 5))) {
                        if (msg_len > 0) {
                                store_message(s, folder, (uint32_t)++count, msg, msg_len);
                                raw_bytes += msg_len;
                                msg_len = 0;
                        }
                        if (len < 0 || count >= limit)
                                break;
                        continue;
                }
                if (msg_len + (size_t)len > msg_cap) {
                        msg_cap = (msg_len + len) * 2;
                        msg = realloc(msg, msg_cap);
                        if (!msg)
                                die("realloc", -ENOMEM);
                }
                memcpy(msg + msg_len, buf, len);
                msg_len += len;
        }
        fclose(f);
        free(buf);
        free(msg);
        close_store(s); /* checkpointed: the size before indexing */
        before = store_bytes(db);

        t0 = now_s();
        c0 = cpu_s();
        r = store_open(&loop, db, key, &s);
        if (r < 0)
                die("store_open", r);
        if ((r = mime_indexer_new(s, idle_cb, NULL, &ix)) < 0)
                die("indexer", r);
        n0 = thread_cpu(tids0, ts0, 16);
        mime_indexer_kick(ix);
        while (!idle)
                uv_run(&loop, UV_RUN_ONCE);
        n1 = thread_cpu(tids1, ts1, 16);
        for (size_t i = 0; i < n1; i++) { /* what each thread spent indexing (the final checkpoint aside) */
                double was = 0;

                for (size_t j = 0; j < n0; j++)
                        if (tids0[j] == tids1[i])
                                was = ts0[j];
                if (ts1[i] - was > busiest)
                        busiest = ts1[i] - was;
                if (tids1[i] == getpid())
                        loop_s = ts1[i] - was;
        }
        mime_indexer_free(ix);
        close_store(s);
        t1 = now_s();
        c1 = cpu_s();
        after = store_bytes(db);

        printf("search index: %llu messages (%.1f MB raw) indexed in %.2f s: %.0f messages/s, %.1f MB/s\n",
               (unsigned long long)n_indexed, raw_bytes / 1e6, t1 - t0, n_indexed / (t1 - t0),
               raw_bytes / 1e6 / (t1 - t0));
        /* On a shared machine the wall clock waits for other processes; the CPU time does not. */
        printf("cpu: %.2f s (all threads): %.0f messages per CPU second; busiest thread %.2f s until the"
               " close (a floor for the wall time on idle cores): %.0f messages/s; loop thread %.2f s\n",
               c1 - c0, n_indexed / (c1 - c0), busiest, busiest > 0 ? n_indexed / busiest : 0.0, loop_s);
        printf("store size: %.1f MB before, %.1f MB after: +%.1f MB (+%.0f%%)\n", before / 1e6, after / 1e6,
               (after - before) / 1e6, 100.0 * (after - before) / before);
        unlink(db);
        uv_loop_close(&loop);
        return 0;
}
