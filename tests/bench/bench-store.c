/*
 * Store benchmark (not a test): stores the first N messages of a corpus mbox
 * (tests/bench/corpus.py) through the Store API — streaming body writer, then
 * message insert with the envelope, spread over four folders, bulk commits
 * and one barrier at the end — once on the plain SQLite VFS and once on the
 * encrypting VFS, in one run, and prints wall time, CPU, msgs/s, MB/s and
 * peak RSS of each and the encrypted/plain ratio (target ≤ 1.3).
 *
 * Each store runs in its own child process so that peak RSS (ru_maxrss) and
 * CPU are its own; --rounds (default 3) alternates plain and encrypted runs
 * and reports the median of each, because fsync latency on shared disks
 * varies from run to run by more than the difference being measured. The clock stops when the store is closed (WAL
 * checkpointed into the db file), so both sides pay for every byte reaching the disk. Envelope fields are the raw
 * header text: decoding is mime/'s job and costs the same on both sides.
 * CPU is reported as each side's own median. --plain-only / --encrypted-only
 * run one side (for profiling); TEGAMI_CRYPT_NO_OPENSSL=1 seals pages with
 * libsodium alone instead of OpenSSL's ChaCha20-Poly1305 (store/crypt-vfs.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/body.h"
#include "store/crypt-vfs.h"
#include "store/db.h"
#include "store/message.h"
#include "store/store.h"

/* Messages between "body started" and "inserted": bounds memory like a
 * protocol engine's pipeline depth would. */
#define MAX_IN_FLIGHT 128
#define N_FOLDERS     4
#define MAX_ROUNDS    15

typedef struct Result {
        int ok;
        double wall, cpu;
        long maxrss_kb;
        double wall_barrier; /* until the final barrier committed, before close */
        uint64_t n_msgs, n_bytes, db_bytes, n_commits, n_checkpoints;
} Result;

typedef struct Msg {
        StoreMessage m;
} Msg;

typedef struct Bench {
        uv_loop_t loop;
        Store *store;
        FILE *f;
        char *line;
        size_t line_cap;
        uint64_t limit;
        bool eof, backlogged, final_sent, closed;
        int error;
        unsigned in_flight;
        int64_t folders[N_FOLDERS];
        uint32_t next_uid[N_FOLDERS];
        /* the message being read */
        StoreBodyWriter *w;
        Msg *cur;
        bool in_headers;
        char **last_field; /* for folded header lines */
        uint64_t n_started, n_done, n_bytes;
} Bench;

static Bench B;

static void die(const char *what, int r) {
        fprintf(stderr, "bench-store: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(1);
}

static void pump(void);

static void insert_cb(int r, int64_t id, void *userdata) {
        Msg *msg = userdata;

        if (r < 0)
                die("message insert", r);
        store_message_clear(&msg->m);
        free(msg);
        B.in_flight--;
        B.n_done++;
        pump();
}

static void finish_cb(int r, const StoreCid *cid, uint64_t size, void *userdata) {
        Msg *msg = userdata;

        if (r < 0)
                die("body finish", r);
        msg->m.has_body = true;
        msg->m.cid = *cid;
        msg->m.size = size;
        r = store_message_insert(B.store, &msg->m, STORE_BULK, insert_cb, msg);
        if (r < 0)
                die("message insert", r);
}

static void drain_cb(StoreBodyWriter *w, void *userdata) {
        B.backlogged = false;
        pump();
}

static void message_end(void) {
        int r;

        if (!B.w)
                return;
        r = store_body_writer_finish(B.w, finish_cb, B.cur);
        if (r < 0)
                die("body finish", r);
        B.w = NULL;
        B.cur = NULL;
}

static void message_start(void) {
        unsigned folder = (unsigned)(B.n_started % N_FOLDERS);
        int r;

        B.cur = calloc(1, sizeof(*B.cur));
        if (!B.cur)
                die("calloc", -ENOMEM);
        B.cur->m.folder_id = B.folders[folder];
        B.cur->m.uid = ++B.next_uid[folder];
        B.cur->m.internal_date = (int64_t)time(NULL);
        r = store_body_writer_new(B.store, &B.w);
        if (r < 0)
                die("body writer", r);
        store_body_writer_set_drain(B.w, drain_cb, NULL);
        B.in_headers = true;
        B.last_field = NULL;
        B.in_flight++;
        B.n_started++;
}

/* Keeps the raw value of the envelope headers (unfolded, CRLF stripped). */
static void header_line(const char *line, size_t n) {
        static const struct {
                const char *name;
                size_t offset;
        } fields[] = {
                {"from:", offsetof(StoreEnvelope, from)},
                {"to:", offsetof(StoreEnvelope, to)},
                {"cc:", offsetof(StoreEnvelope, cc)},
                {"subject:", offsetof(StoreEnvelope, subject)},
                {"message-id:", offsetof(StoreEnvelope, message_id)},
                {"in-reply-to:", offsetof(StoreEnvelope, in_reply_to)},
                {"references:", offsetof(StoreEnvelope, references)},
        };
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                n--;
        if (n == 0) {
                B.in_headers = false;
                return;
        }
        if ((line[0] == ' ' || line[0] == '\t') && B.last_field && *B.last_field) {
                size_t old = strlen(*B.last_field);
                char *v = realloc(*B.last_field, old + n + 1);
                if (!v)
                        die("realloc", -ENOMEM);
                memcpy(v + old, line, n);
                v[old + n] = 0;
                *B.last_field = v;
                return;
        }
        B.last_field = NULL;
        for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
                size_t k = strlen(fields[i].name);
                if (n > k && strncasecmp(line, fields[i].name, k) == 0) {
                        char **field = (char **)((char *)&B.cur->m.env + fields[i].offset);
                        const char *v = line + k;
                        while (v < line + n && *v == ' ')
                                v++;
                        free(*field);
                        *field = strndup(v, (size_t)(line + n - v));
                        B.last_field = field;
                        return;
                }
        }
}

