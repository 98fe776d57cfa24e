/*
 * The account scheduler. Each account of the config gets a SchedJob with a
 * timer; the timer starts the account's engine, the engine reports through
 * sched_job_done(), and the job arms its timer again: poll_interval with
 * jitter after a run that worked, the shared backoff after one that failed,
 * nothing after a failure the user must fix. A run is never started while
 * the account's previous one is still at work ("sync now" during a run
 * queues one more run right after it).
 *
 * Closing cancels the running sessions and waits for their reports and for
 * every timer handle to close before freeing anything; the Config stays
 * referenced until then because the engines borrow its Account structs.
 * Loop thread only.
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/imap/push.h"
#include "daemon/imap/sync.h"
#include "daemon/pop3/fetch.h"
#include "daemon/scheduler.h"
#include "util/log.h"

/* Gap between the first runs of successive accounts, so start-up does not open every connection at once. */
#define SCHED_START_STAGGER_MS 250

/* Backoff after failures worth retrying: from 30 s up to 30 min (with the random half of backoff.h). */
#define SCHED_BACKOFF_BASE_MS (30 * 1000)
#define SCHED_BACKOFF_CAP_MS  (30 * 60 * 1000)

struct SchedJob {
        Scheduler *sched;
        const Account *acct;
        const SchedEngine *engine;
        uv_timer_t timer;
        bool timer_open;
        void *handle;  /* the engine's run, while running */
        bool running, again, cancelled;
        SchedState state;
        Backoff backoff;
        int64_t last_attempt, last_success, next_run;
        char *last_error;
        NetFailure last_failure;
        size_t last_new;
        unsigned n_runs;
        uint64_t quota_used, quota_limit;
        SchedulerPlanFn dry_cb; /* a dry run waiting for the account's session to end */
        void *dry_userdata;
        Pop3Fetch *dry_fetch;   /* the dry run at work; it holds the account like a run */
        SchedulerPlanFn dry_answer_cb; /* the one at work, until its plan is handed over */
        void *dry_answer_userdata;
        ImapPush *push;    /* IMAP: the watching connection that asks for a sync when something changed */
        bool push_stopped; /* it hit a permanent failure: restarted after the next good sync */
        bool bodies_due;   /* IMAP: stored messages may lack bodies; the next unmetered run fetches them */
        bool run_headers_only; /* IMAP: the run at work was started headers only */
        bool quota_over;       /* IMAP: usage was at or above quota_warn_percent at the last report */
        ImapSyncKeep *keep;    /* IMAP: the last sync's session, kept for the next (a push-started one) */
};

struct Scheduler {
        uv_loop_t *loop;
        Store *store;
        Config *config; /* referenced */
        const SchedulerListener *listener;
        void *userdata;
        SchedJob *jobs;
        size_t n_jobs;
        unsigned n_running, n_timers_open;
        bool closing;
        bool paused;       /* asleep or offline: no run starts, push is down (scheduler_set_paused) */
        bool headers_only; /* metered network: IMAP runs store headers, bodies come later */
        SchedulerClosedFn closed_cb;
        void *closed_userdata;
};

static const char *const state_names[_SCHED_STATE_MAX] = {
        [SCHED_STATE_IDLE] = "idle",   [SCHED_STATE_RUNNING] = "running", [SCHED_STATE_RETRY] = "retry",
        [SCHED_STATE_ERROR] = "error", [SCHED_STATE_DISABLED] = "disabled", [SCHED_STATE_PAUSED] = "paused",
};

const char *sched_state_to_string(SchedState state) {
        return state >= 0 && state < _SCHED_STATE_MAX ? state_names[state] : "unknown";
}

uint64_t sched_poll_delay_ms(unsigned interval_s, uint32_t login_delay_s, uint32_t rnd) {
        uint64_t base = (uint64_t)interval_s * 1000, spread = base / 5, delay;

        /* base - 10% .. base + 10%: rnd scaled into [0, spread]. */
        delay = base - spread / 2 + (spread * rnd) / UINT32_MAX;
        if (delay < (uint64_t)login_delay_s * 1000)
                delay = (uint64_t)login_delay_s * 1000;
        return delay;
}

