/*
 * The writer thread. It owns the store's only write connection from
 * store_writer_new() until it closes it at the end of store_writer_close();
 * the loop thread never touches that connection.
 *
 * Jobs queue under one mutex. The thread takes every job queued so far (up to
 * MAX_GROUP) and runs them in one transaction, each inside its own savepoint
 * so one failing job does not undo its neighbours: this is group commit, and it
 * is what makes thousands of small inserts per second cheap — one WAL append
 * and at most one fsync per group instead of per job.
 *
 * Durability. The connection runs in WAL mode with synchronous=NORMAL: a
 * commit appends to the WAL without fsync, which survives the process being
 * killed (the OS has the pages) but not a power cut. When any job of a group
 * asks for STORE_BARRIER the group commits with synchronous=FULL, so SQLite
 * fsyncs the WAL before COMMIT returns. Because the WAL is one sequential file,
 * that fsync also makes every earlier bulk commit durable: a POP3 fetch can
 * store messages in bulk and finish with one barrier before DELE. We chose a
 * per-commit FULL over a checkpoint because a checkpoint copies pages into the
 * db file and fsyncs twice; the WAL fsync is the least work that is durable.
 *
 * Checkpoints. SQLite's automatic checkpoint would run on the writer thread
 * inside a commit: copying WAL pages into the db file (through the encrypting
 * VFS: decrypt, re-encrypt) and two fsyncs, while every job waits. Instead the
 * writer connection's WAL hook wakes a checkpointer thread with a connection
 * of its own once CHECKPOINT_PAGES frames were appended since the last
 * checkpoint, and that thread runs PASSIVE checkpoints beside the writer (WAL
 * allows one checkpointer beside one writer). Counting new frames, not the
 * WAL's length, matters: under a steady stream of commits the WAL cannot
 * restart (a checkpoint never catches up with the writer), so a trigger on its
 * length would fire after every commit and copy the same hot index pages again
 * each time. A checkpoint copies each page once however many frames hold it,
 * so batching many frames per checkpoint is what makes it cheap. The writer
 * checkpoints itself at CHECKPOINT_HARD_PAGES, between transactions, which
 * lets the next one restart the WAL from its beginning: that bounds its size.
 * And once the writer has been idle for a second, the checkpointer copies
 * whatever is left, so a quiet store keeps a short WAL.
 *
 * Completion. Finished jobs move to a done list and the thread wakes the loop
 * with uv_async_send(); the async callback runs the callbacks in order. On
 * close the thread drains the queue first, so every accepted job's callback
 * runs exactly once.
 */
#include <errno.h>
#include <stdlib.h>

#include "store/db.h"
#include "store/store-private.h"
#include "store/writer.h"
#include "util/log.h"
#include "util/macro.h"

/* Enough to amortise a commit; small enough that one group cannot hold a
 * transaction (and the callbacks behind it) for long. */
#define MAX_GROUP 512

/* New WAL frames (4 KB pages) that wake the checkpointer: a bulk sync rewrites
 * a few hundred index pages in every commit, and a checkpoint copies each of
 * them once per run, so runs are worth making large. The hard limit bounds the
 * WAL file (about 135 MB at most). */
#define CHECKPOINT_PAGES      8192
#define CHECKPOINT_HARD_PAGES 32768
/* A writer idle this long checkpoints what is left (one second). */
#define CHECKPOINT_IDLE_NS (1000 * 1000 * 1000)

typedef struct StoreJob {
        struct StoreJob *next;
        StoreDurability durability;
        StoreJobRunFn run;
        StoreJobDoneFn done;
        void *userdata;
        int r;
} StoreJob;

typedef struct JobList {
        StoreJob *head, *tail;
} JobList;

struct StoreWriter {
        uv_loop_t *loop;
        uv_async_t async;
        uv_thread_t thread;
        uv_mutex_t lock;
        uv_cond_t cond;

        sqlite3 *db;      /* writer thread only */
        sqlite3 *ckpt_db; /* checkpointer thread only; NULL: SQLite's autocheckpoint */
        uv_thread_t ckpt_thread;
        uv_cond_t ckpt_cond;

        /* Under lock. */
        JobList queue;
        JobList done;
        bool closing;
        bool finished; /* the thread has closed db and is about to return */
        uint64_t n_commits, n_jobs, n_checkpoints;
        bool ckpt_wanted, ckpt_stop;
        int ckpt_frames; /* frames of the WAL copied by the last checkpoint (0 after a restart) */
        int wal_frames;  /* frames in the WAL after the last commit */