static int noop_run(sqlite3 *db, void *userdata) {
        return 0;
}

static void closed_cb(void *userdata) {
        B.closed = true;
}

static double now_s(void);
static double t_start, t_barrier;
static uint64_t n_commits, n_checkpoints;

static void final_cb(int r, void *userdata) {
        if (r < 0)
                die("final barrier", r);
        t_barrier = now_s() - t_start;
        store_get_stats(B.store, &n_commits, NULL, &n_checkpoints);
        store_close(B.store, closed_cb, NULL);
}

/* Reads lines and feeds them in until the pipeline is full, the writer asks
 * for a pause, or the corpus ends. */
static void pump(void) {
        ssize_t n;
        int r;

        while (!B.eof && !B.backlogged && B.in_flight < MAX_IN_FLIGHT) {
                n = getline(&B.line, &B.line_cap, B.f);
                if (n < 0 || (strncmp(B.line, "From ", 5) == 0 && B.n_started == B.limit)) {
                        message_end();
                        B.eof = true;
                        break;
                }
                if (strncmp(B.line, "From ", 5) == 0) { /* mboxrd separator: body lines are quoted */
                        message_end();
                        message_start();
                        continue;
                }
                if (n == 1 && B.line[0] == '\n') /* the blank line before a separator */
                        continue;
                if (!B.w)
                        continue;
                const char *p = B.line;
                if (p[0] == '>') { /* mboxrd: ">From " and ">>From " lose one '>' */
                        const char *q = p;
                        while (*q == '>')
                                q++;
                        if (strncmp(q, "From ", 5) == 0) {
                                p++;
                                n--;
                        }
                }
                if (B.in_headers)
                        header_line(p, (size_t)n);
                B.n_bytes += (uint64_t)n;
                r = store_body_writer_append(B.w, p, (size_t)n);
                if (r < 0)
                        die("body append", r);
                if (r == STORE_BODY_BACKLOG)
                        B.backlogged = true;
        }
        if (B.eof && B.in_flight == 0 && !B.final_sent) {
                /* Everything before a barrier is durable once it commits. */
                B.final_sent = true;
                r = store_submit(B.store, STORE_BARRIER, noop_run, final_cb, NULL);
                if (r < 0)
                        die("final barrier", r);
        }
}

typedef struct IdWait {
        bool done;
        int r;
        int64_t id;
} IdWait;

static void id_cb(int r, int64_t id, void *userdata) {
        IdWait *w = userdata;
        *w = (IdWait){.done = true, .r = r, .id = id};
}

static int64_t wait_id(IdWait *w, const char *what) {
        while (!w->done)
                uv_run(&B.loop, UV_RUN_ONCE);
        if (w->r < 0)
                die(what, w->r);
        return w->id;
}

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
               (double)ru.ru_stime.tv_usec / 1e6;
}