static void job_arm(SchedJob *j, uint64_t delay_ms);
static void sched_maybe_free(Scheduler *s);

/* ---- push --------------------------------------------------------------------------------- */

/* The server says something changed: sync now (LIST-STATUS keeps it to the changed folders). */
static void push_changed_cb(ImapPush *p, const char *account, const char *folder, void *userdata) {
        SchedJob *j = userdata;

        if (j->sched->closing || j->sched->paused || j->state == SCHED_STATE_ERROR)
                return;
        log_acct_debug(account, "push: %s changed: syncing", folder ? folder : "the folder list");
        if (j->running)
                j->again = true;
        else
                job_arm(j, 0);
}

static void push_state_cb(ImapPush *p, ImapPushState state, const char *reason, void *userdata) {
        SchedJob *j = userdata;

        switch (state) {
        case IMAP_PUSH_CONNECTED:
                log_acct_info(j->acct->name, "push: watching the server (%s)",
                              imap_push_mode_to_string(imap_push_get_mode(p)));
                break;
        case IMAP_PUSH_RECONNECTING:
                log_warning("%s; push reconnects in %llu s", reason ? reason : "push: connection lost",
                            (unsigned long long)((imap_push_get_retry_ms(p) + 999) / 1000));
                break;
        case IMAP_PUSH_STOPPED:
                /* The sync reports the same failure as the account's error; push waits for a good sync. */
                log_warning("%s; push stopped", reason ? reason : "push: stopped");
                j->push_stopped = true;
                break;
        }
}

static const ImapPushOps push_ops = {.changed = push_changed_cb, .state = push_state_cb};

static void push_closed_cb(ImapPush *p, void *userdata) {
        SchedJob *j = userdata;
        Scheduler *s = j->sched;

        j->push = NULL;
        s->n_timers_open--;
        sched_maybe_free(s);
}

static void keep_closed_cb(void *userdata) {
        SchedJob *j = userdata;
        Scheduler *s = j->sched;

        j->keep = NULL;
        s->n_timers_open--;
        sched_maybe_free(s);
}

static void sched_maybe_free(Scheduler *s) {
        SchedulerClosedFn cb;
        void *ud;

        if (!s->closing || s->n_running > 0 || s->n_timers_open > 0)
                return;
        cb = s->closed_cb;
        ud = s->closed_userdata;
        for (size_t i = 0; i < s->n_jobs; i++)
                free(s->jobs[i].last_error);
        free(s->jobs);
        config_free(s->config);
        free(s);
        if (cb)
                cb(ud);
}

static void job_timer_cb(uv_timer_t *t);

static void job_arm(SchedJob *j, uint64_t delay_ms) {
        if (j->sched->closing || !j->timer_open)
                return;
        if (j->sched->paused) {
                j->next_run = 0; /* scheduler_set_paused(false) runs every account */
                return;
        }
        j->next_run = (int64_t)time(NULL) + (int64_t)((delay_ms + 999) / 1000);
        uv_timer_start(&j->timer, job_timer_cb, delay_ms, 0);
}

static void job_start(SchedJob *j) {
        Scheduler *s = j->sched;
        int r;

        if (s->closing || s->paused || j->running)
                return;
        j->again = false;
        j->cancelled = false;
        j->next_run = 0;
        j->last_attempt = (int64_t)time(NULL);
        r = j->engine->start(j, s->loop, s->store, j->acct, &j->handle);
        if (r < 0) {
                SchedRun run = {.r = r, .failure = NET_FAILURE_NETWORK, .error = ""};
                char msg[256];

                snprintf(msg, sizeof msg, "account %s: %s: cannot start: %s", j->acct->name, j->engine->name,
                         strerror(-r));
                run.error = msg;
                log_error("%s", msg);
                /* As a failed run, without the running bookkeeping. */
                j->running = true;
                s->n_running++;
                sched_job_done(j, &run);
                return;
        }
        j->running = true;
        j->state = SCHED_STATE_RUNNING;
        s->n_running++;
        if (s->listener && s->listener->started)
                s->listener->started(j->acct->name, s->userdata);
}