        StoreWriterClosedFn closed_cb;
        void *closed_userdata;
};

static void job_list_push(JobList *l, StoreJob *j) {
        j->next = NULL;
        if (l->tail)
                l->tail->next = j;
        else
                l->head = j;
        l->tail = j;
}

static void job_list_append(JobList *l, JobList *other) {
        if (!other->head)
                return;
        if (l->tail)
                l->tail->next = other->head;
        else
                l->head = other->head;
        l->tail = other->tail;
        other->head = other->tail = NULL;
}

static int writer_exec(StoreWriter *w, const char *sql) {
        int rc = sqlite3_exec(w->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                log_error("store: \"%s\" failed: %s", sql, sqlite3_errmsg(w->db));
                return store_db_errno(rc);
        }
        return 0;
}

/* writer_exec() for the statements of every job: prepared once (sql must be a literal). */
static int writer_step(StoreWriter *w, const char *sql) {
        sqlite3_stmt *st;
        int r = store_prepare(w->db, sql, &st);

        if (r < 0)
                return r;
        r = store_step_done(st);
        if (r < 0)
                log_error("store: \"%s\" failed: %s", sql, sqlite3_errmsg(w->db));
        sqlite3_reset(st);
        return r;
}

/* Runs one group in one transaction; sets every job's r. */
static void writer_run_group(StoreWriter *w, JobList *group) {
        bool barrier = false;
        int r;

        for (StoreJob *j = group->head; j; j = j->next)
                barrier |= j->durability == STORE_BARRIER;

        if (barrier) {
                r = writer_exec(w, "PRAGMA synchronous=FULL");
                if (r < 0) {
                        /* The commit could not be promised durable: run nothing. */
                        for (StoreJob *j = group->head; j; j = j->next)
                                j->r = r;
                        return;
                }
        }

        r = writer_exec(w, "BEGIN IMMEDIATE");
        if (r < 0) {
                for (StoreJob *j = group->head; j; j = j->next)
                        j->r = r;
                goto restore;
        }

        for (StoreJob *j = group->head; j; j = j->next) {
                r = writer_step(w, "SAVEPOINT job");
                if (r >= 0) {
                        r = j->run(w->db, j->userdata);
                        if (r < 0)
                                (void)writer_step(w, "ROLLBACK TO job");
                        int k = writer_step(w, "RELEASE job");
                        if (r >= 0 && k < 0)
                                r = k;
                }
                j->r = r < 0 ? r : 0;
        }

        r = writer_exec(w, "COMMIT");
        if (r < 0) {
                (void)writer_exec(w, "ROLLBACK");
                for (StoreJob *j = group->head; j; j = j->next)
                        if (j->r >= 0)
                                j->r = r;
        }

restore:
        if (barrier)
                (void)writer_exec(w, "PRAGMA synchronous=NORMAL");
}

/* Runs on the writer thread after each commit, with the WAL's size in frames. */
static int writer_wal_hook(void *arg, sqlite3 *db, const char *name, int n_pages) {
        StoreWriter *w = arg;

        if (n_pages >= CHECKPOINT_HARD_PAGES) {
                int n_log = -1, n_ckpt = -1;

                /* The WAL is long: copy what the checkpointer has not, so the next transaction can restart it.
                 * BUSY here just means the checkpointer is at work. */
                (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &n_log, &n_ckpt);
                uv_mutex_lock(&w->lock);
                if (n_ckpt > w->ckpt_frames)
                        w->ckpt_frames = n_ckpt;
                w->wal_frames = n_pages;
                uv_mutex_unlock(&w->lock);
                return SQLITE_OK;
        }
        uv_mutex_lock(&w->lock);
        if (n_pages < w->ckpt_frames)
                w->ckpt_frames = 0; /* the WAL restarted from its beginning */
        w->wal_frames = n_pages;
        if (n_pages - w->ckpt_frames >= CHECKPOINT_PAGES) {
                w->ckpt_wanted = true;
                uv_cond_signal(&w->ckpt_cond);
        }
        uv_mutex_unlock(&w->lock);
        return SQLITE_OK;
}