static uint64_t file_size(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* The child: one store, one pass over the corpus. */
static Result run_one(const char *corpus, const char *db, const uint8_t *key, uint64_t limit) {
        static const char *names[N_FOLDERS] = {"INBOX", "Archive", "Lists/tegami", "Sent"};
        Result res = {};
        IdWait w = {};
        double t0, c0;
        int r;

        B = (Bench){.limit = limit};
        unlink(db);
        if (uv_loop_init(&B.loop) < 0)
                die("uv_loop_init", -EIO);
        B.f = fopen(corpus, "re");
        if (!B.f)
                die(corpus, -errno);
        setvbuf(B.f, NULL, _IOFBF, 1 << 16);

        t0 = t_start = now_s();
        c0 = cpu_s();
        r = store_open(&B.loop, db, key, &B.store);
        if (r < 0)
                die("store_open", r);
        r = store_account_upsert(B.store, "bench", id_cb, &w);
        if (r < 0)
                die("account", r);
        int64_t acct = wait_id(&w, "account");
        for (unsigned i = 0; i < N_FOLDERS; i++) {
                StoreFolder f = {.account_id = acct, .name = (char *)names[i], .delimiter = '/', .uidvalidity = 1};
                w = (IdWait){};
                r = store_folder_upsert(B.store, &f, id_cb, &w);
                if (r < 0)
                        die("folder", r);
                B.folders[i] = wait_id(&w, "folder");
        }

        pump();
        while (!B.closed)
                uv_run(&B.loop, UV_RUN_ONCE);
        res.wall = now_s() - t0;
        res.cpu = cpu_s() - c0;

        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        res.maxrss_kb = ru.ru_maxrss;
        res.wall_barrier = t_barrier;
        res.n_commits = n_commits;
        res.n_checkpoints = n_checkpoints;
        res.n_msgs = B.n_done;
        res.n_bytes = B.n_bytes;
        res.db_bytes = file_size(db);
        res.ok = 1;
        fclose(B.f);
        free(B.line);
        uv_loop_close(&B.loop);
        unlink(db);
        return res;
}

static Result run_child(const char *corpus, const char *db, const uint8_t *key, uint64_t limit) {
        Result res = {};
        int fds[2], status;
        pid_t pid;

        if (pipe(fds) < 0)
                die("pipe", -errno);
        pid = fork();
        if (pid < 0)
                die("fork", -errno);
        if (pid == 0) {
                close(fds[0]);
                res = run_one(corpus, db, key, limit);
                if (write(fds[1], &res, sizeof(res)) != (ssize_t)sizeof(res))
                        _exit(1);
                _exit(0);
        }
        close(fds[1]);
        if (read(fds[0], &res, sizeof(res)) != (ssize_t)sizeof(res))
                res.ok = 0;
        close(fds[0]);
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                res.ok = 0;
        return res;
}

static void print_row(const char *label, const Result *r) {
        printf("%-10s %8.2f %8.2f %8.2f %9.0f %8.1f %7ld %8.1f %8" PRIu64 " %6" PRIu64 "\n", label, r->wall,
               r->wall_barrier, r->cpu, (double)r->n_msgs / r->wall, (double)r->n_bytes / 1e6 / r->wall,
               r->maxrss_kb / 1024, (double)r->db_bytes / 1e6, r->n_commits, r->n_checkpoints);
}

/* The round with the median wall time (sorts r; rounds are few). */
static const Result *median(Result *r, int n) {
        for (int i = 1; i < n; i++)
                for (int j = i; j > 0 && r[j].wall < r[j - 1].wall; j--) {
                        Result t = r[j];
                        r[j] = r[j - 1];
                        r[j - 1] = t;
                }
        return &r[n / 2];
}

/* The median CPU time of n rounds (its own median: the round with the median wall may differ). */
static double median_cpu(const Result *r, int n) {
        double v[MAX_ROUNDS];

        for (int i = 0; i < n; i++) {
                int j = i;

                for (; j > 0 && v[j - 1] > r[i].cpu; j--)
                        v[j] = v[j - 1];
                v[j] = r[i].cpu;
        }
        return v[n / 2];
}

/* Every round's wall and CPU, sorted by wall (median() sorted them). */
static void print_rounds(const char *label, const Result *r, int n) {
        printf("%s rounds, wall/cpu s:", label);
        for (int i = 0; i < n; i++)
                printf(" %.2f/%.2f", r[i].wall, r[i].cpu);
        printf("\n");
}

/* Reads the corpus once so all runs find it in the page cache. */
static void warm(const char *path) {
        static char buf[1 << 20];
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                die(path, -errno);
        while (read(fd, buf, sizeof(buf)) > 0)
                ;
        close(fd);
}

int main(int argc, char **argv) {
        const char *dir = ".";
        uint64_t limit = 26000;
        bool plain_only = false, encrypted_only = false;
        char db[4096];
        uint8_t key[32];
        Result plain[MAX_ROUNDS] = {}, enc[MAX_ROUNDS] = {};
        int c, rounds = 3;

        static const struct option opts[] = {
                {"count", required_argument, NULL, 'n'},    {"dir", required_argument, NULL, 'd'},
                {"encrypted-only", no_argument, NULL, 'e'}, {"plain-only", no_argument, NULL, 'p'},
                {"rounds", required_argument, NULL, 'r'},   {},
        };
        while ((c = getopt_long(argc, argv, "n:d:epr:", opts, NULL)) >= 0) {
                switch (c) {
                case 'n':
                        limit = strtoull(optarg, NULL, 10);
                        break;
                case 'd':
                        dir = optarg;
                        break;
                case 'e':
                        encrypted_only = true; /* for profiling one side */
                        break;
                case 'p':
                        plain_only = true;
                        break;
                case 'r':
                        rounds = atoi(optarg);
                        if (rounds < 1 || rounds > MAX_ROUNDS)
                                return 2;
                        break;
                default:
                        return 2;
                }
        }
        if (optind + 1 != argc) {
                fprintf(stderr,
                        "usage: %s [--count N] [--rounds R] [--dir DIR] [--plain-only | --encrypted-only] "
                        "CORPUS.mbox\n",
                        argv[0]);
                return 2;
        }
        if (sodium_init() < 0)
                die("sodium_init", -EIO);
        randombytes_buf(key, sizeof(key));
        warm(argv[optind]);

        if (!store_db_have_encryption() && !plain_only) {
                printf("NOTE: this build has no encrypting VFS (store/crypt-vfs.c): plain only\n");
                plain_only = true;
                encrypted_only = false;
        }

        /* Alternate plain and encrypted so disk and cache drift hit both. */
        for (int i = 0; i < rounds; i++) {
                if (!encrypted_only) {
                        snprintf(db, sizeof(db), "%s/bench-store-plain.db", dir);
                        plain[i] = run_child(argv[optind], db, NULL, limit);
                        if (!plain[i].ok)
                                die("plain run failed", -EIO);
                }
                if (plain_only)
                        continue;
                snprintf(db, sizeof(db), "%s/bench-store-encrypted.db", dir);
                enc[i] = run_child(argv[optind], db, key, limit);
                if (!enc[i].ok)
                        die("encrypted run failed", -EIO);
        }

        printf("store benchmark: %" PRIu64 " messages, %.1f MB of mail, 4 folders, WAL, bulk commits + final "
               "barrier; %d round(s), the median by wall time\n",
               (encrypted_only ? enc : plain)[0].n_msgs, (double)(encrypted_only ? enc : plain)[0].n_bytes / 1e6,
               rounds);
        if (!plain_only && crypt_vfs_register() == 0)
                printf("cipher: XChaCha20-Poly1305 through %s\n",
                       crypt_vfs_uses_openssl() ? "OpenSSL's ChaCha20-Poly1305 (subkeys from libsodium)" : "libsodium");
        printf("%-10s %8s %8s %8s %9s %8s %7s %8s %8s %6s\n", "vfs", "wall s", "commit s", "cpu s", "msgs/s", "MB/s",
               "rss MB", "db MB", "commits", "ckpts");
        double plain_cpu = median_cpu(plain, rounds), enc_cpu = median_cpu(enc, rounds);
        const Result *p = encrypted_only ? NULL : median(plain, rounds);
        if (p)
                print_row("plain", p);
        if (plain_only) {
                print_rounds("plain", plain, rounds);
                return 0;
        }
        const Result *e = median(enc, rounds);
        print_row("encrypted", e);
        if (!p) {
                print_rounds("encrypted", enc, rounds);
                return 0;
        }
        printf("ratio encrypted/plain: wall %.2fx, cpu %.2fx (medians of each; target wall <= 1.30x: %s)\n",
               e->wall / p->wall, enc_cpu / plain_cpu, e->wall / p->wall <= 1.30 ? "met" : "NOT met");
        print_rounds("plain", plain, rounds);
        print_rounds("encrypted", enc, rounds);
        return 0;
}