static void job_timer_cb(uv_timer_t *t) {
        SchedJob *j = t->data;

        /* Only a dry run is at work while the timer runs: poll right after it. */
        if (j->running) {
                j->again = true;
                return;
        }
        job_start(j);
}

static void dry_start(SchedJob *j);

void sched_job_progress(SchedJob *j, const char *folder, unsigned done, unsigned total) {
        Scheduler *s = j->sched;

        if (s->listener && s->listener->progress && !s->closing)
                s->listener->progress(j->acct->name, folder, done, total, s->userdata);
}

void sched_job_done(SchedJob *j, const SchedRun *run) {
        Scheduler *s = j->sched;
        uint64_t delay = 0;

        j->running = false;
        j->handle = NULL;
        s->n_running--;
        j->n_runs++;
        free(j->last_error);
        j->last_error = strdup(run->r < 0 && run->error ? run->error : "");
        j->last_failure = run->r < 0 ? run->failure : NET_FAILURE_NONE;
        if (run->r >= 0) {
                j->last_success = (int64_t)time(NULL);
                j->last_new = run->n_new;
                if (run->quota_used || run->quota_limit) {
                        j->quota_used = run->quota_used;
                        j->quota_limit = run->quota_limit;
                }
                backoff_reset(&j->backoff);
                j->state = SCHED_STATE_IDLE;
                delay = sched_poll_delay_ms(j->acct->poll_interval, run->login_delay_seconds, randombytes_random());
                if (j->push && j->push_stopped && !s->closing && !s->paused) {
                        j->push_stopped = false; /* what stopped it is fixed: the sync logged in */
                        (void)imap_push_start(j->push);
                }
        } else if (j->cancelled || s->closing) {
                j->state = SCHED_STATE_IDLE;
        } else if (backoff_next(&j->backoff, run->failure, &delay) == BACKOFF_STOP) {
                j->state = SCHED_STATE_ERROR;
                log_acct_error(j->acct->name, "%s: not retrying until the configuration is reloaded or a sync is "
                                              "asked for: %s",
                               j->engine->name, net_failure_to_string(run->failure));
        } else {
                j->state = SCHED_STATE_RETRY;
                if (delay < (uint64_t)run->login_delay_seconds * 1000)
                        delay = (uint64_t)run->login_delay_seconds * 1000;
                log_acct_info(j->acct->name, "%s: next attempt in %llu s", j->engine->name,
                              (unsigned long long)((delay + 999) / 1000));
        }
        if (s->paused && j->state != SCHED_STATE_ERROR)
                j->state = SCHED_STATE_PAUSED;
        if (s->listener && s->listener->finished)
                s->listener->finished(j->acct->name, run, s->userdata);
        if (s->closing)
                return sched_maybe_free(s);
        if (j->again) {
                /* Asked for while running: once more now (LOGIN-DELAY permitting). */
                j->state = j->state == SCHED_STATE_ERROR ? SCHED_STATE_IDLE : j->state;
                job_arm(j, (uint64_t)run->login_delay_seconds * 1000);
        } else if (j->state != SCHED_STATE_ERROR)
                job_arm(j, delay);
        if (j->dry_cb)
                dry_start(j); /* waited for this run */
}

/* ---- engines ------------------------------------------------------------------------------ */

static void pop3_done_cb(const Pop3FetchResult *res, void *userdata) {
        SchedJob *j = userdata;
        SchedNewMail nm = {.folder = POP3_FETCH_FOLDER, .ids = res->new_ids, .n_ids = res->new_ids ? res->n_downloaded : 0};
        SchedRun run = {
                .r = res->r,
                .failure = res->failure,
                .error = res->error,
                .n_new = res->n_downloaded,
                .new_bytes = res->downloaded_bytes,
                .n_deleted_elsewhere = res->n_deleted_elsewhere,
                .login_delay_seconds = res->login_delay_seconds,
                .new_mail = &nm,
                .n_new_mail = nm.n_ids > 0,
                .quota_warning = res->r >= 0 && (res->warnings & POP3_FETCH_W_QUOTA),
                .quota_used = res->server_bytes,
                .quota_limit = (uint64_t)j->acct->pop3_server_warn_mb * 1024 * 1024,
        };

        sched_job_done(j, &run);
}