static void checkpointer_thread(void *arg) {
        StoreWriter *w = arg;

        for (;;) {
                int rc, n_log = -1, n_ckpt = -1;

                uv_mutex_lock(&w->lock);
                while (!w->ckpt_wanted && !w->ckpt_stop)
                        uv_cond_wait(&w->ckpt_cond, &w->lock);
                if (w->ckpt_stop) {
                        uv_mutex_unlock(&w->lock);
                        break;
                }
                w->ckpt_wanted = false;
                uv_mutex_unlock(&w->lock);

                rc = sqlite3_wal_checkpoint_v2(w->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, &n_log, &n_ckpt);
                if (rc != SQLITE_OK && rc != SQLITE_BUSY)
                        log_warning("store: checkpoint failed: %s", sqlite3_errmsg(w->ckpt_db));

                uv_mutex_lock(&w->lock);
                w->n_checkpoints++;
                /* Until the writer has appended another CHECKPOINT_PAGES frames, there is nothing worth copying.
                 * Had the WAL restarted meanwhile, the hook sees fewer frames than this and starts over. */
                if (rc == SQLITE_OK && n_ckpt > w->ckpt_frames)
                        w->ckpt_frames = n_ckpt;
                uv_mutex_unlock(&w->lock);
        }
        sqlite3_close(w->ckpt_db);
        w->ckpt_db = NULL;
}

static void writer_thread(void *arg) {
        StoreWriter *w = arg;

        for (;;) {
                JobList group = {};
                unsigned n = 0;

                uv_mutex_lock(&w->lock);
                while (!w->queue.head && !w->closing) {
                        /* Idle for CHECKPOINT_IDLE_NS with frames not yet copied: checkpoint them now, so
                         * the WAL does not sit long at up to CHECKPOINT_PAGES frames between bursts. */
                        if (w->ckpt_db && w->wal_frames > w->ckpt_frames && !w->ckpt_wanted) {
                                if (uv_cond_timedwait(&w->cond, &w->lock, CHECKPOINT_IDLE_NS) == UV_ETIMEDOUT &&
                                    !w->queue.head && !w->closing) {
                                        w->ckpt_wanted = true;
                                        w->ckpt_frames = w->wal_frames; /* asked for: do not ask again */
                                        uv_cond_signal(&w->ckpt_cond);
                                }
                        } else
                                uv_cond_wait(&w->cond, &w->lock);
                }
                if (!w->queue.head) {
                        uv_mutex_unlock(&w->lock);
                        break;
                }
                while (w->queue.head && n < MAX_GROUP) {
                        StoreJob *j = w->queue.head;
                        w->queue.head = j->next;
                        if (!w->queue.head)
                                w->queue.tail = NULL;
                        job_list_push(&group, j);
                        n++;
                }
                uv_mutex_unlock(&w->lock);

                writer_run_group(w, &group);

                uv_mutex_lock(&w->lock);
                job_list_append(&w->done, &group);
                w->n_commits++;
                w->n_jobs += n;
                uv_mutex_unlock(&w->lock);
                uv_async_send(&w->async);
        }

        if (w->ckpt_db) {
                uv_mutex_lock(&w->lock);
                w->ckpt_stop = true;
                uv_cond_signal(&w->ckpt_cond);
                uv_mutex_unlock(&w->lock);
                uv_thread_join(&w->ckpt_thread);
        }

        /* The statements the jobs cached on this thread go first, or close
         * would refuse. Then checkpoint so a clean close leaves a short WAL;
         * sqlite3_close does the rest. */
        store_stmt_cache_drop(w->db);
        /* No sqlite3_next_stmt() sweep: FTS5 (store/search.c) owns statements it finalizes itself on close. */
        (void)sqlite3_wal_checkpoint_v2(w->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        if (sqlite3_close_v2(w->db) != SQLITE_OK)
                log_error("store: closing the write connection failed: %s", sqlite3_errmsg(w->db));
        w->db = NULL;

        uv_mutex_lock(&w->lock);
        w->finished = true;
        uv_mutex_unlock(&w->lock);
        uv_async_send(&w->async);
}

static void writer_closed_cb(uv_handle_t *h) {
        StoreWriter *w = container_of((uv_async_t *)h, StoreWriter, async);
        StoreWriterClosedFn cb = w->closed_cb;
        void *userdata = w->closed_userdata;

        uv_cond_destroy(&w->ckpt_cond);
        uv_cond_destroy(&w->cond);
        uv_mutex_destroy(&w->lock);
        free(w);
        if (cb)
                cb(userdata);
}

static void writer_async_cb(uv_async_t *async) {
        StoreWriter *w = container_of(async, StoreWriter, async);
        bool finished;

        for (;;) {
                JobList done;

                uv_mutex_lock(&w->lock);
                done = w->done;
                w->done.head = w->done.tail = NULL;
                finished = w->finished;
                uv_mutex_unlock(&w->lock);
                if (!done.head)
                        break;

                for (StoreJob *j = done.head, *next; j; j = next) {
                        next = j->next;
                        if (j->done)
                                j->done(j->r, j->userdata);
                        free(j);
                }
        }

        /* finished was read after the last job was moved to done, so no
         * callback can be left behind. */
        if (finished && !uv_is_closing((uv_handle_t *)async)) {
                uv_thread_join(&w->thread);
                uv_close((uv_handle_t *)async, writer_closed_cb);
        }
}

int store_writer_new(uv_loop_t *loop, sqlite3 *db, sqlite3 *checkpoint_db, StoreWriter **wp) {
        _cleanup_free_ StoreWriter *w = NULL;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w) {
                sqlite3_close(checkpoint_db);
                return -ENOMEM;
        }
        w->loop = loop;
        w->db = db;

        r = uv_mutex_init(&w->lock);
        if (r < 0) {
                sqlite3_close(checkpoint_db);
                return r;
        }
        r = uv_cond_init(&w->cond);
        if (r < 0)
                goto fail_cond;
        r = uv_cond_init(&w->ckpt_cond);
        if (r < 0)
                goto fail_ckpt_cond;
        r = uv_async_init(loop, &w->async, writer_async_cb);
        if (r < 0)
                goto fail_async;

        if (checkpoint_db) {
                w->ckpt_db = checkpoint_db;
                r = uv_thread_create(&w->ckpt_thread, checkpointer_thread, w);
                if (r < 0) {
                        w->ckpt_db = NULL;
                        sqlite3_close(checkpoint_db);
                        goto fail_thread;
                }
                sqlite3_wal_autocheckpoint(db, 0);
                sqlite3_wal_hook(db, writer_wal_hook, w);
        }
        r = uv_thread_create(&w->thread, writer_thread, w);
        if (r < 0) {
                if (w->ckpt_db) {
                        uv_mutex_lock(&w->lock);
                        w->ckpt_stop = true;
                        uv_cond_signal(&w->ckpt_cond);
                        uv_mutex_unlock(&w->lock);
                        uv_thread_join(&w->ckpt_thread); /* it closed checkpoint_db */
                }
                sqlite3_wal_hook(db, NULL, NULL);
                sqlite3_wal_autocheckpoint(db, 1000);
                goto fail_thread;
        }
        *wp = TAKE_PTR(w);
        return 0;

fail_thread:
        /* The handle must close before w can be freed; writer_closed_cb()
         * frees it (and the locks) once the loop has let go. */
        uv_close((uv_handle_t *)&w->async, writer_closed_cb);
        w = NULL;
        return r;
fail_async:
        uv_cond_destroy(&w->ckpt_cond);
fail_ckpt_cond:
        uv_cond_destroy(&w->cond);
fail_cond:
        uv_mutex_destroy(&w->lock);
        sqlite3_close(checkpoint_db);
        return r;
}