static int pop3_start(SchedJob *j, uv_loop_t *loop, Store *store, const Account *a, void **handlep) {
        Pop3FetchOptions opts = {.now = (int64_t)time(NULL)};
        Pop3Fetch *f = NULL;
        int r;

        r = pop3_fetch_begin(loop, store, a, &opts, pop3_done_cb, j, &f);
        if (r < 0)
                return r;
        *handlep = f;
        return 0;
}

static void pop3_cancel(void *handle) {
        pop3_fetch_cancel(handle);
}

static const SchedEngine pop3_engine = {.name = "pop3", .start = pop3_start, .cancel = pop3_cancel};

static void imap_done_cb(const ImapSyncResult *res, void *userdata) {
        SchedJob *j = userdata;
        SchedNewMail nm[16];
        SchedRun run = {
                .r = res->r,
                .failure = res->failure,
                .error = res->error,
                .n_new = res->n_new,
                .new_bytes = res->body_bytes,
                .n_deleted_elsewhere = res->n_expunged,
        };
        _cleanup_free_ SchedNewMail *many = NULL;
        SchedNewMail *v = nm;

        if (res->have_quota) {
                /* A warning when usage crosses the level; none again until it has fallen below. */
                bool over = (double)res->quota_used * 100 >= (double)res->quota_limit * j->acct->quota_warn_percent;

                run.quota_used = res->quota_used;
                run.quota_limit = res->quota_limit;
                run.quota_warning = over && !j->quota_over;
                if (run.quota_warning)
                        log_acct_warning(j->acct->name,
                                         "imap: the server's quota is %llu%% used (%llu of %llu KiB), "
                                         "at or above quota_warn_percent = %u",
                                         (unsigned long long)(res->quota_used * 100 / res->quota_limit),
                                         (unsigned long long)(res->quota_used / 1024),
                                         (unsigned long long)(res->quota_limit / 1024), j->acct->quota_warn_percent);
                j->quota_over = over;
        }

        if (res->n_new_mail > ARRAY_SIZE(nm)) {
                many = calloc(res->n_new_mail, sizeof *many);
                v = many;
        }
        if (v) {
                for (size_t i = 0; i < res->n_new_mail; i++)
                        v[i] = (SchedNewMail){.folder = res->new_mail[i].folder,
                                              .ids = res->new_mail[i].ids,
                                              .n_ids = res->new_mail[i].n_ids};
                run.new_mail = v;
                run.n_new_mail = res->n_new_mail;
        }
        if (res->r >= 0 && !j->run_headers_only)
                j->bodies_due = false; /* that run fetched whatever bodies were missing */
        if (res->r >= 0) {
                char buf[512];

                log_acct_info(j->acct->name, "imap: %s", imap_sync_result_summary(res, buf, sizeof buf));
        } else if (res->r == -ECANCELED)
                log_info("%s", res->error);
        else
                log_error("%s", res->error); /* it names the account and the server */
        sched_job_done(j, &run);
}

static void imap_progress_cb(const ImapSyncProgress *p, void *userdata) {
        sched_job_progress(userdata, p->folder, (unsigned)p->msgs_done, (unsigned)p->msgs_total);
}

static int imap_start(SchedJob *j, uv_loop_t *loop, Store *store, const Account *a, void **handlep) {
        ImapSyncOptions opts = {.progress_fn = imap_progress_cb,
                                .progress_userdata = j,
                                .keep = j->keep,
                                .headers_only = j->sched->headers_only,
                                .fetch_missing_bodies = j->bodies_due && !j->sched->headers_only};
        ImapSync *s = NULL;
        int r;

        j->run_headers_only = opts.headers_only;
        if (opts.headers_only)
                j->bodies_due = true;

        r = imap_sync_begin(loop, store, a, &opts, imap_done_cb, j, &s);
        if (r < 0)
                return r;
        *handlep = s;
        return 0;
}

static void imap_cancel(void *handle) {
        imap_sync_cancel(handle);
}

static const SchedEngine imap_engine = {.name = "imap", .start = imap_start, .cancel = imap_cancel};

const SchedEngines sched_default_engines = {.imap = &imap_engine, .pop3 = &pop3_engine};

/* ---- dry runs: a POP3 session that lists, decides and QUITs, as the account's next session ---- */

static void dry_plan_cb(const Pop3RuleMsg *msgs, const Pop3Decision *decisions, size_t n, void *userdata) {
        SchedJob *j = userdata;
        SchedulerPlanFn cb = j->dry_answer_cb;

        j->dry_answer_cb = NULL; /* answered; the session's end only frees the account */
        if (cb)
                cb(0, NET_FAILURE_NONE, "", msgs, decisions, n, j->dry_answer_userdata);
}

static void dry_done_cb(const Pop3FetchResult *res, void *userdata) {
        SchedJob *j = userdata;
        Scheduler *s = j->sched;
        SchedulerPlanFn cb = j->dry_answer_cb;

        j->dry_answer_cb = NULL;
        j->dry_fetch = NULL;
        j->running = false;
        s->n_running--;
        if (cb)
                cb(res->r < 0 ? res->r : -EIO, res->r < 0 ? res->failure : NET_FAILURE_PROTOCOL,
                   res->r < 0 && res->error ? res->error : "the session ended before the plan was made", NULL, NULL, 0,
                   j->dry_answer_userdata);
        if (s->closing)
                return sched_maybe_free(s);
        if (j->again && j->timer_open)
                job_arm(j, 0); /* a poll or a sync fell due meanwhile */
        if (j->dry_cb)
                dry_start(j); /* asked for meanwhile: before that poll, which then waits for it */
}

static int dry_begin(SchedJob *j) {
        Scheduler *s = j->sched;
        Pop3FetchOptions opts = {.now = (int64_t)time(NULL), .dry_run = true, .plan_fn = dry_plan_cb};
        int r;

        r = pop3_fetch_begin(s->loop, s->store, j->acct, &opts, dry_done_cb, j, &j->dry_fetch);
        if (r < 0)
                return r;
        j->dry_answer_cb = TAKE_PTR(j->dry_cb);
        j->dry_answer_userdata = j->dry_userdata;
        j->running = true;
        s->n_running++;
        log_acct_info(j->acct->name, "pop3: dry run: listing the server, nothing is downloaded or deleted");
        return 0;
}

/* Starts the dry run that waited for a run; a failure to start is its answer. */
static void dry_start(SchedJob *j) {
        SchedulerPlanFn cb;
        char msg[256];
        int r;

        if (j->running || j->sched->closing)
                return;
        r = dry_begin(j);
        if (r == 0)
                return;
        snprintf(msg, sizeof msg, "account %s: pop3: cannot start: %s", j->acct->name, strerror(-r));
        cb = j->dry_cb;
        j->dry_cb = NULL;
        cb(r, NET_FAILURE_NETWORK, msg, NULL, NULL, 0, j->dry_userdata);
}

/* ---- the scheduler ------------------------------------------------------------------------ */

static void timer_closed_cb(uv_handle_t *h) {
        SchedJob *j = h->data;
        Scheduler *s = j->sched;

        s->n_timers_open--;
        sched_maybe_free(s);
}