int store_writer_submit(StoreWriter *w, StoreDurability durability, StoreJobRunFn run, StoreJobDoneFn done,
                        void *userdata) {
        StoreJob *j;

        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        *j = (StoreJob){.durability = durability, .run = run, .done = done, .userdata = userdata};

        uv_mutex_lock(&w->lock);
        if (w->closing) {
                uv_mutex_unlock(&w->lock);
                free(j);
                return -ESHUTDOWN;
        }
        job_list_push(&w->queue, j);
        uv_cond_signal(&w->cond);
        uv_mutex_unlock(&w->lock);
        return 0;
}

void store_writer_close(StoreWriter *w, StoreWriterClosedFn closed_cb, void *userdata) {
        uv_mutex_lock(&w->lock);
        w->closing = true;
        w->closed_cb = closed_cb;
        w->closed_userdata = userdata;
        uv_cond_signal(&w->cond);
        uv_mutex_unlock(&w->lock);
}

void store_writer_get_stats(StoreWriter *w, uint64_t *n_commitsp, uint64_t *n_jobsp, uint64_t *n_checkpointsp) {
        uv_mutex_lock(&w->lock);
        if (n_checkpointsp)
                *n_checkpointsp = w->n_checkpoints;
        if (n_commitsp)
                *n_commitsp = w->n_commits;
        if (n_jobsp)
                *n_jobsp = w->n_jobs;
        uv_mutex_unlock(&w->lock);
}