int scheduler_new(uv_loop_t *loop, Store *store, Config *config, const SchedEngines *engines,
                  const SchedulerListener *listener, void *userdata, Scheduler **retp) {
        Scheduler *s;
        unsigned n_started = 0;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->jobs = calloc(config->n_accounts ? config->n_accounts : 1, sizeof *s->jobs);
        if (!s->jobs) {
                free(s);
                return -ENOMEM;
        }
        s->loop = loop;
        s->store = store;
        s->config = config_ref(config);
        s->listener = listener;
        s->userdata = userdata;
        s->n_jobs = config->n_accounts;
        for (size_t i = 0; i < s->n_jobs; i++) {
                SchedJob *j = &s->jobs[i];
                const Account *a = &config->accounts[i];

                *j = (SchedJob){.sched = s, .acct = a, .state = SCHED_STATE_DISABLED};
                backoff_init(&j->backoff, SCHED_BACKOFF_BASE_MS, SCHED_BACKOFF_CAP_MS);
                j->engine = a->imap.proto ? engines->imap : a->pop3.proto ? engines->pop3 : NULL;
                if (!j->engine) {
                        if (a->imap.proto || a->pop3.proto)
                                log_acct_warning(a->name, "%s sync is not built into this tegamid: not synced",
                                                 a->imap.proto ? "IMAP" : "POP3");
                        continue;
                }
                if (uv_timer_init(loop, &j->timer) < 0)
                        continue; /* cannot fail on Linux; the account then stays disabled */
                j->timer.data = j;
                j->timer_open = true;
                s->n_timers_open++;
                j->state = SCHED_STATE_IDLE;
                /* Bodies a metered network left behind before this start come with the first run. */
                j->bodies_due = a->imap.proto != 0;
                job_arm(j, (uint64_t)n_started++ * SCHED_START_STAGGER_MS);
                if (a->imap.proto == SERVER_IMAP && engines == &sched_default_engines &&
                    imap_push_new(loop, a, NULL, &push_ops, j, &j->push) == 0) {
                        s->n_timers_open++; /* closed with the timers */
                        if (imap_push_start(j->push) < 0)
                                j->push_stopped = true;
                }
                if (a->imap.proto == SERVER_IMAP && engines == &sched_default_engines &&
                    imap_sync_keep_new(loop, &j->keep) == 0)
                        s->n_timers_open++; /* closed with the timers */
        }
        *retp = s;
        return 0;
}

int scheduler_run_now(Scheduler *s, const char *account) {
        bool found = false;

        for (size_t i = 0; i < s->n_jobs; i++) {
                SchedJob *j = &s->jobs[i];

                if (!j->engine || !j->timer_open || (account && strcmp(j->acct->name, account) != 0))
                        continue;
                found = true;
                if (j->state == SCHED_STATE_ERROR) {
                        j->state = SCHED_STATE_IDLE;
                        backoff_reset(&j->backoff);
                }
                if (j->running)
                        j->again = true;
                else
                        job_arm(j, 0);
        }
        return found ? 0 : -ENOENT;
}

int scheduler_dry_run(Scheduler *s, const char *account, SchedulerPlanFn cb, void *userdata) {
        for (size_t i = 0; i < s->n_jobs; i++) {
                SchedJob *j = &s->jobs[i];
                int r;

                if (strcmp(j->acct->name, account) != 0)
                        continue;
                if (!j->engine || !j->timer_open)
                        return -ENOENT;
                if (j->acct->pop3.proto != SERVER_POP3)
                        return -EPROTOTYPE;
                if (j->dry_cb)
                        return -EBUSY;
                j->dry_cb = cb;
                j->dry_userdata = userdata;
                if (j->running)
                        return 0; /* sched_job_done() or dry_done_cb() starts it */
                r = dry_begin(j);
                if (r < 0)
                        j->dry_cb = NULL;
                return r;
        }
        return -ENOENT;
}

void scheduler_retry_now(Scheduler *s) {
        if (s->paused)
                return; /* scheduler_set_paused(false) does more */
        for (size_t i = 0; i < s->n_jobs; i++) {
                SchedJob *j = &s->jobs[i];

                if (j->push)
                        imap_push_retry_now(j->push);
                imap_sync_keep_drop(j->keep); /* a kept session may be on the old network */
                if (j->state == SCHED_STATE_RETRY && !j->running && j->timer_open) {
                        log_acct_info(j->acct->name, "%s: network changed: retrying now", j->engine->name);
                        job_arm(j, 0);
                }
        }
}

void scheduler_set_paused(Scheduler *s, bool paused) {
        unsigned n_started = 0;

        if (s->closing || paused == s->paused)
                return;
        s->paused = paused;
        for (size_t i = 0; i < s->n_jobs; i++) {
                SchedJob *j = &s->jobs[i];

                if (!j->engine || !j->timer_open)
                        continue;
                if (paused) {
                        if (j->push)
                                imap_push_stop(j->push);
                        imap_sync_keep_drop(j->keep);
                        uv_timer_stop(&j->timer);
                        j->next_run = 0;
                        if (j->running && j->engine->cancel && j->handle) {
                                j->cancelled = true;
                                j->engine->cancel(j->handle); /* sched_job_done() follows, later */
                        }
                        if (j->dry_fetch)
                                pop3_fetch_cancel(j->dry_fetch); /* dry_done_cb answers with the failure */
                        if (!j->running && j->state != SCHED_STATE_ERROR)
                                j->state = SCHED_STATE_PAUSED;
                        continue;
                }
                if (j->push && !j->push_stopped)
                        (void)imap_push_start(j->push); /* -EBUSY: still up */
                if (j->state == SCHED_STATE_ERROR)
                        continue; /* waits for the user, as before */
                if (j->state == SCHED_STATE_PAUSED)
                        j->state = SCHED_STATE_IDLE;
                backoff_reset(&j->backoff);
                if (j->running)
                        j->again = true; /* a dry run, or a cancelled run not reported yet */
                else
                        job_arm(j, (uint64_t)n_started++ * SCHED_START_STAGGER_MS);
        }
}

bool scheduler_is_quiet(const Scheduler *s) {
        return s->n_running == 0;
}

void scheduler_set_headers_only(Scheduler *s, bool headers_only) {
        bool catch_up = s->headers_only && !headers_only;

        s->headers_only = headers_only;
        if (!catch_up || s->paused || s->closing)
                return;
        /* The bodies left behind come with the next run: make it now. */
        for (size_t i = 0; i < s->n_jobs; i++) {
                SchedJob *j = &s->jobs[i];

                if (!j->engine || !j->timer_open || j->acct->imap.proto != SERVER_IMAP || j->state == SCHED_STATE_ERROR)
                        continue;
                if (j->running)
                        j->again = true;
                else
                        job_arm(j, 0);
        }
}

int scheduler_get_info(Scheduler *s, const char *account, SchedAccountInfo *info) {
        for (size_t i = 0; i < s->n_jobs; i++) {
                SchedJob *j = &s->jobs[i];

                if (strcmp(j->acct->name, account) != 0)
                        continue;
                *info = (SchedAccountInfo){
                        .name = j->acct->name,
                        .state = j->state,
                        .last_attempt = j->last_attempt,
                        .last_success = j->last_success,
                        .next_run = j->next_run,
                        .last_error = j->last_error ? j->last_error : "",
                        .last_failure = j->last_failure,
                        .last_new = j->last_new,
                        .n_runs = j->n_runs,
                        .quota_used = j->quota_used,
                        .quota_limit = j->quota_limit,
                };
                return 0;
        }
        return -ENOENT;
}

unsigned scheduler_get_n_running(const Scheduler *s) {
        return s->n_running;
}

void scheduler_close(Scheduler *s, SchedulerClosedFn cb, void *userdata) {
        if (s->closing)
                return;
        s->closing = true;
        s->closed_cb = cb;
        s->closed_userdata = userdata;
        for (size_t i = 0; i < s->n_jobs; i++) {
                SchedJob *j = &s->jobs[i];

                if (j->running && j->engine->cancel && j->handle) {
                        j->cancelled = true;
                        j->engine->cancel(j->handle);
                }
                if (j->dry_fetch)
                        pop3_fetch_cancel(j->dry_fetch); /* dry_done_cb answers */
                if (j->dry_cb) {
                        SchedulerPlanFn plan_cb = j->dry_cb;

                        j->dry_cb = NULL;
                        plan_cb(-ECANCELED, NET_FAILURE_NONE, "tegamid is stopping or reloading", NULL, NULL, 0,
                                j->dry_userdata);
                }
                if (j->timer_open) {
                        j->timer_open = false;
                        uv_close((uv_handle_t *)&j->timer, timer_closed_cb);
                }
                if (j->push)
                        imap_push_close(j->push, push_closed_cb);
                if (j->keep)
                        imap_sync_keep_free(j->keep, keep_closed_cb, j);
        }
        sched_maybe_free(s);
}
